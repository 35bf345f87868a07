"""Schema-guided decoding: a message's content from the official protobuf library, its detail tree
from the wire format named by the descriptor. Imported only when a schema is given, so that the
protobuf library stays out of a run without one (it costs ~30 ms of start-up)."""

from __future__ import annotations

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError

from protoscope.decoders.api import Field, Finding, LazyFields

from . import wire
from .schema import Decoded, raw_content, raw_field, reading_findings


def decode_typed(data: bytes, desc: Descriptor, base: int = 0) -> Decoded:
    """Decode one message of type `desc`; spans are offset by `base`."""
    findings: list[Finding] = []
    cls = message_factory.GetMessageClass(desc)
    msg = cls()
    content: object
    try:
        msg.ParseFromString(data)
        content = MessageToDict(msg)
    except (DecodeError, RecursionError, ValueError) as exc:
        findings.append(Finding("error", "protobuf.parse_failed", f"{desc.full_name}: {exc}"))
        reading = wire.read(data)
        findings += [f for f in reading_findings(reading) if f.code != "protobuf.malformed"]
        content = raw_content(reading.fields)

    def tree() -> list[Field]:
        return [_typed_field(f, desc, base) for f in wire.decode(data)[0]]

    return Decoded(LazyFields(tree), content, findings)


def _scalar(fd: FieldDescriptor, f: wire.WireField) -> object:
    t = fd.type
    v = f.value
    if isinstance(v, bytes):
        if t == FieldDescriptor.TYPE_STRING:
            return v.decode("utf-8", "replace")
        return v.hex()
    if t in (FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SINT64):
        return wire.zigzag(v)
    if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64):
        return wire.as_signed(v & 0xFFFF_FFFF_FFFF_FFFF, 64)
    if t == FieldDescriptor.TYPE_SFIXED32:
        return wire.as_signed(v, 32)
    if t == FieldDescriptor.TYPE_SFIXED64:
        return wire.as_signed(v, 64)
    if t == FieldDescriptor.TYPE_DOUBLE:
        return wire.as_double(v)
    if t == FieldDescriptor.TYPE_FLOAT:
        return wire.as_float(v)
    if t == FieldDescriptor.TYPE_BOOL:
        return bool(v)
    if t == FieldDescriptor.TYPE_ENUM:
        value = fd.enum_type.values_by_number.get(wire.as_signed(v & 0xFFFF_FFFF, 32))
        return value.name if value is not None else v
    return v


def _typed_field(f: wire.WireField, desc: Descriptor, base: int) -> Field:
    fd = desc.fields_by_number.get(f.number)
    if fd is None:
        return raw_field(f, base)
    name = f"pbf.{fd.full_name}"
    span = (base + f.span[0], base + f.span[1])
    if fd.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP) and f.wire_type in (
        wire.LEN,
        wire.SGROUP,
    ):
        sub = fd.message_type
        if f.kind not in ("message", "group") and f.value_span[1] > f.value_span[0]:
            return Field(name, f"{sub.full_name} (malformed)", span)
        return Field(name, sub.full_name, span, tuple(_typed_field(c, sub, base) for c in f.children))
    if f.wire_type == wire.LEN and fd.type not in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
        return Field(name, _packed(fd, f), span)
    return Field(name, _scalar(fd, f), span)


def _packed(fd: FieldDescriptor, f: wire.WireField) -> list[object]:
    """A packed repeated scalar field."""
    assert isinstance(f.value, bytes)
    raw = f.value
    values: list[object] = []
    fixed = {
        FieldDescriptor.TYPE_DOUBLE: 8,
        FieldDescriptor.TYPE_FIXED64: 8,
        FieldDescriptor.TYPE_SFIXED64: 8,
        FieldDescriptor.TYPE_FLOAT: 4,
        FieldDescriptor.TYPE_FIXED32: 4,
        FieldDescriptor.TYPE_SFIXED32: 4,
    }.get(fd.type)
    pos = 0
    try:
        while pos < len(raw):
            if fixed:
                one = int.from_bytes(raw[pos : pos + fixed], "little")
                pos += fixed
                wt = wire.I64 if fixed == 8 else wire.I32
            else:
                one, pos = wire.read_varint(raw, pos, len(raw))
                wt = wire.VARINT
            values.append(_scalar(fd, wire.WireField(f.number, wt, f.span, f.value_span, one)))
    except wire.WireError:
        values.append("<malformed>")
    return values
