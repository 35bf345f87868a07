"""Record captures/samples/loopback-basic.pcap with tcpdump and write its truth file.

Real software on 127.0.0.1 only: a TCP server and client exchanging a few lines (including one
reply split over two sends), and a UDP sender. tcpdump captures them with a filter on our ports.
Run as root from the repository root: python captures/samples/make_loopback.py
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PCAP = HERE / "loopback-basic.pcap"
TRUTH = HERE / "loopback-basic.truth.json"
TCP_PORT, UDP_PORT = 47001, 47002


def serve(listener: socket.socket, seen: list[bytes]) -> None:
    conn, _ = listener.accept()
    with conn:
        while data := conn.recv(4096):
            seen.append(data)
            conn.sendall(b"OK " + data.strip()[:10])
            conn.sendall(b" (split reply)\r\n")


def main() -> None:
    tcpdump = subprocess.Popen(
        ["tcpdump", "-i", "lo", "-w", str(PCAP), "-U", f"tcp port {TCP_PORT} or udp port {UDP_PORT}"],
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.5)
    listener = socket.create_server(("127.0.0.1", TCP_PORT))
    seen: list[bytes] = []
    server = threading.Thread(target=serve, args=(listener, seen))
    server.start()
    sent_tcp = [b"HELLO protoscope\r\n", b"PING 1\r\n", b"PING 2\r\n"]
    replies = b""
    with socket.create_connection(("127.0.0.1", TCP_PORT)) as c:
        client_port = c.getsockname()[1]
        c.settimeout(5)
        for line in sent_tcp:
            c.sendall(line)
            reply = b""
            while not reply.endswith(b"\r\n"):
                reply += c.recv(4096)
            replies += reply
    server.join()
    listener.close()
    datagrams = [b"datagram %d" % i for i in range(5)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        udp_port = u.getsockname()[1]
        for d in datagrams:
            u.sendto(d, ("127.0.0.1", UDP_PORT))
            time.sleep(0.01)
    time.sleep(1.0)
    tcpdump.terminate()  # only the process we started
    tcpdump.wait(timeout=10)
    TRUTH.write_text(
        json.dumps(
            {
                "tool": "tcpdump -i lo -U",
                "tcp": {
                    "client": f"127.0.0.1:{client_port}",
                    "server": f"127.0.0.1:{TCP_PORT}",
                    "client_sent": b"".join(sent_tcp).decode(),
                    "server_sent": replies.decode(),
                },
                "udp": {
                    "client": f"127.0.0.1:{udp_port}",
                    "server": f"127.0.0.1:{UDP_PORT}",
                    "datagrams": len(datagrams),
                },
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
