"""Record the gRPC sample captures with a real grpcio server and client, and their truth files.

Run as root from the repository root (tcpdump needs it): python captures/samples/make_grpc.py
[SAMPLE ...], SAMPLE one of demo, midstream, edge, server-first (all four when none is named; tests
rely on each sample's truth file, so record again only what you mean to change).

Everything runs on 127.0.0.1 with demo.proto (nested messages, an enum, a map, a oneof, repeated
and packed fields, bytes, a well-known type) compiled at run time by grpcio-tools:

* grpc-demo.pcap: all four call kinds, request metadata with a `-bin` key, custom trailers, an
  error status with google.rpc.Status details and a non-ASCII grpc-message, a gzip-compressed
  call, a message over 64 KiB, 12 concurrent calls on one connection and a deadline exceeded.
* grpc-midstream.pcap: tcpdump starts after the connection has carried calls, so the capture
  begins mid-connection (no preface, HPACK table entries from before the capture).
* grpc-edge.pcap: how calls end when they do not end well, and compression. Unary calls whose
  client deadline elapses while the server is slow: the client resets the stream (RST_STREAM
  CANCEL) and the server, which also keeps the deadline, sends Trailers-Only with status 4 before
  the reset, after it, or not at all when the reset reached it first (the recording is made again
  until the capture shows both a reset with the server's trailers after it and one without); a
  server-streaming call whose deadline elapses after its first message; a call the client cancels
  without a deadline; a server that aborts before sending anything (Trailers-Only); gzip both ways,
  unary and streamed.
* grpc-server-first.pcap: tcpdump starts while a server-streaming call is sending, so the capture
  begins mid-connection with the server's packets (a flow oriented by its first packet takes the
  server for the client); then the stream ends and a unary call follows.

The truth files record what the client sent and received and what the server saw.
"""

from __future__ import annotations

import importlib
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

HERE = Path(__file__).resolve().parent
PROTO = HERE / "grpc" / "demo.proto"
PORT = 47051
MID_PORT = 47052
EDGE_PORT = 47053
SERVER_FIRST_PORT = 47054
DEADLINE = 0.2
SAMPLES = ("demo", "midstream", "edge", "server-first")
DETAILS_CODE = 5


def compile_demo(out: Path) -> tuple[Any, Any]:
    from grpc_tools import protoc

    include = str(Path(importlib.import_module("grpc_tools").__file__).parent / "_proto")  # type: ignore[arg-type]
    args = ["protoc", f"-I{PROTO.parent}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}"]
    if protoc.main([*args, PROTO.name]) != 0:
        sys.exit("protoc failed")
    sys.path.insert(0, str(out))
    return importlib.import_module("demo_pb2"), importlib.import_module("demo_pb2_grpc")


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_bytes(number: int, raw: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(raw)) + raw


def rpc_status(code: int, message: str, detail_type: str, detail: bytes) -> bytes:
    """google.rpc.Status encoded by hand (no googleapis package needed)."""
    any_ = field_bytes(1, detail_type.encode()) + field_bytes(2, detail)
    return varint(1 << 3) + varint(code) + field_bytes(2, message.encode()) + field_bytes(3, any_)


def build(pb: Any, pb_grpc: Any) -> tuple[Any, list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def person(i: int, name: str) -> Any:
        p = pb.Person(
            name=name,
            id=i,
            emails=[f"{name.lower()}@example.org"],
            address=pb.Address(street="Rue du Test", number=i),
            mood=pb.HAPPY if i % 2 else pb.GRUMPY,
            deltas=[i, -i, 3],
            height=1.5 + i,
            tag=(1 << 63) + i,
            balance=-1000 * i,
        )
        p.scores["a"] = i
        p.scores["b"] = -i
        if i % 2:
            p.phone = f"+33 1 00 00 00 {i:02d}"
        else:
            p.pager = f"pager-{i}"
        p.born.seconds = 1_700_000_000 + i
        return p

    class Directory(pb_grpc.DirectoryServicer):  # type: ignore[misc]
        def _saw(self, context: Any, method: str, requests: list[Any]) -> None:
            meta = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in context.invocation_metadata()}
            seen.append(
                {"method": method, "metadata": meta, "requests": [MessageToDict(r) for r in requests]}
            )

        def Get(self, request: Any, context: Any) -> Any:
            self._saw(context, "Get", [request])
            if request.prefix == "slow":
                time.sleep(1.0)
            if request.prefix == "abort":  # before anything is sent: a Trailers-Only response
                context.abort(grpc.StatusCode.PERMISSION_DENIED, "not for you")
            if request.prefix == "missing":
                detail = rpc_status(
                    DETAILS_CODE,
                    "no such person",
                    "type.googleapis.com/demo.Query",
                    request.SerializeToString(),
                )
                context.set_trailing_metadata((("grpc-status-details-bin", detail), ("retry-hint", "never")))
                context.abort(grpc.StatusCode.NOT_FOUND, "nobody is called “missing” [red]x[/red]")
            if request.prefix.startswith("zipped"):
                context.set_compression(grpc.Compression.Gzip)
                return person(3, request.prefix)
            if request.prefix == "big":
                p = person(7, "Big")
                p.avatar = bytes(range(256)) * 400  # 102,400 bytes
                return p
            context.set_trailing_metadata((("x-served-by", "demo-1"), ("cost-bin", b"\x00\x01\xfe\xff")))
            return person(request.limit, request.prefix.capitalize() or "Nobody")

        def List(self, request: Any, context: Any) -> Iterator[Any]:
            self._saw(context, "List", [request])
            if request.prefix.startswith("zipped"):
                context.set_compression(grpc.Compression.Gzip)
            for i in range(request.limit):
                if request.prefix == "tick":  # a slow stream: tcpdump starts while it sends
                    time.sleep(0.05)
                if request.prefix == "stall" and i == 1:  # the deadline elapses after one message
                    time.sleep(1.0)
                yield person(i, f"{request.prefix}{i}")

        def Upload(self, request_iterator: Any, context: Any) -> Any:
            people = list(request_iterator)
            self._saw(context, "Upload", people)
            return pb.Summary(count=len(people), names=[p.name for p in people])

        def Chat(self, request_iterator: Any, context: Any) -> Iterator[Any]:
            got = []
            for p in request_iterator:
                got.append(p)
                yield person(p.id + 100, "Echo " + p.name)
            self._saw(context, "Chat", got)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    pb_grpc.add_DirectoryServicer_to_server(Directory(), server)
    return server, seen, person  # type: ignore[return-value]


def call_record(
    path: str,
    kind: str,
    requests: list[Any],
    responses: list[Any],
    code: grpc.StatusCode,
    details: str | None,
    metadata: list[tuple[str, Any]],
    trailers: Any,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "path": path,
        "kind": kind,
        "status": code.value[0],
        "status_name": code.name,
        "grpc_message": details,
        "request_metadata": {k: (v.hex() if isinstance(v, bytes) else v) for k, v in metadata},
        "trailers": {k: (v.hex() if isinstance(v, bytes) else v) for k, v in (trailers or ())},
        "requests": [MessageToDict(m) for m in requests],
        "responses": [MessageToDict(m) for m in responses],
        **extra,
    }


def record(
    path: str,
    kind: str,
    requests: list[Any],
    responses: list[Any],
    call: Any,
    metadata: Sequence[tuple[str, Any]] = (),
    **extra: Any,
) -> dict[str, Any]:
    """call_record of a finished call (a grpc.Call or a future: code, details, trailing metadata)."""
    return call_record(
        path,
        kind,
        requests,
        responses,
        call.code(),
        call.details() or None,
        list(metadata),
        call.trailing_metadata(),
        **extra,
    )


def run_calls(pb: Any, stub: Any, person: Any) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    meta = [("x-request-id", "req-1"), ("trace-bin", b"\x01\x02\x03\xff")]
    q = pb.Query(prefix="ada", limit=1)
    resp, info = stub.Get.with_call(q, metadata=meta)
    calls.append(record("/demo.Directory/Get", "unary", [q], [resp], info, meta))
    q = pb.Query(prefix="missing")
    try:
        stub.Get(q, metadata=[("x-request-id", "req-2")])
    except grpc.RpcError as err:
        trailers = [(k, v) for k, v in err.trailing_metadata() if k != "grpc-status-details-bin"]
        calls.append(
            call_record(
                "/demo.Directory/Get",
                "unary",
                [q],
                [],
                err.code(),
                err.details(),
                [("x-request-id", "req-2")],
                trailers,
                status_details={
                    "code": DETAILS_CODE,
                    "message": "no such person",
                    "details": [
                        {"type_url": "type.googleapis.com/demo.Query", "value": q.SerializeToString().hex()}
                    ],
                },
            )
        )
    q = pb.Query(prefix="p", limit=5)
    call = stub.List(q)
    responses = list(call)
    calls.append(record("/demo.Directory/List", "server_streaming", [q], responses, call))
    people = [person(i, f"Up{i}") for i in range(4)]
    resp, info = stub.Upload.with_call(iter(people))
    calls.append(record("/demo.Directory/Upload", "client_streaming", people, [resp], info))
    people = [person(i, f"Chat{i}") for i in range(3)]
    call = stub.Chat(iter(people))
    responses = list(call)
    calls.append(record("/demo.Directory/Chat", "bidi", people, responses, call))
    # gRPC sends a message uncompressed when gzip would not make it smaller: a long prefix.
    q = pb.Query(prefix="zipped" + "z" * 3000, limit=3)
    resp, info = stub.Get.with_call(q, compression=grpc.Compression.Gzip)
    calls.append(
        record(
            "/demo.Directory/Get",
            "unary",
            [q],
            [resp],
            info,
            compressed_request=True,
            compressed_response=True,
        )
    )
    q = pb.Query(prefix="big")
    resp, info = stub.Get.with_call(q)
    calls.append(record("/demo.Directory/Get", "unary", [q], [resp], info))
    queries = [pb.Query(prefix=f"c{i}", limit=10 + i) for i in range(12)]
    pending = [stub.Get.future(q) for q in queries]
    for q, fut in zip(queries, pending, strict=True):
        calls.append(record("/demo.Directory/Get", "unary", [q], [fut.result()], fut, concurrent=True))
    q = pb.Query(prefix="slow")
    try:
        stub.Get(q, timeout=0.2)
    except grpc.RpcError as err:
        calls.append(failed("/demo.Directory/Get", "unary", [q], [], err, deadline=0.2))
    return calls


def failed(
    path: str, kind: str, requests: list[Any], responses: list[Any], err: Any, **extra: Any
) -> dict[str, Any]:
    """call_record of a call that raised grpc.RpcError (no metadata or trailers kept)."""
    return call_record(path, kind, requests, responses, err.code(), err.details(), [], None, **extra)


def run_edge_calls(pb: Any, stub: Any) -> list[dict[str, Any]]:
    """grpc-edge.pcap: deadlines, a cancel, a Trailers-Only abort and gzip both ways."""
    calls: list[dict[str, Any]] = []
    for i in range(6):
        q = pb.Query(prefix="slow", limit=i)
        try:
            stub.Get(q, timeout=DEADLINE)
        except grpc.RpcError as err:
            calls.append(failed("/demo.Directory/Get", "unary", [q], [], err, deadline=DEADLINE))
    q = pb.Query(prefix="stall", limit=3)
    call = stub.List(q, timeout=0.3)
    got = []
    try:
        got.extend(call)
    except grpc.RpcError as err:
        calls.append(failed("/demo.Directory/List", "server_streaming", [q], got, err, deadline=0.3))
    q = pb.Query(prefix="slow", limit=99)
    future = stub.Get.future(q)
    time.sleep(0.2)
    future.cancel()
    calls.append(
        call_record(
            "/demo.Directory/Get", "unary", [q], [], grpc.StatusCode.CANCELLED, None, [], None, cancelled=True
        )
    )
    q = pb.Query(prefix="abort")
    try:
        stub.Get(q)
    except grpc.RpcError as err:
        calls.append(failed("/demo.Directory/Get", "unary", [q], [], err, trailers_only=True))
    # Compressible messages: gRPC sends a message uncompressed when gzip would not make it smaller.
    q = pb.Query(prefix="zipped" + "y" * 3000, limit=4)
    resp, info = stub.Get.with_call(q, compression=grpc.Compression.Gzip)
    calls.append(record("/demo.Directory/Get", "unary", [q], [resp], info, **sizes([q], [resp])))
    q = pb.Query(prefix="zipped" + "x" * 2000, limit=3)
    call = stub.List(q, compression=grpc.Compression.Gzip)
    responses = list(call)
    calls.append(
        record("/demo.Directory/List", "server_streaming", [q], responses, call, **sizes([q], responses))
    )
    return calls


def sizes(requests: list[Any], responses: list[Any]) -> dict[str, Any]:
    """Compressed calls: the messages' serialized sizes (what `uncompressed_size` must say)."""
    return {
        "compressed_request": True,
        "compressed_response": True,
        "request_sizes": [m.ByteSize() for m in requests],
        "response_sizes": [m.ByteSize() for m in responses],
    }


def deadline_endings(pcap: Path, port: int) -> set[str]:
    """How the deadline calls of grpc-edge.pcap ended on the wire, as tshark reads the frames:
    "trailers-first", "reset-then-trailers", "reset-only"."""
    fields = [arg for name in ("tcp.srcport", "http2.type", "http2.streamid") for arg in ("-e", name)]
    decode_as = f"tcp.port=={port},http2"
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-d", decode_as, "-T", "fields", "-E", "occurrence=a", *fields],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    events: dict[int, list[str]] = {}
    for line in out.splitlines():
        src, types, sids = line.split("\t")
        for t, sid in zip(types.split(","), sids.split(","), strict=True) if types else ():
            who = "server" if int(src) == port else "client"
            if t in ("1", "3"):
                events.setdefault(int(sid), []).append(f"{who}-{'headers' if t == '1' else 'rst'}")
    endings = set()
    for seq in events.values():
        if "client-rst" not in seq:
            continue
        after = seq[seq.index("client-rst") + 1 :]
        before = seq[: seq.index("client-rst")]
        if before.count("server-headers") and not after:
            endings.add("trailers-first")
        elif "server-headers" in after:
            endings.add("reset-then-trailers")
        elif not before.count("server-headers"):
            endings.add("reset-only")
    return endings


def run_server_first(pb: Any, stub: Any, path: Path) -> list[dict[str, Any]]:
    """grpc-server-first.pcap: tcpdump starts while the server streams; then more calls."""
    stub.Get(pb.Query(prefix="warmup", limit=1))
    q = pb.Query(prefix="tick", limit=20)
    stream = stub.List(q)
    responses: list[Any] = []
    reader = threading.Thread(target=lambda: responses.extend(stream))
    reader.start()
    time.sleep(0.4)
    tcpdump = capture(path, SERVER_FIRST_PORT)
    reader.join()
    calls = [
        record("/demo.Directory/List", "server_streaming", [q], responses, stream, began_before_capture=True)
    ]
    people = [pb.Person(name=f"Late{i}", id=i) for i in range(2)]
    resp, info = stub.Upload.with_call(iter(people))
    calls.append(record("/demo.Directory/Upload", "client_streaming", people, [resp], info))
    q = pb.Query(prefix="after", limit=2)
    resp, info = stub.Get.with_call(q)
    calls.append(record("/demo.Directory/Get", "unary", [q], [resp], info))
    stop(tcpdump)
    return calls


def first_sender_port(pcap: Path) -> int:
    """The TCP source port of the capture's first packet."""
    out = subprocess.run(
        ["tcpdump", "-r", str(pcap), "-n", "-c", "1"], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split(" > ")[0].rsplit(".", 1)[1])


def capture(path: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["tcpdump", "-i", "lo", "--immediate-mode", "-U", "-w", str(path), f"tcp port {port}"],
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    proc.stderr.readline()  # "listening on lo ...": capturing from here on
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=10)


def record_demo(pb: Any, pb_grpc: Any, person: Any, seen: list[dict[str, Any]]) -> None:
    seen.clear()
    tcpdump = capture(HERE / "grpc-demo.pcap", PORT)
    with grpc.insecure_channel(f"127.0.0.1:{PORT}") as channel:
        calls = run_calls(pb, pb_grpc.DirectoryStub(channel), person)
    stop(tcpdump)
    truth = {"port": PORT, "proto": "grpc/demo.proto", "calls": calls, "server_saw": list(seen)}
    write_truth("grpc-demo", truth)


def record_midstream(pb: Any, pb_grpc: Any) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{MID_PORT}") as channel:
        stub = pb_grpc.DirectoryStub(channel)
        stub.Get(pb.Query(prefix="warmup", limit=1), metadata=[("x-request-id", "before-capture")])
        tcpdump = capture(HERE / "grpc-midstream.pcap", MID_PORT)
        meta = [("x-request-id", "before-capture")]  # same literal: now a dynamic-table hit
        later = []
        for i in range(2):
            q = pb.Query(prefix=f"mid{i}", limit=i)
            resp, info = stub.Get.with_call(q, metadata=meta)
            later.append(record("/demo.Directory/Get", "unary", [q], [resp], info, meta))
        stop(tcpdump)
    write_truth("grpc-midstream", {"port": MID_PORT, "proto": "grpc/demo.proto", "calls": later})


def record_edge(pb: Any, pb_grpc: Any) -> None:
    for attempt in range(8):
        tcpdump = capture(HERE / "grpc-edge.pcap", EDGE_PORT)
        with grpc.insecure_channel(f"127.0.0.1:{EDGE_PORT}") as channel:
            calls = run_edge_calls(pb, pb_grpc.DirectoryStub(channel))
        stop(tcpdump)
        endings = deadline_endings(HERE / "grpc-edge.pcap", EDGE_PORT)
        if {"reset-then-trailers", "reset-only"} <= endings:
            break
        print(f"attempt {attempt + 1}: the deadline calls ended {sorted(endings)}; recording again")
    else:
        sys.exit("the server's trailers never came both before and after a reset: giving up")
    truth = {
        "port": EDGE_PORT,
        "proto": "grpc/demo.proto",
        "deadline_endings": sorted(endings),
        "calls": calls,
    }
    write_truth("grpc-edge", truth)


def record_server_first(pb: Any, pb_grpc: Any) -> None:
    path = HERE / "grpc-server-first.pcap"
    for attempt in range(8):
        with grpc.insecure_channel(f"127.0.0.1:{SERVER_FIRST_PORT}") as channel:
            calls = run_server_first(pb, pb_grpc.DirectoryStub(channel), path)
        if first_sender_port(path) == SERVER_FIRST_PORT:
            break
        print(f"attempt {attempt + 1}: the client's packet came first; recording again")
    else:
        sys.exit("the capture never began with the server's packet: giving up")
    write_truth("grpc-server-first", {"port": SERVER_FIRST_PORT, "proto": "grpc/demo.proto", "calls": calls})


def write_truth(name: str, truth: dict[str, Any]) -> None:
    (HERE / f"{name}.truth.json").write_text(json.dumps(truth, indent=1, ensure_ascii=False) + "\n")


def main(wanted: Sequence[str]) -> None:
    unknown = set(wanted) - set(SAMPLES)
    if unknown:
        sys.exit(f"unknown sample(s) {sorted(unknown)}: choose among {', '.join(SAMPLES)}")
    wanted = wanted or SAMPLES
    with tempfile.TemporaryDirectory() as tmp:
        pb, pb_grpc = compile_demo(Path(tmp))
        server, seen, person = build(pb, pb_grpc)  # type: ignore[misc]
        for port in (PORT, MID_PORT, EDGE_PORT, SERVER_FIRST_PORT):
            server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        try:
            if "demo" in wanted:
                record_demo(pb, pb_grpc, person, seen)
            if "midstream" in wanted:
                record_midstream(pb, pb_grpc)
            if "edge" in wanted:
                record_edge(pb, pb_grpc)
            if "server-first" in wanted:
                record_server_first(pb, pb_grpc)
        finally:
            server.stop(0)
        threading.Event().wait(0.1)


if __name__ == "__main__":
    main(sys.argv[1:])
