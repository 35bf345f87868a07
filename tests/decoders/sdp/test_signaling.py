"""SDP in WebSocket (JSON-wrapped) and SIP: parsed, and what it teaches the rest of the capture
(RTP endpoints with their clocks and SRTP crypto suites, ICE passwords)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from protoscope.decoders.api import Endpoint, FlowContext
from protoscope.decoders.http import HttpDecoder
from protoscope.decoders.http.message import parse as parse_message
from protoscope.decoders.registry import load_registry
from protoscope.decoders.rtp.srtcp import SRTP_MKI, SRTP_PROFILE
from protoscope.decoders.sdp import SdpDecoder, SdpRecord, find_sdp, srtp_hints
from protoscope.decoders.sdp.parse import parse
from protoscope.inspector.session import Session
from tests.conftest import public_capture
from tests.pcapgen import tcp_conversation, write

OFFER = (
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:EsAw\r\n"
    "a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y\r\na=fingerprint:sha-256 D2:FA:0E\r\na=setup:actpass\r\na=mid:0\r\n"
    "a=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\na=ssrc:3735928559 cname:x\r\na=rtcp-mux\r\n"
    "a=candidate:1 1 udp 2122260223 192.168.1.2 54321 typ host\r\n"
)


def test_sdp_webrtc_attributes() -> None:
    rec, fields = parse(OFFER)
    media = rec.media[0]
    assert (media.kind, media.port, media.rtpmap[111], media.ssrcs) == (
        "audio",
        9,
        ("opus", 48000),
        [3735928559],
    )
    assert (media.ice_ufrag, media.ice_pwd, media.setup, media.rtcp_mux) == (
        "EsAw",
        "bP+XJMM09aR8AiX1jdukzR6Y",
        "actpass",
        True,
    )
    assert media.candidates[0].endswith("typ host") and rec.passwords() == {"bP+XJMM09aR8AiX1jdukzR6Y"}
    assert fields[0].name == "sdp.version"


def test_sdp_found_json_wrapped() -> None:
    body = json.dumps({"type": "offer", "sdp": OFFER}).encode()
    assert find_sdp(body) == OFFER.encode()
    assert find_sdp(b'{"type": "bye"}') is None


def ws_frame(text: bytes) -> bytes:
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(text))
    n = len(text)
    head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
    return head + key + masked


def test_websocket_signaling_capture(tmp_path: Path) -> None:
    upgrade = (
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: a\r\n\r\n"
    )
    answer = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    offer = ws_frame(json.dumps({"type": "offer", "sdp": OFFER}).encode())
    pcap = write(
        tmp_path / "ws.pcap",
        tcp_conversation([(True, upgrade), (False, answer), (True, offer)], server=("127.0.0.1", 8080)),
    )
    session = Session.open(pcap, load_registry())
    try:
        found = [p for pd in session.decode() for p in pd.pdus]
    finally:
        session.close()
    assert [p.protocol for p in found] == ["http", "http", "websocket", "sdp"]
    assert isinstance(found[-1].record, SdpRecord) and found[-1].record.media[0].ice_ufrag == "EsAw"


def test_sip_sdp_teaches_rtp_ports_and_clock() -> None:
    session = Session.open(public_capture("wswiki--sip-rtp-opus.pcap"), load_registry())
    try:
        rtp = [p.record for pd in session.decode() for p in pd.pdus if p.protocol == "rtp"]
    finally:
        session.close()
    assert rtp and all(r.clock == 48000 for r in rtp)  # type: ignore[attr-defined]


def test_http_message_framing() -> None:
    raw = (
        b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
        + b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    m, need, _ = parse_message(raw, at_end=False)
    assert m is not None and m.body == b"hello" and need == 0
    m2, _, _ = parse_message(raw[m.end :], at_end=False)
    assert m2 is not None and m2.body == b"abc" and m2.status == 200
    _, need, _ = parse_message(raw[:30], at_end=False)
    assert need > 30


@given(st.binary(max_size=400))
def test_random_bytes_never_raise(data: bytes) -> None:
    ctx = FlowContext(0, "tcp", Endpoint("127.0.0.1", 1), Endpoint("127.0.0.1", 80), True, 1, 0.0)
    decoder = HttpDecoder()
    decoder.decode(b"GET / HTTP/1.1\r\n\r\n" + data, decoder.new_state(), ctx)
    parse(data.decode("latin-1"))
    find_sdp(data)


def test_superscript_digits_are_not_numbers() -> None:
    """str.isdigit() accepts "²" but int() refuses it: ports, payload types, SSRCs, status codes
    and Content-Length made of such characters read as absent, they do not raise."""
    rec, _ = parse("v=0\r\nm=audio \xb2000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8\xb200\r\na=ssrc:\xb9 cname:x\r\n")
    assert rec.media[0].port == 0 and rec.media[0].rtpmap == {} and rec.media[0].ssrcs == []
    m, _, _ = parse_message(b"HTTP/1.1 \xb200 OK\r\nContent-Length: \xb2\r\n\r\n", at_end=True)
    assert m is not None and m.status is None


def test_sdes_crypto_and_what_it_teaches_rtp() -> None:
    """RFC 4568 a=crypto lines: the suite and the MKI length (the "|1:4" key parameter) become the
    RTP and RTCP endpoints' srtp.profile and srtp.mki hints; WebRTC's UDP/TLS/RTP/SAVPF says SRTP
    without a suite (DTLS names it); RTP/AVP says nothing."""
    sdes = (
        "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
        "m=audio 40000 RTP/SAVP 0\r\n"
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n"
        "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj\r\n"
        "m=audio 40010 RTP/AVP 0\r\n"
    )
    rec, _ = parse(sdes)
    assert rec.media[0].crypto == [("AES_CM_128_HMAC_SHA1_80", 4), ("AES_CM_128_HMAC_SHA1_32", 0)]
    assert srtp_hints(rec.media[0]) == {
        SRTP_PROFILE: "AES_CM_128_HMAC_SHA1_80,AES_CM_128_HMAC_SHA1_32",
        SRTP_MKI: "4",
    }
    assert srtp_hints(rec.media[1]) == {}
    ctx = FlowContext(0, "udp", Endpoint("10.0.0.2", 5060), Endpoint("10.0.0.1", 5060), True, 1, 0.0)
    expects = SdpDecoder().decode(sdes.encode(), None, ctx).pdus[0].expect
    rtcp = next(e for e in expects if e.protocol == "rtcp" and e.port == 40001)
    assert rtcp.hints[SRTP_PROFILE].startswith("AES_CM_128_HMAC_SHA1_80")
    webrtc, _ = parse(OFFER)
    assert srtp_hints(webrtc.media[0]) == {SRTP_PROFILE: "UDP/TLS/RTP/SAVPF"}


def test_channels_and_rtx_apt_hints() -> None:
    """rtpmap's channel count (opus/48000/2) and RTX's fmtp apt= (RFC 4588 section 8.6) reach the RTP
    endpoint's hints as rtp.channels.<pt> and rtp.apt.<pt>; a malformed apt is left out."""
    offer = OFFER + (
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98\r\nc=IN IP4 127.0.0.1\r\na=rtpmap:96 VP8/90000\r\n"
        "a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96;rtx-time=3000\r\n"
        "a=rtpmap:98 rtx/90000\r\na=fmtp:98 apt=x\r\n"
    )
    rec, _ = parse(offer)
    assert rec.media[0].channels == {111: 2} and rec.media[1].apt == {97: 96}
    ctx = FlowContext(0, "udp", Endpoint("10.0.0.2", 5060), Endpoint("10.0.0.1", 5060), True, 1, 0.0)
    expects = SdpDecoder().decode(offer.replace("0.0.0.0", "127.0.0.1").encode(), None, ctx).pdus[0].expect
    audio, video = expects
    assert audio.hints["rtp.channels.111"] == "2" and "rtp.channels.0" not in audio.hints
    assert video.hints["rtp.apt.97"] == "96" and "rtp.apt.98" not in video.hints
    assert video.hints["rtp.encoding.97"] == "rtx"
