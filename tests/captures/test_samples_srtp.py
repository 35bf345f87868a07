"""The SRTP samples with AES-CM and HMAC-SHA1 agree with their truth.

webrtc-srtp80 and webrtc-srtp32 (captures/samples/make_webrtc.py srtp80|srtp32): aiortc peers
whose DTLS offered one SRTP profile only, H.264 video; the truth was kept by aiortc's side before
SRTP protect. sdes-srtp (captures/samples/make_sdes.py): ffmpeg sending SRTP keyed by SDES, the SDP
(with its a=crypto lines) POSTed over HTTP before the media; the truth's plaintexts were made by
pylibsrtp in the generator. These tests check the captures against the truth without our own
decryption: frame counts and ports from our index, tshark's view of the headers and of the
signaling, and pylibsrtp unprotecting every captured packet with the truth's keys.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from protoscope.captures.index import load
from tests.captures.test_samples_keys import (
    assert_srtp_unprotects,
    keylog_of,
    oracle,
    require_module,
    side_by_port,
    truth_of,
)
from tests.conftest import SAMPLES, require_tool

SRTP_TAG = {"SRTP_AES128_CM_SHA1_80": 10, "SRTP_AES128_CM_SHA1_32": 4}
"""SRTP authentication tag length of each profile (RFC 3711, RFC 5764 section 4.1.2)."""
SRTCP_TAG = 10
"""SRTCP keeps the 80-bit tag under both profiles (RFC 5764 section 4.1.2)."""
SRTCP_INDEX = 4
"""E flag and SRTCP index after the RTCP packet (RFC 3711 section 3.4)."""

WEBRTC = {"webrtc-srtp80": "SRTP_AES128_CM_SHA1_80", "webrtc-srtp32": "SRTP_AES128_CM_SHA1_32"}
"""The aiortc samples and the one DTLS-SRTP profile their peers offered."""


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway RSA key: tshark 4.0's DTLS key table needs a loadable one to name SCTP."""
    openssl = require_tool("openssl")
    path = tmp_path_factory.mktemp("rsa") / "any.pem"
    subprocess.run([openssl, "genrsa", "-out", str(path), "2048"], check=True, capture_output=True)
    return path


@pytest.fixture(scope="module", params=list(WEBRTC))
def call(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    name: str = request.param
    return name, truth_of(name)


def test_webrtc_profile_is_the_one_offered(call: tuple[str, dict[str, Any]]) -> None:
    name, truth = call
    (dtls,) = truth["dtls"]
    assert dtls["srtp_profile"] == WEBRTC[name]
    assert dtls["dtls_version"] == "DTLSv1.2"
    assert len(base64.b64decode(dtls["client_key_salt"])) == 30  # 16-byte key, 14-byte salt
    assert {dtls["dtls_client"], dtls["dtls_server"]} == {"caller", "callee"}


def test_webrtc_udp_frames_and_ports(call: tuple[str, dict[str, Any]]) -> None:
    """Every datagram each ICE socket sent is in the capture, on the ports the truth names."""
    name, truth = call
    ix = load(SAMPLES / f"{name}.pcap")
    try:
        captured: Counter[int] = Counter()
        for f in ix.flows:
            if f.transport == "udp":
                captured[f.client.port] += f.packets_c2s
                captured[f.server.port] += f.packets_s2c
        sent = {int(port): n for port, n in truth["udp_datagrams_sent"].items() if n}
        assert dict(captured) == sent
        assert set(truth["ports"].values()) <= set(sent)
        assert {f.server.port for f in ix.flows if f.transport == "tcp"} == {truth["signal_port"]}
    finally:
        ix.close()


def test_webrtc_keylog_names_the_client_hello(call: tuple[str, dict[str, Any]]) -> None:
    name, truth = call
    keys = keylog_of(name)
    randoms = {row[0] for row in oracle(truth["oracle"]["client_randoms"])}
    assert randoms == {truth["dtls"][0]["client_random"]}
    assert keys.get("CLIENT_RANDOM", bytes.fromhex(randoms.pop())) is not None


def test_webrtc_srtp_headers_are_the_plaintext_headers(call: tuple[str, dict[str, Any]]) -> None:
    """SRTP leaves the RTP header in clear and adds the profile's tag; SRTCP adds the index and an
    80-bit tag."""
    _, truth = call
    tag = SRTP_TAG[truth["dtls"][0]["srtp_profile"]]
    sides = side_by_port(truth)
    rows = oracle(truth["oracle"]["srtp_headers"])
    assert len(rows) == len(truth["rtp"])
    for (port, ssrc, seq, pt, udp_length), sent in zip(rows, truth["rtp"], strict=True):
        assert sides[port] == sent["side"]
        if "rtcp" in sent:
            assert int(udp_length) - 8 == len(sent["rtcp"]) // 2 + SRTCP_INDEX + SRTCP_TAG
            continue
        assert (int(ssrc, 16), int(seq), int(pt)) == (sent["ssrc"], sent["seq"], sent["pt"])
        assert int(udp_length) - 8 == sent["size"] + tag


def test_webrtc_opus_and_h264(call: tuple[str, dict[str, Any]]) -> None:
    """Opus audio and H.264 video both ways, every SSRC seen; H.264 sends an IDR picture."""
    _, truth = call
    sent = Counter((p["side"], p["ssrc"], p["pt"]) for p in truth["rtp"] if "rtcp" not in p)
    for m in truth["media"]:
        first = m["codecs"][0]
        assert first["mime_type"] == ("audio/opus" if m["kind"] == "audio" else "video/H264")
        assert sent[(m["side"], m["ssrc"], first["payload_type"])] > 0
    assert {ssrc for _, ssrc, _ in sent} == {m["ssrc"] for m in truth["media"]}
    video_pt = next(m["codecs"][0]["payload_type"] for m in truth["media"] if m["kind"] == "video")
    nal_types: Counter[int] = Counter()
    for p in truth["rtp"]:
        if p.get("pt") == video_pt:
            head = bytes.fromhex(p["payload_head"])
            nal_types[head[0] & 0x1F] += 1
            if head[0] & 0x1F == 28:  # FU-A: the fragmented NAL's type is in the FU header
                nal_types[100 + (head[1] & 0x1F)] += 1
    assert nal_types[24] > 0  # STAP-A (SPS and PPS, RFC 6184 section 5.7.1)
    assert nal_types[5] + nal_types[105] > 0  # an IDR slice, whole or in FU-A fragments


def test_webrtc_messages_arrived_as_sent(call: tuple[str, dict[str, Any]]) -> None:
    _, truth = call

    def key(m: dict[str, Any]) -> tuple[Any, ...]:
        return (m["label"], m["type"], m["size"], m.get("text"), m.get("hex"))

    for sender, receiver in (("caller", "callee"), ("callee", "caller")):
        sent = Counter(key(m) for m in truth["messages"] if m["side"] == sender)
        assert sent
        assert sent == Counter(key(m) for m in truth["received"] if m["side"] == receiver)


def test_webrtc_sctp_decrypted_by_tshark(call: tuple[str, dict[str, Any]], rsa_key: Path) -> None:
    """tshark, given the key log, finds each SCTP packet the peers handed to DTLS, in order."""
    _, truth = call
    sides = side_by_port(truth)
    rows = oracle(truth["oracle"]["sctp"], rsa_key)
    got = [(sides[row[0]], row[1]) for row in rows]
    assert got == [(p["side"], "0x" + (p.get("hex") or p["head"])[16:24]) for p in truth["sctp"]]
    assert {label for row in rows for label in row[4:] if label} == {"chat"}


def test_webrtc_srtp_keys_unprotect_the_capture(call: tuple[str, dict[str, Any]]) -> None:
    assert_srtp_unprotects(call[1])


# -- sdes-srtp ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sdes() -> dict[str, Any]:
    return truth_of("sdes-srtp")


def sdes_datagrams(sdes: dict[str, Any]) -> list[tuple[int, bytes]]:
    """(destination port, UDP payload) of every datagram, in capture order (tshark)."""
    return [(int(port), bytes.fromhex(data)) for port, data in oracle(sdes["oracle"]["udp"])]


def test_sdes_flows_and_ports(sdes: dict[str, Any]) -> None:
    """One UDP flow per RTP and RTCP port with the truth's packet counts; one TCP connection per
    SDP POST, to the HTTP port."""
    ix = load(SAMPLES / "sdes-srtp.pcap")
    try:
        udp = {f.server.port: f.packets_c2s + f.packets_s2c for f in ix.flows if f.transport == "udp"}
        want = {}
        for s in sdes["streams"]:
            want[s["rtp_port"]] = s["packets"]
            want[s["rtcp_port"]] = s["rtcp_packets"]
        assert udp == want
        tcp = [f for f in ix.flows if f.transport == "tcp"]
        assert len(tcp) == len(sdes["streams"])
        assert {f.server.port for f in tcp} == {sdes["http_port"]}
    finally:
        ix.close()


def test_sdes_truth_says_what_each_stream_is(sdes: dict[str, Any]) -> None:
    suites = [s["suite"] for s in sdes["streams"]]
    assert suites == ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"]
    for s in sdes["streams"]:
        key_salt = base64.b64decode(s["key_salt"])
        assert len(key_salt) == 30
        assert (base64.b64decode(s["key"]), base64.b64decode(s["salt"])) == (key_salt[:16], key_salt[16:])
        assert s["packets"] == len(s["rtp"]) >= 90  # 2 s of 20 ms packets
        assert {p["ssrc"] for p in s["rtp"]} == {s["ssrc"]}
        assert {p["pt"] for p in s["rtp"]} == {s["payload_type"]}
        seqs = [p["seq"] for p in s["rtp"]]
        assert seqs == [(seqs[0] + i) % 65536 for i in range(len(seqs))]
    assert [s["payload_type"] for s in sdes["streams"]] == [0, 97]  # PCMU, then Opus
    assert [s["srtcp_tag_length"] for s in sdes["streams"]] == [10, 4]


def test_sdes_sdp_posted_before_the_media_carries_the_key(sdes: dict[str, Any]) -> None:
    """tshark finds each SDP in an HTTP POST (application/sdp); its a=crypto line names the
    truth's suite, key and salt for the truth's port, and the POST comes before the stream's
    first datagram."""
    rows = oracle(sdes["oracle"]["http"])
    assert len(rows) == len(sdes["streams"])
    for (uri, content_type, port, suite, key, salt), s in zip(rows, sdes["streams"], strict=True):
        assert (uri, content_type, int(port), suite) == (
            s["http"]["path"],
            "application/sdp",
            s["rtp_port"],
            s["suite"],
        )
        assert bytes.fromhex(key + salt) == base64.b64decode(s["key_salt"])
        assert f"a=crypto:1 {s['suite']} inline:{s['key_salt']}" in s["sdp"].splitlines()
    order = oracle(sdes["oracle"]["order"])
    posts = [int(frame) for frame, port in order if not port]
    for post, s in zip(posts, sdes["streams"], strict=True):
        media = [int(frame) for frame, port in order if port and int(port) in (s["rtp_port"], s["rtcp_port"])]
        assert post < min(media)


def test_sdes_srtp_keys_unprotect_the_capture(sdes: dict[str, Any]) -> None:
    """pylibsrtp with the truth's key turns every captured SRTP packet into the truth's RTP, in
    order; SRTCP too where its tag is the 80 bits libsrtp expects. ffmpeg's _32 SRTCP carries a
    4-byte tag: the packet is the RTCP length plus the E flag and index plus 4."""
    pylibsrtp = require_module("pylibsrtp")
    policy = pylibsrtp.Policy
    got = sdes_datagrams(sdes)
    for s in sdes["streams"]:
        profile = getattr(policy, "SRTP_PROFILE_" + s["suite"].replace("AES_CM_128_HMAC", "AES128_CM"))
        key = base64.b64decode(s["key_salt"])
        session = pylibsrtp.Session(policy(key=key, ssrc_type=policy.SSRC_ANY_INBOUND, srtp_profile=profile))
        rtp = [data for port, data in got if port == s["rtp_port"]]
        rtcp = [data for port, data in got if port == s["rtcp_port"]]
        assert len(rtp) == len(s["rtp"])
        for data, sent in zip(rtp, s["rtp"], strict=True):
            plain = session.unprotect(data)
            assert hashlib.sha256(plain).hexdigest() == sent["sha256"]
            assert len(data) - len(plain) == s["srtp_tag_length"]
        assert len(rtcp) == len(s["rtcp"]) >= 1
        for data, sent in zip(rtcp, s["rtcp"], strict=True):
            assert len(data) == len(sent["hex"]) // 2 + SRTCP_INDEX + s["srtcp_tag_length"]
            assert data[:8].hex() == sent["hex"][:16]  # the first header and SSRC stay clear
            if s["srtcp_tag_length"] == SRTCP_TAG:
                assert session.unprotect_rtcp(data).hex() == sent["hex"]
                assert sent["checked_by"] == "pylibsrtp"


def test_sdes_rtcp_ends_with_a_bye(sdes: dict[str, Any]) -> None:
    """ffmpeg (-rtpflags send_bye) closes each stream with SR + BYE for its SSRC."""
    for s in sdes["streams"]:
        last = bytes.fromhex(s["rtcp"][-1]["hex"])
        sr_length = 4 * (int.from_bytes(last[2:4], "big") + 1)
        assert last[1] == 200 and last[sr_length + 1] == 203
        assert int.from_bytes(last[sr_length + 4 : sr_length + 8], "big") == s["ssrc"]
