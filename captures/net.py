"""The L2-L4 dissector for one packet: link layers, IPv4/IPv6 and UDP/TCP headers.

This is the reference implementation. The index runs it on the packets the vectorised fast path
(`fastpath.py`) leaves aside (extension headers, tunnels, odd lengths, non-IP), without the
detail tree's fields (`detail=False`), and the UI runs it on the selected packet; a test checks
that both paths agree on every public capture.
Hand-written because it must keep byte offsets for the hex view and survive broken headers,
which scapy's dissection (185 s per 1M packets) does neither of.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

from protoscope.decoders.api import Finding

from . import linktypes as lt

MAX_IPV6_EXT_HEADERS = 16
"""Extension headers walked before giving up on a packet (hostile chains are bounded)."""
MAX_VLAN_TAGS = 8

IPV6_EXT_HEADERS = frozenset({0, 43, 60, 135, 139, 140})
"""Hop-by-hop, Routing, Destination Options, Mobility, HIP, Shim6: length in 8-octet units."""
IPV6_FRAGMENT = 44
IPV6_AH = 51

TCP_FLAG_NAMES = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")

IPPROTO_ICMP = 1
IPPROTO_ICMPV6 = 58
ICMP_QUOTING = frozenset({3, 4, 5, 11, 12})
"""ICMPv4 types whose body quotes the datagram that caused them, its IP header and at least 64 bits
after it (RFC 792): Destination unreachable, Source quench, Redirect, Time exceeded, Parameter
problem; tshark dissects the quoted headers of these."""
ICMPV6_QUOTING = frozenset({1, 2, 3, 4})
"""ICMPv6 error messages (RFC 4443 section 2.1: types below 128), which quote as much of the
offending packet as fits in the minimum IPv6 MTU."""
ICMP_HEADER = 8
"""Type, code, checksum and the 4 type-specific bytes every ICMP and ICMPv6 message starts with."""


@dataclass(slots=True)
class Layer:
    """One header of the detail tree: its Wireshark name, byte span and fields."""

    name: str
    start: int
    end: int
    fields: dict[str, object] = field(default_factory=dict)


FragmentKey = tuple[int, int, int, int, int, int, int]
"""(IP version, source high and low 64 bits, destination high and low, identification, protocol):
the datagram a fragment belongs to (RFC 791 section 2.3, RFC 8200 section 4.5). Integers, as the
fast path's columns hold them, so a datagram whose fragments took both paths is one datagram."""


@dataclass(slots=True)
class Fragment:
    """An IP fragment waiting for its siblings."""

    key: tuple[object, ...]
    """A FragmentKey from this module and from the index (tests may use any hashable tuple)."""
    offset: int
    more: bool
    start: int
    end: int
    """Span of the fragment's payload within the frame."""


@dataclass(frozen=True, slots=True)
class Tunnel:
    """The outer UDP header of a tunnelled packet (its conversation is counted, like tshark's)."""

    ip_version: int
    src: bytes
    dst: bytes
    sport: int
    dport: int


@dataclass(slots=True)
class Dissection:
    """What L2-L4 says about one packet."""

    layers: list[Layer] = field(default_factory=list)
    ip_version: int = 0
    src: bytes = b""
    dst: bytes = b""
    ip_proto: int = -1
    fragment: Fragment | None = None
    l4: int = 0
    """6 (TCP), 17 (UDP) or 0 (no transport header decoded)."""
    sport: int = 0
    dport: int = 0
    tcp_seq: int = 0
    tcp_ack: int = 0
    tcp_flags: int = 0
    payload_off: int = 0
    payload_len: int = 0
    findings: list[Finding] = field(default_factory=list)
    tunnel: Tunnel | None = None
    """The outer UDP conversation when the packet was carried in a GTP-U tunnel."""
    detail: bool = True
    """Fill each layer's fields. The index needs only the layers' names and the transport facts:
    without the fields (MAC and IP addresses as text, above all) an IPv4 fragment's headers cost
    ~4 µs instead of ~12, a GTP-U packet's ~12 instead of ~25 (measured on this machine, loaded)."""

    @property
    def protocols(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)


def ip_text(raw: bytes) -> str:
    return str(ipaddress.ip_address(raw)) if len(raw) in (4, 16) else raw.hex()


def addr_words(raw: bytes) -> tuple[int, int]:
    """An IPv4 or IPv6 address as the fast path's two columns hold it: (high 64 bits, low 64 bits)."""
    if len(raw) == 4:
        return 0, int.from_bytes(raw, "big")
    v = int.from_bytes(raw, "big")
    return v >> 64, v & 0xFFFF_FFFF_FFFF_FFFF


def fragment_key(version: int, src: bytes, dst: bytes, ident: int, proto: int) -> FragmentKey:
    return (version, *addr_words(src), *addr_words(dst), ident, proto)


def _truncated(proto: str, need: int, have: int) -> Finding:
    return Finding("warn", f"{proto}.truncated", f"{proto} header cut short: {have} of {need} bytes captured")


def _short(d: Dissection, proto: str, need: int, have: int) -> None:
    d.findings.append(_truncated(proto, need, have))


def dissect(linktype: int, data: bytes, wirelen: int | None = None, detail: bool = True) -> Dissection:
    """Dissect the link, network and transport headers of one captured frame (`detail`: with each
    layer's fields, for the detail tree; see Dissection.detail)."""
    d = Dissection(detail=detail)
    n = len(data)
    off, ethertype = _link(linktype, data, d)
    if off < 0:
        return d
    reported = n if wirelen is None else max(n, wirelen)
    if ethertype == lt.ETHERTYPE_IPV4:
        _ipv4(data, off, reported, d)
    elif ethertype == lt.ETHERTYPE_IPV6:
        _ipv6(data, off, reported, d)
    if d.l4 == lt.IPPROTO_UDP and lt.GTPU_PORT in (d.sport, d.dport):
        _gtpu(data, d)
    return d


GTP_GPDU = 0xFF
"""GTP-U message type of a tunnelled user packet (T-PDU)."""


def _gtpu(data: bytes, d: Dissection) -> None:
    """Enter a GTPv1-U G-PDU (TS 29.281 section 5) and dissect the IP packet inside it.

    Anything that is not a well-formed G-PDU carrying IPv4/IPv6 is left as plain UDP payload.
    """
    start = d.payload_off
    end = min(len(data), start + d.payload_len)
    if end - start < 8:
        return
    flags, msg_type, length, teid = struct.unpack_from(">BBHI", data, start)
    if flags >> 5 != 1 or not flags & 0x10 or msg_type != GTP_GPDU or 8 + length != d.payload_len:
        return
    inner = start + 8
    if flags & 0x07:  # sequence number, N-PDU number, next extension header type
        inner += 4
        next_type = data[inner - 1] if inner <= end else 0
        while next_type:  # extension headers: a length in 4-octet units, content, next type
            if inner >= end or data[inner] == 0:
                return
            inner += 4 * data[inner]
            next_type = data[inner - 1] if inner <= end else 0
    if inner >= end or data[inner] >> 4 not in (4, 6):
        return
    d.layers.append(
        Layer(
            "gtp",
            start,
            inner,
            {"gtp.flags": flags, "gtp.message": msg_type, "gtp.length": length, "gtp.teid": teid}
            if d.detail
            else {},
        )
    )
    d.tunnel = Tunnel(d.ip_version, d.src, d.dst, d.sport, d.dport)
    d.l4 = d.sport = d.dport = d.payload_off = d.payload_len = 0
    reported = start + 8 + length
    if data[inner] >> 4 == 4:
        _ipv4(data, inner, reported, d)
    else:
        _ipv6(data, inner, reported, d)


LINK_HEADERS = {
    lt.ETHERNET: ("eth", 14),
    lt.LINUX_SLL: ("sll", 16),
    lt.LINUX_SLL2: ("sll", 20),
    lt.NULL: ("null", 4),
    lt.LOOP: ("null", 4),
}
"""Link type -> (layer name, fixed header length): a frame shorter is `{name}.truncated`, no layers."""


def no_link_layer(linktype: int, captured: int) -> Finding | None:
    """The finding of a frame of `captured` bytes that `dissect` gives no layer at all because its
    link type is unknown or its link header is cut short (the index finds such frames in bulk)."""
    if linktype not in lt.LINK_NAMES:
        return Finding("note", "frame.linktype_unknown", f"link type {linktype} is not decoded")
    name, need = LINK_HEADERS.get(linktype, ("", 0))
    return _truncated(name, need, captured) if captured < need else None


def _link(linktype: int, data: bytes, d: Dissection) -> tuple[int, int]:
    """Return (offset of the network header, ethertype), or (-1, 0) when there is none."""
    n = len(data)
    missing = no_link_layer(linktype, n)
    if missing is not None:
        d.findings.append(missing)
        return -1, 0
    if linktype == lt.ETHERNET:
        ethertype = struct.unpack_from(">H", data, 12)[0]
        d.layers.append(
            Layer(
                "eth",
                0,
                14,
                {"eth.dst": _mac(data[0:6]), "eth.src": _mac(data[6:12]), "eth.type": ethertype}
                if d.detail
                else {},
            )
        )
        off = 14
        tags = 0
        while ethertype in lt.VLAN_TPIDS:
            if n < off + 4:
                _short(d, "vlan", 4, n - off)
                return -1, 0
            tci, ethertype = struct.unpack_from(">HH", data, off)
            d.layers.append(
                Layer(
                    "vlan",
                    off,
                    off + 4,
                    {"vlan.id": tci & 0xFFF, "vlan.priority": tci >> 13, "vlan.etype": ethertype}
                    if d.detail
                    else {},
                )
            )
            off += 4
            tags += 1
            if tags > MAX_VLAN_TAGS:
                d.findings.append(Finding("warn", "vlan.too_many", f"more than {MAX_VLAN_TAGS} VLAN tags"))
                return -1, 0
        return off, ethertype
    if linktype == lt.LINUX_SLL:
        ethertype = struct.unpack_from(">H", data, 14)[0]
        pkttype = struct.unpack_from(">H", data, 0)[0]
        d.layers.append(
            Layer("sll", 0, 16, {"sll.pkttype": pkttype, "sll.etype": ethertype} if d.detail else {})
        )
        return 16, ethertype
    if linktype == lt.LINUX_SLL2:
        ethertype, _res, ifindex = struct.unpack_from(">HHI", data, 0)
        d.layers.append(
            Layer("sll", 0, 20, {"sll.etype": ethertype, "sll.ifindex": ifindex} if d.detail else {})
        )
        return 20, ethertype
    if linktype in (lt.NULL, lt.LOOP):
        family = struct.unpack_from(">I" if linktype == lt.LOOP else "<I", data, 0)[0]
        if linktype == lt.NULL and family > 0xFFFF:  # written by a big-endian host
            family = struct.unpack_from(">I", data, 0)[0]
        d.layers.append(Layer("null", 0, 4, {"null.family": family} if d.detail else {}))
        if family == lt.AF_INET:
            return 4, lt.ETHERTYPE_IPV4
        if family in lt.AF_INET6:
            return 4, lt.ETHERTYPE_IPV6
        return -1, 0
    # Raw IP: the version nibble says which. The layer has no bytes; it is named, as by the fast
    # path and by tshark (frame.protocols "raw:ip:udp").
    d.layers.append(Layer("raw", 0, 0))
    if n < 1:
        return -1, 0
    version = data[0] >> 4
    return 0, lt.ETHERTYPE_IPV4 if version == 4 else lt.ETHERTYPE_IPV6 if version == 6 else 0


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def _ipv4(data: bytes, off: int, reported: int, d: Dissection) -> None:
    n = len(data)
    if n < off + 20:
        _short(d, "ip", 20, n - off)
        return
    vihl, _tos, total, ident, flags_frag, _ttl, proto = struct.unpack_from(">BBHHHBB", data, off)
    ihl = (vihl & 0x0F) * 4
    if vihl >> 4 != 4 or ihl < 20:
        d.findings.append(Finding("error", "ip.bad_header", f"IPv4 version {vihl >> 4}, header length {ihl}"))
        return
    if n < off + ihl:
        _short(d, "ip", ihl, n - off)
        return
    if total == 0:  # TCP segmentation offload on the capturing host: trust the frame
        total = reported - off
    if total < ihl:
        d.findings.append(Finding("error", "ip.bad_len", f"IPv4 total length {total} < header length {ihl}"))
        return
    if off + total > reported:
        d.findings.append(
            Finding(
                "error", "ip.bad_len", f"IPv4 total length {total} exceeds the {reported - off} bytes present"
            )
        )
        total = reported - off
    src, dst = data[off + 12 : off + 16], data[off + 16 : off + 20]
    more = bool(flags_frag & 0x2000)
    frag_off = (flags_frag & 0x1FFF) * 8
    d.layers.append(Layer("ip", off, off + ihl, _ipv4_fields(data, off, total) if d.detail else {}))
    d.ip_version, d.src, d.dst, d.ip_proto = 4, src, dst, proto
    start, end = off + ihl, off + total
    if more or frag_off:
        d.fragment = Fragment(fragment_key(4, src, dst, ident, proto), frag_off, more, start, min(end, n))
        return
    transport(proto, data, start, end, d)


def _ipv6(data: bytes, off: int, reported: int, d: Dissection) -> None:
    n = len(data)
    if n < off + 40:
        _short(d, "ipv6", 40, n - off)
        return
    vtcfl, plen, nh, _hlim = struct.unpack_from(">IHBB", data, off)
    if vtcfl >> 28 != 6:
        d.findings.append(Finding("error", "ipv6.bad_header", f"IPv6 header with version {vtcfl >> 28}"))
        return
    src, dst = data[off + 8 : off + 24], data[off + 24 : off + 40]
    if plen == 0:  # jumbogram or offload: trust the frame
        plen = reported - off - 40
    end = off + 40 + plen
    if end > reported:
        d.findings.append(
            Finding(
                "error",
                "ipv6.bad_len",
                f"IPv6 payload length {plen} exceeds the {reported - off - 40} bytes present",
            )
        )
        end = reported
    d.layers.append(Layer("ipv6", off, off + 40, _ipv6_fields(data, off, plen) if d.detail else {}))
    d.ip_version, d.src, d.dst = 6, src, dst
    pos = off + 40
    ext_headers: list[int] = []
    if d.detail:
        d.layers[-1].fields["ipv6.ext_headers"] = ext_headers
    for _ in range(MAX_IPV6_EXT_HEADERS):
        if nh in IPV6_EXT_HEADERS or nh == IPV6_AH:
            if n < pos + 2:
                _short(d, "ipv6", 2, n - pos)
                return
            nxt, hlen = data[pos], data[pos + 1]
            size = (hlen + 2) * 4 if nh == IPV6_AH else (hlen + 1) * 8
            ext_headers.append(nh)
            nh, pos = nxt, pos + size
        elif nh == IPV6_FRAGMENT:
            if n < pos + 8:
                _short(d, "ipv6", 8, n - pos)
                return
            nxt, _res, offm, ident = struct.unpack_from(">BBHI", data, pos)
            pos += 8
            d.ip_proto = nxt
            more, frag_off = bool(offm & 1), (offm >> 3) * 8
            if more or frag_off:
                key = fragment_key(6, src, dst, ident, nxt)
                d.fragment = Fragment(key, frag_off, more, pos, min(end, n))
                return
            nh = nxt  # an atomic fragment: the payload is whole
        else:
            break
    else:
        d.findings.append(
            Finding("warn", "ipv6.too_many_ext", f"more than {MAX_IPV6_EXT_HEADERS} extension headers")
        )
        return
    if pos > end:
        d.findings.append(Finding("error", "ipv6.bad_ext", "extension headers run past the payload"))
        return
    d.ip_proto = nh
    transport(nh, data, pos, end, d)


def _ipv4_fields(data: bytes, off: int, total: int) -> dict[str, object]:
    """The detail tree's fields of the IPv4 header at `off` (whole in `data`); `total` is the total
    length as taken (the header's, or the frame's when the header says 0)."""
    vihl, tos, _total, ident, flags_frag, ttl, proto = struct.unpack_from(">BBHHHBB", data, off)
    return {
        "ip.version": 4,
        "ip.hdr_len": (vihl & 0x0F) * 4,
        "ip.dsfield": tos,
        "ip.len": total,
        "ip.id": ident,
        "ip.flags.df": bool(flags_frag & 0x4000),
        "ip.flags.mf": bool(flags_frag & 0x2000),
        "ip.frag_offset": (flags_frag & 0x1FFF) * 8,
        "ip.ttl": ttl,
        "ip.proto": proto,
        "ip.src": ip_text(data[off + 12 : off + 16]),
        "ip.dst": ip_text(data[off + 16 : off + 20]),
    }


def _ipv6_fields(data: bytes, off: int, plen: int) -> dict[str, object]:
    """The detail tree's fields of the IPv6 fixed header at `off` (whole in `data`)."""
    vtcfl, _plen, nh, hlim = struct.unpack_from(">IHBB", data, off)
    return {
        "ipv6.version": 6,
        "ipv6.tclass": (vtcfl >> 20) & 0xFF,
        "ipv6.flow": vtcfl & 0xFFFFF,
        "ipv6.plen": plen,
        "ipv6.nxt": nh,
        "ipv6.hlim": hlim,
        "ipv6.src": ip_text(data[off + 8 : off + 24]),
        "ipv6.dst": ip_text(data[off + 24 : off + 40]),
    }


def _udp_fields(data: bytes, start: int, length: int) -> dict[str, object]:
    sport, dport, _length, csum = struct.unpack_from(">HHHH", data, start)
    return {"udp.srcport": sport, "udp.dstport": dport, "udp.length": length, "udp.checksum": csum}


def transport(proto: int, data: bytes, start: int, end: int, d: Dissection) -> None:
    """Decode a UDP or TCP header (or an ICMP message) at `start`; the IP payload ends at `end` (may
    exceed the data)."""
    n = len(data)
    if proto == IPPROTO_ICMP or proto == IPPROTO_ICMPV6:
        _icmp(proto, data, start, min(end, n), d)
        return
    if proto == lt.IPPROTO_UDP:
        if n < start + 8:
            _short(d, "udp", 8, n - start)
            return
        sport, dport, ulen, _csum = struct.unpack_from(">HHHH", data, start)
        room = end - start
        if ulen < 8 or ulen > room:
            d.findings.append(
                Finding(
                    "error", "udp.length_bad", f"UDP length {ulen} does not fit the {room}-byte IP payload"
                )
            )
            ulen = room
        d.layers.append(Layer("udp", start, start + 8, _udp_fields(data, start, ulen) if d.detail else {}))
        d.l4, d.sport, d.dport = proto, sport, dport
        d.payload_off, d.payload_len = start + 8, ulen - 8
    elif proto == lt.IPPROTO_TCP:
        if n < start + 20:
            _short(d, "tcp", 20, n - start)
            return
        sport, dport, seq, ack, doff_byte, flags, win = struct.unpack_from(">HHIIBBH", data, start)
        hlen = (doff_byte >> 4) * 4
        if hlen < 20 or start + hlen > end:
            d.findings.append(
                Finding("error", "tcp.bad_header_len", f"TCP header length {hlen} is impossible here")
            )
            return
        if n < start + hlen:
            _short(d, "tcp", hlen, n - start)
            return
        d.layers.append(
            Layer(
                "tcp",
                start,
                start + hlen,
                {
                    "tcp.srcport": sport,
                    "tcp.dstport": dport,
                    "tcp.seq_raw": seq,
                    "tcp.ack_raw": ack,
                    "tcp.hdr_len": hlen,
                    "tcp.flags": flags | ((doff_byte & 1) << 8),
                    "tcp.flags.str": ",".join(nm for i, nm in enumerate(TCP_FLAG_NAMES) if flags >> i & 1),
                    "tcp.window_size_value": win,
                }
                if d.detail
                else {},
            )
        )
        d.l4, d.sport, d.dport = proto, sport, dport
        d.tcp_seq, d.tcp_ack, d.tcp_flags = seq, ack, flags
        d.payload_off, d.payload_len = start + hlen, end - start - hlen


# -- ICMP ------------------------------------------------------------------------------------------


def _icmp(proto: int, data: bytes, start: int, stop: int, d: Dissection) -> None:
    """An ICMP (RFC 792) or ICMPv6 (RFC 4443) message in data[start:stop]: its header, and for an
    error the IP header and the UDP or TCP header it quotes, as tshark nests them (here they follow
    the ICMP layer). The quoted headers make no flow: the packet's own transport stays none (d.l4
    is 0), as the index must not count an error in the conversation it reports on."""
    v6 = proto == IPPROTO_ICMPV6
    name = "icmpv6" if v6 else "icmp"
    if stop - start < ICMP_HEADER:
        _short(d, name, ICMP_HEADER, max(0, stop - start))
        return
    mtype, code, checksum = struct.unpack_from(">BBH", data, start)
    fields: dict[str, object] = {}
    if d.detail:
        fields = {f"{name}.type": mtype, f"{name}.code": code, f"{name}.checksum": checksum}
        fields.update((_icmpv6_rest if v6 else _icmp_rest)(mtype, code, data[start + 4 : start + 8]))
    d.layers.append(Layer(name, start, stop, fields))
    if mtype in (ICMPV6_QUOTING if v6 else ICMP_QUOTING):
        _quoted(data, start + ICMP_HEADER, stop, d)


def _icmp_rest(mtype: int, code: int, rest: bytes) -> dict[str, object]:
    """The 4 type-specific bytes of an ICMPv4 header, by tshark's field names."""
    if mtype in (0, 8, 13, 14, 15, 16, 17, 18):  # echo, timestamp, information, address mask
        ident, seq = struct.unpack(">HH", rest)
        return {"icmp.ident": ident, "icmp.seq": seq}
    if mtype in (3, 11, 12) and rest[1]:
        # RFC 4884: the quote's length in 32-bit words, and extensions may follow it. (tshark names
        # the two unused parts around it icmp.unused both; a layer has one field of a name.)
        first: dict[str, object] = {"icmp.pointer": rest[0]} if mtype == 12 else {"icmp.unused": rest[:1]}
        last: dict[str, object] = {}
        if mtype == 3 and code == 4:
            last = {"icmp.mtu": struct.unpack(">H", rest[2:])[0]}
        return {**first, "icmp.length": rest[1], **last}
    if mtype == 3 and code == 4:  # fragmentation needed: RFC 1191's next-hop MTU
        return {"icmp.unused": rest[:2], "icmp.mtu": struct.unpack(">H", rest[2:])[0]}
    if mtype == 12:
        return {"icmp.pointer": rest[0]}
    if mtype == 5:
        return {"icmp.redir_gw": ip_text(rest)}
    return {"icmp.unused": rest}


def _icmpv6_rest(mtype: int, code: int, rest: bytes) -> dict[str, object]:
    """The 4 type-specific bytes of an ICMPv6 header, by tshark's field names."""
    if mtype in (128, 129):
        ident, seq = struct.unpack(">HH", rest)
        return {"icmpv6.echo.identifier": ident, "icmpv6.echo.sequence_number": seq}
    if mtype == 2:
        return {"icmpv6.mtu": struct.unpack(">I", rest)[0]}
    if mtype == 4:
        return {"icmpv6.pointer": struct.unpack(">I", rest)[0]}
    return {"icmpv6.reserved": rest}


def _quoted(data: bytes, off: int, stop: int, d: Dissection) -> None:
    """The headers of the datagram an ICMP error quotes, in data[off:stop]: an IP header, then its
    UDP or TCP header when its first 8 bytes are there (RFC 792 promises them; RFC 4443 quotes
    more). What is cut shorter is left unnamed, as tshark leaves it: the quote is a copy of a packet
    the reporter saw, so its lengths and checksums describe that packet, not these bytes."""
    if stop - off < 1:
        return
    version = data[off] >> 4
    if version == 4:
        if stop - off < 20:
            return
        ihl = (data[off] & 0x0F) * 4
        if ihl < 20 or off + ihl > stop:
            return
        total, _ident, flags_frag, _ttl, proto = struct.unpack_from(">HHHBB", data, off + 2)
        d.layers.append(Layer("ip", off, off + ihl, _ipv4_fields(data, off, total) if d.detail else {}))
        if flags_frag & 0x1FFF:  # a later fragment: no transport header to name
            return
        l4 = off + ihl
    elif version == 6:
        if stop - off < 40:
            return
        plen, proto = struct.unpack_from(">HB", data, off + 4)
        d.layers.append(Layer("ipv6", off, off + 40, _ipv6_fields(data, off, plen) if d.detail else {}))
        l4 = off + 40
    else:
        return
    if stop - l4 < 8:
        return
    if proto == lt.IPPROTO_UDP:
        length = struct.unpack_from(">H", data, l4 + 4)[0]
        d.layers.append(Layer("udp", l4, l4 + 8, _udp_fields(data, l4, length) if d.detail else {}))
    elif proto == lt.IPPROTO_TCP:
        sport, dport, seq = struct.unpack_from(">HHI", data, l4)
        fields: dict[str, object] = {}
        if d.detail:
            fields = {"tcp.srcport": sport, "tcp.dstport": dport, "tcp.seq_raw": seq}
        d.layers.append(Layer("tcp", l4, min(stop, l4 + 20), fields))
