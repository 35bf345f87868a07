"""Where SRTP master keys come from: the DTLS-SRTP exporter (RFC 5764 section 4.2), SDES a=crypto
lines of SDP (RFC 4568), and `--srtp-key` on the command line."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from protoscope.decoders.api import Endpoint

from .srtp import MasterKey, SrtpProfile, profile_named

DTLS_SRTP_LABEL = b"EXTRACTOR-dtls_srtp"
"""RFC 5764 section 4.2: the exporter label of DTLS-SRTP keying material."""
DTLS_EXPORTER = "dtls.exporter"
"""Key of FlowContext.shared where the DTLS decoder leaves the connection's exporter:
`callable(label: bytes, context: bytes | None, length: int) -> bytes`."""
DTLS_CLIENT_IS_FLOW_CLIENT = "dtls.client_is_flow_client"
"""Key of FlowContext.shared: the DTLS client is the flow's client (bool)."""
SDES_HINT = "srtp.sdes."
"""Prefix of the hints the SDP decoder gives a media flow: `srtp.sdes.<ip>:<port>` holds the
a=crypto lines (without their tags, one a line) of the endpoint at that address, whose sending
they key (RFC 4568 section 6.1: each side's a=crypto is the key of what that side sends)."""
MAX_SDES_KEYS = 16
"""Keys taken from one SDP endpoint's a=crypto lines; the rest are ignored."""


def _digits(text: str) -> bool:
    """ASCII digits only: str.isdigit() also accepts "²", which int() refuses."""
    return text.isascii() and text.isdigit()


def sdes_hint(ip: str, port: int) -> str:
    """The hint name of the SDES keys of the endpoint that sends from `ip`:`port`."""
    return f"{SDES_HINT}{Endpoint(ip, port)}"


def dtls_srtp_keys(
    exporter: Callable[[bytes, bytes | None, int], bytes], profile: SrtpProfile
) -> tuple[MasterKey, MasterKey]:
    """The DTLS client's and server's master keys (RFC 5764 section 4.2): the exporter's keying
    material is client key, server key, client salt, server salt."""
    kl, sl = profile.key_len, profile.salt_len
    material = exporter(DTLS_SRTP_LABEL, None, 2 * (kl + sl))
    if len(material) != 2 * (kl + sl):
        raise ValueError(f"the exporter gave {len(material)} bytes, not {2 * (kl + sl)}")
    client = MasterKey(profile, material[:kl], material[2 * kl : 2 * kl + sl], source="DTLS-SRTP")
    server = MasterKey(profile, material[kl : 2 * kl], material[2 * kl + sl :], source="DTLS-SRTP")
    return client, server


def _master(profile: SrtpProfile, blob: bytes, mki: bytes, source: str) -> MasterKey:
    return MasterKey(profile, blob[: profile.key_len], blob[profile.key_len :], mki, source)


def parse_crypto(line: str) -> tuple[MasterKey, ...]:
    """The keys of one SDES crypto attribute value, with or without its tag (RFC 4568 section 9.1:
    `[tag] suite inline:<base64 key||salt>[|lifetime][|MKI:length][;inline:...] [session params]`).
    Empty when the suite is unknown, a key does not decode to the suite's length, or a session
    parameter changes what is protected (KDR, UNENCRYPTED_*, UNAUTHENTICATED_SRTP: not supported)."""
    parts = line.split()
    if parts and _digits(parts[0]):
        parts = parts[1:]
    if len(parts) < 2:
        return ()
    profile = profile_named(parts[0])
    if profile is None or any(not p.upper().startswith(("FEC_", "WSH=")) for p in parts[2:]):
        return ()
    out: list[MasterKey] = []
    for param in parts[1].split(";")[:MAX_SDES_KEYS]:
        method, _, info = param.partition(":")
        if method.lower() != "inline":
            continue
        key, *rest = info.split("|")
        try:
            blob = base64.b64decode(key + "=" * (-len(key) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        mki = b""
        for item in rest:
            value, colon, length = item.partition(":")
            if colon and _digits(value) and _digits(length) and 0 < int(length) <= 128:
                if int(value) >= 1 << (8 * int(length)):
                    break
                mki = int(value).to_bytes(int(length), "big")
        else:
            if len(blob) == profile.master_len:
                out.append(_master(profile, blob, mki, "SDES"))
    return tuple(out)


def sdes_keys(hints: Mapping[str, str], sender: Endpoint) -> tuple[MasterKey, ...]:
    """The SDES keys signaling gave the endpoint that sends from `sender`."""
    text = hints.get(sdes_hint(sender.ip, sender.port))
    if not text:
        return ()
    out: list[MasterKey] = []
    for line in text.splitlines():
        out.extend(parse_crypto(line))
    return tuple(out[:MAX_SDES_KEYS])


@dataclass(frozen=True, slots=True)
class SrtpKeyOption:
    """One `--srtp-key SSRC|ADDR:PORT,PROFILE,BASE64`: the master key of the packets of an SSRC,
    or of those sent from an address and port."""

    key: MasterKey
    ssrc: int | None = None
    sender: Endpoint | None = None


def parse_srtp_key(text: str) -> SrtpKeyOption:
    """`SSRC|ADDR:PORT,PROFILE,BASE64` (SSRC decimal or 0x-hex; ADDR:PORT the sender's, [v6]:port
    for IPv6; PROFILE a DTLS-SRTP profile or SDES suite name; BASE64 the master key and salt).
    ValueError with a one-line reason when it is not that."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3:
        raise ValueError(f"{text!r}: expected SSRC|ADDR:PORT,PROFILE,BASE64")
    who, name, blob_text = parts
    profile = profile_named(name)
    if profile is None:
        raise ValueError(f"unknown SRTP profile {name!r}")
    try:
        blob = base64.b64decode(blob_text + "=" * (-len(blob_text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the key {blob_text!r} is not base64") from None
    if len(blob) != profile.master_len:
        raise ValueError(
            f"{profile.name} takes {profile.master_len} bytes of key and salt, the key has {len(blob)}"
        )
    key = _master(profile, blob, b"", "--srtp-key")
    ssrc = _ssrc(who)
    if ssrc is not None:
        return SrtpKeyOption(key, ssrc=ssrc)
    return SrtpKeyOption(key, sender=_endpoint(who))


def _ssrc(text: str) -> int | None:
    try:
        value = int(text, 16) if text.lower().startswith("0x") else int(text) if _digits(text) else None
    except ValueError:
        raise ValueError(f"{text!r} is not an SSRC") from None
    if value is not None and not 0 <= value < 1 << 32:
        raise ValueError(f"SSRC {text} does not fit in 32 bits")
    return value


def _endpoint(text: str) -> Endpoint:
    host, colon, port = text.rpartition(":")
    if not colon or not _digits(port) or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is neither an SSRC nor ADDR:PORT")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address") from None
    return Endpoint(str(ip), int(port))
