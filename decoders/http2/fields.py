"""The fields the HTTP/2 decoder emits, declared as Wireshark's packet-http2.c registers them
(its hf_register_info), plus the gRPC and protobuf PDUs it hands on: those packages have no
decoder class of their own, so HTTP/2 declares their fields too."""

from __future__ import annotations

from protoscope.decoders.api import FieldInfo
from protoscope.decoders.grpc.fields import FIELDS as GRPC_FIELDS
from protoscope.decoders.protobuf.fields import FIELDS as PROTOBUF_FIELDS

from .frames import ERROR_CODES, SETTING_NAMES, TYPE_NAMES

FLAG_BITS = {0x01: "END_STREAM", 0x04: "END_HEADERS", 0x08: "PADDED", 0x20: "PRIORITY"}
"""The flag bits of DATA and HEADERS frames (RFC 9113 section 6); 0x01 means ACK on SETTINGS and PING."""

HTTP2_FIELDS: tuple[FieldInfo, ...] = (
    FieldInfo("http2", "HyperText Transfer Protocol 2", "protocol"),
    FieldInfo("http2.magic", "Magic", "string", "The client connection preface"),
    FieldInfo("http2.length", "Length", "uint", "Length of the frame payload"),
    FieldInfo("http2.type", "Type", "uint", "Frame type", strings=TYPE_NAMES),
    FieldInfo("http2.flags", "Flags", "uint", "Frame flags", bits=FLAG_BITS, base="hex", digits=2),
    FieldInfo("http2.streamid", "Stream Identifier", "uint", "Stream the frame belongs to (0: connection)"),
    FieldInfo("http2.data.data", "Data", "uint", "Length of a DATA frame's data"),
    FieldInfo("http2.header", "Header", "string", "One decoded header field: name and value"),
    FieldInfo("http2.header.name", "Name", "string"),
    FieldInfo("http2.header.value", "Value", "string"),
    FieldInfo("http2.headers.method", "Method", "string", ":method pseudo-header"),
    FieldInfo("http2.headers.path", "Path", "string", ":path pseudo-header"),
    FieldInfo("http2.headers.authority", "Authority", "string", ":authority pseudo-header"),
    FieldInfo("http2.headers.status", "Status", "uint", ":status pseudo-header (a number, as tshark)"),
    FieldInfo("http2.headers.content_type", "Content-Type", "string", "content-type header"),
    FieldInfo("http2.headers.weight", "Weight", "uint", "Stream priority weight"),
    FieldInfo("http2.exclusive", "Exclusive", "bool", "Stream dependency is exclusive"),
    FieldInfo("http2.stream_dependency", "Stream Dependency", "uint"),
    FieldInfo("http2.rst_stream.error", "Error", "uint", "RST_STREAM error code", strings=ERROR_CODES),
    FieldInfo("http2.settings", "Settings", "string", "One setting of a SETTINGS frame"),
    FieldInfo("http2.settings.id", "Settings Identifier", "uint", strings=SETTING_NAMES),
    FieldInfo("http2.settings.value", "Value", "uint"),
    FieldInfo("http2.push_promise.promised_stream_id", "Promised-Stream-ID", "uint"),
    FieldInfo("http2.ping", "Ping", "bytes", "PING opaque data (hex)"),
    FieldInfo("http2.goaway.last_stream_id", "Last-Stream-ID", "uint"),
    FieldInfo("http2.goaway.error", "Error", "uint", "GOAWAY error code", strings=ERROR_CODES),
    FieldInfo("http2.window_update.window_size_increment", "Window Size Increment", "uint"),
)

FIELDS: tuple[FieldInfo, ...] = HTTP2_FIELDS + GRPC_FIELDS + PROTOBUF_FIELDS
