"""STUN, TURN and ICE on UDP and TCP, and RFC 7983 demultiplexing of everything else on the flow.

A 5-tuple that carried STUN also carries DTLS, TURN ChannelData, RTP and RTCP: once pinned here,
each datagram is told apart by its first byte (RFC 7983 section 7) and handed on as an inner
payload; ChannelData and TURN Data/Send indications hand on what they relay.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal

from protoscope.decoders.api import DecodeResult, Field, Finding, FlowContext, InnerPayload, LazyFields, Pdu

from . import attributes as at
from .fields import FIELDS
from .messages import HEADER_LEN, Keys, StunRecord, channel_data, looks_like_stun, parse

STUN_PORTS = (3478, 3479, 5349, 19302, 19303, 19305, 19307, 3480, 3481)
SHORT_HEADERS = {
    "stun": (HEADER_LEN, "stun.truncated", "STUN header"),
    "turn-channel": (4, "stun.channel_short", "ChannelData header"),  # RFC 8656 section 12.4
}
"""RFC 7983 kinds this decoder parses itself: the header's length, and the finding when a
datagram is shorter."""
MAX_TRANSACTIONS = 100_000
"""Transactions remembered per flow for request/response pairing (oldest forgotten first)."""
MAX_LEARNED_PASSWORDS = 64
"""ICE passwords learned from SDP that a MESSAGE-INTEGRITY is checked with: each is an HMAC per
message, and the capture decides how many there are (a call has two). Past it, learned passwords
are not tried (integrity shows as unchecked, never as bad for want of the right key; `--ice-pwd`
keys still are), with a finding."""


def demux_protocol(first: int, second: int) -> str | None:
    """RFC 7983: what a datagram on a STUN-carrying 5-tuple is, by its first byte."""
    if first <= 3:
        return "stun"
    if 16 <= first <= 19:
        return "zrtp"
    if 20 <= first <= 63:
        return "dtls"
    if 64 <= first <= 79:
        return "turn-channel"
    if 128 <= first <= 191:
        return "rtcp" if 192 <= second <= 223 else "rtp"
    return None


def _summary(rec: StunRecord) -> str:
    text = at.type_name(rec.type)
    a = rec.attributes
    if "username" in a:
        text += f" user: {a['username']}"
    mapped = a.get("xor_mapped")
    if isinstance(mapped, tuple):
        text += f" XOR-MAPPED-ADDRESS: {mapped[0]}:{mapped[1]}"
    if "error_code" in a:
        text += f" error-code: {a['error_code']}"
    return ("Classic " if rec.classic else "") + text


ICE_CREDENTIALS = "ice.credentials"
"""`ctx.capture` key: ufrag -> ICE password, from every SDP (and SDP fragment) seen. A check is
checked with the password of the ufrag it names alone: with one side's SDP only, the other
side's checks are unchecked, not "bad"."""
BINDING_METHOD = 0x001
USERNAME = 0x0006
MAX_CHECK_UFRAGS = 1024
"""Checks of one flow whose ufrag is remembered for their responses (which carry no USERNAME);
the oldest is forgotten first."""


def _signing_ufrag(data: bytes, ctx: FlowContext) -> str | None:
    """The ufrag whose password signs this Binding message (RFC 8445 section 7.2.2): a check's
    USERNAME is "receiver:sender" and is signed with the receiver's password; a response with the
    same password as its request. None for other methods, or a response to a check not seen."""
    msg_type = int.from_bytes(data[0:2], "big")
    if msg_type & 0x3EEF != BINDING_METHOD:
        return None
    txid = bytes(data[8:20])
    remembered = ctx.shared.setdefault("stun.check_ufrags", {})
    if not isinstance(remembered, dict):
        return None
    if msg_type & 0x0100:  # a success or error response
        found = remembered.get(txid)
        return found if isinstance(found, str) else None
    pos, end = HEADER_LEN, min(len(data), HEADER_LEN + int.from_bytes(data[2:4], "big"))
    while pos + 4 <= end:
        a_type, a_len = (
            int.from_bytes(data[pos : pos + 2], "big"),
            int.from_bytes(data[pos + 2 : pos + 4], "big"),
        )
        if a_type == USERNAME:
            ufrag = bytes(data[pos + 4 : pos + 4 + a_len]).decode("utf-8", "replace").split(":", 1)[0]
            if len(remembered) >= MAX_CHECK_UFRAGS:
                del remembered[next(iter(remembered))]
            remembered[txid] = ufrag
            return ufrag
        pos += 4 + a_len + (-a_len % 4)
    return None


class StunDecoder:
    name: ClassVar[str] = "stun"
    fields = FIELDS
    transport: ClassVar[Literal["both"]] = "both"
    ports: ClassVar[frozenset[tuple[str, int]]] = frozenset(
        (t, p) for p in STUN_PORTS for t in ("udp", "tcp")
    )

    def __init__(self) -> None:
        self.keys = Keys()

    def configure(self, options: Mapping[str, object]) -> None:
        pwds = options.get("stun.ice_pwd") or []
        auth = options.get("stun.turn_auth") or []
        long_term: list[tuple[str, str, str | None]] = []
        for item in auth:  # type: ignore[attr-defined]
            user, _, rest = str(item).partition(":")
            password, _, realm = rest.partition("@")
            long_term.append((user, password, realm or None))
        self.keys = Keys(tuple(str(p).encode() for p in pwds), tuple(long_term))  # type: ignore[attr-defined]

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        if ctx.transport == "tcp":
            return _tcp_stun_at(data, 0) or _framed(data)
        return looks_like_stun(data)

    def new_state(self) -> None:
        return None

    def decode(self, data: bytes, state: object, ctx: FlowContext) -> DecodeResult:
        if ctx.transport == "tcp":
            return self._stream(data, ctx)
        return self._datagram(data, ctx)

    def _datagram(self, data: bytes, ctx: FlowContext) -> DecodeResult:
        if not data:
            return DecodeResult()
        kind = demux_protocol(data[0], data[1] if len(data) > 1 else 0)
        # A datagram cut short (by a snap length, or on the wire) before its header's end.
        short = SHORT_HEADERS.get(kind or "")
        if short is not None and len(data) < short[0]:
            need, code, what = short
            cut = Finding("warn", code, f"{what} cut short: {len(data)} of {need} bytes", (0, len(data)))
            return DecodeResult(consumed=len(data), findings=(cut,))
        if kind == "stun":
            return DecodeResult((self._message(data, ctx),), len(data))
        if kind == "turn-channel":
            return DecodeResult((self._channel(data, 0, ctx, padded=False),), len(data))
        if kind in ("dtls", "rtp", "rtcp", "zrtp"):
            return DecodeResult(consumed=len(data), inner=(InnerPayload(data, 0, kind),))
        return DecodeResult(
            consumed=len(data),
            findings=(
                Finding("note", "stun.demux_unknown", f"first byte {data[0]} matches no RFC 7983 range"),
            ),
        )

    def _stream(self, data: bytes, ctx: FlowContext) -> DecodeResult:
        if ctx.shared.get("stun.rfc4571") or (not ctx.shared.get("stun.plain") and _framed(data)):
            ctx.shared["stun.rfc4571"] = True
            return self._framed_stream(data, ctx)
        ctx.shared["stun.plain"] = True
        pdus: list[Pdu] = []
        skipped: list[Finding] = []
        pos = 0
        while len(data) - pos >= 4:
            cd = channel_data(data, pos)
            if cd is not None:
                total = _channel_size(cd[1])
                if len(data) - pos < total:
                    return DecodeResult(tuple(pdus), pos, total, tuple(skipped))
                pdus.append(self._channel(data[pos : pos + total], pos, ctx, padded=True))
                pos += total
                continue
            # Over TCP a STUN message has the magic cookie (RFC 3489's classic STUN was UDP only):
            # bytes read from the middle of a message after a hole (zeros, say) are not a message
            # every 20 bytes.
            cookie = data[pos + 4 : pos + 8]
            if data[pos] & 0xC0 or cookie != MAGIC[: len(cookie)]:
                # The middle of a message (after a hole in the stream, say): the messages go on
                # from the next place where two of them follow each other.
                start = _resync(data, pos + 1)
                if start is None:
                    unframed = Finding(
                        "warn", "stun.tcp_unframed", "bytes that are neither STUN nor ChannelData"
                    )
                    # The last bytes may start a header whose end has not come yet: kept.
                    consumed = min(pos + RESYNC_WINDOW, max(pos + 1, len(data) - HEADER_LEN + 1))
                    return DecodeResult(tuple(pdus), consumed, findings=(*skipped, unframed))
                what = f"{start - pos} bytes that are neither STUN nor ChannelData skipped"
                skipped.append(Finding("note", "stun.resync", what, (pos, start)))
                pos = start
                continue
            if len(data) - pos < HEADER_LEN:
                return DecodeResult(tuple(pdus), pos, HEADER_LEN, tuple(skipped))
            total = HEADER_LEN + int.from_bytes(data[pos + 2 : pos + 4], "big")
            if len(data) - pos < total:
                return DecodeResult(tuple(pdus), pos, total, tuple(skipped))
            pdu = self._message(data[pos : pos + total], ctx)
            pdus.append(_shift(pdu, pos))
            pos += total
        return DecodeResult(tuple(pdus), pos, 4 if pos < len(data) else 0, tuple(skipped))

    def _framed_stream(self, data: bytes, ctx: FlowContext) -> DecodeResult:
        """RFC 4571 (ICE-TCP, RFC 6544): each packet is a 2-byte length then STUN, DTLS or RTP."""
        pdus: list[Pdu] = []
        inner: list[InnerPayload] = []
        pos = 0
        while len(data) - pos >= 2:
            length = int.from_bytes(data[pos : pos + 2], "big")
            if len(data) - pos - 2 < length:
                return DecodeResult(tuple(pdus), pos, 2 + length, inner=tuple(inner))
            body = data[pos + 2 : pos + 2 + length]
            if (
                body
                and demux_protocol(body[0], body[1] if len(body) > 1 else 0) == "stun"
                and len(body) >= HEADER_LEN
            ):
                pdu = _shift(self._message(body, ctx), pos + 2)
                frame_len = Field("stun.tcp_frame_length", length, (pos, pos + 2))
                pdus.append(
                    Pdu(
                        pdu.protocol,
                        _prepend(frame_len, pdu.fields),
                        (pos, pos + 2 + length),
                        pdu.summary,
                        pdu.findings,
                        pdu.inner,
                        pdu.record,
                    )
                )
            elif body:
                kind = demux_protocol(body[0], body[1] if len(body) > 1 else 0)
                inner.append(
                    InnerPayload(body, pos + 2, kind if kind not in (None, "turn-channel") else None)
                )
            pos += 2 + length
        return DecodeResult(tuple(pdus), pos, 2 if pos < len(data) else 0, inner=tuple(inner))

    def _message(self, data: bytes, ctx: FlowContext) -> Pdu:
        keys = self.keys
        limit: list[Finding] = []
        learned = ctx.capture.get("ice.passwords")
        by_ufrag = ctx.capture.get(ICE_CREDENTIALS)
        ufrag = _signing_ufrag(data, ctx) if isinstance(by_ufrag, dict) and by_ufrag else None
        if ufrag is not None and isinstance(by_ufrag, dict):
            # The password of the agent whose ufrag the check names, and no other: a check of an
            # agent whose SDP the capture lacks is unchecked, not "bad" against the other's.
            pwd = by_ufrag.get(ufrag)
            if isinstance(pwd, str):
                keys = Keys((*keys.short_term, pwd.encode()), keys.long_term)
        elif isinstance(learned, set) and learned:  # ICE passwords from SDP seen earlier
            if len(learned) <= MAX_LEARNED_PASSWORDS:
                # Sorted once per size of the set (it only grows), not once per message.
                cached = ctx.capture.get("stun.learned_keys")
                if not (isinstance(cached, tuple) and cached[0] == len(learned)):
                    cached = (len(learned), tuple(p.encode() for p in sorted(learned)))
                    ctx.capture["stun.learned_keys"] = cached
                keys = Keys(tuple(keys.short_term) + cached[1], keys.long_term)
            elif not ctx.capture.get("stun.passwords_limit"):
                ctx.capture["stun.passwords_limit"] = True
                what = (
                    f"SDP gave more than {MAX_LEARNED_PASSWORDS} ICE passwords (MAX_LEARNED_PASSWORDS): "
                    "MESSAGE-INTEGRITY is no longer checked with them"
                )
                limit.append(Finding("warn", "stun.passwords_limit", what))
        creds = ctx.shared.get("stun.credentials")
        credentials = creds if isinstance(creds, tuple) else (None, None)
        rec, _, findings = parse(data, keys, credentials, build=False)
        findings += limit
        if rec is not None and rec.cls == 0 and "realm" in rec.attributes:  # for the responses
            ctx.shared["stun.credentials"] = (rec.attributes.get("username"), rec.attributes.get("realm"))
        assert rec is not None
        pairing = self._pair(rec, ctx, findings)
        # The detail tree is built when first read, by parsing again (most reports never read it);
        # from bytes of our own, since `data` may be a view of a buffer the session reuses.
        raw = bytes(data)
        fields = LazyFields(lambda: [*parse(raw, keys, credentials)[1], *pairing])
        inner: tuple[InnerPayload, ...] = ()
        if rec.data is not None and rec.method in (0x006, 0x007):
            # TURN Send/Data indication: what the peer sent or gets, decoded too.
            start = data.find(rec.data, HEADER_LEN)
            inner = (InnerPayload(rec.data, max(start, 0), "stun"),)
        return Pdu("stun", fields, (0, len(data)), _summary(rec), tuple(findings), inner, record=rec)

    def _channel(self, data: bytes, base: int, ctx: FlowContext, padded: bool) -> Pdu:
        channel, length = struct.unpack_from(">HH", data)
        findings: list[Finding] = []
        body = data[4 : 4 + length]
        if len(body) < length:
            findings.append(
                Finding("warn", "stun.channel_short", f"ChannelData says {length} bytes, {len(body)} here")
            )
        fields = (
            Field("stun.channel", channel, (base, base + 2)),
            Field("stun.length", length, (base + 2, base + 4)),
            Field("stun.value", f"{len(body)} bytes", (base + 4, base + 4 + len(body))),
        )
        inner = (InnerPayload(body, base + 4, "stun"),) if body else ()
        return Pdu(
            "stun",
            fields,
            (base, base + len(data)),
            f"ChannelData TURN Message 0x{channel:04x}",
            tuple(findings),
            inner,
            record=("channel", channel, length),
        )

    def _pair(self, rec: StunRecord, ctx: FlowContext, findings: list[Finding]) -> list[Field]:
        """Request/response pairing by transaction id, with round-trip time and retransmissions."""
        table = ctx.shared.setdefault("stun.transactions", {})
        assert isinstance(table, dict)
        key = rec.transaction_id
        if rec.cls == 0:
            seen = table.get(key)
            if seen is not None and seen[2] is None:
                findings.append(
                    Finding(
                        "note", "stun.retransmission", f"retransmission of the request in frame {seen[0]}"
                    )
                )
                return [Field("stun.reqduplicate", seen[0], (8, 20))]
            if len(table) >= MAX_TRANSACTIONS:
                table.pop(next(iter(table)))
            table[key] = (ctx.frame, ctx.time, None)
        elif rec.cls in (2, 3):
            seen = table.get(key)
            if seen is not None:
                table[key] = (seen[0], seen[1], ctx.frame)
                return [
                    Field("stun.response-to", seen[0], (8, 20)),
                    Field("stun.time", round((ctx.time - seen[1]) * 1000, 3), (8, 20)),
                ]
        return []


MAGIC = at.MAGIC_COOKIE.to_bytes(4, "big")
RESYNC_WINDOW = 64 * 1024
"""Bytes searched for the next message boundary after bytes that are not one, per call: a stream
that never shows one is skipped a window at a time."""
_START = re.compile(rb"[\x40-\x4f]|[\x00-\x3f](?=...\x21\x12\xa4\x42)", re.DOTALL)
"""Where a message over TCP may start: a ChannelData channel number (0x4000-0x4FFF), or a STUN
header (first two bits clear) with the magic cookie."""


def _channel_size(length: int) -> int:
    """A ChannelData message's size over TCP: header and data, padded to 4 bytes (RFC 8656 12.5)."""
    return 4 + length + (-length) % 4


def _message_end(data: bytes, pos: int) -> int | None:
    """The end of the ChannelData or STUN message whose header is at `pos` (past the data when it
    runs on), or None when no message header is there."""
    cd = channel_data(data, pos)
    if cd is not None:
        return pos + _channel_size(cd[1])
    if _tcp_stun_at(data, pos):
        return pos + HEADER_LEN + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return None


def _resync(data: bytes, pos: int) -> int | None:
    """The first offset from `pos` (within RESYNC_WINDOW) where a message starts that either ends
    the data exactly, runs past it, or is followed by another message's header."""
    for m in _START.finditer(data, pos, min(len(data), pos + RESYNC_WINDOW)):
        at_ = m.start()
        end = _message_end(data, at_)
        if end is None:
            continue
        if end >= len(data) or (len(data) - end >= 4 and _message_end(data, end) is not None):
            return at_
    return None


def _tcp_stun_at(data: bytes, pos: int) -> bool:
    if len(data) - pos < HEADER_LEN or data[pos] & 0xC0:
        return False
    return int.from_bytes(data[pos + 4 : pos + 8], "big") == at.MAGIC_COOKIE


def _framed(data: bytes) -> bool:
    """An RFC 4571 frame holding a whole STUN message with the magic cookie."""
    if not _tcp_stun_at(data, 2):
        return False
    return int.from_bytes(data[:2], "big") == HEADER_LEN + int.from_bytes(data[4:6], "big")


def _prepend(head: Field, rest: Sequence[Field]) -> LazyFields:
    return LazyFields(lambda: (head, *rest))


def _move(f: Field, by: int) -> Field:
    return Field(f.name, f.value, (f.span[0] + by, f.span[1] + by), tuple(_move(c, by) for c in f.children))


def _shift(pdu: Pdu, by: int) -> Pdu:
    """`pdu` of a message found `by` bytes into the stream's data; its tree is moved when read
    (reports that never read it do not pay for a copy of every field of every message)."""
    if not by:
        return pdu
    fields = pdu.fields
    findings = tuple(
        Finding(x.severity, x.code, x.message, None if x.span is None else (x.span[0] + by, x.span[1] + by))
        for x in pdu.findings
    )
    inner = tuple(InnerPayload(i.data, i.offset + by, i.protocol, i.transport) for i in pdu.inner)
    return Pdu(
        pdu.protocol,
        LazyFields(lambda: [_move(f, by) for f in fields]),
        (pdu.span[0] + by, pdu.span[1] + by),
        pdu.summary,
        findings,
        inner,
        pdu.record,
    )
