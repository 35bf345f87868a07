"""Candidate lines as real agents write them (aiortc's in the samples' SDP, Chrome's, RFC 8839's
examples), their decoded priorities, and RFC 8445's pair priority."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from protoscope.decoders.webrtc.candidates import (
    TYPE_PREFERENCES,
    candidate_priority,
    pair_priority,
    parse_candidate,
)

SAMPLES = Path(__file__).parents[3] / "captures" / "samples"


def test_aiortc_relay_candidate_from_the_turn_sample() -> None:
    offer = json.loads((SAMPLES / "webrtc-turn.truth.json").read_text())["offer"]
    lines = [x for x in offer.split("\r\n") if x.startswith("a=candidate:")]
    c = parse_candidate(lines[0])
    assert c is not None
    assert (c.foundation, c.component, c.transport) == ("16893dfba04efb4b632c146cfc811f40", 1, "udp")
    assert (c.address, c.port, c.type) == ("127.0.0.1", 49163, "relay")
    assert (c.related_address, c.related_port, c.related) == ("0.0.0.0", 9, "0.0.0.0:9")
    # 16777215 = 0 << 24 | 65535 << 8 | 255: relay, the highest local preference, component 1
    assert (c.priority, c.type_preference, c.local_preference, c.priority_component) == (
        16777215,
        0,
        65535,
        1,
    )
    assert c.endpoint == "127.0.0.1:49163" and not c.mdns


def test_chrome_mdns_host_and_srflx_with_extensions() -> None:
    host = parse_candidate(
        "candidate:3170233290 1 udp 2122262783 3c0e7a4b-8d0f-4f3c-9f1e-0e5f7e6b2a10.local 54321 typ host "
        "generation 0 ufrag sXrZ network-id 1 network-cost 10"
    )
    assert host is not None and host.mdns and host.type == "host"
    assert (host.generation, host.ufrag, host.network_cost) == (0, "sXrZ", 10)
    assert host.row()["mdns"] == "3c0e7a4b-8d0f-4f3c-9f1e-0e5f7e6b2a10.local"
    srflx = parse_candidate(
        "a=candidate:842163049 1 udp 1686052607 198.51.100.7 40001 typ srflx raddr 10.0.1.2 rport 5000 "
        "generation 0\r\n"
    )
    assert srflx is not None and srflx.type_preference == TYPE_PREFERENCES["srflx"]
    assert srflx.related == "10.0.1.2:5000" and srflx.endpoint == "198.51.100.7:40001"


def test_tcp_candidate_and_ipv6_endpoint() -> None:
    c = parse_candidate("candidate:2 1 TCP 2105524479 2001:db8::1 9 typ host tcptype active")
    assert c is not None and c.transport == "tcp" and c.tcptype == "active"
    assert c.endpoint == "[2001:db8::1]:9"


def test_rfc8839_example_and_bad_lines() -> None:
    c = parse_candidate("a=candidate:1 1 UDP 2130706431 203.0.113.141 8998 typ host")
    assert c is not None and c.priority == candidate_priority(126, 65535, 1)
    for bad in (
        "",
        "candidate:",
        "a=candidate:1 1 UDP 2130706431 203.0.113.141 8998 type host",
        "candidate:1 0 udp 1 1.2.3.4 1 typ host",  # component 0
        "candidate:1 1 udp 4294967296 1.2.3.4 1 typ host",  # priority past 32 bits
        "candidate:1 1 udp 1 1.2.3.4 65536 typ host",
        "candidate:1 1 sctp 1 1.2.3.4 1 typ host",
        "candidate:1 1 udp 1 1.2.3.4 1 typ nonsense",
        "candidate:1 1 udp ²1 1.2.3.4 1 typ host",
        "candidate:" + "f" * 33 + " 1 udp 1 1.2.3.4 1 typ host",
    ):
        assert parse_candidate(bad) is None, bad


def test_pair_priority_rfc8445_formula() -> None:
    g, d = 2130706431, 1694498815
    assert pair_priority(g, d) == (d << 32) + 2 * g + 1
    assert pair_priority(d, g) == (d << 32) + 2 * g
    assert pair_priority(5, 5) == (5 << 32) + 10


@given(st.text(max_size=300))
def test_parse_never_raises(text: str) -> None:
    parse_candidate(text)
    parse_candidate("candidate:" + text)


@given(st.lists(st.text(alphabet="abc0123456789. :", max_size=12), min_size=8, max_size=14))
def test_parse_of_token_soup_never_raises(tokens: list[str]) -> None:
    parse_candidate("candidate:" + " ".join(tokens))


def test_ipv6_endpoint_is_written_as_the_capture_writes_it() -> None:
    """A candidate's IPv6 address as the agent wrote it (upper case, zeros) names the same
    endpoint as the packets from it (decoders.api.Endpoint of the compressed address)."""
    c = parse_candidate("candidate:1 1 udp 2122262783 2001:DB8:0:0::1 5000 typ srflx raddr FE80:0::5 rport 9")
    assert c is not None and c.endpoint == "[2001:db8::1]:5000" and c.related == "[fe80::5]:9"
    assert c.address == "2001:DB8:0:0::1"  # the row keeps what the agent wrote
