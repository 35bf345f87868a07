"""Statistics against tshark: `-z io,phs` (the L2-L4 levels), `-z endpoints,LAYER`, `-z conv,LAYER`
and `-z io,stat` give the same counts; gRPC method statistics agree with the calls report."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from protoscope.decoders.registry import load_registry
from protoscope.inspector import stats
from protoscope.inspector.report.rows import analysis_rows
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES, public_capture, tshark

CAPTURES = [
    ("samples", "grpc-demo.pcap"),
    ("public", "ndpi--teams.pcap"),
    ("public", "packt--grpc-go_Unary.pcapng"),
    ("public", "ndpi--stun.pcap"),
]
Z_SPECS = (
    "io,phs",
    *(f"endpoints,{layer}" for layer in ("eth", "ip", "ipv6", "tcp", "udp")),
    *(f"conv,{layer}" for layer in ("eth", "ip", "tcp", "udp")),
)
"""Every -z the tests compare, asked of tshark in one run per capture (a run costs seconds)."""
SECTION_TITLES = {
    "Protocol Hierarchy Statistics": "io,phs",
    "Ethernet Endpoints": "endpoints,eth",
    "IPv4 Endpoints": "endpoints,ip",
    "IPv6 Endpoints": "endpoints,ipv6",
    "TCP Endpoints": "endpoints,tcp",
    "UDP Endpoints": "endpoints,udp",
    "Ethernet Conversations": "conv,eth",
    "IPv4 Conversations": "conv,ip",
    "TCP Conversations": "conv,tcp",
    "UDP Conversations": "conv,udp",
}
IDS = [name for _, name in CAPTURES]
LOWER_LAYERS = frozenset({"eth", "null", "sll", "ip", "ipv6", "tcp", "udp"})
"""Levels of the hierarchy that come from the index, where tshark's counts must be ours. Above them
tshark names things we do not (data, _ws.malformed, heuristics it runs on every packet)."""


def _path(where: str, name: str) -> Path:
    return SAMPLES / name if where == "samples" else public_capture(name)


@pytest.fixture(params=CAPTURES, ids=IDS)
def capture(request: pytest.FixtureRequest) -> Iterator[tuple[Path, Session]]:
    path = _path(*request.param)
    session = Session.open(path, load_registry())
    yield path, session
    session.close()


_Z_OUTPUT: dict[Path, dict[str, str]] = {}


def _tshark_z(path: Path, spec: str) -> str:
    """tshark's output for one -z of Z_SPECS (all of them are made in one run, kept per capture)."""
    if path not in _Z_OUTPUT:
        out = tshark("-n", "-r", str(path), "-q", *(a for z in Z_SPECS for a in ("-z", z)))
        sections: dict[str, str] = {}
        for block in re.split(r"^={20,}$", out, flags=re.MULTILINE):
            lines = block.strip("\n").splitlines()
            if lines and lines[0].strip() in SECTION_TITLES:
                sections[SECTION_TITLES[lines[0].strip()]] = block
        _Z_OUTPUT[path] = sections
    return _Z_OUTPUT[path][spec]


def test_hierarchy_lower_layers_equal_tshark(capture: tuple[Path, Session]) -> None:
    path, session = capture
    theirs: dict[str, tuple[int, int]] = {}
    stack: list[str] = []
    for line in _tshark_z(path, "io,phs").splitlines():
        m = re.match(r"^( *)(\S+)\s+frames:(\d+) bytes:(\d+)", line)
        if m:
            stack = [*stack[: len(m.group(1)) // 2], m.group(2)]
            theirs[":".join(stack)] = (int(m.group(3)), int(m.group(4)))
    rows = stats.protocol_hierarchy(session)
    lower = {
        r["path"]: (r["frames"], r["bytes"]) for r in rows if str(r["path"]).split(":")[-1] in LOWER_LAYERS
    }
    # A path of ours that ends in ip without a transport (ICMP, ARP's...) has children tshark names
    # and we do not: its own count includes them in both.
    assert lower
    for p, counts in lower.items():
        assert theirs.get(p) == counts, p
    # The tree: every row's parent comes before it, one level up.
    seen: set[str] = set()
    for r in rows:
        parent = str(r["path"]).rpartition(":")[0]
        assert parent == "" or parent in seen
        assert r["depth"] == str(r["path"]).count(":")
        seen.add(str(r["path"]))


@pytest.mark.parametrize("layer", ["eth", "ip", "ipv6", "tcp", "udp"])
def test_endpoints_equal_tshark(capture: tuple[Path, Session], layer: stats.Layer) -> None:
    path, session = capture
    theirs: dict[object, tuple[int, ...]] = {}
    ported = layer in ("tcp", "udp")
    for line in _tshark_z(path, f"endpoints,{layer}").splitlines():
        parts = line.split()
        numbers = parts[2:8] if ported else parts[1:7]
        if len(numbers) == 6 and all(p.isdigit() for p in numbers) and (not ported or parts[1].isdigit()):
            key = (parts[0], int(parts[1])) if ported else parts[0]
            theirs[key] = tuple(int(p) for p in numbers)
    ours = {
        (r["address"], r["port"]) if ported else r["address"]: (
            r["packets"],
            r["bytes"],
            r["tx_packets"],
            r["tx_bytes"],
            r["rx_packets"],
            r["rx_bytes"],
        )
        for r in stats.endpoints(session, layer)
    }
    assert ours == theirs


CONV = re.compile(
    r"^(\S+)\s+<->\s+(\S+)\s+(\d+)\s+(\d+) (\w+)\s+(\d+)\s+(\d+) (\w+)\s+(\d+)\s+(\d+) (\w+)"
    r"\s+([\d.]+)\s+([\d.]+)"
)


@pytest.mark.parametrize("layer", ["eth", "ip", "tcp", "udp"])
def test_conversations_equal_tshark(capture: tuple[Path, Session], layer: stats.Layer) -> None:
    """Frames each way and in all, the start and the duration; bytes where tshark prints them as
    bytes (it rounds larger counts to kB)."""
    path, session = capture
    # tshark writes an IPv6 endpoint without brackets (`::1:50051`); we write `[::1]:50051`.
    ours = {
        frozenset((_bare(r["a"]), _bare(r["b"]))): r | {"a": _bare(r["a"]), "b": _bare(r["b"])}
        for r in stats.conversations(session, layer)
    }
    lines = [m for line in _tshark_z(path, f"conv,{layer}").splitlines() if (m := CONV.match(line))]
    assert len(lines) == len(ours)
    for m in lines:
        a, b = m.group(1), m.group(2)
        row = ours[frozenset((a, b))]
        # tshark's first columns ("<-") count what A received, its next ("->") what A sent.
        to_a, from_a = (int(m.group(3)), m.group(4), m.group(5)), (int(m.group(6)), m.group(7), m.group(8))
        sent, received = (
            ("a_to_b", "b_to_a") if (row["a"], row["b"]) == (a, b) or a == b else ("b_to_a", "a_to_b")
        )
        assert (row[f"{sent}_packets"], row[f"{received}_packets"]) == (from_a[0], to_a[0]), (a, b)
        for (_, size, unit), key in ((to_a, received), (from_a, sent)):
            if unit == "bytes":
                assert row[f"{key}_bytes"] == int(size), (a, b)
        assert row["packets"] == int(m.group(9))
        assert row["start"] == pytest.approx(float(m.group(12)), abs=1e-6)
        assert row["duration"] == pytest.approx(float(m.group(13)), abs=1e-4)


def _bare(address: object) -> str:
    return str(address).replace("[", "").replace("]", "")


IO_ROW = re.compile(r"\|\s*([\d.]+) <>\s*(?:[\d.]+|Dur)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|")


def test_io_stat_equals_tshark() -> None:
    path = public_capture("ndpi--teams.pcap")
    session = Session.open(path, load_registry())
    try:
        out = tshark("-n", "-r", str(path), "-q", "-z", "io,stat,1")
        theirs = [(int(m.group(2)), int(m.group(3))) for m in IO_ROW.finditer(out)]
        frames = stats.io_graph(session, 1.0)
        sizes = stats.io_graph(session, 1.0, unit="bytes")
        ours = list(zip(frames.series[stats.ALL_PACKETS], sizes.series[stats.ALL_PACKETS], strict=True))
        assert ours == theirs
        assert frames.start == int(session.index.records.ts_ns[0]) / 1e9
        # With filters: one series per filter, as tshark's io,stat,1,FILTER,... (filters both read
        # alike: tshark's `udp` also matches the UDP header quoted in an ICMP error, ours does not).
        out = tshark("-n", "-r", str(path), "-q", "-z", "io,stat,2,tcp,frame.len > 500")
        columns = [
            [int(x) for x in re.findall(r"\|\s*(\d+)", line)[-4:]]
            for line in out.splitlines()
            if re.match(r"\|\s*\d+ <>", line)
        ]
        graph = stats.io_graph(session, 2.0, ("tcp", "frame.len > 500"))
        assert [[c[0], c[2]] for c in columns] == [
            [int(t), int(u)]
            for t, u in zip(graph.series["tcp"], graph.series["frame.len > 500"], strict=True)
        ]
    finally:
        session.close()


def test_io_graph_rows_and_bad_intervals(capture: tuple[Path, Session]) -> None:
    _, session = capture
    graph = stats.io_graph(session, 0.5)
    assert sum(graph.series[stats.ALL_PACKETS]) == len(session.index)
    assert len(graph.series[stats.ALL_PACKETS]) <= stats.MAX_IO_BUCKETS
    # ndpi--stun.pcap's clock jumps four years: its interval is widened tenfold until it fits.
    assert graph.interval == 0.5 or graph.interval >= 5
    rows = stats.io_rows(graph)
    assert rows[0]["start"] == 0 and rows[0]["end"] == graph.interval
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="interval"):
            stats.io_graph(session, bad)


def test_a_mask_counts_only_its_packets(capture: tuple[Path, Session]) -> None:
    _, session = capture
    n = len(session.index)
    everything = np.ones(n, np.bool_)
    assert stats.endpoints(session, "ip", packets=everything) == stats.endpoints(session, "ip")
    assert stats.conversations(session, "udp", packets=everything) == stats.conversations(session, "udp")
    first_half = np.zeros(n, np.bool_)
    first_half[: n // 2] = True
    rows = stats.protocol_hierarchy(session, packets=first_half)
    assert sum(int(r["frames"]) for r in rows if r["depth"] == 0) == n // 2
    counted = sum(int(r["packets"]) for r in stats.conversations(session, "ip", packets=first_half))
    assert counted == int(np.count_nonzero(session.index.stack[: n // 2] >= 0)) - _non_ip(session, n // 2)


def _non_ip(session: Session, upto: int) -> int:
    """Packets among the first `upto` without an IPv4 header (ARP, STP, IPv6)."""
    stacks = session.index.stacks
    return sum(1 for s in session.index.stack[:upto].tolist() if "ip" not in stacks[s])


def test_hierarchy_with_bulk_rtp_equals_the_plain_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """A capture whose RTP flows are long enough for the bulk path counts the same either way."""
    path = public_capture("sipp--g711a.pcap")
    session = Session.open(path, load_registry())
    try:
        from protoscope.inspector.bulk import plan_rtp

        assert plan_rtp(session) is not None, "the capture no longer exercises the bulk path"
        bulk = stats.protocol_hierarchy(session)
        monkeypatch.setattr(stats, "plan_rtp", lambda _session: None)
        assert stats.protocol_hierarchy(session) == bulk
        assert any(r["protocol"] == "rtp" for r in bulk)
    finally:
        session.close()


def test_grpc_methods_agree_with_the_calls_report() -> None:
    session = Session.open(SAMPLES / "grpc-demo.pcap", load_registry())
    try:
        calls = list(analysis_rows(session, "calls"))
        rows = stats.grpc_methods(calls)
    finally:
        session.close()
    assert sum(int(r["calls"]) for r in rows) == len(calls)
    get = next(r for r in rows if r["path"] == "/demo.Directory/Get")
    mine = [c for c in calls if c["path"] == "/demo.Directory/Get"]
    statuses: dict[str, int] = {}
    for c in mine:
        statuses[c["status_name"]] = statuses.get(c["status_name"], 0) + 1
    assert get["statuses"] == statuses
    assert get["request_bytes"] == sum(m["size"] for c in mine for m in c["requests"])
    assert get["max_message"] == max(m["size"] for c in mine for m in (*c["requests"], *c["responses"]))
    latencies = sorted(c["duration"] * 1000 for c in mine if c["duration"] is not None)
    assert get["p50_ms"] == pytest.approx(float(np.percentile(latencies, 50)), abs=1e-3)
    assert get["p50_ms"] <= get["p90_ms"] <= get["p99_ms"]
    assert stats.grpc_methods([]) == []
