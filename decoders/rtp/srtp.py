"""SRTP and SRTCP (RFC 3711; AEAD GCM: RFC 7714; AES-192/256-CM: RFC 6188): profiles, session key
derivation, and authenticated decryption of one packet or of many at once.

Decision: our own code over `cryptography`; pylibsrtp (libsrtp 2 through cffi) is the test oracle
only, not a dependency. Measured on this machine (2 cores, AES-NI, SHA-NI), 100,000 packets of
160-1200 bytes, one SSRC, `python -m tests.decoders.rtp.samples.bench_srtp` (two runs on a quiet
core; us/packet and packets/s):

    profile                  pylibsrtp         ours, 1 packet     ours, decrypt_many   RtpDecoder.decode
    AES_CM_128_HMAC_SHA1_80  2.3  (420-430k/s)  7.1-8.3 (120-140k)  4.2-5.0 (200-240k/s)  20-22 (46-49k/s)
    AEAD_AES_128_GCM         1.7  (570-580k/s)  2.9-3.0 (335-340k)  3.2-3.3 (305-315k/s)  15    (66-69k/s)

pylibsrtp is 1.7-3.6 times faster per packet than ours one by one. It is not used because, as an
endpoint, it cannot do what a capture reader must: it takes the rollover counter of a stream's first
packet to be 0 and offers no way to set it (a capture that starts mid-call never decrypts; we try
counters up to ROC_SEARCH), it rejects replays and packets older than its 128-packet window instead
of showing them, refuses packets over 1500 bytes, and names no AES-192/256-CM profile. What costs in
ours one by one is a fresh CTR context a packet (4 us: `cryptography` builds one per IV) and
HMAC-SHA1 (1.5 us, the key's pads hashed once and the SHA-1 states copied).

The bulk path of a long capture (`unprotect_run`, driven by srtp_flow.unprotect_bulk for
inspector/bulk.py) wins over pylibsrtp even for streams whose ROC starts at 0, so pylibsrtp is not
its fast path either. Opus-sized packets (~140 bytes) of bench/out/dtls-srtp-1m.pcap, CPU time of
one process, same run: pylibsrtp `unprotect` in a loop 1.73 us (580k/s), `decrypt_many` 2.7 us
(365k/s), `unprotect_run` 1.5-1.7 us (590-680k/s). It spends ~1.0 us a packet in the written-out
HMAC loop (two SHA-1 state copies, three updates, two digests: the floor in Python) and the rest in
numpy: indexes estimated for the whole chunk, the tags compared as one array, the keystream of the
chunk from one AES-ECB call over its counter blocks, the bodies gathered in 16-byte rows and XORed.
A packet that does not authenticate there goes back to the decoder's one-by-one path, so findings
and payloads are the decoder's (tests/inspector/test_bulk.py compares every one).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from protoscope.decoders.primitives import primitives

RTP_HEADER = 12
SRTCP_CLEAR = 8
"""First RTCP header and the sender's SSRC: never encrypted (RFC 3711 section 3.4)."""
SRTCP_INDEX = 4
"""E flag and 31-bit SRTCP index."""
GCM_TAG = 16
HMAC_KEY = 20
"""Session authentication key of HMAC-SHA1 (RFC 3711 section 4.3.2: n_a = 160 bits)."""
LABEL_RTP_KEY, LABEL_RTCP_KEY = 0, 3
"""Key derivation labels (RFC 3711 section 4.3.2): +1 the auth key, +2 the salt."""
ROC_LIMIT = 1 << 32
"""The rollover counter is 32 bits (RFC 3711 section 3.2.1)."""


@dataclass(frozen=True, slots=True)
class SrtpProfile:
    """One DTLS-SRTP protection profile (RFC 5764) or SDES crypto suite (RFC 4568)."""

    name: str
    key_len: int
    """Master (and session encryption) key, bytes."""
    salt_len: int
    """Master salt, bytes: 14 for AES-CM, 12 for GCM."""
    rtp_tag: int
    """SRTP authentication tag, bytes."""
    rtcp_tags: tuple[int, ...]
    """SRTCP tag sizes to try, most likely first: the _32 SDES suites cut SRTCP's tag to 32 bits
    with some peers (Asterisk) and keep 80 with others (libsrtp; DTLS-SRTP, RFC 5764 4.1.2)."""
    aead: bool = False
    """AEAD_AES_*_GCM (RFC 7714): no HMAC, the GCM tag ends the ciphertext."""
    null_cipher: bool = False
    """Authentication only (SRTP_NULL_*): the payload is in the clear."""

    @property
    def master_len(self) -> int:
        return self.key_len + self.salt_len


def _cm(name: str, key_len: int, tag: int, rtcp_tags: tuple[int, ...] = (10,)) -> SrtpProfile:
    return SrtpProfile(name, key_len, 14, tag, rtcp_tags)


PROFILES: dict[str, SrtpProfile] = {
    p.name: p
    for p in (
        # DTLS-SRTP (RFC 5764 section 4.1.2, RFC 7714 section 14.2), as the DTLS decoder names them
        _cm("SRTP_AES128_CM_HMAC_SHA1_80", 16, 10),
        _cm("SRTP_AES128_CM_HMAC_SHA1_32", 16, 4),
        SrtpProfile("SRTP_NULL_HMAC_SHA1_80", 16, 14, 10, (10,), null_cipher=True),
        SrtpProfile("SRTP_NULL_HMAC_SHA1_32", 16, 14, 4, (10,), null_cipher=True),
        SrtpProfile("SRTP_AEAD_AES_128_GCM", 16, 12, GCM_TAG, (GCM_TAG,), aead=True),
        SrtpProfile("SRTP_AEAD_AES_256_GCM", 32, 12, GCM_TAG, (GCM_TAG,), aead=True),
        # SDES crypto suites (RFC 4568, RFC 6188, RFC 7714)
        _cm("AES_CM_128_HMAC_SHA1_80", 16, 10),
        _cm("AES_CM_128_HMAC_SHA1_32", 16, 4, (4, 10)),
        _cm("AES_192_CM_HMAC_SHA1_80", 24, 10),
        _cm("AES_192_CM_HMAC_SHA1_32", 24, 4, (4, 10)),
        _cm("AES_256_CM_HMAC_SHA1_80", 32, 10),
        _cm("AES_256_CM_HMAC_SHA1_32", 32, 4, (4, 10)),
        SrtpProfile("AEAD_AES_128_GCM", 16, 12, GCM_TAG, (GCM_TAG,), aead=True),
        SrtpProfile("AEAD_AES_256_GCM", 32, 12, GCM_TAG, (GCM_TAG,), aead=True),
    )
}
"""By DTLS-SRTP profile name and by SDES crypto suite name."""


ALIASES = {
    "SRTP_AES128_CM_SHA1_80": "SRTP_AES128_CM_HMAC_SHA1_80",
    "SRTP_AES128_CM_SHA1_32": "SRTP_AES128_CM_HMAC_SHA1_32",
}
"""OpenSSL's names of the DTLS-SRTP profiles (SSL_get_selected_srtp_profile, aiortc's logs)."""


def profile_named(name: str) -> SrtpProfile | None:
    """The profile of a DTLS-SRTP (RFC or OpenSSL) or SDES name, in any case; None when unknown."""
    key = name.strip().upper()
    return PROFILES.get(ALIASES.get(key, key))


@dataclass(frozen=True, slots=True)
class MasterKey:
    """An SRTP master key and salt with its profile: what a key exchange gives one sender."""

    profile: SrtpProfile
    key: bytes
    salt: bytes
    mki: bytes = b""
    """Master key identifier in every packet's trailer (RFC 3711 section 3.1); empty: none."""
    source: str = ""
    """Where the key came from ("DTLS-SRTP", "SDES", "--srtp-key"), for findings."""


def _prf(master: MasterKey, label: int, length: int) -> bytes:
    """RFC 3711 section 4.3.1 with kdr 0: AES-CM keyed with the master key, from the IV (master
    salt XOR label at bit 48) * 2^16. GCM's 96-bit salt is padded to 112 bits with zeros on the
    right, as libsrtp does (RFC 7714 section 11)."""
    iv = bytearray(master.salt.ljust(14, b"\0") + b"\0\0")
    iv[7] ^= label
    c = primitives()
    enc = c.Cipher(c.algorithms.AES(master.key), c.modes.CTR(bytes(iv))).encryptor()
    return enc.update(bytes(length))


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class HmacSha1:
    """HMAC-SHA1 with the key's pads hashed once: copying two SHA-1 states per packet costs a
    third of `hmac.new`."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        padded = key.ljust(64, b"\0")
        self._inner = hashlib.sha1(padded.translate(_IPAD))
        self._outer = hashlib.sha1(padded.translate(_OPAD))

    def digest(self, data: bytes | memoryview, suffix: bytes = b"") -> bytes:
        inner = self._inner.copy()
        inner.update(data)
        if suffix:
            inner.update(suffix)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


class SessionKeys:
    """The session keys of SRTP or of SRTCP for one master key (RFC 3711 section 4.3)."""

    __slots__ = ("_c", "aes", "auth", "ecb", "gcm", "salt", "salt_int")

    def __init__(self, master: MasterKey, label: int) -> None:
        p = master.profile
        key = _prf(master, label, p.key_len)
        self.salt = _prf(master, label + 2, p.salt_len)
        self.salt_int = int.from_bytes(self.salt, "big")
        c = self._c = primitives()
        self.aes = c.algorithms.AES(key)
        self.gcm = c.AESGCM(key) if p.aead else None
        self.auth = None if p.aead else HmacSha1(_prf(master, label + 1, HMAC_KEY))
        # ECB is stateless: one context makes the counter-mode keystream of many packets at once.
        self.ecb = c.Cipher(self.aes, c.modes.ECB()).encryptor()

    def cm_iv(self, ssrc: int, index: int) -> int:
        """RFC 3711 section 4.1.1: IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16)."""
        return (self.salt_int << 16) ^ (ssrc << 64) ^ (index << 16)

    def cm(self, iv: int, data: bytes | memoryview) -> bytes:
        """AES-CM (counter mode) of `data` from counter block `iv`. (Counter blocks joined and
        encrypted by the ECB context, then XORed as Python ints or numpy arrays, cost as much.)"""
        if not len(data):
            return b""
        c = self._c
        return c.Cipher(self.aes, c.modes.CTR(iv.to_bytes(16, "big"))).decryptor().update(data)

    def gcm_nonce(self, packed: bytes) -> bytes:
        """RFC 7714 sections 8.1 and 9.1: the 12 bytes of SSRC and index XOR the session salt."""
        return (int.from_bytes(packed, "big") ^ self.salt_int).to_bytes(12, "big")


def rtp_header_len(data: bytes | memoryview) -> int:
    """Bytes of an RTP packet's header with its CSRCs and header extension (all in the clear in
    SRTP); 0 when the packet is too short to hold them."""
    n = len(data)
    if n < RTP_HEADER:
        return 0
    pos = RTP_HEADER + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:
        if pos + 4 > n:
            return 0
        pos += 4 + 4 * ((data[pos + 2] << 8) | data[pos + 3])
    return pos if pos <= n else 0


@dataclass(frozen=True, slots=True)
class Srtcp:
    """One authenticated SRTCP packet."""

    plaintext: bytes
    """The RTCP compound in the clear (trailer removed)."""
    encrypted: bool
    """The E flag."""
    index: int
    """The 31-bit SRTCP index."""
    tag_len: int
    """The size of the tag that authenticated it (the trailer is index word, MKI, tag)."""


class SrtpCrypto:
    """The session keys of one master key, for SRTP and SRTCP: decrypts and authenticates."""

    __slots__ = ("master", "rtcp", "rtp")

    def __init__(self, master: MasterKey) -> None:
        self.master = master
        self.rtp = SessionKeys(master, LABEL_RTP_KEY)
        self.rtcp = SessionKeys(master, LABEL_RTCP_KEY)

    def rtp_overhead(self) -> int:
        """Bytes after the payload: MKI and tag."""
        return len(self.master.mki) + self.master.profile.rtp_tag

    def unprotect_rtp(self, data: bytes, header: int, index: int) -> bytes | str:
        """The payload of SRTP packet `data` (whose header is `header` bytes) at 48-bit `index`
        (ROC * 65536 + SEQ), authenticated first; or why it failed."""
        p, keys, mki = self.master.profile, self.rtp, self.master.mki
        n = len(data)
        end = n - len(mki) - p.rtp_tag
        if end < header:
            return f"{n} bytes cannot hold the {header}-byte header, MKI and {p.rtp_tag}-byte tag"
        if mki and data[n - len(mki) - (0 if p.aead else p.rtp_tag) :][: len(mki)] != mki:
            return "the MKI is not the key's"
        ssrc = int.from_bytes(data[8:12], "big")
        if keys.gcm is not None:
            nonce = keys.gcm_nonce(struct.pack(">HIIH", 0, ssrc, index >> 16, index & 0xFFFF))
            try:
                return keys.gcm.decrypt(nonce, data[header : n - len(mki)], data[:header])
            except primitives().InvalidTag:
                return "GCM tag mismatch"
        assert keys.auth is not None
        roc = ((index >> 16) & 0xFFFFFFFF).to_bytes(4, "big")
        view = memoryview(data)
        tag = keys.auth.digest(view[:end], roc)[: p.rtp_tag]
        if not hmac.compare_digest(tag, data[n - p.rtp_tag :]):
            return "HMAC-SHA1 tag mismatch"
        if p.null_cipher:
            return data[header:end]
        return keys.cm(keys.cm_iv(ssrc, index), view[header:end])

    def unprotect_rtcp(self, data: bytes) -> Srtcp | str:
        """SRTCP packet `data` authenticated and decrypted; or why it failed (each of the
        profile's tag sizes is tried: authentication tells which one the sender used)."""
        p, keys, mki = self.master.profile, self.rtcp, self.master.mki
        n = len(data)
        reason = ""
        for tag_len in p.rtcp_tags:
            if p.aead:
                at = n - len(mki) - SRTCP_INDEX
                if at < SRTCP_CLEAR + GCM_TAG:
                    return f"{n} bytes cannot hold an SRTCP packet with its {GCM_TAG}-byte tag"
            else:
                at = n - tag_len - len(mki) - SRTCP_INDEX
                if at < SRTCP_CLEAR:
                    reason = f"{n} bytes cannot hold an SRTCP packet with a {tag_len}-byte tag"
                    continue
            if mki and data[at + SRTCP_INDEX : at + SRTCP_INDEX + len(mki)] != mki:
                reason = "the MKI is not the key's"
                continue
            word = int.from_bytes(data[at : at + 4], "big")
            encrypted, index = bool(word >> 31), word & 0x7FFFFFFF
            ssrc = int.from_bytes(data[4:8], "big")
            if keys.gcm is not None:
                nonce = keys.gcm_nonce(struct.pack(">HIHI", 0, ssrc, 0, index))
                index_word = data[at : at + 4]
                try:
                    if encrypted:
                        body = keys.gcm.decrypt(nonce, data[SRTCP_CLEAR:at], data[:SRTCP_CLEAR] + index_word)
                        return Srtcp(data[:SRTCP_CLEAR] + body, True, index, GCM_TAG)
                    keys.gcm.decrypt(nonce, data[at - GCM_TAG : at], data[: at - GCM_TAG] + index_word)
                    return Srtcp(data[: at - GCM_TAG], False, index, GCM_TAG)
                except primitives().InvalidTag:
                    return "GCM tag mismatch"
            assert keys.auth is not None
            view = memoryview(data)
            tag = keys.auth.digest(view[: at + SRTCP_INDEX])[:tag_len]
            if not hmac.compare_digest(tag, data[n - tag_len :]):
                reason = "HMAC-SHA1 tag mismatch"
                continue
            if not encrypted or p.null_cipher:
                return Srtcp(data[:at], encrypted, index, tag_len)
            body = keys.cm(keys.cm_iv(ssrc, index), view[SRTCP_CLEAR:at])
            return Srtcp(data[:SRTCP_CLEAR] + body, True, index, tag_len)
        return reason


def estimate_index(top: int, seq: int) -> int:
    """RFC 3711 section 3.3.1 and appendix A: the 48-bit index of sequence number `seq` in a
    stream whose highest authenticated index is `top` (ROC * 65536 + s_l)."""
    roc, s_l = top >> 16, top & 0xFFFF
    if s_l < 0x8000:
        if seq - s_l > 0x8000 and roc > 0:
            roc -= 1
    elif s_l - 0x8000 > seq:
        roc = (roc + 1) % ROC_LIMIT
    return (roc << 16) | seq


_SEQ_SSRC = struct.Struct(">H4xI")
"""An RTP header's sequence number and SSRC, from byte 2."""
_U64 = (1 << 64) - 1
REPLAY_WINDOW = 1024
"""Indexes behind a stream's highest one that are remembered (libsrtp keeps 128; a capture point
sees reordering an endpoint's jitter buffer would have absorbed)."""


_WINDOW_MASK = (1 << REPLAY_WINDOW) - 1


class ReplayList:
    """The indexes one stream (an SSRC's SRTP or SRTCP) authenticated, for replay checks (RFC 3711
    section 3.3.2): the highest and a bitmask of the REPLAY_WINDOW before it."""

    __slots__ = ("seen", "top")

    def __init__(self, top: int) -> None:
        self.top = top
        self.seen = 1

    def check(self, index: int) -> str | None:
        """None when `index` is new; else "replay" or "old" (before the window: unknown)."""
        if index > self.top:
            return None
        back = self.top - index
        if back >= REPLAY_WINDOW:
            return "old"
        return "replay" if self.seen >> back & 1 else None

    def add(self, index: int) -> None:
        if index > self.top:
            self.seen = ((self.seen << (index - self.top)) | 1) & _WINDOW_MASK
            self.top = index
        elif self.top - index < REPLAY_WINDOW:
            self.seen |= 1 << (self.top - index)


def decrypt_many(
    crypto: SrtpCrypto, packets: Sequence[bytes], streams: dict[int, ReplayList]
) -> list[bytes | None]:
    """The payloads of many SRTP packets of one sender, in order (with their RTP padding, if the P
    bit says there is some): each authenticated (None when it fails, is a replay or is cut short),
    its index estimated from `streams` (per SSRC, updated).

    For AES-CM the keystream of every packet comes from one AES-ECB call over all their counter
    blocks, built with numpy; GCM is one `AESGCM.decrypt` a packet (~1 us already). The loop is
    written out (no helper calls): at ~1 us of HMAC a packet, each Python call costs a tenth more."""
    p, keys = crypto.master.profile, crypto.rtp
    out: list[bytes | None] = [None] * len(packets)
    if p.aead or p.null_cipher or crypto.master.mki:
        for k, data in enumerate(packets):
            out[k] = _one(crypto, data, streams)
        return out
    assert keys.auth is not None
    inner_copy, outer_copy = keys.auth._inner.copy, keys.auth._outer.copy
    tag_len, unpack = p.rtp_tag, _SEQ_SSRC.unpack_from
    rows: list[int] = []
    ssrcs: list[int] = []
    indexes: list[int] = []
    bodies: list[bytes] = []
    sizes: list[int] = []
    last_ssrc, stream, top = -1, None, 0
    for k, data in enumerate(packets):
        shape = data[0] & 0x1F
        if not shape:
            header = RTP_HEADER
        elif shape == 0x10 and len(data) >= 16:  # a header extension, no CSRC: WebRTC's packets
            header = 16 + 4 * ((data[14] << 8) | data[15])
        else:
            header = rtp_header_len(data)
        end = len(data) - tag_len
        if end < header or not header:
            continue
        seq, ssrc = unpack(data, 2)
        if ssrc != last_ssrc:
            last_ssrc, stream = ssrc, streams.get(ssrc)
        if stream is None:
            index = seq
        else:
            top = stream.top
            low = top & 0xFFFF
            # RFC 3711 section 3.3.1 inline for the common case, a packet a little after the last.
            index = (top - low) | seq if 0 < seq - low < 0x8000 else estimate_index(top, seq)
        roc = (index >> 16).to_bytes(4, "big")
        inner = inner_copy()
        inner.update(data[:end])
        inner.update(roc)
        outer = outer_copy()
        outer.update(inner.digest())
        # A plain comparison: a capture reader leaks no timing to an attacker.
        if outer.digest()[:tag_len] != data[end:]:
            continue
        if stream is None:
            stream = streams[ssrc] = ReplayList(index)
        elif index == top + 1:
            stream.top = index
            stream.seen = ((stream.seen << 1) | 1) & _WINDOW_MASK
        elif stream.check(index) is not None:
            continue
        else:
            stream.add(index)
        rows.append(k)
        ssrcs.append(ssrc)
        indexes.append(index)
        body = data[header:end]
        sizes.append(len(body))
        # Padded to whole blocks, so that the XOR below runs over 64-bit words.
        bodies.append(body.ljust((len(body) + 15) & ~15, b"\0"))
    if not rows:
        return out
    blocks = (np.fromiter(sizes, np.int64, len(sizes)) + 15) >> 4
    # Counter blocks as two 64-bit words (RFC 3711 4.1.1): salt ^ SSRC in the high word, salt ^
    # (index << 16) in the low one, plus the block number (the low 16 bits are zero).
    salt = keys.salt_int << 16
    iv_high = np.fromiter(ssrcs, np.uint64, len(ssrcs)) ^ np.uint64(salt >> 64)
    iv_low = (np.fromiter(indexes, np.uint64, len(indexes)) << np.uint64(16)) ^ np.uint64(salt & _U64)
    counters = np.repeat(np.stack((iv_high, iv_low), axis=1), blocks, axis=0)
    # Block numbers: a running count that restarts at each packet's first block.
    step = np.ones(len(counters), np.uint64)
    filled = blocks[blocks > 0]  # a packet with an empty payload has no counter block
    step[np.cumsum(filled)[:-1]] = (1 - filled[:-1]).astype(np.uint64)  # wraps: the sum restarts at 0
    if len(step):
        step[0] = 0
    counters[:, 1] += np.cumsum(step, dtype=np.uint64)
    keystream = np.frombuffer(keys.ecb.update(counters.astype(">u8").tobytes()), np.uint64)
    plain = (np.frombuffer(b"".join(bodies), np.uint64) ^ keystream).tobytes()
    pos = 0
    for k, size, padded in zip(rows, sizes, blocks.tolist(), strict=True):
        out[k] = plain[pos : pos + size]
        pos += 16 * padded
    return out


def _one(crypto: SrtpCrypto, data: bytes, streams: dict[int, ReplayList]) -> bytes | None:
    header = rtp_header_len(data)
    if not header:
        return None
    ssrc = int.from_bytes(data[8:12], "big")
    seq = (data[2] << 8) | data[3]
    stream = streams.get(ssrc)
    index = seq if stream is None else estimate_index(stream.top, seq)
    payload = crypto.unprotect_rtp(data, header, index)
    if isinstance(payload, str):
        return None
    if stream is None:
        streams[ssrc] = ReplayList(index)
    elif stream.check(index) is not None:
        return None
    else:
        stream.add(index)
    return payload


RUN_CHUNK = 1 << 15
"""Packets `unprotect_run` takes at most at a time."""
RUN_BYTES = 4 << 20
"""Bytes of packets it takes at most at a time: its temporaries (counter blocks, keystream, the
bodies gathered, the plaintext) are five times this at most, whatever the packets' sizes."""


@dataclass(slots=True)
class Run:
    """The packets of one SSRC that `unprotect_run` authenticated, from the first it was given."""

    done: int
    """Packets authenticated, from the first."""
    stopped: bool
    """The packet after them did not authenticate here (a wrong tag, or an index this fast path
    does not estimate, or cut short): the caller decides it. False: the chunk ended."""
    indexes: list[int]
    """Their 48-bit indexes."""
    replays: list[int]
    """Positions (among the `done`) of packets whose index was authenticated before."""
    _plain: bytes | list[bytes]
    """Their payloads in the clear: each padded to whole AES blocks and joined (fast path), or one
    by one."""
    _sizes: list[int]
    _at: list[int]

    def payload(self, k: int) -> bytes:
        """The payload in the clear of the k-th packet authenticated (with its RTP padding)."""
        if isinstance(self._plain, list):
            return self._plain[k]
        return self._plain[self._at[k] : self._at[k] + self._sizes[k]]


def _estimate_indexes(top: npt.NDArray[np.int64], seq: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """`estimate_index` over arrays."""
    roc, s_l = top >> 16, top & 0xFFFF
    back = (s_l < 0x8000) & (seq - s_l > 0x8000) & (roc > 0)
    ahead = (s_l >= 0x8000) & (s_l - 0x8000 > seq)
    roc = np.where(back, roc - 1, np.where(ahead, (roc + 1) % ROC_LIMIT, roc))
    out: npt.NDArray[np.int64] = (roc << 16) | seq
    return out


def unprotect_run(
    crypto: SrtpCrypto,
    buf: Any,
    starts: npt.NDArray[np.int64],
    ends: npt.NDArray[np.int64],
    headers: npt.NDArray[np.int64],
    seqs: npt.NDArray[np.uint16] | npt.NDArray[np.int64],
    ssrc: int,
    replay: ReplayList,
) -> Run:
    """SRTP packets of one SSRC pinned to `crypto` (each at buf[starts[k]:ends[k]], its RTP header
    `headers[k]` bytes), in order, authenticated and decrypted as `SrtpCrypto.unprotect_rtp` one by
    one with the stream's `replay` list (updated) would: up to RUN_CHUNK of them (and RUN_BYTES),
    stopping before the first that does not authenticate here (`Run.stopped`).

    AES-CM with HMAC-SHA1 and no MKI (DTLS-SRTP's and most SDES calls') is done in bulk: indexes
    estimated with numpy (checked against RFC 3711's rule packet by packet, vectorised), the HMAC
    loop written out over memoryviews of the capture (the key's pads hashed once, SHA-1 states
    copied), the tags compared and the keystream made in one AES-ECB call over numpy-built counter
    blocks for the whole chunk. Other profiles go one packet at a time."""
    n = min(len(starts), RUN_CHUNK)
    p, keys = crypto.master.profile, crypto.rtp
    if not n:
        return Run(0, False, [], [], [], [], [])
    n = max(1, int(np.searchsorted(np.cumsum(ends[:n] - starts[:n]), RUN_BYTES, side="right")))
    if p.aead or p.null_cipher or crypto.master.mki:
        return _run_one_by_one(crypto, buf, starts[:n], ends[:n], headers[:n], seqs[:n], replay)
    tag = p.rtp_tag
    starts, ends, headers = starts[:n], ends[:n], headers[:n]
    seq = seqs[:n].astype(np.int64)
    # Indexes as if every packet authenticates: each one's estimate from the highest before it.
    first = estimate_index(replay.top, int(seq[0]))
    step = ((np.diff(seq) + 0x8000) & 0xFFFF) - 0x8000
    ext = first + np.concatenate(([0], np.cumsum(step)))
    before = np.maximum(replay.top, np.maximum.accumulate(np.concatenate(([first], ext[:-1]))))
    before[0] = replay.top
    body_at = starts + headers
    tag_at = ends - tag
    fine = (_estimate_indexes(before, seq) == ext) & (ext >= 0) & (tag_at >= body_at)
    m = n if bool(fine.all()) else int(np.argmin(fine))
    if not m:
        return Run(0, True, [], [], [], [], [])
    ext, before, body_at, tag_at, starts = ext[:m], before[:m], body_at[:m], tag_at[:m], starts[:m]
    inner_copy, outer_copy = keys.auth._inner.copy, keys.auth._outer.copy  # type: ignore[union-attr]
    digests: list[bytes] = []
    add = digests.append
    rocs = ext >> 16
    cut = [0, *(np.flatnonzero(np.diff(rocs)) + 1).tolist(), m]
    starts_l, tag_l = starts.tolist(), tag_at.tolist()
    # Released on the way out: a capture's mmap cannot close while a view of it is held.
    with memoryview(buf) as view:
        for a, b in itertools.pairwise(cut):  # runs of one rollover counter
            roc = int(rocs[a]).to_bytes(4, "big")
            for s, e in zip(starts_l[a:b], tag_l[a:b], strict=True):
                inner = inner_copy()
                inner.update(view[s:e])
                inner.update(roc)
                outer = outer_copy()
                outer.update(inner.digest())
                add(outer.digest())
    octets = np.frombuffer(buf, np.uint8)
    sent = np.lib.stride_tricks.as_strided(octets, (len(octets) - tag + 1, tag), (1, 1))[tag_at]
    made = np.frombuffer(b"".join(digests), np.uint8).reshape(m, 20)[:, :tag]
    # A plain comparison: a capture reader leaks no timing to an attacker.
    ok = (sent == made).all(axis=1)
    done = m if bool(ok.all()) else int(np.argmin(ok))
    replays = _replays(replay, ext[:done])
    plain, at, sizes = _keystream_xor(keys, octets, ssrc, ext[:done], body_at[:done], tag_at[:done])
    return Run(done, done < n, ext[:done].tolist(), replays, plain, sizes, at)


def _replays(replay: ReplayList, indexes: npt.NDArray[np.int64]) -> list[int]:
    """`ReplayList` check and add for authenticated indexes in order; the positions of replays.
    Indexes that only climb past the highest (a stream as sent) are added at once."""
    if not len(indexes):
        return []
    if int(indexes[0]) > replay.top and bool((np.diff(indexes) > 0).all()):
        last = int(indexes[-1])
        recent = last - indexes[indexes > last - REPLAY_WINDOW]
        marks = np.isin(np.arange(REPLAY_WINDOW), recent)
        bits = int.from_bytes(np.packbits(marks, bitorder="little").tobytes(), "little")
        replay.seen = ((replay.seen << (last - replay.top)) | bits) & _WINDOW_MASK
        replay.top = last
        return []
    out: list[int] = []
    for k, index in enumerate(indexes.tolist()):
        if replay.check(index) == "replay":
            out.append(k)
        else:
            replay.add(index)
    return out


def _keystream_xor(
    keys: SessionKeys,
    octets: npt.NDArray[np.uint8],
    ssrc: int,
    indexes: npt.NDArray[np.int64],
    body_at: npt.NDArray[np.int64],
    body_end: npt.NDArray[np.int64],
) -> tuple[bytes, list[int], list[int]]:
    """AES-CM of many packets' bodies (octets[body_at[k]:body_end[k]]) at once: the bodies gathered
    in 16-byte blocks, XORed with the keystream of their counter blocks. The joined plaintext (each
    padded to whole blocks), where each starts, and its size."""
    sizes = body_end - body_at
    blocks = (sizes + 15) >> 4
    total = int(blocks.sum())
    if not total:
        return b"", [0] * len(sizes), sizes.tolist()
    first = np.cumsum(blocks) - blocks
    number = np.arange(total, dtype=np.int64) - np.repeat(first, blocks)
    at = np.repeat(body_at, blocks) + 16 * number
    # Counter blocks (RFC 3711 4.1.1): salt ^ SSRC in the high word, salt ^ (index << 16) plus the
    # block number in the low one (its low 16 bits are zero before: no carry).
    salt = keys.salt_int << 16
    counters = np.empty((total, 2), ">u8")
    counters[:, 0] = np.uint64(ssrc ^ (salt >> 64))
    low = (indexes.astype(np.uint64) << np.uint64(16)) ^ np.uint64(salt & _U64)
    counters[:, 1] = np.repeat(low, blocks) + number.astype(np.uint64)
    keystream = np.frombuffer(keys.ecb.update(counters.tobytes()), np.uint8).reshape(total, 16)
    room = len(octets) - 16
    if room >= 0 and int(at[-1]) <= room:
        body = np.lib.stride_tricks.as_strided(octets, (room + 1, 16), (1, 1))[at]
    else:  # the last block runs past the end of the capture (its bytes there are never used)
        body = np.zeros((total, 16), np.uint8)
        for k, pos in enumerate(at.tolist()):
            chunk = octets[pos : pos + 16]
            body[k, : len(chunk)] = chunk
    plain = (body ^ keystream).tobytes()
    return plain, (16 * first).tolist(), sizes.tolist()


def _run_one_by_one(
    crypto: SrtpCrypto,
    buf: Any,
    starts: npt.NDArray[np.int64],
    ends: npt.NDArray[np.int64],
    headers: npt.NDArray[np.int64],
    seqs: npt.NDArray[np.uint16] | npt.NDArray[np.int64],
    replay: ReplayList,
) -> Run:
    """`unprotect_run` a packet at a time (GCM, the NULL cipher, an MKI)."""
    payloads: list[bytes] = []
    indexes: list[int] = []
    replays: list[int] = []
    for s, e, h, seq in zip(starts.tolist(), ends.tolist(), headers.tolist(), seqs.tolist(), strict=True):
        index = estimate_index(replay.top, seq)
        got = crypto.unprotect_rtp(bytes(buf[s:e]), h, index)
        if isinstance(got, str):
            break
        if replay.check(index) == "replay":
            replays.append(len(payloads))
        else:
            replay.add(index)
        payloads.append(got)
        indexes.append(index)
    return Run(len(payloads), len(payloads) < len(starts), indexes, replays, payloads, [], [])
