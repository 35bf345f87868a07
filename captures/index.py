"""The columnar packet index: records, L2-L4 columns and flows, with bytes read on demand.

No Python object is kept per packet: every per-packet fact is a numpy column (about 50 bytes a
packet in all). Frame bytes stay in the memory-mapped file until asked for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from protoscope.decoders.api import Finding

from . import fastpath
from . import linktypes as lt
from .columns import ByteColumns
from .flows import Flow, FlowColumns, build
from .fragments import Reassembler
from .memory import trim_heap
from .net import Dissection, Tunnel, dissect, transport
from .records import RecordTable
from .source import CaptureFile, open_capture


@dataclass(slots=True)
class PacketIndex:
    """Everything the pipeline knows about a capture's packets, as columns."""

    capture: CaptureFile
    stack: npt.NDArray[np.uint16]
    """Index into `stacks` of each packet's L2-L4 protocol names."""
    stacks: list[tuple[str, ...]]
    l4: npt.NDArray[np.uint8]
    payload_off: npt.NDArray[np.uint32]
    """Offset of the transport payload in the frame (or in `reassembled[i]`)."""
    payload_len: npt.NDArray[np.uint32]
    """Transport payload length as the headers declare it (may exceed what was captured)."""
    tcp_seq: npt.NDArray[np.uint32]
    tcp_flags: npt.NDArray[np.uint8]
    flow: npt.NDArray[np.int32]
    direction: npt.NDArray[np.uint8]
    flows: list[Flow]
    reassembled: dict[int, bytes]
    """Packet -> transport segment rebuilt from IP fragments (payload_off points into it)."""
    findings: list[tuple[int, Finding]]
    """(0-based packet, finding) from reading and L2-L4, in packet order."""

    def __len__(self) -> int:
        return len(self.capture.records)

    @property
    def records(self) -> RecordTable:
        return self.capture.records

    def frame(self, i: int) -> bytes:
        """The captured bytes of packet `i` (0-based)."""
        rec = self.capture.records
        start = int(rec.data_off[i])
        return bytes(self.capture.buffer[start : start + int(rec.caplen[i])])

    def linktype(self, i: int) -> int:
        rec = self.capture.records
        return rec.interfaces[int(rec.iface[i])].linktype

    def payload(self, i: int) -> bytes:
        """The captured part of packet `i`'s transport payload."""
        buf = self.reassembled.get(i)
        off, length = int(self.payload_off[i]), int(self.payload_len[i])
        if buf is not None:
            return buf[off : off + length]
        rec = self.capture.records
        start = int(rec.data_off[i]) + off
        end = min(start + length, int(rec.data_off[i]) + int(rec.caplen[i]))
        return bytes(self.capture.buffer[start:end]) if end > start else b""

    def captured_payload_len(self, packets: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """len(self.payload(i)) for each of `packets`, from the columns (no bytes read)."""
        rec = self.capture.records
        off = self.payload_off[packets].astype(np.int64)
        declared = self.payload_len[packets].astype(np.int64)
        out: npt.NDArray[np.int64] = np.minimum(
            np.maximum(rec.caplen[packets].astype(np.int64) - off, 0), declared
        )
        if self.reassembled:
            rebuilt = np.fromiter(self.reassembled, np.int64, len(self.reassembled))
            for k in np.flatnonzero(np.isin(packets, rebuilt)).tolist():
                buf = self.reassembled[int(packets[k])]
                out[k] = len(buf[int(off[k]) : int(off[k] + declared[k])])
        return out

    def dissect(self, i: int) -> Dissection:
        """Full L2-L4 dissection of packet `i` (for the detail tree)."""
        return dissect(self.linktype(i), self.frame(i), int(self.capture.records.wirelen[i]))

    def time(self, i: int) -> float:
        return int(self.capture.records.ts_ns[i]) / 1e9

    def close(self) -> None:
        self.capture.close()


def _addr_words(raw: bytes) -> tuple[int, int]:
    if len(raw) == 4:
        return 0, int.from_bytes(raw, "big")
    v = int.from_bytes(raw, "big")
    return v >> 64, v & 0xFFFF_FFFF_FFFF_FFFF


def build_index(capture: CaptureFile) -> PacketIndex:
    """Run the L2-L4 passes and the flow grouping over an opened capture."""
    rec = capture.records
    fp = fastpath.run(ByteColumns(capture.buffer), rec)
    stacks: list[tuple[str, ...]] = []
    stack_ids: dict[tuple[str, ...], int] = {}

    def stack_id(names: tuple[str, ...]) -> int:
        sid = stack_ids.get(names)
        if sid is None:
            sid = stack_ids[names] = len(stacks)
            stacks.append(names)
        return sid

    stack = np.zeros(len(rec), np.uint16)
    fast = slice(None) if fp.fast.all() else np.flatnonzero(fp.fast)
    codes = fp.stack_code[fast]
    if len(codes):
        seen = np.flatnonzero(np.bincount(codes))
        lookup = np.zeros(int(seen[-1]) + 1, np.uint16)
        for code in seen.tolist():
            lookup[code] = stack_id(fastpath.stack_names(code))
        stack[fast] = lookup[codes]

    findings: list[tuple[int, Finding]] = list(rec.findings)
    reassembled: dict[int, bytes] = {}
    frags = Reassembler()
    buf = capture.buffer
    linktypes = [iface.linktype for iface in rec.interfaces]
    tunnels: list[tuple[int, Tunnel]] = []
    for i in np.flatnonzero(~fp.fast).tolist():
        start = int(rec.data_off[i])
        data = bytes(buf[start : start + int(rec.caplen[i])])
        d = dissect(linktypes[int(rec.iface[i])], data, int(rec.wirelen[i]))
        names = d.protocols
        if d.fragment is not None:
            whole = frags.add(i, d.fragment, data)
            if whole is not None:
                inner = Dissection()
                transport(d.ip_proto, whole, 0, len(whole), inner)
                d.l4, d.sport, d.dport = inner.l4, inner.sport, inner.dport
                d.tcp_seq, d.tcp_flags = inner.tcp_seq, inner.tcp_flags
                d.payload_off, d.payload_len = inner.payload_off, inner.payload_len
                d.findings += inner.findings
                names += inner.protocols
                if inner.l4:
                    reassembled[i] = whole
        stack[i] = stack_id(names)
        findings.extend((i, f) for f in d.findings)
        if d.tunnel is not None:
            tunnels.append((i, d.tunnel))
        if d.l4:
            fp.l4[i] = d.l4
            fp.ip_version[i] = d.ip_version
            fp.src_hi[i], fp.src_lo[i] = _addr_words(d.src)
            fp.dst_hi[i], fp.dst_lo[i] = _addr_words(d.dst)
            fp.sport[i], fp.dport[i] = d.sport, d.dport
            fp.payload_off[i], fp.payload_len[i] = d.payload_off, max(0, d.payload_len)
            fp.tcp_seq[i], fp.tcp_flags[i] = d.tcp_seq, d.tcp_flags
    frags.close()
    findings += frags.findings
    findings.sort(key=lambda pf: pf[0])
    columns = [fp.l4, fp.ip_version, fp.src_hi, fp.src_lo, fp.dst_hi, fp.dst_lo]
    columns += [fp.sport, fp.dport, fp.tcp_flags]
    wirelen, ts_ns = rec.wirelen, rec.ts_ns
    carrier_frames = None
    if tunnels:
        outer = [
            (lt.IPPROTO_UDP, t.ip_version, *_addr_words(t.src), *_addr_words(t.dst), t.sport, t.dport, 0)
            for _, t in tunnels
        ]
        columns = [
            np.concatenate([col, np.array(extra, dtype=col.dtype)])
            for col, extra in zip(columns, zip(*outer, strict=True), strict=True)
        ]
        carrier_frames = np.array([i for i, _ in tunnels], dtype=np.int64)
        wirelen = np.concatenate([wirelen, wirelen[carrier_frames]])
        ts_ns = np.concatenate([ts_ns, ts_ns[carrier_frames]])
    l4, version, src_hi, src_lo, dst_hi, dst_lo, sport, dport, tcp_flags = columns
    fc: FlowColumns = build(
        l4, version, src_hi, src_lo, dst_hi, dst_lo, sport, dport, tcp_flags, wirelen, ts_ns, carrier_frames
    )
    for flow in fc.flows:
        if flow.carried:
            flow.protocols.append("gtp")
    capture.release_pages()
    if len(capture.records) >= 1 << 16:  # only big captures leave big freed temporaries behind
        trim_heap()
    return PacketIndex(
        capture=capture,
        stack=stack,
        stacks=stacks,
        l4=fp.l4,
        payload_off=fp.payload_off,
        payload_len=fp.payload_len,
        tcp_seq=fp.tcp_seq,
        tcp_flags=fp.tcp_flags,
        flow=fc.flow,
        direction=fc.direction,
        flows=fc.flows,
        reassembled=reassembled,
        findings=findings,
    )


def load(path: str | os.PathLike[str], growing: bool = False) -> PacketIndex:
    """Open, read and index a capture file (`growing`: a live spool still being written)."""
    return build_index(open_capture(path, growing))
