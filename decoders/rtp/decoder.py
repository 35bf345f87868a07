"""RTP and RTCP datagram decoders (reached by RFC 7983 demux on STUN flows, decode-as, or a strict
heuristic)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from protoscope.decoders.api import DecodeResult, Finding, FlowContext, InnerPayload, Pdu

from .fields import FIELDS
from .packets import (
    STATIC_CLOCK,
    STATIC_NAMES,
    looks_like_rtcp,
    looks_like_rtp,
    parse_rtcp,
    parse_rtp,
)
from .srtcp import SRTP_MKI, SRTP_PROFILE, Trailer, trailers

STUN_MAGIC_COOKIE = b"\x21\x12\xa4\x42"
"""RFC 8489 section 5: bytes 4-7 of every STUN message."""

RTCP_INFO_NAMES = {
    192: "Full Intra-frame Request (H.261)",
    193: "Negative Acknowledgement (H.261)",
    194: "SMPTE time-code mapping",
    195: "Extended inter-arrival jitter report",
    200: "Sender Report",
    201: "Receiver Report",
    202: "Source description",
    203: "Goodbye",
    204: "Application specific",
    205: "Generic RTP Feedback",
    206: "Payload-specific Feedback",
    207: "Extended report (RFC 3611)",
    208: "AVB RTCP packet (IEEE1733)",
    209: "Receiver Summary Information",
    210: "Port Mapping",
}
"""Wireshark's names of RTCP packet types (`rtcp.pt`), as its Info column writes them."""
NOT_RTP_PORTS = frozenset({1900, 3478, 5353, 5355, 19302})
"""SSDP, STUN, mDNS, LLMNR, Google STUN: never RTP by heuristic (STUN flows demux RTP themselves)."""


def clock_rate(pt: int, hints: Mapping[str, str]) -> int | None:
    """The RTP clock of payload type `pt`: from signaling (SDP rtpmap), else the static type's.
    None for RFC 4733 telephone-event, whose timestamp stays put for a whole event (jitter is not
    computed on it, as in Wireshark's RTP analysis)."""
    if hints.get(f"rtp.encoding.{pt}", "").lower() == "telephone-event":
        return None
    clock = hints.get(f"rtp.clock.{pt}")
    if clock is not None and clock.isdigit():
        return int(clock)
    return STATIC_CLOCK.get(pt)


class RtpDecoder:
    name: ClassVar[str] = "rtp"
    fields = FIELDS
    transport: ClassVar[Literal["datagram"]] = "datagram"
    ports: ClassVar[frozenset[tuple[str, int]]] = frozenset()

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        # RTP lives on unprivileged ports; DNS, NTP and friends start with bytes that can look
        # like an RTP header (a DNS id of 0x80xx), so their ports never get the heuristic.
        ports = (ctx.src.port, ctx.dst.port)
        if min(ports) < 1024 or any(p in NOT_RTP_PORTS for p in ports):
            return False
        return looks_like_rtp(data)

    def new_state(self) -> None:
        return None

    def decode(self, data: bytes, state: object, ctx: FlowContext) -> DecodeResult:
        if len(data) >= 2 and 192 <= data[1] <= 223:
            # RTCP muxed on the RTP port (RFC 5761 section 4: these types are never RTP's), even
            # when its lengths do not add up (Discord's encrypted RTCP has a trailer of its own).
            return RtcpDecoder().decode(data, state, ctx)
        if data and data[0] >> 6 != 2:
            # Not RTP version 2. STUN sharing the 5-tuple (ICE consent checks, RFC 7675, on a flow
            # first seen as RTP) is handed on to the STUN decoder, as RFC 7983 section 7 demuxes
            # it: first byte 0-3 and the magic cookie of RFC 8489 section 5.
            if len(data) >= 20 and data[0] < 4 and data[4:8] == STUN_MAGIC_COOKIE:
                return DecodeResult(consumed=len(data), inner=(InnerPayload(data, 0, "stun"),))
            kind = "zrtp" if data[0] & 0xF0 == 0x10 else "not RTP"
            return DecodeResult(
                consumed=len(data),
                findings=(Finding("note", "rtp.not_rtp", f"{kind} datagram on an RTP flow"),),
            )
        rec, fields, findings = parse_rtp(
            data, clock_rate(data[1] & 0x7F, ctx.hints) if len(data) > 1 else None
        )
        if rec is None:
            return DecodeResult(consumed=len(data), findings=tuple(findings))
        pt = STATIC_NAMES.get(rec.payload_type, f"DynamicRTP-Type-{rec.payload_type}")
        summary = f"PT={pt}, SSRC=0x{rec.ssrc:08X}, Seq={rec.seq}, Time={rec.timestamp}" + (
            ", Mark" if rec.marker else ""
        )
        return DecodeResult(
            (Pdu("rtp", fields, (0, len(data)), summary, tuple(findings), record=rec),), len(data)
        )


class RtcpDecoder:
    name: ClassVar[str] = "rtcp"
    fields = FIELDS
    transport: ClassVar[Literal["datagram"]] = "datagram"
    ports: ClassVar[frozenset[tuple[str, int]]] = frozenset()

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        return looks_like_rtcp(data)

    def new_state(self) -> None:
        return None

    def decode(self, data: bytes, state: object, ctx: FlowContext) -> DecodeResult:
        if len(data) >= 2 and data[0] >> 6 == 2 and not 192 <= data[1] <= 223:
            # RTP muxed on a flow whose first datagram was RTCP (RFC 5761), as Discord's are.
            return RtpDecoder().decode(data, state, ctx)
        rec, fields, findings = parse_rtcp(data, signaled_trailers(ctx))
        summary = ", ".join(RTCP_INFO_NAMES.get(t, f"Unknown ({t})") for t in rec.types)
        if len(data) >= 8:  # the first packet's SSRC is in the clear, even in SRTCP
            summary += f", SSRC=0x{int.from_bytes(data[4:8], 'big'):08X}"
        if rec.srtcp:
            summary = f"SRTCP {summary}{' (encrypted)' if rec.encrypted else ''}, index {rec.srtcp_index}"
        elif rec.encrypted:
            summary += " (encrypted)"
        proto = "srtcp" if rec.srtcp else "rtcp"
        return DecodeResult(
            (Pdu(proto, tuple(fields), (0, len(data)), summary, tuple(findings), record=rec),), len(data)
        )


def signaled_trailers(ctx: FlowContext) -> tuple[Trailer, ...]:
    """Where the SRTCP trailer lies by what the capture said of this flow: the profile its DTLS
    handshake negotiated (use_srtp, left in ctx.shared by the DTLS decoder), else the SDES crypto
    suites its SDP offered (ctx.hints). Empty when neither named a profile."""
    for facts in (ctx.shared, ctx.hints):
        profile = facts.get(SRTP_PROFILE)
        if isinstance(profile, str):
            mki = str(facts.get(SRTP_MKI, 0))  # an int in shared, text in hints
            found = trailers(profile, int(mki) if mki.isdigit() else 0)
            if found:
                return found
    return ()
