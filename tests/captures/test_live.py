"""Live capture on loopback through the capture process, with a BPF filter on the test's own port:
counts, statistics blocks, pause, `any`, several interfaces, libpcap's options, refusals and
spool write errors. Root (CAP_NET_RAW) is needed: under CI=true a missing root fails."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from protoscope.captures import live
from protoscope.captures.errors import CaptureError
from protoscope.captures.index import load
from protoscope.captures.live import LiveCapture
from protoscope.captures.options import CaptureOptions
from protoscope.inspector.cli import main
from tests.conftest import require_root, require_tool

SEND_LIMIT_S = 15.0
REPO = Path(__file__).resolve().parents[2]

ISB = 5
EPB = 6
IDB = 1
ISB_OPTIONS = {2: "starttime", 3: "endtime", 4: "ifrecv", 5: "ifdrop", 7: "osdrop", 8: "usrdeliv"}


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def blocks(path: Path) -> Iterator[tuple[int, bytes]]:
    """(block type, body) of each whole little-endian pcapng block: a walk of our own, so that the
    statistics blocks (which the index skips) can be read."""
    data = path.read_bytes()
    pos = 0
    while pos + 12 <= len(data):
        btype, blen = struct.unpack_from("<II", data, pos)
        if pos + blen > len(data):
            return
        yield btype, data[pos + 8 : pos + blen - 4]
        pos += blen


def options(body: bytes, start: int) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    pos = start
    while pos + 4 <= len(body):
        code, length = struct.unpack_from("<HH", body, pos)
        if code == 0:
            break
        out[code] = body[pos + 4 : pos + 4 + length]
        pos += 4 + ((length + 3) & ~3)
    return out


def statistics(path: Path) -> list[dict[str, int]]:
    """The ISBs of `path`: interface id and counters by their pcapng names."""
    found = []
    for btype, body in blocks(path):
        if btype != ISB:
            continue
        row = {"iface": struct.unpack_from("<I", body)[0]}
        for code, value in options(body, 12).items():
            if code in (2, 3):  # isb_starttime, isb_endtime: a timestamp, high 32 bits first
                high, low = struct.unpack("<II", value)
                row[ISB_OPTIONS[code]] = high << 32 | low
            elif code in ISB_OPTIONS:
                row[ISB_OPTIONS[code]] = struct.unpack("<Q", value)[0]
        found.append(row)
    return found


def interfaces(path: Path) -> list[tuple[int, int, str]]:
    """(linktype, snaplen, if_name) of each IDB."""
    found = []
    for btype, body in blocks(path):
        if btype == IDB:
            linktype, _reserved, snaplen = struct.unpack_from("<HHI", body)
            found.append((linktype, snaplen, options(body, 8).get(2, b"").decode()))
    return found


def send(port: int, n: int, payload: bytes = b"protoscope live test") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(n):
            s.sendto(payload, ("127.0.0.1", port))


def test_live_capture_on_loopback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_root()
    port = _free_udp_port()
    spool = tmp_path / "live.pcapng"
    result: dict[str, int] = {}
    args = ["--live", "-i", "lo", "-f", f"udp and dst port {port}", "--count", "5", "--duration", "20"]
    args += ["-w", str(spool)]
    worker = threading.Thread(
        target=lambda: result.setdefault("code", main([*args, "--report", "flows", "--format", "json"]))
    )
    worker.start()
    # Send until the capture has its five packets and stops (the capture may open a little late).
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
    assert spool.read_bytes()[:4] == bytes.fromhex("0a0d0d0a")


def test_counts_equal_what_was_sent_and_stop_writes_statistics(tmp_path: Path) -> None:
    """N datagrams sent: N in the stats, N in the spool (our reader and tshark's), and the spool
    ends with an Interface Statistics Block that says so."""
    require_root()
    tshark = require_tool("tshark")
    port, n = _free_udp_port(), 300
    spool = tmp_path / "x.pcapng"
    capture = LiveCapture(CaptureOptions(("lo",), bpf=f"udp and dst port {port}"), spool)
    capture.start()
    send(port, n)
    capture.stop()
    assert capture.error is None and not capture.running
    assert capture.stats.packets == n and capture.stats.kernel_dropped == 0 == capture.stats.dropped
    assert capture.stats.received >= n  # on lo libpcap counts the outgoing copy it leaves out, too
    index = load(spool)
    assert len(index) == n and not index.findings
    listed = subprocess.run([tshark, "-r", str(spool)], capture_output=True, text=True, check=True)
    assert len(listed.stdout.splitlines()) == n
    kinds = [btype for btype, _ in blocks(spool)]
    assert kinds[-1] == ISB and kinds.count(EPB) == n
    (isb,) = statistics(spool)
    assert isb["usrdeliv"] == n and isb["osdrop"] == 0 and isb["ifrecv"] == capture.stats.received
    assert isb["starttime"] <= isb["endtime"]
    assert interfaces(spool) == [(1, 262144, "lo")]


def test_refused_capture_is_one_line(tmp_path: Path) -> None:
    """Without CAP_NET_RAW (dropped from the bounding set by setpriv): one line, exit 2."""
    require_root()
    setpriv = require_tool("setpriv")
    code = (
        "import sys; from protoscope.inspector.cli import main; "
        f"sys.exit(main(['--live', '-i', 'lo', '--count', '1', '-w', {str(tmp_path / 'x.pcapng')!r}, "
        "'--report', 'summary']))"
    )
    done = subprocess.run(
        [setpriv, "--bounding-set", "-net_raw", "--", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 2, done.stderr
    assert "not permitted" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_unknown_interface_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_root()  # without root, libpcap says "not permitted" before it looks for the interface
    assert main(["--live", "-i", "no-such-if0", "--count", "1", "-w", str(tmp_path / "x.pcapng")]) == 2
    err = capsys.readouterr().err
    assert "no such interface: no-such-if0" in err and len(err.strip().splitlines()) == 1


def test_a_bad_filter_is_one_line(tmp_path: Path) -> None:
    require_root()
    with pytest.raises(CaptureError, match=r"^bad capture filter 'udp and nonsense': ") as refused:
        LiveCapture("lo", tmp_path / "x.pcapng", "udp and nonsense").start()
    assert "\n" not in str(refused.value)


def test_a_failed_start_leaves_no_temporary_spool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without -w the spool is a temporary file; a capture that cannot start removes it (an
    unknown interface, a bad filter), and never removes a spool the user named."""
    require_root()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert main(["--live", "-i", "no-such-if0", "--count", "1", "--report", "summary"]) == 2
    assert main(["--live", "-i", "lo", "-f", "udp and nonsense", "--count", "1", "--report", "summary"]) == 2
    assert list(tmp_path.iterdir()) == []
    named = tmp_path / "mine.pcapng"
    named.write_bytes(b"")
    assert main(["--live", "-i", "lo", "-f", "nonsense", "-w", str(named), "--report", "summary"]) == 2
    assert named.exists()
    assert "bad capture filter" in capsys.readouterr().err


def test_spool_path_defaults_to_a_temporary_file() -> None:
    path, temporary = live.spool_path(None)
    try:
        assert temporary and path.suffix == ".pcapng"
    finally:
        path.unlink()


def test_pause_keeps_nothing_and_count_counts_kept_packets(tmp_path: Path) -> None:
    """Paused, arrivals are counted and not kept; --count is reached by kept packets only."""
    require_root()
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
    capture.wait()
    assert capture.error is None and not capture.running
    assert capture.stats.packets == 2 and capture.stats.skipped >= 3
    assert capture.stats.dropped_by_us == capture.stats.skipped
    index = load(tmp_path / "x.pcapng")
    assert [index.payload(i) for i in range(len(index))] == [b"kept", b"kept"]
    (isb,) = statistics(tmp_path / "x.pcapng")
    assert isb["usrdeliv"] == 2


def test_duration_ends_the_capture(tmp_path: Path) -> None:
    require_root()
    capture = LiveCapture(
        CaptureOptions(("lo",), bpf="udp and dst port 9", duration=0.5), tmp_path / "x.pcapng"
    )
    capture.start()
    capture.wait()  # returns by itself
    assert not capture.running and capture.error is None
    assert [btype for btype, _ in blocks(tmp_path / "x.pcapng")][-1] == ISB


def test_any_sees_the_test_packets(tmp_path: Path) -> None:
    require_root()
    port, n = _free_udp_port(), 20
    spool = tmp_path / "any.pcapng"
    capture = LiveCapture(CaptureOptions(("any",), bpf=f"udp and dst port {port}"), spool)
    capture.start()
    send(port, n, b"to any")
    capture.stop()
    assert capture.stats.packets == n
    ((linktype, _snaplen, name),) = interfaces(spool)
    assert linktype in (113, 276) and name == "any"  # LINUX_SLL2, or LINUX_SLL on an older libpcap
    index = load(spool)
    assert [index.payload(i) for i in range(len(index))] == [b"to any"] * n


def test_two_interfaces_write_one_pcapng_with_an_idb_each(tmp_path: Path) -> None:
    """`-i lo -i any`: one IDB each, each packet's EPB naming its interface, an ISB each; the same
    interface twice is opened once."""
    require_root()
    port, n = _free_udp_port(), 10
    spool = tmp_path / "two.pcapng"
    opts = CaptureOptions(("lo", "any", "lo"), bpf=f"udp and dst port {port}")
    assert opts.interfaces == ("lo", "any")
    capture = LiveCapture(opts, spool)
    assert capture.iface == "lo, any"
    capture.start()
    send(port, n)
    capture.stop()
    assert [name for _, _, name in interfaces(spool)] == ["lo", "any"]
    ids = [struct.unpack_from("<I", body)[0] for btype, body in blocks(spool) if btype == EPB]
    assert sorted(ids) == [0] * n + [1] * n
    assert [(s["iface"], s["usrdeliv"]) for s in statistics(spool)] == [(0, n), (1, n)]
    assert capture.stats.packets == 2 * n


def test_snaplen_is_passed_to_libpcap(tmp_path: Path) -> None:
    """-s 100: a 1,000-byte datagram is kept as its first 100 bytes, its length on the wire kept."""
    require_root()
    port = _free_udp_port()
    spool = tmp_path / "snap.pcapng"
    opts = CaptureOptions(("lo",), bpf=f"udp and dst port {port}", snaplen=100, buffer_mib=4, promisc=False)
    capture = LiveCapture(opts, spool)
    capture.start()
    send(port, 1, b"y" * 1000)
    capture.stop()
    assert interfaces(spool) == [(1, 100, "lo")]
    ((caplen, wirelen),) = [
        struct.unpack_from("<II", body, 12) for btype, body in blocks(spool) if btype == EPB
    ]
    assert (caplen, wirelen) == (100, 14 + 20 + 8 + 1000)


def test_a_full_device_is_one_line(tmp_path: Path) -> None:
    require_root()
    with pytest.raises(CaptureError, match=r"^cannot write the spool /dev/full: No space left on device$"):
        LiveCapture("lo", Path("/dev/full"), "udp and dst port 9").start()


def test_a_failed_write_stops_with_one_line_and_a_readable_spool(tmp_path: Path) -> None:
    """A file-size limit (prlimit) stands for a full disk: the write fails part-way, the capture
    stops with one line in `error`, and the spool reads up to the block the write cut."""
    require_root()
    prlimit = require_tool("prlimit")
    spool = tmp_path / "cut.pcapng"
    port = _free_udp_port()
    code = f"""
import socket, sys, time
from pathlib import Path
from protoscope.captures.live import LiveCapture
capture = LiveCapture("lo", Path({str(spool)!r}), "udp and dst port {port}")
capture.start()
deadline = time.monotonic() + {SEND_LIMIT_S}
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    while capture.running and time.monotonic() < deadline:
        s.sendto(b"z" * 300, ("127.0.0.1", {port}))
        time.sleep(0.001)
capture.wait()
print(capture.error)
print(capture.stats.packets, capture.stats.dropped_by_us)
"""
    done = subprocess.run(
        [prlimit, "--fsize=20000", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    error, counts = done.stdout.strip().splitlines()
    assert error == f"cannot write the spool {spool}: File too large"
    kept, lost = map(int, counts.split())
    assert spool.stat().st_size == 20000 and kept > 0 and lost > 0
    index = load(spool)
    assert len(index) == kept
    assert [f.code for _, f in index.findings] == ["capture.truncated"]


def test_an_interface_that_disappears_ends_with_one_line_and_a_closed_spool(tmp_path: Path) -> None:
    """A veth end deleted under the capture (a USB NIC unplugged): libpcap's error is one line, and
    the spool keeps what was taken and ends with its statistics block."""
    require_root()
    ip = require_tool("ip")
    name = f"psv{os.getpid() % 100000}"
    subprocess.run([ip, "link", "add", name, "type", "veth", "peer", "name", name + "p"], check=True)
    try:
        subprocess.run([ip, "link", "set", name, "up"], check=True)
        capture = live.LiveCapture(name, tmp_path / "gone.pcapng")
        capture.start()
        subprocess.run([ip, "link", "del", name], check=True)
        deadline = time.monotonic() + SEND_LIMIT_S
        while capture.running and time.monotonic() < deadline:
            time.sleep(0.05)
        capture.stop()
    finally:
        subprocess.run([ip, "link", "del", name], capture_output=True)
    assert capture.error is not None and "\n" not in str(capture.error)
    kinds = [btype for btype, _ in blocks(tmp_path / "gone.pcapng")]
    assert kinds[-1] == ISB
    assert statistics(tmp_path / "gone.pcapng")[0]["usrdeliv"] == kinds.count(EPB)
