"""The display filter bar (field-name completion, history) and the box that asks a saved
filter's name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from .text import literal


class FilterBar(Input):
    """The display filter bar: Tab completes a field name, ↑/↓ walk the history (newest last)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "complete", "Complete", show=False),
        Binding("up", "history(-1)", "Older", show=False),
        Binding("down", "history(1)", "Newer", show=False),
    ]

    def __init__(self, history: list[str], fields: Callable[[], list[str]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.history = history
        """The config's list itself: remembered filters show up at once."""
        self.fields = fields
        self._walk: int | None = None

    def action_history(self, step: int) -> None:
        if not self.history:
            return
        at = len(self.history) if self._walk is None else self._walk
        at = max(0, min(len(self.history), at + step))
        self._walk = at
        self.value = self.history[at] if at < len(self.history) else ""
        self.cursor_position = len(self.value)

    def action_complete(self) -> None:
        """Complete the field name before the cursor: the only match whole, else the longest
        prefix the matches share and a note listing them; nothing to complete moves focus on."""
        before = self.value[: self.cursor_position]
        start = len(before)
        while start and (before[start - 1].isalnum() or before[start - 1] in "._-"):
            start -= 1
        word = before[start:]
        names = [f for f in self.fields() if f.startswith(word)] if word else []
        if not names:
            self.app.action_focus_next()
            return
        common = names[0] if len(names) == 1 else _common_prefix(names)
        self.value = self.value[:start] + common + self.value[self.cursor_position :]
        self.cursor_position = start + len(common)
        if len(names) > 1:
            shown = " ".join(names[:12]) + (" …" if len(names) > 12 else "")
            self.app.notify(shown, title=f"{len(names)} fields", markup=False, timeout=6)

    def on_input_submitted(self) -> None:
        self._walk = None

    def on_focus(self) -> None:
        """Every visit to the bar starts the walk again: the first ↑ is the newest filter."""
        self._walk = None


def _common_prefix(names: list[str]) -> str:
    first, last = min(names), max(names)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


class NameScreen(ModalScreen[str | None]):
    """Asks one line (a saved filter's name); Enter gives it, Esc gives None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]
    DEFAULT_CSS = """
    NameScreen { align: center middle; }
    NameScreen > Vertical { width: 100%; max-width: 70; height: auto; border: round $accent;
        background: $panel; padding: 0 1; }
    """

    def __init__(self, prompt: str) -> None:
        super().__init__()
        self.prompt = prompt

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(literal(self.prompt))
            yield Input(id="name")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)
