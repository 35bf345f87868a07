"""RTP streams against tshark, side by side in one run (issue: WebRTC end to end).

On the generated 1M-packet RTP capture (bench/out/udp-1m.pcap: four RTP flows with a STUN consent
check every 1,000 packets on the same ports), times `protoscope F --report streams --format jsonl`
against `tshark -r F -q -z rtp,streams` with the RTP decode-as, and reads each one's peak memory.
Targets: at least 3x faster than tshark, memory under half of tshark's. Run: python bench/bench_streams.py
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_grpc import side_by_side
from gen_captures import ensure


def main() -> None:
    tshark = shutil.which("tshark")
    if tshark is None:
        sys.exit("bench needs tshark (apt-get install tshark)")
    udp, _ = ensure()
    ours_cmd = [
        sys.executable,
        "-m",
        "protoscope.inspector.cli",
        str(udp),
        "--report",
        "streams",
        "--format",
        "jsonl",
    ]
    theirs_cmd = [tshark, "-r", str(udp), "-d", "udp.port==50000-50006,rtp", "-q", "-z", "rtp,streams"]
    o_t, o_m, t_t, t_m = side_by_side(ours_cmd, theirs_cmd)
    print(f"{udp.name}: 1,000,000 packets, 4 RTP streams with STUN consent checks")
    print(f"  protoscope --report streams   {o_t:7.2f} s   {o_m / 1024:7.0f} MiB")
    print(f"  tshark -z rtp,streams         {t_t:7.2f} s   {t_m / 1024:7.0f} MiB")
    print(f"  speed-up {t_t / o_t:5.2f}x (target >= 3x)   memory ratio {o_m / t_m:5.2f} (target < 0.5)")


if __name__ == "__main__":
    main()
