"""The ladder screen, driven by Pilot: the frame and time columns stay while the drawing scrolls
sideways, and the text is the ladder's."""

from __future__ import annotations

from textual.app import App
from textual.containers import HorizontalScroll
from textual.widgets import Static

from protoscope.inspector.report.ladder import LEFT, Arrow, draw_ladder
from protoscope.inspector.tui.ladder import LadderScreen

ENDPOINTS = [f"10.0.0.{k}:{5000 + k}" for k in range(8)]


def wide_ladder() -> list[Arrow]:
    """Eight endpoints, each speaking to the next and the last back to the first."""
    return [
        Arrow(k + 1, 100.0 + k / 10, ENDPOINTS[k], ENDPOINTS[(k + 1) % 8], f"message {k + 1}", "sdp")
        for k in range(8)
    ]


def plain(widget: Static) -> list[str]:
    return str(widget.render()).splitlines()


async def test_fixed_columns_stay_while_the_drawing_scrolls() -> None:
    ladder = draw_ladder(wide_ladder(), width=70)
    assert max(len(line) for line in ladder) > 70  # 8 columns at MIN_STEP do not fit 70 cells
    app: App[None] = App()
    async with app.run_test(size=(80, 30)) as pilot:
        screen = LadderScreen(ladder, "session 0")
        await app.push_screen(screen)
        await pilot.pause()
        assert screen.lines == list(ladder)
        fixed = plain(screen.query_one("#ladder-fixed", Static))
        assert [line.split() for line in fixed[1:3]] == [["1", "0.000000"], ["2", "0.100000"]]
        head = plain(screen.query_one("#ladder-head", Static))
        assert head[0].startswith("A 10.0.0.0:5000 · B 10.0.0.1:5001")
        assert head[-1].startswith("t = 0 at frame 1, 1970-01-01 00:01:40.000000 UTC")
        scroll = screen.query_one("#ladder-scroll", HorizontalScroll)
        assert scroll.scroll_x == 0
        await pilot.press("right", "right")
        await pilot.pause()
        assert scroll.scroll_x == 16
        assert plain(screen.query_one("#ladder-fixed", Static)) == fixed  # the left part stays
        await pilot.press("left")
        await pilot.pause()
        assert scroll.scroll_x == 8
        await pilot.press("escape")
        assert not isinstance(app.screen, LadderScreen)


async def test_plain_lines_still_show() -> None:
    app: App[None] = App()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = LadderScreen(["no decoded messages"], "flow 3")
        await app.push_screen(screen)
        await pilot.pause()
        assert plain(screen.query_one("#ladder-head", Static)) == ["no decoded messages"]
        assert not screen.query("#ladder-scroll")


def test_left_part_is_frame_and_time() -> None:
    ladder = draw_ladder(wide_ladder(), width=200)
    rows = ladder[ladder.head + 1 :]
    assert ladder.fixed == LEFT and all(row[:LEFT].split()[0].isdigit() for row in rows)
    assert max(len(line) for line in ladder) <= 200
