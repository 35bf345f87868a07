"""`protoscope --live` as a user runs it, in a process of its own, as root on `lo` with a BPF on the
test's own port: a gRPC call is a JSON line while the capture runs, and Ctrl-C or SIGTERM end the
capture with the spool closed by its statistics and the last rows written."""

from __future__ import annotations

import json
import selectors
import signal
import socket
import subprocess
import sys
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


def _line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The next line on stdout, or "" when none came within `timeout` seconds."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return ""
    return proc.stdout.readline()


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
        _, err = proc.communicate(timeout=30)
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
