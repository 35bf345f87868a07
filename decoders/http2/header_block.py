"""HPACK header blocks (RFC 7541) decoded passively and tolerantly, with a byte span per header.

hpack's `Decoder` is built for endpoints: it stops at the first reference to a dynamic-table
entry it never saw, which is every capture that starts mid-connection. A passive decoder must
go on: such a header shows as unknown (with a finding) and everything else in the block still
decodes, and the table keeps filling from new literals with indexing. So the representations
are walked here, with hpack's Huffman decoding and static table. hpack is imported on the first
header block (it imports logging and more: ~4 ms of start-up that most captures need not pay).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from protoscope.decoders.api import Finding, Severity

STATIC_ENTRIES = 61
"""RFC 7541 Appendix A: the static table's size; dynamic entries are numbered after it."""
STATIC_TEXT: tuple[tuple[str, str], ...] = ()
"""The static table as text, from hpack, filled by `_load_hpack` before the first block."""
_decode_huffman: Callable[[bytes], bytes] | None = None
_HuffmanError: type[Exception] = ValueError
"""hpack's HPACKDecodingError, bound by `_load_hpack` (no import per Huffman literal)."""
ENTRY_OVERHEAD = 32
"""RFC 7541 section 4.1: an entry's size is its name and value lengths plus 32."""
DEFAULT_TABLE_SIZE = 4096
MAX_TABLE_SIZE = 1 << 20
"""Largest dynamic table we keep, whatever a peer's SETTINGS or size updates ask for."""
MAX_HEADER_LIST_SIZE = 1 << 20
"""Decoded bytes (names + values + 32 each, as SETTINGS_MAX_HEADER_LIST_SIZE counts them) kept of
one block: an HPACK bomb (a small block referencing big table entries many times) stops being kept
here, with a finding. Go's net/http stops at 1 MB too; gRPC's own default is 8 to 16 KiB."""
MAX_HEADERS = 512
"""Headers kept of one block: the rest is walked (for the dynamic table's sake) but not kept, with
a finding. No real header list comes near (Envoy refuses more than 100 by default, gRPC metadata is
limited to 8 KiB); a block of 1-byte indexed fields would otherwise cost a Python object per byte
(5 MB of them held 1.2 GB)."""
UNKNOWN = "<unknown>"


class MalformedBlock(ValueError):
    """A representation that breaks RFC 7541 (ends the block with an hpack.malformed finding)."""


def _load_hpack() -> Callable[[bytes], bytes]:
    global STATIC_TEXT, _decode_huffman, _HuffmanError
    if _decode_huffman is None:
        from hpack.exceptions import HPACKDecodingError
        from hpack.huffman_table import decode_huffman
        from hpack.table import HeaderTable

        _HuffmanError = HPACKDecodingError

        STATIC_TEXT = tuple((name.decode(), value.decode()) for name, value in HeaderTable.STATIC_TABLE)
        assert len(STATIC_TEXT) == STATIC_ENTRIES
        _decode_huffman = decode_huffman
    return _decode_huffman


class Header(NamedTuple):
    """One header field as it was on the wire (a NamedTuple: ~4x cheaper to make than a frozen
    dataclass, and a gRPC capture makes hundreds of thousands)."""

    name: str
    value: str
    span: tuple[int, int]
    representation: str
    """"indexed", "literal-indexed", "literal", "never-indexed"."""
    table_index: int = 0
    """The table index it referred to (0 when the name was a literal)."""
    known: bool = True
    """False when it referred to a dynamic-table entry from before the capture began."""


@dataclass(slots=True)
class DynamicTable:
    """The receiver's view of one direction's dynamic table."""

    max_size: int = DEFAULT_TABLE_SIZE
    size: int = 0
    entries: deque[tuple[str, str]] = field(default_factory=deque)
    complete: bool = True
    """False when the capture may have missed entries (it started mid-connection)."""
    setting: int | None = None
    """The SETTINGS_HEADER_TABLE_SIZE the receiver of these blocks advertised, when the capture
    showed it: a size update above it breaks RFC 7541 section 6.3 (a finding; the update is still
    followed, up to MAX_TABLE_SIZE, since the sender's later references count on it)."""

    def add(self, name: str, value: str) -> None:
        need = len(name.encode()) + len(value.encode()) + ENTRY_OVERHEAD
        self.entries.appendleft((name, value))
        self.size += need
        self._evict()

    def resize(self, size: int) -> None:
        self.max_size = min(size, MAX_TABLE_SIZE)
        self._evict()

    def _evict(self) -> None:
        while self.size > self.max_size and self.entries:
            name, value = self.entries.pop()
            self.size -= len(name.encode()) + len(value.encode()) + ENTRY_OVERHEAD

    def get(self, index: int) -> tuple[str, str] | None:
        """Entry `index` (1-based over static then dynamic), or None when unknown."""
        if 1 <= index <= STATIC_ENTRIES:
            if not STATIC_TEXT:
                _load_hpack()
            return STATIC_TEXT[index - 1]
        pos = index - STATIC_ENTRIES - 1
        if 0 <= pos < len(self.entries):
            return self.entries[pos]
        return None


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape") if raw.isascii() else raw.decode("latin-1")


def _integer(block: bytes, pos: int, prefix_bits: int) -> tuple[int, int]:
    """An HPACK integer (section 5.1) at `pos`; returns it and the position after it.

    By hand, not hpack's decode_integer: that one wants the rest of the block as a new bytes
    object, a copy per header (a third of all HPACK time on a gRPC capture).
    """
    mask = (1 << prefix_bits) - 1
    value = block[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    shift = 0
    while True:
        if pos >= len(block):
            raise MalformedBlock("integer runs past the block")
        b = block[pos]
        pos += 1
        value += (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 28:
            raise MalformedBlock("integer longer than 4 continuation bytes")


def _string(block: bytes, pos: int) -> tuple[str, int]:
    """A string literal (section 5.2) at `pos`; returns it and the position after it."""
    if pos >= len(block):
        raise MalformedBlock("string literal missing")
    huffman = bool(block[pos] & 0x80)
    length, start = _integer(block, pos, 7)
    end = start + length
    if end > len(block):
        raise MalformedBlock(f"string literal of {length} bytes runs past the block")
    raw = block[start:end]
    if not huffman:
        return _text(raw), end
    try:
        return _text(_load_hpack()(raw)), end
    except _HuffmanError as exc:
        raise MalformedBlock(str(exc)) from None


def decode_block(block: bytes, table: DynamicTable, base: int = 0) -> tuple[list[Header], list[Finding]]:
    """Decode one complete header block; spans are offset by `base`.

    Never raises: a malformed representation ends the block with an error finding, keeping the
    headers before it.
    """
    _load_hpack()
    headers: list[Header] = []
    findings: list[Finding] = []
    pos = 0
    expanded = 0
    while pos < len(block):
        start = pos
        first = block[pos]
        try:
            if first & 0x80:  # indexed header field (6.1)
                index, pos = _integer(block, pos, 7)
                if index == 0:
                    raise MalformedBlock("indexed header field with index 0")
                entry = table.get(index)
                if entry is None:
                    headers.append(
                        Header(UNKNOWN, UNKNOWN, (base + start, base + pos), "indexed", index, False)
                    )
                    findings.append(_unknown(index, base + start, base + pos, table))
                    continue
                name, value = entry
                headers.append(Header(name, value, (base + start, base + pos), "indexed", index))
            elif first & 0xE0 == 0x20:  # dynamic table size update (6.3)
                size, pos = _integer(block, pos, 5)
                if table.setting is not None and size > table.setting:
                    findings.append(
                        Finding(
                            "warn",
                            "hpack.table_size_over_setting",
                            f"dynamic table size update to {size} bytes, over the "
                            f"SETTINGS_HEADER_TABLE_SIZE of {table.setting} its receiver advertised",
                            (base + start, base + pos),
                        )
                    )
                table.resize(size)
                continue
            else:
                if first & 0x40:
                    prefix, kind = 6, "literal-indexed"
                elif first & 0x10:
                    prefix, kind = 4, "never-indexed"
                else:
                    prefix, kind = 4, "literal"
                index, pos = _integer(block, pos, prefix)
                known = True
                if index:
                    entry = table.get(index)
                    if entry is None:
                        known = False
                        findings.append(_unknown(index, base + start, base + pos, table))
                        name = UNKNOWN
                    else:
                        name = entry[0]
                else:
                    name, pos = _string(block, pos)
                value, pos = _string(block, pos)
                if kind == "literal-indexed":
                    table.add(name, value)
                headers.append(Header(name, value, (base + start, base + pos), kind, index, known))
        except (IndexError, ValueError) as exc:  # MalformedBlock is a ValueError
            findings.append(
                Finding("error", "hpack.malformed", f"header block: {exc}", (base + start, base + len(block)))
            )
            break
        expanded += len(headers[-1].name) + len(headers[-1].value) + ENTRY_OVERHEAD
        if expanded > MAX_HEADER_LIST_SIZE:
            what = f"expands past {MAX_HEADER_LIST_SIZE} bytes (MAX_HEADER_LIST_SIZE)"
            findings.append(
                _not_kept("error", "hpack.header_list_too_large", what, base + pos, base + len(block))
            )
        elif len(headers) == MAX_HEADERS and pos < len(block):
            what = f"holds more than {MAX_HEADERS} headers (MAX_HEADERS)"
            findings.append(_not_kept("warn", "http2.header_list_limit", what, base + pos, base + len(block)))
        else:
            continue
        try:
            _walk(block, pos, table)
        except (IndexError, ValueError) as exc:
            findings.append(
                Finding("error", "hpack.malformed", f"header block: {exc}", (base + pos, base + len(block)))
            )
        break
    return headers, findings


def _not_kept(severity: Severity, code: str, what: str, start: int, end: int) -> Finding:
    return Finding(severity, code, f"the header block {what}: the rest is not kept", (start, end))


_INDEXED_RUN = re.compile(rb"[\x81-\xfe]+")
"""Indexed header fields of one byte each (index 1 to 126), back to back."""


def _walk(block: bytes, pos: int, table: DynamicTable) -> None:
    """Go over the representations from `pos` to the end of the block without keeping any: only
    what they do to the dynamic table (additions, size updates), which later blocks rely on.
    Strings not added to the table are skipped undecoded, and a run of 1-byte indexed fields in
    one regex step: a block of them costs what its length costs in C, not a Python call a byte."""
    while pos < len(block):
        run = _INDEXED_RUN.match(block, pos)
        if run is not None:
            pos = run.end()
            continue
        first = block[pos]
        if first & 0x80:
            _, pos = _integer(block, pos, 7)
        elif first & 0xE0 == 0x20:
            size, pos = _integer(block, pos, 5)
            table.resize(size)
        elif first & 0x40:  # literal with incremental indexing: the table gets it
            index, pos = _integer(block, pos, 6)
            if index:
                entry = table.get(index)
                name = UNKNOWN if entry is None else entry[0]
            else:
                name, pos = _string(block, pos)
            value, pos = _string(block, pos)
            table.add(name, value)
        else:
            index, pos = _integer(block, pos, 4)
            if not index:
                pos = _skip_string(block, pos)
            pos = _skip_string(block, pos)


def _skip_string(block: bytes, pos: int) -> int:
    """The position after the string literal at `pos`, not decoded."""
    if pos >= len(block):
        raise MalformedBlock("string literal missing")
    length, start = _integer(block, pos, 7)
    if start + length > len(block):
        raise MalformedBlock(f"string literal of {length} bytes runs past the block")
    return start + length


def _unknown(index: int, start: int, end: int, table: DynamicTable) -> Finding:
    why = (
        "an entry added before the capture began"
        if not table.complete
        else "an index past the end of the dynamic table"
    )
    return Finding(
        "warn" if not table.complete else "error",
        "hpack.unknown_index",
        f"header refers to table index {index}: {why}",
        (start, end),
    )
