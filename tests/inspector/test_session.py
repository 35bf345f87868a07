"""The decoding pass: bounded heuristics, and flows no decoder takes cost only their headers."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Literal

import pytest

from protoscope.captures import reassembly
from protoscope.decoders.api import (
    SNIFF_BYTES,
    SNIFF_DATAGRAMS,
    SNIFF_SEGMENTS,
    DecodeResult,
    FlowContext,
    InnerPayload,
    Pdu,
)
from protoscope.decoders.registry import Registry, load_registry
from protoscope.inspector.session import PacketDecode, Session, flatten
from tests import pcapgen

from ..conftest import SAMPLES, public_captures

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
ETH = bytes.fromhex("020000000001020000000002") + b"\x08\x00"
SYN, ACK, PSH = 0x02, 0x10, 0x08


class CountingDecoder:
    """Takes a flow when `MAGIC` is in what it is shown; counts how often it is asked."""

    name: ClassVar[str] = "magic"
    transport: ClassVar[Literal["both"]] = "both"
    ports: ClassVar[frozenset[tuple[str, int]]] = frozenset()

    def __init__(self) -> None:
        self.sniffed: list[int] = []

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        self.sniffed.append(len(data))
        return b"MAGIC" in data

    def new_state(self) -> object:
        return None

    def decode(self, data: bytes, state: object, ctx: FlowContext) -> DecodeResult:
        return DecodeResult((Pdu("magic", (), (0, len(data)), "magic"),), consumed=len(data))


def _ip(proto: int, payload: bytes) -> bytes:
    return (
        struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0x4000, 64, proto, 0, b"\x0a\0\0\1", b"\x0a\0\0\2"
        )
        + payload
    )


def write_pcap(path: Path, frames: Iterator[bytes]) -> Path:
    """A plain pcap written with struct: scapy takes ~100 us a packet, too slow for 100,000."""
    with open(path, "wb") as out:
        out.write(PCAP_HEADER)
        for n, frame in enumerate(frames):
            out.write(struct.pack("<IIII", 1_700_000_000 + n // 1000, n % 1000, len(frame), len(frame)))
            out.write(frame)
    return path


def tcp_frames(segments: list[tuple[int, int, bytes]], sport: int = 40000, dport: int = 9) -> Iterator[bytes]:
    """Client-to-server segments (sequence number, flags, payload) of one flow."""
    for seq, flags, data in segments:
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, 0, 5 << 4, flags, 65535, 0, 0)
        yield ETH + _ip(6, tcp + data)


def stream(
    chunks: list[bytes], isn: int = 1000, skip_at: int | None = None, hole: int = 0
) -> list[tuple[int, int, bytes]]:
    """A SYN then `chunks` in order; `hole` bytes go missing before chunk `skip_at`."""
    out = [(isn, SYN, b"")]
    seq = isn + 1
    for k, data in enumerate(chunks):
        if k == skip_at:
            seq += hole
        out.append((seq, ACK | PSH, data))
        seq += len(data)
    return out


def registry_with(decoder: CountingDecoder) -> Registry:
    reg = Registry()
    reg.add(decoder)
    return reg


def codes(decodes: list[PacketDecode]) -> list[tuple[int, str, str]]:
    return [(pd.index, f.code, f.message) for pd in decodes for f in pd.findings]


def test_a_tcp_flow_no_decoder_takes_is_sniffed_a_bounded_number_of_times(tmp_path: Path) -> None:
    segments = stream([bytes([k % 251]) * 100 for k in range(100_000)], skip_at=99_990, hole=7)
    path = write_pcap(tmp_path / "bulk.pcap", tcp_frames(segments))
    decoder = CountingDecoder()
    session = Session.open(path, registry_with(decoder))
    everything = list(session.decode())
    assert len(everything) == 100_001
    assert len(decoder.sniffed) == SNIFF_SEGMENTS
    assert max(decoder.sniffed) <= SNIFF_BYTES
    decoder.sniffed.clear()
    sparse = list(session.decode(sparse=True))
    assert len(decoder.sniffed) == SNIFF_SEGMENTS
    # The sparse pass visits the sniffed segments and the last one, where the hole is reported.
    assert len(sparse) <= SNIFF_SEGMENTS + 2
    assert (
        codes(sparse)
        == codes(everything)
        == [(100_000, "tcp.gap", "7 bytes were not captured at stream offset 9999000")]
    )
    assert not any(pd.pdus for pd in everything)
    session.close()


def test_a_flow_decoded_again_alone_reports_what_the_full_pass_does(tmp_path: Path) -> None:
    segments = stream([b"z" * 50 for _ in range(40)], skip_at=30, hole=3)
    path = write_pcap(tmp_path / "hole.pcap", tcp_frames(segments))
    session = Session.open(path, registry_with(CountingDecoder()))
    full = codes(list(session.decode()))
    alone = codes(list(session.decode(packets=list(range(len(segments))))))
    assert full == alone == [(40, "tcp.gap", "3 bytes were not captured at stream offset 1500")]
    session.close()


def test_a_hole_gives_an_undecided_flow_a_fresh_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reassembly, "MAX_OUT_OF_ORDER_BYTES", 1000)
    before = [b"a" * 10] * (SNIFF_SEGMENTS - 1)
    after = [b"b" * 600, b"c" * 600, b"d" * 10, b"e" * 10, b"f" * 10, b"MAGIC"]
    segments = stream(before + after, skip_at=len(before), hole=5)
    path = write_pcap(tmp_path / "fresh.pcap", tcp_frames(segments))
    decoder = CountingDecoder()
    session = Session.open(path, registry_with(decoder))
    decodes = list(session.decode(sparse=True))
    assert [c for _, c, _ in codes(decodes)] == ["tcp.gap"]
    assert [pd.index for pd in decodes if pd.pdus] == [len(segments) - 1]
    session.close()


def test_a_udp_flow_no_decoder_takes_is_sniffed_a_bounded_number_of_times(tmp_path: Path) -> None:
    udp = (struct.pack("!HHHH", 40000, 40002, 8 + 20, 0) + bytes([k % 256]) * 20 for k in range(10_000))
    path = write_pcap(tmp_path / "udp.pcap", (ETH + _ip(17, d) for d in udp))
    decoder = CountingDecoder()
    session = Session.open(path, registry_with(decoder))
    assert len(list(session.decode())) == 10_000
    assert len(decoder.sniffed) == SNIFF_DATAGRAMS
    assert len(list(session.decode(sparse=True))) == SNIFF_DATAGRAMS + 1  # and the last, kept
    session.close()


CAPTURES = [*sorted(SAMPLES.glob("*.pcap")), *public_captures()]


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_a_sparse_pass_finds_what_the_full_pass_finds(path: Path) -> None:
    session = Session.open(path, load_registry())
    full = [pd for pd in session.decode() if pd.pdus or pd.findings]
    sparse = [pd for pd in session.decode(sparse=True) if pd.pdus or pd.findings]

    def facts(decodes: list[PacketDecode]) -> list[object]:
        return [(pd.index, [(p.protocol, p.summary) for p in pd.pdus], pd.findings) for pd in decodes]

    assert facts(sparse) == facts(full)
    session.close()


def test_a_large_body_nobody_reads_is_skipped_unread(tmp_path: Path) -> None:
    body = bytes(range(256)) * 800  # 200 KiB of application/octet-stream: nothing decodes it
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\n\r\n"
    response = head.encode() + body
    segments = [(True, b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")]
    segments += [(False, response[at : at + 1400]) for at in range(0, len(response), 1400)]
    segments += [
        (True, b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n"),
        (False, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
    ]
    path = pcapgen.write(
        tmp_path / "keepalive.pcap", pcapgen.tcp_conversation(segments, server=("127.0.0.1", 80))
    )
    session = Session.open(path, load_registry())

    def messages(decodes: list[PacketDecode]) -> list[tuple[int, str]]:
        return [(pd.index, p.summary) for pd in decodes for p in pd.pdus]

    full = list(session.decode())
    sparse = list(session.decode(sparse=True))
    expected = [
        (3, "GET /big HTTP/1.1"),
        (4, "HTTP/1.1 200 OK"),
        (len(segments) + 1, "GET /small HTTP/1.1"),
        (len(segments) + 2, "HTTP/1.1 200 OK"),
    ]
    assert messages(full) == messages(sparse) == expected
    # The one finding says the body was not read (a note: the limit, not a fault).
    assert [(f.severity, f.code) for pd in full for f in pd.findings] == [("note", "http.body_limit")]
    assert len(sparse) < 10  # the handshake's SYNs, the messages, the last packet
    fields = flatten(next(p for pd in full for p in pd.pdus if p.summary == "HTTP/1.1 200 OK").fields)
    assert fields["http.file_data"] == f"{len(body)} bytes (not read)"
    session.close()


class Carrier:
    """A stream protocol that carries another stream (as TLS carries HTTP/2): each call hands on all
    it was given as a stream inner payload for "lines"."""

    name: ClassVar[str] = "carrier"
    transport: ClassVar[Literal["stream"]] = "stream"
    ports: ClassVar[frozenset[tuple[str, int]]] = frozenset()

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        return data.startswith(b"WRAP")

    def new_state(self) -> object:
        return None

    def decode(self, data: bytes, state: object, ctx: FlowContext) -> DecodeResult:
        inner = InnerPayload(bytes(data), 0, "lines", "stream")
        return DecodeResult((Pdu("carrier", (), (0, len(data)), "", inner=(inner,)),), consumed=len(data))


class Lines:
    """One newline-terminated line a call; a line not yet whole is left unconsumed."""

    name: ClassVar[str] = "lines"
    transport: ClassVar[Literal["stream"]] = "stream"
    ports: ClassVar[frozenset[tuple[str, int]]] = frozenset()

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        return False

    def new_state(self) -> object:
        return None

    def decode(self, data: bytes, state: object, ctx: FlowContext) -> DecodeResult:
        end = bytes(data).find(b"\n")
        if end < 0:
            return DecodeResult(need=0)
        return DecodeResult((Pdu("lines", (), (0, end), bytes(data[:end]).decode()),), consumed=end + 1)


def test_a_stream_carried_in_another_stream_is_reassembled_for_its_decoder(tmp_path: Path) -> None:
    reg = Registry()
    reg.add(Carrier())
    reg.add(Lines())
    chunks = [b"WRAPab", b"c\nde", b"f\ng\nh"]
    path = write_pcap(tmp_path / "c.pcap", tcp_frames(stream(chunks)))
    session = Session.open(path, reg)
    lines = [(pd.index, p.summary) for pd in session.decode() for p in pd.pdus if p.protocol == "lines"]
    assert lines == [(2, "WRAPabc"), (3, "def"), (3, "g")]
