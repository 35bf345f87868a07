"""The ladder diagram screen: a column per endpoint, an arrow per message.

The frame and time columns stay in place while the drawing scrolls sideways (← →), as a
spreadsheet freezes its first columns: a ladder with many endpoints is wider than the screen, and
an arrow without its frame number says little. Both parts scroll up and down together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, HorizontalScroll, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..report.ladder import Ladder
from .text import clean, literal

SIDEWAYS_STEP = 8
"""Cells one ← or → scrolls the drawing."""


def _text(lines: Sequence[str]) -> Text:
    return Text("\n".join(clean(line) for line in lines), no_wrap=True)


class LadderScreen(ModalScreen[None]):
    """A ladder diagram: a column per endpoint (a flow: its client left, its server right).

    `lines` is the ladder's text; a `Ladder` (what report/ladder.py draws) also says which lines
    are its head and how many cells of the others are the frame and time, which stay put."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,l", "dismiss", "Close"),
        Binding("e", "app.export", "Export (Mermaid)"),
        Binding("right", "sideways(1)", "Scroll right", show=False),
        Binding("left", "sideways(-1)", "Scroll left", show=False),
    ]
    DEFAULT_CSS = """
    LadderScreen { align: center middle; }
    LadderScreen > VerticalScroll {
        width: 95%; height: 90%; border: round $accent; background: $panel;
    }
    LadderScreen Static { width: auto; }
    LadderScreen #ladder-title { width: 100%; }
    LadderScreen Horizontal { height: auto; }
    LadderScreen #ladder-fixed { width: auto; }
    LadderScreen HorizontalScroll { height: auto; width: 1fr; }
    """

    def __init__(self, lines: Sequence[str], title: str) -> None:
        super().__init__()
        self.lines = list(lines)
        self.title_text = title
        self.head = lines.head if isinstance(lines, Ladder) else len(self.lines)
        self.fixed = lines.fixed if isinstance(lines, Ladder) else 0

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            # what it shows, cut with "…" to the box (its keys are in the help: ?)
            yield Static(literal(self.title_text, "bold"), id="ladder-title")
            yield Static(_text(self.lines[: self.head]), id="ladder-head")
            body = self.lines[self.head :]
            if body:
                with Horizontal():
                    yield Static(_text([line[: self.fixed] for line in body]), id="ladder-fixed")
                    with HorizontalScroll(id="ladder-scroll"):
                        yield Static(_text([line[self.fixed :] for line in body]), id="ladder-body")

    def action_sideways(self, direction: int) -> None:
        """Scroll the drawing sideways; the frame and time columns stay."""
        for scroll in self.query("#ladder-scroll").results(HorizontalScroll):
            scroll.scroll_to(x=scroll.scroll_x + direction * SIDEWAYS_STEP, animate=False)
