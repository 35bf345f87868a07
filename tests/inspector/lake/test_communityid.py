"""Community ID v1: ours equals tshark's (its communityid dissector) on every packet of captures
with TCP and UDP over IPv4 and IPv6, ICMP outside any flow and packets without IP; both directions
of a flow hash alike; what cannot be read as IP never raises."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protoscope.captures.flows import Flow
from protoscope.decoders.api import Endpoint
from protoscope.inspector.lake import communityid
from tests.conftest import SAMPLES, public_capture, tshark

from .conftest import Exported

ORACLE = (
    "nat-relay-outside.pcap",  # ICMP outside any flow (port unreachable), STUN/TURN over UDP
    "webrtc-turn.pcap",
    "grpc-demo.pcap",  # TCP
    "ndpi--stun_signal.pcapng",  # 53 ICMP packets
    "ndpi--teams.pcap",  # packets without IP (ARP): null
    "packt--grpc-go_Unary.pcapng",  # TCP and UDP over IPv6
    "wswiki--ThreadCommissioning-JPAKE-DTLS-1.pcapng",  # IPv6 UDP over 802.15.4/6LoWPAN
)


def _capture(name: str) -> Path:
    sample = SAMPLES / name
    return sample if sample.exists() else public_capture(name)


@pytest.mark.parametrize("name", ORACLE)
def test_packets_match_tshark(name: str, export_dir: Callable[..., Exported]) -> None:
    path = _capture(name)
    theirs = tshark(
        "-r", str(path), "-o", "communityid.do_base64:TRUE", "-o", "communityid.seed:0",
        "--enable-protocol", "communityid", "-T", "fields", "-e", "communityid",
    ).splitlines()  # fmt: skip
    lake = export_dir(path)
    ours = [row["community_id"] for row in lake.table("packets")]
    assert ours == [x or None for x in theirs]
    flows = {row["flow"]: row["community_id"] for row in lake.table("flows")}
    for row in lake.table("packets"):
        if row["flow"] is not None:
            assert row["community_id"] == flows[row["flow"]]


def _flow(transport: str, client: tuple[str, int], server: tuple[str, int]) -> Flow:
    return Flow(0, transport, Endpoint(*client), Endpoint(*server), 1, 60, 1, 60, 0, 0, 0, 0, 0, "port")


def test_both_directions_hash_alike() -> None:
    a = communityid.flow_id(_flow("udp", ("10.0.0.1", 5000), ("192.0.2.7", 3478)))
    b = communityid.flow_id(_flow("udp", ("192.0.2.7", 3478), ("10.0.0.1", 5000)))
    assert a == b and a is not None and a.startswith("1:")
    assert a != communityid.flow_id(_flow("tcp", ("10.0.0.1", 5000), ("192.0.2.7", 3478)))
    v6 = communityid.flow_id(_flow("tcp", ("2001:db8::1", 443), ("2001:db8::2", 50000)))
    assert v6 is not None and v6.startswith("1:")


def test_a_port_protocol_without_ports_has_none() -> None:
    assert communityid.community_id(6, "10.0.0.1", "10.0.0.2", None, None) is None
    assert communityid.community_id(47, "10.0.0.1", "10.0.0.2", None, None) is not None  # GRE: no ports


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([1, 101, 113, 276, 0]), st.binary(max_size=120))
def test_packet_facts_never_raise(linktype: int, frame: bytes) -> None:
    facts = communityid.packet_facts(linktype, frame, len(frame))
    assert facts.community_id is None or facts.community_id.startswith("1:")
    assert (facts.src_addr is None) == (facts.dst_addr is None)
