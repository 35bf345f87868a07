"""The spool's files: the one file `-w` names, or dumpcap's ring of numbered files.

With a ring buffer (-b filesize/duration) the capture writes PREFIX_NNNNN_YYYYmmddHHMMSS.SUFFIX,
dumpcap's names (the number counts from 1, the time is local time when the file was opened), and
with `-b files:N` deletes the oldest beyond N, as dumpcap does. Each file is a whole pcapng: its own
section header, interface descriptions and, when it is closed, statistics blocks.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .options import RingOptions

SUFFIX = ".pcapng"


class SpoolError(Exception):
    """The spool cannot be opened or written; the message is one line. `written`: the bytes of
    the failed write that reached the file before it failed."""

    def __init__(self, message: str, written: int = 0) -> None:
        super().__init__(message)
        self.written = written


def ring_file_name(spool: Path, number: int, when: float) -> Path:
    """dumpcap's name for ring file `number`: `-w out.pcapng` gives out_00001_20240102150405.pcapng."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.localtime(when))
    suffix = spool.suffix or SUFFIX
    return spool.with_name(f"{spool.stem if spool.suffix else spool.name}_{number:05d}_{stamp}{suffix}")


class SpoolFiles:
    """The file being written (a raw descriptor: each batch is one os.write) and the ring's
    bookkeeping. Every failure is a SpoolError naming the file and the system's reason."""

    def __init__(self, spool: Path, ring: RingOptions) -> None:
        self.spool = spool
        self.ring = ring
        self.kept: list[Path] = []
        """The ring's files still on disk, oldest first (the one file when there is no ring)."""
        self.number = 0
        self.fd = -1
        self.size = 0
        self.opened = 0.0
        """time.monotonic() when the current file was opened."""

    @property
    def current(self) -> Path:
        return self.kept[-1]

    def open_next(self, header: bytes) -> Path:
        """Open the next file (the first at start) and write its header blocks."""
        self.number += 1
        path = ring_file_name(self.spool, self.number, time.time()) if self.ring.rotates else self.spool
        try:
            self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            raise SpoolError(f"cannot write the spool {path}: {exc.strerror}") from None
        self.kept.append(path)
        self.size = 0
        self.opened = time.monotonic()
        self.write(header)
        self._prune()
        return path

    def _prune(self) -> None:
        keep = self.ring.files
        while keep and len(self.kept) > keep:
            oldest = self.kept.pop(0)
            try:
                oldest.unlink(missing_ok=True)
            except OSError as exc:
                raise SpoolError(f"cannot remove the oldest ring file {oldest}: {exc.strerror}") from None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of `data`; a short write is retried, so a failure leaves at most one cut block."""
        view = memoryview(data)
        total = len(view)
        try:
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
                self.size += n
        except OSError as exc:
            written = total - len(view)
            raise SpoolError(f"cannot write the spool {self.current}: {exc.strerror}", written) from None
        finally:
            view.release()  # the caller's bytearray may be resized again

    def room(self) -> int | None:
        """Bytes the current ring file takes before it is full (None: no size limit)."""
        if self.ring.filesize is None:
            return None
        return max(0, self.ring.filesize - self.size)

    def due(self, now: float) -> bool:
        """Whether the ring moves on to a new file now (full, or old enough)."""
        ring = self.ring
        if ring.filesize is not None and self.size >= ring.filesize:
            return True
        return ring.duration is not None and now - self.opened >= ring.duration

    def close(self, trailer: bytes = b"") -> None:
        """Write `trailer` (the statistics blocks) and close the current file."""
        if self.fd < 0:
            return
        try:
            if trailer:
                self.write(trailer)
        finally:
            os.close(self.fd)
            self.fd = -1
