"""`protoscope --live` as a user runs it, in a process of its own, as root on `lo` with a BPF on the
test's own port: a gRPC call is a JSON line while the capture runs, and Ctrl-C or SIGTERM end the
capture with the spool closed by its statistics and the last rows written."""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

from tests.captures.test_live import statistics
from tests.conftest import require_root

REPO = Path(__file__).resolve().parents[2]


def _protoscope(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "protoscope.inspector.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def _started(proc: subprocess.Popen[str]) -> None:
    """Wait for the line that says the capture runs (the socket is open from then on)."""
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "capturing" in line, line


_LINES: dict[int, queue.Queue[str]] = {}


def _line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The next line on stdout, or "" when none came within `timeout` seconds (a thread reads the
    lines: select() on the pipe would miss a second line already in the reader's buffer)."""
    assert proc.stdout is not None
    lines = _LINES.get(proc.pid)
    if lines is None:
        lines = _LINES[proc.pid] = queue.Queue()
        stdout = proc.stdout
        threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return ""


def _ended(proc: subprocess.Popen[str]) -> str:
    """Wait for the process (its stdout is read by `_line`'s thread); its stderr."""
    proc.wait(timeout=30)
    assert proc.stderr is not None
    return proc.stderr.read()


def test_a_call_is_a_json_line_while_the_capture_runs(tmp_path: Path, echo_server: int) -> None:
    require_root()
    spool = tmp_path / "calls.pcapng"
    proc = _protoscope(
        "--live", "-i", "lo", "-f", f"tcp port {echo_server}", "-w", str(spool), "--report", "calls",
        "--format", "jsonl",
    )  # fmt: skip
    try:
        _started(proc)
        with grpc.insecure_channel(f"127.0.0.1:{echo_server}") as channel:
            say = channel.unary_unary("/demo.Echo/Say")
            assert say(b"\x0a\x05hello", timeout=10) == b"\x0a\x05hello"
            row = json.loads(_line(proc, timeout=10) or "null")  # while the capture still runs
            assert proc.poll() is None
            assert row is not None and row["path"] == "/demo.Echo/Say" and row["status"] == 0
            say(b"\x0a\x02hi", timeout=10)
            second = json.loads(_line(proc, timeout=10) or "null")
            assert second is not None and second["requests"][0]["size"] == 4
    finally:
        proc.send_signal(signal.SIGINT)
        err = _ended(proc)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "captured" in err
    isb = statistics(spool)
    assert len(isb) == 1 and isb[0]["usrdeliv"] > 0 and isb[0]["osdrop"] == 0


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_the_capture_with_its_statistics_and_the_report(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """A capture with no end of its own (no --count, no --duration) and a report written at the
    end: the signal writes the ISB, then the report, exit 0."""
    require_root()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        spool = tmp_path / "x.pcapng"
        proc = _protoscope(
            "--live", "-i", "lo", "-f", f"udp and dst port {port}", "-w", str(spool), "--report", "flows",
            "--format", "json",
        )  # fmt: skip
        try:
            _started(proc)
            for n in range(7):
                s.sendto(b"signal %d" % n, ("127.0.0.1", port))
            time.sleep(0.5)
        finally:
            proc.send_signal(stop)
            out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    flows = json.loads(out)
    assert [f["packets"] for f in flows] == [7]
    isb = statistics(spool)
    assert len(isb) == 1 and isb[0]["usrdeliv"] == 7 and isb[0]["osdrop"] == 0


def test_calls_on_a_connection_older_than_the_capture_are_explained_once(
    tmp_path: Path, echo_server: int
) -> None:
    """A channel that made its first call before the capture: later calls refer to HPACK entries the
    capture never saw, so their rows have no path; stderr says why, once."""
    require_root()
    with grpc.insecure_channel(f"127.0.0.1:{echo_server}") as channel:
        say = channel.unary_unary("/demo.Echo/Say")
        say(b"\x0a\x01a", timeout=10)
        proc = _protoscope(
            "--live", "-i", "lo", "-f", f"tcp port {echo_server}", "-w", str(tmp_path / "h.pcapng"),
            "--report", "calls", "--format", "jsonl",
        )  # fmt: skip
        try:
            _started(proc)
            for _ in range(3):
                say(b"\x0a\x01b", timeout=10)
            rows = [json.loads(_line(proc, timeout=10) or "null") for _ in range(3)]
        finally:
            proc.send_signal(signal.SIGINT)
            err = _ended(proc)
    assert all(row is not None and row["path"] is None and row["unknown_headers"] for row in rows)
    assert err.count("opened before the capture") == 1
