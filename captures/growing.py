"""Columns that grow by appending: the storage of an index whose capture is still being written.

A capture file is one big append and a live capture many small ones (DESIGN.md, "One pipeline,
growing input"), so every per-packet column is kept here: each column has room for more rows than it
holds, and when a read brings more than that room, the column moves to twice its room (one copy of
what it holds). Appending m rows then costs O(m) amortised whatever the index's length, where
`np.concatenate` on each read would copy the whole index every second of a live capture. Readers
see `view(name)`: the first `len(self)` rows, whose values never change once appended.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt


class GrowingColumns:
    """Named 1-D numpy columns of one length, grown by `append`."""

    __slots__ = ("_length", "_store")

    def __init__(self) -> None:
        self._store: dict[str, npt.NDArray[Any]] = {}
        self._length = 0

    def __len__(self) -> int:
        return self._length

    def append(self, columns: Mapping[str, npt.NDArray[Any]]) -> None:
        """Append the rows of `columns` (each of one length; the same names on every call).

        The first call takes its arrays as they are, without a copy: indexing a whole file is one
        append and pays nothing for the room it would need to grow. Later calls never write into
        an array they did not allocate, so the caller's arrays stay as they were."""
        if not self._store:
            self._store = dict(columns)
            self._length = len(next(iter(columns.values()))) if columns else 0
            return
        added = len(next(iter(columns.values())))
        need = self._length + added
        for name, values in columns.items():
            store = self._store[name]
            if need > len(store):
                grown = np.empty(max(need, 2 * len(store)), store.dtype)
                grown[: self._length] = store[: self._length]
                self._store[name] = store = grown
            store[self._length : need] = values
        self._length = need

    def view(self, name: str) -> npt.NDArray[Any]:
        """Column `name`'s rows so far (a view: later appends do not change it)."""
        return self._store[name][: self._length]
