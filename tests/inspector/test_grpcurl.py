"""Copy as grpcurl: the command of a calls-report row, its quoting, the same JSON from the bulk
path, and a replay of the commands against a grpcio server.

grpcurl itself is not installed here (no registry package carries it), so the replay does what
grpcurl does with the command: the `-H` values as metadata (a `-bin` value base64-decoded, as its
MetadataFromHeaders does), the `-d` JSON parsed into the method's request type (proto3 JSON), sent
to the address and method the command names. The server must receive the requests and metadata
the capture shows the client sent.
"""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, message_factory

from protoscope.decoders.http2.records import MessageRecord
from protoscope.decoders.registry import load_registry
from protoscope.inspector.grpcurl import grpcurl_command, split_command
from protoscope.inspector.report.rows import analysis_rows
from protoscope.inspector.schemas import load_schemas
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES
from tests.inspector.test_bulk_calls import BUILT, report

DEMO = SAMPLES / "grpc-demo.pcap"
PROTO = SAMPLES / "grpc" / "demo.proto"

ROW: dict[str, object] = {
    "path": "/demo.Directory/Get",
    "server": "[::1]:50051",
    "timeout": 1.5,
    "request_metadata": {"x-id": ["a", "b c"], "trace-bin": "010203ff", "quote": "it's"},
    "requests": [{"type": "demo.Query", "message": {"prefix": "ada", "limit": 1}}],
}


def test_command_quotes_metadata_timeout_and_body() -> None:
    text = grpcurl_command(ROW)
    assert "\n" not in text
    assert split_command(text) == [
        "grpcurl",
        "-plaintext",
        "-H",
        "x-id: a",
        "-H",
        "x-id: b c",
        "-H",
        "trace-bin: AQID/w==",
        "-H",
        "quote: it's",
        "-max-time",
        "1.5",
        "-d",
        '{"prefix":"ada","limit":1}',
        "[::1]:50051",
        "demo.Directory/Get",
    ]
    assert "-plaintext" not in split_command(grpcurl_command(ROW, plaintext=False))


def test_without_a_schema_the_request_comes_from_stdin() -> None:
    row = {**ROW, "requests": [{"type": None, "message": {"1": "ada"}}], "requests_omitted": 3}
    lines = grpcurl_command(row).splitlines()
    assert lines[0].startswith("# no schema: ") and lines[0].endswith('by field number it was: {"1":"ada"}')
    assert lines[1] == "# 3 request messages were left out of the report: they are not sent"
    assert split_command("\n".join(lines))[-4:] == ["-d", "@", "[::1]:50051", "demo.Directory/Get"]


def test_what_cannot_be_replayed_says_so() -> None:
    assert grpcurl_command({"path": None}).startswith("# no :path in the capture")
    text = grpcurl_command({"path": "/a.B/C", "requests": []})
    assert text.splitlines()[0] == "# no request message in the capture: grpcurl sends an empty one"
    assert split_command(text)[-2:] == ["HOST:PORT", "a.B/C"]
    assert "-d" not in split_command(text)


def calls(schemas: Any) -> list[dict[str, Any]]:
    registry = load_registry()
    registry.configure({"protobuf.schemas": schemas})
    session = Session.open(DEMO, registry)
    try:
        return list(analysis_rows(session, "calls"))
    finally:
        session.close()


@pytest.mark.skipif(BUILT is None, reason="the calls extension was not compiled")
def test_every_row_has_the_same_command_either_path() -> None:
    bulk, python = report(DEMO, True), report(DEMO, False)
    assert bulk == python
    rows = [json.loads(line) for line in bulk.splitlines()]
    assert all(r["server"] == "127.0.0.1:47051" and r["grpcurl"] for r in rows)
    assert all(split_command(r["grpcurl"])[-2:] == ["127.0.0.1:47051", r["path"].lstrip("/")] for r in rows)


def sent_by_client(path: str) -> dict[int, list[bytes]]:
    """The request messages of each stream as the capture has them (inflated)."""
    session = Session.open(path, load_registry())
    out: dict[int, list[bytes]] = defaultdict(list)
    try:
        for pd in session.decode():
            for pdu in pd.pdus:
                rec = pdu.record
                if isinstance(rec, MessageRecord) and rec.from_client and rec.data is not None:
                    out[rec.stream_id].append(rec.data)
    finally:
        session.close()
    return out


class Recorder:
    """A server that takes any method, any kind, and keeps what it received."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[bytes], dict[str, object]]] = []

    def handler(self, path: str) -> grpc.RpcMethodHandler:
        def stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
            metadata = {k: v for k, v in context.invocation_metadata()}
            self.received.append((path, list(requests), metadata))
            return iter(())

        return grpc.stream_stream_rpc_method_handler(stream)


def replay(args: list[str], schemas: Any, target: str) -> None:
    """Run a grpcurl command line the way grpcurl would, against `target`."""
    assert args[0] == "grpcurl" and args[1] == "-plaintext"
    metadata: list[tuple[str, str | bytes]] = []
    data = None
    k = 2
    while args[k].startswith("-"):
        flag, value = args[k], args[k + 1]
        if flag == "-H":
            name, _, text = value.partition(":")
            name, text = name.strip().lower(), text.strip()
            metadata.append((name, base64.b64decode(text) if name.endswith("-bin") else text))
        elif flag == "-d":
            data = value
        k += 2
    address, method = args[k], args[k + 1]
    assert address == "127.0.0.1:47051"
    desc = schemas.methods["/" + method].input
    cls = message_factory.GetMessageClass(desc)
    messages = []
    decoder = json.JSONDecoder()
    text = (data or "").strip()
    while text:  # grpcurl reads a stream of JSON objects
        obj, end = decoder.raw_decode(text)
        messages.append(json_format.ParseDict(obj, cls()).SerializeToString())
        text = text[end:].strip()
    with grpc.insecure_channel(target) as channel:
        call = channel.stream_stream("/" + method)
        list(call(iter(messages), metadata=metadata, timeout=10))


def test_replayed_commands_send_what_the_capture_shows() -> None:
    schemas = load_schemas([str(PROTO)])
    rows = calls(schemas)
    recorder = Recorder()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers([_Generic(recorder)])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        replayed = []
        for row in rows:
            args = split_command(row["grpcurl"])
            if "@" in args or row["requests_omitted"]:
                continue
            replay(args, schemas, f"127.0.0.1:{port}")
            replayed.append(row)
    finally:
        server.stop(None)
    assert len(replayed) >= 10
    captured = sent_by_client(str(DEMO))
    for row, (path, received, metadata) in zip(replayed, recorder.received, strict=True):
        assert path == row["path"]
        cls = message_factory.GetMessageClass(schemas.methods[path].input)
        assert [cls.FromString(b) for b in received] == [
            cls.FromString(b) for b in captured[row["stream_id"]]
        ]
        for name, value in row["request_metadata"].items():
            want = bytes.fromhex(value) if name.endswith("-bin") else value
            assert metadata[name] == want, (row["stream_id"], name)


class _Generic(grpc.GenericRpcHandler):  # type: ignore[misc]
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        return self.recorder.handler(handler_call_details.method)
