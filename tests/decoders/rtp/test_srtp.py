"""SRTP and SRTCP decryption (decoders/rtp/srtp*.py) against pylibsrtp (libsrtp 2), the oracle:
packets it protected decrypt to what it was given, for every profile it has, across a sequence
number wrap; replays, wrong keys and every truncation are findings with nothing decoded."""

from __future__ import annotations

import base64
import dataclasses
import random
import struct
from collections.abc import Iterator

import numpy as np
import pylibsrtp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protoscope.decoders.api import DecodeResult, Endpoint, FlowContext
from protoscope.decoders.rtp import RtcpDecoder, RtpDecoder
from protoscope.decoders.rtp.packets import RtcpRecord, RtpRecord, parse_rtcp
from protoscope.decoders.rtp.srtcp import SRTP_PROFILE
from protoscope.decoders.rtp.srtp import (
    PROFILES,
    MasterKey,
    ReplayList,
    SrtpCrypto,
    decrypt_many,
    estimate_index,
    rtp_header_len,
    unprotect_run,
)
from protoscope.decoders.rtp.srtp_fields import SRTP_FIELDS
from protoscope.decoders.rtp.srtp_flow import SEARCH_PACKETS, SrtpState, decrypt_pinned
from protoscope.decoders.rtp.srtp_keys import (
    DTLS_CLIENT_IS_FLOW_CLIENT,
    DTLS_EXPORTER,
    DTLS_SRTP_LABEL,
    SrtpKeyOption,
    parse_crypto,
    parse_srtp_key,
    sdes_hint,
)
from protoscope.inspector.session import flatten

P = pylibsrtp.Policy
ORACLE = {
    "SRTP_AES128_CM_HMAC_SHA1_80": P.SRTP_PROFILE_AES128_CM_SHA1_80,
    "SRTP_AES128_CM_HMAC_SHA1_32": P.SRTP_PROFILE_AES128_CM_SHA1_32,
    "SRTP_AEAD_AES_128_GCM": P.SRTP_PROFILE_AEAD_AES_128_GCM,
    "SRTP_AEAD_AES_256_GCM": P.SRTP_PROFILE_AEAD_AES_256_GCM,
}
"""The profiles libsrtp (through pylibsrtp) protects with."""
SSRC = 0x1234ABCD
CALLER, CALLEE = Endpoint("127.0.0.1", 40000), Endpoint("127.0.0.1", 40010)


def master(name: str, seed: int = 1) -> tuple[bytes, MasterKey]:
    profile = PROFILES[name]
    blob = random.Random(seed).randbytes(profile.master_len)
    return blob, MasterKey(profile, blob[: profile.key_len], blob[profile.key_len :])


def sender(name: str, blob: bytes) -> pylibsrtp.Session:
    return pylibsrtp.Session(P(blob, P.SSRC_ANY_OUTBOUND, 0, ORACLE[name]))


def rtp(seq: int, payload: bytes, ssrc: int = SSRC, first: int = 0x80, ext: bytes = b"") -> bytes:
    """An RTP packet; `first` carries the P, X and CC bits (CSRCs and extension are appended)."""
    csrcs = b"".join(struct.pack(">I", 0x1000 + k) for k in range(first & 0x0F))
    header = struct.pack(">BBHII", first, 96, seq & 0xFFFF, seq * 960 & 0xFFFFFFFF, ssrc) + csrcs + ext
    return header + payload


def packets(count: int, start: int = 0, seed: int = 2) -> Iterator[tuple[bytes, bytes]]:
    """(plain RTP packet, its payload): sizes of real media (20-1100 bytes), some with CSRCs, a
    header extension or padding."""
    rng = random.Random(seed)
    for seq in range(start, start + count):
        payload = rng.randbytes(rng.randint(20, 1100))
        kind = seq % 4
        if kind == 1:
            yield rtp(seq, payload, first=0x82), payload
        elif kind == 2:
            ext = b"\xbe\xde\x00\x01" + bytes([0x10, 0xAB, 0, 0])
            yield rtp(seq, payload, first=0x90, ext=ext), payload
        elif kind == 3:
            yield rtp(seq, payload + b"\0\0\x03", first=0xA0), payload
        else:
            yield rtp(seq, payload), payload


def sealed(packet: bytes, payload: bytes) -> bytes:
    """What SRTP encrypts of a packet (what decrypt_many gives back): the payload and its padding."""
    return packet[packet.rindex(payload) :] if payload else b""


def ctx(src: Endpoint = CALLER, dst: Endpoint = CALLEE, **kw: object) -> FlowContext:
    return FlowContext(1, "udp", src, dst, src == CALLER, 1, 0.0, **kw)  # type: ignore[arg-type]


def keyed(key: MasterKey, by: int | Endpoint = SSRC) -> RtpDecoder:
    """An RTP decoder configured with one --srtp-key."""
    dec = RtpDecoder()
    key = dataclasses.replace(key, source="--srtp-key")
    opt = SrtpKeyOption(key, ssrc=by) if isinstance(by, int) else SrtpKeyOption(key, sender=by)
    dec.configure({"srtp.keys": [opt]})
    return dec


def only(result: DecodeResult) -> RtpRecord:
    assert len(result.pdus) == 1
    rec = result.pdus[0].record
    assert isinstance(rec, RtpRecord)
    return rec


def codes(result: DecodeResult) -> list[str]:
    return [f.code for f in (*result.findings, *(f for p in result.pdus for f in p.findings))]


# -- the oracle ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ORACLE)
def test_every_profile_decrypts_what_libsrtp_protected_across_a_wrap(name: str) -> None:
    """300 packets from sequence number 65,400: the rollover counter goes to 1 at the wrap, and
    every payload (CSRCs, header extensions and padding around it) is what libsrtp was given."""
    blob, key = master(name)
    tx = sender(name, blob)
    dec, state = keyed(key), SrtpState()
    for plain, payload in packets(300, start=65_400):
        result = dec.decode(tx.protect(plain), state, ctx())
        rec = only(result)
        assert rec.payload == payload and not codes(result)
        fields = flatten(result.pdus[0].fields)
        assert fields["srtp.roc"] == (1 if rec.seq < 65_400 else 0)
        assert len(str(fields["srtp.auth_tag"])) == 2 * key.profile.rtp_tag
        assert result.pdus[0].summary.endswith("SRTP decrypted (--srtp-key)")
    assert state.rtp[SSRC].replay.top == (1 << 16) | (65_400 + 299 - 65_536)


@pytest.mark.parametrize("name", ORACLE)
def test_decrypt_many_equals_libsrtp_and_refuses_bad_packets(name: str) -> None:
    blob, key = master(name)
    tx = sender(name, blob)
    plain = list(packets(400, start=65_300))
    for k in (3, 4, 399):  # empty payloads, between others and last
        plain[k] = (rtp(65_300 + k, b""), b"")
    wire = [tx.protect(p) for p, _ in plain]
    wire[7] = wire[7][:-1] + bytes([wire[7][-1] ^ 1])  # a bad tag
    wire.append(wire[20])  # a replay
    wire.append(wire[30][:11])  # cut short
    got = decrypt_many(SrtpCrypto(key), wire, {})
    want: list[bytes | None] = [None if k == 7 else sealed(p, pl) for k, (p, pl) in enumerate(plain)]
    assert got == [*want, None, None]


@pytest.mark.parametrize("name", ORACLE)
def test_srtcp_both_directions_decrypt_to_what_libsrtp_protected(name: str) -> None:
    """DTLS-SRTP keys from an exporter: the DTLS client's packets with the client key, the
    server's with the server key, each SRTCP compound whole (SR + SDES, RR + BYE)."""
    profile = PROFILES[name]
    kl, sl = profile.key_len, profile.salt_len
    material = random.Random(5).randbytes(2 * (kl + sl))
    client = material[:kl] + material[2 * kl : 2 * kl + sl]
    server = material[kl : 2 * kl] + material[2 * kl + sl :]

    def exporter(label: bytes, context: bytes | None, length: int) -> bytes:
        assert (label, context, length) == (DTLS_SRTP_LABEL, None, len(material))
        return material

    shared: dict[str, object] = {
        DTLS_EXPORTER: exporter,
        SRTP_PROFILE: name,
        DTLS_CLIENT_IS_FLOW_CLIENT: False,
    }
    sr = struct.pack(">BBHI", 0x80, 200, 6, SSRC) + bytes(range(20))
    sdes = struct.pack(">BBHI", 0x81, 202, 3, SSRC) + b"\x01\x04abcd\0\0"
    rr = struct.pack(">BBHI", 0x80, 201, 1, SSRC + 1)
    bye = struct.pack(">BBHI", 0x81, 203, 1, SSRC + 1)
    dec = RtcpDecoder()
    # The flow's client is the DTLS server here: its packets use the server key.
    for blob, compound, src, dst in ((server, sr + sdes, CALLER, CALLEE), (client, rr + bye, CALLEE, CALLER)):
        tx = sender(name, blob)
        state = dec.new_state()
        for index in (1, 2):
            result = dec.decode(tx.protect_rtcp(compound), state, ctx(src, dst, shared=shared))
            pdu = result.pdus[0]
            rec = pdu.record
            assert isinstance(rec, RtcpRecord) and not codes(result)
            assert (pdu.protocol, rec.srtcp, rec.encrypted, rec.srtcp_index) == ("srtcp", True, True, index)
            fields = flatten(pdu.fields)
            want = flatten(parse_rtcp(compound)[1])
            assert {k: v for k, v in fields.items() if k in want} == want
            assert fields["srtcp.index"] == index and fields["srtcp.e"] is True


def test_rtcp_muxed_on_the_rtp_flow_is_decrypted_by_the_rtp_decoder() -> None:
    name = "SRTP_AES128_CM_HMAC_SHA1_80"
    blob, key = master(name)
    tx = sender(name, blob)
    sr = struct.pack(">BBHI", 0x80, 200, 6, SSRC) + bytes(20)
    result = keyed(key).decode(tx.protect_rtcp(sr), SrtpState(), ctx())
    assert result.pdus[0].protocol == "srtcp" and result.pdus[0].summary.endswith("decrypted")


# -- rollover counter, replays, wrong keys, truncation ----------------------------------------------


def test_index_estimate_follows_rfc_3711() -> None:
    assert estimate_index(0x0000_FFFE, 1) == 0x1_0001  # a wrap
    assert estimate_index(0x1_0002, 0xFFFF) == 0x0_FFFF  # late from before the wrap
    assert estimate_index(0x0_0002, 0xFFFF) == 0x0_FFFF  # ROC 0 never goes back
    assert estimate_index(0x3_8000, 0x7000) == 0x3_7000
    window = ReplayList(100)
    assert window.check(100) == "replay" and window.check(99) is None and window.check(101) is None
    window.add(2000)
    assert window.check(100) == "old" and window.check(1999) is None


def test_a_capture_that_starts_mid_call_finds_the_rollover_counter() -> None:
    """The first packet seen has ROC 2: tried with counters from 0 up, it authenticates with 2."""
    name = "SRTP_AES128_CM_HMAC_SHA1_80"
    blob, key = master(name)
    tx = sender(name, blob)
    plain = list(packets(2 * 65_536 + 10))
    sent = [tx.protect(p) for p, _ in plain]
    dec, state = keyed(key), SrtpState()
    for (_, payload), wire in zip(plain[-5:], sent[-5:], strict=True):
        result = dec.decode(wire, state, ctx())
        assert only(result).payload == payload and flatten(result.pdus[0].fields)["srtp.roc"] == 2


@pytest.mark.parametrize("name", ["SRTP_AES128_CM_HMAC_SHA1_80", "SRTP_AEAD_AES_128_GCM"])
def test_a_replay_is_a_finding(name: str) -> None:
    blob, key = master(name)
    tx = sender(name, blob)
    dec, state = keyed(key), SrtpState()
    first, payload = next(packets(1, start=10))
    wire = tx.protect(first)
    assert not codes(dec.decode(wire, state, ctx()))
    again = dec.decode(wire, state, ctx())
    assert codes(again) == ["srtp.replay"] and only(again).payload == payload  # authentic all the same
    sr = tx.protect_rtcp(struct.pack(">BBHI", 0x80, 201, 1, SSRC))
    assert not codes(dec.decode(sr, state, ctx()))
    assert codes(dec.decode(sr, state, ctx())) == ["srtcp.replay"]


@pytest.mark.parametrize("name", ORACLE)
def test_a_wrong_key_decodes_nothing(name: str) -> None:
    blob, _ = master(name)
    _, wrong = master(name, seed=9)
    tx = sender(name, blob)
    dec, state = keyed(wrong), SrtpState()
    for plain, _payload in packets(10):
        result = dec.decode(tx.protect(plain), state, ctx())
        assert codes(result) == ["srtp.auth_failed"] and only(result).payload is None
        assert not any(f.name.startswith("srtp.") for f in result.pdus[0].fields)
    # Counters were searched for the first SEARCH_PACKETS packets only: a key that never fits costs
    # one try a packet after that.
    assert (state.failures[SSRC], state.searches) == (10, SEARCH_PACKETS)
    sr = tx.protect_rtcp(struct.pack(">BBHI", 0x80, 200, 6, SSRC) + bytes(20))
    result = dec.decode(sr, state, ctx())
    assert "srtcp.auth_failed" in codes(result)
    rec = result.pdus[0].record
    assert isinstance(rec, RtcpRecord) and rec.encrypted and list(rec.types) == [200]


def test_without_a_key_srtp_reads_as_before() -> None:
    """Without a key nor signaling that says SRTP, the packet is read as plain RTP (its payload
    is what follows the header); when the flow's DTLS or SDP named SRTP, its record has no payload
    (no codec fact is read from ciphertext)."""
    name = "SRTP_AES128_CM_HMAC_SHA1_80"
    blob, _ = master(name)
    wire = sender(name, blob).protect(rtp(1, b"x" * 50))
    result = RtpDecoder().decode(wire, SrtpState(), ctx())
    assert only(result).payload == wire[12:] and not codes(result)
    for signaled in (ctx(shared={SRTP_PROFILE: name}), ctx(hints={SRTP_PROFILE: "RTP/SAVP"})):
        result = RtpDecoder().decode(wire, SrtpState(), signaled)
        assert only(result).payload is None and not codes(result)


@pytest.mark.parametrize("name", ORACLE)
def test_truncation_at_every_boundary_is_a_finding(name: str) -> None:
    """Every prefix of an SRTP packet (with CSRCs and an extension) and of an SRTCP packet: a
    finding, no payload, never an exception."""
    blob, key = master(name)
    tx = sender(name, blob)
    plain = rtp(1, b"payload" * 5, first=0x91, ext=b"\xbe\xde\x00\x01\x10\xab\x00\x00")
    wire = tx.protect(plain)
    srtcp = tx.protect_rtcp(struct.pack(">BBHI", 0x80, 200, 6, SSRC) + bytes(20))
    dec = keyed(key)
    for cut in range(len(wire)):
        result = dec.decode(wire[:cut], SrtpState(), ctx())
        assert codes(result), cut
        assert all(p.record is None or getattr(p.record, "payload", None) is None for p in result.pdus)
    for cut in range(len(srtcp)):
        result = dec.decode(srtcp[:cut], SrtpState(), ctx())
        assert all(not p.summary.endswith("decrypted") for p in result.pdus), cut


@settings(max_examples=200)
@given(st.binary(max_size=200), st.sampled_from(sorted(ORACLE)))
def test_hostile_bytes_never_raise(data: bytes, name: str) -> None:
    _, key = master(name)
    for dec in (keyed(key, CALLER), RtcpDecoder()):
        dec.configure({"srtp.keys": [SrtpKeyOption(key, sender=CALLER)]})
        result = dec.decode(data, dec.new_state(), ctx())
        assert not any(str(p.summary).endswith("decrypted") for p in result.pdus)


# -- key sources -----------------------------------------------------------------------------------


def test_srtp_key_option_parses_and_explains() -> None:
    name = "AES_CM_128_HMAC_SHA1_80"
    blob, key = master(name)
    b64 = base64.b64encode(blob).decode()
    assert parse_srtp_key(f"305441741,{name},{b64}") == SrtpKeyOption(
        MasterKey(key.profile, key.key, key.salt, source="--srtp-key"), ssrc=305441741
    )
    assert parse_srtp_key(f"0x1234ABCD,srtp_aes128_cm_hmac_sha1_80,{b64}").ssrc == 0x1234ABCD
    assert parse_srtp_key(f"7,SRTP_AES128_CM_SHA1_80,{b64}").key.profile.name == "SRTP_AES128_CM_HMAC_SHA1_80"
    assert parse_srtp_key(f"10.0.0.1:5004,{name},{b64}").sender == Endpoint("10.0.0.1", 5004)
    assert parse_srtp_key(f"[2001:db8::1]:5004,{name},{b64.rstrip('=')}").sender == Endpoint(
        "2001:db8::1", 5004
    )
    for bad, why in (
        (f"1,{name}", "expected"),
        (f"1,NO_SUCH_PROFILE,{b64}", "unknown SRTP profile"),
        (f"1,{name},not*base64", "not base64"),
        (f"1,{name},{base64.b64encode(blob[:20]).decode()}", "30 bytes"),
        (f"0x1ffffffff,{name},{b64}", "32 bits"),
        (f"host:5004,{name},{b64}", "not an IP address"),
        (f"10.0.0.1:99999,{name},{b64}", "neither an SSRC"),
        (f"0xZZ,{name},{b64}", "not an SSRC"),
    ):
        with pytest.raises(ValueError, match=why) as err:
            parse_srtp_key(bad)
        assert "\n" not in str(err.value)


def test_srtp_key_by_sender_keys_only_that_sender() -> None:
    name = "SRTP_AEAD_AES_256_GCM"
    blob, key = master(name)
    wire = sender(name, blob).protect(rtp(1, b"z" * 40))
    dec = keyed(key, CALLER)
    assert only(dec.decode(wire, dec.new_state(), ctx())).payload == b"z" * 40
    other = dec.decode(wire, dec.new_state(), ctx(CALLEE, CALLER))
    assert only(other).payload == wire[12:] and not codes(other)  # read as plain RTP


def test_sdes_crypto_lines_parse() -> None:
    blob, key = master("AES_CM_128_HMAC_SHA1_32")
    inline = base64.b64encode(blob).decode()
    (got,) = parse_crypto(f"1 AES_CM_128_HMAC_SHA1_32 inline:{inline}|2^20|1:4")
    assert (got.profile.name, got.key, got.salt, got.mki, got.source) == (
        "AES_CM_128_HMAC_SHA1_32",
        key.key,
        key.salt,
        b"\0\0\0\x01",
        "SDES",
    )
    assert parse_crypto(f"AES_CM_128_HMAC_SHA1_32 inline:{inline}")[0].mki == b""
    assert len(parse_crypto(f"2 AES_CM_128_HMAC_SHA1_80 inline:{inline}|1:1;inline:{inline}|2:1")) == 2
    for bad in (
        f"1 NO_SUCH_SUITE inline:{inline}",
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{inline[:-8]}",
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{inline} KDR=3",
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{inline}|300:1",
        "1 AES_CM_128_HMAC_SHA1_80 inline:*",
        "",
    ):
        assert parse_crypto(bad) == ()


def test_sdes_keys_from_the_sdp_key_what_their_author_sends() -> None:
    """An SDP offer's a=crypto keys the offerer's packets (RFC 4568): on the media flow (whose
    hints hold both sides' keys, each named by its sender) the caller's packets decrypt with the
    offer's key, the callee's with the answer's; the callee's with the offer's key alone fail."""
    from protoscope.decoders.sdp import SdpDecoder

    offer_blob, _ = master("AES_CM_128_HMAC_SHA1_80", seed=3)
    answer_blob, _ = master("AES_CM_128_HMAC_SHA1_80", seed=4)

    def sdp(port: int, blob: bytes) -> bytes:
        return (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
            f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{base64.b64encode(blob).decode()}|2^31\r\n"
        ).encode()

    hints: dict[str, str] = {}
    for port, blob in ((CALLER.port, offer_blob), (CALLEE.port, answer_blob)):
        expect, rtcp_expect = SdpDecoder().decode(sdp(port, blob), None, ctx()).pdus[0].expect
        assert (expect.port, expect.protocol, rtcp_expect.port) == (port, "rtp", port + 1)
        assert sdes_hint("127.0.0.1", port) in expect.hints
        assert sdes_hint("127.0.0.1", port + 1) in rtcp_expect.hints  # RTCP is sent from port + 1
        hints.update(expect.hints)
    name = "SRTP_AES128_CM_HMAC_SHA1_80"  # the same transform under its DTLS-SRTP name
    dec = RtpDecoder()
    caller, callee = dec.new_state(), dec.new_state()
    from_caller = sender(name, offer_blob).protect(rtp(7, b"a" * 160, ssrc=1))
    from_callee = sender(name, answer_blob).protect(rtp(9, b"b" * 160, ssrc=2))
    assert only(dec.decode(from_caller, caller, ctx(CALLER, CALLEE, hints=hints))).payload == b"a" * 160
    assert only(dec.decode(from_callee, callee, ctx(CALLEE, CALLER, hints=hints))).payload == b"b" * 160
    wrong = dec.decode(
        from_callee,
        caller,
        ctx(
            CALLER,
            CALLEE,
            hints={sdes_hint(CALLER.ip, CALLER.port): hints[sdes_hint(CALLER.ip, CALLER.port)]},
        ),
    )
    assert codes(wrong) == ["srtp.auth_failed"]


def test_srtp_fields_are_declared() -> None:
    names = {f.abbrev for f in (*RtpDecoder.fields, *RtcpDecoder.fields)}
    assert {f.abbrev for f in SRTP_FIELDS} <= names
    assert {"srtcp.e", "srtcp.index", "srtcp.auth_tag", "srtcp.mki", "rtp.payload"} <= names


def test_decrypt_pinned_goes_on_where_the_decoder_left_off() -> None:
    """The bulk path: a direction's first packets through the decoder pin the key of their SSRC;
    the rest (across a wrap) decrypt in one call with that key, counter and replay list."""
    name = "SRTP_AES128_CM_HMAC_SHA1_80"
    blob, key = master(name)
    tx = sender(name, blob)
    plain = list(packets(200, start=65_500))
    wire = [tx.protect(p) for p, _ in plain]
    dec, state = keyed(key), SrtpState()
    for data in wire[:10]:
        dec.decode(data, state, ctx())
    stranger = sender(name, blob).protect(rtp(1, b"q" * 30, ssrc=77))  # an SSRC nobody pinned
    got = decrypt_pinned(state, [*wire[10:], wire[50], stranger])
    assert got == [*(sealed(p, pl) for p, pl in plain[10:]), None, None]
    assert state.rtp[SSRC].replay.top == (1 << 16) | (65_500 + 199 - 65_536)


def libsrtp_tuned(name: str, blob: bytes, encrypt_rtcp: bool, rtcp_tag: int | None) -> pylibsrtp.Session:
    """A libsrtp sender with SRTCP encryption off (E flag 0, authentication only) or another SRTCP
    tag size, set in libsrtp 2's srtp_crypto_policy_t as samples/make_srtcp.py does."""
    from pylibsrtp._binding import ffi

    policy = P(blob, P.SSRC_ANY_OUTBOUND, 0, ORACLE[name])
    assert ffi.sizeof("srtp_crypto_policy_t") == 24
    rtcp = ffi.cast("int *", ffi.addressof(policy._policy, "rtcp"))
    if not encrypt_rtcp:
        rtcp[5] = 2  # sec_serv_auth
    if rtcp_tag is not None:
        rtcp[4] = rtcp_tag
    return pylibsrtp.Session(policy)


@pytest.mark.parametrize(
    ("name", "suite", "encrypt", "tag"),
    [
        ("SRTP_AES128_CM_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_80", False, None),
        ("SRTP_AEAD_AES_128_GCM", "AEAD_AES_128_GCM", False, None),
        ("SRTP_AEAD_AES_256_GCM", "AEAD_AES_256_GCM", False, None),
        ("SRTP_AES128_CM_HMAC_SHA1_32", "AES_CM_128_HMAC_SHA1_32", True, 4),  # Asterisk's SRTCP tag
        ("SRTP_AES128_CM_HMAC_SHA1_32", "AES_CM_128_HMAC_SHA1_32", True, None),  # libsrtp's: 80 bits
    ],
)
def test_srtcp_without_encryption_and_with_short_tags(
    name: str, suite: str, encrypt: bool, tag: int | None
) -> None:
    """SRTCP with the E flag clear is authenticated all the same (a forged one is refused), and
    the SDES _32 suites' SRTCP tag is found at 32 or 80 bits, whichever authenticates."""
    blob, _ = master(name)
    tx = libsrtp_tuned(name, blob, encrypt, tag)
    compound = struct.pack(">BBHI", 0x80, 201, 1, SSRC) + struct.pack(">BBHI", 0x81, 203, 1, SSRC)
    wire = tx.protect_rtcp(compound)
    hints = {sdes_hint(CALLER.ip, CALLER.port): f"1 {suite} inline:{base64.b64encode(blob).decode()}"}
    dec = RtcpDecoder()
    result = dec.decode(wire, dec.new_state(), ctx(hints=hints))
    pdu = result.pdus[0]
    rec = pdu.record
    assert isinstance(rec, RtcpRecord) and not codes(result)
    assert (rec.types, rec.encrypted, rec.srtcp_index) == ((201, 203), encrypt, 1)
    assert len(str(flatten(pdu.fields)["srtcp.auth_tag"])) == 2 * (tag or (16 if "GCM" in name else 10))
    forged = bytearray(wire)
    forged[9] ^= 1
    assert "srtcp.auth_failed" in codes(dec.decode(bytes(forged), dec.new_state(), ctx(hints=hints)))


@pytest.mark.parametrize(
    ("suite", "cipher", "with_salt"), [("AES_256_CM_HMAC_SHA1_80", 5, 46), ("AES_256_CM_HMAC_SHA1_32", 5, 46)]
)
def test_aes_256_cm_sdes_suites_decrypt_what_libsrtp_protected(
    suite: str, cipher: int, with_salt: int
) -> None:
    """RFC 6188's AES_256_CM suites: libsrtp has them (SRTP_AES_ICM_256) though pylibsrtp names no
    profile for them: its policy's cipher type and key length are set directly."""
    from pylibsrtp._binding import ffi

    profile = PROFILES[suite]
    blob = random.Random(8).randbytes(profile.master_len)
    base = ORACLE["SRTP_AES128_CM_HMAC_SHA1_80" if suite.endswith("80") else "SRTP_AES128_CM_HMAC_SHA1_32"]
    policy = P(blob, P.SSRC_ANY_OUTBOUND, 0, base)
    for part in ("rtp", "rtcp"):
        ints = ffi.cast("int *", ffi.addressof(policy._policy, part))
        ints[0], ints[1] = cipher, with_salt
    tx = pylibsrtp.Session(policy)
    hints = {sdes_hint(CALLER.ip, CALLER.port): f"1 {suite} inline:{base64.b64encode(blob).decode()}"}
    dec = RtpDecoder()
    state = dec.new_state()
    for plain, payload in packets(20):
        assert only(dec.decode(tx.protect(plain), state, ctx(hints=hints))).payload == payload
    sr = struct.pack(">BBHI", 0x80, 201, 1, SSRC)
    result = dec.decode(tx.protect_rtcp(sr), state, ctx(hints=hints))
    assert result.pdus[0].summary.endswith("decrypted") and not codes(result)


def test_null_cipher_profile_authenticates_what_libsrtp_sent() -> None:
    """SRTP_NULL_HMAC_SHA1_80 (libsrtp profile 5): the payload travels in the clear, authenticated."""
    profile = PROFILES["SRTP_NULL_HMAC_SHA1_80"]
    blob = random.Random(6).randbytes(profile.master_len)
    tx = pylibsrtp.Session(P(blob, P.SSRC_ANY_OUTBOUND, 0, 5))
    dec = keyed(MasterKey(profile, blob[:16], blob[16:]))
    state = dec.new_state()
    for plain, payload in packets(10):
        wire = tx.protect(plain)
        assert payload in wire and only(dec.decode(wire, state, ctx())).payload == payload
    forged = bytearray(tx.protect(rtp(99, b"n" * 40)))
    forged[20] ^= 1
    assert codes(dec.decode(bytes(forged), state, ctx())) == ["srtp.auth_failed"]


@given(st.text(max_size=120))
def test_key_text_parsers_never_raise_anything_else(text: str) -> None:
    assert isinstance(parse_crypto(text), tuple)
    try:
        parse_srtp_key(text)
    except ValueError as exc:
        assert "\n" not in str(exc)


def test_unicode_digits_are_not_numbers() -> None:
    blob, _ = master("AES_CM_128_HMAC_SHA1_80")
    inline = base64.b64encode(blob).decode()
    assert parse_crypto(f"1 AES_CM_128_HMAC_SHA1_80 inline:{inline}|²:1") != ()  # not an MKI: ignored
    for bad in (f"²,AES_CM_128_HMAC_SHA1_80,{inline}", f"127.0.0.1:²,AES_CM_128_HMAC_SHA1_80,{inline}"):
        with pytest.raises(ValueError, match="neither an SSRC"):
            parse_srtp_key(bad)


def _run_all(crypto: SrtpCrypto, wire: list[bytes], replay: ReplayList) -> list[str]:
    """unprotect_run over `wire` (laid out in one buffer), the packet where it stops decided one by
    one, as srtp_flow.unprotect_bulk does."""
    buf = b"".join(wire)
    sizes = np.array([len(w) for w in wire], np.int64)
    starts = np.cumsum(sizes) - sizes
    headers = np.array([max(rtp_header_len(w), 12) for w in wire], np.int64)
    seqs = np.array([int.from_bytes(w[2:4], "big") for w in wire], np.int64)
    out: list[str] = []
    pos = 0
    while pos < len(wire):
        end = starts[pos:] + sizes[pos:]
        run = unprotect_run(crypto, buf, starts[pos:], end, headers[pos:], seqs[pos:], SSRC, replay)
        out += [("replay:" if k in run.replays else "") + run.payload(k).hex() for k in range(run.done)]
        pos += run.done
        if run.stopped:
            out += _one_at_a_time(crypto, [wire[pos]], replay)
            pos += 1
    return out


def _one_at_a_time(crypto: SrtpCrypto, wire: list[bytes], replay: ReplayList) -> list[str]:
    """What the decoder does with a pinned stream, packet by packet (srtp_flow.unprotect_rtp)."""
    out: list[str] = []
    for data in wire:
        index = estimate_index(replay.top, int.from_bytes(data[2:4], "big"))
        got = crypto.unprotect_rtp(data, max(rtp_header_len(data), 12), index)
        if isinstance(got, str):
            out.append("failed")
            continue
        seen = replay.check(index)
        if seen != "replay":
            replay.add(index)
        out.append(("replay:" if seen == "replay" else "") + got.hex())
    return out


@pytest.mark.parametrize("name", ["SRTP_AES128_CM_HMAC_SHA1_80", "SRTP_AEAD_AES_128_GCM"])
@settings(max_examples=40, deadline=None)
@given(
    edits=st.lists(st.tuples(st.integers(0, 119), st.sampled_from(["tag", "dup", "cut", "jump"])), max_size=6)
)
def test_unprotect_run_equals_one_packet_at_a_time(name: str, edits: list[tuple[int, str]]) -> None:
    """Across a wrap, with wrong tags, replays, packets cut short and sequence jumps anywhere: the
    bulk run gives what the decoder's per-packet path gives, packet for packet."""
    blob, key = master(name)
    tx = sender(name, blob)
    wire = [bytes(tx.protect(p)) for p, _ in packets(120, start=65_480)]
    for at, edit in edits:
        if edit == "tag":
            wire[at] = wire[at][:-1] + bytes([wire[at][-1] ^ 1])
        elif edit == "dup":
            wire.insert(at, wire[max(0, at - 5)])
        elif edit == "cut":
            wire[at] = wire[at][: 12 + at % 20]
        else:
            wire.insert(at, bytes(sender(name, blob).protect(rtp(40_000 + at * 300, b"j" * 30))))
    first = int.from_bytes(wire[0][2:4], "big")
    crypto = SrtpCrypto(key)
    bulk = _run_all(crypto, wire[1:], ReplayList(first))
    assert bulk == _one_at_a_time(crypto, wire[1:], ReplayList(first))
