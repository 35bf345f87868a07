"""Live capture against tcpdump, side by side in one run (issue 14: "Checks that must hold").

For each UDP rate (10k, 50k, 100k packets/s by default, 20 s each) the bench starts `tcpdump -w`
and `protoscope --live` on loopback with the same BPF filter, waits until both hold their packet
socket, sends the traffic (bench/live_traffic.py counts every datagram the kernel accepted), and
stops both with SIGINT (the viewer with `q`). Each rate runs twice: protoscope headless
(`--duration` as a safety net, `--report summary`) and with the viewer open in tmux. Then an h2c
gRPC load (>= 2,000 calls/s) the same way, headless with `--report calls --format jsonl`.

Measured per run: datagrams sent and the rate achieved; what tcpdump captured and the kernel dropped
for it (its own counters); what protoscope kept (Enhanced Packet Blocks in its spool) and the
kernel dropped for it (the spool's closing Interface Statistics Block, isb_osdrop); kept as a share
of tcpdump's; protoscope's CPU (its processes and their children, /proc utime+stime, over the
traffic's wall time and TAIL_S) next to tcpdump's; with the viewer: whether it shows every packet kept once
the traffic is over, resident memory growth per packet (PROTOSCOPE_LIVE_LOG's lines, else VmRSS
and the status line) and the on-screen latency of marker datagrams (one every MARKER_INTERVAL_S,
each from a source port of its own, so each is a flow of its own: found by polling
`tmux capture-pane` every POLL_S for ':PORT'). `--soak MINUTES`: 5,000 packets/s with the viewer
open, the slowest refresh of each minute from PROTOSCOPE_LIVE_LOG. Spools and tcpdump's files go
to a temporary directory, each removed after its run (100k/s for 20 s is ~0.5 GB apiece).
Targets (issue 14): 0 kernel drops at 50k/s with the viewer open; at 100k/s no more than tcpdump's;
kept >= 99.99% of tcpdump's at every rate; p99 on screen <= 1 s; <= 1 core at 50k/s; <= 100 bytes of
resident memory a packet; in the soak no refresh slower than the first minute's.

The machine has 2 cores: the generator (one or two processes), tcpdump, protoscope and this
bench's screen polling share them, so CPU figures include contention, and at 100k/s the generator
alone takes most of a core; the header prints the load average before the runs (anything else
running skews every figure). No timing is asserted: the table says met or UNMET.
Run (root, for the packet sockets): sudo .venv/bin/python bench/bench_live.py
  [--seconds 20] [--rates 10k,50k,100k] [--modes headless,viewer] [--no-grpc] [--soak MINUTES]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import mmap
import os
import re
import shlex
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import live_traffic as traffic

BUFFER_MIB = 32
"""Kernel buffer for both captures (protoscope -B MiB, tcpdump -B KiB): the issue's default."""
SNAPLEN = 262144
TMUX_SIZE = ("200", "50")
POLL_S = 0.025
MARKER_INTERVAL_S = 0.5
MAX_MARKERS = 18
"""The flows pane lists flows in the order they began and shows ~20 rows at 200x50, and at these
rates a marker's row in the packet list scrolls away within a millisecond: markers are found by
their flow's row, so a run sends at most this many (spaced wider on long runs)."""
SETTLE_S = 0.5
"""After both captures hold their packet socket: time for the BPF filter to be attached."""
TAIL_S = 2.0
"""After the last datagram: time for both captures to drain their buffers before SIGINT. tcpdump
(not in immediate mode) hands over a TPACKET_V3 block when it fills or after its 1 s timeout, and
SIGINT leaves an unfinished block unread: stopped 0.5 s after 1,000 datagrams at 1k/s, it had
written 857 of them."""
LATE_S = 5.0
"""How long the bench keeps looking for markers after the traffic: a later one counts as unseen."""
IDLE_S = 1.0
SETTLE_LIMIT_S = 15.0
"""After the traffic, the bench waits at most this long for the viewer to show every packet."""
READY_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 300.0
SAFETY_DURATION_S = 600.0
"""--duration beyond the run's length: the headless capture stops by SIGINT, this only bounds it."""
SOAK_RATE = 5000
GRPC_RATE = 3000
"""Paced above the issue's 2,000 calls/s: a Python client and server on this machine reach
~2,750 calls/s alone and ~2,100 next to both captures, so the achieved rate is what they can do."""
GRPC_MIN_RATE = 2000
GRPC_IN_FLIGHT = 64
GRPC_LABEL = "gRPC h2c headless"
FREE_TEXT = ("note", "failed")
KEPT_TARGET = 0.9999
CPU_TARGET = 1.0
RSS_TARGET = 100.0
LATENCY_TARGET_S = 1.0

# pcapng (draft-ietf-opsawg-pcapng): block types and Interface Statistics Block options
SHB, EPB, SPB, OPB, ISB = 0x0A0D0D0A, 6, 3, 2, 5
ISB_OPTIONS = {4: "isb_ifrecv", 5: "isb_ifdrop", 6: "isb_filteraccept", 7: "isb_osdrop", 8: "isb_usrdeliv"}


# -- the command lines (one place for their flags) -------------------------------------------------


def protoscope_flags() -> set[str]:
    """The capture flags this build of protoscope has (-B and -s arrive with the new engine)."""
    out = subprocess.run(
        [sys.executable, "-m", "protoscope.inspector.cli", "--help"], capture_output=True, text=True
    ).stdout
    return {flag for flag in ("-B", "-s") if re.search(rf"(^|\s){flag}[ ,]", out)}


def protoscope_cmd(bpf: str, spool: Path, flags: set[str], report: list[str] | None) -> list[str]:
    """`protoscope --live` on lo with the bench's filter, spool and buffer; `report` makes it
    headless (and adds --duration as a safety net), None opens the viewer."""
    cmd = [
        sys.executable,
        "-m",
        "protoscope.inspector.cli",
        "--live",
        "-i",
        "lo",
        "-f",
        bpf,
        "-w",
        str(spool),
    ]
    if "-B" in flags:
        cmd += ["-B", str(BUFFER_MIB)]
    if "-s" in flags:
        cmd += ["-s", str(SNAPLEN)]
    if report is not None:
        cmd += ["--duration", str(SAFETY_DURATION_S), *report]
    return cmd


def tcpdump_cmd(bpf: str, out: Path) -> list[str]:
    # -Z root: tcpdump would otherwise drop to its own user before opening the file.
    cmd = ["tcpdump", "-i", "lo", "-n", "-s", str(SNAPLEN), "-B", str(BUFFER_MIB * 1024), "-Z", "root"]
    return [*cmd, "-w", str(out), bpf]


# -- pcapng: a block walk for EPBs and the last ISB ---------------------------------------------------


@dataclass(slots=True)
class Spool:
    """What a pcapng spool holds: its packet blocks and its last Interface Statistics Block."""

    packets: int = 0
    isb: dict[str, int] = field(default_factory=dict)
    truncated: bool = False


def read_spool(path: Path) -> Spool:
    spool = Spool()
    if not path.exists() or path.stat().st_size < 12:
        spool.truncated = True
        return spool
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        size, pos, order = len(m), 0, "<"
        while pos + 12 <= size:
            (kind,) = struct.unpack_from("<I", m, pos)
            if kind == SHB:  # each section says its byte order
                order = "<" if m[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            kind, length = struct.unpack_from(order + "II", m, pos)
            if length < 12 or length % 4 or pos + length > size:
                spool.truncated = True
                break
            if kind in (EPB, SPB, OPB):
                spool.packets += 1
            elif kind == ISB:
                spool.isb = _isb_options(m, pos + 20, pos + length - 4, order)
            pos += length
        spool.truncated = spool.truncated or pos != size
    return spool


def _isb_options(m: mmap.mmap, pos: int, end: int, order: str) -> dict[str, int]:
    found: dict[str, int] = {}
    while pos + 4 <= end:
        code, length = struct.unpack_from(order + "HH", m, pos)
        if code == 0:
            break
        if code in ISB_OPTIONS and length == 8:
            found[ISB_OPTIONS[code]] = struct.unpack_from(order + "Q", m, pos + 4)[0]
        pos += 4 + (length + 3) // 4 * 4
    return found


# -- processes: tree, CPU, memory, packet sockets ---------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """pid and its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
                children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of pid's tree, with the children each has reaped (cutime + cstime)."""
    ticks = 0
    for p in tree(pid):
        with contextlib.suppress(OSError, ValueError):
            stat = Path(f"/proc/{p}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            ticks += sum(int(x) for x in fields[11:15])
    return ticks / CLK_TCK


def rss_bytes(pid: int) -> int:
    total = 0
    for p in tree(pid):
        with contextlib.suppress(OSError, ValueError, StopIteration):
            lines = Path(f"/proc/{p}/status").read_text().splitlines()
            total += int(next(x for x in lines if x.startswith("VmRSS")).split()[1]) * 1024
    return total


def holds_packet_socket(pid: int) -> bool:
    """Whether a process of pid's tree has an AF_PACKET socket open (its capture is listening)."""
    inodes = {line.split()[-1] for line in Path("/proc/net/packet").read_text().splitlines()[1:]}
    for p in tree(pid):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{p}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{p}/fd/{fd}")
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        return True
    return False


def listening(pid: int, headless: Headless | None, view: Viewer | None) -> bool:
    """Whether protoscope holds its packet socket; an exit before that is an error with its words."""
    if headless is not None and headless.proc.poll() is not None:
        headless.stop()
        raise RuntimeError(
            f"protoscope exited ({headless.proc.returncode}): {headless.stderr.strip()[-300:]}"
        )
    if view is not None and view.dead():
        words = [line for line in view.quit().splitlines() if line.strip()]
        raise RuntimeError(f"the viewer exited: {' / '.join(words[-3:])[-300:]}")
    return holds_packet_socket(pid)


def wait_until(what: str, ready: Callable[[], bool], timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(0.05)


# -- tcpdump -------------------------------------------------------------------------------------------


class Tcpdump:
    """tcpdump -w on lo; its counters from the lines it prints when SIGINT stops it."""

    def __init__(self, bpf: str, out: Path) -> None:
        self.proc = subprocess.Popen(
            tcpdump_cmd(bpf, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError("tcpdump exited: " + "".join(self.lines).strip())
        return any("listening on" in line for line in self.lines)

    def stop(self) -> dict[str, int]:
        """{'captured', 'received', 'dropped'} after SIGINT."""
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(EXIT_TIMEOUT_S)
        self._reader.join(10)
        text = "".join(self.lines)
        out = {}
        for key, words in (
            ("captured", "packets captured"),
            ("received", "packets received by filter"),
            ("dropped", "packets dropped by kernel"),
        ):
            m = re.search(rf"(\d+) {words}", text)
            out[key] = int(m.group(1)) if m else -1
        return out


# -- protoscope headless ------------------------------------------------------------------------------


class Headless:
    """protoscope --live ... --report: its output read as it comes (a jsonl stream of calls fills a
    pipe in a fraction of a second, and a writer blocked on it would stall the capture), lines
    counted, stderr kept."""

    def __init__(self, cmd: list[str]) -> None:
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = 0
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._count, daemon=True),
            threading.Thread(target=self._keep, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _count(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines += bool(line.strip())

    def _keep(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self.err)

    def stop(self) -> int:
        """SIGINT, as a user's Ctrl-C; its exit status once it has written its report."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(EXIT_TIMEOUT_S)
        for reader in self._readers:
            reader.join(10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# -- the viewer in tmux --------------------------------------------------------------------------------


class Viewer:
    """protoscope's viewer in a detached tmux session on a server of the bench's own (-L), so no
    other tmux session is touched; the pane stays after the viewer exits to show its last words."""

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        self.server = f"bench-live-{os.getpid()}"
        self.session = "viewer"
        settings = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        # One command list, so the pane is kept even if the viewer exits at once (its last words).
        self._tmux(
            "-f", os.devnull, "new-session", "-d", "-s", self.session, "-x", TMUX_SIZE[0],
            "-y", TMUX_SIZE[1], f"exec env {settings} {shlex.join(cmd)}", ";",
            "set-option", "-t", self.session, "remain-on-exit", "on",
        )  # fmt: skip
        self.pid = int(self._tmux("display-message", "-p", "-t", self.session, "#{pane_pid}").strip())
        self.socket = Path(self._tmux("display-message", "-p", "#{socket_path}").strip())

    def _tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.server, *args], check=True, capture_output=True, text=True
        ).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.session)

    def dead(self) -> bool:
        return self._tmux("display-message", "-p", "-t", self.session, "#{pane_dead}").strip() == "1"

    def quit(self) -> str:
        """Press q, wait for the viewer to exit; what the pane shows afterwards."""
        self._tmux("send-keys", "-t", self.session, "q")
        wait_until("viewer exit", self.dead, EXIT_TIMEOUT_S)
        return self._tmux("capture-pane", "-p", "-S", "-", "-t", self.session)

    def close(self) -> None:
        """Stop the bench's tmux server (the viewer with it, if still there) and remove its socket."""
        subprocess.run(["tmux", "-L", self.server, "kill-server"], capture_output=True)
        self.socket.unlink(missing_ok=True)


# -- one run ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    label: str
    rate: int
    viewer: bool
    sent: traffic.Sent | None = None
    tcpdump: dict[str, int] = field(default_factory=dict)
    spool: Spool = field(default_factory=Spool)
    kernel_drops: int | None = None
    drops_from: str = ""
    cpu: float = 0.0
    tcpdump_cpu: float = 0.0
    rss_per_packet: float | None = None
    rss_from: str = ""
    latencies: list[float] = field(default_factory=list)
    markers: int = 0
    shown: int = -1
    refresh: list[tuple[float, float]] = field(default_factory=list)
    calls_found: int | None = None
    calls_failed: int = 0
    note: str = ""


@dataclass(slots=True)
class Screen:
    """What the bench watched on the viewer's screen: when each marker appeared, and the status
    line's packet count next to the viewer's resident memory (for when the live log is absent)."""

    seen: dict[int, float] = field(default_factory=dict)
    samples: list[tuple[float, int, int]] = field(default_factory=list)
    last: str = ""
    shown: int = -1
    """The packet count on the status line when the bench quit the viewer."""


STATUS_PACKETS = re.compile(r"([\d,]+) packets")
STATUS_DROPPED = re.compile(r"([\d,]+) dropped")


def _status_count(screen: str, pattern: re.Pattern[str]) -> int | None:
    for line in reversed(screen.splitlines()):
        m = pattern.search(line)
        if m and ("capturing" in line or "paused" in line):
            return int(m.group(1).replace(",", ""))
    return None


def watch(
    viewer: Viewer, dst_port: int, seconds: float, screen: Screen, log: Path, at_end: Callable[[], None]
) -> list[tuple[int, float]]:
    """While the generator runs (from now): send the markers and poll the screen every POLL_S.
    at_end() when the traffic and TAIL_S are over; then poll on for markers not yet seen (at most
    LATE_S) and until the viewer has settled (at most SETTLE_LIMIT_S): its packet count unchanged
    for IDLE_S and its live log's last look at that count, so the log covers the whole run.
    Returns (port, monotonic send time) of every marker."""
    n = max(1, min(MAX_MARKERS, int(seconds / MARKER_INTERVAL_S)))
    interval = max(MARKER_INTERVAL_S, seconds / n)
    ports = traffic.marker_ports(n, {dst_port})
    sent: list[tuple[int, float]] = []
    start = time.monotonic()
    end = start + seconds + TAIL_S
    next_rss = start + 1.0
    ended = False
    changed = (start, -1)
    while True:
        now = time.monotonic()
        if now >= end and not ended:
            at_end()
            ended = True
        if ended and (len(screen.seen) == len(sent) or now >= end + LATE_S):
            logged = live_log(log)
            idle = now - changed[0] >= IDLE_S and (not logged or logged[-1].get("packets") == changed[1])
            if idle or now >= end + SETTLE_LIMIT_S:
                break
        if len(sent) < n and now >= start + interval * (len(sent) + 0.5):
            port = ports[len(sent)]
            sent.append((port, traffic.send_marker(port, dst_port)))
        text = viewer.screen()
        seen_at = time.monotonic()
        screen.last = text
        for port, _t in sent:
            if port not in screen.seen and re.search(rf":{port}(?!\d)", text):
                screen.seen[port] = seen_at
        count = _status_count(text, STATUS_PACKETS)
        if count is not None and count != changed[1]:
            changed = (seen_at, count)
        screen.shown = changed[1]
        if seen_at >= next_rss:
            if count is not None:
                screen.samples.append((seen_at, count, rss_bytes(viewer.pid)))
            next_rss += 1.0
        time.sleep(max(0.0, POLL_S - (time.monotonic() - now)))
    return sent


def live_log(path: Path) -> list[dict[str, float]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            rows.append(json.loads(line))
    return rows


def rss_growth(samples: list[tuple[float, int, int]], start: float) -> float | None:
    """Bytes of resident memory a packet over a fixed base: the least-squares slope of rss against
    packets shown, from 1 s into the traffic (samples are (time, packets shown, rss)). The columns
    grow by doubling their storage, so rss climbs in steps; the slope averages the steps where the
    difference of two samples depends on where they fall between two doublings."""
    later = [s for s in samples if s[0] >= start + 1.0]
    if len(later) < 3 or later[-1][1] <= later[0][1]:
        return None
    xs = [float(s[1]) for s in later]
    ys = [float(s[2]) for s in later]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def udp_label(rate: int, viewer: bool) -> str:
    return f"{rate / 1000:g}k/s {'viewer' if viewer else 'headless'}"


def run_udp(
    rate: int, seconds: float, viewer: bool, senders: int, work: Path, flags: set[str], label: str = ""
) -> Run:
    run = Run(label or udp_label(rate, viewer), rate, viewer)
    sink = traffic.udp_sink()
    port = sink.getsockname()[1]
    bpf = f"udp dst port {port}"
    spool, theirs, log = work / "protoscope.pcapng", work / "tcpdump.pcap", work / "live-log.jsonl"
    for f in (spool, theirs, log):
        f.unlink(missing_ok=True)
    dump = Tcpdump(bpf, theirs)
    view: Viewer | None = None
    headless: Headless | None = None
    screen = Screen()
    markers: list[tuple[int, float]] = []
    stderr = ""
    try:
        if viewer:
            view = Viewer(protoscope_cmd(bpf, spool, flags, None), {"PROTOSCOPE_LIVE_LOG": str(log)})
            pid = view.pid
        else:
            headless = Headless(
                protoscope_cmd(bpf, spool, flags, ["--report", "summary", "--format", "json"])
            )
            pid = headless.proc.pid
        wait_until("tcpdump", dump.ready)
        wait_until("protoscope", lambda: listening(pid, headless, view))
        time.sleep(SETTLE_S)
        traffic_start = time.monotonic() + traffic.START_DELAY_S
        handle = traffic.start_udp(port, rate, seconds, senders)
        time.sleep(max(0.0, traffic_start - time.monotonic()))
        cpu0, dump0 = cpu_seconds(pid), cpu_seconds(dump.proc.pid)

        def at_end() -> None:
            wall = time.monotonic() - traffic_start
            run.cpu = (cpu_seconds(pid) - cpu0) / wall
            run.tcpdump_cpu = (cpu_seconds(dump.proc.pid) - dump0) / wall

        if view is not None:
            markers = watch(view, port, seconds, screen, log, at_end)
        else:
            time.sleep(max(0.0, traffic_start + seconds + TAIL_S - time.monotonic()))
            at_end()
        run.sent = traffic.finish_udp(handle, seconds)
        if view is not None:
            last_words = view.quit()
            run.markers, run.shown = len(markers), screen.shown
            run.latencies = sorted(screen.seen[p] - t for p, t in markers if p in screen.seen)
            logged = live_log(log)
            epoch_start = time.time() - (time.monotonic() - traffic_start)
            if logged:
                run.refresh = [(r["t"] - epoch_start, r["refresh_s"]) for r in logged if "refresh_s" in r]
                samples = [
                    (r["t"] - epoch_start + traffic_start, int(r["packets"]), int(r["rss"])) for r in logged
                ]
                run.rss_per_packet, run.rss_from = rss_growth(samples, traffic_start), "live log"
            if run.rss_per_packet is None:  # no log, or fewer than two looks after the first second
                run.rss_per_packet = rss_growth(screen.samples, traffic_start)
                run.rss_from = "VmRSS + status line" + ("" if logged else " (no live log)")
            stderr = last_words
        elif headless is not None:
            code = headless.stop()
            stderr = headless.stderr
            if code != 0:
                run.note = f"protoscope exit {code}: {stderr.strip()[-200:]}"
    finally:
        run.tcpdump = dump.stop() if dump.proc.poll() is None else run.tcpdump
        if view is not None:
            view.close()
        if headless is not None:
            headless.kill()
        sink.close()
    run.spool = read_spool(spool)
    _kernel_drops(run, stderr, screen.last)
    for f in (spool, theirs):
        f.unlink(missing_ok=True)
    return run


def _kernel_drops(run: Run, stderr: str, last_screen: str) -> None:
    """isb_osdrop from the spool; without an ISB (today's engine), what protoscope printed."""
    for option in ("isb_osdrop", "isb_ifdrop"):  # dumpcap writes isb_ifdrop for the kernel's drops
        if option in run.spool.isb:
            run.kernel_drops, run.drops_from = run.spool.isb[option], option
            return
    m = re.search(r"([\d,]+) dropped by the kernel", stderr)
    if m:
        run.kernel_drops, run.drops_from = int(m.group(1).replace(",", "")), "stderr (no ISB)"
    elif run.viewer and (n := _status_count(last_screen, STATUS_DROPPED)) is not None:
        run.kernel_drops, run.drops_from = n, "status line (no ISB)"
    elif re.search(r"captured \d+ packets", stderr):
        run.kernel_drops, run.drops_from = 0, "stderr (no ISB)"


def udp_rows(rate: int, seconds: float, viewer: bool, senders: int, work: Path, flags: set[str]) -> list[Row]:
    return rows_of(run_udp(rate, seconds, viewer, senders, work, flags))


def run_grpc(seconds: float, rate: int, work: Path, flags: set[str]) -> Run:
    run = Run(GRPC_LABEL, rate, False)
    server = traffic.start_grpc_server()
    bpf = f"tcp port {server[2]}"
    spool, theirs = work / "protoscope-grpc.pcapng", work / "tcpdump-grpc.pcap"
    dump = Tcpdump(bpf, theirs)
    headless = Headless(protoscope_cmd(bpf, spool, flags, ["--report", "calls", "--format", "jsonl"]))
    pid = headless.proc.pid
    stderr = ""
    try:
        wait_until("tcpdump", dump.ready)
        wait_until("protoscope", lambda: listening(pid, headless, None))
        time.sleep(SETTLE_S)
        cpu0, dump0, t0 = cpu_seconds(pid), cpu_seconds(dump.proc.pid), time.monotonic()
        client = traffic.start_grpc_client(server[2], rate, seconds, GRPC_IN_FLIGHT)
        run.sent, run.calls_failed = traffic.finish_grpc_client(client, seconds)
        time.sleep(TAIL_S)
        wall = time.monotonic() - t0
        run.cpu = (cpu_seconds(pid) - cpu0) / wall
        run.tcpdump_cpu = (cpu_seconds(dump.proc.pid) - dump0) / wall
        code = headless.stop()
        run.calls_found, stderr = headless.lines, headless.stderr
        if code != 0:
            run.note = f"protoscope exit {code}: {stderr.strip()[-200:]}"
    finally:
        run.tcpdump = dump.stop() if dump.proc.poll() is None else run.tcpdump
        headless.kill()
        traffic.stop_grpc_server(server)
    run.spool = read_spool(spool)
    _kernel_drops(run, stderr, "")
    for f in (spool, theirs):
        f.unlink(missing_ok=True)
    return run


# -- the table -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    run: str
    check: str
    measured: str
    target: str = ""
    met: bool | None = None


def _verdict(met: bool | None) -> str:
    return "" if met is None else "met" if met else "UNMET"


def rows_of(run: Run) -> list[Row]:
    rows: list[Row] = []
    r = run.label
    sent = run.sent
    kept = run.spool.packets
    theirs = run.tcpdump.get("captured", -1)
    their_drops = run.tcpdump.get("dropped", -1)
    if sent is not None and run.calls_found is None:
        markers = f" + {run.markers} markers" if run.markers else ""
        achieved = f"{sent.seconds:.2f} s = {sent.rate:,.0f}/s ({sent.processes} proc)"
        rows.append(
            Row(
                r,
                "datagrams sent (achieved rate)",
                f"{sent.count:,}{markers} in {achieved}",
                f"{run.rate:,}/s +-1 %",
                sent.rate >= 0.99 * run.rate,
            )
        )
    elif sent is not None:
        rows.append(
            Row(
                r,
                "calls made (achieved rate)",
                f"{sent.count:,} in {sent.seconds:.2f} s = {sent.rate:,.0f}/s ({GRPC_IN_FLIGHT} in flight)",
                f">= {GRPC_MIN_RATE:,}/s",
                sent.rate >= GRPC_MIN_RATE,
            )
        )
    rows.append(Row(r, "tcpdump captured / kernel drops", f"{theirs:,} / {their_drops:,}"))
    isb = ", ".join(f"{k}={v:,}" for k, v in run.spool.isb.items()) or "no ISB"
    trunc = ", spool truncated" if run.spool.truncated else ""
    rows.append(Row(r, "protoscope kept (spool EPBs)", f"{kept:,} ({isb}{trunc})"))
    drops = "?" if run.kernel_drops is None else f"{run.kernel_drops:,}"
    if run.rate >= 100_000 and run.calls_found is None:
        rows.append(
            Row(
                r,
                "protoscope kernel drops",
                f"{drops} ({run.drops_from})",
                f"<= tcpdump's ({their_drops:,})",
                None if run.kernel_drops is None else run.kernel_drops <= max(their_drops, 0),
            )
        )
    else:
        rows.append(
            Row(
                r,
                "protoscope kernel drops",
                f"{drops} ({run.drops_from})",
                "0",
                None if run.kernel_drops is None else run.kernel_drops == 0,
            )
        )
    ratio = kept / theirs if theirs > 0 else 0.0
    rows.append(Row(r, "kept / tcpdump's", f"{100 * ratio:.3f} %", ">= 99.99 %", ratio >= KEPT_TARGET))
    cpu_target = run.rate <= 50_000 and run.calls_found is None
    rows.append(
        Row(
            r,
            "CPU, protoscope's processes",
            f"{run.cpu:.2f} core (tcpdump {run.tcpdump_cpu:.3f})",
            "<= 1 core" if cpu_target else "",
            run.cpu <= CPU_TARGET if cpu_target else None,
        )
    )
    if run.calls_found is not None and sent is not None:
        rows.append(
            Row(
                r,
                "calls in --report calls",
                f"{run.calls_found:,} of {sent.count:,} made ({run.calls_failed} failed)",
                "all",
                run.calls_found == sent.count,
            )
        )
    if run.viewer:
        rows.append(
            Row(
                r,
                "viewer shows, when quit",
                f"{run.shown:,} packets (status line)",
                f"all kept ({kept:,})",
                run.shown == kept,
            )
        )
        growth = "?" if run.rss_per_packet is None else f"{run.rss_per_packet:.0f} B"
        rows.append(
            Row(
                r,
                "resident memory a packet",
                f"{growth} ({run.rss_from})",
                f"<= {RSS_TARGET:.0f} B",
                None if run.rss_per_packet is None else run.rss_per_packet <= RSS_TARGET,
            )
        )
        lat = run.latencies
        unseen = run.markers - len(lat)
        p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat and not unseen else float("inf")
        if unseen:
            late = f"{unseen} of {run.markers} never appeared (dropped, or > {LATE_S:.0f} s late)"
            text = f"p50 {statistics.median(lat):.2f} s; {late}" if lat else late
        else:
            text = f"p50 {statistics.median(lat):.2f} s, p99 {p99:.2f} s ({run.markers} markers)"
        rows.append(
            Row(r, "new packet on screen", text, f"p99 <= {LATENCY_TARGET_S:.0f} s", p99 <= LATENCY_TARGET_S)
        )
    if run.note:
        rows.append(Row(r, "note", run.note))
    return rows


def soak_rows(run: Run) -> list[Row]:
    """The soak: each minute's slowest refresh against the first minute's (from the live log)."""
    if not run.refresh:
        return [Row(run.label, "refresh per minute", "no PROTOSCOPE_LIVE_LOG lines: not measured")]
    by_minute: dict[int, list[float]] = {}
    for t, secs in run.refresh:
        if t >= 0:
            by_minute.setdefault(int(t // 60), []).append(secs)
    slowest = {m: max(v) for m, v in by_minute.items()}
    first = slowest.get(0, 0.0)
    later = [slowest[m] for m in sorted(slowest) if m > 0]
    text = f"minute 1: {first:.3f} s; later: " + " ".join(f"{x:.3f}" for x in later)
    # The median shows the trend (a refresh that costs more as the capture grows); the slowest one
    # of a minute also catches one-off stalls (another process on the 2 cores, a collection).
    medians = [statistics.median(by_minute[m]) for m in sorted(by_minute)]
    trend = "minutes 1, 2, ...: " + " ".join(f"{x:.3f}" for x in medians)
    return [
        Row(run.label, "slowest refresh a minute", text, "<= minute 1's", all(x <= first for x in later)),
        Row(run.label, "median refresh a minute", trend),
    ]


def table(rows: list[Row]) -> Iterator[str]:
    """The rows in columns; a note or a failure (free text, often long) runs past its column."""
    head = ("run", "check", "measured", "target")
    cells = [(r.run, r.check, r.measured, r.target) for r in rows]
    sized = [c for c, r in zip(cells, rows, strict=True) if r.check not in FREE_TEXT] or [head]
    widths = [max(len(x) for x in col) for col in zip(head, *sized, strict=True)]
    yield "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + "  verdict"
    previous = ""
    for row, (run, *rest) in zip(rows, cells, strict=True):
        line = [run if run != previous else "", *rest]
        previous = run
        text = "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + "  " + _verdict(row.met)
        yield text.rstrip()


def attempt(label: str, measure: Callable[[], list[Row]]) -> list[Row]:
    """One run's rows; a run that fails is one row saying why, and the next runs all the same."""
    try:
        rows = measure()
    except Exception as exc:
        rows = [Row(label, "failed", f"{type(exc).__name__}: {exc}")]
    print(f"  done: {label}", flush=True)
    return rows


def parse_rate(text: str) -> int:
    text = text.strip().lower()
    return int(float(text[:-1]) * 1000) if text.endswith("k") else int(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="traffic per run (default 20)")
    ap.add_argument("--rates", default="10k,50k,100k", help="UDP datagrams/s, comma separated")
    ap.add_argument("--modes", default="headless,viewer", help="comma separated (default headless,viewer)")
    ap.add_argument("--senders", type=int, default=0, help="generator processes (default: 2 above 60k/s)")
    ap.add_argument("--no-grpc", action="store_true", help="skip the gRPC load")
    ap.add_argument("--grpc-rate", type=int, default=GRPC_RATE, help=f"calls/s (default {GRPC_RATE})")
    ap.add_argument("--soak", type=float, metavar="MINUTES", help=f"{SOAK_RATE}/s with the viewer open")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_live needs root (packet sockets): sudo .venv/bin/python bench/bench_live.py")
    for tool in ("tcpdump", "tmux"):
        if shutil.which(tool) is None:
            sys.exit(f"bench_live needs {tool}")
    flags = protoscope_flags()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    missing = sorted({"-B", "-s"} - flags)
    print(
        f"protoscope --live vs tcpdump -w on lo, side by side, {args.seconds:g} s of traffic a run; "
        f"UDP payload {traffic.PAYLOAD_SIZE} bytes of text no decoder takes (a plain UDP flow); "
        f"kernel buffer {BUFFER_MIB} MiB for both"
        + (f" (protoscope without {', '.join(missing)}: not in this build)" if missing else "")
        + f"; {os.cpu_count()} cores shared by generator, tcpdump and protoscope"
        + f" (load average before: {os.getloadavg()[0]:.2f})",
        flush=True,
    )
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        work = Path(tmp)
        for rate in (parse_rate(r) for r in args.rates.split(",") if r.strip()):
            senders = args.senders or (2 if rate > 60_000 else 1)
            for viewer in (mode == "viewer" for mode in modes):
                rows += attempt(
                    udp_label(rate, viewer),
                    partial(udp_rows, rate, args.seconds, viewer, senders, work, flags),
                )
        if not args.no_grpc:
            rows += attempt(GRPC_LABEL, lambda: rows_of(run_grpc(args.seconds, args.grpc_rate, work, flags)))
        if args.soak:
            label = f"soak {args.soak:g} min {SOAK_RATE / 1000:g}k/s viewer"

            def soak() -> list[Row]:
                run = run_udp(SOAK_RATE, args.soak * 60, True, 1, work, flags, label)
                return rows_of(run) + soak_rows(run)

            rows += attempt(label, soak)
    print()
    for line in table(rows):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
