"""--keylog's files: read into the key log the decoders use, and read again as they grow.

A browser or a service writes SSLKEYLOGFILE as it connects, so during a live capture (or while
following a growing file) the secrets of a new connection arrive after the capture started. Each
look at a growing capture reads what the files gained since (whole lines only), before decoding
the packets that arrived, as Wireshark re-reads its key log when it meets an unknown client random.
The decoders themselves do no I/O: they only read the KeyLog.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from protoscope.decoders.tls.keylog import KeyLog

MAX_READ = 16 << 20
"""Bytes of a key log read at one look: a key log line is ~180 bytes, a busy service writes a few a
connection; a file far larger than this is not a key log worth holding in memory at once."""


@dataclass(slots=True)
class KeyLogFiles:
    """The files of `--keylog`, each read up to its last whole line so far."""

    keylog: KeyLog
    paths: list[str]
    read_to: dict[str, int] = field(default_factory=dict)
    """Path -> bytes of it read (up to the end of its last whole line)."""

    def read(self) -> list[tuple[str, int, int]]:
        """Read what each file gained: (path, kept, skipped) of each file that gained lines. OSError
        for a file that cannot be read (the caller reports it)."""
        out = []
        for path in self.paths:
            start = self.read_to.get(path, 0)
            if os.stat(path).st_size <= start:
                continue
            with open(path, "rb") as fh:
                fh.seek(start)
                data = fh.read(MAX_READ)
            end = data.rfind(b"\n") + 1
            if not end:  # no whole line yet: a writer is in the middle of one
                if len(data) < MAX_READ:
                    continue
                end = len(data)
            kept, skipped = self.keylog.add_text(data[:end].decode("utf-8", "replace"), path)
            self.read_to[path] = start + end
            out.append((path, kept, skipped))
        return out

    def refresh(self) -> int:
        """`read`, with files that went away or cannot be read left as they were; the secrets added."""
        try:
            return sum(kept for _, kept, _ in self.read())
        except OSError:
            return 0
