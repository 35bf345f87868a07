"""Vectorised reads of fixed-width integers at arbitrary offsets of a byte buffer.

The columnar index reads the same header field out of every packet at once. A numpy fancy
index over single bytes costs ~36 ms per byte per million packets; viewing the buffer as
`<u4`/`>u2`/... at each of the possible alignments and indexing those views costs ~21 ms for a
whole 4-byte field (measured on this machine, 1M packets). This module hides that trick.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Offsets = npt.NDArray[np.int64]
UIntArray = npt.NDArray[Any]


class ByteColumns:
    """Reads integer columns out of one buffer (an mmap or bytes) by offset arrays."""

    def __init__(self, buf: Any) -> None:
        self._buf = buf
        self.size = len(buf)
        self.u8: npt.NDArray[np.uint8] = (
            np.frombuffer(buf, dtype=np.uint8) if self.size else np.zeros(0, np.uint8)
        )
        self._views: dict[tuple[str, int], npt.NDArray[Any]] = {}

    def _view(self, dtype: str, k: int) -> npt.NDArray[Any]:
        key = (dtype, k)
        view = self._views.get(key)
        if view is None:
            width = np.dtype(dtype).itemsize
            count = max(0, (self.size - k) // width)
            view = (
                np.frombuffer(self._buf, dtype=dtype, count=count, offset=k) if count else np.zeros(0, dtype)
            )
            self._views[key] = view
        return view

    def read(self, offsets: Offsets, dtype: str) -> UIntArray:
        """Return the integer of `dtype` (e.g. '>u2', '<u4') found at each offset.

        Every `offset + width` must lie inside the buffer; callers check lengths first.
        """
        dt = np.dtype(dtype)
        width = dt.itemsize
        out: npt.NDArray[Any] = np.empty(len(offsets), dtype=dt.newbyteorder("="))
        if len(offsets) == 0:
            return out
        if width == 1:
            out[:] = self.u8[offsets]
            return out
        shift = width.bit_length() - 1
        phase = offsets & (width - 1)
        first = int(phase[0])
        if (phase == first).all():  # one alignment (constant-length records): one gather
            out[:] = self._view(dtype, first)[(offsets - first) >> shift]
            return out
        for k in range(width):
            sel = phase == k
            if sel.any():
                out[sel] = self._view(dtype, k)[(offsets[sel] - k) >> shift]
        return out
