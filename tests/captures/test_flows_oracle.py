"""Conversations and TCP streams compared with tshark on every public capture."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from protoscope.captures.index import load
from tests.conftest import public_capture, public_captures, tshark

CONV_LINE = re.compile(
    r"^(?P<a>\S+)\s+<->\s+(?P<b>\S+)\s+"
    r"(?P<ba_f>\d+)\s+(?P<ba_b>\d+ \S+)\s+(?P<ab_f>\d+)\s+(?P<ab_b>\d+ \S+)\s+"
    r"(?P<t_f>\d+)\s+(?P<t_b>\d+ \S+)\s+"
)
UNITS = {"bytes": 1, "kB": 1000, "MB": 1000**2, "GB": 1000**3}


def conversations(path: Path, proto: str) -> dict[frozenset[str], dict[str, object]]:
    out = tshark("-r", str(path), "-q", "-z", f"conv,{proto}")
    convs: dict[frozenset[str], list[dict[str, str]]] = {}
    for line in out.splitlines():
        m = CONV_LINE.match(line)
        if m:
            # tshark lists one 5-tuple in several rows when SDP or H.245 set up a conversation per
            # RTP direction (wswiki--rtp_example.raw, wswiki--Asterisk_ZFONE_XLITE.pcap): the rows
            # of one endpoint pair are added up, which is the conversation as a 5-tuple.
            convs.setdefault(frozenset((m["a"], m["b"])), []).append(m.groupdict())
    return convs


def parse_bytes(printed: str) -> tuple[int, int]:
    """(value, scale) of a tshark byte count such as "3344 bytes" or "414 kB"."""
    value, unit = printed.split()
    return int(value), UNITS[unit]


def rows_match(rows: list[dict[str, str]], column: str, ours: int) -> bool:
    exact = [parse_bytes(r[column]) for r in rows]
    if all(scale == 1 for _, scale in exact):
        return sum(v for v, _ in exact) == ours
    # Rounded units: our total must lie within the rounding of the summed rows.
    low = sum(v * s for v, s in exact)
    high = sum((v + 1) * s for v, s in exact)
    return low - len(rows) * 1000 <= ours <= high


def tshark_endpoint(ep: object) -> str:
    # tshark prints IPv6 endpoints as "::1:3000", without brackets.
    return f"{ep.ip}:{ep.port}"  # type: ignore[attr-defined]


PUBLIC_IDS = [p.name for p in public_captures()] or ["no-corpus"]


@pytest.mark.parametrize("name", PUBLIC_IDS)
def test_conversations_equal_tshark(name: str) -> None:
    path = public_capture(name)
    ix = load(path)
    try:
        for proto in ("tcp", "udp"):
            theirs = conversations(path, proto)
            ours = {
                frozenset((tshark_endpoint(f.client), tshark_endpoint(f.server))): f
                for f in ix.flows
                if f.transport == proto
            }
            only_theirs = set(theirs) - set(ours)
            assert not only_theirs, f"{proto}: tshark lists conversations we lack: {only_theirs}"
            assert set(ours) <= set(theirs), f"{proto}: only ours: {set(ours) - set(theirs)}"
            for key, flow in ours.items():
                rows = theirs[key]
                assert sum(int(r["t_f"]) for r in rows) == flow.packets, (key, rows, flow)
                assert rows_match(rows, "t_b", flow.bytes), (key, rows, flow)
                c2s = [r for r in rows if r["a"] == tshark_endpoint(flow.client)]
                s2c = [r for r in rows if r["a"] != tshark_endpoint(flow.client)]
                sent = sum(int(r["ab_f"]) for r in c2s) + sum(int(r["ba_f"]) for r in s2c)
                assert sent == flow.packets_c2s, (key, rows, flow)
    finally:
        ix.close()
