"""The dialogs (Find, Go to, Decode As, Export) driven by Pilot in a tiny app of their own, at 80x24
and 200x50: their keys, their checks, what they return, and that nothing in them is cut."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import Checkbox, Input, Label, OptionList, Static

from protoscope.decoders.registry import load_registry
from protoscope.inspector.find import FindQuery, find_next
from protoscope.inspector.model import CaptureModel
from protoscope.inspector.session import Session
from protoscope.inspector.tui.screens import (
    DecodeAsScreen,
    ExportChoice,
    ExportScreen,
    FindScreen,
    GoToScreen,
)
from tests.conftest import SAMPLES

SIZES = [(80, 24), (200, 50)]
DEMO = SAMPLES / "grpc-demo.pcap"


class Host(App[None]):
    """Pushes one screen and keeps what it returned."""

    def __init__(self, screen: Screen[Any]) -> None:
        super().__init__()
        self.dialog = screen
        self.results: list[object] = []

    def compose(self) -> ComposeResult:
        yield Label("host")

    def on_mount(self) -> None:
        self.push_screen(self.dialog, self.results.append)


def assert_fits(screen: Screen[Any]) -> None:
    """Every widget shown lies inside the terminal, and no one-line text is cut."""
    area = screen.region
    for widget in screen.query("*"):
        if not widget.display or not widget.region.area:
            continue
        assert area.contains_region(widget.region), f"{widget!r} at {widget.region} outside {area}"
        if isinstance(widget, Label | Static) and not isinstance(widget, Checkbox):
            content = widget.render()
            text = content.plain if isinstance(content, Text) else str(content)
            if "\n" not in text:
                assert len(text.rstrip()) <= widget.content_region.width, (
                    f"{text!r} cut at {widget.content_region}"
                )


async def run(screen: Screen[Any], size: tuple[int, int], *keys: str) -> Host:
    app = Host(screen)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        assert_fits(screen)
        for key in keys:
            await pilot.press(key)
        await pilot.pause()
        if screen.is_attached:
            assert_fits(screen)
    return app


@pytest.fixture(scope="module")
def demo() -> CaptureModel:
    model = CaptureModel(Session.open(DEMO, load_registry()))
    model.decode_all()
    return model


# -- Find --------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_find_string_returns_the_query(size: tuple[int, int], demo: CaptureModel) -> None:
    app = await run(FindScreen(), size, *"grpc-status", "enter")
    assert app.results == [FindQuery("string", "grpc-status", False)]
    query = app.results[0]
    assert isinstance(query, FindQuery)
    assert find_next(demo, query, -1, None) == (13, False)


@pytest.mark.parametrize("size", SIZES)
async def test_find_kind_keys_and_case(size: tuple[int, int]) -> None:
    app = await run(FindScreen(), size, "alt+r", *r"POST /demo", "alt+c", "enter")
    assert app.results == [FindQuery("regex", "POST /demo", True)]
    app = await run(FindScreen(), size, "alt+h", *"505249", "enter")
    assert app.results == [FindQuery("hex", "505249", False)]
    app = await run(FindScreen(), size, "alt+f", *"tcp.len > 0", "enter")
    assert app.results == [FindQuery("filter", "tcp.len > 0", False)]


async def test_find_kind_with_tab_and_arrows() -> None:
    screen = FindScreen()
    app = Host(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("shift+tab")  # from the text to the kinds
        await pilot.press("right", "right", "enter")  # String -> Hex -> Regex
        assert screen.kind == "regex"
        assert "Info column" in str(screen.query_one("#find-where", Label).render())
        await pilot.press("tab")
        assert isinstance(app.focused, Input)
        await pilot.press(*r"\d+", "enter")
    assert app.results == [FindQuery("regex", r"\d+", False)]


async def test_find_refuses_bad_input_and_says_why() -> None:
    screen = FindScreen(FindQuery("hex", ""))
    app = Host(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press(*"zz", "enter")
        problem = str(screen.query_one("#find-problem", Label).render())
        assert "not a hex digit" in problem
        assert screen.is_attached
        assert_fits(screen)
        await pilot.press("alt+r", "ctrl+u", "(", "enter")
        assert "bad regular expression" in str(screen.query_one("#find-problem", Label).render())
        await pilot.press("escape")
    assert app.results == [None]


async def test_find_starts_from_the_last_query() -> None:
    screen = FindScreen(FindQuery("filter", "grpc", case=False))
    app = Host(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        assert screen.query_one(Input).value == "grpc"
        assert screen.query_one("#find-case", Checkbox).disabled  # filters have no case
        await pilot.press("enter")
    assert app.results == [FindQuery("filter", "grpc", False)]


# -- Go to -------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_go_to_a_frame(size: tuple[int, int]) -> None:
    app = await run(GoToScreen(101), size, *"42", "enter")
    assert app.results == [42]


async def test_go_to_checks_the_range() -> None:
    screen = GoToScreen(101, current=7)
    app = Host(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        assert screen.query_one(Input).value == "7"
        await pilot.press("ctrl+u", "enter")
        assert str(screen.query_one("#goto-problem", Label).render()) == "type a frame number"
        await pilot.press(*"999", "enter")
        assert "no frame 999: the capture has frames 1 to 101" in str(
            screen.query_one("#goto-problem", Label).render()
        )
        await pilot.press("ctrl+u", *"x0", "enter")  # letters are not taken, 0 is not a frame
        assert "no frame 0" in str(screen.query_one("#goto-problem", Label).render())
        await pilot.press("ctrl+u", *"101", "enter")
    assert app.results == [101]


async def test_go_to_escape() -> None:
    app = await run(GoToScreen(10), (80, 24), "5", "escape")
    assert app.results == [None]


# -- Decode As ---------------------------------------------------------------------------------


def decoder_names() -> list[str]:
    return sorted(load_registry().decoders)


@pytest.mark.parametrize("size", SIZES)
async def test_decode_as_adds_rules_and_applies(size: tuple[int, int]) -> None:
    screen = DecodeAsScreen([], decoder_names())
    app = await run(
        screen, size, *"tcp.port==50051,http2", "enter", *"udp.port==5000-5010,rtp", "enter", "enter"
    )
    assert app.results == [["tcp.port==50051,http2", "udp.port==5000-5010,rtp"]]


async def test_decode_as_lists_names_and_checks_rules() -> None:
    names = decoder_names()
    screen = DecodeAsScreen(["udp.port==3478,stun"], names)
    app = Host(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        shown = " ".join(str(w.render()) for w in screen.query(Static))
        for name in names:
            assert name in shown
        await pilot.press(*"tcp.port=50051", "enter")
        problem = str(screen.query_one("#decode-as-problem", Label).render())
        assert "bad decode-as rule" in problem
        await pilot.press("ctrl+u", *"tcp.port==50051,nosuch", "enter")
        problem = str(screen.query_one("#decode-as-problem", Label).render())
        assert "no decoder 'nosuch'" in problem and "http2" in problem
        await pilot.press("ctrl+u", *"tcp.port==1-70000,http2", "enter")
        assert "bad port range" in str(screen.query_one("#decode-as-problem", Label).render())
        assert_fits(screen)
        await pilot.press("ctrl+u", *"tcp.port==50051,http2", "enter")
        assert screen.rules == ["udp.port==3478,stun", "tcp.port==50051,http2"]
        await pilot.press("shift+tab")  # to the rules
        assert isinstance(app.focused, OptionList)
        await pilot.press("home", "delete")
        assert screen.rules == ["tcp.port==50051,http2"]
        await pilot.press("ctrl+s")
    assert app.results == [["tcp.port==50051,http2"]]


async def test_decode_as_del_after_tab_removes_the_last_rule() -> None:
    """Tab to the list (nothing highlighted yet), Del: the last rule goes; the keys are said."""
    screen = DecodeAsScreen(["udp.port==3478,stun", "tcp.port==50051,http2"], decoder_names())
    app = Host(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        hints = " ".join(str(w.render()) for w in screen.query(".hint"))
        assert "Del removes" in hints and "Tab to the rules" in hints
        screen.query_one(OptionList).focus()
        await pilot.pause()
        await pilot.press("delete")
        assert screen.rules == ["udp.port==3478,stun"]
        await pilot.press("delete")
        assert screen.rules == []
        assert_fits(screen)
        await pilot.press("ctrl+s")
    assert app.results == [[]]


async def test_decode_as_escape_changes_nothing() -> None:
    app = await run(DecodeAsScreen(["udp.port==3478,stun"], decoder_names()), (80, 24), "escape")
    assert app.results == [None]


# -- Export ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
async def test_export_choice_and_path(size: tuple[int, int], tmp_path: Path) -> None:
    target = tmp_path / "out.pcapng"
    screen = ExportScreen(str(target), ["displayed", "marked", "all", "json"])
    app = Host(screen)
    async with app.run_test(size=size) as pilot:
        assert_fits(screen)
        await pilot.press("shift+tab", "right", "enter")  # Displayed -> Marked
        await pilot.press("tab", "enter")
    assert app.results == [ExportChoice(str(target), "marked")]


async def test_export_choice_from_the_path_box(tmp_path: Path) -> None:
    """The hint's keys work where the focus is (the path box): ↓ ↑ switch what is written."""
    target = tmp_path / "out.pcapng"
    screen = ExportScreen(str(target), ["displayed", "marked", "all"])
    app = Host(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        assert "↑↓ what" in " ".join(str(w.render()) for w in screen.query(".hint"))
        assert isinstance(app.focused, Input)
        await pilot.press("down", "down", "up")  # displayed -> marked -> all -> marked
        await pilot.pause()
        assert screen.which == "marked"
        await pilot.press("enter")
    assert app.results == [ExportChoice(str(target), "marked")]


async def test_export_confirms_overwrite_and_refuses_missing_folder(tmp_path: Path) -> None:
    existing = tmp_path / "there.pcapng"
    existing.write_bytes(b"")
    screen = ExportScreen(str(existing), ["displayed", "all"])
    app = Host(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        assert "exists: Enter again" in str(screen.query_one("#export-problem", Label).render())
        assert screen.is_attached
        await pilot.press("ctrl+u", *str(tmp_path / "nowhere" / "x.pcapng"), "enter")
        assert "no folder" in str(screen.query_one("#export-problem", Label).render())
        await pilot.press("ctrl+u", *str(tmp_path), "enter")
        assert "is a folder" in str(screen.query_one("#export-problem", Label).render())
        await pilot.press("ctrl+u", *str(existing), "enter", "enter")
    assert app.results == [ExportChoice(str(existing), "displayed")]


async def test_find_checks_filter_fields_with_the_registry() -> None:
    screen = FindScreen(FindQuery("filter", "foo == 1"), registry=load_registry())
    app = Host(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        assert "unknown field 'foo'" in str(screen.query_one("#find-problem", Label).render())
        assert_fits(screen)
        await pilot.press("ctrl+u", *"grpc.status != 0", "enter")
    assert app.results == [FindQuery("filter", "grpc.status != 0", False)]
