"""protoscope's Textual app: flows, packets, details and hex, gRPC calls, findings."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from time import sleep as worker_sleep
from typing import Any, ClassVar

import numpy as np
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.command import Hit, Hits, Provider
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import (
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    ProgressBar,
    Sparkline,
    Static,
    TabbedContent,
    TabPane,
    Tree,
)
from textual.worker import get_current_worker

from protoscope.captures.index import build_index
from protoscope.captures.live import LiveCapture
from protoscope.captures.source import open_preview
from protoscope.decoders.registry import Registry

from ..model import CaptureModel, PacketDetail
from ..report.export import write_pcapng
from ..report.ladder import arrows, draw, text_ladder
from ..session import Session
from .detail import DetailTree, HexView, Span
from .ladder import LadderScreen
from .packets import PacketList
from .phases import PhaseChart
from .text import clean, literal
from .timeline import Timeline
from .views import CallsTable, CallTree, FindingsTree, FlowsTable, ReportTable, RowTree

DETAIL_DELAY = 0.08
"""Seconds the packet cursor must rest before its detail is decoded and shown."""
LIVE_REFRESH = 1.0
"""Seconds between two looks at a live capture's spool. Each look re-reads the spool in a worker
(index, flows and the decoding pass: ~1 s per 100k packets) and the next waits for it to finish,
so on a busy link the view updates less often rather than falling behind."""

HELP = """\
protoscope keys

  Tab / Shift+Tab   move between panes          p  packets   c  calls   f  findings
  ↑ ↓ / j k         move                        PgUp PgDn / Space   page
  g / G             first / last packet         Enter   open (flow: its packets; packet: detail)
  Esc               back (all packets) / stop loading
  Ctrl+P            command palette: go to frame / flow / call / stream / session
  Ctrl+E            live capture: pause / resume (packets arriving while paused are not kept)
  ?                 this help                   q   quit

Capture text is shown literally: no markup; control, bidi and other format characters
are escaped (\\x1b, \\u202e).
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Static { width: 90; border: round $accent; padding: 1 2; background: $panel; }
    """

    def compose(self) -> ComposeResult:
        yield Static(HELP)


class GoTo(Provider):
    """Command palette: "frame N", "flow N", "call N", and a row of any report ("stream N",
    "session N", a plugin's)."""

    async def search(self, query: str) -> Hits:
        app = self.app
        assert isinstance(app, ProtoscopeApp)
        model = app.model
        if model is None:
            return
        words = query.lower().split()
        number = next((int(w) for w in words if w.isdigit()), None)
        targets: list[tuple[str, Callable[[], None]]] = []
        if number is not None:
            if 1 <= number <= len(model):
                targets.append((f"go to frame {number}", lambda: app.go_to_packet(number - 1)))
            if number < len(model.index.flows):
                label = clean(model.flow_label(number))
                targets.append((f"go to flow {number} ({label})", lambda: app.show_flow(number)))
            if number < len(model.decoded.calls):
                targets.append((f"go to call {number}", lambda: app.show_call(number)))
            for name in app._extra_reports():
                if number < len(model.decoded.reports.get(name, [])):
                    noun = clean(name[:-1] if name.endswith("s") else name)
                    targets.append(
                        (f"go to {noun} {number}", lambda name=name: app.show_report_row(name, number))  # type: ignore[misc]
                    )
        for name in ("packets", "calls", "findings"):
            targets.append((f"show {name}", lambda name=name: app.show_tab(name)))  # type: ignore[misc]
        matcher = self.matcher(query)
        for text, action in targets:
            score = matcher.match(text)
            if score > 0 or number is not None:
                yield Hit(max(score, 0.5), matcher.highlight(text), action, text=text)


class ProtoscopeApp(App[None]):
    TITLE = "protoscope"
    COMMANDS = App.COMMANDS | {GoTo}
    CSS = """
    TabbedContent { height: 1fr; }
    TabbedContent > ContentSwitcher { height: 1fr; }
    TabPane { height: 1fr; padding: 0; }
    #top { height: 55%; }
    #filter { height: 3; }
    #filter.invalid { border: tall $error; }
    #flows { width: 34%; }
    #bottom { height: 45%; }
    #detail { width: 1fr; border-top: solid $accent; }
    #hex-pane { width: 78; border-top: solid $accent; overflow-x: auto; }
    HexView { width: 76; }
    #status { height: 1; }
    #status Label { width: 1fr; }
    #status ProgressBar { width: 40; }
    #calls-table { height: 45%; }
    .report-table { height: 45%; }
    .report-tree { height: 1fr; border-top: solid $accent; }
    .spark { height: 2; display: none; }
    .spark-label { display: none; }
    .spark.lost > .sparkline--max-color { color: $error; }
    .narrow #top { layout: vertical; }
    .narrow #flows { width: 100%; height: 4; }
    .narrow #bottom { layout: vertical; }
    .narrow #detail { height: 1fr; width: 100%; }
    .narrow #hex-pane { width: 100%; height: 7; }
    #call-detail { height: 1fr; border-top: solid $accent; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
        Binding("p", "show_tab('packets')", "Packets"),
        Binding("c", "show_tab('calls')", "Calls"),
        Binding("f", "show_tab('findings')", "Findings"),
        Binding("s", "show_tab('report-streams')", "Streams"),
        Binding("w", "show_tab('report-sessions')", "Sessions"),
        Binding("t", "show_tab('timeline')", "Timeline"),
        Binding("l", "ladder", "Ladder"),
        Binding("escape", "back", "Back"),
        Binding("slash", "focus_filter", "Filter"),
        Binding("e", "export", "Export"),
        Binding("ctrl+e", "pause", "Pause/Resume"),
    ]

    def __init__(self, path: str | Path, registry: Registry, live: LiveCapture | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.registry = registry
        self.live = live
        """A running live capture spooling to `path`; None for a capture file."""
        self._live_shown = 0
        self._live_ended = False
        self.model: CaptureModel | None = None
        # The header shows the file name as it is given: a name may hold ESC sequences too.
        self.sub_title = clean(f"live on {live.iface}: {path}" if live is not None else path)
        self._detail_for: int | None = None
        self._detail_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(initial="packets"):
            with TabPane("Packets", id="packets"):
                yield Input(
                    placeholder="display filter, e.g. stun.type == 0x0101 (Enter applies, Esc clears)",
                    id="filter",
                )
                with Horizontal(id="top"):
                    yield FlowsTable(id="flows")
                    yield PacketList(id="packet-list")
                with Horizontal(id="bottom"):
                    yield DetailTree("packet", id="detail")
                    with VerticalScroll(id="hex-pane"):
                        yield HexView(id="hex")
            with TabPane("Calls", id="calls"):
                with Vertical():
                    yield CallsTable(id="calls-table")
                    yield CallTree("call", id="call-detail")
            for name in self._extra_reports():
                # A plugin names its analysis: the tab shows the name literally (no markup).
                with TabPane(Content(clean(name.capitalize())), id=f"report-{name}"):
                    with Vertical():
                        yield ReportTable(id=f"report-{name}-table", classes="report-table")
                        yield Label("", id=f"report-{name}-spark-label", classes="spark-label")
                        yield Sparkline([], id=f"report-{name}-spark-jitter", classes="spark")
                        yield Sparkline([], id=f"report-{name}-spark-lost", classes="spark lost")
                        yield PhaseChart(id=f"report-{name}-phases")
                        yield RowTree(name, id=f"report-{name}-tree", classes="report-tree")
            with TabPane("Timeline", id="timeline"):
                yield Timeline(id="timeline-view")
            with TabPane("Findings", id="findings"):
                yield FindingsTree("findings", id="findings-tree")
        with Horizontal(id="status"):
            yield Label(literal(f"loading {self.path}"), id="status-text")
            yield ProgressBar(id="progress", show_eta=False)
        yield Footer()

    def _extra_reports(self) -> list[str]:
        """Analyses without a dedicated view get a generic tab: a plugin's report shows up too."""
        return [n for n in sorted(self.registry.analyses) if n != "calls"]

    def on_mount(self) -> None:
        self.query_one(PacketList).focus()
        self.set_class(self.size.width < 120, "narrow")
        if self.live is None:
            self.load()
        else:
            self.query_one(ProgressBar).display = False  # the status line has the counters instead
            self.set_interval(LIVE_REFRESH, self._live_tick)
            self._live_tick()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Pause/resume is a live-capture key: hidden from the footer for a capture file."""
        return self.live is not None if action == "pause" else True

    def on_resize(self) -> None:
        """Below 120 columns the panes stack instead of standing side by side."""
        self.set_class(self.size.width < 120, "narrow")

    # -- loading ------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="load")
    def load(self) -> None:
        worker = get_current_worker()
        preview = open_preview(self.path)
        if preview is not None and len(preview.records):
            # Rows at once: the first megabyte is indexed in milliseconds, the whole file next.
            self.call_from_thread(self._preview, CaptureModel(Session(build_index(preview), self.registry)))
        try:
            session = Session.open(self.path, self.registry)
        except Exception as exc:  # CaptureError and friends: one line, no traceback
            self.call_from_thread(self._status, f"cannot open {self.path}: {exc}")
            return
        model = CaptureModel(session)
        self.call_from_thread(self._loaded, model)

        def progress(done: int, total: int) -> None:
            self.call_from_thread(self._progress, done, total)

        model.decode_all(progress, lambda: worker.is_cancelled)
        if not worker.is_cancelled:
            self.call_from_thread(self._decoded)

    def _preview(self, model: CaptureModel) -> None:
        if self.model is None:
            self.query_one(PacketList).set_model(model)
            self._status(f"reading {self.path}: first {len(model)} packets shown")

    def _loaded(self, model: CaptureModel) -> None:
        self.model = model
        self.query_one(PacketList).set_model(model)
        self.query_one(FlowsTable).fill(model)
        self.query_one(Timeline).set_model(model)
        self._status(f"{len(model)} packets, {len(model.index.flows)} flows — decoding…")
        self.query_one(PacketList).move_to(0)

    def _progress(self, done: int, total: int) -> None:
        self.query_one(ProgressBar).update(total=max(total, 1), progress=done)
        self.query_one(PacketList).refresh()

    def _decoded(self) -> None:
        model = self.model
        assert model is not None
        # Done: the bar gives its 40 columns back to the status line (an 80-column terminal would
        # cut the findings count off).
        self.query_one(ProgressBar).display = False
        self.query_one(FlowsTable).fill(model)
        self.query_one(CallsTable).fill(model.decoded.calls)
        for name in self._extra_reports():
            self.query_one(f"#report-{name}-table", ReportTable).fill(model.decoded.reports.get(name, []))
        self.query_one(FindingsTree).fill(model.decoded.findings)
        self.query_one(PacketList).refresh()
        counts = model.finding_counts()
        self._status(
            f"{len(model)} packets, {len(model.index.flows)} flows, {len(model.decoded.calls)} gRPC calls, "
            f"{sum(counts.values())} findings ({counts['error']} errors)"
        )

    def _status(self, text: str) -> None:
        self.query_one("#status-text", Label).update(literal(text))

    # -- live capture -------------------------------------------------------------------------

    def _live_tick(self) -> None:
        """Counters on the status line; a new look at the spool when packets came and the last
        look is done."""
        live = self.live
        assert live is not None
        self._status(self._live_text())
        busy = any(w.group == "load" and w.is_running for w in self.workers)
        if live.stats.packets > self._live_shown and not busy:
            self.refresh_live()
        if not live.running and not self._live_ended:
            self._live_ended = True
            live.stop()  # closes the spool; keeps the thread's error, if any
            if live.error is not None:
                error = clean(live.error)
                self.notify(error, title="live capture stopped", severity="error", timeout=30, markup=False)
            self._status(self._live_text())

    def _live_text(self) -> str:
        live = self.live
        assert live is not None
        stats = live.stats
        state = "stopped" if self._live_ended else ("PAUSED" if live.paused else "capturing")
        parts = [f"{state} on {live.iface} → {stats.spool}", f"{stats.packets} packets"]
        parts.append(f"{stats.dropped} dropped" if stats.dropped is not None else "drops unknown")
        if stats.skipped:
            parts.append(f"{stats.skipped} not kept while paused")
        if self.model is not None:
            parts.append(f"{len(self.model.index.flows)} flows, {len(self.model.decoded.calls)} gRPC calls")
        if live.error is not None:
            parts.append(str(live.error))
        elif not self._live_ended:
            parts.append("Ctrl+E " + ("resumes" if live.paused else "pauses"))
        return ", ".join(parts)

    @work(thread=True, exclusive=True, group="load")
    def refresh_live(self) -> None:
        """Read the spool as it is now: index, flows and the decoding pass, off the UI thread."""
        worker = get_current_worker()
        try:
            session = Session.open(self.path, self.registry, growing=True)
        except Exception as exc:  # a spool we cannot read: one line, no traceback
            self.call_from_thread(self._status, f"cannot read the spool {self.path}: {exc}")
            return
        model = CaptureModel(session)
        model.decode_all(None, lambda: worker.is_cancelled)
        if not worker.is_cancelled:
            self.call_from_thread(self._live_loaded, model)

    def _live_loaded(self, model: CaptureModel) -> None:
        """Show a fresh read of the spool; the cursor follows new packets when it was on the
        last one (as Wireshark's auto-scroll does), else it stays where the user put it."""
        packets = self.query_one(PacketList)
        follow = packets.rows is None and packets.cursor >= packets.count - 1
        first = self.model is None
        self.model = model
        self._live_shown = len(model)
        packets.set_model(model)
        self.query_one(FlowsTable).fill(model)
        self.query_one(Timeline).set_model(model)
        self._decoded()
        if follow or first:
            packets.move_to(packets.count - 1)
        self._status(self._live_text())

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
        index = message.index
        self._detail_timer = self.set_timer(DETAIL_DELAY, lambda: self.load_detail(index))

    def on_packet_list_chosen(self, message: PacketList.Chosen) -> None:
        self.query_one(DetailTree).focus()

    @work(thread=True, exclusive=True, group="detail")
    def load_detail(self, index: int) -> None:
        """Decoding the selected packet (its flow up to it) happens off the UI thread."""
        model = self.model
        if model is None:
            return
        detail = model.detail(index)
        if not get_current_worker().is_cancelled:
            self.call_from_thread(self._show_detail, detail)

    def _show_detail(self, detail: PacketDetail) -> None:
        self._detail_for = detail.index
        self.query_one(DetailTree).show(detail)
        self.query_one(HexView).show(detail.frame)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[Any]) -> None:
        if event.control.id == "detail":
            span: Span = event.node.data
            self.query_one(HexView).highlight(span)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.control.id == "flows" and event.row_key.value is not None:
            self.show_flow(int(event.row_key.value))
        elif event.control.id == "calls-table" and event.row_key.value is not None:
            self.show_call(int(event.row_key.value))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if not self.is_running:
            return  # a table filled by a last worker result while the app shuts down
        if event.control.id == "calls-table" and event.row_key.value is not None:
            self.query_one(CallTree).show(self._calls()[int(event.row_key.value)])
        elif (event.control.id or "").startswith("report-") and event.row_key.value is not None:
            name = (event.control.id or "")[len("report-") : -len("-table")]
            rows = self.model.decoded.reports.get(name, []) if self.model is not None else []
            n = int(event.row_key.value)
            if n < len(rows):
                self.query_one(f"#report-{name}-tree", RowTree).show(f"{name} {n}", rows[n])
                self._sparklines(name, rows[n])
                self.query_one(f"#report-{name}-phases", PhaseChart).show(rows[n])

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

    def action_focus_filter(self) -> None:
        self.show_tab("packets")
        self.query_one("#filter", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        """Validated as you type: the bar turns red while the filter does not parse."""
        if event.input.id != "filter":
            return
        from ..filter import FilterError, compile_filter

        text = event.value.strip()
        try:
            if text:
                compile_filter(text)
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
            self.query_one(PacketList).show_only(None)
            return
        if event.input.has_class("invalid"):
            self._status(f"bad filter: {event.input.tooltip}")
            return
        self._status(f"filtering: {text}")
        self.apply_filter(text)

    @work(thread=True, exclusive=True, group="filter")
    def apply_filter(self, text: str) -> None:
        model = self.model
        if model is None:
            return
        worker = get_current_worker()
        while not model.decoded.complete and not worker.is_cancelled:  # one full pass at a time
            worker_sleep(0.05)
        rows = model.filter_rows(text, lambda: worker.is_cancelled)
        if rows is not None and not worker.is_cancelled:
            self.call_from_thread(self._filtered, text, rows)

    def _filtered(self, text: str, rows: list[int]) -> None:
        packets = self.query_one(PacketList)
        packets.show_only(rows)
        packets.focus()
        self._status(f"{len(rows)} packets match {text} (Esc: all packets)")

    # -- ladder -------------------------------------------------------------------------------

    def action_ladder(self) -> None:
        """The ladder of what is selected: a report row with `flows` (a WebRTC session: every
        endpoint it involved) or a `flow` (a call, a stream), the flow under the cursor in the flows
        table, or the selected packet's flow."""
        model = self.model
        if model is None:
            return
        row = self._selected_row()
        if row is not None:
            flows = row.get("flows")
            chosen = [int(f) for f in flows] if isinstance(flows, list) else []
            if not chosen and isinstance(row.get("flow"), int):
                chosen = [int(str(row["flow"]))]
            if chosen:
                what = f"session {row.get('id')}" if isinstance(flows, list) else f"flow {chosen[0]}"
                self.build_ladder(chosen, what)
                return
        flows_table = self.query_one(FlowsTable)
        fid: int | None = None
        if flows_table.has_focus and flows_table.row_count:
            fid = flows_table.cursor_row
        else:
            packets = self.query_one(PacketList)
            if packets.count:
                fid = int(model.index.flow[packets.packet_at(packets.cursor)])
        if fid is None or fid < 0:
            self._status("no flow selected for a ladder")
            return
        self.build_ladder([fid], f"flow {fid}")

    def _selected_row(self) -> dict[str, object] | None:
        """The row under the cursor of the Calls tab or a report tab, if one of them is shown."""
        active = self.query_one(TabbedContent).active
        if self.model is None or not (active == "calls" or active.startswith("report-")):
            return None
        name = "calls" if active == "calls" else active[len("report-") :]
        table = self.query_one(f"#{active}-table", DataTable)
        rows = self._calls() if name == "calls" else self.model.decoded.reports.get(name, [])
        return rows[table.cursor_row] if table.row_count and 0 <= table.cursor_row < len(rows) else None

    @work(thread=True, exclusive=True, group="ladder")
    def build_ladder(self, flows: list[int], what: str) -> None:
        model = self.model
        assert model is not None
        width = max(60, self.size.width - 10)
        if len(flows) == 1:
            lines = text_ladder(model.session, flows[0], width)
            title = f"{what}: {model.flow_label(flows[0])} (Esc closes; --export mermaid --flow {flows[0]})"
        else:
            lines = draw(list(arrows(model.session, flows)), width)
            export = f"--export mermaid --{what}"
            title = f"{what}: flows {', '.join(map(str, flows))} (Esc closes; {export})"
        self.call_from_thread(self.push_screen, LadderScreen(lines, title))

    # -- export -------------------------------------------------------------------------------

    def action_export(self) -> None:
        """The packets in view (a flow, or what the filter kept) to a pcapng file; in the Calls or
        a report tab, that report to JSON."""
        model = self.model
        if model is None:
            return
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        active = self.query_one(TabbedContent).active
        try:
            if active == "packets":
                packets = self.query_one(PacketList)
                rows = packets.rows if packets.rows is not None else range(len(model))
                target = Path(f"protoscope-{stamp}.pcapng")
                count = write_pcapng(model.session, rows, target)
                self._status(f"wrote {count} packets to {target.resolve()}")
            elif active == "calls" or active.startswith("report-"):
                name = "calls" if active == "calls" else active[len("report-") :]
                target = Path(f"protoscope-{name}-{stamp}.json")
                report = model.decoded.reports.get(name, [])
                target.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str) + "\n")
                self._status(f"wrote {len(report)} {name} to {target.resolve()}")
        except OSError as exc:
            self._status(f"export failed: {exc.strerror}")

    # -- navigation ---------------------------------------------------------------------------

    def show_tab(self, name: str) -> None:
        """Switch views and focus the new one (else focus would stay in the hidden pane)."""
        targets = {
            "packets": "#packet-list",
            "calls": "#calls-table",
            "findings": "#findings-tree",
            "timeline": "#timeline-view",
        }
        target = targets.get(name, f"#{name}-table")
        self.query_one(target).focus()
        self.query_one(TabbedContent).active = name

    def action_show_tab(self, name: str) -> None:
        self.show_tab(name)

    def show_flow(self, fid: int) -> None:
        model = self.model
        if model is None:
            return
        self.show_tab("packets")
        rows = np.flatnonzero(model.index.flow == fid).tolist()
        packets = self.query_one(PacketList)
        packets.show_only(rows)
        packets.focus()
        self._status(f"flow {fid}: {model.flow_label(fid)} {len(rows)} packets (Esc: all packets)")

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

    async def action_back(self) -> None:
        for worker in self.workers:
            if self.live is None and worker.group == "load" and worker.is_running:
                worker.cancel()
                self._status("loading stopped (Esc): the packets read so far are shown")
                return
        packets = self.query_one(PacketList)
        bar = self.query_one("#filter", Input)
        if bar.has_focus or bar.value:
            bar.value = ""
        if packets.rows is not None:
            packets.show_only(None)
            if self.model is not None:
                self._status(f"{len(self.model)} packets")
        self.show_tab("packets")
        packets.focus()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())


def run(path: str, registry: Registry, live: LiveCapture | None = None) -> None:
    ProtoscopeApp(path, registry, live).run()
