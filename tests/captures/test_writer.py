"""The pcapng blocks we write, read back by our reader, by our block walk and by Wireshark's tools."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from protoscope.captures.index import load
from protoscope.captures.writer import (
    EPB_OVERHEAD,
    PcapNgWriter,
    enhanced_packet,
    interface_description,
    interface_statistics,
    section_header,
)
from tests.captures.test_live import EPB, ISB, blocks, interfaces, statistics
from tests.conftest import require_tool

FRAME = bytes(Ether() / IP(src="127.0.0.1", dst="127.0.0.1") / UDP(sport=5, dport=9) / b"hi")


@pytest.mark.parametrize("size", range(5))
def test_an_epb_is_padded_to_4_bytes_with_its_length_at_both_ends(size: int) -> None:
    block = enhanced_packet(2, 0x1_0000_0002, b"x" * size, wirelen=99)
    btype, blen, iface, hi, lo, caplen, wirelen = struct.unpack_from("<IIIIIII", block)
    assert (btype, iface, hi, lo, caplen, wirelen) == (EPB, 2, 1, 2, size, 99)
    assert blen == len(block) == EPB_OVERHEAD + size + (-size % 4)
    assert struct.unpack_from("<I", block, blen - 4)[0] == blen


def _spool(path: Path) -> None:
    ts = 1_700_000_000_123_456_789
    counts = {"ifrecv": 4, "ifdrop": 1, "osdrop": 2, "usrdeliv": 2}
    nothing = dict.fromkeys(counts, 0)
    path.write_bytes(
        section_header()
        + interface_description(1, 65535, name="lo", bpf="udp port 9")
        + interface_description(276, 262144, name="any")
        + enhanced_packet(0, ts, FRAME)
        + enhanced_packet(0, ts + 1000, FRAME)
        + interface_statistics(0, ts + 2000, starttime_ns=ts - 5, endtime_ns=ts + 2000, **counts)
        + interface_statistics(1, ts + 2000, starttime_ns=ts, endtime_ns=ts, **nothing)
    )


def test_blocks_read_back_by_our_reader_and_walk(tmp_path: Path) -> None:
    path = tmp_path / "w.pcapng"
    _spool(path)
    index = load(path)
    assert len(index) == 2 and not index.findings
    assert index.frame(0) == FRAME and index.linktype(1) == 1
    assert index.time(1) - index.time(0) == pytest.approx(1e-6, abs=5e-7)  # float seconds near 1.7e9
    assert interfaces(path) == [(1, 65535, "lo"), (276, 262144, "any")]
    first, second = statistics(path)
    ts = 1_700_000_000_123_456_789
    assert first == {
        "iface": 0,
        "starttime": ts - 5,
        "endtime": ts + 2000,
        "ifrecv": 4,
        "ifdrop": 1,
        "osdrop": 2,
        "usrdeliv": 2,
    }
    assert second["iface"] == 1 and second["usrdeliv"] == 0
    assert [b for b, _ in blocks(path)][-2:] == [ISB, ISB]


def test_wiresharks_tools_read_the_blocks(tmp_path: Path) -> None:
    capinfos = require_tool("capinfos")
    tshark = require_tool("tshark")
    path = tmp_path / "w.pcapng"
    _spool(path)
    info = subprocess.run([capinfos, "-I", str(path)], capture_output=True, text=True, check=True).stdout
    assert "Name = lo" in info and "Name = any" in info
    assert "Filter string = udp port 9" in info and "Time precision = nanoseconds (9)" in info
    assert "Number of stat entries = 1" in info
    listed = subprocess.run(
        [tshark, "-r", str(path), "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.interface_name"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert listed.stdout.split() == ["1700000000.123456789", "lo", "1700000000.123457789", "lo"]


def test_the_writer_declares_an_interface_per_link_type(tmp_path: Path) -> None:
    path = tmp_path / "e.pcapng"
    with path.open("wb") as out:
        writer = PcapNgWriter(out)
        writer.write(FRAME, 1_000_000_000, linktype=1)
        writer.write(b"\x45" + FRAME[15:], 2_000_000_000, linktype=101)
        writer.write(FRAME, 3_000_000_000, linktype=1, wirelen=100)
        writer.flush()
    assert [lt for lt, _, _ in interfaces(path)] == [1, 101]
    index = load(path)
    assert [index.linktype(i) for i in range(3)] == [1, 101, 1]
    assert [index.time(i) for i in range(3)] == [1.0, 2.0, 3.0]
