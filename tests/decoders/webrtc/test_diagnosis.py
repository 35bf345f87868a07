"""The sessions report's diagnosis (issue 16 item 3), fed as the decoders' records: why a pair
failed (no response, an error response, an ICMP error quoting the check), consent freshness
(RFC 7675), and why a relay was needed when a peer sits behind a symmetric NAT."""

from __future__ import annotations

from protoscope.decoders.dtls.records import DtlsRecord
from protoscope.decoders.icmp.message import IcmpError
from protoscope.decoders.rtp.packets import RtpRecord
from protoscope.decoders.webrtc import diagnosis
from protoscope.decoders.webrtc.sessions import SEVERITY
from tests.decoders.webrtc.test_ice import (
    BINDING,
    CHANNEL_BIND,
    ERROR,
    REQUEST,
    SUCCESS,
    TURN,
    A,
    B,
    Endpoint,
    Feeder,
    allocate,
    stun,
)


def connected(f: Feeder) -> int:
    """A nominated, answered pair A→B; the frame of its answer."""
    f.packet(A, B, 1.0, stun(BINDING, REQUEST, 1, username="bb:aa", role="controlling", use_candidate=True))
    return f.packet(B, A, 1.01, stun(BINDING, SUCCESS, 1))


def codes(row: dict[str, object]) -> list[tuple[str, int | None, str]]:
    return [(f["code"], f["frame"], f["severity"]) for f in row["findings"]]  # type: ignore[attr-defined]


def test_new_findings_have_their_severities() -> None:
    assert {k: SEVERITY[k] for k in diagnosis.FINDING_SEVERITY} == {
        "nat.symmetric": "warn",
        "ice.relay_only": "note",
        "ice.consent_lost": "error",
        "ice.restart": "note",
        "ice.check_failed": "warn",
    }


def test_consent_lost_when_checks_go_unanswered_for_30_s() -> None:
    f = Feeder()
    answered = connected(f)
    for k in range(8):  # consent checks every 5 s, never answered again; media goes on
        f.packet(A, B, 5.0 + 5 * k, stun(BINDING, REQUEST, 10 + k, username="bb:aa"))
        f.packet(B, A, 5.1 + 5 * k, RtpRecord(9, k, 0, 96, False, 100))
    row = f.row()
    assert [c for c in codes(row) if c[0].startswith("ice.")] == [("ice.consent_lost", answered, "error")]
    assert row["failed_phase"] == "ice"
    consent = row["diagnosis"]["consent"]  # type: ignore[index]
    assert consent.startswith("no consent response for 39.1 s after frame") and "selected pair" in consent
    assert row["diagnosis"]["summary"] == "failed in ice: consent lost on the selected pair"  # type: ignore[index]


def test_no_consent_lost_when_only_the_peer_checks_consent() -> None:
    """A checks once; B's consent checks (the same flow, the other way) are answered every 5 s for
    40 s while media flows: A sent no check that went unanswered, so nothing was lost."""
    f = Feeder()
    connected(f)
    for k in range(8):
        f.packet(B, A, 5.0 + 5 * k, stun(BINDING, REQUEST, 20 + k, username="aa:bb"))
        f.packet(A, B, 5.01 + 5 * k, stun(BINDING, SUCCESS, 20 + k))
        f.packet(A, B, 5.1 + 5 * k, RtpRecord(8, k, 0, 96, False, 100))
        f.packet(B, A, 5.2 + 5 * k, RtpRecord(9, k, 0, 96, False, 100))
    row = f.row()
    assert [c for c in codes(row) if c[0] == "ice.consent_lost"] == []
    assert row["failed_phase"] is None


def test_consent_gap_between_two_responses_and_none_after_close_notify() -> None:
    f = Feeder()
    connected(f)
    f.packet(A, B, 45.0, stun(BINDING, REQUEST, 2, username="bb:aa"))
    late = f.packet(B, A, 45.01, stun(BINDING, SUCCESS, 2))
    assert codes(f.row()) == [("ice.consent_lost", late, "error")]
    assert "44.0 s before frame" in f.row()["diagnosis"]["consent"]  # type: ignore[index]

    g = Feeder()
    connected(g)
    g.packet(A, B, 2.0, DtlsRecord((21,), (), 0xFEFD, {"alert": ("warning", "close_notify")}))
    g.packet(A, B, 60.0, stun(BINDING, REQUEST, 3, username="bb:aa"))  # after the call ended
    assert [c for c in codes(g.row()) if c[0] == "ice.consent_lost"] == []


def test_error_response_fails_the_pair_487_then_success_does_not() -> None:
    f = Feeder()
    connected(f)
    other = Endpoint("10.0.0.3", 7000)
    f.packet(A, other, 2.0, stun(BINDING, REQUEST, 5, username="bb:aa"), flow=1)
    refused = f.packet(
        other, A, 2.01, stun(BINDING, ERROR, 5, error_code=403, error_reason="Forbidden"), flow=1
    )
    row = f.row()
    failed = next(p for p in row["candidate_pairs"] if p["remote"] == str(other))  # type: ignore[attr-defined]
    assert (failed["state"], failed["failure"]) == ("failed", "403 Forbidden")
    (found,) = [c for c in codes(row) if c[0] == "ice.check_failed"]
    assert found == ("ice.check_failed", refused, "warn")

    g = Feeder()  # a role conflict the agents resolved: a note, the pair succeeded
    g.packet(A, B, 1.0, stun(BINDING, REQUEST, 1, username="bb:aa", role="controlling", use_candidate=True))
    g.packet(B, A, 1.01, stun(BINDING, ERROR, 1, error_code=487, error_reason="Role Conflict"))
    g.packet(A, B, 1.02, stun(BINDING, REQUEST, 2, username="bb:aa", role="controlling", use_candidate=True))
    g.packet(B, A, 1.03, stun(BINDING, SUCCESS, 2))
    assert [c[0] for c in codes(g.row())] == ["ice.role_conflict"]


def test_icmp_error_quoting_a_check_names_the_failed_pair() -> None:
    """By the transaction id in the quoted STUN header, else by the quoted datagram's ends."""
    f = Feeder()
    connected(f)
    dead = Endpoint("10.0.0.4", 7000)
    f.packet(A, dead, 2.0, stun(BINDING, REQUEST, 0x77, username="bb:aa"), flow=1)
    header = bytes.fromhex("0001 0000 2112a442") + (0x77).to_bytes(12, "big")
    unreachable = IcmpError(
        4, 3, 3, "Destination unreachable (Port unreachable)", "10.0.0.4", str(A), str(dead), header
    )
    frame = f.packet(Endpoint("10.0.0.4", 0), Endpoint("10.0.0.1", 0), 2.01, unreachable, flow=-1)
    row = f.row()
    pair = next(p for p in row["candidate_pairs"] if p["remote"] == str(dead))  # type: ignore[attr-defined]
    assert (pair["state"], pair["failure"]) == ("failed", "ICMP port unreachable from 10.0.0.4")
    (found,) = [c for c in codes(row) if c[0] == "ice.check_failed"]
    assert found == ("ice.check_failed", frame, "warn")

    g = Feeder()
    connected(g)
    g.packet(A, dead, 2.0, stun(BINDING, REQUEST, 0x78, username="bb:aa"), flow=1)
    cut = IcmpError(
        4, 3, 1, "Destination unreachable (Host unreachable)", "10.0.0.254", str(A), str(dead), b""
    )
    g.packet(Endpoint("10.0.0.254", 0), Endpoint("10.0.0.1", 0), 2.01, cut, flow=1)
    pair = next(p for p in g.row()["candidate_pairs"] if p["remote"] == str(dead))  # type: ignore[attr-defined]
    assert pair["failure"] == "ICMP host unreachable from 10.0.0.254"


def test_relay_needed_because_of_a_symmetric_nat() -> None:
    """A's socket gets one mapping per destination port from two STUN servers (the capture is
    inside its NAT): symmetric. Its direct pair gets no answer; the relayed pair is nominated.
    The findings and the diagnosis say so, with the ports."""
    f = Feeder()
    s1, s2 = Endpoint("203.0.113.1", 3478), Endpoint("203.0.113.1", 3479)
    f.packet(A, s1, 0.1, stun(BINDING, REQUEST, 60), flow=5)
    f.packet(s1, A, 0.11, stun(BINDING, SUCCESS, 60, xor_mapped=("198.51.100.1", 40001)), flow=5)
    f.packet(A, s2, 0.2, stun(BINDING, REQUEST, 61), flow=6)
    f.packet(s2, A, 0.21, stun(BINDING, SUCCESS, 61, xor_mapped=("198.51.100.1", 40017)), flow=6)
    for k in range(3):  # direct checks toward B: never answered
        f.packet(A, B, 1.0 + k, stun(BINDING, REQUEST, 70 + k, username="bb:aa", role="controlling"), flow=7)
    relay_a, relay_b = Endpoint("10.0.0.9", 49152), Endpoint("10.0.0.9", 49153)
    allocate(f, A, relay_a, 1, 100)
    f.packet(
        A,
        TURN,
        4.0,
        stun(CHANNEL_BIND, REQUEST, 101, channel=0x4000, xor_peer=(relay_b.ip, relay_b.port)),
        flow=1,
    )
    check = stun(BINDING, REQUEST, 1, username="bb:aa", role="controlling", use_candidate=True)
    f.packet(A, TURN, 5.0, ("channel", 0x4000, 80), check, flow=1)
    f.packet(TURN, A, 5.01, ("channel", 0x4000, 80), stun(BINDING, SUCCESS, 1), flow=1)
    row = f.row()
    found = {c[0]: c for c in codes(row)}
    assert found["nat.symmetric"][2] == "warn" and found["ice.relay_only"][2] == "note"
    relay = row["diagnosis"]["relay"]  # type: ignore[index]
    assert relay.startswith("peer A is behind a symmetric NAT") and "direct pairs failed" in relay
    assert "no response to 3 checks" in relay
    assert row["diagnosis"]["summary"] == "relayed: A behind a symmetric NAT, direct pairs failed"  # type: ignore[index]
    assert any(n["party"] == "A" and n["nat_type"] == "symmetric" for n in row["nat"])  # type: ignore[attr-defined]
