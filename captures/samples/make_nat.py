"""Record NAT lab captures: aiortc calls through real NATs built with network namespaces and nftables.

Run as root from the repository root: python captures/samples/make_nat.py [SCENARIO ...]
(every scenario when none is named; SCENARIOS lists them). Tests import this module and call
`record(scenario, directory)` to make fresh captures in a temporary directory.

The lab (every namespace named "ps16-<pid>-...", so that two runs never meet):

* "inet", the internet: a bridge with the public addresses, documentation ranges only. coturn
  listens on 203.0.113.1 and 203.0.113.2 (ports 3478 and 3479: two addresses and two ports, so
  RFC 5780's CHANGE-REQUEST and OTHER-ADDRESS work) as STUN and TURN server, relaying from
  203.0.113.1; the signaling mailbox (nat_peer.py signal) answers HTTP on 203.0.113.80:8080; the
  NATs' WAN addresses are 198.51.100.N, routed by this namespace (198.51.100.254).
* "natN", one NAT per peer behind a NAT: WAN on the bridge, LAN 10.0.N.1/24, nftables rules for
  the RFC 4787 behaviour wanted (NAT_TYPES: masquerade keeps ports, `masquerade random` takes a
  fresh one per destination, a prerouting DNAT opens filtering, a dynamic set of contacted
  addresses makes it address-dependent; inbound UDP nothing admits is dropped without an ICMP
  error, as home routers do).
* "peerN", the peer: 10.0.N.2 behind natN, or 198.51.100.100 on the public network (no NAT).

Per scenario, peer A (the offerer, behind the NAT under test) first runs
`turnutils_natdiscovery` (RFC 5780 filtering, then mapping tests) against coturn from its host
port, then calls peer B with aiortc from that same port (STUN and TURN configured, audio both
ways and a data channel message each way). tcpdump records on the bridge (outside) and in A's
namespace (inside); the relay scenario also in B's. Each capture gets a truth file: the NAT type
and RFC 4787 behaviours per peer, the mappings coturn answered as aioice saw them, the SDPs, the
pair aioice nominated, RTP packets sent per SSRC, and whether and why the call was relayed.
Everything made is removed in `finally` (processes by pid, namespaces by name), on Ctrl-C too.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PEER_SCRIPT = HERE / "nat_peer.py"

STUN_IPS = ("203.0.113.1", "203.0.113.2")
"""coturn's two listening addresses (RFC 5780 needs an alternate address); it relays from the first."""
STUN_PORT, STUN_ALT_PORT = 3478, 3479
TURN_USER, TURN_PASS, TURN_REALM = "alice", "secret", "protoscope"
RELAY_PORTS = (49160, 49200)
SIGNAL_IP, SIGNAL_PORT = "203.0.113.80", 8080
ROUTER_IP = "198.51.100.254"
"""The internet namespace's address on the NATs' WAN network (their default route)."""
PUBLIC_PEER_IP = "198.51.100.100"
HOST_PORTS = {"A": 50000, "B": 50002}
"""Each peer's host candidate port, the one turnutils_natdiscovery used just before the call."""
BPF = "ip and (net 10.0.0.0/16 or net 203.0.113.0/24 or net 198.51.100.0/24)"
"""Every capture keeps the lab's IPv4 traffic only (no ARP)."""
STEP_TIMEOUT_S = 90.0
"""The longest a call or a discovery may take before the lab gives up."""
MAX_CAPTURE_BYTES = 1_000_000


@dataclass(frozen=True, slots=True)
class NatType:
    """A classic NAT type, its RFC 4787 behaviours, and the nftables rules that build it.

    The rules are the body of `table ip ps16`; {wan} is the WAN interface, {host} the inside
    host. Every type masquerades (a mapping per inside endpoint, conntrack filtering); the
    prerouting DNAT turns a conntrack miss on the WAN address into a delivery to the host's
    same port (port preservation makes that the mapping): from anyone (endpoint-independent
    filtering) or from an address the host has sent to (address-dependent filtering).
    """

    name: str
    mapping: str
    filtering: str
    rules: str


INPUT_DROP = """
  chain input { type filter hook input priority filter; policy accept;
    iifname "{wan}" meta l4proto udp drop
  }"""
"""The NAT itself has no UDP service: a datagram no mapping admits is dropped silently."""

NAT_TYPES: dict[str, NatType] = {
    "full-cone": NatType(
        "full cone",
        "endpoint-independent",
        "endpoint-independent",
        """
  chain prerouting { type nat hook prerouting priority dstnat; policy accept;
    iifname "{wan}" meta l4proto udp dnat to {host}
  }
  chain postrouting { type nat hook postrouting priority srcnat; policy accept;
    oifname "{wan}" masquerade
  }""",
    ),
    "address-restricted": NatType(
        "address-restricted cone",
        "endpoint-independent",
        "address-dependent",
        """
  set contacted { type ipv4_addr; flags dynamic, timeout; timeout 10m; }
  chain forward { type filter hook forward priority filter; policy accept;
    oifname "{wan}" update @contacted { ip daddr }
  }
  chain prerouting { type nat hook prerouting priority dstnat; policy accept;
    iifname "{wan}" meta l4proto udp ip saddr @contacted dnat to {host}
  }
  chain postrouting { type nat hook postrouting priority srcnat; policy accept;
    oifname "{wan}" masquerade
  }""",
    ),
    "port-restricted": NatType(
        "port-restricted cone",
        "endpoint-independent",
        "address-and-port-dependent",
        """
  chain postrouting { type nat hook postrouting priority srcnat; policy accept;
    oifname "{wan}" masquerade
  }""",
    ),
    "symmetric": NatType(
        "symmetric",
        "address-and-port-dependent",
        "address-and-port-dependent",
        """
  chain postrouting { type nat hook postrouting priority srcnat; policy accept;
    oifname "{wan}" masquerade random
  }""",
    ),
}
NO_NAT = {"nat_type": "no NAT", "mapping": "no-nat", "filtering": "no-nat"}


@dataclass(frozen=True, slots=True)
class Scenario:
    """A call: A behind `nat_a`, B behind `nat_b` or on the public network (None)."""

    name: str
    nat_a: str
    nat_b: str | None
    story: str


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("full-cone", "full-cone", None, "A behind a full cone NAT calls B on the public network"),
        Scenario(
            "address-restricted",
            "address-restricted",
            None,
            "A behind an address-restricted cone NAT calls B on the public network",
        ),
        Scenario(
            "port-restricted",
            "port-restricted",
            None,
            "A behind a port-restricted cone NAT calls B on the public network",
        ),
        Scenario(
            "symmetric",
            "symmetric",
            None,
            "A behind a symmetric NAT calls B on the public network: A's checks open the way, "
            "B learns A's peer-reflexive address and the call goes direct",
        ),
        Scenario(
            "relay",
            "symmetric",
            "symmetric",
            "A and B each behind a symmetric NAT: every NAT mapping is per destination, so the "
            "srflx addresses coturn reported are useless to the other peer; host and srflx "
            "pairs fail and the call goes through coturn's relay",
        ),
    )
}


def nft_rules(nat: NatType, wan: str, host: str) -> str:
    body = (nat.rules + INPUT_DROP).replace("{wan}", wan).replace("{host}", host)
    return "table ip ps16 {" + body + "\n}\n"


class Lab:
    """Network namespaces and processes that the lab made, removed by `close` (by name and pid)."""

    def __init__(self, workdir: Path) -> None:
        self.prefix = f"ps16-{os.getpid()}-"
        self.workdir = workdir
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen[bytes]] = []

    def netns(self, short: str) -> str:
        name = self.prefix + short
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        self.exec(name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        self.exec(name, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
        self.exec(name, "ip", "link", "set", "lo", "up")
        return name

    def exec(self, ns: str, *command: str, stdin: str | None = None) -> str:
        return run("ip", "netns", "exec", ns, *command, stdin=stdin)

    def spawn(self, ns: str, *command: str, log: str, piped: bool = True) -> subprocess.Popen[bytes]:
        """A process in `ns` (`ip netns exec` execs it: the pid is the command's own); its
        standard error goes to workdir/`log`, and so does its standard output unless `piped`."""
        with open(self.workdir / log, "wb") as err:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, *command],
                stdout=subprocess.PIPE if piped else err,
                stderr=err,
            )
        self.processes.append(proc)
        return proc

    def close(self) -> None:
        for proc in reversed(self.processes):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        for name in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)
        self.processes.clear()
        self.namespaces.clear()


def run(*command: str, stdin: str | None = None, timeout: float = 30.0) -> str:
    done = subprocess.run(
        list(command), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True, slots=True)
class Site:
    """Where a peer sits: its namespace, address and, behind a NAT, the NAT's."""

    peer_ns: str
    address: str
    interface: str
    nat_ns: str | None = None
    public_ip: str | None = None
    rules: str | None = None


def build_internet(lab: Lab) -> str:
    inet = lab.netns("inet")
    lab.exec(inet, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    lab.exec(inet, "ip", "link", "add", "br0", "type", "bridge")
    for cidr in (f"{STUN_IPS[0]}/24", f"{STUN_IPS[1]}/24", f"{SIGNAL_IP}/24", f"{ROUTER_IP}/24"):
        lab.exec(inet, "ip", "addr", "add", cidr, "dev", "br0")
    lab.exec(inet, "ip", "link", "set", "br0", "up")
    # Private addresses lead nowhere on the internet: sent into a tun device no process reads,
    # they vanish as they would past an ISP's router. Without a route coturn's relay gets
    # ENETUNREACH on a check toward a peer's host candidate, and coturn ends the allocation then.
    lab.exec(inet, "ip", "tuntap", "add", "void", "mode", "tun")
    lab.exec(inet, "ip", "link", "set", "void", "up")
    lab.exec(inet, "ip", "route", "add", "default", "dev", "void")
    return inet


def attach(lab: Lab, inet: str, ns: str, inside: str, port: str, cidr: str) -> None:
    """A veth from `ns` (named `inside`) to the internet bridge (named `port` there)."""
    lab.exec(ns, "ip", "link", "add", inside, "type", "veth", "peer", "name", port, "netns", inet)
    lab.exec(inet, "ip", "link", "set", port, "master", "br0", "up")
    lab.exec(ns, "ip", "addr", "add", cidr, "dev", inside)
    lab.exec(ns, "ip", "link", "set", inside, "up")
    lab.exec(ns, "ip", "route", "add", "default", "via", ROUTER_IP)


def build_site(lab: Lab, inet: str, n: int, nat_type: str | None) -> Site:
    """Peer n's namespace, behind a NAT of `nat_type` or on the public network (None)."""
    peer = lab.netns(f"peer{n}")
    if nat_type is None:
        attach(lab, inet, peer, "eth0", f"pub{n}", f"{PUBLIC_PEER_IP}/24")
        return Site(peer, PUBLIC_PEER_IP, "eth0")
    nat = lab.netns(f"nat{n}")
    public_ip, host = f"198.51.100.{n}", f"10.0.{n}.2"
    attach(lab, inet, nat, "wan", f"wan{n}", f"{public_ip}/24")
    lab.exec(nat, "ip", "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", peer)
    lab.exec(nat, "ip", "addr", "add", f"10.0.{n}.1/24", "dev", "lan")
    lab.exec(nat, "ip", "link", "set", "lan", "up")
    lab.exec(peer, "ip", "addr", "add", f"{host}/24", "dev", "eth0")
    lab.exec(peer, "ip", "link", "set", "eth0", "up")
    lab.exec(peer, "ip", "route", "add", "default", "via", f"10.0.{n}.1")
    lab.exec(nat, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    rules = nft_rules(NAT_TYPES[nat_type], "wan", host)
    lab.exec(nat, "nft", "-f", "-", stdin=rules)
    return Site(peer, host, "eth0", nat, public_ip, rules)


def start_coturn(lab: Lab, inet: str) -> None:
    """coturn with its own flags only (-n: no configuration file), STUN and TURN on both addresses."""
    turnserver = tool("turnserver")
    lab.spawn(
        inet,
        turnserver,
        "-n",
        f"--listening-ip={STUN_IPS[0]}",
        f"--listening-ip={STUN_IPS[1]}",
        f"--relay-ip={STUN_IPS[0]}",
        f"--listening-port={STUN_PORT}",
        f"--alt-listening-port={STUN_ALT_PORT}",
        "--lt-cred-mech",
        f"--user={TURN_USER}:{TURN_PASS}",
        f"--realm={TURN_REALM}",
        "--no-tls",
        "--no-dtls",
        "--no-cli",
        f"--min-port={RELAY_PORTS[0]}",
        f"--max-port={RELAY_PORTS[1]}",
        f"--pidfile={lab.workdir / 'turnserver.pid'}",
        f"--userdb={lab.workdir / 'turndb'}",
        "--log-file=stdout",
        "--simple-log",
        "--verbose",
        log="coturn.log",
        piped=False,
    )
    stunclient = tool("turnutils_stunclient")
    deadline = time.monotonic() + 10
    while True:
        try:
            run("ip", "netns", "exec", inet, stunclient, "-p", str(STUN_PORT), STUN_IPS[0], timeout=2)
            return
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    "coturn does not answer: " + (lab.workdir / "coturn.log").read_text()[-2000:]
                ) from error
            time.sleep(0.2)


def start_signaling(lab: Lab, inet: str) -> None:
    proc = lab.spawn(
        inet, sys.executable, str(PEER_SCRIPT), "signal", SIGNAL_IP, str(SIGNAL_PORT), log="signal.err"
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"ready":
        raise RuntimeError("the signaling server did not start: " + (lab.workdir / "signal.err").read_text())


@contextmanager
def tcpdump(lab: Lab, ns: str, interface: str, path: Path) -> Iterator[None]:
    """tcpdump on `interface` of `ns` writing `path` (the lab's IPv4 traffic only) while the block runs."""
    proc = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            ns,
            tool("tcpdump"),
            "-i",
            interface,
            "-U",
            "--immediate-mode",
            "-s",
            "0",
            "-w",
            str(path),
            BPF,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    lab.processes.append(proc)
    assert proc.stderr is not None
    proc.stderr.readline()  # "listening on ...": the capture runs
    try:
        yield
    finally:
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)


RFC5780_VERDICTS = (
    ("address and port dependent", "address-and-port-dependent"),
    ("address dependent", "address-dependent"),
    ("endpoint independent", "endpoint-independent"),
)
"""turnutils_natdiscovery's verdict phrases ("NAT with Address Dependent Filtering!"), the most
specific first, and their RFC 4787 names."""


def rfc5780_verdict(output: str) -> str:
    """The RFC 4787 name of the behaviour a turnutils_natdiscovery run printed, or "unknown"."""
    for line in output.lower().splitlines():
        if line.startswith("nat with"):
            return next((name for phrase, name in RFC5780_VERDICTS if phrase in line), "unknown")
    return "unknown"


def natdiscovery(lab: Lab, site: Site, port: int) -> dict[str, Any]:
    """RFC 5780 filtering then mapping tests from the peer's host port (filtering first: the
    mapping tests send to coturn's other address, which an address-dependent filter would then
    admit): each behaviour's RFC 4787 name, and what turnutils_natdiscovery printed."""
    exe = tool("turnutils_natdiscovery")
    out: dict[str, Any] = {"output": {}}
    for test, flag in (("filtering", "-f"), ("mapping", "-m")):
        text = lab.exec(
            site.peer_ns, exe, flag, "-L", site.address, "-l", str(port), "-p", str(STUN_PORT), STUN_IPS[0]
        )
        out[test] = rfc5780_verdict(text)
        out["output"][test] = [line.strip() for line in text.splitlines() if line.strip()]
    return out


def check_nat(name: str, slug: str, found: dict[str, Any]) -> None:
    """Stop when RFC 5780 discovery disagrees with the NAT the rules meant to build (a kernel
    whose nftables behaves otherwise would make every truth file wrong)."""
    want = NAT_TYPES[slug]
    if (found["mapping"], found["filtering"]) != (want.mapping, want.filtering):
        raise RuntimeError(
            f"peer {name}'s NAT should be {want.name} ({want.mapping} mapping, {want.filtering} "
            f"filtering) but RFC 5780 discovery found {found['mapping']} mapping, "
            f"{found['filtering']} filtering: {found['output']}"
        )


def call(lab: Lab, sites: dict[str, Site]) -> dict[str, dict[str, Any]]:
    """B then A as nat_peer.py processes in their namespaces; each one's JSON report."""
    procs = {}
    for name, other in (("B", "A"), ("A", "B")):
        config = {
            "name": name,
            "other": other,
            "port": HOST_PORTS[name],
            "signal": f"http://{SIGNAL_IP}:{SIGNAL_PORT}",
            "stun": f"{STUN_IPS[0]}:{STUN_PORT}",
            "turn": f"{STUN_IPS[0]}:{STUN_PORT}",
            "username": TURN_USER,
            "password": TURN_PASS,
        }
        path = lab.workdir / f"peer-{name}.json"
        path.write_text(json.dumps(config))
        procs[name] = lab.spawn(
            sites[name].peer_ns, sys.executable, str(PEER_SCRIPT), "peer", str(path), log=f"peer-{name}.err"
        )
    reports = {}
    for name, proc in procs.items():
        try:
            stdout, _ = proc.communicate(timeout=STEP_TIMEOUT_S)
        except subprocess.TimeoutExpired as error:
            raise RuntimeError(
                f"peer {name} did not finish: " + (lab.workdir / f"peer-{name}.err").read_text()[-2000:]
            ) from error
        if proc.returncode != 0:
            raise RuntimeError(
                f"peer {name} failed: " + (lab.workdir / f"peer-{name}.err").read_text()[-2000:]
            )
        reports[name] = json.loads(stdout)
    return reports


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemExit(
            f"{name} is needed for the NAT lab (apt-get install coturn tcpdump nftables iproute2)"
        )
    return path


def peer_truth(
    name: str,
    scenario: Scenario,
    site: Site,
    report: dict[str, Any],
    other: dict[str, Any],
    rfc5780: dict[str, Any] | None,
) -> dict[str, Any]:
    """One peer's truth: where it sits, its NAT, the mappings it got and what it did."""
    slug = scenario.nat_a if name == "A" else scenario.nat_b
    nat: dict[str, Any]
    if slug is None:
        nat = dict(NO_NAT, public_ip=site.address)
    else:
        kind = NAT_TYPES[slug]
        nat = {
            "nat_type": kind.name,
            "mapping": kind.mapping,
            "filtering": kind.filtering,
            "public_ip": site.public_ip,
            "nftables": site.rules,
        }
    stun_server = f"{STUN_IPS[0]}:{STUN_PORT}"
    inside = f"{site.address}:{report['host_port']}"
    mappings = []
    for cand in report["local_candidates"]:
        if cand["type"] == "srflx":
            mappings.append(
                {
                    "inside": cand["related"],
                    "destination": stun_server,
                    "mapped": cand["endpoint"],
                    "via": "stun",
                }
            )
        elif cand["type"] == "relay":
            mappings.append(
                {
                    "inside": report["turn_socket"],
                    "destination": stun_server,
                    "mapped": cand["related"],
                    "via": "turn",
                    "relayed": cand["endpoint"],
                }
            )
    # Peer-reflexive: the other peer saw this peer's checks come from this address; toward the
    # other peer's candidate of the pair it selected, when that pair's remote is this address.
    chosen = other["selected_pair"]
    for cand in other["remote_candidates"]:
        if cand["type"] == "prflx":
            toward = None
            if chosen is not None and chosen["remote"]["endpoint"] == cand["endpoint"]:
                toward = chosen["local"]["endpoint"]
            mappings.append(
                {"inside": inside, "destination": toward, "mapped": cand["endpoint"], "via": "check"}
            )
    return {
        "role": "offerer" if name == "A" else "answerer",
        "ice_role": report["ice_role"],
        "inside": inside,
        "nat": nat,
        "mappings": mappings,
        "rfc5780": rfc5780,
        "local_candidates": report["local_candidates"],
        "remote_candidates": report["remote_candidates"],
        "selected_pair": report["selected_pair"],
        "rtp_packets_sent": report["rtp_packets_sent"],
        "messages_received": report["messages_received"],
    }


def relay_reason(peers: dict[str, dict[str, Any]]) -> str:
    """Why the call needed the relay, with the ports that show each symmetric NAT's mappings."""
    reasons = []
    for name, peer in peers.items():
        if peer["nat"]["nat_type"] != "symmetric":
            continue
        host = [m for m in peer["mappings"] if m["inside"] == peer["inside"]]
        ports = [
            f"{m['mapped'].rsplit(':', 1)[1]} toward {m['destination'] or 'the other peer'}" for m in host
        ]
        found = peer["rfc5780"] or {}
        reasons.append(
            f"peer {name} is behind a symmetric NAT (RFC 5780 discovery from the same socket: "
            f"{found.get('mapping')} mapping, {found.get('filtering')} filtering): from "
            f"{peer['inside']} mapped port {', '.join(ports)}"
        )
    return "; ".join(reasons) + "; host and srflx pairs failed, a pair through the TURN relay succeeded"


def scenario_truth(
    scenario: Scenario,
    sites: dict[str, Site],
    reports: dict[str, dict[str, Any]],
    rfc5780: dict[str, dict[str, Any] | None],
) -> dict[str, Any]:
    peers = {
        name: peer_truth(
            name, scenario, sites[name], reports[name], reports["B" if name == "A" else "A"], rfc5780[name]
        )
        for name in ("A", "B")
    }
    controlling = next((p for p in peers.values() if p["ice_role"] == "controlling"), peers["A"])
    selected = controlling["selected_pair"]
    relayed = selected is not None and "relay" in (selected["local"]["type"], selected["remote"]["type"])
    why = relay_reason(peers) if relayed else None
    return {
        "scenario": scenario.name,
        "story": scenario.story,
        "coturn": {
            "stun": f"{STUN_IPS[0]}:{STUN_PORT}",
            "other_address": f"{STUN_IPS[1]}:{STUN_ALT_PORT}",
            "relay_ip": STUN_IPS[0],
            "username": TURN_USER,
            "password": TURN_PASS,
            "realm": TURN_REALM,
        },
        "signaling": f"{SIGNAL_IP}:{SIGNAL_PORT}",
        "offer": reports["A"]["offer"],
        "answer": reports["A"]["answer"],
        "peers": peers,
        "selected_pair": selected,
        "relayed": relayed,
        "relay_why": why,
    }


def record(name: str, directory: Path = HERE, logs: Path | None = None) -> dict[str, Path]:
    """Run scenario `name` and write its captures and truth files under `directory`; their paths,
    by capture point ("outside", "inside" and, where B is behind a NAT too, "inside-b"). The
    processes' logs (coturn, peers) go to `logs`, or to a temporary directory removed after."""
    scenario = SCENARIOS[name]
    with tempfile.TemporaryDirectory(prefix="ps16-nat-") as tmp:
        lab = Lab(logs or Path(tmp))
        try:
            inet = build_internet(lab)
            sites = {
                "A": build_site(lab, inet, 1, scenario.nat_a),
                "B": build_site(lab, inet, 2, scenario.nat_b),
            }
            start_coturn(lab, inet)
            start_signaling(lab, inet)
            points = {
                "outside": (inet, "br0", "the internet bridge (outside every NAT)"),
                "inside": (sites["A"].peer_ns, sites["A"].interface, "peer A's namespace (behind its NAT)"),
            }
            if scenario.nat_b is not None:
                points["inside-b"] = (
                    sites["B"].peer_ns,
                    sites["B"].interface,
                    "peer B's namespace (behind its NAT)",
                )
            paths = {point: directory / f"nat-{name}-{point}.pcap" for point in points}
            with ExitStack() as captures:
                for point, (ns, interface, _) in points.items():
                    captures.enter_context(tcpdump(lab, ns, interface, paths[point]))
                rfc5780: dict[str, dict[str, Any] | None] = {"A": None, "B": None}
                for peer, slug in (("A", scenario.nat_a), ("B", scenario.nat_b)):
                    if slug is not None:
                        found = natdiscovery(lab, sites[peer], HOST_PORTS[peer])
                        check_nat(peer, slug, found)
                        rfc5780[peer] = found
                reports = call(lab, sites)
        finally:
            lab.close()
    truth = scenario_truth(scenario, sites, reports, rfc5780)
    for point, path in paths.items():
        size = path.stat().st_size
        if size > MAX_CAPTURE_BYTES:
            raise RuntimeError(f"{path.name} is {size} bytes: more than {MAX_CAPTURE_BYTES}")
        capture = {"point": point, "where": points[point][2], "interface": points[point][1], "filter": BPF}
        text = json.dumps({"capture": capture, **truth}, indent=1) + "\n"
        path.with_suffix(".truth.json").write_text(text)
    return paths


def main(argv: Sequence[str]) -> None:
    if os.geteuid() != 0:
        raise SystemExit("the NAT lab needs root (network namespaces, nftables, tcpdump)")
    names = list(argv) or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario {unknown}: choose from {', '.join(SCENARIOS)}")

    def terminate(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    for name in names:
        for point, path in record(name).items():
            print(f"{name} {point}: {path.relative_to(HERE.parent.parent)} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1:])
