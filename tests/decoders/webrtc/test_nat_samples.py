"""NatObserver on real captures: coturn's RFC 5780 discovery on loopback (samples/make_rfc5780.py)
and the NAT lab's calls through real NATs (captures/samples/make_nat.py), against their truth."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from protoscope.decoders.registry import load_registry
from protoscope.decoders.sdp.parse import SdpRecord
from protoscope.decoders.stun.messages import StunRecord
from protoscope.decoders.webrtc.candidates import parse_candidate
from protoscope.decoders.webrtc.nat import NatObserver
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES

LOOPBACK = Path(__file__).resolve().parent / "samples" / "rfc5780-loopback.pcap"
LAB = sorted(SAMPLES.glob("nat-*.truth.json"))


def observe(path: Path) -> NatObserver:
    """Feed a capture's STUN messages (as the flow's decoder saw them: not what TURN relayed) and
    its SDP candidates to a NatObserver, as the sessions analysis does."""
    nat = NatObserver()
    session = Session.open(path, load_registry())
    try:
        for pd in session.decode():
            ctx = pd.context or session.context(pd.index)
            for pdu, depth in zip(pd.pdus, pd.depths, strict=True):
                rec = pdu.record
                if isinstance(rec, StunRecord) and depth == 0:
                    nat.stun(rec, ctx)
                elif isinstance(rec, SdpRecord):
                    for media in rec.media:
                        for line in media.candidates:
                            cand = parse_candidate(f"candidate:{line}")
                            if cand is not None:
                                nat.candidate(cand, media.ice_ufrag or rec.ice_ufrag, ctx.frame, ctx.time)
    finally:
        session.close()
    return nat


def test_coturn_discovery_on_loopback() -> None:
    nat = observe(LOOPBACK)
    rows = nat.verdicts()
    assert rows and not nat.findings()
    assert {(r["mapping"], r["filtering"], r["nat_type"]) for r in rows} == {("no-nat", "no-nat", "no NAT")}
    tests: dict[str, str] = {}
    for row in rows:
        tests.update(row["rfc5780"] or {})
    assert tests["other_address"] == "127.0.0.2:34781"
    assert tests["mapping test II"].endswith("the same mapping")
    assert "answered from 127.0.0.2:34781" in tests["filtering test II (change IP and port)"]
    assert tests["padding"].startswith("1500 bytes of PADDING answered")
    (lifetime,) = [r["binding_lifetime_s"] for r in rows if r["binding_lifetime_s"]]
    assert lifetime["at_least"] >= 1.9  # the script's 2 s timer, from timestamps


@pytest.mark.parametrize("hairpin", [True, False])
def test_hairpinning_behind_a_real_nat(hairpin: bool) -> None:
    """samples/make_hairpin.py: RFC 5780 discovery inside an nftables NAT that keeps ports, lets
    anyone in (a DNAT of its WAN address), and hairpins or not. coturn's client probes from a
    new socket per test: the NAT's behaviour is shared by its host's sockets."""
    nat = observe(LOOPBACK.with_name(f"hairpin-{'yes' if hairpin else 'no'}-inside.pcap"))
    rows = nat.verdicts()
    assert {r["nat_type"] for r in rows} == {"full cone"}
    assert all(r["port_preservation"] is True and r["inside"].startswith("10.0.9.2:") for r in rows)
    (probed,) = [r for r in rows if r["inside"] == "10.0.9.2:45000"]
    assert probed["public"] == ["198.51.100.1:45000"]
    assert probed["hairpinning"] is hairpin
    assert [r["hairpinning"] for r in rows if r is not probed] == [None, None]
    assert any(
        e.startswith("hairpinning: frame 3: a request to the public 198.51.100.1:45000")
        for e in probed["evidence"]
    )


@pytest.mark.parametrize("truth_path", LAB or [None], ids=[p.name for p in LAB] or ["no-lab-samples"])
def test_nat_lab_captures(truth_path: Path | None) -> None:
    if truth_path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no captures/samples/nat-*.truth.json (captures/samples/make_nat.py makes them)")
        pytest.skip("no NAT lab captures")
    truth: dict[str, Any] = json.loads(truth_path.read_text())
    nat = observe(truth_path.with_suffix("").with_suffix(".pcap"))
    point = truth["capture"]["point"]
    inside_peer = {"inside": "A", "inside-b": "B"}.get(point)
    for name, peer in truth["peers"].items():
        want = peer["nat"]
        rows = [r for r in nat.verdict_for([peer["inside"]]) if r["inside"] == peer["inside"]]
        got = [(r["mapping"], r["filtering"], r["nat_type"]) for r in rows]
        evidence = [r["evidence"] for r in rows]
        if want["mapping"] == "no-nat":
            assert [g[2] for g in got] in ([], ["no NAT"]), (name, evidence)
        elif name == inside_peer:
            # inside its NAT, RFC 5780's probes and every mapping are seen: the whole verdict
            assert got == [(want["mapping"], want["filtering"], want["nat_type"])], (name, evidence)
        elif point == "outside":
            # outside, the mapping shows (checks' sources are mappings); filtering only when an
            # inbound check was answered or dropped, so a cone's name may lack it
            names = (
                {want["nat_type"], "cone (filtering unknown)"}
                if "cone" in want["nat_type"]
                else {"symmetric"}
            )
            mappings = {want["mapping"]}
            if want["mapping"] == "address-and-port-dependent" and len(got) == 1:
                if not any("destination port" in e for e in evidence[0]):
                    # only the STUN server and the peer (two IPs) were compared: RFC 4787 cannot
                    # tell address- from address-and-port-dependent, and the row says so
                    assert any(
                        e.startswith("mapping: no two ports of one destination IP were compared")
                        for e in evidence[0]
                    )
                    mappings.add("destination-dependent")
            assert len(got) == 1 and got[0][0] in mappings and got[0][2] in names, (name, evidence)
        else:
            # the far peer, seen from inside the other NAT: its srflx candidate at most
            assert [g[2] for g in got] in ([], [want["nat_type"]], ["unknown"]), (name, evidence)
