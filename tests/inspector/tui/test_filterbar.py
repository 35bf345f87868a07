"""The filter bar's history: filters applied in this run are its first ↑, newest first."""

from __future__ import annotations

from pathlib import Path

import pytest

from protoscope.decoders.registry import load_registry
from protoscope.inspector.config import load_config
from protoscope.inspector.tui.app import ProtoscopeApp
from protoscope.inspector.tui.filterbar import FilterBar
from tests.inspector.tui.test_app import DEMO, loaded, until

FILTERS = ["tcp.port == 47051", 'frame contains "demo"', 'grpc.method == "Get"']


@pytest.fixture(autouse=True)
def settings_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config"


async def apply_all(pilot, app) -> None:  # type: ignore[no-untyped-def]
    bar = app.query_one(FilterBar)
    for text in FILTERS:
        await pilot.press("slash")
        bar.value = text
        await pilot.press("enter")
        await until(pilot, lambda t=text: app.config.filter_history[-1:] == [t])


async def walk_up(pilot, app, steps: int) -> list[str]:  # type: ignore[no-untyped-def]
    bar = app.query_one(FilterBar)
    await pilot.press("slash", "ctrl+u")
    seen = []
    for _ in range(steps):
        await pilot.press("up")
        seen.append(bar.value)
    return seen


async def test_filters_applied_in_this_run_are_the_first_up_newest_first() -> None:
    app = ProtoscopeApp(DEMO, load_registry())
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await apply_all(pilot, app)
        assert await walk_up(pilot, app, 3) == FILTERS[::-1]
        await pilot.press("down", "down", "down")
        assert app.query_one(FilterBar).value == ""


async def test_after_a_restart_the_last_filter_of_the_run_is_the_first_up(settings_home: Path) -> None:
    app = ProtoscopeApp(DEMO, load_registry())
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await apply_all(pilot, app)
    assert load_config().filter_history == FILTERS
    again = ProtoscopeApp(DEMO, load_registry())
    async with again.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        assert await walk_up(pilot, again, 1) == [FILTERS[-1]]


async def test_a_walk_left_half_way_starts_again_at_the_newest() -> None:
    app = ProtoscopeApp(DEMO, load_registry())
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await apply_all(pilot, app)
        await walk_up(pilot, app, 2)
        await pilot.press("escape")
        assert await walk_up(pilot, app, 1) == [FILTERS[-1]]
