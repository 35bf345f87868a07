"""The Statistics tab: Wireshark's Statistics menu as five views of one capture.

1 protocol hierarchy (`-z io,phs`), 2 endpoints and 3 conversations (Ethernet, IPv4, IPv6, TCP,
UDP), 4 an I/O graph (packets or bytes per interval, one line per display filter) and 5 gRPC
statistics per method (calls, status codes, latency percentiles, message sizes). The numbers come
from `inspector/stats.py`, computed in a thread worker the first time a view is shown and kept;
this module only lays them out. Every table sorts by any column (`o`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import ContentSwitcher, DataTable, Input, Label
from textual.worker import get_current_worker

from .. import stats
from ..filter import FilterError, compile_filter
from ..model import CaptureModel
from .chart import SERIES_COLOURS, IoChart, nice_interval, step_interval
from .text import literal

View = Literal["hierarchy", "endpoints", "conversations", "io", "grpc"]
VIEWS: tuple[tuple[View, str], ...] = (
    ("hierarchy", "Hierarchy"),
    ("endpoints", "Endpoints"),
    ("conversations", "Conversations"),
    ("io", "I/O graph"),
    ("grpc", "gRPC"),
)
LAYER_NAMES: dict[stats.Layer, str] = {
    "eth": "Ethernet",
    "ip": "IPv4",
    "ipv6": "IPv6",
    "tcp": "TCP",
    "udp": "UDP",
}
DEFAULT_BUCKETS = 100
"""Buckets the first I/O graph spreads the capture over before the chart knows its width."""
Row = Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Column:
    """A column of a statistics table: its title, the row key it shows and how."""

    title: str
    key: str
    numeric: bool = True
    shown: Callable[[object], str] | None = None


def _ms(value: object) -> str:
    return "" if value is None else f"{value:.3f}"


def _percent(value: object) -> str:
    return f"{value:.1f}%" if isinstance(value, float) else ""


def _seconds(value: object) -> str:
    return f"{value:.6f}" if isinstance(value, int | float) else ""


def _statuses(value: object) -> str:
    if not isinstance(value, Mapping):
        return ""
    return ", ".join(f"{name} {count}" for name, count in value.items())


def _indented(row: Row) -> str:
    return "  " * int(str(row.get("depth", 0))) + str(row.get("protocol", ""))


HIERARCHY = (
    Column("Protocol", "indented", numeric=False),
    Column("% Packets", "packets_pct", shown=_percent),
    Column("Packets", "frames"),
    Column("% Bytes", "bytes_pct", shown=_percent),
    Column("Bytes", "bytes"),
)
CONVERSATIONS = (
    Column("Address A", "a", numeric=False),
    Column("Address B", "b", numeric=False),
    Column("Packets", "packets"),
    Column("Bytes", "bytes"),
    Column("Packets A→B", "a_to_b_packets"),
    Column("Bytes A→B", "a_to_b_bytes"),
    Column("Packets B→A", "b_to_a_packets"),
    Column("Bytes B→A", "b_to_a_bytes"),
    Column("Rel Start", "start", shown=_seconds),
    Column("Duration", "duration", shown=_seconds),
)
GRPC = (
    Column("Method", "path", numeric=False),
    Column("Calls", "calls"),
    Column("Statuses", "statuses", numeric=False, shown=_statuses),
    Column("p50 ms", "p50_ms", shown=_ms),
    Column("p90 ms", "p90_ms", shown=_ms),
    Column("p99 ms", "p99_ms", shown=_ms),
    Column("Req bytes", "request_bytes"),
    Column("Resp bytes", "response_bytes"),
    Column("Max message", "max_message"),
)


def endpoint_columns(layer: stats.Layer) -> tuple[Column, ...]:
    """Wireshark's Endpoints columns; a port for TCP and UDP."""
    port = (Column("Port", "port"),) if layer in ("tcp", "udp") else ()
    return (
        Column("Address", "address", numeric=False),
        *port,
        Column("Packets", "packets"),
        Column("Bytes", "bytes"),
        Column("Tx Packets", "tx_packets"),
        Column("Tx Bytes", "tx_bytes"),
        Column("Rx Packets", "rx_packets"),
        Column("Rx Bytes", "rx_bytes"),
    )


class StatsTable(DataTable[Any]):
    """Rows of one statistics view, sortable by any column: `o` sorts by the cursor's column,
    descending first for numbers (the busiest on top), then ascending; a third `o` on the same
    column goes back to the order the statistics gave (tree order for the hierarchy)."""

    def __init__(self, **kwargs: str) -> None:
        super().__init__(cursor_type="cell", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self.columns_shown: tuple[Column, ...] = ()
        self.rows_given: list[Row] = []
        self.sorted_by: tuple[str, bool] | None = None
        """(row key, descending), or None for the order given."""

    def show(self, columns: Sequence[Column], rows: Sequence[Row]) -> None:
        self.columns_shown = tuple(columns)
        self.rows_given = list(rows)
        self.sorted_by = None
        self._fill()

    def sort_column(self, index: int) -> None:
        """Sort by column `index`, cycling descending, ascending and the given order."""
        if not 0 <= index < len(self.columns_shown):
            return
        column = self.columns_shown[index]
        first = column.numeric  # numbers: the largest first, as Wireshark's tables are used
        if self.sorted_by is None or self.sorted_by[0] != column.key:
            self.sorted_by = (column.key, first)
        elif self.sorted_by[1] == first:
            self.sorted_by = (column.key, not first)
        else:
            self.sorted_by = None
        self._fill()
        self.move_cursor(column=index)

    def ordered(self) -> list[Row]:
        """The rows in the order shown."""
        if self.sorted_by is None:
            return list(self.rows_given)
        key, descending = self.sorted_by
        present = [r for r in self.rows_given if r.get(key) is not None]
        absent = [r for r in self.rows_given if r.get(key) is None]  # always last
        present.sort(key=lambda r: _sort_key(r.get(key)), reverse=descending)
        return present + absent

    def _fill(self) -> None:
        row, column = self.cursor_coordinate
        self.clear(columns=True)
        for c in self.columns_shown:
            mark = ""
            if self.sorted_by is not None and self.sorted_by[0] == c.key:
                mark = " ▼" if self.sorted_by[1] else " ▲"
            self.add_column(Text(c.title + mark, justify="right" if c.numeric else "left"), key=c.key)
        for r in self.ordered():
            self.add_row(*(_cell(c, r) for c in self.columns_shown))
        if self.row_count:
            self.move_cursor(
                row=min(row, self.row_count - 1), column=min(column, len(self.columns_shown) - 1)
            )

    def action_sort(self) -> None:
        self.sort_column(self.cursor_coordinate.column)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_column(event.column_index)


def _sort_key(value: object) -> tuple[int, float, str]:
    if isinstance(value, bool):
        return (0, float(value), "")
    if isinstance(value, int | float):
        return (0, float(value), "")
    if isinstance(value, Mapping):
        return (0, float(sum(v for v in value.values() if isinstance(v, int | float))), "")
    return (1, 0.0, str(value))


def _cell(column: Column, row: Row) -> Text:
    value = row.get(column.key)
    text = column.shown(value) if column.shown is not None else ("" if value is None else str(value))
    return literal(text) if not column.numeric else Text(text, justify="right", no_wrap=True)


class StatsView(Widget):
    """Statistics of the capture: give it the model with `set_model` once decoding is complete.
    Its keys stay out of the footer (eleven would not fit 80 columns): the status line names the
    ones of the view shown, and the app's help lists them all from BINDINGS."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "view('hierarchy')", "Protocol hierarchy", show=False),
        Binding("2", "view('endpoints')", "Endpoints", show=False),
        Binding("3", "view('conversations')", "Conversations", show=False),
        Binding("4", "view('io')", "I/O graph", show=False),
        Binding("5", "view('grpc')", "gRPC methods", show=False),
        Binding("v", "layer", "Layer (Ethernet/IPv4/IPv6/TCP/UDP)", show=False),
        Binding("o", "sort", "Sort by column", show=False),
        Binding("plus,equals_sign", "interval(-1)", "Finer interval", show=False),
        Binding("minus", "interval(1)", "Coarser interval", show=False),
        Binding("u", "unit", "Packets / bytes", show=False),
        Binding("x", "remove_line", "Remove the last filter line", show=False),
        Binding("a", "add_line", "Add a filter line", show=False),
    ]
    DEFAULT_CSS = """
    StatsView { height: 1fr; layout: vertical; }
    StatsView #stats-tabs { height: 1; width: 1fr; }
    StatsView #stats-status { height: auto; width: 1fr; color: $text-muted; }
    StatsView ContentSwitcher { height: 1fr; }
    StatsView StatsTable { height: 1fr; }
    StatsView #stats-io { height: 1fr; }
    StatsView #stats-legend { height: auto; width: 1fr; }
    StatsView #stats-io-filter { width: 1fr; }
    """

    def __init__(self, **kwargs: str) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.model: CaptureModel | None = None
        self.view: View = "hierarchy"
        self.address_layer: stats.Layer = "ip"
        self.interval: float | None = None
        """Seconds per I/O bucket; None until the first graph picks one that fits the width."""
        self.unit: Literal["packets", "bytes"] = "packets"
        self.filters: list[str] = []
        """The I/O graph's filter lines, after its "all packets" line."""
        self._results: dict[tuple[object, ...], object] = {}
        self._asked: tuple[object, ...] | None = None
        self._waited_for_layout = False

    def compose(self) -> ComposeResult:
        yield Label("", id="stats-tabs")
        yield Label("", id="stats-status")
        with ContentSwitcher(initial="stats-hierarchy"):
            yield StatsTable(id="stats-hierarchy")
            yield StatsTable(id="stats-endpoints")
            yield StatsTable(id="stats-conversations")
            with Vertical(id="stats-io"):
                yield Label("", id="stats-legend")
                yield IoChart(id="stats-chart")
                yield Input(
                    placeholder="add a line: a display filter, Enter (x removes the last)",
                    id="stats-io-filter",
                )
            yield StatsTable(id="stats-grpc")

    def on_mount(self) -> None:
        self._show_tabs()
        if self.model is not None:  # given before the view was mounted
            self._request()

    def set_model(self, model: CaptureModel) -> None:
        """Statistics of `model` (decoded): the current view is computed at once, others when shown."""
        self.model = model
        self._results.clear()
        self.interval = None
        self._waited_for_layout = False
        if self.is_mounted:
            self._request()

    def focus(self, scroll_visible: bool = True) -> StatsView:
        """Focus goes to the current view's table (or the chart), where the keys act."""
        self._main_widget().focus(scroll_visible)
        return self

    def _main_widget(self) -> Widget:
        return self.query_one("#stats-chart") if self.view == "io" else self.query_one(f"#stats-{self.view}")

    # -- keys -------------------------------------------------------------------------------------

    def action_view(self, view: str) -> None:
        chosen: View = next((v for v, _ in VIEWS if v == view), "hierarchy")
        self.view = chosen
        self.query_one(ContentSwitcher).current = f"stats-{'io' if chosen == 'io' else chosen}"
        self._show_tabs()
        self._main_widget().focus()
        self._request()

    def action_layer(self) -> None:
        if self.view not in ("endpoints", "conversations"):
            return
        layers = stats.LAYERS
        self.address_layer = layers[(layers.index(self.address_layer) + 1) % len(layers)]
        self._request()

    def action_sort(self) -> None:
        if self.view != "io":
            self.query_one(f"#stats-{self.view}", StatsTable).action_sort()

    def action_interval(self, direction: int) -> None:
        if self.view != "io" or self.interval is None:
            return
        self.interval = step_interval(self.interval, finer=direction < 0)
        self._request()

    def action_unit(self) -> None:
        if self.view != "io":
            return
        self.unit = "bytes" if self.unit == "packets" else "packets"
        self._request()

    def action_remove_line(self) -> None:
        if self.view == "io" and self.filters:
            self.filters.pop()
            self._request()

    def action_add_line(self) -> None:
        """`a`: to the I/O graph's filter line (Tab is the app's: it cycles the panes)."""
        if self.view == "io":
            self.query_one("#stats-io-filter", Input).focus()

    def shown_rows(self) -> tuple[str, list[Row]] | None:
        """The view shown, as a name for its file ("conversations-tcp") and its rows as
        inspector/stats.py gives them (the I/O graph's: `io_rows`); None until computed."""
        key = self._key()
        result = self._results.get(key)
        if result is None:
            return None
        if self.view == "io" and isinstance(result, stats.IoGraph):
            return "io", list[Row](stats.io_rows(result))
        rows: list[Row] = result if isinstance(result, list) else []
        if self.view == "hierarchy":  # without the table's own columns
            rows = [{k: v for k, v in row.items() if k not in DISPLAY_ONLY} for row in rows]
        name = (
            f"{self.view}-{self.address_layer}" if self.view in ("endpoints", "conversations") else self.view
        )
        return name, rows

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            return
        try:
            compile_filter(text, self.model.session.registry if self.model is not None else None)
        except FilterError as exc:
            self._status(f"not added: {exc}")
            return
        if text not in self.filters:
            self.filters.append(text)
        event.input.value = ""
        self.query_one(IoChart).focus()
        self._request()

    # -- computing ----------------------------------------------------------------------------------

    def _key(self) -> tuple[object, ...]:
        if self.view in ("endpoints", "conversations"):
            return (self.view, self.address_layer)
        if self.view == "io":
            return ("io", self.interval, self.unit, tuple(self.filters))
        return (self.view,)

    def _request(self) -> None:
        """Show the current view's numbers, computing them in a worker the first time."""
        self._show_tabs()
        model = self.model
        if model is None:
            self._status("statistics come once the capture is decoded")
            return
        if self.view == "io" and self.interval is None:
            chart = self.query_one(IoChart)
            if chart.size.width <= chart.AXIS_WIDTH and not self._waited_for_layout:
                # just switched to: the chart gets its width on the next refresh, and the first
                # interval is chosen to fill it
                self._waited_for_layout = True
                self.call_after_refresh(self._request)
                return
            self.interval = self._first_interval(model)
        key = self._key()
        self._asked = key
        if key in self._results:
            self._display(key, self._results[key])
            return
        self._status(f"computing {dict(VIEWS)[self.view].lower()}…")
        self._compute(model, key)

    def _first_interval(self, model: CaptureModel) -> float:
        ts = model.index.records.ts_ns
        seconds = (int(ts.max()) - int(ts.min())) / 1e9 if len(ts) else 0.0
        chart = self.query_one(IoChart)
        columns = chart.dot_columns if chart.size.width > chart.AXIS_WIDTH else DEFAULT_BUCKETS
        return nice_interval(seconds, columns) if seconds > 0 else 1.0

    @work(thread=True, exclusive=True, group="stats")
    def _compute(self, model: CaptureModel, key: tuple[object, ...]) -> None:
        worker = get_current_worker()
        try:
            with model.pass_lock:  # a growing capture's index is not appended to meanwhile
                result = _statistics(model, key)
        except ValueError as exc:  # a filter line the engine refused, a bad interval
            result = exc
        if not worker.is_cancelled:
            self.app.call_from_thread(self._computed, key, result)

    def _computed(self, key: tuple[object, ...], result: object) -> None:
        if not isinstance(result, Exception):
            self._results[key] = result
        if key == self._asked:
            self._display(key, result)

    def _display(self, key: tuple[object, ...], result: object) -> None:
        if isinstance(result, Exception):
            self._status(f"cannot compute: {result}")
            return
        view = key[0]
        if view == "io" and isinstance(result, stats.IoGraph):
            self._show_io(result)
            return
        rows = result if isinstance(result, list) else []
        columns = {
            "hierarchy": HIERARCHY,
            "endpoints": endpoint_columns(self.address_layer),
            "conversations": CONVERSATIONS,
            "grpc": GRPC,
        }[str(view)]
        self.query_one(f"#stats-{view}", StatsTable).show(columns, rows)
        self._status(self._describe(str(view), rows))

    def _describe(self, view: str, rows: list[Row]) -> str:
        layer = LAYER_NAMES[self.address_layer]
        if view == "hierarchy":
            return "no packets" if not rows else "packets and bytes per protocol path · o sort"
        if view == "grpc":
            if rows:
                return f"{len(rows)} methods · latency in ms of the calls that ended · o sort"
            return "no gRPC calls: no HTTP/2 stream in this capture carried gRPC"
        noun = "endpoints" if view == "endpoints" else "conversations"
        if not rows:
            return f"no {layer} {noun}: no {layer} traffic in this capture · v next layer"
        return f"{len(rows)} {layer} {noun} · v layer (Ethernet, IPv4, IPv6, TCP, UDP) · o sort"

    def _show_io(self, graph: stats.IoGraph) -> None:
        self.query_one(IoChart).show(graph)
        legend = Text(no_wrap=False)
        legend.append(f"{self.unit} per {graph.interval:g} s: ", style="bold")
        for n, label in enumerate(graph.series):
            legend.append("━ ", style=SERIES_COLOURS[n % len(SERIES_COLOURS)])
            legend.append(literal(label))
            legend.append("  ")
        self.query_one("#stats-legend", Label).update(legend)
        self._status("+ - interval · u packets/bytes · ←→ pan · a add a line · x remove the last")

    def _status(self, text: str) -> None:
        self.query_one("#stats-status", Label).update(literal(text))

    def _show_tabs(self) -> None:
        line = Text(no_wrap=True, overflow="ellipsis")
        for n, (view, title) in enumerate(VIEWS, 1):
            line.append(f" {n} {title} ", style="reverse bold" if view == self.view else "")
        if self.view in ("endpoints", "conversations"):
            line.append(f"  {LAYER_NAMES[self.address_layer]}", style="bold")
        self.query_one("#stats-tabs", Label).update(line)


DISPLAY_ONLY = frozenset({"indented", "packets_pct", "bytes_pct"})
"""Keys the hierarchy's rows get for the table only (an export leaves them out)."""


def _statistics(model: CaptureModel, key: tuple[object, ...]) -> object:
    """The numbers of one view (runs in the worker)."""
    session = model.session
    view = key[0]
    if view == "hierarchy":
        rows = stats.protocol_hierarchy(session)
        total_frames = len(model) or 1
        total_bytes = int(model.index.records.wirelen.sum()) or 1
        return [
            {
                **row,
                "indented": _indented(row),
                "packets_pct": 100.0 * int(str(row["frames"])) / total_frames,
                "bytes_pct": 100.0 * int(str(row["bytes"])) / total_bytes,
            }
            for row in rows
        ]
    if view == "endpoints":
        return stats.endpoints(session, _layer(key[1]))
    if view == "conversations":
        return stats.conversations(session, _layer(key[1]))
    if view == "grpc":
        return stats.grpc_methods(model.decoded.calls)
    _, interval, unit, filters = key
    assert isinstance(interval, float) and isinstance(filters, tuple)
    return stats.io_graph(session, interval, (None, *filters), "bytes" if unit == "bytes" else "packets")


def _layer(value: object) -> stats.Layer:
    for layer in stats.LAYERS:
        if layer == value:
            return layer
    raise ValueError(f"unknown layer {value!r}")
