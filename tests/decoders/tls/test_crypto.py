"""Key derivation and record protection against OpenSSL itself: connections made in memory by
pyOpenSSL (tests/decoders/tls/openssl_pair.py) in suites the sample capture does not carry (CCM,
CCM_8, DHE, ECDSA ChaCha20, CBC-SHA384, TLS 1.3 CCM and AES-256-GCM-SHA384) decrypt to what was
sent, and the RFC 5705 exporter equals OpenSSL's (SSL_export_keying_material) for 1.2 and 1.3."""

from __future__ import annotations

import pytest
from OpenSSL import SSL

from protoscope.decoders.tls import crypto
from protoscope.decoders.tls.connection import Connection
from protoscope.decoders.tls.suites import SUITES

from .common import Replay, keylog
from .openssl_pair import connect

MESSAGES = [
    (True, b"GET / HTTP/1.1\r\n\r\n"),
    (False, b"HTTP/1.1 200 OK\r\n\r\n" + b"z" * 5000),
    (True, b"!"),
]
EXPORTS = ((b"EXTRACTOR-dtls_srtp", None), (b"EXPERIMENTAL-protoscope", b"some context"))
CASES = [
    (SSL.TLS1_2_VERSION, "AES128-CCM", "rsa", 0xC09C),
    (SSL.TLS1_2_VERSION, "AES256-CCM8", "rsa", 0xC0A1),
    (SSL.TLS1_2_VERSION, "DHE-RSA-AES256-GCM-SHA384", "rsa", 0x009F),
    (SSL.TLS1_2_VERSION, "ECDHE-ECDSA-CHACHA20-POLY1305", "ec", 0xCCA9),
    (SSL.TLS1_2_VERSION, "ECDHE-ECDSA-AES128-CCM8", "ec", 0xC0AE),
    (SSL.TLS1_2_VERSION, "ECDHE-RSA-AES256-SHA384", "rsa", 0xC028),
    (SSL.TLS1_2_VERSION, "DHE-RSA-AES128-SHA", "rsa", 0x0033),
    (SSL.TLS1_3_VERSION, "TLS_AES_128_CCM_SHA256", "rsa", 0x1304),
    (SSL.TLS1_3_VERSION, "TLS_AES_128_CCM_8_SHA256", "rsa", 0x1305),
    (SSL.TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384", "ec", 0x1302),
]


@pytest.mark.parametrize(("version", "cipher", "kind", "suite"), CASES, ids=[c[1] for c in CASES])
def test_openssl_records_decrypt_and_the_exporter_agrees(
    version: int, cipher: str, kind: str, suite: int
) -> None:
    pair = connect(version, cipher, MESSAGES, kind, exports=EXPORTS)
    replay = Replay(keylog("\n".join(pair.keylog)))
    out = replay.run(pair.segments)
    assert [codes for *_, codes in out if codes] == []
    got = {True: b"", False: b""}
    for from_client, _, inner, _ in out:
        got[from_client] += inner
    assert got == {w: b"".join(d for c, d in MESSAGES if c == w) for w in (True, False)}
    conn = replay.shared["tls.connection"]
    assert isinstance(conn, Connection) and conn.suite_id == suite and conn.suite is SUITES[suite]
    exporter = conn.exporter()
    assert exporter is not None
    for (label, context), want in pair.exported.items():
        assert exporter(label, context, 60) == want


def test_a_changed_byte_anywhere_in_a_record_is_caught() -> None:
    """Every byte of a protected record is authenticated: change any and it is not opened."""
    for version, cipher in (
        (SSL.TLS1_2_VERSION, "AES128-SHA"),
        (SSL.TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256"),
    ):
        pair = connect(version, cipher, [(True, b"secret")])
        keys = keylog("\n".join(pair.keylog))
        last = len(pair.segments) - 1
        assert pair.segments[last][0]  # the client's application data record
        record = pair.segments[last][1]
        for at in range(5, len(record)):
            changed = bytearray(record)
            changed[at] ^= 0x40
            out = Replay(keys).run([*pair.segments[:last], (True, bytes(changed))])
            assert out[-1][2] == b"" and out[-1][3] == ("tls.decrypt_failed",), (cipher, at)


def test_tls12_prf_and_key_block_lengths() -> None:
    suite = SUITES[0x003D]  # AES-256-CBC-SHA256: 2 x (32 MAC + 32 key + 16 IV)
    (cmac, ckey, civ), (smac, skey, siv) = crypto.key_block12(suite, b"m" * 48, b"c" * 32, b"s" * 32)
    assert [len(x) for x in (cmac, ckey, civ, smac, skey, siv)] == [32, 32, 16, 32, 32, 16]
    block = crypto.prf12("sha256", b"m" * 48, b"key expansion", b"s" * 32 + b"c" * 32, 160)
    assert cmac + smac + ckey + skey + civ + siv == block
    assert crypto.p_hash("sha256", b"k", b"seed", 100)[:32] == crypto.p_hash("sha256", b"k", b"seed", 32)


def test_hkdf_expand_label_layout() -> None:
    """RFC 8446 7.1 HkdfLabel: length, "tls13 " + label, context; DTLS 1.3 puts "dtls13"."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

    secret = bytes(range(32))
    info = b"\x00\x10" + b"\x09tls13 key" + b"\x00"
    assert crypto.hkdf_expand_label("sha256", secret, b"key", b"", 16) == HKDFExpand(
        hashes.SHA256(), 16, info
    ).derive(secret)
    info = b"\x00\x10" + b"\x09dtls13key" + b"\x00"
    assert crypto.hkdf_expand_label("sha256", secret, b"key", b"", 16, crypto.DTLS13_LABEL) == HKDFExpand(
        hashes.SHA256(), 16, info
    ).derive(secret)


def test_inner_plaintext() -> None:
    assert crypto.inner_plaintext(b"hello\x17\x00\x00") == (b"hello", 23)
    assert crypto.inner_plaintext(b"\x16") == (b"", 22)
    with pytest.raises(crypto.DecryptError):
        crypto.inner_plaintext(b"\x00\x00")


def test_a_record_too_short_for_its_protection_is_a_truncated_record() -> None:
    """A record cut below its nonce and tag (its length field says so): `truncated record`."""
    for version, cipher in (
        (SSL.TLS1_2_VERSION, "ECDHE-RSA-AES128-GCM-SHA256"),
        (SSL.TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256"),
    ):
        pair = connect(version, cipher, [(True, b"secret")])
        keys = keylog("\n".join(pair.keylog))
        record = pair.segments[-1][1]
        for size in range(0, 16):
            cut = record[:3] + size.to_bytes(2, "big") + record[5 : 5 + size]
            out = Replay(keys).run([*pair.segments[:-1], (True, cut)])
            assert out[-1][2] == b"" and out[-1][3] == ("tls.decrypt_failed",)
