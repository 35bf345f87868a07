"""The packet list: a Line-API ScrollView over the columnar index (no widget per row)."""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..model import CaptureModel
from .text import clean

TITLES = ("No.", "Time", "Source", "Destination", "Protocol", "Length")
RIGHT = (True, True, False, False, False, True)
MIN_INFO = 30


def widths(total: int) -> tuple[int, ...]:
    """Column widths for a list `total` cells wide; Source/Destination shrink before Info does."""
    fixed = 7 + 11 + 9 + 6
    endpoint = max(12, min(22, (total - fixed - 6 - MIN_INFO) // 2))
    return (7, 11, endpoint, endpoint, 9, 6)


def _cell(text: str, width: int, right: bool) -> str:
    text = text if len(text) <= width else text[: width - 1] + "…"
    return text.rjust(width) if right else text.ljust(width)


class PacketList(ScrollView, can_focus=True):
    """Wireshark's packet list: No., Time, Source, Destination, Protocol, Length, Info."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("pageup,ctrl+b", "page(-1)", "Page up", show=False),
        Binding("pagedown,ctrl+f,space", "page(1)", "Page down", show=False),
        Binding("home,g", "jump(0)", "First", show=False),
        Binding("end,G", "jump(-1)", "Last", show=False),
        Binding("enter", "choose", "Details"),
    ]
    DEFAULT_CSS = """
    PacketList { background: $surface; }
    """

    class Highlighted(Message):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    class Chosen(Message):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, model: CaptureModel | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.model = model
        self.rows: list[int] | None = None
        """Packet indexes shown (a flow's packets), or None for every packet."""
        self.cursor = 0

    def set_model(self, model: CaptureModel) -> None:
        self.model = model
        self._resize()

    def show_only(self, rows: list[int] | None) -> None:
        self.rows = rows
        self.cursor = 0
        self._resize()
        self.scroll_to(0, 0, animate=False)
        self._announce()

    @property
    def count(self) -> int:
        if self.model is None:
            return 0
        return len(self.rows) if self.rows is not None else len(self.model)

    def packet_at(self, row: int) -> int:
        return self.rows[row] if self.rows is not None else row

    def _resize(self) -> None:
        self.virtual_size = Size(200, self.count + 1)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        scroll_x, scroll_y = self.scroll_offset
        cols = widths(width)
        if y == 0:
            head = "".join(_cell(t, w, r) + " " for t, w, r in zip(TITLES, cols, RIGHT, strict=True)) + "Info"
            return Strip([Segment(head.ljust(width)[:width], Style(bold=True, reverse=True))])
        row = scroll_y + y - 1
        if self.model is None or row >= self.count:
            return Strip.blank(width)
        r = self.model.row(self.packet_at(row))
        cells = (str(r.frame), f"{r.time:.6f}", clean(r.src), clean(r.dst), clean(r.protocol), str(r.length))
        line = "".join(_cell(c, w, r) + " " for c, w, r in zip(cells, cols, RIGHT, strict=True))
        line += clean(r.info)
        style = (
            Style(reverse=True)
            if row == self.cursor and self.has_focus
            else (Style(bgcolor="grey23") if row == self.cursor else Style())
        )
        text = line[scroll_x : scroll_x + width].ljust(width)
        return Strip([Segment(text, style)])

    # -- cursor -------------------------------------------------------------------------------

    def _visible_rows(self) -> int:
        return max(1, self.size.height - 1)

    def move_to(self, row: int) -> None:
        if not self.count:
            return
        self.cursor = max(0, min(self.count - 1, row))
        top = int(self.scroll_offset.y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + self._visible_rows():
            self.scroll_to(y=self.cursor - self._visible_rows() + 1, animate=False)
        self.refresh()
        self._announce()

    def _announce(self) -> None:
        if self.count:
            self.post_message(self.Highlighted(self.packet_at(self.cursor)))

    def go_to_packet(self, index: int) -> None:
        if self.rows is not None and index not in self.rows:
            self.show_only(None)
        self.move_to(self.rows.index(index) if self.rows is not None else index)

    def action_move(self, delta: int) -> None:
        self.move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self.move_to(self.cursor + direction * self._visible_rows())

    def action_jump(self, where: int) -> None:
        self.move_to(0 if where == 0 else self.count - 1)

    def action_choose(self) -> None:
        if self.count:
            self.post_message(self.Chosen(self.packet_at(self.cursor)))

    def on_click(self, event: object) -> None:
        y = getattr(event, "y", None)
        if isinstance(y, int) and y >= 1:
            self.move_to(int(self.scroll_offset.y) + y - 1)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
