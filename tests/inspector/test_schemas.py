"""Schemas from .proto files, directories, descriptor sets and a live server's reflection."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection

from protoscope.decoders.protobuf.schema import SchemaError
from protoscope.inspector.cli import main
from protoscope.inspector.schemas import compile_protos, describe, load_schemas
from tests.conftest import SAMPLES

PROTO = SAMPLES / "grpc" / "demo.proto"
METHODS = {"/demo.Directory/Get", "/demo.Directory/List", "/demo.Directory/Upload", "/demo.Directory/Chat"}


def test_proto_file_and_directory() -> None:
    assert set(load_schemas([str(PROTO)]).methods) == METHODS
    schemas = load_schemas(proto_paths=[str(PROTO.parent)])
    assert set(schemas.methods) == METHODS
    assert schemas.methods["/demo.Directory/Chat"].kind == "bidi"


def test_descriptor_set(tmp_path: Path) -> None:
    protoset = tmp_path / "demo.protoset"
    protoset.write_bytes(compile_protos([str(PROTO)]))
    assert set(load_schemas(descriptor_sets=[str(protoset)]).methods) == METHODS


def test_bad_schema_inputs_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SchemaError):
        load_schemas(["missing.proto"])
    bad = tmp_path / "bad.proto"
    bad.write_text("syntax = 'proto3'; message {")
    capture = str(SAMPLES / "grpc-demo.pcap")
    assert main([capture, "--report", "calls", "--proto", str(bad)]) == 2
    assert main([capture, "--report", "calls", "--descriptor-set", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "protoscope:" in err


@pytest.fixture()
def reflecting_server(tmp_path: Path) -> Iterator[str]:
    from grpc_tools import protoc

    include = str(Path(importlib.import_module("grpc_tools").__file__).parent / "_proto")  # type: ignore[arg-type]
    args = [
        "protoc",
        f"-I{PROTO.parent}",
        f"-I{include}",
        f"--python_out={tmp_path}",
        f"--grpc_python_out={tmp_path}",
    ]
    assert protoc.main([*args, PROTO.name]) == 0
    sys.path.insert(0, str(tmp_path))
    try:
        pb = importlib.import_module("demo_pb2")
        pb_grpc = importlib.import_module("demo_pb2_grpc")
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        pb_grpc.add_DirectoryServicer_to_server(pb_grpc.DirectoryServicer(), server)
        names = (pb.DESCRIPTOR.services_by_name["Directory"].full_name, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        yield f"127.0.0.1:{port}"
        server.stop(0)
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("demo_pb2", "demo_pb2_grpc"):
            sys.modules.pop(name, None)


def test_reflection(reflecting_server: str) -> None:
    schemas = load_schemas(reflect_targets=[reflecting_server])
    assert set(schemas.methods) == METHODS
    assert schemas.methods["/demo.Directory/List"].output.full_name == "demo.Person"


def test_reflection_without_a_server_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    capture = str(SAMPLES / "grpc-demo.pcap")
    assert main([capture, "--report", "calls", "--reflect", "127.0.0.1:9"]) == 2
    assert "reflection on 127.0.0.1:9 failed" in capsys.readouterr().err


def test_proto_name_is_found_under_each_proto_path(tmp_path: Path) -> None:
    """As protoc and grpcurl: `--proto demo.proto --proto-path DIR` names a file under DIR."""
    other = tmp_path / "empty"
    other.mkdir()
    schemas = load_schemas(["demo.proto"], [str(other), str(PROTO.parent)])
    assert set(schemas.methods) == METHODS
    nested = tmp_path / "protos" / "demo"
    nested.mkdir(parents=True)
    (nested / "demo.proto").write_text(PROTO.read_text())
    assert set(load_schemas(["demo/demo.proto"], [str(tmp_path / "protos")]).methods) == METHODS
    with pytest.raises(SchemaError, match=r"no such \.proto file: nope\.proto \(looked in the current"):
        load_schemas(["nope.proto"], [str(other)])


def test_describe_like_grpcurl() -> None:
    schemas = load_schemas([str(PROTO)])
    assert describe(schemas, None) == ["demo.Directory"]
    assert describe(schemas, "demo.Directory") == [
        "demo.Directory is a service:",
        "service Directory {",
        "  rpc Get ( .demo.Query ) returns ( .demo.Person );",
        "  rpc List ( .demo.Query ) returns ( stream .demo.Person );",
        "  rpc Upload ( stream .demo.Person ) returns ( .demo.Summary );",
        "  rpc Chat ( stream .demo.Person ) returns ( stream .demo.Person );",
        "}",
    ]
    assert describe(schemas, "demo.Directory/Get") == [
        "demo.Directory.Get is a method:",
        "rpc Get ( .demo.Query ) returns ( .demo.Person );",
    ]
    person = describe(schemas, ".demo.Person")
    assert person[:2] == ["demo.Person is a message:", "message Person {"]
    assert "  map<string, int64> scores = 6;" in person
    oneof = person.index("  oneof contact {")
    assert person[oneof + 1 : oneof + 4] == ["    string phone = 7;", "    string pager = 8;", "  }"]
    assert "  .google.protobuf.Timestamp born = 12;" in person and "  repeated sint32 deltas = 10;" in person
    assert describe(schemas, "demo.Mood") == [
        "demo.Mood is an enum:",
        "enum Mood {",
        "  MOOD_UNSPECIFIED = 0;",
        "  HAPPY = 1;",
        "  GRUMPY = 2;",
        "}",
    ]
    with pytest.raises(KeyError, match=r"symbol not found: demo\.Nope"):
        describe(schemas, "demo.Nope")


def test_describe_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    capture = str(SAMPLES / "grpc-demo.pcap")
    assert main([capture, "--proto", "demo.proto", "--proto-path", str(PROTO.parent), "--describe"]) == 0
    assert capsys.readouterr().out == "demo.Directory\n"
    assert main([capture, "--proto", str(PROTO), "--describe", "demo.Query"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "message Query {",
        "  string prefix = 1;",
        "  int32 limit = 2;",
        "}",
    ]
    assert main([capture, "--proto", str(PROTO), "--describe", "demo.Nope"]) == 2
    err = capsys.readouterr().err
    assert "symbol not found: demo.Nope" in err and "Traceback" not in err
