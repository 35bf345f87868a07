"""The command lines of a growing capture: `--live` (capture, then the viewer, a streamed report or
a report at the end) and `--follow FILE` (a file another program is still writing).

Ctrl-C and SIGTERM end a capture the same way: they set a flag the loops look at, never an
exception in the middle of a decoding pass, so the spool is closed with its statistics and the
last rows are written.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from .report.inert import clean

if TYPE_CHECKING:
    from protoscope.captures.live import LiveCapture
    from protoscope.decoders.registry import Registry

STREAMED_FORMAT = "jsonl"
"""The format whose rows are written as they are complete (text and JSON are written at the end)."""


class UsageError(ValueError):
    """A combination of flags that means nothing (the CLI prints it as one line, exit 2)."""


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event that Ctrl-C (SIGINT) and SIGTERM set, for the duration of a capture; the handlers
    before are restored after. A second signal while the first is handled changes nothing."""
    stop = threading.Event()

    def handler(_signum: int, _frame: Any) -> None:
        stop.set()

    if threading.current_thread() is not threading.main_thread():  # tests call main() in a thread
        yield stop
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def capture_options(args: argparse.Namespace) -> Any:
    """The CaptureOptions the flags ask for (-i, -f, -c, --duration, -B, -s, -p, -b)."""
    from protoscope.captures.live import CaptureOptions, parse_ring

    if not args.interface:
        raise UsageError("--live needs -i IFACE")
    if args.count < 0 or (args.duration is not None and args.duration <= 0):
        raise UsageError("--count and --duration must be positive")
    if args.buffer_size is not None and args.buffer_size <= 0:
        raise UsageError("-B must be a positive number of MiB")
    if args.snapshot_length is not None and args.snapshot_length <= 0:
        raise UsageError("-s must be a positive number of bytes")
    try:
        ring = parse_ring(args.ring_buffer) if args.ring_buffer else None
    except ValueError as exc:
        raise UsageError(f"-b: {exc}") from None
    if ring is not None and not args.write:
        raise UsageError("-b writes ring-buffer files named after -w FILE: give -w")
    extra: dict[str, Any] = {}
    if args.buffer_size is not None:
        extra["buffer_mib"] = args.buffer_size
    if args.snapshot_length is not None:
        extra["snaplen"] = args.snapshot_length
    return CaptureOptions(
        interfaces=tuple(args.interface),
        bpf=args.capture_filter,
        count=args.count,
        duration=args.duration,
        promisc=not args.no_promiscuous_mode,
        ring=ring,
        **extra,
    )


def live_capture(args: argparse.Namespace) -> tuple[LiveCapture, bool]:
    """The capture --live asks for (not started) and whether its spool is a temporary file."""
    from protoscope.captures.live import LiveCapture, spool_path

    options = capture_options(args)
    path, temporary = spool_path(args.write)
    return LiveCapture(options, path), temporary


def _said_where(live: LiveCapture, temporary: bool) -> None:
    if temporary:
        print(f"protoscope: capturing to {clean(live.stats.spool)}", file=sys.stderr)
    if not live.options.count and live.options.duration is None:
        print("protoscope: capturing until Ctrl-C", file=sys.stderr)


def _summary_line(live: LiveCapture) -> str:
    stats = live.stats
    where = clean(stats.spool)
    if live.options.ring is not None:
        where = f"ring-buffer files ({len(stats.files)} kept): " + ", ".join(clean(f) for f in stats.files)
    dropped = f", {stats.dropped} dropped by the kernel" if stats.dropped is not None else ""
    if stats.skipped:
        dropped += f", {stats.skipped} not kept while paused"
    return f"protoscope: captured {stats.packets} packets to {where}{dropped}"


def capture_to_file(args: argparse.Namespace) -> str:
    """Capture until --count, --duration, Ctrl-C or SIGTERM; the spool's path (for a report at the
    end). A ring buffer (-b) captures like dumpcap and reports nothing."""
    live, temporary = live_capture(args)
    live.start()
    try:
        _said_where(live, temporary)
        with stop_on_signals() as stop:
            while live.running and not stop.is_set():
                stop.wait(0.2)
    finally:
        live.stop()
    if live.error is not None:
        raise live.error
    print(_summary_line(live), file=sys.stderr)
    return str(live.stats.spool)


def stream_report(args: argparse.Namespace, registry: Registry, out: TextIO, path: str | None) -> int:
    """`--live ... --format jsonl` (path None: capture first) or `--follow FILE`: rows as they are
    complete, until the capture ends, --duration passes, Ctrl-C or SIGTERM."""
    from . import livestream
    from .session import Session

    live: LiveCapture | None = None
    if path is None:
        live, temporary = live_capture(args)
        live.start()
        _said_where(live, temporary)
        path = str(live.stats.spool)
    options = livestream.StreamOptions(args.report, args.interval, args.filter)
    deadline = time.monotonic() + args.duration if live is None and args.duration else None
    try:
        with stop_on_signals() as stop:
            session = Session.open(path, registry, growing=True)

            def ended() -> bool:
                if stop.is_set() or (deadline is not None and time.monotonic() >= deadline):
                    return True
                return live is not None and not live.running

            def stop_capture() -> None:
                if live is not None:
                    live.stop()

            try:
                rows = livestream.run(session, options, out, ended, stop_capture)
                packets = len(session.index)
            finally:
                session.close()
    finally:
        if live is not None:
            live.stop()
    if live is not None:
        if live.error is not None:
            raise live.error
        print(_summary_line(live), file=sys.stderr)
    else:
        print(f"protoscope: followed {clean(path)}: {packets} packets, {rows} rows", file=sys.stderr)
    return 0


def live_viewer(args: argparse.Namespace, registry: Registry) -> int:
    """The viewer on live traffic: packets, flows and calls as they arrive."""
    from .tui.app import run as run_tui

    live, _temporary = live_capture(args)
    live.start()  # a refused capture is one line on stderr before the screen opens
    try:
        run_tui(str(live.stats.spool), registry, live, display_filter=args.filter)
    finally:
        live.stop()
    print(f"protoscope: {live.stats.packets} packets kept in {clean(live.stats.spool)}", file=sys.stderr)
    return 0


def follow_viewer(args: argparse.Namespace, registry: Registry, path: str) -> int:
    """The viewer on a file another program is still writing."""
    from .tui.app import run as run_tui

    run_tui(path, registry, display_filter=args.filter, follow=True)
    return 0


def list_interfaces(out: TextIO) -> int:
    """-D: the interfaces as `tcpdump -D` lists them, with their addresses."""
    from protoscope.captures.interfaces import interface_lines

    for line in interface_lines():
        out.write(clean(line) + "\n")
    return 0
