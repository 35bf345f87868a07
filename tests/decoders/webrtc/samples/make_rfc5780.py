"""Record rfc5780-loopback.pcap: coturn's RFC 5780 NAT behaviour discovery on loopback.

Run as root from the repository root: python tests/decoders/webrtc/samples/make_rfc5780.py

`turnserver` (STUN only) listens on 127.0.0.1 and 127.0.0.2, ports SERVER_PORT and the next (two
addresses and two ports: what CHANGE-REQUEST and OTHER-ADDRESS need). `turnutils_natdiscovery`
runs the mapping, filtering and hairpinning tests with 1500 bytes of PADDING from LOCAL_PORT, then
the binding lifetime test (RESPONSE-PORT) with a LIFETIME_S timer. tcpdump records loopback UDP to
and from those ports. There is no NAT on loopback: every test passes, which is what the capture is
for (real RFC 5780 bytes for the decoder, and the observer's reading of them); the NAT lab
(captures/samples/make_nat.py) has the real NATs. Processes are stopped by pid in `finally`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "rfc5780-loopback.pcap"
SERVER_IPS = ("127.0.0.1", "127.0.0.2")
SERVER_PORT = 34780
LOCAL_PORT = 45000
LIFETIME_S = 2
FILTER = f"udp and (port {SERVER_PORT} or port {SERVER_PORT + 1} or portrange {LOCAL_PORT}-{LOCAL_PORT + 10})"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemExit(f"{name} is needed (apt-get install coturn tcpdump)")
    return path


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="rfc5780-"))
    server = [tool("turnserver"), "-n", "-S", "--no-tls", "--no-dtls", "--no-cli", "--simple-log"]
    server += [a for ip in SERVER_IPS for a in ("-L", ip)]
    server += ["-p", str(SERVER_PORT), "--alt-listening-port", str(SERVER_PORT + 1)]
    server += ["--log-file", str(work / "turnserver.log"), "--pidfile", str(work / "turnserver.pid")]
    capture = [tool("tcpdump"), "-i", "lo", "-U", "-w", str(OUT), FILTER]
    discovery = [tool("turnutils_natdiscovery"), "-p", str(SERVER_PORT)]
    started: list[subprocess.Popen[bytes]] = []
    try:
        started.append(subprocess.Popen(server, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        started.append(subprocess.Popen(capture, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.5)
        local = ["-L", SERVER_IPS[0], "-l", str(LOCAL_PORT)]
        subprocess.run([*discovery, "-m", "-f", "-H", "-P", *local, SERVER_IPS[0]], timeout=30, check=True)
        subprocess.run([*discovery, "-t", "-T", str(LIFETIME_S), SERVER_IPS[0]], timeout=30, check=True)
        time.sleep(0.5)
    finally:
        for proc in reversed(started):
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
