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


def test_each_look_of_a_session_reads_what_the_key_log_gained(tmp_path: Path) -> None:
    from protoscope.captures.index import load
    from protoscope.decoders.registry import load_registry
    from protoscope.inspector.session import Session
    from tests.conftest import SAMPLES

    path = tmp_path / "keys.log"
    path.write_text("")
    files = KeyLogFiles(KeyLog(), [str(path)])
    registry = load_registry(use_plugins=False)
    registry.options = {"tls.keylog": files.keylog, "tls.keylog_files": files}
    registry.configure(registry.options)
    session = Session(load(SAMPLES / "grpc-tls.pcap"), registry)
    keys = (SAMPLES / "grpc-tls.keys").read_text()
    path.write_text(keys)
    decoding = session.decoding()  # a look: the lines written since are read before decoding
    decoded = list(decoding.more(final=True))
    assert files.keylog.lines == len([k for k in keys.splitlines() if not k.startswith("#")])
    assert any(p.protocol == "grpc" for pd in decoded for p in pd.pdus)
