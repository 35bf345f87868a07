"""Record reneg.pcap and reneg.keys: TLS 1.2 renegotiation between OpenSSL's s_client and s_server.

Run as root from the repository root (tcpdump needs it):
python tests/decoders/tls/samples/make_reneg.py

Two connections on 127.0.0.1, each on its own port, ECDHE-RSA-AES128-GCM-SHA256 (a throwaway
self-signed certificate made by `openssl req`); in both the client sends a line, then asks for a
renegotiation with s_client's interactive `R`, which sends a new ClientHello under the keys in
force (RFC 5246 section 7.4.1.2):

* port 47541: `s_server -client_renegotiation` accepts it: the whole handshake runs again inside
  the protected records, each side switching to the new keys at its own ChangeCipherSpec; then
  each side sends one line more under the new keys, and the client closes (close_notify);
* port 47542: `s_server` as OpenSSL 3 ships it refuses client-initiated renegotiation: it answers
  with an encrypted warning alert no_renegotiation (still under the first keys), and s_client
  gives up with a fatal handshake_failure alert.

The truth file records the lines each side sent, in order (the alerts are for tshark to say).
`reneg.keys` is the NSS key log s_client wrote: a CLIENT_RANDOM line a handshake, the first
connection's two first.
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
CIPHER = "ECDHE-RSA-AES128-GCM-SHA256"
CASES: list[dict[str, Any]] = [
    {"port": 47541, "renegotiation": "accepted"},
    {"port": 47542, "renegotiation": "refused"},
]


def certificate(tmp: Path) -> tuple[Path, Path]:
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


def send(proc: subprocess.Popen[bytes], line: str, log: list[str] | None) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line.encode())
    proc.stdin.flush()
    if log is not None:
        log.append(line)
    time.sleep(0.4)


def connection(case: dict[str, Any], key: Path, cert: Path, keylog: Path) -> dict[str, Any]:
    accept = case["renegotiation"] == "accepted"
    server = subprocess.Popen(
        [
            *("openssl", "s_server", "-quiet", "-naccept", "1", "-accept", f"{HOST}:{case['port']}"),
            *("-key", str(key), "-cert", str(cert), "-tls1_2", "-cipher", CIPHER),
            *(["-client_renegotiation"] if accept else []),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    client = subprocess.Popen(
        [
            *("openssl", "s_client", "-quiet", "-no_ign_eof", "-connect", f"{HOST}:{case['port']}"),
            *("-keylogfile", str(keylog), "-servername", "localhost", "-tls1_2", "-cipher", CIPHER),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.8)
    sent: dict[str, list[str]] = {"client": [], "server": []}
    send(client, "hello before the renegotiation\n", sent["client"])
    send(server, "the server, before\n", sent["server"])
    send(client, "R\n", None)  # s_client: renegotiate (a new ClientHello, protected)
    time.sleep(0.5)
    if accept:
        send(client, "hello after the renegotiation\n", sent["client"])
        send(server, "the server, after\n", sent["server"])
    for proc in (client, server):
        assert proc.stdin is not None
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
    client.wait(timeout=10)
    try:
        server.wait(timeout=5)
    except subprocess.TimeoutExpired:
        server.terminate()
        server.wait(timeout=5)
    return case | {"cipher": CIPHER, "suite": 0xC02F, "sent": sent}


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        key, cert = certificate(tmp)
        keylog = tmp / "reneg.keys"
        bpf = " or ".join(f"tcp port {c['port']}" for c in CASES)
        tcpdump = subprocess.Popen(
            ["tcpdump", "-i", "lo", "--immediate-mode", "-U", "-w", str(HERE / "reneg.pcap"), bpf],
            stderr=subprocess.PIPE,
        )
        assert tcpdump.stderr is not None
        tcpdump.stderr.readline()  # "listening on lo ...": capturing from here on
        try:
            connections = [connection(c, key, cert, keylog) for c in CASES]
        finally:
            time.sleep(0.5)
            tcpdump.send_signal(signal.SIGINT)
            tcpdump.wait(timeout=10)
        (HERE / "reneg.keys").write_text(keylog.read_text())
    truth = {"transport": "tcp", "keylog": "reneg.keys", "connections": connections}
    (HERE / "reneg.truth.json").write_text(json.dumps(truth, indent=1) + "\n")


if __name__ == "__main__":
    main()
