"""HTTP/1.x (with WebSocket and h2c upgrades) and SIP: text messages whose bodies may carry SDP.

WebSocket (RFC 6455) frames are unmasked and text messages reassembled; SDP found in a body or a
message, plain or JSON-wrapped, and trickled ICE candidates (JSON, or RFC 8840 fragments), are
handed to the SDP decoder. After `Upgrade: h2c` the bytes go to the HTTP/2 decoder.
"""

from __future__ import annotations

import base64
import binascii
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from protoscope.decoders.api import DecodeResult, Field, Finding, FlowContext, InnerPayload, Pdu
from protoscope.decoders.grpc.messages import Deframer
from protoscope.decoders.http2 import Http2Decoder
from protoscope.decoders.http2.decoder import Stream
from protoscope.decoders.http2.frames import PREFACE
from protoscope.decoders.http2.header_block import Header
from protoscope.decoders.http2.records import FrameRecord
from protoscope.decoders.sdp import find_sdp, find_trickle

from . import message as msg
from .fields import FIELDS

MAX_WS_MESSAGE = 16 * 1024 * 1024
"""Largest WebSocket frame, and largest text message reassembled from frames (SDP and signaling
JSON are a few KB); a larger message is dropped (`websocket.message_limit`)."""
WS_OPCODES = {0: "Continuation", 1: "Text", 2: "Binary", 8: "Connection Close", 9: "Ping", 10: "Pong"}


@dataclass(slots=True)
class Direction:
    mode: str = "text"
    """"text" (HTTP/SIP messages), "chunks" (the rest of a chunked body too long to keep, followed
    without keeping it), "ws" (WebSocket frames) or "h2" (after an h2c upgrade)."""
    reader: msg.Reader = field(default_factory=msg.Reader)
    chunks: msg.Chunks | None = None
    """In "chunks" mode: where the body's reading stands, relative to the data's start."""
    ws_parts: bytearray = field(default_factory=bytearray)
    ws_opcode: int = 0
    """Opcode of the message being reassembled: 1 (text) keeps its parts; 0 none or not kept."""
    h2_state: object = None


def _inner_sdp(body: bytes, offset: int) -> tuple[InnerPayload, ...]:
    """What of a body the "sdp" decoder reads: an SDP (plain or in JSON), and trickled ICE
    candidates (JSON `candidate` members, or a WHIP/WHEP PATCH's RFC 8840 SDP fragment)."""
    if not body:
        return ()
    sdp = find_sdp(body)
    inner: tuple[InnerPayload, ...] = (InnerPayload(sdp, offset, "sdp"),) if sdp is not None else ()
    if sdp is not body and find_trickle(body) is not None:
        inner += (InnerPayload(body, offset, "sdp"),)
    return inner


class _TextDecoder:
    name: ClassVar[str] = "http"
    fields = FIELDS

    def __init__(self) -> None:
        self._h2 = Http2Decoder()

    def configure(self, options: object) -> None:
        self._h2.configure(options)  # type: ignore[arg-type]

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        return msg.starts_message(data)

    def new_state(self) -> Direction:
        return Direction()

    def decode(self, data: bytes, state: object, ctx: FlowContext) -> DecodeResult:
        assert isinstance(state, Direction)
        datagram = ctx.transport == "udp"
        pdus: list[Pdu] = []
        findings: list[Finding] = []
        pos = 0
        while pos < len(data):
            if state.mode == "h2":
                if state.h2_state is None:
                    state.h2_state = self._h2.new_state()
                result = self._h2.decode(data[pos:], state.h2_state, ctx)
                shifted = [_shift(p, pos) for p in result.pdus]
                return DecodeResult(
                    (*pdus, *shifted), pos + result.consumed, result.need, (*findings, *result.findings)
                )
            if state.mode == "ws":
                frame, used, wanted, skip = self._websocket(data, pos, state)
                if wanted:
                    return DecodeResult(tuple(pdus), pos, wanted, tuple(findings))
                if frame is not None:
                    pdus.append(frame)
                pos += used
                if skip:
                    return DecodeResult(tuple(pdus), pos, 0, tuple(findings), skip=skip)
                continue
            if state.mode == "chunks":
                used, skip = self._chunks(data, pos, state, findings)
                pos += used
                if skip:
                    return DecodeResult(tuple(pdus), pos, 0, tuple(findings), skip=skip)
                if state.mode == "chunks":
                    return DecodeResult(tuple(pdus), pos, 0, tuple(findings))
                continue
            if ctx.transport == "tcp" and data.startswith(PREFACE, pos) and ctx.shared.get("h2c"):
                state.mode = "h2"
                continue
            if not datagram and msg.only_line_ends(data, pos):
                # Empty lines between messages (SIP keep-alives): taken, not kept for the next one.
                return DecodeResult(tuple(pdus), len(data), 0, tuple(findings))
            m, need, problems = state.reader.read(data, pos, at_end=datagram)
            findings += problems
            if m is None:
                if need and not datagram:
                    return DecodeResult(tuple(pdus), pos, need, tuple(findings))
                return DecodeResult(tuple(pdus), len(data), 0, tuple(findings))
            fields = msg.fields(m, pos)
            summary = m.start_line
            ctype = (m.header("content-type") or "").lower()
            if m.protocol == "http" and ctype.startswith("application/grpc-web"):
                record, extra = self._grpc_web(m, ctype, ctx)
                pdus.append(Pdu(m.protocol, tuple(fields), (pos, pos + m.end), summary, record=record))
                pdus += extra
            else:
                inner = _inner_sdp(m.body, pos + m.body_offset)
                pdus.append(Pdu(m.protocol, tuple(fields), (pos, pos + m.end), summary, (), inner, record=m))
            upgrade = (m.header("upgrade") or "").lower()
            if m.is_request and m.start_line.startswith("CONNECT "):
                ctx.shared["connect"] = True
                state.mode = "h2"  # a proxy tunnel: gRPC clients speak h2c through it
            elif not m.is_request and ctx.shared.get("connect") and 200 <= (m.status or 0) < 300:
                state.mode = "h2"
            elif upgrade == "websocket" and (m.is_request or m.status == 101):
                state.mode = "ws"
            elif upgrade == "h2c":
                ctx.shared["h2c"] = True
                if m.status == 101:
                    state.mode = "h2"
            pos += m.end
            if m.streamed and not datagram:
                state.mode = "chunks"
                state.chunks = msg.Chunks(0, None)
                continue
            if m.skipped:
                return DecodeResult(tuple(pdus), pos, 0, tuple(findings), skip=m.skipped)
            if datagram:
                break
        return DecodeResult(tuple(pdus), pos, 0, tuple(findings))

    def _chunks(self, data: bytes, pos: int, state: Direction, findings: list[Finding]) -> tuple[int, int]:
        """Follows a chunked body too long to keep: (bytes used, bytes to skip). Back to "text"
        mode at its end."""
        chunks = state.chunks
        assert chunks is not None
        phase = chunks.advance(data, pos)
        used = chunks.at
        chunks.at = 0
        if phase == msg.DATA:  # the chunk goes on past the data: the session drops the rest unread
            skip, chunks.left, chunks.phase = chunks.left, 0, msg.DATA_END
            return used, skip
        if phase == msg.DONE:
            if chunks.error:
                findings.append(Finding("warn", "http.chunk_bad", f"chunked body: {chunks.error}"))
            state.mode, state.chunks = "text", None
        return used, 0

    def _grpc_web(self, m: msg.Message, ctype: str, ctx: FlowContext) -> tuple[FrameRecord, list[Pdu]]:
        """gRPC-Web over HTTP/1.1 (binary or base64 text): each request/response pair is a call,
        numbered like HTTP/2 streams so that the calls analysis sees them the same way."""
        pending = ctx.shared.setdefault("grpc-web.pending", deque())
        assert isinstance(pending, deque)
        if m.is_request:
            sid = ctx.shared.get("grpc-web.next", 1)
            assert isinstance(sid, int)
            ctx.shared["grpc-web.next"] = sid + 2
            target = m.start_line.split(" ")[1] if " " in m.start_line else ""
            pending.append((sid, target))
            headers = [Header(":path", target, (0, 0), "literal")]
        else:
            sid, target = pending.popleft() if pending else (0, "")
            headers = [Header(":status", str(m.status), (0, 0), "literal")]
        headers += [Header(k.lower(), v, (0, 0), "literal") for k, v in m.headers]
        record = FrameRecord(1, 0x05, sid, len(m.body), tuple(headers), sid, True, http1=True)
        body = m.body
        if "text" in ctype:
            try:
                body = base64.b64decode(b"".join(body.split()))
            except (binascii.Error, ValueError):
                return record, []
        stream = Stream(sid, path=target or None, content_type=ctype)
        messages, problems = Deframer().feed(body, 0, ctx.frame)
        side = 0 if m.is_request else 1
        out = [self._h2.message_pdu(message, stream, side) for message in messages]
        if problems:
            out.append(Pdu("grpc", (), (0, 0), "gRPC-Web framing error", tuple(problems)))
        return record, out

    def _websocket(self, data: bytes, pos: int, state: Direction) -> tuple[Pdu | None, int, int, int]:
        """One frame at `pos`: (PDU, bytes used, bytes needed in all when more must come, bytes of
        payload to skip unread)."""
        avail = len(data) - pos
        if avail < 2:
            return None, 0, 2, 0
        b0, b1 = data[pos], data[pos + 1]
        fin, opcode, masked, length = bool(b0 & 0x80), b0 & 0x0F, bool(b1 & 0x80), b1 & 0x7F
        at = pos + 2
        if length == 126:
            if avail < 4:
                return None, 0, 4, 0
            length, at = int.from_bytes(data[at : at + 2], "big"), at + 2
        elif length == 127:
            if avail < 10:
                return None, 0, 10, 0
            length, at = int.from_bytes(data[at : at + 8], "big"), at + 8
        key = b""
        if masked:
            key, at = data[at : at + 4], at + 4
        total = at - pos + length
        if length > MAX_WS_MESSAGE:
            finding = Finding("error", "websocket.too_long", f"a frame declares {length} bytes")
            return (
                Pdu("websocket", (), (pos, len(data)), "WebSocket frame too long", (finding,)),
                len(data) - pos,
                0,
                0,
            )
        fields = [
            Field("websocket.fin", fin, (pos, pos + 1)),
            Field("websocket.opcode", opcode, (pos, pos + 1)),
            Field("websocket.mask", masked, (pos + 1, pos + 2)),
            Field("websocket.payload_length", length, (pos + 1, at)),
        ]
        summary = (
            f"WebSocket {WS_OPCODES.get(opcode, opcode)}"
            + (" [FIN]" if fin else "")
            + (" [MASKED]" if masked else "")
        )
        if opcode in (1, 2):  # a new message; control frames may come between a message's frames
            state.ws_opcode = opcode
            state.ws_parts.clear()
        text = state.ws_opcode == 1 and opcode in (0, 1)
        if avail < total:
            if text or at > len(data) or length <= msg.MAX_READ_BODY:
                return None, 0, total, 0
            # Only text messages are read (for SDP): the payload of a long binary frame is
            # skipped as it comes instead of being buffered whole.
            return Pdu("websocket", tuple(fields), (pos, at), summary), at - pos, 0, length
        findings: tuple[Finding, ...] = ()
        inner: tuple[InnerPayload, ...] = ()
        if text:
            if len(state.ws_parts) + length > MAX_WS_MESSAGE:
                what = f"text message over MAX_WS_MESSAGE ({MAX_WS_MESSAGE} bytes): not reassembled"
                findings = (Finding("warn", "websocket.message_limit", what, (pos, pos + total)),)
                state.ws_parts.clear()
                state.ws_opcode = 0
            else:
                payload = data[at : at + length]
                state.ws_parts += _unmask(payload, key) if masked else payload
                if fin:
                    whole = bytes(state.ws_parts)
                    state.ws_parts.clear()
                    fields.append(
                        Field("websocket.payload.text", whole.decode("utf-8", "replace"), (at, at + length))
                    )
                    inner = _inner_sdp(whole, at)
        return Pdu("websocket", tuple(fields), (pos, pos + total), summary, findings, inner), total, 0, 0


def _unmask(payload: bytes, key: bytes) -> bytes:
    """RFC 6455 section 5.3, as one big-integer XOR (a loop over the bytes costs ~50 ns each)."""
    n = len(payload)
    mask = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(mask, "little")).to_bytes(n, "little")


class HttpDecoder(_TextDecoder):
    name: ClassVar[str] = "http"
    transport: ClassVar[Literal["stream"]] = "stream"
    ports: ClassVar[frozenset[tuple[str, int]]] = frozenset(
        ("tcp", p) for p in (80, 8000, 8080, 8888, 3000, 5000)
    )

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        return (
            msg.starts_message(data)
            and not data.startswith((b"SIP/", b"PRI "))
            and b" SIP/2.0" not in data[:200]
        )


class SipDecoder(_TextDecoder):
    name: ClassVar[str] = "sip"
    transport: ClassVar[Literal["both"]] = "both"
    ports: ClassVar[frozenset[tuple[str, int]]] = frozenset({("udp", 5060), ("tcp", 5060)})

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        return data.startswith(b"SIP/2.0 ") or (msg.starts_message(data) and b" SIP/2.0\r\n" in data[:300])


def _shift(pdu: Pdu, by: int) -> Pdu:
    if not by:
        return pdu
    return Pdu(
        pdu.protocol,
        pdu.fields,
        (pdu.span[0] + by, pdu.span[1] + by),
        pdu.summary,
        pdu.findings,
        pdu.inner,
        pdu.record,
        pdu.expect,
    )
