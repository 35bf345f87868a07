"""The bulk RTP path of `--report streams` gives the rows the plain pass gives (every PDU through
`feed`), mean jitter included, on our WebRTC and SRTP samples and on every public capture with RTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from protoscope.decoders.registry import load_registry
from protoscope.inspector.bulk import plan_rtp, rows_with_bulk_rtp
from protoscope.inspector.report.rows import analysis_rows
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES, public_capture
from tests.decoders.rtp.test_streams_oracle import rtp_captures

FLOATS = ("max_delta_ms", "max_jitter_ms", "mean_jitter_ms", "jitter_ms_per_second")


def plain_rows(session: Session) -> list[dict[str, Any]]:
    analysis = session.registry.analysis("streams")
    for pd in session.decode():
        ctx = session.context(pd.index)
        for pdu in pd.pdus:
            analysis.feed(pdu, ctx)
    return analysis.rows()


def same(bulk: list[dict[str, Any]], plain: list[dict[str, Any]]) -> None:
    assert [(r["ssrc"], r["src"], r["dst"]) for r in bulk] == [(r["ssrc"], r["src"], r["dst"]) for r in plain]
    for b, p in zip(bulk, plain, strict=True):
        for k, v in p.items():
            assert b[k] == (pytest.approx(v, abs=0.0011) if k in FLOATS else v), (b["ssrc"], k)


SRTCP_SAMPLE = Path(__file__).resolve().parent.parent / "decoders" / "rtp" / "samples" / "srtcp-libsrtp.pcap"
CAPTURES = [
    SAMPLES / "webrtc-direct.pcap",
    SAMPLES / "webrtc-turn.pcap",
    SRTCP_SAMPLE,
    *sorted(rtp_captures()),
]


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda c: Path(str(c)).name)
def test_bulk_rows_equal_the_plain_pass(capture: Path | str) -> None:
    path = capture if isinstance(capture, Path) else public_capture(capture)
    session = Session.open(path, load_registry())
    try:
        bulk = list(analysis_rows(session, "streams"))
        same(bulk, plain_rows(session))
    finally:
        session.close()


def test_bulk_path_is_taken_and_checked_on_the_direct_call() -> None:
    """webrtc-direct has RTP flows of more than HELD_PER_FLOW packets, muxed with STUN and DTLS:
    the plan finds them, and every held packet decoded as the plan read it."""
    session = Session.open(SAMPLES / "webrtc-direct.pcap", load_registry())
    try:
        plan = plan_rtp(session)
        assert plan is not None and len(plan.packets) >= 100 and (~plan.held).any()
        rows = rows_with_bulk_rtp(session, session.registry.analysis("streams"), plan)
        assert rows is not None and len(list(rows)) >= 2
    finally:
        session.close()


def test_a_flow_that_does_not_decode_as_rtp_falls_back_to_the_plain_pass(tmp_path: Path) -> None:
    """Datagrams that look like RTP on port 53 (the RTP heuristic never takes ports below 1024):
    the held packets decode to nothing, so the bulk path declines and the plain pass answers."""
    from tests.pcapgen import udp_packets, write

    payloads = [bytes([0x80, 0x00]) + n.to_bytes(2, "big") + bytes(8) + b"x" * 20 for n in range(100)]
    path = write(tmp_path / "dns-like.pcap", udp_packets(payloads, sport=53, dport=53))
    session = Session.open(path, load_registry())
    try:
        plan = plan_rtp(session)
        assert plan is not None and len(plan.packets) == 100
        assert rows_with_bulk_rtp(session, session.registry.analysis("streams"), plan) is None
        assert list(analysis_rows(session, "streams")) == plain_rows(session) == []
    finally:
        session.close()
