"""The HTTP/2 decoder on random and mutated real bytes: findings, never an exception."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from protoscope.captures.index import load
from protoscope.decoders.api import Endpoint, FlowContext
from protoscope.decoders.http2 import Http2Decoder
from tests.conftest import SAMPLES


def client_bytes() -> bytes:
    ix = load(SAMPLES / "grpc-demo.pcap")
    try:
        return b"".join(ix.payload(i) for i in range(len(ix)) if int(ix.direction[i]) == 0)[:6000]
    finally:
        ix.close()


REAL = client_bytes()
CTX = FlowContext(0, "tcp", Endpoint("127.0.0.1", 40000), Endpoint("127.0.0.1", 50051), True, 1, 0.0)


def run(data: bytes) -> None:
    decoder = Http2Decoder()
    state = decoder.new_state()
    pos = 0
    for _ in range(10_000):
        if pos >= len(data):
            break
        result = decoder.decode(data[pos:], state, CTX)
        assert 0 <= result.consumed <= len(data) - pos
        for pdu in result.pdus:
            list(pdu.fields)  # the lazy detail tree must build too
        if result.consumed == 0:
            break
        pos += result.consumed


def test_real_client_stream_decodes() -> None:
    assert REAL.startswith(b"PRI * HTTP/2.0")
    run(REAL)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(REAL) - 1), st.integers(0, 255)), max_size=20))
def test_mutated_real_frames(flips: list[tuple[int, int]]) -> None:
    data = bytearray(REAL)
    for at, value in flips:
        data[at] = value
    run(bytes(data))


@given(st.binary(max_size=2000))
def test_random_bytes(data: bytes) -> None:
    run(data)


@given(st.binary(max_size=200))
def test_random_bytes_after_the_preface(data: bytes) -> None:
    run(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + data)
