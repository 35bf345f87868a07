"""The NAT/ICE panel: one WebRTC session's candidates, pairs, NAT verdicts and diagnosis.

It shows the block `--report sessions` prints for the session (report/sessionblock.py drawn by
report/text.py), wrapped to the panel's width and drawn again when the terminal is resized, so
the viewer and the text report never disagree. Tables fold their cells rather than scroll
sideways: at 80 columns a pair's two candidates stay on two lines of one row. Colour marks what
the eye looks for: a failed pair or phase, the selected pair, a symmetric NAT.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Final

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..report.text import session_text
from .text import literal

BOX_MARGIN: Final = 6
"""Cells of the screen the panel's border, padding and scrollbar take from the text's width."""

HIGHLIGHTS: Final = (
    (r"\b(failed|FAILED in \w+)\b", "bold red"),
    (r"\b(succeeded|selected)\b", "green"),
    (r"\b(in-progress|waiting|nominated)\b", "yellow"),
    (r"\bsymmetric\b", "bold yellow"),
    (r"(?m)^(Session \d+|Candidates of|Candidate pairs|NAT behind|Paths|Media|Findings of)\b.*$", "bold"),
)
"""Styles applied to the panel's text by pattern: the text is ours (capture text in it was
escaped), so a pattern can only colour, never let a capture's bytes style it."""


def styled(text: str) -> Text:
    """The panel's text with HIGHLIGHTS applied (no markup is parsed)."""
    out = Text(text, no_wrap=True)
    for pattern, style in HIGHLIGHTS:
        out.highlight_regex(pattern, style)
    return out


class IceScreen(ModalScreen[None]):
    """The NAT/ICE panel of a session row (`row`), times from `start` (the capture's first
    packet, epoch seconds) as every other view counts them."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,I", "dismiss", "Close"),
        Binding("j", "scroll('down')", "Down", show=False),
        Binding("k", "scroll('up')", "Up", show=False),
        Binding("g,home", "edge('top')", "Top", show=False),
        Binding("G,end", "edge('bottom')", "Bottom", show=False),
    ]
    DEFAULT_CSS = """
    IceScreen { align: center middle; }
    IceScreen > VerticalScroll {
        width: 100%; max-width: 140; height: 100%;
        border: round $accent; padding: 0 1; background: $panel; scrollbar-size-vertical: 1;
    }
    IceScreen #ice-title { width: 100%; }
    IceScreen #ice-text { width: auto; }
    """

    def __init__(self, row: Mapping[str, object], start: float, title: str) -> None:
        super().__init__()
        self.row = row
        self.start = start
        self.title_text = title
        self._width = 0
        """The width the text was last drawn for (a resize to it draws nothing)."""
        self.text = ""
        """The panel's text as last drawn (what the tests read)."""

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="ice-scroll"):
            yield Static(literal(self.title_text, "bold"), id="ice-title")
            yield Static(id="ice-text")

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()
        self._draw(self.app.size.width)

    def on_resize(self) -> None:
        self._draw(self.app.size.width)

    def _draw(self, screen_width: int) -> None:
        width = max(40, min(140, screen_width) - BOX_MARGIN)
        if width == self._width:
            return
        self._width = width
        self.text = session_text(self.row, self.start, width)
        self.query_one("#ice-text", Static).update(styled(self.text))

    def action_scroll(self, where: str) -> None:
        scroll = self.query_one(VerticalScroll)
        scroll.scroll_down() if where == "down" else scroll.scroll_up()

    def action_edge(self, where: str) -> None:
        scroll = self.query_one(VerticalScroll)
        scroll.scroll_home(animate=False) if where == "top" else scroll.scroll_end(animate=False)
