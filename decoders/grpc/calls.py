"""The gRPC call table (`--report calls`): one row per HTTP/2 stream that carried a gRPC call.

Built from the HTTP/2 decoder's records in frame order: request headers open a call, messages
join it by stream, response headers, trailers, RST_STREAM or GOAWAY end it. Streams interleaved
on one connection stay apart because calls are keyed by (flow, stream id).

Which side is the client comes from the HTTP/2 decoder (`from_client` on its records: what the
connection showed), not from the flow's orientation, which may be wrong in a capture that began
mid-connection. Messages are kept by the direction they came in and split into requests and
responses when the row is written, so those that came before the connection showed its client
still land on the right side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from protoscope.decoders.api import FlowContext, Pdu
from protoscope.decoders.http2 import frames as fr
from protoscope.decoders.http2.header_block import Header
from protoscope.decoders.http2.records import FrameRecord, MessageRecord
from protoscope.decoders.protobuf.schema import SchemaSet

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
    request_headers: list[Header] = field(default_factory=list)
    response_headers: list[Header] = field(default_factory=list)
    trailers: list[Header] = field(default_factory=list)
    messages: list[tuple[bool, dict[str, object]]] = field(default_factory=list)
    """(came from the flow's client side, the message's row item), in capture order."""
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
        out[h.name] = value if prev is None else [*(prev if isinstance(prev, list) else [prev]), value]
    return out


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
    last_client_stream: int = 0
    awaiting: list[Call] = field(default_factory=list)
    """Calls of this flow with `awaiting_server` set."""


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

    def _call(self, ctx: FlowContext, sid: int) -> Call:
        key = (ctx.flow, sid)
        call = self.calls.get(key)
        if call is None:
            call = self.calls[key] = Call(ctx.flow, sid, ctx.time, ctx.frame - 1)
            self.order.append(call)
        return call

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
        if rec.from_client is not None:
            f.client_side = rec.from_client == ctx.from_client
        from_client = ctx.from_client == f.client_side
        if isinstance(rec, MessageRecord):
            call = self._call(ctx, rec.stream_id)
            if rec.trailers is not None:
                call.web_trailers = rec.trailers
                self._status(
                    call, [Header(k, v, (0, 0), "literal") for k, v in rec.trailers], ctx, "trailers"
                )
                return
            item = {
                "frame": ctx.frame,
                "time": ctx.time,
                "compressed": rec.compressed,
                "size": rec.size,
                "uncompressed_size": None if rec.data is None else len(rec.data),
                "type": rec.type_name,
                "message": rec.content,
            }
            call.messages.append((ctx.from_client, item))
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
                call = self._call(ctx, sid)
                if not call.request_headers:
                    call.request_headers = headers
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
            call = self._call(ctx, sid)
            if rec.end_stream:
                call.server_done = True
                # Trailers-Only: the server's one header block ends the call (a call that began
                # before the capture may have had its response headers and messages unseen).
                responded = call.response_headers or any(side != f.client_side for side, _ in call.messages)
                only = call.request_headers and not responded
                self._status(call, headers, ctx, "trailers-only" if only else "trailers")
            elif not call.response_headers and _value(headers, "grpc-status") is None:
                call.response_headers = headers
            else:
                self._status(call, headers, ctx, "trailers")
        elif rec.type == fr.DATA and rec.end_stream and not from_client:
            ended = self.calls.get((ctx.flow, rec.stream_id))
            if ended is not None:
                ended.server_done = True
        elif rec.type == fr.RST_STREAM:
            self._reset(rec, ctx, f, from_client)
        elif rec.type == fr.GOAWAY:
            for (flow, sid), call in self.calls.items():
                if flow == ctx.flow and call.end is None and sid > (rec.last_stream_id or 0):
                    call.end = ctx.time
                    call.ended_by = "goaway"

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
            f.awaiting.append(call)
        else:
            call.server_done = True

    @staticmethod
    def _server_frame(f: _Flow, rec: FrameRecord) -> None:
        """A server frame while calls of its flow wait for the server after a client's reset: the
        wait ends when the server ends its side of that stream, or sends on a stream the client
        opened after the reset (so it has read the reset, and will send no more on that stream)."""
        sid = rec.block_stream if rec.headers is not None else rec.stream_id
        whole = rec.headers is not None or rec.type == fr.DATA
        ends = rec.type == fr.RST_STREAM or (rec.end_stream and whole)
        for c in f.awaiting:
            mark = c.awaiting_server or 0
            if (sid == c.stream_id and ends) or (sid % 2 and sid > mark):
                c.awaiting_server = None
        f.awaiting = [c for c in f.awaiting if c.awaiting_server is not None]

    def _status(self, call: Call, headers: list[Header], ctx: FlowContext, how: str) -> None:
        call.trailers = headers
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
        done = [c for c in self.order if c.end is not None and c.awaiting_server is None]
        if not done:
            return []
        self.order = [c for c in self.order if c.end is None or c.awaiting_server is not None]
        for c in done:
            del self.calls[(c.flow, c.stream_id)]
        return list(zip([c.first_packet for c in done], self._rows(done), strict=True))

    def rows(self) -> list[dict[str, object]]:
        """Rows of every call not drained yet, in the order they started."""
        return self._rows(self.order)

    def rows_keyed(self) -> list[tuple[int, dict[str, object]]]:
        """rows() with the packet where each call was first seen."""
        return list(zip([c.first_packet for c in self.order], self.rows(), strict=True))

    def _rows(self, calls: list[Call]) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for c in calls:
            f = self.flows.get(c.flow) or _Flow()
            requests = [m for side, m in c.messages if side == f.client_side]
            responses = [m for side, m in c.messages if side != f.client_side]
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
                    "kind": self._kind(c, len(requests), len(responses)),
                    "kind_from": "schema" if (c.path or "") in self.schemas.methods else "observed",
                    "status": c.status,
                    "status_name": status_name(c.status),
                    "status_from": c.status_from,
                    "grpc_message": c.message,
                    "status_details": c.details,
                    "ended_by": c.ended_by,
                    "rst_stream_error": c.rst_stream_error,
                    "timeout": c.timeout,
                    "unknown_headers": sum(
                        not h.known for h in (*c.request_headers, *c.response_headers, *c.trailers)
                    ),
                    "request_metadata": _metadata(c.request_headers),
                    "response_metadata": _metadata(c.response_headers),
                    "trailers": _metadata(c.trailers)
                    if c.web_trailers is None
                    else {k: v for k, v in c.web_trailers if k not in RESERVED},
                    "requests": requests,
                    "responses": responses,
                    "start": c.start,
                    "end": c.end,
                    "duration": None if c.end is None else c.end - c.start,
                }
            )
        return out
