"""TLS is never HTTP/2: captures/samples/tls-loopback.pcap (grpcio over TLS 1.3 on port 443, OpenSSL
TLS 1.2 with the certificate in clear on 47443; captures/samples/make_tls.py) decodes to no HTTP/2
PDU, whole, cut to start mid-connection, and with HTTP/2 forced on its ports."""

from __future__ import annotations

from pathlib import Path

import pytest
from hyperframe.frame import DataFrame, SettingsFrame
from scapy.utils import rdpcap, wrpcap

from protoscope.captures.index import load
from protoscope.decoders.api import Endpoint, FlowContext
from protoscope.decoders.http2 import Http2Decoder
from protoscope.decoders.http2 import frames as fr
from protoscope.decoders.http2.decoder import find_frame_start, find_http2_start
from protoscope.decoders.registry import load_registry
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES

TLS = SAMPLES / "tls-loopback.pcap"
CLIENT_HELLO = 64
"""The TLS 1.2 ClientHello (tshark: tls.handshake.type 1), where a search for two frame headers in
a row found one 125 bytes in before TLS was refused."""
CTX = FlowContext(0, "tcp", Endpoint("127.0.0.1", 40000), Endpoint("127.0.0.1", 443), True, 1, 0.0)


def streams() -> list[bytes]:
    """Each direction of each TLS connection: its payloads joined (the capture has no losses)."""
    ix = load(TLS)
    try:
        out: dict[tuple[int, int], bytearray] = {}
        for i in range(len(ix)):
            if int(ix.flow[i]) >= 0 and ix.payload_len[i]:
                out.setdefault((int(ix.flow[i]), int(ix.direction[i])), bytearray()).extend(ix.payload(i))
        return [bytes(b) for b in out.values()]
    finally:
        ix.close()


def payload(frame: int) -> bytes:
    ix = load(TLS)
    try:
        return bytes(ix.payload(frame - 1))
    finally:
        ix.close()


def http2_pdus(path: Path, decode_as: tuple[str, ...] = ()) -> tuple[int, list[str]]:
    session = Session.open(path, load_registry(decode_as=decode_as))
    try:
        pdus, codes = 0, []
        for pd in session.decode():
            pdus += sum(p.protocol in ("http2", "grpc") for p in pd.pdus)
            codes += [f.code for f in pd.findings]
        return pdus, codes
    finally:
        session.close()


def test_no_http2_in_the_tls_capture() -> None:
    pdus, codes = http2_pdus(TLS)
    assert pdus == 0 and "http2.resync" not in codes


def test_no_http2_even_when_forced_on_its_ports() -> None:
    pdus, codes = http2_pdus(TLS, ("tcp.port==443,http2", "tcp.port==47443,http2"))
    assert pdus == 0
    assert codes.count("http2.tls") == 4  # once for each direction of the two connections


@pytest.mark.parametrize("skip", [3, 8, 13, 20, 30, 45, 60, 66, 70])
def test_no_http2_when_the_capture_starts_mid_connection(tmp_path: Path, skip: int) -> None:
    """Cut at packet boundaries anywhere (mid-handshake, mid-record): still no HTTP/2."""
    path = tmp_path / "cut.pcap"
    wrpcap(str(path), rdpcap(str(TLS))[skip:])
    assert http2_pdus(path) == (0, [])


def test_the_client_hello_that_looked_like_frames() -> None:
    hello = payload(CLIENT_HELLO)
    assert hello[:3] == b"\x16\x03\x01" and fr.tls_records_at(hello, 0)
    assert find_frame_start(hello, 4096) == 125  # two plausible "frame headers" inside it
    assert find_http2_start(hello, 4096) is None
    assert not Http2Decoder().sniff(hello, CTX)


def test_every_suffix_of_every_direction_is_refused() -> None:
    for data in streams():
        for start in range(0, len(data), 97):
            assert find_http2_start(data[start:], 4096) is None, start
            assert not Http2Decoder().sniff(data[start:], CTX)


def test_tls_records_inside_http2_frames_are_payload() -> None:
    """A gRPC message may carry TLS bytes (a tunnel): inside chained frames they are not TLS."""
    record = payload(CLIENT_HELLO)
    data = SettingsFrame(0).serialize() + DataFrame(1, record).serialize() + DataFrame(1, record).serialize()
    assert find_http2_start(data) == 0
    assert find_http2_start(b"\x00\x00" + data) == 2  # two stray bytes before the frames
    assert find_http2_start(record + data) is None  # a TLS record outside them


def test_what_a_tls_record_header_is() -> None:
    head = b"\x17\x03\x03\x00\x05hello"
    assert fr.tls_records_at(head, 0)
    assert fr.tls_records_at(b"xx" + head, 2)  # the record ends where the data ends
    assert fr.tls_records_at(b"xx" + head + head, 2)  # or where the next record starts
    assert not fr.tls_records_at(b"xx" + head + b"!", 2)
    assert not fr.tls_records_at(b"\x17\x03\x05\x00\x05hello", 0)  # no TLS 3.5
    assert not fr.tls_records_at(b"\x18\x03\x03\x00\x05hello", 0)  # content type 24
    assert not fr.tls_records_at(b"\x17\x03\x03\x48\x01", 0)  # 18,433 bytes: too long
    assert not fr.tls_records_at(b"\x17\x03\x03\x00\x00", 0)  # empty
    assert fr.find_tls_records(b"ab" + head) == 2
