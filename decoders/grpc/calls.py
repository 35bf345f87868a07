"""The gRPC call table (`--report calls`): one row per HTTP/2 stream that carried a gRPC call.

Built from the HTTP/2 decoder's records in frame order: request headers open a call, messages
join it by stream, response headers, trailers, RST_STREAM or GOAWAY end it. Streams interleaved
on one connection stay apart because calls are keyed by (flow, stream id).

Which side is the client comes from the HTTP/2 decoder (`from_client` on its records: what the
connection showed), not from the flow's orientation, which may be wrong in a capture that began
mid-connection. Messages are kept by the direction they came in and split into requests and
responses when the row is written, so those that came before the connection showed its client
still land on the right side.

Memory follows what a row shows, not what a connection sends: a call keeps its metadata (not its
header lists), the first MESSAGES_KEPT_FIRST and the last MESSAGES_KEPT_LAST messages of each
direction (MESSAGE_BYTES_KEPT at most each way; `requests_omitted` and `responses_omitted` count
those between, and a `grpc.messages_limit` finding says so), and a connection keeps at most
MAX_OPEN_CALLS calls open (opening another gives up the oldest: its row comes out as it is, with
`ended_by` "calls_limit" and a `grpc.calls_limit` finding). decoders/grpc/_bulk.c keeps the same
limits, to the byte.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

from protoscope.decoders.api import AnalysisFinding, FlowContext, Pdu
from protoscope.decoders.http2 import frames as fr
from protoscope.decoders.http2.header_block import Header
from protoscope.decoders.http2.records import FrameRecord, MessageRecord
from protoscope.decoders.protobuf.schema import SchemaSet, content_of
from protoscope.decoders.tls.decoder import CONNECTION as TLS_CONNECTION

from .grpcurl import grpcurl_command
from .path import request_path
from .status import (
    DEADLINE_EXCEEDED,
    binary_value,
    deadline_elapsed,
    grpc_message,
    grpc_timeout,
    parse_status,
    status_details,
    status_name,
)

RESERVED = {
    ":path",
    ":method",
    ":scheme",
    ":authority",
    ":status",
    "content-type",
    "te",
    "user-agent",
    "grpc-encoding",
    "grpc-accept-encoding",
    "grpc-timeout",
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "accept-encoding",
    "content-length",
}

MESSAGES_KEPT_FIRST = 100
"""Messages of each direction of a call kept from its start: a unary or short streaming call keeps
them all; a stream that never ends (a feed, a subscription) keeps how it began."""
MESSAGES_KEPT_LAST = 100
"""Messages of each direction kept from its end (the latest, while the call is open): where a long
stream was when it ended or the capture did. Those between the first and the last are counted
(`requests_omitted`, `responses_omitted`), not kept: a 24 MB stream of small messages kept 1.9 GB."""
MESSAGE_BYTES_KEPT = 4 << 20
"""Bytes of messages (inflated) the first ones kept of a direction may hold, and so may the last:
gRPC's default largest message (4 MiB). The first message and the last are kept whatever their size."""
MAX_OPEN_CALLS = 1000
"""Calls of one connection open at once (or waiting for the server after the client's reset);
another gives up the oldest (see decoder.MAX_OPEN_STREAMS: the same reasoning)."""
ITEM_KEYS = ("frame", "time", "compressed", "size", "uncompressed_size", "type", "message")
"""The keys of a message's row item, in order (an item is kept as a tuple: a third of a dict)."""
Item = tuple[int, float, bool, int, int | None, str | None, object]


@dataclass(slots=True)
class Call:
    flow: int
    stream_id: int
    start: float
    first_packet: int
    """0-based packet where the call was first seen (orders rows merged with the bulk path)."""
    path: str | None = None
    path_from: str | None = None
    """"header" (`:path`), "value" (a header from an unseen HPACK entry that reads like a path)."""
    authority: str | None = None
    request_metadata: dict[str, object] | None = None
    """None until a request header block with headers in it was seen."""
    response_metadata: dict[str, object] | None = None
    trailers: dict[str, object] = field(default_factory=dict)
    unknown_headers: list[int] = field(default_factory=lambda: [0, 0, 0])
    """Headers from HPACK entries before the capture: of the request, the response, the trailers."""
    messages: tuple[Kept, Kept] = field(default_factory=lambda: (Kept(), Kept()))
    """The messages that came from the flow's client side, and from its server side."""
    end: float | None = None
    status: int | None = None
    status_from: str | None = None
    """"trailers" (grpc-status) or "inferred" (RST_STREAM after the grpc-timeout elapsed)."""
    message: str | None = None
    details: dict[str, object] | None = None
    ended_by: str | None = None
    """"trailers", "trailers-only", "rst_stream", "goaway" or None while open at capture end."""
    rst_stream_error: str | None = None
    timeout: float | None = None
    client_done: bool = False
    server_done: bool = False
    """The server ended its side: END_STREAM or RST_STREAM."""
    awaiting_server: int | None = None
    """Set when the client reset the call while the server's side was open: frames the server sent
    before it read the RST_STREAM (trailers with the real status, often) may still come. Holds the
    highest client stream id then: a server frame on a later stream shows it has read the reset."""
    web_trailers: tuple[tuple[str, str], ...] | None = None
    given_up: int | None = None
    """The frame where MAX_OPEN_CALLS gave the call up (it is no longer followed)."""

    @property
    def done(self) -> bool:
        """The row may be written: the call ended (the server too, after a client's reset) or was
        given up."""
        return self.given_up is not None or (self.end is not None and self.awaiting_server is None)


@dataclass(slots=True)
class Kept:
    """One direction's messages of a call as its row keeps them: the first MESSAGES_KEPT_FIRST
    (MESSAGE_BYTES_KEPT of them at most), then the last MESSAGES_KEPT_LAST (as many bytes); those
    between are counted. Items are ITEM_KEYS tuples."""

    first: list[Item] = field(default_factory=list)
    last: deque[tuple[int, Item]] = field(default_factory=deque)
    """(bytes, item) of the latest messages after the first ones."""
    first_bytes: int = 0
    last_bytes: int = 0
    closed: bool = False
    """The first ones are all in: every later message goes to `last`."""
    total: int = 0
    omitted: int = 0
    omitted_frame: int | None = None
    """The frame of the first message left out."""

    def add(self, item: Item, size: int) -> None:
        self.total += 1
        if not self.closed:
            if len(self.first) < MESSAGES_KEPT_FIRST and (
                self.first_bytes + size <= MESSAGE_BYTES_KEPT or not self.first
            ):
                self.first.append(item)
                self.first_bytes += size
                return
            self.closed = True
        last = self.last
        last.append((size, item))
        self.last_bytes += size
        while len(last) > MESSAGES_KEPT_LAST or (self.last_bytes > MESSAGE_BYTES_KEPT and len(last) > 1):
            gone, old = last.popleft()
            self.last_bytes -= gone
            self.omitted += 1
            if self.omitted_frame is None:
                self.omitted_frame = old[0]

    def items(self) -> list[dict[str, object]]:
        return [
            dict(zip(ITEM_KEYS, (*m[:-1], content_of(m[-1])), strict=True))
            for m in (*self.first, *(m for _, m in self.last))
        ]


def _metadata(headers: list[Header]) -> dict[str, object]:
    out: dict[str, object] = {}
    for h in headers:
        if h.name in RESERVED or h.name.startswith(":") or not h.known:
            continue
        value: object = h.value
        if h.name.endswith("-bin"):
            raw = binary_value(h.value)
            value = raw.hex() if raw is not None else h.value
        prev = out.get(h.name)
        if prev is None:
            out[h.name] = value
        elif isinstance(prev, list):  # appended, not copied: a block of one name repeated is linear
            prev.append(value)
        else:
            out[h.name] = [prev, value]
    return out


def _unknown(headers: list[Header]) -> int:
    return sum(not h.known for h in headers)


def _value(headers: list[Header], name: str) -> str | None:
    for h in headers:
        if h.name == name:
            return h.value
    return None


@dataclass(slots=True)
class _Flow:
    """What the calls of one flow share."""

    client_side: bool = True
    """Whether the flow's client side (FlowContext.from_client) is the HTTP/2 client: the flow's
    orientation until the connection shows otherwise."""
    endpoints: tuple[str, str] = ("", "")
    """The flow's (client, server) endpoints as "ip:port"."""
    tls: bool = False
    """The calls came out of TLS records (decrypted with a key log): grpcurl needs no -plaintext."""
    last_client_stream: int = 0
    awaiting: dict[int, Call] = field(default_factory=dict)
    """Calls of this flow with `awaiting_server` set, by stream id, in the order of their resets (so
    of their `awaiting_server` marks, which only grow)."""
    open: dict[int, Call] = field(default_factory=dict)
    """Calls of this flow not `done`, by stream id, oldest first (MAX_OPEN_CALLS counts these)."""


class CallAnalysis:
    """Analysis plugin: `--report calls`."""

    name: ClassVar[str] = "calls"

    def __init__(self, schemas: SchemaSet | None = None) -> None:
        self.schemas = schemas or SchemaSet()
        self.calls: dict[tuple[int, int], Call] = {}
        self.order: list[Call] = []
        self.flows: dict[int, _Flow] = {}

    def configure(self, options: dict[str, object]) -> None:
        schemas = options.get("protobuf.schemas")
        if isinstance(schemas, SchemaSet):
            self.schemas = schemas

    def _call(self, ctx: FlowContext, f: _Flow, sid: int) -> Call:
        key = (ctx.flow, sid)
        call = self.calls.get(key)
        if call is None:
            if len(f.open) >= MAX_OPEN_CALLS:
                self._give_up(f, next(iter(f.open.values())), ctx.frame)
            call = self.calls[key] = Call(ctx.flow, sid, ctx.time, ctx.frame - 1)
            self.order.append(call)
            f.open[sid] = call
        return call

    def _give_up(self, f: _Flow, call: Call, frame: int) -> None:
        """Stop following the oldest open call of a full connection: its row is written at the next
        drain as it stands, and a later frame on its stream starts a new call."""
        call.given_up = frame
        if call.end is None:
            call.ended_by = "calls_limit"
        if call.awaiting_server is not None:
            call.awaiting_server = None
            del f.awaiting[call.stream_id]
        del f.open[call.stream_id]
        del self.calls[(call.flow, call.stream_id)]

    @staticmethod
    def _settle(f: _Flow, call: Call) -> None:
        """After a call changed: a call that is done leaves the connection's open ones."""
        if call.done:
            f.open.pop(call.stream_id, None)

    def _flow(self, ctx: FlowContext) -> _Flow:
        """A flow's first record."""
        src, dst = str(ctx.src), str(ctx.dst)
        f = self.flows[ctx.flow] = _Flow(endpoints=(src, dst) if ctx.from_client else (dst, src))
        return f

    def feed(self, pdu: Pdu, ctx: FlowContext) -> None:
        rec = pdu.record
        if not isinstance(rec, (MessageRecord, FrameRecord)):
            return
        f = self.flows.get(ctx.flow) or self._flow(ctx)
        if not f.tls and TLS_CONNECTION in ctx.shared:  # its records came out of TLS
            f.tls = True
        if rec.from_client is not None:
            f.client_side = rec.from_client == ctx.from_client
        from_client = ctx.from_client == f.client_side
        if isinstance(rec, MessageRecord):
            call = self._call(ctx, f, rec.stream_id)
            if rec.trailers is not None:
                call.web_trailers = rec.trailers
                self._status(
                    call, [Header(k, v, (0, 0), "literal") for k, v in rec.trailers], ctx, "trailers"
                )
                self._settle(f, call)
                return
            size = None if rec.data is None else len(rec.data)
            # The reading, not the content: made into data only for the messages the row keeps.
            item = (ctx.frame, ctx.time, rec.compressed, rec.size, size, rec.type_name, rec.reading)
            call.messages[0 if ctx.from_client else 1].add(item, rec.size if size is None else size)
            return
        if f.awaiting and not from_client:
            self._server_frame(f, rec)
        if from_client and rec.type in (fr.HEADERS, fr.DATA) and rec.stream_id % 2:
            if rec.stream_id > f.last_client_stream:
                f.last_client_stream = rec.stream_id
        self._frame(rec, ctx, f, from_client)

    def _frame(self, rec: FrameRecord, ctx: FlowContext, f: _Flow, from_client: bool) -> None:
        if rec.headers is not None:
            headers = list(rec.headers)
            sid = rec.block_stream
            # A call is known by its stream, by a gRPC content-type, or, in a capture that began
            # mid-connection, by headers that could not be decoded (they may hide the content-type).
            known = (ctx.flow, sid) in self.calls or any(not h.known for h in headers)
            ctype = _value(headers, "content-type")
            if from_client:
                if not known and not (ctype or "").startswith("application/grpc"):
                    return
                call = self._call(ctx, f, sid)
                if call.request_metadata is None and headers:
                    call.request_metadata = _metadata(headers)
                    call.unknown_headers[0] = _unknown(headers)
                    call.path, call.path_from = request_path(headers)
                    call.authority = _value(headers, ":authority")
                    t = _value(headers, "grpc-timeout")
                    call.timeout = grpc_timeout(t) if t else None
                if rec.end_stream:
                    call.client_done = True
                return
            if (
                not known
                and not (ctype or "").startswith("application/grpc")
                and _value(headers, "grpc-status") is None
            ):
                return
            call = self._call(ctx, f, sid)
            if rec.end_stream:
                call.server_done = True
                # Trailers-Only: the server's one header block ends the call (a call that began
                # before the capture may have had its response headers and messages unseen).
                responded = call.response_metadata is not None or call.messages[f.client_side].total
                only = call.request_metadata is not None and not responded
                self._status(call, headers, ctx, "trailers-only" if only else "trailers")
            elif call.response_metadata is None and _value(headers, "grpc-status") is None:
                if headers:
                    call.response_metadata = _metadata(headers)
                    call.unknown_headers[1] = _unknown(headers)
            else:
                self._status(call, headers, ctx, "trailers")
            self._settle(f, call)
        elif rec.type == fr.DATA and rec.end_stream and not from_client:
            ended = self.calls.get((ctx.flow, rec.stream_id))
            if ended is not None:
                ended.server_done = True
        elif rec.type == fr.RST_STREAM:
            self._reset(rec, ctx, f, from_client)
        elif rec.type == fr.GOAWAY:
            # Only this connection's open calls: at most MAX_OPEN_CALLS, whatever the capture holds.
            for call in list(f.open.values()):
                if call.end is None and call.stream_id > (rec.last_stream_id or 0):
                    call.end = ctx.time
                    call.ended_by = "goaway"
                    self._settle(f, call)

    def _reset(self, rec: FrameRecord, ctx: FlowContext, f: _Flow, from_client: bool) -> None:
        """RST_STREAM ends a call still open: its code goes to rst_stream_error, and DEADLINE_EXCEEDED
        is inferred when the call's grpc-timeout had elapsed."""
        call = self.calls.get((ctx.flow, rec.stream_id))
        if call is None:
            return
        if call.end is not None:
            if not from_client:
                call.server_done = True
            return
        call.end = ctx.time
        call.ended_by = "rst_stream"
        code = rec.error_code or 0
        call.rst_stream_error = fr.ERROR_CODES.get(code, str(code))
        if call.timeout is not None and deadline_elapsed(call.end - call.start, call.timeout):
            # The client's deadline had passed: it saw DEADLINE_EXCEEDED whatever the code.
            call.status, call.status_from = DEADLINE_EXCEEDED, "inferred"
        if from_client and not call.server_done:
            call.awaiting_server = f.last_client_stream
            f.awaiting[call.stream_id] = call
        else:
            call.server_done = True
        self._settle(f, call)

    def _server_frame(self, f: _Flow, rec: FrameRecord) -> None:
        """A server frame while calls of its flow wait for the server after a client's reset: the
        wait ends when the server ends its side of that stream, or sends on a stream the client
        opened after the reset (so it has read the reset, and will send no more on that stream).
        The calls waiting are in the order of their marks: those a later stream releases are the
        first ones, so a frame costs what it releases, not what waits."""
        sid = rec.block_stream if rec.headers is not None else rec.stream_id
        whole = rec.headers is not None or rec.type == fr.DATA
        if rec.type == fr.RST_STREAM or (rec.end_stream and whole):
            c = f.awaiting.pop(sid, None)
            if c is not None:
                c.awaiting_server = None
                self._settle(f, c)
        if sid % 2:
            while f.awaiting:
                c = next(iter(f.awaiting.values()))
                if sid <= (c.awaiting_server or 0):
                    break
                del f.awaiting[c.stream_id]
                c.awaiting_server = None
                self._settle(f, c)

    def _status(self, call: Call, headers: list[Header], ctx: FlowContext, how: str) -> None:
        call.trailers = _metadata(headers)
        call.unknown_headers[2] = _unknown(headers)
        raw = _value(headers, "grpc-status")
        status = parse_status(raw) if raw is not None else None
        if status is not None or call.status_from != "inferred":
            call.status = status
            call.status_from = "trailers" if status is not None else None
        msg = _value(headers, "grpc-message")
        call.message = grpc_message(msg) if msg is not None else None
        details = _value(headers, "grpc-status-details-bin")
        if details is not None:
            blob = binary_value(details)
            call.details = status_details(blob) if blob is not None else None
        if call.ended_by == "rst_stream":  # trailers the server sent before it read the reset
            return
        call.end = ctx.time
        call.ended_by = how

    def _kind(self, call: Call, requests: int, responses: int) -> str:
        method = self.schemas.methods.get(call.path or "")
        if method is not None:
            return method.kind
        many_in, many_out = requests > 1, responses > 1
        return {
            (False, False): "unary",
            (True, False): "client_streaming",
            (False, True): "server_streaming",
            (True, True): "bidi",
        }[(many_in, many_out)]

    def drain(self) -> list[dict[str, object]]:
        """Rows of the calls that ended since the last drain, which are then forgotten.

        The report streams these during the decoding pass, so memory holds only open calls.
        """
        return [row for _, row in self.drain_keyed()]

    def drain_keyed(self) -> list[tuple[int, dict[str, object]]]:
        """drain() with the packet where each call was first seen."""
        done = [c for c in self.order if c.done]
        if not done:
            return []
        self.order = [c for c in self.order if not c.done]
        for c in done:
            if c.given_up is None:  # a given-up call left `calls` then (its stream may be another's now)
                del self.calls[(c.flow, c.stream_id)]
        return list(zip([c.first_packet for c in done], self._rows(done), strict=True))

    def rows(self) -> list[dict[str, object]]:
        """Rows of every call not drained yet, in the order they started."""
        return self._rows(self.order)

    def snapshot(self) -> list[dict[str, object]]:
        """The rows as if the capture ended now (`Analysis`): those of every call not drained yet,
        the open ones with `ended_by` None. `rows()` changes nothing, and what a row holds of a
        call (its metadata, its status details) is set once and not changed after."""
        return self.rows()

    def rows_keyed(self) -> list[tuple[int, dict[str, object]]]:
        """rows() with the packet where each call was first seen."""
        return list(zip([c.first_packet for c in self.order], self.rows(), strict=True))

    def _rows(self, calls: list[Call]) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for c in calls:
            f = self.flows.get(c.flow) or _Flow()
            requests, responses = c.messages[not f.client_side], c.messages[f.client_side]
            service, _, method = (c.path or "").lstrip("/").rpartition("/")
            out.append(
                {
                    "flow": c.flow,
                    "client": f.endpoints[0 if f.client_side else 1] or None,
                    "stream_id": c.stream_id,
                    "path": c.path,
                    "path_from": c.path_from,
                    "service": service or None,
                    "method": method or None,
                    "kind": self._kind(c, requests.total, responses.total),
                    "kind_from": "schema" if (c.path or "") in self.schemas.methods else "observed",
                    "status": c.status,
                    "status_name": status_name(c.status),
                    "status_from": c.status_from,
                    "grpc_message": c.message,
                    "status_details": c.details,
                    "ended_by": c.ended_by,
                    "rst_stream_error": c.rst_stream_error,
                    "timeout": c.timeout,
                    "unknown_headers": sum(c.unknown_headers),
                    "request_metadata": c.request_metadata or {},
                    "response_metadata": c.response_metadata or {},
                    "trailers": c.trailers
                    if c.web_trailers is None
                    else {k: v for k, v in c.web_trailers if k not in RESERVED},
                    "requests": requests.items(),
                    "responses": responses.items(),
                    "requests_omitted": requests.omitted,
                    "responses_omitted": responses.omitted,
                    "start": c.start,
                    "end": c.end,
                    "duration": None if c.end is None else c.end - c.start,
                    "findings": _findings(c, requests, responses),
                }
            )
            with_command(out[-1], f.endpoints[1 if f.client_side else 0] or None, plaintext=not f.tls)
        return out


def with_command(row: dict[str, object], server: str | None, plaintext: bool = True) -> dict[str, object]:
    """Add the call's `server` ("ip:port") and its `grpcurl` command (grpcurl.py) to a row, last:
    the bulk path (inspector/bulk_calls.py) adds them to the extension's rows the same way.
    `plaintext`: the call went over h2c, not TLS."""
    row["server"] = server
    row["grpcurl"] = grpcurl_command(row, plaintext)
    return row


def _findings(c: Call, requests: Kept, responses: Kept) -> list[AnalysisFinding]:
    """The limits a call's row hit (the same words in decoders/grpc/_bulk.c)."""
    out: list[AnalysisFinding] = []
    for what, kept in (("requests", requests), ("responses", responses)):
        if kept.omitted:
            message = (
                f"{kept.omitted} of {kept.total} {what} left out: kept the first {MESSAGES_KEPT_FIRST} "
                f"and the last {MESSAGES_KEPT_LAST}, {MESSAGE_BYTES_KEPT} bytes of each at most "
                "(MESSAGES_KEPT_FIRST, MESSAGES_KEPT_LAST, MESSAGE_BYTES_KEPT)"
            )
            out.append(
                {
                    "frame": kept.omitted_frame,
                    "severity": "warn",
                    "code": "grpc.messages_limit",
                    "message": message,
                }
            )
    if c.given_up is not None:
        message = (
            f"more than {MAX_OPEN_CALLS} calls open on this connection (MAX_OPEN_CALLS): "
            "this one, the oldest, was given up and written as it stood"
        )
        out.append({"frame": c.given_up, "severity": "warn", "code": "grpc.calls_limit", "message": message})
    return out
