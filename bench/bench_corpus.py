"""Every report's first step on every capture: `--report summary` against tshark's full dissection.

Side by side in one run, the commands taking turns (interleaved, median of REPEAT whole processes):

* every capture of the public corpus (../shared/captures/public) and of captures/samples:
  `protoscope F --report summary --format json` against `tshark -r F -V`.
  Targets: protoscope faster on every capture (each ratio < 1.0), and <= 0.5 of tshark's time over the
  corpus (the sums of the medians).
* a generated 200,000-packet capture of TCP that no decoder reads past its first segments (a bulk
  transfer, HTTP/1.1 keep-alive with 1 MiB bodies, TLS on 443): `--report summary` against
  `tshark -r F -q`. Target: <= 1.5x.
* start-up: `protoscope --version` and the summary of a one-packet capture. Target: <= 0.15 s each.

Run: python bench/bench_corpus.py [--repeat N] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_captures import ensure_undecoded

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = ROOT.parent / "shared" / "captures" / "public"
SAMPLES = ROOT / "captures" / "samples"
ONE_PACKET = PUBLIC / "wswiki--protobuf_udp_addressbook.pcapng"


def protoscope() -> str:
    exe = Path(sys.executable).parent / "protoscope"
    if not exe.exists():
        sys.exit(f"no protoscope beside {sys.executable}: run this with the venv's python")
    return str(exe)


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
"""Python as it runs by default, caching compiled modules (some sandboxes set the variable: every run
would then compile protoscope's sources again, ~0.1 s)."""


def timed(cmds: list[list[str]], repeat: int) -> list[float]:
    """Median wall time of each command; the commands take turns so that noise falls on all alike."""
    runs: list[list[float]] = [[] for _ in cmds]
    for _ in range(repeat):
        for cmd, times in zip(cmds, runs, strict=True):
            t = time.perf_counter()
            done = subprocess.run(
                cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False, env=ENV
            )
            times.append(time.perf_counter() - t)
            if done.returncode != 0:
                sys.exit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.decode()[-300:]}")
    return [statistics.median(times) for times in runs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--markdown", action="store_true", help="print the corpus table as Markdown")
    args = ap.parse_args()
    tshark = shutil.which("tshark")
    if tshark is None:
        sys.exit("bench needs tshark (apt-get install tshark)")
    if not PUBLIC.is_dir():
        sys.exit(f"the public corpus is missing at {PUBLIC}")
    exe = protoscope()
    warm = [exe, str(SAMPLES / "webrtc-turn.pcap"), "--report", "summary", "--format", "json"]
    subprocess.run(warm, check=True, stdout=subprocess.DEVNULL, env=ENV)  # compile and cache the modules
    captures = sorted(p for p in PUBLIC.iterdir() if p.suffix != ".md") + sorted(SAMPLES.glob("*.pcap"))

    rows: list[tuple[str, float, float]] = []
    print(f"{'capture':<66} {'protoscope':>10} {'tshark -V':>10} {'ratio':>6}")
    for path in captures:
        ours, theirs = timed(
            [[exe, str(path), "--report", "summary", "--format", "json"], [tshark, "-r", str(path), "-V"]],
            args.repeat,
        )
        rows.append((path.name, ours, theirs))
        flag = "" if ours < theirs else "  <-- slower"
        print(f"{path.name:<66} {ours:>9.3f}s {theirs:>9.3f}s {ours / theirs:>6.2f}{flag}", flush=True)
    total_ours = sum(r[1] for r in rows)
    total_theirs = sum(r[2] for r in rows)
    slower = [r[0] for r in rows if r[1] >= r[2]]
    worst = max(rows, key=lambda r: r[1] / r[2])
    print(
        f"\ncorpus ({len(rows)} captures): protoscope {total_ours:.2f} s, tshark -V {total_theirs:.2f} s, "
        f"ratio {total_ours / total_theirs:.2f} (target <= 0.5); worst {worst[0]} {worst[1] / worst[2]:.2f}; "
        f"slower than tshark on {len(slower)} (target 0){': ' + ', '.join(slower) if slower else ''}"
    )

    big = ensure_undecoded()
    ours, theirs = timed(
        [[exe, str(big), "--report", "summary", "--format", "json"], [tshark, "-r", str(big), "-q"]],
        args.repeat,
    )
    print(
        f"{big.name}: protoscope --report summary {ours:.2f} s, tshark -q {theirs:.2f} s, "
        f"ratio {ours / theirs:.2f} (target <= 1.5)"
    )

    version, one = timed(
        [[exe, "--version"], [exe, str(ONE_PACKET), "--report", "summary", "--format", "json"]],
        max(args.repeat, 5),
    )
    print(f"start-up: --version {version:.3f} s, one-packet summary {one:.3f} s (target <= 0.15 s each)")

    if args.markdown:
        print("\n| capture | protoscope | tshark -V | ratio |\n| --- | --- | --- | --- |")
        for name, a, b in rows:
            print(f"| {name} | {a:.3f} s | {b:.3f} s | {a / b:.2f} |")
        print(
            f"| **all {len(rows)}** | **{total_ours:.2f} s** | **{total_theirs:.2f} s** | "
            f"**{total_ours / total_theirs:.2f}** |"
        )


if __name__ == "__main__":
    main()
