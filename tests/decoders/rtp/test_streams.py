"""The streams analysis fed in bulk (numpy over RtpColumns) equals the same packets fed one by one:
loss, duplicates, reordering, sequence wraps, max delta, jitter and the per-second series; mean
jitter is Wireshark's running mean over the packets max jitter counts, never above max jitter."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protoscope.decoders.api import RtpColumns
from protoscope.decoders.rtp.streams import MAX_SEEN, StreamAnalysis, _jitter, _running_mean

FLOATS = ("max_delta_ms", "max_jitter_ms", "mean_jitter_ms")


def columns(packets: list[tuple[int, int, int, float, int]], clock: int) -> RtpColumns:
    """packets: (ssrc, seq, timestamp, time, payload type), one pair of endpoints per ssrc; PT 101
    plays telephone-event (no clock), and every seventh packet has the marker bit."""
    ssrcs = sorted({p[0] for p in packets})
    return RtpColumns(
        time=np.array([p[3] for p in packets], np.float64),
        endpoints=np.array([ssrcs.index(p[0]) for p in packets], np.int32),
        pairs=[(f"10.0.0.{k}:5000", "10.0.0.9:6000") for k in range(len(ssrcs))],
        ssrc=np.array([p[0] for p in packets], np.uint32),
        seq=np.array([p[1] for p in packets], np.uint16),
        timestamp=np.array([p[2] for p in packets], np.uint32),
        payload_type=np.array([p[4] for p in packets], np.uint8),
        marker=np.array([k % 7 == 3 for k in range(len(packets))], np.bool_),
        clock=np.array([0 if p[4] == 101 else clock for p in packets], np.int64),
    )


def both(cols: RtpColumns) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    bulk = StreamAnalysis()
    bulk.feed_rtp(cols)
    one = StreamAnalysis()
    for i in range(len(cols)):
        src, dst = cols.pairs[int(cols.endpoints[i])]
        clock = int(cols.clock[i]) or None
        one.packet(
            int(cols.ssrc[i]),
            src,
            dst,
            int(cols.payload_type[i]),
            int(cols.seq[i]),
            int(cols.timestamp[i]),
            bool(cols.marker[i]),
            clock,
            float(cols.time[i]),
        )
    return bulk.rows(), one.rows()


def assert_same(bulk: list[dict[str, object]], one: list[dict[str, object]]) -> None:
    assert len(bulk) == len(one)
    for b, o in zip(bulk, one, strict=True):
        for k in o:
            if k in FLOATS:
                assert b[k] == pytest.approx(o[k], abs=0.0011), k
            elif k == "jitter_ms_per_second":
                assert b[k] == pytest.approx(o[k], abs=0.0011), k
            else:
                assert b[k] == o[k], k


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[tuple[int, int, int, float, int]], int]:
    clock = draw(st.sampled_from([0, 8000, 48000, 90000]))
    out: list[tuple[int, int, int, float, int]] = []
    for ssrc in draw(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=3, unique=True)):
        seq = draw(st.integers(0, 0xFFFF))
        ts = draw(st.integers(0, 2**32 - 1))
        t = draw(st.floats(1e9, 2e9))
        for _ in range(draw(st.integers(1, 120))):
            action = draw(st.sampled_from(["next"] * 6 + ["gap", "back", "dup", "jump", "late"]))
            if action == "gap":
                seq += draw(st.integers(2, 40))
            elif action == "back":
                seq -= draw(st.integers(1, 5))
            elif action == "jump":
                seq += draw(st.integers(20000, 40000))
            elif action != "dup":
                seq += 1
            ts = (ts + draw(st.sampled_from([160, 960, 3000, 2**32 - 5]))) % 2**32
            t += draw(st.floats(-0.5, 2.5)) if action == "late" else draw(st.floats(0.0, 0.05))
            out.append((ssrc, seq & 0xFFFF, ts, t, draw(st.sampled_from([0, 8, 96, 111, 13, 101]))))
    order = draw(st.permutations(range(len(out)))) if draw(st.booleans()) else range(len(out))
    mixed = [out[i] for i in order] if len({p[0] for p in out}) > 1 else out
    return sorted(mixed, key=lambda p: p[3]) if draw(st.booleans()) else mixed, clock


@settings(max_examples=300, deadline=None)
@given(streams())
def test_bulk_equals_packet_by_packet(case: tuple[list[tuple[int, int, int, float, int]], int]) -> None:
    packets, clock = case
    assert_same(*both(columns(packets, clock)))


def test_long_stream_with_wraps_losses_and_a_full_seen_set() -> None:
    """Past MAX_SEEN distinct numbers duplicates are no longer remembered: both ways agree."""
    rng = np.random.default_rng(3)
    n = MAX_SEEN + 20000
    seq = np.arange(n) + 60000
    drop = rng.random(n) < 0.01
    seq = seq[~drop]
    late = MAX_SEEN + 8000  # a number first seen after the set was full: its copy is not caught
    seq = np.insert(seq, [100, 5000, MAX_SEEN + 5000, late + 100], [seq[99], seq[4000], seq[10], seq[late]])
    t = 1.7e9 + np.arange(len(seq)) * 0.02 + rng.normal(0, 0.002, len(seq))
    packets = [(7, int(s) & 0xFFFF, (int(s) * 160) % 2**32, float(x), 0) for s, x in zip(seq, t, strict=True)]
    bulk, one = both(columns(packets, 8000))
    assert_same(bulk, one)
    assert bulk[0]["sequence_wraps"] >= 1 and bulk[0]["duplicates"] == 3


def test_jitter_filter_matches_the_recursion() -> None:
    d = np.random.default_rng(1).random(1000) * 500
    j, want = 0.0, []
    for x in d.tolist():
        j = (15 * j + x) / 16
        want.append(j)
    assert np.allclose(_jitter(d), want, rtol=1e-12, atol=1e-9)
    assert len(_jitter(np.zeros(0))) == 0


@settings(max_examples=200, deadline=None)
@given(streams())
def test_mean_jitter_never_above_max(case: tuple[list[tuple[int, int, int, float, int]], int]) -> None:
    packets, clock = case
    for rows in both(columns(packets, clock)):
        for row in rows:
            assert 0 <= row["mean_jitter_ms"] <= row["max_jitter_ms"]  # type: ignore[operator]


def test_mean_jitter_is_the_mean_when_every_packet_counts() -> None:
    """PCMU every 20 ms, arrivals off by +2, 0, +2, 0 ms: |D| = 2 each time, so J goes 2/16,
    J (15/16) + 2/16, ... and the mean is the plain mean of those J over packets 2..5."""
    arrivals = [0.0, 0.022, 0.040, 0.062, 0.080]
    one = StreamAnalysis()
    for k, t in enumerate(arrivals):
        one.packet(7, "a:1", "b:2", 0, 100 + k, 160 * k, False, 8000, t)
    js, j = [], 0.0
    for _ in range(4):
        j = (15 * j + 2) / 16
        js.append(j)
    row = one.rows()[0]
    assert row["mean_jitter_ms"] == pytest.approx(sum(js) / 4, abs=0.0005)
    assert row["max_jitter_ms"] == pytest.approx(js[-1], abs=0.0005)


def test_mean_jitter_weights_as_wireshark_when_packets_are_left_out() -> None:
    """The third packet has the marker bit: it moves J but is not counted. Wireshark's update at
    the n-th packet (n packets before it) is m = (m (n - 1) + J) / n, so the second counted packet
    weighs 1/3 and the first 2/3 · 1/1: not the plain mean of the two."""
    one = StreamAnalysis()
    times = [0.0, 0.022, 0.040, 0.062]
    for k, t in enumerate(times):
        one.packet(7, "a:1", "b:2", 0, 100 + k, 160 * k, k == 2, 8000, t)
    j1 = 2 / 16
    j2 = (15 * j1 + 2) / 16
    j3 = (15 * j2 + 2) / 16
    assert one.rows()[0]["mean_jitter_ms"] == pytest.approx(round(j1 * 2 / 3 + j3 / 3, 3))


def test_running_mean_matches_the_updates() -> None:
    rng = np.random.default_rng(5)
    before = np.sort(rng.choice(np.arange(1, 5000), 800, replace=False))
    values = rng.random(800) * 40
    m = 0.0
    for v, n in zip(values.tolist(), before.tolist(), strict=True):
        m += (v - m) / n
    assert _running_mean(values, before) == pytest.approx(m, rel=1e-9)
    assert _running_mean(np.zeros(0), np.zeros(0, np.int64)) == 0.0
