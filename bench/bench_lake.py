"""The Parquet export against the packets report, and many captures in parallel, side by side in one run.

Issue 17 (every table as Parquet) set four targets, all measured here in one run:

1. On the generated bench captures (bench/out/udp-1m.pcap: 1M RTP packets with STUN consent
   checks; grpc-200k.pcap: 200k packets of h2c gRPC), `protoscope F --export parquet --output DIR
   --jobs 1` (one decoding pass feeding every table: packets, flows, findings and every analysis's)
   against `protoscope F --report packets --format jsonl > FILE` (the one report it most resembles),
   taking turns RUNS times (median time, largest peak): export time <= 1.3x the report's, peak memory
   <= 1.2x, and the Parquet files of all the capture's tables <= 1/5 of the JSONL's bytes.
2. COPIES distinct copies of one sample capture exported with `--jobs 2` against `--jobs 1`, each
   into a fresh DIR: speed-up >= 1.7x on a 2-core machine. The sample (default: the public
   corpus's packt--grpc-go_Unary.pcapng, 440 KB, 4,318 packets of gRPC over HTTP/2 with its calls
   and messages, so every export fills the packets, flows, calls and grpc_messages tables; without
   the corpus, captures/samples/webrtc-datachannels.pcap) is copied with one header field changed so
   that each copy has its own capture id (the SHA-256 of the bytes) and is exported, not skipped as
   a duplicate: in a pcap the global header's `sigfigs` (timestamp accuracy, which writers set to 0
   and readers, ours and tshark's, ignore), in a pcapng a comment option added to the section header
   block (our reader and the reports read packet comments only). The packets, and so the work, are
   the same in every copy.
3. tshark's time to read the same capture (`tshark -r F -T fields -e frame.number`), the anchor the
   repo's benches carry.

Peak memory is that of the whole process tree (an export may run its captures in worker
processes): the sum of each process's VmHWM, polled from /proc, or the kernel's largest single-
process figure when that is larger. The machine (nproc, load average before and after each part)
is printed with the figures: other work on the machine slows the side that runs during it.
Exit status 0 whatever the figures (a bench, not a test).
Run: python bench/bench_lake.py [--quick] [--runs N] [--copies N] [--sample FILE] [--part 1|2]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_captures import OUT, ensure, grpc_capture

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_SAMPLE = ROOT.parent / "shared" / "captures" / "public" / "packt--grpc-go_Unary.pcapng"
REPO_SAMPLE = ROOT / "captures" / "samples" / "webrtc-datachannels.pcap"
CLI = (sys.executable, "-m", "protoscope.inspector.cli")
POLL_SECONDS = 0.05
"""How often the process tree's memory is read (a /proc scan costs ~0.5 ms)."""
QUICK_COUNT = {"udp-1m.pcap": 100_000, "grpc-200k.pcap": 20_000}
"""--quick: the first packets of each bench capture only (`-c N` on both sides)."""

TIME_RATIO = 1.3
MEMORY_RATIO = 1.2
SIZE_RATIO = 1 / 5
SPEEDUP = 1.7


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_kib: int
    """The process tree's: the sum of its processes' peaks (or the largest one's, if more)."""
    largest_kib: int
    """The largest single process's peak (the kernel's ru_maxrss of the command and its children)."""
    cpu_seconds: float
    """User + system CPU time of the command and the workers it waited for: with the wall time,
    how much of the run had two cores busy (other work on the machine takes them away)."""
    anon_kib: int
    """The sum of each process's largest RssAnon seen by the polls (a lower bound of the heap's
    peak): what the peak is without the shared libraries' file pages (pyarrow's are ~70 MiB)."""


@dataclass(frozen=True)
class Target:
    what: str
    measured: float
    limit: float
    at_most: bool

    @property
    def passed(self) -> bool:
        return self.measured <= self.limit if self.at_most else self.measured >= self.limit


def _group_members(pgid: int) -> list[int]:
    """The pids of process group `pgid` (the command and the workers it forks)."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the parenthesised command name: state ppid pgrp ...
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _memory_kib(pid: int) -> tuple[int, int]:
    """A process's peak resident memory (VmHWM) and its resident anonymous memory now (RssAnon:
    the heap, without the shared libraries' pages that RSS also counts)."""
    hwm = anon = 0
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    hwm = int(line.split()[1])
                elif line.startswith(b"RssAnon:"):
                    anon = int(line.split()[1])
    except OSError:
        pass
    return hwm, anon


def _watch(pgid: int, done: threading.Event, peaks: dict[int, tuple[int, int]]) -> None:
    """Until `done`: each group member's largest VmHWM and RssAnon, as read while it lived."""
    while not done.wait(POLL_SECONDS):
        for pid in _group_members(pgid):
            hwm, anon = _memory_kib(pid)
            seen = peaks.get(pid, (0, 0))
            peaks[pid] = (max(seen[0], hwm), max(seen[1], anon))


def run(cmd: Sequence[str], stdout: Path | None = None) -> Run:
    """Wall seconds and peak memory (KiB) of one whole command; exits on failure."""
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(stdout, "wb")) if stdout is not None else subprocess.DEVNULL
        errors = stack.enter_context(tempfile.TemporaryFile())
        peaks: dict[int, tuple[int, int]] = {}
        done = threading.Event()
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=errors, start_new_session=True)
        watcher = threading.Thread(target=_watch, args=(proc.pid, done, peaks), daemon=True)
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t
        done.set()
        watcher.join()
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            tail = errors.read().decode(errors="replace").strip().splitlines()[-5:]
            sys.exit(f"failed: {shlex.join(cmd)}\n" + "\n".join(tail))
    tree = sum(hwm for hwm, _ in peaks.values())
    cpu = usage.ru_utime + usage.ru_stime
    return Run(elapsed, max(usage.ru_maxrss, tree), usage.ru_maxrss, cpu, sum(a for _, a in peaks.values()))


def take_turns(commands: Sequence[Callable[[], Run]], runs: int) -> list[list[Run]]:
    """Each command's runs, the commands taking turns `runs` times."""
    results: list[list[Run]] = [[] for _ in commands]
    for _ in range(runs):
        for i, command in enumerate(commands):
            results[i].append(command())
    return results


def median_time(runs: list[Run]) -> float:
    return statistics.median(r.seconds for r in runs)


def peak(runs: list[Run]) -> int:
    return max(r.peak_kib for r in runs)


def dataset_bytes(output: Path) -> tuple[int, int]:
    """Bytes of every file of the dataset's tables (not `_staging`), and how many tables."""
    tables = [d for d in output.iterdir() if d.is_dir() and not d.name.startswith("_")]
    size = sum(f.stat().st_size for d in tables for f in d.rglob("*") if f.is_file())
    return size, len(tables)


def captures_in(output: Path) -> int:
    """How many captures the dataset holds (the `captures` table's partitions)."""
    table = output / "captures"
    return sum(1 for d in table.iterdir() if d.name.startswith("capture=")) if table.is_dir() else 0


def row(label: str, runs: list[Run], note: str) -> None:
    largest, anon = max(r.largest_kib for r in runs), max(r.anon_kib for r in runs)
    print(f"  {label:34} {median_time(runs):7.2f} s {mib(peak(runs))} {mib(largest)} {mib(anon)}   {note}")


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def mib(kib: int) -> str:
    return f"{kib / 1024:7.0f} MiB"


def export_cmd(paths: Sequence[Path], output: Path, jobs: int, count: int) -> list[str]:
    head = ["-c", str(count)] if count else []
    return [
        *CLI,
        *map(str, paths),
        *head,
        "--export",
        "parquet",
        "--output",
        str(output),
        "--jobs",
        str(jobs),
    ]


def single_capture(capture: Path, work: Path, runs: int, count: int, tshark: str) -> list[Target]:
    """Part 1: export against the JSONL packets report (and tshark) on one bench capture."""
    limit = ["-c", str(count)] if count else []
    exp_cmd = export_cmd([capture], work / "parquet", 1, count)
    rep_cmd = [*CLI, str(capture), *limit, "--report", "packets", "--format", "jsonl"]
    ts_cmd = [tshark, "-r", str(capture), *limit, "-T", "fields", "-e", "frame.number"]
    jsonl = work / "packets.jsonl"
    sizes: dict[str, int] = {}

    def export() -> Run:
        shutil.rmtree(work / "parquet", ignore_errors=True)
        result = run(exp_cmd)
        if captures_in(work / "parquet") != 1:
            sys.exit(f"{capture.name}: the export left no capture in the dataset")
        sizes["parquet"], sizes["tables"] = dataset_bytes(work / "parquet")
        shutil.rmtree(work / "parquet")
        return result

    def report() -> Run:
        result = run(rep_cmd, stdout=jsonl)
        sizes["jsonl"] = jsonl.stat().st_size
        jsonl.unlink()
        return result

    print(f"\n{capture.name}" + (f" (first {count:,} packets)" if count else ""), f"load {load()}")
    for cmd in (exp_cmd, [*rep_cmd, ">", "FILE"], [*ts_cmd, ">", "/dev/null"]):
        print("  $", shlex.join(cmd).replace(sys.executable, "python"))
    ex, rep, ts = take_turns([export, report, lambda: run(ts_cmd)], runs)
    print(f"  {'':34} {'time':>9} {'peak RSS':>11} {'largest proc':>11} {'heap (anon)':>11}   output")
    row(
        "protoscope --export parquet -j 1",
        ex,
        f"{sizes['parquet'] / 2**20:.1f} MiB in {sizes['tables']} tables",
    )
    row("protoscope --report packets jsonl", rep, f"{sizes['jsonl'] / 2**20:.1f} MiB")
    row("tshark -T fields -e frame.number", ts, "(anchor)")
    name = capture.name
    return [
        Target(f"{name}: export time / report time", median_time(ex) / median_time(rep), TIME_RATIO, True),
        Target(f"{name}: export peak memory / report's", peak(ex) / peak(rep), MEMORY_RATIO, True),
        Target(f"{name}: Parquet bytes / JSONL bytes", sizes["parquet"] / sizes["jsonl"], SIZE_RATIO, True),
    ]


def distinct_copy(sample: bytes, n: int) -> bytes:
    """`sample` with one field no reader uses set from `n`, so each copy has its own capture id."""
    magic = sample[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        order = "<" if magic[0] in (0xD4, 0x4D) else ">"
        # pcap global header: magic, version (2+2), thiszone, sigfigs (offset 12), snaplen, network.
        return sample[:12] + struct.pack(order + "I", n) + sample[16:]
    if magic == b"\x0a\x0d\x0d\x0a":
        order = "<" if sample[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        (length,) = struct.unpack_from(order + "I", sample, 4)
        text = f"protoscope bench_lake copy {n}".encode()
        option = struct.pack(order + "HH", 1, len(text)) + text + b"\0" * (-len(text) % 4)
        # Section header block: type, length, byte-order magic, version, section length (24
        # bytes), options, length. The section length counts the blocks after this one: unchanged.
        total = struct.pack(order + "I", length + len(option))
        block = sample[:4] + total + sample[8:24] + option + sample[24 : length - 4] + total
        return block + sample[length:]
    sys.exit("the sample must be an uncompressed pcap or pcapng")


def many_captures(sample: Path, copies: int, work: Path, runs: int, tshark: str) -> list[Target]:
    """Part 2: `copies` distinct copies of `sample`, exported by two processes against one."""
    folder = work / "copies"
    folder.mkdir()
    data = sample.read_bytes()
    for n in range(copies):
        (folder / f"copy-{n:03}{sample.suffix}").write_bytes(distinct_copy(data, n + 1))
    commands = {jobs: export_cmd([folder], work / f"jobs{jobs}", jobs, 0) for jobs in (2, 1)}

    def export(jobs: int) -> Run:
        output = work / f"jobs{jobs}"
        shutil.rmtree(output, ignore_errors=True)
        result = run(commands[jobs])
        held = captures_in(output)
        if held != copies:
            sys.exit(f"--jobs {jobs}: {held} captures in the dataset, not {copies}")
        shutil.rmtree(output)
        return result

    one_copy = [tshark, "-r", str(folder / f"copy-000{sample.suffix}"), "-T", "fields", "-e", "frame.number"]
    print(f"\n{copies} copies of {sample.name} ({len(data):,} bytes each)", f"load {load()}")
    for cmd in (*commands.values(), [*one_copy, ">", "/dev/null"]):
        print("  $", shlex.join(cmd).replace(sys.executable, "python"))
    before = ceiling()
    two, one, ts = take_turns([lambda: export(2), lambda: export(1), lambda: run(one_copy)], runs)
    after = ceiling()
    t2, t1 = median_time(two), median_time(one)
    for jobs, runs_of in ((2, two), (1, one)):
        t, cpu = median_time(runs_of), statistics.median(r.cpu_seconds for r in runs_of)
        print(
            f"  --jobs {jobs} {t:7.2f} s {mib(peak(runs_of))}   ({copies / t:5.1f} captures/s; "
            f"CPU {cpu:6.2f} s = {cpu / t:4.2f} cores busy)"
        )
    print(f"  the machine's own 2-process speed-up of a CPU loop: {before:4.2f}x before, {after:4.2f}x after")
    anchor = median_time(ts)
    print(f"  tshark on one copy {anchor:5.2f} s   (anchor; x{copies} = {copies * anchor:.1f} s)")
    return [Target(f"{copies} copies: --jobs 1 time / --jobs 2 time", t1 / t2, SPEEDUP, False)]


def _spin(n: int) -> int:
    x = 0
    for i in range(n):
        x += i * i
    return x


def ceiling(tasks: int = 8, n: int = 3_000_000) -> float:
    """The machine's own two-process speed-up now: a pure-Python loop in one process against a
    fork pool of two (what part 2's target can reach at best under the current load)."""
    import multiprocessing

    t = time.perf_counter()
    for _ in range(tasks):
        _spin(n)
    one = time.perf_counter() - t
    with multiprocessing.get_context("fork").Pool(2) as pool:
        t = time.perf_counter()
        pool.map(_spin, [n] * tasks, chunksize=1)
        two = time.perf_counter() - t
    return one / two


def print_targets(targets: list[Target]) -> None:
    print(f"\n{'target':58} {'measured':>9} {'goal':>9}  result")
    for t in targets:
        goal = f"{'<=' if t.at_most else '>='} {t.limit:.2f}"
        print(f"{t.what:58} {t.measured:9.3f} {goal:>9}  {'PASS' if t.passed else 'FAIL'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 run, the first packets, 16 copies")
    ap.add_argument("--runs", type=int, help="runs of each command, taking turns (default 3; --quick 1)")
    ap.add_argument("--copies", type=int, help="copies exported in part 2 (default 64; --quick 16)")
    ap.add_argument("--sample", type=Path, help="the capture copied in part 2 (pcap or pcapng)")
    ap.add_argument("--part", type=int, choices=(1, 2), help="only part 1 (one capture) or 2 (many)")
    args = ap.parse_args()
    tshark = shutil.which("tshark")
    if tshark is None:
        sys.exit("bench needs tshark (apt-get install tshark)")
    runs = args.runs or (1 if args.quick else 3)
    copies = args.copies or (16 if args.quick else 64)
    sample = args.sample or (PUBLIC_SAMPLE if PUBLIC_SAMPLE.exists() else REPO_SAMPLE)
    udp, _ = ensure()
    grpc = OUT / "grpc-200k.pcap"
    if not grpc.exists():
        grpc_capture(grpc)
    import pyarrow

    before = load()
    print(f"machine: nproc {os.cpu_count()}, load average {before} (1, 5, 15 min) before")
    git = ["git", "-C", str(ROOT), "describe", "--always", "--dirty"]
    tree = subprocess.run(git, capture_output=True, text=True).stdout.strip() or "?"
    print(f"python {sys.version.split()[0]}, pyarrow {pyarrow.__version__}, tree {tree}")
    print(f"{runs} run(s) of each command, taking turns; times are medians, memory the largest")
    targets = []
    with tempfile.TemporaryDirectory(prefix="bench-lake-", dir=OUT) as tmp:
        work = Path(tmp)
        for capture in (udp, grpc) if args.part in (None, 1) else ():
            count = QUICK_COUNT[capture.name] if args.quick else 0
            targets += single_capture(capture, work, runs, count, tshark)
        if args.part in (None, 2):
            targets += many_captures(sample, copies, work, runs, tshark)
    print(f"\nload average {before} before, {load()} after")
    print_targets(targets)


if __name__ == "__main__":
    main()
