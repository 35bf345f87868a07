"""gRPC length-prefixed messages: framing across DATA frames, compression limits, hostile lengths."""

from __future__ import annotations

import gzip
import zlib

from hypothesis import given
from hypothesis import strategies as st

from protoscope.decoders.grpc.messages import MAX_DECOMPRESSED_LEN, Deframer, decompress
from protoscope.decoders.grpc.status import binary_value, grpc_message, grpc_timeout, status_details


def prefixed(body: bytes, flag: int = 0) -> bytes:
    return bytes([flag]) + len(body).to_bytes(4, "big") + body


def test_messages_split_and_joined_across_frames() -> None:
    stream = prefixed(b"a" * 10) + prefixed(b"b" * 300) + prefixed(b"")
    for cut in range(1, len(stream)):
        d = Deframer()
        first, _ = d.feed(stream[:cut], 0, 1)
        second, _ = d.feed(stream[cut:], 0, 2)
        got = [m.data for m in first + second]
        assert got == [b"a" * 10, b"b" * 300, b""]


def test_declared_2_gib_is_a_finding_and_frees_the_stream() -> None:
    d = Deframer()
    messages, findings = d.feed(b"\x00" + (2**31).to_bytes(4, "big") + b"xyz", 0, 1)
    assert messages == [] and findings[0].code == "grpc.message_too_large"
    assert d.pending == 0
    assert d.feed(b"more", 0, 2) == ([], [])


def test_gzip_and_deflate() -> None:
    assert decompress(gzip.compress(b"hello"), "gzip") == (b"hello", None)
    assert decompress(zlib.compress(b"hello"), "deflate") == (b"hello", None)
    assert decompress(b"hello", "identity") == (b"hello", None)
    body, problem = decompress(b"hello", "snappy")
    assert body is None and problem is not None and problem.code == "grpc.unknown_encoding"


def test_gzip_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"\0" * (MAX_DECOMPRESSED_LEN + 1024 * 1024), compresslevel=9)
    assert len(bomb) < 200 * 1024
    body, problem = decompress(bomb, "gzip")
    assert body is None and problem is not None and problem.code == "grpc.decompression_bomb"


def test_status_helpers() -> None:
    assert grpc_message("nobody is called %E2%80%9Cmissing%E2%80%9D") == "nobody is called “missing”"
    assert grpc_timeout("100m") == 0.1 and grpc_timeout("2S") == 2.0 and grpc_timeout("1x") is None
    assert binary_value("AQID/w") == b"\x01\x02\x03\xff"
    assert binary_value("\x00\x01\xfe") == b"\x01\xfe"  # true binary
    status = bytes([0x08, 0x05, 0x12, 0x02]) + b"no"
    assert status_details(status) == {"code": 5, "message": "no"}


@given(st.lists(st.binary(max_size=50), max_size=10))
def test_random_frames_never_raise(chunks: list[bytes]) -> None:
    d = Deframer()
    for i, chunk in enumerate(chunks):
        d.feed(chunk, 0, i + 1)
