"""Opening a capture file: checks, gzip, mmap, and the format chosen by its magic number."""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protoscope.decoders.api import Finding

from . import pcap, pcapng
from .columns import ByteColumns
from .errors import CaptureError
from .netxray import MAGIC as NETXRAY_MAGIC
from .netxray import scan_netxray
from .records import RecordTable

GZIP_MAGIC = b"\x1f\x8b"
GZIP_COPY_CHUNK = 1 << 20
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


@dataclass(slots=True)
class CaptureFile:
    """A capture's bytes (memory-mapped) and its record table."""

    path: Path
    buffer: Any
    records: RecordTable
    compressed: bool
    _mm: mmap.mmap | None
    _spool: Any

    def release_pages(self) -> None:
        """Drop the file's pages from our resident set after a full pass (they stay in the OS page
        cache; frames are read again on demand). Indexing 1M packets touches the whole file: 230
        MB of RSS without this."""
        if self._mm is not None and hasattr(self._mm, "madvise"):
            self._mm.madvise(mmap.MADV_DONTNEED)

    def close(self) -> None:
        if self._mm is not None:
            _close_map(self._mm)
            self._mm = None
        if self._spool is not None:
            self._spool.close()
            self._spool = None


def _close_map(mm: mmap.mmap) -> None:
    try:
        mm.close()
    except BufferError:
        pass  # numpy views of it are still alive; the map goes when they do


def _decompress(path: Path) -> tuple[Any, list[Finding]]:
    """Inflate a gzip file into an anonymous temporary file, a chunk at a time."""
    import gzip  # here, not at the top: only gzip captures need these (start-up time)
    import shutil
    import tempfile
    import zlib

    spool = tempfile.TemporaryFile(prefix="protoscope-")
    problems: list[Finding] = []
    try:
        with gzip.open(path, "rb") as src:
            shutil.copyfileobj(src, spool, GZIP_COPY_CHUNK)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        problems.append(
            Finding("error", "capture.gzip_truncated", f"the gzip stream is damaged or cut short: {exc}")
        )
    spool.flush()
    return spool, problems


def open_capture(path: str | os.PathLike[str], growing: bool = False) -> CaptureFile:
    """Open and index a capture; raise CaptureError when it is not a readable capture at all.
    `growing`: a live spool still being written, whose last record may be half there (it is left
    out without a finding; the next read has it)."""
    p = Path(path)
    if not p.exists():
        raise CaptureError(f"{p}: no such file")
    if p.is_dir():
        raise CaptureError(f"{p}: is a directory, not a capture file")
    try:
        fh = open(p, "rb")
    except OSError as exc:
        raise CaptureError(f"{p}: cannot open: {exc.strerror}") from None
    with fh:
        head = fh.read(4)
    if not head:
        raise CaptureError(f"{p}: empty file (0 bytes), not a capture")
    spool = None
    problems: list[Finding] = []
    if head[:2] == GZIP_MAGIC:
        spool, problems = _decompress(p)
        target = spool
    else:
        target = open(p, "rb")
    try:
        target.seek(0, os.SEEK_END)
        if target.tell() == 0:
            raise CaptureError(f"{p}: empty after decompression, not a capture")
        mm = mmap.mmap(target.fileno(), 0, access=mmap.ACCESS_READ)
    finally:
        if spool is None:
            target.close()
    try:
        records = scan(mm, p)
    except CaptureError:
        _close_map(mm)
        if spool is not None:
            spool.close()
        raise
    records.findings[:0] = [(0, f) for f in problems]
    if growing:
        records.findings = [(i, f) for i, f in records.findings if f.code != "capture.truncated"]
    return CaptureFile(p, mm, records, spool is not None, mm, spool)


def scan(buf: Any, name: Path | str = "capture") -> RecordTable:
    """Choose the reader by magic number and index `buf`."""
    magic = bytes(buf[:4])
    if magic in pcap.MAGICS:
        return pcap.scan_pcap(buf, ByteColumns(buf))
    if magic == PCAPNG_MAGIC:
        return pcapng.scan_pcapng(buf, ByteColumns(buf))
    if magic == NETXRAY_MAGIC:
        return scan_netxray(buf)
    raise CaptureError(
        f"{name}: not a capture file (starts with {magic.hex()}; expected pcap, pcapng, NetXRay or gzip)"
    )


PREVIEW_BYTES = 1 << 20
"""How much of a file the quick preview reads (a few thousand packets)."""


def open_preview(path: str | os.PathLike[str], size: int = PREVIEW_BYTES) -> CaptureFile | None:
    """The first `size` bytes of an uncompressed capture as a capture of its own (the records that
    fit; a cut last record is simply left out), so a viewer can show rows at once while the whole
    file is indexed. None for gzip or unreadable files."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            head = fh.read(size)
    except OSError:
        return None
    if len(head) < 4 or head[:2] == GZIP_MAGIC:
        return None
    try:
        records = scan(head, p)
    except CaptureError:
        return None
    records.findings = [(i, f) for i, f in records.findings if f.code != "capture.truncated"]
    return CaptureFile(p, head, records, False, None, None)
