"""The ladder diagram screen: a column per endpoint, an arrow per message."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import ScrollableContainer
from textual.screen import ModalScreen
from textual.widgets import Static

from .text import clean, literal


class LadderScreen(ModalScreen[None]):
    """A ladder diagram: a column per endpoint (a flow: its client left, its server right)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,l", "dismiss", "Close")]
    DEFAULT_CSS = """
    LadderScreen { align: center middle; }
    LadderScreen > ScrollableContainer {
        width: 95%; height: 90%; border: round $accent; background: $panel;
    }
    LadderScreen Static { width: auto; }
    """

    def __init__(self, lines: list[str], title: str) -> None:
        super().__init__()
        self.lines = lines
        self.title_text = title

    def compose(self) -> ComposeResult:
        with ScrollableContainer():
            yield Static(literal(self.title_text, "bold"))
            yield Static(Text("\n".join(clean(line) for line in self.lines), no_wrap=True))
