"""The timeline: one lane per flow on a shared time axis, zoomable (+/-) and pannable (←/→, < >);
a lane cursor (↑↓ j k g G) picks the flow that `l` (the app's key) draws as a ladder."""

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
"""Cells for the flow label at the left of each lane at 80 columns; a wider terminal gives it a
quarter of its width, up to WIDE_LABEL (the server's address whole)."""
WIDE_LABEL = 48
BLOCKS = " ▁▂▃▄▅▆▇█"


class Timeline(ScrollView, can_focus=True):
    """Each lane shows how many packets the flow carried in each time slice of the window."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("plus,equals_sign", "zoom(0.5)", "Zoom in", show=False),
        Binding("minus", "zoom(2.0)", "Zoom out", show=False),
        Binding("left,less_than_sign", "pan(-0.25)", "Earlier", show=False),
        Binding("right,greater_than_sign", "pan(0.25)", "Later", show=False),
        Binding("0", "reset", "Whole capture", show=False),
        Binding("up,k", "lane(-1)", "Previous flow", show=False),
        Binding("down,j", "lane(1)", "Next flow", show=False),
        Binding("pageup", "lane(-10)", "Page up", show=False),
        Binding("pagedown", "lane(10)", "Page down", show=False),
        Binding("g,home", "lane(-1000000000)", "First flow", show=False),
        Binding("G,end", "lane(1000000000)", "Last flow", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model: CaptureModel | None = None
        self.times: list[np.ndarray[Any, Any]] = []
        self.start = 0.0
        self.span = 1.0
        self.total = (0.0, 1.0)
        self.lane = 0
        """The selected flow's lane: `l` draws its ladder."""

    def set_model(self, model: CaptureModel) -> None:
        self.model = model
        ix = model.index
        ts = ix.records.ts_ns.astype(np.float64) / 1e9
        order = np.argsort(ix.flow, kind="stable")
        flows = ix.flow[order]
        bounds = np.searchsorted(flows, np.arange(len(ix.flows) + 1))
        self.lane = min(self.lane, max(0, len(ix.flows) - 1))
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

    def action_lane(self, delta: int) -> None:
        """Move the lane cursor and keep its lane on screen (below the axis line)."""
        if not self.times:
            return
        self.lane = max(0, min(len(self.times) - 1, self.lane + delta))
        top, rows = int(self.scroll_offset.y), max(1, self.size.height - 1)
        if self.lane < top:
            self.scroll_to(y=self.lane, animate=False)
        elif self.lane >= top + rows:
            self.scroll_to(y=self.lane - rows + 1, animate=False)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        label_cells = max(LABEL, min(WIDE_LABEL, width // 4))
        cells = max(1, width - label_cells - 1)
        scroll_y = int(self.scroll_offset.y)
        if y == 0:
            window = f"{self.start - self.total[0]:.3f}s … +{self.span:.3f}s"
            head = f"{'flow':<{label_cells}} {window} (+- zoom, ←→ pan, 0 all, l ladder)"
            return Strip([Segment(head[:width].ljust(width), Style(bold=True, reverse=True))])
        lane = scroll_y + y - 1
        if self.model is None or lane >= len(self.times):
            return Strip.blank(width)
        edges = self.start + self.span * np.arange(cells + 1) / cells
        counts = np.diff(np.searchsorted(self.times[lane], edges))
        peak = max(1, int(counts.max())) if len(counts) else 1
        bars = "".join(BLOCKS[0 if c == 0 else 1 + min(7, int(7 * c / peak))] for c in counts.tolist())
        label = f"{lane} {self.model.flow_label(lane)} {self.model.index.flows[lane].server}"
        selected = lane == self.lane
        return Strip(
            [
                Segment(
                    clean(label)[:label_cells].ljust(label_cells) + " ",
                    Style(reverse=True) if selected and self.has_focus else Style(dim=not selected),
                ),
                Segment(bars, Style(color="green")),
            ]
        )

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
