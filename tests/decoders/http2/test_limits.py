"""The HTTP/2 decoder's bounds: open streams per connection, header lists not kept per stream,
and the receiver's SETTINGS_HEADER_TABLE_SIZE, on frames made with hyperframe and hpack."""

from __future__ import annotations

import gc
import tracemalloc

import pytest
from hpack import Encoder
from hyperframe.frame import DataFrame, HeadersFrame, SettingsFrame

from protoscope.decoders.api import Endpoint, FlowContext, Pdu
from protoscope.decoders.http2 import Http2Decoder
from protoscope.decoders.http2 import decoder as h2
from protoscope.decoders.http2.frames import PREFACE

CLIENT, SERVER = Endpoint("10.0.0.1", 40000), Endpoint("10.0.0.2", 50051)


def context(shared: dict[str, object], from_client: bool, frame: int) -> FlowContext:
    src, dst = (CLIENT, SERVER) if from_client else (SERVER, CLIENT)
    return FlowContext(0, "tcp", src, dst, from_client, frame, float(frame), shared=shared)


class Connection:
    """Both directions of one connection through one decoder, a packet at a time."""

    def __init__(self) -> None:
        self.decoder = Http2Decoder()
        self.states = (self.decoder.new_state(), self.decoder.new_state())
        self.shared: dict[str, object] = {}
        self.frame = 0

    def send(self, from_client: bool, data: bytes) -> list[Pdu]:
        self.frame += 1
        result = self.decoder.decode(
            data, self.states[not from_client], context(self.shared, from_client, self.frame)
        )
        assert result.consumed == len(data)
        return list(result.pdus)

    @property
    def streams(self) -> list[int]:
        conn = self.shared["http2"]
        assert isinstance(conn, h2.Connection)
        return list(conn.streams)


def request(encoder: Encoder, sid: int) -> bytes:
    block = encoder.encode(
        [(":method", "POST"), (":scheme", "http"), (":path", "/x.Y/Z"), ("content-type", "application/grpc")]
    )
    return HeadersFrame(sid, block, flags=["END_HEADERS"]).serialize()


def codes(pdus: list[Pdu]) -> list[str]:
    return [f.code for p in pdus for f in p.findings]


def test_the_oldest_stream_is_forgotten_past_max_open_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(h2, "MAX_OPEN_STREAMS", 3)
    c, enc = Connection(), Encoder()
    c.send(False, SettingsFrame(0).serialize())
    c.send(True, PREFACE + SettingsFrame(0).serialize())
    for sid in (1, 3, 5):
        assert codes(c.send(True, request(enc, sid))) == []
    pdus = c.send(True, request(enc, 7))
    assert codes(pdus) == ["http2.streams_limit"]
    assert "stream 1, the oldest" in pdus[0].findings[0].message
    assert c.streams == [3, 5, 7]
    assert codes(c.send(True, request(enc, 9))) == []  # once per connection
    assert c.streams == [5, 7, 9]
    # A stream that ended leaves room: no stream is forgotten for the next one.
    c.send(True, DataFrame(5, b"\x00\x00\x00\x00\x00", flags=["END_STREAM"]).serialize())
    c.send(
        False,
        HeadersFrame(
            5, Encoder().encode([(":status", "200")]), flags=["END_HEADERS", "END_STREAM"]
        ).serialize(),
    )
    assert c.streams == [7, 9]
    c.send(True, request(enc, 11))
    assert c.streams == [7, 9, 11]
    # DATA on a forgotten stream is read by its bytes, as on a stream whose headers were never seen.
    pdus = c.send(True, DataFrame(1, b"\x00\x00\x00\x00\x02\x08\x01").serialize())
    assert [p.protocol for p in pdus] == ["http2", "grpc"]


def test_open_streams_keep_no_header_lists() -> None:
    """Streams that never end keep what their headers set (path, content-type, encodings), not the
    headers: 200 streams of 500 fields each held ~20 MB of Header objects."""
    c = Connection()
    c.send(True, PREFACE + SettingsFrame(0).serialize())
    filler = b"\x82" * 500  # ":method: GET", 500 times
    frames = [HeadersFrame(2 * n + 1, filler, flags=["END_HEADERS"]).serialize() for n in range(200)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for frame in frames:
            c.send(True, frame)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(c.streams) == 200
    assert held < 1_000_000


def test_a_size_update_over_the_receivers_setting() -> None:
    """The client advertised SETTINGS_HEADER_TABLE_SIZE 256: the server's size update to 4096
    breaks RFC 7541 6.3 (a finding on its frame)."""
    c, enc = Connection(), Encoder()
    c.send(True, PREFACE + SettingsFrame(0, settings={SettingsFrame.HEADER_TABLE_SIZE: 256}).serialize())
    c.send(True, request(enc, 1))
    block = b"\x3f\xe1\x1f" + Encoder().encode([(":status", "200"), ("content-type", "application/grpc")])
    pdus = c.send(
        False, SettingsFrame(0).serialize() + HeadersFrame(1, block, flags=["END_HEADERS"]).serialize()
    )
    assert codes(pdus) == ["hpack.table_size_over_setting"]
    assert "SETTINGS_HEADER_TABLE_SIZE of 256" in pdus[1].findings[0].message
