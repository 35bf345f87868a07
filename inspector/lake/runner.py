"""Many captures exported to one dataset on the local cores: `protoscope CAPTURE... --export parquet`.

Each capture is exported whole by one process (`export.export_capture`: one decoding pass, every
table), so captures, not packets, are the unit of parallel work, as Spark's tasks are. Before any
work every capture's id is computed: a capture already in the dataset is skipped (an interrupted
run resumes where it stopped), and two paths to the same bytes are exported once. A capture that
fails is reported on its line and the others go on; the exit code says whether any failed, so a
capture that still fails on a second run still fails it (exit 2) although every other is skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TextIO

import pyarrow.fs as pafs

from ..report.inert import clean
from . import fsutil
from .export import ExportResult, export_capture
from .ids import capture_id

if TYPE_CHECKING:
    from protoscope.decoders.registry import Registry

CAPTURE_SUFFIXES: Final = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")
"""What a directory given as CAPTURE contributes: the files ending so, at any depth."""
STAGING: Final = "_staging"
"""export.py's work-in-progress directory under the dataset (a leading '_': never read)."""
EXIT_OK: Final = 0
EXIT_FAILED: Final = 2
EXIT_INTERRUPTED: Final = 130
"""Ctrl-C, as the shell reports a process ended by SIGINT (128 + 2)."""

_registry: Registry | None = None
"""The decoders a worker process exports with: the parent's, inherited when the pool forks (one
build, one set of warnings, one --reflect), else built once by the worker's initializer."""


def captures_in(paths: Sequence[str]) -> list[str]:
    """The captures CAPTURE... names: a file (or a URI) as given, a directory as every file inside
    it, at any depth, whose name ends in CAPTURE_SUFFIXES, sorted. A path that does not exist is
    kept: its export fails with its own line, and the others go on."""
    found: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            found.extend(sorted(_captures_under(path)))
        else:
            found.append(path)
    return found


def _captures_under(folder: str) -> Iterator[str]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.lower().endswith(CAPTURE_SUFFIXES) and not name.startswith("."):
                yield os.path.join(root, name)


@dataclass(frozen=True, slots=True)
class Planned:
    """A capture to export: its path (as given) and its id."""

    path: str
    capture: str


class _Tally:
    """The progress lines (`[3/64] caps/a.pcap: ...`, one as each capture ends) and the counts of
    the final line."""

    def __init__(self, total: int, output: str, out: TextIO) -> None:
        self.total, self.output, self.out = total, output, out
        self.done = self.exported = self.skipped = self.failed = 0

    def line(self, path: str, text: str) -> None:
        self.done += 1
        self.out.write(f"[{self.done}/{self.total}] {clean(path)}: {text}\n")
        self.out.flush()

    def skip(self, path: str, why: str) -> None:
        self.skipped += 1
        self.line(path, why)

    def fail(self, path: str, why: str) -> None:
        self.failed += 1
        self.line(path, f"FAILED: {clean(why)}")

    def result(self, path: str, result: ExportResult) -> None:
        if result.status == "written":
            self.exported += 1
            tables = len(result.rows)
            self.line(path, f"{result.packets:,} packets, {tables} tables in {result.seconds:.1f} s")
        elif result.status == "skipped":
            self.skip(path, f"already in {clean(self.output)} (capture {result.capture})")
        else:
            self.fail(path, result.error or "export failed")

    def summary(self, interrupted: bool = False) -> None:
        head = "interrupted: " if interrupted else ""
        self.out.write(
            f"{head}exported {self.exported}, skipped {self.skipped}, failed {self.failed} of "
            f"{self.total} captures to {clean(self.output)}\n"
        )
        self.out.flush()


def export_many(
    paths: Sequence[str],
    output: str,
    args: argparse.Namespace,
    jobs: int | None = None,
    out: TextIO | None = None,
) -> int:
    """Export every capture of `paths` (files; see captures_in) to the dataset `output` with
    `jobs` processes (default: one a core), the decoders and options of `args` (the CLI's). One
    line on `out` (stderr) per capture as it ends and one at the end. Exit code: 0 when none
    failed, 2 when one did, 130 on Ctrl-C (the captures not finished are not in the dataset)."""
    from ..cli import _checked_registry

    global _registry
    stream = out if out is not None else sys.stderr
    tally = _Tally(len(paths), output, stream)
    # Options are checked (and schemas compiled, --reflect asked) once, here, before any work:
    # a bad one is one line and exit 2 (cli.main), and forked workers inherit the result.
    _registry = _checked_registry(args)
    try:
        fs, root = fsutil.resolve(output)
        if fs.get_file_info(root).type == pafs.FileType.File:
            stream.write(f"protoscope: --output {clean(output)} is a file, not a dataset directory\n")
            return EXIT_FAILED
        todo = _plan(paths, fs, root, tally)
    except (ValueError, OSError) as exc:  # pyarrow's errors are both: a bad URI, no network
        stream.write(f"protoscope: --output {clean(output)}: {_first_line(exc)}\n")
        return EXIT_FAILED
    count = int(getattr(args, "count", 0) or 0)
    workers = max(1, min(jobs or os.cpu_count() or 1, len(todo)))
    try:
        if workers == 1:
            for job in todo:
                tally.result(job.path, _export_one(job.path, output, job.capture, count))
        else:
            _in_pool(todo, output, count, args, workers, tally, fs, root)
    except KeyboardInterrupt:
        tally.summary(interrupted=True)
        return EXIT_INTERRUPTED
    tally.summary()
    return EXIT_OK if tally.failed == 0 else EXIT_FAILED


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return clean(lines[0]) if lines else type(exc).__name__


def _plan(paths: Sequence[str], fs: pafs.FileSystem, root: str, tally: _Tally) -> list[Planned]:
    """The captures to export, in the order given: those not yet in the dataset, each id once.
    Unreadable files, duplicates and captures already in the dataset get their line here."""
    first: dict[str, str] = {}
    todo: list[Planned] = []
    for path in paths:
        try:
            cid = capture_id(path)
        except OSError as exc:
            tally.fail(path, f"cannot read: {exc.strerror or exc}")
            continue
        if cid in first:
            tally.skip(path, f"same capture as {clean(first[cid])} (capture {cid}), exported once")
            continue
        first[cid] = path
        if fsutil.is_dir(fs, fsutil.join(root, "captures", f"capture={cid}")):
            tally.skip(path, f"already in {clean(tally.output)} (capture {cid})")
            continue
        todo.append(Planned(path, cid))
    return todo


def _export_one(path: str, output: str, capture: str, count: int) -> ExportResult:
    """One capture, in a worker process (or the parent with --jobs 1)."""
    if _registry is None:  # not reachable: the initializer or export_many sets it
        raise RuntimeError("the worker has no registry")
    # The captures table says where the file was whatever the directory the run started in.
    source = os.path.abspath(path)
    return export_capture(path, output, _registry, count=count, source=source, capture=capture)


def _start_worker(args: argparse.Namespace) -> None:
    """A worker process's start: Ctrl-C is the parent's to handle (a worker would print a
    traceback), and the decoders are built unless inherited by fork."""
    global _registry
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if _registry is None:
        from ..cli import _checked_registry

        with contextlib.redirect_stderr(io.StringIO()):  # the parent printed the warnings
            _registry = _checked_registry(args)


def _pool_context() -> multiprocessing.context.BaseContext:
    """fork where there is one (Linux): the workers start at once with the parent's imports and
    its registry; spawn elsewhere."""
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


def _in_pool(
    todo: Sequence[Planned],
    output: str,
    count: int,
    args: argparse.Namespace,
    workers: int,
    tally: _Tally,
    fs: pafs.FileSystem,
    root: str,
) -> None:
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=_pool_context(), initializer=_start_worker, initargs=(args,)
    )
    try:
        futures: dict[Future[ExportResult], Planned] = {
            pool.submit(_export_one, job.path, output, job.capture, count): job for job in todo
        }
        for future in as_completed(futures):
            job = futures[future]
            try:
                tally.result(job.path, future.result())
            except BrokenProcessPool:
                # A worker was killed (out of memory, a signal): the captures it and the pool
                # had in hand cannot be told apart, so each is reported failed; none is in DIR.
                tally.fail(job.path, "a worker process died (out of memory or killed?)")
            except Exception as exc:  # export_capture never raises for a capture; this is a bug
                tally.fail(job.path, f"internal error: {type(exc).__name__}: {exc}")
    except KeyboardInterrupt:
        _stop(pool, lambda pids: _remove_staging(fs, root, pids))
        raise
    pool.shutdown(wait=True)


def _stop(pool: ProcessPoolExecutor, cleanup: Callable[[set[int]], None]) -> None:
    """Ctrl-C: nothing more starts, the workers (ours, by pid) are ended, and their unfinished
    staging directories removed (a finished capture was renamed into DIR whole, or not at all)."""
    processes = dict(getattr(pool, "_processes", None) or {})
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes.values():
        if process.is_alive():
            process.terminate()
    for process in processes.values():
        process.join(timeout=10)
    cleanup(set(processes))


def _remove_staging(fs: pafs.FileSystem, root: str, pids: set[int]) -> None:
    """Remove DIR/_staging/<id>.<pid>.<random> of the workers `pids` (export.py's names)."""
    staging = fsutil.join(root, STAGING)
    try:
        entries = fs.get_file_info(pafs.FileSelector(staging, allow_not_found=True))
    except OSError:
        return
    for entry in entries:
        parts = entry.base_name.split(".")
        if len(parts) >= 3 and parts[1].isdigit() and int(parts[1]) in pids:
            with contextlib.suppress(OSError):
                fs.delete_dir(entry.path)
