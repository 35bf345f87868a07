"""Community ID v1 (https://github.com/corelight/community-id-spec): the flow hash Zeek,
Suricata, Arkime and Wireshark write, so a row here joins theirs.

Computed with corelight's `communityid` library, once per flow (both directions hash alike) and
handed to each packet of the flow by numpy indexing: a million packets of a few flows cost a few
hashes. A packet outside any flow with an IP layer (ICMP, a protocol without ports) gets the
spec's form for it: ICMP and ICMPv6 type and code mapped to port equivalents (the library's
tables, which mirror Zeek's), other protocols the address pair and protocol alone. No IP layer, or
a port protocol whose ports are not in the packet (a later IP fragment, a header cut short): null,
as the spec gives no form for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import ip_address

from communityid import CommunityID, FlowTuple, FlowTupleError

from protoscope.captures.flows import Flow
from protoscope.captures.net import dissect

SEED = 0
"""The spec's default seed: what the other tools write unless told otherwise."""
PORT_TRANSPORTS = {"tcp": 6, "udp": 17, "sctp": 132}
"""A flow's transport -> its IP protocol number."""
IP_PROTOCOLS = {
    1: "icmp",
    2: "igmp",
    6: "tcp",
    17: "udp",
    47: "gre",
    50: "esp",
    51: "ah",
    58: "icmpv6",
    132: "sctp",
}
"""IANA protocol numbers -> the names the packets table's `transport` uses."""
PORT_PROTOCOLS = frozenset({6, 17, 132})
"""Protocols whose Community ID needs the ports (ICMP's are its type and code)."""
ICMP_PROTOCOLS = {1: "icmp", 58: "icmpv6"}
"""ICMP and ICMPv6: the layer whose first two bytes (type, code) stand for ports."""

_HASH = CommunityID(seed=SEED, use_base64=True)


def community_id(
    proto: int, src: str | bytes, dst: str | bytes, sport: int | None, dport: int | None
) -> str | None:
    """The Community ID of one tuple (addresses as text or network-order bytes); None when the
    spec has no form for it (a port protocol without ports)."""
    try:
        tpl = FlowTuple(proto, src, dst, sport, dport)
    except FlowTupleError:
        return None
    found: str | None = _HASH.calc(tpl)
    return found


def flow_id(flow: Flow) -> str | None:
    """A flow's Community ID, from its client and server (the order does not matter)."""
    proto = PORT_TRANSPORTS.get(flow.transport)
    if proto is None:
        return None
    c, s = flow.client, flow.server
    return community_id(proto, ip_address(c.ip).packed, ip_address(s.ip).packed, c.port, s.port)


def flow_ids(flows: Sequence[Flow]) -> list[str | None]:
    """Each flow's Community ID, by flow id."""
    return [flow_id(f) for f in flows]


@dataclass(frozen=True, slots=True)
class PacketFacts:
    """What a packet outside any flow says at the IP layer (all None without one)."""

    src_addr: str | None = None
    dst_addr: str | None = None
    transport: str | None = None
    """The IP protocol's name (IP_PROTOCOLS); None for one not named there."""
    community_id: str | None = None


NO_IP = PacketFacts()


def packet_facts(linktype: int, frame: bytes, wirelen: int) -> PacketFacts:
    """The addresses, transport and Community ID of a packet outside any flow, from its L2-L4
    headers (dissected without the detail tree's fields). Never raises: bytes it cannot read as
    IP give NO_IP."""
    d = dissect(linktype, frame, wirelen, detail=False)
    if d.ip_version not in (4, 6) or len(d.src) not in (4, 16) or len(d.dst) != len(d.src):
        return NO_IP
    src, dst = str(ip_address(d.src)), str(ip_address(d.dst))
    proto = d.ip_proto
    transport = IP_PROTOCOLS.get(proto)
    cid = None
    icmp = ICMP_PROTOCOLS.get(proto)
    if icmp is not None:
        layer = next((la for la in d.layers if la.name == icmp), None)
        if layer is not None and layer.end - layer.start >= 2:  # else no type and code captured
            cid = community_id(proto, d.src, d.dst, frame[layer.start], frame[layer.start + 1])
    elif proto in PORT_PROTOCOLS:
        if d.l4 and d.fragment is None:
            cid = community_id(proto, d.src, d.dst, d.sport, d.dport)
    elif 0 <= proto <= 255:
        cid = community_id(proto, d.src, d.dst, None, None)
    return PacketFacts(src, dst, transport, cid)
