"""The packet list: a Line-API ScrollView over the columnar index (no widget per row).

Wireshark's list, in a terminal: columns sized by content (inspector/tui/columns.py), the time
display formats and time references, marked packets, colouring rules, columns added from the
detail tree, hidden, moved and sorted; the columns, time format and colouring are kept in the
config file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual import work
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import get_current_worker

from ..config import TIME_FORMATS, ColumnSpec, Config, default_columns, save_config
from ..model import CaptureModel, PacketTexts
from . import columns as col
from .text import clean

SAMPLE = 256
"""Packets read (spread over the capture) to size the columns before any row is painted."""
PENDING = "…"
"""An added column's cell while its worker is still computing."""
MARKED = Style(color="black", bgcolor="white")
"""Wireshark shows marked packets black on white."""
HEADER = Style(bold=True, reverse=True)
HEADER_SELECTED = Style(bold=True, underline=True, color="black", bgcolor="yellow")


class PacketList(ScrollView, can_focus=True):
    """Wireshark's packet list: No., Time, Source, Destination, Protocol, Length, Info by default."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("pageup,ctrl+b", "page(-1)", "Page up", show=False),
        Binding("pagedown,space", "page(1)", "Page down", show=False),
        Binding("home,g", "jump(0)", "First", show=False),
        Binding("end,G", "jump(-1)", "Last", show=False),
        Binding("left", "sideways(-1)", "Scroll left", show=False),
        Binding("right", "sideways(1)", "Scroll right", show=False),
        Binding("enter", "choose", "Details"),
        Binding("m", "mark", "Mark", show=False),
        Binding("T", "cycle_time_format", "Time format", show=False),
        Binding("ctrl+t", "time_reference", "Time reference", show=False),
        Binding("C", "toggle_colouring", "Colours", show=False),
        Binding("left_square_bracket", "select_column(-1)", "Previous column", show=False),
        Binding("right_square_bracket", "select_column(1)", "Next column", show=False),
        Binding("left_curly_bracket", "move_column(-1)", "Move column left", show=False),
        Binding("right_curly_bracket", "move_column(1)", "Move column right", show=False),
        Binding("minus", "hide_column", "Hide column", show=False),
        Binding("equals_sign", "reset_columns", "Reset columns", show=False),
        Binding("o", "sort", "Sort", show=False),
    ]
    DEFAULT_CSS = """
    PacketList { background: $surface; scrollbar-size-horizontal: 0; }
    """
    SIDEWAYS = 8
    """Cells ← and → scroll."""

    time_format: reactive[str] = reactive("relative")
    colouring: reactive[bool] = reactive(True)

    class Highlighted(Message):
        def __init__(self, index: int, following: bool = False) -> None:
            super().__init__()
            self.index = index
            self.following = following
            """The cursor moved by itself, following a growing capture's new packets."""

    class Chosen(Message):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    class Notice(Message):
        """A one-line message for the status bar (a sort finished, a column was added)."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(
        self, model: CaptureModel | None = None, *, config: Config | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.config = config if config is not None else Config()
        self.model = model
        self.rows: list[int] | None = None
        """Packet indexes shown (a filter's or a flow's), or None for every packet."""
        self.cursor = 0
        """Row (position on screen order) of the selected packet."""
        self._marks: set[int] = set()
        self._references: list[int] = []
        """Time reference packets, ascending."""
        self._order: np.ndarray[Any, Any] | None = None
        """Sorted: row position -> position in the unsorted rows; None in frame order."""
        self.sort_field: str | None = None
        self.sort_descending = False
        self.selected_column = 0
        """The column `[` `]` select, for `{` `}`, `-` and `o`."""
        self.columns = [col.Column(ColumnSpec(c.title, c.field)) for c in self.config.columns]
        self.field_values: dict[str, PacketTexts | None] = {}
        """Added fields' values per packet; None while their worker runs."""
        self._line_width = 0
        self._painting: dict[int, list[str]] = {}
        """Texts of the rows of the paint under way (render_lines), by row."""
        self._told: list[str] = []
        """The colouring rules' problems already told (bad user rules)."""
        self._paint_width = 0
        """The content width during a paint (0 outside one: measured again)."""
        self.set_reactive(PacketList.time_format, self.config.time_format)
        self.set_reactive(PacketList.colouring, self.config.colouring)

    def on_mount(self) -> None:
        if self.model is not None:
            self.set_model(self.model)

    # -- data ---------------------------------------------------------------------------------

    def set_model(self, model: CaptureModel) -> None:
        """Show `model` (a file's, or the next one of a live capture: packet indexes stay, so
        marks and references do; added columns are computed again)."""
        if model is not self.model:
            if self.is_mounted:
                self.workers.cancel_group(self, "packet-columns")
            self.field_values.clear()
        if model.colouring.problems != self._told:  # once, not at every refresh of a live capture
            self._told = list(model.colouring.problems)
            for problem in self._told:
                self.notify_user(problem)
        self.model = model
        self._order = None
        self.sort_field = None
        self._sample()
        for c in self.columns:
            self._ensure_values(c.spec.field)
        self._resize()

    def take_new(self, n: int) -> None:
        """A growing capture's model has `n` packets now: the list takes the new ones in (in frame
        order below a sorted list, until it is sorted again), and the cursor follows them when it
        was on the last row, as Wireshark's auto-scroll does."""
        model = self.model
        if model is None:
            return
        following = self.rows is None and self.cursor >= self.count - 1  # (an empty list follows)
        before = len(model)
        model.shown = n
        if self._order is not None and self.rows is None:
            self._order = np.concatenate((self._order, np.arange(before, n, dtype=self._order.dtype)))
        for values in self.field_values.values():
            if values is not None:
                values.grow(n)
        self.virtual_size = Size(max(self._line_width, 1), self.count + 1)
        self.refresh()
        if following:
            self.move_to(self.count - 1, following=True)

    def show_filtered(self, rows: list[int]) -> None:
        """A growing capture's filter, applied again to what arrived: the rows it matches now,
        the selection kept, the cursor following new rows when it was on the last one."""
        following = self.cursor >= self.count - 1
        current = self.packet_at(self.cursor) if self.count else None
        self.rows = rows
        self._order = None
        self._resize()
        kept = self._position_of(current) if current is not None and not following else None
        self.move_to(self.count - 1 if following or kept is None else kept, following=following)

    def show_only(self, rows: list[int] | None) -> None:
        """Show only `rows` (ascending packet indexes; None: all); a sort is made again on them."""
        current = self.packet_at(self.cursor) if self.count else None
        sort, descending = self.sort_field, self.sort_descending
        self.rows = rows
        self._order = None
        self.sort_field = None
        self.cursor = 0
        self._resize()
        self.scroll_to(0, 0, animate=False)
        if sort is not None and self.model is not None and self.count:
            self._sort(self.model, sort, descending, rows)
        kept = self._position_of(current) if current is not None else None
        if kept is not None:  # Wireshark keeps the selected packet when it is still shown
            self.move_to(kept)
            return
        self._announce()

    @property
    def count(self) -> int:
        if self.model is None:
            return 0
        return len(self.rows) if self.rows is not None else len(self.model)

    def packet_at(self, row: int) -> int:
        if self._order is not None:
            row = int(self._order[row])
        return self.rows[row] if self.rows is not None else row

    def _position_of(self, index: int) -> int | None:
        """The row showing packet `index`, None when it is not shown."""
        if self.rows is None:
            base = index if self.model is not None and 0 <= index < len(self.model) else None
        else:
            k = int(np.searchsorted(np.asarray(self.rows), index))
            base = k if k < len(self.rows) and self.rows[k] == index else None
        if base is None or self._order is None:
            return base
        found = np.flatnonzero(self._order == base)
        return int(found[0]) if len(found) else None

    @property
    def marked(self) -> list[int]:
        """Marked packets (0-based), in frame order."""
        return sorted(self._marks)

    @property
    def references(self) -> list[int]:
        """Time reference packets (0-based), in frame order."""
        return list(self._references)

    def set_time_reference(self, index: int | None) -> None:
        """Toggle packet `index` as a time reference (Wireshark's Ctrl+T); None clears them all."""
        if index is None:
            self._references = []
        elif index in self._references:
            self._references.remove(index)
        else:
            self._references = sorted([*self._references, index])
        self.refresh()

    def add_column(self, field: str, title: str | None = None) -> None:
        """Show display-filter field `field` as a column (its values come from a worker; "…"
        until then) and keep it in the config."""
        if any(c.spec.field == field for c in self.columns):
            self.notify_user(f"{field} is already a column")
            return
        spec = ColumnSpec(title or field, field)
        info = next((k for k, c in enumerate(self.columns) if c.is_info), len(self.columns))
        self.columns.insert(info, col.Column(spec))
        self.selected_column = info
        self._ensure_values(field)
        self._columns_changed()

    def _ensure_values(self, field: str) -> None:
        if field in col.BUILTIN or field in self.field_values or self.model is None:
            return
        self.field_values[field] = None
        self._compute_field(self.model, field)

    @work(thread=True, group="packet-columns")
    def _compute_field(self, model: CaptureModel, field: str) -> None:
        worker = get_current_worker()
        while not model.decoded.complete and not model.growing and not worker.is_cancelled:
            time.sleep(0.05)  # the first pass of a file first (a growing capture's take turns)
        values = model.field_texts(field, lambda: worker.is_cancelled)
        if values is not None:
            self.app.call_from_thread(self._field_ready, model, field, values)

    def _field_ready(self, model: CaptureModel, field: str, values: PacketTexts) -> None:
        if model is not self.model:
            return
        self.field_values[field] = values
        for c in self.columns:
            if c.spec.field == field:
                c.seen = 0
        self._sample()
        self.refresh()

    # -- texts ----------------------------------------------------------------------------------

    def _texts(self, row: int) -> list[str]:
        """The cells of screen row `row`, unfitted."""
        assert self.model is not None
        i = self.packet_at(row)
        r = self.model.row(i)
        out: list[str] = []
        for c in self.columns:
            field = c.spec.field
            if field == "frame.number":
                out.append(str(r.frame))
            elif field == "time":
                out.append(self._time_text(row, i))
            elif field == "source":
                out.append(clean(r.src))
            elif field == "destination":
                out.append(clean(r.dst))
            elif field == "protocol":
                out.append(clean(r.protocol))
            elif field == "length":
                out.append(str(r.length))
            elif field == "info":
                out.append(clean(r.info))
            else:
                values = self.field_values.get(field)
                out.append(PENDING if values is None else clean(values.get(i) or ""))
        return out

    def _time_text(self, row: int, index: int) -> str:
        assert self.model is not None
        previous = None
        if self.time_format == "delta_displayed":
            # Wireshark's "previous displayed" is in frame order, whatever the sort.
            base = int(self._order[row]) if self._order is not None else row
            if base > 0:
                previous = self.rows[base - 1] if self.rows is not None else base - 1
        return self.model.time_text(index, self.time_format, previous, self._references)

    def _sample(self) -> None:
        """Size the columns on packets spread over the rows (the first ones, then evenly)."""
        n = self.count
        if not n:
            return
        rows = set(range(min(n, SAMPLE // 2)))
        rows.update(np.linspace(0, n - 1, num=min(n, SAMPLE // 2), dtype=np.int64).tolist())
        for row in sorted(rows):
            self._see(row)

    def _see(self, row: int) -> list[str]:
        texts = self._texts(row)
        for text, c in zip(texts, self.columns, strict=True):
            c.see(text)
        return texts

    def _layout(self) -> None:
        """Widths for the current size; the virtual width follows the line's."""
        width = col.size(self.columns, max(1, self.scrollable_content_region.width), self.time_format)
        if width != self._line_width:
            self._line_width = width
            self.virtual_size = Size(width, self.count + 1)

    # -- painting -------------------------------------------------------------------------------

    def render_lines(self, crop: Any) -> list[Strip]:
        """Size the columns on the rows about to be painted first, so that every line of one
        paint has the same widths (the texts are kept for render_line)."""
        painting: dict[int, list[str]] = {}
        if self.model is not None and self.count:
            top = int(self.scroll_offset.y)
            for row in range(top, min(self.count, top + self._visible_rows())):
                painting[row] = self._see(row)
        self._painting = painting
        self._layout()
        self._paint_width = self.scrollable_content_region.width
        try:
            return super().render_lines(crop)
        finally:
            self._painting = {}
            self._paint_width = 0

    def render_line(self, y: int) -> Strip:
        width = self._paint_width or self.scrollable_content_region.width
        scroll_x, scroll_y = self.scroll_offset
        if y == 0:
            return self._header(width, int(scroll_x))
        row = int(scroll_y) + y - 1
        if self.model is None or row >= self.count:
            return Strip.blank(width)
        index = self.packet_at(row)
        texts = self._painting.get(row) or self._texts(row)
        line = col.line(texts, self.columns).rstrip()
        end = int(scroll_x) + width
        text = line[int(scroll_x) : end].ljust(width)
        if len(line) > end:  # the rest is a → away: say so, as a cut cell does
            text = text[:-1] + col.ELLIPSIS
        # An ASCII line is `width` cells; Rich measures the others (wide characters).
        return Strip([Segment(text, self._row_style(row, index))], width if text.isascii() else None)

    def _row_style(self, row: int, index: int) -> Style:
        if row == self.cursor:
            return Style(reverse=True) if self.has_focus else Style(bgcolor="grey23")
        if index in self._marks:
            return MARKED
        if self.colouring and self.model is not None:
            code = int(self.model.colours[index])
            if code:
                return Style.parse(self.model.colour_styles[code])
        return Style()

    def _header(self, width: int, scroll_x: int) -> Strip:
        """The column titles; the sorted column's ends in ▲/▼ (as in Wireshark and the statistics
        tables). Marks and references are noted right-aligned only in the room the titles leave:
        a note never hides a title (the marked rows show themselves anyway)."""
        segments: list[Segment] = []
        for k, c in enumerate(self.columns):
            title = self._title(c)
            title = title.rjust(c.width) if c.right else title.ljust(c.width)
            selected = k == self.selected_column and self.has_focus
            segments.append(Segment(title, HEADER_SELECTED if selected else HEADER))
            segments.append(Segment(" " * col.SEPARATOR, HEADER))
        strip = Strip(segments).crop(scroll_x, scroll_x + width)
        strip = strip.extend_cell_length(width, HEADER)
        status = self._header_status()
        titles_end = len(strip.text.rstrip())
        if status and titles_end + 2 + len(status) <= width:
            strip = Strip.join(
                [strip.crop(0, width - len(status) - 1), Strip([Segment(f"{status} ", HEADER)])]
            )
        return strip

    def _title(self, c: col.Column) -> str:
        """`c`'s title in its width, with the sort arrow when the list is sorted by it."""
        if c.spec.field != self.sort_field:
            return col.header(c.spec, self.time_format, c.width)
        arrow = "▼" if self.sort_descending else "▲"
        if c.width < 3:
            return arrow[: c.width]
        return col.header(c.spec, self.time_format, c.width - 2).rstrip() + " " + arrow

    def _header_status(self) -> str:
        parts = []
        if self._marks:
            parts.append(f"{len(self._marks)} marked")
        if self._references:
            parts.append(f"{len(self._references)} ref")
        return " · ".join(parts)

    # -- cursor -------------------------------------------------------------------------------

    def _visible_rows(self) -> int:
        """Packet rows on screen: the content region (without scrollbars) less the header."""
        return max(1, self.scrollable_content_region.height - 1)

    def _resize(self) -> None:
        self._line_width = 0
        self._layout()
        self.virtual_size = Size(max(self._line_width, 1), self.count + 1)
        self.refresh()

    def move_to(self, row: int, following: bool = False) -> None:
        if not self.count:
            return
        self.cursor = max(0, min(self.count - 1, row))
        self._scroll_to_cursor()
        self.refresh()
        self._announce(following)

    def _scroll_to_cursor(self) -> None:
        top = int(self.scroll_offset.y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + self._visible_rows():
            self.scroll_to(y=self.cursor - self._visible_rows() + 1, animate=False)

    def on_resize(self) -> None:
        self._line_width = 0
        self._layout()
        self.call_after_refresh(self._scroll_to_cursor)

    def _announce(self, following: bool = False) -> None:
        if self.count:
            self.post_message(self.Highlighted(self.packet_at(self.cursor), following))

    def go_to_packet(self, index: int) -> None:
        if self._position_of(index) is None:
            self.show_only(None)
        self.move_to(self._position_of(index) or 0)

    def action_move(self, delta: int) -> None:
        self.move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self.move_to(self.cursor + direction * self._visible_rows())

    def action_jump(self, where: int) -> None:
        self.move_to(0 if where == 0 else self.count - 1)

    def action_sideways(self, direction: int) -> None:
        self.scroll_to(x=max(0, int(self.scroll_offset.x) + direction * self.SIDEWAYS), animate=False)

    def action_choose(self) -> None:
        if self.count:
            self.post_message(self.Chosen(self.packet_at(self.cursor)))

    def on_click(self, event: object) -> None:
        """A row selects its packet; a header sorts by its column, as in Wireshark."""
        x, y = getattr(event, "x", None), getattr(event, "y", None)
        if isinstance(y, int) and y >= 1:
            self.move_to(int(self.scroll_offset.y) + y - 1)
        elif y == 0 and isinstance(x, int):
            column = self.column_at(int(self.scroll_offset.x) + x)
            if column is not None:
                self.selected_column = column
                self.action_sort()

    def column_at(self, x: int) -> int | None:
        """The column under cell `x` of the line (the separator after a column counts as it)."""
        start = 0
        for k, c in enumerate(self.columns):
            start += c.width + col.SEPARATOR
            if x < start:
                return k
        return None

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # -- marks, time, colours -------------------------------------------------------------------

    def action_mark(self) -> None:
        if self.count:
            index = self.packet_at(self.cursor)
            self._marks.symmetric_difference_update({index})
            self.refresh()

    def action_cycle_time_format(self) -> None:
        k = TIME_FORMATS.index(self.time_format) if self.time_format in TIME_FORMATS else -1
        self.time_format = TIME_FORMATS[(k + 1) % len(TIME_FORMATS)]

    def watch_time_format(self, fmt: str) -> None:
        for c in self.columns:
            if c.spec.field == "time":
                c.seen = 0
        self._sample()
        self._line_width = 0
        self._save(lambda config: setattr(config, "time_format", fmt))
        self.notify_user(f"time: {col.TIME_TITLES.get(fmt, fmt)} ({fmt})")
        self.refresh()

    def action_time_reference(self) -> None:
        if self.count:
            self.set_time_reference(self.packet_at(self.cursor))

    def action_toggle_colouring(self) -> None:
        self.colouring = not self.colouring

    def watch_colouring(self, on: bool) -> None:
        self._save(lambda config: setattr(config, "colouring", on))
        self.notify_user(f"colouring rules {'on' if on else 'off'}")
        self.refresh()

    # -- columns ------------------------------------------------------------------------------

    def action_select_column(self, delta: int) -> None:
        self.selected_column = max(0, min(len(self.columns) - 1, self.selected_column + delta))
        self.notify_user(f"column: {self.columns[self.selected_column].spec.title}")
        self.refresh()

    def action_move_column(self, delta: int) -> None:
        k = self.selected_column
        j = k + delta
        if 0 <= j < len(self.columns):
            self.columns[k], self.columns[j] = self.columns[j], self.columns[k]
            self.selected_column = j
            self._columns_changed()

    def action_hide_column(self) -> None:
        if len(self.columns) <= 1:
            self.notify_user("the last column stays")
            return
        gone = self.columns.pop(self.selected_column)
        self.selected_column = min(self.selected_column, len(self.columns) - 1)
        if gone.spec.field == self.sort_field:
            self._sorted(None, False, None)
        self.notify_user(f"column {gone.spec.title} hidden")
        self._columns_changed()

    def action_reset_columns(self) -> None:
        """Wireshark's seven columns again, in their order (the way back from `-` and `{` `}`);
        columns added from the detail tree stay, before Info."""
        shown = {c.spec.field: c for c in self.columns}
        builtin = [shown.get(s.field) or col.Column(s) for s in default_columns()]
        added = [c for c in self.columns if c.spec.field not in {s.field for s in default_columns()}]
        info = next((k for k, c in enumerate(builtin) if c.is_info), len(builtin))
        self.columns = builtin[:info] + added + builtin[info:]
        self.selected_column = 0
        self.notify_user("columns reset: Wireshark's seven" + (f" and {len(added)} added" if added else ""))
        self._columns_changed()

    def _columns_changed(self) -> None:
        shown = [ColumnSpec(c.spec.title, c.spec.field) for c in self.columns]
        self._save(lambda config: setattr(config, "columns", shown))
        self._sample()
        self._line_width = 0
        self.refresh()

    def action_sort(self) -> None:
        """Sort by the selected column: ascending, descending, then frame order again."""
        if self.model is None or not self.count:
            return
        field = self.columns[self.selected_column].spec.field
        if field == self.sort_field and self.sort_descending:
            self._sorted(None, False, None)
            return
        descending = field == self.sort_field
        if field not in col.BUILTIN and self.field_values.get(field) is None:
            self.notify_user(f"{field}: values not ready yet")
            return
        self.notify_user(f"sorting by {self.columns[self.selected_column].spec.title}…")
        self._sort(self.model, field, descending, self.rows)

    @work(thread=True, exclusive=True, group="packet-sort")
    def _sort(self, model: CaptureModel, field: str, descending: bool, rows: list[int] | None) -> None:
        worker = get_current_worker()
        base = np.asarray(rows, np.int64) if rows is not None else np.arange(len(model), dtype=np.int64)
        key = model.sort_key(field, self.time_format, self.field_values.get(field))
        order = model.sort_order(base, key, lambda: worker.is_cancelled)
        if order is None or worker.is_cancelled:
            return
        if descending:
            order = order[::-1].copy()
        self.app.call_from_thread(self._sort_ready, model, rows, field, descending, order)

    def _sort_ready(
        self,
        model: CaptureModel,
        rows: list[int] | None,
        field: str,
        descending: bool,
        order: np.ndarray[Any, Any],
    ) -> None:
        if model is not self.model or rows is not self.rows:
            return  # the list changed under the sort
        self._sorted(order, descending, field)

    def _sorted(self, order: np.ndarray[Any, Any] | None, descending: bool, field: str | None) -> None:
        """Show rows in `order` (None: frame order), the cursor staying on its packet."""
        current = self.packet_at(self.cursor) if self.count else None
        self._order = order
        self.sort_field = field
        self.sort_descending = descending
        if current is not None:
            self.move_to(self._position_of(current) or 0)
        self.refresh()

    # -- config -------------------------------------------------------------------------------

    def _save(self, change: Callable[[Config], None]) -> None:
        """Apply `change` to the config and save it when it came from a file (a failed save is
        one of its problems, shown by the app)."""
        change(self.config)
        if self.config.path is None:
            return
        try:
            save_config(self.config)
        except OSError as exc:
            self.notify_user(f"cannot save the settings: {exc.strerror or exc}")

    def notify_user(self, text: str) -> None:
        self.post_message(self.Notice(text))
