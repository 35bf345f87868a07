"""Vectorised reads of fixed-width integers at arbitrary offsets of a byte buffer.

The columnar index reads the same header field out of every packet at once. A numpy fancy index
over single bytes costs ~36 ms per byte per million packets. Instead the buffer is viewed as an
array of `<u4`/`>u2`/... with a stride of one byte (every offset is an element, aligned or not),
and one fancy index over that view reads a whole field: ~18 ms per million whatever the width
and the mix of alignments (measured on this machine).
"""

from __future__ import annotations

import mmap
from typing import Any

import numpy as np
import numpy.typing as npt

Offsets = npt.NDArray[np.int64]
UIntArray = npt.NDArray[Any]
GATHER_CHUNK = 1 << 16
"""Rows a Window gathers before it lets go of the file pages it has read past."""


class ByteColumns:
    """Reads integer columns out of one buffer (an mmap or bytes) by offset arrays."""

    def __init__(self, buf: Any) -> None:
        self.buffer = buf
        self.size = len(buf)
        self.u8: npt.NDArray[np.uint8] = (
            np.frombuffer(buf, dtype=np.uint8) if self.size else np.zeros(0, np.uint8)
        )
        self._views: dict[str, npt.NDArray[Any]] = {}

    def release(self, start: int, end: int) -> int:
        """Drop the mapped file's pages in [start, end) from our resident set (an mmap only), and
        return where the next release should start. A pass that reads a 230 MB capture front to
        back would otherwise hold all of it; the pages stay in the OS page cache and come back on
        the next read."""
        end -= end % mmap.PAGESIZE
        start -= start % mmap.PAGESIZE
        madvise = getattr(self.buffer, "madvise", None)
        if madvise is None or end <= start:
            return start
        madvise(mmap.MADV_DONTNEED, start, end - start)
        return end

    def _view(self, dtype: str) -> npt.NDArray[Any]:
        view = self._views.get(dtype)
        if view is None:
            count = max(0, self.size - np.dtype(dtype).itemsize + 1)
            if count:
                view = np.ndarray(shape=(count,), dtype=dtype, buffer=self.buffer, strides=(1,))
            else:
                view = np.zeros(0, dtype)
            self._views[dtype] = view
        return view

    def read(self, offsets: Offsets, dtype: str) -> UIntArray:
        """Return the integer of `dtype` (e.g. '>u2', '<u4') found at each offset, in native order.

        Every `offset + width` must lie inside the buffer; callers check lengths first.
        """
        dt = np.dtype(dtype)
        return self._view(dtype)[offsets].astype(dt.newbyteorder("="), copy=False)


def gather(cols: ByteColumns, offsets: Offsets, width: int, release: bool = False) -> npt.NDArray[np.uint8]:
    """The `width` bytes at each offset as rows (zero-padded past the end of the buffer);
    `release`: let go of the mapped pages read past, chunk by chunk (offsets in file order)."""
    n = len(offsets)
    fits = offsets <= cols.size - width
    rows = np.zeros((0, width), np.uint8)
    if cols.size >= width:  # every window of `width` bytes, one per byte offset
        shape = (cols.size - width + 1, width)
        rows = np.ndarray(shape=shape, dtype=np.uint8, buffer=cols.buffer, strides=(1, 1))
    if fits.all():
        data = np.empty((n, width), np.uint8)
        ascending = n < 2 or bool((offsets[1:] >= offsets[:-1]).all())
        released = int(offsets[0]) if n else 0
        for a in range(0, n, GATHER_CHUNK):
            b = min(n, a + GATHER_CHUNK)
            data[a:b] = rows[offsets[a:b]]
            if release and ascending:  # records in file order: the pages below the next one are done
                released = cols.release(released, int(offsets[b]) if b < n else cols.size)
        return data
    data = np.zeros((n, width), np.uint8)  # the last records of a file may be shorter: pad
    inside = np.flatnonzero(fits)
    data[inside] = rows[offsets[inside]]
    for i in np.flatnonzero(~fits).tolist():
        tail = cols.u8[int(offsets[i]) : int(offsets[i]) + width]
        data[i, : len(tail)] = tail
    return data


class Window:
    """The first `width` bytes at each of `offsets`, gathered in one pass over the buffer.

    Reading a field of every packet straight from a capture costs a cache miss per packet per
    field (~20 ms a field per million packets here); copying the first 48 bytes of every packet
    once costs ~30 ms, and each field read from that copy ~4 ms. Reads that reach past `width`
    go back to the buffer.
    """

    def __init__(
        self,
        cols: ByteColumns,
        offsets: Offsets,
        width: int,
        release: bool = True,
        data: npt.NDArray[np.uint8] | None = None,
    ) -> None:
        """`data`: the rows already gathered (by a scan that read them while their pages were in)."""
        self._cols = cols
        self._offsets = offsets
        self.width = width
        if data is None:
            data = gather(cols, offsets, width, release)
        self._copy = ByteColumns(data.reshape(-1))
        self._base = np.arange(len(offsets), dtype=np.int64) * width

    def read(
        self, rows: slice | Offsets, rel: npt.NDArray[np.signedinteger[Any]] | int, dtype: str
    ) -> UIntArray:
        """The `dtype` integer at `rel` bytes after the offset of each selected row."""
        width = np.dtype(dtype).itemsize
        r = rel[rows] if isinstance(rel, np.ndarray) else rel
        inside = np.asarray(r + width <= self.width)
        if inside.all():
            return self._copy.read(self._base[rows] + r, dtype)
        offsets = self._offsets[rows] + r
        if not inside.any():
            return self._cols.read(offsets, dtype)
        out = self._cols.read(offsets, dtype)  # rare: IPv4 options, deep VLAN stacks
        near = np.flatnonzero(inside)
        out[near] = self._copy.read((self._base[rows] + r)[near], dtype)
        return out
