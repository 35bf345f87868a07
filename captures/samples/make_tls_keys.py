"""Record tls-keys.pcap and dtls-keys.pcap with the key logs that decrypt them, made by OpenSSL.

Run as root from the repository root (tcpdump needs it):
python captures/samples/make_tls_keys.py

One short connection per cipher suite on 127.0.0.1, each on its own port, between `openssl s_server`
and `openssl s_client -keylogfile` (a throwaway self-signed certificate made by `openssl req`):

* TLS 1.2: AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305, AES-128-CBC-SHA (MAC-then-encrypt:
  encrypt_then_mac refused) and AES-256-CBC-SHA256 (encrypt_then_mac, OpenSSL's default);
* TLS 1.3 (AES-128-GCM) with a KeyUpdate each way (s_client's interactive `K` asks the server to
  update too) and ALPN http/1.1; TLS 1.3 ChaCha20-Poly1305; TLS 1.3 AES-256-GCM-SHA384 with ALPN
  h2, where the client sends the HTTP/2 connection preface and an empty SETTINGS frame (its
  plaintext goes to the HTTP/2 decoder);
* DTLS 1.2 over UDP: AES-128-GCM and AES-256-CBC-SHA (encrypt_then_mac).

Each side sends lines from its standard input; the truth file records them, in order, per side.
`*.keys` is the NSS key log the clients wrote (the secrets of every connection of that capture).
"""

from __future__ import annotations

import json
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"

TLS_CASES: list[dict[str, Any]] = [
    {"port": 47511, "version": "TLS 1.2", "cipher": "ECDHE-RSA-AES128-GCM-SHA256", "suite": 0xC02F},
    {"port": 47512, "version": "TLS 1.2", "cipher": "ECDHE-RSA-AES256-GCM-SHA384", "suite": 0xC030},
    {"port": 47513, "version": "TLS 1.2", "cipher": "ECDHE-RSA-CHACHA20-POLY1305", "suite": 0xCCA8},
    {
        "port": 47514,
        "version": "TLS 1.2",
        "cipher": "AES128-SHA",
        "suite": 0x002F,
        "cbc": True,
        "no_etm": True,
    },
    {"port": 47515, "version": "TLS 1.2", "cipher": "AES256-SHA256", "suite": 0x003D, "cbc": True},
    {
        "port": 47516,
        "version": "TLS 1.3",
        "cipher": "TLS_AES_128_GCM_SHA256",
        "suite": 0x1301,
        "key_update": True,
        "alpn": "http/1.1",
    },
    {"port": 47517, "version": "TLS 1.3", "cipher": "TLS_CHACHA20_POLY1305_SHA256", "suite": 0x1303},
    {
        "port": 47518,
        "version": "TLS 1.3",
        "cipher": "TLS_AES_256_GCM_SHA384",
        "suite": 0x1302,
        "alpn": "h2",
        "h2": True,
    },
]
DTLS_CASES: list[dict[str, Any]] = [
    {"port": 47521, "version": "DTLS 1.2", "cipher": "ECDHE-RSA-AES128-GCM-SHA256", "suite": 0xC02F},
    {"port": 47522, "version": "DTLS 1.2", "cipher": "ECDHE-RSA-AES256-SHA", "suite": 0xC014, "cbc": True},
]


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


def capture(path: Path, bpf: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["tcpdump", "-i", "lo", "--immediate-mode", "-U", "-w", str(path), bpf], stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    proc.stderr.readline()  # "listening on lo ...": capturing from here on
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=10)


def send(proc: subprocess.Popen[bytes], line: str, log: list[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line.encode())
    proc.stdin.flush()
    log.append(line)
    time.sleep(0.3)


def connection(case: dict[str, Any], key: Path, cert: Path, keylog: Path, dtls: bool) -> dict[str, Any]:
    """One connection: the client says two lines, the server answers one, (a KeyUpdate each way and
    one line more each), then the client closes (close_notify)."""
    version = ["-dtls1_2"] if dtls else (["-tls1_3"] if case["version"] == "TLS 1.3" else ["-tls1_2"])
    cipher = (
        ["-ciphersuites", case["cipher"]] if case["version"] == "TLS 1.3" else ["-cipher", case["cipher"]]
    )
    alpn = ["-alpn", case["alpn"]] if "alpn" in case else []
    etm = ["-no_etm"] if case.get("no_etm") else []
    server = subprocess.Popen(
        [
            *("openssl", "s_server", "-quiet", "-naccept", "1", "-accept", f"{HOST}:{case['port']}"),
            *("-key", str(key), "-cert", str(cert), *version, *cipher, *alpn, *etm),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    client = subprocess.Popen(
        [
            *("openssl", "s_client", "-quiet", "-no_ign_eof", "-connect", f"{HOST}:{case['port']}"),
            *("-keylogfile", str(keylog), "-servername", "localhost", *version, *cipher, *alpn, *etm),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.8)
    sent: dict[str, list[str]] = {"client": [], "server": []}
    if case.get("h2"):
        # RFC 9113 section 3.4: the preface, then a SETTINGS frame (empty: length 0, type 4).
        send(client, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00", sent["client"])
    send(client, f"hello from the client over {case['cipher']}\n", sent["client"])
    send(client, "a second line, " + "x" * 300 + "\n", sent["client"])
    send(server, f"hello from the server, suite 0x{case['suite']:04x}\n", sent["server"])
    if case.get("key_update"):
        assert client.stdin is not None
        client.stdin.write(b"K\n")  # s_client: KeyUpdate, update_requested (the server updates too)
        client.stdin.flush()
        time.sleep(0.5)
        send(client, "after the key update, client\n", sent["client"])
        send(server, "after the key update, server\n", sent["server"])
    for proc in (client, server):
        assert proc.stdin is not None
        proc.stdin.close()
    client.wait(timeout=10)
    try:
        server.wait(timeout=5)
    except subprocess.TimeoutExpired:
        server.terminate()
        server.wait(timeout=5)
    return {k: v for k, v in case.items() if k not in ("no_etm", "cbc", "h2")} | {
        "encrypt_then_mac": bool(case.get("cbc")) and not case.get("no_etm"),
        "sent": sent,
    }


def record(name: str, cases: list[dict[str, Any]], dtls: bool, key: Path, cert: Path, tmp: Path) -> None:
    proto = "udp" if dtls else "tcp"
    bpf = " or ".join(f"{proto} port {c['port']}" for c in cases)
    keylog = tmp / f"{name}.keys"
    tcpdump = capture(HERE / f"{name}.pcap", bpf)
    try:
        connections = [connection(c, key, cert, keylog, dtls) for c in cases]
    finally:
        stop(tcpdump)
    (HERE / f"{name}.keys").write_text(keylog.read_text())
    truth = {"transport": proto, "keylog": f"{name}.keys", "connections": connections}
    (HERE / f"{name}.truth.json").write_text(json.dumps(truth, indent=1) + "\n")


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        key, cert = certificate(tmp)
        record("tls-keys", TLS_CASES, False, key, cert, tmp)
        record("dtls-keys", DTLS_CASES, True, key, cert, tmp)


if __name__ == "__main__":
    main()
