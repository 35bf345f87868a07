"""The frame-boundary search of mid-connection HTTP/2 equals a plain scan of every offset."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protoscope.decoders.http2 import frames as fr
from protoscope.decoders.http2.decoder import find_frame_start


def scan_every_offset(data: bytes, limit: int) -> int | None:
    for pos in range(min(len(data), limit)):
        if fr.plausible_header(data, pos):
            nxt = fr.frame_header(data, pos).end
            if nxt == len(data) or (nxt < len(data) and fr.plausible_header(data, nxt)):
                return pos
            if nxt > len(data) and pos == 0:
                return pos
    return None


header_bytes = st.builds(
    lambda length, kind, flags, stream: (
        length.to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big")
    ),
    st.one_of(st.sampled_from([0, 4, 5, 6, 8, 12, 0x100000]), st.integers(0, 0xFFFFFF)),
    st.integers(0, 11),
    st.one_of(st.sampled_from([0, 1, 4, 8, 0x24, 0x2D]), st.integers(0, 255)),
    st.one_of(st.sampled_from([0, 1, 3, 0x80000000]), st.integers(0, 0xFFFFFFFF)),
)
frame_like = st.lists(st.one_of(header_bytes, st.binary(max_size=40)), max_size=12).map(b"".join)


@settings(max_examples=1000)
@given(frame_like, st.integers(min_value=0, max_value=300))
def test_equals_a_scan_of_every_offset(data: bytes, limit: int) -> None:
    assert find_frame_start(data, limit) == scan_every_offset(data, limit)


def test_finds_frames_after_garbage() -> None:
    settings_frame = bytes.fromhex("000000040000000000")
    ping = bytes.fromhex("0000080600000000000102030405060708")
    data = b"\xff\xfe garbage" + settings_frame + ping
    assert find_frame_start(data) == 10
    assert find_frame_start(data, 10) is None


def test_the_search_checks_candidates_not_every_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    """Random bytes (TLS application data, a bulk transfer) have few offsets that could start a
    frame: the full check runs on those, not on each of the 4,096 (which cost ~13 ms a call)."""
    calls = 0
    check = fr.plausible_header

    def counted(data: bytes, pos: int = 0) -> bool:
        nonlocal calls
        calls += 1
        return check(data, pos)

    monkeypatch.setattr(fr, "plausible_header", counted)
    data = random.Random(11).randbytes(32 * 1024)
    assert find_frame_start(data, 4096) is None
    assert calls < 64
