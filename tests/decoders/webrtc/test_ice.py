"""Parties, candidates and the pair table of the sessions report (issue 16 items 1 and 4), fed
as the decoders' records: relayed checks in ChannelData and Send/Data indications, candidates
learnt from STUN servers, TURN and checks, mDNS names, trickled candidates, ICE restarts."""

from __future__ import annotations

import json
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from protoscope.decoders.api import Endpoint, FlowContext, Pdu
from protoscope.decoders.dtls.records import DtlsRecord
from protoscope.decoders.mdns.message import MdnsAnswers
from protoscope.decoders.rtp.packets import RtpRecord
from protoscope.decoders.sdp.parse import Media, SdpRecord
from protoscope.decoders.sdp.trickle import TrickleRecord
from protoscope.decoders.stun.messages import StunRecord
from protoscope.decoders.webrtc.candidates import candidate_priority, pair_priority
from protoscope.decoders.webrtc.ice import Evidence, party_of_ufrags
from protoscope.decoders.webrtc.sessions import SessionAnalysis

A, B = Endpoint("10.0.0.1", 5000), Endpoint("10.0.0.2", 6000)
TURN, STUN = Endpoint("10.0.0.9", 3478), Endpoint("10.0.0.8", 3478)
RELAY_A, RELAY_B = Endpoint("10.0.0.9", 49152), Endpoint("10.0.0.9", 49153)
BINDING, ALLOCATE, CHANNEL_BIND, SEND, DATA = 1, 3, 9, 6, 7
REQUEST, INDICATION, SUCCESS, ERROR = 0, 1, 2, 3
HOST_A = f"candidate:1 1 udp {candidate_priority(126, 65535, 1)} 10.0.0.1 5000 typ host"
HOST_B = f"candidate:2 1 udp {candidate_priority(126, 65534, 1)} 10.0.0.2 6000 typ host"


class Feeder:
    """Feeds records as the decoding pass does: frames numbered in order, PDUs of one packet
    (a ChannelData and what it carries) sharing the frame."""

    def __init__(self) -> None:
        self.analysis = SessionAnalysis()
        self.frame = 0
        self.clients: dict[int, Endpoint] = {}
        """Flow -> its client: the first packet's source, as the flow table orients it."""

    def packet(
        self, src: Endpoint, dst: Endpoint, t: float, *records: object, flow: int = 0, size: int = 100
    ) -> int:
        self.frame += 1
        client = self.clients.setdefault(flow, src)
        ctx = FlowContext(flow, "udp", src, dst, src == client, self.frame, t)
        for rec in records:
            self.analysis.feed(Pdu("x", (), (0, size), record=rec), ctx)
        return self.frame

    def row(self) -> dict[str, object]:
        (row,) = [r for r in self.analysis.rows() if r.get("kind") is None]
        json.dumps(row)  # JSON-ready, as the contract says
        return row


def stun(method: int, cls: int, tid: int, **attributes: object) -> StunRecord:
    return StunRecord(method | cls, method, cls, tid.to_bytes(12, "big"), False, dict(attributes))


def sdp(ufrag: str, *candidates: str) -> SdpRecord:
    return SdpRecord(
        ice_ufrag=ufrag, media=[Media("audio", 9, "UDP/TLS/RTP/SAVPF", ["96"], candidates=list(candidates))]
    )


def test_direct_pair_priority_parties_and_selection() -> None:
    """Offer and answer on one signaling flow: A offers, B answers; A controls and nominates.
    The pair's priority by hand from RFC 8445 6.1.2.3 (G = the controlling agent's)."""
    f = Feeder()
    f.packet(A, TURN, 0.1, sdp("aa", HOST_A), flow=9)
    f.packet(TURN, A, 0.2, sdp("bb", HOST_B), flow=9)
    f.packet(
        A,
        B,
        1.0,
        stun(BINDING, REQUEST, 1, username="bb:aa", role="controlling", use_candidate=True, priority=1),
    )
    f.packet(B, A, 1.01, stun(BINDING, SUCCESS, 1, xor_mapped=("10.0.0.1", 5000)))
    f.packet(B, A, 1.02, stun(BINDING, REQUEST, 2, username="aa:bb", role="controlled"))
    f.packet(A, B, 1.03, stun(BINDING, SUCCESS, 2))
    f.packet(A, B, 1.1, RtpRecord(11, 0, 0, 96, False, 100), size=172)
    f.packet(B, A, 1.1, RtpRecord(22, 0, 0, 96, False, 100), size=172)
    row = f.row()
    a, b = row["parties"]  # type: ignore[misc]
    assert (a["name"], a["role"], a["ice_role"], a["ufrag"]) == ("A", "offerer", "controlling", "aa")
    assert (b["name"], b["role"], b["ice_role"], b["ufrag"]) == ("B", "answerer", "controlled", "bb")
    g, d = candidate_priority(126, 65535, 1), candidate_priority(126, 65534, 1)
    by_hand = (1 << 32) * min(g, d) + 2 * max(g, d) + (1 if g > d else 0)
    pairs = {p["local_party"]: p for p in row["candidate_pairs"]}  # type: ignore[attr-defined]
    # Both agents' pairs have the same priority: G is always the controlling agent's candidate.
    assert pairs["A"]["priority"] == pairs["B"]["priority"] == by_hand == pair_priority(g, d)
    assert pairs["A"]["selected"] and not pairs["B"]["selected"]
    assert pairs["A"]["checks"] == {"sent": 1, "received": 1, "responses_sent": 1, "responses_received": 1}
    assert pairs["A"]["local_candidate"] == {"type": "host", "endpoint": str(A)}
    assert pairs["A"]["packets_after_selection"] == 4  # B's check, its answer, the two RTP packets
    selected = row["selected_pair"]
    assert selected == {
        "local": str(A),
        "remote": str(B),
        "local_type": "host",
        "remote_type": "host",
        "frame": 4,
        "reason": "nominated with USE-CANDIDATE by A (controlling); the highest-priority pair that succeeded",
    }
    assert [(m["ssrc"], m["from"], m["to"]) for m in row["media"]] == [(11, "A", "B"), (22, "B", "A")]  # type: ignore[attr-defined]
    assert row["diagnosis"]["summary"] == "direct: host↔host pair"  # type: ignore[index]
    assert row["findings"] == []


def allocate(f: Feeder, client: Endpoint, relay: Endpoint, flow: int, tid: int) -> None:
    mapped = (client.ip, client.port + 1000)
    f.packet(client, TURN, 0.0, stun(ALLOCATE, REQUEST, tid, username="u", realm="r"), flow=flow)
    f.packet(
        TURN,
        client,
        0.01,
        stun(ALLOCATE, SUCCESS, tid, xor_relayed=(relay.ip, relay.port), xor_mapped=mapped),
        flow=flow,
    )


def test_relayed_checks_in_channeldata_make_the_relayed_pair() -> None:
    """A's check goes A→TURN in ChannelData (flow 1), relay→relay (flow 3), TURN→B in
    ChannelData (flow 2): one check, on the pair relay A ↔ relay B; the copies are not counted
    again but their legs are the session's paths."""
    f = Feeder()
    allocate(f, A, RELAY_A, 1, 100)
    allocate(f, B, RELAY_B, 2, 200)
    f.packet(
        A,
        TURN,
        0.1,
        stun(CHANNEL_BIND, REQUEST, 101, channel=0x4000, xor_peer=(RELAY_B.ip, RELAY_B.port)),
        flow=1,
    )
    f.packet(
        B,
        TURN,
        0.1,
        stun(CHANNEL_BIND, REQUEST, 201, channel=0x4001, xor_peer=(RELAY_A.ip, RELAY_A.port)),
        flow=2,
    )
    check = stun(BINDING, REQUEST, 1, username="bb:aa", role="controlling", use_candidate=True)
    answer = stun(BINDING, SUCCESS, 1)
    f.packet(A, TURN, 1.0, ("channel", 0x4000, 80), check, flow=1)
    f.packet(RELAY_A, RELAY_B, 1.001, check, flow=3)
    f.packet(TURN, B, 1.002, ("channel", 0x4001, 80), check, flow=2)
    sel = f.packet(B, TURN, 1.01, ("channel", 0x4001, 80), answer, flow=2)
    f.packet(RELAY_B, RELAY_A, 1.011, answer, flow=3)
    f.packet(TURN, A, 1.012, ("channel", 0x4000, 80), answer, flow=1)
    rtp = RtpRecord(7, 0, 0, 96, False, 100)
    f.packet(A, TURN, 1.1, ("channel", 0x4000, 176), rtp, flow=1, size=172)
    f.packet(RELAY_A, RELAY_B, 1.101, rtp, flow=3, size=172)
    f.packet(TURN, B, 1.102, ("channel", 0x4001, 176), rtp, flow=2, size=172)
    row = f.row()
    (pair,) = row["candidate_pairs"]  # type: ignore[misc]
    assert (pair["local"], pair["remote"], pair["flow"]) == (str(RELAY_A), str(RELAY_B), 1)
    assert (pair["requests"], pair["responses"], pair["relayed"], pair["state"]) == (1, 1, True, "succeeded")
    assert row["nominated_pair"] == {"local": str(RELAY_A), "remote": str(RELAY_B)}
    assert row["selected_pair"]["frame"] == sel  # type: ignore[index]  # the answer's first leg
    (m,) = row["media"]  # type: ignore[misc]
    assert (m["packets"], m["bytes"], m["legs"], m["from"], m["to"]) == (1, 172, 3, "A", "B")
    legs: Counter[tuple[str, str]] = Counter()
    for p in row["paths"]:  # type: ignore[attr-defined]
        legs[(p["leg"], p["via"])] += p["packets"]
    assert legs == {
        ("A→TURN", "channeldata"): 2,
        ("relay→relay", "udp"): 3,
        ("TURN→B", "channeldata"): 2,
        ("B→TURN", "channeldata"): 1,
        ("TURN→A", "channeldata"): 1,
    }
    # Each party's relay candidate, learnt from its Allocate success: related = the mapped address.
    relays = {c["party"]: (c["type"], c["source"], c["port"], c["related_port"]) for c in row["candidates"]}  # type: ignore[attr-defined]
    assert relays == {"A": ("relay", "turn", 49152, 6000), "B": ("relay", "turn", 49153, 7000)}
    allocations = {r["client"]: r for r in f.analysis.rows() if r.get("kind") == "turn_allocation"}
    assert allocations[str(A)]["channels"] == {"0x4000": str(RELAY_B)}
    assert allocations[str(A)]["mapped"] == "10.0.0.1:6000"


def test_send_and_data_indications_and_certificates_by_party() -> None:
    """Without channels, Send/Data indications carry the check and the DTLS; the certificate that
    reaches B from the TURN server's address is A's."""
    f = Feeder()
    allocate(f, A, RELAY_A, 1, 100)
    peer = (B.ip, B.port)
    check = stun(BINDING, REQUEST, 1, username="bb:aa", role="controlling", use_candidate=True)
    f.packet(A, TURN, 1.0, stun(SEND, INDICATION, 2, xor_peer=peer), check, flow=1)
    f.packet(RELAY_A, B, 1.001, check, flow=2)
    f.packet(B, RELAY_A, 1.01, stun(BINDING, SUCCESS, 1), flow=2)
    f.packet(TURN, A, 1.011, stun(DATA, INDICATION, 3, xor_peer=peer), stun(BINDING, SUCCESS, 1), flow=1)
    cert = DtlsRecord((22,), (11,), 0xFEFD, {"certificates": [{"sha-256": "AB"}]})
    f.packet(B, RELAY_A, 1.1, cert, flow=2)
    f.packet(TURN, A, 1.101, stun(DATA, INDICATION, 4, xor_peer=peer), cert, flow=1)
    row = f.row()
    (pair,) = row["candidate_pairs"]  # type: ignore[misc]
    assert (pair["local"], pair["remote"], pair["relayed"]) == (str(RELAY_A), str(B), True)
    assert list(row["dtls"]["fingerprints"]) == ["B"]  # type: ignore[index]
    vias = {(p["leg"], p["via"]) for p in row["paths"]}  # type: ignore[attr-defined]
    assert vias == {
        ("A→TURN", "send-indication"),
        ("TURN→B", "udp"),
        ("B→TURN", "udp"),
        ("TURN→A", "data-indication"),
    }


def test_candidates_learnt_on_the_wire_and_mdns() -> None:
    """srflx from a STUN server's answer to a socket that then sends checks; prflx from a check
    whose source the sender never signaled (its priority is the check's PRIORITY); an mDNS name
    resolved by a response in the capture."""

    f = Feeder()
    f.packet(A, TURN, 0.1, sdp("aa", "candidate:1 1 udp 2122260223 4f2e.local 5000 typ host"), flow=9)
    f.packet(A, STUN, 0.2, stun(BINDING, REQUEST, 50), flow=5)
    f.packet(STUN, A, 0.21, stun(BINDING, SUCCESS, 50, xor_mapped=("198.51.100.1", 40001)), flow=5)
    f.packet(
        Endpoint("0.0.0.0", 5353),
        Endpoint("224.0.0.251", 5353),
        0.3,
        MdnsAnswers([("4f2e.local", "10.0.0.1")]),
        flow=8,
    )
    prflx = Endpoint("10.0.0.1", 5002)
    f.packet(prflx, B, 1.0, stun(BINDING, REQUEST, 1, username="bb:aa", priority=1853824767), flow=0)
    f.packet(A, B, 1.1, stun(BINDING, REQUEST, 2, username="bb:aa"), flow=1)
    row = f.row()
    cands = {(c["type"], c["source"]): c for c in row["candidates"]}  # type: ignore[attr-defined]
    assert cands[("host", "sdp")]["mdns"] == "4f2e.local" and cands[("host", "sdp")]["resolved"] == "10.0.0.1"
    srflx = cands[("srflx", "stun")]
    assert (srflx["address"], srflx["port"], srflx["related_port"], srflx["party"]) == (
        "198.51.100.1",
        40001,
        5000,
        "A",
    )
    assert (cands[("prflx", "check")]["port"], cands[("prflx", "check")]["priority"]) == (5002, 1853824767)
    # The Binding to the STUN server is no connectivity check: no pair toward it.
    assert {p["remote"] for p in row["candidate_pairs"]} == {str(B)}  # type: ignore[attr-defined]


def test_trickled_candidates_join_the_party_that_sent_them() -> None:
    f = Feeder()
    f.packet(A, TURN, 0.1, sdp("aa"), flow=9)
    f.packet(TURN, A, 0.2, sdp("bb"), flow=9)
    f.packet(A, TURN, 0.3, TrickleRecord([HOST_A]), flow=9)  # the offerer's direction, no ufrag
    f.packet(TURN, A, 0.4, TrickleRecord([HOST_B], ufrag="bb"), flow=9)
    f.packet(TURN, A, 0.5, TrickleRecord(["candidate:bad"], ufrag="bb", end_of_candidates=True), flow=9)
    row = f.row()
    got = [(c["party"], c["source"], c["port"]) for c in row["candidates"]]  # type: ignore[attr-defined]
    assert got == [("A", "trickle", 5000), ("B", "trickle", 6000)]


def test_ice_restart_is_a_new_ufrag_of_the_same_party() -> None:
    f = Feeder()
    f.packet(A, B, 1.0, stun(BINDING, REQUEST, 1, username="bb:a1", role="controlling", use_candidate=True))
    f.packet(B, A, 1.01, stun(BINDING, SUCCESS, 1))
    restart = f.packet(
        A, B, 5.0, stun(BINDING, REQUEST, 2, username="bb:a2", role="controlling", use_candidate=True)
    )
    f.packet(B, A, 5.01, stun(BINDING, SUCCESS, 2))
    row = f.row()
    a, b = row["parties"]  # type: ignore[misc]
    assert a["ufrags"] == ["a1", "a2"] and a["ufrag"] == "a2" and b["ufrags"] == ["bb"]
    assert [(x["code"], x["frame"], x["severity"]) for x in row["findings"]] == [
        ("ice.restart", restart, "note")
    ]  # type: ignore[attr-defined]
    assert row["diagnosis"]["restarts"] == 1  # type: ignore[index]


def test_ice_restart_with_new_ufrags_on_both_sides_stays_one_session() -> None:
    """RFC 8445 section 9: both agents take new ufrags; the checks on the same 5-tuple join the
    session, each new ufrag its agent's (the socket that sent the old one sends the new)."""
    f = Feeder()
    f.packet(A, B, 1.0, stun(BINDING, REQUEST, 1, username="b1:a1", role="controlling", use_candidate=True))
    f.packet(B, A, 1.01, stun(BINDING, SUCCESS, 1))
    f.packet(B, A, 1.02, stun(BINDING, REQUEST, 2, username="a1:b1", role="controlled"))
    f.packet(A, B, 1.03, stun(BINDING, SUCCESS, 2))
    first = f.packet(
        A, B, 9.0, stun(BINDING, REQUEST, 3, username="b2:a2", role="controlling", use_candidate=True)
    )
    f.packet(B, A, 9.01, stun(BINDING, SUCCESS, 3))
    f.packet(B, A, 9.02, stun(BINDING, REQUEST, 4, username="a2:b2", role="controlled"))
    (row,) = [r for r in f.analysis.rows() if r.get("kind") is None]
    assert [(p["name"], p["ufrags"]) for p in row["parties"]] == [("A", ["a1", "a2"]), ("B", ["b1", "b2"])]
    restarts = [(x["code"], x["frame"]) for x in row["findings"] if x["code"] == "ice.restart"]
    assert restarts == [("ice.restart", first), ("ice.restart", first)]  # where each new ufrag shows
    assert row["diagnosis"]["restarts"] == 2


def test_parties_follow_offer_and_answer_even_when_checks_come_first() -> None:
    ev = Evidence()
    ev.saw("bb", 1, 0)
    ev.saw("aa", 1, 1)
    ev.relate("aa", "bb", same=False)
    ev.offered.append("aa")
    assert party_of_ufrags(ev, {"aa", "bb"}) == {"aa": "A", "bb": "B"}
    ev.saw("zz", 9, 0)  # tied to nobody once both parties are known: no party
    assert party_of_ufrags(ev, {"aa", "bb", "zz"}) == {"aa": "A", "bb": "B"}


RECORDS = st.one_of(
    st.builds(
        stun,
        st.sampled_from([BINDING, ALLOCATE, CHANNEL_BIND, SEND, DATA]),
        st.sampled_from([REQUEST, INDICATION, SUCCESS, ERROR]),
        st.integers(0, 5),
        username=st.sampled_from(["a:b", "b:a", "c:a", ":", "x", None]),
        use_candidate=st.booleans(),
        role=st.sampled_from(["controlling", "controlled"]),
        xor_peer=st.sampled_from([("10.0.0.2", 6000), ("10.0.0.9", 49153), None]),
        channel=st.sampled_from([0x4000, 0x4001, None]),
        error_code=st.sampled_from([401, 487, 403, None]),
        xor_relayed=st.sampled_from([("10.0.0.9", 49152), None]),
        xor_mapped=st.sampled_from([("198.51.100.1", 1), None]),
        priority=st.sampled_from([1, 2**32 - 1, None]),
    ),
    st.tuples(st.just("channel"), st.sampled_from([0x4000, 0x4001, 7]), st.integers(0, 9)),
    st.builds(
        RtpRecord,
        st.integers(0, 3),
        st.integers(0, 9),
        st.integers(0, 9),
        st.just(96),
        st.booleans(),
        st.just(10),
    ),
    st.builds(
        lambda u, c: sdp(u, *c),
        st.sampled_from(["a", "b", "c"]),
        st.lists(st.sampled_from([HOST_A, HOST_B, "candidate:x", "junk"]), max_size=3),
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            RECORDS,
            st.sampled_from([A, B, TURN, RELAY_A]),
            st.sampled_from([A, B, TURN, RELAY_B]),
            st.integers(0, 3),
        ),
        max_size=30,
    )
)
def test_any_sequence_of_records_makes_rows_and_never_raises(
    items: list[tuple[object, Endpoint, Endpoint, int]],
) -> None:
    f = Feeder()
    for n, (rec, src, dst, flow) in enumerate(items):
        f.packet(src, dst, n * 0.5, rec, flow=flow)
    rows = f.analysis.rows()
    json.dumps(rows)
    for row in rows:
        if row.get("kind") is None:
            assert len(str(row["diagnosis"]["summary"])) <= 78  # type: ignore[index]
