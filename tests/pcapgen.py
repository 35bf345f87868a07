"""Small captures for tests, written with scapy (an independent writer, not ours)."""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap


def tcp_conversation(
    segments: list[tuple[bool, bytes]],
    client: tuple[str, int] = ("127.0.0.1", 40000),
    server: tuple[str, int] = ("127.0.0.1", 6379),
) -> list[Packet]:
    """A TCP handshake then one segment per (from_client, payload), with correct sequence numbers."""
    cseq, sseq = 1000, 5000
    c, s = client, server
    base = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    pkts = [
        base / IP(src=c[0], dst=s[0]) / TCP(sport=c[1], dport=s[1], flags="S", seq=cseq),
        base / IP(src=s[0], dst=c[0]) / TCP(sport=s[1], dport=c[1], flags="SA", seq=sseq, ack=cseq + 1),
        base / IP(src=c[0], dst=s[0]) / TCP(sport=c[1], dport=s[1], flags="A", seq=cseq + 1, ack=sseq + 1),
    ]
    cseq += 1
    sseq += 1
    for from_client, data in segments:
        (src, dst), (seq, ack) = ((c, s), (cseq, sseq)) if from_client else ((s, c), (sseq, cseq))
        pkts.append(
            base
            / IP(src=src[0], dst=dst[0])
            / TCP(sport=src[1], dport=dst[1], flags="PA", seq=seq, ack=ack)
            / Raw(data)
        )
        if from_client:
            cseq += len(data)
        else:
            sseq += len(data)
    for n, p in enumerate(pkts):
        p.time = 1_700_000_000 + n / 1000
    return pkts


def udp_packets(payloads: list[bytes], sport: int = 40000, dport: int = 3478) -> list[Packet]:
    pkts = [
        Ether() / IP(src="127.0.0.1", dst="127.0.0.2") / UDP(sport=sport, dport=dport) / Raw(p)
        for p in payloads
    ]
    for n, p in enumerate(pkts):
        p.time = 1_700_000_000 + n / 1000
    return pkts


def write(path: Path, packets: list[Packet]) -> Path:
    wrpcap(str(path), packets)
    return path


RESP_SEGMENTS = [
    (True, b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"),
    (False, b"+OK\r\n"),
    (True, b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"),
    (False, b"$5\r\nva"),  # a reply split across two segments: the decoder must ask for more
    (False, b"lue\r\n"),
]
