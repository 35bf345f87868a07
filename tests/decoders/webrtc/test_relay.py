"""A relayed call told right (issue 16 item 4), on captures/samples/webrtc-turn.pcap: two aiortc
peers, each relayed through coturn on loopback. The truth is the SDP the peers exchanged (their
relay candidates) and, for media, what tshark counts on each sender's own client→TURN leg."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from typing import Any

import pytest

from protoscope.decoders.registry import load_registry
from protoscope.decoders.webrtc.candidates import pair_priority, parse_candidate
from protoscope.inspector.report.rows import analysis_rows
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES, require_tool
from tests.decoders.webrtc.test_samples import truth

TURN = "webrtc-turn"


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    want = truth(TURN)["turn"]
    registry = load_registry()
    registry.configure({"stun.turn_auth": [f"{want['username']}:secret@{want['realm']}"]})
    session = Session.open(SAMPLES / f"{TURN}.pcap", registry)
    try:
        return list(analysis_rows(session, "sessions"))
    finally:
        session.close()


def ice_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    (ice,) = [r for r in rows if r.get("kind") is None]
    return ice


def relay_candidates(sdp: str) -> list[str]:
    """The endpoints of an SDP's relay candidates, first m-line first."""
    found = [parse_candidate(line) for line in re.findall(r"^a=candidate:.*$", sdp, re.MULTILINE)]
    return [c.endpoint for c in found if c is not None and c.type == "relay"]


def test_selected_pair_is_the_relayed_pair(rows: list[dict[str, Any]]) -> None:
    """The nominated pair is relay candidate ↔ relay candidate (as the SDP gave them), never
    the client-to-TURN leg; the offerer (A) controls and nominated it."""
    want = truth(TURN)
    offer, answer = relay_candidates(want["offer"])[0], relay_candidates(want["answer"])[0]
    ice = ice_row(rows)
    assert ice["nominated_pair"] == {"local": offer, "remote": answer}
    selected = ice["selected_pair"]
    assert (selected["local"], selected["remote"]) == (offer, answer)
    assert (selected["local_type"], selected["remote_type"]) == ("relay", "relay")
    assert "USE-CANDIDATE" in selected["reason"] and "A (controlling)" in selected["reason"]
    (chosen,) = [p for p in ice["candidate_pairs"] if p["selected"]]
    assert chosen["relayed"] and chosen["state"] == "succeeded" and chosen["local_party"] == "A"
    assert chosen["packets_after_selection"] > 0 and chosen["bytes_after_selection"] > 0
    # The pair table holds the two agents' pairs, nothing toward the TURN server's port.
    assert {(p["local"], p["remote"]) for p in ice["candidate_pairs"]} == {(offer, answer), (answer, offer)}


def test_pair_priority_by_rfc8445_formula(rows: list[dict[str, Any]]) -> None:
    """Both relay candidates have priority 16777215 (type preference 0, local preference 65535,
    component 1); 2^32*MIN(G,D) + 2*MAX(G,D) + (G>D?1:0) by hand."""
    g = d = (0 << 24) + (65535 << 8) + (256 - 1)
    assert g == 16777215
    by_hand = (1 << 32) * min(g, d) + 2 * max(g, d) + (1 if g > d else 0)
    assert by_hand == pair_priority(g, d) == 72057589776515070
    assert {p["priority"] for p in ice_row(rows)["candidate_pairs"]} == {by_hand}


def test_parties_and_their_candidates(rows: list[dict[str, Any]]) -> None:
    want = truth(TURN)
    ice = ice_row(rows)
    a, b = ice["parties"]
    assert (a["name"], a["role"], a["ice_role"]) == ("A", "offerer", "controlling")
    assert (b["name"], b["role"], b["ice_role"]) == ("B", "answerer", "controlled")
    assert a["ufrag"] == "HeEa" and b["ufrag"] == "Ppdl"
    by_party = {
        name: {f"{c['address']}:{c['port']}" for c in ice["candidates"] if c["party"] == name}
        for name in "AB"
    }
    assert by_party["A"] >= set(relay_candidates(want["offer"]))
    assert by_party["B"] >= set(relay_candidates(want["answer"]))
    first = ice["candidates"][0]
    assert (first["source"], first["type"], first["type_preference"], first["local_preference"]) == (
        "sdp",
        "relay",
        0,
        65535,
    )


def test_legs_are_one_session(rows: list[dict[str, Any]]) -> None:
    """Client→TURN and TURN→client on each allocation's flow (ChannelData) and relay→relay
    between the two relayed addresses: all one session's paths."""
    ice = ice_row(rows)
    legs = Counter((p["leg"], p["via"]) for p in ice["paths"])
    assert legs == {
        ("A→TURN", "channeldata"): 1,
        ("TURN→A", "channeldata"): 1,
        ("B→TURN", "channeldata"): 1,
        ("TURN→B", "channeldata"): 1,
        ("relay→relay", "udp"): 2,
    }
    allocations = {r["flow"] for r in rows if r.get("kind") == "turn_allocation" and r["channels"]}
    assert allocations <= {p["flow"] for p in ice["paths"]} <= set(ice["flows"])


def sent_by(client_port: int) -> Counter[int]:
    """RTP packets per SSRC that tshark finds on one client's own client→TURN leg."""
    done = subprocess.run(
        [
            "tshark",
            "-r",
            str(SAMPLES / f"{TURN}.pcap"),
            "-d",
            "udp.port==3478,stun",
            "--enable-heuristic",
            "rtp_stun",
            "-Y",
            f"rtp && udp.srcport=={client_port}",
            "-T",
            "fields",
            "-e",
            "rtp.ssrc",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return Counter(int(x, 16) for x in done.stdout.split())


def test_media_per_ssrc_is_what_the_sender_sent(rows: list[dict[str, Any]]) -> None:
    """Each SSRC counted once per session (on the sender's first leg, not once per leg), its
    direction named by party: the same number tshark counts on the sender's client→TURN leg."""
    require_tool("tshark")
    ice = ice_row(rows)
    clients = {
        r["relayed"]: int(r["client"].rsplit(":", 1)[1]) for r in rows if r.get("kind") == "turn_allocation"
    }
    want = truth(TURN)
    ports = {
        "A": clients[relay_candidates(want["offer"])[0]],
        "B": clients[relay_candidates(want["answer"])[0]],
    }
    assert len(ice["media"]) == len({m["ssrc"] for m in ice["media"]}) == 2
    for m in ice["media"]:
        sender = sent_by(ports[m["from"]])
        assert m["packets"] == sender[m["ssrc"]] > 0
        assert {m["from"], m["to"]} == {"A", "B"} and m["legs"] == 3
    ssrcs = {int(s) for s in re.findall(r"^a=ssrc:(\d+)", want["offer"], re.MULTILINE)}
    assert {m["ssrc"] for m in ice["media"] if m["from"] == "A"} == ssrcs


def test_certificates_belong_to_parties_and_allocations_show_mapped_and_peer_ports(
    rows: list[dict[str, Any]],
) -> None:
    """Two parties' certificates (never the TURN server's address), checked against the SDP;
    an allocation row's mapped address and its channel's peer as ip:port."""
    ice = ice_row(rows)
    assert set(ice["dtls"]["fingerprints"]) == {"A", "B"} and ice["dtls"]["fingerprint_checked"]
    relays = {r["relayed"] for r in rows if r.get("kind") == "turn_allocation"}
    for alloc in (r for r in rows if r.get("kind") == "turn_allocation"):
        assert alloc["mapped"] == alloc["client"]  # loopback: no NAT between client and coturn
        for peer in alloc["channels"].values():
            assert peer in relays  # the other peer's relayed address, with its port


def test_diagnosis_says_why_the_relay(rows: list[dict[str, Any]]) -> None:
    ice = ice_row(rows)
    assert [(f["code"], f["severity"]) for f in ice["findings"]] == [("ice.relay_only", "note")]
    (note,) = ice["findings"]
    assert note["frame"] == ice["selected_pair"]["frame"]
    assert "only relay candidates" in note["message"]
    d = ice["diagnosis"]
    assert d["summary"].startswith("relayed:") and len(d["summary"]) <= 78
    assert d["restarts"] == 0 and d["consent"] is None and d["relay"] in note["message"]
    t = d["timings_ms"]
    assert 0 < t["connected"] <= t["dtls_done"] <= t["first_media"]


NAT_RELAY = {
    # capture -> the parties whose NAT it sees from inside or outside
    "nat-relay-outside": {"A", "B"},
    "nat-relay-inside": {"A"},
    "nat-relay-inside-b": {"B"},
}
"""The NAT lab's relayed calls (captures/samples/make_nat.py): A and B each behind a symmetric
NAT, captured outside every NAT, inside A's and inside B's."""


@pytest.mark.parametrize("name", sorted(NAT_RELAY))
def test_nat_lab_relayed_call(name: str) -> None:
    path = SAMPLES / f"{name}.pcap"
    if not path.exists():  # the lab's captures come with its own change
        pytest.skip(f"{path.name} is not committed")
    want = truth(name)
    session = Session.open(path, load_registry())
    try:
        rows = list(analysis_rows(session, "sessions"))
    finally:
        session.close()
    ice = ice_row(rows)
    selected = ice["selected_pair"]
    local = want["selected_pair"]["local"]
    assert (
        (selected["local"], selected["local_type"])
        == (local["endpoint"], local["type"])
        == (
            ice["nominated_pair"]["local"],
            "relay",
        )
    )
    if name != "nat-relay-inside-b":  # inside B's NAT, B's address is its host's
        assert selected["remote"] == want["selected_pair"]["remote"]["endpoint"]
    # Media per SSRC: what each peer sent, counted once whatever the legs the capture saw.
    sent = {int(ssrc): n for p in want["peers"].values() for ssrc, n in p["rtp_packets_sent"].items()}
    assert {m["ssrc"]: m["packets"] for m in ice["media"]} == sent
    assert {m["ssrc"]: m["from"] for m in ice["media"]} == {
        int(ssrc): party for party, p in want["peers"].items() for ssrc in p["rtp_packets_sent"]
    }
    # Why the relay: the symmetric NATs the capture can see, and the direct pairs that failed.
    d = ice["diagnosis"]
    for party in NAT_RELAY[name]:
        assert f"peer {party} is behind a symmetric NAT" in d["relay"]
    assert "direct pairs failed" in d["relay"] and d["summary"].startswith("relayed: ")
    found = [(f["code"], f["severity"]) for f in ice["findings"]]
    assert found.count(("nat.symmetric", "warn")) == len(NAT_RELAY[name])
    assert ("ice.relay_only", "note") in found and ice["failed_phase"] is None
