"""SRTCP (RFC 3711 section 3.4): where each SRTP profile puts the trailer, and how a datagram of an
RTCP flow is told to be SRTCP.

SRTCP leaves the first 8 bytes of the compound in the clear (V, P, RC, PT, length, the sender's
SSRC) and appends a trailer: the E flag (set when the rest is encrypted) with the 31-bit SRTCP
index, an optional MKI, and the authentication tag. With AES-CM/HMAC-SHA1 profiles the tag comes
last; with AEAD_AES_*_GCM (RFC 7714 section 17) the 16-byte tag is the end of the ciphertext and
the E flag and index follow it.

A flow is known to carry SRTCP when its DTLS handshake negotiated use_srtp (RFC 5764) or its SDP
offered SDES keys (RFC 4568): the profile then says where the trailer is. Otherwise the trailer is
looked for where each profile would put it, strictly, after making sure the datagram is not a
plain RTCP compound (whose packet lengths add up to the datagram exactly).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

SRTP_PROFILE = "srtp.profile"
"""Key of the flow's SRTP profile, in FlowContext.shared (the DTLS-SRTP profile, set by the DTLS
decoder) and in hints (the SDES crypto suites of the SDP, comma-separated, or the m-line's
transport protocol when it names no suite)."""
SRTP_MKI = "srtp.mki"
"""Key of the MKI length in bytes, beside SRTP_PROFILE."""
SRTCP_CLEAR = 8
"""Bytes of an SRTCP packet never encrypted: the first RTCP header and the sender's SSRC."""
GUESSED_INDEX_LIMIT = 1 << 20
"""Largest SRTCP index believed without signaling. Senders count from 0 or 1, one per RTCP
compound (about 3 hours of 100 feedback packets a second); 31 random bits fall below this with a
chance of 1 in 2,048, and the E flag halves that again."""


@dataclass(frozen=True, slots=True)
class Trailer:
    """The SRTCP trailer of one profile."""

    tag: int
    """Authentication tag, bytes."""
    aead: bool = False
    """AEAD (RFC 7714): the tag ends the ciphertext, before the E flag and index."""
    mki: int = 0
    """Master key identifier, bytes (0: none; DTLS use_srtp or the SDES key parameters say)."""

    @property
    def size(self) -> int:
        """Bytes after the RTCP compound (or its ciphertext): index word, MKI and tag."""
        return 4 + self.mki + self.tag

    def index_at(self, n: int) -> int:
        """Offset of the E flag and index in a datagram of `n` bytes."""
        return n - self.mki - 4 if self.aead else n - self.size

    def tag_span(self, n: int) -> tuple[int, int]:
        start = n - self.size if self.aead else n - self.tag
        return start, start + self.tag

    def mki_span(self, n: int) -> tuple[int, int]:
        start = n - self.mki if self.aead else n - self.tag - self.mki
        return start, start + self.mki


HMAC_SHA1_80 = Trailer(10)
HMAC_SHA1_32 = Trailer(4)
AEAD_GCM = Trailer(16, aead=True)
GUESSES = (HMAC_SHA1_80, AEAD_GCM, HMAC_SHA1_32)
"""Where a trailer is looked for when signaling did not name the profile, most common first."""

PROFILES: dict[str, tuple[Trailer, ...]] = {
    # DTLS-SRTP protection profiles. RFC 5764 section 4.1.2 keeps SRTCP's tag at 80 bits in the
    # _32 profiles (only SRTP's is cut), and libsrtp does the same.
    "SRTP_AES128_CM_HMAC_SHA1_80": (HMAC_SHA1_80,),
    "SRTP_AES128_CM_HMAC_SHA1_32": (HMAC_SHA1_80,),
    "SRTP_NULL_HMAC_SHA1_80": (HMAC_SHA1_80,),
    "SRTP_NULL_HMAC_SHA1_32": (HMAC_SHA1_80,),
    "SRTP_AEAD_AES_128_GCM": (AEAD_GCM,),
    "SRTP_AEAD_AES_256_GCM": (AEAD_GCM,),
    # SDES crypto suites (RFC 4568, RFC 6188, RFC 7714). SDES peers such as Asterisk and Zfone cut
    # SRTCP's tag to 32 bits too in the _32 suites (the corpus' Asterisk/Zfone call does), others
    # keep 80 bits as DTLS-SRTP does: both places are tried, the short one first.
    "AES_CM_128_HMAC_SHA1_80": (HMAC_SHA1_80,),
    "AES_192_CM_HMAC_SHA1_80": (HMAC_SHA1_80,),
    "AES_256_CM_HMAC_SHA1_80": (HMAC_SHA1_80,),
    "F8_128_HMAC_SHA1_80": (HMAC_SHA1_80,),
    "AES_CM_128_HMAC_SHA1_32": (HMAC_SHA1_32, HMAC_SHA1_80),
    "AES_192_CM_HMAC_SHA1_32": (HMAC_SHA1_32, HMAC_SHA1_80),
    "AES_256_CM_HMAC_SHA1_32": (HMAC_SHA1_32, HMAC_SHA1_80),
    "AEAD_AES_128_GCM": (AEAD_GCM,),
    "AEAD_AES_256_GCM": (AEAD_GCM,),
}


@dataclass(frozen=True, slots=True)
class SrtcpTrailer:
    """A trailer found in one datagram."""

    trailer: Trailer
    encrypted: bool
    """The E flag."""
    index: int
    """The 31-bit SRTCP index."""
    end: int
    """Where the RTCP compound (clear, or its ciphertext) ends and the trailer begins."""


def trailers(profiles: str | None, mki: int = 0) -> tuple[Trailer, ...]:
    """The trailers of the profiles named in `profiles` (comma-separated DTLS-SRTP profiles or SDES
    crypto suites, as signaling gives them), in order; empty when none is known."""
    out: list[Trailer] = []
    for name in (profiles or "").split(","):
        for t in PROFILES.get(name.strip(), ()):
            placed = Trailer(t.tag, t.aead, mki)
            if placed not in out:
                out.append(placed)
    return tuple(out)


def find_trailer(
    data: bytes, first_len: int, walks_to: Callable[[int], bool], signaled: Sequence[Trailer] = ()
) -> SrtcpTrailer | None:
    """The SRTCP trailer of `data`, an RTCP datagram whose first packet is `first_len` bytes long;
    `walks_to(end)` says whether the compound's packet lengths add up to exactly `end` bytes.

    None for a plain compound (its lengths add up to the datagram). A trailer of a profile that
    signaling named is taken when its E flag is set and the first packet lies before it, or when
    the E flag is clear and the compound ends right where it begins. Without signaling the same
    must hold and the index must be small (GUESSED_INDEX_LIMIT); of several, the smallest index."""
    n = len(data)
    if walks_to(n):
        return None

    def read(t: Trailer) -> SrtcpTrailer | None:
        end = n - t.size
        if end < max(SRTCP_CLEAR, first_len):
            return None
        at = t.index_at(n)
        word = int.from_bytes(data[at : at + 4], "big")
        return SrtcpTrailer(t, bool(word >> 31), word & 0x7FFFFFFF, end)

    for t in signaled:
        found = read(t)
        if found is not None and (found.encrypted or walks_to(found.end)):
            return found
    best: SrtcpTrailer | None = None
    for t in GUESSES:
        found = read(t)
        if found is None or found.index >= GUESSED_INDEX_LIMIT:
            continue
        if not found.encrypted:
            if walks_to(found.end):
                return found  # a clear compound that ends exactly at the trailer
        elif best is None or found.index < best.index:
            best = found
    return best
