"""RTP streams (`--report streams`): per SSRC and direction, like `tshark -z rtp,streams`.

Loss, duplicates, reordering and sequence wraps from the extended sequence number (RFC 3550
appendix A.1); jitter per RFC 3550 section 6.4.1 from capture timestamps, with the clock rate
of the static payload type (dynamic types without signaling have none, and no jitter).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from protoscope.decoders.api import FlowContext, Pdu

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
        if not isinstance(rec, RtpRecord):
            return
        key = (rec.ssrc, str(ctx.src), str(ctx.dst))
        s = self.streams.get(key)
        t = ctx.time
        if s is None:
            s = self.streams[key] = Stream(rec.ssrc, rec.payload_type, str(ctx.src), str(ctx.dst), t)
            s.base_seq = s.max_ext_seq = rec.seq
            s.clock = rec.clock or STATIC_CLOCK.get(rec.payload_type)
        else:
            ext = self._extend(s, rec.seq)
            if ext in s.seen:
                s.duplicates += 1
            elif ext < s.max_ext_seq:
                s.out_of_order += 1
            elif ext > s.max_ext_seq + 1:
                self._bucket(s, t)[1] += ext - s.max_ext_seq - 1  # a gap: packets lost here
            s.max_ext_seq = max(s.max_ext_seq, ext)
        s.payload_types.add(rec.payload_type)
        ext_now = self._extend(s, rec.seq) if s.packets else rec.seq
        if len(s.seen) < MAX_SEEN:
            s.seen.add(ext_now)
        if s.prev_time is not None:
            s.max_delta = max(s.max_delta, (t - s.prev_time) * 1000)
        s.prev_time = t
        if s.clock:
            transit = t * s.clock - rec.timestamp
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

    @staticmethod
    def _bucket(s: Stream, t: float) -> list[float]:
        """[max jitter (clock units), packets lost] of the second of the stream that `t` falls in."""
        second = min(int(t - s.first), MAX_SECONDS - 1)
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
