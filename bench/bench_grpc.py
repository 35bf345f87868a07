"""gRPC calls against tshark, side by side in one run (issue: gRPC end to end).

Times `protoscope F --report calls --format jsonl` and `tshark -r F -d tcp.port==50051,http2 -Y grpc
-T fields -e http2.headers.path` on the generated 200,000-packet h2c capture (median of REPEAT
whole processes, taking turns) and reads each one's peak resident memory.
Targets: at least 4x faster than tshark, memory under a quarter of tshark's.
protoscope's figure depends on the optional C extension of the calls report (built by pip when a
C compiler is present; see README "gRPC"): the bench says whether it was there.
Run: python bench/bench_grpc.py
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_captures import OUT, grpc_capture

REPEAT = 3


def run(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one whole process."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[0]} failed")
    return elapsed, usage.ru_maxrss


def side_by_side(ours_cmd: list[str], theirs_cmd: list[str]) -> tuple[float, int, float, int]:
    """Median seconds and peak KiB of ours, then of tshark's, the two taking turns REPEAT times."""
    ours, theirs = [], []
    for _ in range(REPEAT):
        ours.append(run(ours_cmd))
        theirs.append(run(theirs_cmd))
    return (
        statistics.median(x[0] for x in ours),
        max(x[1] for x in ours),
        statistics.median(x[0] for x in theirs),
        max(x[1] for x in theirs),
    )


def main() -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        sys.exit("bench needs tshark (apt-get install tshark)")
    OUT.mkdir(exist_ok=True)
    path = OUT / "grpc-200k.pcap"
    if not path.exists():
        grpc_capture(path)
    ours_cmd = [
        sys.executable,
        "-m",
        "protoscope.inspector.cli",
        str(path),
        "--report",
        "calls",
        "--format",
        "jsonl",
    ]
    theirs_cmd = [
        tshark,
        "-r",
        str(path),
        "-d",
        "tcp.port==50051,http2",
        "-Y",
        "grpc",
        "-T",
        "fields",
        "-e",
        "http2.headers.path",
    ]
    o_t, o_m, t_t, t_m = side_by_side(ours_cmd, theirs_cmd)
    from protoscope.inspector.bulk_calls import available

    built = "built" if available() else "NOT built: the Python decoders do all the work"
    print(f"{path.name}: 200,000 packets, h2c gRPC, unary calls (calls extension {built})")
    print(f"  protoscope --report calls    {o_t:7.2f} s   {o_m / 1024:7.0f} MiB")
    print(f"  tshark -Y grpc -T fields     {t_t:7.2f} s   {t_m / 1024:7.0f} MiB")
    print(f"  speed-up {t_t / o_t:5.2f}x (target >= 4x)   memory ratio {o_m / t_m:5.2f} (target < 0.25)")


if __name__ == "__main__":
    main()
