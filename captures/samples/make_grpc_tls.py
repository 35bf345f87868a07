"""Record grpc-tls.pcap: gRPC inside TLS on a port that says nothing, with the client's key log.

Run as root from the repository root (tcpdump needs it): python captures/samples/make_grpc_tls.py

A grpcio server (the demo service of make_grpc.py, TLS with a throwaway self-signed certificate
made by `openssl req`) on 127.0.0.1:50443, not 443: what makes the traffic gRPC is ALPN h2 and the
content type, not the port. The client is Python's ssl module (OpenSSL) with `keylog_filename`,
speaking HTTP/2 with the `h2` library (a script-only dependency, as aiortc is for make_webrtc.py)
and gRPC's length-prefixed messages by hand, over two connections:

* TLS 1.3 (the server picks AES-GCM), ALPN h2: unary, server-streaming, client-streaming and
  bidi calls, a call that fails with NOT_FOUND (google.rpc.Status details, a percent-encoded
  non-ASCII grpc-message) and a unary call whose response is over 100 KB (many TLS records);
* TLS 1.2 held to ECDHE-RSA-CHACHA20-POLY1305, ALPN h2: the four kinds again and a call the
  server aborts before any message (Trailers-Only, PERMISSION_DENIED).

Writes grpc-tls.pcap, grpc-tls.keys (the NSS key log OpenSSL wrote for the client) and
grpc-tls.truth.json: per connection the TLS version, cipher, ALPN, client port and client random
(from the key log lines that connection added), and per call the path, kind, stream id, status,
grpc-message, trailers, and request and response messages as JSON (protobuf json_format), as the
client sent and received them; what the server saw; the tshark commands that read the capture.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import sys
import tempfile
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# gRPC's TLS 1.2 suites leave out ChaCha20-Poly1305 unless told (read when grpcio first makes
# TLS credentials); TLS 1.3 suites are not affected.
os.environ["GRPC_SSL_CIPHER_SUITES"] = "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305"

import grpc
import h2.config
import h2.connection
import h2.events
from google.protobuf.json_format import MessageToDict

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_grpc import DETAILS_CODE, build, capture, compile_demo, stop
from make_tls import certificate

HERE = Path(__file__).resolve().parent
NAME = "grpc-tls"
PORT = 50443
AUTHORITY = f"localhost:{PORT}"
TLS12_CIPHER = "ECDHE-RSA-CHACHA20-POLY1305"
STATUS_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
KINDS = {
    "/demo.Directory/Get": "unary",
    "/demo.Directory/List": "server_streaming",
    "/demo.Directory/Upload": "client_streaming",
    "/demo.Directory/Chat": "bidi",
}


def grpc_frame(message: bytes) -> bytes:
    """A gRPC length-prefixed message, uncompressed."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def grpc_messages(data: bytes) -> list[bytes]:
    """The messages of a whole (uncompressed) gRPC body."""
    out, at = [], 0
    while at + 5 <= len(data):
        length = int.from_bytes(data[at + 1 : at + 5], "big")
        out.append(data[at + 5 : at + 5 + length])
        at += 5 + length
    if at != len(data):
        raise SystemExit("the server sent a truncated gRPC message")
    return out


def metadata(headers: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    """Headers as text; `-bin` values base64-decoded to hex, as make_grpc.py keeps them."""
    out = {}
    for raw_name, raw_value in headers:
        name, value = raw_name.decode(), raw_value.decode()
        if name.endswith("-bin"):
            value = base64.b64decode(value + "=" * (-len(value) % 4)).hex()
        out[name] = value
    return out


class GrpcClient:
    """gRPC over one HTTP/2 connection (the `h2` state machine) on a blocking TLS socket.

    Calls run one after another: each sends its headers, every request message and END_STREAM,
    then reads until its stream ends, answering flow control as data arrives.
    """

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.conn.initiate_connection()
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def call(
        self, path: str, requests: Sequence[bytes], request_id: str
    ) -> tuple[int, dict[str, str], list[bytes], dict[str, str]]:
        """(stream id, response headers, response messages, trailers)."""
        sid = self.conn.get_next_available_stream_id()
        self.conn.send_headers(
            sid,
            [
                (":method", "POST"),
                (":scheme", "https"),
                (":path", path),
                (":authority", AUTHORITY),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
                ("user-agent", f"protoscope-sample h2/{h2.__version__}"),
                ("x-request-id", request_id),
            ],
        )
        for message in requests:
            self.conn.send_data(sid, grpc_frame(message))
        self.conn.end_stream(sid)
        self.flush()
        headers: dict[str, str] = {}
        trailers: dict[str, str] = {}
        body = bytearray()
        ended = False
        while not ended:
            data = self.sock.recv(65536)
            if not data:
                raise SystemExit("the server closed the connection during a call")
            for event in self.conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived) and event.stream_id == sid:
                    headers = metadata(event.headers)
                elif isinstance(event, h2.events.TrailersReceived) and event.stream_id == sid:
                    trailers = metadata(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    if event.stream_id == sid:
                        body += event.data
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == sid:
                    ended = True
                elif isinstance(event, h2.events.StreamReset) and event.stream_id == sid:
                    raise SystemExit(f"the server reset stream {sid}")
            self.flush()
        if not trailers and "grpc-status" in headers:  # Trailers-Only: one HEADERS frame
            trailers, headers = headers, {}
        return sid, headers, grpc_messages(bytes(body)), trailers

    def close(self) -> None:
        self.conn.close_connection()
        self.flush()


class Calls:
    """Runs calls on a GrpcClient and keeps what the client sent and received."""

    def __init__(self, pb: Any, client: GrpcClient, connection: int) -> None:
        self.pb, self.client, self.connection = pb, client, connection
        self.records: list[dict[str, Any]] = []

    def run(self, path: str, requests: Sequence[Any], response_type: Any, **extra: Any) -> None:
        request_id = f"conn{self.connection}-call{len(self.records) + 1}"
        sid, headers, raw, trailers = self.client.call(
            path, [m.SerializeToString() for m in requests], request_id
        )
        responses = [response_type.FromString(m) for m in raw]
        status = int(trailers.get("grpc-status", "-1"))
        message = trailers.get("grpc-message")
        self.records.append(
            {
                "connection": self.connection,
                "stream_id": sid,
                "path": path,
                "kind": KINDS[path],
                "status": status,
                "status_name": STATUS_NAMES.get(status),
                "grpc_message": urllib.parse.unquote(message) if message else None,
                "request_metadata": {"x-request-id": request_id},
                "response_headers": headers,
                "trailers": trailers,
                "trailers_only": not headers,
                "requests": [MessageToDict(m) for m in requests],
                "responses": [MessageToDict(m) for m in responses],
                "request_sizes": [m.ByteSize() for m in requests],
                "response_sizes": [len(m) for m in raw],
                **extra,
            }
        )


def four_kinds(calls: Calls, person: Any, tag: str) -> None:
    pb = calls.pb
    calls.run("/demo.Directory/Get", [pb.Query(prefix=f"{tag}ada", limit=1)], pb.Person)
    calls.run("/demo.Directory/List", [pb.Query(prefix=f"{tag}p", limit=3)], pb.Person)
    calls.run("/demo.Directory/Upload", [person(i, f"{tag}Up{i}") for i in range(3)], pb.Summary)
    calls.run("/demo.Directory/Chat", [person(i, f"{tag}Chat{i}") for i in range(2)], pb.Person)


def tls13_calls(calls: Calls, person: Any) -> None:
    four_kinds(calls, person, "a")
    q = calls.pb.Query(prefix="missing")
    calls.run(
        "/demo.Directory/Get",
        [q],
        calls.pb.Person,
        status_details={
            "code": DETAILS_CODE,
            "message": "no such person",
            "details": [{"type_url": "type.googleapis.com/demo.Query", "value": q.SerializeToString().hex()}],
        },
    )
    calls.run("/demo.Directory/Get", [calls.pb.Query(prefix="big")], calls.pb.Person)


def tls12_calls(calls: Calls, person: Any) -> None:
    four_kinds(calls, person, "b")
    calls.run("/demo.Directory/Get", [calls.pb.Query(prefix="abort")], calls.pb.Person)


def connect(cert: Path, keys: Path, tls12: bool) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(cert))
    context.keylog_filename = str(keys)
    context.set_alpn_protocols(["h2"])
    if tls12:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(TLS12_CIPHER)
    else:
        context.minimum_version = ssl.TLSVersion.TLSv1_3
    raw = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return context.wrap_socket(raw, server_hostname="localhost")


def connection(
    number: int, cert: Path, keys: Path, tls12: bool, pb: Any, person: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    before = keys.read_text().splitlines() if keys.exists() else []
    with connect(cert, keys, tls12) as sock:
        if sock.selected_alpn_protocol() != "h2":
            raise SystemExit(f"ALPN chose {sock.selected_alpn_protocol()!r}, not h2")
        info = {
            "connection": number,
            "client_port": sock.getsockname()[1],
            "server_port": PORT,
            "tls_version": sock.version(),
            "cipher": (sock.cipher() or ("",))[0],
            "alpn": sock.selected_alpn_protocol(),
        }
        client = GrpcClient(sock)
        calls = Calls(pb, client, number)
        (tls12_calls if tls12 else tls13_calls)(calls, person)
        client.close()
    added = [
        line.split() for line in keys.read_text().splitlines()[len(before) :] if not line.startswith("#")
    ]
    info["client_random"] = sorted({parts[1] for parts in added})[0]
    info["keylog_labels"] = sorted({parts[0] for parts in added})
    return info, calls.records


def tshark_fields(pcap: str, options: list[str], display_filter: str, fields: Sequence[str]) -> list[str]:
    """A tshark command line printing `fields` of the frames `display_filter` keeps."""
    return [
        "tshark",
        "-r",
        pcap,
        *options,
        "-Y",
        display_filter,
        "-T",
        "fields",
        *[a for f in fields for a in ("-e", f)],
    ]


def oracle() -> dict[str, Any]:
    """tshark commands (run from the repository root) that read this sample, for tests.

    tshark 4.0 has no `grpc.path` field: the path is HTTP/2's `:path`. Header names and values come
    in the same order, joined by "|" (values hold commas); the capture's frames carry one call's
    headers at a time (calls run one after another).
    """
    pcap, keys = f"captures/samples/{NAME}.pcap", f"captures/samples/{NAME}.keys"
    decrypt = ["-o", f"tls.keylog_file:{keys}", "-E", "occurrence=a", "-E", "aggregator=|"]
    headers = ["tcp.dstport", "http2.header.name", "http2.header.value"]
    return {
        "client_randoms": tshark_fields(
            pcap, [], "tls.handshake.type == 1", ["tcp.srcport", "tls.handshake.random"]
        ),
        "grpc_paths": tshark_fields(
            pcap, decrypt, "http2.headers.path", ["tcp.srcport", "http2.headers.path"]
        ),
        "grpc_status": tshark_fields(pcap, decrypt, 'http2.header.name == "grpc-status"', headers),
        "grpc_messages": tshark_fields(pcap, decrypt, "grpc", ["tcp.srcport", "grpc.message_length"]),
    }


def main() -> None:
    keys = HERE / f"{NAME}.keys"
    keys.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        key, cert = certificate(tmp)
        pb, pb_grpc = compile_demo(tmp)
        server, seen, person = build(pb, pb_grpc)
        creds = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
        server.add_secure_port(f"127.0.0.1:{PORT}", creds)
        server.start()
        tcpdump = capture(HERE / f"{NAME}.pcap", PORT)
        try:
            first, calls13 = connection(1, cert, keys, False, pb, person)
            second, calls12 = connection(2, cert, keys, True, pb, person)
        finally:
            stop(tcpdump)
            server.stop(0)
    truth = {
        "port": PORT,
        "proto": "grpc/demo.proto",
        "keylog": f"{NAME}.keys",
        "software": f"grpcio {grpc.__version__} server; Python {sys.version.split()[0]} ssl "
        f"({ssl.OPENSSL_VERSION}) and h2 {h2.__version__} client",
        "connections": [first, second],
        "calls": calls13 + calls12,
        "server_saw": list(seen),
        "oracle": oracle(),
    }
    (HERE / f"{NAME}.truth.json").write_text(json.dumps(truth, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
