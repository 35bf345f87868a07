"""RTP streams (`--report streams`): per SSRC and direction, like `tshark -z rtp,streams`.

Loss, duplicates, reordering and sequence wraps from the extended sequence number (RFC 3550
appendix A.1); jitter per RFC 3550 section 6.4.1 from capture timestamps, with the clock rate
of the static payload type (dynamic types without signaling have none, and no jitter).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from protoscope.decoders.api import FlowContext, Pdu, RtpColumns

from .packets import STATIC_CLOCK, RtpRecord


@dataclass(slots=True)
class Stream:
    ssrc: int
    payload_type: int
    src: str
    dst: str
    first: float
    last: float = 0.0
    packets: int = 0
    base_seq: int = 0
    max_ext_seq: int = 0
    cycles: int = 0
    seen: set[int] = field(default_factory=set)
    duplicates: int = 0
    out_of_order: int = 0
    wraps: int = 0
    max_delta: float = 0.0
    prev_time: float | None = None
    prev_transit: float | None = None
    jitter: float = 0.0
    max_jitter: float = 0.0
    jitter_sum: float = 0.0
    clock: int | None = None
    payload_types: set[int] = field(default_factory=set)
    seconds: list[list[float]] = field(default_factory=list)
    """Per second of the stream: [max jitter in clock units, packets lost] (for sparklines)."""


MAX_SECONDS = 3600
"""Seconds of per-second series kept per stream; later packets fall in the last one."""
MAX_SEEN = 1 << 16
"""Sequence numbers remembered per stream for duplicate detection (one wrap's worth)."""


class StreamAnalysis:
    name: ClassVar[str] = "streams"

    def __init__(self) -> None:
        self.streams: dict[tuple[int, str, str], Stream] = {}

    def feed(self, pdu: Pdu, ctx: FlowContext) -> None:
        rec = pdu.record
        if isinstance(rec, RtpRecord):
            clock = rec.clock or STATIC_CLOCK.get(rec.payload_type)
            self.packet(
                rec.ssrc,
                str(ctx.src),
                str(ctx.dst),
                rec.payload_type,
                rec.seq,
                rec.timestamp,
                clock,
                ctx.time,
            )

    def packet(
        self, ssrc: int, src: str, dst: str, pt: int, seq: int, timestamp: int, clock: int | None, t: float
    ) -> None:
        """One RTP packet of stream (ssrc, src, dst) arriving at `t`; `clock` counts only for the
        stream's first packet."""
        key = (ssrc, src, dst)
        s = self.streams.get(key)
        if s is None:
            s = self.streams[key] = Stream(ssrc, pt, src, dst, t)
            s.base_seq = s.max_ext_seq = seq
            s.clock = clock
        else:
            ext = self._extend(s, seq)
            if ext in s.seen:
                s.duplicates += 1
            elif ext < s.max_ext_seq:
                s.out_of_order += 1
            elif ext > s.max_ext_seq + 1:
                self._bucket(s, t)[1] += ext - s.max_ext_seq - 1  # a gap: packets lost here
            s.max_ext_seq = max(s.max_ext_seq, ext)
        s.payload_types.add(pt)
        ext_now = self._extend(s, seq) if s.packets else seq
        if len(s.seen) < MAX_SEEN:
            s.seen.add(ext_now)
        if s.prev_time is not None:
            s.max_delta = max(s.max_delta, (t - s.prev_time) * 1000)
        s.prev_time = t
        if s.clock:
            transit = t * s.clock - timestamp
            if s.prev_transit is not None:
                d = abs(transit - s.prev_transit)
                # RTP timestamps wrap at 2^32: take the nearest difference.
                d = min(d, abs(d - 2**32))
                s.jitter += (d - s.jitter) / 16
                s.max_jitter = max(s.max_jitter, s.jitter)
                bucket = self._bucket(s, t)
                bucket[0] = max(bucket[0], s.jitter)
            s.prev_transit = transit
            s.jitter_sum += s.jitter
        s.packets += 1
        s.last = t

    def feed_rtp(self, cols: RtpColumns) -> None:
        """RTP packets in bulk (see RtpColumns): each new stream's figures computed with numpy,
        equal to feeding its packets one by one (tested); a stream already begun packet by packet
        goes on that way."""
        if not len(cols):
            return
        key = cols.ssrc.astype(np.int64) << 32 | cols.endpoints.astype(np.int64)
        order = np.argsort(key, kind="stable")  # by stream, arrival order kept within each
        bounds = np.flatnonzero(np.diff(key[order])) + 1
        groups = np.split(order, bounds)
        groups.sort(key=lambda rows: int(rows[0]))  # streams begin in arrival order, as fed one by one
        for rows in groups:
            first = int(rows[0])
            src, dst = cols.pairs[int(cols.endpoints[first])]
            ssrc = int(cols.ssrc[first])
            clock = int(cols.clock[first]) or None
            if (ssrc, src, dst) in self.streams:
                for i in rows.tolist():
                    self.packet(
                        ssrc,
                        src,
                        dst,
                        int(cols.payload_type[i]),
                        int(cols.seq[i]),
                        int(cols.timestamp[i]),
                        clock,
                        float(cols.time[i]),
                    )
                continue
            self.streams[(ssrc, src, dst)] = bulk_stream(
                ssrc,
                src,
                dst,
                clock,
                cols.time[rows],
                cols.seq[rows],
                cols.timestamp[rows],
                cols.payload_type[rows],
            )

    @staticmethod
    def _bucket(s: Stream, t: float) -> list[float]:
        """[max jitter (clock units), packets lost] of the second of the stream that `t` falls in
        (a packet stamped before the stream's first counts in its first second)."""
        second = max(0, min(int(t - s.first), MAX_SECONDS - 1))
        while len(s.seconds) <= second:
            s.seconds.append([0.0, 0])
        return s.seconds[second]

    @staticmethod
    def _extend(s: Stream, seq: int) -> int:
        """The extended sequence number closest to the highest seen (RFC 3550 A.1)."""
        base = s.max_ext_seq & ~0xFFFF
        candidates = (base - 0x10000 + seq, base + seq, base + 0x10000 + seq)
        ext = min(candidates, key=lambda c: abs(c - s.max_ext_seq))
        if ext >> 16 > s.max_ext_seq >> 16:
            s.wraps += 1
        return ext

    def rows(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for s in sorted(self.streams.values(), key=lambda x: x.first):
            expected = s.max_ext_seq - s.base_seq + 1
            clock_ms = 1000 / s.clock if s.clock else 0.0
            out.append(
                {
                    "ssrc": s.ssrc,
                    "payload_type": s.payload_type,
                    "payload_types": sorted(s.payload_types),
                    "src": s.src,
                    "dst": s.dst,
                    "packets": s.packets,
                    "expected": expected,
                    "lost": expected - s.packets,  # negative with duplicates, as tshark counts
                    "duplicates": s.duplicates,
                    "out_of_order": s.out_of_order,
                    "sequence_wraps": s.wraps,
                    "max_delta_ms": round(s.max_delta, 3),
                    "max_jitter_ms": round(s.max_jitter * clock_ms, 3),
                    "mean_jitter_ms": round(s.jitter_sum / s.packets * clock_ms, 3) if s.packets else 0.0,
                    "clock_rate": s.clock,
                    "jitter_ms_per_second": [round(b[0] * clock_ms, 3) for b in s.seconds],
                    "lost_per_second": [int(b[1]) for b in s.seconds],
                    "first": s.first,
                    "last": s.last,
                }
            )
        return out


JITTER_BLOCK = 64
"""Packets per block of the vectorised jitter filter: (16/15)^64 ~ 62 keeps it exact to ~1e-14."""
A = 15 / 16


def _jitter(d: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """RFC 3550's J += (|D| - J) / 16 over `d`, from J = 0: J_k = A J_(k-1) + d_k / 16, a linear
    filter, computed in blocks (a scaled cumulative sum inside each, one carry between them)."""
    m = len(d)
    blocks = -(-m // JITTER_BLOCK)
    flat = np.zeros(blocks * JITTER_BLOCK)
    flat[:m] = d / 16
    x = flat.reshape(blocks, JITTER_BLOCK)
    r = np.arange(JITTER_BLOCK, dtype=np.float64)
    local = np.cumsum(x * A**-r, axis=1) * A**r  # each block as if it started from J = 0
    carry = np.zeros(blocks)
    decay = A**JITTER_BLOCK
    last = local[:, -1].tolist()
    j = 0.0
    for b in range(blocks):  # ~16k steps for a million packets
        carry[b] = j
        j = decay * j + last[b]
    out = local + carry[:, None] * A ** (r + 1)
    return out.reshape(-1)[:m]


def bulk_stream(
    ssrc: int,
    src: str,
    dst: str,
    clock: int | None,
    t: npt.NDArray[np.float64],
    seq16: npt.NDArray[np.uint16],
    timestamp: npt.NDArray[np.uint32],
    pt: npt.NDArray[np.uint8],
) -> Stream:
    """One stream's figures from its packets' columns (arrival order), as `StreamAnalysis.packet`
    would compute them one by one."""
    n = len(t)
    s = Stream(ssrc, int(pt[0]), src, dst, float(t[0]))
    seq = seq16.astype(np.int64)
    s.base_seq = int(seq[0])
    s.clock = clock
    # Extended sequence numbers: each the one nearest the highest so far (RFC 3550 A.1). Unwrapped
    # from the previous packet, that is the same whenever it lies within half a wrap of the highest.
    step = ((np.diff(seq) + 0x8000) & 0xFFFF) - 0x8000
    ext = np.concatenate(([seq[0]], seq[0] + np.cumsum(step)))
    top = np.maximum.accumulate(ext)
    prev_top = np.concatenate(([ext[0]], top[:-1]))
    dist = ext - prev_top
    if not bool(((np.abs(dist) < 0x8000) | (dist == -0x8000)).all()):
        return _stream_by_packets(ssrc, src, dst, clock, t, seq16, timestamp, pt)
    s.packets = n
    s.max_ext_seq = int(top[-1])
    s.wraps = int(np.count_nonzero((ext[1:] >> 16) > (prev_top[1:] >> 16)))
    # Duplicates: a number seen before, among the first MAX_SEEN distinct ones (the memory bound).
    _values, first_at, inverse = np.unique(ext, return_index=True, return_inverse=True)
    rank = np.empty(len(first_at), np.int64)
    rank[np.argsort(first_at)] = np.arange(len(first_at))
    dup = (first_at[inverse] < np.arange(n)) & (rank[inverse] < MAX_SEEN)
    dup[0] = False
    later = np.arange(n) > 0
    s.duplicates = int(np.count_nonzero(dup))
    s.out_of_order = int(np.count_nonzero(~dup & later & (ext < prev_top)))
    gap = ~dup & later & (ext > prev_top + 1)
    s.seen = set()  # only the per-packet path needs it, and only to go on
    s.payload_types = {int(p) for p in np.unique(pt).tolist()}
    if n > 1:
        s.max_delta = max(0.0, float(np.max(np.diff(t))) * 1000)
    s.prev_time = float(t[-1])
    s.last = float(t[-1])
    second = np.clip((t - t[0]).astype(np.int64), 0, MAX_SECONDS - 1)
    touched = second[gap]
    jitter = np.zeros(0)
    if clock:
        transit = t * clock - timestamp.astype(np.float64)
        d = np.abs(np.diff(transit))
        d = np.minimum(d, np.abs(d - 2.0**32))
        jitter = _jitter(d)
        s.prev_transit = float(transit[-1])
        if len(jitter):
            s.jitter = float(jitter[-1])
            s.max_jitter = max(0.0, float(jitter.max()))
            s.jitter_sum = float(jitter.sum())
            touched = np.concatenate((touched, second[1:]))
    if len(touched):
        size = int(touched.max()) + 1
        lost = np.zeros(size, np.int64)
        np.add.at(lost, second[gap], (ext - prev_top - 1)[gap])
        peak = np.zeros(size)
        if len(jitter):
            np.maximum.at(peak, second[1:], jitter)
        s.seconds = [[p, int(q)] for p, q in zip(peak.tolist(), lost.tolist(), strict=True)]
    return s


def _stream_by_packets(
    ssrc: int,
    src: str,
    dst: str,
    clock: int | None,
    t: npt.NDArray[np.float64],
    seq: npt.NDArray[np.uint16],
    timestamp: npt.NDArray[np.uint32],
    pt: npt.NDArray[np.uint8],
) -> Stream:
    """The exact per-packet computation, for streams whose numbering jumps by half a wrap."""
    one = StreamAnalysis()
    for i in range(len(t)):
        one.packet(ssrc, src, dst, int(pt[i]), int(seq[i]), int(timestamp[i]), clock, float(t[i]))
    return one.streams[(ssrc, src, dst)]
