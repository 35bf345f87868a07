"""The aiortc test vectors (samples/aiortc-datachannels.json, made by samples/make_aiortc_sctp.py)
and the ways the tests run them: through the decoder directly, as a pcap for tshark, and crafted
packets with a real CRC32c for the chunks aiortc never sends."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import google_crc32c

from protoscope.decoders.api import DecodeResult, Endpoint, FlowContext
from protoscope.decoders.sctp import SctpDecoder
from protoscope.decoders.sctp.reassembly import Direction
from tests.hostile import ipv4

SAMPLES = Path(__file__).resolve().parent / "samples"
VECTORS = SAMPLES / "aiortc-datachannels.json"
T0 = 1_700_000_000.0
CLIENT, SERVER = Endpoint("10.0.0.1", 50000), Endpoint("10.0.0.2", 50001)
"""The flow's client is the DTLS client (aiortc's answerer); these addresses only label the flow."""


@cache
def vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS.read_text())
    return data


def packets(dropped: bool = True) -> list[dict[str, Any]]:
    """The packets in the order they were sent; `dropped=False`: as the receivers saw them (the
    two packets lost on purpose left out)."""
    return [p for p in vectors()["packets"] if dropped or not p["dropped"]]


def from_client(packet: dict[str, Any]) -> bool:
    return bool(packet["dtls_role"] == "client")


def ctx(frame: int, client: bool, shared: dict[str, object] | None = None, flow: int = 1) -> FlowContext:
    src, dst = (CLIENT, SERVER) if client else (SERVER, CLIENT)
    return FlowContext(
        flow, "udp", src, dst, client, frame, T0 + frame / 100, shared=shared if shared is not None else {}
    )


@dataclass
class Run:
    """A decoder with both directions' state and the flow's shared dict, as the session keeps them."""

    decoder: SctpDecoder = field(default_factory=SctpDecoder)
    states: dict[bool, Direction] = field(default_factory=dict)
    shared: dict[str, object] = field(default_factory=dict)
    frame: int = 0

    def decode(self, data: bytes, client: bool) -> DecodeResult:
        self.frame += 1
        state = self.states.setdefault(client, self.decoder.new_state())
        return self.decoder.decode(data, state, ctx(self.frame, client, self.shared))


def run_vectors(dropped: bool = True) -> list[tuple[dict[str, Any], DecodeResult]]:
    run = Run()
    return [(p, run.decode(bytes.fromhex(p["hex"]), from_client(p))) for p in packets(dropped)]


def write_pcap(path: Path, items: list[tuple[bytes, bool]]) -> Path:
    """SCTP packets in IPv4 (protocol 132), raw-IP link type, one second apart from T0, as tshark
    reads SCTP."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)]
    for n, (data, client) in enumerate(items):
        src, dst = (CLIENT.ip, SERVER.ip) if client else (SERVER.ip, CLIENT.ip)
        pkt = ipv4(src, dst, 132, data)
        out.append(struct.pack("<IIII", int(T0) + n, 0, len(pkt), len(pkt)) + pkt)
    path.write_bytes(b"".join(out))
    return path


# -- crafted packets (RFC 9260 layouts), for chunks aiortc does not send ---------------------------


def chunk(ctype: int, flags: int, value: bytes, pad: bool = True) -> bytes:
    body = struct.pack("!BBH", ctype, flags, 4 + len(value)) + value
    return body + b"\x00" * (-len(body) % 4 if pad else 0)


def packet(
    *chunks: bytes, tag: int = 0x01020304, ports: tuple[int, int] = (5000, 5000), crc: bool = True
) -> bytes:
    """A packet with a correct CRC32c (google-crc32c, as aiortc computes it), or a zero one."""
    header = struct.pack("!HHI", *ports, tag)
    body = b"".join(chunks)
    checksum = google_crc32c.value(header + b"\x00" * 4 + body) if crc else 0
    return header + struct.pack("<I", checksum) + body


def data_chunk(tsn: int, sid: int, ssn: int, ppid: int, payload: bytes, flags: int = 0x03) -> bytes:
    return chunk(0, flags, struct.pack("!IHHI", tsn, sid, ssn, ppid) + payload)


def i_data_chunk(tsn: int, sid: int, mid: int, ppid_or_fsn: int, payload: bytes, flags: int = 0x03) -> bytes:
    return chunk(64, flags, struct.pack("!IHHII", tsn, sid, 0, mid, ppid_or_fsn) + payload)


def param(ptype: int, value: bytes) -> bytes:
    body = struct.pack("!HH", ptype, 4 + len(value)) + value
    return body + b"\x00" * (-len(body) % 4)


def dcep_open(
    label: str, protocol: str = "", channel_type: int = 0, priority: int = 0, reliability: int = 0
) -> bytes:
    lb, pb = label.encode(), protocol.encode()
    return struct.pack("!BBHIHH", 3, channel_type, priority, reliability, len(lb), len(pb)) + lb + pb
