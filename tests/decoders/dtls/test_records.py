"""DTLS records from real captures' shapes: fragments, retransmissions, truncation, fuzzing."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from protoscope.decoders.dtls.records import Reassembly, looks_like_dtls, parse_datagram
from protoscope.decoders.registry import load_registry
from protoscope.inspector.session import Session, flatten
from tests.conftest import public_capture


def handshake(mtype: int, mseq: int, body: bytes, offset: int, length: int) -> bytes:
    head = bytes([mtype]) + length.to_bytes(3, "big") + struct.pack(">H", mseq)
    return head + offset.to_bytes(3, "big") + len(body).to_bytes(3, "big") + body


def record(payload: bytes, seq: int = 0, ctype: int = 22) -> bytes:
    return (
        bytes([ctype])
        + b"\xfe\xfd"
        + b"\x00\x00"
        + seq.to_bytes(6, "big")
        + len(payload).to_bytes(2, "big")
        + payload
    )


HELLO = (
    b"\xfe\xfd"
    + bytes(32)
    + b"\x00"
    + b"\x00"
    + b"\x00\x04\xc0\x2b\xc0\x2f"
    + b"\x01\x00"
    + b"\x00\x0a"
    + b"\x00\x0e\x00\x06\x00\x04\x00\x01\x00\x07"
    + b"\x00"
)


def test_client_hello_in_two_fragments_and_a_retransmission() -> None:
    ra = Reassembly()
    first = record(handshake(1, 0, HELLO[:20], 0, len(HELLO)))
    second = record(handshake(1, 0, HELLO[20:], 20, len(HELLO)), seq=1)
    assert looks_like_dtls(first)
    rec, _, _, info = parse_datagram(first, ra)
    assert rec.handshake_types == (1,) and "client_hello" not in rec.facts and info == "Client Hello"
    rec, fields, findings, _ = parse_datagram(second, ra)
    hello = rec.facts["client_hello"]
    assert isinstance(hello, dict)
    assert hello["srtp_profiles"] == ["SRTP_AES128_CM_HMAC_SHA1_80", "SRTP_AEAD_AES_128_GCM"]
    assert hello["cipher_suites"] == [0xC02B, 0xC02F]
    assert flatten(fields)["dtls.handshake.reassembled"] == f"{len(HELLO)} bytes"
    _, _, findings, _ = parse_datagram(second, ra)
    assert findings[0].code == "dtls.retransmission"


def test_truncation_at_every_boundary() -> None:
    whole = record(handshake(1, 0, HELLO, 0, len(HELLO)))
    for cut in range(1, len(whole)):
        parse_datagram(whole[:cut], Reassembly())


def test_certificate_from_a_real_handshake() -> None:
    session = Session.open(public_capture("zeek--dtls1_2.pcap"), load_registry())
    try:
        certs = [
            p.record.facts["certificates"]
            for pd in session.decode()
            for p in pd.pdus
            if p.protocol == "dtls" and "certificates" in p.record.facts  # type: ignore[attr-defined]
        ]
    finally:
        session.close()
    assert certs and certs[0][0]["sha256"].count(":") == 31 and "subject" in certs[0][0]


def test_dtls13_unified_header() -> None:
    data = bytes([0x2C]) + b"\x00\x05" + b"\x00\x08" + bytes(8)  # 001 0 1 1 00: seq16, length
    rec, _, _, info = parse_datagram(data, Reassembly())
    assert rec.content_types == (23,) and "DTLS 1.3" in info


@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data: bytes) -> None:
    parse_datagram(data, Reassembly())
    looks_like_dtls(data)
