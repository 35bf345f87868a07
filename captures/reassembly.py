"""Per-direction TCP reassembly for a passive observer.

Bytes come out in sequence order, each chunk tagged with the frame that carried it. The first copy
of a byte wins (as in Wireshark); retransmissions and overlaps are trimmed; segments that arrive
early wait until the hole before them fills. A hole that never fills becomes a `Gap` with the
missing byte count when the waiting data passes `MAX_OUT_OF_ORDER_BYTES` or the stream ends, and
the bytes after it are delivered, so decoding resumes after the gap.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from .flows import TCP_SYN

if TYPE_CHECKING:
    from .index import PacketIndex

MAX_OUT_OF_ORDER_BYTES = 4 * 1024 * 1024
"""Bytes held back behind a hole, per flow and direction, before the hole is declared a gap (the
`Gap` says `forced`). Each held segment counts HELD_SEGMENT_OVERHEAD more than its payload."""
HELD_SEGMENT_OVERHEAD = 168
"""What a held segment costs beyond its payload: its heap entry with two ints (136 bytes, measured
with tracemalloc) and its bytes object's header (33). Counted against MAX_OUT_OF_ORDER_BYTES so that
one-byte segments behind a hole are bounded like large ones: 4 MiB of one-byte segments would
otherwise hold 4M entries, about 700 MB."""
SEQ_MOD = 1 << 32
TCP_FIN = 0x01
TCP_RST = 0x04


@dataclass(frozen=True, slots=True)
class Chunk:
    """In-order stream bytes from one segment."""

    offset: int
    """Stream offset of the first byte (0 is the first byte after the SYN, or the first seen)."""
    data: bytes
    frame: int
    """0-based packet that carried these bytes."""


@dataclass(frozen=True, slots=True)
class Gap:
    """Bytes the capture never saw."""

    offset: int
    missing: int
    frame: int
    """0-based packet at which the gap was noticed."""
    forced: bool = False
    """Given up because MAX_OUT_OF_ORDER_BYTES waited behind the hole (else: the stream ended)."""


Event = Chunk | Gap


class TcpDirection:
    """Reassembles the bytes one endpoint sends."""

    __slots__ = ("_base", "_heap", "_next", "_pending_bytes", "retransmitted")

    def __init__(self) -> None:
        self._base: int | None = None
        """Absolute sequence number of stream offset 0."""
        self._next = 0
        """Absolute (unwrapped) sequence number of the next byte expected."""
        self._heap: list[tuple[int, int, bytes]] = []
        self._pending_bytes = 0
        self.retransmitted = 0
        """Bytes seen again (retransmissions and overlaps), for statistics."""

    @property
    def offset(self) -> int:
        """Stream offset of the next byte to deliver."""
        return 0 if self._base is None else self._next - self._base

    @property
    def settled(self) -> bool:
        """The stream has started and no segment waits behind a hole."""
        return self._base is not None and not self._heap

    def _unwrap(self, seq: int) -> int:
        delta = (seq - self._next + SEQ_MOD // 2) % SEQ_MOD - SEQ_MOD // 2
        return self._next + delta

    def push(self, frame: int, seq: int, flags: int, payload: bytes) -> list[Event]:
        """Feed one segment; return the stream events it releases."""
        if self._base is None:
            if flags & TCP_SYN:
                self._base = self._next = seq + 1
                if not payload:
                    return []
                seq += 1
            elif not payload:
                return []
            else:
                self._base = self._next = seq
        elif flags & TCP_SYN:
            seq += 1  # data on a (retransmitted) SYN starts after it
        if not payload:
            return []
        start = self._unwrap(seq)
        end = start + len(payload)
        if end <= self._next:
            self.retransmitted += len(payload)
            return []
        out: list[Event] = []
        if start <= self._next:
            cut = self._next - start
            self.retransmitted += cut
            out.append(Chunk(self._next - self._base, payload[cut:], frame))
            self._next = end
            self._drain(out)
        else:
            heapq.heappush(self._heap, (start, frame, payload))
            self._pending_bytes += len(payload) + HELD_SEGMENT_OVERHEAD
            if self._pending_bytes > MAX_OUT_OF_ORDER_BYTES:
                self._skip_hole(frame, out, forced=True)
        return out

    def flush(self, frame: int) -> list[Event]:
        """The stream ended (or the capture did): give up on holes, deliver what waits."""
        out: list[Event] = []
        while self._heap:
            self._skip_hole(frame, out)
        return out

    def _skip_hole(self, frame: int, out: list[Event], forced: bool = False) -> None:
        start = self._heap[0][0]
        assert self._base is not None
        if start > self._next:
            out.append(Gap(self._next - self._base, start - self._next, frame, forced))
            self._next = start
        self._drain(out)

    def _drain(self, out: list[Event]) -> None:
        assert self._base is not None
        while self._heap and self._heap[0][0] <= self._next:
            start, frame, payload = heapq.heappop(self._heap)
            self._pending_bytes -= len(payload) + HELD_SEGMENT_OVERHEAD
            end = start + len(payload)
            if end <= self._next:
                self.retransmitted += len(payload)
                continue
            cut = self._next - start
            self.retransmitted += cut
            out.append(Chunk(self._next - self._base, payload[cut:], frame))
            self._next = end


def packets_by_flow(flow: npt.NDArray[np.int32], nflows: int) -> list[npt.NDArray[np.int64]]:
    """Packet indexes of each flow, in capture order (one stable sort for all flows)."""
    order = np.argsort(flow, kind="stable")
    counts = np.bincount(flow[order][flow[order] >= 0], minlength=nflows)
    skip = int(np.count_nonzero(flow < 0))
    bounds = np.cumsum(counts)
    out: list[npt.NDArray[np.int64]] = []
    start = skip
    for end in bounds.tolist():
        out.append(order[start : skip + end].astype(np.int64))
        start = skip + end
    return out


def follow(index: PacketIndex, packets: npt.NDArray[np.int64]) -> Iterator[tuple[int, Event]]:
    """Reassemble a TCP flow's packets; yield (direction, event) in the order they release.

    Direction 0 is client -> server.
    """
    dirs = (TcpDirection(), TcpDirection())
    last = 0
    for i in packets.tolist():
        d = int(index.direction[i])
        for ev in dirs[d].push(i, int(index.tcp_seq[i]), int(index.tcp_flags[i]), index.payload(i)):
            yield d, ev
        last = i
    for d in (0, 1):
        for ev in dirs[d].flush(last):
            yield d, ev


HALF = SEQ_MOD // 2
_ZEROS = bytes(1 << 16)


def positions(
    seq: npt.NDArray[np.uint32], flags: npt.NDArray[np.uint8], length: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Where each segment's data starts and ends, unwrapped next to the data segment before it (a
    segment without data gets the position of the one before). push() unwraps against the next byte
    it expects instead: `in_order_run` checks that both agree wherever it relies on these."""
    syn = (flags & TCP_SYN) != 0
    raw = seq.astype(np.int64) + syn  # data on a SYN starts after it
    carries = np.flatnonzero(syn | (length > 0))
    if len(carries) == 0:
        return raw, raw.copy()
    at = raw[carries]
    at[1:] = at[0] + np.cumsum((np.diff(at) + HALF) % SEQ_MOD - HALF)
    owner = np.maximum(np.searchsorted(carries, np.arange(len(seq)), side="right") - 1, 0)
    start = at[owner]
    start[carries] = at
    return start, start + length


def planned_gaps(
    seq: npt.NDArray[np.uint32], flags: npt.NDArray[np.uint8], length: npt.NDArray[np.int64]
) -> tuple[list[tuple[int, Gap]], list[Gap]]:
    """The gaps `TcpDirection` reports for one direction's segments, worked out without their bytes:
    (position of the segment whose push reports it, gap), and the gaps the final flush reports.

    Segments are in capture order; `length` is the captured payload length (what `push` is given);
    a gap's `frame` is the segment's position. Runs of segments that arrive in order (the common case:
    no hole to wait behind) are checked and skipped with numpy; only where a hole is open does a
    `TcpDirection` take the segments one by one (given zeros of the right length), so the result is
    push's own, at a cost that grows with the out-of-order part only.
    """
    n = len(seq)
    start, end = positions(seq, flags, length)
    d = TcpDirection()
    gaps: list[tuple[int, Gap]] = []
    k = 0
    while k < n:
        if d.settled:
            k = in_order_run(d, start, end, length, k)
            if k >= n:
                break
        events = d.push(k, int(seq[k]), int(flags[k]), _ZEROS[: int(length[k])])
        gaps += [(k, e) for e in events if isinstance(e, Gap)]
        k += 1
    return gaps, [e for e in d.flush(n) if isinstance(e, Gap)]


def in_order_run(
    d: TcpDirection,
    start: npt.NDArray[np.int64],
    end: npt.NDArray[np.int64],
    length: npt.NDArray[np.int64],
    k: int,
    until: int | None = None,
) -> int:
    """Take, as `d.push` would, the segments from `k` on that it would deliver at once (or drop as
    already seen), up to the first that would wait behind a hole or, with `until`, bring bytes past
    that stream offset; return that segment's position. `d` must be `settled`. The bytes are not
    delivered: this is for segments nobody reads. Windows double in size, so the work is in
    proportion to the run found, however often holes open."""
    assert d._base is not None
    window = 64
    while k < len(start):
        # Our unwrapped positions and push()'s differ by a multiple of 2**32: align them on `next`.
        delta = d._next - int(start[k])
        shift = delta - ((delta + HALF) % SEQ_MOD - HALF)
        stop_at = min(len(start), k + window)
        s, e = start[k:stop_at] + shift, end[k:stop_at] + shift
        has_data = length[k:stop_at] > 0
        reach = np.maximum(np.maximum.accumulate(np.where(has_data, e, d._next)), d._next)
        before = np.concatenate(([d._next], reach[:-1]))
        # push() unwraps a start against `before` and delivers (or drops) a segment starting at or
        # before it; one starting later waits behind a hole.
        ok = ~has_data | ((s <= before) & (s - before >= -HALF))
        if until is not None:
            ok &= ~has_data | (e <= d._base + until)
        run = len(ok) if bool(ok.all()) else int(np.argmin(ok))
        if run:
            d._next = int(reach[run - 1])
        k += run
        if run < len(ok):
            return k
        window *= 2
    return k
