"""Live capture on loopback with a BPF filter on the test's own port, spooled to pcapng."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from protoscope.captures import live
from protoscope.inspector.cli import main

SEND_LIMIT_S = 15.0


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_live_capture_on_loopback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("live capture tests run as root in CI")
        pytest.skip("live capture needs root")
    port = _free_udp_port()
    spool = tmp_path / "live.pcapng"
    result: dict[str, int] = {}
    args = [
        "--live",
        "-i",
        "lo",
        "-f",
        f"udp and dst port {port}",
        "--count",
        "5",
        "--duration",
        "20",
        "-w",
        str(spool),
    ]
    worker = threading.Thread(
        target=lambda: result.setdefault("code", main([*args, "--report", "flows", "--format", "json"]))
    )
    worker.start()
    # Send until the capture has its five packets and stops (the socket may open a little late).
    deadline = time.monotonic() + SEND_LIMIT_S
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        n = 0
        while worker.is_alive() and time.monotonic() < deadline:
            s.sendto(b"protoscope live test %d" % n, ("127.0.0.1", port))
            n += 1
            time.sleep(0.05)
    worker.join(timeout=30)
    assert result.get("code") == 0
    flows = json.loads(capsys.readouterr().out)
    assert len(flows) == 1
    assert flows[0]["transport"] == "udp" and flows[0]["packets"] == 5
    assert flows[0]["server"] == f"127.0.0.1:{port}" or flows[0]["client"] == f"127.0.0.1:{port}"
    # The spool is a pcapng file any reader can open.
    assert spool.read_bytes()[:4] == bytes.fromhex("0a0d0d0a")


def test_capture_not_permitted_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from scapy.config import conf

    def refuse(*_a: object, **_k: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(conf, "L2listen", refuse)
    code = main(
        ["--live", "-i", "lo", "--count", "1", "-w", str(tmp_path / "x.pcapng"), "--report", "summary"]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "not permitted" in err and "Traceback" not in err


def test_unknown_interface_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--live", "-i", "no-such-if0", "--count", "1", "-w", str(tmp_path / "x.pcapng")]) == 2
    assert "no such interface" in capsys.readouterr().err


def test_a_failed_start_leaves_no_temporary_spool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without -w the spool is a temporary file; a capture that cannot start removes it (an
    unknown interface, a refused socket), and never removes a spool the user named."""
    import tempfile

    from scapy.config import conf

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert main(["--live", "-i", "no-such-if0", "--count", "1", "--report", "summary"]) == 2

    def refuse(*_a: object, **_k: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(conf, "L2listen", refuse)
    assert main(["--live", "-i", "lo", "--count", "1", "--report", "summary"]) == 2
    assert list(tmp_path.iterdir()) == []
    named = tmp_path / "mine.pcapng"
    named.write_bytes(b"")
    assert main(["--live", "-i", "lo", "--count", "1", "-w", str(named), "--report", "summary"]) == 2
    assert named.exists()
    assert "not permitted" in capsys.readouterr().err


def test_spool_path_defaults_to_a_temporary_file() -> None:
    path, temporary = live.spool_path(None)
    try:
        assert temporary and path.suffix == ".pcapng"
    finally:
        path.unlink()


def test_pause_keeps_nothing_and_count_counts_kept_packets(tmp_path: Path) -> None:
    """Paused, arrivals are counted and not kept; --count is reached by kept packets only."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("live capture tests run as root in CI")
        pytest.skip("live capture needs root")
    port = _free_udp_port()
    capture = live.LiveCapture("lo", tmp_path / "x.pcapng", f"udp and dst port {port}", count=2)
    capture.start()
    capture.pause()
    deadline = time.monotonic() + SEND_LIMIT_S
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        while capture.stats.skipped < 3 and time.monotonic() < deadline:
            s.sendto(b"paused", ("127.0.0.1", port))
            time.sleep(0.05)
        capture.resume()
        while capture.running and time.monotonic() < deadline:
            s.sendto(b"kept", ("127.0.0.1", port))
            time.sleep(0.05)
    capture.stop()
    assert capture.error is None and not capture.running
    assert capture.stats.packets == 2 and capture.stats.skipped >= 3
    from protoscope.captures.index import load

    index = load(tmp_path / "x.pcapng")
    assert [index.payload(i) for i in range(len(index))] == [b"kept", b"kept"]
