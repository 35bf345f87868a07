"""Writing one capture's tables: Parquet row groups into a staging directory, then the commit.

A table's rows come in as they are made (dicts, or whole columns) and leave in row groups of at
most ROW_GROUP_ROWS: memory holds one group per table, whatever the capture's size. Files are
zstd-compressed with dictionary encoding (addresses, protocol names and codes repeat).

The commit protocol (the contract of issue 17): every table of a capture is written under
`DIR/_staging/<id>.<pid>.<random>/<table>/capture=<id>/`; when all are written, each table's
partition directory is moved to `DIR/<table>/capture=<id>`, the `captures` table last. A capture
is in DIR when its `captures` partition exists, so a reader never takes a half-moved capture for a
whole one, and a crash between two moves leaves partitions that the next export of that id deletes
first. Anything that fails before the commit removes the staging directory and nothing else.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from protoscope.captures.memory import trim_heap

from . import fsutil
from .schema import CAPTURES, Table, arrow_schema, partition_dir

ROW_GROUP_ROWS = 65536
"""Rows buffered per table before a row group is written (as Arrow columns, see BATCH_ROWS)."""
ROW_GROUP_BYTES = 8 << 20
"""Arrow bytes buffered per table before a row group is written even if it has fewer rows: a
wide table (a gRPC call's metadata, a message's JSON) reaches it long before ROW_GROUP_ROWS.
Measured on bench/out/grpc-200k.pcap (peak RSS): 16 MB and BATCH_ROWS 2048, 238 MB; 4 MB and
512, 222 MB."""
BATCH_ROWS = 1024
"""Rows kept as Python dicts before they become Arrow columns. A dict costs ~1-3 KB (a call's row:
~35 keys); 66,400 of them, waiting for a row group, were 200 MB on bench/out/grpc-200k.pcap."""
STAGING = "_staging"
"""Where captures in progress are written; a leading '_' hides it from Hive, Spark and DuckDB."""
PART = "part-0.parquet"
COMMIT_LAST = CAPTURES.name
"""The table moved last: its partition says the capture is in the dataset."""
COMPRESSION = "zstd"


def use_system_allocator() -> None:
    """Make pyarrow allocate with malloc (its default pool is mimalloc or jemalloc). Those pools
    keep what a row group freed for later and spread it over arenas: on bench/out/grpc-200k.pcap
    the export's peak was 283 MB with mimalloc, 196 MB with malloc (whose free pages `trim_heap`
    hands back after each row group). Process-wide, as pyarrow's pool is: an export's process
    (a worker, a Spark task) does little else with Arrow."""
    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())


class TableWriter:
    """One table's partition file of one capture, written a row group at a time."""

    def __init__(self, fs: pafs.FileSystem, folder: str, table: Table, rows_per_group: int) -> None:
        self.table = table
        self.schema = arrow_schema(table)
        self.rows = 0
        """Rows written so far (buffered ones included)."""
        self.groups = 0
        """Row groups written so far."""
        self._fs = fs
        self._folder = folder
        self._limit = rows_per_group
        self._pending: list[dict[str, Any]] = []
        self._batches: list[pa.RecordBatch] = []
        self._batched = 0
        """Rows in `_batches`."""
        self._bytes = 0
        """Arrow bytes in `_batches`."""
        self._writer: pq.ParquetWriter | None = None

    def add_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Rows as dicts of column name -> value as stored (timestamps as int ns, json as str);
        a missing key is null, a key that is no column is ignored."""
        self._pending.extend(rows)  # type: ignore[arg-type]
        self.rows += len(rows)
        if len(self._pending) >= min(BATCH_ROWS, self._limit):
            self._flush_rows()
            self._write_batches(final=False)

    def add_columns(self, columns: Mapping[str, Any], length: int) -> None:
        """Rows as whole columns (numpy arrays, lists or Arrow arrays) of `length` values each;
        a missing column is all null."""
        if not length:
            return
        self._flush_rows()
        arrays = []
        for field in self.schema:
            values = columns.get(field.name)
            if values is None:
                arrays.append(pa.nulls(length, field.type))
            elif isinstance(values, pa.Array):
                arrays.append(values if values.type == field.type else values.cast(field.type))
            else:
                arrays.append(pa.array(values, field.type, from_pandas=True))
        batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        self._batches.append(batch)
        self._batched += length
        self._bytes += batch.nbytes
        self.rows += length
        self._write_batches(final=False)

    def _flush_rows(self) -> None:
        if self._pending:
            batch = pa.RecordBatch.from_pylist(self._pending, schema=self.schema)
            self._pending = []
            self._batches.append(batch)
            self._batched += batch.num_rows
            self._bytes += batch.nbytes

    def _open(self) -> pq.ParquetWriter:
        if self._writer is None:
            self._fs.create_dir(self._folder, recursive=True)
            self._writer = pq.ParquetWriter(
                fsutil.join(self._folder, PART),
                self.schema,
                filesystem=self._fs,
                compression=COMPRESSION,
                use_dictionary=True,
            )
        return self._writer

    def _write_batches(self, final: bool) -> None:
        """Write row groups of ROW_GROUP_ROWS rows while there are that many, or what there is
        when it passed ROW_GROUP_BYTES or this is the end."""
        while self._batched >= self._limit or (self._batched and (final or self._bytes >= ROW_GROUP_BYTES)):
            table = pa.Table.from_batches(self._batches, self.schema)
            take = min(self._limit, table.num_rows)
            self._open().write_table(table.slice(0, take), row_group_size=take)
            self.groups += 1
            rest = table.slice(take)
            self._batches = rest.combine_chunks().to_batches() if rest.num_rows else []
            self._batched = rest.num_rows
            self._bytes = sum(b.nbytes for b in self._batches)
            trim_heap()  # the group's Python rows and Arrow buffers are freed: give their pages back

    def close(self) -> None:
        """Write what is buffered and end the file; a table without rows gets a file with its
        schema and no row group, so that every table exists once a capture is in the dataset."""
        self._flush_rows()
        self._write_batches(final=True)
        self._open().close()


class Staging:
    """One capture's tables being written, and their commit into the dataset at `root`."""

    def __init__(
        self, fs: pafs.FileSystem, root: str, capture: str, rows_per_group: int = ROW_GROUP_ROWS
    ) -> None:
        self.fs = fs
        self.root = root
        self.capture = capture
        self.rows_per_group = rows_per_group
        self.folder = fsutil.join(root, STAGING, f"{capture}.{os.getpid()}.{secrets.token_hex(4)}")
        self.writers: dict[str, TableWriter] = {}

    def writer(self, table: Table) -> TableWriter:
        """The writer of `table` (made on first use)."""
        w = self.writers.get(table.name)
        if w is None:
            folder = fsutil.join(self.folder, table.name, partition_dir(self.capture))
            w = self.writers[table.name] = TableWriter(self.fs, folder, table, self.rows_per_group)
        return w

    def commit(self, tables: Mapping[str, Table]) -> None:
        """Close every writer (a table of `tables` that got no row is written empty), delete what
        a crashed export of this id left in the dataset, and move each partition in, `captures`
        last; then remove the staging directory."""
        for table in tables.values():
            self.writer(table)
        for w in self.writers.values():
            w.close()
        clear_leftovers(self.fs, self.root, self.capture)
        names = sorted(self.writers, key=lambda n: (n == COMMIT_LAST, n))
        moved: list[str] = []
        try:
            for name in names:
                source = fsutil.join(self.folder, name, partition_dir(self.capture))
                target = fsutil.join(self.root, name, partition_dir(self.capture))
                self.fs.create_dir(fsutil.join(self.root, name), recursive=True)
                moved.append(target)
                _move_dir(self.fs, source, target)
        except BaseException:
            # Not in the dataset (`captures` moves last): take back what was moved, so that a
            # failed export leaves nothing; a crash here is what `clear_leftovers` is for.
            for target in moved:
                if fsutil.exists(self.fs, target):
                    self.fs.delete_dir(target)
            raise
        self.fs.delete_dir(self.folder)

    def abort(self) -> None:
        """Remove the staging directory (whatever it holds); nothing in the dataset changes."""
        for w in self.writers.values():
            if w._writer is not None:
                try:
                    w._writer.close()
                except Exception:  # a writer that failed mid-write: its file is deleted below
                    pass
        if fsutil.exists(self.fs, self.folder):
            self.fs.delete_dir(self.folder)


def _move_dir(fs: pafs.FileSystem, source: str, target: str) -> None:
    """Move a partition directory: one rename where the file system has them (local, HDFS), else
    (object stores have no directory renames) file by file."""
    try:
        fs.move(source, target)
        return
    except (OSError, NotImplementedError):
        if not fsutil.exists(fs, source):
            raise
    fs.create_dir(target, recursive=True)
    for info in fs.get_file_info(pafs.FileSelector(source)):
        fs.move(info.path, fsutil.join(target, info.base_name))


def in_dataset(fs: pafs.FileSystem, root: str, capture: str) -> bool:
    """Whether the capture is in the dataset: its `captures` partition exists."""
    return fsutil.exists(fs, fsutil.join(root, COMMIT_LAST, partition_dir(capture)))


def clear_leftovers(fs: pafs.FileSystem, root: str, capture: str) -> None:
    """Delete the partitions of `capture` an export that stopped between two moves left behind
    (only for a capture not in the dataset)."""
    if not fsutil.is_dir(fs, root):
        return
    for info in fs.get_file_info(pafs.FileSelector(root)):
        if info.type != pafs.FileType.Directory or info.base_name.startswith(("_", ".")):
            continue
        leftover = fsutil.join(info.path, partition_dir(capture))
        if fsutil.is_dir(fs, leftover):
            fs.delete_dir(leftover)
