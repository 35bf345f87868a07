"""Every key the help lists, pressed through Pilot at 80x24, and what it must do; the layout at the
two sizes the viewer is made for, and across resizes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.command import CommandPalette
from textual.widgets import DataTable, Input, OptionList, RadioButton, TabbedContent

from protoscope.decoders.registry import load_registry
from protoscope.inspector import stats as stats_module
from protoscope.inspector.config import Config, load_config
from protoscope.inspector.tui.app import (
    HELP_KEYS,
    FilterBar,
    HelpScreen,
    NameScreen,
    ProtoscopeApp,
    help_text,
)
from protoscope.inspector.tui.detail import DetailTree
from protoscope.inspector.tui.follow import FollowScreen
from protoscope.inspector.tui.iceview import IceScreen
from protoscope.inspector.tui.ladder import LadderScreen
from protoscope.inspector.tui.packets import PacketList
from protoscope.inspector.tui.screens import DecodeAsScreen, ExportScreen, FindScreen, GoToScreen
from protoscope.inspector.tui.stats import StatsView
from protoscope.inspector.tui.timeline import Timeline
from protoscope.inspector.tui.views import CALL_COLUMNS, CallsTable, FindingsTree, summary
from tests.conftest import SAMPLES
from tests.inspector.tui.test_app import loaded, notes, screen_text, tree_text, until

DEMO = SAMPLES / "grpc-demo.pcap"
"""One gRPC connection, 101 packets, 20 calls; frames 18 and 98 end with a non-OK status."""
TURN = SAMPLES / "webrtc-turn.pcap"
MIDSTREAM = SAMPLES / "grpc-midstream.pcap"
SMALL = (80, 24)


@pytest.fixture(autouse=True)
def settings_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The viewer saves its settings (history, columns): into the test's folder, never the user's."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config"


@asynccontextmanager
async def viewer(
    capture: Path = DEMO, size: tuple[int, int] = SMALL, **kwargs: Any
) -> AsyncIterator[tuple[ProtoscopeApp, Any]]:
    app = ProtoscopeApp(capture, load_registry(), **kwargs)
    async with app.run_test(size=size) as pilot:
        await loaded(pilot)
        yield app, pilot


def active(app: ProtoscopeApp) -> str:
    return str(app.query_one(TabbedContent).active)


async def settle(pilot: Any) -> None:
    await until(pilot, lambda: not any(w.is_running for w in pilot.app.workers), timeout=15)
    await pilot.pause(0.05)


# -- everywhere -------------------------------------------------------------------------------------


async def test_q_quits() -> None:
    async with viewer() as (app, pilot):
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running)
        assert not app.is_running


async def test_help_lists_every_key_fits_80_columns_and_scrolls() -> None:
    async with viewer() as (app, pilot):
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = help_text()
        for _section, keys in HELP_KEYS:
            for key, what in keys:
                assert f"{key:<23}{what}" in text
        lines = screen_text(app).splitlines()
        assert all(len(line) <= 80 for line in lines)
        assert "protoscope keys" in lines[1]  # drawn whole, not cut at the box's edge
        scroll = app.screen.query_one("VerticalScroll")
        await pilot.press("pagedown", "j")
        assert scroll.scroll_y > 0
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_tab_and_shift_tab_cycle_the_panes_and_bring_the_hidden_flows_pane() -> None:
    async with viewer() as (app, pilot):
        flows, packets, detail = app.query_one("#flows"), app.query_one(PacketList), app.query_one(DetailTree)
        assert not flows.display and app.focused is packets  # at 80 columns the flows pane is hidden
        await pilot.press("tab")
        assert app.focused is detail
        await pilot.press("tab")
        await until(pilot, lambda: app.focused is flows)
        assert flows.display and not packets.display  # in the list's place
        await pilot.press("tab")
        assert app.focused is packets and packets.display and not flows.display
        await pilot.press("shift+tab")
        await until(pilot, lambda: app.focused is flows)
        await pilot.press("enter")  # a flow: its packets, the list back
        await until(pilot, lambda: packets.rows is not None)
        assert app.focused is packets and not flows.display and len(packets.rows or []) == 101


@pytest.mark.parametrize(
    ("keys", "tabs"),
    [
        ("pcsw", ["packets", "calls", "report-streams", "report-sessions"]),
        ("tfi", ["timeline", "findings", "statistics"]),
    ],
)
async def test_view_keys_switch_tabs_and_focus_them(keys: str, tabs: list[str]) -> None:
    async with viewer(TURN) as (app, pilot):
        for key, tab in zip(keys, tabs, strict=True):
            await pilot.press(key)
            assert active(app) == tab
            pane = app.query_one(TabbedContent).active_pane
            assert app.focused is not None and pane is not None and pane in app.focused.ancestors


async def test_d_shows_the_data_channels_and_enter_their_messages() -> None:
    """D: the Data channels tab (a decrypted WebRTC call); Enter opens a channel as its messages,
    one line each, text shown as text."""
    from protoscope.decoders.tls.keylog import KeyLog

    keys = KeyLog()
    keys.add_text((SAMPLES / "webrtc-datachannels.keys").read_text())
    registry = load_registry()
    registry.options = {**registry.options, "tls.keylog": keys}
    registry.configure(registry.options)
    app = ProtoscopeApp(SAMPLES / "webrtc-datachannels.pcap", registry)
    async with app.run_test(size=SMALL) as pilot:
        await loaded(pilot)
        await pilot.press("D")
        assert active(app) == "report-datachannels"
        table = app.query_one("#report-datachannels-table", DataTable)
        await until(pilot, lambda: table.row_count == 4)
        await pilot.press("enter")
        tree = tree_text(app.query_one("#report-datachannels-tree"))
        assert "messages [10]" in tree and "frame 55  s2c (server)  string  5 B  'hello'" in tree


async def test_l_draws_the_ladder_of_a_packet_a_call_and_a_timeline_lane() -> None:
    async with viewer() as (app, pilot):
        await pilot.press("l")  # the selected packet's flow
        await until(pilot, lambda: isinstance(app.screen, LadderScreen), timeout=15)
        assert isinstance(app.screen, LadderScreen) and app.screen.title_text.startswith("flow 0:")
        await pilot.press("escape")
        await pilot.press("c", "j", "l")  # a call: its stream only
        await until(pilot, lambda: isinstance(app.screen, LadderScreen), timeout=15)
        assert isinstance(app.screen, LadderScreen) and "stream 3" in app.screen.title_text
    async with viewer(TURN) as (app, pilot):
        await pilot.press("t", "j", "j", "l")  # the timeline's third lane: flow 2
        await until(pilot, lambda: isinstance(app.screen, LadderScreen), timeout=15)
        assert isinstance(app.screen, LadderScreen) and app.screen.title_text.startswith("flow 2:")


async def test_ladder_keys_and_its_title_fits_80_columns() -> None:
    """The ladder: ← → scroll it, e exports it, Esc / q / l close it; its title fits the box."""
    async with viewer(TURN) as (app, pilot):
        for close in ("escape", "q", "l"):
            await pilot.press("w", "l")
            await until(pilot, lambda: isinstance(app.screen, LadderScreen), timeout=15)
            screen = app.screen
            assert isinstance(screen, LadderScreen)
            box = screen.query_one("VerticalScroll")
            assert len(screen.title_text) <= box.size.width - 2, screen.title_text
            if close == "escape":
                scroll = screen.query_one("#ladder-scroll")
                await pilot.press("right")
                assert scroll.scroll_x > 0
                await pilot.press("left")
                assert scroll.scroll_x == 0
                await pilot.press("e")
                await until(pilot, lambda: isinstance(app.screen, ExportScreen))
                assert isinstance(app.screen, ExportScreen)
                app.screen.dismiss(None)
                await until(pilot, lambda screen=screen: app.screen is screen)  # type: ignore[misc]
            await pilot.press(close)
            await until(pilot, lambda: not isinstance(app.screen, LadderScreen))
            assert not isinstance(app.screen, LadderScreen)


async def test_slash_opens_the_filter_bar() -> None:
    async with viewer() as (app, pilot):
        await pilot.press("c", "slash")
        assert active(app) == "packets" and isinstance(app.focused, FilterBar)


async def test_e_exports_findings_marked_packets_and_a_ladder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    async def export(pilot: Any, app: ProtoscopeApp, name: str, which: int = 0) -> None:
        if isinstance(app.screen, LadderScreen):
            app.action_export()  # the ladder screen's own `e` (tui/ladder.py) calls this
        else:
            await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ExportScreen) and bool(app.screen.query(Input)))
        assert app.screen.query_one("#export-path", Input).value == name
        app.screen.query_one(f"#export-{which}", RadioButton).value = True
        app.screen.query_one("#export-path", Input).focus()
        await pilot.press("enter")
        await until(pilot, lambda: (tmp_path / name).exists())

    async with viewer(MIDSTREAM) as (app, pilot):
        await pilot.press("f")
        await export(pilot, app, "grpc-midstream-findings.json")
        rows = json.loads((tmp_path / "grpc-midstream-findings.json").read_text())
        assert len(rows) == 18 and rows[0]["code"] == "hpack.unknown_index"
        await pilot.press("p", "m", "j", "j", "m")
        await export(pilot, app, "grpc-midstream-packets.pcapng", which=1)  # the marked ones
        assert "wrote 2 marked packets to" in " ".join(notes(app))
    async with viewer(TURN) as (app, pilot):
        await pilot.press("w", "l")
        await until(pilot, lambda: isinstance(app.screen, LadderScreen), timeout=15)
        await export(pilot, app, "webrtc-turn-ladder.mmd")
        diagram = (tmp_path / "webrtc-turn-ladder.mmd").read_text()
        assert diagram.startswith("sequenceDiagram") and "Allocate" in diagram
        await pilot.press("escape", "t")
        await export(pilot, app, "webrtc-turn-timeline.mmd")
        assert "wrote the sequence diagram (Mermaid) of the capture" in notes(app)[-1]
    async with viewer() as (app, pilot):  # a call's ladder: its stream only, as on screen
        await pilot.press("c", "j", "l")
        await until(pilot, lambda: isinstance(app.screen, LadderScreen), timeout=15)
        await export(pilot, app, "grpc-demo-ladder.mmd")
        diagram = (tmp_path / "grpc-demo-ladder.mmd").read_text()
        drawn = [line for line in diagram.splitlines() if "->>" in line]
        assert {line.split(":")[1].strip() for line in drawn} == {"17", "18"}, drawn  # the call's frames
        assert "of stream 3 of flow 0" in notes(app)[-1]


async def test_e_in_statistics_writes_the_shown_view(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`e` in Statistics: the view shown, as JSON rows as inspector/stats.py gives them."""
    monkeypatch.chdir(tmp_path)
    async with viewer() as (app, pilot):
        await pilot.press("i", "3")
        stats = app.query_one(StatsView)
        await until(pilot, lambda: stats.shown_rows() is not None)
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ExportScreen) and bool(app.screen.query(Input)))
        path = app.screen.query_one("#export-path", Input)
        assert path.value == "grpc-demo-statistics-conversations-ip.json"
        path.focus()
        await pilot.press("enter")
        target = tmp_path / "grpc-demo-statistics-conversations-ip.json"
        await until(pilot, target.exists)
        rows = json.loads(target.read_text())
        assert app.model is not None
        assert rows == json.loads(
            json.dumps(stats_module.conversations(app.model.session, "ip"), default=str)
        )
        assert "of the conversations-ip statistics to" in notes(app)[-1]


async def test_escape_goes_back_to_every_packet() -> None:
    async with viewer() as (app, pilot):
        app.show_flow(0)
        packets = app.query_one(PacketList)
        assert packets.rows is not None
        await pilot.press("c", "escape")
        assert packets.rows is None and active(app) == "packets" and app.focused is packets


async def test_ctrl_p_lists_go_to_commands_by_name() -> None:
    """A query "flow" finds the flows by name; choosing one shows its packets."""
    async with viewer() as (app, pilot):
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"flow")
        await pilot.pause(0.5)
        hits = [str(o.prompt) for o in app.screen.query_one(OptionList).options]
        assert "go to flow 0 (gRPC/HTTP2)" in hits and "show flows" in hits
        await pilot.press("escape", "ctrl+p", *"go to flow 0")
        await pilot.pause(0.5)
        await pilot.press("enter")
        packets = app.query_one(PacketList)
        await until(pilot, lambda: packets.rows is not None)
        assert packets.rows is not None and len(packets.rows) == 101
        await pilot.press("ctrl+p")
        await pilot.press(*"show calls")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: active(app) == "calls")
        assert active(app) == "calls"
        for word, command in (("call", "go to call …"), ("frame", "go to frame …")):  # by name
            await pilot.press("ctrl+p", *word)
            await pilot.pause(0.5)
            hits = [str(o.prompt) for o in app.screen.query_one(OptionList).options]
            assert any(hit.startswith(command) for hit in hits), hits
            await pilot.press("escape")
        await pilot.press("ctrl+p", *"go to frame")
        await pilot.pause(0.5)
        await pilot.press("enter")  # asks the frame
        await until(pilot, lambda: isinstance(app.screen, GoToScreen))
        assert isinstance(app.screen, GoToScreen)
        await pilot.press("escape", "p", "ctrl+p", *"go to call")
        await pilot.pause(0.5)
        await pilot.press("enter")  # the first call
        await until(pilot, lambda: active(app) == "calls")
        assert app.query_one(CallsTable).cursor_row == 0
    async with viewer(TURN) as (app, pilot):
        await pilot.press("ctrl+p", *"stream")
        await pilot.pause(0.5)
        hits = [str(o.prompt) for o in app.screen.query_one(OptionList).options]
        assert any(hit.startswith("go to stream …") for hit in hits), hits


class StandInLive:
    """What the app reads of a live capture (its counters, pause and resume), with no capture
    thread: the real one needs root (tests/inspector/tui/test_live.py drives it as root)."""

    class Stats:
        packets = 0
        dropped = 0
        skipped = 0
        spool = Path("live.pcapng")

    def __init__(self) -> None:
        self.iface = "lo"
        self.stats = self.Stats()
        self.paused = False
        self.running = True
        self.error = None

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def stop(self) -> None:
        self.running = False


async def test_ctrl_e_pauses_and_resumes_a_live_capture(tmp_path: Path) -> None:
    live = StandInLive()
    app = ProtoscopeApp(tmp_path / "live.pcapng", load_registry(), live)  # type: ignore[arg-type]
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("ctrl+e")
        assert live.paused and "PAUSED" in str(app.query_one("#status-text").render())
        await pilot.press("ctrl+e")
        assert not live.paused and "capturing" in str(app.query_one("#status-text").render())


async def test_ctrl_e_is_no_key_for_a_capture_file() -> None:
    async with viewer() as (app, _pilot):
        assert app.check_action("pause", ()) is False


async def test_backslash_cycles_list_detail_hex() -> None:
    async with viewer() as (app, pilot):
        bottom, hexpane = app.query_one("#bottom"), app.query_one("#hex-pane")
        packets = app.query_one(PacketList)
        assert app.layout_mode == "detail" and bottom.display and not hexpane.display
        await pilot.press("backslash")
        assert app.layout_mode == "hex" and hexpane.display
        await pilot.press("backslash")
        await pilot.pause(0.05)
        assert app.layout_mode == "list" and not bottom.display and packets.size.height > 15
        await pilot.press("backslash")
        assert app.layout_mode == "detail" and bottom.display


async def test_z_zooms_the_focused_pane_and_back() -> None:
    async with viewer() as (app, pilot):
        packets, detail = app.query_one(PacketList), app.query_one(DetailTree)
        rows = packets.size.height
        bottom, top = app.query_one("#bottom"), app.query_one("#top")
        await pilot.press("z")
        await pilot.pause(0.05)
        assert not bottom.display and packets.size.height > rows
        await pilot.press("z")
        await pilot.pause(0.05)
        assert bottom.display and packets.size.height == rows
        await pilot.press("tab", "z")  # the detail tree, zoomed
        await pilot.pause(0.05)
        assert not top.display and detail.size.height > 15


async def test_F_follows_the_packets_flow_and_in_calls_the_call() -> None:
    async with viewer() as (app, pilot):
        await pilot.press("F")
        await until(pilot, lambda: isinstance(app.screen, FollowScreen))
        assert isinstance(app.screen, FollowScreen) and app.screen.flow == 0 and app.screen.call is None
        await pilot.press("escape", "c", "j", "F")
        await until(pilot, lambda: isinstance(app.screen, FollowScreen))
        assert isinstance(app.screen, FollowScreen)
        call = app.model.decoded.calls[1]  # type: ignore[union-attr]
        assert app.screen.stream_id == call["stream_id"] and app.screen.call is call


async def test_ctrl_f_finds_and_n_N_find_next_and_previous() -> None:
    async with viewer() as (app, pilot):
        packets = app.query_one(PacketList)
        await pilot.press("ctrl+f")
        assert isinstance(app.screen, FindScreen)
        await pilot.press("alt+f", *"grpc.status != 0", "enter")
        await until(pilot, lambda: packets.cursor == 17)
        assert packets.cursor == 17  # frame 18
        await pilot.press("n")
        await until(pilot, lambda: packets.cursor == 97)
        assert packets.cursor == 97
        await pilot.press("N")
        await until(pilot, lambda: packets.cursor == 17)
        assert packets.cursor == 17


async def test_n_without_a_query_says_so() -> None:
    async with viewer() as (app, pilot):
        await pilot.press("n")
        assert "Ctrl+F asks what to find" in notes(app)[-1]


async def test_ctrl_g_goes_to_a_frame() -> None:
    async with viewer() as (app, pilot):
        await pilot.press("ctrl+g")
        assert isinstance(app.screen, GoToScreen)
        await pilot.press("backspace", "backspace", "backspace", "4", "2", "enter")
        await until(pilot, lambda: app.query_one(PacketList).cursor == 41)
        assert app.query_one(PacketList).cursor == 41


async def test_d_decodes_as_without_a_restart_and_keeps_the_place() -> None:
    async with viewer(SAMPLES / "webrtc-direct.pcap") as (app, pilot):
        packets = app.query_one(PacketList)
        packets.move_to(20)
        first = app.model
        await pilot.press("d")
        assert isinstance(app.screen, DecodeAsScreen)
        await pilot.press(*"udp.port==1-65535,rtp", "enter", "enter")
        await until(pilot, lambda: app.model not in (first, None) and app.model.decoded.complete)  # type: ignore[union-attr]
        await settle(pilot)
        assert [r.protocol for r in app.registry.decode_as] == ["rtp"]
        assert packets.cursor == 20
        assert app.model is not None and app.model.session.registry is app.registry


async def test_y_copies_the_call_as_grpcurl() -> None:
    async with viewer() as (app, pilot):
        await pilot.press("y")
        assert "select one in Calls" in notes(app)[-1]
        await pilot.press("c", "y")
        command = app.model.decoded.calls[0]["grpcurl"]  # type: ignore[union-attr]
        assert isinstance(command, str) and "grpcurl -plaintext" in command
        assert app.clipboard == command and notes(app)[-1] == command


# -- the packet list ---------------------------------------------------------------------------------


async def test_packet_list_moves_with_arrows_and_j_k() -> None:
    async with viewer() as (app, pilot):
        packets = app.query_one(PacketList)
        await pilot.press("down", "j", "j")
        assert packets.cursor == 3
        await pilot.press("up", "k")
        assert packets.cursor == 1


async def test_packet_list_pages() -> None:
    async with viewer() as (app, pilot):
        packets = app.query_one(PacketList)
        await pilot.press("pagedown")
        page = packets.cursor
        assert page >= 10
        await pilot.press("space")
        assert packets.cursor == 2 * page
        await pilot.press("ctrl+b")
        assert packets.cursor == page
        await pilot.press("pageup")
        assert packets.cursor == 0


async def test_packet_list_first_and_last() -> None:
    async with viewer() as (app, pilot):
        packets = app.query_one(PacketList)
        for key, row in (("G", 100), ("g", 0), ("end", 100), ("home", 0)):
            await pilot.press(key)
            assert packets.cursor == row
        await pilot.press("G")
        top = int(packets.scroll_offset.y)
        assert top <= 100 < top + packets.size.height - 1  # the last row on screen


async def test_enter_goes_to_the_detail() -> None:
    async with viewer() as (app, pilot):
        await pilot.press("enter")
        assert app.focused is app.query_one(DetailTree)


async def test_left_right_scroll_sideways() -> None:
    async with viewer() as (app, pilot):
        packets = app.query_one(PacketList)
        await pilot.press("right")
        assert packets.scroll_offset.x > 0
        await pilot.press("left")
        assert packets.scroll_offset.x == 0


async def test_m_marks() -> None:
    async with viewer() as (app, pilot):
        await pilot.press("m", "j", "j", "m")
        assert app.query_one(PacketList).marked == [0, 2]
        await pilot.press("m")
        assert app.query_one(PacketList).marked == [0]


async def test_T_cycles_the_time_format() -> None:
    async with viewer() as (app, pilot):
        packets = app.query_one(PacketList)
        before = packets.time_format
        await pilot.press("T")
        assert packets.time_format != before


async def test_ctrl_t_sets_a_time_reference() -> None:
    async with viewer() as (app, pilot):
        await pilot.press("j", "ctrl+t")
        assert app.query_one(PacketList).references == [1]
        await pilot.press("ctrl+t")
        assert app.query_one(PacketList).references == []


async def test_C_toggles_colouring() -> None:
    async with viewer() as (app, pilot):
        packets = app.query_one(PacketList)
        before = packets.colouring
        await pilot.press("C")
        assert packets.colouring is not before


async def test_brackets_select_a_column() -> None:
    async with viewer() as (app, pilot):
        packets = app.query_one(PacketList)
        start = packets.selected_column
        await pilot.press("right_square_bracket")
        assert packets.selected_column == start + 1
        await pilot.press("left_square_bracket")
        assert packets.selected_column == start


async def test_braces_move_a_column() -> None:
    async with viewer() as (app, pilot):
        packets = app.query_one(PacketList)
        await pilot.press("right_square_bracket")
        moved = packets.columns[packets.selected_column].spec.field
        await pilot.press("right_curly_bracket")
        assert packets.columns[packets.selected_column].spec.field == moved
        assert packets.selected_column == 2
        await pilot.press("left_curly_bracket")
        assert packets.columns[1].spec.field == moved


async def test_minus_hides_a_column() -> None:
    async with viewer() as (app, pilot):
        packets = app.query_one(PacketList)
        count = len(packets.columns)
        await pilot.press("minus")
        assert len(packets.columns) == count - 1


async def test_equals_resets_the_columns() -> None:
    async with viewer() as (app, pilot):
        packets = app.query_one(PacketList)
        count = len(packets.columns)
        await pilot.press("minus", "minus")
        assert len(packets.columns) == count - 2
        await pilot.press("equals_sign")
        assert len(packets.columns) == count


async def test_o_sorts_by_the_column() -> None:
    async with viewer() as (app, pilot):
        packets = app.query_one(PacketList)
        while packets.columns[packets.selected_column].spec.field != "length":
            await pilot.press("right_square_bracket")
        await pilot.press("o")
        await until(pilot, lambda: packets.sort_field == "length")
        assert packets.sort_field == "length" and not packets.sort_descending


# -- the detail tree ----------------------------------------------------------------------------------


async def _on_field(app: ProtoscopeApp, pilot: Any, field: str) -> DetailTree:
    """Focus the detail tree of frame 10 with its cursor on the node of `field`."""
    packets = app.query_one(PacketList)
    packets.move_to(9)
    tree = app.query_one(DetailTree)
    await until(pilot, lambda: tree_text(tree)[0].startswith("Frame 10:"))
    tree.root.expand_all()
    await pilot.pause(0.05)
    tree.focus()
    for line in range(tree.last_line + 1):
        tree.cursor_line = line
        if tree.selected_field() == field:
            break
    assert tree.selected_field() == field
    return tree


async def test_plus_adds_the_selected_field_as_a_column() -> None:
    async with viewer() as (app, pilot):
        await _on_field(app, pilot, "tcp.srcport")
        await pilot.press("plus")
        packets = app.query_one(PacketList)
        await until(pilot, lambda: any(c.spec.field == "tcp.srcport" for c in packets.columns))
        assert any(c.spec.field == "tcp.srcport" for c in packets.columns)


async def test_a_applies_the_selected_field_as_a_filter() -> None:
    async with viewer() as (app, pilot):
        await _on_field(app, pilot, "tcp.srcport")
        await pilot.press("a")
        packets = app.query_one(PacketList)
        await until(pilot, lambda: packets.rows is not None)
        assert app.query_one(FilterBar).value == "tcp.srcport == 40450"
        assert packets.rows is not None and 0 < len(packets.rows) < 101


# -- the filter bar ------------------------------------------------------------------------------------


async def test_filter_bar_tab_completes_field_names() -> None:
    async with viewer() as (app, pilot):
        await pilot.press("slash", *"grpc.stat", "tab")
        assert app.query_one(FilterBar).value == "grpc.status"
        await pilot.press(*" == 0 && grpc.meth", "tab")
        assert app.query_one(FilterBar).value == "grpc.status == 0 && grpc.method"
        await pilot.press("space", "tab")  # nothing to complete: on to the list
        assert app.focused is app.query_one(PacketList)


async def test_filter_bar_history_up_and_down() -> None:
    async with viewer(config=Config(filter_history=["tcp", "grpc.status != 0"])) as (app, pilot):
        bar = app.query_one(FilterBar)
        await pilot.press("slash", "up")
        assert bar.value == "grpc.status != 0"
        await pilot.press("up")
        assert bar.value == "tcp"
        await pilot.press("down")
        assert bar.value == "grpc.status != 0"
        await pilot.press("down")
        assert bar.value == ""


async def test_filter_bar_enter_applies_and_remembers(settings_home: Path) -> None:
    async with viewer(config=load_config()) as (app, pilot):
        await pilot.press("slash", *"grpc.status != 0", "enter")
        packets = app.query_one(PacketList)
        await until(pilot, lambda: packets.rows is not None)
        assert packets.rows == [17, 97]
        assert "2/101 pkts" in str(app.query_one("#status-text").render())  # 80 columns: the short form
    assert load_config(settings_home / "protoscope" / "config.toml").filter_history == ["grpc.status != 0"]


async def test_filter_bar_escape_clears() -> None:
    async with viewer() as (app, pilot):
        app.use_filter("grpc.status != 0")
        packets = app.query_one(PacketList)
        await until(pilot, lambda: packets.rows is not None)
        await pilot.press("slash", "escape")
        assert app.query_one(FilterBar).value == "" and packets.rows is None


async def test_an_unknown_field_turns_the_bar_red_and_names_the_closest() -> None:
    async with viewer() as (app, pilot):
        bar = app.query_one(FilterBar)
        await pilot.press("slash", *"grpc.statuss == 0")
        await pilot.pause(0.05)
        assert bar.has_class("invalid")
        await pilot.press("enter")
        said = notes(app)[-1]
        assert "grpc.statuss" in said and "grpc.status" in said.replace("grpc.statuss", "")
        assert app.query_one(PacketList).rows is None


async def test_saved_filters_in_the_palette_and_save_filter(settings_home: Path) -> None:
    config = load_config()
    config.saved_filters["failed calls"] = "grpc.status != 0"
    async with viewer(config=config) as (app, pilot):
        await pilot.press("ctrl+p", *"filter: failed")
        await pilot.pause(0.5)
        await pilot.press("enter")
        packets = app.query_one(PacketList)
        await until(pilot, lambda: packets.rows is not None)
        assert packets.rows == [17, 97]
        await pilot.press("ctrl+p", *"save filter")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, NameScreen))
        await pilot.press(*"errors", "enter")
        await until(pilot, lambda: "errors" in app.config.saved_filters)
    saved = load_config(settings_home / "protoscope" / "config.toml").saved_filters
    assert saved == {"failed calls": "grpc.status != 0", "errors": "grpc.status != 0"}


async def test_dash_Y_is_the_first_filter() -> None:
    async with viewer(display_filter="grpc.status != 0") as (app, pilot):
        packets = app.query_one(PacketList)
        await until(pilot, lambda: packets.rows is not None)
        assert packets.rows == [17, 97] and app.query_one(FilterBar).value == "grpc.status != 0"


# -- lists, tables and trees ----------------------------------------------------------------------------


async def test_lists_move_with_j_k_g_G_and_pages() -> None:
    async with viewer() as (app, pilot):
        await pilot.press("c")
        table = app.query_one(CallsTable)
        await pilot.press("j", "j", "down")
        assert table.cursor_row == 3
        await pilot.press("k", "up")
        assert table.cursor_row == 1
        await pilot.press("G")
        assert table.cursor_row == 19
        await pilot.press("g")
        assert table.cursor_row == 0
        await pilot.press("pagedown")
        assert table.cursor_row > 0
        await pilot.press("pageup")
        assert table.cursor_row == 0
    async with viewer(MIDSTREAM) as (app, pilot):
        await pilot.press("f")
        tree = app.query_one(FindingsTree)
        await pilot.press("j", "j")
        assert tree.cursor_line == 2
        await pilot.press("k")
        assert tree.cursor_line == 1
        await pilot.press("G")
        assert tree.cursor_line == tree.last_line
        await pilot.press("g")
        assert tree.cursor_line == 0
        await pilot.press("pagedown")
        assert tree.cursor_line > 0
        await pilot.press("pageup")
        assert tree.cursor_line == 0


async def test_enter_opens_a_row() -> None:
    async with viewer(TURN, size=(200, 50)) as (app, pilot):
        app.query_one("#flows", DataTable).focus()
        await pilot.press("j", "enter")
        packets = app.query_one(PacketList)
        await until(pilot, lambda: packets.rows is not None)
        assert packets.rows is not None and all(int(app.model.index.flow[i]) == 1 for i in packets.rows)  # type: ignore[union-attr]


async def test_I_and_enter_open_the_nat_ice_panel_which_scrolls_and_closes() -> None:
    """I: the NAT/ICE panel of the Sessions tab's session (from any tab); Enter on a session's
    row opens it too, not on a TURN allocation's. j k g G PgUp PgDn scroll it; Esc, q and I close
    it. Its text fits 80 columns."""
    async with viewer(TURN) as (app, pilot):
        for close in ("escape", "q", "I"):
            await pilot.press("p", "I")  # from the packet list: to the Sessions tab and its session
            await until(pilot, lambda: isinstance(app.screen, IceScreen))
            screen = app.screen
            assert isinstance(screen, IceScreen) and active(app) == "report-sessions"
            assert screen.text.startswith("Session 0: ") and "Candidate pairs (" in screen.text
            assert all(len(line) <= 80 for line in screen_text(app).splitlines())
            if close == "escape":
                scroll = screen.query_one("#ice-scroll")
                await pilot.press("j")
                assert scroll.scroll_y == 1
                await pilot.press("k", "pagedown")
                assert scroll.scroll_y > 1
                await pilot.press("pageup")
                assert scroll.scroll_y == 0
                await pilot.press("G")
                await until(pilot, lambda s=scroll: s.scroll_y == s.max_scroll_y)  # type: ignore[misc]
                assert scroll.scroll_y == scroll.max_scroll_y > 0
                await pilot.press("g")
                await until(pilot, lambda s=scroll: s.scroll_y == 0)  # type: ignore[misc]
                assert scroll.scroll_y == 0
            await pilot.press(close)
            await until(pilot, lambda: not isinstance(app.screen, IceScreen))
            assert not isinstance(app.screen, IceScreen)
        table = app.query_one("#report-sessions-table", DataTable)
        table.focus()
        await pilot.press("g", "enter")
        await until(pilot, lambda: isinstance(app.screen, IceScreen))
        assert isinstance(app.screen, IceScreen)
        await pilot.press("escape", "j", "enter")  # a TURN allocation: no panel, a note says why
        await pilot.pause(0.2)
        assert not isinstance(app.screen, IceScreen) and any("TURN allocation" in n for n in notes(app))


async def test_I_without_a_session_says_so() -> None:
    async with viewer() as (app, pilot):
        await pilot.press("I")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, IceScreen)
        assert any("no WebRTC session" in n for n in notes(app))


# -- statistics, follow, timeline --------------------------------------------------------------------


async def test_statistics_keys() -> None:
    async with viewer() as (app, pilot):
        await pilot.press("i")
        stats = app.query_one(StatsView)
        for key, view in zip("23451", ["endpoints", "conversations", "io", "grpc", "hierarchy"], strict=True):
            await pilot.press(key)
            assert stats.view == view
        await pilot.press("2")
        layer = stats.address_layer
        await pilot.press("v")
        assert stats.address_layer != layer
        await pilot.press("4")
        unit = stats.unit
        await pilot.press("u")
        assert stats.unit != unit
        await settle(pilot)
        interval = stats.interval
        await pilot.press("minus")
        await settle(pilot)
        assert stats.interval != interval
        stats.filters.append("grpc")
        await pilot.press("x")
        assert stats.filters == []
        await pilot.press("a", *"grpc")  # a: to the filter line (Tab cycles the panes)
        line = app.query_one("#stats-io-filter", Input)
        assert app.focused is line and line.value == "grpc" and active(app) == "statistics"
        await pilot.press("enter")
        await until(pilot, lambda: stats.filters == ["grpc"])
        assert stats.filters == ["grpc"]


async def test_follow_keys() -> None:
    async with viewer() as (app, pilot):
        await pilot.press("F")
        await until(pilot, lambda: isinstance(app.screen, FollowScreen))
        screen = app.screen
        assert isinstance(screen, FollowScreen)
        for key, mode in (("h", "hex"), ("r", "raw"), ("a", "ascii")):
            await pilot.press(key)
            assert screen.mode == mode
        await pilot.press("q")
        assert not isinstance(app.screen, FollowScreen)


async def test_timeline_pans_zooms_and_selects_lanes() -> None:
    async with viewer(TURN) as (app, pilot):
        await pilot.press("t")
        timeline = app.query_one(Timeline)
        whole = timeline.span
        await pilot.press("plus", "plus")
        assert timeline.span == pytest.approx(whole / 4)
        await pilot.press("minus")
        assert timeline.span == pytest.approx(whole / 2)
        for later, earlier in (("right", "left"), ("greater_than_sign", "less_than_sign")):
            start = timeline.start
            await pilot.press(later)
            assert timeline.start > start
            await pilot.press(earlier)
            assert timeline.start == pytest.approx(start)
        await pilot.press("0")
        assert timeline.span == pytest.approx(whole)
        await pilot.press("j", "down")
        assert timeline.lane == 2
        await pilot.press("k", "up")
        assert timeline.lane == 0
        await pilot.press("G")
        assert timeline.lane == len(timeline.times) - 1
        await pilot.press("g")
        assert timeline.lane == 0
        assert not isinstance(app.screen, LadderScreen)  # l is the ladder, never a pan


# -- layout ----------------------------------------------------------------------------------------------


async def test_80x24_shows_ten_packets_a_readable_detail_and_a_footer_that_fits() -> None:
    async with viewer() as (app, _pilot):
        lines = screen_text(app).splitlines()
        rows = [line for line in lines if line.split()[:1] and line.split()[0].isdigit()]
        assert len(rows) >= 10 and "127.0.0.1:40450" in rows[0] and "127.0.0.1:47051" in rows[0]
        assert app.query_one(DetailTree).size.height >= 5
        assert "? Help" in lines[-1] and "^p palette" in lines[-1]
        status = lines[-2]
        assert status.startswith("101 packets, 1 flow, 20 gRPC calls, 0 findings (0 errors)")


async def test_resize_relayouts_at_once_and_keeps_the_cursor_visible() -> None:
    async with viewer() as (app, pilot):
        packets = app.query_one(PacketList)
        await pilot.press("G")
        for width, height, narrow in ((200, 50, False), (80, 24, True), (200, 50, False), (80, 24, True)):
            await pilot.resize_terminal(width, height)
            await pilot.pause(0.1)
            assert app.has_class("narrow") is narrow and app.query_one("#flows").display is not narrow
            assert app.query_one("#hex-pane").display is not narrow  # list + detail + hex when it fits
            assert packets.size.width == (width if narrow else width - app.query_one("#flows").size.width)
            top = int(packets.scroll_offset.y)
            assert top <= packets.cursor < top + packets.size.height - 1


async def test_calls_columns_in_order_of_need() -> None:
    async with viewer() as (app, pilot):
        await pilot.press("c")
        table = app.query_one(CallsTable)
        assert [str(c.label) for c in table.columns.values()] == list(CALL_COLUMNS)
        assert [str(cell) for cell in table.get_row_at(1)[:2]] == ["Directory/Get", "NOT_FOUND"]
        assert app.model is not None
        call, first = app.model.decoded.calls[1], int(app.model.index.records.ts_ns[0]) / 1e9
        assert str(table.get_row_at(1)[3]) == f"{float(str(call['start'])) - first:.6f}"  # Start
        assert table.max_scroll_x > 0  # Flow and Stream are off-screen at 80 columns: → reaches them
        await pilot.press("right", "right", "right")
        assert table.scroll_x > 0
        await pilot.press("left", "left", "left")
        assert table.scroll_x == 0


async def test_sessions_show_values_and_a_summary_line() -> None:
    async with viewer(TURN) as (app, pilot):
        await pilot.press("w")
        await pilot.pause(0.1)
        table = app.query_one("#report-sessions-table", DataTable)
        cells = [str(c) for c in table.get_row_at(0)]
        # the nominated pair (the relayed pair, not the client-to-TURN leg), not "local → remote"
        assert "127.0.0.1:49163 → 127.0.0.1:49182" in cells
        summary = str(app.query_one("#report-sessions-summary").render())
        assert summary.startswith("session 0: OK · relayed: ")
        assert "· pair relay 127.0.0.1:49163 ↔ relay 127.0.0.1:49182 · DTLS done" in summary
        kind = [str(c.label) for c in table.columns.values()].index("kind")
        assert str(table.get_row_at(0)[kind]) == "session"  # not blank
        assert str(table.get_row_at(1)[kind]) == "turn_allocation"
        await pilot.press("s")  # a short list of values reads as its values, not a count
        streams = app.query_one("#report-streams-table", DataTable)
        types = [str(c.label) for c in streams.columns.values()].index("payload_types")
        assert str(streams.get_row_at(0)[types]) == "96"


def test_summary_of_lists() -> None:
    assert summary([96]) == "96" and summary([96, 111]) == "96, 111"
    assert summary(list(range(10))) == "10" and summary([{"a": 1}]) == "1"


async def test_empty_views_say_why() -> None:
    async with viewer(TURN) as (app, pilot):
        await pilot.press("c")
        label = app.query_one("#calls-empty")
        assert label.display and str(label.render()) == "no gRPC calls: no HTTP/2 connection in this capture"
    async with viewer() as (app, pilot):
        await pilot.press("s")
        label = app.query_one("#report-streams-empty")
        assert label.display and str(label.render()) == "no RTP streams: no RTP packet in this capture"


KEY_TESTS: dict[str, list[Callable[..., Awaitable[None]]]] = {
    "q": [test_q_quits],
    "?": [test_help_lists_every_key_fits_80_columns_and_scrolls],
    "Tab Shift+Tab": [test_tab_and_shift_tab_cycle_the_panes_and_bring_the_hidden_flows_pane],
    "p c s w": [test_view_keys_switch_tabs_and_focus_them],
    "D": [test_d_shows_the_data_channels_and_enter_their_messages],
    "t f i": [test_view_keys_switch_tabs_and_focus_them],
    "l": [test_l_draws_the_ladder_of_a_packet_a_call_and_a_timeline_lane],
    "I": [test_I_and_enter_open_the_nat_ice_panel_which_scrolls_and_closes, test_I_without_a_session_says_so],
    "j k g G PgUp PgDn": [test_I_and_enter_open_the_nat_ice_panel_which_scrolls_and_closes],
    "Esc q I": [test_I_and_enter_open_the_nat_ice_panel_which_scrolls_and_closes],
    "/": [test_slash_opens_the_filter_bar],
    "e": [
        test_e_exports_findings_marked_packets_and_a_ladder,
        test_e_in_statistics_writes_the_shown_view,
        test_ladder_keys_and_its_title_fits_80_columns,
    ],
    "Esc": [test_escape_goes_back_to_every_packet, test_filter_bar_escape_clears],
    "Ctrl+P": [test_ctrl_p_lists_go_to_commands_by_name, test_saved_filters_in_the_palette_and_save_filter],
    "Ctrl+E": [test_ctrl_e_pauses_and_resumes_a_live_capture, test_ctrl_e_is_no_key_for_a_capture_file],
    "\\": [test_backslash_cycles_list_detail_hex],
    "z": [test_z_zooms_the_focused_pane_and_back],
    "F": [test_F_follows_the_packets_flow_and_in_calls_the_call],
    "Ctrl+F": [test_ctrl_f_finds_and_n_N_find_next_and_previous],
    "n N": [test_ctrl_f_finds_and_n_N_find_next_and_previous, test_n_without_a_query_says_so],
    "Ctrl+G": [test_ctrl_g_goes_to_a_frame],
    "d": [test_d_decodes_as_without_a_restart_and_keeps_the_place],
    "y": [test_y_copies_the_call_as_grpcurl],
    "↑↓ j k": [test_packet_list_moves_with_arrows_and_j_k],
    "PgUp PgDn Space Ctrl+B": [test_packet_list_pages],
    "g G Home End": [test_packet_list_first_and_last],
    "Enter": [
        test_enter_goes_to_the_detail,
        test_filter_bar_enter_applies_and_remembers,
        test_enter_opens_a_row,
    ],
    "← →": [test_left_right_scroll_sideways, test_ladder_keys_and_its_title_fits_80_columns],
    "m": [test_m_marks],
    "T": [test_T_cycles_the_time_format],
    "Ctrl+T": [test_ctrl_t_sets_a_time_reference],
    "C": [test_C_toggles_colouring],
    "[ ]": [test_brackets_select_a_column],
    "{ }": [test_braces_move_a_column],
    "-": [test_minus_hides_a_column],
    "=": [test_equals_resets_the_columns],
    "o": [test_o_sorts_by_the_column, test_statistics_keys],
    "+": [test_plus_adds_the_selected_field_as_a_column],
    "a": [test_a_applies_the_selected_field_as_a_filter, test_statistics_keys],
    "Tab": [test_filter_bar_tab_completes_field_names],
    "↑↓": [test_filter_bar_history_up_and_down],
    "↑↓ j k g G PgUp PgDn": [test_lists_move_with_j_k_g_G_and_pages],
    "1 2 3 4 5": [test_statistics_keys],
    "v": [test_statistics_keys],
    "+ - u": [test_statistics_keys],
    "x": [test_statistics_keys],
    "a h r": [test_follow_keys],
    "Esc q": [test_follow_keys],
    "Esc q l": [test_ladder_keys_and_its_title_fits_80_columns],
    "← → < >": [test_timeline_pans_zooms_and_selects_lanes],
    "+ -": [test_timeline_pans_zooms_and_selects_lanes],
    "0": [test_timeline_pans_zooms_and_selects_lanes],
    "↑↓ j k g G": [test_timeline_pans_zooms_and_selects_lanes],
}
"""Each key of the help, and the tests that press it."""


def test_every_key_in_the_help_has_a_test() -> None:
    keys = {key for _section, rows in HELP_KEYS for key, _what in rows}
    assert keys == set(KEY_TESTS)
