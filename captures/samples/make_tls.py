"""Record tls-loopback.pcap: TLS that must never be read as HTTP/2, made by real software.

Run as root from the repository root (tcpdump, and port 443, need it):
python captures/samples/make_tls.py

Two connections on 127.0.0.1, with a throwaway self-signed certificate made by `openssl req`:

* port 443: a grpcio server and client over TLS 1.3 with ALPN h2, a unary call and a server
  stream of 20 messages (gRPC as it runs in production: HTTP/2 inside TLS records);
* port 47443: `openssl s_server -rev -tls1_2` and a client made with Python's ssl module (OpenSSL
  too) held to TLS 1.2, so the certificate goes in clear: lines of text both ways and one of
  40,000 bytes, whose records span several TCP segments.

The truth file says what each connection carried; nothing in it is HTTP/2 in clear.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_grpc import compile_demo, stop

HERE = Path(__file__).resolve().parent
GRPC_PORT = 443
OPENSSL_PORT = 47443
BIG_LINE = 40_000


def certificate(tmp: Path) -> tuple[Path, Path]:
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


def capture(path: Path) -> subprocess.Popen[bytes]:
    bpf = f"tcp port {GRPC_PORT} or tcp port {OPENSSL_PORT}"
    proc = subprocess.Popen(
        ["tcpdump", "-i", "lo", "--immediate-mode", "-U", "-w", str(path), bpf], stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    proc.stderr.readline()  # "listening on lo ...": capturing from here on
    return proc


def directory(pb: Any, pb_grpc: Any) -> Any:
    """A servicer that answers at once."""

    class Directory(pb_grpc.DirectoryServicer):  # type: ignore[misc]
        def Get(self, request: Any, context: Any) -> Any:
            return pb.Person(name=request.prefix, id=request.limit)

        def List(self, request: Any, context: Any) -> Any:
            for i in range(request.limit):
                yield pb.Person(name=f"{request.prefix}{i}", id=i)

    return Directory()


def grpc_over_tls(tmp: Path, key: Path, cert: Path) -> dict[str, Any]:
    pb, pb_grpc = compile_demo(tmp)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_DirectoryServicer_to_server(directory(pb, pb_grpc), server)
    creds = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
    server.add_secure_port(f"127.0.0.1:{GRPC_PORT}", creds)
    server.start()
    try:
        channel_creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        options = [("grpc.ssl_target_name_override", "localhost")]
        with grpc.secure_channel(f"127.0.0.1:{GRPC_PORT}", channel_creds, options) as channel:
            stub = pb_grpc.DirectoryStub(channel)
            one = stub.Get(pb.Query(prefix="tls", limit=1))
            many = list(stub.List(pb.Query(prefix="tls", limit=20)))
    finally:
        server.stop(0)
    return {
        "port": GRPC_PORT,
        "software": f"grpcio {grpc.__version__} server and client",
        "carries": "gRPC over HTTP/2 (ALPN h2) inside TLS",
        "calls": ["/demo.Directory/Get", "/demo.Directory/List"],
        "responses": 1 + len(many),
        "first_response_name": one.name,
    }


def openssl_tls12(key: Path, cert: Path) -> dict[str, Any]:
    server = subprocess.Popen(
        [
            *("openssl", "s_server", "-rev", "-tls1_2", "-naccept", "1"),
            *("-accept", f"127.0.0.1:{OPENSSL_PORT}", "-key", str(key), "-cert", str(cert)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        lines = [b"hello over TLS 1.2", b"PRI * HTTP/2.0 inside TLS is not HTTP/2 in clear", b"z" * BIG_LINE]
        context = ssl.create_default_context(cafile=str(cert))
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        back = b""
        for _ in range(50):  # s_server takes a moment to listen
            try:
                raw = socket.create_connection(("127.0.0.1", OPENSSL_PORT), timeout=10)
                break
            except ConnectionRefusedError:
                time.sleep(0.1)
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            version = tls.version()
            for line in lines:
                tls.sendall(line + b"\n")
            while back.count(b"\n") < len(lines):
                chunk = tls.recv(65536)
                if not chunk:
                    break
                back += chunk
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    return {
        "port": OPENSSL_PORT,
        "software": subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
        + " s_server, Python ssl client",
        "version": version,
        "carries": "text lines reversed by s_server -rev",
        "lines_sent": len(lines),
        "bytes_back": len(back),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        key, cert = certificate(tmp)
        tcpdump = capture(HERE / "tls-loopback.pcap")
        try:
            connections = [grpc_over_tls(tmp, key, cert), openssl_tls12(key, cert)]
        finally:
            stop(tcpdump)
    truth = {"connections": connections, "http2_in_clear": False}
    (HERE / "tls-loopback.truth.json").write_text(json.dumps(truth, indent=1) + "\n")


if __name__ == "__main__":
    main()
