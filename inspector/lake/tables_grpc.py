"""The tables of `--report calls`: `calls` (a row per gRPC call) and `grpc_messages` (a row per
message of a call, its decoded content as JSON).
"""

from __future__ import annotations

from typing import Any

from .shape import (
    FINDINGS_DOC,
    Row,
    Shape,
    _address_of,
    _messages,
    _port_of,
    from_caller,
    from_item,
    from_key,
)

CALLS_SOURCE = "--report calls"
CALLS = Shape(
    "calls",
    CALLS_SOURCE,
    "One row per gRPC call (an HTTP/2 stream that carried one), in the order of --report calls.",
    [
        from_caller("call", "int64", "0-based position in --report calls (what --call N takes)"),
        from_key("flow", "int64", "the TCP flow (flows.flow)"),
        from_key("stream_id", "int64", "HTTP/2 stream identifier (http2.streamid)"),
        from_key("client", "string", '"ip:port" of the HTTP/2 client'),
        from_item("client_addr", "string", "the client's IP address", _address_of("client")),
        from_item("client_port", "uint16", "the client's port", _port_of("client")),
        from_key("server", "string", '"ip:port" of the HTTP/2 server'),
        from_item("server_addr", "string", "the server's IP address", _address_of("server")),
        from_item("server_port", "uint16", "the server's port", _port_of("server")),
        from_key("path", "string", 'the :path, "/package.Service/Method"'),
        from_key("path_from", "string", "header (:path) or value (read from an unseen HPACK entry)"),
        from_key("service", "string", "the path's service"),
        from_key("method", "string", "the path's method"),
        from_key("kind", "string", "unary, client_streaming, server_streaming or bidi"),
        from_key("kind_from", "string", "schema or observed"),
        from_key("status", "int32", "grpc-status (0 OK); null when none came"),
        from_key("status_name", "string", "the status code's name: OK, UNAVAILABLE, DEADLINE_EXCEEDED ..."),
        from_key("status_from", "string", "trailers or inferred"),
        from_key("grpc_message", "string", "grpc-message (percent-decoded)"),
        from_key("status_details", "json", "grpc-status-details-bin decoded (google.rpc.Status)"),
        from_key(
            "ended_by", "string", "trailers, trailers-only, rst_stream, goaway, calls_limit; null while open"
        ),
        from_key("rst_stream_error", "string", "the RST_STREAM error code's name"),
        from_key("timeout", "seconds", "grpc-timeout, seconds"),
        from_key("unknown_headers", "int64", "headers from HPACK entries the capture did not show"),
        from_key("request_metadata", "json", "the request's custom metadata: name -> value (-bin as hex)"),
        from_key("response_metadata", "json", "the response headers' custom metadata"),
        from_key("trailers", "json", "the trailers' custom metadata"),
        from_item(
            "requests",
            "int64",
            "request messages (listed in grpc_messages, plus requests_omitted)",
            _messages("requests"),
        ),
        from_item(
            "responses",
            "int64",
            "response messages (listed in grpc_messages, plus responses_omitted)",
            _messages("responses"),
        ),
        from_key(
            "requests_omitted", "int64", "request messages counted but not listed (grpc.messages_limit)"
        ),
        from_key("responses_omitted", "int64", "response messages counted but not listed"),
        from_key("start", "timestamp", "the request headers' time"),
        from_key("end", "timestamp", "when the call ended; null while open"),
        from_key("duration", "seconds", "end - start, seconds"),
        from_key("findings", "int32", FINDINGS_DOC, count=True),
        from_key("grpcurl", "string", "a grpcurl command that makes the same call"),
    ],
)

GRPC_MESSAGES = Shape(
    "grpc_messages",
    CALLS_SOURCE,
    "One row per gRPC message a call lists (its `requests` then its `responses`).",
    [
        from_caller("call", "int64", "the call (calls.call)"),
        from_caller("flow", "int64", "the call's flow"),
        from_caller("stream_id", "int64", "the call's HTTP/2 stream"),
        from_caller("path", "string", "the call's path"),
        from_caller("direction", "string", "request or response"),
        from_caller(
            "index",
            "int64",
            "0-based position in the call's list of that direction (messages left out between the "
            "first and the last kept are not counted)",
        ),
        from_key("frame", "int64", "the frame that completed the message"),
        from_key("time", "timestamp", "that frame's time"),
        from_key("compressed", "bool", "the gRPC compressed flag"),
        from_key("size", "int64", "bytes of the message as sent (grpc.message_length)"),
        from_key("uncompressed_size", "int64", "bytes once inflated; null when it could not be"),
        from_key("type", "string", "the protobuf message type a schema gave; null without one"),
        from_key("message", "json", "the decoded content (field numbers or names -> values)"),
    ],
)


def split_calls(position: int, row: Any) -> dict[str, list[Row]]:
    call = CALLS.row(row, {"call": position})
    messages: list[Row] = []
    if isinstance(row, dict):
        parent = {
            "call": position,
            "flow": call["flow"],
            "stream_id": call["stream_id"],
            "path": call["path"],
        }
        for key, direction in (("requests", "request"), ("responses", "response")):
            messages += GRPC_MESSAGES.rows(row.get(key), {**parent, "direction": direction})
    return {"calls": [call], "grpc_messages": messages}
