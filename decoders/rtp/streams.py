"""RTP streams (`--report streams`): per SSRC and direction, like `tshark -z rtp,streams`.

Loss, duplicates, reordering and sequence wraps from the extended sequence number (RFC 3550
appendix A.1). Jitter per RFC 3550 section 6.4.1 from capture timestamps, in milliseconds, with
each packet's clock rate (signaling's rtpmap, else the static payload type; none for dynamic types
without signaling and for RFC 4733 telephone-event, whose timestamp stands still during an event).
Max delta and max jitter count "regular" packets only, as Wireshark's RTP analysis does
(ui/tap-rtp-analysis.c): not a stream's first packet, not one with the marker bit, not comfort noise
(PT 13 or 19) or the packet after it, not one whose timestamp went backwards. The jitter of a packet
compares its arrival with the previous packet's and its timestamp with that of the last packet that
had a clock, as Wireshark does around telephone-event packets. Mean jitter is taken over the packets
max jitter counts, the way Wireshark keeps it (a running mean weighted by the stream's packets).

Beside what the capture shows, what the receivers reported in RTCP (RFC 3550 section 6.4.1) about
each stream's SSRC: the last report block's cumulative and fractional loss and jitter (in ms by the
stream's clock), and the round-trip time of the SR sender from LSR/DLSR: the arrival of the report
minus DLSR minus the time the echoed SR was sent. Both ends are capture timestamps when the SR
was captured (the time of the SR whose NTP middle 32 bits equal LSR), so the figure does not
depend on the hosts' clocks; otherwise the report's capture time as NTP is taken as the arrival,
which holds when the capturing host's clock agrees with the SR sender's, and a result outside
0-60 s is dropped.

Codec facts: the codec's name (signaling's `rtp.encoding.<pt>`, else the static type's), the frame
rate of video (frames, told by the marker bit on distinct timestamps, over the time from the first
frame to the last), both from headers alone; and from payloads in the clear (codecs.py), so only
from packets fed one by one (`feed`) or from the bulk path's payload columns (`feed_rtp`: plain
RTP read and SRTP decrypted in bulk, see RtpColumns.payload_read), keyframes (distinct timestamps
of packets that start one) and, for an RTX stream (RFC 4588), how many distinct packets it
repaired. A stream some of whose packets came in columns without payload facts reports None for
keyframes and repairs, which it could not count on every packet; its codec name is signaling's
when the columns carry `encodings`, else the static payload type's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

import numpy as np
import numpy.typing as npt

from protoscope.decoders.api import FlowContext, Pdu, RtpColumns

from .codecs import READERS, STATIC_ENCODINGS, codec_fields, encoding_name
from .packets import RtcpRecord, RtpRecord
from .rtcp import ReportBlock

_Int = TypeVar("_Int", int, npt.NDArray[np.int64])

COMFORT_NOISE = (13, 19)
"""PT 13 (RFC 3389 comfort noise) and 19 (its old, reserved number)."""


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
    seen: set[int] = field(default_factory=set)
    duplicates: int = 0
    out_of_order: int = 0
    wraps: int = 0
    max_delta: float = 0.0
    """Milliseconds."""
    prev_time: float = 0.0
    prev_timestamp: int = 0
    prev_pt: int = -1
    first_timestamp: int = 0
    last_nominal: float = 0.0
    """Milliseconds of RTP time since the first packet, at the last packet that had a clock."""
    jitter: float = 0.0
    """Milliseconds, as all jitter figures here."""
    max_jitter: float = 0.0
    mean_jitter: float = 0.0
    """Wireshark's running mean (see `StreamAnalysis.packet`)."""
    clock: int | None = None
    payload_types: set[int] = field(default_factory=set)
    seconds: list[list[float]] = field(default_factory=list)
    """Per second of the stream: [max jitter in ms, packets lost] (for sparklines)."""
    codec: str | None = None
    """Signaling's (or the static type's) encoding name of its first payload type that has one."""
    bulk: bool = False
    """Some of its packets came through the bulk path, without payloads: no codec counts."""
    keyframes: int = 0
    last_keyframe: int | None = None
    """RTP timestamp of the last keyframe counted (a keyframe spans several packets)."""
    frames: int = 0
    last_frame: int | None = None
    first_frame_time: float = 0.0
    last_frame_time: float = 0.0
    repaired: set[int] = field(default_factory=set)
    """RTX: the original sequence numbers it carried (RFC 4588)."""
    video: bool = False
    payloads: int = 0
    """Packets whose payload in the clear its codec's reader read."""


@dataclass(slots=True)
class Reported:
    """What the last RTCP report block about one SSRC said, and the round trip it gave."""

    block: ReportBlock
    rtt_ms: float | None = None


MAX_SECONDS = 3600
"""Seconds of per-second series kept per stream; later packets fall in the last one."""
MAX_SEEN = 1 << 16
"""Sequence numbers remembered per stream for duplicate detection (one wrap's worth)."""
MAX_SR_REMEMBERED = 4096
"""SR send times remembered (by sender SSRC and NTP middle 32 bits) for round trips; the oldest go."""
MAX_RTT_S = 60.0
"""Round trips beyond this (or negative), from clocks that disagree, are not reported."""
MAX_REPAIRED = 1 << 16
NTP_EPOCH_OFFSET = 2208988800
"""Seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)."""
VIDEO_CODECS = frozenset({"vp8", "vp9", "h264"})


def _int32(value: _Int) -> _Int:
    """The signed 32-bit difference a 32-bit subtraction gives (RTP timestamps wrap)."""
    return (value + 2**31) % 2**32 - 2**31


class StreamAnalysis:
    name: ClassVar[str] = "streams"
    makes_findings: ClassVar[bool] = False
    """Its rows carry figures, never findings: the summary and findings reports need not feed it."""

    def __init__(self) -> None:
        self.streams: dict[tuple[int, str, str], Stream] = {}
        self.reported: dict[int, Reported] = {}
        """By the SSRC reported on: the last report block about it."""
        self.sr_sent: dict[tuple[int, int], float] = {}
        """(SR sender SSRC, NTP middle 32 bits) -> capture time of the SR."""

    def feed(self, pdu: Pdu, ctx: FlowContext) -> None:
        rec = pdu.record
        if isinstance(rec, RtpRecord):
            key = (rec.ssrc, str(ctx.src), str(ctx.dst))
            self.packet(
                rec.ssrc,
                key[1],
                key[2],
                rec.payload_type,
                rec.seq,
                rec.timestamp,
                rec.marker,
                rec.clock,
                ctx.time,
            )
            self._codec(self.streams[key], rec, ctx)
        elif isinstance(rec, RtcpRecord) and (rec.senders or rec.reports):
            self.rtcp(rec, ctx.time)

    def rtcp(self, rec: RtcpRecord, t: float) -> None:
        """An RTCP compound captured at `t`: its SRs' send times, its report blocks."""
        for sender in rec.senders:
            if len(self.sr_sent) >= MAX_SR_REMEMBERED:
                del self.sr_sent[next(iter(self.sr_sent))]
            self.sr_sent[(sender.ssrc, sender.ntp_middle)] = t
        for block in rec.reports:
            self.reported[block.ssrc] = Reported(block, self._rtt(block, t))

    def _rtt(self, block: ReportBlock, t: float) -> float | None:
        """Round trip in ms from a report block received at `t` (see the module docstring)."""
        if not block.lsr:
            return None  # no SR received yet by the reporter
        sent = self.sr_sent.get((block.ssrc, block.lsr))
        if sent is not None:
            rtt = t - sent - block.dlsr / 65536
        else:
            arrival = int((t + NTP_EPOCH_OFFSET) * 65536) & 0xFFFFFFFF
            rtt = ((arrival - block.lsr - block.dlsr) % 2**32) / 65536
        return round(rtt * 1000, 3) if 0 <= rtt <= MAX_RTT_S else None

    @staticmethod
    def _codec(s: Stream, rec: RtpRecord, ctx: FlowContext) -> None:
        """Codec facts of one packet fed one by one (its payload, when in the clear)."""
        name = encoding_name(rec.payload_type, ctx.hints)
        if not name:
            return
        _name_codec(s, name)
        if s.video and rec.marker and rec.timestamp != s.last_frame:
            if not s.frames:
                s.first_frame_time = ctx.time
            s.frames += 1
            s.last_frame, s.last_frame_time = rec.timestamp, ctx.time
        key = name.lower()
        if rec.payload is None or key not in READERS:
            return
        s.payloads += 1
        _, facts = codec_fields(key, rec.payload, 0)
        if facts is None:
            return
        if facts.keyframe and rec.timestamp != s.last_keyframe:
            s.keyframes += 1
            s.last_keyframe = rec.timestamp
        if facts.original_seq is not None and len(s.repaired) < MAX_REPAIRED:
            s.repaired.add(facts.original_seq)

    def packet(
        self,
        ssrc: int,
        src: str,
        dst: str,
        pt: int,
        seq: int,
        timestamp: int,
        marker: bool,
        clock: int | None,
        t: float,
    ) -> None:
        """One RTP packet of stream (ssrc, src, dst) arriving at `t` (seconds); `clock` is its
        payload type's rate (None: no jitter for this packet)."""
        key = (ssrc, src, dst)
        s = self.streams.get(key)
        first = s is None
        if s is None:
            s = self.streams[key] = Stream(ssrc, pt, src, dst, t)
            s.base_seq = s.max_ext_seq = seq
            s.clock = clock
            s.first_timestamp = timestamp
            _name_codec(s, STATIC_ENCODINGS.get(pt, ""))  # signaling's name, if any, comes in feed
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
        ext_now = seq if first else self._extend(s, seq)
        if len(s.seen) < MAX_SEEN:
            s.seen.add(ext_now)
        delta = 0.0 if first else (t - s.prev_time) * 1000
        if clock:
            nominal = ((timestamp - s.first_timestamp) % 2**32) * 1000 / clock
            if not first:
                d = abs(delta - (nominal - s.last_nominal))
                s.jitter = (15 * s.jitter + d) / 16
                bucket = self._bucket(s, t)
                bucket[0] = max(bucket[0], s.jitter)
            s.last_nominal = nominal
        regular = not (
            first
            or marker
            or pt in COMFORT_NOISE
            or s.prev_pt in COMFORT_NOISE
            or _int32(timestamp - s.prev_timestamp) < 0
        )
        if regular:
            s.max_delta = max(s.max_delta, delta)
            if clock:
                s.max_jitter = max(s.max_jitter, s.jitter)
                # The mean over the packets max jitter counts, as Wireshark keeps it
                # (ui/tap-rtp-analysis.c): each such packet moves it by (J - mean) / n, n being the
                # stream's packets before this one, counted or not. It is the plain mean when every
                # packet counts, and never above max jitter (the weights add up to at most 1).
                s.mean_jitter += (s.jitter - s.mean_jitter) / s.packets
        s.prev_time, s.prev_timestamp, s.prev_pt = t, timestamp, pt
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
            name = _bulk_name(cols, src, dst, int(cols.payload_type[first]))
            if (ssrc, src, dst) in self.streams:
                self._bulk_codec(self.streams[(ssrc, src, dst)], name, cols, rows)
                self.packets(
                    ssrc,
                    src,
                    dst,
                    cols.time[rows],
                    cols.seq[rows],
                    cols.timestamp[rows],
                    cols.payload_type[rows],
                    cols.marker[rows],
                    cols.clock[rows],
                )
                continue
            stream = self.streams[(ssrc, src, dst)] = bulk_stream(
                ssrc,
                src,
                dst,
                cols.time[rows],
                cols.seq[rows],
                cols.timestamp[rows],
                cols.payload_type[rows],
                cols.marker[rows],
                cols.clock[rows],
            )
            self._bulk_codec(stream, name, cols, rows)

    @staticmethod
    def _bulk_codec(s: Stream, name: str, cols: RtpColumns, rows: npt.NDArray[np.int64]) -> None:
        """The codec name and video frames of a stream's packets fed in bulk; keyframes and RTX
        repairs as `_codec` counts them one by one when the columns say how each payload was read
        (`payload_read`), else the stream is marked `bulk` (its codec counts unknown)."""
        if name:
            _name_codec(s, name)
        if s.video:
            _frames(s, cols.marker[rows], cols.timestamp[rows], cols.time[rows])
        read, clear, keyframe = cols.payload_read, cols.clear, cols.keyframe
        if read is None or clear is None or keyframe is None or not bool(read[rows].all()):
            s.bulk = True
            return
        src, dst = cols.pairs[int(cols.endpoints[rows[0]])]
        pts = cols.payload_type[rows]
        readable = {pt: _bulk_name(cols, src, dst, pt).lower() in READERS for pt in np.unique(pts).tolist()}
        counted = clear[rows] & np.array([readable[pt] for pt in pts.tolist()], np.bool_)
        s.payloads += int(np.count_nonzero(counted))
        stamps = cols.timestamp[rows[counted & keyframe[rows]]].astype(np.int64)
        if len(stamps):
            last = -1 if s.last_keyframe is None else s.last_keyframe
            s.keyframes += int(np.count_nonzero(stamps != np.concatenate(([last], stamps[:-1]))))
            s.last_keyframe = int(stamps[-1])
        if cols.original_seq is not None:
            for osn in cols.original_seq[rows[counted]].tolist():
                if osn >= 0 and len(s.repaired) < MAX_REPAIRED:
                    s.repaired.add(osn)

    def packets(
        self,
        ssrc: int,
        src: str,
        dst: str,
        t: npt.NDArray[np.float64],
        seq: npt.NDArray[np.uint16],
        timestamp: npt.NDArray[np.uint32],
        pt: npt.NDArray[np.uint8],
        marker: npt.NDArray[np.bool_],
        clock: npt.NDArray[np.int64],
    ) -> None:
        """One stream's packets from columns, one by one."""
        columns = (t, seq, timestamp, pt, marker, clock)
        rows = zip(*(c.tolist() for c in columns), strict=True)
        for when, number, stamp, kind, mark, rate in rows:
            self.packet(ssrc, src, dst, kind, number, stamp, mark, rate or None, when)

    @staticmethod
    def _bucket(s: Stream, t: float) -> list[float]:
        """[max jitter (ms), packets lost] of the second of the stream that `t` falls in (a
        packet stamped before the stream's first counts in its first second)."""
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
        """A row per stream, in the order they began; the analysis is left as it was."""
        out: list[dict[str, object]] = []
        for s in sorted(self.streams.values(), key=lambda x: x.first):
            expected = s.max_ext_seq - s.base_seq + 1
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
                    "max_jitter_ms": round(s.max_jitter, 3),
                    "mean_jitter_ms": round(s.mean_jitter, 3),
                    "clock_rate": s.clock,
                    "jitter_ms_per_second": [round(b[0], 3) for b in s.seconds],
                    "lost_per_second": [int(b[1]) for b in s.seconds],
                    "first": s.first,
                    "last": s.last,
                    **self._quality(s),
                }
            )
        return out

    def _quality(self, s: Stream) -> dict[str, object]:
        """The receivers' reports about the stream and its codec facts (see the module docstring)."""
        r = self.reported.get(s.ssrc)
        counted = not s.bulk and s.payloads > 0
        frame_span = s.last_frame_time - s.first_frame_time
        rate = (s.frames - 1) / frame_span if s.video and s.frames > 1 and frame_span > 0 else None
        rtx = s.codec is not None and s.codec.lower() == "rtx"
        return {
            "reported_lost": r.block.cumulative_lost if r else None,
            "reported_fraction_lost": round(r.block.fraction_lost / 256, 4) if r else None,
            "reported_jitter_ms": round(r.block.jitter * 1000 / s.clock, 3) if r and s.clock else None,
            "rtt_ms": r.rtt_ms if r else None,
            "codec": s.codec,
            "keyframes": s.keyframes if counted and s.video else None,
            "frame_rate": round(rate, 3) if rate is not None else None,
            "rtx_repaired": len(s.repaired) if counted and rtx else None,
        }

    def snapshot(self) -> list[dict[str, object]]:
        """The rows as if the capture ended now (`Analysis`): `rows()` changes nothing."""
        return self.rows()


def _bulk_name(cols: RtpColumns, src: str, dst: str, pt: int) -> str:
    """A bulk stream's encoding: what the columns say signaling named (an `encodings` mapping of
    (source, destination, payload type), when the session gives one), else the static type's."""
    named = getattr(cols, "encodings", None)
    if isinstance(named, Mapping):
        found = named.get((src, dst, pt))
        if isinstance(found, str) and found:
            return found
    return STATIC_ENCODINGS.get(pt, "")


def _name_codec(s: Stream, name: str) -> None:
    if s.codec is None and name:
        s.codec = name
        s.video = name.lower() in VIDEO_CODECS


def _frames(
    s: Stream, marker: npt.NDArray[np.bool_], timestamp: npt.NDArray[np.uint32], t: npt.NDArray[np.float64]
) -> None:
    """Video frames of packets in columns, as `StreamAnalysis._codec` counts them one by one: a
    packet with the marker bit (set on a frame's last packet, RFC 3551 section 4.1) whose
    timestamp differs from the last such packet's ends a frame."""
    stamps = timestamp[marker].astype(np.int64)
    if not len(stamps):
        return
    times = t[marker]
    previous = np.concatenate(([-1 if s.last_frame is None else s.last_frame], stamps[:-1]))
    new = stamps != previous
    count = int(np.count_nonzero(new))
    if not count:
        return
    if not s.frames:
        s.first_frame_time = float(times[new][0])
    s.frames += count
    s.last_frame, s.last_frame_time = int(stamps[-1]), float(times[new][-1])


JITTER_BLOCK = 64
"""Packets per block of the vectorised jitter filter: (16/15)^64 ~ 62 keeps it exact to ~1e-14."""
A = 15 / 16


def _jitter(d: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """RFC 3550's J = (15 J + |D|) / 16 over `d`, from J = 0: J_k = A J_(k-1) + d_k / 16, a linear
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


def _running_mean(values: npt.NDArray[np.float64], before: npt.NDArray[np.int64]) -> float:
    """Wireshark's mean jitter after the updates m += (v - m) / n, n = `before` (the stream's
    packets before each counted one, ascending, at least 1), from m = 0.

    Over a run of consecutive n from a to b the updates telescope: m becomes m (a - 1) / b + S / b,
    S the run's sum. Over the runs, with f_r = (a_r - 1) / b_r and P_r their product up to r,
    m = P_last * sum(S_r / (b_r P_r)). The runs do not overlap, so P_r >= 1 / b_last: no underflow.
    f is 1 for a run from n = 1 (the first update, when m is still 0)."""
    if not len(values):
        return 0.0
    starts = np.flatnonzero(np.concatenate(([True], np.diff(before) != 1)))
    sums = np.add.reduceat(values, starts)
    a = before[starts].astype(np.float64)
    b = before[np.concatenate((starts[1:], [len(before)])) - 1].astype(np.float64)
    product = np.cumprod(np.where(a > 1, (a - 1) / b, 1.0))
    return float(product[-1] * np.sum(sums / (b * product)))


def bulk_stream(
    ssrc: int,
    src: str,
    dst: str,
    t: npt.NDArray[np.float64],
    seq16: npt.NDArray[np.uint16],
    timestamp: npt.NDArray[np.uint32],
    pt: npt.NDArray[np.uint8],
    marker: npt.NDArray[np.bool_],
    clock: npt.NDArray[np.int64],
) -> Stream:
    """One stream's figures from its packets' columns (arrival order), as `StreamAnalysis.packet`
    would compute them one by one."""
    n = len(t)
    s = Stream(ssrc, int(pt[0]), src, dst, float(t[0]))
    seq = seq16.astype(np.int64)
    s.base_seq = int(seq[0])
    s.clock = int(clock[0]) or None
    s.first_timestamp = int(timestamp[0])
    # Extended sequence numbers: each the one nearest the highest so far (RFC 3550 A.1). Unwrapped
    # from the previous packet, that is the same whenever it lies within half a wrap of the highest.
    step = ((np.diff(seq) + 0x8000) & 0xFFFF) - 0x8000
    ext = np.concatenate(([seq[0]], seq[0] + np.cumsum(step)))
    top = np.maximum.accumulate(ext)
    prev_top = np.concatenate(([ext[0]], top[:-1]))
    dist = ext - prev_top
    if not bool(((np.abs(dist) < 0x8000) | (dist == -0x8000)).all()):
        one = StreamAnalysis()  # numbering jumps by half a wrap: the exact per-packet computation
        one.packets(ssrc, src, dst, t, seq16, timestamp, pt, marker, clock)
        return one.streams[(ssrc, src, dst)]
    index = np.arange(n)
    s.packets = n
    s.max_ext_seq = int(top[-1])
    s.wraps = int(np.count_nonzero((ext[1:] >> 16) > (prev_top[1:] >> 16)))
    # Duplicates: a number seen before, among the first MAX_SEEN distinct ones (the memory bound).
    _values, first_at, inverse = np.unique(ext, return_index=True, return_inverse=True)
    rank = np.empty(len(first_at), np.int64)
    rank[np.argsort(first_at)] = np.arange(len(first_at))
    dup = (first_at[inverse] < index) & (rank[inverse] < MAX_SEEN)
    later = index > 0
    s.duplicates = int(np.count_nonzero(dup))
    s.out_of_order = int(np.count_nonzero(~dup & later & (ext < prev_top)))
    gap = ~dup & later & (ext > prev_top + 1)
    del first_at, inverse, rank, top, dist, step
    s.seen = set()  # only the per-packet path needs it, and only to go on
    s.payload_types = {int(p) for p in np.unique(pt).tolist()}
    s.last = s.prev_time = float(t[-1])
    s.prev_timestamp, s.prev_pt = int(timestamp[-1]), int(pt[-1])
    delta = np.concatenate(([0.0], np.diff(t) * 1000))
    ts = timestamp.astype(np.int64)
    comfort = np.isin(pt, COMFORT_NOISE)
    backwards = _int32(np.diff(ts)) < 0
    regular = later & ~marker & ~comfort & ~np.concatenate(([False], comfort[:-1] | backwards))
    if regular.any():
        s.max_delta = max(0.0, float(delta[regular].max()))
    # Jitter: updated at each packet with a clock, from its arrival against the previous packet's
    # and its RTP time against that of the last packet with a clock (0 before any).
    clocked = clock > 0
    nominal = np.zeros(n)
    nominal[clocked] = ((ts[clocked] - s.first_timestamp) % 2**32) * 1000 / clock[clocked]
    last_clocked = np.maximum.accumulate(np.where(clocked, index, -1))
    before = np.concatenate(([-1], last_clocked[:-1]))
    last_nominal = np.where(before >= 0, nominal[np.maximum(before, 0)], 0.0)
    update = clocked & later
    jitter = np.zeros(n)
    if update.any():
        jitter[update] = _jitter(np.abs(delta[update] - (nominal[update] - last_nominal[update])))
        # Between updates the jitter stands: carry each value forward.
        last_update = np.maximum.accumulate(np.where(update, index, -1))
        jitter = np.where(last_update >= 0, jitter[np.maximum(last_update, 0)], 0.0)
        s.jitter = float(jitter[-1])
        counted = regular & clocked
        if counted.any():
            s.max_jitter = max(0.0, float(jitter[counted].max()))
            s.mean_jitter = _running_mean(jitter[counted], index[counted])
    if clocked.any():
        s.last_nominal = float(nominal[last_clocked[-1]])
    second = np.clip((t - t[0]).astype(np.int64), 0, MAX_SECONDS - 1)
    touched = np.concatenate((second[gap], second[update]))
    if len(touched):
        size = int(touched.max()) + 1
        lost = np.zeros(size, np.int64)
        np.add.at(lost, second[gap], (ext - prev_top - 1)[gap])
        peak = np.zeros(size)
        np.maximum.at(peak, second[update], jitter[update])
        s.seconds = [[p, int(q)] for p, q in zip(peak.tolist(), lost.tolist(), strict=True)]
    return s
