"""ICE candidates (RFC 8839 section 5.1) and the priorities RFC 8445 gives them and their pairs.

A candidate arrives as text: an SDP `a=candidate:` line, a trickled `candidate:` string in a JSON
signaling message, or an RFC 8840 fragment. `parse_candidate` reads any of them and never raises:
signaling is the peer's input, and a line it cannot read is skipped by the caller (a browser
ignores one too). The priority is a packed number (RFC 8445 section 5.1.2.1): its decoded parts
say which type and interface the agent preferred, which webrtc-internals shows as well.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from protoscope.decoders.api import Endpoint

TYPE_PREFERENCES = {"host": 126, "prflx": 110, "srflx": 100, "relay": 0}
"""RFC 8445 section 5.1.2.2's recommended type preferences (agents may choose others)."""
CANDIDATE_TYPES = frozenset(TYPE_PREFERENCES)
TCP_TYPES = frozenset({"active", "passive", "so"})
"""RFC 6544 section 4.5."""
MAX_FOUNDATION = 32
"""RFC 8839 section 5.1: foundation = 1*32 ice-char."""
MAX_LINE = 1024
"""A candidate line longer than this is not read (a real one is under 200 characters)."""


def endpoint_text(address: str, port: int) -> str:
    """ "ip:port", "[v6]:port" as decoders.api.Endpoint prints the capture's endpoints: an IPv6
    address compressed and in lower case ("2001:DB8:0::1" is the capture's "2001:db8::1"), so
    a candidate and the packets from it name the same endpoint."""
    try:
        address = ipaddress.ip_address(address).compressed
    except ValueError:
        pass  # an mDNS name, or not an address: as written
    return str(Endpoint(address, port))


@dataclass(frozen=True, slots=True)
class Candidate:
    """One ICE candidate as its agent described it."""

    foundation: str
    component: int
    transport: str
    """"udp" or "tcp" (lower case; the grammar's token is case-insensitive)."""
    priority: int
    address: str
    """An IP address, or an mDNS name ("<uuid>.local") standing in for a host address."""
    port: int
    type: str
    """"host", "srflx", "prflx" or "relay"."""
    related_address: str | None = None
    related_port: int | None = None
    tcptype: str | None = None
    generation: int | None = None
    network_cost: int | None = None
    ufrag: str | None = None
    """The `ufrag` extension (Chrome's): which ICE generation the candidate belongs to."""

    @property
    def type_preference(self) -> int:
        return self.priority >> 24

    @property
    def local_preference(self) -> int:
        return (self.priority >> 8) & 0xFFFF

    @property
    def priority_component(self) -> int:
        """The component the priority encodes (256 minus its low byte)."""
        return 256 - (self.priority & 0xFF)

    @property
    def mdns(self) -> bool:
        return self.address.lower().endswith(".local")

    @property
    def endpoint(self) -> str:
        return endpoint_text(self.address, self.port)

    @property
    def related(self) -> str | None:
        if self.related_address is None or self.related_port is None:
            return None
        return endpoint_text(self.related_address, self.related_port)

    def row(self) -> dict[str, object]:
        """The candidate's JSON keys in the sessions report."""
        return {
            "foundation": self.foundation,
            "component": self.component,
            "transport": self.transport,
            "priority": self.priority,
            "type_preference": self.type_preference,
            "local_preference": self.local_preference,
            "address": self.address,
            "port": self.port,
            "type": self.type,
            "related_address": self.related_address,
            "related_port": self.related_port,
            "tcptype": self.tcptype,
            "generation": self.generation,
            "network_cost": self.network_cost,
            "mdns": self.address if self.mdns else None,
        }


def _digits(text: str, most: int) -> int | None:
    """An unsigned number of at most `most` ASCII digits (str.isdigit() also accepts "²")."""
    if not text or len(text) > most or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def parse_candidate(text: str) -> Candidate | None:
    """The candidate in `text` ("candidate:...", "a=candidate:...", with or without a line end),
    or None when it does not follow RFC 8839's grammar. Unknown extensions are skipped, as
    section 5.1 says a receiver must."""
    if len(text) > MAX_LINE:
        return None
    line = text.strip()
    if line.startswith("a="):
        line = line[2:]
    if not line.startswith("candidate:"):
        return None
    parts = line[len("candidate:") :].split()
    if len(parts) < 8 or parts[6] != "typ":
        return None
    foundation, component_text, transport, priority_text, address, port_text, _, kind = parts[:8]
    component = _digits(component_text, 3)
    priority = _digits(priority_text, 10)
    port = _digits(port_text, 5)
    if (
        not foundation
        or len(foundation) > MAX_FOUNDATION
        or component is None
        or not 1 <= component <= 256
        or priority is None
        or priority > 0xFFFFFFFF
        or port is None
        or port > 0xFFFF
        or kind not in CANDIDATE_TYPES
        or transport.lower() not in ("udp", "tcp")
        or not address
    ):
        return None
    extra: dict[str, str] = {}
    rest = parts[8:]
    for name, value in zip(rest[::2], rest[1::2], strict=False):
        extra.setdefault(name, value)
    related_port = _digits(extra.get("rport", ""), 5)
    tcptype = extra.get("tcptype")
    return Candidate(
        foundation=foundation,
        component=component,
        transport=transport.lower(),
        priority=priority,
        address=address,
        port=port,
        type=kind,
        related_address=extra.get("raddr"),
        related_port=related_port if related_port is not None and related_port <= 0xFFFF else None,
        tcptype=tcptype if tcptype in TCP_TYPES else None,
        generation=_digits(extra.get("generation", ""), 10),
        network_cost=_digits(extra.get("network-cost", ""), 10),
        ufrag=extra.get("ufrag"),
    )


def candidate_priority(type_preference: int, local_preference: int, component: int) -> int:
    """RFC 8445 section 5.1.2.1: (2^24)*type preference + (2^8)*local preference + (256 - component)."""
    return (type_preference << 24) + (local_preference << 8) + (256 - component)


def pair_priority(controlling: int, controlled: int) -> int:
    """RFC 8445 section 6.1.2.3: G is the controlling agent's candidate's priority, D the
    controlled agent's; pair priority = 2^32*MIN(G,D) + 2*MAX(G,D) + (G>D?1:0)."""
    g, d = controlling, controlled
    return (min(g, d) << 32) + 2 * max(g, d) + (1 if g > d else 0)
