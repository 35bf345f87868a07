"""The bulk RTP path of a decoding pass, for analyses that take `RtpColumns` (the streams report).

A million RTP packets decoded one by one into Pdu objects cost ~15 s of Python; their fixed
headers read with numpy over the index cost ~0.1 s. So: every UDP datagram that the RTP decoder
would read as RTP (version 2, not an RTCP type, its CSRCs and header extension inside the payload)
is a candidate. In a flow with more than HELD_PER_FLOW candidates, the first ones go through the
normal pass with everything else (so decoders are chosen, signaling learnt and STUN demultiplexed
exactly as always) and the rest are left out of it. If each held packet decoded to one RTP PDU with
the SSRC and sequence number read in bulk, the flow's candidates are handed to the analysis as
columns; if any did not, nothing is assumed and the caller runs the plain pass instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from protoscope.captures.columns import ByteColumns, Window
from protoscope.captures.memory import trim_heap
from protoscope.decoders.api import RtpColumns
from protoscope.decoders.rtp.decoder import clock_rate
from protoscope.decoders.rtp.packets import RtpRecord

from .session import Session

HELD_PER_FLOW = 64
"""Candidates per flow decoded the normal way (more than the 32 datagrams a flow is sniffed for)."""
RTP_HEADER = 12
PLAN_CHUNK = 1 << 18
"""UDP packets whose headers are read at a time (bounds the temporaries to a few MB)."""
IPPROTO_UDP = 17


@dataclass(slots=True)
class RtpPlan:
    packets: npt.NDArray[np.int64]
    """Candidates of flows with more than HELD_PER_FLOW of them, in frame order."""
    held: npt.NDArray[np.bool_]
    """Per candidate: decoded the normal way (and checked)."""
    ssrc: npt.NDArray[np.uint32]
    seq: npt.NDArray[np.uint16]
    timestamp: npt.NDArray[np.uint32]
    payload_type: npt.NDArray[np.uint8]
    marker: npt.NDArray[np.bool_]


def plan_rtp(session: Session) -> RtpPlan | None:
    """The candidates worth the bulk path; None when no flow has enough of them."""
    ix = session.index
    udp = np.flatnonzero((ix.l4 == IPPROTO_UDP) & (ix.flow >= 0) & (ix.payload_len >= RTP_HEADER))
    if ix.reassembled and len(udp):  # reassembled fragments are not where the index points
        udp = udp[~np.isin(udp, np.fromiter(ix.reassembled, np.int64))]
    if not len(udp):
        return None
    cols = ByteColumns(ix.capture.buffer)
    parts = [_headers(ix, cols, udp[a : a + PLAN_CHUNK]) for a in range(0, len(udp), PLAN_CHUNK)]
    del udp
    packets = np.concatenate([p[0] for p in parts])
    flows = ix.flow[packets]
    counts = np.bincount(flows, minlength=len(ix.flows))
    keep = counts[flows] > HELD_PER_FLOW
    if not keep.any():
        return None
    packets, flows = packets[keep], flows[keep]
    ssrc, seq, timestamp, pt, marker = (np.concatenate([p[k] for p in parts])[keep] for k in range(1, 6))
    del parts, keep
    # Each candidate's rank within its flow: the first HELD_PER_FLOW are held.
    order = np.argsort(flows, kind="stable")
    sorted_flows = flows[order]
    group_start = np.flatnonzero(np.concatenate(([True], sorted_flows[1:] != sorted_flows[:-1])))
    sizes = np.diff(np.concatenate((group_start, [len(order)])))
    rank = np.empty(len(order), np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32) - np.repeat(group_start, sizes).astype(np.int32)
    del order, sorted_flows
    plan = RtpPlan(packets, rank < HELD_PER_FLOW, ssrc, seq, timestamp, pt, marker)
    trim_heap()
    return plan


def _headers(ix: Any, cols: ByteColumns, udp: npt.NDArray[np.int64]) -> tuple[npt.NDArray[Any], ...]:
    """Of these UDP packets, those the RTP decoder reads as RTP, with their ssrc, seq, timestamp
    and payload type."""
    rec = ix.capture.records
    start = rec.data_off[udp].astype(np.int64) + ix.payload_off[udp]
    captured = rec.data_off[udp] + rec.caplen[udp] - start
    length = np.minimum(ix.payload_len[udp], captured)  # what index.payload() gives
    win = Window(cols, start, RTP_HEADER)
    every = slice(None)
    b0 = win.read(every, 0, "u1")
    b1 = win.read(every, 1, "u1")
    header = RTP_HEADER + 4 * (b0 & 0x0F).astype(np.int64)
    ok = (b0 >> 6 == 2) & ~((b1 >= 192) & (b1 <= 223)) & (length >= header)
    ext = ok & (b0 & 0x10 != 0)
    ext &= header + 4 <= length
    fits = np.zeros(len(udp), np.bool_)
    if ext.any():
        words = cols.read(start[ext] + header[ext] + 2, ">u2").astype(np.int64)
        fits[ext] = header[ext] + 4 + 4 * words <= length[ext]
    ok &= (b0 & 0x10 == 0) | fits
    rows = np.flatnonzero(ok)
    return (
        udp[rows],
        win.read(rows, 8, ">u4").astype(np.uint32),
        win.read(rows, 2, ">u2").astype(np.uint16),
        win.read(rows, 4, ">u4").astype(np.uint32),
        (b1[rows] & 0x7F).astype(np.uint8),
        b1[rows] >= 0x80,
    )


def rows_with_bulk_rtp(session: Session, analysis: Any, plan: RtpPlan) -> Iterator[dict[str, Any]] | None:
    """Run the pass without the plan's later candidates, then hand all of them over as columns.
    None (and the analysis is spoilt) when a held packet did not decode as the plan read it."""
    ix = session.index
    n = len(ix)
    skip = np.zeros(n, np.bool_)
    skip[plan.packets[~plan.held]] = True
    held_at = np.full(n, -1, np.int64)
    held_at[plan.packets[plan.held]] = np.flatnonzero(plan.held)
    drain = getattr(analysis, "drain", None)
    early: list[dict[str, Any]] = []
    for pd in session.decode(skip=skip):
        k = int(held_at[pd.index])
        if k >= 0:
            rtp = pd.pdus[0].record if len(pd.pdus) == 1 else None
            if not (
                isinstance(rtp, RtpRecord)
                and rtp.ssrc == int(plan.ssrc[k])
                and rtp.seq == int(plan.seq[k])
                and rtp.timestamp == int(plan.timestamp[k])
            ):
                return None
            continue  # its figures come with the columns
        if pd.pdus:
            ctx = session.context(pd.index)
            for pdu in pd.pdus:
                analysis.feed(pdu, ctx)
        if drain is not None and pd.index % 1024 == 0:
            early += drain()
    trim_heap()
    analysis.feed_rtp(_columns(session, plan))
    trim_heap()
    return iter([*early, *(drain() if drain is not None else []), *analysis.rows()])


def _columns(session: Session, plan: RtpPlan) -> RtpColumns:
    ix = session.index
    nflows = len(ix.flows)
    flow = ix.flow[plan.packets]
    pair_key = flow.astype(np.int64) * 2 + ix.direction[plan.packets]
    present = np.flatnonzero(np.bincount(pair_key, minlength=2 * nflows))
    table = np.full(2 * nflows, -1, np.int32)
    table[present] = np.arange(len(present), dtype=np.int32)
    endpoints = table[pair_key]
    del pair_key, table
    pairs: list[tuple[str, str]] = []
    for key in present.tolist():
        f = ix.flows[key // 2]
        a, b = str(f.client), str(f.server)
        pairs.append((a, b) if key % 2 == 0 else (b, a))
    # Clock rates: what signaling announced for the flow's endpoints, else the static type's.
    clock = np.zeros(len(plan.packets), np.int64)
    encodings: dict[tuple[str, str, int], str] = {}
    order = np.argsort(flow, kind="stable")
    for rows in np.split(order, np.flatnonzero(np.diff(flow[order])) + 1):
        hints = session.context(int(plan.packets[rows[0]])).hints
        f = ix.flows[int(flow[rows[0]])]
        pts = plan.payload_type[rows]
        for pt in np.unique(pts).tolist():
            rate = clock_rate(pt, hints)
            if rate:
                clock[rows[pts == pt]] = rate
            name = hints.get(f"rtp.encoding.{pt}")
            if name:
                a, b = str(f.client), str(f.server)
                encodings[(a, b, pt)] = encodings[(b, a, pt)] = name
    del order
    return RtpColumns(
        time=ix.capture.records.ts_ns[plan.packets] / 1e9,
        endpoints=endpoints,
        pairs=pairs,
        ssrc=plan.ssrc,
        seq=plan.seq,
        timestamp=plan.timestamp,
        payload_type=plan.payload_type,
        marker=plan.marker,
        clock=clock,
        encodings=encodings,
    )
