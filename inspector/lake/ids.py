"""The capture id: the partition key of every table, stable across machines and runs.

A capture is named by what it holds, not where it lies: the first 16 hex digits (64 bits) of the
SHA-256 of its bytes as stored (a gzip file: the compressed bytes, so the id is computed without
inflating anything). The same file exported twice, from two paths or two machines, is the same
partition, which is what makes an export resumable and a fleet's exports mergeable.
"""

from __future__ import annotations

import hashlib
import os
from typing import BinaryIO

CHUNK = 1 << 20
"""Bytes read at a time: a capture of gigabytes is hashed in constant memory."""
ID_DIGITS = 16
"""Hex digits of the SHA-256 kept as the id: 64 bits, no collision among billions of captures."""


def sha256_of(fileobj: BinaryIO) -> str:
    """The full SHA-256 (hex) of what `fileobj` reads from its current position to its end."""
    digest = hashlib.sha256()
    while chunk := fileobj.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def sha256(path: str | os.PathLike[str]) -> str:
    """The full SHA-256 (hex) of the file at `path` (the `captures` table's `sha256`)."""
    with open(path, "rb") as f:
        return sha256_of(f)


def id_of_digest(digest: str) -> str:
    """The capture id of a full SHA-256 hex digest."""
    return digest[:ID_DIGITS]


def capture_id_of(fileobj: BinaryIO) -> str:
    """The capture id of the bytes `fileobj` reads (from its position to its end)."""
    return id_of_digest(sha256_of(fileobj))


def capture_id(path: str | os.PathLike[str]) -> str:
    """The capture id of the file at `path`."""
    return id_of_digest(sha256(path))
