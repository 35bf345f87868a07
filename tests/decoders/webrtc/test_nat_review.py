"""Regressions of the issue-16 review of the NAT classifier: LAN peers, ICE restarts, signaling-only
evidence, the destination-dependent verdict, and bounded work for a socket with many aliases.

Each test failed on the classifier before the fix (89468c5).
"""

from __future__ import annotations

from protoscope.decoders.webrtc.candidates import Candidate
from protoscope.decoders.webrtc.nat_behaviour import MAX_PAIRS_SHOWN, Mapping, classify_mapping, split

from .test_nat import S1, S2, Wire, _tuple

B, A = "192.168.1.20:5000", "192.168.1.10:5002"
B_PUBLIC = "203.0.113.5:6000"
STUN1, STUN2 = "198.51.100.1:3478", "198.51.100.2:3478"


def _srflx(public: str, related: str, generation: int | None = None) -> Candidate:
    ip, port = _tuple(public)
    rip, rport = _tuple(related)
    return Candidate("1", 1, "udp", 1686052607, ip, port, "srflx", rip, rport, generation=generation)


def _behind_a_cone(w: Wire) -> None:
    """B's two Binding requests to two STUN servers, both mapped to one public address."""
    w.binding(B, STUN1, B_PUBLIC)
    w.binding(B, STUN2, B_PUBLIC)


def test_a_lan_peer_reached_untranslated_is_no_second_mapping() -> None:
    """/tmp/review16/gen_lan2.py: B checks its LAN peer A's host candidate and A answers with B's
    inside address: A is on B's side of the NAT, not a destination with another mapping."""
    w = Wire()
    _behind_a_cone(w)
    txid = w.request(B, A, username="AAAA:BBBB")
    w.response(txid, A, B, xor_mapped=_tuple(B))
    row = w.row(B)
    assert (row["mapping"], row["nat_type"]) != ("address-dependent", "symmetric")
    assert row["mapping"] == "endpoint-independent"
    assert any("on this side of the NAT" in e for e in row["evidence"])


def test_a_check_from_the_lan_is_no_filtering_evidence() -> None:
    """/tmp/review16/gen_lan.py: a LAN peer's check straight to B's inside socket never crossed
    the NAT's filter, so it does not make B's NAT "full cone"."""
    w = Wire()
    _behind_a_cone(w)
    txid = w.request(A, B, username="BBBB:AAAA")
    w.response(txid, B, A, xor_mapped=_tuple(A))
    row = w.row(B)
    assert row["filtering"] == "unknown" and row["nat_type"] != "full cone"


def test_a_check_from_the_internet_is_still_filtering_evidence() -> None:
    w = Wire()
    _behind_a_cone(w)
    txid = w.request("192.0.2.77:7000", B, username="BBBB:CCCC")
    w.response(txid, B, "192.0.2.77:7000", xor_mapped=("192.0.2.77", 7000))
    assert w.row(B)["nat_type"] == "full cone"


def test_srflx_candidates_of_two_generations_are_no_symmetric_nat() -> None:
    """/tmp/review16/twosrflx.sdp: an ICE restart gathered a new srflx candidate (generation 1)."""
    w = Wire()
    w.nat.candidate(_srflx("203.0.113.7:5000", "192.168.1.10:5000", 0), "GEN0", 0, 1000.0)
    w.nat.candidate(_srflx("203.0.113.7:5001", "192.168.1.10:5000", 1), "GEN0", 0, 1000.0)
    w.nat.candidate(_srflx("203.0.113.7:5002", "192.168.1.10:5000", 0), "GEN1", 0, 1000.0)
    row = w.row("192.168.1.10:5000")
    assert row["nat_type"] != "symmetric"
    assert any("another ICE generation" in e for e in row["evidence"])


def test_rtcstats_test_within_one_generation_says_it_rests_on_candidates() -> None:
    w = Wire()
    w.nat.candidate(_srflx("203.0.113.7:5000", "192.168.1.10:5000", 0), "GEN0", 0, 1000.0)
    w.nat.candidate(_srflx("203.0.113.7:5001", "192.168.1.10:5000", 0), "GEN0", 0, 1000.0)
    row = w.row("192.168.1.10:5000")
    assert (row["mapping"], row["nat_type"]) == ("destination-dependent", "symmetric")
    assert any("srflx candidates only" in e for e in row["evidence"])


def test_two_ips_without_two_ports_of_one_ip_are_destination_dependent() -> None:
    """RFC 4787 cannot tell address- from address-and-port-dependent from two IPs alone."""
    w = Wire()
    w.binding("10.0.1.2:5000", S1, "198.51.100.1:5000")
    w.binding("10.0.1.2:5000", S2, "198.51.100.1:5001")
    row = w.row()
    assert (row["mapping"], row["nat_type"]) == ("destination-dependent", "symmetric")
    assert any("no two ports of one destination IP were compared" in e for e in row["evidence"])


def test_many_aliases_are_judged_in_bounded_time_and_evidence() -> None:
    """/tmp/review16/gen3.py 100: 100 srflx candidates of one inside socket, each seen sending to
    64 destinations: 6,400 merged mappings were compared pairwise (52 s, 3.9 GB)."""
    w = Wire()
    inside = "192.168.1.10:5000"
    for i in range(100):
        public = f"203.0.113.{1 + i}:{10000 + i}"
        w.nat.candidate(_srflx(public, inside), "OFFR", 0, 1000.0)
        for j in range(64):
            w.request(public, f"198.18.{i}.{j}:3478", username="REMOTE:OFFR")
    row = w.row(inside)
    assert row["nat_type"] == "symmetric"
    assert len(row["mappings"]) <= 64 and len(row["evidence"]) <= 16
    assert any("MAX_MAPPINGS" in e for e in row["evidence"])


def test_classify_mapping_shows_at_most_max_pairs_shown_per_kind() -> None:
    mappings = [Mapping(f"198.18.0.{i}:3478", f"203.0.113.1:{10000 + i}", "stun", i, 0.0) for i in range(200)]
    verdict, evidence = classify_mapping("10.0.0.2:5000", mappings)
    assert verdict == "destination-dependent"
    assert sum("changes with the destination" in e for e in evidence) == MAX_PAIRS_SHOWN


def test_ipv6_endpoints_are_normalised() -> None:
    assert split("[2001:DB8:0:0::1]:5000") == ("2001:db8::1", 5000)
    w = Wire()
    w.binding("[fd00::2]:5000", "[2001:db8::1]:3478", "[2001:db8:ffff::1]:6000")
    w.binding("[fd00::2]:5000", "[2001:db8::2]:3478", "[2001:db8:ffff::1]:6000")
    assert w.row("[fd00::2]:5000")["mapping"] == "endpoint-independent"


def test_a_srflx_candidate_is_not_compared_with_checks_after_a_restart() -> None:
    """The old generation's srflx candidate, then checks of the new ufrag from a new mapping."""
    w = Wire()
    inside, old, new, peer = "10.0.2.2:5000", "198.51.100.2:40001", "198.51.100.2:40017", "192.0.2.9:6000"
    w.nat.candidate(_srflx(old, inside, 0), "OLD", 1, 1000.0)
    w.nat.candidate(_srflx(new, inside, 0), "NEW", 2, 1000.0)
    txid = w.request(new, peer, username="PEER:NEW")
    w.response(txid, peer, new, xor_mapped=_tuple(new))
    row = w.row(inside)
    assert row["nat_type"] != "symmetric"
    assert any("another ICE generation" in e for e in row["evidence"])


def test_a_check_from_a_private_host_candidate_is_no_filtering_evidence() -> None:
    w = Wire()
    _behind_a_cone(w)
    lan_peer = "10.9.9.9:7000"  # another private network, but a host candidate: never translated
    ip, port = _tuple(lan_peer)
    w.nat.candidate(Candidate("1", 1, "udp", 2122260223, ip, port, "host"), "CCCC", 5, 1000.0)
    txid = w.request(lan_peer, B, username="BBBB:CCCC")
    w.response(txid, B, lan_peer, xor_mapped=_tuple(lan_peer))
    assert w.row(B)["nat_type"] != "full cone"
