"""The columnar packet index: records, L2-L4 columns and flows, with bytes read on demand.

No Python object is kept per packet: every per-packet fact is a numpy column (about 50 bytes a
packet in all). Frame bytes stay in the memory-mapped file until asked for.

The index grows: `PacketIndex.extend` reads the records its capture gained since the last read,
runs the passes over those alone and appends (IP reassembly and the flow table carry their state
over), and `finish` ends it. A file is one big append: `load` is an open, one read and a finish,
so a file and a live capture go through the same code (DESIGN.md, "One pipeline, growing input").
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from protoscope.decoders.api import Finding

from . import fastpath
from . import linktypes as lt
from .columns import ByteColumns
from .flows import Flow, FlowTable
from .fragments import Reassembler
from .growing import GrowingColumns
from .memory import trim_heap
from .net import LINK_HEADERS, Dissection, Fragment, Tunnel, addr_words, dissect, no_link_layer, transport
from .records import RecordTable
from .source import CaptureFile, open_capture

FINDINGS_PER_CODE = 100
"""L2-L4 findings of one code given one by one in a capture; past this they are only counted, and
the count is one finding at the last of them (as fragments.FINDINGS_PER_CODE for reassembly). A
crafted capture can earn one on every packet (records of 0 captured bytes that say they had 60:
an eth.truncated each), and a finding costs ~300 bytes where the packet's columns cost ~50."""
FRAGMENT_BATCH = 1 << 16
"""Fragments whose columns are turned into Python values at a time (a million fragments' values at
once would be ~250 MB of int objects)."""


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
    """(0-based packet, finding) from reading and L2-L4, in packet order; `extend` and `finish`
    append theirs (in packet order among themselves)."""
    _passes: _Passes | None = field(default=None, repr=False)
    """The passes' state between two reads; None once finished."""

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

    def extend(self) -> int:
        """Index the records the capture gained since the last read; return how many.

        Every column becomes a longer array whose first rows are the old ones, `flows` gets the
        new conversations appended and the known ones updated in place, `findings` and
        `reassembled` get the new ones; `capture.buffer` may be a new map. 0 on an index that
        does not grow (a file read whole, or one already finished)."""
        if self._passes is None:
            return 0
        chunk = self.capture.grow()
        return 0 if chunk is None else self._passes.add(self, chunk)

    def finish(self) -> int:
        """End a growing index (the capture ended, or the file is read): read the file's last
        records, give the findings that only the end can give (a record cut short, IP datagrams
        never completed, the count of findings past FINDINGS_PER_CODE) and let go of the passes'
        state. Returns the packets the last read added; nothing once finished."""
        passes = self._passes
        if passes is None:
            return 0
        chunk = self.capture.grow(final=True)
        added = 0 if chunk is None else passes.add(self, chunk)
        self.findings += passes.close()
        self._passes = None
        return added

    def close(self) -> None:
        self.capture.close()


class _Findings:
    """A capture's L2-L4 findings, bounded per code by FINDINGS_PER_CODE."""

    def __init__(self) -> None:
        self.kept: list[tuple[int, Finding]] = []
        self._counts: dict[str, tuple[int, int, Finding]] = {}
        """Code -> (findings of it so far, the last one's packet, the last one)."""

    def add(self, packet: int, finding: Finding) -> None:
        seen = self._counts.get(finding.code)
        count = 1 if seen is None else seen[0] + 1
        self._counts[finding.code] = (count, packet, finding)
        if count <= FINDINGS_PER_CODE:
            self.kept.append((packet, finding))

    def add_many(self, code: str, packets: npt.NDArray[np.int64], finding: Callable[[int], Finding]) -> None:
        """`finding(p)` (of `code`) for each of `packets` (ascending); only those kept are made."""
        if not len(packets):
            return
        seen = self._counts.get(code)
        count = 0 if seen is None else seen[0]
        self.kept += [(p, finding(p)) for p in packets[: max(0, FINDINGS_PER_CODE - count)].tolist()]
        last = int(packets[-1])
        self._counts[code] = (count + len(packets), last, finding(last))

    def close(self) -> list[tuple[int, Finding]]:
        """The findings kept, then one for each code that was only counted, at its last packet."""
        for code, (count, packet, last) in self._counts.items():
            if count > FINDINGS_PER_CODE:
                more = count - FINDINGS_PER_CODE
                message = (
                    f"{more} more {code} findings, one per packet like those before, were only counted "
                    f"(FINDINGS_PER_CODE = {FINDINGS_PER_CODE}); this is the last of them: {last.message}"
                )
                self.kept.append((packet, Finding(last.severity, code, message, last.span)))
        self._counts.clear()
        return self.kept


def _no_link_layer(
    rec: RecordTable, linktypes: list[int], found: _Findings, first: int
) -> npt.NDArray[np.bool_]:
    """The packets of `rec` (the first is packet `first`) net.dissect gives no layer and one
    finding (net.no_link_layer: an unknown link type, a link header cut short), found in bulk with
    their findings: a crafted capture of such records (16 bytes each in pcap) would otherwise cost
    a dissection per 16 bytes."""
    handled = np.zeros(len(rec), bool)
    if not len(rec) or not linktypes:
        return handled
    link = np.asarray(linktypes, np.int64)[rec.iface]
    caplen = rec.caplen
    for linktype in sorted(set(linktypes)):
        if linktype in lt.LINK_NAMES and linktype not in LINK_HEADERS:
            continue  # raw IP: no link header to cut short
        chosen = link == linktype
        if linktype in LINK_HEADERS:
            chosen &= caplen < LINK_HEADERS[linktype][1]
        rows = np.flatnonzero(chosen)
        said = no_link_layer(linktype, int(caplen[rows[0]])) if len(rows) else None
        if said is None:
            continue
        handled[rows] = True

        def finding(p: int, linktype: int = linktype, said: Finding = said) -> Finding:
            return no_link_layer(linktype, int(caplen[p - first])) or said  # never None for these rows

        found.add_many(said.code, rows + first, finding)
    return handled


INDEX_COLUMNS = ("stack", "l4", "payload_off", "payload_len", "tcp_seq", "tcp_flags", "flow", "direction")
"""The per-packet columns of a PacketIndex."""


class _Passes:
    """The L2-L4 passes and the flow grouping of a growing index, with the state they keep from
    one read to the next: the stack names met, the findings given per code, IP fragments awaiting
    the rest of their datagram, and the flow table."""

    def __init__(self) -> None:
        self.stacks: list[tuple[str, ...]] = []
        self._stack_ids: dict[tuple[str, ...], int] = {}
        self.found = _Findings()
        self.frags = Reassembler()
        self.flows = FlowTable()
        self.columns = GrowingColumns()
        self.count = 0
        """Packets indexed so far."""
        self._given = (0, 0)
        """How many of found.kept and frags.findings the index was given."""

    def stack_id(self, names: tuple[str, ...]) -> int:
        sid = self._stack_ids.get(names)
        if sid is None:
            sid = self._stack_ids[names] = len(self.stacks)
            self.stacks.append(names)
        return sid

    def _new_findings(self) -> list[tuple[int, Finding]]:
        kept, frags = self.found.kept, self.frags.findings
        given_kept, given_frags = self._given
        self._given = (len(kept), len(frags))
        return [*kept[given_kept:], *frags[given_frags:]]

    def close(self) -> list[tuple[int, Finding]]:
        """The findings of the end (see PacketIndex.finish), in packet order."""
        self.frags.close()
        self.found.close()
        new = self._new_findings()
        new.sort(key=lambda pf: pf[0])
        return new

    def add(self, ix: PacketIndex, rec: RecordTable) -> int:
        """Run the passes over `rec` (records of `ix.capture` that follow those indexed) and
        append what they find to `ix`; return len(rec)."""
        first, n = self.count, len(rec)
        if not n and not rec.findings:
            return 0
        capture = ix.capture
        cols = ByteColumns(capture.buffer)
        fp = fastpath.run(cols, rec)
        stack_id, stacks = self.stack_id, self.stacks
        stack = np.zeros(n, np.uint16)
        coded = fp.fast.copy()  # the packets whose names the fast path knows: its own and fragments
        coded[fp.fragments.rows] = True
        fast = slice(None) if coded.all() else np.flatnonzero(coded)
        del coded
        codes = fp.stack_code[fast]
        if len(codes):
            seen = np.flatnonzero(np.bincount(codes))
            lookup = np.zeros(int(seen[-1]) + 1, np.uint16)
            for code in seen.tolist():
                lookup[code] = stack_id(fastpath.stack_names(code))
            stack[fast] = lookup[codes]

        found, frags, reassembled = self.found, self.frags, ix.reassembled
        buf = capture.buffer
        linktypes = [iface.linktype for iface in rec.interfaces]
        tunnels: list[tuple[int, Tunnel]] = []
        bare = _no_link_layer(rec, linktypes, found, first)
        if bare.any():
            stack[bare] = stack_id(())

        # Below, `i` is a packet of this read (a row of `rec` and `fp`) and `first + i` the same
        # packet in the capture (for findings, reassembly and tunnels).
        def rebuilt(i: int, whole: bytes, proto: int, names: tuple[str, ...]) -> tuple[str, ...]:
            """Packet `i` completed a datagram: decode its transport header; the stack's names."""
            inner = Dissection(detail=False)
            transport(proto, whole, 0, len(whole), inner)
            for f in inner.findings:
                found.add(first + i, f)
            if inner.l4:
                reassembled[first + i] = whole
                fp.l4[i] = inner.l4
                fp.sport[i], fp.dport[i] = inner.sport, inner.dport
                fp.payload_off[i], fp.payload_len[i] = inner.payload_off, max(0, inner.payload_len)
                fp.tcp_seq[i], fp.tcp_flags[i] = inner.tcp_seq, inner.tcp_flags
            return names + inner.protocols

        fr = fp.fragments
        released = 0

        def fast_fragments(a: int, b: int) -> None:
            """Fragments a..b of the fast path's table, to reassembly without a dissection each."""
            nonlocal released
            add = frags.add
            for lo in range(a, b, FRAGMENT_BATCH):
                hi = min(b, lo + FRAGMENT_BATCH)
                rows = fr.rows[lo:hi]
                base = rec.data_off[rows].astype(np.int64)
                # net.FragmentKey, built by zip in C: a tuple per fragment is all the Python work here.
                keys = zip(
                    fp.ip_version[rows].tolist(),
                    fp.src_hi[rows].tolist(),
                    fp.src_lo[rows].tolist(),
                    fp.dst_hi[rows].tolist(),
                    fp.dst_lo[rows].tolist(),
                    fr.ident[lo:hi].tolist(),
                    fr.proto[lo:hi].tolist(),
                    strict=True,
                )
                for i, key, offset, more, start, end in zip(
                    rows.tolist(),
                    keys,
                    fr.offset[lo:hi].tolist(),
                    fr.more[lo:hi].tolist(),
                    (base + fr.start[lo:hi]).tolist(),
                    (base + fr.end[lo:hi]).tolist(),
                    strict=True,
                ):
                    # The whole buffer with the fragment's place in it: one copy of its bytes.
                    whole = add(first + i, Fragment(key, offset, more, start, end), buf)
                    if whole is not None:
                        stack[i] = stack_id(rebuilt(i, whole, key[6], stacks[int(stack[i])]))
                # The file's pages read so far leave our resident set (as the fast path's own reads do).
                released = cols.release(released, int(base[-1]))

        # The packets the fast path did not take, and between them the fragments it read, in packet
        # order: reassembly must see every fragment in the order of the capture.
        slow_mask = ~fp.fast & ~bare
        slow_mask[fr.rows] = False
        del bare
        slow = np.flatnonzero(slow_mask)
        del slow_mask
        fragments_before = np.searchsorted(fr.rows, slow)
        done = 0
        for i, upto in zip(slow.tolist(), fragments_before.tolist(), strict=True):
            if upto > done:
                fast_fragments(done, upto)
                done = upto
            start = int(rec.data_off[i])
            data = bytes(buf[start : start + int(rec.caplen[i])])
            d = dissect(linktypes[int(rec.iface[i])], data, int(rec.wirelen[i]), detail=False)
            for f in d.findings:
                found.add(first + i, f)
            names = d.protocols
            if d.fragment is not None:
                whole = frags.add(first + i, d.fragment, data)
                if whole is not None:
                    names = rebuilt(i, whole, d.ip_proto, names)
            stack[i] = stack_id(names)
            if d.tunnel is not None:
                tunnels.append((i, d.tunnel))
            if d.l4 or fp.l4[i]:  # its own transport header, or that of the datagram it completed
                fp.ip_version[i] = d.ip_version
                fp.src_hi[i], fp.src_lo[i] = addr_words(d.src)
                fp.dst_hi[i], fp.dst_lo[i] = addr_words(d.dst)
            if d.l4:
                fp.l4[i] = d.l4
                fp.sport[i], fp.dport[i] = d.sport, d.dport
                fp.payload_off[i], fp.payload_len[i] = d.payload_off, max(0, d.payload_len)
                fp.tcp_seq[i], fp.tcp_flags[i] = d.tcp_seq, d.tcp_flags
        fast_fragments(done, len(fr))
        del slow, fragments_before
        flow, direction = self._flows(fp, rec, tunnels, first)
        self.columns.append(
            {
                "stack": stack,
                "l4": fp.l4,
                "payload_off": fp.payload_off,
                "payload_len": fp.payload_len,
                "tcp_seq": fp.tcp_seq,
                "tcp_flags": fp.tcp_flags,
                "flow": flow,
                "direction": direction,
            }
        )
        for name in INDEX_COLUMNS:
            setattr(ix, name, self.columns.view(name))
        self.count += n
        new = [*rec.findings, *self._new_findings()]
        new.sort(key=lambda pf: pf[0])
        ix.findings += new
        capture.release_pages()
        if n >= 1 << 16:  # only big reads leave big freed temporaries behind
            trim_heap()
        return n

    def _flows(
        self, fp: fastpath.FastPath, rec: RecordTable, tunnels: list[tuple[int, Tunnel]], first: int
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.uint8]]:
        """The packets of a read (and the outer headers of its tunnelled ones) to the flow table."""
        columns = [fp.l4, fp.ip_version, fp.src_hi, fp.src_lo, fp.dst_hi, fp.dst_lo]
        columns += [fp.sport, fp.dport, fp.tcp_flags]
        wirelen, ts_ns = rec.wirelen, rec.ts_ns
        carrier_frames = None
        if tunnels:
            outer = [
                (lt.IPPROTO_UDP, t.ip_version, *addr_words(t.src), *addr_words(t.dst), t.sport, t.dport, 0)
                for _, t in tunnels
            ]
            columns = [
                np.concatenate([col, np.array(extra, dtype=col.dtype)])
                for col, extra in zip(columns, zip(*outer, strict=True), strict=True)
            ]
            carriers = np.array([i for i, _ in tunnels], dtype=np.int64)
            wirelen = np.concatenate([wirelen, wirelen[carriers]])
            ts_ns = np.concatenate([ts_ns, ts_ns[carriers]])
            carrier_frames = carriers + first
        l4, version, src_hi, src_lo, dst_hi, dst_lo, sport, dport, tcp_flags = columns
        return self.flows.add(
            l4, version, src_hi, src_lo, dst_hi, dst_lo, sport, dport, tcp_flags, wirelen, ts_ns,
            carrier_frames, first,
        )  # fmt: skip


def build_index(capture: CaptureFile) -> PacketIndex:
    """Run the L2-L4 passes and the flow grouping over an opened capture: its records so far, as
    the first read of an index that grows with it (`capture.growing`); else the whole of it."""
    passes = _Passes()
    ix = PacketIndex(
        capture=capture,
        stack=np.zeros(0, np.uint16),
        stacks=passes.stacks,
        l4=np.zeros(0, np.uint8),
        payload_off=np.zeros(0, np.uint32),
        payload_len=np.zeros(0, np.uint32),
        tcp_seq=np.zeros(0, np.uint32),
        tcp_flags=np.zeros(0, np.uint8),
        flow=np.zeros(0, np.int32),
        direction=np.zeros(0, np.uint8),
        flows=passes.flows.flows,
        reassembled={},
        findings=[],
        _passes=passes,
    )
    passes.add(ix, capture.records)
    if not capture.growing:
        ix.finish()
        # Nobody has seen them yet: in packet order as a whole, the reader's first at a packet.
        ix.findings.sort(key=lambda pf: pf[0])
    return ix


def load(path: str | os.PathLike[str], growing: bool = False) -> PacketIndex:
    """Open, read and index a capture file. `growing`: it may still be written (see
    source.open_capture); `PacketIndex.extend` reads what it gains, `finish` ends it."""
    return build_index(open_capture(path, growing))
