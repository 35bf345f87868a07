"""The hostile inputs of issue 12 at the issue's scale: time and peak memory of protoscope and of
tshark on the same captures, side by side, each run under an address-space cap of 2 GiB.

Each crafted input of tests/hostile.py is written to bench/out/hostile/ at `Input.issue` (once;
kept between runs) and run through the reports that load its work (`Input.reports`; `--all`
runs every report) as `protoscope F --report R --format json`, one process per run, and once
through `tshark -r F -V` (every packet dissected, with the decode-as hints it needs to reach the
same protocols). Targets (issue 12): every protoscope run under 1 GiB resident and under 10 s,
exit 0 or 2 with one line on stderr, and the findings report naming the limit hit (the finding
tests/inspector/test_hostile.py expects of that input). A run that passes TIMEOUT_S is killed
and shown as such.

Run: python bench/bench_hostile.py [--only NAME ...] [--all] [--large] [--timeout S] [--no-tshark]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from bench_corpus import protoscope  # noqa: E402

from tests import hostile  # noqa: E402
from tests.hostile import EXTRA_ISSUE_SCALES, INPUTS, Input  # noqa: E402
from tests.inspector.test_hostile import FINDINGS  # noqa: E402

OUT = ROOT / "bench" / "out" / "hostile"
CAP = 2 << 30
"""Address space of every run (RLIMIT_AS), protoscope's and tshark's alike."""
TARGET_RSS = 1 << 30
TARGET_S = 10.0
TIMEOUT_S = 60.0
"""A run still going after this long is killed (the issue measured some at minutes)."""
TSHARK_ARGS: dict[str, list[str]] = {
    "dtls-new-message-seq": ["-d", "udp.port==50000,dtls"],
    "dtls-one-byte-fragments": ["-d", "udp.port==50000,dtls"],
    "dtls-x509-version-10": ["-d", "udp.port==40000,dtls"],
    "protobuf-gzip-bomb": ["-d", "tcp.port==50051,http2"],
    "http2-header-flood": ["-d", "tcp.port==50051,http2"],
    "grpc-endless-stream": ["-d", "tcp.port==50051,http2"],
    "terminal-text": ["-d", "tcp.port==50051,http2"],
}
"""What tshark needs to dissect what protoscope finds by its heuristics (h2c, DTLS on any port)."""
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PROTOSCOPE_DEBUG")}


@dataclass(slots=True)
class Run:
    """One process: its wall time, peak resident memory, exit status and stderr."""

    seconds: float
    maxrss: int
    """Bytes (ru_maxrss of the process alone, from wait4)."""
    status: int | None
    """Exit code, -signal, or None when it was killed at the timeout."""
    stderr: str


def run(cmd: list[str], stdout: Path | None, timeout: float) -> Run:
    """`cmd` under CAP, its output to `stdout` (or nowhere), killed after `timeout` seconds."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))

    out = open(stdout, "wb") if stdout is not None else subprocess.DEVNULL
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, preexec_fn=cap, env=ENV)
        status: int | None = None
        while True:
            pid, wait_status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                status = os.waitstatus_to_exitcode(wait_status)
                break
            if time.perf_counter() - start > timeout:
                os.kill(proc.pid, signal.SIGKILL)
                _pid, _status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        seconds = time.perf_counter() - start
        proc.returncode = status if status is not None else -signal.SIGKILL  # reaped by wait4
        if stdout is not None:
            out.close()  # type: ignore[union-attr]
        err.seek(0)
        text = err.read().decode(errors="replace")
    return Run(seconds, usage.ru_maxrss * 1024, status, text)


def ensure(item: Input, scale: int) -> Path:
    """The input at `scale`, written once under OUT (again when tests/hostile.py changes)."""
    OUT.mkdir(parents=True, exist_ok=True)
    version = hashlib.sha256(Path(hostile.__file__).read_bytes()).hexdigest()[:8]
    path = OUT / f"{item.name}-{scale}-{version}.pcap"
    if not path.exists():
        partial = path.with_suffix(".part")
        item.make(partial, scale)
        partial.rename(path)
    return path


CODE = re.compile(rb'"code": "([^"]*)"')


def finding_codes(path: Path) -> Counter[str]:
    """Finding codes of a findings report in JSON, counted without loading it (it may hold
    millions)."""
    counts: Counter[str] = Counter()
    with open(path, "rb") as f:
        tail = b""
        while chunk := f.read(1 << 22):
            data = tail + chunk
            cut = data.rfind(b"\n") + 1
            counts.update(m.group(1).decode() for m in CODE.finditer(data, 0, cut))
            tail = data[cut:]
        counts.update(m.group(1).decode() for m in CODE.finditer(tail))
    return counts


@dataclass(slots=True)
class Row:
    name: str
    size: int
    report: str
    ran: Run
    finding: str
    """The finding that names the limit ('-' none; '(none due)' where no limit is hit; '' not a
    findings run)."""
    tshark: Run | None

    def verdict(self) -> str:
        """What misses a target, or 'ok'."""
        misses = []
        lines = self.ran.stderr.splitlines()
        if self.ran.status is None:
            misses.append("timeout")
        elif self.ran.status not in (0, 2) or (self.ran.status == 2 and len(lines) != 1):
            misses.append(f"exit {self.ran.status}")
        elif self.ran.status == 0 and lines:
            misses.append("stderr")
        if self.ran.maxrss >= TARGET_RSS:
            misses.append("memory")
        if self.ran.seconds >= TARGET_S:
            misses.append("time")
        if self.finding == "-":
            misses.append("no limit finding")
        return ", ".join(misses) or "ok"


def measure(
    item: Input, scale: int, reports: tuple[str, ...], timeout: float, tshark: str | None
) -> list[Row]:
    path = ensure(item, scale)
    size = path.stat().st_size
    tshark_run = None
    if tshark is not None:
        tshark_run = run([tshark, "-r", str(path), "-V", *TSHARK_ARGS.get(item.name, [])], None, timeout)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for report in reports:
            target = Path(tmp) / f"{report}.json"
            ran = run([protoscope(), str(path), "--report", report, "--format", "json"], target, timeout)
            finding = ""
            if report == "findings":
                codes = finding_codes(target) if ran.status == 0 else Counter()
                pattern = FINDINGS[item.name].finding
                hits = sorted(c for c in codes if pattern is not None and re.search(pattern, c))
                finding = ", ".join(f"{c} ({codes[c]})" for c in hits) or ("-" if pattern else "(none due)")
            rows.append(
                Row(item.name, size, report, ran, finding, tshark_run if report == reports[0] else None)
            )
    return rows


def _time(r: Run | None) -> str:
    if r is None:
        return ""
    return f">{r.seconds:.0f} killed" if r.status is None else f"{r.seconds:.2f}"


def _mib(r: Run | None) -> str:
    return "" if r is None else f"{r.maxrss / (1 << 20):.0f}"


def _exit(r: Run) -> str:
    if r.status is None:
        return "killed"
    lines = r.stderr.strip().splitlines()
    return f"{r.status}" + (f": {lines[-1][:60]}" if lines else "")


def table(rows: list[Row]) -> list[str]:
    head = ["input", "MB", "report", "s", "MiB", "exit", "limit finding", "tshark s", "tshark MiB", "verdict"]
    cells = [
        [
            r.name,
            f"{r.size / 1e6:.2f}",
            r.report,
            _time(r.ran),
            _mib(r.ran),
            _exit(r.ran),
            r.finding,
            _time(r.tshark),
            _mib(r.tshark),
            r.verdict(),
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", default=None, help="inputs to run (default: all)")
    ap.add_argument("--all", action="store_true", help="every report, not only the input's own")
    ap.add_argument("--large", action="store_true", help="also the larger runs (a 256 MB pcap of zeros)")
    ap.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds before a run is killed")
    ap.add_argument("--no-tshark", action="store_true")
    args = ap.parse_args()
    tshark = None if args.no_tshark else shutil.which("tshark")
    jobs = [(item, item.issue) for item in INPUTS]
    if args.large:
        by_name = {i.name: i for i in INPUTS}
        jobs += [(by_name[name], scale) for name, scale in EXTRA_ISSUE_SCALES]
    if args.only:
        jobs = [(i, s) for i, s in jobs if i.name in args.only]
    everything = ("summary", "flows", "packets", "findings", "calls", "streams", "sessions")
    rows: list[Row] = []
    for item, scale in jobs:
        reports = everything if args.all else item.reports
        if "findings" not in reports:
            reports = ("findings", *reports)
        got = measure(item, scale, reports, args.timeout, tshark)
        for line in table(got)[2:]:
            print(line, file=sys.stderr, flush=True)  # progress, as each input finishes
        rows += got
    print("\n".join(table(rows)))
    missed = [r for r in rows if r.verdict() != "ok"]
    print(
        f"\n{len(rows) - len(missed)} of {len(rows)} runs meet the targets "
        f"(< {TARGET_RSS >> 20} MiB resident, < {TARGET_S:.0f} s, exit 0/2 with one line, "
        "the limit's finding)"
    )
    print(json.dumps({"missed": [f"{r.name} {r.report}: {r.verdict()}" for r in missed]}, indent=1))


if __name__ == "__main__":
    main()
