"""Shared fixtures of the lake's tests: export a capture into a temporary dataset and read its
tables back.

Use the `export_dir` fixture: `lake = export_dir(path)` exports the capture at `path` with the
default registry (or `registry=`; other keywords go to export_capture) into a fresh directory
under tmp_path and returns an `Exported`: `lake.dir` (the dataset), `lake.result` (the
ExportResult) and `lake.table(name)`, the table's rows as dicts in file order, read with
pyarrow.dataset and Hive partitioning (so each row has its `capture`; timestamps as int ns).
`read_table(dir, name)` reads a table of any dataset. `default_registry()` is one registry per
test session (decoders keep no state between passes).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from protoscope.decoders.registry import Registry, load_registry
from protoscope.inspector.lake.export import ExportResult, export_capture


@functools.cache
def default_registry() -> Registry:
    """The in-tree decoders and analyses (no third-party plugins: the tests must not depend on
    what else is installed)."""
    return load_registry(use_plugins=False)


def read_table(dataset: str | Path, name: str) -> list[dict[str, Any]]:
    """The rows of table `name` of a dataset, with their `capture` (the Hive partition), in the
        order of the files' rows (partitions in path order). Timestamps are read as int ns since the
    epoch (Python's datetime holds only microseconds)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    # The id is text: left to inference, an id of digits alone would be read as an integer.
    hive = ds.partitioning(pa.schema([("capture", pa.string())]), flavor="hive")
    data = ds.dataset(str(Path(dataset) / name), format="parquet", partitioning=hive)
    fragments = sorted(data.get_fragments(), key=lambda f: f.path)
    rows: list[dict[str, Any]] = []
    for fragment in fragments:
        table = fragment.to_table(schema=data.schema)
        for k, column in enumerate(table.schema):
            if pa.types.is_timestamp(column.type):  # as int ns: datetime has only microseconds
                table = table.set_column(k, column.name, table.column(k).cast(pa.int64()))
        rows += table.to_pylist()
    return rows


@dataclass
class Exported:
    dir: Path
    result: ExportResult

    def table(self, name: str) -> list[dict[str, Any]]:
        return read_table(self.dir, name)


@pytest.fixture
def export_dir(tmp_path: Path) -> Callable[..., Exported]:
    """A function: export_dir(path, registry=None, **keywords) -> Exported (see the module)."""
    counter = itertools.count()

    def export(path: str | Path, /, registry: Registry | None = None, **keywords: Any) -> Exported:
        folder = tmp_path / f"lake-{next(counter)}"
        result = export_capture(str(path), str(folder), registry or default_registry(), **keywords)
        return Exported(folder, result)

    return export
