"""The HTTP/1.x decoder within its limits (issue 12): a chunked body too long to keep is followed
chunk by chunk and its bytes skipped, not buffered; WebSocket text messages are reassembled within
MAX_WS_MESSAGE and long binary frames skipped. Real bytes: the WebSocket signaling of
captures/samples/webrtc-direct.pcap (a masked offer from the browser side, aiortc's answer)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protoscope.decoders.api import DecodeResult, Endpoint, FlowContext, Pdu
from protoscope.decoders.http import HttpDecoder
from protoscope.decoders.http import decoder as dec
from protoscope.decoders.http import message as msg
from protoscope.decoders.registry import load_registry
from protoscope.inspector.session import Session, flatten
from tests.conftest import SAMPLES
from tests.decoders.http.test_message import Counting, chunked, split_sizes
from tests.pcapgen import tcp_conversation, write

OFFER_FRAME = 15
"""webrtc-direct.pcap: the offerer's masked WebSocket text frame carrying its SDP offer (JSON)."""


def payload(path: Path, frame: int) -> bytes:
    session = Session.open(path, load_registry())
    try:
        return bytes(session.index.payload(frame - 1))
    finally:
        session.close()


def context() -> FlowContext:
    return FlowContext(0, "tcp", Endpoint("127.0.0.1", 40000), Endpoint("127.0.0.1", 80), True, 1, 0.0)


def feed(stream: bytes, step: int, state: dec.Direction | None = None) -> tuple[list[Pdu], list[str], int]:
    """The stream through the decoder as the session hands it over: `step` bytes at a time, from
    the first byte not consumed, dropping the bytes a result skips. Returns the PDUs, the finding
    codes and the bytes the decoder was given in all."""
    decoder = HttpDecoder()
    state = state or decoder.new_state()
    pdus: list[Pdu] = []
    codes: list[str] = []
    buffer, at, need, skip, given = b"", 0, 0, 0, 0
    while at < len(stream):
        segment, at = stream[at : at + step], at + step
        cut = min(skip, len(segment))
        skip -= cut
        buffer += segment[cut:]
        if not buffer or (need and len(buffer) < need):
            continue
        while buffer:
            given += len(buffer)
            result: DecodeResult = decoder.decode(buffer, state, context())
            pdus += result.pdus
            codes += [f.code for f in result.findings] + [f.code for p in result.pdus for f in p.findings]
            consumed = result.consumed
            if result.skip:
                cut = min(result.skip, len(buffer) - consumed)
                consumed += cut
                skip = result.skip - cut
            buffer, need = buffer[consumed:], result.need
            if consumed == 0 or (need and len(buffer) < need):
                break
    return pdus, codes, given


def offer() -> tuple[bytes, bytes, bytes]:
    """(the real frame, its masking key, its unmasked payload)."""
    frame = payload(SAMPLES / "webrtc-direct.pcap", OFFER_FRAME)
    assert frame[1] == 0xFE  # masked, 16-bit length
    length = int.from_bytes(frame[2:4], "big")
    key, masked = frame[4:8], frame[8 : 8 + length]
    return frame, key, bytes(b ^ key[i % 4] for i, b in enumerate(masked))


def ws_frame(opcode: int, data: bytes, fin: bool = True, key: bytes | None = None) -> bytes:
    n = len(data)
    head = bytes([(0x80 if fin else 0) | opcode])
    mask = 0x80 if key is not None else 0
    if n < 126:
        head += bytes([mask | n])
    elif n < 1 << 16:
        head += bytes([mask | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([mask | 127]) + n.to_bytes(8, "big")
    if key is None:
        return head + data
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(data))


def websocket_state() -> dec.Direction:
    state = HttpDecoder().new_state()
    state.mode = "ws"
    return state


def test_long_chunked_body_is_followed_through_a_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's input at 200 KB: 100-byte chunks of text/plain, then a second response on the
    same connection. The first response is a PDU when its body passes MAX_READ_BODY, its later
    chunks are followed (each chunk-size line read once) and the second response is decoded."""
    sizes = Counting(msg._CHUNK_SIZE, "fullmatch")
    monkeypatch.setattr(msg, "_CHUNK_SIZE", sizes)
    body = (b"x" * 99 + b"\n") * 2000
    stream = chunked(body, [100] * 2000) + b"HTTP/1.1 204 No Content\r\n\r\n"
    segments = [(True, b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n")]
    segments += [(False, stream[i : i + 1400]) for i in range(0, len(stream), 1400)]
    path = write(tmp_path / "chunked.pcap", tcp_conversation(segments, server=("127.0.0.1", 80)))
    session = Session.open(path, load_registry())
    try:
        packets = list(session.decode())
    finally:
        session.close()
    http = [
        (pd.index + 1, p.summary, flatten(p.fields).get("http.file_data")) for pd in packets for p in pd.pdus
    ]
    assert [h[1:] for h in http] == [
        ("GET /stream HTTP/1.1", None),
        ("HTTP/1.1 200 OK", "chunked (not read)"),
        ("HTTP/1.1 204 No Content", None),
    ]
    assert http[-1][0] == 3 + len(segments)  # the last segment's
    findings = [(f.code, f.severity) for pd in packets for f in pd.findings]
    assert findings == [("http.body_limit", "note")]
    # Each chunk-size line read once; the one where the body passes the limit twice (found over
    # the limit, then followed).
    assert sizes.calls == 2001 + 1


def test_unterminated_chunked_body_costs_what_arrives() -> None:
    """Byte by byte: what the decoder is given in all stays near the bytes kept (MAX_READ_BODY) per
    call while the body is kept, then each byte is given once."""
    body = b"y" * 300_000
    stream = chunked(body, [100] * 3000)[: -len(b"0\r\n\r\n")]
    pdus, codes, given = feed(stream, 1400)
    assert [p.summary for p in pdus] == ["HTTP/1.1 200 OK"] and codes == ["http.body_limit"]
    kept = (msg.MAX_READ_BODY // 100) * 106 + 76  # chunks kept with their framing, and the head
    assert given < (kept // 1400 + 1) * kept + 2 * len(stream)


def test_websocket_text_in_fragments_with_a_ping_between() -> None:
    """The real offer, sent as three masked frames with a ping between the first two (RFC 6455
    section 5.4 allows control frames amid a message): one text message, its SDP handed on."""
    _, key, text = offer()
    parts = [text[:500], text[500:1500], text[1500:]]
    stream = (
        ws_frame(1, parts[0], fin=False, key=key)
        + ws_frame(9, b"ping", key=key)
        + ws_frame(0, parts[1], fin=False, key=key)
        + ws_frame(0, parts[2], key=key)
    )
    pdus, codes, _ = feed(stream, 100, websocket_state())
    assert codes == [] and len(pdus) == 4
    assert flatten(pdus[-1].fields)["websocket.payload.text"] == text.decode()
    assert pdus[-1].inner and pdus[-1].inner[0].protocol == "sdp"


def test_the_real_frame_unmasks() -> None:
    frame, _, text = offer()
    pdus, codes, _ = feed(frame, len(frame), websocket_state())
    assert codes == [] and flatten(pdus[0].fields)["websocket.payload.text"] == text.decode()
    assert b'"type": "offer"' in text


@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4))
def test_unmask_equals_the_rfc_loop(data: bytes, key: bytes) -> None:
    assert dec._unmask(data, key) == bytes(b ^ key[i % 4] for i, b in enumerate(data))


def test_long_binary_frames_are_skipped_not_buffered() -> None:
    _, key, text = offer()
    binary = bytes(range(256)) * 1000
    stream = ws_frame(2, binary, key=key) + ws_frame(1, text, key=key)
    pdus, codes, given = feed(stream, 1400, websocket_state())
    assert codes == [] and [p.summary for p in pdus] == [
        "WebSocket Binary [FIN] [MASKED]",
        "WebSocket Text [FIN] [MASKED]",
    ]
    assert pdus[0].span == (0, 14) and flatten(pdus[1].fields)["websocket.payload.text"] == text.decode()
    assert given < 3 * len(text) + 2 * 1400  # the binary payload is never handed over


def test_text_message_over_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dec, "MAX_WS_MESSAGE", 2000)
    _, key, text = offer()
    stream = ws_frame(1, text[:1500], fin=False, key=key) + ws_frame(0, text[1500:], key=key)
    stream += ws_frame(1, b'{"type": "bye"}', key=key)
    pdus, codes, _ = feed(stream, 1400, websocket_state())
    assert codes == ["websocket.message_limit"] and len(pdus) == 3
    assert "MAX_WS_MESSAGE (2000 bytes)" in pdus[1].findings[0].message
    assert "websocket.payload.text" not in flatten(pdus[1].fields)
    assert flatten(pdus[2].fields)["websocket.payload.text"] == '{"type": "bye"}'


@st.composite
def chunk_streams(draw: st.DrawFn) -> bytes:
    """Chunks, some of them broken (a size that lies, a line that is not a size, a missing CRLF),
    and random bytes."""
    out = b""
    for data, how in draw(st.lists(st.tuples(st.binary(max_size=40), st.integers(0, 5)), max_size=12)):
        size = len(data) + (7 if how == 1 else 0)
        line = b"zz" if how == 2 else b"%x" % size + (b";ext=1" if how == 3 else b"")
        out += line + b"\r\n" + data + (b"" if how == 4 else b"\r\n")
    return (
        out + draw(st.sampled_from([b"0\r\n\r\n", b"0\r\nA: b\r\n\r\n", b""])) + draw(st.binary(max_size=40))
    )


@given(
    st.one_of(st.binary(max_size=600), chunk_streams()),
    st.integers(1, 50),
    st.sampled_from([b"text/plain", b"application/grpc-web"]),
)
def test_whatever_follows_a_chunked_head_never_raises(data: bytes, step: int, ctype: bytes) -> None:
    """In whatever segments, and with the limits made small so that the chunks are also followed
    without being kept."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
    for limit in (msg.MAX_READ_BODY, 8):
        saved = msg.MAX_READ_BODY, msg.MAX_BUFFERED_BODY
        msg.MAX_READ_BODY = msg.MAX_BUFFERED_BODY = limit
        try:
            pdus, _, _ = feed(head + data, step)
        finally:
            msg.MAX_READ_BODY, msg.MAX_BUFFERED_BODY = saved
        assert all(p.span[0] <= p.span[1] for p in pdus)


@given(st.binary(max_size=300), st.lists(st.integers(1, 40), max_size=20), st.integers(1, 60))
def test_followed_or_kept_the_messages_are_the_same(body: bytes, cuts: list[int], step: int) -> None:
    """A body followed chunk by chunk (limit 8) ends where the kept one does: the same messages."""
    stream = chunked(body, split_sizes(len(body), cuts), b"X-T: 1\r\n") + b"HTTP/1.1 204 No Content\r\n\r\n"
    kept, _, _ = feed(stream, step)
    saved = msg.MAX_READ_BODY
    msg.MAX_READ_BODY = 8
    try:
        followed, codes, _ = feed(stream, step)
    finally:
        msg.MAX_READ_BODY = saved
    assert (
        [p.summary for p in followed]
        == [p.summary for p in kept]
        == ["HTTP/1.1 200 OK", "HTTP/1.1 204 No Content"]
    )
    assert codes == (["http.body_limit"] if len(body) > 8 else [])
