"""Record hairpin-yes-inside.pcap and hairpin-no-inside.pcap: RFC 5780 discovery behind a real NAT.

Run as root from the repository root: python tests/decoders/webrtc/samples/make_hairpin.py

Three network namespaces ("ps16hp-<pid>-host", "-nat", "-srv"): the host 10.0.9.2 behind a NAT
(LAN 10.0.9.1, WAN 198.51.100.1) whose nftables masquerade keeps ports (an endpoint-independent
mapping), and coturn (STUN only) on 198.51.100.2 and 198.51.100.3, ports 3478 and 3479.
`turnutils_natdiscovery -m -f -H` runs on the host from LOCAL_PORT; tcpdump records on the host's
interface (inside the NAT). Twice: once with a prerouting DNAT and a LAN-side SNAT that hairpin a
packet sent from the LAN to the WAN address back in with the sender's mapped source (RFC 4787
section 6, REQ-9), once without (the packet is delivered to the NAT itself and dropped). The
filtering is endpoint-independent in both (a DNAT of the WAN address to the host). Everything
made is removed in `finally`: processes by pid, namespaces by name.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOCAL_PORT = 45000
SERVER_IPS = ("198.51.100.2", "198.51.100.3")
RULES = """
table ip ps16hp {{
  chain prerouting {{ type nat hook prerouting priority dstnat; policy accept;
    iifname "wan" meta l4proto udp dnat to 10.0.9.2
    {hairpin_in}
  }}
  chain postrouting {{ type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" masquerade
    {hairpin_out}
  }}
}}
"""
HAIRPIN_IN = 'iifname "lan" ip daddr 198.51.100.1 meta l4proto udp dnat to 10.0.9.2'
HAIRPIN_OUT = 'oifname "lan" ip saddr 10.0.9.0/24 snat to 198.51.100.1'


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemExit(f"{name} is needed (apt-get install coturn tcpdump nftables iproute2)")
    return path


def sh(*args: str, ns: str | None = None, stdin: str | None = None) -> None:
    cmd = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    subprocess.run(cmd, check=True, input=stdin, text=True, timeout=30)


def record(hairpin: bool, out: Path) -> None:
    prefix = f"ps16hp-{os.getpid()}"
    host, nat, srv = f"{prefix}-host", f"{prefix}-nat", f"{prefix}-srv"
    made: list[str] = []
    started: list[subprocess.Popen[bytes]] = []
    try:
        for ns in (host, nat, srv):
            sh("ip", "netns", "add", ns)
            made.append(ns)
        sh("ip", "link", "add", "lan", "netns", nat, "type", "veth", "peer", "name", "eth0", "netns", host)
        sh("ip", "link", "add", "wan", "netns", nat, "type", "veth", "peer", "name", "eth0", "netns", srv)
        for ns, dev, addrs in (
            (host, "eth0", ["10.0.9.2/24"]),
            (nat, "lan", ["10.0.9.1/24"]),
            (nat, "wan", ["198.51.100.1/24"]),
            (srv, "eth0", [f"{ip}/24" for ip in SERVER_IPS]),
        ):
            for addr in addrs:
                sh("ip", "addr", "add", addr, "dev", dev, ns=ns)
            sh("ip", "link", "set", dev, "up", ns=ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
        sh("ip", "route", "add", "default", "via", "10.0.9.1", ns=host)
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=nat)
        rules = RULES.format(
            hairpin_in=HAIRPIN_IN if hairpin else "", hairpin_out=HAIRPIN_OUT if hairpin else ""
        )
        sh(tool("nft"), "-f", "-", ns=nat, stdin=rules)
        server = ["ip", "netns", "exec", srv, tool("turnserver"), "-n", "-S", "--no-tls", "--no-dtls"]
        server += [
            "--no-cli",
            "--log-file",
            "stdout",
            "--simple-log",
            "-p",
            "3478",
            "--alt-listening-port",
            "3479",
        ]
        server += [a for ip in SERVER_IPS for a in ("-L", ip)]
        started.append(subprocess.Popen(server, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        capture = ["ip", "netns", "exec", host, tool("tcpdump"), "-i", "eth0", "-U", "-w", str(out), "udp"]
        started.append(subprocess.Popen(capture, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.5)
        discovery = [
            tool("turnutils_natdiscovery"),
            "-m",
            "-f",
            "-H",
            "-L",
            "10.0.9.2",
            "-l",
            str(LOCAL_PORT),
        ]
        sh(*discovery, SERVER_IPS[0], ns=host)
        time.sleep(0.5)
    finally:
        for proc in reversed(started):
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], check=False)


def main() -> None:
    if os.geteuid() != 0:
        raise SystemExit("network namespaces need root")
    for hairpin, name in ((True, "hairpin-yes-inside.pcap"), (False, "hairpin-no-inside.pcap")):
        out = HERE / name
        record(hairpin, out)
        print(f"wrote {out} ({out.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
