"""`protoscope query DIR "SQL"`: DuckDB, embedded, over a dataset that `--export parquet` wrote.

Each table directory of the dataset (`DIR/<table>/capture=<id>/*.parquet`) becomes a view of
that name, read with Hive partitioning (the capture id appears as a `capture` column, always a
string) and `union_by_name` (a capture exported by an older protoscope lacks the columns added
since: they read as null). Nothing is loaded: DuckDB reads the Parquet files as the query needs.

Results are written as text (an aligned table, as the reports draw theirs), CSV with a header, or
JSON (an array of objects). Values from Arrow, the way DuckDB hands them over: timestamps as ISO
8601 in UTC with a `Z` and the digits they hold (nanoseconds for packet times: a Python datetime
would drop them), 64-bit integers exact, DECIMAL and HUGEINT (DuckDB's `sum` of integers) as
numbers, BLOBs in hex, lists and structs as JSON arrays and objects.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from typing import Final, TextIO

import duckdb
import pyarrow as pa

from ..report.inert import clean, json_inert

FORMATS: Final = ("text", "csv", "json")
BATCH_ROWS: Final = 65_536
"""Rows fetched from DuckDB at a time for CSV and JSON (written as they come: memory stays flat
whatever the result's size). Text lays out its columns from every row, so it holds them all."""
QUERIES: Final = "queries"
"""The named queries' directory in this package: `<name>.sql`, its first line a `-- ` comment
that describes it."""
GLOB_CHARS: Final = frozenset("*?[]{}")
"""Characters DuckDB's globbing reads: a dataset path holding one is listed file by file."""


class QueryError(Exception):
    """A query that cannot run: a missing dataset, an unknown name, DuckDB's error; one line."""


@dataclass(frozen=True, slots=True)
class NamedQuery:
    """A query shipped with protoscope (`--query NAME`)."""

    name: str
    description: str
    sql: str


def named_queries() -> dict[str, NamedQuery]:
    """The shipped queries by name, read from the package's `queries/*.sql`."""
    folder = resources.files(__package__ or "protoscope.inspector.lake").joinpath(QUERIES)
    found: dict[str, NamedQuery] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        sql = entry.read_text(encoding="utf-8")
        first = sql.lstrip().splitlines()[0] if sql.strip() else ""
        description = first[2:].strip() if first.startswith("--") else ""
        name = entry.name.removesuffix(".sql")
        found[name] = NamedQuery(name, description, sql)
    return found


def named_query(name: str) -> NamedQuery:
    queries = named_queries()
    if name not in queries:
        raise QueryError(f"no query named {name!r} (known: {', '.join(queries)})")
    return queries[name]


def local_dataset(dataset: str) -> str:
    """The local directory `dataset` names (a path or a file:// URI). Other URIs are refused:
    DuckDB reads object stores through its httpfs extension, which this command does not load."""
    scheme, sep, rest = dataset.partition("://")
    if sep and len(scheme) > 1:
        if scheme.lower() != "file":
            raise QueryError(
                f"protoscope query reads a local directory, not {clean(dataset)} (read the dataset "
                "where it is with DuckDB's httpfs or Spark, see the README)"
            )
        dataset = rest
    if not os.path.isdir(dataset):
        raise QueryError(f"no dataset directory {clean(dataset)}")
    return os.path.abspath(dataset)


def tables_in(folder: str) -> list[str]:
    """The dataset's tables: each directory holding a `capture=<id>/*.parquet` file (names
    starting with '_' or '.' are not tables: `_staging`). One file found is enough: a dataset of
    thousands of captures is not listed whole."""
    return [
        entry.name
        for entry in sorted(os.scandir(folder), key=lambda e: e.name)
        if not entry.name.startswith(("_", "."))
        and entry.is_dir()
        and next(iter(parquet_files(entry.path)), None) is not None
    ]


def parquet_files(table: str) -> Iterator[str]:
    """The Parquet files of a table directory, partition by partition."""
    for part in sorted(os.scandir(table), key=lambda e: e.name):
        if part.is_dir() and part.name.startswith("capture="):
            for name in sorted(os.listdir(part.path)):
                if name.endswith(".parquet") and not name.startswith(("_", ".")):
                    yield os.path.join(part.path, name)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def connect(dataset: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a view per table of `dataset` (see the module's docstring)."""
    folder = local_dataset(dataset)
    tables = tables_in(folder)
    if not tables:
        raise QueryError(
            f"no tables in {clean(dataset)} (write some with: protoscope CAPTURE... --export parquet "
            f"--output {clean(dataset)})"
        )
    con = duckdb.connect(":memory:")
    for name in tables:
        where = os.path.join(folder, name)
        if GLOB_CHARS & set(where):
            source = "[" + ", ".join(_literal(f) for f in parquet_files(where)) + "]"
        else:
            source = _literal(os.path.join(where, "capture=*", "*.parquet"))
        con.execute(
            f"CREATE VIEW {_identifier(name)} AS SELECT * FROM read_parquet({source}, "
            "hive_partitioning = true, union_by_name = true, hive_types = {'capture': VARCHAR})"
        )
    return con


def one_line(error: BaseException) -> str:
    """DuckDB's message in one line: its first ("Catalog Error: Table with name x does not
    exist!") and a "Did you mean" after it; the candidate lists and the caret drawing are left out."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    kept = [lines[0], *(line for line in lines[1:2] if line.startswith("Did you mean"))]
    return clean(" ".join(kept))


def execute(con: duckdb.DuckDBPyConnection, sql: str) -> pa.RecordBatchReader:
    """The result of `sql` (its last statement's) as Arrow record batches."""
    try:
        relation = con.sql(sql)
        if relation is None:  # a statement without a result (CREATE, SET ...)
            return pa.RecordBatchReader.from_batches(pa.schema([]), [])
        return relation.to_arrow_reader(BATCH_ROWS)
    except duckdb.Error as exc:
        raise QueryError(one_line(exc)) from None


def run(dataset: str, sql: str, fmt: str, out: TextIO) -> int:
    """`protoscope query`: `sql` over `dataset`, written to `out` in `fmt`; the number of rows."""
    con = connect(dataset)
    try:
        reader = execute(con, sql)
        try:
            return write(reader, fmt, out)
        except duckdb.Error as exc:  # raised while the batches are read
            raise QueryError(one_line(exc)) from None
    finally:
        con.close()


def write(reader: pa.RecordBatchReader, fmt: str, out: TextIO) -> int:
    if fmt == "csv":
        return write_csv(reader, out)
    if fmt == "json":
        return write_json(reader, out)
    return write_text(reader, out)


def rows(reader: pa.RecordBatchReader) -> Iterator[list[object]]:
    """Every row of `reader` as plain Python values (see python_values)."""
    for batch in reader:
        columns = [python_values(column) for column in batch.columns]
        yield from (list(row) for row in zip(*columns, strict=True))


def python_values(array: pa.Array) -> list[object]:
    """An Arrow column as JSON-ready Python values (the module's docstring says which)."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        return python_values(array.dictionary_decode())
    if pa.types.is_timestamp(kind):
        return _timestamps(array)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        values = python_values(array.flatten())
        lengths = array.value_lengths().to_pylist()
        out: list[object] = []
        at = 0
        for valid, length in zip(array.is_valid().to_pylist(), lengths, strict=True):
            out.append(values[at : at + length] if valid else None)
            at += length if valid else 0
        return out
    if pa.types.is_struct(kind):
        names = [kind.field(i).name for i in range(kind.num_fields)]
        children = [python_values(child) for child in array.flatten()]
        valid = array.is_valid().to_pylist()
        return [
            dict(zip(names, (child[i] for child in children), strict=True)) if valid[i] else None
            for i in range(len(array))
        ]
    try:
        return [_plain(v) for v in array.to_pylist()]
    except (ValueError, OverflowError, pa.ArrowException):
        return _as_text(array)


def _as_text(array: pa.Array) -> list[object]:
    """Values Python cannot hold (a date of -infinity, a year past 9999) as Arrow's text of them,
    or each one's raw number; never an exception."""
    try:
        return list(array.cast(pa.string()).to_pylist())
    except (ValueError, OverflowError, pa.ArrowException):
        pass
    out: list[object] = []
    for scalar in array:
        try:
            out.append(str(scalar.as_py()) if scalar.is_valid else None)
        except (ValueError, OverflowError, pa.ArrowException):
            raw = getattr(scalar, "value", None) if pa.types.is_timestamp(scalar.type) else None
            out.append(str(raw) if raw is not None else None)
    return out


def _timestamps(array: pa.Array) -> list[object]:
    unit = array.type.unit
    digits = {"s": 0, "ms": 3, "us": 6, "ns": 9}[unit]
    per_second = 10**digits
    zone = "Z" if array.type.tz is not None else ""
    out: list[object] = []
    for value in array.cast(pa.int64()).to_pylist():
        if value is None:
            out.append(None)
            continue
        seconds, fraction = divmod(value, per_second)
        try:
            text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        except (OverflowError, OSError, ValueError):
            out.append(str(value))
            continue
        out.append(f"{text}.{fraction:0{digits}d}{zone}" if digits else f"{text}{zone}")
    return out


def _plain(value: object) -> object:
    """A value of to_pylist as JSON holds it."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "isoformat"):  # date, time
        return value.isoformat()
    if isinstance(value, tuple):  # an interval (months, days, nanoseconds)
        return "P{}M{}DT{}S".format(*value[:2], value[2] / 1e9) if len(value) == 3 else list(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def write_csv(reader: pa.RecordBatchReader, out: TextIO) -> int:
    """A header, then one line a row (RFC 4180 quoting); lists and structs as JSON. On a terminal
    a capture's text is made inert (inert.clean) first; piped, it is written as it is."""
    inert = out.isatty()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([clean(n) if inert else n for n in reader.schema.names])
    n = 0
    for row in rows(reader):
        cells = [_csv_cell(v) for v in row]
        writer.writerow([clean(c) if inert else c for c in cells])
        n += 1
    return n


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        return _json_number(value)
    return str(value)


def _json_number(value: float) -> str:
    return repr(value) if math.isfinite(value) else ("NaN" if value != value else "Infinity")


def write_json(reader: pa.RecordBatchReader, out: TextIO) -> int:
    """A JSON array of objects, one a row, keys the result's column names (a name given twice
    keeps its last value, as a JSON object must); NaN and infinities as null."""
    names = reader.schema.names
    out.write("[")
    n = 0
    for row in rows(reader):
        record = {name: _json_safe(value) for name, value in zip(names, row, strict=True)}
        out.write(("," if n else "") + "\n" + json_inert(json.dumps(record, ensure_ascii=False)))
        n += 1
    out.write("\n]\n" if n else "]\n")
    return n


def _json_safe(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def write_text(reader: pa.RecordBatchReader, out: TextIO) -> int:
    """An aligned table as the text reports draw theirs: on a terminal, in blocks of columns as
    wide as the terminal (each repeating the first column) with long cells folded; piped, whole.
    Numbers right-aligned; floats to 6 significant digits (CSV and JSON keep every digit)."""
    from ..report import text
    from ..report.tables import TextTable

    schema = reader.schema
    numeric = [_is_number(field.type) for field in schema]
    cells = [[_text_cell(v) for v in row] for row in rows(reader)]
    title = f"{len(cells)} row{'' if len(cells) == 1 else 's'}"
    headers = [clean(name) for name in schema.names]
    if not headers:
        out.write("(no result)\n")
        return 0
    table = TextTable(title, headers, cells, numeric, list(schema.names))
    width = text.terminal_width(out)
    console = text._console(out, width)
    widths = text._widths(table)
    for block_title, columns in text._blocks(table, widths, width):
        text._print(console, width, block_title, table, columns, widths)
    return len(cells)


def _is_number(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind))


def _text_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return _json_number(value)
        return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.0f}"
    if isinstance(value, list):
        return clean(", ".join(_text_cell(v) if not isinstance(v, str) else v for v in value))
    if isinstance(value, dict):
        return clean(json.dumps(value, ensure_ascii=False))
    return clean(value)


def describe(queries: Sequence[NamedQuery]) -> list[str]:
    """`protoscope query --list`: a line a query, its name then its description."""
    width = max((len(q.name) for q in queries), default=0)
    return [f"{q.name:<{width}}  {q.description}" for q in queries]
