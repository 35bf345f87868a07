"""The viewer's settings file: filter history, saved filters, colouring rules, columns, time format.

It lives at `$XDG_CONFIG_HOME/protoscope/config.toml` (`~/.config/...` when the variable is unset),
as termshark and most terminal tools keep theirs. A missing file means the defaults; a file that does
not parse, or holds values of the wrong kind, still gives a working Config with the defaults for what
was wrong and a line per problem in `Config.problems` (the app shows them once): a settings file must
never stop the viewer from opening a capture.

    filter_history = ["grpc.status != 0", "stun"]
    time_format = "relative"
    colouring = true

    [saved_filters]
    errors = "_ws.expert.severity == error"

    [[colour_rules]]
    name = "slow calls"
    filter = "grpc.status == 4"
    style = "black on #ffd0d0"

    [[columns]]
    title = "No."
    field = "frame.number"
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FILE_NAME = "config.toml"
MAX_HISTORY = 100
"""Filters remembered, newest last; Wireshark keeps a similar recent list."""
TIME_FORMATS = ("relative", "delta", "delta_displayed", "absolute", "utc", "epoch")
"""Wireshark's View > Time Display Format, in the order `T` cycles them; tshark's -t r|d|dd|a|u|e."""
BUILTIN_FIELDS = ("frame.number", "time", "source", "destination", "protocol", "length", "info")
"""Columns the list computes itself; any other field is a display-filter field name."""


@dataclass
class ColourRule:
    """Packets the display filter `filter` matches are drawn in `style` (a Rich style string)."""

    name: str
    filter: str
    style: str


@dataclass
class ColumnSpec:
    """One packet-list column: its header and what it shows (a builtin or a filter field name)."""

    title: str
    field: str


def default_columns() -> list[ColumnSpec]:
    """Wireshark's seven default columns."""
    return [
        ColumnSpec("No.", "frame.number"),
        ColumnSpec("Time", "time"),
        ColumnSpec("Source", "source"),
        ColumnSpec("Destination", "destination"),
        ColumnSpec("Protocol", "protocol"),
        ColumnSpec("Length", "length"),
        ColumnSpec("Info", "info"),
    ]


@dataclass
class Config:
    filter_history: list[str] = field(default_factory=list)
    """Newest last, no duplicates, at most MAX_HISTORY."""
    saved_filters: dict[str, str] = field(default_factory=dict)
    """Name -> filter text."""
    colour_rules: list[ColourRule] = field(default_factory=list)
    """The user's rules, tried before the defaults."""
    columns: list[ColumnSpec] = field(default_factory=default_columns)
    """Shown columns in order."""
    time_format: str = "relative"
    colouring: bool = True
    problems: list[str] = field(default_factory=list)
    """What was wrong with the file; not saved."""
    path: Path | None = field(default=None, compare=False)
    """Where it was read from, so `remember_filter` saves it back there."""


def config_path() -> Path:
    """$XDG_CONFIG_HOME/protoscope/config.toml, ~/.config when the variable is unset or empty."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "protoscope" / FILE_NAME


def load_config(path: Path | None = None) -> Config:
    """The settings in `path` (default `config_path()`): defaults when missing, defaults and
    `problems` for what is wrong."""
    path = path or config_path()
    config = Config(path=path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return config
    except OSError as exc:
        config.problems.append(f"{path}: cannot read it ({exc.strerror or exc}); using the defaults")
        return config
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        config.problems.append(f"{path}: not valid TOML ({exc}); using the defaults")
        return config
    for key, read in _READERS.items():
        if key in data:
            try:
                read(config, data[key])
            except (TypeError, ValueError) as exc:
                config.problems.append(f"{path}: {key}: {exc}; using the default")
    unknown = sorted(set(data) - set(_READERS))
    if unknown:
        config.problems.append(f"{path}: unknown settings ignored: {', '.join(unknown)}")
    return config


def _strings(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{what} must be a list of strings")
    return list(value)


def _table_rows(value: object, keys: tuple[str, ...]) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise TypeError("must be an array of tables")
    rows: list[dict[str, str]] = []
    for row in value:
        if not isinstance(row, dict) or not all(isinstance(row.get(k), str) for k in keys):
            raise TypeError(f"every entry needs string keys {', '.join(keys)}")
        rows.append({k: row[k] for k in keys})
    return rows


def _read_history(config: Config, value: object) -> None:
    config.filter_history[:] = _dedup(_strings(value, "filter_history"))[-MAX_HISTORY:]


def _read_saved(config: Config, value: object) -> None:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise TypeError('saved_filters must be a table of name = "filter"')
    config.saved_filters = dict(value)


def _read_rules(config: Config, value: object) -> None:
    config.colour_rules = [ColourRule(**r) for r in _table_rows(value, ("name", "filter", "style"))]


def _read_columns(config: Config, value: object) -> None:
    columns = [ColumnSpec(**r) for r in _table_rows(value, ("title", "field"))]
    if not columns:
        raise ValueError("no columns")
    config.columns = columns


def _read_time_format(config: Config, value: object) -> None:
    if value not in TIME_FORMATS:
        raise ValueError(f"{value!r} is not one of {', '.join(TIME_FORMATS)}")
    config.time_format = str(value)


def _read_colouring(config: Config, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError("colouring must be true or false")
    config.colouring = value


_READERS: Mapping[str, Callable[[Config, Any], None]] = {
    "filter_history": _read_history,
    "saved_filters": _read_saved,
    "colour_rules": _read_rules,
    "columns": _read_columns,
    "time_format": _read_time_format,
    "colouring": _read_colouring,
}


def _dedup(items: list[str]) -> list[str]:
    """Keep the last occurrence of each (the newest), in order."""
    seen: set[str] = set()
    out: list[str] = []
    for item in reversed(items):
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out[::-1]


# -- writing -----------------------------------------------------------------------------------
# tomllib only reads, and tomli-w is not among our dependencies; the file has a fixed shape
# (strings, a bool, a list of strings, a table of strings, arrays of tables of strings), so this
# writer covers exactly that shape. A round-trip test through tomllib keeps it honest.


def _toml_string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def dumps(config: Config) -> str:
    """The TOML text of `config` (problems and path are not settings, so not written)."""
    lines = ["# protoscope viewer settings (rewritten by the viewer)"]
    lines.append(f"time_format = {_toml_string(config.time_format)}")
    lines.append(f"colouring = {'true' if config.colouring else 'false'}")
    history = ", ".join(_toml_string(s) for s in config.filter_history)
    lines.append(f"filter_history = [{history}]")
    lines += ["", "[saved_filters]"]
    lines += [f"{_toml_string(k)} = {_toml_string(v)}" for k, v in config.saved_filters.items()]
    for rule in config.colour_rules:
        lines += ["", "[[colour_rules]]"]
        lines += [f"{k} = {_toml_string(getattr(rule, k))}" for k in ("name", "filter", "style")]
    for column in config.columns:
        lines += ["", "[[columns]]"]
        lines += [f"{k} = {_toml_string(getattr(column, k))}" for k in ("title", "field")]
    return "\n".join(lines) + "\n"


def save_config(config: Config, path: Path | None = None) -> None:
    """Write `config` atomically (a temporary file beside it, then a rename), so a crash never
    leaves half a file. OSError propagates."""
    path = path or config.path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(dumps(config))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remember_filter(config: Config, text: str) -> None:
    """Put `text` last in the history (once) and save to the file the config came from (a
    Config made in memory, as in tests, is not saved); a failed save becomes a problem."""
    text = text.strip()
    if not text:
        return
    # In place: the filter bar holds this very list, so the filter is its first ↑ at once.
    config.filter_history[:] = _dedup([*config.filter_history, text])[-MAX_HISTORY:]
    if config.path is None:
        return
    try:
        save_config(config)
    except OSError as exc:
        config.problems.append(f"cannot save the settings: {exc.strerror or exc}")
