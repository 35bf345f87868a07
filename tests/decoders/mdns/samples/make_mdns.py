"""Record mdns-response.pcap: an mDNS response such as a browser's responder sends for the
".local" name that hides a host ICE candidate (draft-ietf-mmusic-mdns-ice-candidates), with A and
AAAA answers, a PTR, SRV and TXT in the additional records and compression pointers throughout,
sent by a Python socket to 127.0.0.1:<PORT> (not 5353: tests decode it as mdns by decode-as, as
tshark does with `-d udp.port==PORT,mdns`), captured by tcpdump on lo with a filter on that port.

Run as root: python tests/decoders/mdns/samples/make_mdns.py [OUT.pcap]
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PCAP = HERE / "mdns-response.pcap"
PORT = 47353
NAME = "1f9c3b52-7d4e-4a1b-9c2d-5e6f7a8b9c0d.local"
ADDRESSES = ("192.168.1.23", "fd00::23")


def label_name(name: str) -> bytes:
    return b"".join(bytes([len(part)]) + part.encode() for part in name.split(".")) + b"\0"


def response() -> bytes:
    """The message: A and AAAA answers for NAME, then PTR, SRV and TXT records whose names point
    back into it (RFC 1035 section 4.1.4)."""
    header = struct.pack(">HHHHHH", 0, 0x8400, 0, 2, 0, 3)
    name_at = len(header)
    pointer = struct.pack(">H", 0xC000 | name_at)
    local_at = name_at + 1 + len(NAME.split(".")[0])  # the "local" label inside NAME
    local = struct.pack(">H", 0xC000 | local_at)
    a = label_name(NAME) + struct.pack(">HHIH", 1, 0x8001, 120, 4) + socket.inet_aton(ADDRESSES[0])
    aaaa = pointer + struct.pack(">HHIH", 28, 0x8001, 120, 16)
    aaaa += socket.inet_pton(socket.AF_INET6, ADDRESSES[1])
    service = b"\x06_webrt\x04_udp" + local
    ptr_data = b"\x04peer" + struct.pack(">H", 0xC000 | (name_at + len(a) + len(aaaa)))
    ptr = service + struct.pack(">HHIH", 12, 1, 4500, len(ptr_data)) + ptr_data
    srv_data = struct.pack(">HHH", 0, 0, 9) + pointer
    srv = pointer + struct.pack(">HHIH", 33, 0x8001, 120, len(srv_data)) + srv_data
    txt_data = b"\x05ice=1\x04v=16"
    txt = pointer + struct.pack(">HHIH", 16, 0x8001, 4500, len(txt_data)) + txt_data
    return header + a + aaaa + ptr + srv + txt


def record(pcap: Path) -> dict[str, object]:
    tcpdump = subprocess.Popen(
        ["tcpdump", "-i", "lo", "--immediate-mode", "-U", "-w", str(pcap), f"udp port {PORT}"],
        stderr=subprocess.PIPE,
    )
    try:
        assert tcpdump.stderr is not None
        tcpdump.stderr.readline()  # "listening on lo ...": the capture has started
        time.sleep(0.5)  # its filter is attached just after it says so
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.bind(("127.0.0.1", 0))
            sender.sendto(response(), ("127.0.0.1", PORT))
        time.sleep(0.3)
    finally:
        tcpdump.terminate()
        tcpdump.wait(timeout=10)
    return {"port": PORT, "answers": [[NAME, ip] for ip in ADDRESSES]}


def main() -> None:
    pcap = Path(sys.argv[1]) if len(sys.argv) > 1 else PCAP
    truth = record(pcap)
    pcap.with_suffix(".truth.json").write_text(json.dumps(truth, indent=1) + "\n")


if __name__ == "__main__":
    main()
