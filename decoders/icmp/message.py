"""An ICMP error as analyses see it (`IcmpError`), read from the ICMP message's bytes: which
datagram failed (the quoted IP and UDP headers) and why (type and code)."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from protoscope.decoders.api import Endpoint

from .names import ICMP_TYPE_WIDTH, code_name, type_name

ICMP_ERRORS = frozenset({3, 11, 12})
"""ICMPv4 errors delivered to analyses: Destination unreachable, Time exceeded, Parameter problem
(RFC 792). Source quench and Redirect quote a datagram too but say nothing about reachability."""
ICMPV6_ERRORS = frozenset({1, 2, 3, 4})
"""ICMPv6 error messages (RFC 4443 section 2.1): Destination Unreachable, Packet Too Big, Time
Exceeded, Parameter Problem."""
ICMP_HEADER = 8
IPPROTO_UDP = 17
IPV6_EXTENSIONS = frozenset({0, 43, 60})
"""Hop-by-hop, Routing and Destination Options headers (length in 8-octet units, RFC 8200), walked
over in a quoted IPv6 header chain."""
IPV6_FRAGMENT = 44
MAX_QUOTED_EXTENSIONS = 8
"""Extension headers walked in a quoted IPv6 packet before giving up (a hostile chain is bounded)."""


@dataclass(frozen=True, slots=True)
class IcmpError:
    """An ICMP or ICMPv6 error that quotes a UDP datagram: the `record` of an "icmp" (or "icmpv6")
    PDU. `quoted_payload` lets an analysis match the STUN transaction id of the check that failed."""

    version: int
    """4 (ICMP) or 6 (ICMPv6)."""
    type: int
    code: int
    description: str
    """"Destination unreachable (Port unreachable)", as tshark's Info says it (without its padding)."""
    reporter: str
    """The ICMP packet's source IP: the router or host that gave up on the datagram."""
    quoted_src: str
    """"ip:port" ("[v6]:port") of the quoted datagram's sender: the one that failed."""
    quoted_dst: str
    quoted_payload: bytes
    """The quoted UDP payload bytes present (RFC 792 promises only 8 bytes past the IP header: the
    UDP header; most hosts quote more, up to the UDP length)."""


def describe(version: int, mtype: int, code: int) -> str:
    """tshark's words for an ICMP message: "Destination unreachable (Port unreachable)"."""
    name = type_name(version, mtype)
    detail = code_name(version, mtype, code)
    return name if detail is None else f"{name} ({detail})"


def summary(version: int, mtype: int, code: int) -> str:
    """The Info column as tshark writes it: an ICMPv4 type name is padded to 20 characters."""
    if version == 6:
        return describe(version, mtype, code)
    detail = code_name(version, mtype, code)
    name = type_name(version, mtype)
    return name if detail is None else f"{name:<{ICMP_TYPE_WIDTH}} ({detail})"


def _endpoint(raw: bytes, port: int) -> str:
    return str(Endpoint(str(ipaddress.ip_address(raw)), port))


def icmp_error(data: bytes, version: int, reporter: str) -> IcmpError | None:
    """The error `data` (an ICMP message from its type byte) reports about a UDP datagram; None
    when it is no error, quotes no UDP header (another transport, a later fragment), or is cut
    short before the quoted UDP ports. Never raises on any bytes."""
    if len(data) < ICMP_HEADER or version not in (4, 6):
        return None
    mtype, code = data[0], data[1]
    if mtype not in (ICMPV6_ERRORS if version == 6 else ICMP_ERRORS):
        return None
    quoted = _quoted_udp(data, ICMP_HEADER)
    if quoted is None:
        return None
    src, dst, sport, dport, length, payload_at = quoted
    end = len(data) if length < 8 else min(len(data), payload_at + length - 8)
    return IcmpError(
        version=version,
        type=mtype,
        code=code,
        description=describe(version, mtype, code),
        reporter=reporter,
        quoted_src=_endpoint(src, sport),
        quoted_dst=_endpoint(dst, dport),
        quoted_payload=bytes(data[payload_at:end]),
    )


def _quoted_udp(data: bytes, off: int) -> tuple[bytes, bytes, int, int, int, int] | None:
    """(source, destination, source port, destination port, UDP length, offset of the payload) of
    the UDP datagram whose headers start at `off`, or None."""
    n = len(data)
    if off >= n:
        return None
    version = data[off] >> 4
    if version == 4:
        ihl = (data[off] & 0x0F) * 4
        if ihl < 20 or off + ihl > n:
            return None
        flags_frag, _ttl, proto = struct.unpack_from(">HBB", data, off + 6)
        if proto != IPPROTO_UDP or flags_frag & 0x1FFF:
            return None
        src, dst = data[off + 12 : off + 16], data[off + 16 : off + 20]
        l4 = off + ihl
    elif version == 6:
        if off + 40 > n:
            return None
        nh = data[off + 6]
        src, dst = data[off + 8 : off + 24], data[off + 24 : off + 40]
        l4 = off + 40
        for _ in range(MAX_QUOTED_EXTENSIONS):
            if nh in IPV6_EXTENSIONS:
                if l4 + 2 > n:
                    return None
                nh, l4 = data[l4], l4 + (data[l4 + 1] + 1) * 8
            elif nh == IPV6_FRAGMENT:
                if l4 + 8 > n or struct.unpack_from(">H", data, l4 + 2)[0] & 0xFFF8:
                    return None  # cut short, or a later fragment: no UDP header
                nh, l4 = data[l4], l4 + 8
            else:
                break
        if nh != IPPROTO_UDP:
            return None
    else:
        return None
    if l4 + 8 > n:
        return None
    sport, dport, length = struct.unpack_from(">HHH", data, l4)
    return src, dst, sport, dport, length, l4 + 8


def message_summary(data: bytes, version: int) -> str:
    """The Info text of any ICMP message (`summary`), "" when it is shorter than its 8-byte header."""
    if len(data) < ICMP_HEADER:
        return ""
    return summary(version, data[0], data[1])
