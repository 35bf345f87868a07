"""The packet list's keys, driven by Pilot on grpc-demo.pcap: columns that fit 80 cells with their
ports, the selected row always on screen, time formats and references, marks, colours, columns
added, moved, hidden and sorted, and all of it kept in the config file."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult

from protoscope.decoders.registry import load_registry
from protoscope.inspector.config import ColourRule, Config, load_config
from protoscope.inspector.model import CaptureModel
from protoscope.inspector.session import Session
from protoscope.inspector.tui.columns import MIN_ENDPOINT, MIN_INFO, fit
from protoscope.inspector.tui.packets import MARKED, PacketList
from tests.conftest import SAMPLES, public_capture

DEMO = SAMPLES / "grpc-demo.pcap"
EDGE = SAMPLES / "grpc-edge.pcap"


class ListApp(App[None]):
    """Only the packet list, over a model decoded beforehand."""

    def __init__(self, model: CaptureModel, config: Config) -> None:
        super().__init__()
        self.model = model
        self.config = config
        self.notices: list[str] = []

    def compose(self) -> ComposeResult:
        yield PacketList(self.model, config=self.config, id="packet-list")

    def on_mount(self) -> None:
        self.query_one(PacketList).focus()

    def on_packet_list_notice(self, message: PacketList.Notice) -> None:
        self.notices.append(message.text)


@asynccontextmanager
async def packet_list(
    tmp_path: Path, path: Path = DEMO, size: tuple[int, int] = (80, 24)
) -> AsyncIterator[tuple[Any, PacketList, Config]]:
    model = CaptureModel(Session.open(path, load_registry()))
    model.decode_all()
    config = load_config(tmp_path / "config.toml")
    app = ListApp(model, config)
    try:
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            yield pilot, app.query_one(PacketList), config
    finally:
        model.session.close()


async def until(pilot: Any, condition: Any, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await pilot.pause(0.02)


def lines(packets: PacketList) -> list[str]:
    return [packets.render_line(y).text for y in range(packets.size.height)]


def first_style(packets: PacketList, y: int) -> Any:
    return next(iter(packets.render_line(y))).style


def cursor_on_screen(packets: PacketList) -> bool:
    top = int(packets.scroll_offset.y)
    return bool(top <= packets.cursor < top + packets.scrollable_content_region.height - 1)


def test_endpoints_keep_their_port() -> None:
    assert fit("127.0.0.1:50051", 15, endpoint=True) == "127.0.0.1:50051"
    assert fit("127.0.0.1:40450", 12, endpoint=True) == "…0.0.1:40450"
    assert fit("[2001:db8:85a3::8a2e:370:7334]:50051", 16, endpoint=True) == "…370:7334]:50051"
    assert fit("[2001:db8:85a3::8a2e:370:7334]:50051", 8, endpoint=True) == "…]:50051"
    assert fit("fe80::1%eth0", 8, endpoint=True) == "…:1%eth0"
    assert fit("a long protocol name", 8) == "a long …"


async def test_at_80_columns_every_row_shows_its_ports(tmp_path: Path) -> None:
    async with packet_list(tmp_path) as (_pilot, packets, _):
        model = packets.model
        assert model is not None
        shown = lines(packets)
        assert shown[0].split()[:3] == ["No.", "Time", "Source"]
        for y, text in enumerate(shown[1:], start=1):
            row = model.row(packets.packet_at(int(packets.scroll_offset.y) + y - 1))
            assert row.src in text and row.dst in text, text
            assert len(text) == packets.scrollable_content_region.width


async def test_moving_keeps_the_selected_row_visible(tmp_path: Path) -> None:
    async with packet_list(tmp_path, size=(80, 12)) as (pilot, packets, _):
        await pilot.press("G")
        assert packets.cursor == 100 and cursor_on_screen(packets)
        await pilot.press("g", "pagedown", "pagedown")
        assert cursor_on_screen(packets) and packets.cursor > 10
        await pilot.press("j", "j", "k")
        assert cursor_on_screen(packets)
        await pilot.press("G")
        await pilot.resize_terminal(80, 8)
        await pilot.pause(0.1)
        assert cursor_on_screen(packets)
        packets.show_only(list(range(0, 101, 2)))
        await pilot.pause()
        assert packets.packet_at(packets.cursor) == 100 and cursor_on_screen(packets)
        packets.go_to_packet(51)  # not shown: every packet is shown again
        await pilot.pause()
        assert packets.rows is None and packets.packet_at(packets.cursor) == 51 and cursor_on_screen(packets)


async def test_left_and_right_scroll_sideways(tmp_path: Path) -> None:
    async with packet_list(tmp_path) as (pilot, packets, _):
        await pilot.press("G")
        before = lines(packets)
        await pilot.press("right")
        assert packets.scroll_offset.x == PacketList.SIDEWAYS
        step = PacketList.SIDEWAYS
        assert lines(packets)[1][: -step - 1] == before[1][step:-1]  # the last cell may be "…"
        await pilot.press("left", "left")
        assert packets.scroll_offset.x == 0


async def test_t_cycles_the_time_formats_and_saves_it(tmp_path: Path) -> None:
    async with packet_list(tmp_path) as (pilot, packets, config):
        model = packets.model
        assert model is not None
        assert lines(packets)[2].split()[1] == model.time_text(1, "relative")
        seen = []
        for _ in range(6):
            await pilot.press("T")
            seen.append(packets.time_format)
            head = lines(packets)[0]
            assert {"delta": "Delta", "utc": "UTC time", "epoch": "Epoch time"}.get(
                packets.time_format, ""
            ) in head
        assert seen == ["delta", "delta_displayed", "absolute", "utc", "epoch", "relative"]
        await pilot.press("T")
        assert load_config(tmp_path / "config.toml").time_format == "delta"
        assert config.time_format == "delta"


async def test_ctrl_t_sets_a_time_reference(tmp_path: Path) -> None:
    async with packet_list(tmp_path) as (pilot, packets, _):
        model = packets.model
        assert model is not None
        await pilot.press("j", "j", "ctrl+t")
        assert packets.references == [2]
        shown = lines(packets)
        assert "*REF*" in shown[3] and "1 ref" in shown[0]
        assert shown[4].split()[1] == model.time_text(3, "relative", None, [2])
        await pilot.press("ctrl+t")
        assert packets.references == [] and "*REF*" not in lines(packets)[3]


async def test_m_marks_packets(tmp_path: Path) -> None:
    async with packet_list(tmp_path) as (pilot, packets, _):
        await pilot.press("m", "j", "j", "m", "G", "m")
        assert packets.marked == [0, 2, 100]
        assert "3 marked" in lines(packets)[0]
        await pilot.press("g")
        assert first_style(packets, 3) == MARKED
        await pilot.press("m")
        assert packets.marked == [2, 100]


async def test_colouring_rules_and_c(tmp_path: Path) -> None:
    async with packet_list(tmp_path, EDGE) as (pilot, packets, config):
        model = packets.model
        assert model is not None
        coloured = int(next(i for i in range(len(model)) if model.colours[i]))
        packets.go_to_packet(coloured)
        await pilot.press("k")
        row = packets.cursor + 1 - int(packets.scroll_offset.y) + 1
        style = first_style(packets, row)
        assert style is not None and style.bgcolor is not None
        await pilot.press("C")
        assert not packets.colouring and config.colouring is False
        assert first_style(packets, row).bgcolor is None
        await pilot.press("C")
        assert packets.colouring


async def test_columns_add_move_hide_and_are_saved(tmp_path: Path) -> None:
    async with packet_list(tmp_path) as (pilot, packets, config):
        packets.add_column("http2.headers.path", "Path")
        assert [c.spec.title for c in packets.columns][-2:] == ["Path", "Info"]
        await until(pilot, lambda: packets.field_values.get("http2.headers.path") is not None)
        await pilot.pause()
        assert any("/demo.Directory/Get" in text for text in lines(packets)) or packets.count > 20
        saved = load_config(tmp_path / "config.toml").columns
        assert [c.field for c in saved][-2:] == ["http2.headers.path", "info"]
        await pilot.press("left_curly_bracket")
        assert [c.spec.field for c in packets.columns][-3:] == ["http2.headers.path", "length", "info"]
        await pilot.press("minus")
        assert "http2.headers.path" not in [c.spec.field for c in packets.columns]
        assert [c.field for c in config.columns] == [c.spec.field for c in packets.columns]
        assert [c.field for c in load_config(tmp_path / "config.toml").columns] == [
            c.spec.field for c in packets.columns
        ]
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert packets.selected_column == 3


async def test_o_sorts_by_the_selected_column_and_keeps_the_cursor(tmp_path: Path) -> None:
    async with packet_list(tmp_path) as (pilot, packets, _):
        model = packets.model
        assert model is not None
        wirelen = model.index.records.wirelen
        await pilot.press("j", "j", "j")
        chosen = packets.packet_at(packets.cursor)
        for _ in range(5):
            await pilot.press("right_square_bracket")
        assert packets.columns[packets.selected_column].spec.field == "length"
        await pilot.press("o")
        await until(pilot, lambda: packets.sort_field == "length")
        order = [packets.packet_at(r) for r in range(packets.count)]
        assert sorted(order) == list(range(101))
        assert all(wirelen[a] <= wirelen[b] for a, b in itertools.pairwise(order))
        assert packets.packet_at(packets.cursor) == chosen
        await pilot.press("o")
        await until(pilot, lambda: packets.sort_descending)
        order = [packets.packet_at(r) for r in range(packets.count)]
        assert all(wirelen[a] >= wirelen[b] for a, b in itertools.pairwise(order))
        await pilot.press("o")
        assert packets.sort_field is None and packets.packet_at(packets.cursor) == chosen
        await pilot.press("left_square_bracket", "left_square_bracket", "left_square_bracket", "o")
        await until(pilot, lambda: packets.sort_field == "source")
        sources = [model.row(packets.packet_at(r)).src for r in range(packets.count)]
        assert sources == sorted(sources)


async def test_ipv6_endpoints_are_compressed_and_whole(tmp_path: Path) -> None:
    path = public_capture("packt--grpc-go_Bidi_Streaming.pcapng")
    async with packet_list(tmp_path, path) as (_pilot, packets, _):
        shown = lines(packets)
        assert "[::1]:50051" in shown[1] and shown[1].count("[::1]:") == 2


async def test_delta_displayed_counts_in_frame_order_under_a_sort(tmp_path: Path) -> None:
    async with packet_list(tmp_path) as (pilot, packets, _):
        model = packets.model
        assert model is not None
        packets.show_only([3, 7, 20, 50])
        packets.time_format = "delta_displayed"
        for _ in range(5):
            await pilot.press("right_square_bracket")
        await pilot.press("o", "o")  # length, descending
        await until(pilot, lambda: packets.sort_descending)
        for row in range(packets.count):
            i = packets.packet_at(row)
            k = [3, 7, 20, 50].index(i)
            want = model.time_text(i, "delta_displayed", [3, 7, 20, 50][k - 1] if k else None)
            assert packets._time_text(row, i) == want


async def test_a_bad_user_colour_rule_is_told(tmp_path: Path) -> None:
    model = CaptureModel(Session.open(EDGE, load_registry()), [ColourRule("bad", "grpc.status ==", "red")])
    app = ListApp(model, Config())
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: bool(app.notices))
            assert any("bad" in text for text in app.notices)
    finally:
        model.session.close()


async def test_a_click_on_a_header_sorts_by_its_column(tmp_path: Path) -> None:
    async with packet_list(tmp_path) as (pilot, packets, _):
        length = next(k for k, c in enumerate(packets.columns) if c.spec.field == "length")
        x = sum(c.width + 1 for c in packets.columns[:length]) + 1
        await pilot.click(PacketList, offset=(x, 0))
        await until(pilot, lambda: packets.sort_field == "length")
        assert packets.selected_column == length and packets.sort_field == "length"
        await pilot.click(PacketList, offset=(2, 3))  # the third row on screen
        assert packets.cursor == int(packets.scroll_offset.y) + 2


async def test_equals_resets_the_columns_to_wiresharks_seven(tmp_path: Path) -> None:
    seven = ["frame.number", "time", "source", "destination", "protocol", "length", "info"]
    async with packet_list(tmp_path) as (pilot, packets, _config):
        packets.add_column("tcp.stream", "Stream")
        await pilot.press("left_square_bracket", "minus", "left_curly_bracket", "home")
        assert [c.spec.field for c in packets.columns] == [*seven[:4], "tcp.stream", "protocol", "info"]
        await pilot.press("equals_sign")
        assert [c.spec.field for c in packets.columns] == [*seven[:-1], "tcp.stream", "info"]
        assert [c.field for c in load_config(tmp_path / "config.toml").columns] == [
            *seven[:-1],
            "tcp.stream",
            "info",
        ]
        assert lines(packets)[0].split()[:3] == ["No.", "Time", "Source"]
        assert "columns reset" in packets.app.notices[-1]
        await pilot.press("equals_sign")
        assert [c.spec.field for c in packets.columns] == [*seven[:-1], "tcp.stream", "info"]


async def test_c_visibly_changes_an_ordinary_capture(tmp_path: Path) -> None:
    """grpc-demo has no problem packet in view: Wireshark's ordinary rules colour its rows."""
    async with packet_list(tmp_path) as (pilot, packets, _config):
        rows = range(2, packets.size.height)  # the cursor's row (1) has its own style
        coloured = {first_style(packets, y).bgcolor for y in rows}
        assert len(coloured - {None}) >= 2  # TCP and HTTP at least
        await pilot.press("C")
        assert {first_style(packets, y).bgcolor for y in rows} == {None}


async def test_marks_and_sort_notes_never_hide_a_column_title(tmp_path: Path) -> None:
    """The sort arrow goes on the sorted column's title; "2 marked" only in the room left."""
    for size, fmt in (((80, 24), "relative"), ((80, 24), "utc"), ((100, 24), "epoch"), ((140, 24), "utc")):
        config = load_config(tmp_path / f"{size[0]}-{fmt}.toml")
        config.time_format = fmt
        model = CaptureModel(Session.open(DEMO, load_registry()))
        model.decode_all()
        app = ListApp(model, config)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            packets = app.query_one(PacketList)
            await pilot.press("m", "j", "m", *["right_square_bracket"] * 5, "o")
            await until(pilot, lambda packets=packets: packets.sort_field == "length")
            await pilot.press("left_square_bracket")  # the highlight leaves Length
            head = lines(packets)[0]
            words = head.split()
            assert "▲" in words and words[words.index("▲") - 1] in ("Length", "Len"), head
            assert words[-1] != "▲" and "Info" in words, head
            assert words.index("Info") == len(words) - 1 or words[-2:] == ["2", "marked"], head
            if (size, fmt) in (((80, 24), "relative"), ((140, 24), "utc")):  # room for it there
                assert head.rstrip().endswith("2 marked"), head
        model.session.close()


async def test_a_wide_time_column_shrinks_info_first_then_cuts_addresses_at_their_start(
    tmp_path: Path,
) -> None:
    """At 80 columns, UTC time, then an added column: Info gives up its cells first (down to
    MIN_INFO), then the endpoints lose their address's start, never its end or the port."""
    async with packet_list(tmp_path) as (pilot, packets, _):
        model = packets.model
        assert model is not None
        while packets.time_format != "utc":
            await pilot.press("T")
        await pilot.pause()
        check_endpoints(packets)
        packets.add_column("tcp.stream", "Stream")
        await until(pilot, lambda: packets.field_values.get("tcp.stream") is not None)
        await pilot.pause()
        check_endpoints(packets)


def check_endpoints(packets: PacketList) -> None:
    model = packets.model
    assert model is not None
    assert packets.columns[-1].is_info
    info_at = sum(c.width + 1 for c in packets.columns[:-1])  # Info shows from there to the edge
    ends = [c for c in packets.columns if c.spec.field in ("source", "destination")]
    room = packets.scrollable_content_region.width - MIN_INFO
    if any(c.width < c.seen for c in ends):  # cut only once Info is down to MIN_INFO on screen
        assert info_at >= room
        if any(c.width > MIN_ENDPOINT for c in ends):
            assert info_at == room
    for y, text in enumerate(lines(packets)[1:], start=1):
        row = model.row(packets.packet_at(int(packets.scroll_offset.y) + y - 1))
        cells = [c for c in text.split() if re.search(r":\d{5}$", c)]
        assert len(cells) == 2, text
        for cell, whole in zip(cells, (row.src, row.dst), strict=True):
            assert cell == whole or (cell.startswith("…") and whole.endswith(cell[1:])), text
            assert cell.endswith(whole[whole.rindex(":") :]), text
