"""The fields of gRPC PDUs (messages and status), declared as Wireshark's packet-grpc.c names them.

grpc.status, grpc.path, grpc.method and grpc.service are ours: tshark 4.0 has none of them (it
shows the status only as the http2 header grpc-status). grpc.status is emitted on the packet that
carries the trailers; the other three are the display filter's virtual fields (inspector/fields.py).
"""

from __future__ import annotations

from protoscope.decoders.api import FieldInfo

from .status import STATUS_NAMES

FIELDS: tuple[FieldInfo, ...] = (
    FieldInfo("grpc", "gRPC", "protocol", "gRPC Remote Procedure Call"),
    FieldInfo("grpc.compressed_flag", "Compressed Flag", "uint", "1 when the message is compressed"),
    FieldInfo("grpc.message_length", "Message Length", "uint", "Length of the message after the prefix"),
    FieldInfo("grpc.encoding", "Encoding", "string", "grpc-encoding: the message compression"),
    FieldInfo("grpc.status", "Status", "uint", "grpc-status of the call's trailers", strings=STATUS_NAMES),
    FieldInfo("grpc.message", "Message", "string", "grpc-message of the call's trailers"),
)
