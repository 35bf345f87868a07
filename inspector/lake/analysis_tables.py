"""The analyses' tables: how each report row becomes rows of the lake's tables.

Every analysis the registry runs gets tables (`tables_for`). The in-tree ones have tables written
in tables_grpc.py, tables_rtp.py, tables_webrtc.py, tables_datachannels.py and tables_stun.py
(IN_TREE lists them), with a documented column for every scalar key of their JSON rows and a
child table for each list worth querying on its own (a call's messages, a stream's seconds, a
session's phases, candidates, pairs, paths, media and NAT verdicts, a data channel's messages);
nested values that have no table of their own are `json` columns. A third-party analysis gets
the columns its class declares (`lake_columns`: column -> type), or the generic `row` + `json`
table.

`Splitter` turns rows as the analyses hand them over (in report order, in as many batches as they
drain) into table rows: dicts of column -> value as stored (timestamps as int ns, json as text,
lists as lists). Positions that name a row on the command line (`call` as `--call N`, `stream` as
`--stream N`) count across batches. Each column converts its values with a converter chosen once
for its type (convert.py's `CONVERTERS`; shape.py compiles each table's row function); a value
that does not fit (a str where an int is declared, an int out of uint16's range, a NaN time, an
unencodable string) is null, never an exception, and the row's json columns keep what they hold.
A guest's rows are plain data already (the registry checks them), but may be any shape: a value
that is not a list where a list is expected gives no child rows, an item that is not a dict a row
of nulls.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from protoscope.decoders.registry import Registry, is_ours

# Re-exported: the tests (and a reader looking for a table) find every name here.
from .convert import CONVERTERS, FAST, INT_RANGES, NS_RANGE, Convert, _count, _json, _string, _utf8  # noqa: F401
from .schema import CORE_TABLES, PARTITION, TYPES, Column, Table
from .shape import (  # noqa: F401
    ENDPOINT,
    FINDINGS_DOC,
    Col,
    Item,
    Row,
    Shape,
    SplitRow,
    _endpoint,
    from_caller,
    from_item,
    from_key,
)
from .tables_datachannels import DATACHANNEL_MESSAGES, DATACHANNELS, split_datachannels
from .tables_grpc import CALLS, GRPC_MESSAGES, split_calls
from .tables_rtp import STREAM_SECONDS, STREAMS, split_streams
from .tables_stun import STUN_TRANSACTIONS, split_stun_transactions
from .tables_webrtc import (  # noqa: F401
    ICE_CANDIDATES,
    ICE_PAIRS,
    NAT,
    PHASES,
    SESSION_MEDIA,
    SESSION_PATHS,
    SESSION_PHASES,
    SESSIONS,
    SESSIONS_OTHER,
    SESSIONS_SOURCE,
    TURN_ALLOCATIONS,
    split_sessions,
)

MAX_TABLE_NAME = 64
"""Characters of a third-party report's name its table name keeps (a path segment, an SQL name)."""
MAX_PLUGIN_COLUMNS = 1024
"""Columns a third-party analysis may declare in `lake_columns`; the rest are ignored."""


# -- the in-tree tables ---------------------------------------------------------------------------

IN_TREE: dict[str, tuple[Shape, ...]] = {
    "calls": (CALLS, GRPC_MESSAGES),
    "streams": (STREAMS, STREAM_SECONDS),
    "sessions": (
        SESSIONS,
        SESSION_PHASES,
        ICE_CANDIDATES,
        ICE_PAIRS,
        SESSION_PATHS,
        SESSION_MEDIA,
        NAT,
        TURN_ALLOCATIONS,
        SESSIONS_OTHER,
    ),
    "datachannels": (DATACHANNELS, DATACHANNEL_MESSAGES),
    "stun_transactions": (STUN_TRANSACTIONS,),
}
"""Report name -> its tables, for the in-tree analysis of that name."""
RESERVED = {t.name for t in CORE_TABLES} | {s.table.name for shapes in IN_TREE.values() for s in shapes}
"""Table names a third-party analysis's table never takes (it gets `plugin_<name>`)."""


# -- third-party analyses ---------------------------------------------------------------------------


def _table_name(report: str, taken: set[str]) -> str:
    """A table name for a third-party report: lower case letters, digits and '_' (a path segment
    and an SQL name as it is), not one of ours, not starting with '_' (hidden from readers)."""
    name = re.sub(r"[^a-z0-9_]", "_", report.lower())[:MAX_TABLE_NAME] or "plugin"
    if name in RESERVED or name.startswith("_") or name[0].isdigit():
        name = f"plugin_{name}"
    base, n = name, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _declared(make: object) -> list[tuple[str, str]] | None:
    """The (column, type) pairs an analysis class declares in `lake_columns`, or None when it
    declares none (or nothing usable). A type outside the vocabulary is stored as json; `capture`
    (the partition column) and `row` (always the position) are not taken from it."""
    try:
        declared = getattr(make, "lake_columns", None)
        if not isinstance(declared, Mapping):
            return None
        items = list(itertools.islice(declared.items(), MAX_PLUGIN_COLUMNS))
    except Exception:  # a guest's mapping that fails to read: as if it declared nothing
        return None
    out: list[tuple[str, str]] = []
    seen = {"row", PARTITION}
    for name, type_ in items:
        if type(name) is not str or not name or name in seen:
            continue
        seen.add(name)
        out.append((name, type_ if type(type_) is str and type_ in TYPES else "json"))
    return out or None


def _plugin_shape(report: str, make: object, taken: set[str]) -> Shape:
    name = _table_name(report, taken)
    source = f"--report {report}"
    position = from_caller("row", "int64", f"0-based position in --report {report}")
    declared = _declared(make)
    if declared is None:
        doc = f"One row per row of --report {report} (a plugin's analysis), whole as JSON."
        return Shape(name, source, doc, [position, from_caller("json", "json", "the whole report row")])
    cols = [
        Col(
            Column(column, type_, f"the row's `{column}`"),
            key=column,
            count=column == "findings" and type_ in INT_RANGES,
        )
        for column, type_ in declared
    ]
    doc = f"One row per row of --report {report} (a plugin's analysis): the columns it declares."
    return Shape(name, source, doc, [position, *cols])


# -- the public API -------------------------------------------------------------------------------


def _shapes(registry: Registry) -> dict[str, tuple[Shape, ...]]:
    """Report name -> the shapes of its tables, for every analysis the registry has."""
    out: dict[str, tuple[Shape, ...]] = {}
    taken: set[str] = set()
    for report in sorted(registry.analyses):
        make = registry.analyses[report]
        ours = IN_TREE.get(report) if is_ours(make) else None
        out[report] = ours if ours is not None else (_plugin_shape(report, make, taken),)
    return out


def tables_for(registry: Registry) -> dict[str, tuple[Table, ...]]:
    """Report name -> its tables, for every analysis the registry has (in-tree ones by their
    definitions here, third-party ones by `lake_columns` or as `row` + `json`)."""
    return {report: tuple(s.table for s in shapes) for report, shapes in _shapes(registry).items()}


class Splitter:
    """Report rows -> table rows, for one capture's export: one per export, as it keeps each
    report's row count (positions go on across the batches an analysis drains)."""

    def __init__(self, registry: Registry) -> None:
        self._shapes = _shapes(registry)
        self._split: dict[str, SplitRow] = {}
        for report, shapes in self._shapes.items():
            ours = shapes is IN_TREE.get(report)
            self._split[report] = IN_TREE_SPLITS[report] if ours else _split_plugin_rows(shapes[0])
        self._counts: dict[str, int] = {}

    def split(self, report: str, rows: Sequence[dict[str, Any]]) -> dict[str, list[Row]]:
        """Rows of `report` in report order (called again as more come) -> table name -> rows.
        Every table of the report is a key (an empty list when these rows give it none); a
        report the registry has no analysis for gives {}."""
        split = self._split.get(report)
        if split is None:
            return {}
        out: dict[str, list[Row]] = {s.table.name: [] for s in self._shapes[report]}
        first = self._counts.get(report, 0)
        self._counts[report] = first + len(rows)
        for k, row in enumerate(rows):
            for table, table_rows in split(first + k, row).items():
                out[table].extend(table_rows)
        return out


# Each report: (position, row) -> table name -> rows. A row is a dict (a non-dict is as {}).


def _split_plugin_rows(shape: Shape) -> SplitRow:
    name = shape.table.name
    whole = "json" in shape.given

    def rows(position: int, row: Any) -> dict[str, list[Row]]:
        given: Row = {"row": position}
        if whole:
            given["json"] = _json(row)
        return {name: [shape.row(row, given)]}

    return rows


IN_TREE_SPLITS: dict[str, SplitRow] = {
    "calls": split_calls,
    "streams": split_streams,
    "sessions": split_sessions,
    "datachannels": split_datachannels,
    "stun_transactions": split_stun_transactions,
}
"""Report name -> how one row of the in-tree analysis of that name becomes table rows."""
assert set(IN_TREE_SPLITS) == set(IN_TREE)
