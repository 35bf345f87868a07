"""lake/spark.py: the export as Spark tasks (local mode) gives the local run's dataset.

One SparkContext (`local[2]`) for the module: a JVM start costs seconds. The Spark tests need
java (.ci/run installs Debian's openjdk-17-jre-headless) and pyspark (the `spark` extra, pulled in
by the test extra): under CI=true they fail when either is missing, elsewhere they skip. The
tests of the task's own work (bytes in, a partition out) run without Spark.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protoscope.inspector import cli
from protoscope.inspector.lake import spark
from protoscope.inspector.lake.ids import capture_id
from protoscope.inspector.lake.runner import export_many
from tests.conftest import SAMPLES, public_captures, require_public, require_tool
from tests.inspector.lake.conftest import read_table

if TYPE_CHECKING:
    from pyspark import SparkContext

SOME_SAMPLES = ("grpc-demo.pcap", "loopback-basic.pcap", "webrtc-no-answer.pcap", "dtls-keys.pcap")
"""Samples beside the public corpus: gRPC, plain UDP/TCP, a WebRTC session, DTLS."""
SMALL = "loopback-basic.pcap"
LINE = re.compile(r"^\[(\d+)/(\d+)\] (.+?): (.*)$")


def lake_args(*extra: str) -> argparse.Namespace:
    """The CLI's options of an export (the registry every worker builds from them)."""
    return cli.parser().parse_args(["--no-plugins", *extra, "x.pcap"])


def require_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        message = "pyspark is not installed (the spark extra: pip install -e '.[test]')"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@dataclass
class Run:
    """One run_spark (or export_many) call: its exit code and its stderr lines."""

    code: int
    lines: list[str]


def run_spark(paths: list[str], output: Path, *extra: str) -> Run:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = spark.run_spark(paths, str(output), lake_args(*extra), None)
    return Run(code, err.getvalue().splitlines())


@pytest.fixture(scope="module")
def sc() -> Iterator[SparkContext]:
    """The module's SparkContext; run_spark uses it (and leaves it running)."""
    require_tool("java")
    require_pyspark()
    before = os.environ.get("PYSPARK_PYTHON")
    context, owned = spark.start_context("local[2]")
    assert owned, "a SparkContext was already running"
    yield context
    context.stop()
    if before is None:
        os.environ.pop("PYSPARK_PYTHON", None)


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    require_public()
    return [str(p) for p in public_captures()] + [str(SAMPLES / name) for name in SOME_SAMPLES]


@pytest.fixture(scope="module")
def spark_dir(
    sc: SparkContext, corpus: list[str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Run]:
    folder = tmp_path_factory.mktemp("spark") / "lake"
    return folder, run_spark(corpus, folder)


@pytest.fixture(scope="module")
def local_dir(corpus: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("local") / "lake"
    err = io.StringIO()
    assert export_many(corpus, str(folder), lake_args(), jobs=2, out=err) == 0, err.getvalue()
    return folder


def tables(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(("_", ".")))


def comparable(name: str, rows: list[dict[str, Any]]) -> list[str]:
    """A table's rows as sorted JSON texts: partitions are read in path order and rows keep their
    file order, so only `captures`' run-dependent columns need care: `exported_at` (when) and
    `path` (Spark names a local file `file:/...`)."""
    out = []
    for row in rows:
        if name == "captures":
            row = {**row, "exported_at": None, "path": re.sub(r"^file:", "", row["path"])}
        out.append(json.dumps(row, sort_keys=True, default=repr))
    return out


def test_spark_run_equals_local_run(spark_dir: tuple[Path, Run], local_dir: Path, corpus: list[str]) -> None:
    folder, run = spark_dir
    assert run.code == 0, run.lines
    assert tables(folder) == tables(local_dir)
    assert len(tables(folder)) >= 4
    for name in tables(folder):
        parts = sorted(p.name for p in (folder / name).iterdir())
        assert parts == sorted(p.name for p in (local_dir / name).iterdir()), name
        assert len(parts) == len({capture_id(p) for p in corpus}), name
        assert comparable(name, read_table(folder, name)) == comparable(name, read_table(local_dir, name)), (
            name
        )
    captured = {row["path"] for row in read_table(folder, "captures")}
    assert captured == {f"file:{os.path.abspath(p)}" for p in corpus}


def test_spark_run_prints_a_line_per_capture(spark_dir: tuple[Path, Run], corpus: list[str]) -> None:
    folder, run = spark_dir
    *lines, summary = run.lines
    assert summary == f"exported {len(corpus)}, skipped 0, failed 0 of {len(corpus)} captures to {folder}"
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    assert [int(m.group(1)) for m in matches if m] == list(range(1, len(corpus) + 1))
    assert {m.group(3) for m in matches if m} == {f"file:{os.path.abspath(p)}" for p in corpus}
    assert all(re.fullmatch(r"[\d,]+ packets, \d+ tables in \d+\.\d s", m.group(4)) for m in matches if m)


def test_second_run_skips_every_capture(spark_dir: tuple[Path, Run], corpus: list[str]) -> None:
    folder, _ = spark_dir
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*.parquet")}
    again = run_spark(corpus, folder)
    assert again.code == 0
    assert (
        again.lines[-1]
        == f"exported 0, skipped {len(corpus)}, failed 0 of {len(corpus)} captures to {folder}"
    )
    assert all(f"already in {folder} (capture " in line for line in again.lines[:-1])
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*.parquet")} == before


def test_a_bad_capture_fails_alone_and_the_same_bytes_go_once(sc: SparkContext, tmp_path: Path) -> None:
    caps = tmp_path / "caps"
    (caps / "sub").mkdir(parents=True)
    (caps / ".hidden").mkdir()
    shutil.copy(SAMPLES / SMALL, caps / "sub" / "good[1].pcap")
    shutil.copy(SAMPLES / SMALL, caps / "sub" / "same.pcap")
    (caps / "bad.pcapng").write_bytes(b"\x0a\x0d\x0d\x0a" + b"\xff" * 60)
    (caps / "notes.txt").write_text("not a capture")
    shutil.copy(SAMPLES / SMALL, caps / ".hidden" / "hidden.pcap")
    out = tmp_path / "lake"
    run = run_spark([str(caps), str(tmp_path / "missing.pcap")], out)
    assert run.code == 2
    *lines, summary = run.lines
    assert summary == f"exported 1, skipped 1, failed 2 of 4 captures to {out}"
    by_path = {m.group(3): m.group(4) for m in map(LINE.match, lines) if m}
    assert by_path[str(tmp_path / "missing.pcap")] == "FAILED: no such file or directory"
    bad = by_path[f"file:{caps}/bad.pcapng"]
    assert bad.startswith("FAILED: ") and "protoscope-spark-" not in bad
    # The two names of the same bytes run at once: one is written, the other skipped.
    pair = {f"file:{caps}/sub/good[1].pcap", f"file:{caps}/sub/same.pcap"}
    [written] = [uri for uri in pair if by_path[uri].endswith(" s")]
    [other] = pair - {written}
    cid = capture_id(SAMPLES / SMALL)
    assert by_path[other] in (
        f"same capture as {written} (capture {cid}), exported once",
        f"already in {out} (capture {cid})",
    )
    bad_id = capture_id(caps / "bad.pcapng")
    assert not list(out.glob(f"*/capture={bad_id}"))
    assert [r["path"] for r in read_table(out, "captures")] == [written]
    staging = out / "_staging"
    assert not staging.exists() or not any(staging.iterdir())


def test_captures_of_one_size_each_get_their_line(sc: SparkContext, tmp_path: Path) -> None:
    """Distinct captures of the same byte size are separate jobs, each reported on its own line
    and each written (they were once chained, reported only when all of them were done)."""
    caps = tmp_path / "caps"
    caps.mkdir()
    data = (SAMPLES / SMALL).read_bytes()
    for n in range(4):  # the last payload byte differs: same size, other bytes, other ids
        (caps / f"c{n}.pcap").write_bytes(data[:-1] + bytes([n]))
    out = tmp_path / "lake"
    run = run_spark([str(caps)], out)
    assert run.code == 0, run.lines
    *lines, summary = run.lines
    assert summary == f"exported 4, skipped 0, failed 0 of 4 captures to {out}"
    matches = [LINE.match(line) for line in lines]
    assert sorted(m.group(3) for m in matches if m) == [f"file:{caps}/c{n}.pcap" for n in range(4)]
    assert [int(m.group(1)) for m in matches if m] == [1, 2, 3, 4]
    assert all(m.group(4).endswith(" s") for m in matches if m)
    assert len({r["sha256"] for r in read_table(out, "captures")}) == 4


def test_module_runs_with_the_cli_options(sc: SparkContext, tmp_path: Path) -> None:
    """What spark-submit runs: the CLI's parser and checks, --master as spark-submit says it."""
    out = tmp_path / "lake"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = spark.main(["--no-plugins", "--output", str(out), str(SAMPLES / SMALL)])
    assert code == 0, err.getvalue()
    assert err.getvalue().splitlines()[-1] == f"exported 1, skipped 0, failed 0 of 1 captures to {out}"
    [capture] = read_table(out, "captures")
    assert [r["frame"] for r in read_table(out, "packets")] == list(range(1, capture["packets"] + 1))


def test_spark_submit_runs_the_file(tmp_path: Path) -> None:
    """The cluster's way in: spark-submit runs spark.py as a script (its own JVM, master local[1])."""
    require_tool("java")
    require_pyspark()
    import pyspark

    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    out = tmp_path / "lake"
    command = [str(submit), "--master", "local[1]", "--conf", "spark.ui.enabled=false", spark.__file__]
    command += ["--no-plugins", "--output", str(out), str(SAMPLES / SMALL)]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    # spark-submit hands the Python driver's stdout and stderr, merged, to its own stdout
    assert f"exported 1, skipped 0, failed 0 of 1 captures to {out}" in done.stdout.splitlines()
    assert [r["path"] for r in read_table(out, "captures")] == [f"file:{SAMPLES / SMALL}"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--export", "mermaid", "--output", "o", "a.pcap"], "exports parquet with the Spark engine"),
        (["--engine", "local", "--output", "o", "a.pcap"], "exports parquet with the Spark engine"),
        (["a.pcap"], "needs --output"),
        (["--output", "o"], "needs capture files"),
        (["--master", "local[1]", "--spark-master", "local[2]", "--output", "o", "a.pcap"], "master once"),
        (["--output", "o", "-Y", "udp", "a.pcap"], "-Y does not apply"),
        (["--output", "o", "-c", "5", "a.pcap"], "-c does not go with --export parquet"),
        (["--output", "o", "--jobs", "2", "a.pcap"], "--jobs goes with --engine local"),
    ],
)
def test_module_refuses_what_the_cli_refuses(argv: list[str], message: str) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert spark.main(argv) == 2
    assert message in err.getvalue()
    assert len(err.getvalue().splitlines()) == 1


def test_without_pyspark_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(__import__("sys").modules, "pyspark", None)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert spark.run_spark(["a.pcap"], str(tmp_path), lake_args(), None) == 2
    assert err.getvalue() == (
        "protoscope: --engine spark needs pyspark: pip install 'protoscope[spark]' (in a checkout: "
        "pip install -e '.[spark]')\n"
    )


# The task's own work, without Spark: bytes as Spark hands them over, exported.


def job(output: Path, *extra: str) -> spark.ExportJob:
    return spark.ExportJob(str(output), pickle.dumps(lake_args(*extra)))


def test_task_exports_bytes_under_their_uri(tmp_path: Path) -> None:
    data = (SAMPLES / SMALL).read_bytes()
    uri = "hdfs://namenode:8020/caps/x.pcap"
    result = spark.export_bytes(job(tmp_path / "lake"), uri, data)
    assert (result.path, result.status, result.capture) == (uri, "written", capture_id(SAMPLES / SMALL))
    assert [r["path"] for r in read_table(tmp_path / "lake", "captures")] == [uri]
    again = spark.export_bytes(job(tmp_path / "lake"), uri, data)
    assert (again.status, again.capture) == ("skipped", result.capture)


def test_task_reports_a_bad_capture_by_its_uri(tmp_path: Path) -> None:
    uri = "s3a://bucket/dir/bad.pcap"
    result = spark.export_bytes(job(tmp_path / "lake"), uri, b"\xd4\xc3\xb2\xa1" + b"\x00" * 7)
    assert (result.path, result.status) == (uri, "failed")
    assert result.error and "protoscope-spark-" not in result.error
    assert not (tmp_path / "lake" / "captures").exists()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_task_never_raises(tmp_path: Path, data: bytes) -> None:
    result = spark.export_bytes(job(tmp_path / "lake"), "file:/x.pcap", data)
    assert result.status in ("written", "failed", "skipped")


@pytest.mark.parametrize(
    ("uri", "name"),
    [
        ("file:/caps/a.pcap.gz", "a.pcap.gz"),
        ("s3a://bucket/run 1/ü$x.pcapng", "__x.pcapng"),
        ("hdfs://nn/caps/..pcap", "pcap"),
        ("s3a://bucket/", "bucket"),
        ("file:/" + "a" * 300 + ".pcap", "a" * 95 + ".pcap"),
    ],
)
def test_local_name(uri: str, name: str) -> None:
    assert spark.local_name(uri) == name


def test_escape_glob() -> None:
    assert spark.escape_glob("file:/a/b[1]{x}*?.pcap") == r"file:/a/b\[1\]\{x\}\*\?.pcap"


def test_spark_reason_takes_the_innermost_java_message() -> None:
    class Java:
        def __init__(self, text: str, cause: Java | None = None) -> None:
            self.text, self.cause = text, cause

        def getCause(self) -> Java | None:
            return self.cause

        def toString(self) -> str:
            return self.text

    class Py4JError(Exception):
        java_exception = Java(
            "SparkException: Job aborted\n\tat ...", Java("java.io.IOException: gone\n at x")
        )

    assert (
        spark.spark_reason(Py4JError("An error occurred while calling o1.runJob"))
        == "java.io.IOException: gone"
    )
    assert spark.spark_reason(ValueError("one\ntwo")) == "one"
