"""The Statistics view over the real gRPC sample, driven by Pilot at 80x24 and 200x50: each view
shows the engine's numbers, its keys work, tables sort, and the I/O graph is drawn in braille."""

from __future__ import annotations

from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.widgets import Input, Label

from protoscope.decoders.registry import load_registry
from protoscope.inspector import stats
from protoscope.inspector.model import CaptureModel
from protoscope.inspector.session import Session
from protoscope.inspector.tui.chart import BRAILLE, IoChart, nice_interval, plot, step_interval
from protoscope.inspector.tui.stats import StatsTable, StatsView
from tests.conftest import SAMPLES
from tests.inspector.tui.test_screens import assert_fits

SIZES = [(80, 24), (200, 50)]


class Host(App[None]):
    def __init__(self, model: CaptureModel) -> None:
        super().__init__()
        self.model = model

    def compose(self) -> ComposeResult:
        yield StatsView(id="stats")

    def on_mount(self) -> None:
        view = self.query_one(StatsView)
        view.set_model(self.model)
        view.focus()


@pytest.fixture(scope="module")
def demo() -> CaptureModel:
    model = CaptureModel(Session.open(SAMPLES / "grpc-demo.pcap", load_registry()))
    model.decode_all()
    return model


async def ready(pilot: Any, view: StatsView) -> None:
    """Until the worker has shown the current view's numbers."""
    for _ in range(500):
        await pilot.pause(0.02)
        if view._asked in view._results and not any(w.is_running for w in view.workers):
            await pilot.pause()
            return
    raise AssertionError(f"statistics {view._asked} never came")


def table_rows(table: StatsTable) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(r)] for r in range(table.row_count)]


def status(view: StatsView) -> str:
    return str(view.query_one("#stats-status", Label).render())


@pytest.mark.parametrize("size", SIZES)
async def test_hierarchy_endpoints_conversations(size: tuple[int, int], demo: CaptureModel) -> None:
    app = Host(demo)
    async with app.run_test(size=size) as pilot:
        view = app.query_one(StatsView)
        await ready(pilot, view)
        assert_fits(app.screen)
        hierarchy = view.query_one("#stats-hierarchy", StatsTable)
        expected = stats.protocol_hierarchy(demo.session)
        shown = table_rows(hierarchy)
        assert [r[0].strip() for r in shown] == [r["protocol"] for r in expected]
        assert [int(r[2]) for r in shown] == [r["frames"] for r in expected]
        assert shown[0][1] == "100.0%"  # eth: every frame
        assert shown[3][0] == "      http2"  # indented by depth

        await pilot.press("2")
        await ready(pilot, view)
        endpoints = view.query_one("#stats-endpoints", StatsTable)
        assert app.focused is endpoints
        ip = stats.endpoints(demo.session, "ip")
        assert table_rows(endpoints) == [
            [
                str(r[k])
                for k in ("address", "packets", "bytes", "tx_packets", "tx_bytes", "rx_packets", "rx_bytes")
            ]
            for r in ip
        ]
        await pilot.press("v", "v")  # ip -> ipv6 -> tcp
        await ready(pilot, view)
        tcp = stats.endpoints(demo.session, "tcp")
        assert [int(r[1]) for r in table_rows(endpoints)] == [r["port"] for r in tcp]
        assert "TCP endpoints" in status(view)
        await pilot.press("v", "v")  # tcp -> udp -> eth
        await ready(pilot, view)
        await pilot.press("v", "v", "v", "v")  # eth -> ip -> ipv6 -> tcp -> udp
        await ready(pilot, view)
        assert "no UDP endpoints" in status(view)

        await pilot.press("3")
        await ready(pilot, view)
        conversations = view.query_one("#stats-conversations", StatsTable)
        udp_rows = stats.conversations(demo.session, "udp")
        assert len(table_rows(conversations)) == len(udp_rows)
        await pilot.press("v", "v", "v")  # udp -> eth -> ip -> ipv6... to tcp
        await pilot.press("v")
        await ready(pilot, view)
        tcp_rows = stats.conversations(demo.session, "tcp")
        assert [r[0] for r in table_rows(conversations)] == [r["a"] for r in tcp_rows]
        assert_fits(app.screen)


async def test_tables_sort_by_the_cursor_column(demo: CaptureModel) -> None:
    app = Host(demo)
    async with app.run_test(size=(200, 50)) as pilot:
        view = app.query_one(StatsView)
        await ready(pilot, view)
        await pilot.press("5")
        await ready(pilot, view)
        table = view.query_one("#stats-grpc", StatsTable)
        methods = stats.grpc_methods(demo.decoded.calls)
        assert [r[0] for r in table_rows(table)] == [r["path"] for r in methods]
        await pilot.press("right", "right", "right", "right", "right")  # p99 ms
        await pilot.press("o")
        p99 = [float(r[5]) for r in table_rows(table)]
        assert p99 == sorted(p99, reverse=True)
        assert str(table.ordered_columns[5].label) == "p99 ms ▼"
        await pilot.press("o")
        assert [float(r[5]) for r in table_rows(table)] == sorted(p99)
        await pilot.press("o")  # back to the order given
        assert [r[0] for r in table_rows(table)] == [r["path"] for r in methods]
        await pilot.press("home")
        await pilot.press("o")  # text: ascending first
        paths = [r[0] for r in table_rows(table)]
        assert paths == sorted(paths)


@pytest.mark.parametrize("size", SIZES)
async def test_io_graph_keys_and_filter_lines(size: tuple[int, int], demo: CaptureModel) -> None:
    app = Host(demo)
    async with app.run_test(size=size) as pilot:
        view = app.query_one(StatsView)
        await ready(pilot, view)
        await pilot.press("4")
        await ready(pilot, view)
        chart = view.query_one(IoChart)
        assert chart.has_focus
        graph = chart.graph
        assert graph is not None and view.interval is not None
        expected = stats.io_graph(demo.session, view.interval)
        assert graph.series == expected.series
        assert len(graph.series[stats.ALL_PACKETS]) <= chart.dot_columns  # the capture fits the width
        text = [chart.render_line(y).text for y in range(chart.size.height)]
        assert any(BRAILLE < ord(c) <= BRAILLE + 0xFF for line in text for c in line)
        top = max(graph.series[stats.ALL_PACKETS])
        assert text[0].strip().startswith(f"{top:.0f}│")
        assert text[-1].strip().startswith("0s")
        assert_fits(app.screen)

        interval = view.interval
        await pilot.press("minus")
        await ready(pilot, view)
        assert view.interval == step_interval(interval, finer=False)
        await pilot.press("plus")
        await ready(pilot, view)
        assert view.interval == interval
        await pilot.press("u")
        await ready(pilot, view)
        graph = chart.graph
        assert graph is not None
        assert sum(graph.series[stats.ALL_PACKETS]) == int(demo.index.records.wirelen.sum())
        assert "bytes per" in str(view.query_one("#stats-legend", Label).render())

        await pilot.press("tab")
        assert isinstance(app.focused, Input)
        await pilot.press(*"grpc.nosuch ==", "enter")
        assert "not added" in status(view)
        await pilot.press("ctrl+u", *"grpc", "enter")
        await ready(pilot, view)
        graph = chart.graph
        assert graph is not None and list(graph.series) == [stats.ALL_PACKETS, "grpc"]
        hierarchy = stats.protocol_hierarchy(demo.session)
        grpc_bytes = sum(int(r["bytes"]) for r in hierarchy if str(r["path"]).endswith(":grpc"))
        assert sum(graph.series["grpc"]) == grpc_bytes
        assert "grpc" in str(view.query_one("#stats-legend", Label).render())
        assert chart.has_focus
        await pilot.press("x")
        await ready(pilot, view)
        assert chart.graph is not None and list(chart.graph.series) == [stats.ALL_PACKETS]
        assert_fits(app.screen)


async def test_keys_typed_in_the_filter_line_are_text(demo: CaptureModel) -> None:
    app = Host(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(StatsView)
        await ready(pilot, view)
        await pilot.press("4")
        await ready(pilot, view)
        await pilot.press("tab", *"u1 x")
        assert view.query_one(Input).value == "u1 x"
        assert view.view == "io" and view.unit == "packets"


def test_plot_draws_a_joined_line() -> None:
    cells = plot([[0, 1, 2, 3, 4, 5, 6, 7, 7, 3, 0, 0]], 6, 2, 7)
    lines = ["".join(c for c, _ in line) for line in cells]
    assert lines == ["  ⡠⠊⢱ ", "⡠⠊  ⠈⣆"]
    assert {who for line in cells for c, who in line if c != " "} == {0}
    assert plot([[0, 0]], 2, 1, 0) == [[("⣀", 0), (" ", None)]]


def test_intervals_are_one_two_five() -> None:
    assert nice_interval(0.219, 146) == 0.002
    assert nice_interval(25, 100) == 0.5
    assert nice_interval(10, 10) == 1.0
    assert step_interval(0.002, finer=True) == 0.001
    assert step_interval(0.002, finer=False) == 0.005
    assert step_interval(1.0, finer=True) == 0.5
    assert step_interval(5.0, finer=False) == 10.0


async def test_model_given_before_mount_and_empty_views(demo: CaptureModel) -> None:
    class Early(App[None]):
        def compose(self) -> ComposeResult:
            view = StatsView()
            view.set_model(demo)  # before it is mounted: computed once it is
            yield view

    app = Early()
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(StatsView)
        await ready(pilot, view)
        assert view.query_one("#stats-hierarchy", StatsTable).row_count == len(
            stats.protocol_hierarchy(demo.session)
        )
        view.action_view("conversations")
        for _ in range(4):  # ip -> ipv6
            view.action_layer()
            await ready(pilot, view)
            if view.address_layer == "ipv6":
                break
        assert "no IPv6 conversations: no IPv6 traffic in this capture" in status(view)
