"""Follow stream (F): a flow's bytes both ways, an HTTP/2 stream's frames or a gRPC call's messages,
in Wireshark's ASCII, hex dump or raw form, client red-ish and server blue-ish as Wireshark
colours them.

The conversation is followed in a thread worker (`inspector/follow.py` reassembles and decodes);
its lines are shown by a Line-API view, so a stream of millions of lines costs one line of
rendering per row on screen.
"""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.geometry import Size
from textual.screen import ModalScreen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Label
from textual.worker import get_current_worker

from ..follow import Followed, FollowError, Mode, follow_call, follow_flow, follow_http2, render
from ..model import CaptureModel
from .text import clean, literal

CLIENT = Style(color="#ff8787")
"""The client's bytes: Wireshark shows them red on pink; red-ish reads on dark terminals."""
SERVER = Style(color="#87afff")
"""The server's bytes: blue-ish, as Wireshark's blue on light blue."""
MODE_NAMES: dict[Mode, str] = {"ascii": "ASCII", "hex": "hex dump", "raw": "raw"}


class FollowLines(ScrollView, can_focus=True):
    """The followed lines, one colour per side; scrolls both ways with the keys of every list."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "scroll_up", "Up", show=False),
        Binding("down,j", "scroll_down", "Down", show=False),
        Binding("pageup,ctrl+b", "page_up", "Page up", show=False),
        Binding("pagedown,space", "page_down", "Page down", show=False),
        Binding("home,g", "scroll_home", "Top", show=False),
        Binding("end,G", "scroll_end", "Bottom", show=False),
        Binding("left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
    ]
    DEFAULT_CSS = """
    FollowLines { height: 1fr; background: $surface; scrollbar-size-vertical: 1; }
    """

    def __init__(self, **kwargs: str) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.lines: list[tuple[bool, str]] = []

    def show(self, lines: list[tuple[bool, str]]) -> None:
        self.lines = lines
        width = max((len(text) for _, text in lines), default=0)
        self.virtual_size = Size(width, len(lines))
        self.scroll_to(0, 0, animate=False)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        row = scroll_y + y
        width = self.scrollable_content_region.width
        if row >= len(self.lines):
            return Strip.blank(width)
        from_client, text = self.lines[row]
        strip = Strip([Segment(clean(text.expandtabs(8)), CLIENT if from_client else SERVER)])
        return strip.crop(scroll_x, scroll_x + width).extend_cell_length(width)


class FollowScreen(ModalScreen[None]):
    """Follow of a flow (TCP/UDP), of one HTTP/2 stream of it (`stream_id`), or of a gRPC call
    (`call`, a row of the calls report). a / h / r switch ASCII, hex dump and raw; Esc closes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close"),
        Binding("a", "mode('ascii')", "ASCII"),
        Binding("h", "mode('hex')", "Hex"),
        Binding("r", "mode('raw')", "Raw"),
    ]
    DEFAULT_CSS = """
    FollowScreen { background: $background 60%; }
    FollowScreen > Vertical { width: 100%; height: 100%; border: round $accent; background: $panel; }
    FollowScreen .title { width: 1fr; text-style: bold; }
    FollowScreen .hint { width: 1fr; color: $text-muted; }
    FollowScreen #follow-client { width: 1fr; color: #ff8787; }
    FollowScreen #follow-server { width: 1fr; color: #87afff; }
    """

    def __init__(
        self,
        model: CaptureModel,
        flow: int,
        stream_id: int | None = None,
        call: dict[str, object] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.flow = flow
        self.stream_id = stream_id
        self.call = call
        self.mode: Mode = "ascii"
        """The form asked for (a, h, r)."""
        self.shown_mode: Mode | None = None
        """The form on screen (it follows `mode` once the worker has rendered it)."""
        self.followed: Followed | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(literal(self._asked()), id="follow-title", classes="title")
            yield Label("", id="follow-client")
            yield Label("", id="follow-server")
            yield FollowLines(id="follow-lines")
            yield Label("following…", id="follow-totals")
            yield Label("a ASCII · h hex · r raw · ↑↓ PgUp PgDn g G ←→ · Esc close", classes="hint")

    def on_mount(self) -> None:
        self.query_one(FollowLines).focus()
        self._follow()

    def _asked(self) -> str:
        if self.call is not None:
            return f"Follow gRPC call {self.call.get('path') or '(unknown path)'}"
        if self.stream_id is not None:
            return f"Follow HTTP/2 stream {self.stream_id} of flow {self.flow}"
        return f"Follow flow {self.flow}"

    @work(thread=True, exclusive=True, group="follow")
    def _follow(self) -> None:
        worker = get_current_worker()
        session = self.model.session
        try:
            if self.call is not None:
                followed = follow_call(session, self.call)
            elif self.stream_id is not None:
                followed = follow_http2(session, self.flow, self.stream_id)
            else:
                followed = follow_flow(session, self.flow)
        except FollowError as exc:
            if not worker.is_cancelled:
                self.app.call_from_thread(self._failed, str(exc))
            return
        mode = self.mode
        lines = render(followed, mode)
        if not worker.is_cancelled:
            self.app.call_from_thread(self._shown, followed, lines, mode)

    def _failed(self, problem: str) -> None:
        self.query_one("#follow-totals", Label).update(literal(f"nothing to follow: {problem}"))

    def _shown(self, followed: Followed, lines: list[tuple[bool, str]], mode: Mode) -> None:
        self.followed = followed
        self.shown_mode = mode
        title = f"Follow {followed.what} ({MODE_NAMES[mode]})"
        self.query_one("#follow-title", Label).update(literal(title))
        self.query_one("#follow-client", Label).update(literal(f"client {followed.client}"))
        self.query_one("#follow-server", Label).update(literal(f"server {followed.server}"))
        self.query_one(FollowLines).show(lines)
        totals = (
            f"client → server {followed.client_bytes} bytes, server → client {followed.server_bytes} bytes"
        )
        if followed.truncated:
            totals += " (truncated)"
        if not followed.chunks:
            totals = f"no payload either way: {totals}"
        self.query_one("#follow-totals", Label).update(literal(totals))
        if mode != self.mode:  # a key pressed while this form was being made
            self._rerender(followed, self.mode)

    def action_mode(self, mode: str) -> None:
        chosen: Mode = "hex" if mode == "hex" else "raw" if mode == "raw" else "ascii"
        if chosen == self.mode:
            return
        self.mode = chosen
        if self.followed is not None:
            self._rerender(self.followed, chosen)

    @work(thread=True, exclusive=True, group="follow")
    def _rerender(self, followed: Followed, mode: Mode) -> None:
        """Lines in another form, made in a worker: a long stream's hex dump is millions of lines."""
        worker = get_current_worker()
        lines = render(followed, mode)
        if not worker.is_cancelled:
            self.app.call_from_thread(self._shown, followed, lines, mode)

    def action_close(self) -> None:
        self.dismiss(None)
