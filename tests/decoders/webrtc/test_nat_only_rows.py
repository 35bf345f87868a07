"""NAT verdicts on sockets that no session claims (RFC 5780 discovery alone, a client's STUN
keepalives) are rows of their own, `kind: nat`, in the sessions report: coturn's
turnutils_natdiscovery against coturn on two loopback addresses (samples/make_rfc5780.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protoscope.inspector.cli import main

SAMPLES = Path(__file__).parent / "samples"
CAPTURES = Path(__file__).parents[3] / "captures" / "samples"


def rows(capsys: pytest.CaptureFixture[str], capture: Path) -> list[dict[str, object]]:
    assert main([str(capture), "--report", "sessions", "--format", "json"]) == 0
    out: list[dict[str, object]] = json.loads(capsys.readouterr().out)
    return out


def test_discovery_alone_gives_nat_rows(capsys: pytest.CaptureFixture[str]) -> None:
    got = rows(capsys, SAMPLES / "rfc5780-loopback.pcap")
    assert got and all(r["kind"] == "nat" for r in got)
    assert [r["id"] for r in got] == list(range(len(got)))
    # on loopback the mapped address is the socket itself: no NAT, said with the response's frame
    assert {r["nat_type"] for r in got} == {"no NAT"}
    for r in got:
        assert r["evidence"] and r["mappings"] and isinstance(r["findings"], list)
    tests = {t for r in got for t in (r["rfc5780"] or {})}  # type: ignore[union-attr]
    assert {"other_address", "mapping test I", "mapping test II"} <= tests
    assert main([str(SAMPLES / "rfc5780-loopback.pcap"), "--report", "sessions"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"NAT behaviour of sockets in no session ({len(got)})\n")
    assert "NAT of 127.0.0.1:" in text


def test_sockets_of_a_session_are_not_repeated(capsys: pytest.CaptureFixture[str]) -> None:
    """The lab's symmetric NAT (inside capture): its discovery sockets and the call's socket are
    all the session's, so no `kind: nat` row repeats them."""
    got = rows(capsys, CAPTURES / "nat-symmetric-inside.pcap")
    assert not [r for r in got if r.get("kind") == "nat"]
    (session,) = [r for r in got if r.get("kind") is None]
    assert "symmetric" in {n["nat_type"] for n in session["nat"]}  # type: ignore[attr-defined]


def test_only_answered_use_candidate_checks_nominate(capsys: pytest.CaptureFixture[str]) -> None:
    """aioice sends USE-CANDIDATE on every check of the controlling side (aggressive); RFC 8445
    section 8.1.1: a pair is nominated once such a check succeeded."""
    (session, *_) = rows(capsys, CAPTURES / "nat-relay-outside.pcap")
    pairs = session["candidate_pairs"]
    assert isinstance(pairs, list)
    assert any(p["use_candidate"] and p["state"] != "succeeded" for p in pairs)
    assert all(p["state"] == "succeeded" for p in pairs if p["nominated"])
    assert all(p["failure"] is None for p in pairs if p["state"] != "failed")
