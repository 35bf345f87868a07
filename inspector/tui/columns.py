"""Packet-list columns: their widths, sized by content, and how a value fits its cell.

Widths come from the values seen (the rows painted so far and a sample of the capture), capped
per kind, and only grow: a column that narrowed while scrolling would make the list jump. Info
takes what is left, down to MIN_INFO cells (the rest of it is a → away) before an endpoint column
shrinks. Addresses keep their end and their port whole: a long address loses its start, never
the port (a user tells `127.0.0.1:50051` from `127.0.0.1:50052` by the port, and hosts of one
network by the address's last digits): `…0.0.1:40450`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..config import BUILTIN_FIELDS, ColumnSpec

ELLIPSIS = "…"
SEPARATOR = 1
"""Cells between two columns."""
MIN_INFO = 8
"""Info gives up cells to this before an endpoint column shrinks (its title and a few cells: the
rest of the line is reached by scrolling sideways)."""
MIN_ENDPOINT = 12
"""An endpoint column is never cut below this (`…7334]:50051` still shows the port)."""
CAPS = {
    "frame.number": 8,
    "source": 45,
    "destination": 45,
    "protocol": 10,
    "length": 6,
}
"""Widest a builtin column gets; time formats are fixed widths; other fields get FIELD_CAP."""
FIELD_CAP = 24
INFO_CAP = 400
"""Info beyond the screen is reached by scrolling sideways, up to this many cells."""
BUILTIN = frozenset(BUILTIN_FIELDS)
"""Columns the list computes itself (no worker)."""
RIGHT_ALIGNED = frozenset({"frame.number", "time", "length"})
ENDPOINTS = frozenset({"source", "destination"})
TIME_TITLES = {
    "relative": "Time",
    "delta": "Delta",
    "delta_displayed": "Delta shown",
    "absolute": "Time of day",
    "utc": "UTC time",
    "epoch": "Epoch time",
}
"""The Time column's header per format, so the header says which one is shown."""


@dataclass(slots=True)
class Column:
    """One shown column and its width (cells)."""

    spec: ColumnSpec
    width: int = 0
    seen: int = 0
    """Widest value seen so far."""

    @property
    def right(self) -> bool:
        return self.spec.field in RIGHT_ALIGNED

    @property
    def is_info(self) -> bool:
        return self.spec.field == "info"

    def see(self, text: str) -> None:
        if len(text) > self.seen:
            self.seen = len(text)

    def cap(self) -> int:
        return CAPS.get(self.spec.field, FIELD_CAP) if self.spec.field != "time" else 30


SHORT_TITLES = {"Protocol": "Proto", "Length": "Len", "Destination": "Dest", "Source": "Src"}
"""Headers that do not widen their column: shown whole when the values leave room."""


def title(spec: ColumnSpec, time_format: str) -> str:
    if spec.field == "time":
        return TIME_TITLES.get(time_format, spec.title)
    return spec.title


def header(spec: ColumnSpec, time_format: str, width: int) -> str:
    """The title in `width` cells: whole, else its short form, else cut."""
    text = title(spec, time_format)
    if len(text) > width:
        text = SHORT_TITLES.get(text, text)
    return fit(text, width)


def _min_title(spec: ColumnSpec, time_format: str) -> int:
    text = title(spec, time_format)
    return len(SHORT_TITLES.get(text, text))


def size(columns: Sequence[Column], total: int, time_format: str) -> int:
    """Set every column's width for a list `total` cells wide; returns the line's full width
    (more than `total` when the list must scroll sideways). Info, wherever it is, takes the rest;
    endpoint columns shrink (to MIN_ENDPOINT) before Info goes under MIN_INFO."""
    for c in columns:
        least = _min_title(c.spec, time_format)
        want = max(c.seen, least)
        c.width = want if c.is_info else min(want, max(c.cap(), least))
    fixed = [c for c in columns if not c.is_info]
    info = [c for c in columns if c.is_info]
    used = sum(c.width for c in fixed) + SEPARATOR * max(0, len(columns) - 1)
    room = total - used - (MIN_INFO if info else 0)
    if room < 0:
        shrinkable = [c for c in fixed if c.spec.field in ENDPOINTS and c.width > MIN_ENDPOINT]
        while room < 0 and shrinkable:
            widest = max(shrinkable, key=lambda c: c.width)
            widest.width -= 1
            room += 1
            if widest.width <= MIN_ENDPOINT:
                shrinkable.remove(widest)
        used = sum(c.width for c in fixed) + SEPARATOR * max(0, len(columns) - 1)
    for c in info:
        c.width = max(MIN_INFO, total - used, min(c.seen, INFO_CAP))
        used += c.width
    return max(total, used) if info else used


def fit(text: str, width: int, endpoint: bool = False) -> str:
    """`text` in at most `width` cells: an endpoint loses the start of its address (its end and
    the port stay), anything else its end."""
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    if endpoint:
        address, sep, port = text.rpartition(":")
        if sep and port.isdigit() and len(port) + 3 <= width:
            keep = width - len(port) - 2  # the ellipsis and the colon
            return ELLIPSIS + address[len(address) - keep :] + ":" + port
        return ELLIPSIS + text[len(text) - (width - 1) :]
    return text[: width - 1] + ELLIPSIS


def cell(text: str, column: Column) -> str:
    """`text` fitted and aligned in `column`'s width."""
    shown = fit(text, column.width, column.spec.field in ENDPOINTS)
    return shown.rjust(column.width) if column.right else shown.ljust(column.width)


def line(texts: Sequence[str], columns: Sequence[Column]) -> str:
    """One row: the cells joined by SEPARATOR blanks."""
    return (" " * SEPARATOR).join(cell(t, c) for t, c in zip(texts, columns, strict=True))
