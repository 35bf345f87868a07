"""The WebRTC session report on public captures whose story is known (see the corpus MANIFEST)."""

from __future__ import annotations

from typing import Any

from protoscope.decoders.api import Endpoint, FlowContext, Pdu
from protoscope.decoders.dtls.records import DtlsRecord
from protoscope.decoders.registry import load_registry
from protoscope.decoders.stun.messages import StunRecord
from protoscope.decoders.webrtc.sessions import SessionAnalysis
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


# -- findings no real capture of ours shows: fed as the decoders' records -------------------------


A, B, TURN = Endpoint("10.0.0.1", 5000), Endpoint("10.0.0.2", 6000), Endpoint("10.0.0.9", 3478)
BINDING, ALLOCATE, CREATE_PERMISSION, SEND = 1, 3, 8, 6
REQUEST, INDICATION, SUCCESS, ERROR = 0, 1, 2, 3


def feed(
    analysis: SessionAnalysis, rec: object, src: Endpoint, dst: Endpoint, t: float, flow: int = 0
) -> None:
    ctx = FlowContext(
        flow=flow, transport="udp", src=src, dst=dst, from_client=src == A, frame=int(t * 10), time=t
    )
    analysis.feed(Pdu("x", (), (0, 0), record=rec), ctx)


def stun(method: int, cls: int, tid: int, **attributes: object) -> StunRecord:
    return StunRecord(method | cls, method, cls, tid.to_bytes(12, "big"), False, dict(attributes))


def test_role_conflict_and_a_handshake_that_never_ends() -> None:
    analysis = SessionAnalysis()
    feed(analysis, stun(BINDING, REQUEST, 1, username="bb:aa", role="controlling"), A, B, 1.0)
    feed(analysis, stun(BINDING, ERROR, 1, error_code=487), B, A, 1.1)
    feed(analysis, stun(BINDING, REQUEST, 2, username="bb:aa", role="controlled"), A, B, 1.2)
    feed(analysis, stun(BINDING, SUCCESS, 2), B, A, 1.3)
    feed(analysis, DtlsRecord((22,), (1,), 0xFEFD, {}), A, B, 1.4)  # ClientHello, then silence
    (row,) = analysis.rows()
    codes = [(f["phase"], f["code"]) for f in row["findings"]]
    assert ("ice", "ice.role_conflict") in codes and ("dtls", "dtls.incomplete") in codes
    assert row["failed_phase"] == "ice"
    found = {f["code"]: (f["frame"], f["severity"]) for f in row["findings"]}
    # The agents resolved the conflict (a note); no pair was nominated, so ICE failed, at the
    # session's last packet; the handshake that stalled after it follows from that.
    assert found == {
        "ice.role_conflict": (11, "note"),
        "ice.not_nominated": (14, "error"),
        "dtls.incomplete": (14, "warn"),
    }


def test_dtls_alerts_by_level_and_an_allocation_that_lapsed() -> None:
    analysis = SessionAnalysis()
    feed(analysis, stun(BINDING, REQUEST, 1, username="bb:aa", use_candidate=True), A, B, 1.0)
    feed(analysis, stun(BINDING, SUCCESS, 1), B, A, 1.1)
    feed(analysis, DtlsRecord((22,), (1,), 0xFEFD, {}), A, B, 1.2)
    feed(analysis, DtlsRecord((21,), (), 0xFEFD, {"alert": ("fatal", "bad_certificate")}), B, A, 1.3)
    feed(analysis, DtlsRecord((21,), (), 0xFEFD, {"alert": ("warning", "close_notify")}), A, B, 1.4)
    feed(analysis, stun(ALLOCATE, REQUEST, 2, username="alice"), A, TURN, 2.0, flow=1)
    feed(
        analysis,
        stun(ALLOCATE, SUCCESS, 2, xor_relayed=("10.0.0.9", 49152), lifetime=60),
        TURN,
        A,
        2.1,
        flow=1,
    )
    feed(analysis, stun(BINDING, REQUEST, 3, username="bb:aa"), A, B, 100.0)
    ice, alloc = analysis.rows()
    alerts = [(f["frame"], f["severity"]) for f in ice["findings"] if f["code"] == "dtls.alert"]
    assert alerts == [(13, "error"), (14, "note")]
    assert ice["failed_phase"] == "dtls"
    # The lapsed allocation shows on the response that granted its lifetime; a warning, not a
    # failure: the allocation worked.
    assert [(f["code"], f["frame"], f["severity"]) for f in alloc["findings"]] == [
        ("turn.allocation_expired", 21, "warn")
    ]
    assert alloc["failed_phase"] is None


def test_turn_401_loop_stale_nonce_and_expired_permission() -> None:
    analysis = SessionAnalysis()
    for k in range(5):  # a client that keeps trying without ever getting in
        feed(analysis, stun(ALLOCATE, REQUEST, 10 + k), A, TURN, 1.0 + k)
        feed(analysis, stun(ALLOCATE, ERROR, 10 + k, error_code=401), TURN, A, 1.01 + k)
    feed(analysis, stun(ALLOCATE, REQUEST, 20, username="alice"), B, TURN, 2.0, flow=1)
    feed(analysis, stun(ALLOCATE, ERROR, 20, error_code=438), TURN, B, 2.01, flow=1)
    feed(analysis, stun(ALLOCATE, REQUEST, 21, username="alice"), B, TURN, 2.1, flow=1)
    feed(
        analysis,
        stun(ALLOCATE, SUCCESS, 21, xor_relayed=("10.0.0.9", 49152), lifetime=600),
        TURN,
        B,
        2.2,
        flow=1,
    )
    feed(analysis, stun(CREATE_PERMISSION, REQUEST, 22, xor_peer=("10.0.0.7", 7000)), B, TURN, 3.0, flow=1)
    feed(analysis, stun(CREATE_PERMISSION, SUCCESS, 22), TURN, B, 3.1, flow=1)
    feed(analysis, stun(SEND, INDICATION, 23, xor_peer=("10.0.0.7", 7000)), B, TURN, 200.0, flow=1)
    feed(analysis, stun(SEND, INDICATION, 24, xor_peer=("10.0.0.7", 7000)), B, TURN, 400.0, flow=1)
    rows = {r["client"]: r for r in analysis.rows() if r.get("kind") == "turn_allocation"}
    looping, stale = rows[str(A)], rows[str(B)]
    assert [f["code"] for f in looping["findings"]] == ["turn.401_loop", "turn.401_loop"]
    assert looping["failed_phase"] == "turn" and looping["relayed"] is None
    codes = [f["code"] for f in stale["findings"]]
    assert codes.count("turn.stale_nonce") == 1 and codes.count("turn.permission_expired") == 1
    assert stale["relayed"] == "10.0.0.9:49152"
    assert [(f["frame"], f["severity"]) for f in looping["findings"]] == [(40, "error"), (50, "error")]
    # A 438 is answered with the new nonce and the allocation succeeded: no failed phase, only a
    # note and the warning about data the server dropped.
    severities = {f["code"]: (f["frame"], f["severity"]) for f in stale["findings"]}
    assert severities == {"turn.stale_nonce": (20, "note"), "turn.permission_expired": (4000, "warn")}
    assert stale["failed_phase"] is None
