"""Many captures exported on a Spark cluster: `protoscope --engine spark --export parquet --output URI`.

The unit of work is the local runner's (runner.py): one capture, exported whole by
`export.export_capture` in one decoding pass. Spark brings the cluster and Hadoop's file systems:
the captures are listed and read through them (a plain path is on the cluster's default file
system; `file:`, `hdfs://`, `s3a://` ... as Hadoop knows them), each capture is one Spark job of
one task, and the task writes its bytes to a local temporary file and exports it there. The
driver prints the local runner's lines, one per capture as its job ends, and its final count.

The tables are written by `export_capture` through pyarrow's file systems, not by Spark's
DataFrameWriter: Spark stores timestamps in microseconds only (pcapng times are nanoseconds), and
the same code with the same commit protocol (staging, then partitions moved in, `captures` last)
makes the Spark dataset the local run's, byte for byte but for `captures.path` (the URI Spark
read, e.g. `file:/caps/a.pcap`) and `captures.exported_at`.

Run by spark-submit as `python -m protoscope.inspector.lake.spark --output URI CAPTURE...` (this
file), with the CLI's options.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import gc
import io
import os
import pickle
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any, Final

if __name__ == "__main__":
    # spark-submit runs this file as a script, its folder first on sys.path: there a sibling
    # module would hide the package of its name (communityid.py, the `communityid` package).
    _HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

# Absolute imports, for the same reason: run as a script, this file has no package.
from protoscope.inspector.lake import fsutil
from protoscope.inspector.lake.export import ExportResult, export_capture, one_line
from protoscope.inspector.lake.ids import id_of_digest, sha256_of
from protoscope.inspector.lake.runner import (
    CAPTURE_SUFFIXES,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Tally,
)
from protoscope.inspector.lake.writer import in_dataset
from protoscope.inspector.report.inert import clean

if TYPE_CHECKING:
    from pyspark import SparkContext

    from protoscope.decoders.registry import Registry

EXIT_USAGE: Final = 2
LOG_LEVEL: Final = "WARN"
LOCAL_MASTER: Final = "local[*]"
"""The master when neither the caller nor spark-submit names one: every local core."""
DEFAULT_CONF: Final = {
    "spark.app.name": "protoscope export",
    # WARN and ERROR only, from the SparkContext's start (spark-submit's default is INFO: pages).
    "spark.log.level": LOG_LEVEL,
    # numpy's OpenBLAS would start a spinning thread per core in every Python worker (cli.main).
    "spark.executorEnv.OPENBLAS_NUM_THREADS": "1",
    "spark.executorEnv.OMP_NUM_THREADS": "1",
}
"""Settings applied unless spark-defaults.conf or spark-submit --conf already give them."""
FORCED_CONF: Final = {"spark.ui.showConsoleProgress": "false"}
"""Settings applied whatever the defaults say: Spark's console progress bar (which pyspark turns on
for the gateway it launches) would garble the per-capture lines on the same stderr."""
JOBS_PER_CORE: Final = 4
"""Capture jobs kept submitted per core of the cluster: one runs while the next is scheduled."""
MAX_DRIVER_THREADS: Final = 64
"""Driver threads that wait for capture jobs, whatever the cluster's size (each holds a socket)."""
TEMP_NAME_CHARS: Final = 100
"""Longest local file name given to a capture's bytes (its URI's last part, made safe)."""
REASON_CHARS: Final = 300
"""Longest failure reason shown on a capture's line (Java's messages can be pages long)."""
HADOOP_GLOB: Final = re.compile(r"([\\*?\[\]{}])")
"""Hadoop's glob metacharacters: a listed file's name is escaped before it is read again."""
UNSAFE_NAME: Final = re.compile(r"[^A-Za-z0-9._-]")


@dataclasses.dataclass(frozen=True)
class ExportJob:
    """What every task needs, pickled once by the driver: the dataset and the CLI's options (a
    pickled argparse.Namespace, also the key of the worker's registry)."""

    output: str
    args: bytes


_worker_registry: tuple[bytes, Registry] | None = None
"""The decoders of a Python worker: built on its first task, kept while Spark reuses it
(spark.python.worker.reuse, on by default), rebuilt only for another run's options."""


def run_spark(paths: Sequence[str], output: str, args: argparse.Namespace, master: str | None = None) -> int:
    """Export every capture of `paths` (files, directories, Hadoop globs or URIs) to the dataset
    `output` on Spark (`master`, else spark-submit's, else local[*]), with the decoders and options
    of `args` (the CLI's). One stderr line per capture as it ends and one at the end; exit 0 when
    none failed, 2 when one did (or Spark could not start), 130 on Ctrl-C."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        print(
            "protoscope: --engine spark needs pyspark: pip install 'protoscope[spark]' (in a checkout: "
            "pip install -e '.[spark]')",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from protoscope.inspector.cli import checked_registry

    checked_registry(args)  # bad options: one line and exit 2 (cli.main) before a JVM starts
    try:
        fsutil.resolve(output)
    except (ValueError, OSError) as exc:
        print(f"protoscope: --output {output}: {_first_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    try:
        sc, owned = start_context(master)
    except Exception as exc:  # no Java, a bad master URL: pyspark's errors have no common class
        print(
            f"protoscope: Spark did not start: {_first_line(str(exc))} (Java 17+ on PATH or JAVA_HOME?)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    job = ExportJob(output, pickle.dumps(args))
    try:
        captures, missing = list_captures(sc, paths)
        tally = Tally(len(captures) + len(missing), output, sys.stderr)
        for path, why in missing:
            tally.fail(path, why)
        try:
            _run_jobs(sc, captures, job, tally)
        except KeyboardInterrupt:
            sc.cancelAllJobs()
            tally.summary(interrupted=True)
            return EXIT_INTERRUPTED
        tally.summary()
    finally:
        if owned:
            sc.stop()
    return EXIT_OK if tally.failed == 0 else EXIT_FAILED


def start_context(master: str | None = None) -> tuple[SparkContext, bool]:
    """The application's SparkContext and whether this call started it (then the caller stops
    it). An active one (a notebook's, a test's) is used as it is."""
    from pyspark import SparkConf, SparkContext

    active = SparkContext._active_spark_context
    if active is not None:
        return active, False
    # The JVM first (or spark-submit's, when it runs us): SparkConf() then holds what
    # spark-defaults.conf and spark-submit's flags say, and DEFAULT_CONF only fills the gaps.
    SparkContext._ensure_initialized()
    conf = SparkConf()
    for key, value in DEFAULT_CONF.items():
        conf.setIfMissing(key, value)
    conf.setAll(list(FORCED_CONF.items()))
    if master:
        conf.setMaster(master)
    elif not conf.contains("spark.master"):
        conf.setMaster(LOCAL_MASTER)
    if conf.get("spark.master", "").startswith("local") and "PYSPARK_PYTHON" not in os.environ:
        # Local workers are this machine's: they run this interpreter, where protoscope is
        # installed (pyspark's default is whatever `python3` is on PATH).
        os.environ["PYSPARK_PYTHON"] = sys.executable
    sc = SparkContext.getOrCreate(conf)
    sc.setLogLevel(LOG_LEVEL)
    return sc, True


@dataclasses.dataclass(frozen=True)
class Listed:
    """A capture found by Hadoop's listing: its URI and its size in bytes."""

    uri: str
    size: int


def list_captures(sc: SparkContext, paths: Sequence[str]) -> tuple[list[Listed], list[tuple[str, str]]]:
    """The captures `paths` name, as URIs of Hadoop's file systems, and the paths that name none
    with why. A file (or Hadoop glob match) is taken as it is; a directory gives every file inside,
    at any depth, whose name ends in CAPTURE_SUFFIXES and is not hidden (runner.captures_in's
    rule), sorted. Each URI once, in the order given."""
    jvm: Any = sc._jvm
    hadoop_conf = sc._jsc.hadoopConfiguration()
    found: dict[str, Listed] = {}
    missing: list[tuple[str, str]] = []
    for given in paths:
        try:
            path = jvm.org.apache.hadoop.fs.Path(given)
            fs = path.getFileSystem(hadoop_conf)
            statuses = fs.globStatus(path)
            if not statuses and HADOOP_GLOB.search(given) and os.path.exists(given):
                # A local file whose name has glob characters (a[1].pcap): the name itself.
                statuses = fs.globStatus(jvm.org.apache.hadoop.fs.Path(escape_glob(given)))
            if not statuses:
                missing.append((given, "no such file or directory"))
                continue
            for status in statuses:
                if status.isDirectory():
                    found.update((c.uri, c) for c in _captures_under(fs, status.getPath()))
                else:
                    uri = status.getPath().toString()
                    found[uri] = Listed(uri, int(status.getLen()))
        except Exception as exc:  # py4j's Java errors: no such file system, no permission ...
            missing.append((given, spark_reason(exc)))
    return list(found.values()), missing


def escape_glob(path: str) -> str:
    """`path` as a Hadoop glob that matches only itself (SparkContext.binaryFiles globs)."""
    return HADOOP_GLOB.sub(r"\\\1", path)


def _captures_under(fs: Any, folder: Any) -> list[Listed]:
    top = folder.toString().rstrip("/") + "/"
    files = fs.listFiles(folder, True)
    found: list[Listed] = []
    while files.hasNext():
        status = files.next()
        uri = status.getPath().toString()
        parts = uri[len(top) :].split("/") if uri.startswith(top) else [uri.rsplit("/", 1)[-1]]
        if parts[-1].lower().endswith(CAPTURE_SUFFIXES) and not any(p.startswith(".") for p in parts):
            found.append(Listed(uri, int(status.getLen())))
    return sorted(found, key=lambda c: c.uri)


def _run_jobs(sc: SparkContext, captures: Sequence[Listed], job: ExportJob, tally: Tally) -> None:
    """One Spark job per capture, a few per core at a time, each line printed as its job ends.

    One job per capture rather than one job over all of them: `binaryFiles` packs small files
    into one partition (up to spark.files.openCostInBytes, 4 MB, whatever minPartitions says), a
    job's results reach the driver only when all its tasks are done, and a capture Spark cannot
    read would fail the whole job. A job costs ~0.05-0.3 s of scheduling, paid concurrently.

    Two URIs holding the same bytes may run at once: the dataset's per-capture commit
    (writer.Staging.commit: a per-id lock, then a re-check) lets one write it and makes the other
    "skipped", as the local runner exports two paths to the same bytes once."""
    if not captures:
        return
    threads = min(len(captures), MAX_DRIVER_THREADS, max(2, JOBS_PER_CORE * sc.defaultParallelism))
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="protoscope-spark")
    written: dict[str, str] = {}
    """Capture id -> the URI exported with it in this run."""
    try:
        futures = {pool.submit(_export_safely, sc, capture.uri, job): capture.uri for capture in captures}
        for future in as_completed(futures):
            _report(tally, written, futures[future], future.result())
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


Outcome = list[ExportResult] | str
"""What a capture's job gave: its results (one, as a job reads one file), or why Spark failed."""


def _export_safely(sc: SparkContext, uri: str, job: ExportJob) -> Outcome:
    """Export one capture in its own job (never raises)."""
    try:
        return export_one(sc, uri, job)
    except Exception as exc:  # Spark could not read it, or its worker died
        return spark_reason(exc)


def _report(tally: Tally, written: dict[str, str], uri: str, outcome: Outcome) -> None:
    """The line of a capture whose job ended."""
    if isinstance(outcome, str):
        tally.fail(uri, outcome)
        return
    if not outcome:
        tally.fail(uri, "Spark read no file")
    for result in outcome:
        first = written.get(result.capture)
        if result.status == "skipped" and first is not None and first != result.path:
            why = f"same capture as {clean(first)} (capture {result.capture}), exported once"
            tally.skip(result.path, why)
            continue
        if result.status == "written":
            written[result.capture] = result.path
        tally.result(result.path, result)


def export_one(sc: SparkContext, uri: str, job: ExportJob) -> list[ExportResult]:
    """Export the capture at `uri` in one Spark task (blocks until it is done)."""
    rdd = sc.binaryFiles(escape_glob(uri))  # one file: one partition, one task
    return sc.runJob(rdd, functools.partial(export_records, job))


def export_records(job: ExportJob, records: Iterable[tuple[str, bytes]]) -> Iterator[ExportResult]:
    """A task: each (URI, bytes) record Spark read, exported (runs in a Python worker)."""
    for uri, content in records:
        yield export_bytes(job, uri, content)


def export_bytes(job: ExportJob, uri: str, content: bytes) -> ExportResult:
    """Export one capture's bytes: its id, nothing more when the dataset has it already, else
    the bytes as a local temporary file given to export_capture. Never raises for a capture."""
    start = time.perf_counter()
    capture = ""
    try:
        digest = sha256_of(io.BytesIO(content))
        capture = id_of_digest(digest)
        fs, root = fsutil.resolve(job.output)
        if in_dataset(fs, root, capture):
            return ExportResult(uri, capture, "skipped", seconds=time.perf_counter() - start)
        registry = _registry(job.args)
        with tempfile.TemporaryDirectory(prefix="protoscope-spark-", dir=_local_dir()) as folder:
            local = os.path.join(folder, local_name(uri))
            with open(local, "wb") as f:
                f.write(content)
            result = export_capture(local, job.output, registry, source=uri, capture=capture, sha256=digest)
        error = result.error.replace(local, uri) if result.error else None
        return dataclasses.replace(result, path=uri, error=error)
    except Exception as exc:  # the local disk is full, the dataset's file system refuses us ...
        reason = one_line(exc)[:REASON_CHARS]
        return ExportResult(uri, capture, "failed", seconds=time.perf_counter() - start, error=reason)


def _registry(args: bytes) -> Registry:
    """The worker's decoders for the pickled options `args` (built once per worker)."""
    global _worker_registry
    if _worker_registry is not None and _worker_registry[0] == args:
        return _worker_registry[1]
    for threads in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(threads, "1")
    from protoscope.inspector.cli import checked_registry

    with contextlib.redirect_stderr(io.StringIO()):  # the driver printed the warnings
        registry = checked_registry(pickle.loads(args))
    # As cli.main does, for the same reason: the imports' objects are never rescanned, and a
    # collection runs every 10,000 allocations rather than 700 (decoding makes millions).
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
    _worker_registry = (args, registry)
    return registry


def _local_dir() -> str | None:
    """The executor's local disk for the temporary capture (SPARK_LOCAL_DIRS, set by YARN and
    standalone workers), else the system's temporary directory."""
    dirs = [d for d in os.environ.get("SPARK_LOCAL_DIRS", "").split(",") if d and os.path.isdir(d)]
    return dirs[0] if dirs else None


def local_name(uri: str) -> str:
    """A safe local file name for the capture at `uri`: its last part, with its suffixes (the
    errors export_capture reports name it)."""
    name = UNSAFE_NAME.sub("_", uri.rstrip("/").rsplit("/", 1)[-1]).lstrip(".")
    return name[-TEMP_NAME_CHARS:] or "capture"


def spark_reason(exc: BaseException) -> str:
    """One line for a failed Spark job: the innermost Java exception's message (a py4j error
    carries the whole driver stack trace), else the exception's first line."""
    java: Any = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            while java.getCause() is not None:
                java = java.getCause()
            return _first_line(str(java.toString()))
        except Exception:  # the gateway is gone: the Python side's text will do
            pass
    return _first_line(str(exc) or type(exc).__name__)


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:REASON_CHARS]


def _parser() -> argparse.ArgumentParser:
    """The CLI's parser (every option means what it means there) and spark-submit's word for the
    master URL (the CLI's --spark-master works too)."""
    from protoscope.inspector.cli import parser

    p = parser()
    p.prog = "python -m protoscope.inspector.lake.spark"
    p.add_argument(
        "--master",
        metavar="URL",
        help=f"Spark master (spark://, yarn, k8s://, local[N]); default: spark-submit's, else {LOCAL_MASTER}",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m protoscope.inspector.lake.spark --output URI [--master URL] CAPTURE...`: what
    spark-submit runs (then the master is spark-submit's). The CLI's `--export parquet --engine
    spark`, checked and run by the CLI's own code, with its exit codes and one-line errors."""
    from protoscope.captures.errors import CaptureError
    from protoscope.decoders.protobuf.schema import SchemaError
    from protoscope.decoders.registry import RegistryError
    from protoscope.inspector.cli import run
    from protoscope.inspector.livemode import UsageError

    try:
        args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.export not in (None, "parquet") or args.engine not in (None, "spark"):
        print(f"protoscope: {clean(_parser().prog)} exports parquet with the Spark engine", file=sys.stderr)
        return EXIT_USAGE
    if args.master and args.spark_master and args.master != args.spark_master:
        print("protoscope: give the master once (--master or --spark-master)", file=sys.stderr)
        return EXIT_USAGE
    args.export, args.engine = "parquet", "spark"
    args.spark_master = args.master or args.spark_master
    try:
        return run(args, sys.stdout)
    except (CaptureError, RegistryError, SchemaError, UsageError) as exc:
        print(f"protoscope: {clean(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    # Run as a file (spark-submit .../spark.py), this module is `__main__`, whose functions
    # cloudpickle would ship by value (each task a fresh copy, its registry rebuilt): the tasks
    # get the installed module's, shipped by name.
    from protoscope.inspector.lake.spark import main as installed_main

    sys.exit(installed_main())
