"""The fields of protobuf messages carried by gRPC, as Wireshark's packet-protobuf.c names them.

With a schema, each message field is `pbf.<full name of the field>` (Wireshark's dynamic pbf.*
fields): those names depend on the loaded schemas, so the display filter accepts every name under
the `pbf.` prefix (DYNAMIC_PREFIXES)."""

from __future__ import annotations

from protoscope.decoders.api import FieldInfo

FIELDS: tuple[FieldInfo, ...] = (
    FieldInfo("protobuf", "Protocol Buffers", "protocol", "A message: its type or 'no schema'"),
    FieldInfo("protobuf.field", "Field", "string", "One field of a message read without a schema"),
    FieldInfo("pbf", "Protobuf fields", "protocol", "Parent of the pbf.<message field> names of a schema"),
)

DYNAMIC_PREFIXES: tuple[str, ...] = ("pbf.",)
"""Field names made from the loaded schemas: any name under these prefixes is a known field."""
