"""lake/runner.py: many captures to one dataset, in parallel, resumable, failures reported."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from protoscope.inspector import cli
from protoscope.inspector.lake import runner
from protoscope.inspector.lake.export import ExportResult
from protoscope.inspector.lake.ids import capture_id
from protoscope.inspector.lake.writer import HOST
from protoscope.inspector.livemode import UsageError
from tests.conftest import SAMPLES
from tests.inspector.lake.conftest import read_table

SMALL = ("grpc-edge.pcap", "webrtc-no-answer.pcap", "loopback-basic.pcap")
"""Three small samples (84, 29 and a few packets): a real export of each takes well under a second."""


def lake_args(output: Path, *extra: str) -> argparse.Namespace:
    args: argparse.Namespace = cli.parser().parse_args(
        ["--export", "parquet", "--output", str(output), "--no-plugins", *extra]
    )
    cli._check(args)
    return args


def fake_export(
    path: str, output: str, registry: object, *, count: int = 0, capture: str | None = None, **_: Any
) -> ExportResult:
    """export_capture's contract without decoding: a file starting "bad" fails, others are
    "written" as a `captures` partition (what makes a capture "in DIR")."""
    cid = capture or capture_id(path)
    data = Path(path).read_bytes()
    if data.startswith(b"bad"):
        return ExportResult(path, cid, "failed", error="not a capture file")
    (Path(output) / "captures" / f"capture={cid}").mkdir(parents=True)
    return ExportResult(path, cid, "written", packets=len(data), rows={"captures": 1, "packets": 3})


def test_captures_in_expands_directories_recursively_sorted(tmp_path: Path) -> None:
    for name in (
        "b.pcap",
        "a.pcapng",
        "sub/c.cap",
        "sub/d.pcap.gz",
        "e.pcapng.gz",
        "notes.txt",
        ".hidden.pcap",
    ):
        (tmp_path / "caps" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "caps" / name).write_bytes(b"x")
    (tmp_path / "caps" / ".git").mkdir()
    (tmp_path / "caps" / ".git" / "x.pcap").write_bytes(b"x")
    folder = str(tmp_path / "caps")
    found = runner.captures_in([folder, "missing.pcap", "s3://bucket/k.pcap"])
    names = [os.path.relpath(p, folder) for p in found[:5]]
    assert names == ["a.pcapng", "b.pcap", "e.pcapng.gz", "sub/c.cap", "sub/d.pcap.gz"]
    assert found[5:] == ["missing.pcap", "s3://bucket/k.pcap"]  # kept: they fail (or go to Spark)


def write_captures(folder: Path) -> list[str]:
    folder.mkdir()
    paths = []
    for name, data in (
        ("a.pcap", b"aaaa"),
        ("b.pcap", b"bbbbbb"),
        ("x.pcap", b"bad bytes"),
        ("c.pcap", b"cc"),
    ):
        (folder / name).write_bytes(data)
        paths.append(str(folder / name))
    shutil.copy(folder / "a.pcap", folder / "copy-of-a.pcap")
    return [*paths, str(folder / "copy-of-a.pcap")]


@pytest.mark.parametrize("jobs", [1, 2])
def test_progress_lines_duplicates_failures_and_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    monkeypatch.setattr(runner, "export_capture", fake_export)  # inherited by the forked workers
    paths = write_captures(tmp_path / "caps")
    out = tmp_path / "lake"
    err = io.StringIO()
    assert runner.export_many(paths, str(out), lake_args(out), jobs, err) == 2
    lines = err.getvalue().splitlines()
    assert len(lines) == 6
    assert sorted(int(line[1 : line.index("/")]) for line in lines[:5]) == [1, 2, 3, 4, 5]
    body = {line.split("] ", 1)[1].split(": ", 1)[0]: line.split(": ", 1)[1] for line in lines[:5]}
    a_id = capture_id(paths[0])
    assert body[paths[0]] == "4 packets, 2 tables in 0.0 s"
    assert body[paths[2]] == "FAILED: not a capture file"
    assert body[paths[4]] == f"same capture as {paths[0]} (capture {a_id}), exported once"
    assert lines[5] == f"exported 3, skipped 1, failed 1 of 5 captures to {out}"
    assert len(list((out / "captures").iterdir())) == 3

    # A second run skips what is in DIR; the capture that failed fails again: exit 2 still.
    err = io.StringIO()
    assert runner.export_many(paths, str(out), lake_args(out), jobs, err) == 2
    lines = err.getvalue().splitlines()
    assert f"[1/5] {paths[0]}: already in {out} (capture {a_id})" in lines
    assert lines[-1] == f"exported 0, skipped 4, failed 1 of 5 captures to {out}"
    good = [p for p in paths if "x.pcap" not in p]
    err = io.StringIO()
    assert runner.export_many(good, str(out), lake_args(out), jobs, err) == 0
    assert err.getvalue().splitlines()[-1] == f"exported 0, skipped 4, failed 0 of 4 captures to {out}"


def test_an_unreadable_path_fails_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "export_capture", fake_export)
    (tmp_path / "a.pcap").write_bytes(b"a")
    err = io.StringIO()
    paths = [str(tmp_path / "missing.pcap"), str(tmp_path / "a.pcap")]
    out = tmp_path / "lake"
    assert runner.export_many(paths, str(out), lake_args(out), 2, err) == 2
    lines = err.getvalue().splitlines()
    assert lines[0] == f"[1/2] {paths[0]}: FAILED: cannot read: No such file or directory"
    assert lines[1].startswith(f"[2/2] {paths[1]}: 1 packets")


def test_capture_names_are_inert_in_progress_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "export_capture", fake_export)
    path = tmp_path / "evil\x1b]0;title\x07.pcap"
    path.write_bytes(b"e")
    err = io.StringIO()
    out = tmp_path / "lake"
    assert runner.export_many([str(path)], str(out), lake_args(out), 1, err) == 0
    assert "\x1b" not in err.getvalue() and "evil\\x1b]0;title\\a.pcap" in err.getvalue()


def test_ctrl_c_with_one_job_stops_with_a_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_: Any, **__: Any) -> ExportResult:
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "export_capture", interrupted)
    (tmp_path / "a.pcap").write_bytes(b"a")
    err = io.StringIO()
    out = tmp_path / "lake"
    assert runner.export_many([str(tmp_path / "a.pcap")], str(out), lake_args(out), 1, err) == 130
    assert err.getvalue() == f"interrupted: exported 0, skipped 0, failed 0 of 1 captures to {out}\n"


def slow_export(
    path: str, output: str, registry: object, *, capture: str | None = None, **_: Any
) -> ExportResult:
    """A worker's export that has begun (its staging directory made, as export.py names it) and
    does not end by itself."""
    staging = Path(output) / "_staging" / f"{capture}.{os.getpid()}.abc123.{HOST}"
    staging.mkdir(parents=True)
    time.sleep(60)
    raise AssertionError("not stopped")


def test_ctrl_c_stops_the_pool_and_removes_its_staging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "export_capture", slow_export)
    paths = []
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.pcap").write_bytes(name.encode())
        paths.append(str(tmp_path / f"{name}.pcap"))
    out = tmp_path / "lake"
    staging = out / "_staging"
    (staging / f"0123456789abcdef.1.other.{HOST}").mkdir(parents=True)  # another run's: not ours to remove

    def interrupt_when_started() -> None:
        deadline = time.monotonic() + 20
        while len(list(staging.iterdir())) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)

    # Python turns SIGINT into KeyboardInterrupt only when SIGINT was not ignored when it started;
    # a test run started in the background of a non-interactive shell has it ignored.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=interrupt_when_started, daemon=True).start()
        err = io.StringIO()
        assert runner.export_many(paths, str(out), lake_args(out), 2, err) == 130
    finally:
        signal.signal(signal.SIGINT, previous)
    assert err.getvalue().splitlines()[-1].startswith("interrupted: exported 0, skipped 0, failed 0 of 3")
    assert [p.name for p in staging.iterdir()] == [f"0123456789abcdef.1.other.{HOST}"]
    assert not (out / "captures").exists()


def test_remove_staging_only_of_the_given_workers(tmp_path: Path) -> None:
    import pyarrow.fs as pafs

    names = [f"aaaa.10.x.{HOST}", f"bbbb.11.y.{HOST}", f"cccc.12.z.{HOST}", "dddd.10.w.elsewhere", "odd"]
    for name in names:
        (tmp_path / "_staging" / name).mkdir(parents=True)
    runner._remove_staging(pafs.LocalFileSystem(), str(tmp_path), {10, 12})
    assert sorted(p.name for p in (tmp_path / "_staging").iterdir()) == sorted(names[1:2] + names[3:])
    runner._remove_staging(pafs.LocalFileSystem(), str(tmp_path / "nowhere"), {1})  # nothing there: no error


def dataset(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows, by capture then file order, without what differs between two runs."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for table in sorted(p.name for p in folder.iterdir() if not p.name.startswith("_")):
        rows = read_table(folder, table)
        for row in rows:
            row.pop("exported_at", None)
        tables[table] = rows
    return tables


def real_captures(folder: Path) -> list[str]:
    folder.mkdir()
    for name in SMALL:
        shutil.copy(SAMPLES / name, folder / name)
    (folder / "x.pcap").write_bytes(bytes(range(256)) * 4)  # random bytes named .pcap
    shutil.copy(SAMPLES / SMALL[0], folder / "again.pcap")
    return [str(folder / name) for name in (*SMALL, "x.pcap", "again.pcap")]


def test_real_export_of_three_a_corrupt_one_and_a_copy(tmp_path: Path) -> None:
    paths = real_captures(tmp_path / "caps")
    datasets = []
    for jobs in (1, 2):
        out = tmp_path / f"lake-{jobs}"
        err = io.StringIO()
        assert runner.export_many(paths, str(out), lake_args(out), jobs, err) == 2
        lines = err.getvalue().splitlines()
        assert lines[-1] == f"exported 3, skipped 1, failed 1 of 5 captures to {out}"
        failed = [line for line in lines if "FAILED" in line]
        assert len(failed) == 1 and failed[0].split("] ", 1)[1].startswith(f"{paths[3]}: FAILED: ")
        assert "\n" not in failed[0]
        assert failed[0].count(paths[3]) == 1  # the line's path, not repeated in the reason
        assert len(read_table(out, "captures")) == 3
        assert not any((out / "_staging").glob("*"))  # nothing left of the failed one
        datasets.append(dataset(out))
    assert datasets[0] == datasets[1]  # --jobs 1 and --jobs 2 write the same dataset
    out = tmp_path / "lake-2"
    err = io.StringIO()
    assert runner.export_many(paths, str(out), lake_args(out), 2, err) == 2  # x.pcap still fails
    assert err.getvalue().splitlines()[-1] == f"exported 0, skipped 4, failed 1 of 5 captures to {out}"
    assert dataset(out) == datasets[1]


def test_bad_options_stop_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "lake"
    args = lake_args(out, "--sdp", str(tmp_path / "missing.sdp"))
    with pytest.raises(UsageError):
        runner.export_many([str(SAMPLES / SMALL[0])], str(out), args, 1, io.StringIO())
    assert not out.exists()


def test_an_output_that_cannot_be_a_dataset(tmp_path: Path) -> None:
    (tmp_path / "a.pcap").write_bytes(b"a")
    (tmp_path / "file").write_text("x")
    for output, why in (
        (tmp_path / "file", "is a file, not a dataset directory"),
        ("foo://x/y", "Unrecognized"),
    ):
        err = io.StringIO()
        assert runner.export_many([str(tmp_path / "a.pcap")], str(output), lake_args(tmp_path), 1, err) == 2
        assert err.getvalue().startswith(f"protoscope: --output {output}") and why in err.getvalue()
        assert err.getvalue().count("\n") == 1


def dying_export(
    path: str, output: str, registry: object, *, capture: str | None = None, **kw: Any
) -> ExportResult:
    """fake_export, but a file starting "die" kills its process (as the kernel's OOM killer does),
    after staging some of it, and one starting "exit" leaves with os._exit."""
    data = Path(path).read_bytes()
    if data.startswith((b"die", b"exit")):
        (Path(output) / "_staging" / f"{capture}.{os.getpid()}.dead01.{HOST}").mkdir(parents=True)
        if data.startswith(b"die"):
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(3)
    return fake_export(path, output, registry, capture=capture, **kw)


def test_a_dead_worker_fails_its_capture_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "export_capture", dying_export)
    folder = tmp_path / "caps"
    folder.mkdir()
    contents = [b"a1", b"die!", b"b22", b"c333", b"exit", b"d4444", b"e55555", b"f666666"]
    paths = []
    for k, data in enumerate(contents):
        (folder / f"{k}.pcap").write_bytes(data)
        paths.append(str(folder / f"{k}.pcap"))
    out = tmp_path / "lake"
    err = io.StringIO()
    assert runner.export_many(paths, str(out), lake_args(out), 2, err) == 2
    lines = err.getvalue().splitlines()
    body = {line.split("] ", 1)[1].split(": ", 1)[0]: line.split(": ", 1)[1] for line in lines[:-1]}
    assert len(body) == len(paths)
    assert body[paths[1]] == "FAILED: worker died: killed by signal 9 (SIGKILL: out of memory?)"
    assert body[paths[4]] == "FAILED: worker died: exit status 3"
    assert lines[-1] == f"exported 6, skipped 0, failed 2 of 8 captures to {out}"
    assert len(list((out / "captures").iterdir())) == 6
    assert not list((out / "_staging").iterdir())  # the dead workers' staging is removed


def test_how_a_process_died() -> None:
    assert runner._death(-9) == "killed by signal 9 (SIGKILL: out of memory?)"
    assert runner._death(-15) == "killed by signal 15 (SIGTERM)"
    assert runner._death(1) == "exit status 1"


SLOW_PARENT = """
import os, sys, time
from pathlib import Path
from protoscope.inspector import cli
from protoscope.inspector.lake import runner

def slow(path, output, registry, *, capture=None, **_):
    (Path(sys.argv[1]) / f"{os.getpid()}.pid").write_text("")
    time.sleep(60)
    raise AssertionError("not stopped")

runner.export_capture = slow
out, caps = sys.argv[2], sys.argv[3:]
args = cli.parser().parse_args(["--export", "parquet", "--output", out, "--no-plugins"])
sys.exit(runner.export_many(caps, out, args, 2))
"""


def _gone(pid: int) -> bool:
    """Whether `pid` has ended (a zombie has: its parent, gone too, left it to init to reap)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] in ("Z", "X")
    except OSError:
        return True


def start_slow_parent(tmp_path: Path) -> tuple[subprocess.Popen[str], list[int]]:
    """A parent exporting two captures with --jobs 2 whose workers never end by themselves, and
    the pids of its workers once both have begun."""
    pids, out = tmp_path / "pids", tmp_path / "lake"
    pids.mkdir()
    caps = []
    for name in ("a", "b"):
        (tmp_path / f"{name}.pcap").write_bytes(name.encode())
        caps.append(str(tmp_path / f"{name}.pcap"))
    command = [sys.executable, "-c", SLOW_PARENT, str(pids), str(out), *caps]
    # stderr to a file, not a pipe: a surviving worker would hold a pipe open
    with open(tmp_path / "stderr", "w") as err:
        parent = subprocess.Popen(command, stderr=err, text=True)
    deadline = time.monotonic() + 20
    while len(list(pids.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    workers = [int(p.stem) for p in pids.iterdir()]
    assert len(workers) == 2, "the workers did not begin"
    return parent, workers


def wait_gone(pids: list[int]) -> list[int]:
    """The pids of `pids` still running after a bounded wait (then ended: this test started them)."""
    deadline = time.monotonic() + 10
    while not all(_gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    alive = [p for p in pids if not _gone(p)]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return alive


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux's")
def test_sigterm_stops_the_parent_and_its_workers(tmp_path: Path) -> None:
    parent, workers = start_slow_parent(tmp_path)
    parent.send_signal(signal.SIGTERM)
    parent.wait(timeout=30)
    err = (tmp_path / "stderr").read_text()
    assert parent.returncode == 143, err
    assert err.splitlines()[-1].startswith("interrupted: exported 0, skipped 0, failed 0 of 2")
    assert wait_gone(workers) == []
    staging = tmp_path / "lake" / "_staging"
    assert not staging.exists() or not any(staging.iterdir())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux's")
def test_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    parent, workers = start_slow_parent(tmp_path)
    parent.kill()
    parent.wait(timeout=30)
    assert wait_gone(workers) == []


def test_a_run_removes_the_staging_of_dead_processes_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "export_capture", fake_export)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # reaped: its pid names no process (until the kernel hands it out again)
    out = tmp_path / "lake"
    staging = out / "_staging"
    names = [
        f"0123456789abcdef.{dead.pid}.aaaa.{HOST}",  # a kill -9'd export's: removed
        f"0123456789abcdef.{os.getppid()}.bbbb.{HOST}",  # a live process's: kept
        f"0123456789abcdef.{dead.pid}.cccc.elsewhere",  # another host's (a shared file system): kept
        "0123456789abcdef.lock",  # a lock (a file): the lock's own rule, not this one
        "odd",
    ]
    for name in names:
        if name.endswith(".lock"):
            staging.mkdir(parents=True, exist_ok=True)
            (staging / name).write_text("host 1\n")
        else:
            (staging / name).mkdir(parents=True)
    (tmp_path / "a.pcap").write_bytes(b"a")
    err = io.StringIO()
    assert runner.export_many([str(tmp_path / "a.pcap")], str(out), lake_args(out), 1, err) == 0
    assert sorted(p.name for p in staging.iterdir()) == sorted(names[1:])


def test_a_reason_does_not_repeat_the_line_s_path() -> None:
    assert runner.without_path("caps/a.pcap: not a capture file", "caps/a.pcap") == "not a capture file"
    assert runner.without_path("Permission denied: caps/a.pcap", "caps/a.pcap") == "Permission denied"
    # another file's name (the dataset's) is what the reason is about: kept
    assert (
        runner.without_path("Permission denied: lake/_staging", "caps/a.pcap")
        == "Permission denied: lake/_staging"
    )
    err = io.StringIO()
    tally = runner.Tally(1, "lake", err)
    tally.fail("caps/a.pcap", "caps/a.pcap: not a capture file")
    assert err.getvalue() == "[1/1] caps/a.pcap: FAILED: not a capture file\n"


def test_one_line_names_an_os_error_s_file_once() -> None:
    from protoscope.captures.errors import CaptureError
    from protoscope.inspector.lake.export import one_line

    missing = FileNotFoundError(2, "No such file or directory", "lake/_staging/x")
    assert one_line(missing) == "No such file or directory: lake/_staging/x"
    moved = OSError(18, "Invalid cross-device link", "a", None, "b")
    assert one_line(moved) == "Invalid cross-device link: a -> b"
    assert one_line(OSError("disk on fire")) == "disk on fire"
    assert one_line(CaptureError("a.pcap: not a capture file\nmore")) == "a.pcap: not a capture file"
    assert one_line(ValueError("bad\nworse")) == "ValueError: bad"
