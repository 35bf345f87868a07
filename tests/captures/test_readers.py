"""Capture formats: every pcap variant, pcapng sections/interfaces/resolutions, gzip, truncation."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protoscope.captures.errors import CaptureError
from protoscope.captures.source import open_capture, scan
from protoscope.captures.writer import PcapNgWriter
from tests.conftest import public_capture, tshark

FRAME_A = bytes.fromhex(
    "020000000002020000000001080045000020000100004011f9c27f0000017f000002a4100d96000c0000deadbeef"
)
FRAME_B = FRAME_A[:-4] + b"\x01\x02\x03\x04"


def pcap_bytes(order: str, magic: int, frames: list[tuple[int, int, bytes]], rec_extra: int = 0) -> bytes:
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, 1)
    for sec, frac, data in frames:
        out += struct.pack(order + "IIII", sec, frac, len(data), len(data) + 10) + b"\x00" * rec_extra + data
    return out


@pytest.mark.parametrize(
    ("order", "magic", "frac_ns", "extra", "fmt"),
    [
        ("<", 0xA1B2C3D4, 1000, 0, "pcap"),
        (">", 0xA1B2C3D4, 1000, 0, "pcap"),
        ("<", 0xA1B23C4D, 1, 0, "pcap-ns"),
        (">", 0xA1B23C4D, 1, 0, "pcap-ns"),
        ("<", 0xA1B2CD34, 1000, 8, "pcap"),
    ],
)
def test_pcap_variants(order: str, magic: int, frac_ns: int, extra: int, fmt: str) -> None:
    buf = pcap_bytes(order, magic, [(1_700_000_000, 123_456, FRAME_A), (1_700_000_001, 7, FRAME_B)], extra)
    rec = scan(buf)
    assert rec.format == fmt
    assert len(rec) == 2
    assert rec.ts_ns.tolist() == [
        1_700_000_000_000_000_000 + 123_456 * frac_ns,
        1_700_000_001_000_000_000 + 7 * frac_ns,
    ]
    assert rec.caplen.tolist() == [len(FRAME_A), len(FRAME_B)]
    assert rec.wirelen.tolist() == [len(FRAME_A) + 10, len(FRAME_B) + 10]
    assert bytes(buf[int(rec.data_off[1]) :][: len(FRAME_B)]) == FRAME_B


def pcapng_block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def test_pcapng_sections_interfaces_resolutions_and_comments() -> None:
    be, le = ">", "<"
    data = b""
    # Section 1, little-endian: an Ethernet interface in microseconds, one EPB with a comment.
    data += pcapng_block(le, 0x0A0D0D0A, struct.pack(le + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    data += pcapng_block(le, 1, struct.pack(le + "HHI", 1, 0, 0))
    ticks = 1_700_000_000_000_001
    epb = struct.pack(le + "IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(FRAME_A), len(FRAME_A)) + FRAME_A
    epb += b"\x00" * (-len(FRAME_A) % 4) + option(le, 1, b"hello") + option(le, 0, b"")
    data += pcapng_block(le, 6, epb)
    # Section 2, big-endian: a raw-IP interface with if_tsresol 2^-10 and an OPB, then an SPB.
    data += pcapng_block(be, 0x0A0D0D0A, struct.pack(be + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    data += pcapng_block(
        be, 1, struct.pack(be + "HHI", 101, 0, 0) + option(be, 9, bytes([0x8A])) + option(be, 0, b"")
    )
    raw_ip = FRAME_B[14:]
    opb = struct.pack(be + "HHIIII", 0, 0, 0, 2048, len(raw_ip), len(raw_ip)) + raw_ip
    data += pcapng_block(be, 2, opb)
    data += pcapng_block(be, 3, struct.pack(be + "I", len(raw_ip)) + raw_ip)
    rec = scan(data)
    assert rec.format == "pcapng"
    assert len(rec) == 3
    assert [i.linktype for i in rec.interfaces] == [1, 101]
    assert rec.iface.tolist() == [0, 1, 1]
    assert rec.ts_ns.tolist()[:2] == [ticks * 1000, 2 * 1_000_000_000]
    assert rec.comments == {0: ["hello"]}
    for i, frame in enumerate((FRAME_A, raw_ip, raw_ip)):
        start = int(rec.data_off[i])
        assert data[start : start + int(rec.caplen[i])] == frame


def test_our_pcapng_writer_is_read_back_and_by_tshark(tmp_path: Path) -> None:
    path = tmp_path / "w.pcapng"
    with open(path, "wb") as fh:
        w = PcapNgWriter(fh)
        w.write(FRAME_A, 1_700_000_000_123_456_789)
        w.write(FRAME_B[14:], 1_700_000_001_000_000_001, linktype=101)
    cf = open_capture(path)
    assert cf.records.ts_ns.tolist() == [1_700_000_000_123_456_789, 1_700_000_001_000_000_001]
    cf.close()
    out = tshark("-r", str(path), "-T", "fields", "-e", "frame.time_epoch", "-e", "udp.dstport")
    assert out.split() == ["1700000000.123456789", "3478", "1700000001.000000001", "3478"]


def test_gzip_is_detected_by_magic_not_name(tmp_path: Path) -> None:
    raw = pcap_bytes("<", 0xA1B2C3D4, [(1, 2, FRAME_A)])
    path = tmp_path / "capture.bin"
    path.write_bytes(gzip.compress(raw))
    cf = open_capture(path)
    assert cf.compressed and len(cf.records) == 1
    cf.close()


def test_netxray_times_equal_tshark() -> None:
    path = public_capture("wswiki--RTP-only_PCMU_2-packets.cap")
    cf = open_capture(path)
    theirs = tshark("-r", str(path), "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.len").split()
    ours = []
    for i in range(len(cf.records)):
        ours += [int(cf.records.ts_ns[i]), int(cf.records.wirelen[i])]
    assert len(ours) == len(theirs)
    for mine, text in zip(ours[0::2], theirs[0::2], strict=True):
        assert abs(mine / 1e9 - float(text)) < 1e-6
    assert ours[1::2] == [int(x) for x in theirs[1::2]]
    cf.close()


SMALL = pcap_bytes("<", 0xA1B2C3D4, [(1, 2, FRAME_A), (3, 4, FRAME_B), (5, 6, FRAME_A)])


def test_truncation_at_every_byte_keeps_complete_records() -> None:
    full = len(scan(SMALL))
    ends = [24]
    for frame in (FRAME_A, FRAME_B, FRAME_A):
        ends.append(ends[-1] + 16 + len(frame))
    for cut in range(24, len(SMALL)):
        rec = scan(SMALL[:cut])
        complete = sum(1 for e in ends[1:] if e <= cut)
        assert len(rec) == complete, cut
        truncated = any(f.code == "capture.truncated" for _, f in rec.findings)
        assert truncated == (cut not in ends), cut  # a cut between records is a valid shorter file
    assert full == 3


def test_absurd_record_length_is_a_finding() -> None:
    bad = bytearray(SMALL)
    struct.pack_into("<I", bad, 24 + 16 + len(FRAME_A) + 8, 0x7FFFFFFF)
    rec = scan(bytes(bad))
    assert len(rec) == 1
    assert [f.code for _, f in rec.findings] == ["capture.bad_record_length"]


@given(st.binary(max_size=400))
@settings(max_examples=300, deadline=None)
def test_random_bytes_never_raise_anything_but_capture_error(blob: bytes) -> None:
    for prefix in (b"", SMALL[:4], bytes.fromhex("0a0d0d0a"), b"XCP\x00"):
        try:
            scan(prefix + blob)
        except CaptureError:
            pass


@given(st.integers(0, len(SMALL) - 1), st.integers(0, 255))
@settings(max_examples=300, deadline=None)
def test_single_byte_corruption_is_tolerated(pos: int, value: int) -> None:
    bad = bytearray(SMALL)
    bad[pos] = value
    try:
        rec = scan(bytes(bad))
    except CaptureError:
        return
    assert len(rec) <= 3


@pytest.mark.parametrize(
    ("tsresol", "tsoffset", "ts_ns", "codes"),
    [
        # 10**-127 s a tick is corrupt: read as microseconds, and 2**64 - 1 of them are past 2262
        (127, 0, (1 << 63) - 1, ["pcapng.bad_tsresol", "capture.bad_timestamp"]),
        (19, 0, 1_844_674_407, []),  # 10**-19 s, the finest decimal tick 64 bits can count
        (20, 0, (1 << 63) - 1, ["pcapng.bad_tsresol", "capture.bad_timestamp"]),
        (0xBF, 0, 2_000_000_000, []),  # 2**-63 s a tick: 2**64 - 1 ticks, 2 s as float64 rounds it
        (0xC0, 0, (1 << 63) - 1, ["pcapng.bad_tsresol", "capture.bad_timestamp"]),  # 2**-64 s
        (0x80, 0, (1 << 63) - 1, ["capture.bad_timestamp"]),  # 1 s a tick: past 2262
        (6, 1 << 62, 1_700_000_000_000_000_000, ["pcapng.bad_tsoffset"]),  # the offset is ignored
        (6, -(1 << 62), 1_700_000_000_000_000_000, ["pcapng.bad_tsoffset"]),
        (6, 9_000_000_000, (1 << 63) - 1, ["capture.bad_timestamp"]),  # in range, but the sum is not
    ],
    ids=[
        "decimal-10^-127",
        "decimal-10^-19",
        "decimal-10^-20",
        "binary-2^-63",
        "binary-2^-64",
        "binary-2^0",
        "offset-huge",
        "offset-negative",
        "offset-sum-past-2262",
    ],
)
def test_pcapng_times_past_int64_are_held_with_a_finding(
    tsresol: int, tsoffset: int, ts_ns: int, codes: list[str]
) -> None:
    """A corrupt if_tsresol or if_tsoffset (soak_cases/pcapng-tsresol-*) never overflows: the
    record is read; a resolution finer than 64 bits of ticks can use falls back to microseconds
    and an offset past 2262 is ignored, each with a finding; a time still past the range is held
    at its end, with a finding."""
    le = "<"
    idb_options = option(le, 9, bytes([tsresol])) + option(le, 14, struct.pack(le + "q", tsoffset))
    data = pcapng_block(le, 0x0A0D0D0A, struct.pack(le + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    data += pcapng_block(le, 1, struct.pack(le + "HHI", 1, 0, 0) + idb_options + option(le, 0, b""))
    ticks = (1 << 64) - 1 if tsresol != 6 else 1_700_000_000_000_000
    epb = struct.pack(le + "IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(FRAME_A), len(FRAME_A)) + FRAME_A
    data += pcapng_block(le, 6, epb + b"\x00" * (-len(FRAME_A) % 4))
    rec = scan(data)
    assert len(rec) == 1
    assert int(rec.ts_ns[0]) == ts_ns
    assert [f.code for _i, f in rec.findings] == codes


def test_pcapng_absurd_tsresol_falls_back_to_microseconds_on_its_interface(tmp_path: Path) -> None:
    """Interface 1 declares 10**-118 s a tick (the issue's case): its packets are read in
    microseconds, with one finding on its first packet; interface 0 is untouched. tshark reads
    the file too (its times for interface 1 are near 0)."""
    le = "<"
    data = pcapng_block(le, 0x0A0D0D0A, struct.pack(le + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    data += pcapng_block(le, 1, struct.pack(le + "HHI", 1, 0, 0) + option(le, 0, b""))
    data += pcapng_block(
        le, 1, struct.pack(le + "HHI", 1, 0, 0) + option(le, 9, bytes([118])) + option(le, 0, b"")
    )
    ticks = 1_700_000_000_000_000
    for n, iface in enumerate((0, 1, 1, 0)):
        t = ticks + n
        epb = struct.pack(le + "IIIII", iface, t >> 32, t & 0xFFFFFFFF, len(FRAME_A), len(FRAME_A)) + FRAME_A
        data += pcapng_block(le, 6, epb + b"\x00" * (-len(FRAME_A) % 4))
    path = tmp_path / "tsresol.pcapng"
    path.write_bytes(data)
    rec = scan(data)
    assert rec.ts_ns.tolist() == [(ticks + n) * 1000 for n in range(4)]
    [(at, finding)] = rec.findings
    assert (at, finding.code, finding.severity) == (1, "pcapng.bad_tsresol", "warn")
    assert "interface 1 declares a tick of 10**-118 s" in finding.message
    assert len(tshark("-r", str(path), "-T", "fields", "-e", "frame.number").split()) == 4
