"""Shared fixtures of the lake's tests: export a capture into a temporary dataset and read its
tables back.

Use the `export_dir` fixture: `lake = export_dir(path)` exports the capture at `path` with the
default registry (or `registry=`; other keywords go to export_capture) into a fresh directory
under tmp_path and returns an `Exported`: `lake.dir` (the dataset), `lake.result` (the
ExportResult) and `lake.table(name)`, the table's rows as dicts in file order, read with
pyarrow.dataset and Hive partitioning (so each row has its `capture`; timestamps as int ns).
`read_table(dir, name)` reads a table of any dataset. `default_registry()` is one registry per
test session (decoders keep no state between passes).

`corpus_lake(path)` (a session fixture) exports a capture once per test session with
`lake_registry(path)` (corpus_registry(), or one with the sample's key log) and returns its
`Exported`: the core tables' and the analyses' comparisons with the reports share one export
of each capture of the corpus.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from protoscope.decoders.registry import Registry, load_registry
from protoscope.decoders.tls.keylog import KeyLog
from protoscope.inspector.lake.export import ExportResult, export_capture
from protoscope.inspector.session import Session


@functools.cache
def default_registry() -> Registry:
    """The in-tree decoders and analyses (no third-party plugins: the tests must not depend on
    what else is installed)."""
    return load_registry(use_plugins=False)


def keys_of(capture: Path) -> Path | None:
    """The key log beside a sample (`webrtc-datachannels.keys`), as --keylog would be given."""
    keys = capture.with_name(capture.name.split(".")[0] + ".keys")
    return keys if keys.is_file() else None


@functools.cache
def corpus_registry() -> Registry:
    """The in-tree registry of the corpus comparisons, apart from default_registry(): a Session
    opened on a pcapng with Decryption Secrets Blocks configures a key log into its registry
    (Session.learn_secrets) for good, which changes the findings of every later capture (a
    "no key" warning needs a key log); `reporting` undoes that, and no other test uses this one."""
    return load_registry(use_plugins=False)


@contextlib.contextmanager
def reporting(capture: Path) -> Iterator[Session]:
    """A Session on `capture` with lake_registry(capture), for the reports the export is
    compared with; the registry's options are put back afterwards (see corpus_registry)."""
    registry = lake_registry(capture)
    options = registry.options
    session = Session.open(capture, registry)
    try:
        yield session
    finally:
        session.close()
        registry.configure(options)


@functools.cache
def lake_registry(capture: Path) -> Registry:
    """The registry a capture of the corpus is exported and reported with: the default one, or
    (a sample with a key log beside it) one configured with that key log."""
    keys = keys_of(capture)
    if keys is None:
        return corpus_registry()
    registry = load_registry(use_plugins=False)
    keylog = KeyLog()
    keylog.add_text(keys.read_text(), str(keys))
    registry.configure({**registry.options, "tls.keylog": keylog})
    return registry


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


@pytest.fixture(scope="session")
def corpus_lake(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], Exported]:
    """A function: corpus_lake(path) -> Exported, the capture exported once per test session
    (each into a dataset of its own) with lake_registry(path)."""
    root = tmp_path_factory.mktemp("corpus")
    done: dict[Path, Exported] = {}

    def export(path: Path) -> Exported:
        if path not in done:
            folder = root / f"lake-{len(done)}"
            done[path] = Exported(folder, export_capture(str(path), str(folder), lake_registry(path)))
        return done[path]

    return export
