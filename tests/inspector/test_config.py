"""The viewer's settings file: defaults, a round trip through tomllib, bad files as problems."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from protoscope.inspector.config import (
    MAX_HISTORY,
    ColourRule,
    ColumnSpec,
    Config,
    config_path,
    default_columns,
    dumps,
    load_config,
    remember_filter,
    save_config,
)


def test_the_path_follows_xdg_config_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config_path() == tmp_path / "protoscope" / "config.toml"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config_path() == tmp_path / "home" / ".config" / "protoscope" / "config.toml"


def test_a_missing_file_gives_the_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path / "none.toml")
    assert config.columns == default_columns()
    assert [c.title for c in config.columns] == [
        "No.", "Time", "Source", "Destination", "Protocol", "Length", "Info"
    ]  # fmt: skip
    assert (config.time_format, config.colouring, config.problems) == ("relative", True, [])


def test_round_trip_through_tomllib(tmp_path: Path) -> None:
    awkward = 'a "quoted" \\ back\tslash\nnewline \x01 é ✓'
    config = Config(
        filter_history=["grpc.status != 0", awkward],
        saved_filters={"errors": '_ws.expert.severity == "error"', "odd key = x": awkward},
        colour_rules=[ColourRule("slow", "grpc.status == 4", "black on #ffd0d0")],
        columns=[
            ColumnSpec("No.", "frame.number"),
            ColumnSpec("Path", "grpc.path"),
            ColumnSpec("Info", "info"),
        ],
        time_format="utc",
        colouring=False,
    )
    path = tmp_path / "sub" / "config.toml"
    save_config(config, path)
    raw = tomllib.loads(path.read_text())
    assert raw["filter_history"][1] == awkward
    again = load_config(path)
    assert again == config and again.problems == []
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temporary file left behind


def test_a_broken_file_gives_defaults_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("time_format = [unclosed\n")
    config = load_config(path)
    assert config.time_format == "relative" and len(config.problems) == 1
    assert "not valid TOML" in config.problems[0]


def test_wrong_values_fall_back_one_by_one(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        'time_format = "sideways"\ncolouring = "yes"\nfilter_history = ["udp", 3]\nsurprise = 1\n'
        '[saved_filters]\nok = "udp"\n[[columns]]\ntitle = "No."\n'
    )
    config = load_config(path)
    assert config.saved_filters == {"ok": "udp"}
    assert (config.time_format, config.colouring, config.filter_history) == ("relative", True, [])
    assert config.columns == default_columns()
    text = "\n".join(config.problems)
    for word in ("time_format", "colouring", "filter_history", "columns", "surprise"):
        assert word in text


def test_remember_filter_keeps_the_newest_once_and_saves(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    config = load_config(path)
    for text in ["udp", "tcp", "udp", "  ", *(f"frame.len > {n}" for n in range(MAX_HISTORY))]:
        remember_filter(config, text)
    assert config.filter_history[-1] == f"frame.len > {MAX_HISTORY - 1}"
    assert len(config.filter_history) == MAX_HISTORY and "udp" not in config.filter_history
    assert load_config(path).filter_history == config.filter_history
    remember_filter(config, "tcp")
    assert config.filter_history[-1] == "tcp" and config.filter_history.count("tcp") == 1


def test_a_failed_save_becomes_a_problem(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    config = load_config(blocker / "config.toml")  # its folder is a file: it cannot be made
    remember_filter(config, "udp")
    assert config.filter_history == ["udp"] and "cannot save" in config.problems[-1]
    with pytest.raises(OSError):
        save_config(config)


def test_a_config_from_no_file_is_not_saved(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    config = Config()
    remember_filter(config, "udp")
    assert config.filter_history == ["udp"] and not any(tmp_path.iterdir())


def test_dumps_is_valid_toml_for_the_defaults() -> None:
    assert tomllib.loads(dumps(Config()))["columns"][0] == {"title": "No.", "field": "frame.number"}
