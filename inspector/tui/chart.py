"""The I/O graph drawn in the terminal: one line per series in braille dots (2x4 dots a cell), with
a value axis on the left and a time axis below, as Wireshark's I/O Graph draws its lines.

`plot` is the drawing, a pure function of the values (tests check it dot by dot); `IoChart` is the
widget that shows an `IoGraph`, one bucket per column of dots, panning when the buckets do not fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.strip import Strip
from textual.widget import Widget

from ..stats import IoGraph

BRAILLE = 0x2800
"""U+2800: the empty braille cell; each of its 8 dots is one bit."""
DOT_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
"""Bit of the dot at (row, column) of a cell, rows top to bottom (Unicode's braille numbering)."""
SERIES_COLOURS = ("#5fafff", "#ff875f", "#87d75f", "#d787ff", "#ffd75f", "#5fd7d7")
"""One colour per series, in the order the lines were added (the first is "all packets")."""
AXIS = Style(color="grey50")
NICE_STEPS = (1.0, 2.0, 5.0)
"""Intervals are 1, 2 or 5 times a power of ten seconds, as Wireshark offers them."""

Cell = tuple[str, int | None]
"""A character and the series that drew it last (None: empty)."""


def nice_interval(seconds: float, buckets: int) -> float:
    """The smallest 1-2-5 interval that puts `seconds` in at most `buckets` buckets."""
    if seconds <= 0 or buckets <= 0:
        return 1.0
    raw = seconds / buckets
    exponent = math.floor(math.log10(raw))
    for power in (exponent, exponent + 1):
        for step in NICE_STEPS:
            value = step * 10.0**power
            if value >= raw * (1 - 1e-9):
                return _tidy(value)
    return _tidy(10.0 ** (exponent + 1))


def step_interval(interval: float, finer: bool) -> float:
    """The next 1-2-5 interval below (finer) or above `interval`."""
    exponent = math.floor(math.log10(interval) + 1e-9)
    candidates = [_tidy(s * 10.0**p) for p in (exponent - 1, exponent, exponent + 1) for s in NICE_STEPS]
    if finer:
        return max((c for c in candidates if c < interval * (1 - 1e-9)), default=interval)
    return min((c for c in candidates if c > interval * (1 + 1e-9)), default=interval)


def _tidy(value: float) -> float:
    return float(f"{value:.12g}")


def plot(series: Sequence[Sequence[float]], columns: int, rows: int, top: float) -> list[list[Cell]]:
    """Cells of a `columns` x `rows` chart: value k of each series is dot column k (two a cell),
    scaled so that `top` is the highest dot row and 0 the lowest; consecutive values are joined by
    a vertical run of dots, so the line reads as one stroke."""
    grid_bits = [[0] * columns for _ in range(rows)]
    owner: list[list[int | None]] = [[None] * columns for _ in range(rows)]
    dots_high = rows * 4
    scale = (dots_high - 1) / top if top > 0 else 0.0
    for n, values in enumerate(series):
        previous: int | None = None
        for x, value in enumerate(values[: columns * 2]):
            level = min(dots_high - 1, max(0, round(value * scale)))
            if previous is None or previous == level:
                low, high = level, level
            elif level > previous:  # rising: this column climbs from just above the last dot
                low, high = previous + 1, level
            else:
                low, high = level, previous - 1
            for dot in range(low, high + 1):
                _set(grid_bits, owner, x, dots_high - 1 - dot, n)
            previous = level
    return [
        [
            (chr(BRAILLE + bits), who) if bits else (" ", None)
            for bits, who in zip(line, who_line, strict=True)
        ]
        for line, who_line in zip(grid_bits, owner, strict=True)
    ]


def _set(bits: list[list[int]], owner: list[list[int | None]], x: int, y: int, series: int) -> None:
    row, sub_row = divmod(y, 4)
    column, sub_column = divmod(x, 2)
    bits[row][column] |= DOT_BITS[sub_row][sub_column]
    owner[row][column] = series


def axis_label(value: float) -> str:
    """A value for the axis in at most 6 characters: 950, 1.2k, 34M."""
    if value < 1000:
        return f"{value:.0f}" if value == int(value) else f"{value:.3g}"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.0f}"


def time_label(seconds: float) -> str:
    return f"{seconds:.6g}s"


class IoChart(Widget, can_focus=True):
    """An `IoGraph` as lines; ← → pan when there are more buckets than columns of dots."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left,less_than_sign", "pan(-1)", "Earlier", show=False),
        Binding("right,greater_than_sign", "pan(1)", "Later", show=False),
        Binding("home", "pan_to(0)", "Start", show=False),
        Binding("end", "pan_to(-1)", "End", show=False),
    ]
    DEFAULT_CSS = """
    IoChart { height: 1fr; min-height: 5; }
    """
    AXIS_WIDTH = 7
    """Columns of the value axis (6 characters and a rule)."""

    def __init__(self, **kwargs: str) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.graph: IoGraph | None = None
        self.first = 0
        """The first bucket shown."""
        self._drawn: tuple[tuple[int, int, int, int], list[list[Segment]]] | None = None
        """The lines last drawn, with (width, height, first bucket, graph id) they were drawn for."""

    def show(self, graph: IoGraph) -> None:
        self.graph = graph
        self.first = 0
        self.refresh()

    @property
    def buckets(self) -> int:
        if self.graph is None:
            return 0
        return max((len(v) for v in self.graph.series.values()), default=0)

    @property
    def dot_columns(self) -> int:
        return max(2, (self.size.width - self.AXIS_WIDTH) * 2)

    def action_pan(self, direction: int) -> None:
        self.first = self._clamp(self.first + direction * max(1, self.dot_columns // 2))
        self.refresh()

    def action_pan_to(self, where: int) -> None:
        self.first = self._clamp(0 if where == 0 else self.buckets)
        self.refresh()

    def _clamp(self, first: int) -> int:
        return max(0, min(first, self.buckets - self.dot_columns))

    def render_lines_text(self) -> list[list[Segment]]:
        """The chart as lines of segments: rows of dots with the value axis, then the time axis."""
        width, height = self.size.width, self.size.height
        graph = self.graph
        if graph is None or height < 2 or width <= self.AXIS_WIDTH:
            return [[Segment(" " * width)] for _ in range(height)]
        rows = height - 1
        columns = width - self.AXIS_WIDTH
        shown = [values[self.first : self.first + columns * 2] for values in graph.series.values()]
        top = max((max(v) for v in shown if v), default=0.0) or 1.0
        cells = plot(shown, columns, rows, top)
        out: list[list[Segment]] = []
        for y, line in enumerate(cells):
            label = axis_label(top) if y == 0 else ("0" if y == rows - 1 else "")
            segments = [Segment(f"{label:>{self.AXIS_WIDTH - 1}}│", AXIS)]
            for char, who in line:
                style = Style(color=SERIES_COLOURS[who % len(SERIES_COLOURS)]) if who is not None else Style()
                segments.append(Segment(char, style))
            out.append(segments)
        out.append([Segment(self._time_axis(graph, columns), AXIS)])
        return out

    def _time_axis(self, graph: IoGraph, columns: int) -> str:
        """Seconds since the first packet at the left edge, the middle and the right edge."""
        start = self.first * graph.interval
        end = (self.first + columns * 2) * graph.interval
        left, middle, right = time_label(start), time_label((start + end) / 2), time_label(end)
        axis = " " * self.AXIS_WIDTH + left
        centre = self.AXIS_WIDTH + columns // 2 - len(middle) // 2
        if centre > len(axis) + 1:
            axis = axis.ljust(centre) + middle
        right_at = self.AXIS_WIDTH + columns - len(right)
        if right_at > len(axis) + 1:
            axis = axis.ljust(right_at) + right
        return axis[: self.size.width].ljust(self.size.width)

    def render_line(self, y: int) -> Strip:
        key = (self.size.width, self.size.height, self.first, id(self.graph))
        if self._drawn is None or self._drawn[0] != key:
            self._drawn = (key, self.render_lines_text())
        lines = self._drawn[1]
        if y >= len(lines):
            return Strip.blank(self.size.width)
        return Strip(lines[y]).crop(0, self.size.width).extend_cell_length(self.size.width)
