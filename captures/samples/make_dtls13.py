"""Record dtls13-keys.pcap: DTLS 1.3 (RFC 9147) made by wolfSSL, with the key log that decrypts it.

Run as root from the repository root (tcpdump needs it):
python captures/samples/make_dtls13.py [--wolfssl PREFIX | --build-wolfssl DIR]

OpenSSL (3.0) has no DTLS 1.3; wolfSSL has, but Debian bookworm's libwolfssl is built without it
(no wolfDTLSv1_3_client_method) and without the secret callback. So the peer is linked against a
wolfSSL built from Debian's own source package with `--enable-dtls --enable-dtls13` and
HAVE_SECRET_CALLBACK: `--build-wolfssl DIR` does it (apt-get source wolfssl with a deb-src list
of its own, autogen.sh, configure, make install into DIR; needs autoconf, automake, libtool), then
`--wolfssl DIR` reuses it. The capture in the repository was made with wolfSSL 5.5.4.

The peer is dtls13_peer.c beside this script, compiled here with gcc. One connection per cipher
suite on 127.0.0.1, each on its own pair of ports; the server authenticates with a throwaway
ECDSA P-256 certificate (`openssl req`); wolfSSL's DTLS 1.3 server asks for a cookie first
(HelloRetryRequest). The client and the server take turns, four messages each (one larger than
1000 bytes, one with non-ASCII text); on the first connection the client sends a KeyUpdate before its
third message (epoch 4). The client writes the secrets (wolfSSL_set_tls13_secret_cb) in the NSS key
log format and closes with close_notify. The truth file records the messages in order, per side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NAME = "dtls13-keys"

CASES: list[dict[str, Any]] = [
    {"port": 47611, "cipher": "TLS13-AES128-GCM-SHA256", "suite": 0x1301, "key_update_at": 4},
    {"port": 47613, "cipher": "TLS13-CHACHA20-POLY1305-SHA256", "suite": 0x1303},
    {"port": 47615, "cipher": "TLS13-AES256-GCM-SHA384", "suite": 0x1302},
    {"port": 47617, "cipher": "TLS13-AES128-CCM-SHA256", "suite": 0x1304},
]
"""The server listens on `port`, the client sends from `port + 1`."""


def messages(case: dict[str, Any]) -> list[str]:
    """Alternating: even indexes are the client's, odd the server's."""
    return [
        f"hello from the client over {case['cipher']}",
        f"hello from the server, suite 0x{case['suite']:04x}",
        "a larger one, " + "y" * 1100,
        "ok",
        "non-ASCII: h\u00e9, \u65e5\u672c, \u2713",
        "the server's third",
        "the last from the client",
        "the last from the server",
    ]


def build_wolfssl(dest: Path) -> None:
    """Debian's wolfSSL source, configured with DTLS 1.3 and the secret callback, installed in dest."""
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "lists" / "partial").mkdir(parents=True)
        (tmp / "src.list").write_text(
            "deb-src http://deb.debian.org/debian bookworm main\n"
            "deb-src http://deb.debian.org/debian-security bookworm-security main\n"
        )
        apt = [
            *("-o", f"Dir::Etc::SourceList={tmp / 'src.list'}", "-o", "Dir::Etc::SourceParts=/nonexistent"),
            *("-o", f"Dir::State::Lists={tmp / 'lists'}"),
        ]
        subprocess.run(["apt-get", *apt, "update"], check=True, capture_output=True)
        subprocess.run(["apt-get", *apt, "source", "wolfssl"], check=True, capture_output=True, cwd=tmp)
        src = next(p for p in tmp.iterdir() if p.is_dir() and p.name.startswith("wolfssl-"))
        subprocess.run(["./autogen.sh"], check=True, capture_output=True, cwd=src)
        subprocess.run(
            [
                *("./configure", f"--prefix={dest}", "--enable-dtls", "--enable-dtls13", "--enable-tls13"),
                *("--enable-aesgcm", "--enable-chacha", "--enable-aesccm", "--disable-examples"),
                *("--disable-crypttests", "--disable-benchmark", "CFLAGS=-O2 -DHAVE_SECRET_CALLBACK"),
            ],
            check=True,
            capture_output=True,
            cwd=src,
        )
        subprocess.run(["make", f"-j{os.cpu_count() or 1}"], check=True, capture_output=True, cwd=src)
        subprocess.run(["make", "install"], check=True, capture_output=True, cwd=src)


def compile_peer(prefix: Path | None, out: Path) -> Path:
    flags = [] if prefix is None else [f"-I{prefix}/include", f"-L{prefix}/lib", f"-Wl,-rpath,{prefix}/lib"]
    peer = out / "dtls13_peer"
    result = subprocess.run(
        ["gcc", "-O1", "-Wall", "-o", str(peer), str(HERE / "dtls13_peer.c"), *flags, "-lwolfssl"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(
            "cannot build dtls13_peer.c against this wolfSSL (DTLS 1.3 and HAVE_SECRET_CALLBACK are "
            f"needed; try --build-wolfssl DIR):\n{result.stderr}"
        )
    return peer


def certificate(tmp: Path) -> tuple[Path, Path]:
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
            *("-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


def connection(peer: Path, case: dict[str, Any], key: Path, cert: Path, keylog: Path) -> dict[str, Any]:
    msgs = messages(case)
    port, cipher = case["port"], case["cipher"]
    server = subprocess.Popen(
        [str(peer), "server", str(port), str(cert), str(key), cipher, *msgs],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "ready": bound and listening
        update = str(case.get("key_update_at", -1))
        subprocess.run(
            [str(peer), "client", str(port + 1), str(port), cipher, str(keylog), update, *msgs],
            check=True,
            timeout=20,
        )
        server.wait(timeout=10)
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=5)
    if server.returncode != 0:
        assert server.stderr is not None
        raise SystemExit(f"server failed: {server.stderr.read().decode(errors='replace')}")
    time.sleep(0.2)
    return {
        "port": port,
        "client_port": port + 1,
        "version": "DTLS 1.3",
        "cipher": cipher,
        "suite": case["suite"],
        "key_update_before": case.get("key_update_at"),
        "sent": {"client": msgs[0::2], "server": msgs[1::2]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wolfssl", type=Path, help="prefix of a wolfSSL built with DTLS 1.3")
    parser.add_argument(
        "--build-wolfssl", type=Path, help="build wolfSSL from Debian's source into this prefix"
    )
    args = parser.parse_args()
    prefix: Path | None = args.wolfssl
    if args.build_wolfssl is not None:
        build_wolfssl(args.build_wolfssl.resolve())
        prefix = args.build_wolfssl.resolve()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        peer = compile_peer(prefix, tmp)
        key, cert = certificate(tmp)
        keylog = tmp / f"{NAME}.keys"
        bpf = " or ".join(f"udp port {c['port']}" for c in CASES)
        tcpdump = subprocess.Popen(
            ["tcpdump", "-i", "lo", "--immediate-mode", "-U", "-w", str(HERE / f"{NAME}.pcap"), bpf],
            stderr=subprocess.PIPE,
        )
        assert tcpdump.stderr is not None
        tcpdump.stderr.readline()  # "listening on lo ...": capturing from here on
        try:
            connections = [connection(peer, c, key, cert, keylog) for c in CASES]
        finally:
            time.sleep(0.5)
            tcpdump.terminate()
            tcpdump.wait(timeout=10)
        (HERE / f"{NAME}.keys").write_text(keylog.read_text())
    truth = {
        "transport": "udp",
        "keylog": f"{NAME}.keys",
        "implementation": "wolfSSL",
        "connections": connections,
    }
    (HERE / f"{NAME}.truth.json").write_text(json.dumps(truth, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
