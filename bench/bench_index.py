"""Index plus flow table against tshark, side by side in one run (issue: foundation).

Prints the median wall time of each command over REPEAT runs, the ratios the targets are about,
and the index's memory per packet. Run: python bench/bench_index.py
Targets: 1M UDP index+flows <= 2x `tshark -r F -q`, >= 5x faster than `tshark -q -z conv,udp`;
index memory < 64 bytes a packet.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_captures import ensure

REPEAT = 7
INDEX = """
import sys, time, tracemalloc
t = time.perf_counter()
from protoscope.captures.index import load
if len(sys.argv) > 2:
    tracemalloc.start()
ix = load(sys.argv[1])
n = len(ix)
if len(sys.argv) > 2:
    kept, peak = tracemalloc.get_traced_memory()
    r = ix.records
    columns = (r.data_off, r.caplen, r.wirelen, r.ts_ns, r.iface, ix.stack, ix.l4, ix.payload_off,
               ix.payload_len, ix.tcp_seq, ix.tcp_flags, ix.flow, ix.direction)
    cols = sum(a.nbytes for a in columns)
    print(json.dumps({"packets": n, "flows": len(ix.flows), "columns_per_packet": cols / n,
                      "traced_per_packet": kept / n, "peak_per_packet": peak / n}))
""".replace("import sys,", "import json, sys,")


def timed(*cmds: list[str]) -> list[float]:
    """Median wall time of each command; the commands take turns so that noise on the machine
    falls on all of them alike."""
    runs: list[list[float]] = [[] for _ in cmds]
    for _ in range(REPEAT):
        for cmd, times in zip(cmds, runs, strict=True):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - t)
    return [statistics.median(times) for times in runs]


def main() -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        sys.exit("bench needs tshark (apt-get install tshark)")
    udp, tcp = ensure()
    py = sys.executable
    for path, conv in ((udp, "conv,udp"), (tcp, "conv,tcp")):
        ours, bare = timed([py, "-c", INDEX, str(path)], [tshark, "-r", str(path), "-q"])
        (convt,) = timed([tshark, "-r", str(path), "-q", "-z", conv])
        mem = json.loads(
            subprocess.run(
                [py, "-c", INDEX, str(path), "mem"], check=True, capture_output=True, text=True
            ).stdout
        )
        print(f"{path.name}: {mem['packets']} packets, {mem['flows']} flows")
        print(f"  protoscope index+flows     {ours:7.3f} s")
        ratio, speedup = ours / bare, convt / ours
        print(
            f"  tshark -r F -q             {bare:7.3f} s   ratio ours/tshark  {ratio:5.2f}x  (target <= 2x)"
        )
        print(
            f"  tshark -q -z {conv:<12} {convt:7.3f} s   speed-up           {speedup:5.1f}x  (target >= 5x)"
        )
        print(
            f"  index memory: columns {mem['columns_per_packet']:.0f} B/packet, all retained allocations "
            f"{mem['traced_per_packet']:.0f} B/packet (target < 64), "
            f"peak while building {mem['peak_per_packet']:.0f} B/packet"
        )


if __name__ == "__main__":
    main()
