"""Report values -> the values the lake stores: one converter per type of the vocabulary
(schema.TYPES), shared by the core tables (export.py) and the analyses' tables (analysis_tables.py).

A value that does not fit its column (a str where an int is declared, an int out of uint16's range,
a NaN time) is null, never an exception; a string that UTF-8 cannot encode (a lone surrogate, from
undecodable bytes or a plugin's text) is stored with the escape `--report` prints for it, so one
bad string never fails a capture's export (pyarrow raises UnicodeEncodeError on it). JSON text is
what the JSON report writes (json_inert). This module does not import pyarrow.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Callable, Sequence
from typing import Any

from ..report.inert import json_inert
from .schema import TYPES, Table

Convert = Callable[[Any], Any]

INT_RANGES: dict[str, tuple[int, int]] = {
    "int32": (-(1 << 31), (1 << 31) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
    "uint16": (0, 0xFFFF),
    "uint32": (0, 0xFFFFFFFF),
    "uint64": (0, (1 << 64) - 1),
}
"""The values each integer type stores; an int outside is null."""
NS_RANGE = INT_RANGES["int64"]
"""timestamp[ns] is an int64 of nanoseconds since the epoch (1677-09-21 to 2262-04-11)."""


# -- converters: one per vocabulary type, chosen once per column ----------------------------------


def _utf8(text: str) -> str:
    """`text` as Parquet can store it (UTF-8): a lone surrogate (from undecodable bytes) becomes
    its `\\udcxx` escape, as the JSON report writes it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _string(v: Any) -> str | None:
    if type(v) is str:
        return v if v.isascii() else _utf8(v)
    if isinstance(v, str):  # a StrEnum: its value, never a __str__ of its own
        return _utf8(str.__str__(v))
    return None


def _integer(lo: int, hi: int) -> Convert:
    def convert(v: Any) -> int | None:
        if type(v) is int:
            return v if lo <= v <= hi else None
        if isinstance(v, numbers.Integral) and not isinstance(v, bool):  # an IntEnum, numpy's ints
            n = int(v)
            return n if lo <= n <= hi else None
        return None

    return convert


def _float(v: Any) -> float | None:
    if type(v) is float:
        return v
    if isinstance(v, numbers.Real) and not isinstance(v, bool):
        try:
            return float(v)
        except (OverflowError, ValueError):
            return None
    return None


def _bool(v: Any) -> bool | None:
    return v if type(v) is bool else None


def _timestamp(v: Any) -> int | None:
    """ns since the epoch from a report's float epoch seconds (round(t * 1e9): float64 holds a
    2020s time to ~0.2 us), or from whole seconds given as an int."""
    if type(v) is float:
        try:
            ns = round(v * 1e9)
        except (OverflowError, ValueError):  # inf, NaN
            return None
    elif type(v) is int:
        ns = v * 1_000_000_000
    else:
        return None
    return ns if NS_RANGE[0] <= ns <= NS_RANGE[1] else None


JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False)
"""What json.dumps(value, ensure_ascii=False) does, made once: dumps with keywords builds an
encoder a call (a third of its time on small messages)."""


def _json(v: Any) -> str | None:
    """The JSON text of `v` as the report writes it (json_inert: the same value, with the
    characters a terminal would act on and lone surrogates escaped, so that it is valid UTF-8);
    null for None and for what JSON cannot hold (a NaN, a tuple key, a cycle)."""
    if v is None:
        return None
    if not v and (type(v) is dict or type(v) is list):  # empty metadata, no trailers: most calls
        return "{}" if type(v) is dict else "[]"
    try:
        text = JSON.encode(v)
    except (TypeError, ValueError, RecursionError):
        return None
    return json_inert(text)


def _list_of(convert: Convert) -> Convert:
    def converted(v: Any) -> list[Any] | None:
        if type(v) is list or type(v) is tuple:
            return [convert(x) for x in v]
        return None

    return converted


CONVERTERS: dict[str, Convert] = {
    "string": _string,
    "bool": _bool,
    **{name: _integer(lo, hi) for name, (lo, hi) in INT_RANGES.items()},
    "float64": _float,
    "seconds": _float,
    "timestamp": _timestamp,
    "list<string>": _list_of(_string),
    "list<int64>": _list_of(_integer(*INT_RANGES["int64"])),
    "list<float64>": _list_of(_float),
    "json": _json,
}
"""Vocabulary type -> what makes a report value the value stored (None when it does not fit)."""
assert set(TYPES) <= set(CONVERTERS), "a type of schema.TYPES without a converter"


def _count(convert: Convert) -> Convert:
    """A list stored as its length (a row's `findings`); anything else as the type stores it."""

    def counted(v: Any) -> Any:
        return convert(len(v) if type(v) is list else v)

    return counted


FAST: dict[str, str] = {
    **{t: f"v if type(v := {{get}}) is int and {lo} <= v <= {hi}" for t, (lo, hi) in INT_RANGES.items()},
    "string": "v if type(v := {get}) is str and v.isascii()",
    "bool": "v if type(v := {get}) is bool",
    "float64": "v if type(v := {get}) is float",
    "seconds": "v if type(v := {get}) is float",
    "timestamp": "round(v * 1e9) if type(v := {get}) is float and -9.2e9 < v < 9.2e9",
    "json": "None if (v := {get}) is None",
    "list<string>": "None if (v := {get}) is None",
    "list<int64>": "None if (v := {get}) is None",
    "list<float64>": "None if (v := {get}) is None",
}
"""Per type, the test that takes the common value as it is (an int in range, an ASCII str, a float
time well within int64 nanoseconds), written into each table's row function; anything else goes
through the type's converter."""
assert set(FAST) == set(CONVERTERS), "a type without a fast path"

STRING_TYPES = frozenset({"string", "list<string>"})
"""The types whose values carry text from the capture or a plugin (json columns are made by `_json`)."""


def safe_strings(table: Table, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """`rows` of a core table with every text column made storable (`_string`; a value of the
    wrong type is null): the core tables' other columns are built by export.py from typed values,
    but their strings come from decoders, plugins and file names. ASCII text, nearly all of it,
    is kept as it is."""
    columns = [(c.name, CONVERTERS[c.type]) for c in table.columns if c.type in STRING_TYPES]
    for row in rows:
        for name, convert in columns:
            v = row.get(name)
            if v is not None and not (type(v) is str and v.isascii()):
                row[name] = convert(v)
    return list(rows)


def safe_text(values: list[Any]) -> list[Any]:
    """A column of strings (None allowed) made storable, in place; ASCII ones as they are."""
    for k, v in enumerate(values):
        if v is not None and not (type(v) is str and v.isascii()):
            values[k] = _string(v)
    return values


def json_text(value: Any) -> str | None:
    """The JSON text of `value` as the report writes it (`_json`), for the core tables' json columns."""
    return _json(value)
