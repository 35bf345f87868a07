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
"""Bytes held back behind a hole before the hole is declared a gap."""
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
            self._pending_bytes += len(payload)
            if self._pending_bytes > MAX_OUT_OF_ORDER_BYTES:
                self._skip_hole(frame, out)
        return out

    def flush(self, frame: int) -> list[Event]:
        """The stream ended (or the capture did): give up on holes, deliver what waits."""
        out: list[Event] = []
        while self._heap:
            self._skip_hole(frame, out)
        return out

    def _skip_hole(self, frame: int, out: list[Event]) -> None:
        start = self._heap[0][0]
        assert self._base is not None
        if start > self._next:
            out.append(Gap(self._next - self._base, start - self._next, frame))
            self._next = start
        self._drain(out)

    def _drain(self, out: list[Event]) -> None:
        assert self._base is not None
        while self._heap and self._heap[0][0] <= self._next:
            start, frame, payload = heapq.heappop(self._heap)
            self._pending_bytes -= len(payload)
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
