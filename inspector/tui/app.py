"""protoscope's Textual app: flows, packets, details and hex, gRPC calls, reports, findings.

The app composes the views and answers the keys; what a key does to the data lives in the headless
modules (model, filter, find, follow, report) and the widgets (packets, detail, views, timeline).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path
from time import sleep as worker_sleep
from typing import Any, ClassVar

import numpy as np
from rich.text import Text
from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.geometry import Size
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import (
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    ProgressBar,
    Sparkline,
    TabbedContent,
    TabPane,
    Tree,
)
from textual.worker import get_current_worker

from protoscope.captures.index import build_index
from protoscope.captures.live import LiveCapture
from protoscope.captures.source import open_preview
from protoscope.decoders.registry import DecodeAs, Registry, RegistryError

from ..config import Config, load_config, remember_filter, save_config
from ..fields import known_fields
from ..filter import FilterError, compile_filter
from ..find import FindQuery, find_next
from ..model import CaptureModel, PacketDetail
from ..report.empty import empty_reason
from ..report.export import write_pcapng
from ..report.ladder import (
    arrows,
    capture_origin,
    client_first,
    draw_ladder,
    mermaid,
    mermaid_lines,
    text_ladder,
)
from ..report.rows import flow_ends, row_flow
from ..report.sessionblock import is_session
from ..report.sessionladder import session_ladder
from ..report.text import capture_start
from ..session import Session
from .detail import DetailTree, HexView, Span
from .exporting import default_path, packet_rows, report_rows
from .filterbar import FilterBar, NameScreen
from .follow import FollowScreen
from .help import HELP_KEYS, HELP_WIDTH, HelpScreen, help_text
from .iceview import IceScreen
from .ladder import LadderScreen
from .livestatus import counted, live_text
from .packets import PacketList
from .palette import MAX_PALETTE_FLOWS, GoTo
from .phases import PhaseChart
from .screens import DecodeAsScreen, ExportChoice, ExportScreen, FindScreen, GoToScreen
from .stats import StatsView
from .text import clean, literal
from .timeline import Timeline
from .views import (
    DEFAULT_CELLS,
    FIRST_COLUMNS,
    CallsTable,
    CallTree,
    FindingsTree,
    FlowsTable,
    ReportTable,
    RowTree,
    session_line,
)

# The dialogs, the palette and the help live in their own modules; their names stay importable
# from here, where the tests and the command line have always found them.
__all__ = [
    "DETAIL_DELAY",
    "HELP_KEYS",
    "HELP_WIDTH",
    "LAYOUTS",
    "LAYOUT_NAMES",
    "LIVE_REFRESH",
    "MAIN_PANES",
    "MAX_PALETTE_FLOWS",
    "NARROW",
    "SHORT",
    "SHORT_LIST_ROWS",
    "FilterBar",
    "GoTo",
    "HelpScreen",
    "NameScreen",
    "ProtoscopeApp",
    "counted",
    "help_text",
    "run",
]

DETAIL_DELAY = 0.08
"""Seconds the packet cursor must rest before its detail is decoded and shown."""
LIVE_REFRESH = 0.5
"""Seconds between two looks at a live capture's spool or a followed file. Each look indexes and
decodes only what arrived (PacketIndex.extend, AnalysisPass.more) in a worker, and the next waits
for it to finish. With the capture's batching (at most 100 ms, captures/live.py) a packet is on
screen within about LIVE_REFRESH plus a look's time."""
LIVE_TABLE_ROWS = 2000
"""Rows a results table shows while a capture grows (its latest; all once it has ended)."""
REPORT_ORDER = ("sessions", "streams", "datachannels")
"""Our analyses' tabs, after Calls, in the order a WebRTC call is read; plugins' come after them."""
REPORT_TITLES = {"datachannels": "Data channels"}
NO_TAB = frozenset({"stun_transactions"})
"""Our analyses without a tab: every STUN transaction is a row of `--report stun_transactions` and
of the data lake; in the viewer a request's answer is in its packet (stun.response_in) and an ICE
check's in the session's NAT/ICE panel, and at 80 columns the tab bar has no room left."""


def report_title(name: str) -> str:
    """An analysis's tab title: ours by their names, a plugin's as it names it (literally)."""
    return REPORT_TITLES.get(name) or clean(name.capitalize())


FOLLOWING_NOTE = "following new packets: ↑ or a click shows a packet's detail"
LIVE_LOG = "PROTOSCOPE_LIVE_LOG"
"""Environment variable naming a file that gets one JSON line per look at a growing capture:
{"t": epoch seconds, "packets": packets shown, "refresh_s": the look's seconds, "rss": bytes}
(bench/bench_live.py reads it)."""


def _log_refresh(path: str, packets: int, seconds: float) -> None:
    rss = 0
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    line = {"t": time.time(), "packets": packets, "refresh_s": round(seconds, 6), "rss": rss}
    with open(path, "a", encoding="ascii") as f:
        f.write(json.dumps(line) + "\n")


NARROW = 120
"""Columns below which the flows pane leaves the packets tab (Tab or the palette brings it back)
and the detail and hex panes stack: at 80 columns a 34% flows pane left the list 50 cells, too
few for two addresses with their ports."""
SHORT = 36
"""Rows below which the tabs take one line and the list a fixed 12 (10 packets, its header and
room for the sideways scroll): at 24 rows percentages left the list 4 packets."""
SHORT_LIST_ROWS = 12
LAYOUTS = ("list", "detail", "hex")
"""What `\\` cycles through, as termshark's layout key: the list alone, the list and the detail,
the list, the detail and the hex."""
LAYOUT_NAMES = {"list": "packet list", "detail": "list + detail", "hex": "list + detail + hex"}
MAIN_PANES = {
    "packets": "#packet-list",
    "calls": "#calls-table",
    "findings": "#findings-tree",
    "timeline": "#timeline-view",
    "statistics": "#stats",
}
"""The pane each tab opens on (a report tab: its table)."""


class ProtoscopeApp(App[None]):
    TITLE = "protoscope"
    COMMANDS = App.COMMANDS | {GoTo}
    CSS = """
    TabbedContent { height: 1fr; }
    TabbedContent > ContentSwitcher { height: 1fr; }
    TabPane { height: 1fr; padding: 0; }
    #filter { height: 1; border: none; padding: 0 1; background: $boost; }
    #filter:focus { background: $primary 25%; }
    #filter.invalid { background: $error 45%; }
    #top { height: 55%; }
    #flows { width: 34%; }
    #bottom { height: 1fr; }
    #detail { width: 1fr; border-top: solid $accent; }
    #hex-pane { width: 78; border-top: solid $accent; overflow-x: auto; }
    HexView { width: 76; }
    #status { height: 1; }
    #status Label { width: 1fr; }
    #status ProgressBar { width: 30; }
    #calls-table { height: auto; max-height: 45%; }
    .report-table { height: auto; max-height: 45%; }
    .report-tree { height: 1fr; border-top: solid $accent; }
    .spark { height: 2; display: none; }
    .spark-label { display: none; }
    .spark.lost > .sparkline--max-color { color: $error; }
    .empty { color: $text-muted; padding: 0 1; display: none; }
    .summary { padding: 0 1; text-style: bold; display: none; height: auto; width: 100%; }
    #call-detail { height: 1fr; border-top: solid $accent; }
    .narrow #flows { display: none; }
    .narrow.flows-open #flows { display: block; width: 1fr; }
    .narrow.flows-open #packet-list { display: none; }
    .narrow #bottom { layout: vertical; }
    .narrow #detail { height: 1fr; width: 100%; }
    .narrow #hex-pane { width: 100%; height: 9; }
    .narrow Tab { padding: 0 0 0 1; }
    .short Tabs { height: 1; }
    .short Tabs Underline { display: none; }
    .short #top { height: 12; }
    .short #hex-pane { height: 6; }
    .short.layout-hex #top { height: 9; }
    .short #calls-table, .short .report-table { max-height: 40%; }
    .layout-list #bottom { display: none; }
    .layout-list #top { height: 1fr; }
    .layout-detail #hex-pane { display: none; }
    .zoom-hidden { display: none !important; }
    .zoom-full { width: 1fr !important; height: 1fr !important; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("p", "show_tab('packets')", "Packets", show=False),
        Binding("c", "show_tab('calls')", "Calls", show=False),
        Binding("f", "show_tab('findings')", "Findings", show=False),
        Binding("s", "show_tab('report-streams')", "Streams", show=False),
        Binding("w", "show_tab('report-sessions')", "Sessions", show=False),
        Binding("D", "show_tab('report-datachannels')", "Data channels", show=False),
        Binding("t", "show_tab('timeline')", "Timeline", show=False),
        Binding("i", "show_tab('statistics')", "Statistics", show=False),
        Binding("l", "ladder", "Ladder", show=False),
        Binding("I", "ice", "NAT/ICE", show=False),
        Binding("escape", "back", "Back", show=False),
        Binding("slash", "focus_filter", "Filter"),
        Binding("backslash", "layout", "Layout"),
        Binding("z", "zoom", "Zoom"),
        Binding("e", "export", "Export"),
        Binding("ctrl+e", "pause", "Pause/Resume"),
        Binding("F", "follow", "Follow", show=False),
        Binding("ctrl+f", "find", "Find", show=False),
        Binding("n", "find_again(False)", "Find next", show=False),
        Binding("N", "find_again(True)", "Find previous", show=False),
        Binding("ctrl+g", "go_to", "Go to", show=False),
        Binding("d", "decode_as", "Decode as", show=False),
        Binding("y", "copy_grpcurl", "Copy grpcurl", show=False),
    ]

    def __init__(
        self,
        path: str | Path,
        registry: Registry,
        live: LiveCapture | None = None,
        display_filter: str | None = None,
        config: Config | None = None,
        follow: bool = False,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.registry = registry
        self.live = live
        """A running live capture spooling to `path`; None for a capture file."""
        self.display_filter = display_filter
        """`-Y`: applied once the first decoding pass is done."""
        self.config = config if config is not None else load_config()
        self.follow = follow
        """`--follow`: `path` is a file another program is still writing."""
        self._live_ended = False
        self._growing_busy = False
        self._growing_done = False
        """The look after the capture ended was made: nothing more will come."""
        self._terminated = False
        self._sigterm_before: Any = None
        """SIGTERM arrived: the app quits at the next tick (the capture is stopped by the CLI)."""
        self._live_problem = ""
        self._shown_rows: dict[str, object] = {}
        """What each results view shows, by view (a growing capture's views are filled again only
        when it changed)."""
        self._live_log = os.environ.get(LIVE_LOG) or None
        self.model: CaptureModel | None = None
        # The header shows the file name as it is given: a name may hold ESC sequences too.
        where = f"following {path}" if follow else str(path)
        self.sub_title = clean(f"live on {live.iface}: {path}" if live is not None else where)
        self._detail_for: int | None = None
        self._detail_timer: Timer | None = None
        self.layout_mode = "hex"
        self._layout_chosen = False
        self._zoomed: Widget | None = None
        self._filter_text: str | None = None
        """The display filter the list shows (re-applied after a decode-as)."""
        self._narrowed: str | None = None
        """What narrows the list, for the status line: the filter, or a flow."""
        self._width = 80
        """The terminal's width, for the status line (its short form when the long one is cut)."""
        self._ladder_flows: list[int] = []
        """The flows of the ladder shown last (`e` on it writes them as Mermaid)."""
        self._ladder_stream: int | None = None
        """The HTTP/2 stream of the ladder shown last, when it is a call's (only it is written)."""
        self._find_query: FindQuery | None = None
        self._protocols: set[str] = set()
        self._fields: list[str] | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="packets"):
            with TabPane("Packets", id="packets"):
                yield FilterBar(
                    self.config.filter_history,
                    self.field_names,
                    placeholder="display filter, e.g. grpc.status != 0 (Tab completes, Enter applies)",
                    id="filter",
                )
                with Horizontal(id="top"):
                    yield FlowsTable(id="flows")
                    yield PacketList(config=self.config, id="packet-list")
                with Horizontal(id="bottom"):
                    yield DetailTree("packet", registry=self.registry, id="detail")
                    with VerticalScroll(id="hex-pane"):
                        yield HexView(id="hex")
            with TabPane("Calls", id="calls"):
                with Vertical():
                    yield Label("", id="calls-empty", classes="empty")
                    yield CallsTable(id="calls-table")
                    yield CallTree("call", id="call-detail")
            for name in self._extra_reports():
                # A plugin names its analysis: the tab shows the name literally (no markup).
                with TabPane(Content(report_title(name)), id=f"report-{name}"):
                    with Vertical():
                        yield Label("", id=f"report-{name}-empty", classes="empty")
                        yield ReportTable(id=f"report-{name}-table", classes="report-table")
                        yield Label("", id=f"report-{name}-summary", classes="summary")
                        yield Label("", id=f"report-{name}-spark-label", classes="spark-label")
                        yield Sparkline([], id=f"report-{name}-spark-jitter", classes="spark")
                        yield Sparkline([], id=f"report-{name}-spark-lost", classes="spark lost")
                        yield PhaseChart(id=f"report-{name}-phases")
                        yield RowTree(name, id=f"report-{name}-tree", classes="report-tree")
            with TabPane("Timeline", id="timeline"):
                yield Timeline(id="timeline-view")
            with TabPane("Findings", id="findings"):
                with Vertical():
                    yield Label("", id="findings-empty", classes="empty")
                    yield FindingsTree("findings", id="findings-tree")
            with TabPane("Statistics", id="statistics"):
                yield StatsView(id="stats")
        with Horizontal(id="status"):
            yield Label(literal(f"loading {self.path}"), id="status-text")
            yield ProgressBar(id="progress", show_eta=False)
        yield Footer()

    def _extra_reports(self) -> list[str]:
        """Analyses without a dedicated view get a generic tab: a plugin's report shows up too.
        Ours first, in the order a WebRTC call is read (sessions, their media, their data
        channels), then the plugins' by name."""
        names = [n for n in REPORT_ORDER if n in self.registry.analyses]
        return names + [
            n for n in sorted(self.registry.analyses) if n != "calls" and n not in names and n not in NO_TAB
        ]

    def tab_titles(self) -> dict[str, str]:
        """Tab id -> its title, in the order the tabs stand."""
        titles = {"packets": "Packets", "calls": "Calls"}
        titles |= {f"report-{n}": report_title(n) for n in self._extra_reports()}
        return titles | {"timeline": "Timeline", "findings": "Findings", "statistics": "Statistics"}

    def on_mount(self) -> None:
        self.query_one(PacketList).focus()
        self._fit(self.size)
        for problem in self.config.problems:
            self.say(problem, "warning")
        if self.live is None and not self.follow:
            self.load()
        else:
            self.query_one(ProgressBar).display = False  # the status line has the counters instead
            if threading.current_thread() is threading.main_thread():
                self._sigterm_before = signal.signal(signal.SIGTERM, self._on_sigterm)
            self.set_interval(LIVE_REFRESH, self._live_tick)
            self._live_tick()

    def on_unmount(self) -> None:
        if self._sigterm_before is not None:
            signal.signal(signal.SIGTERM, self._sigterm_before)
            self._sigterm_before = None

    def _on_sigterm(self, _signum: int, _frame: Any) -> None:
        """SIGTERM ends the viewer as q does (the CLI then stops the capture and closes its spool)."""
        self._terminated = True

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Pause/resume is a live-capture key: hidden from the footer for a capture file."""
        return self.live is not None if action == "pause" else True

    def say(self, text: str, severity: str = "information") -> None:
        """A message as a notification: it wraps instead of being cut, and the status line keeps
        only the counters."""
        self.notify(clean(text), severity=severity, markup=False, timeout=8)  # type: ignore[arg-type]

    # -- layout -------------------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        """Re-lay out for the new size. The event's size, not `self.size`: this handler runs
        before Textual's own `App._on_resize` (the subclass comes first in the MRO), which is
        what stores the new size, so `self.size` here was the previous one: the layout lagged
        one resize behind."""
        self._fit(event.size)
        self._width = event.size.width
        self._update_status()

    def _fit(self, size: Size) -> None:
        narrow, short = size.width < NARROW, size.height < SHORT
        self.set_class(narrow, "narrow")
        self.set_class(short, "short")
        if not narrow:
            self.remove_class("flows-open")
        if not self._layout_chosen:
            self.layout_mode = "detail" if narrow or short else "hex"
        self._apply_layout()
        self.call_after_refresh(self._reveal_cursors)

    def _apply_layout(self) -> None:
        for mode in LAYOUTS:
            self.set_class(mode == self.layout_mode, f"layout-{mode}")

    def _reveal_cursors(self) -> None:
        """After a resize or a layout change the selected rows stay on screen."""
        if not self.query(PacketList):
            return  # a resize before the views are composed
        packets = self.query_one(PacketList)
        if packets.count:
            top, rows = int(packets.scroll_offset.y), max(1, packets.scrollable_content_region.height - 1)
            if not top <= packets.cursor < top + rows:
                packets.move_to(packets.cursor)
        for table in self.query(DataTable):
            if table.row_count and table.display:
                table.move_cursor(row=table.cursor_row, scroll=True)

    def action_layout(self) -> None:
        """`\\`: list, list + detail, list + detail + hex (termshark's layouts)."""
        self._unzoom()
        self.layout_mode = LAYOUTS[(LAYOUTS.index(self.layout_mode) + 1) % len(LAYOUTS)]
        self._layout_chosen = True
        self._apply_layout()
        focused = self.focused
        if focused is not None and focused.id in ("detail", "hex-pane") and self.layout_mode != "hex":
            if self.layout_mode == "list" or focused.id == "hex-pane":
                self.query_one(PacketList).focus()
        self.call_after_refresh(self._reveal_cursors)

    def _panes(self) -> list[Widget]:
        """The panes of the shown tab, in Tab order."""
        active = self.query_one(TabbedContent).active
        if active == "packets":
            ids = ["flows", "packet-list"]
            ids += ["detail"] if self.layout_mode != "list" else []
            ids += ["hex-pane"] if self.layout_mode == "hex" else []
        elif active == "calls":
            ids = ["calls-table", "call-detail"]
        elif active.startswith("report-"):
            ids = [f"{active}-table", f"{active}-tree"]
        else:
            ids = [MAIN_PANES[active].removeprefix("#")]
        return [self.query_one(f"#{i}") for i in ids]

    def _main_pane(self) -> Widget:
        """The pane a tab opens on: its list or table."""
        active = self.query_one(TabbedContent).active
        return self.query_one(MAIN_PANES.get(active, f"#{active}-table"))

    def _pane_of(self, widget: Widget | None) -> Widget | None:
        panes = self._panes()
        while widget is not None:
            if widget in panes:
                return widget
            widget = widget.parent if isinstance(widget.parent, Widget) else None
        return None

    def action_focus_next(self) -> None:
        self._cycle(1)

    def action_focus_previous(self) -> None:
        self._cycle(-1)

    def _cycle(self, step: int) -> None:
        """Tab between the panes of the shown tab; on a narrow terminal the flows pane, hidden
        there, opens in the list's place when its turn comes and closes when focus leaves it."""
        if self.screen is not self.screen_stack[0] or self._zoomed is not None:
            self.screen.focus_next() if step > 0 else self.screen.focus_previous()
            return
        panes = self._panes()
        here = self._pane_of(self.focused)
        if here is None:  # from the filter bar or a click elsewhere: the tab's main pane
            target = self._main_pane()
        else:
            target = panes[(panes.index(here) + step) % len(panes)]
        if target.id == "flows" and self.has_class("narrow"):
            self.add_class("flows-open")
            self.call_after_refresh(target.focus)
        else:
            target.focus()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if event.widget.id != "flows":
            self.remove_class("flows-open")

    def open_flows(self) -> None:
        """The flows pane: beside the list on a wide terminal, in its place on a narrow one."""
        self.show_tab("packets")
        if self.has_class("narrow"):
            self.add_class("flows-open")
        self.call_after_refresh(self.query_one(FlowsTable).focus)

    def action_zoom(self) -> None:
        """`z`: the focused pane takes the whole tab; again, back."""
        if self._zoomed is not None:
            self._unzoom()
            return
        pane = self._pane_of(self.focused)
        if pane is None:
            return
        tab = self.query_one(TabbedContent).active_pane
        node: Widget = pane
        while node is not tab and isinstance(node.parent, Widget):
            for sibling in node.parent.children:
                if sibling is not node and not isinstance(sibling, Input):
                    sibling.add_class("zoom-hidden")
            node.add_class("zoom-full")
            node = node.parent
        self._zoomed = pane
        self.call_after_refresh(self._reveal_cursors)

    def _unzoom(self) -> None:
        if self._zoomed is None:
            return
        self._zoomed = None
        self.query(".zoom-hidden").remove_class("zoom-hidden")
        self.query(".zoom-full").remove_class("zoom-full")
        self.call_after_refresh(self._reveal_cursors)

    # -- loading ------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="load")
    def load(self) -> None:
        worker = get_current_worker()
        preview = open_preview(self.path)
        if preview is not None and len(preview.records):
            # Rows at once: the first megabyte is indexed in milliseconds, the whole file next.
            self.call_from_thread(
                self._preview,
                CaptureModel(Session(build_index(preview), self.registry), self.config.colour_rules),
            )
        try:
            session = Session.open(self.path, self.registry)
        except Exception as exc:  # CaptureError and friends: one line, no traceback
            self.call_from_thread(self._failed, f"cannot open {self.path}: {exc}")
            return
        model = CaptureModel(session, self.config.colour_rules)
        self.call_from_thread(self._loaded, model)

        def progress(done: int, total: int) -> None:
            self.call_from_thread(self._progress, done, total)

        model.decode_all(progress, lambda: worker.is_cancelled)
        if not worker.is_cancelled:
            self.call_from_thread(self._decoded)

    def _failed(self, text: str) -> None:
        self.query_one(ProgressBar).display = False
        self._status(text)
        self.say(text, "error")

    def _preview(self, model: CaptureModel) -> None:
        if self.model is None:
            self.query_one(PacketList).set_model(model)
            self._status(f"reading {self.path}: first {len(model)} packets")

    def _loaded(self, model: CaptureModel) -> None:
        keep = self.query_one(PacketList).cursor if self.model is None else 0
        self.model = model
        self.query_one(PacketList).set_model(model)
        self.query_one(FlowsTable).fill(model)
        self.query_one(Timeline).set_model(model)
        self._status(f"{counted(len(model), 'packet')}, {counted(len(model.index.flows), 'flow')}, decoding")
        self.query_one(PacketList).move_to(keep)

    def _progress(self, done: int, total: int) -> None:
        if not self.query(ProgressBar):
            return  # the app closed during the pass
        self.query_one(ProgressBar).update(total=max(total, 1), progress=done)
        self.query_one(PacketList).refresh()

    def _decoded(self) -> None:
        """The pass's results in the views. A growing capture calls it after every look: only the
        views on screen are filled again, each only when what it shows changed, keeping its
        cursor (a view is brought up to date when its tab is shown)."""
        model = self.model
        assert model is not None
        # Done: the bar gives its columns back to the status line.
        self.query_one(ProgressBar).display = False
        self._protocols = model.decoded.protocol.vocabulary()
        if self._on_screen("packets"):
            self.query_one(FlowsTable).fill(model)
        ts = model.index.records.ts_ns
        first = int(ts[0]) / 1e9 if len(ts) else 0.0  # the packet list's Time counts from it
        calls = model.decoded.calls
        offset = self._live_offset(calls)
        if self._on_screen("calls") and self._changed("calls", (offset, calls)):
            table = self.query_one(CallsTable)
            row, following = table.cursor_row, model.growing and table.cursor_row >= table.row_count - 1
            table.fill(calls, first, model.time_digits(), offset)
            _restore_cursor(table, row, following)
        self._empty("calls", "#calls-empty", bool(calls))
        for name in self._extra_reports():
            rows = model.shown_reports.get(name, [])
            offset = self._live_offset(rows)
            if self._on_screen(f"report-{name}") and self._changed(name, (offset, rows)):
                report = self.query_one(f"#report-{name}-table", ReportTable)
                row, following = (
                    report.cursor_row,
                    model.growing and report.cursor_row >= report.row_count - 1,
                )
                report.fill(rows, FIRST_COLUMNS.get(name, ()), DEFAULT_CELLS.get(name), offset)
                _restore_cursor(report, row, following)
            self._empty(name, f"#report-{name}-empty", bool(rows))
        findings = model.decoded.findings
        if self._on_screen("findings") and self._changed("findings", findings):
            self.query_one(FindingsTree).fill(findings)
        self._empty("findings", "#findings-empty", bool(findings))
        if self._on_screen("statistics"):
            self.query_one(StatsView).set_model(model)
        if model.growing and self._on_screen("timeline"):
            self.query_one(Timeline).set_model(model)
        self.query_one(PacketList).refresh()
        self._update_status()
        if self.display_filter:
            text, self.display_filter = self.display_filter, None
            self.use_filter(text)

    def _live_offset(self, rows: list[dict[str, object]]) -> int:
        """Where a results table starts: a growing capture's shows its latest LIVE_TABLE_ROWS rows
        until the capture ends (a table is filled again on each look that changes it, and a
        DataTable takes ~50 us a row: 50,000 calls would hold the screen 2.5 s a look)."""
        if self.model is None or not self.model.growing or self._growing_done:
            return 0
        return max(0, len(rows) - LIVE_TABLE_ROWS)

    def _on_screen(self, tab: str) -> bool:
        """Whether a view is to be filled now: always for a capture file (once, when its pass
        ends); for a growing capture only the shown tab's (filling every view after every look
        would cost what the capture holds, not what arrived)."""
        model = self.model
        return model is None or not model.growing or self.query_one(TabbedContent).active == tab

    def on_tabbed_content_tab_activated(self, _event: TabbedContent.TabActivated) -> None:
        if self.model is not None and self.model.growing:
            self._decoded()

    def _changed(self, view: str, rows: object) -> bool:
        """Whether `rows` differ from what `view` shows (and remember them)."""
        if view in self._shown_rows and self._shown_rows[view] == rows:
            return False
        self._shown_rows[view] = rows
        return True

    def _empty(self, name: str, label: str, has_rows: bool) -> None:
        """An empty view says what is empty and why, instead of an empty table."""
        widget = self.query_one(label, Label)
        widget.display = not has_rows
        if not has_rows:
            widget.update(literal(empty_reason(name, self._protocols)))

    def _status(self, text: str) -> None:
        self.query_one("#status-text", Label).update(literal(text))

    def _update_status(self) -> None:
        """The counters: packets (shown of all when a flow or filter narrows the list), flows,
        calls, findings."""
        model = self.model
        if model is None:
            return
        if self.live is not None or self.follow:
            self._status(self._live_text())
            return
        packets = self.query_one(PacketList)
        shown = packets.count if packets.rows is not None else None
        narrowed = self._narrowed if packets.rows is not None else None
        bar = self.query_one(ProgressBar)
        width = self._width - (30 if bar.display else 0)
        self._status(status_line(len(model), shown, model, narrowed, width))

    # -- live capture and followed files --------------------------------------------------------

    def _live_tick(self) -> None:
        """Every LIVE_REFRESH seconds: the counters, and a look at what the file gained (in a
        worker; the next look waits for it to finish, so a busy link updates the view less often
        rather than falling behind)."""
        live = self.live
        if self._terminated:
            self.exit()
            return
        if live is not None and not live.running and not self._live_ended:
            self._live_ended = True
            live.stop()  # closes the spool with its statistics; keeps the capture's error, if any
            if live.error is not None:
                error = clean(live.error)
                self.notify(error, title="live capture stopped", severity="error", timeout=30, markup=False)
        self._status(self._live_text())
        if self._growing_busy or self._growing_done:
            return
        self._growing_busy = True
        self.grow_live(self._live_ended)

    def _live_text(self) -> str:
        live = self.live
        if live is None:  # --follow
            shown = len(self.model) if self.model is not None else 0
            return f"following {clean(self.path)}: {counted(shown, 'packet')} (q quits)"
        return live_text(live, self._live_ended, self.model)

    @work(thread=True, group="live")
    def grow_live(self, final: bool) -> None:
        """Index what the file gained and decode it from the pass's state: a look costs what
        arrived since the last one. The rows are shown first, their decode next."""
        started = time.monotonic()
        model = self.model
        try:
            if model is None:
                session = Session.open(self.path, self.registry, growing=True)
                model = CaptureModel(session, self.config.colour_rules)
                model.growing = True
                model.shown = 0
            model.grow(final)
        except Exception as exc:  # a file not written yet (--follow), or unreadable: said once
            self.call_from_thread(self._live_unreadable, exc)
            return
        self.call_from_thread(self._live_grown, model, len(model.index))
        try:
            model.decode_more(final=final)
        except Exception as exc:  # a bug of ours: said once, and the view stops following the file
            self.call_from_thread(self._live_failed, exc)
            return
        self.call_from_thread(self._live_decoded, model, final, started)

    def _live_failed(self, exc: Exception) -> None:
        self._growing_busy = False
        self._growing_done = True
        self.say(f"decoding what arrived failed ({type(exc).__name__}: {exc}); the view stops here", "error")

    def _live_unreadable(self, exc: Exception) -> None:
        self._growing_busy = False
        text = f"cannot read {self.path} yet: {exc}"
        if text != self._live_problem:
            self._live_problem = text
            self.say(text, "warning")

    def _live_grown(self, model: CaptureModel, n: int) -> None:
        """The new packets in the list (before their decode): the cursor follows them when it was
        on the last row (Wireshark's auto-scroll), else it stays where the user put it."""
        packets = self.query_one(PacketList)
        if self.model is None:
            self.model = model
            model.shown = n
            packets.set_model(model)
            self.query_one(Timeline).set_model(model)
            packets.move_to(packets.count - 1)
        elif n != model.shown:
            packets.take_new(n)
        self._status(self._live_text())

    def _live_decoded(self, model: CaptureModel, final: bool, started: float) -> None:
        self._growing_busy = False
        self._growing_done = final
        self._decoded()
        if self._filter_text and not any(w.group == "filter" and w.is_running for w in self.workers):
            self.apply_filter(self._filter_text, again=True)
        self._status(self._live_text())
        if self._live_log is not None:
            _log_refresh(self._live_log, len(model), time.monotonic() - started)

    def action_pause(self) -> None:
        live = self.live
        if live is None or self._live_ended:
            return
        if live.paused:
            live.resume()
        else:
            live.pause()
        self._status(self._live_text())

    # -- packets ------------------------------------------------------------------------------

    def on_packet_list_highlighted(self, message: PacketList.Highlighted) -> None:
        # Wait until the cursor rests: rebuilding the detail tree on every step of a held
        # page-down key would cost more than the scrolling itself.
        if self._detail_timer is not None:
            self._detail_timer.stop()
        if message.following:
            # A busy capture moves the cursor every look: decoding each newest packet's flow up
            # to it would take a core; the detail waits until the user stops on a packet.
            self.query_one(DetailTree).note(FOLLOWING_NOTE)
            self.query_one(HexView).show(b"")
            self._detail_for = None
            return
        index = message.index
        self._detail_timer = self.set_timer(DETAIL_DELAY, lambda: self.load_detail(index))

    def on_packet_list_chosen(self, message: PacketList.Chosen) -> None:
        if self.layout_mode == "list":
            self.layout_mode = "detail"
            self._apply_layout()
        self.query_one(DetailTree).focus()

    @work(thread=True, exclusive=True, group="detail")
    def load_detail(self, index: int) -> None:
        """Decoding the selected packet (its flow up to it) happens off the UI thread."""
        model = self.model
        if model is None:
            return
        worker = get_current_worker()
        detail = model.detail(index, lambda: worker.is_cancelled)
        if not worker.is_cancelled:
            self.call_from_thread(self._show_detail, detail)

    def _show_detail(self, detail: PacketDetail) -> None:
        if not self.query(DetailTree):
            return  # the app closed while the worker decoded
        self._detail_for = detail.index
        self.query_one(DetailTree).show(detail)
        self.query_one(HexView).show(detail.frame)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[Any]) -> None:
        if event.control.id == "detail":
            span: Span = event.node.data
            self.query_one(HexView).highlight(span)

    def on_packet_list_notice(self, message: PacketList.Notice) -> None:
        self.say(message.text)

    def on_detail_tree_add_column(self, message: DetailTree.AddColumn) -> None:
        self.query_one(PacketList).add_column(message.field)
        self.say(f"column added: {message.field}")

    def on_detail_tree_apply_filter(self, message: DetailTree.ApplyFilter) -> None:
        self.use_filter(message.text)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.control.id == "flows" and event.row_key.value is not None:
            self.show_flow(int(event.row_key.value))
        elif event.control.id == "calls-table" and event.row_key.value is not None:
            self.show_call(int(event.row_key.value))
        elif event.control.id == "report-sessions-table" and event.row_key.value is not None:
            self.open_ice(int(event.row_key.value))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if not self.is_running:
            return  # a table filled by a last worker result while the app shuts down
        if event.control.id == "calls-table" and event.row_key.value is not None:
            self.query_one(CallTree).show(self._calls()[int(event.row_key.value)])
        elif (event.control.id or "").startswith("report-") and event.row_key.value is not None:
            name = (event.control.id or "")[len("report-") : -len("-table")]
            rows = self.model.shown_reports.get(name, []) if self.model is not None else []
            n = int(event.row_key.value)
            if n < len(rows):
                self.query_one(f"#report-{name}-tree", RowTree).show(f"{name} {n}", rows[n])
                self._sparklines(name, rows[n])
                self.query_one(f"#report-{name}-phases", PhaseChart).show(rows[n])
                line = self.query_one(f"#report-{name}-summary", Label)
                line.display = name == "sessions"
                if name == "sessions":
                    bad = "bold red" if rows[n].get("failed_phase") else ""
                    line.update(Text(clean(session_line(rows[n])), style=bad))  # wraps at 80 columns

    def _sparklines(self, name: str, row: dict[str, object]) -> None:
        """A stream's jitter and loss per second, when the row has them (RTP streams)."""
        jitter, lost = row.get("jitter_ms_per_second"), row.get("lost_per_second")
        shown = isinstance(jitter, list) and isinstance(lost, list) and bool(jitter)
        for part in ("label", "jitter", "lost"):
            self.query_one(f"#report-{name}-spark-{part}").display = shown
        if shown:
            assert isinstance(jitter, list) and isinstance(lost, list)
            self.query_one(f"#report-{name}-spark-jitter", Sparkline).data = [float(x) for x in jitter]
            self.query_one(f"#report-{name}-spark-lost", Sparkline).data = [float(x) for x in lost]
            peak, total = max(jitter), sum(lost)
            text = f"per second: jitter (max {peak:.3f} ms, top), lost packets ({total} in all, below)"
            self.query_one(f"#report-{name}-spark-label", Label).update(literal(text))

    def on_findings_tree_jump(self, message: FindingsTree.Jump) -> None:
        self.go_to_packet(message.index)

    def _calls(self) -> list[dict[str, object]]:
        return self.model.decoded.calls if self.model is not None else []

    # -- display filter -----------------------------------------------------------------------

    def field_names(self) -> list[str]:
        """Every display-filter field name, for Tab completion (computed once)."""
        if self._fields is None:
            self._fields = sorted({info.abbrev for info in known_fields(self.registry)})
        return self._fields

    def action_focus_filter(self) -> None:
        self._unzoom()
        self.show_tab("packets")
        self.query_one(FilterBar).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        """Validated as you type: the bar turns red while the filter does not compile (an unknown
        field too: compile_filter names it and the closest known ones)."""
        if event.input.id != "filter":
            return
        text = event.value.strip()
        try:
            if text:
                compile_filter(text, self.registry)
            event.input.remove_class("invalid")
            event.input.tooltip = None
        except FilterError as exc:
            event.input.add_class("invalid")
            event.input.tooltip = literal(exc)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "filter":
            return
        text = event.value.strip()
        if not text:
            self._show_all()
            return
        if event.input.has_class("invalid"):
            self.say(f"bad filter: {event.input.tooltip}", "error")
            return
        remember_filter(self.config, text)
        self._report_config_problems()
        self._filter_text = text
        self._narrowed = f"filter: {text}"
        self.apply_filter(text)

    def use_filter(self, text: str) -> None:
        """Put `text` in the bar and apply it (the palette's saved filters, `-Y`, the detail's `a`)."""
        bar = self.query_one(FilterBar)
        self.show_tab("packets")
        bar.value = text
        try:
            compile_filter(text, self.registry)
        except FilterError as exc:
            self.say(f"bad filter: {exc}", "error")
            return
        self._filter_text = text
        self._narrowed = f"filter: {text}"
        self.apply_filter(text)

    def _report_config_problems(self) -> None:
        while self.config.problems:
            self.say(self.config.problems.pop(0), "warning")

    @work(thread=True, exclusive=True, group="filter")
    def apply_filter(self, text: str, again: bool = False) -> None:
        """The packets `text` matches, in a worker; `again`: a growing capture's filter applied
        again after a look (the list is updated quietly, the focus stays where it is)."""
        model = self.model
        if model is None:
            return
        worker = get_current_worker()
        # The first pass of a file ends before a filter's; a growing capture's never ends (its
        # passes and the filter's take turns under model.pass_lock).
        while not model.decoded.complete and not model.growing and not worker.is_cancelled:
            worker_sleep(0.05)
        rows = model.filter_rows(text, lambda: worker.is_cancelled)
        if rows is not None and not worker.is_cancelled:
            if again:
                self.call_from_thread(self._filtered_again, text, rows)
            else:
                self.call_from_thread(self._filtered, text, rows)

    def _filtered_again(self, text: str, rows: list[int]) -> None:
        if text != self._filter_text or self.query_one(PacketList).rows is None:
            return  # the filter was changed or cleared meanwhile
        self.query_one(PacketList).show_filtered(rows)
        self._update_status()

    def _filtered(self, text: str, rows: list[int]) -> None:
        packets = self.query_one(PacketList)
        packets.show_only(rows)
        packets.focus()
        self._update_status()
        if not rows:
            self.say(f"no packet matches {text}")

    def ask_filter_name(self) -> None:
        """ "save filter": the filter in the bar under a name the user gives."""
        text = self.query_one(FilterBar).value.strip()
        if not text:
            self.say("type a filter in the bar (/) first, then save it", "warning")
            return

        def saved(name: str | None) -> None:
            if not name:
                return
            self.config.saved_filters[name] = text
            try:
                save_config(self.config)
            except OSError as exc:
                self.say(f"cannot save the settings: {exc.strerror or exc}", "error")
                return
            self.say(f"saved filter {name}: {text}")

        self.push_screen(NameScreen(f"a name for the filter {text}"), saved)

    # -- ladder -------------------------------------------------------------------------------

    def action_ladder(self) -> None:
        """The ladder of what is selected: a report row with `flows` (a WebRTC session: every
        endpoint it involved) or a `flow` (a stream), a call (its stream only), the timeline's
        lane, the flow under the cursor in the flows table, or the selected packet's flow."""
        model = self.model
        if model is None:
            return
        active = self.query_one(TabbedContent).active
        row = self._selected_row()
        if row is not None:
            flows = row.get("flows")
            chosen = [int(f) for f in flows] if isinstance(flows, list) else []
            if not chosen:
                own = self._row_flow(row)
                chosen = [own] if own is not None else []
            if chosen and active == "report-sessions" and is_session(row) and isinstance(flows, list):
                self.build_session_ladder(row, f"session {row.get('id')}")
                return
            if chosen:
                stream = row.get("stream_id") if active == "calls" else None
                if isinstance(flows, list):
                    what = f"session {row.get('id')}"
                elif isinstance(stream, int):
                    what = f"call {row.get('path')} (flow {chosen[0]}, stream {stream})"
                else:
                    what = f"flow {chosen[0]}"
                self.build_ladder(chosen, what, stream if isinstance(stream, int) else None)
                return
        fid: int | None = None
        if active == "timeline":
            fid = self.query_one(Timeline).lane if model.index.flows else None
        elif self.query_one(FlowsTable).has_focus and self.query_one(FlowsTable).row_count:
            fid = self.query_one(FlowsTable).cursor_row
        else:
            packets = self.query_one(PacketList)
            if packets.count:
                fid = int(model.index.flow[packets.packet_at(packets.cursor)])
        if fid is None or fid < 0:
            self.say("no flow selected for a ladder", "warning")
            return
        self.build_ladder([fid], f"flow {fid}")

    def _selected_row(self) -> dict[str, object] | None:
        """The row under the cursor of the Calls tab or a report tab, if one of them is shown."""
        active = self.query_one(TabbedContent).active
        if self.model is None or not (active == "calls" or active.startswith("report-")):
            return None
        name = "calls" if active == "calls" else active[len("report-") :]
        table = self.query_one(f"#{active}-table", DataTable)
        rows = self._calls() if name == "calls" else self.model.shown_reports.get(name, [])
        if not table.row_count or not 0 <= table.cursor_row < table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value  # the row's index
        k = int(key) if key is not None else -1
        return rows[k] if 0 <= k < len(rows) else None

    def _row_flow(self, row: dict[str, object]) -> int | None:
        """The flow of a report row: its `flow`, else the flow between its `src` and `dst` (an
        RTP stream's row), either way round."""
        if self.model is None:
            return None
        return row_flow(row, flow_ends(self.model.session))

    @work(thread=True, exclusive=True, group="ladder")
    def build_ladder(self, flows: list[int], what: str, stream_id: int | None = None) -> None:
        model = self.model
        assert model is not None
        width = max(60, self.size.width - 10)
        if len(flows) == 1:
            if stream_id is None:
                lines = text_ladder(model.session, flows[0], width)
            else:  # a call: its stream's frames only
                lines = text_ladder(model.session, flows[0], width, stream_id=stream_id)
            title = f"{what}: {model.flow_label(flows[0])}"
        else:
            origin = capture_origin(model.session)  # times as the packet list's
            lines = draw_ladder(list(arrows(model.session, flows)), width, origin=origin)
            title = f"{what}: flows {', '.join(map(str, flows))}"
        self._ladder_flows = flows
        self._ladder_stream = stream_id if len(flows) == 1 else None
        self.call_from_thread(self.push_screen, LadderScreen(lines, title))

    # -- NAT/ICE panel ------------------------------------------------------------------------

    def action_ice(self) -> None:
        """`I`: the NAT/ICE panel of the session under the Sessions tab's cursor (from another
        tab: the Sessions tab's first or selected session)."""
        if self.model is None:
            return
        if "report-sessions" not in self.tab_titles():
            self.say("no NAT/ICE panel: the sessions analysis is not loaded", "warning")
            return
        if self.query_one(TabbedContent).active != "report-sessions":
            self.show_tab("report-sessions")
        table = self.query_one("#report-sessions-table", DataTable)
        if not table.row_count:
            self.say("no WebRTC session in this capture: no NAT/ICE panel", "warning")
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        self.open_ice(int(key) if key is not None else 0)

    def open_ice(self, n: int) -> None:
        """The NAT/ICE panel of the sessions report's row n (a TURN allocation has none: its row
        says all there is)."""
        rows = self.model.shown_reports.get("sessions", []) if self.model is not None else []
        if not 0 <= n < len(rows) or self.model is None:
            return
        row = rows[n]
        nat = row.get("kind") == "nat"
        if not is_session(row) and not nat:
            self.say("a TURN allocation: its row is all there is (the NAT/ICE panel is a session's)")
            return
        start = capture_start(self.model.session)
        title = f"NAT of {row.get('inside')}" if nat else f"NAT/ICE of session {row.get('id')}"
        self.push_screen(IceScreen(row, start, f"{title} (Esc closes)"))

    @work(thread=True, exclusive=True, group="ladder")
    def build_session_ladder(self, row: dict[str, object], what: str) -> None:
        """A WebRTC session's ladder: its endpoints named by role, its peers' STUN and TURN
        exchanges, relayed media as one path (report/sessionladder.py)."""
        model = self.model
        assert model is not None
        rows = model.shown_reports.get("sessions", [])
        lines, flows = session_ladder(model.session, row, rows, max(60, self.size.width - 10))
        self._ladder_flows = flows
        self._ladder_stream = None
        title = f"{what}: flows {', '.join(map(str, flows))}"
        self.call_from_thread(self.push_screen, LadderScreen(lines, title))

    # -- export -------------------------------------------------------------------------------

    def action_export(self) -> None:
        """`e`: the view to a file the user names: packets (displayed or marked) to pcapng, a report
        tab's rows to JSON, the timeline (or a session's, a stream's flows) to Mermaid."""
        model = self.model
        if model is None:
            self.say("nothing to export yet: the capture is still loading", "warning")
            return
        active = self.query_one(TabbedContent).active
        if isinstance(self.screen, LadderScreen):  # its `e` calls app.export: the ladder's flows
            active = "ladder"
        if active == "packets":
            default, choices = default_path(self.path, "packets", ".pcapng"), ["displayed", "marked"]
        elif active in ("timeline", "ladder"):
            default, choices = default_path(self.path, active, ".mmd"), ["mermaid"]
        elif active == "statistics":
            shown = self.query_one(StatsView).shown_rows()
            if shown is None:
                self.say("the statistics are still being computed: e again in a moment", "warning")
                return
            default, choices = default_path(self.path, f"statistics-{shown[0]}", ".json"), ["json"]
        else:
            name = "calls" if active == "calls" else active.removeprefix("report-")
            default, choices = default_path(self.path, name, ".json"), ["json"]

        def chosen(choice: ExportChoice | None) -> None:
            if choice is not None:
                self._write_export(active, Path(choice.path).expanduser(), choice.which)

        self.push_screen(ExportScreen(default, choices), chosen)

    def _write_export(self, active: str, target: Path, which: str) -> None:
        model = self.model
        assert model is not None
        try:
            if active == "packets":
                packets = self.query_one(PacketList)
                rows = packet_rows(which, packets.marked, packets.rows, len(model))
                if which == "marked" and not rows:
                    self.say("no packet is marked (m marks the packet under the cursor)", "warning")
                    return
                count = write_pcapng(model.session, rows, target)
                self.say(f"wrote {count} {which} packets to {target.resolve()}")
            elif active in ("timeline", "ladder"):
                flows = self._ladder_flows if active == "ladder" else []
                stream = self._ladder_stream if active == "ladder" else None
                if len(flows) == 1 and stream is not None:  # a call: its stream, as the screen
                    flow = model.session.flows[flows[0]]
                    items = list(arrows(model.session, flows, stream_id=stream))
                    order = client_first(items, str(flow.client), str(flow.server))
                    lines = list(mermaid_lines(items, order))
                elif len(flows) == 1:  # one flow: its client drawn first, as the ladder does
                    lines = list(mermaid(model.session, flow=flows[0]))
                else:
                    lines = list(mermaid(model.session, flows=flows or None))
                target.write_text("\n".join(lines) + "\n")
                what = f"flows {', '.join(map(str, flows))}" if flows else "the capture"
                if len(flows) == 1 and stream is not None:
                    what = f"stream {stream} of flow {flows[0]}"
                self.say(f"wrote the sequence diagram (Mermaid) of {what} to {target.resolve()}")
            elif active == "statistics":
                shown = self.query_one(StatsView).shown_rows()
                name, table = shown if shown is not None else ("statistics", [])
                target.write_text(json.dumps(table, indent=1, ensure_ascii=False, default=str) + "\n")
                self.say(f"wrote {counted(len(table), 'row')} of the {name} statistics to {target.resolve()}")
            else:
                name = "calls" if active == "calls" else active.removeprefix("report-")
                report = report_rows(model, name)
                target.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str) + "\n")
                self.say(f"wrote {len(report)} {name} to {target.resolve()}")
        except OSError as exc:
            self.say(f"cannot write {target}: {exc.strerror or exc}", "error")

    # -- the other engineers' screens ----------------------------------------------------------

    def action_follow(self) -> None:
        """`F`: the selected packet's flow, or in Calls the selected call (its stream's messages)."""
        model = self.model
        if model is None:
            return
        if self.query_one(TabbedContent).active == "calls":
            row = self._selected_row()
            if row is None:
                self.say("no call selected to follow", "warning")
                return
            flow, stream = int(str(row["flow"])), row.get("stream_id")
            self.push_screen(
                FollowScreen(model, flow, stream_id=stream if isinstance(stream, int) else None, call=row)
            )
            return
        row = self._selected_row()
        own = self._row_flow(row) if row is not None else None
        if own is not None:  # a report row with a flow (a stream, a TURN allocation): that flow
            self.push_screen(FollowScreen(model, own))
            return
        packets = self.query_one(PacketList)
        fid = int(model.index.flow[packets.packet_at(packets.cursor)]) if packets.count else -1
        if fid < 0:
            self.say("this packet belongs to no TCP or UDP flow: nothing to follow", "warning")
            return
        self.push_screen(FollowScreen(model, fid))

    def action_find(self) -> None:
        """Ctrl+F: Wireshark's Find Packet (a string, hex bytes, a regex or a display filter)."""

        def chosen(query: FindQuery | None) -> None:
            if query is not None:
                self._find_query = query
                self.run_find(query, False)

        self.push_screen(FindScreen(self._find_query), chosen)

    def action_find_again(self, backwards: bool) -> None:
        if self._find_query is None:
            self.say("nothing to find again: Ctrl+F asks what to find", "warning")
            return
        self.run_find(self._find_query, backwards)

    @work(thread=True, exclusive=True, group="find")
    def run_find(self, query: FindQuery, backwards: bool) -> None:
        model = self.model
        if model is None:
            return
        worker = get_current_worker()
        packets = self.query_one(PacketList)
        start = packets.packet_at(packets.cursor) if packets.count else -1
        try:
            found = find_next(model, query, start, packets.rows, backwards, lambda: worker.is_cancelled)
        except ValueError as exc:
            self.call_from_thread(self.say, f"cannot find: {exc}", "error")
            return
        if worker.is_cancelled:
            return
        if found is None:
            self.call_from_thread(self.say, f"not found: {query.text}", "warning")
            return
        self.call_from_thread(self.go_to_packet, found.packet)
        if found.wrapped:
            where = "start" if backwards else "end"
            self.call_from_thread(self.say, f"found frame {found.packet + 1} after passing the {where}")

    def action_go_to(self) -> None:
        """Ctrl+G: go to a frame by its number."""

        def chosen(frame: int | None) -> None:
            if frame is None or self.model is None:
                return
            if not 1 <= frame <= len(self.model):
                self.say(f"no frame {frame}: the capture has {len(self.model)}", "warning")
                return
            self.go_to_packet(frame - 1)

        packets = self.query_one(PacketList)
        current = packets.packet_at(packets.cursor) + 1 if packets.count else None
        self.push_screen(GoToScreen(len(self.model) if self.model is not None else 0, current), chosen)

    def action_decode_as(self) -> None:
        """`d`: decode-as rules, applied without a restart: a new registry with the rules, the
        capture opened again, the list kept at the same packet."""
        rules = [_rule_text(r) for r in self.registry.decode_as]

        def chosen(new: list[str] | None) -> None:
            if new is None or new == rules:
                return
            try:
                parsed = [DecodeAs.parse(r) for r in new]
                for rule in parsed:
                    if rule.protocol not in self.registry.decoders:
                        known = ", ".join(sorted(self.registry.decoders))
                        raise RegistryError(f"no decoder {rule.protocol!r} (known: {known})")
            except RegistryError as exc:
                self.say(str(exc), "error")
                return
            self.registry = replace(self.registry, decode_as=parsed, expectations={})
            self.display_filter = self._filter_text  # the filter comes back once decoded again
            self.query_one(DetailTree).registry = self.registry
            self.model = None
            self.query_one(ProgressBar).display = True
            self.say("decode as: " + ("; ".join(new) or "no rules") + ": decoding again")
            self.load()

        self.push_screen(DecodeAsScreen(rules, list(self.registry.decoders)), chosen)

    def action_copy_grpcurl(self) -> None:
        """`y` in Calls: the call as a grpcurl command line, to the clipboard and shown."""
        row = self._selected_row() if self.query_one(TabbedContent).active == "calls" else None
        if row is None:
            self.say("y copies a gRPC call as grpcurl: select one in Calls (c)", "warning")
            return
        command = row.get("grpcurl")
        if not isinstance(command, str) or not command:
            self.say("this call has no grpcurl command (its request was not seen)", "warning")
            return
        self.copy_to_clipboard(command)
        shown = "\n".join(clean(line) for line in command.splitlines())  # a heredoc keeps its lines
        self.notify(shown, title="copied as grpcurl", markup=False, timeout=15)

    # -- navigation ---------------------------------------------------------------------------

    def show_tab(self, name: str) -> None:
        """Switch views and focus the new one (else focus would stay in the hidden pane)."""
        if name not in self.tab_titles():
            self.say(f"no {name.removeprefix('report-')} view: that analysis is not loaded", "warning")
            return
        self._unzoom()
        self.query_one(TabbedContent).active = name
        self._main_pane().focus()

    def action_show_tab(self, name: str) -> None:
        self.show_tab(name)

    def show_flow(self, fid: int) -> None:
        model = self.model
        if model is None:
            return
        self.show_tab("packets")
        self.remove_class("flows-open")
        rows = np.flatnonzero(model.index.flow == fid).tolist()
        packets = self.query_one(PacketList)
        packets.show_only(rows)
        packets.focus()
        self._filter_text = None
        self._narrowed = f"flow {fid}: {model.flow_label(fid)} (Esc: all packets)"
        self._update_status()

    def show_call(self, n: int) -> None:
        calls = self._calls()
        if not 0 <= n < len(calls):
            return
        self.show_tab("calls")
        table = self.query_one(CallsTable)
        table.move_cursor(row=n)
        table.focus()
        self.query_one(CallTree).show(calls[n])

    def show_report_row(self, name: str, n: int) -> None:
        """Row n of a report tab (a stream, a session), selected and opened."""
        self.show_tab(f"report-{name}")
        table = self.query_one(f"#report-{name}-table", ReportTable)
        table.move_cursor(row=n)
        table.focus()

    def go_to_packet(self, index: int) -> None:
        self.show_tab("packets")
        packets = self.query_one(PacketList)
        packets.go_to_packet(index)
        packets.focus()
        self._update_status()

    def _show_all(self) -> None:
        packets = self.query_one(PacketList)
        if packets.rows is not None:
            packets.show_only(None)
        self._filter_text = self._narrowed = None
        self._update_status()

    async def action_back(self) -> None:
        self._unzoom()
        for worker in self.workers:
            if self.live is None and not self.follow and worker.group == "load" and worker.is_running:
                worker.cancel()
                self.say("loading stopped (Esc): the packets read so far are shown")
                return
        if self.has_class("flows-open"):
            self.remove_class("flows-open")
            self.query_one(PacketList).focus()
            return
        bar = self.query_one(FilterBar)
        if bar.has_focus or bar.value:
            bar.value = ""
        self._show_all()
        self.show_tab("packets")

    def action_help(self) -> None:
        self.push_screen(HelpScreen())


def status_line(total: int, shown: int | None, model: CaptureModel, narrowed: str | None, width: int) -> str:
    """The counters (`shown` of `total` packets when a flow or filter narrows the list, flows,
    calls, findings) and what narrows the list. In `width` columns: the long wording when it
    fits, else the short one, what narrows the list cut with "…" only if even that is too long."""
    counts = model.finding_counts()
    flows, calls = len(model.index.flows), len(model.decoded.calls)
    found, errors = sum(counts.values()), counts["error"]
    packets = counted(total, "packet")
    long = ", ".join(
        (
            packets if shown is None else f"{shown} of {packets}",
            counted(flows, "flow"),
            counted(calls, "gRPC call"),
            f"{counted(found, 'finding')} ({counted(errors, 'error')})",
        )
    )
    if narrowed:
        long += f" · {narrowed}"
    if len(long) <= width:
        return long
    parts = [
        f"{total} pkts" if shown is None else f"{shown}/{total} pkts",
        counted(flows, "flow"),
        counted(calls, "call"),
        counted(found, "finding") + (f" ({errors} err)" if errors else ""),
    ]
    short = " · ".join(parts)
    if narrowed:
        room = width - len(short) - 3
        cut = narrowed if len(narrowed) <= room else narrowed[: max(0, room - 1)] + "…"
        short += f" · {cut}"
    return short


def _restore_cursor(table: DataTable[Any], row: int, following: bool = False) -> None:
    """A table filled again gets its cursor back on the same row (as far as it still has rows), or
    on the last row when it was `following` a growing capture's new rows there."""
    if following and table.row_count:
        table.move_cursor(row=table.row_count - 1, animate=False)
    elif row and table.row_count:
        table.move_cursor(row=min(row, table.row_count - 1), animate=False)


def _rule_text(rule: DecodeAs) -> str:
    """A rule as `-d` takes it: `tcp.port==50051,http2`, `udp.port==5000-5010,rtp`."""
    ports = str(rule.low) if rule.low == rule.high else f"{rule.low}-{rule.high}"
    return f"{rule.transport}.port=={ports},{rule.protocol}"


def run(
    path: str,
    registry: Registry,
    live: LiveCapture | None = None,
    display_filter: str | None = None,
    follow: bool = False,
) -> None:
    ProtoscopeApp(path, registry, live, display_filter, follow=follow).run()
