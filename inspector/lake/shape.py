"""How a table of the lake is made from report rows: `Shape` (a Table, and how each column is read
from an item: a report row or an element of one of its lists) and the column helpers the table
modules (tables_*.py) share.

Code generation: each Shape compiles, once, a Python function that builds a row of its table
(`_compiled`): one dict display whose every entry reads its key and takes the common value as it
is (convert.FAST: an int in range, an ASCII str, a float time), else calls the column type's
converter (convert.CONVERTERS). The source is built only from the table's own column names (as
`repr` literals) and the FAST templates, never from report data, and compiled under the file name
`<lake table NAME>` so a traceback names the table. A generic loop over (column, converter) pairs
took ~3x as long per row on calls rows.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .convert import CONVERTERS, FAST, Convert, _count
from .schema import Column, Table

Row = dict[str, Any]
Item = Mapping[str, Any]
SplitRow = Callable[[int, Any], dict[str, list[Row]]]
"""How one report row (and its position in the report) becomes rows of its tables, by table name."""


# -- table shapes: a Table and how each of its columns is read ------------------------------------


@dataclass(frozen=True)
class Col:
    """One column of an in-tree table and where its value comes from: the item's `key` (the
    column's own name by default), a function of the item (`get`), or the caller (`given`:
    positions and parent keys, converted once for all of a parent's child rows)."""

    column: Column
    key: str | None = None
    get: Callable[[Item], Any] | None = None
    given: bool = False
    count: bool = False
    """The value is a list, stored as its length."""


def from_key(name: str, type_: str, doc: str = "", key: str | None = None, count: bool = False) -> Col:
    """A column read from the key of the same name (or `key`)."""
    return Col(Column(name, type_, doc), key=key or name, count=count)


def from_item(name: str, type_: str, doc: str, get: Callable[[Item], Any]) -> Col:
    """A column derived from the item by `get`."""
    return Col(Column(name, type_, doc), get=get)


def from_caller(name: str, type_: str, doc: str = "") -> Col:
    """A column whose value the caller gives (a position, the parent row's key)."""
    return Col(Column(name, type_, doc), given=True)


class Shape:
    """A table and how a row of it is made from one item (a report row, or an element of one of
    its lists) and the values its caller gives."""

    def __init__(self, name: str, source: str, doc: str, cols: Sequence[Col]) -> None:
        self.table = Table(name, tuple(col.column for col in cols), doc, source)
        self.cols = tuple(cols)
        self.given = tuple(col.column.name for col in cols if col.given)
        self.converters = {col.column.name: CONVERTERS[col.column.type] for col in cols}
        self.row: Callable[[Any, Row], Row] = _compiled(name, [col for col in cols if not col.given])
        """A row from `item` (a non-dict is an item without keys) and the converted given values."""

    def convert(self, given: Mapping[str, Any]) -> Row:
        """The given columns' values, converted: once per parent, for all its child rows."""
        return {name: self.converters[name](given.get(name)) for name in self.given}

    def rows(self, items: Any, given: Row) -> list[Row]:
        """A row per element of `items` (none when it is not a list), `index` its position."""
        if type(items) is not list:
            return []
        row = self.row
        return [row(item, {**given, "index": k}) for k, item in enumerate(items)]


def _compiled(name: str, cols: Sequence[Col]) -> Callable[[Any, Row], Row]:
    """The function that makes a row of table `name` from an item and the given values: one dict
    display, each column's common case inline (FAST), compiled once per table. A generic loop over
    (column, converter) pairs took 30 us a row on calls rows, ~3x this."""
    namespace: dict[str, Any] = {"EMPTY": {}}
    values: list[str] = []
    for k, col in enumerate(cols):
        column = col.column
        namespace[f"c{k}"] = _converter(col)
        if col.get is not None:
            namespace[f"f{k}"] = col.get
            values.append(f"{column.name!r}: c{k}(f{k}(item)),")
        elif col.count:
            values.append(f"{column.name!r}: c{k}(get({col.key!r})),")
        else:
            fast = FAST[column.type].format(get=f"get({col.key!r})")
            values.append(f"{column.name!r}: ({fast} else None if v is None else c{k}(v)),")
    source = "\n".join(
        [
            "def row(item, given):",
            "    if not isinstance(item, dict):",
            "        item = EMPTY",
            "    get = item.get",
            "    return {**given,",
            *(f"        {v}" for v in values),
            "    }",
        ]
    )
    exec(compile(source, f"<lake table {name}>", "exec"), namespace)
    row: Callable[[Any, Row], Row] = namespace["row"]
    return row


def _converter(col: Col) -> Convert:
    convert = CONVERTERS[col.column.type]
    return _count(convert) if col.count else convert


def _get(item: Any, *path: str) -> Any:
    """item[path[0]][path[1]]..., None where a step is missing or not a dict."""
    for key in path:
        if not isinstance(item, dict):
            return None
        item = item.get(key)
    return item


def _at(*path: str) -> Callable[[Item], Any]:
    return lambda item: _get(item, *path)


ENDPOINT = re.compile(r"^(?:\[(?P<v6>[^\]]*)\]|(?P<ip>[^:\[\]]*)):(?P<port>[0-9]{1,5})$")
"""An "ip:port" or "[v6]:port" endpoint as the reports write them (decoders.api.Endpoint)."""


@functools.lru_cache(maxsize=4096)
def _endpoint(text: str) -> tuple[str, int | None]:
    """(IP address, port) of an endpoint text; (the text, None) when it has no port. Cached: the
    same few endpoints come back on every row of a capture."""
    m = ENDPOINT.match(text)
    if m is None:
        return text, None
    return (m["v6"] if m["v6"] is not None else m["ip"]), int(m["port"])


def _address(value: Any) -> str | None:
    return _endpoint(value)[0] if type(value) is str else None


def _port(value: Any) -> int | None:
    return _endpoint(value)[1] if type(value) is str else None


def _address_of(key: str) -> Callable[[Item], Any]:
    return lambda item: _address(item.get(key))


def _port_of(key: str) -> Callable[[Item], Any]:
    return lambda item: _port(item.get(key))


def _messages(key: str) -> Callable[[Item], Any]:
    """A call's messages of one direction: those listed plus those left out between."""

    def total(item: Item) -> Any:
        listed, omitted = item.get(key), item.get(f"{key}_omitted")
        if type(listed) is not list:
            return None
        return len(listed) + (omitted if type(omitted) is int and omitted >= 0 else 0)

    return total


FINDINGS_DOC = "findings of the row (their text is in `findings`, with source = this report's name)"
