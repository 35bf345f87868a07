"""Protobuf schemas (descriptor sets) and schema-guided decoding with byte spans.

Message content comes from the official protobuf library (`ParseFromString` + `MessageToDict`),
so it is exactly what gRPC's own tooling would show. The detail tree walks the wire format
(wire.py) and names each field from the descriptor, keeping every field's byte span.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from protoscope.decoders.api import Field, Finding, LazyFields

from . import wire

if TYPE_CHECKING:  # the protobuf library is imported only when a schema is given (start-up time)
    from google.protobuf import descriptor_pb2
    from google.protobuf.descriptor import Descriptor


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
        self._pool: Any = None
        self.methods: dict[str, Method] = {}
        self._added: set[str] = set()
        self.add(files)

    @property
    def pool(self) -> Any:
        """The descriptor pool (google.protobuf's DescriptorPool), made on first use."""
        if self._pool is None:
            from google.protobuf import descriptor_pool

            self._pool = descriptor_pool.DescriptorPool()
        return self._pool

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
        from google.protobuf import descriptor_pb2
        from google.protobuf.message import DecodeError

        fds = descriptor_pb2.FileDescriptorSet()
        try:
            fds.ParseFromString(raw)
        except DecodeError as exc:
            raise SchemaError(f"not a FileDescriptorSet: {exc}") from exc
        self.add(fds.file)

    def __bool__(self) -> bool:
        return bool(self._added)


class RawContent:
    """The schema-less reading of a message as data (`raw_content`), made when first asked for:
    the calls report keeps the first and last messages of a long stream, and the findings report
    none, so most of a long stream's readings are never turned into data."""

    __slots__ = ("_fields", "_value")

    def __init__(self, fields: list[wire.WireField]) -> None:
        self._fields: list[wire.WireField] | None = fields
        self._value: dict[str, object] | None = None

    def get(self) -> dict[str, object]:
        if self._value is None:
            assert self._fields is not None
            self._value = raw_content(self._fields)
            self._fields = None
        return self._value


def content_of(reading: object) -> object:
    """A message's content, made now if it was left for later (`RawContent`)."""
    return reading.get() if isinstance(reading, RawContent) else reading


@dataclass(slots=True)
class Decoded:
    fields: Sequence[Field]
    content: object
    """JSON-like data: MessageToDict with a schema, else the schema-less reading (a `RawContent`,
    made on first use: `content_of`)."""
    findings: list[Finding]


def decode_message(data: bytes, desc: Descriptor | None, base: int = 0) -> Decoded:
    """Decode one message; spans are offset by `base`. The detail tree is built when first read."""
    findings: list[Finding] = []
    if desc is None:
        reading = wire.read(data)
        findings += reading_findings(reading)
        raw_fields = reading.fields
        return Decoded(
            LazyFields(lambda: [raw_field(f, base) for f in raw_fields]), RawContent(raw_fields), findings
        )
    from .typed import decode_typed

    return decode_typed(data, desc, base)


LIMIT_CODES = {
    "MAX_DEPTH": "protobuf.depth_limit",
    "MAX_FIELDS": "protobuf.field_limit",
    "MAX_WORK": "protobuf.work_limit",
}


def reading_findings(reading: wire.Reading) -> list[Finding]:
    """A schema-less reading's problems: the limits it hit, then why the bytes are malformed."""
    out = [Finding("warn", LIMIT_CODES[name], f"{name}: {what}") for name, what in reading.limits.items()]
    if reading.error is not None:
        out.append(Finding("warn", "protobuf.malformed", f"not a well-formed message: {reading.error}"))
    return out


def raw_content(fields: list[wire.WireField]) -> dict[str, object]:
    """The schema-less reading as data: {"1": value or [values], ...} by field number."""
    out: dict[str, list[object]] = {}
    for f in fields:
        out.setdefault(str(f.number), []).append(_raw_value(f))
    return {k: v[0] if len(v) == 1 else v for k, v in out.items()}


def _raw_value(f: wire.WireField) -> object:
    if f.kind in ("message", "group"):
        return raw_content(f.children)
    if isinstance(f.raw, int):
        return f.raw
    return str(f.view, "utf-8") if f.kind == "string" else f.view.hex()


def raw_field(f: wire.WireField, base: int) -> Field:
    span = (base + f.span[0], base + f.span[1])
    if f.kind in ("message", "group"):
        children = tuple(raw_field(c, base) for c in f.children)
        label = f"{f.number}: {f.kind}" + (
            " (or " + ", ".join(f.candidates[1:]) + ")" if len(f.candidates) > 1 else ""
        )
        return Field("protobuf.field", label, span, children)
    raw = f.raw
    value: object
    if not isinstance(raw, int):  # read from the message's bytes here, not copied into the tree
        value = _raw_value(f)
    elif f.kind == "varint":
        value = raw
    elif f.kind == "fixed64":
        value = f"{raw} (double {wire.as_double(raw)!r})"
    else:
        value = f"{raw} (float {wire.as_float(raw)!r})"
    text = f"{f.number}: {value!r}" if isinstance(value, str) else f"{f.number}: {value}"
    if f.kind == "varint" and isinstance(raw, int):
        signed = wire.zigzag(raw)
        text += f" (sint {signed})" if signed != raw else ""
    return Field("protobuf.field", text, span)
