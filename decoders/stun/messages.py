"""One STUN message (RFC 8489; classic RFC 3489) or TURN ChannelData, with a span for every field.

Written by hand: no maintained Python library parses STUN passively (aiortc's parser is for an
endpoint and raises on what a capture holds: unknown attributes, bad padding, cut messages).
"""

from __future__ import annotations

import ipaddress
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from protoscope.decoders.api import Field, Finding

from . import attributes as at

HEADER_LEN = 20
MAX_ATTRIBUTES = 128
"""Attributes decoded of one message; the rest are left undecoded, with a finding. Real messages
carry a dozen (a TURN request with credentials about ten); a 64 KB datagram of empty ones holds
16,000, each a detail tree of its own."""
CLASSIC_TYPES = {0x0001, 0x0101, 0x0111, 0x0002, 0x0102, 0x0112}
"""RFC 3489 message types (Binding and Shared Secret)."""


@dataclass(slots=True)
class StunRecord:
    """What analyses (ICE pairs, TURN allocations) need from one message."""

    type: int
    method: int
    cls: int
    transaction_id: bytes
    classic: bool
    attributes: dict[str, object] = field(default_factory=dict)
    """username, xor_mapped, xor_peer, xor_relayed, error_code, priority, use_candidate, role,
    lifetime, channel, realm, nonce, software (only those present); the RFC 5780 ones (NAT
    behaviour discovery): change_request ({"change_ip": bool, "change_port": bool}),
    response_origin and other_address ((ip, port); RFC 3489's source_address and changed_address
    likewise), response_port (int) and padding (the PADDING attribute's length)."""
    integrity: str | None = None
    """"ok", "bad", "unchecked" (no key) or None (no MESSAGE-INTEGRITY)."""
    fingerprint: bool | None = None
    data: bytes | None = None
    """The DATA attribute of a TURN Send/Data indication."""


@dataclass(frozen=True, slots=True)
class Keys:
    """Keys for MESSAGE-INTEGRITY: ICE passwords (short-term) and TURN credentials (long-term)."""

    short_term: Sequence[bytes] = ()
    long_term: Sequence[tuple[str, str, str | None]] = ()
    """(username, password, realm or None to take the message's REALM)."""

    def candidates(self, username: str | None, realm: str | None) -> list[bytes]:
        """Short-term keys for messages without REALM (ICE checks), long-term ones with it (TURN)."""
        if realm is None:
            return list(self.short_term)
        keys: list[bytes] = []
        realm = realm or None
        for user, password, r in self.long_term:
            if username is not None and username != user:
                continue
            use_realm = r if r is not None else realm
            if use_realm is not None:
                import hashlib  # only with credentials given: it loads OpenSSL (start-up time)

                keys.append(hashlib.md5(f"{user}:{use_realm}:{password}".encode()).digest())
        return keys


def looks_like_stun(data: bytes) -> bool:
    """Strict: RFC 5389+ header (top bits 00, magic cookie, length multiple of 4 matching the
    datagram), or a classic RFC 3489 Binding/Shared Secret whose length matches exactly."""
    if len(data) < HEADER_LEN or data[0] & 0xC0:
        return False
    msg_type, length, cookie = struct.unpack_from(">HHI", data)
    if HEADER_LEN + length != len(data):
        return False
    if cookie == at.MAGIC_COOKIE:
        return True  # a length that is not a multiple of 4 is a finding, not a reason to refuse
    return length % 4 == 0 and msg_type in CLASSIC_TYPES


def _address(value: bytes, start: int, xor: bool, txid: bytes) -> tuple[str, int, list[Field]] | None:
    if len(value) < 8:
        return None
    family, port = value[1], int.from_bytes(value[2:4], "big")
    raw = value[4:]
    # The address must have its family's exact length before it is unmasked: the mask (cookie
    # and transaction id) is 16 bytes, an IPv6 address's length.
    if (family, len(raw)) not in ((1, 4), (2, 16)):
        return None
    if xor:
        port ^= at.MAGIC_COOKIE >> 16
        mask = at.MAGIC_COOKIE.to_bytes(4, "big") + txid
        size = len(raw)
        raw = (int.from_bytes(raw, "big") ^ int.from_bytes(mask[:size], "big")).to_bytes(size, "big")
    if family == 1:
        ip = f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}"  # as str(IPv4Address) gives it, without its object
        name = "stun.att.ipv4"
    else:
        ip = str(ipaddress.IPv6Address(raw))
        name = "stun.att.ipv6"
    fields = [
        Field("stun.att.family", family, (start + 1, start + 2)),
        Field("stun.att.port", port, (start + 2, start + 4)),
        Field(name, ip, (start + 4, start + len(value))),
    ]
    return ip, port, fields


def parse(
    data: bytes,
    keys: Keys = Keys(),
    credentials: tuple[str | None, str | None] = (None, None),
    build: bool = True,
) -> tuple[StunRecord | None, list[Field], list[Finding]]:
    """Parse a whole STUN message (the caller made sure HEADER_LEN + length bytes are there).

    `credentials` (USERNAME, REALM) come from the flow's earlier requests: TURN responses carry a
    long-term MESSAGE-INTEGRITY without either. Without `build`, the record and findings only: the
    detail tree (~5 Field objects an attribute, most of a message's cost) is left for a second
    call when someone looks at it."""
    findings: list[Finding] = []
    msg_type, length, cookie = struct.unpack_from(">HHI", data)
    classic = cookie != at.MAGIC_COOKIE
    txid = data[4:20] if classic else data[8:20]
    end = min(len(data), HEADER_LEN + length)
    rec = StunRecord(msg_type, at.method_of(msg_type), at.class_of(msg_type), txid, classic)
    fields: list[Field] = []
    if build:
        fields.append(
            Field(
                "stun.type",
                msg_type,
                (0, 2),
                (
                    Field("stun.type.method", rec.method, (0, 2)),
                    Field("stun.type.class", rec.cls, (0, 2)),
                ),
            )
        )
        fields.append(Field("stun.length", length, (2, 4)))
        if not classic:
            fields.append(Field("stun.cookie", data[4:8].hex(), (4, 8)))
        fields.append(Field("stun.id", txid.hex(), (4 if classic else 8, 20)))
    if length % 4:
        findings.append(
            Finding("warn", "stun.wrong_msglen", f"message length {length} is not a multiple of 4")
        )
    if len(data) < HEADER_LEN + length:
        findings.append(
            Finding(
                "error",
                "stun.truncated",
                f"message says {length} bytes follow the header, {len(data) - HEADER_LEN} do",
            )
        )
    pos = HEADER_LEN
    attrs = rec.attributes
    count = 0
    while pos + 4 <= end:
        count += 1
        if count > MAX_ATTRIBUTES:
            findings.append(
                Finding(
                    "warn",
                    "stun.attributes_limit",
                    f"more than {MAX_ATTRIBUTES} attributes (MAX_ATTRIBUTES): the last "
                    f"{end - pos} bytes are not decoded",
                    (pos, end),
                )
            )
            return rec, fields, findings
        a_type, a_len = struct.unpack_from(">HH", data, pos)
        v0 = pos + 4
        v1 = v0 + a_len
        if v1 > end:
            findings.append(
                Finding(
                    "error",
                    "stun.long_attribute",
                    f"attribute 0x{a_type:04x} runs past the message",
                    (pos, end),
                )
            )
            break
        value = data[v0:v1]
        name, fname = at.ATTRIBUTES.get(a_type, (f"Unknown 0x{a_type:04x}", "stun.value"))
        typed = _typed(a_type, fname, value, v0, txid, attrs, rec, findings)
        pad = (4 - a_len % 4) % 4 if not classic else 0
        status: Field | None = None
        if a_type in (0x0008, 0x001C):
            rec.integrity = _check_integrity(data, pos, a_type, value, keys, attrs, rec.method, credentials)
            status = Field("stun.att.hmac.status", rec.integrity, (v0, v1)) if build else None
            if rec.integrity == "bad":
                findings.append(
                    Finding(
                        "error", "stun.integrity_bad", "MESSAGE-INTEGRITY does not match the key", (v0, v1)
                    )
                )
        elif a_type == 0x8028 and len(value) == 4:
            crc = (zlib.crc32(data[:pos]) ^ at.FINGERPRINT_XOR) & 0xFFFFFFFF
            rec.fingerprint = crc == int.from_bytes(value, "big")
            if build:
                status = Field("stun.att.crc32.status", "good" if rec.fingerprint else "bad", (v0, v1))
            if not rec.fingerprint:
                findings.append(
                    Finding("error", "stun.fingerprint_bad", "FINGERPRINT does not match", (v0, v1))
                )
        if build:
            children = [
                Field("stun.att.type", a_type, (pos, pos + 2)),
                Field("stun.att.length", a_len, (pos + 2, v0)),
                *typed,
            ]
            if status is not None:
                children.append(status)
            label = f"{name}" + (f": {children[-1].value}" if len(children) > 2 else "")
            fields.append(Field("stun.attribute", label, (pos, min(end, v1 + pad)), tuple(children)))
        pos = v1 + pad
    if pos < end:
        findings.append(
            Finding("warn", "stun.trailing", f"{end - pos} bytes after the last attribute", (pos, end))
        )
    return rec, fields, findings


def _typed(
    a_type: int,
    fname: str,
    value: bytes,
    v0: int,
    txid: bytes,
    attrs: dict[str, object],
    rec: StunRecord,
    findings: list[Finding],
) -> list[Field]:
    span = (v0, v0 + len(value))
    if a_type in at.XOR_ADDRESSES or a_type in at.PLAIN_ADDRESSES:
        got = _address(value, v0, a_type in at.XOR_ADDRESSES, txid)
        if got is None:
            findings.append(
                Finding("warn", "stun.bad_address", f"address attribute 0x{a_type:04x} is malformed", span)
            )
            return [Field(fname, value.hex(), span)]
        ip, port, fields = got
        key = at.ADDRESS_KEYS.get(a_type)
        if key is not None:
            if key == "xor_peer":
                attrs.setdefault("xor_peers", [])
                attrs["xor_peers"].append((ip, port))  # type: ignore[attr-defined]
            attrs[key] = (ip, port)
        return [*fields, Field(fname, f"{ip}:{port}" if ":" not in ip else f"[{ip}]:{port}", span)]
    if a_type in at.TEXT:
        text = value.decode("utf-8", "replace")
        attrs[
            {0x0006: "username", 0x0014: "realm", 0x0015: "nonce", 0x8022: "software"}.get(a_type, fname)
        ] = text
        return [Field(fname, text, span)]
    if a_type in at.U32 and len(value) == 4:
        number = int.from_bytes(value, "big")
        attrs[at.U32[a_type]] = number
        return [Field(fname, number, span)]
    if a_type == 0x0009 and len(value) >= 4:
        code = (value[2] & 0x07) * 100 + value[3]
        reason = value[4:].decode("utf-8", "replace")
        attrs["error_code"] = code
        attrs["error_reason"] = reason
        return [
            Field("stun.att.error.class", value[2] & 0x07, (v0 + 2, v0 + 3)),
            Field("stun.att.error", value[3], (v0 + 3, v0 + 4)),
            Field("stun.att.error.reason", reason, (v0 + 4, span[1])),
            Field("stun.att.error_code", f"{code} {reason or at.ERROR_REASONS.get(code, '')}".strip(), span),
        ]
    if a_type in (0x8029, 0x802A) and len(value) == 8:
        attrs["role"] = "controlled" if a_type == 0x8029 else "controlling"
        attrs["tie_breaker"] = value.hex()
        return [Field(fname, value.hex(), span)]
    if a_type == 0x0025:
        attrs["use_candidate"] = True
        return [Field(fname, True, span)]
    if a_type == 0x000C and len(value) >= 2:
        attrs["channel"] = int.from_bytes(value[:2], "big")
        return [Field(fname, attrs["channel"], (v0, v0 + 2))]
    if a_type == 0x0019 and value:
        attrs["transport"] = value[0]
        return [Field(fname, value[0], (v0, v0 + 1))]
    if a_type == 0x0003 and len(value) == 4:
        flags = value[3]
        change_ip, change_port = bool(flags & at.CHANGE_IP), bool(flags & at.CHANGE_PORT)
        attrs["change_request"] = {"change_ip": change_ip, "change_port": change_port}
        return [
            Field("stun.att.change-ip", change_ip, span),
            Field("stun.att.change-port", change_port, span),
        ]
    if a_type == 0x0027 and len(value) == 4:
        # RFC 5780 section 7.5: a port, then two bytes of padding.
        attrs["response_port"] = int.from_bytes(value[:2], "big")
        return [Field(fname, attrs["response_port"], (v0, v0 + 2))]
    if a_type == 0x0026:
        # RFC 5780 section 7.6: its content is meaningless; its length is what matters (a probe
        # of fragmentation). tshark gives the length as the value, so do we.
        attrs["padding"] = len(value)
        return [Field(fname, len(value), span)]
    if a_type == 0x000A:
        unknown = [int.from_bytes(value[i : i + 2], "big") for i in range(0, len(value) - 1, 2)]
        return [Field(fname, ", ".join(f"0x{u:04x}" for u in unknown), span)]
    if a_type == 0x0013:
        rec.data = value
        return [Field(fname, f"{len(value)} bytes", span)]
    if a_type == 0x8028 and len(value) == 4:
        return [Field(fname, int.from_bytes(value, "big"), span)]
    return [Field(fname, value.hex(), span)]


def _check_integrity(
    data: bytes,
    pos: int,
    a_type: int,
    value: bytes,
    keys: Keys,
    attrs: dict[str, object],
    method: int,
    credentials: tuple[str | None, str | None],
) -> str:
    """RFC 8489 14.5/14.6: HMAC over the message up to this attribute, with the header's length
    counting up to the end of it. ICE checks (Binding) use short-term keys; TURN methods use the
    long-term key of USERNAME and REALM (from this message or the flow's requests)."""
    username = attrs.get("username") if isinstance(attrs.get("username"), str) else credentials[0]
    realm = attrs.get("realm") if isinstance(attrs.get("realm"), str) else credentials[1]
    if method == 0x001 and "realm" not in attrs:
        candidates = list(keys.short_term)
    else:
        candidates = keys.candidates(
            username if isinstance(username, str) else None, realm if isinstance(realm, str) else ""
        )
    if not candidates:
        return "unchecked"
    import hashlib  # only with keys to check: it loads OpenSSL (start-up time)
    import hmac

    covered = bytearray(data[:pos])
    struct.pack_into(">H", covered, 2, pos + 4 + len(value) - HEADER_LEN)
    digest = hashlib.sha1 if a_type == 0x0008 else hashlib.sha256
    for key in candidates:
        mac = hmac.new(key, bytes(covered), digest).digest()
        if hmac.compare_digest(mac[: len(value)], value):
            return "ok"
    return "bad"


def channel_data(data: bytes, pos: int = 0) -> tuple[int, int] | None:
    """(channel, length) of a TURN ChannelData header (channel 0x4000-0x4FFF) at `pos`, else None.
    At an offset rather than on a slice: a stream holds many messages, and a slice of the rest of
    it per message made 4 MB of them quadratic."""
    if len(data) - pos < 4 or not 0x40 <= data[pos] <= 0x4F:
        return None
    channel, length = struct.unpack_from(">HH", data, pos)
    return channel, length
