"""`protoscope query DIR "SQL"`: DuckDB, embedded, over a dataset that `--export parquet` wrote.

Each table directory of the dataset (`DIR/<table>/capture=<id>/*.parquet`) becomes a view of
that name, read with Hive partitioning (the capture id appears as a `capture` column, always a
string) and `union_by_name` (a capture exported by an older protoscope lacks the columns added
since: they read as null). Nothing is loaded: DuckDB reads the Parquet files as the query needs.

Only committed captures are seen: a capture is in the dataset once its `captures` partition
exists (export.py moves that one last), so the partitions of any other id (what an export that
died between two moves left) are not read by any view.

The result is written by output.py (text, CSV or JSON). DuckDB and pyarrow are imported by the
functions that run a query: `protoscope query --list` reads the .sql files only, and works without
the `lake` extra.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Final, TextIO

from ..report.inert import clean
from .schema import CAPTURES, partition_dir

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

BATCH_ROWS: Final = 65_536
"""Rows fetched from DuckDB at a time (a record batch): what output.py holds of a CSV or JSON
result at once."""
PARTITION: Final = partition_dir("")
"""A partition directory's name before the capture id."""
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


def committed(folder: str) -> set[str]:
    """The ids of the captures in the dataset: each with a `captures/capture=<id>/` directory
    (writer.in_dataset's mark, moved in last by the export's commit)."""
    marks = os.path.join(folder, CAPTURES.name)
    if not os.path.isdir(marks):
        return set()
    return {
        entry.name.removeprefix(PARTITION)
        for entry in os.scandir(marks)
        if entry.name.startswith(PARTITION) and entry.is_dir()
    }


def tables_in(folder: str, ids: set[str] | None = None) -> list[str]:
    """The dataset's tables: each directory holding a `capture=<id>/*.parquet` file of a committed
    capture (`ids`, default: committed(folder)). Names starting with '_' or '.' are not tables
    (`_staging`). One file found is enough: a dataset of thousands of captures is not listed whole."""
    ids = committed(folder) if ids is None else ids
    return [
        entry.name
        for entry in sorted(os.scandir(folder), key=lambda e: e.name)
        if not entry.name.startswith(("_", "."))
        and entry.is_dir()
        and next(iter(parquet_files(entry.path, ids)), None) is not None
    ]


def parquet_files(table: str, ids: set[str]) -> Iterator[str]:
    """The Parquet files of a table directory's partitions of the captures `ids`."""
    for part in sorted(os.scandir(table), key=lambda e: e.name):
        if part.is_dir() and part.name.startswith(PARTITION) and part.name.removeprefix(PARTITION) in ids:
            for name in sorted(os.listdir(part.path)):
                if name.endswith(".parquet") and not name.startswith(("_", ".")):
                    yield os.path.join(part.path, name)


def _all_committed(table: str, ids: set[str]) -> bool:
    """Whether every partition of a table directory is of a committed capture (then one glob
    reads it, else its files are listed)."""
    return all(
        part.name.removeprefix(PARTITION) in ids
        for part in os.scandir(table)
        if part.is_dir() and part.name.startswith(PARTITION)
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def connect(dataset: str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a view per table of `dataset` over its committed captures (see
    the module's docstring)."""
    import duckdb

    folder = local_dataset(dataset)
    ids = committed(folder)
    tables = tables_in(folder, ids)
    if not tables:
        raise QueryError(
            f"no tables in {clean(dataset)} (write some with: protoscope CAPTURE... --export parquet "
            f"--output {clean(dataset)})"
        )
    con = duckdb.connect(":memory:")
    for name in tables:
        where = os.path.join(folder, name)
        if GLOB_CHARS & set(where) or not _all_committed(where, ids):
            source = "[" + ", ".join(_literal(f) for f in parquet_files(where, ids)) + "]"
        else:
            source = _literal(os.path.join(where, partition_dir("*"), "*.parquet"))
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
    import duckdb
    import pyarrow as pa

    try:
        relation = con.sql(sql)
        if relation is None:  # a statement without a result (CREATE, SET ...)
            return pa.RecordBatchReader.from_batches(pa.schema([]), [])
        return relation.to_arrow_reader(BATCH_ROWS)
    except duckdb.Error as exc:
        raise QueryError(one_line(exc)) from None


def run(dataset: str, sql: str, fmt: str, out: TextIO) -> int:
    """`protoscope query`: `sql` over `dataset`, written to `out` in `fmt`; the number of rows."""
    import duckdb

    from . import output

    con = connect(dataset)
    try:
        reader = execute(con, sql)
        try:
            return output.write(reader, fmt, out)
        except duckdb.Error as exc:  # raised while the batches are read
            raise QueryError(one_line(exc)) from None
    finally:
        con.close()


def list_tables(dataset: str) -> str:
    """`protoscope query DIR --list`'s last line: the tables (views) a query over `dataset` sees."""
    folder = local_dataset(dataset)
    tables = tables_in(folder)
    if not tables:
        return f"no tables in {clean(dataset)} yet"
    return f"tables in {clean(dataset)}: {', '.join(tables)}"


def describe(queries: Sequence[NamedQuery]) -> list[str]:
    """`protoscope query --list`: a line a query, its name then its description."""
    width = max((len(q.name) for q in queries), default=0)
    return [f"{q.name:<{width}}  {q.description}" for q in queries]
