"""A seeded soak: mutants of ten captures through every report (issue 11, item 6).

Each mutant is made by a mutator that knows the capture formats (pcap, pcapng, NetXRay, gzip):
bit flips in packet data and in headers, boundary values written into packet data, truncation,
huge record and block lengths, shuffled records, changed link types, and combinations of these.
Every mutant is written under pytest's tmp_path and run in a subprocess of its own (this module
run as a script: the driver) that runs every report in JSON and text and `--export mermaid`
through `protoscope.inspector.cli.main`, one after another, under a 1 GiB address-space limit and
a 60 s alarm per report. A run passes when each report exits 0 with nothing on stderr, or 2 with
one line on stderr; no internal error, traceback, signal death, timeout, out-of-memory, JSON that
does not parse, Mermaid line that is not one, or decoder exception turned into a finding.

The seed is fixed (SEED); PROTOSCOPE_SOAK_SEED and PROTOSCOPE_SOAK_COUNT run other seeds and more
mutants by hand, PROTOSCOPE_SOAK_JOBS sets how many run at once. Mutants that fail are kept in
tmp_path (the failure names them and the command that replays them); inputs that once failed are
kept in soak_cases/ and run every time.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import os
import queue
import random
import re
import signal
import struct
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLES, public_capture
from tests.forked import run_forked

SEED = 20_241_106
"""The seed CI runs; every mutant's own generator is seeded from it and the mutant's number."""
COUNT = 300
"""Mutants CI runs: ~90 s on this machine's two cores (`test_soak`), with the originals and the
regression cases ~100 s."""
JOBS = 2
TIMEOUT_S = 60
"""Longest a single report may take on a mutant."""
MEMORY_LIMIT = 1 << 30
"""Address space of the process that runs the reports. A normal run of every report on these
captures peaks at ~155 MiB of address space (VmPeak) and ~42 MiB resident, so RLIMIT_AS (which
also counts the capture's mmap and numpy's reservations) leaves room and is the strictest measure."""
CASES = Path(__file__).parent / "soak_cases"
CASE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".gz")

REPORTS = ("summary", "flows", "packets", "findings", "calls", "streams", "sessions")
RUNS: tuple[tuple[str, ...], ...] = (
    *((("--report", r, "--format", f)) for r in REPORTS for f in ("json", "text")),
    ("--export", "mermaid"),
)
HIDDEN_EXCEPTION = re.compile(r"(^decoder\.sniff_exception$|\.exception$|\.bad_result$)")
"""Finding codes the session gives a decoder that raised: an internal error kept out of sight."""
MERMAID_LINE = re.compile(r"sequenceDiagram|    (participant P\d+ as .+|P\d+->>P\d+: .+|Note over P\d+: .+)")
"""Every line `--export mermaid` may write: capture text must not break out of its line."""


# -- capture layouts: where records, length fields and link types are -----------------------


@dataclass(frozen=True, slots=True)
class Field:
    """An unsigned integer field of a capture's framing."""

    offset: int
    size: int
    order: str


@dataclass(slots=True)
class Record:
    """A pcap record, a pcapng block or a NetXRay record."""

    start: int
    end: int
    data: tuple[int, int]
    """The packet bytes (empty for blocks without a packet)."""
    headers: list[tuple[int, int]]
    """The record's other bytes: its header, a block's trailer and options."""
    lengths: list[Field] = field(default_factory=list)
    linktypes: list[Field] = field(default_factory=list)
    caplen: Field | None = None
    """The captured length of a record that holds a packet and nothing after it but padding
    and options (pcap, EPB, NetXRay): such a packet can be cut short as a snap length does."""
    epb: bool = False


@dataclass(slots=True)
class Layout:
    """A capture split into a file header and records, as its format defines them."""

    header: tuple[int, int]
    fixed: int
    """Leading records that stay first when records are shuffled (pcapng's first SHB)."""
    records: list[Record]
    lengths: list[Field] = field(default_factory=list)
    linktypes: list[Field] = field(default_factory=list)
    records_end: Field | None = None
    """Where the file header says the records end (NetXRay), kept true when they move."""

    def header_spans(self) -> list[tuple[int, int]]:
        spans = [self.header] if self.header[1] > self.header[0] else []
        return spans + [h for r in self.records for h in r.headers if h[1] > h[0]]

    def all_lengths(self) -> list[Field]:
        return self.lengths + [f for r in self.records for f in r.lengths]

    def all_linktypes(self) -> list[Field]:
        return self.linktypes + [f for r in self.records for f in r.linktypes]


PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 16),
    b"\xa1\xb2\xc3\xd4": (">", 16),
    b"\x4d\x3c\xb2\xa1": ("<", 16),
    b"\xa1\xb2\x3c\x4d": (">", 16),
    b"\x34\xcd\xb2\xa1": ("<", 24),
    b"\xa1\xb2\xcd\x34": (">", 24),
}


def pcap_layout(data: bytes) -> Layout:
    order, rec_len = PCAP_MAGICS[data[:4]]
    records = []
    pos = 24
    while pos + rec_len <= len(data):
        (caplen,) = struct.unpack_from(order + "I", data, pos + 8)
        end = pos + rec_len + caplen
        if end > len(data):
            break
        lengths = [Field(pos + 8, 4, order), Field(pos + 12, 4, order)]
        records.append(
            Record(pos, end, (pos + rec_len, end), [(pos, pos + rec_len)], lengths, caplen=lengths[0])
        )
        pos = end
    return Layout((0, 24), 0, records, [Field(16, 4, order)], [Field(20, 4, order)])


def pcapng_layout(data: bytes) -> Layout:
    records = []
    order = "<"
    pos = 0
    while pos + 12 <= len(data):
        if data[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":
            order = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        btype, blen = struct.unpack_from(order + "II", data, pos)
        end = pos + blen
        if blen < 12 or end > len(data):
            break
        rec = Record(pos, end, (end, end), [(pos, end)], [Field(pos + 4, 4, order), Field(end - 4, 4, order)])
        if btype == 0x0A0D0D0A:
            rec.lengths.append(Field(pos + 16, 8, order))
        elif btype == 1:  # Interface Description Block
            rec.linktypes.append(Field(pos + 8, 2, order))
            rec.lengths.append(Field(pos + 12, 4, order))
        elif btype == 6:  # Enhanced Packet Block
            (caplen,) = struct.unpack_from(order + "I", data, pos + 20)
            rec.data = (pos + 28, pos + 28 + caplen)
            rec.headers = [(pos, pos + 28), (pos + 28 + caplen, end)]
            rec.lengths += [Field(pos + 20, 4, order), Field(pos + 24, 4, order)]
            rec.caplen, rec.epb = rec.lengths[-2], True
        elif btype == 3:  # Simple Packet Block
            rec.data = (pos + 12, end - 4)
            rec.headers = [(pos, pos + 12), (end - 4, end)]
            rec.lengths.append(Field(pos + 8, 4, order))
        records.append(rec)
        pos = end
    return Layout((0, 0), 1, records)


def netxray_layout(data: bytes) -> Layout:
    _n, start, end_offset = struct.unpack_from("<I4xII", data, 16)
    end = min(end_offset or len(data), len(data))
    records = []
    pos = start
    while pos + 40 <= end:
        (incl,) = struct.unpack_from("<H", data, pos + 10)
        rec_end = pos + 40 + incl
        if rec_end > end:
            break
        lengths = [Field(pos + 8, 2, "<"), Field(pos + 10, 2, "<")]
        records.append(
            Record(pos, rec_end, (pos + 40, rec_end), [(pos, pos + 40)], lengths, caplen=lengths[1])
        )
        pos = rec_end
    file_lengths = [Field(16, 4, "<"), Field(24, 4, "<"), Field(28, 4, "<")]
    return Layout((0, start), 0, records, file_lengths, [Field(0x30, 1, "<")], file_lengths[2])


def layout(data: bytes) -> Layout:
    if data[:4] in PCAP_MAGICS:
        return pcap_layout(data)
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        return pcapng_layout(data)
    if data[:4] == b"XCP\x00":
        return netxray_layout(data)
    raise ValueError(f"not a capture this soak knows: {data[:4].hex()}")


# -- the ten captures ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Base:
    """A capture the soak mutates: its bytes (uncompressed) and whether mutants are gzipped."""

    name: str
    data: bytes
    suffix: str
    gzipped: bool = False


def pcap_variant(data: bytes, magic: bytes) -> bytes:
    """A little-endian microsecond pcap rewritten with another magic: the other byte order,
    nanosecond fractions, or Kuznetzov's modified records (8 more header bytes, zero here)."""
    order, rec_len = PCAP_MAGICS[magic]
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    out = io.BytesIO()
    out.write(magic + struct.pack(order + "HHiIII", *struct.unpack_from("<HHiIII", data, 4)))
    for rec in pcap_layout(data).records:
        sec, frac, caplen, wirelen = struct.unpack_from("<IIII", data, rec.start)
        out.write(struct.pack(order + "IIII", sec, frac * 1000 if nano else frac, caplen, wirelen))
        out.write(bytes(rec_len - 16))
        out.write(data[rec.data[0] : rec.data[1]])
    return out.getvalue()


def load_bases() -> list[Base]:
    def public(name: str) -> bytes:
        return public_capture(name).read_bytes()

    turn = (SAMPLES / "webrtc-turn.pcap").read_bytes()
    return [
        Base("grpc-demo", (SAMPLES / "grpc-demo.pcap").read_bytes(), ".pcap"),
        Base("grpc-edge", (SAMPLES / "grpc-edge.pcap").read_bytes(), ".pcap"),
        Base("http2-continuation", public("suricata-verify--http2-continuation.pcap"), ".pcap"),
        Base("webrtc-turn.be-ns", pcap_variant(turn, b"\xa1\xb2\x3c\x4d"), ".pcap"),
        Base("stun.5-interfaces", public("ndpi--stun.pcap"), ".pcapng"),
        Base(
            "dtls13-cid.modified",
            pcap_variant(public("zeek--dtls13-cid.pcap"), b"\x34\xcd\xb2\xa1"),
            ".pcap",
        ),
        Base("rtp.comments", public("ndpi--rtp.pcapng"), ".pcapng"),
        Base("sip-rtp-g711", public("wswiki--sip-rtp-g711.pcap"), ".pcap"),
        Base("netxray", public("wswiki--RTP-only_PCMU_2-packets.cap"), ".cap"),
        Base(
            "grpc-web-http1.gz",
            public("wswiki--client-grpc-web-text-http1-send-two-unary.pcapng"),
            ".pcapng.gz",
            gzipped=True,
        ),
    ]


# -- the mutator -----------------------------------------------------------------------------

LINKTYPES = (0, 1, 9, 12, 101, 105, 108, 113, 127, 147, 228, 229, 276, 0x7FFF, 0xFFFF)
"""Link types the fast path reads, ones it does not, and nonsense."""
HUGE = (0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0x40001, 0x40000, 0x1000000, 0x10000, 0xFFFF)
VALUES = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)
"""Boundary values written over packet data (where decoders read lengths and counts)."""


def _put(buf: bytearray, f: Field, value: int) -> None:
    if f.offset + f.size <= len(buf):
        fmt = {1: "B", 2: "H", 4: "I", 8: "Q"}[f.size]
        struct.pack_into(f.order + fmt, buf, f.offset, value & ((1 << (8 * f.size)) - 1))


def _get(buf: bytearray, f: Field) -> int:
    fmt = {1: "B", 2: "H", 4: "I", 8: "Q"}[f.size]
    return int(struct.unpack_from(f.order + fmt, buf, f.offset)[0])


def _flip(rng: random.Random, buf: bytearray, spans: Sequence[tuple[int, int]], count: int) -> None:
    spans = [s for s in spans if s[1] > s[0]]
    for _ in range(count if spans else 0):
        lo, hi = rng.choice(spans)
        pos = rng.randrange(lo, hi)
        buf[pos] ^= 1 << rng.randrange(8)


def flip_data(rng: random.Random, buf: bytearray, lay: Layout) -> str:
    count = rng.choice((1, 1, 2, 3, 8, 32, 128, 512))
    _flip(rng, buf, [r.data for r in lay.records], count)
    return f"flip_data({count})"


def splice(rng: random.Random, buf: bytearray, lay: Layout) -> str:
    """Bytes of one packet written over another's: one protocol's framing inside another's."""
    spans = [r.data for r in lay.records if r.data[1] > r.data[0]]
    count = rng.choice((1, 2, 8))
    for _ in range(count if spans else 0):
        (a, b), (c, d) = rng.choice(spans), rng.choice(spans)
        size = rng.randrange(1, min(b - a, d - c) + 1)
        src, dst = rng.randrange(a, b - size + 1), rng.randrange(c, d - size + 1)
        buf[dst : dst + size] = buf[src : src + size]
    return f"splice({count})"


def flip_header(rng: random.Random, buf: bytearray, lay: Layout) -> str:
    count = rng.choice((1, 1, 2, 3))
    _flip(rng, buf, lay.header_spans(), count)
    return f"flip_header({count})"


def data_values(rng: random.Random, buf: bytearray, lay: Layout) -> str:
    spans = [r.data for r in lay.records if r.data[1] - r.data[0] >= 4]
    count = rng.choice((1, 2, 4, 16, 64))
    for _ in range(count if spans else 0):
        lo, hi = rng.choice(spans)
        size = rng.choice((1, 2, 4))
        _put(buf, Field(rng.randrange(lo, hi - size + 1), size, ">"), rng.choice(VALUES))
    return f"data_values({count})"


def huge_length(rng: random.Random, buf: bytearray, lay: Layout) -> str:
    fields = lay.all_lengths()
    count = rng.choice((1, 1, 1, 2, 5))
    for _ in range(count if fields else 0):
        f = rng.choice(fields)
        current = _get(buf, f)
        value = rng.choice((*HUGE, current + 1, current + rng.randrange(2, 4096), current * 2, 0))
        _put(buf, f, value)
    return f"huge_length({count})"


def linktype(rng: random.Random, buf: bytearray, lay: Layout) -> str:
    fields = lay.all_linktypes()
    if fields:
        f = rng.choice(fields)
        value = rng.choice((*LINKTYPES, rng.getrandbits(8 * f.size)))
        _put(buf, f, value)
        return f"linktype@{f.offset}={value}"
    return "linktype(none)"


def snap(rng: random.Random, pieces: list[bytes], lay: Layout) -> str:
    """Packets cut short inside their records, as a snap length cuts them (caplen < origlen):
    headers and payloads that end early, TCP segments that carry part of their bytes."""
    cuttable = [i for i, r in enumerate(lay.records) if r.caplen is not None and r.data[1] > r.data[0]]
    count = rng.choice((1, 4, 32, len(cuttable)))
    for i in rng.sample(cuttable, min(count, len(cuttable))):
        rec, piece = lay.records[i], bytearray(pieces[i])
        at, end = rec.data[0] - rec.start, rec.data[1] - rec.start
        keep = rng.randrange(0, end - at)
        assert rec.caplen is not None
        _put(piece, Field(rec.caplen.offset - rec.start, rec.caplen.size, rec.caplen.order), keep)
        if rec.epb:  # the data is padded to 4 bytes; options and the trailing length follow
            options = piece[end + -(end - at) % 4 : -4]
            piece = piece[:at] + piece[at : at + keep] + bytes(-keep % 4) + options + bytes(4)
            for offset in (4, len(piece) - 4):
                struct.pack_into(rec.caplen.order + "I", piece, offset, len(piece))
        else:
            del piece[at + keep :]
        pieces[i] = bytes(piece)
    return f"snap({count})"


def shuffle(rng: random.Random, pieces: list[bytes], lay: Layout) -> str:
    """Records reordered, swapped, repeated or dropped; the file header stays first."""
    fixed, rest = pieces[: lay.fixed], pieces[lay.fixed :]
    mode = rng.choice(("all", "all", "swap", "repeat", "drop"))
    if mode == "all":
        rng.shuffle(rest)
    elif rest:
        for _ in range(rng.choice((1, 2, 5))):
            i, j = rng.randrange(len(rest)), rng.randrange(len(rest))
            if mode == "swap":
                rest[i], rest[j] = rest[j], rest[i]
            elif mode == "repeat":
                rest.insert(j, rest[i])
            elif len(rest) > 1:
                del rest[i]
    pieces[:] = fixed + rest
    return f"shuffle({mode})"


def truncate(rng: random.Random, buf: bytearray, lay: Layout) -> int:
    if lay.records and rng.random() < 0.5:  # near a record boundary, where readers decide
        rec = rng.choice(lay.records)
        return max(1, min(len(buf), rec.start + rng.randrange(-4, 48)))
    return rng.randrange(1, len(buf))


IN_PLACE: tuple[Callable[[random.Random, bytearray, Layout], str], ...] = (
    flip_data,
    flip_header,
    data_values,
    splice,
    huge_length,
    linktype,
)
MOVING: tuple[Callable[[random.Random, list[bytes], Layout], str], ...] = (snap, shuffle)
"""Mutations that change the records' sizes or order: they work on the records' bytes."""
KINDS = (*(fn.__name__ for fn in IN_PLACE), *(fn.__name__ for fn in MOVING), "truncate")


def mutate_capture(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """One mutant of an uncompressed capture and the name of what was done to it."""
    lay = layout(data)
    buf = bytearray(data)
    kinds = [rng.choice(KINDS)] if rng.random() < 0.7 else rng.sample(KINDS, rng.choice((2, 3, 4)))
    done = [fn(rng, buf, lay) for fn in IN_PLACE if fn.__name__ in kinds]
    # The moving ones come after the in-place ones (whose offsets the layout gives), and
    # truncation last.
    moving = [fn for fn in MOVING if fn.__name__ in kinds]
    if moving and lay.records:
        pieces = [bytes(buf[r.start : r.end]) for r in lay.records]
        done += [fn(rng, pieces, lay) for fn in moving]
        buf[:] = buf[: lay.records[0].start] + b"".join(pieces) + buf[lay.records[-1].end :]
        if lay.records_end is not None:
            _put(buf, lay.records_end, lay.records[0].start + sum(map(len, pieces)))
    if "truncate" in kinds:
        cut = truncate(rng, buf, lay)
        del buf[cut:]
        done.append(f"truncate@{cut}")
    return bytes(buf), "+".join(done)


def mutate(rng: random.Random, base: Base) -> tuple[bytes, str]:
    """A mutant of `base`: for gzip, of the capture inside or of the compressed bytes."""
    if not base.gzipped:
        return mutate_capture(rng, base.data)
    inner, name = mutate_capture(rng, base.data) if rng.random() < 0.6 else (base.data, "")
    packed = bytearray(gzip.compress(inner, mtime=0))
    if name and rng.random() < 0.7:
        return bytes(packed), f"gzip({name})"
    # The gzip framing: a 10-byte header, the deflate stream, CRC32 and ISIZE.
    outer = rng.choice(("flip_deflate", "flip_header", "trailer", "truncate"))
    if outer == "flip_deflate":
        _flip(rng, packed, [(10, len(packed) - 8)], rng.choice((1, 2, 8)))
    elif outer == "flip_header":
        _flip(rng, packed, [(0, 10)], 1)
    elif outer == "trailer":
        _put(packed, Field(len(packed) - rng.choice((4, 8)), 4, "<"), rng.choice(HUGE))
    else:
        del packed[rng.randrange(1, len(packed)) :]
    return bytes(packed), f"{outer}(gzip({name or 'original'}))"


# -- the driver (runs in a process of its own per input) -----------------------------------


def drive(path: str) -> None:
    """Run every report on `path` in this process, one JSON line per report on stdout."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    from protoscope.inspector.cli import main

    report = sys.stdout
    for argv in RUNS:
        report.write(json.dumps({"start": argv}) + "\n")
        report.flush()
        out, err = io.StringIO(), io.StringIO()
        sys.stdout, sys.stderr = out, err
        signal.setitimer(signal.ITIMER_REAL, TIMEOUT_S)  # SIGALRM's default action ends us
        try:
            code = main([path, *argv])
        except BaseException as exc:  # main lets SystemExit and the like through
            err.write(f"raised {type(exc).__name__}: {exc}\n")
            code = -1
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            sys.stdout, sys.stderr = report, sys.__stderr__
        text = out.getvalue()
        done: dict[str, object] = {"code": code, "stderr": err.getvalue()}
        if code == 0 and "mermaid" in argv:
            lines = text.splitlines()
            wrong = [line for line in lines if not MERMAID_LINE.fullmatch(line)]
            if wrong or lines[:1] != ["sequenceDiagram"]:
                done["bad_output"] = f"not Mermaid: {(wrong or lines)[:1]!r}"
        if code == 0 and "json" in argv:
            try:
                parsed = json.loads(text)
            except ValueError as exc:
                done["bad_json"] = str(exc)
            else:
                if "findings" in argv:
                    rows = [f for f in parsed if isinstance(f, dict)]
                    hidden = {
                        f"{f['code']}: {f.get('message')}" for f in rows if HIDDEN_EXCEPTION.search(f["code"])
                    }
                    done["hidden"] = sorted(hidden)[:3]
        report.write(json.dumps(done) + "\n")
        report.flush()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report.write(json.dumps({"maxrss_kib": peak}) + "\n")


PRELOAD = (
    "protoscope.inspector.cli",
    "protoscope.inspector.session",
    "protoscope.inspector.bulk_calls",
    "protoscope.inspector.report.output",
    "protoscope.inspector.report.text",
    "protoscope.inspector.report.ladder",
    "gzip",
    "hpack",
)
"""What the fork server imports before it forks, so each driver does not import it again."""
HARD_LIMIT_S = TIMEOUT_S * len(RUNS) + 60
"""Longest a driver may live: every report's alarm plus start-up, in case the alarm is lost."""


def serve() -> None:
    """A fork server: import the engine once, then for each `path<TAB>out<TAB>err` line on
    stdin fork a process that runs the driver on `path` (its stdout and stderr going to `out` and
    `err`), wait for it, and answer its exit status (null when it was killed for running past
    HARD_LIMIT_S) as a JSON line. Starting Python and importing the engine costs ~0.7 s, more
    than the fifteen reports cost on most of these captures (~0.3 s)."""
    import importlib

    from protoscope.decoders.registry import load_registry

    for module in PRELOAD:
        importlib.import_module(module)
    load_registry()  # imports every decoder and analysis
    for line in sys.stdin:
        path, out, err = line.rstrip("\n").split("\t")
        answer = run_forked(functools.partial(drive, path), Path(out), Path(err), HARD_LIMIT_S)
        sys.stdout.write(json.dumps({"status": answer}) + "\n")
        sys.stdout.flush()


class Server:
    """A fork server (`serve`) in a subprocess, started again if it dies."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None

    def run(self, path: Path, out: Path, err: Path) -> tuple[bool, int | None]:
        """Run the driver on `path`: (whether the server answered, the driver's exit status)."""
        if self._proc is None or self._proc.poll() is not None:
            env = {k: v for k, v in os.environ.items() if k != "PROTOSCOPE_DEBUG"}
            command = [sys.executable, "-m", "tests.inspector.test_soak", "--serve"]
            pipe = subprocess.PIPE
            self._proc = subprocess.Popen(command, cwd=ROOT, env=env, stdin=pipe, stdout=pipe, text=True)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(f"{path}\t{out}\t{err}\n")
        self._proc.stdin.flush()
        answer = self._proc.stdout.readline()
        if not answer:
            self._proc.wait()
            return False, None
        status = json.loads(answer)["status"]
        return True, None if status is None else int(status)

    def close(self) -> None:
        if self._proc is not None and self._proc.stdin is not None:
            self._proc.stdin.close()
            self._proc.wait()


# -- running and judging ---------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    """What went wrong with one input, if anything."""

    path: Path
    name: str
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    """(kind, the report's arguments, detail)."""
    codes: Counter[int] = field(default_factory=Counter)
    maxrss_kib: int = 0

    def describe(self) -> str:
        """Each problem once, with the reports it happened in and the command that replays it."""
        grouped: dict[tuple[str, str], list[str]] = {}
        for kind, argv, detail in self.problems:
            grouped.setdefault((kind, detail.strip()[:300]), []).append(argv)
        lines = [f"{self.path} ({self.name}):"]
        for (kind, detail), argvs in grouped.items():
            lines.append(f"  {kind} in {len(argvs)} of {len(RUNS)} runs: {detail}")
            lines.append(f"    replay: PROTOSCOPE_DEBUG=1 .venv/bin/protoscope {self.path} {argvs[0]}")
        return "\n".join(lines)


def judge(server: Server, path: Path, name: str, work: Path) -> Outcome:
    """Run the driver on `path` and check every report's ending."""
    outcome = Outcome(path, name)
    out, err = work / f"{path.name}.out", work / f"{path.name}.err"
    answered, status = server.run(path, out, err)
    stdout = out.read_text(errors="replace") if out.exists() else ""
    stderr = err.read_text(errors="replace") if err.exists() else ""
    argv = "(driver start-up)"
    finished = True
    for line in stdout.splitlines():
        try:
            item = json.loads(line)
        except ValueError:  # something wrote to the process's stdout around sys.stdout
            outcome.problems.append(("stray output", argv, line))
            continue
        if "start" in item:
            argv, finished = " ".join(item["start"]), False
        elif "maxrss_kib" in item:
            outcome.maxrss_kib = int(item["maxrss_kib"])
        else:
            finished = True
            _check(outcome, argv, item)
    if not answered:
        outcome.problems.append(("fork server died", argv, stderr))
    elif status != 0 or not finished:
        if status is None or status == -signal.SIGALRM:  # the hard limit or a report's alarm
            kind = "timeout"
        elif status < 0:
            kind = "signal"
        else:
            kind = "driver exit"
        outcome.problems.append((kind, argv, f"exit status {status}; {stderr.strip()[-300:]}"))
    elif stderr:
        outcome.problems.append(("stray output", argv, f"on the process's stderr: {stderr}"))
    if not outcome.problems:
        out.unlink(missing_ok=True)
        err.unlink(missing_ok=True)
    return outcome


def _check(outcome: Outcome, argv: str, item: dict[str, object]) -> None:
    code = int(str(item["code"]))
    err = str(item["stderr"])
    lines = err.splitlines()
    outcome.codes[code] += 1
    problems = outcome.problems
    if "Traceback" in err:
        problems.append(("traceback", argv, err))
    elif "internal error" in err:
        problems.append(("internal error", argv, err))
    elif "out of memory" in err or "MemoryError" in err:
        problems.append(("memory limit", argv, err))
    elif code not in (0, 2):
        problems.append(("exit code", argv, f"exit {code}: {err}"))
    elif code == 2 and (len(lines) != 1 or not lines[0].startswith("protoscope: ")):
        problems.append(("stderr", argv, f"exit 2 with {len(lines)} lines on stderr: {err}"))
    elif code == 0 and err:
        problems.append(("stderr", argv, f"exit 0 with stderr: {err}"))
    if item.get("bad_json"):
        problems.append(("bad json", argv, str(item["bad_json"])))
    if item.get("bad_output"):
        problems.append(("bad output", argv, str(item["bad_output"])))
    if item.get("hidden"):
        # The session caught it (no traceback to replay): the finding names the exception.
        problems.append(("decoder exception", argv, f"findings {item['hidden']}"))


def run_all(inputs: list[tuple[Path, str]], work: Path) -> list[Outcome]:
    """Judge every input, PROTOSCOPE_SOAK_JOBS (default JOBS) at a time, each job with its own
    fork server."""
    jobs = max(1, int(os.environ.get("PROTOSCOPE_SOAK_JOBS", JOBS)))
    servers: queue.Queue[Server] = queue.Queue()
    for _ in range(jobs):
        servers.put(Server())

    def one(item: tuple[Path, str]) -> Outcome:
        server = servers.get()
        try:
            return judge(server, item[0], item[1], work)
        finally:
            servers.put(server)

    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            return list(pool.map(one, inputs))
    finally:
        while not servers.empty():
            servers.get().close()


def _report(outcomes: list[Outcome], seed: int | None) -> None:
    failed = [o for o in outcomes if o.problems]
    kinds = Counter(kind for o in failed for kind in {k for k, _argv, _detail in o.problems})
    codes: Counter[int] = Counter()
    for o in outcomes:
        codes.update(o.codes)
    peak = max((o.maxrss_kib for o in outcomes), default=0)
    where = f" (seed {seed})" if seed is not None else ""
    print(
        f"soak{where}: {len(outcomes)} inputs, {len(failed)} failed {dict(kinds)}; "
        f"report exits {dict(sorted(codes.items()))}; peak RSS {peak // 1024} MiB"
    )
    for o in outcomes:
        if not o.problems and o.path.parent != CASES:
            o.path.unlink(missing_ok=True)
    assert not failed, f"{len(failed)} of {len(outcomes)} inputs failed{where}:\n" + (
        "\n".join(o.describe() for o in failed)
    )


def soak_seed() -> int:
    return int(os.environ.get("PROTOSCOPE_SOAK_SEED", SEED))


def test_soak(tmp_path: Path) -> None:
    """COUNT mutants of the ten captures, round robin, through every report."""
    seed = soak_seed()
    count = int(os.environ.get("PROTOSCOPE_SOAK_COUNT", COUNT))
    bases = load_bases()
    inputs = []
    for i in range(count):
        base = bases[i % len(bases)]
        data, name = mutate(random.Random(f"{seed}:{i}"), base)
        path = tmp_path / f"soak-{seed}-{i:05d}-{base.name}{base.suffix}"
        path.write_bytes(data)
        inputs.append((path, f"{base.name}: {name}"))
    _report(run_all(inputs, tmp_path), seed)


def test_soak_originals(tmp_path: Path) -> None:
    """The ten captures themselves pass the same checks (else a mutant's failure means little)."""
    inputs = []
    for base in load_bases():
        path = tmp_path / f"original-{base.name}{base.suffix}"
        path.write_bytes(gzip.compress(base.data, mtime=0) if base.gzipped else base.data)
        inputs.append((path, f"{base.name}: original"))
    _report(run_all(inputs, tmp_path), None)


def regression_cases() -> list[Path]:
    return sorted(p for p in CASES.iterdir() if p.name.endswith(CASE_SUFFIXES)) if CASES.is_dir() else []


@pytest.mark.parametrize("case", regression_cases(), ids=lambda p: p.name)
def test_soak_case(case: Path, tmp_path: Path) -> None:
    """Inputs that once failed the soak (soak_cases/README.md says what each broke)."""
    _report(run_all([(case, "regression case")], tmp_path), None)


def test_mutator_is_deterministic() -> None:
    """The same seed makes the same mutant, so a failure's seed and number replay it."""
    bases = load_bases()
    for i in range(20):
        base = bases[i % len(bases)]
        assert mutate(random.Random(f"1:{i}"), base) == mutate(random.Random(f"1:{i}"), base)


def test_snap_keeps_the_framing() -> None:
    """Packets cut short by `snap` leave a file whose records all still parse."""
    for base in load_bases():
        lay = layout(base.data)
        pieces = [base.data[r.start : r.end] for r in lay.records]
        snap(random.Random(0), pieces, lay)
        cut = base.data[: lay.records[0].start] + b"".join(pieces)
        again = layout(cut)
        assert len(again.records) == len(lay.records), base.name
        assert again.records[-1].end == len(cut), base.name


def test_layouts_cover_every_record() -> None:
    """The mutator's own reading of the formats finds every record of the ten captures."""
    for base in load_bases():
        lay = layout(base.data)
        assert lay.records, base.name
        assert lay.records[-1].end == len(base.data), base.name


if __name__ == "__main__":  # the fork server, or the driver on one file (to replay one by hand)
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        drive(sys.argv[1])
