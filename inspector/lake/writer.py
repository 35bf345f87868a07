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

Two exports of one capture id may run at once (overlapping runs over the same files, a Spark task
retried while the first attempt still runs). The commit is therefore done under a per-id lock,
`DIR/_staging/<id>.lock`, and re-checks under it that the capture is not in the dataset yet (else
the later export is "skipped" and its staging removed): deleting leftovers and moving partitions
is only ever done by the lock's holder, and never once the `captures` partition exists. On a local
file system the lock is an exclusive create (O_CREAT|O_EXCL) holding "<host> <pid>"; a lock whose
process is gone (same host) is taken over. Other file systems (S3, GCS, HDFS through pyarrow.fs)
have no exclusive create in pyarrow: there the lock is best effort (a check, a write, a read back)
and what protects a committed capture is the re-check of `captures/capture=<id>` before any
delete. A lock whose holder died on another host (or on an object store) is not taken over: the
commit fails after LOCK_WAIT naming the lock, which is then deleted by hand.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from protoscope.captures.memory import trim_heap

from . import fsutil
from .export import ROW_GROUP_ROWS
from .schema import CAPTURES, Table, arrow_schema, partition_dir

ROW_GROUP_BYTES = 8 << 20
"""Arrow bytes buffered per table before a row group is written even if it has fewer rows: a
wide table (a gRPC call's metadata, a message's JSON) reaches it long before ROW_GROUP_ROWS.
Measured on bench/out/grpc-200k.pcap (peak RSS): 16 MB and BATCH_ROWS 2048, 238 MB; 4 MB and
512, 222 MB."""
BATCH_ROWS = 1024
"""Rows kept as Python dicts before they become Arrow columns. A dict costs ~1-3 KB (a call's row:
~35 keys); 66,400 of them, waiting for a row group, were 200 MB on bench/out/grpc-200k.pcap."""
STAGING = "_staging"
HOST = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname()) or "-"
"""This host's name as it goes in a staging directory's name (no dots: they separate the parts)."""


def staging_name(capture: str) -> str:
    """A staging directory's name: <id>.<pid>.<random>.<host>. The host and pid say whose it is, so
    that a later run removes only what a dead process of its own host left (a dataset on a shared
    file system may have live exports of other hosts in it)."""
    return f"{capture}.{os.getpid()}.{secrets.token_hex(4)}.{HOST}"


def staging_owner(name: str) -> int | None:
    """The pid of this host's process that made the staging directory `name`; None when it is not
    one of this host's (another host's, a lock, anything else)."""
    parts = name.split(".")
    if len(parts) == 4 and parts[3] == HOST and parts[1].isdigit():
        return int(parts[1])
    return None


"""Where captures in progress are written; a leading '_' hides it from Hive, Spark and DuckDB."""
PART = "part-0.parquet"
COMMIT_LAST = CAPTURES.name
"""The table moved last: its partition says the capture is in the dataset."""
COMPRESSION = "zstd"
LOCK_SUFFIX = ".lock"
LOCK_WAIT = 120.0
"""Seconds a commit waits for another export of the same id to finish its commit (moves of a few
directories: well under a second on a local disk) before it fails."""
LOCK_POLL = 0.05


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
        self.folder = fsutil.join(root, STAGING, staging_name(capture))
        self.writers: dict[str, TableWriter] = {}

    def writer(self, table: Table) -> TableWriter:
        """The writer of `table` (made on first use)."""
        w = self.writers.get(table.name)
        if w is None:
            folder = fsutil.join(self.folder, table.name, partition_dir(self.capture))
            w = self.writers[table.name] = TableWriter(self.fs, folder, table, self.rows_per_group)
        return w

    def commit(self, tables: Mapping[str, Table]) -> bool:
        """Close every writer (a table of `tables` that got no row is written empty), then, under
        the capture's lock: if another export committed this id meanwhile, False (the caller
        aborts); else delete what a crashed export of this id left in the dataset, move each
        partition in, `captures` last, remove the staging directory and return True."""
        for table in tables.values():
            self.writer(table)
        for w in self.writers.values():
            w.close()
        with capture_lock(self.fs, self.root, self.capture):
            if in_dataset(self.fs, self.root, self.capture):
                return False
            self._move_in()
        return True

    def _move_in(self) -> None:
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
    """Delete the partitions of `capture` an export that stopped between two moves left behind.
    Only for a capture not in the dataset: with its `captures` partition there, nothing is
    deleted (they are a committed capture's tables). The caller holds the capture's lock."""
    if not fsutil.is_dir(fs, root) or in_dataset(fs, root, capture):
        return
    for info in fs.get_file_info(pafs.FileSelector(root)):
        if info.type != pafs.FileType.Directory or info.base_name.startswith(("_", ".")):
            continue
        leftover = fsutil.join(info.path, partition_dir(capture))
        if fsutil.is_dir(fs, leftover):
            fs.delete_dir(leftover)


class LockTimeout(OSError):
    """Another export of the same capture id held its lock for longer than LOCK_WAIT."""


@contextlib.contextmanager
def capture_lock(fs: pafs.FileSystem, root: str, capture: str) -> Iterator[None]:
    """Hold `root/_staging/<capture>.lock` for the time of a commit (see the module's docstring):
    exclusive on a local file system, best effort on others. Waits up to LOCK_WAIT for a holder
    that is alive; raises LockTimeout after that."""
    path = fsutil.join(root, STAGING, capture + LOCK_SUFFIX)
    local = isinstance(fs, pafs.LocalFileSystem)
    fs.create_dir(fsutil.join(root, STAGING), recursive=True)
    deadline = time.monotonic() + LOCK_WAIT
    while not (_take_local(path) if local else _take_remote(fs, path)):
        if time.monotonic() > deadline:
            raise LockTimeout(f"capture {capture} is being committed by another export ({path})")
        time.sleep(LOCK_POLL)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            fs.delete_file(path)


def _owner() -> str:
    return f"{socket.gethostname()} {os.getpid()}"


def _take_local(path: str) -> bool:
    """Create the lock file exclusively. A lock left by a dead process of this host is renamed
    away (of two exports taking it over, one renames it); if what was renamed turns out to be a
    live lock taken meanwhile, it is linked back (a link fails if a lock exists again), so the
    window in which two holders could both believe they have it is that of two renames."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        if _stale(path):
            aside = f"{path}.stale.{os.getpid()}.{secrets.token_hex(4)}"
            with contextlib.suppress(OSError):
                os.rename(path, aside)
                if not _stale(aside):
                    with contextlib.suppress(OSError):
                        os.link(aside, path)
                os.unlink(aside)
        return False
    with os.fdopen(fd, "w") as f:
        f.write(_owner() + "\n")
    return True


def _stale(path: str) -> bool:
    """Whether the lock at `path` names a process of this host that is gone."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            host, _, pid = f.read(256).strip().rpartition(" ")
    except OSError:
        return False
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another host's (or one being written): not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        return False
    return False


def _take_remote(fs: pafs.FileSystem, path: str) -> bool:
    """Best effort on a file system without exclusive create: take the lock when no file is
    there, then read it back to see whose it is."""
    if fsutil.exists(fs, path):
        return False
    owner = f"{_owner()} {secrets.token_hex(8)}"
    with fs.open_output_stream(path) as out:
        out.write(owner.encode())
    with fs.open_input_stream(path) as f:
        return bool(f.read().decode("utf-8", "replace") == owner)
