"""The cipher suites protoscope decrypts: IANA id -> name (as IANA and Wireshark spell it), record
protection, key/IV/MAC lengths and the hash of the PRF or HKDF (RFC 5246, 5288, 5289, 6655, 7905,
8446). A table, not a chain of ifs: a suite not in it is shown by its number and not decrypted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Cipher = Literal["AES-GCM", "CHACHA20-POLY1305", "AES-CCM", "AES-CCM-8", "AES-CBC"]
HashName = Literal["sha256", "sha384"]


@dataclass(frozen=True, slots=True)
class CipherSuite:
    """What record protection a suite uses. For TLS 1.2 AEAD suites `iv_len` is the implicit part
    of the nonce (4 bytes for GCM/CCM, RFC 5288; 12 for ChaCha20-Poly1305, RFC 7905); for CBC
    suites it is the block size (the IV travels with every record)."""

    id: int
    name: str
    cipher: Cipher
    key_len: int
    iv_len: int
    mac_len: int
    """HMAC length of CBC suites (MAC-then-encrypt or encrypt_then_mac); 0 for AEAD."""
    hash: HashName
    """The PRF's hash (TLS 1.2) or HKDF's (TLS 1.3)."""
    tls13: bool = False

    @property
    def aead(self) -> bool:
        return self.cipher != "AES-CBC"

    @property
    def tag_len(self) -> int:
        return 8 if self.cipher == "AES-CCM-8" else 16 if self.aead else 0

    @property
    def mac_hash(self) -> str:
        """The HMAC's hash of a CBC suite: its name's last part (SHA = SHA-1)."""
        return {20: "sha1", 32: "sha256", 48: "sha384"}[self.mac_len]

    @property
    def explicit_nonce_len(self) -> int:
        """Bytes of nonce each TLS 1.2 record carries before its ciphertext (RFC 5288 section 3):
        8 for GCM/CCM, none for ChaCha20-Poly1305 (RFC 7905) nor TLS 1.3."""
        return 8 if not self.tls13 and self.cipher in ("AES-GCM", "AES-CCM", "AES-CCM-8") else 0


def _table() -> dict[int, CipherSuite]:
    rows: list[tuple[int, str, Cipher, int, int, int, HashName, bool]] = [
        (0x1301, "TLS_AES_128_GCM_SHA256", "AES-GCM", 16, 12, 0, "sha256", True),
        (0x1302, "TLS_AES_256_GCM_SHA384", "AES-GCM", 32, 12, 0, "sha384", True),
        (0x1303, "TLS_CHACHA20_POLY1305_SHA256", "CHACHA20-POLY1305", 32, 12, 0, "sha256", True),
        (0x1304, "TLS_AES_128_CCM_SHA256", "AES-CCM", 16, 12, 0, "sha256", True),
        (0x1305, "TLS_AES_128_CCM_8_SHA256", "AES-CCM-8", 16, 12, 0, "sha256", True),
    ]
    gcm = [
        (0x009C, "TLS_RSA_WITH_AES_128_GCM_SHA256"),
        (0x009D, "TLS_RSA_WITH_AES_256_GCM_SHA384"),
        (0x009E, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"),
        (0x009F, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"),
        (0x00A8, "TLS_PSK_WITH_AES_128_GCM_SHA256"),
        (0x00A9, "TLS_PSK_WITH_AES_256_GCM_SHA384"),
        (0xC02B, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
        (0xC02C, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
        (0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        (0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    ]
    for sid, name in gcm:
        big = "_256_" in name
        rows.append((sid, name, "AES-GCM", 32 if big else 16, 4, 0, "sha384" if big else "sha256", False))
    chacha = [
        (0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
        (0xCCA9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
        (0xCCAA, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
        (0xCCAB, "TLS_PSK_WITH_CHACHA20_POLY1305_SHA256"),
        (0xCCAC, "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256"),
    ]
    rows += [(sid, name, "CHACHA20-POLY1305", 32, 12, 0, "sha256", False) for sid, name in chacha]
    ccm = [
        (0xC09C, "TLS_RSA_WITH_AES_128_CCM"),
        (0xC09D, "TLS_RSA_WITH_AES_256_CCM"),
        (0xC0A0, "TLS_RSA_WITH_AES_128_CCM_8"),
        (0xC0A1, "TLS_RSA_WITH_AES_256_CCM_8"),
        (0xC0AC, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM"),
        (0xC0AD, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM"),
        (0xC0AE, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8"),
        (0xC0AF, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8"),
    ]
    for sid, name in ccm:
        kind: Cipher = "AES-CCM-8" if name.endswith("_8") else "AES-CCM"
        rows.append((sid, name, kind, 32 if "_256_" in name else 16, 4, 0, "sha256", False))
    cbc = [
        (0x002F, "TLS_RSA_WITH_AES_128_CBC_SHA"),
        (0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"),
        (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"),
        (0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"),
        (0x003C, "TLS_RSA_WITH_AES_128_CBC_SHA256"),
        (0x003D, "TLS_RSA_WITH_AES_256_CBC_SHA256"),
        (0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256"),
        (0x006B, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256"),
        (0x008C, "TLS_PSK_WITH_AES_128_CBC_SHA"),
        (0x008D, "TLS_PSK_WITH_AES_256_CBC_SHA"),
        (0xC009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"),
        (0xC00A, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"),
        (0xC013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
        (0xC014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
        (0xC023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"),
        (0xC024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384"),
        (0xC027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"),
        (0xC028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"),
    ]
    for sid, name in cbc:
        mac = 48 if name.endswith("SHA384") else 32 if name.endswith("SHA256") else 20
        prf: HashName = "sha384" if mac == 48 else "sha256"
        rows.append((sid, name, "AES-CBC", 32 if "_256_" in name else 16, 16, mac, prf, False))
    return {r[0]: CipherSuite(*r) for r in rows}


SUITES: dict[int, CipherSuite] = _table()
NAMES: dict[int, str] = {sid: s.name for sid, s in SUITES.items()} | {
    0x00FF: "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
    0x5600: "TLS_FALLBACK_SCSV",
    0xC0FF: "TLS_ECJPAKE_WITH_AES_128_CCM_8",
}
"""Every suite name shown (those decrypted and a few signalling values)."""
