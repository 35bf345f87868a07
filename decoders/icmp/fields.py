"""The fields of ICMP and ICMPv6 messages (captures/net.py names them in the detail tree; the
"icmp" decoder's PDUs carry the header's), declared as tshark registers them."""

from __future__ import annotations

from protoscope.decoders.api import FieldInfo

from .names import ICMP_TYPES, ICMPV6_TYPES

FIELDS: tuple[FieldInfo, ...] = (
    FieldInfo("icmp", "Internet Control Message Protocol", "protocol"),
    FieldInfo("icmp.type", "Type", "uint", strings=ICMP_TYPES),
    FieldInfo("icmp.code", "Code", "uint", "Its meaning depends on the type"),
    FieldInfo("icmp.checksum", "Checksum", "uint", base="hex", digits=4),
    FieldInfo("icmp.unused", "Unused", "bytes"),
    FieldInfo("icmp.ident", "Identifier (BE)", "uint"),
    FieldInfo("icmp.seq", "Sequence Number (BE)", "uint"),
    FieldInfo("icmp.mtu", "MTU of next hop", "uint", "Of a Fragmentation needed error (RFC 1191)"),
    FieldInfo("icmp.length", "Length", "uint", "RFC 4884: the quoted datagram's length in 32-bit words"),
    FieldInfo("icmp.pointer", "Pointer", "uint", "Of a Parameter problem: the octet in error"),
    FieldInfo("icmp.redir_gw", "Gateway Address", "ipv4", "Of a Redirect"),
    FieldInfo("icmpv6", "Internet Control Message Protocol v6", "protocol"),
    FieldInfo("icmpv6.type", "Type", "uint", strings=ICMPV6_TYPES),
    FieldInfo("icmpv6.code", "Code", "uint", "Its meaning depends on the type"),
    FieldInfo("icmpv6.checksum", "Checksum", "uint", base="hex", digits=4),
    FieldInfo("icmpv6.reserved", "Reserved", "bytes"),
    FieldInfo("icmpv6.mtu", "MTU", "uint", "Of a Packet Too Big error"),
    FieldInfo("icmpv6.pointer", "Pointer", "uint", "Of a Parameter Problem: the octet in error"),
    FieldInfo("icmpv6.echo.identifier", "Identifier", "uint", base="hex", digits=4),
    FieldInfo("icmpv6.echo.sequence_number", "Sequence", "uint"),
)
