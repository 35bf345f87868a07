"""TCP reassembly: order, retransmission, overlap, gaps, mid-connection starts, wrap-around."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from protoscope.captures import reassembly
from protoscope.captures.index import load
from protoscope.captures.reassembly import (
    MAX_OUT_OF_ORDER_BYTES,
    Chunk,
    Event,
    Gap,
    TcpDirection,
    packets_by_flow,
    planned_gaps,
)

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


def pushed_gaps(segments: list[tuple[int, int, bytes]]) -> tuple[list[tuple[int, Gap]], list[Gap]]:
    """What TcpDirection reports segment by segment and at the flush."""
    d = TcpDirection()
    at_push = [(n, e) for n, (seq, flags, data) in enumerate(segments) for e in d.push(n, seq, flags, data)]
    gaps = [(n, e) for n, e in at_push if isinstance(e, Gap)]
    return gaps, [e for e in d.flush(len(segments)) if isinstance(e, Gap)]


def planned(segments: list[tuple[int, int, bytes]]) -> tuple[list[tuple[int, Gap]], list[Gap]]:
    seq = np.array([s for s, _, _ in segments], np.uint32)
    flags = np.array([f for _, f, _ in segments], np.uint8)
    length = np.array([len(d) for _, _, d in segments], np.int64)
    return planned_gaps(seq, flags, length)


@given(
    isn=st.integers(0, 0xFFFFFFFF),
    syn=st.booleans(),
    segments=st.lists(
        st.tuples(
            st.integers(-3000, 60_000),  # offset from the first byte: holes, overlaps, old data
            st.integers(0, 3000),
            st.sampled_from([ACK, ACK, ACK, SYN | ACK, 0x04, 0x01]),
        ),
        max_size=40,
    ),
)
@settings(max_examples=500, deadline=None)
def test_planned_gaps_are_the_gaps_push_reports(
    isn: int, syn: bool, segments: list[tuple[int, int, int]]
) -> None:
    segs = [(isn, SYN, b"")] if syn else []
    segs += [((isn + 1 + off) % (1 << 32), flags, b"x" * n) for off, n, flags in segments]
    assert planned(segs) == pushed_gaps(segs)


def test_planned_gaps_in_order_stream_over_many_wraps() -> None:
    segs = [(0xFFFF0000, SYN, b"")]
    seq = 0xFFFF0001
    for _ in range(5000):
        segs.append((seq % (1 << 32), ACK, b"y" * 1400))
        seq += 1400
    assert planned(segs) == ([], []) == pushed_gaps(segs)


def test_planned_gaps_holes_given_up_behind_the_out_of_order_limit() -> None:
    big = MAX_OUT_OF_ORDER_BYTES // 1400 + 2
    segs = [(0, SYN, b""), (1, ACK, b"a" * 100)] + [(2001 + k * 1400, ACK, b"b" * 1400) for k in range(big)]
    segs += [(0, ACK, b"late")] + [(2001 + k * 1400, ACK, b"c" * 1400) for k in range(big, big + 50)]
    at_push, at_flush = pushed_gaps(segs)
    assert [(g.offset, g.missing) for _, g in at_push] == [(100, 1900)]  # given up mid-stream
    assert at_flush == []
    assert planned(segs) == (at_push, at_flush)


@given(
    holes=st.lists(st.tuples(st.integers(0, 400), st.integers(1, 5000)), max_size=6),
    late=st.lists(st.integers(0, 400), max_size=6),
)
@settings(max_examples=100, deadline=None)
def test_planned_gaps_with_lost_and_late_segments_in_long_streams(
    holes: list[tuple[int, int]], late: list[int]
) -> None:
    """Long streams whose holes outlast MAX_OUT_OF_ORDER_BYTES (with a smaller limit, for speed)."""
    lost = {at for at, _ in holes}
    segs = [(7, SYN, b"")]
    later: list[tuple[int, int, bytes]] = []
    for k in range(400):
        seg = (8 + k * 1000, ACK, b"p" * 1000)
        if k in lost:
            continue
        if k in late:
            later.append(seg)
            continue
        segs.append(seg)
        if later and k % 37 == 0:
            segs.append(later.pop(0))
    segs += later
    original = reassembly.MAX_OUT_OF_ORDER_BYTES
    reassembly.MAX_OUT_OF_ORDER_BYTES = 20_000
    try:
        assert planned(segs) == pushed_gaps(segs)
    finally:
        reassembly.MAX_OUT_OF_ORDER_BYTES = original


def test_planned_gaps_equal_push_on_every_tcp_flow_of_the_corpus(public: list[Path]) -> None:
    checked = 0
    for path in public:
        ix = load(path)
        by_flow = packets_by_flow(ix.flow, len(ix.flows))
        for flow in ix.flows:
            if flow.transport != "tcp":
                continue
            packets = by_flow[flow.id]
            for side in (0, 1):
                mine = packets[ix.direction[packets] == side]
                segs = [(int(ix.tcp_seq[i]), int(ix.tcp_flags[i]), ix.payload(i)) for i in mine.tolist()]
                plan = planned_gaps(ix.tcp_seq[mine], ix.tcp_flags[mine], ix.captured_payload_len(mine))
                assert plan == pushed_gaps(segs), (path.name, flow.id, side)
                checked += 1
        ix.close()
    assert checked > 150
