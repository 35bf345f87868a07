"""HTTP/1.x messages read as bytes arrive (issue 12): a chunked body is read once whatever the
segmentation, a body too long to keep is followed without being kept, and malformed framing is a
finding. Real bytes: a gRPC-Web (text) client over HTTP/1.1 with chunked requests and responses;
tshark de-chunks the bodies for comparison."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protoscope.decoders.http import message as msg
from protoscope.decoders.registry import load_registry
from protoscope.inspector.session import Session
from tests.conftest import public_capture, require_tool, tshark

GRPC_WEB = "wswiki--client-grpc-web-text-http1-send-two-unary.pcapng"


def streams(path: Path) -> tuple[bytes, bytes]:
    """(client, server) bytes of the capture's one TCP connection, in frame order."""
    session = Session.open(path, load_registry())
    try:
        ix = session.index
        out = [b"", b""]
        for i in range(len(ix.flow)):
            out[int(ix.direction[i])] += bytes(ix.payload(i))
    finally:
        session.close()
    return out[0], out[1]


@pytest.fixture(scope="module")
def server() -> bytes:
    return streams(public_capture(GRPC_WEB))[1]


@pytest.fixture(scope="module")
def bodies() -> list[bytes]:
    """tshark's de-chunked bodies of the capture's four messages, in frame order."""
    require_tool("tshark")
    out = tshark("-r", str(public_capture(GRPC_WEB)), "-Y", "http", "-T", "fields", "-e", "http.file_data")
    return [line.encode() for line in out.splitlines()]


class Counting:
    """Stands in for a compiled pattern and counts the calls of one of its methods."""

    def __init__(self, pattern: re.Pattern[bytes], method: str) -> None:
        self.pattern, self.method, self.calls = pattern, method, 0

    def __getattr__(self, name: str) -> object:
        real = getattr(self.pattern, name)
        if name != self.method:
            return real

        def counted(*args: object) -> object:
            self.calls += 1
            return real(*args)

        return counted


def read_all(stream: bytes, step: int) -> list[msg.Message]:
    """Messages as the session hands bytes over: `step` more at a time, from the first byte not
    consumed, until the reader has what it needs."""
    reader = msg.Reader()
    out: list[msg.Message] = []
    start, have, need = 0, 0, 0
    while have < len(stream):
        have = min(len(stream), have + step)
        if need and have - start < need:
            continue
        while start < have:
            m, need, _ = reader.read(stream[start:have], 0, at_end=False)
            if m is None:
                break
            out.append(m)
            start += m.end
            need = 0
    return out


def test_chunked_bodies_equal_tshark(server: bytes, bodies: list[bytes]) -> None:
    got = read_all(server, len(server))
    assert [m.status for m in got] == [200, 200]
    assert [m.body for m in got] == bodies[1::2]
    assert sum(m.end for m in got) == len(server)


@pytest.mark.parametrize("step", [1, 2, 7, 64])
def test_each_chunk_line_and_head_read_once_whatever_the_segments(
    server: bytes, bodies: list[bytes], step: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Byte by byte, the reader is called ~470 times on these two responses; each chunk-size line is
    still parsed once (before: the whole body again on every call) and each head once."""
    sizes = Counting(msg._CHUNK_SIZE, "fullmatch")
    heads = 0
    real_head = msg._head

    def head(text: str, body_at: int) -> msg._Head:
        nonlocal heads
        heads += 1
        return real_head(text, body_at)

    monkeypatch.setattr(msg, "_CHUNK_SIZE", sizes)
    monkeypatch.setattr(msg, "_head", head)
    got = read_all(server, step)
    assert [m.body for m in got] == bodies[1::2]
    assert sizes.calls == 6 and heads == 2  # three chunk-size lines a response (the last one's 0)


def test_truncation_at_every_boundary(server: bytes) -> None:
    """Each prefix of the first response: no message and a need beyond the prefix until it is all
    there, whether the reader starts afresh or goes on from the shorter prefix."""
    first = read_all(server, len(server))[0]
    going_on = msg.Reader()
    for cut in range(first.end):
        for reader in (msg.Reader(), going_on):
            m, need, findings = reader.read(server[:cut], 0, at_end=False)
            assert m is None and need > cut and findings == []
    m, need, _ = going_on.read(server[: first.end], 0, at_end=False)
    assert m == first and need == 0


def test_a_different_stream_is_read_afresh(server: bytes) -> None:
    """After a hole the session gives bytes that do not start with the message the reader stopped
    in (its first PREFIX bytes differ): it reads them from their start, not from where it was."""
    reader = msg.Reader()
    assert reader.read(server[:150], 0, at_end=False)[0] is None
    other = server.replace(b"Sat, 19 Feb", b"Sun, 20 Feb", 1)
    m, _, _ = reader.read(other[: read_all(server, len(server))[0].end], 0, at_end=False)
    assert m is not None and m.header("date") == "Sun, 20 Feb 2022 15:21:37 GMT"


def chunked(body: bytes, sizes: list[int], trailer: bytes = b"") -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
    out, at = [head], 0
    for n in sizes:
        out.append(b"%x\r\n" % n + body[at : at + n] + b"\r\n")
        at += n
    return b"".join(out) + b"0\r\n" + trailer + b"\r\n"


def split_sizes(total: int, cuts: list[int]) -> list[int]:
    """Chunk sizes that add up to `total`: the cuts in order while they fit, then the rest."""
    sizes: list[int] = []
    left = total
    for n in cuts:
        if left <= 0:
            break
        sizes.append(min(n, left))
        left -= sizes[-1]
    if left:
        sizes.append(left)
    return sizes


@given(st.binary(max_size=400), st.lists(st.integers(1, 50), max_size=30), st.integers(1, 40))
def test_any_chunking_and_segmentation(body: bytes, cuts: list[int], step: int) -> None:
    sizes = split_sizes(len(body), cuts)
    stream = chunked(body, sizes, b"X-Trailer: 1\r\n") + b"HTTP/1.1 204 No Content\r\n\r\n"
    got = read_all(stream, step)
    assert [(m.status, m.body) for m in got] == [(200, body), (204, b"")]


def test_trailers_end_at_the_empty_line() -> None:
    """Before, the body ended at the first line after the last chunk: trailers became a message."""
    stream = chunked(b"abc", [3], b"Expires: never\r\nX-A: b\r\n") + b"GET / HTTP/1.1\r\n\r\n"
    got = read_all(stream, len(stream))
    assert [m.start_line for m in got] == ["HTTP/1.1 200 OK", "GET / HTTP/1.1"]


@pytest.mark.parametrize("line", [b"0x10", b"-5", b"+5", b"1_0", b"zz", b"1" * 17])
def test_a_chunk_size_that_is_not_hex_ends_the_body(line: bytes) -> None:
    stream = chunked(b"abc", [3]).replace(b"\r\n3\r\n", b"\r\n" + line + b"\r\n", 1)
    m, _, findings = msg.parse(stream, at_end=False)
    assert m is not None and m.body == b"" and [f.code for f in findings] == ["http.chunk_bad"]


def test_a_chunk_size_line_without_an_end() -> None:
    head = chunked(b"", [])[: -len(b"0\r\n\r\n")]
    m, need, _ = msg.parse(head + b"1" * 100, at_end=False)
    assert m is None and need > len(head) + 100
    m, _, findings = msg.parse(head + b"1;" + b"x" * msg.MAX_CHUNK_LINE, at_end=False)
    assert m is not None and [f.code for f in findings] == ["http.chunk_bad"]
    assert "MAX_CHUNK_LINE" not in findings[0].message and str(msg.MAX_CHUNK_LINE) in findings[0].message


def test_a_long_chunked_body_is_followed_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_READ_BODY the message ends for the session at the chunk that would not fit, with a
    note; the decoder follows the rest (tests/decoders/http/test_decoder.py)."""
    monkeypatch.setattr(msg, "MAX_READ_BODY", 100)
    stream = chunked(bytes(range(256)) * 2, [60, 60, 60, 332])
    m, need, findings = msg.parse(stream, at_end=False)
    assert m is not None and m.streamed and m.body == b"" and need == 0
    assert stream[m.end :].startswith(b"3c\r\n")  # the second 60-byte chunk is where it stopped
    assert [(f.severity, f.code) for f in findings] == [("note", "http.body_limit")]
    assert "MAX_READ_BODY (100)" in findings[0].message
    assert msg.fields(m)[-1].value == "chunked (not read)"


def test_a_body_for_a_reader_over_the_buffer_limit_is_a_warning(
    server: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(msg, "MAX_BUFFERED_BODY", 40)
    m, _, findings = msg.parse(server, at_end=False)
    assert m is not None and m.streamed
    assert [(f.severity, f.code) for f in findings] == [("warn", "http.body_limit")]
    assert "MAX_BUFFERED_BODY (40)" in findings[0].message
    length = server.replace(b"Transfer-Encoding: chunked", b"Content-Length: 41", 1)
    m, _, findings = msg.parse(length, at_end=False)
    assert m is not None and m.skipped == 41 and findings[0].code == "http.body_limit"


def test_responses_that_never_have_a_body() -> None:
    """RFC 9112 section 6.3: 1xx, 204 and 304 end at their head. Before, they took every byte after
    them in the buffer as their body (a 101's WebSocket frames among them)."""
    frames = b"\x81\x02hi"
    for status in (b"101 Switching Protocols", b"204 No Content", b"304 Not Modified"):
        head = b"HTTP/1.1 " + status + b"\r\nUpgrade: websocket\r\n\r\n"
        m, _, _ = msg.parse(head + frames, at_end=False)
        assert m is not None and m.end == len(head) and m.body == b""
