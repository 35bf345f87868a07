"""TCP reassembly: order, retransmission, overlap, gaps, mid-connection starts, wrap-around."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from protoscope.captures.reassembly import Chunk, Event, Gap, TcpDirection

SYN, ACK = 0x02, 0x10


def data_of(events: list[Event]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, Chunk))


def test_in_order_after_syn_with_frames() -> None:
    d = TcpDirection()
    assert d.push(0, 999, SYN, b"") == []
    ev = d.push(1, 1000, ACK, b"hello ") + d.push(2, 1006, ACK, b"world")
    assert ev == [Chunk(0, b"hello ", 1), Chunk(6, b"world", 2)]


def test_out_of_order_waits_for_the_hole() -> None:
    d = TcpDirection()
    d.push(0, 99, SYN, b"")
    assert d.push(1, 105, ACK, b"world") == []
    assert d.push(2, 100, ACK, b"hello") == [Chunk(0, b"hello", 2), Chunk(5, b"world", 1)]


def test_retransmission_and_overlap_keep_the_first_copy() -> None:
    d = TcpDirection()
    d.push(0, 0, SYN, b"")
    d.push(1, 1, ACK, b"abcd")
    assert d.push(2, 1, ACK, b"abcd") == []  # full retransmission
    assert d.push(3, 3, ACK, b"XXef") == [Chunk(4, b"ef", 3)]  # overlap: the first copy of "cd" wins
    assert d.retransmitted == 6


def test_gap_at_end_of_capture_is_reported_and_decoding_resumes() -> None:
    d = TcpDirection()
    d.push(0, 0, SYN, b"")
    d.push(1, 1, ACK, b"abc")
    assert d.push(2, 10, ACK, b"xyz") == []
    assert d.flush(2) == [Gap(3, 6, 2), Chunk(9, b"xyz", 2)]


def test_capture_starting_mid_connection() -> None:
    d = TcpDirection()
    assert d.push(7, 5_000_000, ACK, b"mid") == [Chunk(0, b"mid", 7)]
    assert d.push(8, 5_000_003, ACK, b"dle") == [Chunk(3, b"dle", 8)]


def test_sequence_wrap_around() -> None:
    d = TcpDirection()
    d.push(0, 0xFFFFFFFD, SYN, b"")
    ev = d.push(1, 0xFFFFFFFE, ACK, b"ab") + d.push(2, 0, ACK, b"cd")
    assert data_of(ev) == b"abcd"


@given(
    payload=st.binary(min_size=1, max_size=300),
    cuts=st.lists(st.integers(1, 299), max_size=12),
    order=st.randoms(use_true_random=False),
    dups=st.lists(st.integers(0, 20), max_size=5),
    isn=st.integers(0, 0xFFFFFFFF),
)
@settings(max_examples=300, deadline=None)
def test_any_segmentation_order_and_duplication_reassembles(
    payload: bytes, cuts: list[int], order: object, dups: list[int], isn: int
) -> None:
    points = sorted({c for c in cuts if c < len(payload)} | {0, len(payload)})
    segs = [(a, payload[a:b]) for a, b in pairwise(points)]
    segs += [segs[i % len(segs)] for i in dups]
    first = segs[0]
    rest = segs[1:]
    order.shuffle(rest)  # type: ignore[attr-defined]
    d = TcpDirection()
    d.push(0, isn, SYN, b"")
    events: list[Event] = []
    for n, (off, data) in enumerate([first, *rest], start=1):
        events += d.push(n, (isn + 1 + off) % (1 << 32), ACK, data)
    events += d.flush(99)
    assert data_of(events) == payload
    assert not any(isinstance(e, Gap) for e in events)
