"""Live capture: a capture process (captures/capturer.py) spools pcapng that the pipeline reads.

The spool is the single source of truth: live and file captures go through the same readers.
`LiveCapture` starts `python -m protoscope.captures.capturer` and keeps `stats` current from the
status lines it prints (a small reader thread); pause, resume and stop are words sent to it.

Spool writes are batched in the capture process: the packets' blocks are written, whole, when 1 MiB
is buffered or when the oldest buffered packet has waited 100 ms, so the viewer reads a packet within
~200 ms of its arrival (libpcap hands a ring block over within 100 ms) and the spool never holds a
block cut short except after a failed write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .errors import CaptureError
from .options import CaptureOptions, RingOptions, parse_ring

__all__ = [
    "CaptureError",
    "CaptureOptions",
    "LiveCapture",
    "LiveStats",
    "RingOptions",
    "parse_ring",
    "spool_path",
]

START_TIMEOUT = 30.0
"""Seconds start() waits for the capture process to say "started" or why not (a Python start-up
and a libpcap open take ~0.1 s; a loaded CI machine may take much longer)."""
STOP_TIMEOUT = 10.0
"""Seconds stop() waits for the capture process to write its last blocks before killing it."""


@dataclass(slots=True)
class LiveStats:
    spool: Path
    """The file being written (with a ring buffer, the newest of `files`)."""
    packets: int = 0
    """Packets written to the spool (isb_usrdeliv)."""
    bytes: int = 0
    """Bytes of packet data written."""
    dropped: int | None = None
    """Packets the kernel dropped because the capture read too slowly (ps_drop); None until the
    capture has started."""
    skipped: int = 0
    """Packets that arrived while the capture was paused (seen, not kept)."""
    received: int = 0
    """Packets that passed the filter (libpcap's ps_recv, tcpdump's "received by filter"; on `lo`
    it counts the outgoing copy of each packet too, which libpcap then leaves out, as tcpdump)."""
    kernel_dropped: int = 0
    """Same as `dropped`, always a number."""
    if_dropped: int = 0
    """Packets the interface dropped (ps_ifdrop)."""
    dropped_by_us: int = 0
    """Packets libpcap delivered that are not in the spool: `skipped`, and any lost with a write
    that failed."""
    files: list[Path] = field(default_factory=list)
    """The spool files on disk (one, or the ring buffer's, oldest first)."""


_TEMPORARY: set[Path] = set()
"""Temporary spools `spool_path` made in this process: a capture that fails to start removes its
own (a user's `-w` file is never removed)."""


def spool_path(requested: str | None) -> tuple[Path, bool]:
    """The spool file to write: the user's `-w` path, else a new temporary file (printed)."""
    if requested:
        return Path(requested), False
    fd, name = tempfile.mkstemp(prefix="protoscope-live-", suffix=".pcapng")
    os.close(fd)
    _TEMPORARY.add(Path(name))
    return Path(name), True


class LiveCapture:
    """Capture into `spool` in a capture process of its own until the options' count or duration,
    or stop(); pause() keeps the interfaces open but stops keeping packets.

    Takes CaptureOptions, or (the older form) an interface name with bpf, count and duration."""

    def __init__(
        self,
        options: CaptureOptions | str,
        spool: Path,
        bpf: str | None = None,
        count: int = 0,
        duration: float | None = None,
    ) -> None:
        if isinstance(options, str):
            options = CaptureOptions((options,), bpf=bpf, count=count, duration=duration)
        self.options = options
        self.iface = ", ".join(options.interfaces)
        self.stats = LiveStats(Path(spool))
        self.error: CaptureError | None = None
        self._spool = Path(spool)
        self._paused = False
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._started = threading.Event()
        self._ended = threading.Event()
        self._refusal: str | None = None
        self._lock = threading.Lock()

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def running(self) -> bool:
        """Whether the capture is still taking packets (False once count or duration is reached,
        a write failed, or stop() was called)."""
        return self._process is not None and self._started.is_set() and not self._ended.is_set()

    def pause(self) -> None:
        self._paused = True
        self._tell("pause")

    def resume(self) -> None:
        self._paused = False
        self._tell("resume")

    def _tell(self, word: str) -> None:
        process = self._process
        if process is None or process.stdin is None:
            return
        with self._lock:
            try:
                process.stdin.write(word.encode() + b"\n")
                process.stdin.flush()
            except (OSError, ValueError):  # the process has ended (or stop() closed the pipe)
                pass

    def start(self) -> None:
        """Start the capture process and wait until it has opened the interfaces and the spool;
        raise CaptureError (one line) when it cannot. A start that fails removes a temporary spool
        (nothing was captured into it)."""
        try:
            self._start()
        except BaseException:
            self._abandon()
            raise

    def _start(self) -> None:
        ring: RingOptions = self.options.ring_options
        if ring.rotates and self._spool in _TEMPORARY:
            raise CaptureError("a ring buffer (-b) needs -w FILE: its files are named after it")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "protoscope.captures.capturer", self.options.to_json(), str(self._spool)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._reader = threading.Thread(target=self._read, name="live-capture-status", daemon=True)
        self._reader.start()
        self._started.wait(START_TIMEOUT)
        if self._refusal is not None:
            raise CaptureError(self._refusal)
        if not self._started.is_set():
            raise CaptureError(f"capture on {self.iface} did not start within {START_TIMEOUT:.0f} s")

    def _abandon(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        if self._reader is not None:
            self._reader.join(STOP_TIMEOUT)
        spool = self._spool
        if spool in _TEMPORARY:
            _TEMPORARY.discard(spool)
            spool.unlink(missing_ok=True)

    def _read(self) -> None:
        """The reader thread: status lines into `stats`; the process's end into `error`."""
        process = self._process
        assert process is not None and process.stdout is not None
        last: dict[str, Any] = {}
        for line in process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            last = message
            event = message.get("event")
            if event == "error":
                self._refusal = str(message.get("error") or "capture failed")
                break
            self._update(message)
            if event == "started":
                self._started.set()
            elif event == "end":
                break
        process.wait()
        if self._refusal is None and last.get("event") != "end":
            # The process died without its last word (killed, or a bug): say what it said.
            self._refusal = (
                _last_line(process.stderr) or f"the capture process exited with {process.returncode}"
            )
            if self._started.is_set():
                self.error = CaptureError(f"capture on {self.iface} failed: {self._refusal}")
        if process.stderr is not None:
            process.stderr.close()
        self._ended.set()
        self._started.set()

    def _update(self, message: dict[str, Any]) -> None:
        stats = self.stats
        stats.packets = int(message.get("packets", stats.packets))
        stats.bytes = int(message.get("bytes", stats.bytes))
        stats.received = int(message.get("received", stats.received))
        stats.kernel_dropped = int(message.get("kernel_dropped", stats.kernel_dropped))
        stats.dropped = stats.kernel_dropped
        stats.if_dropped = int(message.get("if_dropped", stats.if_dropped))
        stats.skipped = int(message.get("skipped", stats.skipped))
        stats.dropped_by_us = int(message.get("dropped_by_us", stats.dropped_by_us))
        if message.get("file"):
            stats.spool = Path(message["file"])
        stats.files = [Path(p) for p in message.get("files", ())]
        if message.get("error"):
            self.error = CaptureError(str(message["error"]))

    def wait(self) -> None:
        """Block until the capture ends by itself (count, duration or a failure); Ctrl-C stops it."""
        if self._process is None:
            return
        try:
            while not self._ended.wait(0.2):
                pass
        except KeyboardInterrupt:
            pass
        self.stop()

    def stop(self) -> None:
        """Stop capturing: the capture process writes what it holds and the statistics blocks,
        then exits. A failure is kept in `error` (a CaptureError, never a traceback)."""
        process = self._process
        if process is None:
            return
        self._tell("stop")
        with self._lock:
            if process.stdin is not None and not process.stdin.closed:
                try:
                    process.stdin.close()
                except OSError:
                    pass
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._reader is not None:
            self._reader.join(STOP_TIMEOUT)
        self._ended.set()


def _last_line(stream: IO[bytes] | None) -> str:
    if stream is None:
        return ""
    try:
        lines = stream.read().decode("utf-8", "replace").strip().splitlines()
    except (OSError, ValueError):
        return ""
    return lines[-1].strip() if lines else ""
