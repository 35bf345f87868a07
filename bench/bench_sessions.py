"""The sessions report against itself before issue 16, side by side in one run.

Issue 16 (NAT and ICE explained) made the sessions analysis do more per STUN message (candidates,
pair tables, NAT observations) and asked that `--report sessions` on the 1M-packet RTP bench
capture stay within 1.2x of the time it took before. The anchor is therefore our own earlier code:
BASELINE (the commit before the issue) is checked out with `git worktree` under bench/out/ and run
through a PYTHONPATH shim, taking turns with the current tree on the same captures:
bench/out/udp-1m.pcap (four RTP flows with a STUN check every 1,000 packets) and udp-1m-ice.pcap
(the same, each flow an ICE session's, so the analysis follows every packet).
Target: ratio (now / before) <= 1.2 on both. tshark has no sessions report; the nearest is its RTP
streams analysis of the same packets (`-z rtp,streams` with the RTP decode-as), timed in the same
run as the anchor the other benches use. Run: python bench/bench_sessions.py [REV]
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_grpc import REPEAT, run, side_by_side
from gen_captures import OUT, ensure, ensure_ice

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "44e826c"
"""The last commit before issue 16."""
TSHARK_RTP = ("-d", "udp.port==50000-50006,rtp", "-q", "-z", "rtp,streams")
"""bench_streams.py's tshark command: the RTP streams of the same flows."""
BUILT = ("captures/_walk", "decoders/grpc/_bulk")
"""C extensions built in the tree (not in git); the baseline uses the current build of each, whose
source the issue did not change."""


def baseline_tree(rev: str) -> Path:
    """A shim directory whose `protoscope` package is the code at `rev`."""
    tree = OUT / f"baseline-{rev}"
    if not tree.exists():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-f", "--detach", str(tree), rev], check=True
        )
    for stem in BUILT:
        for built in ROOT.glob(f"{stem}.*.so"):
            shutil.copy2(built, tree / built.relative_to(ROOT))
    shim = OUT / f"baseline-{rev}-shim" / "protoscope"
    shim.mkdir(parents=True, exist_ok=True)
    for part in ("captures", "decoders", "inspector"):
        link = shim / part
        if not link.exists():
            link.symlink_to(tree / part)
    return shim.parent


def main() -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        sys.exit("bench needs tshark (apt-get install tshark)")
    rev = sys.argv[1] if len(sys.argv) > 1 else BASELINE
    shim = baseline_tree(rev)
    udp, _ = ensure()
    worst = 0.0
    for capture in (udp, ensure_ice()):
        args = ["-m", "protoscope.inspector.cli", str(capture), "--report", "sessions", "--format", "json"]
        now_cmd = [sys.executable, *args]
        before_cmd = ["env", f"PYTHONPATH={shim}", sys.executable, *args]
        n_t, n_m, b_t, b_m = side_by_side(now_cmd, before_cmd)
        anchor = [run([tshark, "-r", str(capture), *TSHARK_RTP]) for _ in range(REPEAT)]
        t_t, t_m = statistics.median(t for t, _ in anchor), max(m for _, m in anchor)
        worst = max(worst, n_t / b_t)
        print(f"{capture.name}: protoscope --report sessions")
        print(f"  now              {n_t:7.2f} s   {n_m / 1024:7.0f} MiB")
        print(f"  before ({rev})  {b_t:7.2f} s   {b_m / 1024:7.0f} MiB")
        print(f"  tshark -z rtp,streams  {t_t:7.2f} s   {t_m / 1024:7.0f} MiB   (anchor)")
        print(f"  ratio {n_t / b_t:5.2f} (target <= 1.2)   memory ratio {n_m / b_m:5.2f}")
        print(f"  against tshark: {t_t / n_t:5.2f}x as fast, memory ratio {n_m / t_m:5.2f}")
    print(f"worst ratio {worst:.2f}")


if __name__ == "__main__":
    main()
