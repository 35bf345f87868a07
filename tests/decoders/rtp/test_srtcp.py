"""SRTCP: the trailer where each profile puts it, read from real bytes (libsrtp's, through
samples/make_srtcp.py; aiortc's; the corpus' Asterisk/Zfone, WhatsApp, Google Meet, Discord),
with the profile signaled (DTLS use_srtp, SDP a=crypto) or guessed; plain compounds never SRTCP."""

from __future__ import annotations

import json
import struct
from functools import cache
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from protoscope.decoders.api import Endpoint, FlowContext
from protoscope.decoders.registry import load_registry
from protoscope.decoders.rtp import RtcpDecoder
from protoscope.decoders.rtp.packets import RtcpRecord, parse_rtcp
from protoscope.decoders.rtp.srtcp import (
    AEAD_GCM,
    GUESSED_INDEX_LIMIT,
    HMAC_SHA1_32,
    HMAC_SHA1_80,
    SRTP_MKI,
    SRTP_PROFILE,
    Trailer,
    trailers,
)
from protoscope.inspector.session import Session, flatten
from tests.conftest import SAMPLES, public_capture

HERE = Path(__file__).resolve().parent / "samples"
CLEAR_ONLY = (
    "rtcp.version",
    "rtcp.padding",
    "rtcp.rc",
    "rtcp.fmt",
    "rtcp.pt",
    "rtcp.length",
    "rtcp.senderssrc",
)
"""The fields of an SRTCP packet's clear first 8 bytes."""
TRAILER = ("srtcp.e", "srtcp.index", "srtcp.mki", "srtcp.auth_tag")


@cache
def payload(path: Path, frame: int) -> bytes:
    session = Session.open(path, load_registry())
    try:
        return bytes(session.index.payload(frame - 1))
    finally:
        session.close()


def rtcp_fields(
    data: bytes, signaled: tuple[Trailer, ...] = ()
) -> tuple[RtcpRecord, dict[str, object], list[str]]:
    rec, fields, findings = parse_rtcp(data, signaled)
    return rec, flatten(fields), [f.code for f in findings]


def test_libsrtp_sample_is_read_as_libsrtp_sent_it() -> None:
    """Every RTCP datagram of srtcp-libsrtp.pcap against what the sender gave libsrtp: the E flag,
    the SRTCP index (libsrtp counts from 1), the trailer's size for its profile, the packet types
    (all of them when in the clear or decrypted with the SDES keys of the SDP, the first when
    encrypted without a key) and nothing decoded past the first 8 bytes of those."""
    truth = json.loads((HERE / "srtcp-libsrtp.truth.json").read_text())
    sent: dict[tuple[str, str], list[dict[str, object]]] = {}
    for entry in truth["rtcp"]:
        sent.setdefault((entry["src"], entry["dst"]), []).append(entry)
    session = Session.open(HERE / "srtcp-libsrtp.pcap", load_registry())
    seen = 0
    try:
        for pd in session.decode():
            ctx = session.context(pd.index)
            for pdu in pd.pdus:
                rec = pdu.record
                if not isinstance(rec, RtcpRecord):
                    continue
                want = sent[(str(ctx.src), str(ctx.dst))].pop(0)
                fields = flatten(pdu.fields)
                assert not pdu.findings and len(session.index.payload(pd.index)) == want["len"]
                if "e" not in want:
                    assert pdu.protocol == "rtcp" and list(rec.types) == want["types"]
                    continue
                assert pdu.protocol == "srtcp" and (rec.encrypted, rec.srtcp_index) == (
                    want["e"],
                    want["index"],
                )
                assert 4 + len(str(fields["srtcp.auth_tag"])) // 2 == want["trailer"]
                if rec.encrypted and str(want["flow"]).startswith("sdes"):
                    # Keyed by the SDP's a=crypto (each side's own): decrypted whole.
                    assert list(rec.types) == want["types"] and pdu.summary.endswith("decrypted")
                elif rec.encrypted:
                    assert list(rec.types) == want["types"][:1]  # type: ignore[index]
                    assert set(fields) <= {*CLEAR_ONLY, *TRAILER, "rtcp", "rtcp.encrypted"}
                else:
                    assert list(rec.types) == want["types"]
                seen += 1
    finally:
        session.close()
    assert seen == 60 and not any(sent.values())


def test_sdes_signaled_flows_use_the_offered_suite() -> None:
    """The SIP/SDP of the libsrtp sample offers AES_CM_128_HMAC_SHA1_80 for one call and _32 for
    the other: their RTCP flows get those suites as hints, and the trailers they name."""
    session = Session.open(HERE / "srtcp-libsrtp.pcap", load_registry())
    try:
        hints = {}
        for pd in session.decode():
            ctx = session.context(pd.index)
            hints[ctx.src.port] = dict(ctx.hints)
    finally:
        session.close()
    assert hints[40001][SRTP_PROFILE] == "AES_CM_128_HMAC_SHA1_80" and SRTP_MKI not in hints[40001]
    assert hints[40021][SRTP_PROFILE] == "AES_CM_128_HMAC_SHA1_32"
    assert SRTP_PROFILE not in hints[40041 - 1]  # no signaling for the GCM flow: its trailer is guessed


def test_profiles_name_their_trailers() -> None:
    # RFC 5764 section 4.1.2: the DTLS-SRTP _32 profile keeps SRTCP's 80-bit tag.
    assert trailers("SRTP_AES128_CM_HMAC_SHA1_32") == (HMAC_SHA1_80,)
    assert trailers("SRTP_AEAD_AES_256_GCM") == (AEAD_GCM,)
    # SDES _32 suites: Asterisk and Zfone cut SRTCP's tag too, others do not.
    assert trailers("AES_CM_128_HMAC_SHA1_32") == (HMAC_SHA1_32, HMAC_SHA1_80)
    assert trailers("AES_CM_128_HMAC_SHA1_80, AEAD_AES_128_GCM", mki=4) == (
        Trailer(10, mki=4),
        Trailer(16, True, 4),
    )
    assert trailers("UDP/TLS/RTP/SAVPF") == () and trailers(None) == ()


def test_trailer_geometry() -> None:
    """RFC 3711 figure 2: E+index, MKI, tag at the end; RFC 7714 section 17: tag, E+index, MKI."""
    n = 100
    hmac = Trailer(10, mki=4)
    assert (hmac.size, hmac.index_at(n), hmac.mki_span(n), hmac.tag_span(n)) == (18, 82, (86, 90), (90, 100))
    aead = Trailer(16, aead=True, mki=4)
    assert (aead.size, aead.index_at(n), aead.tag_span(n), aead.mki_span(n)) == (24, 92, (76, 92), (96, 100))


def test_dtls_signaled_gcm_reads_a_large_index_the_guess_refuses() -> None:
    """aiortc's SRTCP (webrtc-direct frame 130, AEAD_AES_256_GCM from the DTLS handshake) with its
    index raised past GUESSED_INDEX_LIMIT: without signaling that is no SRTCP trailer (encrypted
    RTCP of an unknown kind), with the DTLS profile it is read as it lies."""
    real = payload(SAMPLES / "webrtc-direct.pcap", 130)
    rec, _, _ = rtcp_fields(real)
    assert rec.srtcp and rec.srtcp_index == 1 and rec.encrypted
    late = real[:-4] + struct.pack(">I", 0x80000000 | GUESSED_INDEX_LIMIT + 5)
    rec, fields, codes = rtcp_fields(late)
    assert not rec.srtcp and rec.encrypted and codes == ["rtcp.encrypted"] and "srtcp.index" not in fields
    rec, fields, codes = rtcp_fields(late, trailers("SRTP_AEAD_AES_256_GCM"))
    assert rec.srtcp and rec.srtcp_index == GUESSED_INDEX_LIMIT + 5 and not codes


def test_the_decoder_takes_the_profile_from_the_flow() -> None:
    """The DTLS decoder leaves the negotiated profile in ctx.shared, SDP leaves crypto suites in
    ctx.hints; the RTCP decoder reads either."""
    late = payload(SAMPLES / "webrtc-direct.pcap", 130)[:-4] + struct.pack(">I", 0xFFFF0000)

    def decode(shared: dict[str, object], hints: dict[str, str]) -> str:
        ctx = FlowContext(
            1,
            "udp",
            Endpoint("127.0.0.1", 1),
            Endpoint("127.0.0.1", 2),
            True,
            1,
            0.0,
            hints=hints,
            shared=shared,
        )
        return RtcpDecoder().decode(late, None, ctx).pdus[0].summary

    assert decode({}, {}) == "Receiver Report, SSRC=0xD400E2A1 (encrypted)"
    assert (
        decode({SRTP_PROFILE: "SRTP_AEAD_AES_256_GCM", SRTP_MKI: 0}, {})
        == "SRTCP Receiver Report, SSRC=0xD400E2A1 (encrypted), index 2147418112"
    )
    assert (
        decode({}, {SRTP_PROFILE: "AEAD_AES_256_GCM"})
        == "SRTCP Receiver Report, SSRC=0xD400E2A1 (encrypted), index 2147418112"
    )


def test_mki_between_index_and_tag() -> None:
    """libsrtp's AES_CM_128_HMAC_SHA1_80 SRTCP (E=0: the compound in the clear) with a 4-byte MKI
    put where RFC 3711 puts it, between the index and the tag: read with the signaled MKI length."""
    real = payload(HERE / "srtcp-libsrtp.pcap", 95)
    with_mki = real[:-10] + b"\x00\x00\x00\x07" + real[-10:]
    rec, fields, codes = rtcp_fields(with_mki, trailers("AES_CM_128_HMAC_SHA1_80", mki=4))
    assert rec.srtcp and not rec.encrypted and rec.types == (200, 202) and not codes
    assert (fields["srtcp.index"], fields["srtcp.mki"], fields["srtcp.auth_tag"]) == (
        1,
        "00000007",
        real[-10:].hex(),
    )


def test_corpus_srtcp_read_where_each_profile_puts_it() -> None:
    # Asterisk/Zfone (ZRTP keys, SDP says RTP/AVP): a 4-byte tag, index 1 on the first SR.
    rec, fields, _ = rtcp_fields(payload(public_capture("wswiki--Asterisk_ZFONE_XLITE.pcap"), 252))
    assert (rec.srtcp_index, rec.encrypted, fields["srtcp.auth_tag"]) == (1, True, "e6e66f23")
    assert "rtcp.sender.packetcount" not in fields  # the SR's sender info is ciphertext
    # WhatsApp through TURN: AES_CM_128_HMAC_SHA1_80, an SDES first (reduced-size RTCP).
    rec, fields, _ = rtcp_fields(payload(public_capture("ndpi--stun_wa_call.pcapng"), 21))
    assert (rec.types, rec.srtcp_index, len(str(fields["srtcp.auth_tag"]))) == ((202,), 1, 20)
    # Signal: AEAD_AES_*_GCM, E flag and index in the last 4 bytes.
    rec, fields, _ = rtcp_fields(payload(public_capture("ndpi--stun_signal.pcapng"), 131))
    assert (rec.srtcp_index, len(str(fields["srtcp.auth_tag"]))) == (1, 32)


def test_discord_rtcp_is_encrypted_and_not_decoded() -> None:
    """Discord encrypts all but the first 8 bytes with a scheme of its own (no SRTCP index word):
    the SR's sender info would be ciphertext, so it is not shown."""
    rec, fields, codes = rtcp_fields(payload(public_capture("ndpi--discord.pcap"), 101))
    assert (rec.types, rec.srtcp, rec.encrypted, codes) == ((200,), False, True, ["rtcp.encrypted"])
    assert fields["rtcp.senderssrc"] == 0xACE3 and fields["rtcp.encrypted"] == "52 bytes"
    assert not any(k.startswith(("rtcp.sender.", "rtcp.timestamp", "rtcp.ssrc.")) for k in fields)


def test_truncation_at_every_boundary() -> None:
    """Cut anywhere, an SRTCP packet never raises and never reports lengths past the datagram
    as SRTCP."""
    for real in (payload(HERE / "srtcp-libsrtp.pcap", 83), payload(HERE / "srtcp-libsrtp.pcap", 92)):
        for cut in range(len(real)):
            rec, _, codes = rtcp_fields(real[:cut])
            assert not (rec.srtcp and "rtcp.length_bad" in codes)


@st.composite
def compounds(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    out, types = b"", []
    for _ in range(draw(st.integers(1, 4))):
        pt = draw(st.sampled_from([200, 201, 202, 203, 204, 205, 206, 207]))
        body = draw(st.binary(min_size=1, max_size=12)) * 4  # a whole number of words
        count = draw(st.integers(0, 31))
        out += (
            struct.pack(">BBHI", 0x80 | count, pt, len(body) // 4 + 1, draw(st.integers(0, 2**32 - 1))) + body
        )
        types.append(pt)
    return out, types


@given(compounds(), st.sampled_from([(), (HMAC_SHA1_80,), (AEAD_GCM,), (HMAC_SHA1_32, HMAC_SHA1_80)]))
def test_plain_compounds_are_never_srtcp(
    case: tuple[bytes, list[int]], signaled: tuple[Trailer, ...]
) -> None:
    """A compound whose packet lengths add up to the datagram is plain RTCP, whatever its bytes
    and even on a flow signaling called SRTP. (Its random bodies may be too short for their type:
    the full RTCP decode says so, but never with an SRTCP finding.)"""
    data, types = case
    rec, _, codes = rtcp_fields(data, signaled)
    assert not rec.srtcp and not rec.encrypted and list(rec.types) == types
    assert set(codes) <= {"rtcp.truncated"}


@given(st.binary(max_size=120), st.sampled_from([(), (AEAD_GCM,), (Trailer(10, mki=4),)]))
def test_random_bytes_never_raise(data: bytes, signaled: tuple[Trailer, ...]) -> None:
    parse_rtcp(b"\x80\xc9" + data, signaled)
    parse_rtcp(data, signaled)
