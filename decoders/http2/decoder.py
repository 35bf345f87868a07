"""The HTTP/2 stream decoder: frames, header blocks and gRPC messages on reassembled TCP bytes.

Per direction it keeps an HPACK table; per connection (in the flow's `FlowContext.shared`, seen by
both directions) it keeps each stream's headers so that gRPC messages are decoded with their
method's schema.
Captures that start mid-connection are handled: the first frame boundary is found by a strict
heuristic, headers that refer to dynamic-table entries from before the capture show as unknown,
DATA frames of streams whose headers were never seen are still read as gRPC when their bytes
say so, and which endpoint is the client is worked out from what HTTP/2 shows (sides.py) rather
than taken from the flow's orientation. TLS records are never read as frames.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from protoscope.decoders.api import DecodeResult, Field, Finding, FlowContext, LazyFields, Pdu
from protoscope.decoders.grpc.messages import Deframer, Message, decompress
from protoscope.decoders.grpc.path import request_path
from protoscope.decoders.grpc.status import grpc_message
from protoscope.decoders.protobuf.schema import SchemaSet, decode_message

from . import frames as fr
from .fields import FIELDS
from .header_block import DynamicTable, Header, decode_block
from .info import frame_info
from .records import FrameRecord, MessageRecord
from .sides import Sides, block_from_client

MAX_HEADER_BLOCK = 1 << 20
"""Bytes of one header block (HEADERS + CONTINUATIONs) kept before it is dropped with a finding."""
SETTINGS_HEADER_TABLE_SIZE = 1
"""RFC 9113 section 6.5.2: the identifier of the setting that bounds the peer's dynamic table."""
RESYNC_WINDOW = 64 * 1024
"""Bytes searched for a frame boundary in a capture that starts mid-connection."""
MAX_OPEN_STREAMS = 1000
"""Streams of one connection followed at once; opening another forgets the oldest (with a finding,
once per connection). Servers advertise SETTINGS_MAX_CONCURRENT_STREAMS of 100 to 250 (nginx 128,
Go 250); the margin is for streams whose end the capture missed. Without a bound, frames on fresh
stream ids (9 bytes each) cost a Stream object apiece."""


@dataclass(slots=True)
class Stream:
    """One stream's state. Lists and tuples of two are per direction of the flow (0: the side the
    flow calls its client), which holds whichever side turns out to be the HTTP/2 client."""

    id: int
    requested: bool = False
    """The request's header block was seen (only what it set is kept, not the headers)."""
    responded: bool = False
    content_type: str | None = None
    encodings: list[str] = field(default_factory=lambda: ["identity", "identity"])
    """grpc-encoding each direction declared for the messages it sends."""
    path: str | None = None
    deframers: tuple[Deframer, Deframer] = field(default_factory=lambda: (Deframer(), Deframer()))
    grpc: bool | None = None
    ended: list[bool] = field(default_factory=lambda: [False, False])
    """END_STREAM seen from each direction."""
    sent_data: list[bool] = field(default_factory=lambda: [False, False])
    """DATA seen from each direction (a header block after it is trailers)."""


@dataclass(slots=True)
class Connection:
    streams: dict[int, Stream] = field(default_factory=dict)
    """Open streams, oldest first (insertion order: the one MAX_OPEN_STREAMS forgets first)."""
    tables: tuple[DynamicTable, DynamicTable] = field(
        default_factory=lambda: (DynamicTable(), DynamicTable())
    )
    sides: Sides = field(default_factory=Sides)
    streams_forgotten: int = 0
    """Streams forgotten to MAX_OPEN_STREAMS (the first one makes a finding)."""

    def stream(self, sid: int, findings: list[Finding]) -> Stream:
        s = self.streams.get(sid)
        if s is None:
            if len(self.streams) >= MAX_OPEN_STREAMS:
                oldest = next(iter(self.streams))
                del self.streams[oldest]
                self.streams_forgotten += 1
                if self.streams_forgotten == 1:
                    findings.append(
                        Finding(
                            "warn",
                            "http2.streams_limit",
                            f"more than {MAX_OPEN_STREAMS} streams open on this connection "
                            f"(MAX_OPEN_STREAMS): stream {oldest}, the oldest, is forgotten, and so "
                            "is the oldest each time another opens (not reported again)",
                        )
                    )
            s = self.streams[sid] = Stream(sid)
        return s


@dataclass(slots=True)
class Pending:
    """A header block waiting for its CONTINUATION frames."""

    stream_id: int
    block_stream: int
    end_stream: bool
    block: bytearray
    promised: bool = False
    """The block of a PUSH_PROMISE: a request the server sends."""


@dataclass(slots=True)
class DirectionState:
    conn: Connection | None = None
    started: bool = False
    pending: Pending | None = None
    tls: bool = False
    """The direction carries TLS records: nothing in it is read as HTTP/2."""


_STREAM = rb"(?!\x00\x00\x00\x00)[\x00-\x7f]"
"""A stream id other than 0 (with the reserved bit clear): the first byte of it."""
_AFTER_LENGTH_BYTE = b"|".join(
    (
        rb"..\x00[\x00\x01\x08\x09]" + _STREAM,  # DATA
        rb"..\x01[\x00\x01\x04\x05\x08\x09\x0c\x0d\x20\x21\x24\x25\x28\x29\x2c\x2d]" + _STREAM,  # HEADERS
        rb"..\x04[\x00\x01]\x00\x00\x00\x00",  # SETTINGS
        rb"..\x05[\x00\x04\x08\x0c]" + _STREAM,  # PUSH_PROMISE
        rb"..\x07\x00\x00\x00\x00\x00",  # GOAWAY
        rb"..\x09[\x00\x04]" + _STREAM,  # CONTINUATION
    )
)
_FIXED_LENGTH = b"|".join(
    (
        rb"\x00\x05\x02\x00" + _STREAM,  # PRIORITY
        rb"\x00\x04\x03\x00" + _STREAM,  # RST_STREAM
        rb"\x00\x08\x06[\x00\x01]\x00\x00\x00\x00",  # PING
        rb"\x00\x04\x08\x00[\x00-\x7f]",  # WINDOW_UPDATE, on any stream
    )
)
HEADER_CANDIDATE = re.compile(
    rb"[\x00-\x10](?=..[\x00-\x09])(?:(?=" + _AFTER_LENGTH_BYTE + rb")|(?<=\x00)(?=" + _FIXED_LENGTH + rb"))",
    re.DOTALL,
)
"""Where a frame header may start (the match begins there): a length up to 1 MiB (the fixed one of
PRIORITY, RST_STREAM, PING and WINDOW_UPDATE), a known type with flags it defines, the reserved bit
clear, stream 0 for the connection's frames and only for them (`frames.plausible_header` checks the
rest). The regex engine finds these, so that `plausible_header` runs on a few offsets rather than on
every one: a Python scan of 4 KiB cost ~13 ms; this one ~20 us."""


def find_frame_start(data: bytes, limit: int = RESYNC_WINDOW) -> int | None:
    """The first offset where two frames in a row (or one ending exactly at the end) look right."""
    for m in HEADER_CANDIDATE.finditer(data, 0, min(len(data), limit + fr.FRAME_HEADER_LEN - 1)):
        pos = m.start()
        if pos >= limit:
            break
        if fr.plausible_header(data, pos):
            nxt = fr.frame_header(data, pos).end
            if nxt == len(data) or (nxt < len(data) and fr.plausible_header(data, nxt)):
                return pos
            if nxt > len(data) and pos == 0:
                return pos
    return None


def find_http2_start(data: bytes, limit: int = RESYNC_WINDOW) -> int | None:
    """find_frame_start, but None when the data holds TLS records outside the frames chained from
    there: TLS on any port is never HTTP/2, however much the bytes inside a record look like
    frames. Bytes inside chained frames that end within the data are HTTP/2 payload (a gRPC
    message may carry TLS); a frame that runs past the data vouches for nothing."""
    start = find_frame_start(data, limit)
    if start is None or fr.find_tls_records(data, 0, start) is not None:
        return None
    end = start
    while end < limit and fr.plausible_header(data, end):
        nxt = fr.frame_header(data, end).end
        if nxt > len(data):
            break
        end = nxt
    if fr.find_tls_records(data, end, max(end, limit)) is not None:
        return None
    return start


def _header_fields(headers: list[Header]) -> list[Field]:
    out = []
    for h in headers:
        out.append(
            Field(
                "http2.header",
                f"{h.name}: {h.value}",
                h.span,
                (Field("http2.header.name", h.name, h.span), Field("http2.header.value", h.value, h.span)),
            )
        )
        if h.name == ":path":
            out.append(Field("http2.headers.path", h.value, h.span))
        elif h.name == ":status":
            out.append(Field("http2.headers.status", h.value, h.span))
        elif h.name == ":method":
            out.append(Field("http2.headers.method", h.value, h.span))
        elif h.name == ":authority":
            out.append(Field("http2.headers.authority", h.value, h.span))
        elif h.name == "content-type":
            out.append(Field("http2.headers.content_type", h.value, h.span))
        elif h.name == "grpc-status" and h.value.isascii() and h.value.isdigit():
            out.append(Field("grpc.status", int(h.value), h.span))
        elif h.name == "grpc-message":
            out.append(Field("grpc.message", h.value, h.span))
        elif h.name == "grpc-encoding":
            out.append(Field("grpc.encoding", h.value, h.span))
    return out


def _looks_grpc(payload: bytes) -> bool:
    """Mid-capture guess: the DATA payload starts with a plausible gRPC message prefix."""
    if len(payload) < 5 or payload[0] not in (0, 1):
        return False
    return int.from_bytes(payload[1:5], "big") <= 64 * 1024 * 1024


class Http2Decoder:
    name: ClassVar[str] = "http2"
    fields = FIELDS
    transport: ClassVar[Literal["stream"]] = "stream"
    ports: ClassVar[frozenset[tuple[str, int]]] = frozenset()

    def __init__(self) -> None:
        self.schemas = SchemaSet()

    def configure(self, options: Mapping[str, object]) -> None:
        schemas = options.get("protobuf.schemas")
        if isinstance(schemas, SchemaSet):
            self.schemas = schemas

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        if data.startswith(fr.PREFACE):
            return True
        if len(data) < fr.FRAME_HEADER_LEN:
            return False
        pos = find_http2_start(data, 4096)
        if pos is None:
            return False
        # Strict: at least two whole frames, or one whole frame that fills the data exactly.
        first = fr.frame_header(data, pos)
        return first.end <= len(data)

    def new_state(self) -> DirectionState:
        return DirectionState()

    def decode(self, data: bytes, state: object, ctx: FlowContext) -> DecodeResult:
        assert isinstance(state, DirectionState)
        if state.conn is None:
            conn = ctx.shared.get("http2")
            if not isinstance(conn, Connection):
                conn = ctx.shared["http2"] = Connection()
            state.conn = conn
        conn = state.conn
        side = 0 if ctx.from_client else 1
        pdus: list[Pdu] = []
        findings: list[Finding] = []
        pos = 0
        if state.tls:
            return DecodeResult(consumed=len(data))
        if not state.started:
            if len(data) < len(fr.PREFACE) and fr.PREFACE.startswith(data):
                return DecodeResult(need=len(fr.PREFACE))
            if data.startswith(fr.PREFACE):
                pdus.append(
                    Pdu(
                        "http2",
                        (Field("http2.magic", fr.PREFACE.decode().strip(), (0, 24)),),
                        (0, 24),
                        "Magic",
                    )
                )
                pos = len(fr.PREFACE)
                self._learn(conn, side, True, "sent the connection preface", ctx, findings)
            else:
                start = find_http2_start(data)
                if start is None and fr.find_tls_records(data, 0, RESYNC_WINDOW) is not None:
                    state.tls = True
                    note = Finding("note", "http2.tls", "TLS records, not HTTP/2: nothing here is decoded")
                    return DecodeResult(consumed=len(data), findings=(note,))
                if start is None:
                    return DecodeResult(consumed=max(0, len(data) - fr.FRAME_HEADER_LEN))
                if start:
                    findings.append(
                        Finding("note", "http2.resync", f"{start} bytes before the first whole frame skipped")
                    )
                pos = start
                first = fr.frame_header(data, pos)
                if not (first.type == fr.SETTINGS and not first.flags & 1):
                    # Not the connection's first frame: the dynamic table may hold unseen entries.
                    conn.tables[side].complete = False
            state.started = True
        while len(data) - pos >= fr.FRAME_HEADER_LEN:
            raw = fr.frame_header(data, pos)
            if raw.end > len(data):
                return DecodeResult(tuple(pdus), pos, raw.end - pos, tuple(findings))
            pdus.extend(self._frame(data, raw, state, conn, side, ctx))
            pos = raw.end
        return DecodeResult(tuple(pdus), pos, fr.FRAME_HEADER_LEN if pos < len(data) else 0, tuple(findings))

    # -- one frame ---------------------------------------------------------------------------

    def _frame(
        self,
        data: bytes,
        raw: fr.RawFrame,
        state: DirectionState,
        conn: Connection,
        side: int,
        ctx: FlowContext,
    ) -> list[Pdu]:
        p = fr.parse(data, raw)
        findings = list(p.findings)
        extra: list[Pdu] = []
        headers: list[Header] | None = None
        block_stream = 0
        t = raw.type
        end_stream = bool(raw.flags & fr.FLAG_END_STREAM) and t in (fr.DATA, fr.HEADERS)
        error_code = last_stream = None
        ok = p.ok
        if ok and conn.sides.client is None:
            self._orient(p, conn, side, ctx, findings)
        if ok:
            if t == fr.DATA:
                extra = self._data(data, p, conn, side, ctx, findings)
            elif t in (fr.HEADERS, fr.PUSH_PROMISE, fr.CONTINUATION):
                done = self._block(data, p, state, conn, side, end_stream, ctx, findings)
                if done is not None:
                    headers, block_stream, end_stream = done
            elif t == fr.RST_STREAM or t == fr.GOAWAY:
                error_code = p.frame.error_code
                if t == fr.GOAWAY:
                    last_stream = p.frame.last_stream_id
            elif t == fr.SETTINGS and not raw.flags & fr.FLAG_END_STREAM:  # not an ACK
                size = p.frame.settings.get(SETTINGS_HEADER_TABLE_SIZE)
                if size is not None:  # it bounds the blocks this side receives
                    conn.tables[1 - side].setting = size
            self._close(conn, raw, side, end_stream and (t == fr.DATA or headers is not None))
        record = FrameRecord(
            t,
            raw.flags,
            raw.stream_id,
            raw.length,
            None if headers is None else tuple(headers),
            block_stream,
            end_stream,
            error_code,
            last_stream,
            False,  # http1; positional arguments, as in _message
            conn.sides.from_client(side),
        )

        def tree() -> list[Field]:
            return fr.fields(data, p) + _header_fields(headers or [])

        pdu = Pdu(
            "http2",
            LazyFields(tree),
            (raw.offset, raw.end),
            frame_info(raw, headers, error_code, not ok),
            tuple(findings) if findings else (),
            record=record,
        )
        return [pdu, *extra]

    def _orient(
        self, p: fr.ParsedFrame, conn: Connection, side: int, ctx: FlowContext, findings: list[Finding]
    ) -> None:
        """The frame-level signs of which side is the client (header blocks: see _block)."""
        raw = p.raw
        if raw.type == fr.PUSH_PROMISE:
            self._learn(conn, side, False, "sent PUSH_PROMISE", ctx, findings)
        elif raw.type in (fr.DATA, fr.HEADERS) and raw.stream_id and raw.stream_id % 2 == 0:
            why = f"sent {raw.type_name} on stream {raw.stream_id}, an even (pushed) one"
            self._learn(conn, side, False, why, ctx, findings)
        elif raw.type == fr.GOAWAY and p.frame.last_stream_id:
            # GOAWAY names a stream its peer initiated: odd ones are the client's.
            last = p.frame.last_stream_id
            self._learn(conn, side, last % 2 == 0, f"sent GOAWAY naming stream {last}", ctx, findings)

    @staticmethod
    def _learn(
        conn: Connection, side: int, is_client: bool, why: str, ctx: FlowContext, findings: list[Finding]
    ) -> None:
        """Take what a frame from `side` showed (`why`: what its sender did); a note when the flow
        was oriented the other way."""
        if conn.sides.learn(side, is_client) and conn.sides.client != 0:
            client = ctx.src if is_client else ctx.dst
            findings.append(
                Finding(
                    "note",
                    "http2.client_side",
                    f"HTTP/2 shows that {client} is the client: {ctx.src} {why} "
                    "(the flow's orientation had it the other way round)",
                )
            )

    def _decoded_block(
        self,
        conn: Connection,
        side: int,
        block_stream: int,
        headers: list[Header],
        promised: bool,
        ctx: FlowContext,
        findings: list[Finding],
    ) -> None:
        """A whole header block: what it shows of the sides, then the stream's headers."""
        if conn.sides.client is None and not promised:
            sender = block_from_client(headers)
            s = conn.streams.get(block_stream)
            if sender is not None:
                what = "request" if sender else "response (:status)"
                why = f"sent {what} headers on stream {block_stream}"
                self._learn(conn, side, sender, why, ctx, findings)
            elif s is not None and s.sent_data[side]:
                why = f"sent headers after its DATA on stream {block_stream}, gRPC trailers"
                self._learn(conn, side, False, why, ctx, findings)
        client = conn.sides.client
        request = promised or side == (0 if client is None else client)
        self._headers(conn, side, block_stream, headers, request, findings)

    def _block(
        self,
        data: bytes,
        p: fr.ParsedFrame,
        state: DirectionState,
        conn: Connection,
        side: int,
        end_stream: bool,
        ctx: FlowContext,
        findings: list[Finding],
    ) -> tuple[list[Header], int, bool] | None:
        """Collect a header block; decode it when its last frame is here (returns headers, stream,
        END_STREAM)."""
        raw = p.raw
        if raw.type != fr.CONTINUATION:
            if state.pending is not None:
                findings.append(
                    Finding("error", "http2.continuation_missing", "a header block was left unfinished")
                )
                state.pending = None
            block_stream = p.frame.promised_stream_id if raw.type == fr.PUSH_PROMISE else raw.stream_id
            if raw.flags & fr.FLAG_END_HEADERS:  # the usual case: the block lies in this frame
                decoded, hf = decode_block(data[p.body_start : p.body_end], conn.tables[side], p.body_start)
                findings += hf
                promised = raw.type == fr.PUSH_PROMISE
                self._decoded_block(conn, side, block_stream, decoded, promised, ctx, findings)
                return decoded, block_stream, end_stream
            state.pending = Pending(
                raw.stream_id,
                block_stream,
                end_stream,
                bytearray(data[p.body_start : p.body_end]),
                raw.type == fr.PUSH_PROMISE,
            )
            return None
        pending = state.pending
        if pending is None or pending.stream_id != raw.stream_id:
            findings.append(
                Finding("error", "http2.continuation_unexpected", "CONTINUATION without a header block")
            )
            return None
        pending.block += data[p.body_start : p.body_end]
        if len(pending.block) > MAX_HEADER_BLOCK:
            findings.append(
                Finding(
                    "error",
                    "http2.header_block_too_large",
                    f"header block over {MAX_HEADER_BLOCK} bytes dropped",
                )
            )
            state.pending = None
            return None
        if not raw.flags & fr.FLAG_END_HEADERS:
            return None
        state.pending = None
        # The block spans frames, some from earlier packets: each header gets this frame's span.
        decoded, hf = decode_block(bytes(pending.block), conn.tables[side], 0)
        decoded = [_respan(h, (raw.offset, raw.end)) for h in decoded]
        findings += [Finding(x.severity, x.code, x.message, (raw.offset, raw.end)) for x in hf]
        self._decoded_block(conn, side, pending.block_stream, decoded, pending.promised, ctx, findings)
        return decoded, pending.block_stream, pending.end_stream

    @staticmethod
    def _close(conn: Connection, raw: fr.RawFrame, side: int, ended: bool) -> None:
        """Forget a stream once both sides ended it or it was reset: memory stays bounded by the
        streams open at once, not by the calls in the capture."""
        if raw.type == fr.RST_STREAM:
            conn.streams.pop(raw.stream_id, None)
        elif ended:
            s = conn.streams.get(raw.stream_id)
            if s is not None:
                s.ended[side] = True
                if all(s.ended):
                    del conn.streams[raw.stream_id]

    def _headers(
        self,
        conn: Connection,
        side: int,
        sid: int,
        headers: list[Header],
        request: bool,
        findings: list[Finding],
    ) -> None:
        s = conn.stream(sid, findings)
        values = {h.name: h.value for h in headers}
        if "grpc-encoding" in values:
            s.encodings[side] = values["grpc-encoding"]
        if request:
            if not s.requested:
                s.requested = True
                s.path = request_path(headers)[0] or s.path
                ctype = values.get("content-type")
                if ctype is not None:
                    s.content_type = ctype
                    s.grpc = ctype.startswith("application/grpc")
        elif not s.responded:
            s.responded = True
            ctype = values.get("content-type")
            if ctype is not None and s.grpc is None:
                s.grpc = ctype.startswith("application/grpc")

    def _data(
        self,
        data: bytes,
        p: fr.ParsedFrame,
        conn: Connection,
        side: int,
        ctx: FlowContext,
        findings: list[Finding],
    ) -> list[Pdu]:
        s = conn.stream(p.raw.stream_id, findings)
        s.sent_data[side] = True
        payload = data[p.body_start : p.body_end]
        if s.grpc is None and s.content_type is None:
            # No content-type seen (headers before the capture, or from dynamic-table entries
            # we never saw): the bytes decide.
            deframer = s.deframers[side]
            if not deframer.pending and payload:
                s.grpc = _looks_grpc(payload)
        if not s.grpc or not payload:
            return []
        messages, problems = s.deframers[side].feed(payload, p.body_start, ctx.frame)
        from_client = conn.sides.from_client(side)
        out = [self._message(m, s, side, from_client) for m in messages]
        if problems:
            out.append(Pdu("grpc", (), (p.body_start, p.body_end), "gRPC framing error", tuple(problems)))
        return out

    def message_pdu(self, m: Message, s: Stream, side: int) -> Pdu:
        """The PDU of one gRPC message of stream `s` (also used for gRPC-Web over HTTP/1.1):
        `side` 0 for a request, 1 for a response."""
        return self._message(m, s, side, side == 0)

    def _message(self, m: Message, s: Stream, side: int, from_client: bool | None) -> Pdu:
        """`side` is the direction the message came from; `from_client` whether that is the
        client, None while the connection has not shown it (then direction 0 is taken for it)."""
        request = side == 0 if from_client is None else from_client
        findings: list[Finding] = []
        at = m.contiguous_at
        base = at if at is not None else 0
        prefix = (base - 5, base) if at is not None else (0, 0)
        span = (prefix[0], base + m.length) if at is not None else (0, 0)
        fields: list[Field] = [
            Field("grpc.compressed_flag", m.flag, (prefix[0], prefix[0] + 1) if at is not None else (0, 0)),
            Field("grpc.message_length", m.length, (prefix[0] + 1, prefix[1]) if at is not None else (0, 0)),
        ]
        body: bytes | None = m.data
        if m.trailers:
            text = m.data.decode("latin-1")
            pairs = tuple(
                (
                    k.strip().lower(),
                    grpc_message(v.strip()) if k.strip().lower() == "grpc-message" else v.strip(),
                )
                for k, _, v in (line.partition(":") for line in text.split("\r\n") if line)
            )
            record = MessageRecord(
                s.id, False, m.length, None, None, tuple(m.frames), pairs, from_client=from_client
            )
            return Pdu(
                "grpc", tuple(fields), (prefix[0], base + m.length), "gRPC-Web trailers", (), record=record
            )
        if m.compressed:
            body, problem = decompress(m.data, s.encodings[side])
            if problem is not None:
                findings.append(problem)
            at = None  # the inflated bytes are not in the capture: no spans into it
        content: object = None
        type_name = None
        tree: Sequence[Field] = fields
        if body is not None and (s.content_type is None or "json" not in s.content_type):
            method = self.schemas.methods.get(s.path or "")
            desc = None if method is None else (method.input if request else method.output)
            decoded = decode_message(body, desc, base if at is not None else 0)
            node_span = (base, base + len(body)) if at is not None else (0, 0)
            label = desc.full_name if desc else "message (no schema)"

            def build() -> list[Field]:
                return [*fields, Field("protobuf", label, node_span, tuple(decoded.fields))]

            tree = LazyFields(build)
            findings += decoded.findings
            content = decoded.content
            type_name = desc.full_name if desc is not None else None
        elif body is not None:
            content = body.decode("utf-8", "replace")
        what = "message" if from_client is None else "request" if request else "response"
        summary = f"gRPC {what}, {m.length} bytes{', compressed' if m.compressed else ''}"
        # Positional arguments: a NamedTuple is slower to build from keywords (once a message).
        frames = tuple(m.frames)
        record = MessageRecord(
            s.id, m.compressed, m.length, content, type_name, frames, None, body, from_client
        )
        return Pdu("grpc", tree, span, summary, tuple(findings), record=record)


def _respan(h: Header, span: tuple[int, int]) -> Header:
    return h._replace(span=span)
