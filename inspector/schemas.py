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
    for proto in protos:
        if not Path(proto).is_file():
            raise SchemaError(f"no such .proto file: {proto}")
        parent = str(Path(proto).resolve().parent)
        if not any(Path(proto).resolve().is_relative_to(Path(r).resolve()) for r in roots):
            roots.append(parent)
    for root in roots:
        if not Path(root).is_dir():
            raise SchemaError(f"no such --proto-path directory: {root}")
    names = []
    for proto in protos:
        full = Path(proto).resolve()
        home = next(Path(r).resolve() for r in roots if full.is_relative_to(Path(r).resolve()))
        names.append(str(full.relative_to(home)))
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
