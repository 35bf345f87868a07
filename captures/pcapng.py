"""pcapng files: several sections and interfaces, EPB/SPB/OPB, per-interface time resolution.

The scan loop only steps from block to block and remembers where Enhanced Packet Blocks are; their
fields are then read by numpy for all of them at once. Rare blocks (IDB, SPB, OPB, options) are
parsed in Python.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from protoscope.decoders.api import Finding

from .columns import ByteColumns
from .errors import CaptureError
from .pcap import RELEASE_STEP
from .records import (
    OFFSET_CHUNK,
    TIME_MAX_NS,
    Interface,
    OffsetCollector,
    RecordTable,
    check_lengths,
    check_times,
    empty_records,
    empty_run_start,
    empty_table,
    keep_first,
    trailing_empty,
    truncated,
)

SHB = 0x0A0D0D0A
IDB = 0x00000001
OPB = 0x00000002
SPB = 0x00000003
EPB = 0x00000006
DSB = 0x0000000A
"""Decryption Secrets Block (pcapng draft section 4.7): key material for the packets after it."""
SECRETS_TLS_KEY_LOG = 0x544C534B
"""DSB secrets type "TLSK": NSS key log text (what editcap --inject-secrets tls,FILE writes)."""
BYTE_ORDER_MAGIC = 0x1A2B3C4D

OPT_END = 0
OPT_COMMENT = 1
IF_NAME = 2
IF_TSRESOL = 9
IF_TSOFFSET = 14

EPB_HEADER_LEN = 28  # block type, length, interface, ts high, ts low, caplen, origlen
DEFAULT_TSRESOL = 6
"""Microseconds: pcapng's resolution when an interface names none, and the fallback for one that
names a resolution no 64-bit tick count can use (see MAX_TSRESOL_DECIMAL)."""
MAX_TSRESOL_DECIMAL = 19
"""Finest decimal if_tsresol (10**-19 s) whose ticks a second still fits in 64 bits; from 10**-20 on,
2**64 ticks span less than a fifth of a second, so the option is corrupt. Such a resolution is
replaced by DEFAULT_TSRESOL with a finding (pcapng.bad_tsresol), as is a binary one past
MAX_TSRESOL_BINARY. (tshark 4.0 reads these files and shows times near 0, with no message.)"""
MAX_TSRESOL_BINARY = 63
"""Finest binary if_tsresol (2**-63 s) whose ticks a second fit in 64 bits; see MAX_TSRESOL_DECIMAL."""
MAX_TSOFFSET = TIME_MAX_NS // 1_000_000_000
"""Largest if_tsoffset in seconds (either sign) that our int64 nanosecond times can hold (the year
2262). A larger offset is corrupt: it is ignored, with a finding (pcapng.bad_tsoffset), so the
interface's times keep their spacing instead of all being held at the end of the range."""
FLOAT_NS_MAX = float(np.nextafter(float(TIME_MAX_NS), 0.0))
"""The largest float64 below 2**63: float times are clipped to it before becoming int64."""


@dataclass(slots=True)
class _Iface:
    linktype: int
    snaplen: int
    name: str = ""
    tsresol: int = DEFAULT_TSRESOL
    tsoffset: int = 0
    problems: list[Finding] = field(default_factory=list)
    """Findings about the interface's options, given to its first packet."""


@dataclass(slots=True)
class _Section:
    order: str
    first_iface: int
    start: int
    """File offset of the section header block."""
    epbs: OffsetCollector = field(default_factory=OffsetCollector)


@dataclass(slots=True)
class _Other:
    """A packet from an SPB or OPB, decoded in Python."""

    offset: int
    data_off: int
    caplen: int
    wirelen: int
    ticks: int
    iface: int
    comments: list[str]


def _options(buf: Any, start: int, end: int, order: str) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    pos = start
    while pos + 4 <= end:
        code, length = struct.unpack_from(order + "HH", buf, pos)
        if code == OPT_END:
            break
        value = bytes(buf[pos + 4 : min(pos + 4 + length, end)])
        out.append((code, value))
        pos += 4 + ((length + 3) & ~3)
    return out


def _text(value: bytes) -> str:
    return value.rstrip(b"\x00").decode("utf-8", "replace")


def _tsresol(value: int, n: int, problems: list[Finding]) -> int:
    """Interface `n`'s if_tsresol, or DEFAULT_TSRESOL (with a finding) for one no tick count can use."""
    binary, exponent = bool(value & 0x80), value & 0x7F
    if exponent <= (MAX_TSRESOL_BINARY if binary else MAX_TSRESOL_DECIMAL):
        return value
    unit = f"2**-{exponent}" if binary else f"10**-{exponent}"
    limit = "MAX_TSRESOL_BINARY = 63" if binary else "MAX_TSRESOL_DECIMAL = 19"
    problems.append(
        Finding(
            "warn",
            "pcapng.bad_tsresol",
            f"interface {n} declares a tick of {unit} s (if_tsresol 0x{value:02x}), finer than 64 bits "
            f"of ticks can use ({limit}): its times are read in microseconds, pcapng's default",
        )
    )
    return DEFAULT_TSRESOL


def _tsoffset(value: int, n: int, problems: list[Finding]) -> int:
    """Interface `n`'s if_tsoffset, or 0 (with a finding) for one past MAX_TSOFFSET."""
    if abs(value) <= MAX_TSOFFSET:
        return value
    problems.append(
        Finding(
            "warn",
            "pcapng.bad_tsoffset",
            f"interface {n} declares a time offset of {value} s (if_tsoffset), past the year 2262 "
            f"(MAX_TSOFFSET = {MAX_TSOFFSET}): it is ignored, so its times are the ticks alone",
        )
    )
    return 0


def _ticks_to_ns(ticks: npt.NDArray[np.uint64], iface: _Iface) -> npt.NDArray[np.int64]:
    """Timestamps in ticks of `iface`'s resolution as nanoseconds since the epoch, held within
    int64 (see TIME_MAX_NS) when a corrupt resolution or offset would take them past it."""
    res = iface.tsresol
    if res & 0x80:  # a power of two
        power = res & 0x7F
        exact = ticks.astype(np.float64) * (1e9 / 2.0**power)
        ns = np.clip(exact, 0.0, FLOAT_NS_MAX).astype(np.int64)
        ns[exact >= FLOAT_NS_MAX] = TIME_MAX_NS
    elif res <= 9:
        scale = 10 ** (9 - res)
        ns = np.where(ticks > TIME_MAX_NS // scale, TIME_MAX_NS, ticks.astype(np.int64) * scale)
    else:  # at most MAX_TSRESOL_DECIMAL: a read resolution past it was replaced
        ns = (ticks // np.uint64(10 ** (res - 9))).astype(np.int64)
    # Saturating addition of the offset (within +-MAX_TSOFFSET s, `_tsoffset`): each sum is held
    # within +-TIME_MAX_NS.
    offset = iface.tsoffset * 1_000_000_000
    if offset:
        ns = np.clip(ns, max(-TIME_MAX_NS, -TIME_MAX_NS - offset), min(TIME_MAX_NS, TIME_MAX_NS - offset))
        ns = ns + offset
    return ns.astype(np.int64, copy=False)


class PcapngReader:
    """Reads the packets of a pcapng file, from where the last read stopped (a RecordReader).

    What a later block needs of earlier ones is kept: the section it is in (byte order, first
    interface) and every interface declared so far (link type, if_tsresol, if_tsoffset), so a
    file whose writer adds an interface or a section later (dumpcap given a second `-i`) reads
    the same a part at a time as whole."""

    __slots__ = ("_bad_interface_said", "_times_said", "count", "ifaces", "pos", "section", "stopped")

    def __init__(self) -> None:
        self.ifaces: list[_Iface] = []
        self.section: _Section | None = None
        """The section the next block is in (None before the first section header)."""
        self.pos = 0
        """Where the next block starts."""
        self.count = 0
        self.stopped = False
        """Damage was found: nothing after it is read."""
        self._times_said = False
        self._bad_interface_said = False

    def read(self, buf: Any, cols: ByteColumns, final: bool = True) -> RecordTable:
        """The whole packet blocks from `self.pos` on (see RecordReader.read)."""
        first, size = self.count, len(buf)
        if self.stopped or (self.pos + 12 > size and not final):
            return self._table([])
        ifaces = self.ifaces
        section = self.section
        sections = [] if section is None else [_Section(section.order, section.first_iface, section.start)]
        section = sections[-1] if sections else None
        others: list[_Other] = []
        secrets: list[tuple[int, bytes]] = []
        findings: list[tuple[int, Finding]] = []
        head = struct.Struct((section.order if section else "<") + "II").unpack_from
        packets = 0
        pos = self.pos
        released = pos
        described = -1
        """The last block read here that describes others (a section or an interface)."""
        while pos + 12 <= size:
            if pos >= released + RELEASE_STEP:  # let go of the pages walked past (read again later)
                released = cols.release(released, pos)
            btype, blen = head(buf, pos)
            order = ""
            if btype == SHB:
                (bom,) = struct.unpack_from("<I", buf, pos + 8)
                order = "<" if bom == BYTE_ORDER_MAGIC else ">" if bom == 0x4D3C2B1A else ""
                if not order:
                    if section is None:
                        raise CaptureError("pcapng section header has a bad byte-order magic")
                    bad = Finding("error", "pcapng.bad_section", "bad byte-order magic")
                    findings.append((first + packets, bad))
                    self.stopped = True
                    break
                head = struct.Struct(order + "II").unpack_from
                btype, blen = head(buf, pos)
            elif section is None:
                raise CaptureError("pcapng file does not start with a section header block")
            if blen < 12 or blen % 4:
                why = f"block at offset {pos} has length {blen}"
                findings.append((first + packets, Finding("error", "pcapng.bad_block", why)))
                self.stopped = True
                break
            if pos + blen > size:  # cut short: the end of the file, or a block still being written
                if final:
                    findings.append(truncated(first + packets, size - pos, blen))
                break
            if order:
                section = _Section(order, len(ifaces), pos)
                sections.append(section)
                described = pos
            assert section is not None
            if btype == EPB:
                items = section.epbs.items
                items.append(pos)
                if len(items) >= OFFSET_CHUNK:
                    section.epbs.spill()
                packets += 1
            elif btype == IDB:
                linktype, _reserved, snaplen = struct.unpack_from(section.order + "HHI", buf, pos + 8)
                iface = _Iface(linktype, snaplen)
                for code, value in _options(buf, pos + 16, pos + blen - 4, section.order):
                    if code == IF_NAME:
                        iface.name = _text(value)
                    elif code == IF_TSRESOL and value:
                        iface.tsresol = _tsresol(value[0], len(ifaces), iface.problems)
                    elif code == IF_TSOFFSET and len(value) == 8:
                        (offset,) = struct.unpack(section.order + "q", value)
                        iface.tsoffset = _tsoffset(offset, len(ifaces), iface.problems)
                ifaces.append(iface)
                described = pos
            elif btype == DSB and blen >= 20:
                stype, slen = struct.unpack_from(section.order + "II", buf, pos + 8)
                secrets.append((stype, bytes(buf[pos + 16 : pos + 16 + min(slen, blen - 20)])))
            elif btype in (SPB, OPB):
                other = _other_packet(buf, pos, blen, btype, section, ifaces)
                if other is not None:
                    others.append(other)
                    packets += 1
            pos += blen
        if final and 0 < size - pos < 12:
            findings.append(truncated(first + packets, size - pos, 12))
        if sections:
            self.section = sections[-1]
        table, blocks = self._assemble(buf, cols, sections, others, findings, final)
        table.secrets = secrets
        if not final and not self.stopped:
            held = trailing_empty(table)
            # A run of empty packets at the end is read again next time (see trailing_empty),
            # unless a section or interface was declared after it starts: reading that again
            # would declare it twice.
            if held < len(table) and int(blocks[held]) > described:
                pos = int(blocks[held])
                table.comments = {i: c for i, c in table.comments.items() if i < first + held}
                keep_first(table, held)
        self.pos = pos
        self.count += len(table)
        return table

    def _table(self, findings: list[tuple[int, Finding]]) -> RecordTable:
        table = empty_table("pcapng", [Interface(i.linktype, i.name, i.snaplen) for i in self.ifaces])
        table.findings = findings
        return table

    def _assemble(
        self,
        buf: Any,
        cols: ByteColumns,
        sections: list[_Section],
        others: list[_Other],
        findings: list[tuple[int, Finding]],
        final: bool,
    ) -> tuple[RecordTable, npt.NDArray[np.int64]]:
        """The table of the packets read (EPBs of `sections`, and `others`), with their fields read
        by numpy; and each packet's block offset."""
        first, ifaces = self.count, self.ifaces
        block_off: list[npt.NDArray[np.int64]] = []
        data_off: list[npt.NDArray[np.int64]] = []
        caplen: list[npt.NDArray[np.uint32]] = []
        wirelen: list[npt.NDArray[np.uint32]] = []
        ticks: list[npt.NDArray[np.uint64]] = []
        iface: list[npt.NDArray[np.int64]] = []
        blen: list[npt.NDArray[np.uint32]] = []
        for section in sections:
            epb = section.epbs.array()
            u32 = section.order + "u4"
            block_off.append(epb)
            data_off.append(epb + EPB_HEADER_LEN)
            caplen.append(cols.read(epb + 20, u32))
            wirelen.append(cols.read(epb + 24, u32))
            hi = cols.read(epb + 12, u32).astype(np.uint64)
            ticks.append((hi << np.uint64(32)) | cols.read(epb + 16, u32).astype(np.uint64))
            iface.append(cols.read(epb + 8, u32).astype(np.int64) + section.first_iface)
            blen.append(cols.read(epb + 4, u32))
        if others:
            block_off.append(np.array([o.offset for o in others], np.int64))
            data_off.append(np.array([o.data_off for o in others], np.int64))
            caplen.append(np.array([o.caplen for o in others], np.uint32))
            wirelen.append(np.array([o.wirelen for o in others], np.uint32))
            ticks.append(np.array([o.ticks for o in others], np.uint64))
            iface.append(np.array([o.iface for o in others], np.int64))
            blen.append(np.zeros(len(others), np.uint32))  # options already parsed
        all_blocks = np.concatenate(block_off) if block_off else np.zeros(0, np.int64)
        order = np.argsort(all_blocks, kind="stable") if len(sections) > 1 or others else None

        def cat(parts: list[Any], dtype: Any) -> Any:
            arr = np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)
            return arr[order] if order is not None else arr

        blocks = cat(block_off, np.int64)
        t_data = cat(data_off, np.int64)
        t_cap = cat(caplen, np.uint32)
        t_wire = cat(wirelen, np.uint32)
        t_ticks = cat(ticks, np.uint64)
        t_iface = cat(iface, np.int64)
        t_blen = cat(blen, np.uint32)
        cut, _ = empty_run_start((t_cap == 0) & (t_wire == 0), 0)
        if cut is not None:  # zeros, not packets (see MAX_EMPTY_RUN): the table ends before them
            findings.append(empty_records(first + cut, int(blocks[cut]), buf))
            self.stopped = True
            blocks, t_data, t_cap, t_wire = blocks[:cut], t_data[:cut], t_cap[:cut], t_wire[:cut]
            t_ticks, t_iface, t_blen = t_ticks[:cut], t_iface[:cut], t_blen[:cut]

        bad_iface = np.flatnonzero(t_iface >= len(ifaces))
        if len(bad_iface):
            i = int(bad_iface[0])
            if not self._bad_interface_said:
                why = f"packet {first + i + 1} names an undeclared interface"
                findings.append((first + i, Finding("error", "pcapng.bad_interface", why)))
                self._bad_interface_said = True
            t_iface[t_iface >= len(ifaces)] = 0
            if not ifaces:
                ifaces.append(_Iface(linktype=1, snaplen=0))
        ts_ns = np.zeros(len(blocks), np.int64)
        for n, spec in enumerate(ifaces):
            sel = t_iface == n
            if sel.any():
                ts_ns[sel] = _ticks_to_ns(t_ticks[sel], spec)
                at = first + int(np.argmax(sel))
                findings.extend((at, f) for f in spec.problems)
                spec.problems.clear()  # said at the interface's first packet, once

        table = self._table(findings)
        table.data_off, table.caplen, table.wirelen = t_data, t_cap, t_wire
        table.ts_ns, table.iface = ts_ns, t_iface.astype(np.uint16)
        # A caplen larger than its block is corrupt: clamp it to the block and say so.
        room = t_blen.astype(np.int64) - (EPB_HEADER_LEN + 4)
        is_epb = t_blen > 0
        too_long = np.flatnonzero(is_epb & (t_cap.astype(np.int64) > room))
        for i in too_long.tolist():
            why = f"packet {first + i + 1} claims more bytes than its block"
            findings.append((first + i, Finding("error", "pcapng.bad_caplen", why)))
            t_cap[i] = max(0, int(room[i]))
        # Options (comments) sit after the padded packet data; only blocks longer than that have any.
        padded = (t_cap.astype(np.int64) + 3) & ~3
        with_opts = np.flatnonzero(is_epb & (room > padded))
        for i in with_opts.tolist():
            spec_order = _order_at(sections, int(blocks[i]))
            start = int(t_data[i]) + int(padded[i])
            end = int(blocks[i]) + int(t_blen[i]) - 4
            comments = [_text(v) for c, v in _options(buf, start, end, spec_order) if c == OPT_COMMENT]
            if comments:
                table.comments[first + i] = comments
        if others:
            by_block = {o.offset: o for o in others}
            for i, b in enumerate(blocks.tolist()):
                other = by_block.get(b)
                if other is not None and other.comments:
                    table.comments[first + i] = other.comments
        if check_lengths(table, len(buf), first, final):
            self.stopped = True
        if not self._times_said:
            self._times_said = check_times(table, first)
        return table, blocks


def scan_pcapng(buf: Any, cols: ByteColumns) -> RecordTable:
    """Index every complete packet block of a pcapng file held in `buf`."""
    return PcapngReader().read(buf, cols)


def _other_packet(
    buf: Any, pos: int, blen: int, btype: int, section: _Section, ifaces: list[_Iface]
) -> _Other | None:
    order = section.order
    end = pos + blen - 4
    if btype == SPB:
        (wirelen,) = struct.unpack_from(order + "I", buf, pos + 8)
        snap = ifaces[section.first_iface].snaplen if len(ifaces) > section.first_iface else 0
        caplen = min(wirelen, end - (pos + 12), snap or wirelen)
        return _Other(pos, pos + 12, caplen, wirelen, 0, section.first_iface, [])
    iface, _drops, hi, lo, caplen, wirelen = struct.unpack_from(order + "HHIIII", buf, pos + 8)
    data = pos + EPB_HEADER_LEN
    caplen = min(caplen, end - data)
    opts = _options(buf, data + ((caplen + 3) & ~3), end, order)
    comments = [_text(v) for c, v in opts if c == OPT_COMMENT]
    return _Other(pos, data, caplen, wirelen, (hi << 32) | lo, section.first_iface + iface, comments)


def _order_at(sections: list[_Section], block: int) -> str:
    """Byte order of the section a block lies in (the last section starting before it)."""
    starts = [s.start for s in sections]
    return sections[max(0, bisect_right(starts, block) - 1)].order
