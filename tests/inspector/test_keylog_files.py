"""--keylog's files are read again as they grow: whole lines only, each line once."""

from __future__ import annotations

from pathlib import Path

import pytest

from protoscope.decoders.tls.keylog import KeyLog
from protoscope.inspector.keys import KeyLogFiles


def line(n: int) -> str:
    return f"CLIENT_RANDOM {bytes([n]).hex() * 32} {bytes([n]).hex() * 48}\n"


def test_a_growing_key_log_is_read_a_whole_line_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "keys.log"
    path.write_text(line(1) + line(2)[:40])  # the writer is in the middle of its second line
    files = KeyLogFiles(KeyLog(), [str(path)])
    assert files.read() == [(str(path), 1, 0)]
    assert files.read() == []  # nothing whole came
    with path.open("a") as out:
        out.write(line(2)[40:] + "not a key log line\n")
    assert files.read() == [(str(path), 1, 1)]
    assert files.keylog.lines == 2 and files.keylog.get("CLIENT_RANDOM", bytes([2]) * 32) == bytes([2]) * 48
    assert files.refresh() == 0


def test_a_file_that_goes_away_is_kept_as_read(tmp_path: Path) -> None:
    path = tmp_path / "keys.log"
    path.write_text(line(3))
    files = KeyLogFiles(KeyLog(), [str(path)])
    files.read()
    path.unlink()
    assert files.refresh() == 0 and files.keylog.lines == 1
    with pytest.raises(OSError):
        files.read()
