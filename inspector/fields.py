"""The field registry: every name the display filter, the detail tree and `--list-fields` know.

Like Wireshark's hf_register_info tables, merged: the fields the decoders declare (their `fields`
attribute, collected by `Registry.fields`), the frame and L2-L4 fields of captures/net.py, and the
filter's virtual fields (tcp.stream, frame.time_relative, grpc.path, ...), which no layer emits
but inspector/filter/ computes from the index columns and the decoded PDUs.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterator, Mapping

from protoscope.decoders.api import FieldInfo
from protoscope.decoders.protobuf.fields import DYNAMIC_PREFIXES
from protoscope.decoders.registry import Registry

ETHERTYPES = {
    0x0800: "IPv4",
    0x0806: "ARP",
    0x8100: "802.1Q Virtual LAN",
    0x86DD: "IPv6",
    0x8847: "MPLS label switched packet",
    0x8863: "PPPoE Discovery",
    0x8864: "PPPoE Session",
    0x888E: "802.1X Authentication",
    0x88A8: "802.1ad Provider Bridge (Q-in-Q)",
    0x88CC: "802.1 Link Layer Discovery Protocol (LLDP)",
}
"""Wireshark's etype value names for the types our captures carry."""
IP_PROTOCOLS = {
    0: "IPv6 Hop-by-Hop Option",
    1: "ICMP",
    2: "IGMP",
    4: "IPIP",
    6: "TCP",
    17: "UDP",
    41: "IPv6",
    43: "IPv6 Routing",
    44: "IPv6 Fragment",
    47: "GRE",
    50: "ESP",
    51: "AH",
    58: "ICMPv6",
    59: "IPv6 No Next Header",
    60: "IPv6 Destination Options",
    132: "SCTP",
}
TCP_FLAG_BITS = {
    0x001: "FIN",
    0x002: "SYN",
    0x004: "RST",
    0x008: "PSH",
    0x010: "ACK",
    0x020: "URG",
    0x040: "ECE",
    0x080: "CWR",
    0x100: "AE",
}
"""RFC 9293 control bits; 0x100 is the Accurate ECN bit (RFC 3540's NS), as tshark 4.0 counts it."""
TCP_FLAG_FIELDS = {
    "tcp.flags.fin": 0x001,
    "tcp.flags.syn": 0x002,
    "tcp.flags.reset": 0x004,
    "tcp.flags.push": 0x008,
    "tcp.flags.ack": 0x010,
    "tcp.flags.urg": 0x020,
    "tcp.flags.ece": 0x040,
    "tcp.flags.cwr": 0x080,
    "tcp.flags.ns": 0x100,
}
"""Wireshark's names of the single-bit fields of tcp.flags."""
TCP_FLAG_ALIASES = {"tcp.flags.rst": "tcp.flags.reset", "tcp.flags.psh": "tcp.flags.push"}
"""Short names users type for two of them (not tshark's: it refuses these two)."""
SLL_PACKET_TYPES = {
    0: "Unicast to us",
    1: "Broadcast",
    2: "Multicast",
    3: "Unicast to another host",
    4: "Sent by us",
}
NULL_FAMILIES = {2: "IP", 24: "IPv6", 28: "IPv6", 30: "IPv6"}

_L2_L4: tuple[FieldInfo, ...] = (
    FieldInfo("frame", "Frame", "protocol", "The captured frame; `frame contains` searches its bytes"),
    FieldInfo("frame.number", "Frame Number", "uint", "1-based, as Wireshark numbers frames"),
    FieldInfo("frame.len", "Frame Length", "uint", "Bytes on the wire"),
    FieldInfo("frame.cap_len", "Capture Length", "uint", "Bytes captured"),
    FieldInfo("frame.time_epoch", "Epoch Arrival Time", "time", "Seconds since 1970"),
    FieldInfo("frame.time_relative", "Time since reference or first frame", "time", "Seconds"),
    FieldInfo("frame.time_delta", "Time delta from previous captured frame", "time", "Seconds"),
    FieldInfo("frame.protocols", "Protocols in frame", "string", "eth:ethertype:ip:udp:stun, as tshark"),
    FieldInfo("eth", "Ethernet II", "protocol"),
    FieldInfo("eth.dst", "Destination", "ether"),
    FieldInfo("eth.src", "Source", "ether"),
    FieldInfo("eth.addr", "Address", "ether", "Source or destination"),
    FieldInfo("eth.type", "Type", "uint", "EtherType", strings=ETHERTYPES, base="hex", digits=4),
    FieldInfo("vlan", "802.1Q Virtual LAN", "protocol"),
    FieldInfo("vlan.id", "ID", "uint"),
    FieldInfo("vlan.priority", "Priority", "uint"),
    FieldInfo("vlan.etype", "Type", "uint", strings=ETHERTYPES, base="hex", digits=4),
    FieldInfo("sll", "Linux cooked capture", "protocol"),
    FieldInfo("sll.pkttype", "Packet type", "uint", strings=SLL_PACKET_TYPES),
    FieldInfo("sll.etype", "Protocol", "uint", strings=ETHERTYPES, base="hex", digits=4),
    FieldInfo("sll.ifindex", "Interface index", "uint"),
    FieldInfo("null", "Null/Loopback", "protocol"),
    FieldInfo("null.family", "Family", "uint", strings=NULL_FAMILIES),
    FieldInfo("raw", "Raw packet data", "protocol", "A capture of bare IP packets"),
    FieldInfo("gtp", "GPRS Tunneling Protocol", "protocol"),
    FieldInfo("gtp.flags", "Flags", "uint", base="hex", digits=2),
    FieldInfo("gtp.message", "Message Type", "uint", base="hex", digits=2),
    FieldInfo("gtp.length", "Length", "uint"),
    FieldInfo("gtp.teid", "TEID", "uint", "Tunnel endpoint identifier", base="hex", digits=8),
    FieldInfo("ip", "Internet Protocol Version 4", "protocol"),
    FieldInfo("ip.version", "Version", "uint"),
    FieldInfo("ip.hdr_len", "Header Length", "uint", "Bytes"),
    FieldInfo("ip.dsfield", "Differentiated Services Field", "uint", base="hex", digits=2),
    FieldInfo("ip.len", "Total Length", "uint"),
    FieldInfo("ip.id", "Identification", "uint", base="hex", digits=4),
    FieldInfo("ip.flags.df", "Don't fragment", "bool"),
    FieldInfo("ip.flags.mf", "More fragments", "bool"),
    FieldInfo("ip.frag_offset", "Fragment Offset", "uint"),
    FieldInfo("ip.ttl", "Time to Live", "uint"),
    FieldInfo("ip.proto", "Protocol", "uint", strings=IP_PROTOCOLS),
    FieldInfo("ip.src", "Source Address", "ipv4"),
    FieldInfo("ip.dst", "Destination Address", "ipv4"),
    FieldInfo("ip.addr", "Source or Destination Address", "ipv4"),
    FieldInfo("ipv6", "Internet Protocol Version 6", "protocol"),
    FieldInfo("ipv6.version", "Version", "uint"),
    FieldInfo("ipv6.tclass", "Traffic Class", "uint", base="hex", digits=8),
    FieldInfo("ipv6.flow", "Flow Label", "uint", base="hex", digits=6),
    FieldInfo("ipv6.plen", "Payload Length", "uint"),
    FieldInfo("ipv6.nxt", "Next Header", "uint", strings=IP_PROTOCOLS),
    FieldInfo("ipv6.hlim", "Hop Limit", "uint"),
    FieldInfo("ipv6.src", "Source Address", "ipv6"),
    FieldInfo("ipv6.dst", "Destination Address", "ipv6"),
    FieldInfo("ipv6.addr", "Source or Destination Address", "ipv6"),
    FieldInfo("ipv6.ext_headers", "Extension headers", "string", "Their next-header numbers"),
    FieldInfo("udp", "User Datagram Protocol", "protocol"),
    FieldInfo("udp.srcport", "Source Port", "uint"),
    FieldInfo("udp.dstport", "Destination Port", "uint"),
    FieldInfo("udp.port", "Source or Destination Port", "uint"),
    FieldInfo("udp.length", "Length", "uint"),
    FieldInfo("udp.checksum", "Checksum", "uint", base="hex", digits=4),
    FieldInfo("udp.stream", "Stream index", "uint", "The UDP conversation, numbered as tshark numbers it"),
    FieldInfo("tcp", "Transmission Control Protocol", "protocol"),
    FieldInfo("tcp.srcport", "Source Port", "uint"),
    FieldInfo("tcp.dstport", "Destination Port", "uint"),
    FieldInfo("tcp.port", "Source or Destination Port", "uint"),
    FieldInfo("tcp.stream", "Stream index", "uint", "The TCP conversation, numbered as tshark numbers it"),
    FieldInfo("tcp.len", "TCP Segment Len", "uint", "Payload bytes"),
    FieldInfo("tcp.seq", "Sequence Number", "uint", "Relative to the direction's first sequence number"),
    FieldInfo("tcp.seq_raw", "Sequence Number (raw)", "uint"),
    FieldInfo("tcp.ack", "Acknowledgment Number", "uint", "Relative to the other direction's first"),
    FieldInfo("tcp.ack_raw", "Acknowledgment number (raw)", "uint"),
    FieldInfo("tcp.hdr_len", "Header Length", "uint", "Bytes"),
    FieldInfo("tcp.flags", "Flags", "uint", "Control bits", bits=TCP_FLAG_BITS, base="hex", digits=4),
    *(
        FieldInfo(abbrev, TCP_FLAG_BITS[bit], "bool", f"The {TCP_FLAG_BITS[bit]} control bit")
        for abbrev, bit in TCP_FLAG_FIELDS.items()
    ),
    FieldInfo("tcp.flags.str", "TCP Flags", "string", "The set bits' names"),
    FieldInfo("tcp.window_size_value", "Window", "uint", "As sent, before scaling"),
)

LINK_FIELDS: frozenset[str] = frozenset(f.abbrev for f in _L2_L4) - {"frame.protocols"}
"""Fields the frame and L2-L4 layers give (or the index computes): no decoding pass needed."""

_VIRTUAL: tuple[FieldInfo, ...] = (
    FieldInfo(
        "grpc.path",
        "Path",
        "string",
        "Ours: the call's :path, on the packets carrying its HEADERS, messages and trailers",
    ),
    FieldInfo("grpc.service", "Service", "string", "Ours: the :path's service (pkg.Service)"),
    FieldInfo("grpc.method", "Method", "string", "Ours: the :path's method name"),
)

ALIASES = {
    "ip.addr": ("ip.src", "ip.dst"),
    "ipv6.addr": ("ipv6.src", "ipv6.dst"),
    "tcp.port": ("tcp.srcport", "tcp.dstport"),
    "udp.port": ("udp.srcport", "udp.dstport"),
    "eth.addr": ("eth.src", "eth.dst"),
}
"""Fields that stand for either of two others (Wireshark registers them as separate fields with
the same value; we read both)."""


@functools.cache
def _in_tree() -> Mapping[str, FieldInfo]:
    """The in-tree decoders' fields, when no registry is given (no entry point is scanned)."""
    from protoscope.decoders.dtls.fields import FIELDS as DTLS
    from protoscope.decoders.http.fields import FIELDS as HTTP
    from protoscope.decoders.http2.fields import FIELDS as HTTP2
    from protoscope.decoders.icmp.fields import FIELDS as ICMP
    from protoscope.decoders.mdns.fields import FIELDS as MDNS
    from protoscope.decoders.rtp.fields import FIELDS as RTP
    from protoscope.decoders.sctp.fields import FIELDS as SCTP
    from protoscope.decoders.sdp.fields import FIELDS as SDP
    from protoscope.decoders.stun.fields import FIELDS as STUN
    from protoscope.decoders.tls.fields import FIELDS as TLS

    return _merge((*DTLS, *HTTP, *HTTP2, *ICMP, *MDNS, *RTP, *SCTP, *SDP, *STUN, *TLS))


def _merge(decoded: tuple[FieldInfo, ...]) -> Mapping[str, FieldInfo]:
    out: dict[str, FieldInfo] = {}
    for info in (*_L2_L4, *_VIRTUAL, *decoded):
        out.setdefault(info.abbrev, info)
    return out


_BY_REGISTRY: dict[int, tuple[Registry, Mapping[str, FieldInfo]]] = {}
"""Tables of the registries asked about lately (a registry is an unhashable dataclass: by id, with
the registry kept so that the id is not reused while its entry lives)."""
KEPT_TABLES = 4


def _table(registry: Registry | None) -> Mapping[str, FieldInfo]:
    if registry is None:
        return _in_tree()
    cached = _BY_REGISTRY.get(id(registry))
    if cached is None or cached[0] is not registry:
        table = dict(_in_tree())
        for abbrev, info in registry.fields().items():
            table.setdefault(abbrev, info)
        while len(_BY_REGISTRY) >= KEPT_TABLES:
            del _BY_REGISTRY[next(iter(_BY_REGISTRY))]
        cached = _BY_REGISTRY[id(registry)] = (registry, table)
    return cached[1]


def known_fields(registry: Registry | None = None) -> list[FieldInfo]:
    """Every known field and protocol, sorted by abbrev."""
    table = _table(registry)
    return [table[k] for k in sorted(table)]


def field_info(name: str, registry: Registry | None = None) -> FieldInfo | None:
    """The declaration of `name`, or None. Names under a dynamic prefix (`pbf.`: a schema's
    message fields) are known without a declaration: a string field named by its last part."""
    name = TCP_FLAG_ALIASES.get(name, name)
    info = _table(registry).get(name)
    if info is None and name.startswith(DYNAMIC_PREFIXES) and len(name) > name.index(".") + 1:
        return FieldInfo(name, name.rsplit(".", 1)[-1], "string", "A message field of a loaded schema")
    return info


def closest(name: str, registry: Registry | None = None, n: int = 3) -> list[str]:
    """Up to `n` known names that look like `name` (for "did you mean")."""
    return difflib.get_close_matches(name, list(_table(registry)), n=n, cutoff=0.6)


def _hex(value: int, digits: int) -> str:
    return f"0x{value:0{digits}x}"


def _hex_digits(info: FieldInfo, value: int) -> int:
    """Zero-padding as Wireshark's field widths give it: a bitmask as many digits as its highest
    bit needs (tcp.flags: 0x012), else the widest named value or the value itself rounded up to
    a whole integer type (eth.type: 0x0800; an SSRC: 0x0000abcd)."""
    if info.bits:  # the tree shows a bitmask's width; `digits` is the whole field's (-T fields)
        top: int = max(info.bits)
        return max(2, (top.bit_length() + 3) // 4)
    if info.digits:
        return int(info.digits)
    widest: int = max([value, *(info.strings or {})])
    digits = (widest.bit_length() + 3) // 4
    return next((width for width in (2, 4, 8) if digits <= width), 16)


def display(name: str, value: object, registry: Registry | None = None) -> tuple[str, str]:
    """The detail tree's label and value text for one field, the way Wireshark shows them:
    ("Type", "HEADERS (1)"), ("Flags", "0x05 END_STREAM, END_HEADERS"), ("Type", "IPv4 (0x0800)"),
    ("Synchronization Source identifier", "0x1234abcd"). Unknown names give (name, str(value))."""
    info = field_info(name, registry)
    if info is None:
        return name, str(value)
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, bytes):
            return info.name, value.hex(":") if info.type == "ether" else value.hex()
        return info.name, str(value)
    number = value
    hexa = info.base == "hex"
    if info.bits:
        digits = _hex_digits(info, number)
        names = [text for bit, text in sorted(info.bits.items()) if number & bit]
        return info.name, " ".join([_hex(number, digits), ", ".join(names)]) if names else _hex(
            number, digits
        )
    shown = _hex(number, _hex_digits(info, number)) if hexa else str(number)
    if info.strings is not None:
        label = info.strings.get(number)
        return info.name, f"{label} ({shown})" if label is not None else f"Unknown ({shown})"
    return info.name, shown


def list_fields_text(registry: Registry | None = None) -> Iterator[str]:
    """`--list-fields`: one field a line, as `tshark -G fields` lists them but in the order
    abbrev, name, type, description, tab-separated (protocols have type "protocol")."""
    for info in known_fields(registry):
        yield "\t".join((info.abbrev, info.name, info.type, info.description))
