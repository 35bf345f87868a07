"""SDP: the offer/answer that sets up RTP, ICE and DTLS, and the candidates trickled after it (JSON
or RFC 8840 SDP fragments); found in SIP, HTTP and WebSocket bodies."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Literal

from protoscope.decoders.api import DecodeResult, Expect, Finding, FlowContext, Pdu
from protoscope.decoders.rtp.srtcp import SRTP_MKI, SRTP_PROFILE
from protoscope.decoders.rtp.srtp_keys import sdes_hint
from protoscope.decoders.stun.decoder import ICE_CREDENTIALS

from .fields import FIELDS
from .parse import Media, SdpRecord, looks_like_sdp, parse
from .trickle import Trickle, TrickleRecord, has_trickle, parse_trickle

__all__ = ["SdpDecoder", "SdpRecord", "TrickleRecord", "find_sdp", "find_trickle"]


class SdpDecoder:
    """Never chosen for a flow: SIP, HTTP and WebSocket hand it their bodies."""

    name: ClassVar[str] = "sdp"
    fields = FIELDS
    transport: ClassVar[Literal["datagram"]] = "datagram"
    ports: ClassVar[frozenset[tuple[str, int]]] = frozenset()

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        return False

    def new_state(self) -> None:
        return None

    def decode(self, data: bytes, state: object, ctx: FlowContext) -> DecodeResult:
        text = data.decode("utf-8", "replace")
        if not looks_like_sdp(text):
            return _trickle(bytes(data), ctx)
        rec, fields = parse(text)
        # What the capture learns: RTP/RTCP endpoints with their payload clocks, ICE passwords.
        expects: list[Expect] = []
        for m in rec.media:
            ip = m.connection or rec.connection
            if not ip or not m.port or "RTP" not in m.proto:
                continue
            clocks = {f"rtp.clock.{pt}": str(clock) for pt, (_, clock) in m.rtpmap.items()}
            clocks |= {f"rtp.encoding.{pt}": name for pt, (name, _) in m.rtpmap.items()}
            clocks |= {f"rtp.channels.{pt}": str(n) for pt, n in m.channels.items()}
            clocks |= {f"rtp.apt.{pt}": str(apt) for pt, apt in m.apt.items()}
            srtp = srtp_hints(m)
            ice = "TLS" in m.proto or m.ice_ufrag or rec.ice_ufrag or m.candidates
            # WebRTC media shares its 5-tuple with STUN and DTLS: RFC 7983 demux sorts it out.
            keys = sdes_keys_hint(m, ip, m.port)
            expects.append(Expect("udp", ip, m.port, "stun" if ice else "rtp", clocks | srtp | keys))
            if not m.rtcp_mux and not ice:
                expects.append(
                    Expect("udp", ip, m.port + 1, "rtcp", srtp | sdes_keys_hint(m, ip, m.port + 1))
                )
        learn_credentials(ctx, rec.passwords(), rec.credentials())
        kinds = ", ".join(f"{m.kind} {m.port}" for m in rec.media)
        return DecodeResult(
            (Pdu("sdp", tuple(fields), (0, len(data)), f"SDP ({kinds})", record=rec, expect=tuple(expects)),),
            len(data),
        )


def _trickle(data: bytes, ctx: FlowContext) -> DecodeResult:
    """Candidates trickled after the SDP: a Pdu per media section they are for (record
    TrickleRecord); a fragment's ICE passwords are learnt as an SDP's are."""
    found: Trickle = parse_trickle(data)
    if not found.records:
        finding = Finding("warn", "sdp.not_understood", "neither SDP nor trickled ICE candidates")
        return DecodeResult((), len(data), findings=(finding,))
    learn_credentials(
        ctx,
        [p for rec in found.records for p in rec.passwords if p],
        [(rec.ufrag, p) for rec in found.records if rec.ufrag for p in rec.passwords[:1] if p],
    )
    pdus = []
    for k, rec in enumerate(found.records):
        where = (
            f", mid {rec.mid}"
            if rec.mid is not None
            else f", m-line {rec.mline_index}"
            if rec.mline_index is not None
            else ""
        )
        what = f"{len(rec.candidates)} candidate{'s' if len(rec.candidates) != 1 else ''}"
        if rec.end_of_candidates:
            what = f"{what}, end-of-candidates" if rec.candidates else "end-of-candidates"
        summary = f"Trickle ICE ({what}{where})"
        first = k == 0  # the message's fields and findings go with its first record
        pdus.append(
            Pdu(
                "sdp",
                tuple(found.fields) if first else (),
                (0, len(data)),
                summary,
                tuple(found.findings) if first else (),
                record=rec,
            )
        )
    return DecodeResult(tuple(pdus), len(data))


MAX_CREDENTIALS = 4096
"""(ufrag, password) pairs learnt per capture: a call has two, two more per ICE restart."""


def learn_credentials(ctx: FlowContext, passwords: Iterable[str], pairs: Iterable[tuple[str, str]]) -> None:
    """The ICE passwords an SDP or fragment gives, and each with its ufrag, for the STUN
    decoder's MESSAGE-INTEGRITY checks."""
    pwds = ctx.capture.setdefault("ice.passwords", set())
    if isinstance(pwds, set):
        pwds.update(passwords)
    known = ctx.capture.setdefault(ICE_CREDENTIALS, {})
    if isinstance(known, dict):
        for ufrag, pwd in pairs:
            if ufrag in known or len(known) < MAX_CREDENTIALS:
                known.setdefault(ufrag, pwd)


def srtp_hints(media: Media) -> dict[str, str]:
    """What an m-line says of SRTP, for the RTP/RTCP decoder: the SDES crypto suites it offers
    (comma-separated, with their MKI length), or its transport protocol when that is SRTP's
    (RTP/SAVP, RTP/SAVPF, UDP/TLS/RTP/SAVPF: DTLS-SRTP or another key exchange names the profile)."""
    if media.crypto:
        hints = {SRTP_PROFILE: ",".join(dict.fromkeys(suite for suite, _ in media.crypto))}
        mki = max(length for _, length in media.crypto)
        return hints | ({SRTP_MKI: str(mki)} if mki else {})
    if "SAVP" in media.proto:
        return {SRTP_PROFILE: media.proto}
    return {}


def sdes_keys_hint(media: Media, ip: str, port: int) -> dict[str, str]:
    """The SDES keys of an m-line (its a=crypto values, one a line) for the decoder of the media
    that the SDP's author sends from `ip`:`port` (symmetric RTP: where it receives). RFC 4568
    section 6.1: each side's a=crypto keys what that side sends; the hint is named by the sender
    so that the offer's and the answer's keys, both given to the flow, stay apart."""
    if not media.crypto_lines:
        return {}
    return {sdes_hint(ip, port): "\n".join(media.crypto_lines)}


def find_sdp(body: bytes) -> bytes | None:
    """SDP in a body: plain, or JSON-wrapped as WebRTC signaling usually sends it (the first in
    document order when the JSON holds several)."""
    text = body.decode("utf-8", "replace")
    if looks_like_sdp(text):
        return body
    if "v=0" not in text:
        return None
    import json

    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return None
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, str) and looks_like_sdp(item):
            return item.encode()
    return None


def find_trickle(body: bytes) -> bytes | None:
    """Trickled candidates in a body (an RFC 8840 SDP fragment, or JSON signaling with an
    RTCIceCandidateInit at any depth): the body itself, for the "sdp" decoder; else None."""
    return body if has_trickle(body) else None
