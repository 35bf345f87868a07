"""The bodies of RTCP packets, decoded whole: typed facts for analyses and fields for the tree.

RFC 3550 (SR, RR, SDES, BYE, APP), RFC 4585 (generic NACK, PLI), RFC 5104 (FIR),
draft-alvestrand-rmcat-remb (REMB), draft-holmer-rmcat-transport-wide-cc-extensions (TWCC) and the
RFC 3611 XR block headers (with receiver reference time and DLRR read, as round trips need them).
Each parser reads data[pos:stop], one packet whose length already fits the datagram; what does not
fit inside it is a finding, never an exception. Field names are Wireshark's (packet-rtcp.c).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from protoscope.decoders.api import Field, Finding

REPORT_BLOCK = 24
SENDER_INFO = 20
MAX_NACK_LOST = 4096
"""Lost sequence numbers expanded from one packet's NACK entries (17 a 4-byte entry)."""
MAX_TWCC_DELTA_FIELDS = 2048
"""Receive deltas shown as fields per TWCC packet (all are counted in the summary)."""
SDES_ITEMS = {
    0: "END",
    1: "CNAME",
    2: "NAME",
    3: "EMAIL",
    4: "PHONE",
    5: "LOC",
    6: "TOOL",
    7: "NOTE",
    8: "PRIV",
    9: "H323-CADDR",
    10: "APSI",
    11: "RGRP",
    12: "RtpStreamId",
    13: "RepairedRtpStreamId",
    14: "CCID",
    15: "MID",
}
"""RFC 3550 section 6.5 SDES item types, and the later ones IANA lists (RFC 8852 stream ids, MID)."""
XR_BLOCKS = {
    1: "Loss RLE",
    2: "Duplicate RLE",
    3: "Packet Receipt Times",
    4: "Receiver Reference Time",
    5: "DLRR",
    6: "Statistics Summary",
    7: "VoIP Metrics",
    8: "BT-XNQ",
    11: "Post-repair Loss RLE",
}
"""RFC 3611 section 4 report block types (and later IANA ones), as `rtcp.xr.bt` names them."""
TWCC_SYMBOLS = ("not received", "small delta", "large or negative delta", "reserved")
TWCC_DELTA_US = 250
"""Receive deltas count 250 microseconds; the reference time counts 64 milliseconds."""


@dataclass(frozen=True, slots=True)
class SenderInfo:
    """An SR's sender information (RFC 3550 section 6.4.1)."""

    ssrc: int
    ntp: int
    """64-bit NTP timestamp: seconds since 1900 in the high 32 bits, the fraction in the low."""
    rtp_timestamp: int
    packets: int
    octets: int

    @property
    def ntp_middle(self) -> int:
        """The middle 32 bits of the NTP timestamp: what a report block echoes as LSR."""
        return (self.ntp >> 16) & 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """What `reporter` says it received of source `ssrc` (RFC 3550 section 6.4.1)."""

    reporter: int
    ssrc: int
    fraction_lost: int
    """Of 256, since the previous report."""
    cumulative_lost: int
    """Signed: duplicates may make it negative."""
    highest_seq: int
    """Extended highest sequence number received."""
    jitter: int
    """Interarrival jitter in RTP timestamp units."""
    lsr: int
    """Middle 32 bits of the NTP timestamp of the last SR received from `ssrc` (0: none yet)."""
    dlsr: int
    """Delay since that SR, in 1/65536 seconds."""


@dataclass(frozen=True, slots=True)
class Nack:
    """Generic NACK (RFC 4585 section 6.2.1): the sequence numbers `sender` asks `media` to resend."""

    sender: int
    media: int
    lost: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Pli:
    """Picture Loss Indication (RFC 4585 section 6.3.1): `sender` asks `media` for a keyframe."""

    sender: int
    media: int


@dataclass(frozen=True, slots=True)
class Fir:
    """Full Intra Request (RFC 5104 section 4.3.1): (SSRC, command sequence number) entries."""

    sender: int
    entries: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class Remb:
    """Receiver Estimated Maximum Bitrate (draft-alvestrand-rmcat-remb): bits per second for the
    sum of the streams `ssrcs`."""

    sender: int
    bitrate: int
    ssrcs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TwccFeedback:
    """A transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-
    extensions-01 section 3.1), summed up: which transport sequence numbers arrived."""

    sender: int
    media: int
    base_seq: int
    status_count: int
    reference_time: int
    """Signed, in multiples of 64 ms."""
    feedback_count: int
    received: int
    not_received: int
    deltas_us: int
    """Sum of the receive deltas, microseconds: the span of arrival times this feedback covers."""


@dataclass(frozen=True, slots=True)
class Sdes:
    """One SDES chunk (RFC 3550 section 6.5): its SSRC and (item type, text) pairs."""

    ssrc: int
    items: tuple[tuple[int, str], ...]

    @property
    def cname(self) -> str | None:
        return next((text for kind, text in self.items if kind == 1), None)


@dataclass(frozen=True, slots=True)
class Bye:
    ssrcs: tuple[int, ...]
    reason: str | None


@dataclass(frozen=True, slots=True)
class App:
    ssrc: int
    subtype: int
    name: str
    data: bytes


@dataclass(frozen=True, slots=True)
class XrBlock:
    """An RFC 3611 report block: its type and, for the types round trips use, what it says."""

    sender: int
    block_type: int
    ntp: int | None = None
    """Receiver Reference Time (type 4): the receiver's 64-bit NTP timestamp."""
    dlrr: tuple[tuple[int, int, int], ...] = ()
    """DLRR (type 5): (SSRC, LRR, DLRR) sub-blocks."""


@dataclass(slots=True)
class RtcpFacts:
    """What the packets of one compound said, gathered while they are parsed."""

    senders: list[SenderInfo] = field(default_factory=list)
    reports: list[ReportBlock] = field(default_factory=list)
    sdes: list[Sdes] = field(default_factory=list)
    byes: list[Bye] = field(default_factory=list)
    apps: list[App] = field(default_factory=list)
    nacks: list[Nack] = field(default_factory=list)
    plis: list[Pli] = field(default_factory=list)
    firs: list[Fir] = field(default_factory=list)
    rembs: list[Remb] = field(default_factory=list)
    twcc: list[TwccFeedback] = field(default_factory=list)
    xr: list[XrBlock] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


Body = Callable[[bytes, int, int, int, RtcpFacts], list[Field]]
"""A packet body parser: (data, packet start, packet end, RC/SC/FMT, facts) -> fields."""


def _u32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 4], "big")


def _short(facts: RtcpFacts, what: str, pos: int, stop: int) -> None:
    facts.findings.append(Finding("warn", "rtcp.truncated", f"{what} cut short", (pos, stop)))


def sender_report(data: bytes, pos: int, stop: int, count: int, facts: RtcpFacts) -> list[Field]:
    if stop < pos + 8 + SENDER_INFO:
        _short(facts, "SR sender info", pos, stop)
        return []
    ssrc = _u32(data, pos + 4)
    ntp_hi, ntp_lo, rtp_ts, pkts, octets = struct.unpack_from(">IIIII", data, pos + 8)
    facts.senders.append(SenderInfo(ssrc, ntp_hi << 32 | ntp_lo, rtp_ts, pkts, octets))
    fields = [
        Field("rtcp.timestamp.ntp.msw", ntp_hi, (pos + 8, pos + 12)),
        Field("rtcp.timestamp.ntp.lsw", ntp_lo, (pos + 12, pos + 16)),
        Field("rtcp.timestamp.rtp", rtp_ts, (pos + 16, pos + 20)),
        Field("rtcp.sender.packetcount", pkts, (pos + 20, pos + 24)),
        Field("rtcp.sender.octetcount", octets, (pos + 24, pos + 28)),
    ]
    return fields + report_blocks(data, ssrc, pos + 28, count, stop, facts)


def receiver_report(data: bytes, pos: int, stop: int, count: int, facts: RtcpFacts) -> list[Field]:
    if stop < pos + 8:
        return []
    return report_blocks(data, _u32(data, pos + 4), pos + 8, count, stop, facts)


def report_blocks(
    data: bytes, reporter: int, at: int, count: int, stop: int, facts: RtcpFacts
) -> list[Field]:
    """RFC 3550 section 6.4.1 report blocks of an SR or RR, as many as fit in the packet."""
    out: list[Field] = []
    for k in range(count):
        pos = at + k * REPORT_BLOCK
        if pos + REPORT_BLOCK > stop:
            _short(facts, f"report block {k + 1} of {count}", pos, stop)
            break
        ssrc, lost_word, ext_high, jitter, lsr, dlsr = struct.unpack_from(">IIIIII", data, pos)
        cum = lost_word & 0xFFFFFF
        cum = cum - (1 << 24) if cum >> 23 else cum
        facts.reports.append(ReportBlock(reporter, ssrc, lost_word >> 24, cum, ext_high, jitter, lsr, dlsr))
        children = (
            Field("rtcp.ssrc.fraction", lost_word >> 24, (pos + 4, pos + 5)),
            Field("rtcp.ssrc.cum_nr", cum, (pos + 5, pos + 8)),
            Field("rtcp.ssrc.ext_high", ext_high, (pos + 8, pos + 12)),
            Field("rtcp.ssrc.jitter", jitter, (pos + 12, pos + 16)),
            Field("rtcp.ssrc.lsr", lsr, (pos + 16, pos + 20)),
            Field("rtcp.ssrc.dlsr", dlsr, (pos + 20, pos + 24)),
        )
        out.append(Field("rtcp.ssrc.identifier", ssrc, (pos, pos + REPORT_BLOCK), children))
    return out


def source_description(data: bytes, pos: int, stop: int, count: int, facts: RtcpFacts) -> list[Field]:
    """SDES chunks: an SSRC, items (type, length, text) up to an END item, padding to a word."""
    out: list[Field] = []
    at = pos + 4
    for k in range(count):
        if at + 4 > stop:
            _short(facts, f"SDES chunk {k + 1} of {count}", at, stop)
            break
        start, ssrc = at, _u32(data, at)
        at += 4
        items: list[Field] = []
        pairs: list[tuple[int, str]] = []
        ended = False
        while at < stop:
            kind = data[at]
            if kind == 0:
                items.append(Field("rtcp.sdes.type", 0, (at, at + 1)))
                at = (at + 4) & ~3  # END, then null octets up to the next 32-bit boundary
                ended = True
                break
            if at + 2 > stop or at + 2 + data[at + 1] > stop:
                _short(facts, f"SDES item of chunk {k + 1}", at, stop)
                at = stop
                break
            length = data[at + 1]
            value = data[at + 2 : at + 2 + length]
            children = [
                Field("rtcp.sdes.type", kind, (at, at + 1)),
                Field("rtcp.sdes.length", length, (at + 1, at + 2)),
            ]
            if kind == 8 and length:  # PRIV: a length-prefixed prefix, then the value string
                plen = min(value[0], length - 1)
                children += [
                    Field("rtcp.sdes.prefix.length", value[0], (at + 2, at + 3)),
                    Field("rtcp.sdes.prefix.string", _text(value[1 : 1 + plen]), (at + 3, at + 3 + plen)),
                ]
                text = _text(value[1 + plen :])
            else:
                text = _text(value)
            children.append(Field("rtcp.sdes.text", text, (at + 2, at + 2 + length)))
            items.append(
                Field(
                    "rtcp.sdes.item", SDES_ITEMS.get(kind, str(kind)), (at, at + 2 + length), tuple(children)
                )
            )
            pairs.append((kind, text))
            at += 2 + length
        facts.sdes.append(Sdes(ssrc, tuple(pairs)))
        out.append(Field("rtcp.ssrc.identifier", ssrc, (start, min(at, stop)), tuple(items)))
        if not ended:
            if k + 1 < count or at < stop:
                _short(facts, f"SDES chunk {k + 1} (no END item)", start, stop)
            break
    return out


def goodbye(data: bytes, pos: int, stop: int, count: int, facts: RtcpFacts) -> list[Field]:
    out: list[Field] = []
    ssrcs: list[int] = []
    at = pos + 4
    for _ in range(count):
        if at + 4 > stop:
            _short(facts, "BYE SSRC list", at, stop)
            break
        ssrcs.append(_u32(data, at))
        out.append(Field("rtcp.ssrc.identifier", ssrcs[-1], (at, at + 4)))
        at += 4
    reason = None
    if at < stop and data[at]:
        length = data[at]
        if at + 1 + length > stop:
            _short(facts, "BYE reason", at, stop)
            length = stop - at - 1
        reason = _text(data[at + 1 : at + 1 + length])
        out += [
            Field("rtcp.sdes.length", length, (at, at + 1)),
            Field("rtcp.sdes.text", reason, (at + 1, at + 1 + length)),
        ]
    facts.byes.append(Bye(tuple(ssrcs), reason))
    return out


def application(data: bytes, pos: int, stop: int, count: int, facts: RtcpFacts) -> list[Field]:
    if stop < pos + 12:
        _short(facts, "APP name", pos, stop)
        return []
    name = _text(data[pos + 8 : pos + 12])
    body = data[pos + 12 : stop]
    facts.apps.append(App(_u32(data, pos + 4), count, name, bytes(body)))
    return [
        Field("rtcp.app.subtype", count, (pos, pos + 1)),
        Field("rtcp.ssrc.identifier", _u32(data, pos + 4), (pos + 4, pos + 8)),
        Field("rtcp.app.name", name, (pos + 8, pos + 12)),
        Field("rtcp.app.data", body.hex(), (pos + 12, stop)),
    ]


def _media(data: bytes, pos: int, stop: int, facts: RtcpFacts, what: str) -> tuple[int, int] | None:
    """The sender and media source SSRCs of a feedback message (RFC 4585 section 6.1)."""
    if stop < pos + 12:
        _short(facts, what, pos, stop)
        return None
    return _u32(data, pos + 4), _u32(data, pos + 8)


def generic_nack(data: bytes, pos: int, stop: int, count: int, facts: RtcpFacts) -> list[Field]:
    ssrcs = _media(data, pos, stop, facts, "NACK")
    if ssrcs is None:
        return []
    out: list[Field] = []
    lost: list[int] = []
    for at in range(pos + 12, stop - 3, 4):
        pid, blp = struct.unpack_from(">HH", data, at)
        seqs = [pid] + [(pid + bit + 1) & 0xFFFF for bit in range(16) if blp >> bit & 1]
        if len(lost) < MAX_NACK_LOST:
            lost += seqs
        # As Wireshark does, every lost sequence number the BLP names is an rtcp.rtpfb.nack_pid
        # too (spanning the BLP), so `rtcp.rtpfb.nack_pid == 105` finds the packet asking for 105.
        out += [
            Field("rtcp.rtpfb.nack_pid", pid, (at, at + 2)),
            Field("rtcp.rtpfb.nack_blp", blp, (at + 2, at + 4)),
            *(Field("rtcp.rtpfb.nack_pid", seq, (at + 2, at + 4)) for seq in seqs[1:]),
        ]
    facts.nacks.append(Nack(*ssrcs, tuple(lost[:MAX_NACK_LOST])))
    return out


def transport_cc(data: bytes, pos: int, stop: int, count: int, facts: RtcpFacts) -> list[Field]:
    """TWCC feedback: base sequence, status count, reference time, feedback count, then packet
    chunks until `status count` statuses are read, then one receive delta per received packet
    (1 byte for a small delta, 2 signed bytes for a large or negative one)."""
    ssrcs = _media(data, pos, stop, facts, "transport-cc feedback")
    if ssrcs is None:
        return []
    at = pos + 12
    if at + 8 > stop:
        _short(facts, "transport-cc header", at, stop)
        return []
    base, status_count = struct.unpack_from(">HH", data, at)
    ref = int.from_bytes(data[at + 4 : at + 7], "big", signed=True)
    fb_count = data[at + 7]
    out = [
        Field("rtcp.rtpfb.transportcc.baseseq", base, (at, at + 2)),
        Field("rtcp.rtpfb.transportcc.statuscount", status_count, (at + 2, at + 4)),
        Field("rtcp.rtpfb.transportcc.reftime", ref, (at + 4, at + 7)),
        Field("rtcp.rtpfb.transportcc.pktcount", fb_count, (at + 7, at + 8)),
    ]
    at += 8
    # Statuses as runs (symbol, count): a run length chunk is one run however long, so a packet
    # of a few chunks declaring 65,535 statuses costs a few runs, not 65,535 symbols.
    runs: list[tuple[int, int]] = []
    statuses = 0
    while statuses < status_count:
        if at + 2 > stop:
            _short(facts, "transport-cc packet chunks", at, stop)
            break
        chunk = int.from_bytes(data[at : at + 2], "big")
        if chunk >> 15 == 0:  # run length chunk: a symbol and how many times it repeats
            chunk_runs = [(chunk >> 13 & 3, chunk & 0x1FFF)]
        elif chunk >> 14 & 1 == 0:  # status vector of 14 one-bit symbols
            chunk_runs = [(chunk >> (13 - i) & 1, 1) for i in range(14)]
        else:  # status vector of 7 two-bit symbols
            chunk_runs = [(chunk >> (12 - 2 * i) & 3, 1) for i in range(7)]
        for symbol, n in chunk_runs:
            n = min(n, status_count - statuses)
            if n:
                runs.append((symbol, n))
                statuses += n
        out.append(Field("rtcp.rtpfb.transportcc.pktchunk", chunk, (at, at + 2)))
        at += 2
    # One receive delta per received status (1 byte small, 2 signed bytes large or negative):
    # no more are read than the bytes left hold.
    received = deltas = 0
    for symbol, n in runs:
        if symbol not in (1, 2):
            continue
        size = symbol
        fit = min(n, (stop - at) // size)
        for _ in range(fit):
            delta = int.from_bytes(data[at : at + size], "big", signed=size == 2)
            if received < MAX_TWCC_DELTA_FIELDS:
                out.append(Field("rtcp.rtpfb.transportcc.recv_delta", delta, (at, at + size)))
            deltas += delta
            received += 1
            at += size
        if fit < n:
            _short(facts, "transport-cc receive deltas", at, stop)
            break
    not_received = sum(n for symbol, n in runs if symbol == 0)
    facts.twcc.append(
        TwccFeedback(
            *ssrcs, base, status_count, ref, fb_count, received, not_received, deltas * TWCC_DELTA_US
        )
    )
    return out


def picture_loss(data: bytes, pos: int, stop: int, count: int, facts: RtcpFacts) -> list[Field]:
    ssrcs = _media(data, pos, stop, facts, "PLI")
    if ssrcs is not None:
        facts.plis.append(Pli(*ssrcs))
    return []


def full_intra_request(data: bytes, pos: int, stop: int, count: int, facts: RtcpFacts) -> list[Field]:
    ssrcs = _media(data, pos, stop, facts, "FIR")
    if ssrcs is None:
        return []
    out: list[Field] = []
    entries: list[tuple[int, int]] = []
    for at in range(pos + 12, stop - 7, 8):
        ssrc, seq = _u32(data, at), data[at + 4]
        entries.append((ssrc, seq))
        out += [
            Field("rtcp.psfb.fir.fci.ssrc", ssrc, (at, at + 4)),
            Field("rtcp.psfb.fir.fci.csn", seq, (at + 4, at + 5)),
        ]
    facts.firs.append(Fir(ssrcs[0], tuple(entries)))
    return out


def application_feedback(data: bytes, pos: int, stop: int, count: int, facts: RtcpFacts) -> list[Field]:
    """PSFB FMT 15: REMB when its FCI starts with "REMB", else opaque application data."""
    ssrcs = _media(data, pos, stop, facts, "application layer feedback")
    if ssrcs is None:
        return []
    at = pos + 12
    if data[at : at + 4] != b"REMB" or at + 8 > stop:
        return [Field("rtcp.fci", data[at:stop].hex(), (at, stop))]
    n, exp = data[at + 4], data[at + 5] >> 2
    mantissa = int.from_bytes(data[at + 5 : at + 8], "big") & 0x3FFFF
    bitrate = mantissa << exp
    out = [
        Field("rtcp.psfb.remb.identifier", "REMB", (at, at + 4)),
        Field("rtcp.psfb.remb.fci.number_ssrcs", n, (at + 4, at + 5)),
        Field("rtcp.psfb.remb.fci.br_exp", exp, (at + 5, at + 6)),
        Field("rtcp.psfb.remb.fci.br_mantissa", mantissa, (at + 5, at + 8)),
        Field("rtcp.psfb.remb.fci.bitrate", bitrate, (at + 4, at + 8)),
    ]
    ssrc_list: list[int] = []
    for k in range(n):
        a = at + 8 + 4 * k
        if a + 4 > stop:
            _short(facts, f"REMB SSRC {k + 1} of {n}", a, stop)
            break
        ssrc_list.append(_u32(data, a))
        out.append(Field("rtcp.psfb.remb.fci.ssrc", ssrc_list[-1], (a, a + 4)))
    facts.rembs.append(Remb(ssrcs[0], bitrate, tuple(ssrc_list)))
    return out


RTPFB_BODIES: dict[int, Body] = {1: generic_nack, 15: transport_cc}
PSFB_BODIES: dict[int, Body] = {1: picture_loss, 4: full_intra_request, 15: application_feedback}


def rtp_feedback(data: bytes, pos: int, stop: int, count: int, facts: RtcpFacts) -> list[Field]:
    head = [Field("rtcp.rtpfb.fmt", count, (pos, pos + 1))]
    if stop >= pos + 12:
        head.append(Field("rtcp.mediassrc", _u32(data, pos + 8), (pos + 8, pos + 12)))
    body = RTPFB_BODIES.get(count)
    if body is None:
        return [*head, Field("rtcp.fci", data[pos + 12 : stop].hex(), (pos + 12, stop))]
    return head + body(data, pos, stop, count, facts)


def payload_feedback(data: bytes, pos: int, stop: int, count: int, facts: RtcpFacts) -> list[Field]:
    head = [Field("rtcp.psfb.fmt", count, (pos, pos + 1))]
    if stop >= pos + 12:
        head.append(Field("rtcp.mediassrc", _u32(data, pos + 8), (pos + 8, pos + 12)))
    body = PSFB_BODIES.get(count)
    if body is None:
        return [*head, Field("rtcp.fci", data[pos + 12 : stop].hex(), (pos + 12, stop))]
    return head + body(data, pos, stop, count, facts)


def extended_report(data: bytes, pos: int, stop: int, count: int, facts: RtcpFacts) -> list[Field]:
    """RFC 3611 report blocks: each block's type and length, and the contents of the receiver
    reference time (4) and DLRR (5) blocks, which RTT estimates for receivers rest on."""
    if stop < pos + 8:
        return []
    sender = _u32(data, pos + 4)
    out: list[Field] = []
    at = pos + 8
    while at + 4 <= stop:
        bt, words = data[at], int.from_bytes(data[at + 2 : at + 4], "big")
        end = at + 4 + 4 * words
        if end > stop:
            _short(facts, f"XR block of type {bt}", at, stop)
            break
        children = [
            Field("rtcp.xr.bt", bt, (at, at + 1)),
            Field("rtcp.xr.bs", data[at + 1], (at + 1, at + 2)),
            Field("rtcp.xr.bl", words, (at + 2, at + 4)),
        ]
        block = XrBlock(sender, bt)
        if bt == 4 and words == 2:
            ntp = int.from_bytes(data[at + 4 : at + 12], "big")
            children.append(Field("rtcp.xr.timestamp", ntp, (at + 4, at + 12)))
            block = XrBlock(sender, bt, ntp=ntp)
        elif bt == 5:
            subs: list[tuple[int, int, int]] = []
            for a in range(at + 4, end - 11, 12):
                ssrc, lrr, dlrr = struct.unpack_from(">III", data, a)
                subs.append((ssrc, lrr, dlrr))
                children += [
                    Field("rtcp.ssrc.identifier", ssrc, (a, a + 4)),
                    Field("rtcp.xr.lrr", lrr, (a + 4, a + 8)),
                    Field("rtcp.xr.dlrr", dlrr, (a + 8, a + 12)),
                ]
            block = XrBlock(sender, bt, dlrr=tuple(subs))
        facts.xr.append(block)
        out.append(Field("rtcp.xr.block", XR_BLOCKS.get(bt, f"type {bt}"), (at, end), tuple(children)))
        at = end
    return out


BODIES: dict[int, Body] = {
    200: sender_report,
    201: receiver_report,
    202: source_description,
    203: goodbye,
    204: application,
    205: rtp_feedback,
    206: payload_feedback,
    207: extended_report,
}
"""Packet type -> body parser; other types keep only their header."""


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")
