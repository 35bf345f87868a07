"""Record icmp-unreachable.pcap: real ICMP and ICMPv6 Port unreachable errors made by this host's
kernel on loopback, and the truth the test checks them against.

A UDP "peer" on 127.0.0.1 answers one STUN Binding request and closes its socket; the client's next
request to it (and one to a port nobody ever opened) makes the kernel send ICMP Destination
unreachable (Port unreachable) quoting the request. The same on ::1 gives ICMPv6 errors. tcpdump
captures with a filter on our ports and on ICMP/ICMPv6 alone.

Run as root: python tests/decoders/icmp/samples/make_icmp.py [OUT.pcap]
(the test runs it into a temporary directory; the committed sample was made the same way).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PCAP = HERE / "icmp-unreachable.pcap"
CLIENT_PORT, PEER_PORT, CLOSED_PORT = 47311, 47312, 47313
"""Ports of the test alone: the client, the peer that closes, and one never opened."""
MAGIC_COOKIE = 0x2112A442


def binding_request(transaction: bytes) -> bytes:
    """A STUN Binding request (RFC 8489) without attributes."""
    return struct.pack(">HHI", 0x0001, 0, MAGIC_COOKIE) + transaction


def exchange(family: socket.AddressFamily, host: str, truth: list[dict[str, object]]) -> None:
    """One answered request, then requests to the closed peer and to the port never opened."""
    client = socket.socket(family, socket.SOCK_DGRAM)
    peer = socket.socket(family, socket.SOCK_DGRAM)
    client.bind((host, CLIENT_PORT))
    peer.bind((host, PEER_PORT))
    first = os.urandom(12)
    client.sendto(binding_request(first), (host, PEER_PORT))
    data, source = peer.recvfrom(2048)
    peer.sendto(struct.pack(">HHI", 0x0101, 0, MAGIC_COOKIE) + data[8:20], source)
    client.recvfrom(2048)
    peer.close()
    for port in (PEER_PORT, CLOSED_PORT):
        transaction = os.urandom(12)
        client.sendto(binding_request(transaction), (host, port))
        ip = f"[{host}]" if ":" in host else host
        truth.append(
            {
                "quoted_src": f"{ip}:{CLIENT_PORT}",
                "quoted_dst": f"{ip}:{port}",
                "transaction": transaction.hex(),
                "version": 6 if ":" in host else 4,
            }
        )
        time.sleep(0.05)
    client.close()


def record(pcap: Path) -> list[dict[str, object]]:
    """Capture the exchanges into `pcap`; the truth: one entry per error the kernel should send."""
    ports = " or ".join(f"udp port {p}" for p in (CLIENT_PORT, PEER_PORT, CLOSED_PORT))
    tcpdump = subprocess.Popen(
        ["tcpdump", "-i", "lo", "--immediate-mode", "-U", "-w", str(pcap), f"{ports} or icmp or icmp6"],
        stderr=subprocess.PIPE,
    )
    try:
        assert tcpdump.stderr is not None
        tcpdump.stderr.readline()  # "listening on lo ...": the capture has started
        time.sleep(0.5)  # its filter is attached just after it says so
        truth: list[dict[str, object]] = []
        exchange(socket.AF_INET, "127.0.0.1", truth)
        exchange(socket.AF_INET6, "::1", truth)
        time.sleep(0.3)
    finally:
        tcpdump.terminate()
        tcpdump.wait(timeout=10)
    return truth


def main() -> None:
    pcap = Path(sys.argv[1]) if len(sys.argv) > 1 else PCAP
    truth = record(pcap)
    pcap.with_suffix(".truth.json").write_text(json.dumps(truth, indent=1) + "\n")


if __name__ == "__main__":
    main()
