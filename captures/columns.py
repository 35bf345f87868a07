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
        self._released = 0

    def release_below(self, end: int) -> None:
        """Drop the mapped file's pages below byte `end` from our resident set (an mmap only).
        A pass that reads a 230 MB capture front to back would otherwise hold all of it; the
        pages stay in the OS page cache and come back on the next read."""
        end -= end % mmap.PAGESIZE
        madvise = getattr(self.buffer, "madvise", None)
        if madvise is None or end <= self._released:
            return
        madvise(mmap.MADV_DONTNEED, self._released, end - self._released)
        self._released = end

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


class Window:
    """The first `width` bytes at each of `offsets`, gathered in one pass over the buffer.

    Reading a field of every packet straight from a capture costs a cache miss per packet per
    field (~20 ms a field per million packets here); copying the first 48 bytes of every packet
    once costs ~30 ms, and each field read from that copy ~4 ms. Reads that reach past `width`
    go back to the buffer.
    """

    def __init__(self, cols: ByteColumns, offsets: Offsets, width: int, release: bool = True) -> None:
        self._cols = cols
        self._offsets = offsets
        self.width = width
        n = len(offsets)
        fits = offsets <= cols.size - width
        rows = np.zeros((0, width), np.uint8)
        if cols.size >= width:  # every window of `width` bytes, one per byte offset
            shape = (cols.size - width + 1, width)
            rows = np.ndarray(shape=shape, dtype=np.uint8, buffer=cols.buffer, strides=(1, 1))
        if fits.all():
            data = np.empty((n, width), np.uint8)
            ascending = n < 2 or bool((offsets[1:] >= offsets[:-1]).all())
            for a in range(0, n, GATHER_CHUNK):
                b = min(n, a + GATHER_CHUNK)
                data[a:b] = rows[offsets[a:b]]
                if release and ascending:  # records in file order: the pages below the next one are done
                    cols.release_below(int(offsets[b]) if b < n else cols.size)
        else:  # the last records of a file may be shorter than the window: pad with zeros
            data = np.zeros((n, width), np.uint8)
            inside = np.flatnonzero(fits)
            data[inside] = rows[offsets[inside]]
            for i in np.flatnonzero(~fits).tolist():
                tail = cols.u8[int(offsets[i]) : int(offsets[i]) + width]
                data[i, : len(tail)] = tail
        self._copy = ByteColumns(data.reshape(-1))
        self._base = np.arange(n, dtype=np.int64) * width

    def read(self, rows: slice | Offsets, rel: Offsets | int, dtype: str) -> UIntArray:
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
