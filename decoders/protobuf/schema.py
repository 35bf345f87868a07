"""Protobuf schemas (descriptor sets) and schema-guided decoding with byte spans.

Message content comes from the official protobuf library (`ParseFromString` + `MessageToDict`),
so it is exactly what gRPC's own tooling would show. The detail tree walks the wire format
(wire.py) and names each field from the descriptor, keeping every field's byte span.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError

from protoscope.decoders.api import Field, Finding, LazyFields

from . import wire


class SchemaError(Exception):
    """A descriptor set that cannot be loaded (one line for stderr)."""


@dataclass(frozen=True, slots=True)
class Method:
    path: str
    """"/package.Service/Method", as in gRPC's :path."""
    input: Descriptor
    output: Descriptor
    client_streaming: bool
    server_streaming: bool

    @property
    def kind(self) -> str:
        return {
            (False, False): "unary",
            (True, False): "client_streaming",
            (False, True): "server_streaming",
            (True, True): "bidi",
        }[(self.client_streaming, self.server_streaming)]


class SchemaSet:
    """Message types and gRPC methods from any number of FileDescriptorProtos."""

    def __init__(self, files: Iterable[descriptor_pb2.FileDescriptorProto] = ()) -> None:
        self.pool = descriptor_pool.DescriptorPool()
        self.methods: dict[str, Method] = {}
        self._added: set[str] = set()
        self.add(files)

    def add(self, files: Iterable[descriptor_pb2.FileDescriptorProto]) -> None:
        pending = {f.name: f for f in files if f.name not in self._added}
        while pending:  # dependencies first
            ready = [f for f in pending.values() if all(d in self._added for d in f.dependency)]
            if not ready:
                missing = sorted({d for f in pending.values() for d in f.dependency if d not in self._added})
                raise SchemaError(f"schema files import what is not given: {', '.join(missing)}")
            for f in ready:
                try:
                    self.pool.Add(f)
                except (TypeError, ValueError) as exc:
                    raise SchemaError(f"{f.name}: {exc}") from exc
                self._added.add(f.name)
                del pending[f.name]
                self._index_services(f)

    def _index_services(self, f: descriptor_pb2.FileDescriptorProto) -> None:
        package = f.package + "." if f.package else ""
        for service in f.service:
            desc = self.pool.FindServiceByName(package + service.name)
            for method in desc.methods:
                path = f"/{desc.full_name}/{method.name}"
                self.methods[path] = Method(
                    path,
                    method.input_type,
                    method.output_type,
                    bool(method.client_streaming),
                    bool(method.server_streaming),
                )

    def add_descriptor_set(self, raw: bytes) -> None:
        fds = descriptor_pb2.FileDescriptorSet()
        try:
            fds.ParseFromString(raw)
        except DecodeError as exc:
            raise SchemaError(f"not a FileDescriptorSet: {exc}") from exc
        self.add(fds.file)

    def __bool__(self) -> bool:
        return bool(self._added)


@dataclass(slots=True)
class Decoded:
    fields: Sequence[Field]
    content: object
    """JSON-like data: MessageToDict with a schema, else the schema-less reading."""
    findings: list[Finding]


def decode_message(data: bytes, desc: Descriptor | None, base: int = 0) -> Decoded:
    """Decode one message; spans are offset by `base`. The detail tree is built when first read."""
    findings: list[Finding] = []
    if desc is None:
        raw_fields, error = wire.decode(data)
        if error is not None:
            findings.append(Finding("warn", "protobuf.malformed", f"not a well-formed message: {error}"))
        return Decoded(
            LazyFields(lambda: [_raw_field(f, base) for f in raw_fields]), raw_content(raw_fields), findings
        )
    cls = message_factory.GetMessageClass(desc)
    msg = cls()
    content: object
    try:
        msg.ParseFromString(data)
        content = MessageToDict(msg)
    except (DecodeError, RecursionError, ValueError) as exc:
        findings.append(Finding("error", "protobuf.parse_failed", f"{desc.full_name}: {exc}"))
        content = raw_content(wire.decode(data)[0])

    def tree() -> list[Field]:
        return [_typed_field(f, desc, base) for f in wire.decode(data)[0]]

    return Decoded(LazyFields(tree), content, findings)


def raw_content(fields: list[wire.WireField]) -> dict[str, object]:
    """The schema-less reading as data: {"1": value or [values], ...} by field number."""
    out: dict[str, list[object]] = {}
    for f in fields:
        out.setdefault(str(f.number), []).append(_raw_value(f))
    return {k: v[0] if len(v) == 1 else v for k, v in out.items()}


def _raw_value(f: wire.WireField) -> object:
    if f.kind in ("message", "group"):
        return raw_content(f.children)
    if isinstance(f.value, bytes):
        return f.value.decode("utf-8") if f.kind == "string" else f.value.hex()
    return f.value


def _raw_field(f: wire.WireField, base: int) -> Field:
    span = (base + f.span[0], base + f.span[1])
    if f.kind in ("message", "group"):
        children = tuple(_raw_field(c, base) for c in f.children)
        label = f"{f.number}: {f.kind}" + (
            " (or " + ", ".join(f.candidates[1:]) + ")" if len(f.candidates) > 1 else ""
        )
        return Field("protobuf.field", label, span, children)
    if f.kind == "string":
        assert isinstance(f.value, bytes)
        value: object = f.value.decode("utf-8")
    elif isinstance(f.value, bytes):
        value = f.value.hex()
    elif f.kind == "varint":
        value = f.value
    elif f.kind == "fixed64":
        value = f"{f.value} (double {wire.as_double(f.value)!r})"
    else:
        value = f"{f.value} (float {wire.as_float(f.value)!r})"
    text = f"{f.number}: {value!r}" if isinstance(value, str) else f"{f.number}: {value}"
    if f.kind == "varint":
        signed = wire.zigzag(f.value) if isinstance(f.value, int) else 0
        text += f" (sint {signed})" if signed != f.value else ""
    return Field("protobuf.field", text, span)


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
        return _raw_field(f, base)
    name = f"pbf.{fd.full_name}"
    span = (base + f.span[0], base + f.span[1])
    if fd.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP) and f.wire_type in (
        wire.LEN,
        wire.SGROUP,
    ):
        sub = fd.message_type
        if f.kind not in ("message", "group") and f.value:
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
