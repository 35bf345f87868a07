"""The compiled pcap record walk (captures/_walk.c) finds what the Python scan finds."""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protoscope.captures import pcap
from protoscope.captures.source import open_capture

from ..conftest import SAMPLES, public_captures

BUILT = pcap._walk


def test_extension_is_built_in_ci() -> None:
    """CI installs a C compiler: there the walk must be compiled (elsewhere it is optional)."""
    if os.environ.get("CI") == "true":
        assert BUILT is not None, "captures/_walk.c was not compiled"
    elif BUILT is None:
        pytest.skip("the extension was not compiled (no C compiler at install time)")


def records(path: Path, compiled: bool) -> tuple[list[npt.NDArray[np.int64]], list[str]]:
    saved = pcap._walk
    pcap._walk = BUILT if compiled else None
    try:
        capture = open_capture(path)
    finally:
        pcap._walk = saved
    r = capture.records
    found = [r.data_off, r.caplen, r.wirelen, r.ts_ns]
    codes = [f"{i} {f.code}" for i, f in r.findings]
    capture.close()
    return found, codes


def same_either_way(path: Path) -> None:
    if BUILT is None:
        pytest.skip("the extension was not compiled")
    (ours, our_codes), (python, python_codes) = records(path, True), records(path, False)
    for a, b in zip(ours, python, strict=True):
        assert np.array_equal(a, b), path.name
    assert our_codes == python_codes


PCAPS = [
    p for p in [*sorted(SAMPLES.glob("*.pcap")), *public_captures()] if p.read_bytes()[:4] != b"\n\r\r\n"
]


@pytest.mark.parametrize("path", PCAPS, ids=[p.name for p in PCAPS])
def test_every_capture(path: Path) -> None:
    same_either_way(path)


def write(path: Path, lengths: list[int], magic: str = "d4c3b2a1", tail: bytes = b"") -> Path:
    """A pcap of records with these captured lengths (all byte orders and header variants)."""
    little = magic in ("d4c3b2a1", "4d3cb2a1", "34cdb2a1")
    order = "<" if little else ">"
    header_len = 24 if magic in ("34cdb2a1", "a1b2cd34") else 16
    out = bytearray(bytes.fromhex(magic) + struct.pack(order + "HHiIII", 2, 4, 0, 0, 65535, 1))
    for n, length in enumerate(lengths):
        out += struct.pack(order + "IIII", 1_700_000_000 + n, n, length, length)
        out += bytes(header_len - 16) + bytes([n % 251]) * length
    path.write_bytes(bytes(out) + tail)
    return path


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.sampled_from([0, 1, 54, 60, 1514, 40000]) | st.integers(0, 3000), max_size=400),
    magic=st.sampled_from(["d4c3b2a1", "a1b2c3d4", "4d3cb2a1", "a1b23c4d", "34cdb2a1", "a1b2cd34"]),
    tail=st.binary(max_size=40),
)
def test_generated_captures(
    tmp_path_factory: pytest.TempPathFactory, lengths: list[int], magic: str, tail: bytes
) -> None:
    same_either_way(write(tmp_path_factory.mktemp("walk") / "g.pcap", lengths, magic, tail))


def test_a_long_capture_of_mixed_lengths_across_release_steps(tmp_path: Path) -> None:
    rnd = random.Random(5)
    lengths = [rnd.choice([54, 66, 1514, 9000]) for _ in range(30_000)]  # ~50 MB: several release steps
    same_either_way(write(tmp_path / "long.pcap", lengths))


def test_an_absurd_length_ends_the_walk_alike(tmp_path: Path) -> None:
    path = write(tmp_path / "absurd.pcap", [60, 60, 60])
    raw = bytearray(path.read_bytes())
    raw[24 + 16 + 60 + 8 : 24 + 16 + 60 + 12] = (0xFFFFFFF0).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    same_either_way(path)
