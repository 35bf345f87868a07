"""Key derivation and record protection of TLS 1.2/1.3 and DTLS 1.2/1.3, as a passive observer
needs them: secrets come from a key log, records are opened (authenticated, then decrypted),
nothing is ever sealed.

* TLS 1.2 (RFC 5246 section 5): the PRF over P_SHA256/P_SHA384 and the key block split into MAC
  keys, write keys and IVs; AEAD records (RFC 5288 GCM, RFC 6655 CCM: explicit 8-byte nonce;
  RFC 7905 ChaCha20-Poly1305: IV xor sequence number), CBC records MAC-then-encrypt or
  encrypt_then_mac (RFC 7366). DTLS 1.2 puts epoch and sequence number where TLS has the implicit
  64-bit sequence number (RFC 6347 section 4.1.2.1).
* TLS 1.3 (RFC 8446 section 7): HKDF-Expand-Label ("tls13 " labels; DTLS 1.3 uses "dtls13",
  RFC 9147 section 5.9), traffic key and IV, "traffic upd" for KeyUpdate, AEAD records with the
  record header as additional data and the true content type inside.
* DTLS 1.3 record number encryption (RFC 9147 section 4.2.3): the sn_key mask.
* The RFC 5705 exporter (DTLS-SRTP keys, RFC 5764) for 1.2 and 1.3.

Primitives are the `cryptography` library's; HMAC is the standard library's (OpenSSL's HMAC
too, with less overhead per record, which matters at a few microseconds a record).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import TYPE_CHECKING, Protocol

from protoscope.decoders.primitives import primitives

from .suites import CipherSuite, HashName

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

TLS13_LABEL = b"tls13 "
DTLS13_LABEL = b"dtls13"
HASH_LEN = {"sha256": 32, "sha384": 48}


class DecryptError(Exception):
    """A record that cannot be opened; the message is the reason a finding shows ("bad tag")."""


# -- TLS 1.2 ---------------------------------------------------------------------------------------


def p_hash(hash_name: str, secret: bytes, seed: bytes, length: int) -> bytes:
    """RFC 5246 section 5: P_hash(secret, seed), `length` bytes."""
    digest = getattr(hashlib, hash_name)
    out = bytearray()
    a = seed
    while len(out) < length:
        a = hmac.new(secret, a, digest).digest()
        out += hmac.new(secret, a + seed, digest).digest()
    return bytes(out[:length])


def prf12(hash_name: HashName, secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """The TLS 1.2 PRF: P_<hash>(secret, label + seed)."""
    return p_hash(hash_name, secret, label + seed, length)


def key_block12(
    suite: CipherSuite, master: bytes, client_random: bytes, server_random: bytes
) -> tuple[tuple[bytes, bytes, bytes], tuple[bytes, bytes, bytes]]:
    """((client MAC key, key, IV), (server MAC key, key, IV)) from the master secret."""
    m, k, i = suite.mac_len, suite.key_len, suite.iv_len
    block = prf12(suite.hash, master, b"key expansion", server_random + client_random, 2 * (m + k + i))
    cut = [0, m, 2 * m, 2 * m + k, 2 * m + 2 * k, 2 * m + 2 * k + i, 2 * m + 2 * k + 2 * i]
    part = [block[cut[n] : cut[n + 1]] for n in range(6)]
    return (part[0], part[2], part[4]), (part[1], part[3], part[5])


def exporter12(
    hash_name: HashName,
    master: bytes,
    client_random: bytes,
    server_random: bytes,
    label: bytes,
    context: bytes | None,
    length: int,
) -> bytes:
    """RFC 5705 section 4: PRF(master_secret, label, client_random + server_random [+ context])."""
    seed = client_random + server_random
    if context is not None:
        seed += len(context).to_bytes(2, "big") + context
    return prf12(hash_name, master, label, seed, length)


# -- TLS 1.3 ---------------------------------------------------------------------------------------


def hkdf_expand_label(
    hash_name: HashName, secret: bytes, label: bytes, context: bytes, length: int, prefix: bytes = TLS13_LABEL
) -> bytes:
    """RFC 8446 section 7.1 (RFC 9147 section 5.9 with prefix b"dtls13")."""
    full = prefix + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    c = primitives()
    return c.HKDFExpand(c.hashes[hash_name](), length, info).derive(secret)


def traffic_key_iv(suite: CipherSuite, secret: bytes, prefix: bytes = TLS13_LABEL) -> tuple[bytes, bytes]:
    """RFC 8446 section 7.3: [sender]_write_key and [sender]_write_iv of a traffic secret."""
    key = hkdf_expand_label(suite.hash, secret, b"key", b"", suite.key_len, prefix)
    iv = hkdf_expand_label(suite.hash, secret, b"iv", b"", 12, prefix)
    return key, iv


def sn_key(suite: CipherSuite, secret: bytes) -> bytes:
    """RFC 9147 section 4.2.3: the key that masks DTLS 1.3 record numbers."""
    return hkdf_expand_label(suite.hash, secret, b"sn", b"", suite.key_len, DTLS13_LABEL)


def next_traffic_secret(hash_name: HashName, secret: bytes, prefix: bytes = TLS13_LABEL) -> bytes:
    """RFC 8446 section 7.2: application_traffic_secret_N+1 after a KeyUpdate."""
    return hkdf_expand_label(hash_name, secret, b"traffic upd", b"", HASH_LEN[hash_name], prefix)


def exporter13(
    hash_name: HashName,
    exporter_secret: bytes,
    label: bytes,
    context: bytes | None,
    length: int,
    prefix: bytes = TLS13_LABEL,
) -> bytes:
    """RFC 8446 section 7.5: HKDF-Expand-Label(Derive-Secret(exporter_secret, label, ""),
    "exporter", Hash(context), length); no context is the empty one."""
    digest = getattr(hashlib, hash_name)
    size = HASH_LEN[hash_name]
    derived = hkdf_expand_label(hash_name, exporter_secret, label, digest(b"").digest(), size, prefix)
    return hkdf_expand_label(hash_name, derived, b"exporter", digest(context or b"").digest(), length, prefix)


def record_number_mask(
    suite: CipherSuite, key: bytes, ciphertext: bytes, swapped_counter: bool = False
) -> bytes:
    """RFC 9147 section 4.2.3: the mask over a DTLS 1.3 record's sequence number bytes, from the
    first 16 bytes of its ciphertext: AES-ECB of them, or for ChaCha20 the key stream of the block
    whose counter is ciphertext[0..3] and nonce ciphertext[4..15] (RFC 8439 section 2.3: the
    counter is a little-endian word, as `cryptography`'s 16-byte ChaCha20 nonce takes it).

    `swapped_counter` reads ciphertext[0..3] big-endian instead: wolfSSL before 5.6.4 does so on
    little-endian Linux (its `#ifdef BIG_ENDIAN` met glibc's endian.h macro; fixed by wolfSSL pull
    request 6641), and captures of such peers exist (captures/samples/dtls13-keys.pcap)."""
    if len(ciphertext) < 16:
        raise DecryptError("record too short for record number encryption")
    sample = bytes(ciphertext[:16])
    if suite.cipher == "CHACHA20-POLY1305":
        if swapped_counter:
            sample = sample[3::-1] + sample[4:]
        c = primitives()
        enc = c.Cipher(c.algorithms.ChaCha20(key, sample), mode=None).encryptor()
        return enc.update(bytes(2))
    c = primitives()
    enc = c.Cipher(c.algorithms.AES(key), c.modes.ECB()).encryptor()
    return enc.update(sample)[:2]


# -- record protection -----------------------------------------------------------------------------


class RecordOpener(Protocol):
    """Opens the records of one direction and epoch."""

    def open(self, seq: int, content_type: int, version: int, header: bytes, fragment: bytes) -> bytes:
        """The plaintext of one record or DecryptError. `seq` is the 64-bit sequence number
        (DTLS: epoch << 48 | sequence_number); `header` the record header as sent (TLS 1.3's
        additional data)."""
        ...


def _aead(suite: CipherSuite, key: bytes) -> AESGCM | ChaCha20Poly1305 | AESCCM:
    c = primitives()
    if suite.cipher == "AES-GCM":
        return c.AESGCM(key)
    if suite.cipher == "CHACHA20-POLY1305":
        return c.ChaCha20Poly1305(key)
    return c.AESCCM(key, tag_length=suite.tag_len)


class Aead12:
    """TLS/DTLS 1.2 AEAD records: additional data seq_num + type + version + length (RFC 5246
    section 6.2.3.3); GCM/CCM nonces are the 4-byte IV and the 8 explicit bytes the record carries,
    ChaCha20-Poly1305's the 12-byte IV xor the sequence number."""

    __slots__ = ("aead", "explicit", "iv", "iv_int", "suite", "tag")

    def __init__(self, suite: CipherSuite, key: bytes, iv: bytes) -> None:
        self.suite = suite
        self.aead = _aead(suite, key)
        self.iv = iv
        self.iv_int = int.from_bytes(iv, "big")
        self.explicit = suite.explicit_nonce_len
        self.tag = suite.tag_len

    def open(self, seq: int, content_type: int, version: int, header: bytes, fragment: bytes) -> bytes:
        explicit = self.explicit
        if len(fragment) < explicit + self.tag:
            raise DecryptError("truncated record")
        fragment = bytes(fragment)  # no copy when it is bytes already
        if explicit:
            nonce = self.iv + fragment[:explicit]
            sealed = fragment[explicit:]
        else:
            nonce = (self.iv_int ^ seq).to_bytes(12, "big")
            sealed = fragment
        aad = _AAD12.pack(seq, content_type, version, len(sealed) - self.tag)
        try:
            return self.aead.decrypt(nonce, sealed, aad)
        except primitives().InvalidTag:
            raise DecryptError("bad tag") from None


_AAD12 = struct.Struct(">QBHH")
"""TLS 1.2's additional data: seq_num, type, version, length (RFC 5246 section 6.2.3.3)."""


class Cbc12:
    """TLS/DTLS 1.2 AES-CBC records with an explicit IV (RFC 5246 section 6.2.3.2): the HMAC over
    seq_num + type + version + length + content, inside the encryption (MAC-then-encrypt) or over
    the IV and ciphertext (encrypt_then_mac, RFC 7366)."""

    __slots__ = ("digest", "etm", "key", "mac_key", "mac_len")

    def __init__(self, suite: CipherSuite, key: bytes, mac_key: bytes, encrypt_then_mac: bool) -> None:
        self.key = key
        self.mac_key = mac_key
        self.mac_len = suite.mac_len
        self.digest = getattr(hashlib, suite.mac_hash)
        self.etm = encrypt_then_mac

    def _mac(self, seq: int, content_type: int, version: int, data: bytes) -> bytes:
        head = seq.to_bytes(8, "big") + bytes([content_type]) + version.to_bytes(2, "big")
        return hmac.new(self.mac_key, head + len(data).to_bytes(2, "big") + data, self.digest).digest()

    def _decrypt(self, iv: bytes, ciphertext: bytes) -> bytes:
        c = primitives()
        dec = c.Cipher(c.algorithms.AES(self.key), c.modes.CBC(iv)).decryptor()
        return dec.update(ciphertext) + dec.finalize()

    def open(self, seq: int, content_type: int, version: int, header: bytes, fragment: bytes) -> bytes:
        data = bytes(fragment)
        if self.etm:
            body, mac = data[: -self.mac_len], data[-self.mac_len :]
            if len(body) < 32 or (len(body) - 16) % 16:
                raise DecryptError("truncated record")
            if not hmac.compare_digest(mac, self._mac(seq, content_type, version, body)):
                raise DecryptError("bad MAC")
            plain = self._decrypt(body[:16], body[16:])
            return _unpad(plain)
        if len(data) < 32 or len(data) % 16 or len(data) - 16 < self.mac_len + 1:
            raise DecryptError("truncated record")
        plain = _unpad(self._decrypt(data[:16], data[16:]))
        if len(plain) < self.mac_len:
            raise DecryptError("bad MAC")
        content, mac = plain[: len(plain) - self.mac_len], plain[len(plain) - self.mac_len :]
        if not hmac.compare_digest(mac, self._mac(seq, content_type, version, content)):
            raise DecryptError("bad MAC")
        return content


def _unpad(plain: bytes) -> bytes:
    pad = plain[-1] if plain else 0
    if not plain or pad + 1 > len(plain) or plain[-pad - 1 :] != bytes([pad]) * (pad + 1):
        raise DecryptError("bad padding")
    return plain[: -pad - 1]


class Aead13:
    """TLS/DTLS 1.3 records (RFC 8446 section 5.2): nonce = IV xor sequence number, additional data
    = the record header; the plaintext ends with the true content type and zero padding (strip it
    with `inner_plaintext`)."""

    __slots__ = ("aead", "iv", "tag")

    def __init__(self, suite: CipherSuite, key: bytes, iv: bytes) -> None:
        self.aead = _aead(suite, key)
        self.iv = int.from_bytes(iv, "big")
        self.tag = suite.tag_len

    def open(self, seq: int, content_type: int, version: int, header: bytes, fragment: bytes) -> bytes:
        if len(fragment) < self.tag + 1:
            raise DecryptError("truncated record")
        nonce = (self.iv ^ seq).to_bytes(12, "big")
        try:
            return self.aead.decrypt(nonce, bytes(fragment), bytes(header))
        except primitives().InvalidTag:
            raise DecryptError("bad tag") from None


def inner_plaintext(plain: bytes) -> tuple[bytes, int]:
    """TLSInnerPlaintext (RFC 8446 section 5.2): (content, true content type); zeros pad it."""
    end = len(plain)
    if end and plain[end - 1]:  # no padding: the usual case
        return plain[: end - 1], plain[end - 1]
    while end and plain[end - 1] == 0:
        end -= 1
    if not end:
        raise DecryptError("no content type in the plaintext")
    return plain[: end - 1], plain[end - 1]


def opener12(
    suite: CipherSuite, mac_key: bytes, key: bytes, iv: bytes, encrypt_then_mac: bool
) -> RecordOpener:
    if suite.aead:
        return Aead12(suite, key, iv)
    return Cbc12(suite, key, mac_key, encrypt_then_mac)


def opener13(suite: CipherSuite, secret: bytes, prefix: bytes = TLS13_LABEL) -> RecordOpener:
    key, iv = traffic_key_iv(suite, secret, prefix)
    return Aead13(suite, key, iv)
