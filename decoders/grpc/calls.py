"""The gRPC call table (`--report calls`): one row per HTTP/2 stream that carried a gRPC call.

Built from the HTTP/2 decoder's records in frame order: request headers open a call, messages
join it by stream, response headers, trailers, RST_STREAM or GOAWAY end it. Streams interleaved
on one connection stay apart because calls are keyed by (flow, stream id).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from protoscope.decoders.api import FlowContext, Pdu
from protoscope.decoders.http2 import frames as fr
from protoscope.decoders.http2.header_block import Header
from protoscope.decoders.http2.records import FrameRecord, MessageRecord
from protoscope.decoders.protobuf.schema import SchemaSet

from .status import binary_value, grpc_message, grpc_timeout, parse_status, status_details, status_name

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
    authority: str | None = None
    request_headers: list[Header] = field(default_factory=list)
    response_headers: list[Header] = field(default_factory=list)
    trailers: list[Header] = field(default_factory=list)
    requests: list[dict[str, object]] = field(default_factory=list)
    responses: list[dict[str, object]] = field(default_factory=list)
    end: float | None = None
    status: int | None = None
    message: str | None = None
    details: dict[str, object] | None = None
    ended_by: str | None = None
    """"trailers", "trailers-only", "rst_stream", "goaway" or None while open at capture end."""
    timeout: float | None = None
    client_done: bool = False
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


class CallAnalysis:
    """Analysis plugin: `--report calls`."""

    name: ClassVar[str] = "calls"

    def __init__(self, schemas: SchemaSet | None = None) -> None:
        self.schemas = schemas or SchemaSet()
        self.calls: dict[tuple[int, int], Call] = {}
        self.order: list[Call] = []

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

    def feed(self, pdu: Pdu, ctx: FlowContext) -> None:
        rec = pdu.record
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
                "type": rec.type_name,
                "message": rec.content,
            }
            (call.requests if ctx.from_client else call.responses).append(item)
        elif isinstance(rec, FrameRecord):
            self._frame(rec, ctx)

    def _frame(self, rec: FrameRecord, ctx: FlowContext) -> None:
        if rec.headers is not None:
            headers = list(rec.headers)
            sid = rec.block_stream
            # A call is known by its stream, by a gRPC content-type, or, in a capture that began
            # mid-connection, by headers that could not be decoded (they may hide the content-type).
            known = (ctx.flow, sid) in self.calls or any(not h.known for h in headers)
            ctype = _value(headers, "content-type")
            if ctx.from_client:
                if not known and not (ctype or "").startswith("application/grpc"):
                    return
                call = self._call(ctx, sid)
                if not call.request_headers:
                    call.request_headers = headers
                    call.path = _value(headers, ":path")
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
            if not call.response_headers and _value(headers, "grpc-status") is None:
                call.response_headers = headers
            elif not call.response_headers and rec.end_stream:
                call.response_headers = headers
                self._status(call, headers, ctx, "trailers-only")
            else:
                self._status(call, headers, ctx, "trailers")
        elif rec.type == fr.RST_STREAM:
            reset = self.calls.get((ctx.flow, rec.stream_id))
            if reset is not None and reset.end is None:
                reset.end = ctx.time
                reset.ended_by = "rst_stream"
                reset.message = fr.ERROR_CODES.get(rec.error_code or 0, str(rec.error_code))
        elif rec.type == fr.GOAWAY:
            for (flow, sid), call in self.calls.items():
                if flow == ctx.flow and call.end is None and sid > (rec.last_stream_id or 0):
                    call.end = ctx.time
                    call.ended_by = "goaway"

    def _status(self, call: Call, headers: list[Header], ctx: FlowContext, how: str) -> None:
        call.trailers = headers  # a trailers-only response's one block holds the trailers too
        raw = _value(headers, "grpc-status")
        call.status = parse_status(raw) if raw is not None else None
        msg = _value(headers, "grpc-message")
        call.message = grpc_message(msg) if msg is not None else None
        details = _value(headers, "grpc-status-details-bin")
        if details is not None:
            blob = binary_value(details)
            call.details = status_details(blob) if blob is not None else None
        call.end = ctx.time
        call.ended_by = how

    def _kind(self, call: Call) -> str:
        method = self.schemas.methods.get(call.path or "")
        if method is not None:
            return method.kind
        many_in, many_out = len(call.requests) > 1, len(call.responses) > 1
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
        done = [c for c in self.order if c.end is not None]
        if not done:
            return []
        self.order = [c for c in self.order if c.end is None]
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
            service, _, method = (c.path or "").lstrip("/").rpartition("/")
            out.append(
                {
                    "flow": c.flow,
                    "stream_id": c.stream_id,
                    "path": c.path,
                    "service": service or None,
                    "method": method or None,
                    "kind": self._kind(c),
                    "kind_from": "schema" if (c.path or "") in self.schemas.methods else "observed",
                    "status": c.status,
                    "status_name": status_name(c.status),
                    "grpc_message": c.message,
                    "status_details": c.details,
                    "ended_by": c.ended_by,
                    "timeout": c.timeout,
                    "unknown_headers": sum(
                        not h.known for h in (*c.request_headers, *c.response_headers, *c.trailers)
                    ),
                    "request_metadata": _metadata(c.request_headers),
                    "response_metadata": _metadata(c.response_headers),
                    "trailers": _metadata(c.trailers)
                    if c.web_trailers is None
                    else {k: v for k, v in c.web_trailers if k not in RESERVED},
                    "requests": c.requests,
                    "responses": c.responses,
                    "start": c.start,
                    "end": c.end,
                    "duration": None if c.end is None else c.end - c.start,
                }
            )
        return out
