"""Loading protobuf schemas for the decoders: .proto files, descriptor sets, server reflection.

This is I/O (files, a compiler run, a network call), so it lives here and hands the decoders a
ready SchemaSet. .proto files are compiled in-process by grpcio-tools' bundled protoc, with its
copy of the well-known types on the import path.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from google.protobuf import descriptor_pb2

from protoscope.decoders.protobuf.schema import SchemaError, SchemaSet

REFLECTION_TIMEOUT = 10.0
"""Seconds to wait for a reflection server."""


def compile_protos(protos: Sequence[str], proto_paths: Sequence[str] = ()) -> bytes:
    """A serialized FileDescriptorSet of the given .proto files and everything they import."""
    import importlib.resources

    from grpc_tools import protoc

    include = str(importlib.resources.files("grpc_tools") / "_proto")
    roots = list(proto_paths)
    for root in roots:
        if not Path(root).is_dir():
            raise SchemaError(f"no such --proto-path directory: {root}")
    names = []
    for proto in protos:
        name = proto_name(proto, roots)
        if name is None:
            where = ", ".join(["the current directory", *roots])
            raise SchemaError(f"no such .proto file: {proto} (looked in {where})")
        names.append(name)
    if not protos:  # --proto-path alone: every .proto under the directories
        for root in roots:
            names += [str(p.relative_to(root)) for p in sorted(Path(root).rglob("*.proto"))]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        args = ["protoc", f"--descriptor_set_out={out}", "--include_imports"]
        args += [f"-I{r}" for r in roots] + [f"-I{include}"] + names
        code = protoc.main(args)
        if code != 0 or not out.exists():
            raise SchemaError(f"protoc could not compile {' '.join(names)} (its messages are above)")
        return out.read_bytes()


def proto_name(proto: str, roots: list[str]) -> str | None:
    """The name protoc knows a `--proto` file by, as protoc and grpcurl find it: a file on disk
    (from the current directory) by its path under the import root that holds it (its own
    directory becomes one when none does, appended to `roots`); otherwise a name looked up under
    each `--proto-path` in turn (`--proto demo.proto --proto-path protos`). None: not found."""
    path = Path(proto)
    if path.is_file():
        full = path.resolve()
        home = next((Path(r).resolve() for r in roots if full.is_relative_to(Path(r).resolve())), None)
        if home is None:
            roots.append(str(full.parent))
            home = full.parent
        return full.relative_to(home).as_posix()
    if path.is_absolute():
        return None
    for root in roots:
        if (Path(root) / path).is_file():
            return path.as_posix()
    return None


def reflect(target: str, timeout: float = REFLECTION_TIMEOUT) -> list[descriptor_pb2.FileDescriptorProto]:
    """Every file a gRPC server describes through reflection (v1, then v1alpha)."""
    import grpc
    from grpc_reflection.v1alpha import reflection_pb2 as v1alpha
    from grpc_reflection.v1alpha import reflection_pb2_grpc as v1alpha_grpc

    try:
        from grpc_reflection.v1 import reflection_pb2 as v1  # type: ignore[import-not-found,unused-ignore]
        from grpc_reflection.v1 import reflection_pb2_grpc as v1_grpc  # type: ignore[import-not-found,unused-ignore]

        versions = [(v1, v1_grpc), (v1alpha, v1alpha_grpc)]
    except ImportError:
        versions = [(v1alpha, v1alpha_grpc)]
    last_error: Exception | None = None
    with grpc.insecure_channel(target) as channel:
        for pb, stubs in versions:
            try:
                return _reflect_with(channel, pb, stubs, timeout)
            except grpc.RpcError as exc:
                last_error = exc
    code = last_error.code().name if isinstance(last_error, grpc.Call) else "no answer"
    raise SchemaError(f"reflection on {target} failed: {code}")


def _reflect_with(
    channel: object, pb: object, stubs: object, timeout: float
) -> list[descriptor_pb2.FileDescriptorProto]:
    stub = stubs.ServerReflectionStub(channel)  # type: ignore[attr-defined]
    request = pb.ServerReflectionRequest  # type: ignore[attr-defined]
    services = [
        s.name
        for r in stub.ServerReflectionInfo(iter([request(list_services="")]), timeout=timeout)
        for s in r.list_services_response.service
    ]
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    asks = [
        request(file_containing_symbol=name) for name in services if not name.startswith("grpc.reflection")
    ]
    for r in stub.ServerReflectionInfo(iter(asks), timeout=timeout):
        for raw in r.file_descriptor_response.file_descriptor_proto:
            f = descriptor_pb2.FileDescriptorProto.FromString(raw)
            files[f.name] = f
    return list(files.values())


def load_schemas(
    protos: Sequence[str] = (),
    proto_paths: Sequence[str] = (),
    descriptor_sets: Sequence[str] = (),
    reflect_targets: Sequence[str] = (),
) -> SchemaSet:
    schemas = SchemaSet()
    if protos or proto_paths:
        schemas.add_descriptor_set(compile_protos(protos, proto_paths))
    for path in descriptor_sets:
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise SchemaError(f"cannot read descriptor set {path}: {exc.strerror}") from exc
        schemas.add_descriptor_set(raw)
    for target in reflect_targets:
        schemas.add(reflect(target))
    return schemas


# -- describe: the loaded schemas as `grpcurl list` / `grpcurl describe` show them ----------------

SCALAR_NAMES = {
    descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE: "double",
    descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT: "float",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT64: "int64",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT64: "uint64",
    descriptor_pb2.FieldDescriptorProto.TYPE_INT32: "int32",
    descriptor_pb2.FieldDescriptorProto.TYPE_FIXED64: "fixed64",
    descriptor_pb2.FieldDescriptorProto.TYPE_FIXED32: "fixed32",
    descriptor_pb2.FieldDescriptorProto.TYPE_BOOL: "bool",
    descriptor_pb2.FieldDescriptorProto.TYPE_STRING: "string",
    descriptor_pb2.FieldDescriptorProto.TYPE_BYTES: "bytes",
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT32: "uint32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED32: "sfixed32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED64: "sfixed64",
    descriptor_pb2.FieldDescriptorProto.TYPE_SINT32: "sint32",
    descriptor_pb2.FieldDescriptorProto.TYPE_SINT64: "sint64",
}
"""The .proto spelling of each scalar field type (message, enum and group types are named)."""
INDENT = "  "


def services(schemas: SchemaSet) -> list[str]:
    """The services of the loaded schemas, sorted: `grpcurl list`."""
    return sorted({path.lstrip("/").rsplit("/", 1)[0] for path in schemas.methods})


def describe(schemas: SchemaSet, symbol: str | None = None) -> list[str]:
    """`grpcurl list` without a symbol (the services); with one, `grpcurl describe SYMBOL`: a
    service with its methods' request and response types, a method, a message with its fields or
    an enum with its values, as .proto text. A symbol may start with a dot (`.demo.Person`) and a
    method may be written `pkg.Svc/Method`. KeyError names an unknown symbol."""
    if symbol is None:
        return services(schemas)
    name = symbol.strip().lstrip(".").replace("/", ".")
    pool = schemas.pool
    for kind, find, text in (
        ("a service", pool.FindServiceByName, _service),
        ("a method", pool.FindMethodByName, _method_line),
        ("a message", pool.FindMessageTypeByName, _message),
        ("an enum", pool.FindEnumTypeByName, _enum),
    ):
        try:
            found = find(name)
        except KeyError:
            continue
        return [f"{name} is {kind}:", *text(found)]
    known = ", ".join(services(schemas)) or "none"
    raise KeyError(f"symbol not found: {symbol} (services: {known})")


def _type_name(field: descriptor_pb2.FieldDescriptorProto) -> str:
    return SCALAR_NAMES.get(field.type) or field.type_name


def _method_line(method: object) -> list[str]:
    proto = descriptor_pb2.MethodDescriptorProto()
    method.CopyToProto(proto)  # type: ignore[attr-defined]
    return [_rpc(proto)]


def _rpc(m: descriptor_pb2.MethodDescriptorProto) -> str:
    request = ("stream " if m.client_streaming else "") + m.input_type
    response = ("stream " if m.server_streaming else "") + m.output_type
    return f"rpc {m.name} ( {request} ) returns ( {response} );"


def _service(service: object) -> list[str]:
    proto = descriptor_pb2.ServiceDescriptorProto()
    service.CopyToProto(proto)  # type: ignore[attr-defined]
    return [f"service {proto.name} {{", *(INDENT + _rpc(m) for m in proto.method), "}"]


def _syntax(descriptor: object) -> str:
    proto = descriptor_pb2.FileDescriptorProto()
    descriptor.file.CopyToProto(proto)  # type: ignore[attr-defined]
    return proto.syntax or "proto2"


def _message(message: object) -> list[str]:
    proto = descriptor_pb2.DescriptorProto()
    message.CopyToProto(proto)  # type: ignore[attr-defined]
    return _message_lines(proto, _syntax(message))


def _field_line(
    f: descriptor_pb2.FieldDescriptorProto, syntax: str, maps: dict[str, descriptor_pb2.DescriptorProto]
) -> str:
    entry = maps.get(f.type_name.rsplit(".", 1)[-1]) if f.type_name else None
    if entry is not None and f.label == f.LABEL_REPEATED:
        key, value = entry.field[0], entry.field[1]
        return f"map<{_type_name(key)}, {_type_name(value)}> {f.name} = {f.number};"
    if f.label == f.LABEL_REPEATED:
        label = "repeated "
    elif f.label == f.LABEL_REQUIRED:
        label = "required "
    elif syntax == "proto2" or f.proto3_optional:
        label = "optional "
    else:
        label = ""
    return f"{label}{_type_name(f)} {f.name} = {f.number};"


def _message_lines(proto: descriptor_pb2.DescriptorProto, syntax: str) -> list[str]:
    maps = {n.name: n for n in proto.nested_type if n.options.map_entry}
    body: list[str] = []
    oneofs: dict[int, list[str]] = {}
    for f in proto.field:
        line = _field_line(f, syntax, maps)
        if f.HasField("oneof_index") and not f.proto3_optional:
            if f.oneof_index not in oneofs:
                oneofs[f.oneof_index] = []
                body.append(f"\0oneof {f.oneof_index}")  # where the oneof is written
            oneofs[f.oneof_index].append(line)
        else:
            body.append(line)
    lines = [f"message {proto.name} {{"]
    for line in body:
        if line.startswith("\0oneof "):
            k = int(line.split()[1])
            lines.append(f"{INDENT}oneof {proto.oneof_decl[k].name} {{")
            lines += [INDENT * 2 + x for x in oneofs[k]]
            lines.append(INDENT + "}")
        else:
            lines.append(INDENT + line)
    for nested in proto.nested_type:
        if not nested.options.map_entry:
            lines += [INDENT + x for x in _message_lines(nested, syntax)]
    for enum in proto.enum_type:
        lines += [INDENT + x for x in _enum_lines(enum)]
    return [*lines, "}"]


def _enum(enum: object) -> list[str]:
    proto = descriptor_pb2.EnumDescriptorProto()
    enum.CopyToProto(proto)  # type: ignore[attr-defined]
    return _enum_lines(proto)


def _enum_lines(proto: descriptor_pb2.EnumDescriptorProto) -> list[str]:
    return [f"enum {proto.name} {{", *(f"{INDENT}{v.name} = {v.number};" for v in proto.value), "}"]
