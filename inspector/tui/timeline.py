"""The timeline: one lane per flow on a shared time axis, zoomable (+/-) and pannable (←/→)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..model import CaptureModel
from .text import clean

LABEL = 28
"""Cells for the flow label at the left of each lane."""
BLOCKS = " ▁▂▃▄▅▆▇█"


class Timeline(ScrollView, can_focus=True):
    """Each lane shows how many packets the flow carried in each time slice of the window."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("plus,equals_sign", "zoom(0.5)", "Zoom in"),
        Binding("minus", "zoom(2.0)", "Zoom out"),
        Binding("left,h", "pan(-0.25)", "Earlier", show=False),
        Binding("right,l", "pan(0.25)", "Later", show=False),
        Binding("0", "reset", "Whole capture", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model: CaptureModel | None = None
        self.times: list[np.ndarray[Any, Any]] = []
        self.start = 0.0
        self.span = 1.0
        self.total = (0.0, 1.0)

    def set_model(self, model: CaptureModel) -> None:
        self.model = model
        ix = model.index
        ts = ix.records.ts_ns.astype(np.float64) / 1e9
        order = np.argsort(ix.flow, kind="stable")
        flows = ix.flow[order]
        bounds = np.searchsorted(flows, np.arange(len(ix.flows) + 1))
        self.times = [np.sort(ts[order[bounds[f] : bounds[f + 1]]]) for f in range(len(ix.flows))]
        first, last = (float(ts.min()), float(ts.max())) if len(ts) else (0.0, 1.0)
        self.total = (first, max(last, first + 1e-6))
        self.action_reset()

    def action_reset(self) -> None:
        self.start, self.span = self.total[0], self.total[1] - self.total[0]
        self.virtual_size = Size(self.size.width, len(self.times) + 1)
        self.refresh()

    def action_zoom(self, factor: float) -> None:
        middle = self.start + self.span / 2
        self.span = min(max(self.span * factor, 1e-6), self.total[1] - self.total[0])
        self.start = middle - self.span / 2
        self.refresh()

    def action_pan(self, fraction: float) -> None:
        self.start += self.span * fraction
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        cells = max(1, width - LABEL - 1)
        scroll_y = int(self.scroll_offset.y)
        if y == 0:
            window = f"{self.start - self.total[0]:.3f}s … +{self.span:.3f}s"
            head = f"{'flow':<{LABEL}} {window} (+/- zoom, ←/→ pan, 0 all)"
            return Strip([Segment(head[:width].ljust(width), Style(bold=True, reverse=True))])
        lane = scroll_y + y - 1
        if self.model is None or lane >= len(self.times):
            return Strip.blank(width)
        edges = self.start + self.span * np.arange(cells + 1) / cells
        counts = np.diff(np.searchsorted(self.times[lane], edges))
        peak = max(1, int(counts.max())) if len(counts) else 1
        bars = "".join(BLOCKS[0 if c == 0 else 1 + min(7, int(7 * c / peak))] for c in counts.tolist())
        label = f"{lane} {self.model.flow_label(lane)} {self.model.index.flows[lane].server}"
        return Strip(
            [
                Segment(clean(label)[:LABEL].ljust(LABEL) + " ", Style(dim=True)),
                Segment(bars, Style(color="green")),
            ]
        )
