"""Where a dataset lives: a local path or any file system pyarrow knows by URI.

The export writes through `pyarrow.fs` alone, so the same code fills a local directory, HDFS or an
object store, and a Spark task writes exactly what a local run writes. Hadoop's names for S3
(`s3a://`, `s3n://`), which Spark users type, are read as pyarrow's `s3://`. pyarrow is imported
when a file system is asked for, not with this module (see export.py).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow.fs as pafs

HADOOP_S3 = ("s3a", "s3n")
"""Hadoop's S3 connectors' schemes; pyarrow's S3 file system reads the same buckets as `s3://`."""


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """The file system of `uri` and the path within it: a plain path (made absolute) or `file://`
    on the local file system, else what `pyarrow.fs.FileSystem.from_uri` makes of it."""
    import pyarrow.fs as pafs

    local = local_path(uri)
    if local is not None:
        return pafs.LocalFileSystem(), local
    scheme, _, rest = uri.partition("://")
    if scheme.lower() in HADOOP_S3:
        uri = f"s3://{rest}"
    fs, path = pafs.FileSystem.from_uri(uri)
    return fs, path.rstrip("/") or path


def local_path(uri: str) -> str | None:
    """A plain path (no scheme), made absolute; None for a URI (`file://` included)."""
    scheme, sep, _ = uri.partition("://")
    if not sep or len(scheme) < 2:  # a Windows drive letter is not a scheme
        return os.path.abspath(uri)
    return None


def join(*parts: str) -> str:
    """Parts of a path within a pyarrow file system (always '/'-separated)."""
    return "/".join(p.rstrip("/") if i == 0 else p.strip("/") for i, p in enumerate(parts) if p)


def exists(fs: pafs.FileSystem, path: str) -> bool:
    """Whether `path` is a file or directory in `fs`."""
    import pyarrow.fs as pafs

    return bool(fs.get_file_info(path).type != pafs.FileType.NotFound)


def is_dir(fs: pafs.FileSystem, path: str) -> bool:
    import pyarrow.fs as pafs

    return bool(fs.get_file_info(path).type == pafs.FileType.Directory)
