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
import ctypes
import io
import multiprocessing
import os
import queue
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any, Final, TextIO

import pyarrow.fs as pafs

from ..report.inert import clean
from . import fsutil, ids
from .export import ExportResult, export_capture
from .writer import STAGING, in_dataset, staging_owner

if TYPE_CHECKING:
    from protoscope.decoders.registry import Registry

CAPTURE_SUFFIXES: Final = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")
"""What a directory given as CAPTURE contributes: the files ending so, at any depth."""
EXIT_OK: Final = 0
EXIT_FAILED: Final = 2
EXIT_INTERRUPTED: Final = 130
"""Ctrl-C, as the shell reports a process ended by SIGINT (128 + 2)."""
EXIT_TERMINATED: Final = 143
"""SIGTERM (a timeout, systemd's stop, a CI cancel), as the shell reports it (128 + 15)."""
PR_SET_PDEATHSIG: Final = 1
"""Linux prctl option: the signal a process gets when its parent dies (<linux/prctl.h>)."""
STOP_WAIT: Final = 10.0
"""Seconds Ctrl-C waits for the workers it ended before removing their staging directories."""

_registry: Registry | None = None
"""The decoders a worker process exports with: the parent's, inherited when the pool forks (one
build, one set of warnings, one --reflect), else built once by the worker's initializer."""
_started: Any = None
"""A worker's end of the pool's "started" queue (a multiprocessing queue): (pid, capture id) put
as each export begins, so that the parent knows which captures were in hand, and in which
process, when a worker dies (the pool's own bookkeeping of its processes is private)."""


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
    """A capture to export: its path (as given), its id and the SHA-256 of its bytes."""

    path: str
    capture: str
    sha256: str


def without_path(why: str, path: str) -> str:
    """A failure's reason without the capture's own path, which its line starts with already: a
    capture error says "caps/a.pcap: not a capture file ...", an OSError "Permission denied:
    caps/a.pcap" (export.one_line); the path of any other file (the dataset's) is kept."""
    if path and why.startswith(f"{path}: "):
        return why[len(path) + 2 :]
    if path and why.endswith(f": {path}"):
        return why[: -len(path) - 2]
    return why


class Tally:
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
        self.line(path, f"FAILED: {clean(without_path(why, path))}")

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


class Terminated(KeyboardInterrupt):
    """SIGTERM received by the parent: stopped as Ctrl-C stops it (a KeyboardInterrupt, so that
    every `except KeyboardInterrupt` on the way cleans up), exit 143 rather than 130."""


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises Terminated in the main thread for the time of the run (elsewhere, or in a
    thread, Python lets only the main thread set handlers: the default stays)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
    stream = out if out is not None else sys.stderr
    tally = Tally(len(paths), output, stream)
    try:
        with _sigterm_as_interrupt():
            return _export_many(paths, output, args, jobs, tally)
    except KeyboardInterrupt as exc:
        tally.summary(interrupted=True)
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED


def _export_many(
    paths: Sequence[str], output: str, args: argparse.Namespace, jobs: int | None, tally: Tally
) -> int:
    from ..cli import checked_registry

    global _registry
    stream = tally.out
    # Options are checked (and schemas compiled, --reflect asked) once, here, before any work:
    # a bad one is one line and exit 2 (cli.main), and forked workers inherit the result.
    _registry = checked_registry(args)
    try:
        fs, root = fsutil.resolve(output)
        if fs.get_file_info(root).type == pafs.FileType.File:
            stream.write(f"protoscope: --output {clean(output)} is a file, not a dataset directory\n")
            return EXIT_FAILED
        _remove_dead_staging(fs, root)
        todo = _plan(paths, fs, root, tally)
    except (ValueError, OSError) as exc:  # pyarrow's errors are both: a bad URI, no network
        stream.write(f"protoscope: --output {clean(output)}: {_first_line(exc)}\n")
        return EXIT_FAILED
    workers = max(1, min(jobs or os.cpu_count() or 1, len(todo)))
    pool = Pool(output, args, fs, root, tally)
    if workers == 1:
        for job in todo:
            tally.result(job.path, _export_one(job.path, output, job.capture, job.sha256))
    else:
        pool.run(todo, workers)
    tally.summary()
    return EXIT_OK if tally.failed == 0 else EXIT_FAILED


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return clean(lines[0]) if lines else type(exc).__name__


def _plan(paths: Sequence[str], fs: pafs.FileSystem, root: str, tally: Tally) -> list[Planned]:
    """The captures to export, in the order given: those not yet in the dataset, each id once.
    Unreadable files, duplicates and captures already in the dataset get their line here."""
    first: dict[str, str] = {}
    todo: list[Planned] = []
    for path in paths:
        try:
            digest = ids.sha256(path)
        except OSError as exc:
            tally.fail(path, f"cannot read: {exc.strerror or exc}")
            continue
        cid = ids.id_of_digest(digest)
        if cid in first:
            tally.skip(path, f"same capture as {clean(first[cid])} (capture {cid}), exported once")
            continue
        first[cid] = path
        if in_dataset(fs, root, cid):
            tally.skip(path, f"already in {clean(tally.output)} (capture {cid})")
            continue
        todo.append(Planned(path, cid, digest))
    return todo


def _export_one(path: str, output: str, capture: str, sha256: str) -> ExportResult:
    """One capture, in a worker process (or the parent with --jobs 1)."""
    if _registry is None:  # not reachable: the initializer or export_many sets it
        raise RuntimeError("the worker has no registry")
    if _started is not None:
        _started.put((os.getpid(), capture))
    # The captures table says where the file was whatever the directory the run started in.
    source = os.path.abspath(path)
    return export_capture(path, output, _registry, source=source, capture=capture, sha256=sha256)


def _start_worker(args: argparse.Namespace, started: Any, parent: int | None = None) -> None:
    """A worker process's start: Ctrl-C is the parent's to handle (a worker would print a
    traceback), SIGTERM ends it at once (the parent's handler, inherited by fork, is not its own),
    it dies with its parent (a parent killed by SIGKILL leaves no worker running on), the queue
    its exports are announced on, and the decoders, built unless inherited by fork."""
    global _registry, _started
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(parent)
    _started = started
    if _registry is None:
        from ..cli import checked_registry

        with contextlib.redirect_stderr(io.StringIO()):  # the parent printed the warnings
            _registry = checked_registry(args)


def _die_with_parent(parent: int | None) -> None:
    """Linux: SIGTERM to this process when its parent dies (prctl PR_SET_PDEATHSIG); if the
    parent `parent` is already gone (it died before the call), exit now. Elsewhere nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if parent is not None and os.getppid() != parent:
        os._exit(EXIT_TERMINATED)


def _alone(
    args: argparse.Namespace, job: Planned, output: str, result: Any, parent: int | None = None
) -> None:
    """A capture exported by a process of its own (a suspect of a pool that broke): its result
    sent through the pipe `result`."""
    _start_worker(args, None, parent)
    result.send(_export_one(job.path, output, job.capture, job.sha256))
    result.close()


def _pool_context() -> Any:
    """fork where there is one (Linux): the workers start at once with the parent's imports and
    its registry; spawn elsewhere. (Typed Any: typeshed's BaseContext has no Process, which every
    concrete context has.)"""
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


class Pool:
    """The captures exported by worker processes, surviving the death of one.

    A worker killed by the kernel (out of memory) or a signal breaks a ProcessPoolExecutor: every
    capture not yet finished then fails with BrokenProcessPool, whichever was the cause. Here the
    captures a worker had begun (announced on the "started" queue) are the suspects: their
    staging directories are removed and each is exported again alone, in a process of its own,
    so that the capture that kills its process fails by itself with the signal that ended it.
    The captures no worker had begun go to a new pool."""

    def __init__(
        self, output: str, args: argparse.Namespace, fs: pafs.FileSystem, root: str, tally: Tally
    ) -> None:
        self.output, self.args, self.fs, self.root, self.tally = output, args, fs, root, tally
        self.context = _pool_context()

    def run(self, todo: Sequence[Planned], workers: int) -> None:
        pending = list(todo)
        suspects: list[Planned] = []
        while pending:
            began, pending = self._round(pending, workers)
            suspects.extend(began)
        for job in suspects:
            self._alone(job)

    def _round(self, todo: Sequence[Planned], workers: int) -> tuple[list[Planned], list[Planned]]:
        """Export `todo` in one pool. When it breaks: the captures begun and not finished, and those
        not begun (none is in the dataset, each is still to report)."""
        started = self.context.SimpleQueue()
        pool = ProcessPoolExecutor(
            max_workers=min(workers, len(todo)),
            mp_context=self.context,
            initializer=_start_worker,
            initargs=(self.args, started, os.getpid()),
        )
        begun: dict[str, int] = {}
        """Capture id -> the pid of the worker that began it."""
        finished: set[str] = set()
        try:
            futures: dict[Future[ExportResult], Planned] = {
                pool.submit(_export_one, job.path, self.output, job.capture, job.sha256): job for job in todo
            }
            broken = False
            for future in as_completed(futures):
                job = futures[future]
                try:
                    result = future.result()
                except BrokenProcessPool:
                    broken = True
                    continue
                except Exception as exc:  # export_capture never raises for a capture; a bug
                    self.tally.fail(job.path, f"internal error: {type(exc).__name__}: {exc}")
                else:
                    self.tally.result(job.path, result)
                finished.add(job.capture)
                _drain(started, begun)  # as they come: a full pipe would block the workers
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            _drain(started, begun)
            _stop(set(begun.values()))
            _remove_staging(self.fs, self.root, set(begun.values()))
            raise
        pool.shutdown(wait=True)
        if not broken:
            return [], []
        _drain(started, begun)
        unfinished = [job for job in todo if job.capture not in finished]
        # The executor ended every worker when it broke: what they staged is nobody's now.
        _remove_staging(self.fs, self.root, set(begun.values()))
        began = [job for job in unfinished if job.capture in begun]
        rest = [job for job in unfinished if job.capture not in begun]
        if not began:  # a worker died before any export began (its start failed): each alone
            return rest, []
        return began, rest

    def _alone(self, job: Planned) -> None:
        """Export `job` in a process of its own; its line says how that process died, if it did."""
        receive, send = self.context.Pipe(duplex=False)
        process = self.context.Process(target=_alone, args=(self.args, job, self.output, send, os.getpid()))
        process.start()
        send.close()
        try:
            try:
                result: ExportResult | None = receive.recv()
            except EOFError:
                result = None
            process.join()
        except KeyboardInterrupt:
            process.terminate()
            process.join(STOP_WAIT)
            _remove_staging(self.fs, self.root, {process.pid} if process.pid else set())
            raise
        finally:
            receive.close()
        if result is not None:
            self.tally.result(job.path, result)
            return
        if process.pid:
            _remove_staging(self.fs, self.root, {process.pid})
        self.tally.fail(job.path, f"worker died: {_death(process.exitcode)}")


def _death(exitcode: int | None) -> str:
    """How a process ended, as a shell says it ("killed by signal 9 (SIGKILL)")."""
    if exitcode is None:
        return "no exit status"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            return f"killed by signal {-exitcode}"
        hint = ": out of memory?" if -exitcode == signal.SIGKILL else ""
        return f"killed by signal {-exitcode} ({name}{hint})"
    return f"exit status {exitcode}"


def _drain(started: Any, begun: dict[str, int]) -> None:
    """Read what the workers announced: capture id -> pid."""
    with contextlib.suppress(OSError, EOFError, queue.Empty):
        while not started.empty():
            pid, capture = started.get()
            begun[capture] = pid


def _stop(pids: set[int]) -> None:
    """Ctrl-C: end the workers `pids` that are still our children (ours, by pid: an idle worker
    leaves by itself once the pool is shut down) and wait until they are gone (the pool reaps
    them), STOP_WAIT seconds at most."""
    for pid in pids:
        if _is_child(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT
    while any(_is_child(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)


def _is_child(pid: int) -> bool:
    """Whether `pid` is a live process whose parent is this one (never signal another's)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:  # gone, or no /proc (macOS: the pool's own shutdown ends the workers)
        return False
    fields = stat.rsplit(")", 1)[-1].split()
    return len(fields) > 1 and fields[1] == str(os.getpid()) and fields[0] != "Z"


def _remove_staging(fs: pafs.FileSystem, root: str, pids: set[int]) -> None:
    """Remove DIR/_staging/<id>.<pid>.<random> of the workers `pids` (writer.Staging's names)."""
    staging = fsutil.join(root, STAGING)
    try:
        entries = fs.get_file_info(pafs.FileSelector(staging, allow_not_found=True))
    except OSError:
        return
    for entry in entries:
        if staging_owner(entry.base_name) in pids:
            with contextlib.suppress(OSError):
                fs.delete_dir(entry.path)


def _remove_dead_staging(fs: pafs.FileSystem, root: str) -> None:
    """Remove what exports killed outright (kill -9, a power cut) left in DIR/_staging: the
    directories of this host (writer.staging_name) whose pid is no process any more. Only on a
    local file system (an object store has no rename to stage with); another host's directory
    and a live pid's are never touched."""
    if not isinstance(fs, pafs.LocalFileSystem):
        return
    staging = fsutil.join(root, STAGING)
    try:
        entries = fs.get_file_info(pafs.FileSelector(staging, allow_not_found=True))
    except OSError:
        return
    dead: set[int] = set()
    for entry in entries:
        pid = staging_owner(entry.base_name)
        if (
            entry.type == pafs.FileType.Directory
            and pid is not None
            and pid != os.getpid()
            and not _alive(pid)
        ):
            dead.add(pid)
    if dead:
        _remove_staging(fs, root, dead)


def _alive(pid: int) -> bool:
    """Whether a process `pid` exists on this host (any user's)."""
    if pid <= 0:
        return True  # not a pid a Staging writes: leave it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's
        return True
    return True
