"""What the streams report adds to each stream (streams.py): what receivers reported in RTCP (loss,
jitter, round trip from LSR/DLSR) and codec facts (codec, keyframes, frame rate, RTX repairs),
from RTCP aiortc packs, VP8 aiortc encodes and RTX it wraps, and from a real capture's RR."""

from __future__ import annotations

import fractions
import struct

import numpy as np
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtp import (
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpSenderInfo,
    RtcpSrPacket,
    RtpPacket,
    wrap_rtx,
)
from av import VideoFrame

from protoscope.decoders.api import Endpoint, FlowContext, Pdu, RtpColumns
from protoscope.decoders.registry import load_registry
from protoscope.decoders.rtp.packets import RtpRecord, parse_rtcp, parse_rtp
from protoscope.decoders.rtp.streams import NTP_EPOCH_OFFSET, StreamAnalysis
from protoscope.inspector.report.rows import analysis_rows
from protoscope.inspector.session import Session
from tests.conftest import public_capture

SENDER, RECEIVER = Endpoint("10.0.0.1", 5000), Endpoint("10.0.0.2", 6000)
MEDIA = 0x1111
HINTS = {"rtp.encoding.96": "VP8", "rtp.clock.96": "90000", "rtp.encoding.97": "rtx"}
NEW_KEYS = ("reported_lost", "reported_fraction_lost", "reported_jitter_ms", "rtt_ms", "codec",
            "keyframes", "frame_rate", "rtx_repaired")  # fmt: skip


def ctx(t: float, forward: bool = True) -> FlowContext:
    src, dst = (SENDER, RECEIVER) if forward else (RECEIVER, SENDER)
    return FlowContext(1, "udp", src, dst, forward, 1, t, hints=HINTS)


def feed_rtp(a: StreamAnalysis, data: bytes, t: float, clock: int | None = 90000) -> None:
    rec, _, _ = parse_rtp(data, clock)
    assert rec is not None
    payload = data[12:]
    rec = RtpRecord(
        rec.ssrc, rec.seq, rec.timestamp, rec.payload_type, rec.marker, rec.payload_len, clock, payload
    )
    a.feed(Pdu("rtp", (), (0, len(data)), record=rec), ctx(t))


def feed_rtcp(a: StreamAnalysis, data: bytes, t: float) -> None:
    rec, _, findings = parse_rtcp(data)
    assert not findings
    a.feed(Pdu("rtcp", (), (0, len(data)), record=rec), ctx(t, forward=False))


def row(a: StreamAnalysis, ssrc: int = MEDIA) -> dict[str, object]:
    return next(r for r in a.rows() if r["ssrc"] == ssrc)


def test_receiver_reports_and_round_trip() -> None:
    """SR sent at t=10.0 with NTP middle 32 bits M; the RR about it, captured at t=10.6, echoes M
    with DLSR 0.5 s: 100 ms round trip, whatever the hosts' clocks say."""
    a = StreamAnalysis()
    for k in range(50):
        feed_rtp(
            a,
            RtpPacket(
                payload_type=0, sequence_number=k, timestamp=160 * k, ssrc=MEDIA, payload=b"\xff" * 160
            ).serialize(),
            9.0 + k * 0.02,
            8000,
        )
    ntp = 0xE1234567_89ABCDEF
    sr = RtcpSrPacket(
        ssrc=MEDIA,
        sender_info=RtcpSenderInfo(ntp_timestamp=ntp, rtp_timestamp=8000, packet_count=50, octet_count=8000),
    )
    feed_rtcp(a, bytes(sr), 10.0)
    report = RtcpReceiverInfo(
        ssrc=MEDIA,
        fraction_lost=64,
        packets_lost=3,
        highest_sequence=49,
        jitter=80,
        lsr=(ntp >> 16) & 0xFFFFFFFF,
        dlsr=32768,
    )
    feed_rtcp(a, bytes(RtcpRrPacket(ssrc=0x2222, reports=[report])), 10.6)
    r = row(a)
    assert (r["reported_lost"], r["reported_fraction_lost"], r["reported_jitter_ms"]) == (3, 0.25, 10.0)
    assert r["rtt_ms"] == 100.0 and r["codec"] == "PCMU"


def test_round_trip_without_the_sr_uses_the_capture_clock() -> None:
    """No SR captured: the RR's capture time as NTP is the arrival (RFC 3550 section 6.4.1)."""
    a = StreamAnalysis()
    feed_rtp(a, RtpPacket(payload_type=0, sequence_number=1, timestamp=0, ssrc=MEDIA).serialize(), 99.0, 8000)
    t = 1_700_000_000.25
    lsr = int((t - 0.3 + NTP_EPOCH_OFFSET) * 65536) & 0xFFFFFFFF  # an SR sent 300 ms before
    report = RtcpReceiverInfo(
        ssrc=MEDIA, fraction_lost=0, packets_lost=0, highest_sequence=1, jitter=0, lsr=lsr, dlsr=65536 // 10
    )
    feed_rtcp(a, bytes(RtcpRrPacket(ssrc=0x2222, reports=[report])), t)
    assert abs(float(str(row(a)["rtt_ms"])) - 200.0) < 0.1
    report = RtcpReceiverInfo(
        ssrc=MEDIA,
        fraction_lost=0,
        packets_lost=0,
        highest_sequence=1,
        jitter=0,
        lsr=lsr ^ 0x80000000,
        dlsr=0,
    )
    feed_rtcp(a, bytes(RtcpRrPacket(ssrc=0x2222, reports=[report])), t)
    assert row(a)["rtt_ms"] is None  # clocks that disagree by hours give no figure


def test_vp8_keyframes_frame_rate_and_rtx() -> None:
    """Eight frames at 30 fps, keyframes asked for at 0 and 5, VP8 as aiortc packetizes it; two
    of its packets resent on RTX (RFC 4588) with their original sequence numbers."""
    encoder = Vp8Encoder()
    a = StreamAnalysis()
    seq = 0
    sent: list[RtpPacket] = []
    for i in range(8):
        img = np.random.default_rng(i).integers(0, 255, (120, 160, 3), dtype=np.uint8)
        frame = VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts, frame.time_base = i * 3000, fractions.Fraction(1, 90000)
        payloads, ts = encoder.encode(frame, force_keyframe=i in (0, 5))
        for k, payload in enumerate(payloads):
            pkt = RtpPacket(
                payload_type=96,
                sequence_number=seq,
                timestamp=ts,
                ssrc=MEDIA,
                marker=k == len(payloads) - 1,
                payload=payload,
            )
            feed_rtp(a, pkt.serialize(), 1.0 + i / 30)
            sent.append(pkt)
            seq += 1
    for k, original in enumerate([sent[3], sent[5], sent[3]]):
        rtx = wrap_rtx(original, payload_type=97, sequence_number=k, ssrc=0x9999)
        feed_rtp(a, rtx.serialize(), 2.0 + k / 100)
    r = row(a)
    assert (r["codec"], r["keyframes"], r["frame_rate"]) == ("VP8", 2, 30.0)
    rtx_row = row(a, 0x9999)
    assert (rtx_row["codec"], rtx_row["rtx_repaired"], rtx_row["keyframes"]) == ("rtx", 2, None)


def test_bulk_streams_do_not_claim_counts() -> None:
    a = StreamAnalysis()
    n = 10
    a.feed_rtp(
        RtpColumns(
            time=np.arange(n, dtype=np.float64) / 30,
            endpoints=np.zeros(n, np.int32),
            pairs=[(str(SENDER), str(RECEIVER))],
            ssrc=np.full(n, MEDIA, np.uint32),
            seq=np.arange(n, dtype=np.uint16),
            timestamp=np.arange(n, dtype=np.uint32) * 3000,
            payload_type=np.full(n, 96, np.uint8),
            marker=np.ones(n, np.bool_),
            clock=np.full(n, 90000, np.int64),
        )
    )
    r = row(a)
    assert all(k in r for k in NEW_KEYS)
    assert (r["keyframes"], r["frame_rate"], r["rtx_repaired"], r["rtt_ms"]) == (None, None, None, None)


def test_real_receiver_report() -> None:
    """wswiki--1920x1080_H.265: the client's RRs about the H.265 stream (LSR 0: no SR yet, so no
    round trip); the last says cumulative loss -1 (a duplicate) and jitter 1528, in ms when the
    stream has a clock rate."""
    session = Session.open(public_capture("wswiki--1920x1080_H.265.pcapng"), load_registry())
    try:
        rows = list(analysis_rows(session, "streams"))
    finally:
        session.close()
    r = next(r for r in rows if r["ssrc"] == 0x3D208345)
    assert (r["reported_lost"], r["reported_fraction_lost"], r["rtt_ms"]) == (-1, 0.0, None)  # as tshark
    clock = r["clock_rate"]
    want = round(1528 * 1000 / clock, 3) if isinstance(clock, int) else None
    assert r["reported_jitter_ms"] == want
    for other in rows:
        assert all(k in other for k in NEW_KEYS)


def test_sr_memory_is_bounded() -> None:
    a = StreamAnalysis()
    for k in range(5000):
        sr = struct.pack(">BBHIIIIII", 0x80, 200, 6, k, k, 0, 0, 0, 0)
        feed_rtcp(a, sr, float(k))
    assert len(a.sr_sent) <= 4096
