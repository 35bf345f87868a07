"""The viewer on a live capture: root on `lo` with a BPF filter on the test's own ports; packets,
flows and a real grpcio call show up as they arrive; pause/resume; a refused capture is a message."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
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
from tests.conftest import require_root
from tests.inspector.tui.test_app import until

REPO = Path(__file__).resolve().parents[3]


def _status(app: ProtoscopeApp) -> str:
    return str(app.query_one("#status-text").render())


async def test_live_viewer_shows_packets_flows_and_calls(tmp_path: Path, echo_server: int) -> None:
    require_root()
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
                # The viewer reads the spool as it grows; the counters come from the capture
                # process's next progress message, which may follow the packets it counts.
                await until(pilot, lambda: live.stats.packets >= packets.count, timeout=10)
                assert packets.count == live.stats.packets or packets.count <= live.stats.packets
                assert packets.cursor == packets.count - 1  # the cursor follows the newest packet
                assert app.query_one(FlowsTable).row_count == 1
                # The worker publishes the calls; the UI thread fills the views right after.
                await until(pilot, lambda: "gRPC/HTTP2" in str(app.query_one(FlowsTable).get_row_at(0)))
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
    require_root()
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


def test_a_bad_capture_filter_raises_capture_error(tmp_path: Path) -> None:
    """libpcap compiles the BPF in the capture process; a filter it refuses is one line."""
    require_root()
    with pytest.raises(CaptureError, match="bad capture filter"):
        LiveCapture("lo", tmp_path / "x.pcapng", "udp and nonsense").start()


SAMPLES = REPO / "captures" / "samples"


async def test_follow_shows_what_a_writer_appends(tmp_path: Path) -> None:
    """`--follow`: the viewer on a file another program is writing takes in what it appends,
    decoded (its calls too), without reading the file again."""
    data = (SAMPLES / "grpc-demo.pcap").read_bytes()
    path = tmp_path / "growing.pcap"
    path.write_bytes(data[:2000])
    app = ProtoscopeApp(path, load_registry(use_plugins=False), follow=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.query_one(PacketList).count > 0, timeout=10)
        first = app.query_one(PacketList).count
        assert "following" in _status(app)
        with path.open("ab") as f:
            f.write(data[2000:])
        await until(pilot, lambda: bool(app.model and len(app.model) == 101), timeout=10)
        assert first < 101
        packets = app.query_one(PacketList)
        assert packets.count == 101 and packets.cursor == 100  # it followed the new rows
        await until(pilot, lambda: bool(app.model and len(app.model.decoded.calls) == 20), timeout=10)


async def test_follow_a_file_tcpdump_is_writing(tmp_path: Path) -> None:
    """tcpdump -U -w F on lo with the test's own port; the viewer following F shows the datagrams
    the test sends while tcpdump runs."""
    require_root()
    if not shutil.which("tcpdump"):
        if os.environ.get("CI") == "true":
            pytest.fail("tcpdump is needed (apt-get install tcpdump)")
        pytest.skip("tcpdump is not installed")
    path = tmp_path / "dump.pcap"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        dump = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-U", "-w", str(path), "-n", f"udp and dst port {port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            assert dump.stderr is not None
            dump.stderr.readline()  # "listening on lo, ..." once the capture runs
            app = ProtoscopeApp(path, load_registry(use_plugins=False), follow=True)
            async with app.run_test(size=(100, 30)) as pilot:
                for n in range(5):
                    s.sendto(b"followed %d" % n, ("127.0.0.1", port))
                await until(pilot, lambda: app.query_one(PacketList).count == 5, timeout=10)
                for n in range(5, 8):
                    s.sendto(b"followed %d" % n, ("127.0.0.1", port))
                await until(pilot, lambda: app.query_one(PacketList).count == 8, timeout=10)
                model = app.model
                assert model is not None
                assert [model.index.payload(i) for i in range(8)] == [b"followed %d" % n for n in range(8)]
        finally:
            dump.terminate()
            dump.wait(timeout=10)


async def test_sigterm_ends_the_viewer_as_q_does(tmp_path: Path) -> None:
    """SIGTERM while the viewer follows a file: it quits at its next look (the CLI then stops a
    live capture and closes its spool), and the handler before it is back."""
    path = tmp_path / "x.pcap"
    path.write_bytes((SAMPLES / "grpc-demo.pcap").read_bytes())
    before = signal.getsignal(signal.SIGTERM)
    app = ProtoscopeApp(path, load_registry(use_plugins=False), follow=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.query_one(PacketList).count == 101, timeout=10)
        os.kill(os.getpid(), signal.SIGTERM)
        await until(pilot, lambda: not app.is_running, timeout=10)
        assert not app.is_running
    assert signal.getsignal(signal.SIGTERM) is before


async def test_a_growing_capture_shows_its_latest_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a capture grows, the Calls table holds its latest LIVE_TABLE_ROWS calls (a table is
    filled again on each look); a row still leads to its own call."""
    from protoscope.inspector.tui import app as app_module
    from protoscope.inspector.tui.views import CallsTable

    monkeypatch.setattr(app_module, "LIVE_TABLE_ROWS", 5)
    path = tmp_path / "x.pcap"
    path.write_bytes((SAMPLES / "grpc-demo.pcap").read_bytes())
    app = ProtoscopeApp(path, load_registry(use_plugins=False), follow=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: bool(app.model and len(app.model.decoded.calls) == 20), timeout=10)
        app.show_tab("calls")
        table = app.query_one(CallsTable)
        await until(pilot, lambda: table.row_count == 5, timeout=10)
        table.move_cursor(row=0)
        await pilot.pause()
        calls = app.model.decoded.calls if app.model else []
        assert app._selected_row() is calls[15]
