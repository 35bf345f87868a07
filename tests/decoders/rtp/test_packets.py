"""RTP and RTCP from real-shaped bytes: extensions, padding, compound RTCP, SRTCP, truncation, fuzz."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protoscope.decoders.registry import load_registry
from protoscope.decoders.rtp.packets import (
    looks_like_rtcp,
    looks_like_rtp,
    parse_rtcp,
    parse_rtp,
    rtp_payload,
)
from protoscope.inspector.session import Session, flatten
from tests.conftest import public_capture, tshark
from tests.pcapgen import udp_packets, write


def rtp(seq: int = 7, ext: bytes = b"", padding: int = 0, payload: bytes = b"\xd5" * 160) -> bytes:
    b0 = 0x80 | (0x10 if ext else 0) | (0x20 if padding else 0)
    head = struct.pack(">BBHII", b0, 0x80 | 111, seq, 1234, 0xDEADBEEF)
    tail = (b"\0" * (padding - 1) + bytes([padding])) if padding else b""
    return head + ext + payload + tail


def test_rtp_header_one_byte_extension_and_padding() -> None:
    # RFC 8285 one-byte form: id 1 (audio level, 1 byte), id 3 (abs-send-time, 3 bytes), padding.
    ext = struct.pack(">HH", 0xBEDE, 2) + bytes([0x10, 0x81, 0x32, 1, 2, 3, 0, 0])
    raw = rtp(ext=ext, padding=4)
    assert looks_like_rtp(rtp(ext=ext))  # the heuristic wants no padding on a flow's first packet
    rec, fields, findings = parse_rtp(raw)
    assert rec is not None and not findings
    assert (rec.ssrc, rec.seq, rec.payload_type, rec.marker, rec.payload_len) == (
        0xDEADBEEF,
        7,
        111,
        True,
        160,
    )
    flat = flatten(fields)
    assert flat["rtp.ext.profile"] == 0xBEDE and flat["rtp.ext.rfc5285.id"] == [1, 3]
    assert flat["rtp.ext.rfc5285.data"] == ["81", "010203"] and flat["rtp.padding.count"] == 4


def test_rtp_two_byte_extension() -> None:
    ext = struct.pack(">HH", 0x1000, 2) + bytes([5, 3, 9, 9, 9, 0, 0, 0])
    rec, fields, _ = parse_rtp(rtp(ext=ext))
    assert rec is not None and flatten(fields)["rtp.ext.rfc5285.id"] == 5


def test_rtp_truncation_at_every_boundary() -> None:
    raw = rtp(ext=struct.pack(">HH", 0xBEDE, 1) + bytes([0x10, 0x81, 0, 0]))
    for cut in range(len(raw)):
        rec, _, findings = parse_rtp(raw[:cut])
        assert rec is not None or findings


def test_rtcp_compound_sr_sdes_and_feedback() -> None:
    sr = struct.pack(">BBHIIIIII", 0x80, 200, 6, 0x1111, 1, 2, 3, 10, 1600)
    sdes = struct.pack(">BBHI", 0x81, 202, 2, 0x1111) + b"\x01\x02ab"
    pli = struct.pack(">BBHII", 0x81, 206, 2, 0x1111, 0x2222)
    nack = struct.pack(">BBHIIHH", 0x81, 205, 3, 0x1111, 0x2222, 100, 0)
    raw = sr + sdes + pli + nack
    assert looks_like_rtcp(raw)
    rec, fields, findings = parse_rtcp(raw)
    assert rec.types == (200, 202, 206, 205) and not rec.srtcp and not findings
    flat = flatten(fields)
    assert flat["rtcp.sender.packetcount"] == 10 and flat["rtcp.fb"] == ["PLI", "Generic NACK"]


def test_srtcp_trailer() -> None:
    rr = struct.pack(">BBHI", 0x80, 201, 1, 0x1111)
    raw = rr + struct.pack(">I", 0x80000005) + b"\xaa" * 10
    assert looks_like_rtcp(raw)
    rec, fields, _ = parse_rtcp(raw)
    assert rec.srtcp and flatten(fields)["srtcp.index"] == 5 and flatten(fields)["srtcp.e"] is True


@given(st.binary(max_size=200))
def test_random_bytes_never_raise(data: bytes) -> None:
    parse_rtp(data)
    parse_rtcp(data)
    looks_like_rtp(data)
    looks_like_rtcp(data)


@pytest.mark.parametrize(
    ("name", "port"), [("tcpdump--rtp-seg-fault-1.pcapng", 53), ("tcpdump--rtp-seg-fault-2.pcapng", 514)]
)
def test_fuzzed_captures_that_crashed_tcpdump(
    name: str, port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """tcpdump's fuzzed RTP packets (its -T rtp crashed on them), read as RTP like its tests do:
    findings on the packet, exit 0, no traceback."""
    from protoscope.inspector.cli import main

    path = public_capture(name)
    args = [str(path), "--report", "findings", "--format", "json", "-d", f"udp.port=={port},rtp"]
    assert main(args) == 0
    findings = json.loads(capsys.readouterr().out)
    if name.endswith("1.pcapng"):  # UDP length past the IP payload, then a version-0 "RTP" header
        assert {f["code"] for f in findings} == {"udp.length_bad", "rtp.not_rtp"}
    else:  # an empty UDP payload: nothing to decode, nothing wrong above it
        assert findings == []


def test_report_blocks_equal_tshark() -> None:
    """SR and RR report blocks (RFC 3550 section 6.4.1) of real compounds, field by field as
    tshark reads them."""
    path = public_capture("ndpi--rtcp_multiple_pkts_in_the_same_datagram.pcap")
    names = ("rtcp.ssrc.identifier", "rtcp.ssrc.fraction", "rtcp.ssrc.cum_nr", "rtcp.ssrc.ext_high",
             "rtcp.ssrc.jitter", "rtcp.ssrc.lsr", "rtcp.ssrc.dlsr")  # fmt: skip
    args = [a for name in names for a in ("-e", name)]
    out = tshark("-r", str(path), "-T", "fields", "-E", "occurrence=a", "-e", "frame.number", *args)
    session = Session.open(path, load_registry())
    try:
        ours = {pd.index + 1: flatten(pd.pdus[0].fields) for pd in session.decode() if pd.pdus}
    finally:
        session.close()
    for line in out.splitlines():
        frame, *values = line.split("\t")
        for name, value in zip(names, values, strict=True):
            want = [int(v, 16) if v.startswith("0x") else int(v) for v in value.split(",") if v]
            got = ours[int(frame)].get(name)
            got = [] if got is None else got if isinstance(got, list) else [got]
            if name == "rtcp.ssrc.identifier":  # tshark also names SDES chunks' SSRCs so
                want = want[: len(got)]
            assert got == want, (frame, name)


def test_stun_on_a_flow_first_seen_as_rtp_is_handed_to_stun(tmp_path: Path) -> None:
    """ICE consent checks (RFC 7675) on the 5-tuple of a media flow that began with RTP: each STUN
    datagram is still STUN (RFC 7983 section 7), as tshark decodes it."""
    stun = struct.pack("!HHI12s", 0x0001, 0, 0x2112A442, bytes(range(12)))
    payloads = [rtp(seq=n) for n in range(40)]
    payloads[20] = stun
    path = write(tmp_path / "rtp-stun.pcap", udp_packets(payloads, 40002, 50004))
    session = Session.open(path, load_registry())
    try:
        protocols = {pd.index: [p.protocol for p in pd.pdus] for pd in session.decode()}
    finally:
        session.close()
    assert protocols[20] == ["stun"]
    assert protocols[19] == ["rtp"] and protocols[21] == ["rtp"]


def test_codec_fields_follow_the_payload() -> None:
    """With the encoding signaling named, the tree gains the codec's fields, spans in the packet."""
    ext = struct.pack(">HH", 0xBEDE, 1) + bytes([0x10, 0x81, 0, 0])
    raw = rtp(ext=ext, padding=4, payload=b"\x78\x01\x02")  # Opus TOC: config 15, mono, code 0
    _, fields, _ = parse_rtp(raw, 48000, "opus")
    flat = flatten(fields)
    assert flat["opus.TOC.config"] == 15 and flat["opus.mode"] == "Hybrid"
    toc = next(f for f in fields if f.name == "opus.TOC.config")
    assert toc.span == (20, 21) and raw[20] == 0x78
    assert "opus.TOC.config" not in flatten(parse_rtp(raw, 48000)[1])
    assert rtp_payload(raw) == b"\x78\x01\x02" and rtp_payload(raw[:10]) is None
