"""RTP (RFC 3550) with RFC 8285 header extensions, and RTCP compound packets (report blocks
included) or SRTCP ones (only what is clear: see srtcp.py), with byte spans.

By hand: scapy (not allowed in decoders) and aiortc's parsers are endpoint parsers that raise on
what captures hold (padding errors, unknown RTCP types, SRTCP trailers).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from protoscope.decoders.api import Field, Finding, LazyFields

from .codecs import codec_fields
from .rtcp import (
    BODIES,
    App,
    Bye,
    Fir,
    Nack,
    Pli,
    Remb,
    ReportBlock,
    RtcpFacts,
    Sdes,
    SenderInfo,
    TwccFeedback,
    XrBlock,
)
from .srtcp import SRTCP_CLEAR, SrtcpTrailer, Trailer, find_trailer

RTP_HEADER = 12
STATIC_CLOCK = {
    0: 8000,
    3: 8000,
    4: 8000,
    5: 8000,
    6: 16000,
    7: 8000,
    8: 8000,
    9: 8000,
    10: 44100,
    11: 44100,
    12: 8000,
    13: 8000,
    14: 90000,
    15: 8000,
    16: 11025,
    17: 22050,
    18: 8000,
    25: 90000,
    26: 90000,
    28: 90000,
    31: 90000,
    32: 90000,
    33: 90000,
    34: 90000,
}
"""RFC 3551's static payload types and their RTP clock rates."""
STATIC_NAMES = {
    0: "g711U",
    3: "GSM",
    4: "G723",
    8: "g711A",
    9: "g722",
    13: "CN",
    18: "g729",
    26: "JPEG",
    31: "H261",
    32: "MPV",
    33: "MP2T",
    34: "H263",
}
RTCP_TYPES = {
    192: "FIR",
    193: "NACK",
    195: "IJ",
    200: "SR",
    201: "RR",
    202: "SDES",
    203: "BYE",
    204: "APP",
    205: "RTPFB",
    206: "PSFB",
    207: "XR",
    208: "AVB",
    209: "RSI",
    210: "TOKEN",
}
RTPFB_FMT = {1: "Generic NACK", 3: "TMMBR", 4: "TMMBN", 15: "Transport-wide Congestion Control"}
PSFB_FMT = {1: "PLI", 2: "SLI", 3: "RPSI", 4: "FIR", 5: "TSTR", 6: "TSTN", 7: "VBCM", 15: "AFB (REMB)"}


@dataclass(frozen=True, slots=True)
class RtpRecord:
    ssrc: int
    seq: int
    timestamp: int
    payload_type: int
    marker: bool
    payload_len: int
    clock: int | None = None
    """RTP clock rate from signaling (SDP rtpmap) or the static payload type."""
    payload: bytes | None = None
    """The payload in the clear: plain RTP's, or SRTP's once decrypted and authenticated; None when
    it is ciphertext nobody could decrypt."""


@dataclass(frozen=True, slots=True)
class RtcpRecord:
    types: tuple[int, ...]
    """Packet types in the clear: of encrypted RTCP, only the first packet's."""
    srtcp: bool
    encrypted: bool = False
    """All but the first 8 bytes are ciphertext (SRTCP's E flag, or an encryption of another kind)."""
    srtcp_index: int | None = None
    senders: tuple[SenderInfo, ...] = ()
    """SR sender information, one per SR of the compound."""
    reports: tuple[ReportBlock, ...] = ()
    """Report blocks of its SRs and RRs: what receivers say of each source."""
    sdes: tuple[Sdes, ...] = ()
    byes: tuple[Bye, ...] = ()
    apps: tuple[App, ...] = ()
    nacks: tuple[Nack, ...] = ()
    plis: tuple[Pli, ...] = ()
    firs: tuple[Fir, ...] = ()
    rembs: tuple[Remb, ...] = ()
    twcc: tuple[TwccFeedback, ...] = ()
    xr: tuple[XrBlock, ...] = ()


def looks_like_rtp(data: bytes) -> bool:
    """Strict, one datagram: version 2, no padding, a plausible payload type that is not RTCP's,
    and CSRCs (a mixer's, as Discord's media servers send) and a header extension that fit, with
    payload after them."""
    if len(data) < RTP_HEADER + 1 or data[0] & 0xE0 != 0x80:
        return False
    pt = data[1] & 0x7F
    if 72 <= pt <= 76 or not (pt in STATIC_CLOCK or 96 <= pt <= 127):
        return False
    pos = RTP_HEADER + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:
        if len(data) < pos + 4:
            return False
        pos += 4 + 4 * int.from_bytes(data[pos + 2 : pos + 4], "big")
    return pos < len(data)


def parse_rtp(
    data: bytes, clock: int | None = None, encoding: str = ""
) -> tuple[RtpRecord | None, Sequence[Field], list[Finding]]:
    """The record and findings of one RTP packet, and its detail tree built when first read: RTP
    is most packets of a media capture, and ten Field objects a packet were a fifth of a summary's
    time on one. `encoding` (signaling's name for the payload type, see codecs.encoding_name)
    adds the codec's fields (codecs.py) after the payload's, for a payload in the clear."""
    findings: list[Finding] = []
    rec = _walk_rtp(data, clock, findings, None)
    return rec, LazyFields(lambda: _rtp_fields(data, encoding)), findings


def rtp_payload(data: bytes) -> bytes | None:
    """The payload of an RTP packet: after the header, CSRCs and header extension, before the
    padding; None when the packet is cut short."""
    fields: list[Field] = []
    if _walk_rtp(data, None, [], fields) is None:
        return None
    start, end = fields[-1].span
    return data[start:end]


def _rtp_fields(data: bytes, encoding: str = "") -> list[Field]:
    fields: list[Field] = []
    _walk_rtp(data, None, [], fields)
    if encoding and fields and fields[-1].name == "rtp.payload":
        start, end = fields[-1].span
        fields += codec_fields(encoding, data[start:end], start)[0]
    return fields


def _walk_rtp(
    data: bytes, clock: int | None, findings: list[Finding], fields: list[Field] | None
) -> RtpRecord | None:
    """The header, CSRCs, extension and padding of an RTP packet: the record (None when cut short),
    the findings, and the fields when a list for them is given."""
    if len(data) < RTP_HEADER:
        findings.append(Finding("warn", "rtp.truncated", f"RTP header cut short: {len(data)} of 12 bytes"))
        return None
    b0, b1, seq, ts, ssrc = struct.unpack_from(">BBHII", data)
    version, padding, ext, cc = b0 >> 6, bool(b0 & 0x20), bool(b0 & 0x10), b0 & 0x0F
    marker, pt = bool(b1 & 0x80), b1 & 0x7F
    if fields is not None:
        fields += [
            Field("rtp.version", version, (0, 1)),
            Field("rtp.padding", padding, (0, 1)),
            Field("rtp.ext", ext, (0, 1)),
            Field("rtp.cc", cc, (0, 1)),
            Field("rtp.marker", marker, (1, 2)),
            Field("rtp.p_type", pt, (1, 2)),
            Field("rtp.seq", seq, (2, 4)),
            Field("rtp.timestamp", ts, (4, 8)),
            Field("rtp.ssrc", ssrc, (8, 12)),
        ]
    if version != 2:
        findings.append(Finding("warn", "rtp.version", f"RTP version {version}"))
    pos = RTP_HEADER
    if pos + 4 * cc > len(data):
        if fields is not None:
            fields += [
                Field("rtp.csrc.item", int.from_bytes(data[at : at + 4], "big"), (at, at + 4))
                for at in range(pos, len(data) - 3, 4)
            ]
        findings.append(Finding("error", "rtp.truncated", "CSRC list cut short"))
        return None
    if fields is not None:
        fields += [
            Field("rtp.csrc.item", int.from_bytes(data[at : at + 4], "big"), (at, at + 4))
            for at in range(pos, pos + 4 * cc, 4)
        ]
    pos += 4 * cc
    if ext:
        if pos + 4 > len(data):
            findings.append(Finding("error", "rtp.truncated", "header extension cut short"))
            return None
        profile, words = struct.unpack_from(">HH", data, pos)
        end = pos + 4 + 4 * words
        if end > len(data):
            findings.append(
                Finding(
                    "error", "rtp.ext_too_long", f"header extension of {words} words runs past the packet"
                )
            )
            return None
        if fields is not None:
            fields.append(
                Field(
                    "rtp.ext.profile",
                    profile,
                    (pos, pos + 2),
                    tuple(_extensions(data, pos + 4, end, profile)),
                )
            )
            fields.append(Field("rtp.ext.len", words, (pos + 2, pos + 4)))
        pos = end
    end = len(data)
    if padding:
        count = data[-1]
        if count == 0 or pos + count > len(data):
            findings.append(Finding("warn", "rtp.padding_bad", f"padding count {count} does not fit"))
        else:
            end -= count
            if fields is not None:
                fields.append(Field("rtp.padding.count", count, (end, len(data))))
    if fields is not None:
        fields.append(Field("rtp.payload", f"{end - pos} bytes", (pos, end)))
    return RtpRecord(ssrc, seq, ts, pt, marker, end - pos, clock)


def _extensions(data: bytes, pos: int, end: int, profile: int) -> list[Field]:
    """RFC 8285 one-byte (0xBEDE) and two-byte (0x100X) header extension elements."""
    out: list[Field] = []
    if profile == 0xBEDE:
        while pos < end:
            if data[pos] == 0:
                pos += 1
                continue
            ident, length = data[pos] >> 4, (data[pos] & 0x0F) + 1
            if ident == 15:
                break
            value = data[pos + 1 : pos + 1 + length]
            out.append(
                Field(
                    "rtp.ext.rfc5285.id",
                    ident,
                    (pos, pos + 1 + length),
                    (
                        Field("rtp.ext.rfc5285.len", length, (pos, pos + 1)),
                        Field("rtp.ext.rfc5285.data", value.hex(), (pos + 1, pos + 1 + length)),
                    ),
                )
            )
            pos += 1 + length
    elif profile & 0xFFF0 == 0x1000:
        while pos + 1 < end:
            if data[pos] == 0:
                pos += 1
                continue
            ident, length = data[pos], data[pos + 1]
            value = data[pos + 2 : pos + 2 + length]
            out.append(
                Field(
                    "rtp.ext.rfc5285.id",
                    ident,
                    (pos, pos + 2 + length),
                    (
                        Field("rtp.ext.rfc5285.len", length, (pos + 1, pos + 2)),
                        Field("rtp.ext.rfc5285.data", value.hex(), (pos + 2, pos + 2 + length)),
                    ),
                )
            )
            pos += 2 + length
    return out


def looks_like_rtcp(data: bytes) -> bool:
    """Strict: a compound of RTCP packets whose lengths add up to the datagram (an SRTCP trailer
    of 4 + 10 bytes may follow), starting with SR, RR or a feedback packet; or an SR or RR whose
    length is exactly what its report count makes it, followed by anything (encrypted RTCP with a
    trailer of its own, as Discord sends)."""
    if len(data) < 8 or data[0] >> 6 != 2 or data[1] not in (200, 201, 205, 206, 207):
        return False
    words, count = int.from_bytes(data[2:4], "big"), data[0] & 0x1F
    if (
        data[1] in (200, 201)
        and words == (6 if data[1] == 200 else 1) + 6 * count
        and 4 + 4 * words <= len(data)
    ):
        return True
    pos = 0
    while pos + 4 <= len(data):
        if data[pos] >> 6 != 2 or not 192 <= data[pos + 1] <= 210:
            break
        pos += 4 + 4 * int.from_bytes(data[pos + 2 : pos + 4], "big")
    return pos == len(data) or 0 < len(data) - pos <= 4 + 16


def _is_header(data: bytes, pos: int) -> bool:
    """An RTCP packet header at `pos`: version 2 and a packet type of RTCP's (RFC 3550, 4585, 3611)."""
    return data[pos] >> 6 == 2 and 192 <= data[pos + 1] <= 210


def _packet_len(data: bytes, pos: int) -> int:
    return 4 + 4 * int.from_bytes(data[pos + 2 : pos + 4], "big")


def walks_to(data: bytes, end: int) -> bool:
    """The compound's packet lengths add up to exactly `end` bytes."""
    pos = 0
    while pos + 4 <= end:
        if not _is_header(data, pos):
            return False
        pos += _packet_len(data, pos)
    return pos == end


def parse_rtcp(
    data: bytes, signaled: Sequence[Trailer] = ()
) -> tuple[RtcpRecord, list[Field], list[Finding]]:
    """An RTCP compound, or an SRTCP one (see srtcp.py; `signaled`: the trailers of the profile
    signaling named for the flow). Of encrypted SRTCP only the clear first 8 bytes are decoded."""
    if len(data) < 4 or not _is_header(data, 0):
        return RtcpRecord((), False), [], []
    first_len = _packet_len(data, 0)
    found = None
    if first_len <= len(data):
        found = find_trailer(data, first_len, lambda end: walks_to(data, end), signaled)
    if found is not None and found.encrypted:
        fields = [*_encrypted(data, found.end), *_trailer_fields(data, found)]
        return RtcpRecord((data[1],), True, True, found.index), fields, []
    end = found.end if found is not None else len(data)
    facts = RtcpFacts()
    types, fields, findings, stop = _compound(data, end, facts)
    if found is not None:
        fields += _trailer_fields(data, found)
        return _record(tuple(types), True, found.index, facts), fields, findings + facts.findings
    rest = len(data) - stop
    if rest >= 4 and len(types) == 1 and not findings:
        # One packet, then bytes that are no RTCP header and no SRTCP trailer: encrypted RTCP of
        # some other kind (Discord's keeps the first 8 bytes clear too). Nothing after the first
        # 8 bytes is shown, since sender info read from ciphertext would be made up.
        shown = f"{len(data) - SRTCP_CLEAR} bytes after the first header do not parse as RTCP: encrypted"
        note = Finding("note", "rtcp.encrypted", shown, (SRTCP_CLEAR, len(data)))
        return RtcpRecord((data[1],), False, True), _encrypted(data, len(data)), [note]
    if rest and not findings:
        findings.append(
            Finding("warn", "rtcp.trailing", f"{rest} bytes after the RTCP packets", (stop, len(data)))
        )
    return _record(tuple(types), False, None, facts), fields, findings + facts.findings


def _record(types: tuple[int, ...], srtcp: bool, index: int | None, facts: RtcpFacts) -> RtcpRecord:
    return RtcpRecord(
        types,
        srtcp,
        False,
        index,
        tuple(facts.senders),
        tuple(facts.reports),
        tuple(facts.sdes),
        tuple(facts.byes),
        tuple(facts.apps),
        tuple(facts.nacks),
        tuple(facts.plis),
        tuple(facts.firs),
        tuple(facts.rembs),
        tuple(facts.twcc),
        tuple(facts.xr),
    )


def _compound(data: bytes, end: int, facts: RtcpFacts) -> tuple[list[int], list[Field], list[Finding], int]:
    """The clear RTCP packets of data[:end]: types, fields, findings and where they stop; what
    their bodies say is gathered in `facts`."""
    fields: list[Field] = []
    findings: list[Finding] = []
    types: list[int] = []
    pos = 0
    while pos + 4 <= end and _is_header(data, pos):
        b0, pt = data[pos], data[pos + 1]
        stop = pos + _packet_len(data, pos)
        if stop > end:
            findings.append(
                Finding("error", "rtcp.length_bad", f"RTCP {RTCP_TYPES.get(pt, pt)} runs past the datagram")
            )
            break
        children = _header(data, pos, stop)
        body_end = stop
        if b0 & 0x20:  # padding: its last octet counts the octets to ignore (RFC 3550 6.4.1)
            pad = data[stop - 1]
            if pad == 0 or stop - pad < pos + 4:
                findings.append(
                    Finding("warn", "rtcp.padding_bad", f"padding count {pad} does not fit", (pos, stop))
                )
            else:
                body_end = stop - pad
        body = BODIES.get(pt)
        if body is not None:
            children += body(data, pos, body_end, b0 & 0x1F, facts)
        if pt in (205, 206):
            names = RTPFB_FMT if pt == 205 else PSFB_FMT
            children.append(Field("rtcp.fb", names.get(b0 & 0x1F, f"FMT {b0 & 0x1F}"), (pos, pos + 1)))
        fields.append(Field("rtcp", RTCP_TYPES.get(pt, str(pt)), (pos, stop), tuple(children)))
        types.append(pt)
        pos = stop
    return types, fields, findings, pos


def _header(data: bytes, pos: int, stop: int) -> list[Field]:
    """The fields of an RTCP packet's first 8 bytes (the clear part of SRTCP)."""
    b0, pt = data[pos], data[pos + 1]
    out = [
        Field("rtcp.version", 2, (pos, pos + 1)),
        Field("rtcp.padding", bool(b0 & 0x20), (pos, pos + 1)),
        Field("rtcp.rc" if pt in (200, 201, 202, 203) else "rtcp.fmt", b0 & 0x1F, (pos, pos + 1)),
        Field("rtcp.pt", pt, (pos + 1, pos + 2)),
        Field("rtcp.length", int.from_bytes(data[pos + 2 : pos + 4], "big"), (pos + 2, pos + 4)),
    ]
    if stop >= pos + 8 and len(data) >= pos + 8 and pt not in (202, 203, 204):
        # SDES, BYE and APP begin with the SSRC of a chunk, a leaving source or the sender: their
        # bodies show it as Wireshark does (rtcp.ssrc.identifier)
        out.append(
            Field("rtcp.senderssrc", int.from_bytes(data[pos + 4 : pos + 8], "big"), (pos + 4, pos + 8))
        )
    return out


def _encrypted(data: bytes, end: int) -> list[Field]:
    """The first packet with only its clear header decoded, and the ciphertext up to `end`."""
    first, first_len = data[1], _packet_len(data, 0)
    header = tuple(_header(data, 0, first_len))
    return [
        Field("rtcp", RTCP_TYPES.get(first, str(first)), (0, min(len(data), first_len)), header),
        Field("rtcp.encrypted", f"{max(0, end - SRTCP_CLEAR)} bytes", (SRTCP_CLEAR, end)),
    ]


def _trailer_fields(data: bytes, found: SrtcpTrailer) -> list[Field]:
    n, t = len(data), found.trailer
    at = t.index_at(n)
    out = [
        Field("srtcp.e", found.encrypted, (at, at + 1)),
        Field("srtcp.index", found.index, (at, at + 4)),
    ]
    if t.mki:
        a, b = t.mki_span(n)
        out.append(Field("srtcp.mki", data[a:b].hex(), (a, b)))
    a, b = t.tag_span(n)
    out.append(Field("srtcp.auth_tag", data[a:b].hex(), (a, b)))
    return out
