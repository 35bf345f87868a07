"""The Textual app driven by Pilot on small real captures, and snapshots of its main screens."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hpack import Encoder
from hyperframe.frame import HeadersFrame, SettingsFrame
from textual.app import App
from textual.widgets import DataTable, Input, TabbedContent

from protoscope.decoders.registry import load_registry
from protoscope.inspector.tui.app import HelpScreen, ProtoscopeApp
from protoscope.inspector.tui.detail import DetailTree
from protoscope.inspector.tui.follow import FollowScreen
from protoscope.inspector.tui.iceview import IceScreen
from protoscope.inspector.tui.ladder import LadderScreen
from protoscope.inspector.tui.packets import PacketList
from protoscope.inspector.tui.screens import ExportScreen
from protoscope.inspector.tui.timeline import Timeline
from protoscope.inspector.tui.views import CallTree, FindingsTree
from tests.conftest import SAMPLES, public_capture
from tests.inspector.report.ice_rows import T0, relayed_session
from tests.pcapgen import tcp_conversation, write

DEMO = SAMPLES / "grpc-demo.pcap"
TURN = SAMPLES / "webrtc-turn.pcap"
MIDSTREAM = SAMPLES / "grpc-midstream.pcap"


@pytest.fixture(autouse=True)
def settings_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The viewer reads and saves its settings: in the test's folder, never the user's."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config"


async def loaded(pilot: Any) -> None:
    app = pilot.app
    for _ in range(600):  # up to 30 s on a loaded machine
        await pilot.pause(0.05)
        if app.model is not None and app.model.decoded.complete:
            break
    await pilot.pause(0.2)


async def until(pilot: Any, condition: Any, timeout: float = 5.0) -> None:
    """Let the app run until `condition()` holds (handlers and workers run on later turns)."""
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await pilot.pause(0.02)


def notes(app: Any) -> list[str]:
    """The messages the app showed as notifications, oldest first."""
    return [str(n.message) for n in app._notifications]


def tree_text(tree: Any) -> list[str]:
    out: list[str] = []
    stack = [tree.root]
    while stack:
        node = stack.pop()
        out.append(node.label.plain)
        stack.extend(reversed(node.children))
    return out


async def test_packets_view_keys_and_detail() -> None:
    app = ProtoscopeApp(DEMO, load_registry())
    async with app.run_test(size=(160, 45)) as pilot:
        await loaded(pilot)
        packets = app.query_one(PacketList)
        assert packets.count == 101
        assert packets.render_line(1).text.split()[0] == "1"
        await pilot.press("j", "j", "down")
        assert packets.cursor == 3
        await pilot.press("k")
        assert packets.cursor == 2
        await pilot.press("G")
        assert packets.cursor == 100
        await pilot.press("g", "pagedown")
        assert packets.cursor > 10
        await pilot.press("g")
        for _ in range(9):
            await pilot.press("j")
        await until(pilot, lambda: tree_text(app.query_one(DetailTree))[0].startswith("Frame 10:"))
        labels = tree_text(app.query_one(DetailTree))
        assert labels[0].startswith("Frame 10:")
        assert any(label.endswith(": /demo.Directory/Get") for label in labels)  # the :path header
        await pilot.press("enter")
        assert app.focused is app.query_one(DetailTree)


async def test_flow_filter_and_back() -> None:
    app = ProtoscopeApp(DEMO, load_registry())
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        app.query_one("#flows", DataTable).focus()
        await pilot.press("enter")
        packets = app.query_one(PacketList)
        assert packets.rows is not None and len(packets.rows) == 101
        await pilot.press("escape")
        assert packets.rows is None


async def test_calls_view_shows_capture_text_literally() -> None:
    app = ProtoscopeApp(DEMO, load_registry())
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("c")
        assert app.query_one(TabbedContent).active == "calls"
        table = app.query_one("#calls-table", DataTable)
        assert table.row_count == 20
        await pilot.press("down")  # the NOT_FOUND call: its grpc-message holds "[red]x[/red]"
        await until(pilot, lambda: any("[red]" in t for t in tree_text(app.query_one(CallTree))))
        labels = tree_text(app.query_one(CallTree))
        assert any("[red]x[/red]" in label for label in labels)


async def test_findings_view_jumps_to_its_packet() -> None:
    app = ProtoscopeApp(MIDSTREAM, load_registry())
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("f")
        tree = app.query_one(FindingsTree)
        assert "hpack.unknown_index" in " ".join(tree_text(tree))
        leaf = next(n for n in _walk(tree.root) if n.data is not None)
        tree.select_node(leaf)
        await until(pilot, lambda: app.query_one(TabbedContent).active == "packets")
        assert app.query_one(TabbedContent).active == "packets"
        assert app.query_one(PacketList).cursor == leaf.data


async def test_session_findings_in_the_findings_tab_and_on_the_status_line() -> None:
    """A call whose TURN credentials were refused: the sessions analysis's two errors are counted
    on the status line and listed with their frame and phase; a leaf jumps to its packet."""
    app = ProtoscopeApp(SAMPLES / "webrtc-turn-refused.pcap", load_registry())
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        status = str(app.query_one("#status-text").render())
        assert "2 findings (2 errors)" in status
        await pilot.press("f")
        tree = app.query_one(FindingsTree)
        labels = tree_text(tree)
        assert "error (2)" in labels and "turn.credentials_refused (1)" in labels
        leaves = {n.label.plain: n for n in _walk(tree.root) if n.data is not None}
        assert "frame 23, phase ice: SDP was exchanged but no connectivity check was seen" in leaves
        refused = next(n for text, n in leaves.items() if text.startswith("frame 18, phase turn: Allocate"))
        tree.select_node(refused)
        await until(pilot, lambda: app.query_one(TabbedContent).active == "packets")
        assert app.query_one(PacketList).cursor == 17


def _walk(node: Any) -> list[Any]:
    out = [node]
    for child in node.children:
        out += _walk(child)
    return out


async def test_help_and_command_palette() -> None:
    app = ProtoscopeApp(DEMO, load_registry())
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"frame 42")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: app.query_one(PacketList).cursor == 41)
        assert app.query_one(PacketList).cursor == 41


async def test_palette_goes_to_a_stream_and_a_session() -> None:
    app = ProtoscopeApp(TURN, load_registry())
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot)
        for words, tab, row in (("session 2", "report-sessions", 2), ("stream 1", "report-streams", 1)):
            await pilot.press("ctrl+p")
            await pilot.pause(0.2)
            await pilot.press(*words)
            await pilot.pause(0.5)
            await pilot.press("enter")
            table = app.query_one(f"#{tab}-table", DataTable)
            await until(
                pilot,
                lambda tab=tab, table=table, row=row: (
                    app.query_one(TabbedContent).active == tab and table.cursor_row == row
                ),
            )
            assert app.query_one(TabbedContent).active == tab and table.cursor_row == row


def hostile_capture(tmp_path: Path) -> Path:
    """An h2c request whose header value holds Rich markup and a clear-screen escape."""
    block = Encoder().encode([(":method", "GET"), (":path", "/"), ("x-evil", "[red]x[/red]\x1b[2J")])
    client = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SettingsFrame(0).serialize()
    client += HeadersFrame(1, block, flags=["END_HEADERS", "END_STREAM"]).serialize()
    return write(tmp_path / "hostile.pcap", tcp_conversation([(True, client)], server=("127.0.0.1", 8080)))


async def test_hostile_text_is_shown_as_text(tmp_path: Path) -> None:
    app = ProtoscopeApp(hostile_capture(tmp_path), load_registry())
    async with app.run_test(size=(220, 70)) as pilot:
        await loaded(pilot)
        await pilot.press("G")
        await until(pilot, lambda: any("x-evil" in t for t in tree_text(app.query_one(DetailTree))))
        tree = app.query_one(DetailTree)
        labels = tree_text(tree)
        assert any(label.endswith("x-evil: [red]x[/red]\\x1b[2J") for label in labels)
        evil = next(n for n in _walk(tree.root) if "x-evil" in n.label.plain)
        tree.move_cursor(evil)
        tree.scroll_to_node(evil, animate=False)
        await pilot.pause(0.3)
        # On screen the markup and the escape are characters, not styling or a cleared screen.
        screen = app.export_screenshot().replace("&#160;", " ")
        assert "[red]x[/red]\\x1b[2J" in screen


async def test_unreadable_capture_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_text("not a capture")
    app = ProtoscopeApp(bad, load_registry())
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "cannot open" in str(app.query_one("#status-text").render()))
        assert "cannot open" in str(app.query_one("#status-text").render())


SCREENS: dict[str, tuple[Path, list[str]]] = {
    "packets": (DEMO, ["j"] * 9),
    "calls": (DEMO, ["c", "down"]),
    "findings": (MIDSTREAM, ["f"]),
    "sessions": (TURN, ["w"]),
    "streams": (TURN, ["s", "down"]),
    "timeline": (TURN, ["t"]),
    "statistics": (DEMO, ["i"]),
    "follow": (DEMO, ["j"] * 9 + ["F"]),
    "help": (DEMO, ["question_mark"]),
    "ladder": (TURN, ["w", "l"]),
    "nat-ice": (TURN, ["w", "I"]),
}
"""Every main screen, and the keys that open it, drawn at both sizes the viewer is made for."""
SIZES = {"80x24": (80, 24), "200x50": (200, 50)}


@pytest.mark.parametrize(
    ("capture", "keys", "size"),
    [(capture, keys, size) for capture, keys in SCREENS.values() for size in SIZES.values()],
    ids=[f"{screen}-{size}" for screen in SCREENS for size in SIZES],
)
def test_snapshots(snap_compare: Any, capture: Path, keys: list[str], size: tuple[int, int]) -> None:
    async def settle(pilot: Any) -> None:
        await loaded(pilot)
        for key in keys:
            await pilot.press(key)
        await pilot.pause(0.3)  # the detail waits for the cursor to rest (DETAIL_DELAY), then a worker
        await until(pilot, lambda: not any(w.is_running for w in pilot.app.workers), timeout=15)
        await pilot.pause(0.3)

    app = ProtoscopeApp(capture.relative_to(SAMPLES.parent.parent), load_registry())
    assert snap_compare(app, terminal_size=size, run_before=settle)


class PanelApp(App[None]):
    """The NAT/ICE panel alone, on a hand-made relayed call (tests/inspector/report/ice_rows.py):
    every key issue 16 gives a session row, whatever the analysis of the day makes of a sample."""

    def on_mount(self) -> None:
        self.push_screen(IceScreen(relayed_session(), T0, "NAT/ICE of session 0 (Esc closes)"))


@pytest.mark.parametrize("size", list(SIZES.values()), ids=list(SIZES))
def test_nat_ice_panel_snapshots(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(PanelApp(), terminal_size=size)


async def test_streams_tab_from_the_streams_analysis() -> None:
    """Analyses without a dedicated view get a generic tab (so a plugin's report shows up too)."""
    capture = SAMPLES.parent.parent.parent / "shared" / "captures" / "public" / "wswiki--sip-rtp-g711.pcap"
    if not capture.exists():
        public_capture("wswiki--sip-rtp-g711.pcap")  # fails under CI=true, skips elsewhere
    app = ProtoscopeApp(capture, load_registry())
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("s")
        assert app.query_one(TabbedContent).active == "report-streams"
        assert app.query_one("#report-streams-table", DataTable).row_count == 2
        await pilot.press("down")
        spark = app.query_one("#report-streams-spark-jitter")
        for _ in range(100):  # the highlight handler runs on a later turn of the loop
            await pilot.pause(0.02)
            if spark.display:
                break
        labels = tree_text(app.query_one("#report-streams-tree"))
        assert "clock_rate: 8000" in labels
        # SSRCs in hex, in the row's tree as in the table (Wireshark's form).
        assert any(re.fullmatch(r"ssrc: 0x[0-9a-f]{8}", label) for label in labels), labels
        assert spark.display and len(spark.data) >= 8  # type: ignore[attr-defined]


async def test_sessions_tab_draws_the_phases() -> None:
    """A WebRTC session through coturn: its phases drawn on one time axis, in the order they
    happened, with the frames where each began; the TURN allocations are rows of their own."""
    app = ProtoscopeApp(TURN, load_registry())
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("w")
        assert app.query_one(TabbedContent).active == "report-sessions"
        table = app.query_one("#report-sessions-table", DataTable)
        assert table.row_count == 4  # the ICE session and three TURN allocations
        chart = app.query_one("#report-sessions-phases")
        await until(pilot, lambda: chart.display)
        lines = chart.render().plain.splitlines()  # type: ignore[attr-defined]
        lanes = [line.split()[0] for line in lines[1:]]
        assert lanes == ["signaling", "ice", "ice_connected", "nominated", "dtls", "dtls_done", "media"]
        assert all("●" in line for line in lines[1:])
        await pilot.press("l")  # the session's ladder: every endpoint it involved
        await until(pilot, lambda: isinstance(app.screen, LadderScreen), timeout=15)
        assert isinstance(app.screen, LadderScreen)
        assert app.screen.title_text.startswith("session 0: flows ")
        assert any(line.startswith("t = 0 at frame 1,") for line in app.screen.lines)  # as the list
        assert "127.0.0.1:3478" in app.screen.lines[0] and len(app.screen.lines[0].split()) >= 5
        assert any("Allocate R" in line for line in app.screen.lines)
        await pilot.press("escape")
        await pilot.press("down")  # a TURN allocation has no phases: no chart
        await until(pilot, lambda: not chart.display)
        assert not chart.display


async def test_filter_bar_validates_and_filters() -> None:
    app = ProtoscopeApp(DEMO, load_registry())
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("slash")
        bar = app.query_one("#filter")
        await pilot.press(*"grpc.status !=")
        await pilot.pause(0.1)
        assert bar.has_class("invalid")
        await pilot.press("space", "0")
        await pilot.pause(0.1)
        assert not bar.has_class("invalid")
        await pilot.press("enter")
        for _ in range(100):
            await pilot.pause(0.05)
            if app.query_one(PacketList).rows is not None:
                break
        assert app.query_one(PacketList).rows == [17, 97]  # frames 18 and 98
        await pilot.press("escape")
        assert app.query_one(PacketList).rows is None


async def test_export_key_asks_the_path_and_writes_the_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`e` asks where, prefilled with a name in the current directory after the capture's, and
    says where it wrote."""
    monkeypatch.chdir(tmp_path)
    app = ProtoscopeApp(DEMO.resolve(), load_registry())
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot)
        app.query_one("#flows", DataTable).focus()
        await pilot.press("enter", "e")
        await until(pilot, lambda: isinstance(app.screen, ExportScreen))
        assert app.screen.query_one("#export-path", Input).value == "grpc-demo-packets.pcapng"
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, ExportScreen))
        await pilot.press("c", "e")
        await until(pilot, lambda: isinstance(app.screen, ExportScreen))
        assert app.screen.query_one("#export-path", Input).value == "grpc-demo-calls.json"
        await pilot.press("enter")
        await until(pilot, lambda: (tmp_path / "grpc-demo-calls.json").exists())
        said = notes(app)
    assert f"wrote 101 displayed packets to {tmp_path / 'grpc-demo-packets.pcapng'}" in said
    assert f"wrote 20 calls to {tmp_path / 'grpc-demo-calls.json'}" in said
    assert (tmp_path / "grpc-demo-packets.pcapng").stat().st_size > 100_000
    assert (tmp_path / "grpc-demo-calls.json").read_text().count('"path"') == 20


async def test_timeline_lanes_zoom_and_pan() -> None:
    app = ProtoscopeApp(SAMPLES / "webrtc-turn.pcap", load_registry())
    async with app.run_test(size=(140, 30)) as pilot:
        await loaded(pilot)
        await pilot.press("t")
        timeline = app.query_one(Timeline)
        assert app.focused is timeline and len(timeline.times) == len(app.model.index.flows)  # type: ignore[union-attr]
        whole = timeline.span
        await pilot.press("plus", "plus")
        assert timeline.span == pytest.approx(whole / 4)
        start = timeline.start
        await pilot.press("right")
        assert timeline.start > start
        await pilot.press("0")
        assert timeline.span == pytest.approx(whole)
        lane = timeline.render_line(4).text
        assert "STUN" in lane and any(block in lane for block in "▁▂▃▄▅▆▇█")


async def test_ladder_of_the_selected_flow() -> None:
    app = ProtoscopeApp(SAMPLES / "webrtc-direct.pcap", load_registry())
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot)
        flow = next(f.id for f in app.model.index.flows if "dtls" in f.protocols)  # type: ignore[union-attr]
        app.query_one("#flows", DataTable).focus()
        app.query_one("#flows", DataTable).move_cursor(row=flow)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LadderScreen), timeout=15)
        assert isinstance(app.screen, LadderScreen)
        arrows = [line for line in app.screen.lines if "▶" in line or "◀" in line]
        assert any("Client Hello" in a and "▶" in a for a in arrows)
        assert any("Binding Success Response" in a and "◀" in a for a in arrows)
        await pilot.press("escape")
        assert not isinstance(app.screen, LadderScreen)


def screen_text(app: Any) -> str:
    """What the terminal would be sent for the screen on top, as text (one line a row)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


async def test_no_screen_shows_capture_text_raw(tmp_path: Path) -> None:
    """Capture text with a bidi override (U+202E), isolates, zero-width characters and ESC
    sequences (a window title, a red background), in a capture whose file name holds them too:
    every screen shows them as escapes (`\\u202e`, `\\x1b`), never as what a terminal acts on."""
    from protoscope.inspector.report.inert import UNSAFE
    from tests.hostile import HOSTILE_FILE_NAME, terminal_text

    capture = terminal_text(tmp_path / HOSTILE_FILE_NAME)
    app = ProtoscopeApp(capture, load_registry())
    seen: dict[str, str] = {}

    def look(name: str) -> None:
        text = screen_text(app)
        raw = UNSAFE.search(text.replace("\n", ""))
        assert raw is None, (
            f"{name}: {raw.group()!r} on screen in {text[max(0, raw.start() - 60) : raw.start() + 60]!r}"
        )
        seen[name] = text

    async with app.run_test(size=(200, 60)) as pilot:
        await loaded(pilot)
        look("packets")
        packets = app.query_one(PacketList)
        tree = app.query_one(DetailTree)
        for n in range(packets.count):
            packets.move_to(n)
            await until(pilot, lambda n=n: tree_text(tree)[0].startswith(f"Frame {n + 1}:"))
            tree.root.expand_all()
            await pilot.pause(0.05)
            look(f"detail of frame {n + 1}")
            assert not any(UNSAFE.search(label) for label in tree_text(tree))
        for key, name in (
            ("c", "calls"),
            ("w", "sessions"),
            ("s", "streams"),
            ("t", "timeline"),
            ("f", "findings"),
        ):
            await pilot.press(key)
            await pilot.pause(0.1)
            if name in ("calls", "sessions"):
                await pilot.press("down", "up")
                await pilot.pause(0.3)
            if name == "findings":
                app.query_one(FindingsTree).root.expand_all()
                await pilot.pause(0.05)
            look(name)
        await pilot.press("w", "l")
        await until(pilot, lambda: isinstance(app.screen, LadderScreen), timeout=15)
        look("ladder")
        await pilot.press("escape", "question_mark")
        look("help")
        await pilot.press("escape", "ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"flow 1")
        await pilot.pause(0.5)
        look("command palette")
    assert "\\x1b]0;pwned\\a\\x1b[41m-\\u202ename" in seen["packets"]  # the header: the file name
    for name in ("detail of frame 1", "calls", "sessions", "findings"):
        assert "\\u202e" in seen[name], name


async def test_stream_row_ladder_and_follow_its_own_flow() -> None:
    """`l` and `F` on an RTP stream's row: the flow between its src and dst, not the packet's."""
    app = ProtoscopeApp(TURN, load_registry())
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("s", "j", "j")  # 127.0.0.1:3478 -> 127.0.0.1:58318, flow 4
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LadderScreen), timeout=15)
        assert isinstance(app.screen, LadderScreen)
        assert app.screen.title_text.startswith("flow 4:"), app.screen.title_text
        await pilot.press("escape")
        await pilot.press("F")
        await until(pilot, lambda: isinstance(app.screen, FollowScreen))
        assert isinstance(app.screen, FollowScreen) and app.screen.flow == 4


async def test_status_line_keeps_the_filter_at_80_columns() -> None:
    """At 80 columns the counters take their short form and the filter text stays on the line."""
    app = ProtoscopeApp(DEMO, load_registry())
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("slash", *"tcp.port == 47051", "enter")
        status = app.query_one("#status-text")
        await until(pilot, lambda: "47051" in str(status.render()))
        text = str(status.render())
        assert text.endswith("tcp.port == 47051") and len(text) <= 80, text
        assert "pkts · 1 flow · 20 calls · " in text
    app = ProtoscopeApp(DEMO, load_registry())
    async with app.run_test(size=(160, 24)) as pilot:  # room for the long form
        await loaded(pilot)
        assert str(app.query_one("#status-text").render()).startswith("101 packets, 1 flow, 20 gRPC calls")


async def test_session_summary_says_how_dtls_failed() -> None:
    """A handshake that completed with a certificate SDP did not promise: never "DTLS done"."""
    app = ProtoscopeApp(SAMPLES / "webrtc-bad-fingerprint.pcap", load_registry())
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("w")
        line = app.query_one("#report-sessions-summary")
        await until(pilot, lambda: "FAILED" in str(line.render()))
        text = str(line.render())
        assert "FAILED in dtls" in text and "DTLS done" not in text, text
        assert "DTLS handshake done, certificate not the one SDP promised" in text


async def test_flows_pane_columns_fit_the_pane() -> None:
    """At 200x50 the flows pane's columns fit it (the last counters left out), none cut to a
    character or drawn into the packet list; wide enough, all of them are shown."""
    app = ProtoscopeApp(TURN, load_registry())
    async with app.run_test(size=(200, 50)) as pilot:
        await loaded(pilot)
        table = app.query_one("#flows", DataTable)
        await until(pilot, lambda: table.virtual_size.width <= table.size.width)
        assert 0 < table.virtual_size.width <= table.size.width
        titles = [str(c.label) for c in table.columns.values()]
        assert titles[:4] == ["#", "Protocols", "Client", "Server"]
        assert all(c.width >= len(str(c.label)) for c in table.columns.values())
        await pilot.resize_terminal(300, 50)
        await until(pilot, lambda: len(table.columns) == 7)
        assert [str(c.label) for c in table.columns.values()][-1] == "Duration"
        assert table.virtual_size.width <= table.size.width
