"""The WebRTC session report on public captures whose story is known (see the corpus MANIFEST)."""

from __future__ import annotations

from typing import Any

from protoscope.decoders.registry import load_registry
from protoscope.inspector.report.rows import analysis_rows
from protoscope.inspector.session import Session
from tests.conftest import public_capture


def sessions(name: str) -> list[dict[str, Any]]:
    session = Session.open(public_capture(name), load_registry())
    try:
        return list(analysis_rows(session, "sessions"))
    finally:
        session.close()


def test_ice_then_dtls() -> None:
    """zeek--webrtc-stun: ICE Binding request/response pairs, then a DTLS 1.0 handshake."""
    (ice,) = sessions("zeek--webrtc-stun.pcap")
    assert list(ice["phases"]) == ["ice", "ice_connected", "nominated", "dtls", "dtls_done"]
    (pair,) = ice["candidate_pairs"]
    assert (pair["requests"], pair["responses"], pair["nominated"]) == (5, 5, True)
    assert ice["ice_roles"] == ["controlled", "controlling"] and ice["dtls"]["state"] == "done"
    assert ice["failed_phase"] is None


def test_turn_allocation_and_relayed_session() -> None:
    """ndpi--stun_dtls_rtp: WebRTC through TURN over TCP: Allocate (401 then success),
    CreatePermission, ChannelBind; ICE, DTLS and media relayed."""
    rows = sessions("ndpi--stun_dtls_rtp.pcapng")
    (alloc,) = [r for r in rows if r.get("kind") == "turn_allocation"]
    assert (
        alloc["unauthorized_401"] == 1 and alloc["relayed"] and alloc["channels"] == {"0x4000": "10.13.0.50"}
    )
    relayed = [
        r
        for r in rows
        if r.get("kind") is None and any(p["flow"] == alloc["flow"] for p in r["candidate_pairs"])
    ]
    assert relayed and {"ice", "dtls", "dtls_done", "media"} <= set(relayed[0]["phases"])
