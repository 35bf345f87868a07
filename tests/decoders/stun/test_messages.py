"""STUN messages from real bytes: integrity, fingerprint, XOR addresses, truncation, fuzzing."""

from __future__ import annotations

import hashlib
import hmac
import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protoscope.decoders.api import Endpoint, FlowContext
from protoscope.decoders.stun import StunDecoder
from protoscope.decoders.stun.messages import Keys, looks_like_stun, parse

TXID = bytes(range(12))
CTX = FlowContext(0, "udp", Endpoint("10.0.0.1", 5000), Endpoint("10.0.0.2", 3478), True, 1, 0.0)


def attr(a_type: int, value: bytes) -> bytes:
    return struct.pack(">HH", a_type, len(value)) + value + b"\0" * ((-len(value)) % 4)


def message(msg_type: int, attrs: bytes, key: bytes | None = None, fingerprint: bool = True) -> bytes:
    """Built the way RFC 8489 section 14.5 and 14.7 say, with hashlib and zlib."""
    body = attrs
    if key is not None:
        head = struct.pack(">HHI", msg_type, len(body) + 24, 0x2112A442) + TXID
        mac = hmac.new(key, head + body, hashlib.sha1).digest()
        body += attr(0x0008, mac)
    if fingerprint:
        head = struct.pack(">HHI", msg_type, len(body) + 8, 0x2112A442) + TXID
        crc = (zlib.crc32(head + body) ^ 0x5354554E) & 0xFFFFFFFF
        body += attr(0x8028, crc.to_bytes(4, "big"))
    return struct.pack(">HHI", msg_type, len(body), 0x2112A442) + TXID + body


def xor_address(ip: str, port: int) -> bytes:
    raw = bytes(int(x) for x in ip.split("."))
    cookie = (0x2112A442).to_bytes(4, "big")
    return (
        b"\x00\x01"
        + (port ^ 0x2112).to_bytes(2, "big")
        + bytes(a ^ b for a, b in zip(raw, cookie, strict=True))
    )


def test_binding_request_with_integrity_and_fingerprint() -> None:
    attrs = attr(0x0006, b"abcd:efgh") + attr(0x0024, (0x6E7F00FF).to_bytes(4, "big")) + attr(0x0025, b"")
    raw = message(0x0001, attrs, key=b"the-ice-password")
    assert looks_like_stun(raw)
    rec, _, findings = parse(raw, Keys(short_term=[b"the-ice-password"]))
    assert rec is not None and not findings
    assert (rec.integrity, rec.fingerprint) == ("ok", True)
    assert rec.attributes["username"] == "abcd:efgh" and rec.attributes["priority"] == 0x6E7F00FF
    assert rec.attributes["use_candidate"] is True
    rec, _, findings = parse(raw, Keys(short_term=[b"wrong"]))
    assert rec is not None and rec.integrity == "bad" and findings[0].code == "stun.integrity_bad"
    rec, _, _ = parse(raw)
    assert rec is not None and rec.integrity == "unchecked"


def test_long_term_credentials() -> None:
    attrs = attr(0x0006, b"alice") + attr(0x0014, b"example.org") + attr(0x0015, b"nonce123")
    key = hashlib.md5(b"alice:example.org:secret").digest()
    raw = message(0x0003, attrs, key=key)
    rec, _, _ = parse(raw, Keys(long_term=[("alice", "secret", None)]))
    assert rec is not None and rec.integrity == "ok"


def test_xor_mapped_address_and_bad_fingerprint() -> None:
    raw = bytearray(message(0x0101, attr(0x0020, xor_address("192.0.2.1", 32853))))
    rec, _, _ = parse(bytes(raw))
    assert rec is not None and rec.attributes["xor_mapped"] == ("192.0.2.1", 32853)
    raw[-1] ^= 0xFF
    rec, _, findings = parse(bytes(raw))
    assert rec is not None and rec.fingerprint is False and findings[-1].code == "stun.fingerprint_bad"


def test_error_response_and_pairing_rtt() -> None:
    decoder = StunDecoder()
    shared: dict[str, object] = {}
    request = message(0x0003, attr(0x0019, b"\x11\0\0\0"))
    error = message(0x0113, attr(0x0009, b"\0\0\x04\x01Unauthorized"))
    ctx = FlowContext(0, "udp", CTX.src, CTX.dst, True, 1, 10.0, shared=shared)
    decoder.decode(request, None, ctx)
    again = decoder.decode(
        request, None, FlowContext(0, "udp", CTX.src, CTX.dst, True, 2, 10.5, shared=shared)
    )
    assert again.pdus[0].findings[-1].code == "stun.retransmission"
    reply = decoder.decode(
        error, None, FlowContext(0, "udp", CTX.dst, CTX.src, False, 3, 10.25, shared=shared)
    )
    pdu = reply.pdus[0]
    assert pdu.record.attributes["error_code"] == 401  # type: ignore[attr-defined]
    names = {f.name: f.value for f in pdu.fields}
    assert names["stun.response-to"] == 1 and names["stun.time"] == 250.0
    assert "Allocate Error Response error-code: 401" in pdu.summary


def test_rfc7983_demux_and_channel_data() -> None:
    decoder = StunDecoder()
    dtls = bytes([22, 0xFE, 0xFD]) + b"\0" * 10
    assert decoder.decode(dtls, None, CTX).inner[0].protocol == "dtls"
    rtp = bytes([0x80, 0x60]) + b"\0" * 10
    assert decoder.decode(rtp, None, CTX).inner[0].protocol == "rtp"
    rtcp = bytes([0x80, 200]) + b"\0" * 6
    assert decoder.decode(rtcp, None, CTX).inner[0].protocol == "rtcp"
    inner = message(0x0001, b"", fingerprint=False)
    channel = struct.pack(">HH", 0x4001, len(inner)) + inner
    result = decoder.decode(channel, None, CTX)
    assert result.pdus[0].summary.startswith("ChannelData") and result.pdus[0].inner[0].data == inner


def test_tcp_framing_several_messages_and_partial() -> None:
    decoder = StunDecoder()
    tcp = FlowContext(0, "tcp", CTX.src, CTX.dst, True, 1, 0.0, shared={})
    one = message(0x0001, attr(0x0006, b"u"))
    both = one + one
    result = decoder.decode(both + one[:10], None, tcp)
    assert len(result.pdus) == 2 and result.consumed == len(both) and result.need == 20


def test_truncation_at_every_boundary() -> None:
    raw = message(0x0001, attr(0x0006, b"abcd:efgh") + attr(0x0020, xor_address("10.0.0.1", 9)), key=b"k")
    for cut in range(20, len(raw)):
        rec, _, findings = parse(raw[:cut])
        assert rec is not None
        assert findings or cut % 4 == 0


@given(st.binary(min_size=20, max_size=300))
def test_random_messages_never_raise(data: bytes) -> None:
    fixed = data[:2] + len(data[20:]).to_bytes(2, "big") + (0x2112A442).to_bytes(4, "big") + data[8:]
    parse(fixed, Keys(short_term=[b"x"], long_term=[("u", "p", "r")]))
    StunDecoder().decode(data, None, CTX)
    StunDecoder().decode(data, None, FlowContext(0, "tcp", CTX.src, CTX.dst, True, 1, 0.0, shared={}))


def test_xor_address_longer_than_its_family_is_not_unmasked() -> None:
    """soak_cases/stun-xor-address-too-long: a 20-byte IPv6 XOR-MAPPED-ADDRESS once indexed
    past the 16-byte mask; the attribute is not decoded as an address."""
    value = bytes([0, 2]) + (9).to_bytes(2, "big") + bytes(20)
    rec, _, _ = parse(message(0x0101, attr(0x0020, value)))
    assert rec is not None and "xor_mapped" not in rec.attributes


def test_datagrams_shorter_than_a_header_are_findings() -> None:
    """soak_cases/turn-channeldata-cut-short: a cut datagram gives a finding, not an exception."""
    decoder = StunDecoder()
    cut_channel = decoder.decode(b"\x40", None, CTX)
    assert [f.code for f in cut_channel.findings] == ["stun.channel_short"] and cut_channel.consumed == 1
    cut_stun = decoder.decode(message(0x0001, b"")[:12], None, CTX)
    assert [f.code for f in cut_stun.findings] == ["stun.truncated"]


def tcp_context() -> FlowContext:
    return FlowContext(0, "tcp", CTX.src, CTX.dst, True, 1, 0.0, shared={})


def channel(number: int, payload: bytes) -> bytes:
    return struct.pack(">HH", number, len(payload)) + payload + b"\0" * (-len(payload) % 4)


def test_tcp_stream_of_channel_data_reads_no_copy_of_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each header is read in place: a slice of the rest per message made 4 MB of ChannelData
    quadratic (11.5 s for 1 MB)."""
    from protoscope.decoders.stun import decoder as stun_decoder

    seen: list[int] = []
    real = stun_decoder.channel_data

    def spy(data: bytes, pos: int = 0) -> tuple[int, int] | None:
        seen.append(len(data))
        return real(data, pos)

    monkeypatch.setattr(stun_decoder, "channel_data", spy)
    stream = channel(0x4000, bytes([0x80, 111]) + bytes(98)) * 500
    result = StunDecoder().decode(stream, None, tcp_context())
    assert len(result.pdus) == 500 and result.consumed == len(stream)
    assert set(seen) == {len(stream)}


def test_tcp_bytes_from_the_middle_of_a_message_resync() -> None:
    """After a hole the stream may start inside a message (here: its zeros, which once read as a
    20-byte classic STUN message each): the messages go on from the next two that chain."""
    rtp = bytes([0x80, 111]) + bytes(98)
    whole = channel(0x4000, rtp) * 3 + message(0x0001, attr(0x0006, b"u"), fingerprint=False)
    data = bytes(37) + whole
    result = StunDecoder().decode(data, None, tcp_context())
    assert [f.code for f in result.findings] == ["stun.resync"]
    assert result.findings[0].span == (0, 37)
    assert [p.summary.split(" ")[0] for p in result.pdus] == ["ChannelData"] * 3 + ["Binding"]
    assert result.consumed == len(data)


def test_tcp_bytes_that_never_chain_are_skipped_a_window_at_a_time() -> None:
    from protoscope.decoders.stun.decoder import RESYNC_WINDOW

    data = bytes(3 * RESYNC_WINDOW)
    result = StunDecoder().decode(data, None, tcp_context())
    assert [f.code for f in result.findings] == ["stun.tcp_unframed"]
    assert result.pdus == () and result.consumed == RESYNC_WINDOW


def test_passwords_learned_from_sdp_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every learned password is an HMAC per message: past MAX_LEARNED_PASSWORDS none is tried
    (integrity unchecked, never bad), with one finding for the capture."""
    from protoscope.decoders.stun import decoder as stun_decoder

    monkeypatch.setattr(stun_decoder, "MAX_LEARNED_PASSWORDS", 3)
    check = message(0x0001, attr(0x0006, b"bb:aa"), key=b"pw-right")
    shared: dict[str, object] = {"ice.passwords": {"pw-other", "pw-right"}}
    ctx = FlowContext(0, "udp", CTX.src, CTX.dst, True, 1, 0.0, capture=shared)
    first = StunDecoder().decode(check, None, ctx).pdus[0]
    assert first.record.integrity == "ok" and not first.findings  # type: ignore[attr-defined]
    shared["ice.passwords"] = {f"pw-{n}" for n in range(10)} | {"pw-right"}
    decoder = StunDecoder()
    over = [decoder.decode(check, None, ctx).pdus[0] for _ in range(2)]
    assert [p.record.integrity for p in over] == ["unchecked", "unchecked"]  # type: ignore[attr-defined]
    limits = [[f.code for f in p.findings if "limit" in f.code] for p in over]
    assert limits == [["stun.passwords_limit"], []]


def test_attributes_past_max_attributes_are_not_decoded() -> None:
    """16,000 empty SOFTWARE attributes (a 64 KB datagram): the first MAX_ATTRIBUTES are
    decoded, the rest is one finding over its bytes."""
    from protoscope.decoders.stun.messages import MAX_ATTRIBUTES

    raw = message(0x0001, attr(0x8022, b"") * 16_000, fingerprint=False)
    rec, fields, findings = parse(raw)
    assert rec is not None
    assert sum(f.name == "stun.attribute" for f in fields) == MAX_ATTRIBUTES
    assert [f.code for f in findings] == ["stun.attributes_limit"]
    assert findings[0].span == (20 + 4 * MAX_ATTRIBUTES, len(raw))
