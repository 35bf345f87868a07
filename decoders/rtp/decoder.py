"""RTP and RTCP datagram decoders (reached by RFC 7983 demux on STUN flows, decode-as, or a strict
heuristic)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import ClassVar, Literal

from protoscope.decoders.api import (
    DecodeResult,
    Field,
    Finding,
    FlowContext,
    InnerPayload,
    LazyFields,
    Pdu,
)

from .codecs import encoding_name
from .fields import FIELDS
from .packets import (
    STATIC_CLOCK,
    STATIC_NAMES,
    RtpRecord,
    looks_like_rtcp,
    looks_like_rtp,
    parse_rtcp,
    parse_rtp,
)
from .srtcp import SRTP_MKI, SRTP_PROFILE, Trailer, trailers
from .srtp import GCM_TAG, SRTCP_INDEX, MasterKey, rtp_header_len
from .srtp_flow import (
    KeyTable,
    SrtpState,
    Unprotected,
    UnprotectedRtcp,
    candidate_keys,
    replay_finding,
    unprotect_rtcp,
    unprotect_rtp,
)

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
DECLARED = FIELDS
"""RTP's, RTCP's, SRTP's and the codecs' fields."""
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
    """RTP, and SRTP decrypted when a key applies (DTLS-SRTP, SDES, --srtp-key: see srtp_flow.py)."""

    name: ClassVar[str] = "rtp"
    fields = DECLARED
    transport: ClassVar[Literal["datagram"]] = "datagram"
    ports: ClassVar[frozenset[tuple[str, int]]] = frozenset()

    def __init__(self) -> None:
        self._keys = KeyTable()

    def configure(self, options: Mapping[str, object]) -> None:
        """`srtp.keys`: the `--srtp-key` options (SrtpKeyOption), kept as configuration."""
        self._keys = KeyTable.of(options)

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        # RTP lives on unprivileged ports; DNS, NTP and friends start with bytes that can look
        # like an RTP header (a DNS id of 0x80xx), so their ports never get the heuristic.
        ports = (ctx.src.port, ctx.dst.port)
        if min(ports) < 1024 or any(p in NOT_RTP_PORTS for p in ports):
            return False
        return looks_like_rtp(data)

    def new_state(self) -> SrtpState:
        return SrtpState()

    def decode(self, data: bytes, state: object, ctx: FlowContext) -> DecodeResult:
        if len(data) >= 2 and 192 <= data[1] <= 223:
            # RTCP muxed on the RTP port (RFC 5761 section 4: these types are never RTP's), even
            # when its lengths do not add up (Discord's encrypted RTCP has a trailer of its own).
            return decode_rtcp(data, state, ctx, self._keys)
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
        pt = data[1] & 0x7F if len(data) > 1 else -1
        clock = clock_rate(pt, ctx.hints) if pt >= 0 else None
        encoding = encoding_name(pt, ctx.hints) if pt >= 0 else ""
        if isinstance(state, SrtpState) and len(data) >= 12:
            ssrc = int.from_bytes(data[8:12], "big")
            keys = candidate_keys(ctx, ssrc, state, self._keys)
            header = rtp_header_len(data) if keys or ssrc in state.rtp else 0
            if header:
                seq = int.from_bytes(data[2:4], "big")
                got = unprotect_rtp(data, header, ssrc, seq, keys, state)
                if isinstance(got, Unprotected):
                    return _decrypted_rtp(data, header, got, clock, encoding)
                failed = Finding(
                    "error",
                    "srtp.auth_failed",
                    f"SRTP of SSRC 0x{ssrc:08X} seq {seq} not authenticated ({got}): payload not decoded",
                    (header, len(data)),
                )
                return _opaque_rtp(data, header, clock, failed)
        if srtp_signaled(ctx):
            return _rtp_result(data, clock, "", clear=False)  # SRTP nobody could decrypt
        return _rtp_result(data, clock, encoding)

    def keys_for(self, ctx: FlowContext, ssrc: int, state: SrtpState) -> list[MasterKey]:
        """The master keys `decode` would try on a packet of `ssrc` that has none pinned (for the
        bulk path, inspector/bulk.py: when there are none, decode reads the header only)."""
        return candidate_keys(ctx, ssrc, state, self._keys)


def srtp_signaled(ctx: FlowContext) -> bool:
    """The flow's DTLS handshake negotiated SRTP (use_srtp) or its SDP offered it: its RTP payloads
    are ciphertext unless decrypted."""
    return isinstance(ctx.shared.get(SRTP_PROFILE), str) or SRTP_PROFILE in ctx.hints


def _rtp_result(data: bytes, clock: int | None, encoding: str, clear: bool = True) -> DecodeResult:
    """RTP read as plain: its record carries the payload (codec facts for the streams report) and
    its detail tree the codec's fields (`encoding`: signaling's name of the payload type). Not
    `clear`: SRTP nobody could decrypt, whose record has no payload."""
    rec, fields, findings = parse_rtp(data, clock, encoding)
    if rec is None:
        return DecodeResult(consumed=len(data), findings=tuple(findings))
    if clear:
        header = rtp_header_len(data)
        rec = dataclasses.replace(rec, payload=data[header : header + rec.payload_len])
    pdu = Pdu("rtp", fields, (0, len(data)), _rtp_summary(rec), tuple(findings), record=rec)
    return DecodeResult((pdu,), len(data))


def _opaque_rtp(data: bytes, header: int, clock: int | None, failed: Finding) -> DecodeResult:
    """SRTP that did not authenticate: its clear header only. The padding count is the last byte of
    the encrypted payload, so nothing after the header is read (the P bit is kept as sent)."""
    clear = bytes([data[0] & 0xDF]) + data[1:header]
    rec, fields, findings = parse_rtp(clear, clock)
    if rec is None:
        return DecodeResult(consumed=len(data), findings=(*findings, failed))
    rec = dataclasses.replace(rec, payload_len=len(data) - header)
    padding = bool(data[0] & 0x20)

    def tree() -> list[Field]:
        out = [
            Field(f.name, padding, f.span) if f.name == "rtp.padding" else f
            for f in fields
            if f.name != "rtp.payload"
        ]
        return [*out, Field("rtp.payload", f"{len(data) - header} bytes, encrypted", (header, len(data)))]

    pdu = Pdu("rtp", LazyFields(tree), (0, len(data)), _rtp_summary(rec), (*findings, failed), record=rec)
    return DecodeResult((pdu,), len(data))


def _rtp_summary(rec: RtpRecord) -> str:
    pt = STATIC_NAMES.get(rec.payload_type, f"DynamicRTP-Type-{rec.payload_type}")
    return f"PT={pt}, SSRC=0x{rec.ssrc:08X}, Seq={rec.seq}, Time={rec.timestamp}" + (
        ", Mark" if rec.marker else ""
    )


def _decrypted_rtp(
    data: bytes, header: int, got: Unprotected, clock: int | None, encoding: str
) -> DecodeResult:
    """An authenticated SRTP packet: its plaintext read as RTP with the codec's fields (spans map
    1:1 onto the ciphertext), with the MKI and tag after it."""
    plain = data[:header] + got.payload
    rec, fields, findings = parse_rtp(plain, clock, encoding)
    if rec is None:  # the header was read already: cannot happen, but stay total
        return DecodeResult(consumed=len(data), findings=tuple(findings))
    rec = dataclasses.replace(rec, payload=got.payload[: rec.payload_len])
    if got.replay:
        findings.append(replay_finding(got.index, rec.ssrc))
    master = got.crypto.master
    if got.passed_over:
        findings.append(
            Finding(
                "warn",
                "srtp.key_unused",
                f"SRTP of SSRC 0x{rec.ssrc:08X}: the {got.passed_over} key did not authenticate; "
                f"the {master.source or 'other'} key did",
            )
        )
    summary = f"{_rtp_summary(rec)}, SRTP decrypted ({master.source or master.profile.name})"
    tree = LazyFields(lambda: [*fields, *_srtp_trailer(data, got)])
    return DecodeResult((Pdu("rtp", tree, (0, len(data)), summary, tuple(findings), record=rec),), len(data))


def _srtp_trailer(data: bytes, got: Unprotected) -> list[Field]:
    """The rollover counter the packet authenticated with, its MKI and its tag (built when the
    detail tree is read: most packets' never are)."""
    master = got.crypto.master
    n, mki, tag = len(data), len(master.mki), master.profile.rtp_tag
    tag_at = n - mki - GCM_TAG if master.profile.aead else n - tag
    mki_at = n - mki if master.profile.aead else n - tag - mki
    out = [Field("srtp.roc", got.index >> 16, (2, 4))]
    if mki:
        out.append(Field("srtp.mki", data[mki_at : mki_at + mki].hex(), (mki_at, mki_at + mki)))
    out.append(Field("srtp.auth_tag", data[tag_at : tag_at + tag].hex(), (tag_at, tag_at + tag)))
    return out


class RtcpDecoder:
    """RTCP, SRTCP's clear part, and SRTCP decrypted when a key applies."""

    name: ClassVar[str] = "rtcp"
    fields = DECLARED
    transport: ClassVar[Literal["datagram"]] = "datagram"
    ports: ClassVar[frozenset[tuple[str, int]]] = frozenset()

    def __init__(self) -> None:
        self._rtp = RtpDecoder()

    def configure(self, options: Mapping[str, object]) -> None:
        self._rtp.configure(options)

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        return looks_like_rtcp(data)

    def new_state(self) -> SrtpState:
        return SrtpState()

    def decode(self, data: bytes, state: object, ctx: FlowContext) -> DecodeResult:
        if len(data) >= 2 and data[0] >> 6 == 2 and not 192 <= data[1] <= 223:
            # RTP muxed on a flow whose first datagram was RTCP (RFC 5761), as Discord's are.
            return self._rtp.decode(data, state, ctx)
        return decode_rtcp(data, state, ctx, self._rtp._keys)


def decode_rtcp(data: bytes, state: object, ctx: FlowContext, table: KeyTable) -> DecodeResult:
    """An RTCP datagram: SRTCP decrypted when a key applies, else what is clear."""
    if isinstance(state, SrtpState) and len(data) >= 8 and data[0] >> 6 == 2:
        ssrc = int.from_bytes(data[4:8], "big")
        keys = candidate_keys(ctx, ssrc, state, table)
        if keys or ssrc in state.rtcp:
            got = unprotect_rtcp(data, ssrc, keys, state)
            if isinstance(got, UnprotectedRtcp):
                return _decrypted_rtcp(data, got)
            failed = Finding(
                "error",
                "srtcp.auth_failed",
                f"SRTCP of SSRC 0x{ssrc:08X} not authenticated ({got}): only its first 8 bytes are decoded",
                (8, len(data)),
            )
            return _rtcp_result(data, ctx, (failed,))
    return _rtcp_result(data, ctx, ())


def _rtcp_result(data: bytes, ctx: FlowContext, extra: tuple[Finding, ...]) -> DecodeResult:
    rec, fields, findings = parse_rtcp(data, signaled_trailers(ctx))
    summary = ", ".join(RTCP_INFO_NAMES.get(t, f"Unknown ({t})") for t in rec.types)
    if len(data) >= 8:  # the first packet's SSRC is in the clear, even in SRTCP
        summary += f", SSRC=0x{int.from_bytes(data[4:8], 'big'):08X}"
    if rec.srtcp:
        summary = f"SRTCP {summary}{' (encrypted)' if rec.encrypted else ''}, index {rec.srtcp_index}"
    elif rec.encrypted:
        summary += " (encrypted)"
    proto = "srtcp" if rec.srtcp or extra else "rtcp"
    return DecodeResult(
        (Pdu(proto, tuple(fields), (0, len(data)), summary, (*findings, *extra), record=rec),), len(data)
    )


def _decrypted_rtcp(data: bytes, got: UnprotectedRtcp) -> DecodeResult:
    """An authenticated SRTCP packet: its compound in the clear read as RTCP (spans map 1:1 onto
    the ciphertext), then the trailer."""
    srtcp, master = got.srtcp, got.crypto.master
    rec, fields, findings = parse_rtcp(srtcp.plaintext)
    rec = dataclasses.replace(rec, srtcp=True, encrypted=srtcp.encrypted, srtcp_index=srtcp.index)
    n, mki, tag = len(data), len(master.mki), srtcp.tag_len
    if master.profile.aead:
        at = n - mki - SRTCP_INDEX
        tag_at, mki_at = at - GCM_TAG, at + SRTCP_INDEX
    else:
        at = n - tag - mki - SRTCP_INDEX
        tag_at, mki_at = n - tag, at + SRTCP_INDEX
    fields += [
        Field("srtcp.e", srtcp.encrypted, (at, at + 1)),
        Field("srtcp.index", srtcp.index, (at, at + 4)),
    ]
    if mki:
        fields.append(Field("srtcp.mki", data[mki_at : mki_at + mki].hex(), (mki_at, mki_at + mki)))
    fields.append(Field("srtcp.auth_tag", data[tag_at : tag_at + tag].hex(), (tag_at, tag_at + tag)))
    found = list(findings)
    if got.replay:
        found.append(
            Finding(
                "warn",
                "srtcp.replay",
                f"SRTCP index {srtcp.index} of SSRC 0x{int.from_bytes(data[4:8], 'big'):08X} "
                "was authenticated before: a replay",
            )
        )
    names = ", ".join(RTCP_INFO_NAMES.get(t, f"Unknown ({t})") for t in rec.types)
    summary = f"SRTCP {names}, SSRC=0x{int.from_bytes(data[4:8], 'big'):08X}, index {srtcp.index}, decrypted"
    return DecodeResult((Pdu("srtcp", tuple(fields), (0, n), summary, tuple(found), record=rec),), n)


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
