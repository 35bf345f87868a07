"""The fields the STUN decoder emits (STUN, TURN and ICE), named as Wireshark's packet-stun.c
registers them. Every attribute of the attribute table has its field; the rest are the header's
and the parts of address and error attributes."""

from __future__ import annotations

from protoscope.decoders.api import FieldInfo, FieldType

from .attributes import ATTRIBUTES, CLASSES, METHODS

_ATTRIBUTE_NAMES = {code: name for code, (name, _) in ATTRIBUTES.items()}
_ADDRESS_FAMILIES = {1: "IPv4", 2: "IPv6"}
_ADDRESS_CODES = {0x0001, 0x0002, 0x0004, 0x0005, 0x000B, 0x0011, 0x0012, 0x0016, 0x0020, 0x8020}
_ADDRESS_CODES |= {0x8023, 0x802B, 0x802C, 0x8056}
_NUMBER_ABBREVS = {
    "stun.att.lifetime",
    "stun.att.bandwidth",
    "stun.att.priority",
    "stun.att.cache-timeout",
    "stun.att.ttc",
    "stun.att.channelnum",
    "stun.att.crc32",
    "stun.att.port",
    "stun.att.response_port",
    "stun.att.padding",
    "stun.att.transp",
    "stun.att.error",
    "stun.att.family",
}
_BYTES_ABBREVS = {
    "stun.att.hmac",
    "stun.att.hmac_sha256",
    "stun.att.tie-breaker",
    "stun.att.token",
    "stun.att.magic_cookie",
    "stun.att.userhash",
    "stun.att.google.network_id",
    "stun.att.google.misc_info",
    "stun.att.ms.sequence_number",
    "stun.att.ms.service_quality",
    "stun.att.ms.version",
    "stun.att.ms.version.ice",
}
"""Attributes whose value the decoder gives as hex text of their bytes (Wireshark's FT_BYTES)."""
_BOOL_ABBREVS = {"stun.att.use_candidate", "stun.att.dont_fragment", "stun.att.even-port.reserve-next"}


def _attribute_field(code: int, label: str, abbrev: str) -> FieldInfo:
    kind: FieldType = "string"
    if abbrev in _NUMBER_ABBREVS:
        kind = "uint"
    elif abbrev in _BOOL_ABBREVS:
        kind = "bool"
    elif abbrev in _BYTES_ABBREVS:
        kind = "bytes"
    what = f"{label} attribute (0x{code:04x})"
    if code in _ADDRESS_CODES:
        what += ": address:port"
    return FieldInfo(abbrev, label.title().replace("-", " "), kind, what)


_HEADER: tuple[FieldInfo, ...] = (
    FieldInfo("stun", "Session Traversal Utilities for NAT", "protocol"),
    FieldInfo("stun.type", "Message Type", "uint", "Method and class", base="hex", digits=4),
    FieldInfo(
        "stun.type.class", "Message Class", "uint", strings=dict(enumerate(CLASSES)), base="hex", digits=4
    ),
    FieldInfo("stun.type.method", "Message Method", "uint", strings=METHODS, base="hex", digits=4),
    FieldInfo("stun.length", "Message Length", "uint"),
    FieldInfo("stun.cookie", "Message Cookie", "bytes", "0x2112a442 (RFC 5389 and later)"),
    FieldInfo("stun.id", "Message Transaction ID", "bytes", "96 bits, hex"),
    FieldInfo("stun.attribute", "Attribute", "string", "One attribute: its name and value"),
    FieldInfo("stun.att.type", "Attribute Type", "uint", strings=_ATTRIBUTE_NAMES, base="hex", digits=4),
    FieldInfo("stun.att.length", "Attribute Length", "uint"),
    FieldInfo("stun.value", "Value", "string", "An attribute's value the decoder does not interpret"),
    FieldInfo("stun.att.ipv4", "IP", "ipv4", "Address of an address attribute"),
    FieldInfo("stun.att.ipv6", "IP", "ipv6", "Address of an address attribute"),
    FieldInfo("stun.att.port", "Port", "uint", "Port of an address attribute"),
    FieldInfo("stun.att.change-ip", "Change IP", "bool"),
    FieldInfo("stun.att.change-port", "Change Port", "bool"),
    FieldInfo("stun.att.error.class", "Error Class", "uint"),
    FieldInfo("stun.att.error.reason", "Error Reason Phrase", "string"),
    FieldInfo("stun.att.error_code", "Error Code", "string", "class*100+number and reason"),
    FieldInfo("stun.att.crc32.status", "CRC-32 Status", "string", "good or bad"),
    FieldInfo("stun.att.hmac.status", "HMAC Status", "string", "ok, bad, or why it was not checked"),
    FieldInfo("stun.channel", "Channel Number", "uint", "TURN ChannelData channel", base="hex", digits=4),
    FieldInfo("stun.tcp_frame_length", "TCP Frame Length", "uint", "RFC 4571 framing over TCP"),
    FieldInfo("stun.response-to", "Response To", "uint", "Frame of the request this answers"),
    FieldInfo("stun.reqduplicate", "Duplicated original message in", "uint", "Frame of the first copy"),
    FieldInfo("stun.time", "Time", "time", "Seconds between the request and this response"),
)

FIELDS: tuple[FieldInfo, ...] = _HEADER + tuple(
    _attribute_field(code, label, abbrev)
    for abbrev, (code, label) in {
        abbrev: (code, label) for code, (label, abbrev) in ATTRIBUTES.items()
    }.items()
    if abbrev not in {f.abbrev for f in _HEADER}
)
