"""SRTP and SRTCP decrypted in whole captures made by real software, against the plaintexts their
senders protected: aiortc's WebRTC calls (DTLS-SRTP, three profiles, keys from the key log),
ffmpeg's SDES streams (captures/samples/sdes-srtp.pcap) and libsrtp's SIP calls keyed by SDES
a=crypto (samples/srtcp-libsrtp.pcap)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from protoscope.decoders.api import DecodeResult, Field, FlowContext, Pdu
from protoscope.decoders.dtls import DtlsDecoder
from protoscope.decoders.registry import Registry, load_registry
from protoscope.decoders.rtp.packets import RtcpRecord, RtpRecord, parse_rtcp
from protoscope.decoders.rtp.srtp_keys import DTLS_CLIENT_IS_FLOW_CLIENT, DTLS_EXPORTER, DTLS_SRTP_LABEL
from protoscope.decoders.tls.keylog import KeyLog
from protoscope.inspector.session import Session

SAMPLES = Path(__file__).resolve().parents[3] / "captures" / "samples"
WEBRTC = ("webrtc-datachannels", "webrtc-srtp80", "webrtc-srtp32")
"""aiortc calls recorded by captures/samples/make_webrtc.py: DTLS-SRTP with AEAD_AES_256_GCM,
AES128_CM_HMAC_SHA1_80 and _32, each with its key log and the plaintexts aiortc protected."""
LIBSRTP = Path(__file__).resolve().parent / "samples" / "srtcp-libsrtp.pcap"


def truth(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.truth.json").read_text())  # type: ignore[no-any-return]


class TruthExporterDtls(DtlsDecoder):
    """The DTLS decoder without a key log, with the exporter of the truth file's keying material
    (what aiortc's OpenSSL exported) standing in for the key log's: the SRTP part is tested apart
    from the DTLS key schedule."""

    def __init__(self, material: bytes) -> None:
        super().__init__()
        self.material = material

    def exporter(self, label: bytes, context: bytes | None, length: int) -> bytes:
        assert (label, context, length) == (DTLS_SRTP_LABEL, None, len(self.material))
        return self.material

    def decode(self, data: bytes, state: object, ctx: FlowContext) -> DecodeResult:
        result = super().decode(data, state, ctx)
        if DTLS_CLIENT_IS_FLOW_CLIENT in ctx.shared:  # the DTLS decoder saw the ClientHello
            ctx.shared[DTLS_EXPORTER] = self.exporter
        return result


def decode(registry: Registry, path: Path) -> tuple[list[Pdu], Counter[str]]:
    """Every RTP and RTCP PDU, and the count of each finding code."""
    session = Session.open(path, registry)
    out: list[Pdu] = []
    codes: Counter[str] = Counter()
    try:
        for pd in session.decode():
            codes.update(f.code for f in pd.findings)
            out += [p for p in pd.pdus if isinstance(p.record, RtpRecord | RtcpRecord)]
    finally:
        session.close()
    return out, codes


def assert_media_equals_truth(
    pdus: list[Pdu], codes: Counter[str], rtp: list[dict[str, Any]], rtcp: list[str]
) -> None:
    """Every RTP payload (by SSRC, sequence number and sha256) and RTCP compound (hex) the senders
    protected, decrypted; nothing else, and no SRTP finding."""
    want_rtp = Counter((r["ssrc"], r["seq"], r["payload_sha256"]) for r in rtp)
    want_rtcp = Counter(rtcp)
    got_rtp: Counter[tuple[int, int, str]] = Counter()
    got_rtcp: Counter[str] = Counter()
    for pdu in pdus:
        rec = pdu.record
        if isinstance(rec, RtpRecord):
            assert rec.payload is not None, pdu.summary
            got_rtp[(rec.ssrc, rec.seq, hashlib.sha256(rec.payload).hexdigest())] += 1
        else:
            assert pdu.summary.endswith("decrypted"), pdu.summary
            got_rtcp[_plaintext_of(pdu, want_rtcp)] += 1
    assert got_rtp == want_rtp and len(got_rtp) > 100
    assert got_rtcp == want_rtcp and len(got_rtcp) > 1
    assert not [c for c in codes if c.startswith(("srtp.", "srtcp."))]


def webrtc_truth(name: str) -> tuple[list[dict[str, Any]], list[str]]:
    entries = truth(name)["rtp"]
    return [r for r in entries if "ssrc" in r], [r["rtcp"] for r in entries if "rtcp" in r]


def _plaintext_of(pdu: Pdu, candidates: Counter[str]) -> str:
    """The truth's RTCP compound (hex) whose decoded fields are the PDU's, trailer aside: the
    decrypted compound is read by the same parser, and its spans map 1:1 onto the ciphertext."""
    mine = [f for f in pdu.fields if not f.name.startswith("srtcp.")]
    for hex_text in candidates:
        theirs: list[Field] = parse_rtcp(bytes.fromhex(hex_text))[1]
        if theirs == mine:
            return hex_text
    return "no truth compound has these fields"


@pytest.mark.parametrize("name", WEBRTC)
def test_webrtc_srtp_and_srtcp_equal_what_aiortc_protected(name: str) -> None:
    material = base64.b64decode(truth(name)["dtls"][0]["keying_material"])
    registry = load_registry(use_plugins=False)
    registry.add(TruthExporterDtls(material), guest=False)  # type: ignore[arg-type]
    assert_media_equals_truth(*decode(registry, SAMPLES / f"{name}.pcap"), *webrtc_truth(name))


@pytest.mark.parametrize("name", WEBRTC)
def test_webrtc_media_decrypts_from_the_key_log_alone(name: str) -> None:
    """What a user does: --keylog. The DTLS decoder's exporter (RFC 5705 over the key log's master
    secret) gives the keying material."""
    keylog = KeyLog()
    keylog.add_text((SAMPLES / f"{name}.keys").read_text(), f"{name}.keys")
    registry = load_registry(use_plugins=False)
    registry.configure({"tls.keylog": keylog})
    assert_media_equals_truth(*decode(registry, SAMPLES / f"{name}.pcap"), *webrtc_truth(name))


def test_ffmpeg_sdes_streams_decrypt_from_their_sdp() -> None:
    """sdes-srtp.pcap: ffmpeg's own SRTP (libavformat, not libsrtp) sending AES_CM_128_HMAC_SHA1_80
    and _32 (32-bit SRTCP tags too), keyed by the a=crypto of the declarative SDP it POSTed over
    HTTP, which names the stream's destination."""
    streams = truth("sdes-srtp")["streams"]
    rtp = [r for s in streams for r in s["rtp"]]
    rtcp = [r["hex"] for s in streams for r in s["rtcp"]]
    pdus, codes = decode(load_registry(use_plugins=False), SAMPLES / "sdes-srtp.pcap")
    assert_media_equals_truth(pdus, codes, rtp, rtcp)


def test_sdes_calls_of_the_libsrtp_sample_decrypt_from_their_sdp() -> None:
    """The SIP calls offering AES_CM_128_HMAC_SHA1_80 and _32 (the latter with Asterisk's 32-bit
    SRTCP tag) decrypt with the a=crypto keys of their SDP: every RTP payload is the 160 bytes of
    0xFF the sender gave libsrtp; the flows without signaled keys stay as they were."""
    pdus, codes = decode(load_registry(use_plugins=False), LIBSRTP)
    decrypted = [p for p in pdus if isinstance(p.record, RtpRecord) and "SRTP decrypted" in p.summary]
    assert Counter(p.record.ssrc for p in decrypted) == {1563795457: 60, 1563795458: 60}
    assert all(p.record.payload == b"\xff" * 160 for p in decrypted)
    srtcp = [p for p in pdus if p.summary.endswith("decrypted") and isinstance(p.record, RtcpRecord)]
    assert len(srtcp) == 20 and not codes
