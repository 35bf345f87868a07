"""The NAT lab end to end: `protoscope F --report sessions --format json` on calls through real NATs
(captures/samples/make_nat.py: network namespaces, nftables, coturn, aiortc) says what the truth says.

Per capture: each peer's NAT verdict (the session row's "nat"), the selected pair, RTP packets per
SSRC equal to what each peer sent (getStats), and for the two symmetric NATs a relayed diagnosis
naming both. The committed captures are checked always; one live run of the lab (root, nft,
coturn, tcpdump) makes fresh ones in tmp_path and checks them the same way.

What a capture can show depends on where it was taken (the "capture"."point" of the truth):
inside a NAT the peer's RFC 5780 probes and their answers are seen, so the whole verdict must
match; outside, the mapping shows (every STUN answer and every check's source is a mapping) but
whether the NAT delivered an inbound datagram shows only when the inside host answered it, so a
cone NAT's filtering may stay unknown, and with only two destination IPs compared RFC 4787 cannot
tell an address-dependent mapping from an address-and-port-dependent one.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import SAMPLES, require_root, require_tool

LAB_CAPTURES = sorted(SAMPLES.glob("nat-*.pcap"))
MAX_CAPTURE_BYTES = 1_000_000
CONE_UNKNOWN = "cone (filtering unknown)"
"""The verdict's name for an endpoint-independent mapping whose filtering the capture does not show."""


@functools.cache
def lab() -> ModuleType:
    """captures/samples/make_nat.py as a module (captures/samples is not a package)."""
    spec = importlib.util.spec_from_file_location("make_nat", SAMPLES / "make_nat.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_nat", module)
    spec.loader.exec_module(module)
    return module


def sessions_report(pcap: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "protoscope.inspector.cli",
            str(pcap),
            "--report",
            "sessions",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def visible_peers(truth: dict[str, Any]) -> dict[str, str]:
    """The peers whose NAT this capture can judge, each with how much of it ("all" or "outside")."""
    point = truth["capture"]["point"]
    out = {}
    for name, peer in truth["peers"].items():
        if peer["nat"]["mapping"] == "no-nat" or (point, name) in (("inside", "A"), ("inside-b", "B")):
            out[name] = "all"
        elif point == "outside":
            out[name] = "outside"
    return out


def nat_problems(session: dict[str, Any], truth: dict[str, Any]) -> list[str]:
    problems = []
    for name, seen in visible_peers(truth).items():
        peer = truth["peers"][name]
        want = peer["nat"]
        rows = [r for r in session.get("nat") or [] if r.get("inside") == peer["inside"]]
        got = [(r.get("nat_type"), r.get("mapping"), r.get("filtering")) for r in rows]
        if want["mapping"] == "no-nat":
            if [g[0] for g in got] not in ([], ["no NAT"]):
                problems.append(f"peer {name} on the public network: got {got}")
            continue
        if len(rows) != 1:
            problems.append(f"peer {name} ({peer['inside']}): {len(rows)} nat rows, want 1")
            continue
        if rows[0].get("party") != name:
            problems.append(f"peer {name}: nat row names party {rows[0].get('party')}")
        exact = (want["nat_type"], want["mapping"], want["filtering"])
        if seen == "all":
            if got[0] != exact:
                problems.append(f"peer {name} inside: got {got[0]}, want {exact}; {rows[0].get('evidence')}")
            continue
        names = {want["nat_type"], CONE_UNKNOWN} if "cone" in want["nat_type"] else {want["nat_type"]}
        mappings = {want["mapping"]}
        if want["mapping"] == "address-and-port-dependent" and not any(
            "destination port" in e for e in rows[0].get("evidence") or []
        ):
            mappings.add("destination-dependent")
        filterings = {want["filtering"], "unknown"}
        if got[0][0] not in names or got[0][1] not in mappings or got[0][2] not in filterings:
            problems.append(f"peer {name} outside: got {got[0]}, want {exact}; {rows[0].get('evidence')}")
    return problems


def pair_seen(truth: dict[str, Any]) -> set[str]:
    """The selected pair's endpoints as this capture shows them: inside a NAT, the peer's own view
    (aioice's nominated pair); outside, each peer's address as the other one saw it."""
    peers, point = truth["peers"], truth["capture"]["point"]
    if point in ("inside", "inside-b"):
        mine = peers["A" if point == "inside" else "B"]["selected_pair"]
        return {mine["local"]["endpoint"], mine["remote"]["endpoint"]}
    return {p["selected_pair"]["remote"]["endpoint"] for p in peers.values()}


def problems_of(pcap: Path, truth: dict[str, Any]) -> list[str]:
    """Every way the sessions report of `pcap` differs from its truth (empty: it agrees)."""
    rows = sessions_report(pcap)
    sessions = [r for r in rows if r.get("kind") is None]
    if len(sessions) != 1:
        return [f"{len(sessions)} sessions, want 1"]
    (session,) = sessions
    problems = nat_problems(session, truth)
    selected = session.get("selected_pair") or {}
    if {selected.get("local"), selected.get("remote")} != pair_seen(truth):
        problems.append(f"selected pair {selected}, want {sorted(pair_seen(truth))}")
    sent = {int(ssrc): n for p in truth["peers"].values() for ssrc, n in p["rtp_packets_sent"].items()}
    media = {m.get("ssrc"): m.get("packets") for m in session.get("media") or []}
    if media != sent:
        problems.append(f"RTP packets per SSRC {media}, want {sent}")
    diagnosis = session.get("diagnosis") or {}
    summary = str(diagnosis.get("summary"))
    codes = {f.get("code") for f in session.get("findings") or []}
    if truth["relayed"]:
        relay = str(diagnosis.get("relay"))
        if not summary.startswith("relayed"):
            problems.append(f"relayed call summarised as {summary!r}")
        symmetric = [n for n, p in truth["peers"].items() if p["nat"]["nat_type"] == "symmetric"]
        for name in symmetric:
            if name in visible_peers(truth) and f"peer {name} is behind a symmetric NAT" not in relay:
                problems.append(f"the relay diagnosis does not name peer {name}'s symmetric NAT: {relay!r}")
        if "ice.relay_only" not in codes:
            problems.append(f"no ice.relay_only finding: {sorted(codes)}")
    elif summary.startswith("relayed") or "relay" in (
        selected.get("local_type"),
        selected.get("remote_type"),
    ):
        problems.append(f"a direct call reported as relayed: {summary!r}, {selected}")
    return problems


def truth_of(pcap: Path) -> dict[str, Any]:
    truth: dict[str, Any] = json.loads(pcap.with_suffix(".truth.json").read_text())
    return truth


def test_rfc5780_verdicts_read_as_rfc_4787_names() -> None:
    read = lab().rfc5780_verdict
    assert read("x\nNAT with Address and Port Dependent Filtering!\n") == "address-and-port-dependent"
    assert read("NAT with Address Dependent Mapping!") == "address-dependent"
    assert read("NAT with Endpoint Independent Mapping!") == "endpoint-independent"
    assert read("STUN receive timeout..") == "unknown"


@given(st.text())
def test_rfc5780_verdict_never_raises(text: str) -> None:
    assert lab().rfc5780_verdict(text) in {
        "address-and-port-dependent",
        "address-dependent",
        "endpoint-independent",
        "unknown",
    }


def test_each_nat_type_has_its_rules() -> None:
    """Every NAT masquerades and drops what no mapping admits; the symmetric one takes a fresh port
    per destination; only the cones with open filtering forward unsolicited datagrams inside."""
    make_nat = lab()
    for slug, nat in make_nat.NAT_TYPES.items():
        rules = make_nat.nft_rules(nat, "wan", "10.0.1.2")
        assert "{" in rules and "{wan}" not in rules and "{host}" not in rules
        assert 'oifname "wan" masquerade' in rules and 'iifname "wan" meta l4proto udp drop' in rules
        assert ("masquerade random" in rules) == (slug == "symmetric")
        assert ("dnat to 10.0.1.2" in rules) == (nat.filtering != "address-and-port-dependent")
        assert ("@contacted" in rules) == (nat.filtering == "address-dependent")


def test_the_lab_captures_are_committed_and_small() -> None:
    names = {p.name for p in LAB_CAPTURES}
    scenarios = lab().SCENARIOS
    for name in scenarios:
        assert {f"nat-{name}-outside.pcap", f"nat-{name}-inside.pcap"} <= names
    assert "nat-relay-inside-b.pcap" in names
    assert all(p.stat().st_size < MAX_CAPTURE_BYTES for p in LAB_CAPTURES)
    for pcap in LAB_CAPTURES:
        truth = truth_of(pcap)
        assert truth["relayed"] == (truth["scenario"] == "relay")
        assert all(p["messages_received"] for p in truth["peers"].values())


@pytest.mark.parametrize("pcap", LAB_CAPTURES, ids=[p.name for p in LAB_CAPTURES])
def test_committed_capture_reports_what_the_truth_says(pcap: Path) -> None:
    assert problems_of(pcap, truth_of(pcap)) == []


def test_a_live_lab_run_reports_what_its_truth_says(tmp_path: Path) -> None:
    """Every scenario of the lab once, as root: fresh captures classified like the committed ones."""
    require_root()
    for tool in ("ip", "nft", "turnserver", "turnutils_natdiscovery", "turnutils_stunclient", "tcpdump"):
        require_tool(tool)
    if os.environ.get("CI") != "true" and not Path("/dev/net/tun").exists():
        pytest.skip("the lab's internet namespace needs a tun device")
    make_nat = lab()
    problems = {}
    for name in make_nat.SCENARIOS:
        for pcap in make_nat.record(name, tmp_path).values():
            assert pcap.stat().st_size < MAX_CAPTURE_BYTES, pcap.name
            found = problems_of(pcap, truth_of(pcap))
            if found:
                problems[pcap.name] = found
    assert problems == {}
    assert not [
        line
        for line in subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True
        ).stdout.splitlines()
        if f"ps16-{os.getpid()}-" in line
    ]
