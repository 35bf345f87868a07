"""The bulk RTP path of a decoding pass, for analyses that take `RtpColumns` (the streams report).

A million RTP packets decoded one by one into Pdu objects cost ~15 s of Python; their fixed
headers read with numpy over the index cost ~0.1 s. So: every UDP datagram that the RTP decoder
would read as RTP (version 2, not an RTCP type, its CSRCs and header extension inside the payload)
is a candidate. In a flow with more than HELD_PER_FLOW candidates, the first ones go through the
normal pass with everything else (so decoders are chosen, signaling learnt and STUN demultiplexed
exactly as always) and the rest are left out of it. If each held packet decoded to one RTP PDU with
the SSRC and sequence number read in bulk, the flow's candidates are handed to the analysis as
columns; if any did not, nothing is assumed and the caller runs the plain pass instead.

The later candidates' payloads are read as the RTP decoder would read them with the state the pass
left in their flow direction (`_later_payloads`): SRTP whose first packets pinned a key is
authenticated and decrypted in bulk (an auth failure or a replay is the decoder's finding on that
packet), plain RTP is read where no key applies; the codec facts (keyframes, frame starts, RTX's
original sequence numbers) of video and RTX payloads go with the columns. On the 1M-packet
DTLS-SRTP bench capture this costs ~1.7 s of the report's ~3.2 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from protoscope.captures.columns import ByteColumns, Window
from protoscope.captures.memory import trim_heap
from protoscope.decoders.api import Finding, RtpColumns
from protoscope.decoders.rtp.codecs import codec_fields, encoding_name
from protoscope.decoders.rtp.decoder import RtpDecoder, clock_rate, srtp_signaled
from protoscope.decoders.rtp.packets import RtpRecord, rtp_payload
from protoscope.decoders.rtp.srtp_flow import Rows, SrtpState, unprotect_bulk

from .session import Decoding, Session

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
    start: npt.NDArray[np.int64]
    """Where each candidate's UDP payload starts in the capture's buffer."""
    length: npt.NDArray[np.int64]
    """Its captured length (what index.payload() gives)."""
    header: npt.NDArray[np.int64]
    """Its RTP header's size with CSRCs and header extension."""
    padded: npt.NDArray[np.bool_]
    """Its P bit."""


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
    ssrc, seq, timestamp, pt, marker, start, length, header, padded = (
        np.concatenate([p[k] for p in parts])[keep] for k in range(1, 10)
    )
    del parts, keep
    # Each candidate's rank within its flow: the first HELD_PER_FLOW are held.
    order = np.argsort(flows, kind="stable")
    sorted_flows = flows[order]
    group_start = np.flatnonzero(np.concatenate(([True], sorted_flows[1:] != sorted_flows[:-1])))
    sizes = np.diff(np.concatenate((group_start, [len(order)])))
    rank = np.empty(len(order), np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32) - np.repeat(group_start, sizes).astype(np.int32)
    del order, sorted_flows
    plan = RtpPlan(
        packets, rank < HELD_PER_FLOW, ssrc, seq, timestamp, pt, marker, start, length, header, padded
    )
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
        header[ext] += 4 + 4 * words
        fits[ext] = header[ext] <= length[ext]
    ok &= (b0 & 0x10 == 0) | fits
    rows = np.flatnonzero(ok)
    return (
        udp[rows],
        win.read(rows, 8, ">u4").astype(np.uint32),
        win.read(rows, 2, ">u2").astype(np.uint16),
        win.read(rows, 4, ">u4").astype(np.uint32),
        (b1[rows] & 0x7F).astype(np.uint8),
        b1[rows] >= 0x80,
        start[rows],
        length[rows].astype(np.int64),
        header[rows],
        (b0[rows] & 0x20) != 0,
    )


def rows_with_bulk_rtp(session: Session, analysis: Any, plan: RtpPlan) -> Iterator[dict[str, Any]] | None:
    """Run the pass without the plan's later candidates, then hand all of them over as columns
    (SRTP among them authenticated and decrypted in bulk with the keys the pass pinned, see
    `_later_payloads`). None (and the analysis is spoilt) when a held packet did not decode as the
    plan read it."""
    ix = session.index
    n = len(ix)
    skip = np.zeros(n, np.bool_)
    skip[plan.packets[~plan.held]] = True
    held_at = np.full(n, -1, np.int64)
    held_at[plan.packets[plan.held]] = np.flatnonzero(plan.held)
    drain = getattr(analysis, "drain", None)
    early: list[dict[str, Any]] = []
    facts = _Facts(len(plan.packets))
    decoding = session.decoding(skip=skip)
    for pd in decoding.more(final=True, progress=session.progress):
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
            facts.read[k] = True
            if rtp.payload is not None:
                name = encoding_name(rtp.payload_type, session.context(pd.index).hints)
                facts.add(k, name, rtp.payload)
            continue  # its figures come with the columns
        if pd.pdus:
            ctx = session.context(pd.index)
            for pdu in pd.pdus:
                analysis.feed(pdu, ctx)
        if drain is not None and pd.index % 1024 == 0:
            early += drain()
    trim_heap()
    _later_payloads(session, decoding, plan, facts)
    analysis.feed_rtp(_columns(session, plan, facts))
    trim_heap()
    return iter([*early, *(drain() if drain is not None else []), *analysis.rows()])


FACT_CODECS = frozenset({"vp8", "vp9", "h264", "rtx"})
"""Codecs whose payloads give the streams report something (keyframes, frames, repairs): the
payloads of other codecs are authenticated but not read."""


class _Facts:
    """The payload columns of RtpColumns, filled row by row (see there)."""

    def __init__(self, n: int, keep: bool = False) -> None:
        self.payloads: dict[int, bytes] | None = {} if keep else None
        """Every row's payload in the clear, when kept (`bulk_payloads`)."""
        self.read = np.zeros(n, np.bool_)
        self.clear = np.zeros(n, np.bool_)
        self.keyframe = np.zeros(n, np.bool_)
        self.frame_start = np.zeros(n, np.bool_)
        self.original_seq = np.full(n, -1, np.int32)
        self.findings: dict[int, tuple[Finding, ...]] = {}

    def add(self, k: int, name: str, payload: bytes) -> None:
        """Row k's payload in the clear, of encoding `name`."""
        self.clear[k] = True
        if self.payloads is not None:
            self.payloads[k] = payload
        if name.lower() not in FACT_CODECS:
            return  # (kept payloads of other codecs were asked for by bulk_payloads)
        found = codec_fields(name, payload, 0)[1]
        if found is not None:
            self.keyframe[k], self.frame_start[k] = found.keyframe, found.frame_start
            if found.original_seq is not None:
                self.original_seq[k] = found.original_seq


def bulk_payloads(session: Session, plan: RtpPlan) -> tuple[dict[int, bytes], dict[int, tuple[Finding, ...]]]:
    """What the bulk path makes of the plan's later candidates, by packet index: each payload in
    the clear (absent: none) and the findings of those that have some; to check it against the
    decoder one packet at a time."""
    skip = np.zeros(len(session.index), np.bool_)
    skip[plan.packets[~plan.held]] = True
    decoding = session.decoding(skip=skip)
    for _ in decoding.more(final=True):
        pass
    facts = _Facts(len(plan.packets), keep=True)
    _later_payloads(session, decoding, plan, facts, every=True)
    assert facts.payloads is not None
    return (
        {int(plan.packets[k]): p for k, p in facts.payloads.items()},
        {int(plan.packets[k]): f for k, f in facts.findings.items()},
    )


def _later_payloads(
    session: Session, decoding: Decoding, plan: RtpPlan, facts: _Facts, every: bool = False
) -> None:
    """The payloads of the candidates the pass left out, read as the RTP decoder would have read
    them one by one, with the state the pass left in each flow direction: SRTP authenticated and
    decrypted in bulk (decoders/rtp/srtp_flow.py `unprotect_bulk`) where the first packets pinned
    a key or a key applies, plain RTP read where none does, no payload where the flow's signaling
    said SRTP and nothing decrypts it. Codec facts are read from the payloads of FACT_CODECS only."""
    ix = session.index
    decoder = session.registry.decoders.get("rtp")
    if not isinstance(decoder, RtpDecoder):
        return
    later = np.flatnonzero(~plan.held)
    if not len(later):
        return
    packets = plan.packets[later]
    key = ix.flow[packets].astype(np.int64) * 2 + ix.direction[packets]
    order = np.argsort(key, kind="stable")
    buf = ix.capture.buffer
    for group in np.split(order, np.flatnonzero(np.diff(key[order])) + 1):
        rows = later[group]  # frame order within the direction
        first = int(plan.packets[rows[0]])
        fid, direction = int(ix.flow[first]), int(ix.direction[first])
        # The pass's state of the flow's RTP (read and continued here, never shared).
        state = decoding.decoder_state(fid, direction, "rtp")
        if not isinstance(state, SrtpState):
            continue
        shared = decoding.flow_shared(fid)
        ctx = session.context(first, shared)
        names = {pt: encoding_name(pt, ctx.hints) for pt in np.unique(plan.payload_type[rows]).tolist()}
        read = [pt for pt, name in names.items() if every or name.lower() in FACT_CODECS]
        wanted = np.isin(plan.payload_type[rows], np.array(read, np.uint8))
        keyed = {
            ssrc
            for ssrc in np.unique(plan.ssrc[rows]).tolist()
            if ssrc in state.rtp or decoder.keys_for(ctx, ssrc, state)
        }
        srtp = np.isin(plan.ssrc[rows], np.fromiter(keyed, np.int64, len(keyed)))
        facts.read[rows] = True
        _plain_payloads(buf, plan, rows[~srtp], wanted[~srtp], names, not srtp_signaled(ctx), facts)
        if not srtp.any():
            continue
        mine = rows[srtp]

        def per_packet(
            k: int, mine: npt.NDArray[np.int64] = mine, state: SrtpState = state, shared: Any = shared
        ) -> tuple[bytes | None, tuple[Finding, ...]]:
            i = int(plan.packets[mine[k]])
            result = decoder.decode(ix.payload(i), state, session.context(i, shared))
            rec = result.pdus[0].record if result.pdus else None
            found = (*result.findings, *(f for p in result.pdus for f in p.findings))
            return (rec.payload if isinstance(rec, RtpRecord) else None), found

        got = unprotect_bulk(
            state,
            buf,
            Rows(
                plan.start[mine],
                plan.start[mine] + plan.length[mine],
                plan.header[mine],
                plan.ssrc[mine],
                plan.seq[mine],
                plan.padded[mine],
            ),
            wanted[srtp],
            per_packet,
        )
        facts.clear[mine[got.clear]] = True
        facts.read[mine[got.unread]] = False
        for k, payload in got.payloads.items():
            facts.add(int(mine[k]), names[int(plan.payload_type[mine[k]])], payload)
        for k, found in got.findings.items():
            facts.findings[int(mine[k])] = found


def _plain_payloads(
    buf: Any,
    plan: RtpPlan,
    rows: npt.NDArray[np.int64],
    wanted: npt.NDArray[np.bool_],
    names: dict[int, str],
    clear: bool,
    facts: _Facts,
) -> None:
    """Rows read without decryption: plain RTP (`clear`), or SRTP nobody can decrypt."""
    if not clear:
        return
    facts.clear[rows] = True
    for k in rows[wanted].tolist():
        start = int(plan.start[k])
        payload = rtp_payload(bytes(buf[start : start + int(plan.length[k])]))
        if payload is not None:
            facts.add(k, names[int(plan.payload_type[k])], payload)


def _columns(session: Session, plan: RtpPlan, facts: _Facts | None = None) -> RtpColumns:
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
        payload_read=None if facts is None else facts.read,
        clear=None if facts is None else facts.clear,
        keyframe=None if facts is None else facts.keyframe,
        frame_start=None if facts is None else facts.frame_start,
        original_seq=None if facts is None else facts.original_seq,
        findings={} if facts is None else facts.findings,
    )
