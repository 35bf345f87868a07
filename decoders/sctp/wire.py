"""The pieces the SCTP packet parsers share: sizes, what a parse collects (the detail tree, still
open for the reassembler's notes, and the facts the decoder goes on with), and the reader of one
chunk's bytes with its bounds checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from protoscope.decoders.api import Field, Finding

from . import names as nm

COMMON_HEADER = 12
CHUNK_HEADER = 4
DATA_HEADER = 12
"""Bytes of a DATA chunk's value before its user data (TSN, SID, SSN, PPID)."""
I_DATA_HEADER = 16
MAX_LISTED = 256
"""Items of one list (gap blocks, duplicate TSNs, streams, parameters, causes) shown each as a
field; a chunk may declare 16,383 of them in 64 KiB. The rest are counted in one field."""

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class DataFacts:
    """A DATA or I-DATA chunk, for reassembly."""

    chunk: int
    """Index of the chunk in the packet (its detail tree gets the reassembler's notes)."""
    i_data: bool
    flags: int
    tsn: int
    sid: int
    sequence: int
    """SSN (DATA) or MID (I-DATA)."""
    ppid: int | None
    """None on an I-DATA fragment that is not the first (it carries the FSN instead)."""
    fsn: int
    payload: Span

    @property
    def begin(self) -> bool:
        return bool(self.flags & 0x02)

    @property
    def end(self) -> bool:
        return bool(self.flags & 0x01)

    @property
    def unordered(self) -> bool:
        return bool(self.flags & 0x04)


@dataclass(slots=True)
class ParsedChunk:
    ctype: int
    span: Span
    children: list[Field]
    label: str


@dataclass(slots=True)
class Parsed:
    """One packet: its detail tree (still open for the reassembler's notes) and its facts."""

    header: list[Field] = field(default_factory=list)
    chunks: list[ParsedChunk] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    data: list[DataFacts] = field(default_factory=list)
    checksum_ok: bool = False
    abort_causes: list[str] | None = None
    reset_streams: list[int] | None = None
    """Streams an Outgoing SSN Reset Request names (empty: all of them); None without one."""
    forward_tsn: int | None = None
    """New cumulative TSN of a FORWARD-TSN or I-FORWARD-TSN (RFC 3758, RFC 8260)."""
    forward_streams: list[tuple[int, bool, int]] = field(default_factory=list)
    """(stream, unordered, SSN or MID) a FORWARD-TSN or I-FORWARD-TSN skips to."""
    zero_checksum_acceptable: bool = False
    """An INIT or INIT-ACK announces RFC 9653's Zero Checksum Acceptable parameter."""
    info: list[str] = field(default_factory=list)

    def fields(self) -> list[Field]:
        return self.header + [Field("sctp.chunk", c.label, c.span, tuple(c.children)) for c in self.chunks]


class ChunkReader:
    """The parse of one chunk: reads its value with bounds checks, collects its fields."""

    __slots__ = ("ctype", "data", "end", "flags", "index", "out", "start", "value")

    def __init__(self, data: bytes, out: Parsed, index: int, start: int, end: int) -> None:
        self.data, self.out, self.index = data, out, index
        self.ctype, self.flags = data[start], data[start + 1]
        self.start, self.value, self.end = start, start + CHUNK_HEADER, end

    def short(self, need: int) -> bool:
        """True (and a finding) when the value is shorter than `need` bytes."""
        if self.end - self.value >= need:
            return False
        name = nm.chunk_name(self.ctype)
        self.out.findings.append(
            Finding(
                "warn",
                "sctp.chunk_length_bad",
                f"{name} chunk value is {self.end - self.value} bytes, at least {need} expected",
                (self.start, self.end),
            )
        )
        return True

    def uint(self, at: int, size: int) -> int:
        return int.from_bytes(self.data[at : at + size], "big")

    def f(self, name: str, at: int, size: int) -> Field:
        """An unsigned integer field of `size` bytes at `at`."""
        return Field(name, self.uint(at, size), (at, at + size))


ChunkParser = Callable[[ChunkReader], list[Field]]
