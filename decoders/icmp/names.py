"""ICMP and ICMPv6 type and code names, as tshark writes them (packet-icmp.c, packet-icmpv6.c)."""

from __future__ import annotations

from collections.abc import Mapping

ICMP_TYPES: Mapping[int, str] = {
    0: "Echo (ping) reply",
    1: "Reserved",
    2: "Reserved",
    3: "Destination unreachable",
    4: "Source quench (flow control)",
    5: "Redirect",
    6: "Alternate host address",
    8: "Echo (ping) request",
    9: "Router advertisement",
    10: "Router solicitation",
    11: "Time-to-live exceeded",
    12: "Parameter problem",
    13: "Timestamp request",
    14: "Timestamp reply",
    15: "Information request",
    16: "Information reply",
    17: "Address mask request",
    18: "Address mask reply",
    19: "Reserved (for security)",
    30: "Traceroute",
    40: "Photuris",
    41: "Experimental mobility protocols",
    42: "Extended Echo request",
    43: "Extended Echo reply",
}
ICMP_CODES: Mapping[int, Mapping[int, str]] = {
    3: {
        0: "Network unreachable",
        1: "Host unreachable",
        2: "Protocol unreachable",
        3: "Port unreachable",
        4: "Fragmentation needed",
        5: "Source route failed",
        6: "Destination network unknown",
        7: "Destination host unknown",
        8: "Source host isolated",
        9: "Network administratively prohibited",
        10: "Host administratively prohibited",
        11: "Network unreachable for TOS",
        12: "Host unreachable for TOS",
        13: "Communication administratively filtered",
        14: "Host precedence violation",
        15: "Precedence cutoff in effect",
    },
    5: {
        0: "Redirect for network",
        1: "Redirect for host",
        2: "Redirect for TOS and network",
        3: "Redirect for TOS and host",
    },
    6: {0: "Alternate address for host"},
    9: {0: "Normal router advertisement", 16: "Does not route common traffic"},
    11: {0: "Time to live exceeded in transit", 1: "Fragment reassembly time exceeded"},
    12: {0: "Pointer indicates the error", 1: "Required option missing", 2: "Bad length"},
    40: {
        0: "Bad SPI",
        1: "Authentication Failed",
        2: "Decompression Failed",
        3: "Decryption Failed",
        4: "Need Authentication",
        5: "Need Authorization",
    },
    42: {0: "No error"},
    43: {
        0: "No error",
        1: "Malformed Query",
        2: "No Such Interface",
        3: "No Such Table Entry",
        4: "Multiple Interfaces Satisfy Query",
    },
}
"""Code names of the ICMPv4 types that have them; a code of such a type outside its table is
"Unknown code: N"."""
ICMP_TYPE_WIDTH = 20
"""tshark's Info pads an ICMPv4 type name to 20 characters before the code ("%-20s (%s)")."""

ICMPV6_TYPES: Mapping[int, str] = {
    1: "Destination Unreachable",
    2: "Packet Too Big",
    3: "Time Exceeded",
    4: "Parameter Problem",
    100: "Private experimentation",
    101: "Private experimentation",
    128: "Echo (ping) request",
    129: "Echo (ping) reply",
    130: "Multicast Listener Query",
    131: "Multicast Listener Report",
    132: "Multicast Listener Done",
    133: "Router Solicitation",
    134: "Router Advertisement",
    135: "Neighbor Solicitation",
    136: "Neighbor Advertisement",
    137: "Redirect",
    143: "Multicast Listener Report Message v2",
    200: "Private experimentation",
    201: "Private experimentation",
}
ICMPV6_CODES: Mapping[int, Mapping[int, str]] = {
    1: {
        0: "no route to destination",
        1: "Administratively prohibited",
        2: "Beyond scope of source address",
        3: "Address unreachable",
        4: "Port unreachable",
        5: "Source address failed ingress/egress policy",
        6: "Reject route to destination",
        7: "Error in Source Routing Header",
    },
    3: {0: "hop limit exceeded in transit", 1: "fragment reassembly time exceeded"},
    4: {
        0: "erroneous header field encountered",
        1: "unrecognized Next Header type encountered",
        2: "unrecognized IPv6 option encountered",
        3: "IPv6 First Fragment has incomplete IPv6 Header Chain",
    },
}
"""Code names of the ICMPv6 errors that have them: an unknown code of type 1 is "Unknown", of
types 3 and 4 "Unknown (N)"."""


def type_name(version: int, mtype: int) -> str:
    if version == 6:
        return ICMPV6_TYPES.get(mtype, "Unknown type")
    return ICMP_TYPES.get(mtype, "Unknown ICMP (obsolete or malformed?)")


def code_name(version: int, mtype: int, code: int) -> str | None:
    """The code's name, None for a type whose codes tshark does not name."""
    table = (ICMPV6_CODES if version == 6 else ICMP_CODES).get(mtype)
    if table is None:
        return None
    name = table.get(code)
    if name is not None:
        return name
    if version == 4:
        return f"Unknown code: {code}"
    return "Unknown" if mtype == 1 else f"Unknown ({code})"
