"""The WebRTC session report on public captures whose story is known (see the corpus MANIFEST)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from protoscope.decoders.api import Endpoint, FlowContext, Pdu
from protoscope.decoders.dtls.records import DtlsRecord
from protoscope.decoders.registry import load_registry
from protoscope.decoders.rtp.packets import RtpRecord
from protoscope.decoders.stun.messages import StunRecord
from protoscope.decoders.webrtc import sessions as webrtc_sessions
from protoscope.decoders.webrtc.sessions import SessionAnalysis
from protoscope.inspector.report.rows import analysis_rows
from protoscope.inspector.session import Session
from tests.conftest import public_capture
from tests.pcapgen import udp_packets
from tests.pcapgen import write as write_pcap


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
    # A pair per agent (its local candidate first): the controlling agent's was nominated.
    mine, theirs = sorted(ice["candidate_pairs"], key=lambda p: not p["nominated"])
    assert (mine["local"], mine["remote"]) == (theirs["remote"], theirs["local"])
    assert (mine["requests"] + theirs["requests"], mine["responses"] + theirs["responses"]) == (5, 5)
    assert mine["nominated"] and mine["selected"] and mine["checks"]["received"] == theirs["requests"]
    assert ice["ice_roles"] == ["controlled", "controlling"] and ice["dtls"]["state"] == "done"
    assert ice["failed_phase"] is None


def test_turn_allocation_and_relayed_session() -> None:
    """ndpi--stun_dtls_rtp: WebRTC through TURN over TCP: Allocate (401 then success),
    CreatePermission, ChannelBind; ICE, DTLS and media relayed."""
    rows = sessions("ndpi--stun_dtls_rtp.pcapng")
    (alloc,) = [r for r in rows if r.get("kind") == "turn_allocation"]
    assert (
        alloc["unauthorized_401"] == 1
        and alloc["relayed"]
        and alloc["channels"] == {"0x4000": "10.13.0.50:1259"}
    )
    relayed = [
        r
        for r in rows
        if r.get("kind") is None and any(p["flow"] == alloc["flow"] for p in r["candidate_pairs"])
    ]
    assert relayed and {"ice", "dtls", "dtls_done", "media"} <= set(relayed[0]["phases"])


# -- findings no real capture of ours shows: fed as the decoders' records -------------------------


A, B, TURN = Endpoint("10.0.0.1", 5000), Endpoint("10.0.0.2", 6000), Endpoint("10.0.0.9", 3478)
BINDING, ALLOCATE, CREATE_PERMISSION, CHANNEL_BIND, SEND = 1, 3, 8, 9, 6
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


# -- bounded work and memory (issue 12) ------------------------------------------------------------


class CountingDict(dict):  # type: ignore[type-arg]
    """A dict that counts its writes: the work an index costs."""

    writes = 0

    def __setitem__(self, key: object, value: object) -> None:
        self.writes += 1
        super().__setitem__(key, value)


def check(analysis: SessionAnalysis, n: int, username: str, flow: int = 0, t: float | None = None) -> None:
    t = float(n) if t is None else t
    feed(analysis, stun(BINDING, REQUEST, n, username=username), A, B, t, flow)
    feed(analysis, stun(BINDING, SUCCESS, n), B, A, t + 0.001, flow)


def test_chained_ufrags_cost_constant_work_per_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """`u2:u1`, `u3:u2`, ...: one session (MAX_UFRAGS out of the way), and each check writes the
    index for its one new ufrag, where every check used to write it for all the session's ufrags
    (60,000 checks took 156 s)."""
    monkeypatch.setattr(webrtc_sessions, "MAX_UFRAGS", 10**6)
    analysis = SessionAnalysis()
    analysis.by_ufrag = index = CountingDict()
    for n in range(2000):
        check(analysis, n, f"u{n + 1}:u{n}")
    (row,) = analysis.rows()
    assert len(row["ufrags"]) == 2001
    assert index.writes == 2001


def test_merges_follow_the_oldest_session() -> None:
    """Halves that meet late (each with its own checks, then one that names both) merge into the
    older; flows, pairs and phases of both are the merged row's, and a merged half's flow leads
    to it (union-find) without any index being rewritten."""
    analysis = SessionAnalysis()
    check(analysis, 1, "a:b", flow=0)
    check(analysis, 2, "c:d", flow=1)
    check(analysis, 3, "e:f", flow=2)
    check(analysis, 4, "d:a", flow=3)  # the first two meet
    check(analysis, 5, "f:c", flow=4)  # and the third joins them through the second's ufrag
    feed(analysis, DtlsRecord((22,), (1,), 0xFEFD, {}), A, B, 9.0, flow=2)  # the third's flow
    (row,) = analysis.rows()
    assert row["id"] == 0 and row["ufrags"] == ["a", "b", "c", "d", "e", "f"]
    assert row["flows"] == [0, 1, 2, 3, 4] and len(row["candidate_pairs"]) == 5
    assert "dtls" in row["phases"]


def test_a_chain_past_max_ufrags_starts_other_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webrtc_sessions, "MAX_UFRAGS", 4)
    analysis = SessionAnalysis()
    for n in range(10):
        check(analysis, n, f"u{n + 1}:u{n}")
    rows = analysis.rows()
    assert [r["ufrags"] for r in rows] == [
        ["u0", "u1", "u2", "u3"],
        ["u4", "u5", "u6", "u7"],
        ["u10", "u8", "u9"],
    ]
    limits = [
        (r["id"], f["code"], f["frame"], f["severity"])
        for r in rows
        for f in r["findings"]
        if "limit" in f["code"]
    ]
    assert limits == [(0, "ice.ufrags_limit", 30, "warn"), (1, "ice.ufrags_limit", 70, "warn")]


def test_sessions_pairs_checks_and_media_past_their_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webrtc_sessions, "MAX_SESSIONS", 2)
    monkeypatch.setattr(webrtc_sessions, "MAX_PAIRS", 2)
    monkeypatch.setattr(webrtc_sessions, "MAX_PENDING_CHECKS", 3)
    monkeypatch.setattr(webrtc_sessions, "MAX_MEDIA_STREAMS", 2)
    analysis = SessionAnalysis()
    for flow in range(4):  # pairs: flows 0 and 1 only
        check(analysis, 10 + flow, "a:b", flow=flow)
    for k in range(5):  # unanswered checks on flow 0: the oldest two forgotten
        feed(analysis, stun(BINDING, REQUEST, 100 + k, username="a:b"), A, B, 2.0 + k)
    feed(analysis, stun(BINDING, SUCCESS, 100), B, A, 8.0)  # forgotten: no round-trip time
    feed(analysis, stun(BINDING, SUCCESS, 104), B, A, 8.5)
    for ssrc in (1, 2, 3):
        feed(analysis, RtpRecord(ssrc, 0, 0, 96, False, 100), A, B, 9.0)
    check(analysis, 200, "c:d", flow=5)  # a second session
    check(analysis, 201, "e:f", flow=6, t=10.0)  # a third: not followed
    first, second = analysis.rows()
    assert [p["flow"] for p in first["candidate_pairs"]] == [0, 1]
    assert first["candidate_pairs"][0]["rtt_ms"] == [1.0, 2500.0]
    assert len(first["media"]) == 2
    codes = {f["code"]: (f["frame"], f["phase"]) for f in first["findings"] if "limit" in f["code"]}
    assert codes == {
        "ice.pairs_limit": (120, "ice"),
        "ice.transactions_limit": (50, "ice"),
        "media.streams_limit": (90, "media"),
    }
    assert [(f["code"], f["frame"]) for f in second["findings"] if "limit" in f["code"]] == [
        ("ice.sessions_limit", 100)
    ]


def test_findings_past_max_findings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webrtc_sessions, "MAX_FINDINGS", 3)
    analysis = SessionAnalysis()
    for k in range(10):  # role conflicts, again and again
        feed(analysis, stun(BINDING, REQUEST, k, username="bb:aa"), A, B, 1.0 + k)
        feed(analysis, stun(BINDING, ERROR, k, error_code=487), B, A, 1.1 + k)
    (row,) = analysis.rows()
    assert [f["code"] for f in row["findings"]][:4] == ["ice.role_conflict"] * 3 + ["webrtc.findings_limit"]
    assert len(row["findings"]) <= 3 + 1 + 2  # and those the row itself adds


def test_turn_allocation_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webrtc_sessions, "MAX_CHANNELS", 2)
    monkeypatch.setattr(webrtc_sessions, "MAX_PERMISSIONS", 2)
    monkeypatch.setattr(webrtc_sessions, "MAX_TURN_ERRORS", 2)
    monkeypatch.setattr(webrtc_sessions, "MAX_TURN_PENDING", 2)
    monkeypatch.setattr(webrtc_sessions, "MAX_ALLOCATIONS", 1)
    analysis = SessionAnalysis()
    feed(analysis, stun(ALLOCATE, REQUEST, 1, username="alice"), A, TURN, 1.0)
    feed(analysis, stun(ALLOCATE, SUCCESS, 1, xor_relayed=("10.0.0.9", 49152), lifetime=600), TURN, A, 1.1)
    for k in range(3):
        peer = (f"10.0.1.{k}", 7000)
        feed(
            analysis, stun(CHANNEL_BIND, REQUEST, 10 + k, channel=0x4000 + k, xor_peer=peer), A, TURN, 2.0 + k
        )
        feed(analysis, stun(CHANNEL_BIND, SUCCESS, 10 + k), TURN, A, 2.1 + k)
    for k in range(3):
        feed(analysis, stun(CREATE_PERMISSION, REQUEST, 20 + k), A, TURN, 6.0 + k)
        feed(analysis, stun(CREATE_PERMISSION, ERROR, 20 + k, error_code=403), TURN, A, 6.1 + k)
    for k in range(3):  # never answered
        feed(analysis, stun(CREATE_PERMISSION, REQUEST, 30 + k), A, TURN, 10.0 + k)
    feed(analysis, stun(ALLOCATE, REQUEST, 2, username="bob"), B, TURN, 20.0, flow=1)  # not followed
    (alloc,) = analysis.rows()
    assert alloc["channels"] == {"0x4000": "10.0.1.0:7000", "0x4001": "10.0.1.1:7000"}
    assert alloc["permissions"] == ["10.0.1.0", "10.0.1.1"]
    assert alloc["errors"] == ["403", "403"]
    codes = {f["code"]: f["frame"] for f in alloc["findings"]}
    assert codes == {
        "turn.channels_limit": 40,
        "turn.permissions_limit": 41,
        "turn.errors_limit": 81,
        "turn.transactions_limit": 120,
        "turn.allocations_limit": 200,
    }


def test_a_chain_of_real_checks(tmp_path: Path) -> None:
    """200 Binding requests on the wire whose ufrags chain, each answered: sessions of
    MAX_UFRAGS ufrags, each with its finding, all read in one pass."""
    packets = []
    for n in range(200):
        user = f"u{n + 1}:u{n}".encode()
        attr = struct.pack("!HH", 0x0006, len(user)) + user + b"\0" * (-len(user) % 4)
        txid = n.to_bytes(12, "big")
        packets.append(struct.pack("!HHI12s", 0x0001, len(attr), 0x2112A442, txid) + attr)
        packets.append(struct.pack("!HHI12s", 0x0101, 0, 0x2112A442, txid))
    path = write_pcap(tmp_path / "chain.pcap", udp_packets(packets))
    session = Session.open(path, load_registry())
    try:
        rows = list(analysis_rows(session, "sessions"))
    finally:
        session.close()
    per = webrtc_sessions.MAX_UFRAGS
    assert [len(r["ufrags"]) for r in rows] == [per, per, per, 201 - 3 * per]
    assert [f["code"] for r in rows for f in r["findings"] if "limit" in f["code"]] == [
        "ice.ufrags_limit"
    ] * 3
