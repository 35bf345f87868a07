"""The fields the HTTP/1.x, SIP and WebSocket decoders emit, named as Wireshark's packet-http.c,
packet-sip.c and packet-websocket.c register them (HTTP and SIP share the message grammar, so
their fields are made from one list)."""

from __future__ import annotations

from protoscope.decoders.api import FieldInfo
from protoscope.decoders.grpc.fields import FIELDS as GRPC_FIELDS
from protoscope.decoders.protobuf.fields import FIELDS as PROTOBUF_FIELDS

OPCODES = {0: "Continuation", 1: "Text", 2: "Binary", 8: "Connection Close", 9: "Ping", 10: "Pong"}
"""RFC 6455 section 11.8 opcodes with Wireshark's names. A copy of decoder.WS_OPCODES: the decoder
imports this module, so this one cannot import the decoder."""


def _message_fields(p: str, title: str) -> tuple[FieldInfo, ...]:
    return (
        FieldInfo(p, title, "protocol"),
        FieldInfo(f"{p}.request.line", "Request line", "string"),
        FieldInfo(f"{p}.request.method", "Method", "string"),
        FieldInfo(f"{p}.request.uri", "Request URI", "string"),
        FieldInfo(f"{p}.response.line", "Status line", "string"),
        FieldInfo(f"{p}.response.code", "Status Code", "uint"),
        FieldInfo(f"{p}.header", "Header", "string", "One header line: name and value"),
        FieldInfo(f"{p}.file_data", "File Data", "string", "The body: its size"),
    )


HTTP_FIELDS = _message_fields("http", "Hypertext Transfer Protocol")
SIP_FIELDS = _message_fields("sip", "Session Initiation Protocol")
WEBSOCKET_FIELDS: tuple[FieldInfo, ...] = (
    FieldInfo("websocket", "WebSocket", "protocol"),
    FieldInfo("websocket.fin", "Fin", "bool"),
    FieldInfo("websocket.opcode", "Opcode", "uint", strings=OPCODES),
    FieldInfo("websocket.mask", "Mask", "bool"),
    FieldInfo("websocket.payload_length", "Payload length", "uint"),
    FieldInfo("websocket.payload.text", "Text", "string", "A text message (RFC 6455 opcode 1)"),
)

FIELDS: tuple[FieldInfo, ...] = HTTP_FIELDS + SIP_FIELDS + WEBSOCKET_FIELDS + GRPC_FIELDS + PROTOBUF_FIELDS
"""Both decoders of the package declare all, with gRPC-Web's gRPC and protobuf PDUs."""
