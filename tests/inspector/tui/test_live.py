"""The viewer on a live capture: root on `lo` with a BPF filter on the test's own ports; packets,
flows and a real grpcio call show up as they arrive; pause/resume; a refused capture is a message."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from protoscope.captures.errors import CaptureError
from protoscope.captures.live import LiveCapture
from protoscope.decoders.registry import load_registry
from protoscope.inspector.tui.app import ProtoscopeApp
from protoscope.inspector.tui.packets import PacketList
from protoscope.inspector.tui.views import FlowsTable
from tests.inspector.tui.test_app import until

REPO = Path(__file__).resolve().parents[3]


def _root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("live capture tests run as root in CI")
        pytest.skip("live capture needs root")


@pytest.fixture
def echo_server() -> Iterator[int]:
    """A grpcio server on 127.0.0.1 whose demo.Echo/Say returns the request's bytes."""
    handler = grpc.method_handlers_generic_handler(
        "demo.Echo", {"Say": grpc.unary_unary_rpc_method_handler(lambda request, _context: request)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port
    finally:
        server.stop(None)


def _status(app: ProtoscopeApp) -> str:
    return str(app.query_one("#status-text").render())


async def test_live_viewer_shows_packets_flows_and_calls(tmp_path: Path, echo_server: int) -> None:
    _root()
    spool = tmp_path / "live.pcapng"
    live = LiveCapture("lo", spool, f"tcp port {echo_server}")
    live.start()
    app = ProtoscopeApp(spool, load_registry(), live)
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            assert "capturing on lo" in _status(app)
            with grpc.insecure_channel(f"127.0.0.1:{echo_server}") as channel:
                say = channel.unary_unary("/demo.Echo/Say")
                assert say(b"\x0a\x05hello", timeout=10) == b"\x0a\x05hello"
                await until(pilot, lambda: bool(app.model and app.model.decoded.calls), timeout=20)
                calls = app.model.decoded.calls if app.model else []
                assert [c["path"] for c in calls] == ["/demo.Echo/Say"]
                assert calls[0]["status"] == 0
                packets = app.query_one(PacketList)
                assert packets.count == live.stats.packets or packets.count <= live.stats.packets
                assert packets.cursor == packets.count - 1  # the cursor follows the newest packet
                assert app.query_one(FlowsTable).row_count == 1
                assert "gRPC/HTTP2" in str(app.query_one(FlowsTable).get_row_at(0))
                assert f"{live.stats.packets} packets" in _status(app)
                assert "dropped" in _status(app)

                await pilot.press("ctrl+e")
                assert live.paused and "PAUSED" in _status(app)
                kept = live.stats.packets
                say(b"\x0a\x01x", timeout=10)
                await until(pilot, lambda: live.stats.skipped > 0)
                assert live.stats.skipped > 0 and live.stats.packets == kept
                await pilot.press("ctrl+e")
                assert not live.paused
                say(b"\x0a\x01y", timeout=10)
                await until(pilot, lambda: bool(app.model and len(app.model.decoded.calls) == 2), timeout=20)
                assert live.stats.packets > kept
    finally:
        live.stop()
    assert live.error is None
    assert spool.read_bytes()[:4] == bytes.fromhex("0a0d0d0a")


async def test_live_viewer_reports_a_capture_that_ends(tmp_path: Path, monkeypatch: Any) -> None:
    """When the capture thread stops (count reached), the status says so and the spool is closed."""
    _root()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        live = LiveCapture("lo", tmp_path / "x.pcapng", f"udp and dst port {port}", count=3)
        live.start()
        app = ProtoscopeApp(live.stats.spool, load_registry(), live)
        async with app.run_test(size=(100, 30)) as pilot:
            for n in range(3):
                s.sendto(b"live %d" % n, ("127.0.0.1", port))
            await until(pilot, lambda: "stopped on lo" in _status(app), timeout=10)
            await until(pilot, lambda: app.query_one(PacketList).count == 3, timeout=10)
            assert "3 packets" in _status(app)
            model = app.model
            assert model is not None
            # Each datagram once, as tcpdump shows `lo` (not the outgoing copy as well).
            assert [model.index.frame(i)[-6:] for i in range(3)] == [b"live %d" % n for n in range(3)]
    assert live.error is None and live.stats.packets == 3


def test_refused_capture_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """Without CAP_NET_RAW (dropped from the bounding set by setpriv) the viewer does not start:
    one line on stderr, exit 2."""
    _root()
    code = (
        "import sys; from protoscope.inspector.cli import main; "
        f"sys.exit(main(['--live', '-i', 'lo', '-w', {str(tmp_path / 'x.pcapng')!r}]))"
    )
    done = subprocess.run(
        ["setpriv", "--bounding-set", "-net_raw", "--", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 2, done.stderr
    assert "not permitted" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_refused_capture_raises_capture_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scapy.config import conf

    def refuse(*_a: object, **_k: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(conf, "L2listen", refuse)
    with pytest.raises(CaptureError, match="not permitted"):
        LiveCapture("lo", tmp_path / "x.pcapng").start()
