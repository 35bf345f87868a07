"""The command line of the lake: `--export parquet` over many captures, `protoscope query`, and
the named queries answering on the samples what their JSON reports say."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from protoscope.inspector.cli import main
from tests.conftest import SAMPLES, public_capture

GRPC_EDGE = SAMPLES / "grpc-edge.pcap"  # calls with DEADLINE_EXCEEDED and PERMISSION_DENIED
NO_ANSWER = SAMPLES / "webrtc-no-answer.pcap"  # a session that failed in ICE
RELAYED = (SAMPLES / "webrtc-turn.pcap", SAMPLES / "nat-relay-outside.pcap")  # selected pairs via TURN
LOSSY = "ndpi--discord.pcap"  # public corpus: an RTP stream that lost 1 of 5 packets


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def report(capsys: pytest.CaptureFixture[str], capture: Path, name: str) -> list[dict[str, Any]]:
    code, out, _ = cli(capsys, capture, "--report", name, "--format", "json", "--no-plugins")
    assert code == 0
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


def named(capsys: pytest.CaptureFixture[str], lake: Path, name: str) -> list[dict[str, Any]]:
    code, out, err = cli(capsys, "query", lake, "--query", name, "--format", "json")
    assert code == 0, err
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (
            ["a.pcap", "b.pcap", "--report", "flows"],
            "2 captures given: several go with --export parquet only",
        ),
        (["a.pcap", "--export", "parquet"], "--export parquet needs --output DIR"),
        (
            ["a.pcap", "--export", "parquet", "--output", "d", "-Y", "stun"],
            "-Y does not apply to --export parquet",
        ),
        (
            ["a.pcap", "--export", "parquet", "--output", "d", "--report", "calls"],
            "--report does not go with",
        ),
        (["a.pcap", "--export", "parquet", "--output", "d", "--flow", "1"], "--flow does not go with"),
        (["-", "--export", "parquet", "--output", "d"], "'-' (standard input) is not one"),
        (["a.pcap", "--export", "parquet", "--output", "d", "--jobs", "0"], "--jobs must be at least 1"),
        (["a.pcap", "--jobs", "2"], "--jobs goes with --export parquet"),
        (["a.pcap", "--engine", "spark"], "--engine goes with --export parquet"),
        (
            ["a.pcap", "--export", "parquet", "--output", "d", "--spark-master", "local"],
            "goes with --engine spark",
        ),
        (["--live", "-i", "lo", "--export", "parquet", "--output", "d"], "reads capture files, not --live"),
        (["s3a://b/a.pcap", "--export", "parquet", "--output", "d"], "--engine local reads local files"),
        (["a.pcap", "--export", "parquet", "--output", "d", "--engine", "flink"], "invalid choice: 'flink'"),
        # The capture id is the file's hash: a partial export would stand for the whole capture.
        (
            ["a.pcap", "--export", "parquet", "--output", "d", "-c", "5"],
            "-c does not go with --export parquet",
        ),
        (
            ["a.pcap", "--export", "parquet", "--output", "d", "--engine", "spark", "--jobs", "2"],
            "--jobs goes with --engine local",
        ),
    ],
)
def test_usage_errors_are_one_line(
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    why: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, *args)
    assert code == 2 and why in err and err.count("\n") == 1, err
    assert not (tmp_path / "d").exists()


def test_a_directory_without_captures(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    code, _, err = cli(capsys, tmp_path, "--export", "parquet", "--output", tmp_path / "lake")
    assert code == 2 and f"no captures in {tmp_path}" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("module", "args", "line"),
    [
        (
            "pyarrow",
            ["--export", "parquet"],
            "--export parquet needs pyarrow: pip install 'protoscope[lake]'"
            " (in a checkout: pip install -e '.[lake]')",
        ),
        (
            "communityid",
            ["--export", "parquet"],
            "--export parquet needs communityid: pip install 'protoscope[lake]'"
            " (in a checkout: pip install -e '.[lake]')",
        ),
        (
            "pyspark",
            ["--export", "parquet", "--engine", "spark"],
            "--engine spark needs pyspark: pip install 'protoscope[spark]'"
            " (in a checkout: pip install -e '.[spark]')",
        ),
    ],
)
def test_a_missing_extra_is_named(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    module: str,
    args: list[str],
    line: str,
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import module` raises ImportError
    code, _, err = cli(capsys, GRPC_EDGE, *args, "--output", tmp_path / "lake")
    assert (code, err) == (2, f"protoscope: {line}\n")
    assert not (tmp_path / "lake").exists()


@pytest.mark.parametrize("module", ["duckdb", "pyarrow"])
def test_query_without_duckdb(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    code, out, err = cli(capsys, "query", "--list")  # reads the .sql files only
    assert (code, err) == (0, "") and "slow-calls" in out
    code, _, err = cli(capsys, "query", ".", "SELECT 1")
    assert (code, err) == (
        2,
        f"protoscope: protoscope query needs {module}: pip install 'protoscope[lake]'"
        " (in a checkout: pip install -e '.[lake]')\n",
    )


def test_query_usage(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = cli(capsys, "query", "--list")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == [
        "error-statuses",
        "failed-sessions",
        "lossy-streams",
        "relayed-sessions",
        "slow-calls",
    ]
    for args, why in (
        ([], "give a dataset"),
        ([tmp_path], "give SQL or --query NAME"),
        ([tmp_path, "SELECT 1", "--query", "slow-calls"], "give SQL or --query NAME"),
        ([tmp_path / "missing", "SELECT 1"], "no dataset directory"),
        ([tmp_path, "SELECT 1"], "no tables in"),
        ([tmp_path, "SELECT 1", "--format", "xml"], "invalid choice: 'xml'"),
        (["--list", tmp_path, "SELECT 1"], "--list takes no SQL"),
        (["--list", "--query", "slow-calls"], "--list takes no SQL or --query"),
        (["--list", tmp_path / "missing"], "no dataset directory"),
    ):
        code, _, err = cli(capsys, "query", *args)
        assert code == 2 and why in err and err.count("\n") == 1, (args, err)
    code, out, _ = cli(capsys, "query", tmp_path, "--list")  # DIR given: its tables too
    assert code == 0 and out.splitlines()[-1] == f"no tables in {tmp_path} yet"
    code, out, _ = cli(capsys, "query", "--help")
    assert code == 0 and "usage: protoscope query" in out


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The samples the named queries are about (and a copy of one), exported by the CLI with two
    jobs; the lossy stream's public capture when the corpus is there."""
    folder = tmp_path_factory.mktemp("caps")
    for path in (GRPC_EDGE, NO_ANSWER, *RELAYED):
        shutil.copy(path, folder / path.name)
    shutil.copy(GRPC_EDGE, folder / "sub-copy.pcap")
    out = tmp_path_factory.mktemp("lake")
    args = [str(folder), "--export", "parquet", "--output", str(out), "--jobs", "2", "--no-plugins"]
    assert main(args) == 0
    return out


def test_export_many_from_the_cli(capsys: pytest.CaptureFixture[str], lake: Path) -> None:
    code, out, _ = cli(capsys, "query", lake, "SELECT path FROM captures ORDER BY path", "--format", "csv")
    names = [Path(p).name for p in out.splitlines()[1:]]
    assert code == 0 and names == sorted([GRPC_EDGE.name, NO_ANSWER.name, *(p.name for p in RELAYED)])
    code, out, _ = cli(capsys, "query", lake, "SELECT count(*) AS n FROM packets", "--format", "json")
    assert json.loads(out) == [{"n": 84 + 29 + 451 + 649}]


def test_error_statuses(capsys: pytest.CaptureFixture[str], lake: Path) -> None:
    calls = report(capsys, GRPC_EDGE, "calls")
    want = Counter((c["path"], c["status"], c["status_name"]) for c in calls if c["status"] not in (None, 0))
    rows = named(capsys, lake, "error-statuses")
    assert {(r["method"], r["status"], r["status_name"]): r["calls"] for r in rows} == dict(want)
    assert all(r["captures"] == 1 and r["capture_paths"].endswith(GRPC_EDGE.name) for r in rows)


def test_slow_calls(capsys: pytest.CaptureFixture[str], lake: Path) -> None:
    calls = [c for c in report(capsys, GRPC_EDGE, "calls") if c["duration"] is not None]
    rows = named(capsys, lake, "slow-calls")
    assert [r["duration_s"] for r in rows] == pytest.approx(
        sorted((c["duration"] for c in calls), reverse=True)
    )
    slowest = max(calls, key=lambda c: c["duration"])
    assert (rows[0]["method"], rows[0]["stream_id"]) == (slowest["path"], slowest["stream_id"])
    for row in rows:
        durations = [c["duration"] for c in calls if c["path"] == row["method"]]
        assert row["method_calls"] == len(durations)
        assert row["p50_s"] == pytest.approx(float(np.percentile(durations, 50)))
        assert row["p95_s"] == pytest.approx(float(np.percentile(durations, 95)))
        assert Path(row["capture_path"]).name == GRPC_EDGE.name


def test_failed_sessions(capsys: pytest.CaptureFixture[str], lake: Path) -> None:
    want = [
        (s["id"], s["failed_phase"], s["diagnosis"]["summary"])
        for s in report(capsys, NO_ANSWER, "sessions")
        if s.get("kind") is None and s["failed_phase"]
    ]
    assert want  # the sample is a session that failed
    rows = named(capsys, lake, "failed-sessions")
    assert [(r["session"], r["failed_phase"], r["diagnosis"]) for r in rows] == want
    assert all(Path(r["capture_path"]).name == NO_ANSWER.name for r in rows)


def test_relayed_sessions(capsys: pytest.CaptureFixture[str], lake: Path) -> None:
    want = []
    for capture in sorted(RELAYED, key=lambda p: p.name):
        for s in report(capsys, capture, "sessions"):
            pair = s.get("selected_pair") if s.get("kind") is None else None
            if pair and "relay" in (pair["local_type"], pair["remote_type"]):
                relay = pair["local"] if pair["local_type"] == "relay" else pair["remote"]
                want.append((capture.name, s["id"], relay, pair["local"], pair["remote"]))
    assert len(want) == 2
    rows = named(capsys, lake, "relayed-sessions")
    got = [
        (
            Path(r["capture_path"]).name,
            r["session"],
            r["relay_address"],
            r["selected_local"],
            r["selected_remote"],
        )
        for r in rows
    ]
    assert got == want
    assert all(r["turn_server"] for r in rows)  # the allocation that relayed address came from


def test_lossy_streams(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    capture = public_capture(LOSSY)
    out = tmp_path / "lake"
    assert (
        main([str(capture), str(GRPC_EDGE), "--export", "parquet", "--output", str(out), "--no-plugins"]) == 0
    )
    capsys.readouterr()
    streams = report(capsys, capture, "streams")
    want = [(i, s["ssrc"], s["lost"], s["expected"]) for i, s in enumerate(streams) if (s["lost"] or 0) > 0]
    assert want
    rows = named(capsys, out, "lossy-streams")
    assert [(r["stream"], int(r["ssrc"], 16), r["lost"], r["expected"]) for r in rows] == want
    assert [r["loss_ratio"] for r in rows] == [round(w[2] / w[3], 4) for w in want]
    assert all(Path(r["capture_path"]).name == LOSSY for r in rows)


def test_list_with_a_dataset_names_its_tables(capsys: pytest.CaptureFixture[str], lake: Path) -> None:
    code, out, err = cli(capsys, "query", lake, "--list")
    assert (code, err) == (0, "")
    *queries, tables = out.splitlines()
    assert "slow-calls" in {line.split()[0] for line in queries}
    assert tables.startswith(f"tables in {lake}: ")
    assert {"captures", "packets", "flows", "findings", "calls"} <= set(tables.split(": ", 1)[1].split(", "))


def test_schema_module_into_a_closed_pipe_ends_quietly() -> None:
    """`python -m protoscope.inspector.lake.schema | head`: no BrokenPipeError traceback."""
    read, write = os.pipe()
    os.close(read)  # no reader from the start: the first write fails, whatever the timing
    try:
        done = subprocess.run(
            [sys.executable, "-m", "protoscope.inspector.lake.schema"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (141, "")
