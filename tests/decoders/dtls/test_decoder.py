"""The DTLS decoder tells the flow which SRTP profile its handshake negotiated (RFC 5764 use_srtp),
for the RTCP decoder to find SRTCP's trailer."""

from __future__ import annotations

from pathlib import Path

from protoscope.decoders.api import Endpoint, FlowContext
from protoscope.decoders.dtls import DtlsDecoder
from protoscope.decoders.registry import load_registry
from protoscope.decoders.rtp.srtcp import SRTP_MKI, SRTP_PROFILE
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES, public_capture
from tests.decoders.dtls.test_records import handshake, record

SERVER_HELLO = 25
"""webrtc-direct.pcap: aiortc's ServerHello (with its use_srtp) alone in the datagram's first record."""


def datagram(path: Path, frame: int) -> bytes:
    session = Session.open(path, load_registry())
    try:
        return bytes(session.index.payload(frame - 1))
    finally:
        session.close()


def context() -> FlowContext:
    return FlowContext(1, "udp", Endpoint("127.0.0.1", 36790), Endpoint("127.0.0.1", 46867), False, 1, 0.0)


def test_server_hello_leaves_the_profile_for_the_flow() -> None:
    ctx = context()
    DtlsDecoder().decode(
        datagram(SAMPLES / "webrtc-direct.pcap", SERVER_HELLO), DtlsDecoder().new_state(), ctx
    )
    assert (ctx.shared[SRTP_PROFILE], ctx.shared[SRTP_MKI]) == ("SRTP_AEAD_AES_256_GCM", 0)


def test_client_hello_alone_names_no_profile() -> None:
    """The ClientHello offers profiles; only the ServerHello's choice counts (Chromium's
    handshake: frame 1 is its ClientHello)."""
    ctx = context()
    path = public_capture("pion-dtls--capture-chrome-Chromium_123.0.6312.0_.pcap")
    DtlsDecoder().decode(datagram(path, 1), DtlsDecoder().new_state(), ctx)
    assert SRTP_PROFILE not in ctx.shared


def test_server_hello_with_an_mki() -> None:
    """aiortc's ServerHello with a 2-byte srtp_mki put in its use_srtp extension: the MKI length
    goes with the profile (the MKI sits in every SRTCP trailer)."""
    real = datagram(SAMPLES / "webrtc-direct.pcap", SERVER_HELLO)
    body = real[25 : 25 + int.from_bytes(real[14:17], "big")]
    use_srtp = body.index(bytes.fromhex("000e000500020008"))
    at = 35 + body[34] + 3  # version, random, session id, cipher suite, compression: extensions' length
    total = int.from_bytes(body[at : at + 2], "big") + 2
    hello = (
        body[:at]
        + total.to_bytes(2, "big")
        + body[at + 2 : use_srtp]
        + bytes.fromhex("000e0007000200080200ab")
        + body[use_srtp + 9 :]
    )
    ctx = context()
    decoder = DtlsDecoder()
    result = decoder.decode(record(handshake(2, 0, hello, 0, len(hello))), decoder.new_state(), ctx)
    assert not result.findings
    assert (ctx.shared[SRTP_PROFILE], ctx.shared[SRTP_MKI]) == ("SRTP_AEAD_AES_256_GCM", 2)
