"""Display filters against tshark, side by side in one run (issue 13: "a filter over 1M packets
answers in < 2 s").

For each filter: our time to answer it on a session already open (what the viewer pays when the
filter bar is submitted), our time from nothing (open, index and filter, in a fresh process), and
`tshark -r F -Y EXPR -T fields -e frame.number`, with the ratio and whether the frames agree.
Frame, L2-L4 and stream filters are answered with numpy over the index columns; the last filter of
each capture names a decoder's field and takes the decoding pass.
Run: python bench/bench_filter.py
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_captures import ensure

REPEAT = 3
TSHARK_REPEAT = 1
"""tshark reads the 1M-packet capture in tens of seconds: once is enough for a ratio."""
PUBLIC = Path(__file__).resolve().parent.parent.parent / "shared" / "captures" / "public"
CASES: list[tuple[str, list[str]]] = [
    (
        "udp-1m.pcap",
        [
            "udp.port == 40002",
            "ip.addr == 10.0.0.3 && frame.len > 100",
            "ip.dst == 10.0.0.0/30 && !(udp.stream in {0, 2})",
            "frame.time_relative > 10 || frame.number < 100",
            "udp.length & 0x100",
            "ip.ttl == 64 && eth.addr[0:3] == 02:00:00",
            "stun",
        ],
    ),
    (
        "wswiki--sip-rtp-g711.pcap",
        ["udp.stream == 2", "ip.src == 10.0.2.15 && frame.len > 200", "rtp.p_type == 8"],
    ),
]
FILTER = """
import sys, time
from protoscope.decoders.registry import load_registry
from protoscope.inspector.filter import filter_rows
from protoscope.inspector.session import Session
t = time.perf_counter()
session = Session.open(sys.argv[1], load_registry(use_plugins=False))
opened = time.perf_counter() - t
t = time.perf_counter()
rows = filter_rows(session, sys.argv[2])
print(opened, time.perf_counter() - t, " ".join(str(i + 1) for i in rows or []))
"""


def ours(path: Path, text: str) -> tuple[float, float, float, list[int]]:
    """Median (open, filter, whole process) seconds over REPEAT fresh processes, and the frames."""
    opens, filters, totals = [], [], []
    frames: list[int] = []
    for _ in range(REPEAT):
        t = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", FILTER, str(path), text], check=True, capture_output=True, text=True
        ).stdout.split()
        totals.append(time.perf_counter() - t)
        opens.append(float(out[0]))
        filters.append(float(out[1]))
        frames = [int(x) for x in out[2:]]
    return statistics.median(opens), statistics.median(filters), statistics.median(totals), frames


def theirs(tshark: str, path: Path, text: str) -> tuple[float, list[int]]:
    times = []
    frames: list[int] = []
    for _ in range(TSHARK_REPEAT):
        t = time.perf_counter()
        out = subprocess.run(
            [tshark, "-r", str(path), "-Y", text, "-T", "fields", "-e", "frame.number"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        times.append(time.perf_counter() - t)
        frames = [int(x) for x in out.split()]
    return statistics.median(times), frames


def main() -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        sys.exit("bench needs tshark (apt-get install tshark)")
    udp, _ = ensure()
    paths = {udp.name: udp, **{p.name: p for p in PUBLIC.glob("*") if p.suffix != ".md"}}
    for name, filters in CASES:
        path = paths.get(name)
        if path is None:
            print(f"{name}: not found, skipped")
            continue
        print(f"{name}")
        print(f"  {'filter':52} {'filter':>8} {'open+all':>9} {'tshark':>8} {'tshark/ours':>11}  frames")
        for text in filters:
            opened, filtered, total, ours_frames = ours(path, text)
            tshark_time, tshark_frames = theirs(tshark, path, text)
            same = (
                "same"
                if ours_frames == tshark_frames
                else f"DIFFER ({len(ours_frames)} vs {len(tshark_frames)})"
            )
            ratio = tshark_time / total
            print(
                f"  {text:52} {filtered:7.3f}s {total:8.3f}s {tshark_time:7.3f}s {ratio:10.1f}x  "
                f"{len(ours_frames)} {same}"
            )
        print(f"  (open = index + flows: {opened:.3f} s of each 'open+all')")


if __name__ == "__main__":
    main()
