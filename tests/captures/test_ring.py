"""dumpcap's ring buffer: `-b` parsing, file names, and a live capture that rotates and keeps N files."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest

from protoscope.captures.index import load
from protoscope.captures.live import LiveCapture
from protoscope.captures.options import CaptureOptions, RingOptions, parse_ring
from protoscope.captures.ringfiles import SpoolError, SpoolFiles, ring_file_name
from tests.captures.test_live import EPB, ISB, _free_udp_port, blocks, statistics
from tests.conftest import require_root


def test_parse_ring_reads_dumpcaps_options() -> None:
    ring = parse_ring(["filesize:100", "duration:2.5", "files:4"])
    assert ring == RingOptions(filesize=100_000, duration=2.5, files=4)
    assert ring.rotates
    assert parse_ring("filesize:3MB").filesize == 3_000_000
    assert parse_ring("filesize:20kB").filesize == 20_000
    assert parse_ring("FILES:2", RingOptions(duration=1)) == RingOptions(duration=1, files=2)
    assert not parse_ring("files:3").rotates  # files:N alone: dumpcap also wants a size or a time


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("filesize", "expected KEY:VALUE"),
        ("filesize:", "expected KEY:VALUE"),
        ("filesize:ten", "filesize:ten: expected a number of kB"),
        ("filesize:10TB", "expected a number of kB"),
        ("filesize:0", "must be more than 0"),
        ("duration:soon", "duration:soon: expected a number of seconds"),
        ("duration:-1", "must be more than 0"),
        ("files:2.5", "files:2.5: expected a number of files"),
        ("packets:10", "'packets' is not a ring-buffer option"),
    ],
)
def test_parse_ring_refuses_with_one_line(spec: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)) as refused:
        parse_ring(spec)
    assert "\n" not in str(refused.value)


def test_ring_file_names_are_dumpcaps() -> None:
    when = time.mktime((2024, 1, 2, 15, 4, 5, 0, 0, -1))
    assert ring_file_name(Path("/d/out.pcapng"), 1, when) == Path("/d/out_00001_20240102150405.pcapng")
    assert ring_file_name(Path("/d/out"), 12, when) == Path("/d/out_00012_20240102150405.pcapng")


def test_spool_files_keep_the_newest_n(tmp_path: Path) -> None:
    files = SpoolFiles(tmp_path / "r.pcapng", RingOptions(filesize=10, files=2))
    for _ in range(4):
        files.open_next(b"header blocks")
        assert files.room() == 0 and files.due(time.monotonic())
        files.close(b"trailer")
    assert [p.name[:7] for p in files.kept] == ["r_00003", "r_00004"]
    assert sorted(tmp_path.iterdir()) == files.kept
    assert files.kept[0].read_bytes() == b"header blockstrailer"


def test_spool_files_say_why_they_cannot_open(tmp_path: Path) -> None:
    files = SpoolFiles(tmp_path / "missing" / "r.pcapng", RingOptions())
    with pytest.raises(
        SpoolError, match=r"^cannot write the spool .*/missing/r.pcapng: No such file or directory$"
    ):
        files.open_next(b"")


def test_a_live_ring_rotates_and_keeps_n_files(tmp_path: Path) -> None:
    """filesize:4 (kB) and files:3, 200 datagrams of ~240 bytes on the wire: several rotations;
    the three newest files remain, each a whole pcapng of ~4 kB ending with its statistics."""
    require_root()
    port = _free_udp_port()
    ring = parse_ring(["filesize:4", "files:3"])
    opts = CaptureOptions(("lo",), bpf=f"udp and dst port {port}", ring=ring)
    capture = LiveCapture(opts, tmp_path / "r.pcapng")
    capture.start()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(200):
            s.sendto(b"r" * 200, ("127.0.0.1", port))
    capture.stop()
    assert capture.error is None and capture.stats.packets == 200
    kept = sorted(tmp_path.iterdir())
    assert kept == capture.stats.files and capture.stats.spool == kept[-1]
    assert len(kept) == 3
    names = [re.fullmatch(r"r_(\d{5})_\d{14}\.pcapng", p.name) for p in kept]
    numbers = [int(m.group(1)) for m in names if m is not None]
    assert numbers[0] > 1 and numbers == list(range(numbers[0], numbers[0] + 3))
    for path in kept:
        kinds = [btype for btype, _ in blocks(path)]
        assert kinds[-1] == ISB and EPB in kinds
        assert len(load(path)) == kinds.count(EPB)
    for path in kept[:-1]:  # full: the size, passed by at most one packet, then the statistics
        assert 4000 <= path.stat().st_size < 4000 + 276 + 100
    # Each file's statistics are the capture's when the file was closed.
    delivered = [statistics(path)[0]["usrdeliv"] for path in kept]
    assert delivered == sorted(delivered) and delivered[-1] == 200
