"""NatObserver: every RFC 4787 branch from hand-made message sequences, limits, and never-raise.

Addresses are documentation ranges as the NAT lab's: inside 10.0.N.2, NAT WAN 198.51.100.N,
servers 203.0.113.N.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protoscope.decoders.api import Endpoint, FlowContext
from protoscope.decoders.stun.messages import StunRecord
from protoscope.decoders.webrtc import nat as nat_module
from protoscope.decoders.webrtc.candidates import Candidate
from protoscope.decoders.webrtc.nat import NatObserver
from protoscope.decoders.webrtc.nat_behaviour import Mapping, classify_mapping

X = "10.0.1.2:5000"
S1, S1_ALT_PORT, S2 = "203.0.113.1:3478", "203.0.113.1:3479", "203.0.113.2:3478"
M1, M2 = "198.51.100.1:5000", "198.51.100.1:40017"


class Wire:
    """Makes STUN exchanges as a capture would show them, frame by frame."""

    def __init__(self) -> None:
        self.nat = NatObserver()
        self.frame = 0
        self.time = 1000.0
        self.ids = itertools.count(1)

    def ctx(self, src: str, dst: str, flow: int = 1) -> FlowContext:
        self.frame += 1
        self.time += 0.01
        return FlowContext(flow, "udp", _ep(src), _ep(dst), True, self.frame, self.time)

    def request(self, src: str, dst: str, txid: bytes | None = None, flow: int = 1, **attrs: Any) -> bytes:
        txid = txid or next(self.ids).to_bytes(12, "big")
        method = 0x003 if attrs.pop("allocate", False) else 0x001
        self.nat.stun(StunRecord(0x0001, method, 0, txid, False, dict(attrs)), self.ctx(src, dst, flow))
        return txid

    def response(self, txid: bytes, src: str, dst: str, flow: int = 1, cls: int = 2, **attrs: Any) -> None:
        method = 0x003 if attrs.pop("allocate", False) else 0x001
        self.nat.stun(StunRecord(0x0101, method, cls, txid, False, dict(attrs)), self.ctx(src, dst, flow))

    def binding(self, src: str, dst: str, mapped: str, **attrs: Any) -> bytes:
        txid = self.request(src, dst, **attrs)
        self.response(txid, dst, src, xor_mapped=_tuple(mapped))
        return txid

    def row(self, inside: str | None = X) -> dict[str, Any]:
        rows: list[dict[str, Any]] = [r for r in self.nat.verdicts() if r["inside"] == inside]
        assert len(rows) == 1, rows
        return rows[0]


def _ep(text: str) -> Endpoint:
    ip, port = _tuple(text)
    return Endpoint(ip, port)


def _tuple(text: str) -> tuple[str, int]:
    ip, _, port = text.rpartition(":")
    return ip.strip("[]"), int(port)


def _srflx(public: str, related: str | None) -> Candidate:
    ip, port = _tuple(public)
    rip, rport = _tuple(related) if related else (None, None)
    return Candidate("1", 1, "udp", 1686052607, ip, port, "srflx", rip, rport)


def _host(address: str) -> Candidate:
    ip, port = _tuple(address)
    return Candidate("2", 1, "udp", 2122260223, ip, port, "host")


# -- mapping (RFC 4787 section 4.1) ----------------------------------------------------------------


def test_endpoint_independent_mapping_inside_the_nat() -> None:
    w = Wire()
    w.binding(X, S1, M1)
    w.binding(X, S2, M1)
    row = w.row()
    assert row["mapping"] == "endpoint-independent"
    assert row["nat_type"] == "cone (filtering unknown)"
    assert row["public"] == [M1] and row["port_preservation"] is True
    assert [m["via"] for m in row["mappings"]] == ["stun", "stun"]
    assert any(S1 in e and S2 in e and M1 in e for e in row["evidence"])


def test_address_dependent_mapping() -> None:
    w = Wire()
    w.binding(X, S1, M1)
    w.binding(X, S1_ALT_PORT, M1)
    w.binding(X, S2, M2)
    row = w.row()
    assert (row["mapping"], row["nat_type"]) == ("address-dependent", "symmetric")
    assert row["port_preservation"] is False
    assert any("one mapping for one destination IP" in e for e in row["evidence"])


def test_address_and_port_dependent_mapping() -> None:
    w = Wire()
    w.binding(X, S1, M1)
    w.binding(X, S1_ALT_PORT, M2)
    row = w.row()
    assert (row["mapping"], row["nat_type"]) == ("address-and-port-dependent", "symmetric")
    assert any("destination port" in e for e in row["evidence"])


def test_no_nat_from_a_host_candidate() -> None:
    w = Wire()
    w.nat.candidate(_host("198.51.100.100:5000"), "Bu", 1, 1000.0)
    w.binding("198.51.100.100:5000", S1, "198.51.100.100:5000")
    row = w.row("198.51.100.100:5000")
    assert (row["mapping"], row["nat_type"], row["public"]) == ("no-nat", "no NAT", [])
    assert row["port_preservation"] is None and row["hairpinning"] is None


def test_one_observation_is_unknown() -> None:
    w = Wire()
    w.binding(X, S1, M1)
    row = w.row()
    assert (row["mapping"], row["nat_type"]) == ("unknown", "unknown")
    assert "is the only destination" in row["evidence"][0]


def test_allocate_success_is_a_mapping_via_turn_and_relayed_answers_are_not() -> None:
    w = Wire()
    txid = w.request(X, S1, allocate=True, flow=7)
    w.response(txid, S1, X, flow=7, allocate=True, xor_mapped=_tuple(M1), xor_relayed=("203.0.113.1", 49160))
    w.binding(X, S2, M1)
    # a check relayed through TURN on the allocation's flow, answered with the relayed address
    check = w.request(X, S1, flow=7, username="Bu:Au")
    w.response(check, S1, X, flow=7, xor_mapped=("203.0.113.1", 49160))
    row = w.row()
    assert [(m["via"], m["mapped"]) for m in row["mappings"]] == [("turn", M1), ("stun", M1)]
    assert row["mapping"] == "endpoint-independent"


def test_symmetric_peer_outside_the_nat_from_candidates_and_a_prflx_check() -> None:
    """The brief's example: B's srflx port 40001 toward the STUN server, 40017 toward peer A."""
    w = Wire()
    b_inside, b_srflx, b_prflx, a = (
        "10.0.2.2:5000",
        "198.51.100.2:40001",
        "198.51.100.2:40017",
        "198.51.100.100:6000",
    )
    w.nat.candidate(_srflx(b_srflx, b_inside), "Bu", 1, 1000.0)
    txid = w.request(b_prflx, a, username="Au:Bu")
    w.response(txid, a, b_prflx, xor_mapped=_tuple(b_prflx))
    row = w.row(b_inside)
    assert row["ufrag"] == "Bu"
    assert (row["mapping"], row["nat_type"]) == ("destination-dependent", "symmetric")
    assert row["public"] == [b_srflx, b_prflx]
    vias = {(m["via"], m["destination"]) for m in row["mappings"]}
    assert vias == {("candidate", None), ("check", a)}
    text = " ".join(row["evidence"])
    assert "40001" in text and "40017" in text and a in text


def test_rtcstats_two_srflx_with_one_related_port() -> None:
    w = Wire()
    w.nat.candidate(_srflx("198.51.100.2:40001", "10.0.2.2:5000"), "Bu", 1, 1000.0)
    w.nat.candidate(_srflx("198.51.100.2:40002", "10.0.2.2:5000"), "Bu", 2, 1000.0)
    assert w.row("10.0.2.2:5000")["nat_type"] == "symmetric"


def test_hidden_related_address_names_no_inside_socket() -> None:
    w = Wire()
    w.nat.candidate(_srflx("198.51.100.2:40001", "0.0.0.0:0"), "Bu", 1, 1000.0)
    row = w.row(None)
    assert row["public"] == ["198.51.100.2:40001"] and row["mapping"] == "unknown"


def test_translation_seen_on_both_sides() -> None:
    w = Wire()
    txid = w.request(X, S1)
    w.request(M1, S1, txid=txid)  # the same request after the NAT (a capture of both sides)
    w.binding(X, S2, M1)
    row = w.row()
    assert row["mapping"] == "endpoint-independent"


# -- filtering (RFC 4787 section 5, RFC 5780 section 4.4) -------------------------------------------


def _probe(w: Wire, change: tuple[bool, bool], answered_from: str | None, src: str = X) -> None:
    txid = w.request(src, S1, change_request={"change_ip": change[0], "change_port": change[1]})
    if answered_from is not None:
        w.response(txid, answered_from, src, xor_mapped=_tuple(M1))


def test_full_cone() -> None:
    w = Wire()
    w.binding(X, S1, M1, other_address=None)
    w.binding(X, S2, M1)
    _probe(w, (True, True), "203.0.113.2:3479")
    row = w.row()
    assert (row["filtering"], row["nat_type"]) == ("endpoint-independent", "full cone")
    assert "answered from 203.0.113.2:3479" in row["rfc5780"]["filtering test II (change IP and port)"]


def test_address_restricted_cone() -> None:
    w = Wire()
    w.binding(X, S1, M1)
    w.binding(X, S2, M1)
    _probe(w, (True, True), None)
    _probe(w, (False, True), S1_ALT_PORT)
    row = w.row()
    assert (row["filtering"], row["nat_type"]) == ("address-dependent", "address-restricted cone")


def test_port_restricted_cone() -> None:
    w = Wire()
    w.binding(X, S1, M1)
    w.binding(X, S2, M1)
    _probe(w, (True, True), None)
    _probe(w, (False, True), None)
    row = w.row()
    assert (row["filtering"], row["nat_type"]) == ("address-and-port-dependent", "port-restricted cone")
    assert "no response" in row["rfc5780"]["filtering test III (change port)"]


def test_probe_answers_seen_outside_the_nat_do_not_count() -> None:
    w = Wire()
    w.nat.candidate(_srflx(M1, X), "Au", 1, 1000.0)
    w.binding(M1, S1, M1)
    w.binding(M1, S2, M1)
    _probe(w, (True, True), "203.0.113.2:3479", src=M1)
    row = w.row()
    assert row["mapping"] == "endpoint-independent" and row["filtering"] == "unknown"
    assert "does not show it reach" in row["rfc5780"]["filtering test II (change IP and port)"]


def test_unsolicited_checks_outside_the_nat() -> None:
    a, b_public, b_inside = "198.51.100.100:6000", "198.51.100.2:5000", "10.0.2.2:5000"
    for answered, filtering in ((True, "endpoint-independent"), (False, "unknown")):
        w = Wire()
        w.nat.candidate(_srflx(b_public, b_inside), "Bu", 1, 1000.0)
        w.binding(b_public, S1, b_public)
        w.binding(b_public, S2, b_public)
        txid = w.request(a, b_public, username="Bu:Au")
        if answered:
            w.response(txid, b_public, a, xor_mapped=_tuple(a))
        row = w.row(b_inside)
        assert row["filtering"] == filtering
        assert any("a check from " + a in e for e in row["evidence"])


def test_unsolicited_check_from_a_known_ip_reaching_inside() -> None:
    w = Wire()
    w.binding(X, S1, M1)
    w.binding(X, S2, M1)
    w.request(S1_ALT_PORT, X, username="Au:Bu")  # sent to S1's IP before, never to this port
    row = w.row()
    assert row["filtering"] == "unknown"  # passed from another port: EIF or ADF
    assert any("only to other ports of its IP" in e for e in row["evidence"])


# -- hairpinning, port preservation, lifetime ----------------------------------------------------------


def test_hairpinning() -> None:
    w = Wire()
    w.binding(X, S1, M1)
    txid = w.request("10.0.1.2:6000", M1)
    w.request("198.51.100.1:6000", X, txid=txid)
    row = w.row()
    assert row["hairpinning"] is True


def test_no_hairpinning() -> None:
    w = Wire()
    w.binding(X, S1, M1)
    w.request("10.0.1.2:6000", M1)
    assert w.row()["hairpinning"] is False


def test_binding_lifetime_bounds() -> None:
    w = Wire()
    w.binding(X, S1, M1)
    w.time += 30
    w.binding(X, S1, M1)
    w.time += 120
    w.binding(X, S1, "198.51.100.1:5001")
    bounds = w.row()["binding_lifetime_s"]
    assert bounds["at_least"] == pytest.approx(30.02) and bounds["at_most"] == pytest.approx(120.02)


def test_rfc5780_lifetime_test_with_response_port() -> None:
    w = Wire()
    w.binding("127.0.0.1:5000", S1, "127.0.0.1:5000")
    w.time += 10
    txid = w.request("127.0.0.1:6000", S1, response_port=5000)
    w.response(txid, S1, "127.0.0.1:5000", xor_mapped=("127.0.0.1", 6000))
    (row,) = w.nat.verdict_for(["127.0.0.1:5000"])
    assert row["binding_lifetime_s"]["at_least"] == pytest.approx(10.0, abs=0.1)


# -- limits and robustness --------------------------------------------------------------------------


def test_pending_limit_makes_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nat_module, "MAX_PENDING", 3)
    w = Wire()
    for _ in range(10):
        w.request(X, S1)
    assert len(w.nat.facts.pending) == 3
    assert [f["code"] for f in w.nat.findings()] == ["nat.pending_limit"]


def test_endpoint_and_mapping_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nat_module, "MAX_ENDPOINTS", 2)
    monkeypatch.setattr(nat_module, "MAX_MAPPINGS", 2)
    w = Wire()
    for k in range(5):
        w.binding(f"10.0.1.{k}:5000", S1, f"198.51.100.1:{5000 + k}")
        w.binding(X, f"203.0.113.9:{3000 + k}", M1)
    assert len(w.nat.facts.sockets) <= 2 and all(len(s.mappings) <= 2 for s in w.nat.facts.sockets.values())
    codes = [f["code"] for f in w.nat.findings()]
    assert len(codes) == len(set(codes)) and "nat.endpoints_limit" in codes and "nat.mappings_limit" in codes


def test_verdict_for_selects_a_sessions_rows() -> None:
    w = Wire()
    w.binding(X, S1, M1)
    w.binding("10.0.2.2:5000", S1, "198.51.100.2:5000")
    assert [r["inside"] for r in w.nat.verdict_for([M1])] == [X]
    assert [r["inside"] for r in w.nat.verdict_for(["10.0.2.2:5000"])] == ["10.0.2.2:5000"]
    assert w.nat.verdict_for(["192.0.2.1:1"]) == []


def test_classify_mapping_without_mappings() -> None:
    assert classify_mapping(None, [])[0] == "unknown"
    only_srflx = [Mapping(None, M1, "candidate", 1, 0.0)]
    assert classify_mapping(X, only_srflx)[0] == "unknown"


ENDPOINTS = st.sampled_from(
    [X, M1, M2, S1, S2, S1_ALT_PORT, "[2001:db8::1]:5000", "10.0.2.2:5000", "198.51.100.2:40001"]
)
ATTRS = st.fixed_dictionaries(
    {},
    optional={
        "xor_mapped": ENDPOINTS.map(_tuple),
        "mapped": st.one_of(ENDPOINTS.map(_tuple), st.just(("", 0))),
        "username": st.sampled_from(["Au:Bu", "Bu:Au", ":", "", "x"]),
        "change_request": st.one_of(
            st.fixed_dictionaries({"change_ip": st.booleans(), "change_port": st.booleans()}), st.just({})
        ),
        "response_port": st.integers(0, 65535),
        "padding": st.integers(0, 1500),
        "other_address": ENDPOINTS.map(_tuple),
        "xor_relayed": ENDPOINTS.map(_tuple),
    },
)
EVENTS = st.lists(
    st.one_of(
        st.tuples(
            st.just("stun"),
            st.sampled_from([0x001, 0x003, 0x004]),
            st.integers(0, 3),
            st.binary(min_size=12, max_size=12).map(lambda b: b[:1] * 12),
            ENDPOINTS,
            ENDPOINTS,
            ATTRS,
            st.integers(0, 3),
        ),
        st.tuples(
            st.just("candidate"),
            st.sampled_from(["host", "srflx", "prflx", "relay"]),
            ENDPOINTS,
            st.one_of(st.none(), ENDPOINTS, st.just("0.0.0.0:0")),
            st.sampled_from(["Au", "Bu", None]),
        ),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(EVENTS)
def test_never_raises_and_rows_are_json(events: list[tuple[Any, ...]]) -> None:
    nat = NatObserver()
    for frame, event in enumerate(events, 1):
        if event[0] == "stun":
            _, method, cls, txid, src, dst, attrs, flow = event
            rec = StunRecord(0x0001, method, cls, txid, False, dict(attrs))
            nat.stun(rec, FlowContext(flow, "udp", _ep(src), _ep(dst), True, frame, frame * 7.0))
        else:
            _, kind, public, related, ufrag = event
            ip, port = _tuple(public)
            rip, rport = _tuple(related) if related else (None, None)
            nat.candidate(Candidate("1", 1, "udp", 1, ip, port, kind, rip, rport), ufrag, frame, 0.0)
    rows = nat.verdicts()
    json.dumps(rows)
    for row in rows:
        assert row["mapping"] in {
            "endpoint-independent",
            "address-dependent",
            "address-and-port-dependent",
            "destination-dependent",
            "no-nat",
            "unknown",
        }
        assert len(row["evidence"]) <= nat_module.MAX_EVIDENCE


def test_unanswered_check_source_outside_is_a_mapping() -> None:
    """Two symmetric NATs: checks die at the far NAT, but outside their sources are mappings."""
    w = Wire()
    w.nat.candidate(_srflx("198.51.100.1:40001", X), "Au", 1, 1000.0)
    w.nat.candidate(_host(X), "Au", 1, 1000.0)
    w.binding("198.51.100.1:40001", S1, "198.51.100.1:40001")
    w.request("198.51.100.1:40017", "198.51.100.2:5000", username="Bu:Au")
    w.request("198.51.100.1:40018", "203.0.113.1:49160", username="Bu:Au")  # B's relay candidate
    row = w.row()
    assert row["mapping"] == "address-and-port-dependent"
    assert {m["mapped"] for m in row["mappings"]} == {
        "198.51.100.1:40001",
        "198.51.100.1:40017",
        "198.51.100.1:40018",
    }


def test_a_check_from_behind_another_nat_is_no_hairpinning_nor_filtering_evidence() -> None:
    """Inside A's NAT, A's check to B's public address is neither: B's NAT sees A's mapping."""
    w = Wire()
    w.binding(X, S1, M1)  # A, seen inside its NAT
    w.nat.candidate(_srflx("198.51.100.2:5000", "10.0.2.2:5000"), "Bu", 1, 1000.0)
    w.binding("10.0.2.2:5000", S1, "198.51.100.2:5000")  # as if B's inside were seen too
    w.request(X, "198.51.100.2:5000", username="Bu:Au")
    row = w.row("10.0.2.2:5000")
    assert row["hairpinning"] is None
    assert not any("a check from" in e for e in row["evidence"])


def test_a_socket_takes_its_nats_behaviour_from_its_hosts_other_sockets() -> None:
    w = Wire()
    w.binding(X, S1, M1)
    w.binding(X, S2, M1)  # X shows an endpoint-independent mapping
    w.binding("10.0.1.2:6000", S1, "198.51.100.1:6000")  # one binding: unknown on its own
    row = w.row("10.0.1.2:6000")
    assert row["mapping"] == "endpoint-independent" and row["nat_type"] == "cone (filtering unknown)"
    assert any(
        e == f"mapping: endpoint-independent, as {X} showed behind the same NAT" for e in row["evidence"]
    )
    w.binding("10.0.1.2:7000", S1, "198.51.100.1:7001")
    w.binding("10.0.1.2:7000", S1_ALT_PORT, "198.51.100.1:7002")  # a sibling that disagrees
    assert w.row("10.0.1.2:6000")["mapping"] == "unknown"
