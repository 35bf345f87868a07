"""RTCP decoded whole (rtcp.py): SR/RR report blocks, SDES, BYE, APP, NACK, PLI, FIR, REMB, TWCC
and XR, from bytes aiortc packs and TWCC feedback pion's tests keep from Chrome, against tshark
field by field; the typed facts the record carries; truncation at every byte; random bytes."""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import pytest
from aiortc.rtp import (
    RtcpByePacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    pack_remb_fci,
)
from hypothesis import given
from hypothesis import strategies as st

from protoscope.decoders.registry import load_registry
from protoscope.decoders.rtp.fields import FIELDS
from protoscope.decoders.rtp.packets import RtcpRecord, parse_rtcp
from protoscope.decoders.rtp.rtcp import TWCC_DELTA_US
from protoscope.inspector.session import Session, flatten
from tests.conftest import public_capture, tshark
from tests.pcapgen import udp_packets, write

PORT = 40011
REPORT = RtcpReceiverInfo(
    ssrc=0x2222,
    fraction_lost=25,
    packets_lost=-3,
    highest_sequence=70000,
    jitter=120,
    lsr=0x12345678,
    dlsr=65536,
)
RR = bytes(RtcpRrPacket(ssrc=0x3333, reports=[REPORT]))
SR = bytes(
    RtcpSrPacket(
        ssrc=0x1111,
        sender_info=RtcpSenderInfo(
            ntp_timestamp=0xE123456789ABCDEF, rtp_timestamp=160000, packet_count=500, octet_count=80000
        ),
        reports=[REPORT],
    )
)
SDES = bytes(RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=0x1111, items=[(1, b"user@host1")])]))
BYE = bytes(RtcpByePacket(sources=[0x1111]))
REMB = bytes(
    RtcpPsfbPacket(fmt=15, ssrc=0x3333, media_ssrc=0, fci=pack_remb_fci(1_500_000, [0x1111, 0x4444]))
)
NACK = bytes(RtcpRtpfbPacket(fmt=1, ssrc=0x3333, media_ssrc=0x1111, lost=[100, 101, 105, 116, 140]))
PLI = bytes(RtcpPsfbPacket(fmt=1, ssrc=0x3333, media_ssrc=0x1111))
FIR = struct.pack(">BBHII", 0x84, 206, 4, 0x3333, 0) + struct.pack(">IB3x", 0x1111, 7)
"""RFC 5104 section 4.3.1: one FCI entry (SSRC, command sequence number, reserved)."""
# pion/rtcp transport_layer_cc_test.go, examples 3 and 4: TWCC feedback as Chrome sends it.
TWCC_RUNS = bytes.fromhex("afcd0007fa17fa17193dd8bb01740006 45b15a4040022004 1ffe1f9ad000d000")
TWCC_SMALL = bytes.fromhex("afcd0007fa17fa17193dd8bb00040007 10636e012007 4c242410 0c0c1000 0003")
TWCC_VECTOR = bytes.fromhex("afcd0006fa17fa17193dd8bb0001000e10636d00ba00100c0c100002")
"""Example 5, a one-bit status vector chunk (1 1 1 0 1 then nine 0), its padding count made 2:
pion's says 3 where 2 octets follow the last delta."""
XR = (
    struct.pack(">BBHI", 0x80, 207, 8, 0x3333)
    + struct.pack(">BBHQ", 4, 0, 2, 0xE123456789ABCDEF)
    + struct.pack(">BBHIII", 5, 0, 3, 0x1111, 0x456789AB, 1000)
)
APP = struct.pack(">BBHI4s", 0x83, 204, 3, 0x3333, b"TEST") + b"abcd"
BYE_REASON = struct.pack(">BBHI", 0x81, 203, 3, 0x1111) + b"\x07goodbye"
COMPOUNDS = [
    SR + SDES + BYE,
    RR + REMB,
    RR + NACK,
    RR + PLI,
    RR + FIR,
    RR + TWCC_RUNS,
    RR + TWCC_SMALL,
    RR + TWCC_VECTOR,
    RR + XR,
    RR + APP + BYE_REASON,
]
COMPARED = (
    "rtcp.pt", "rtcp.senderssrc", "rtcp.timestamp.ntp.msw", "rtcp.timestamp.ntp.lsw",
    "rtcp.sender.packetcount", "rtcp.ssrc.identifier", "rtcp.ssrc.fraction", "rtcp.ssrc.cum_nr",
    "rtcp.ssrc.jitter", "rtcp.ssrc.lsr", "rtcp.ssrc.dlsr", "rtcp.sdes.type", "rtcp.sdes.text",
    "rtcp.rtpfb.fmt", "rtcp.psfb.fmt", "rtcp.mediassrc", "rtcp.rtpfb.nack_pid", "rtcp.rtpfb.nack_blp",
    "rtcp.psfb.fir.fci.ssrc", "rtcp.psfb.fir.fci.csn", "rtcp.psfb.remb.fci.ssrc",
    "rtcp.psfb.remb.fci.br_exp", "rtcp.psfb.remb.fci.br_mantissa",
    "rtcp.rtpfb.transportcc.baseseq", "rtcp.rtpfb.transportcc.statuscount",
    "rtcp.rtpfb.transportcc.reftime", "rtcp.rtpfb.transportcc.pktcount",
    "rtcp.rtpfb.transportcc.pktchunk", "rtcp.rtpfb.transportcc.recv_delta", "rtcp.xr.bt",
    "rtcp.xr.lrr", "rtcp.xr.dlrr", "rtcp.app.name",
)  # fmt: skip


def _values(text: str) -> list[object]:
    out: list[object] = []
    for v in text.split(",") if text else []:
        if v.startswith("0x"):
            out.append(int(v, 16))
        else:
            try:
                out.append(int(v))
            except ValueError:
                out.append(v)
    return out


def _listed(value: object) -> list[object]:
    return [] if value is None else value if isinstance(value, list) else [value]


def tshark_fields(path: Path, names: tuple[str, ...], *args: str) -> dict[int, dict[str, list[object]]]:
    columns = [a for name in names for a in ("-e", name)]
    out = tshark("-r", str(path), *args, "-Y", "rtcp", "-T", "fields", "-E", "occurrence=a",
                 "-e", "frame.number", *columns)  # fmt: skip
    rows: dict[int, dict[str, list[object]]] = {}
    for line in out.splitlines():
        frame, *values = line.split("\t")
        rows[int(frame)] = {n: _values(v) for n, v in zip(names, values, strict=True)}
    return rows


def test_compounds_equal_tshark(tmp_path: Path) -> None:
    path = write(tmp_path / "rtcp.pcap", udp_packets(COMPOUNDS, 40010, PORT))
    theirs = tshark_fields(path, COMPARED, "-d", f"udp.port=={PORT},rtcp")
    assert len(theirs) == len(COMPOUNDS)
    for frame, raw in enumerate(COMPOUNDS, 1):
        rec, fields, _ = parse_rtcp(raw)
        ours = flatten(fields)
        assert not rec.srtcp and not rec.encrypted
        for name in COMPARED:
            assert _listed(ours.get(name)) == theirs[frame][name], (frame, name)


def test_every_emitted_field_is_declared() -> None:
    declared = {f.abbrev for f in FIELDS}
    for raw in COMPOUNDS:
        _, fields, _ = parse_rtcp(raw)
        assert set(flatten(fields)) <= declared


def test_typed_facts() -> None:
    rec, _, findings = parse_rtcp(SR + SDES + BYE)
    assert not findings
    (sender,) = rec.senders
    assert (sender.ssrc, sender.rtp_timestamp, sender.packets, sender.octets) == (0x1111, 160000, 500, 80000)
    assert sender.ntp_middle == 0x456789AB
    (block,) = rec.reports
    assert (block.reporter, block.ssrc, block.fraction_lost, block.cumulative_lost) == (
        0x1111,
        0x2222,
        25,
        -3,
    )
    assert (block.highest_seq, block.jitter, block.lsr, block.dlsr) == (70000, 120, 0x12345678, 65536)
    assert rec.sdes[0].cname == "user@host1" and rec.byes[0].ssrcs == (0x1111,)

    rec, _, _ = parse_rtcp(RR + NACK)
    assert rec.nacks[0].lost == (100, 101, 105, 116, 140) and rec.nacks[0].media == 0x1111
    rec, _, _ = parse_rtcp(RR + PLI)
    assert (rec.plis[0].sender, rec.plis[0].media) == (0x3333, 0x1111)
    rec, _, _ = parse_rtcp(RR + FIR)
    assert rec.firs[0].entries == ((0x1111, 7),)
    rec, _, _ = parse_rtcp(RR + REMB)
    assert rec.rembs[0].bitrate == 1_500_000 and rec.rembs[0].ssrcs == (0x1111, 0x4444)
    rec, _, _ = parse_rtcp(RR + XR)
    assert rec.xr[0].ntp == 0xE123456789ABCDEF and rec.xr[1].dlrr == ((0x1111, 0x456789AB, 1000),)
    rec, _, _ = parse_rtcp(RR + APP + BYE_REASON)
    assert (rec.apps[0].name, rec.apps[0].data, rec.byes[0].reason) == ("TEST", b"abcd", "goodbye")


def test_twcc_summaries_equal_pion() -> None:
    """pion's decoding of its examples: statuses, then receive deltas (250 us units)."""
    rec, _, findings = parse_rtcp(RR + TWCC_RUNS)
    (fb,) = rec.twcc
    assert (fb.base_seq, fb.status_count, fb.reference_time, fb.feedback_count) == (372, 6, 4567386, 64)
    assert (fb.received, fb.not_received) == (6, 0)
    assert fb.deltas_us == 2047500 + 2022500 + 52000 + 52000
    # Its P bit is set with a last octet of 0: a padding count that cannot be (tshark: malformed).
    assert [f.code for f in findings] == ["rtcp.padding_bad"]
    rec, _, findings = parse_rtcp(RR + TWCC_SMALL)
    assert not findings and rec.twcc[0].received == 7
    assert rec.twcc[0].deltas_us == (19000 + 9000 + 9000 + 4000 + 3000 + 3000 + 4000)
    rec, _, _ = parse_rtcp(RR + TWCC_VECTOR)
    assert rec.twcc[0].deltas_us == sum(v * TWCC_DELTA_US for v in (0x10, 0x0C, 0x0C, 0x10))


def _twcc(status_count: int, chunks: bytes, deltas: bytes = b"") -> bytes:
    """A TWCC feedback (sender 1, media 2, base sequence 0, reference time 0, feedback count 1)."""
    body = struct.pack(">IIHH", 1, 2, 0, status_count) + b"\0\0\0\x01" + chunks + deltas
    body += b"\0" * (-len(body) % 4)
    return struct.pack(">BBH", 0x8F, 205, len(body) // 4) + body


TWCC_NOT_RECEIVED = _twcc(0xFFFF, struct.pack(">8H", *[0x1FFF] * 8))
"""36 bytes declaring 65,535 statuses: eight run length chunks of 8,191 'not received'."""
TWCC_DELTAS_SHORT = _twcc(8191, struct.pack(">H", 0x3FFF), bytes(range(1, 7)))
"""One run of 8,191 'small delta' statuses, and 6 delta bytes (the rest was never sent)."""


def _peak(raw: bytes) -> tuple[RtcpRecord, list[object], list[str], int]:
    """parse_rtcp's result and the most bytes it held at once (tracemalloc)."""
    tracemalloc.start()
    try:
        rec, fields, findings = parse_rtcp(raw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return rec, fields, [f.code for f in findings], peak


def test_twcc_statuses_are_counted_by_run_not_held_one_by_one() -> None:
    """The 65,535 statuses of 36 bytes are counted, not expanded (which held 700 KB and took 7 ms
    a packet); the chunks missing for the last 7 statuses are a finding."""
    rec, _, findings, peak = _peak(RR + TWCC_NOT_RECEIVED)
    (fb,) = rec.twcc
    assert (fb.status_count, fb.received, fb.not_received) == (65535, 0, 65528)
    assert findings == ["rtcp.truncated"]
    assert peak < 32_768


def test_twcc_deltas_read_are_the_bytes_present() -> None:
    """8,191 statuses want 8,191 delta bytes: the 6 present are read, the rest is a finding."""
    rec, fields, findings, peak = _peak(RR + TWCC_DELTAS_SHORT)
    (fb,) = rec.twcc
    assert (fb.received, fb.not_received, fb.deltas_us) == (6, 0, 21 * TWCC_DELTA_US)
    assert flatten(fields)["rtcp.rtpfb.transportcc.recv_delta"] == [1, 2, 3, 4, 5, 6]
    assert findings == ["rtcp.truncated"]
    assert peak < 32_768


def test_hostile_twcc_equals_tshark(tmp_path: Path) -> None:
    packets = [RR + TWCC_NOT_RECEIVED, RR + TWCC_DELTAS_SHORT]
    path = write(tmp_path / "twcc.pcap", udp_packets(packets, 40010, PORT))
    names = tuple(n for n in COMPARED if n.startswith("rtcp.rtpfb.transportcc."))
    theirs = tshark_fields(path, names, "-d", f"udp.port=={PORT},rtcp")
    for frame, raw in enumerate(packets, 1):
        ours = flatten(parse_rtcp(raw)[1])
        for name in names:
            assert _listed(ours.get(name)) == theirs[frame][name], (frame, name)


@pytest.mark.parametrize("raw", COMPOUNDS, ids=range(len(COMPOUNDS)))
def test_truncation_at_every_byte(raw: bytes) -> None:
    """Cut anywhere: a finding or a shorter compound, never an exception; and with the length
    field shrunk to what is left (a packet that says it is short), the body's parser reports
    what it misses instead of reading past the packet."""
    full, _, _ = parse_rtcp(raw)
    for cut in range(1, len(raw)):
        rec, _, findings = parse_rtcp(raw[:cut])
        assert findings or len(rec.types) < len(full.types) or rec.encrypted or rec.srtcp
    first = 4 + 4 * int.from_bytes(raw[2:4], "big")
    last = raw[first:]
    for words in range(1, int.from_bytes(last[2:4], "big")):
        shrunk = raw[:first] + last[:2] + words.to_bytes(2, "big") + last[4 : 4 + 4 * words]
        parse_rtcp(shrunk)


@given(st.binary(max_size=160), st.sampled_from([200, 201, 202, 203, 204, 205, 206, 207]), st.integers(0, 31))
def test_random_bodies_never_raise(body: bytes, pt: int, count: int) -> None:
    body = body[: len(body) // 4 * 4]
    raw = struct.pack(">BBHI", 0x80 | count, pt, len(body) // 4 + 1, 1) + body
    rec, _, _ = parse_rtcp(raw)
    assert isinstance(rec, RtcpRecord)
    parse_rtcp(bytes([raw[0] | 0x20]) + raw[1:])  # the padding bit: its count from the last octet


PUBLIC = [
    ("ndpi--rtcp_multiple_pkts_in_the_same_datagram.pcap", ()),
    ("wswiki--1920x1080_H.265.pcapng", ()),
    ("wswiki--Asterisk_ZFONE_XLITE.pcap", ()),
]


@pytest.mark.parametrize(("name", "args"), PUBLIC)
def test_public_captures_equal_tshark(name: str, args: tuple[str, ...]) -> None:
    """Plain RTCP of real captures (SR/RR/SDES/BYE), every compared field as tshark reads it."""
    path = public_capture(name)
    names = tuple(n for n in COMPARED if n != "rtcp.app.name")  # AVB names hold any bytes
    theirs = tshark_fields(path, ("rtcp.version", *names), *args)
    session = Session.open(path, load_registry())
    try:
        ours = {
            pd.index + 1: flatten(pdu.fields)
            for pd in session.decode()
            for pdu in pd.pdus
            if isinstance(pdu.record, RtcpRecord) and not pdu.record.srtcp and not pdu.record.encrypted
        }
    finally:
        session.close()
    compared = 0
    for frame, want in theirs.items():
        if frame not in ours or want["rtcp.version"][:1] != [2]:
            continue
        compared += 1
        for field_name in names:
            assert _listed(ours[frame].get(field_name)) == want[field_name], (frame, field_name)
    assert compared
