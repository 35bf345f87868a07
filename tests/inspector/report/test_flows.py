"""The flows report names what each flow carries, as the viewer's flow label does (issue 11): both
come from `FlowProtocols`, filled by one decoding pass."""

from __future__ import annotations

from typing import Any

import pytest

from protoscope.decoders.registry import load_registry
from protoscope.inspector.bulk import plan_rtp
from protoscope.inspector.model import CaptureModel
from protoscope.inspector.report import rows
from protoscope.inspector.report.rows import flow_rows, protocols_label
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES, public_capture

SIGNALING = ["tcp", "http", "websocket", "sdp"]
"""aiortc's peers exchange SDP over a WebSocket (captures/samples/make_webrtc.py)."""
MEDIA = ["udp", "stun", "dtls", "rtp", "srtcp"]
"""A WebRTC 5-tuple: ICE checks, the DTLS handshake, then SRTP (its RTP headers) and SRTCP."""

EXPECTED = {
    "grpc-demo": [["tcp", "http2", "grpc"]],
    "grpc-midstream": [["tcp", "http2", "grpc"]],
    "webrtc-direct": [SIGNALING, SIGNALING, MEDIA],
    # Signaling, a STUN server check, two clients' TURN allocations (ICE, DTLS and media relayed
    # in them) and the relay's own leg to the peer.
    "webrtc-turn": [SIGNALING, SIGNALING, ["udp", "stun"], MEDIA, MEDIA, MEDIA],
    "loopback-basic": [["tcp"], ["udp"]],
}


def report(name: str) -> list[dict[str, Any]]:
    session = Session.open(SAMPLES / f"{name}.pcap", load_registry())
    try:
        return list(flow_rows(session))
    finally:
        session.close()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_flows_report_protocols_equal_the_viewers_labels(name: str) -> None:
    flows = report(name)
    assert [f["protocols"] for f in flows] == EXPECTED[name]
    model = CaptureModel(Session.open(SAMPLES / f"{name}.pcap", load_registry()))
    try:
        model.decode_all()
        assert [f["label"] for f in flows] == [model.flow_label(f["id"]) for f in flows]
    finally:
        model.session.close()


def test_labels() -> None:
    assert protocols_label(["http2", "grpc"]) == "gRPC/HTTP2"
    assert protocols_label(["stun", "dtls", "rtp", "srtcp"]) == "STUN+DTLS+RTP+SRTCP"
    assert protocols_label(["http", "websocket", "sdp"]) == "HTTP+WebSocket+SDP"
    assert protocols_label(["http", "grpc"]) == "HTTP+gRPC"  # gRPC-Web over HTTP/1.1
    assert protocols_label([]) == ""
    assert report("grpc-demo")[0]["label"] == "gRPC/HTTP2"
    assert report("loopback-basic")[1]["label"] == "UDP"


def test_without_decoders_the_flows_are_their_transport() -> None:
    registry = load_registry(use_plugins=False)
    registry.decoders.clear()
    session = Session.open(SAMPLES / "grpc-demo.pcap", registry)
    try:
        assert [(f["protocols"], f["label"]) for f in flow_rows(session)] == [(["tcp"], "TCP")]
    finally:
        session.close()


RTP_CAPTURES = [
    ("samples", "webrtc-direct.pcap"),
    ("samples", "webrtc-turn.pcap"),
    ("public", "ndpi--stun_google_meet.pcapng"),
    ("public", "sipp--g711a.pcap"),
    ("public", "wswiki--rtp-opus-only.pcap"),
    ("public", "wswiki--sip-rtp-g711.pcap"),
]
"""Captures with flows of more than 64 RTP packets: the flows report leaves their later RTP
packets out of its pass (inspector/bulk.py reads them)."""


@pytest.mark.parametrize(("where", "name"), RTP_CAPTURES, ids=[n for _, n in RTP_CAPTURES])
def test_leaving_bulk_rtp_out_names_the_same_protocols(where: str, name: str) -> None:
    path = SAMPLES / name if where == "samples" else public_capture(name)
    session = Session.open(path, load_registry())
    try:
        plan = plan_rtp(session)
        assert plan is not None and (~plan.held).any()
        assert rows._flow_protocols_without_bulk_rtp(session, plan) is not None
        bulk = [f["protocols"] for f in flow_rows(session)]
        plain = rows.AnalysisPass(session, {}, rows._ignore)
        for _ in plain.packets():
            pass
        assert bulk == [plain.flows.protocols(f) for f in session.flows]
        assert ["rtp" in p for p in bulk].count(True) >= 1
    finally:
        session.close()


def test_a_plan_the_packets_belie_falls_back_to_the_plain_pass() -> None:
    """Datagrams that look like RTP on a flow no decoder took without a decode-as rule (the
    MANIFEST gives one): the plan is refused and the plain pass names the flows."""
    session = Session.open(public_capture("wswiki--1920x1080_H.265.pcapng"), load_registry())
    try:
        plan = plan_rtp(session)
        assert plan is not None and rows._flow_protocols_without_bulk_rtp(session, plan) is None
        assert any("rtp" in f["protocols"] for f in flow_rows(session))
    finally:
        session.close()
