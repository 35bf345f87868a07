"""SDP (RFC 8866) with the attributes WebRTC and SIP use: ICE credentials and candidates (RFC 8839),
DTLS fingerprints and setup roles (RFC 8122, 5763), rtpmap, ssrc, mid, rtcp-mux."""

from __future__ import annotations

from dataclasses import dataclass, field

from protoscope.decoders.api import Field

MAX_FINGERPRINTS = 16
"""Distinct a=fingerprint values kept from one SDP (one per hash function and certificate)."""


@dataclass(slots=True)
class Media:
    kind: str
    port: int
    proto: str
    formats: list[str]
    connection: str | None = None
    rtpmap: dict[int, tuple[str, int]] = field(default_factory=dict)
    channels: dict[int, int] = field(default_factory=dict)
    """rtpmap's encoding parameters of audio types: the channel count ("opus/48000/2")."""
    apt: dict[int, int] = field(default_factory=dict)
    """RTX types (RFC 4588 section 8.6: a=fmtp:<pt> apt=<pt>) -> the type they retransmit."""
    ssrcs: list[int] = field(default_factory=list)
    mid: str | None = None
    ice_ufrag: str | None = None
    ice_pwd: str | None = None
    fingerprint: str | None = None
    setup: str | None = None
    candidates: list[str] = field(default_factory=list)
    rtcp_mux: bool = False
    crypto: list[tuple[str, int]] = field(default_factory=list)
    """SDES keys (RFC 4568 a=crypto): (crypto suite, MKI length in bytes), in the SDP's order."""
    crypto_lines: list[str] = field(default_factory=list)
    """The a=crypto values themselves (tag, suite, key parameters), for SRTP decryption."""


@dataclass(slots=True)
class SdpRecord:
    origin: str = ""
    connection: str | None = None
    ice_ufrag: str | None = None
    ice_pwd: str | None = None
    fingerprint: str | None = None
    setup: str | None = None
    media: list[Media] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)
    """Every a=fingerprint value, session and media level, once each in the SDP's order ("sha-256
    AB:CD:..."): RFC 8122 section 5 lets an SDP offer several hash functions (sha-256 and
    sha-512), and the certificate must match one of them. `fingerprint` is the session's (or
    the last media section's, as ever)."""

    def passwords(self) -> set[str]:
        return {p for p in [self.ice_pwd, *(m.ice_pwd for m in self.media)] if p}

    def credentials(self) -> list[tuple[str, str]]:
        """(ufrag, password) of the session and of each media section (a media level value
        overrides the session's, RFC 8839 section 5.4)."""
        pairs = [(self.ice_ufrag, self.ice_pwd)]
        pairs += [(m.ice_ufrag or self.ice_ufrag, m.ice_pwd or self.ice_pwd) for m in self.media]
        return [(u, p) for u, p in pairs if u and p]


def _number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also accepts "²", which int() refuses."""
    return text.isascii() and text.isdigit()


def looks_like_sdp(text: str) -> bool:
    return text.lstrip().startswith("v=0") and "\no=" in text.replace("\r", "")


def parse(text: str) -> tuple[SdpRecord, list[Field]]:
    rec = SdpRecord()
    fields: list[Field] = []
    media: Media | None = None
    pos = 0
    for raw in text.splitlines(keepends=True):
        line = raw.rstrip("\r\n")
        span = (pos, pos + len(line))
        pos += len(raw)
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:]
        name = {
            "v": "sdp.version",
            "o": "sdp.owner",
            "s": "sdp.session_name",
            "c": "sdp.connection_info",
            "t": "sdp.time",
            "m": "sdp.media",
            "a": "sdp.media_attr" if media else "sdp.session_attr",
            "b": "sdp.bandwidth",
        }.get(kind, "sdp.line")
        fields.append(Field(name, value, span))
        if kind == "o":
            rec.origin = value
        elif kind == "c":
            addr = value.split()[-1].split("/")[0] if value.split() else None
            if media is None:
                rec.connection = addr
            else:
                media.connection = addr
        elif kind == "m":
            parts = value.split()
            if len(parts) >= 3:
                port = parts[1].split("/")[0]
                media = Media(parts[0], int(port) if _number(port) else 0, parts[2], parts[3:])
                rec.media.append(media)
        elif kind == "a":
            attr, _, arg = value.partition(":")
            target = media if media is not None else rec
            if attr == "ice-ufrag":
                target.ice_ufrag = arg
            elif attr == "ice-pwd":
                target.ice_pwd = arg
            elif attr == "fingerprint":
                target.fingerprint = arg
                if arg not in rec.fingerprints and len(rec.fingerprints) < MAX_FINGERPRINTS:
                    rec.fingerprints.append(arg)
            elif attr == "setup":
                target.setup = arg
            elif media is not None:
                if attr == "rtpmap":
                    pt, _, enc = arg.partition(" ")
                    enc_parts = enc.split("/")
                    if _number(pt) and len(enc_parts) >= 2 and _number(enc_parts[1]):
                        media.rtpmap[int(pt)] = (enc_parts[0], int(enc_parts[1]))
                        if len(enc_parts) >= 3 and _number(enc_parts[2]):
                            media.channels[int(pt)] = int(enc_parts[2])
                elif attr == "fmtp":
                    pt, _, params = arg.partition(" ")
                    apt = _fmtp_apt(params)
                    if _number(pt) and apt is not None:
                        media.apt[int(pt)] = apt
                elif attr == "ssrc":
                    ssrc = arg.split(" ")[0]
                    if _number(ssrc) and int(ssrc) not in media.ssrcs:
                        media.ssrcs.append(int(ssrc))
                elif attr == "mid":
                    media.mid = arg
                elif attr == "candidate":
                    media.candidates.append(arg)
                elif attr == "rtcp-mux":
                    media.rtcp_mux = True
                elif attr == "crypto":
                    media.crypto.append(_crypto(arg))
                    media.crypto_lines.append(arg)
    return rec, fields


def _fmtp_apt(params: str) -> int | None:
    """The apt= of an fmtp line's parameters ("apt=96;rtx-time=3000"), None without one."""
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "apt" and _number(value.strip()):
            return int(value.strip())
    return None


def _crypto(arg: str) -> tuple[str, int]:
    """RFC 4568 section 9.1: "tag suite inline:key||salt[|lifetime][|MKI:length]"; the suite and
    the MKI length (the MKI is part of every SRTP and SRTCP packet's trailer)."""
    parts = arg.split()
    suite = parts[1] if len(parts) > 1 else ""
    mki = 0
    for key in (parts[2] if len(parts) > 2 else "").split(";"):
        for param in key.split("|")[1:]:
            value, _, length = param.partition(":")
            if length and _number(value) and _number(length):
                mki = int(length)
    return suite, mki
