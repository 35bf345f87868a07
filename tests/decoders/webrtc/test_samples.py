"""Our aiortc samples (captures/samples/make_webrtc.py): decoded sessions equal what the peers said."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from protoscope.decoders.registry import load_registry
from protoscope.decoders.stun.messages import StunRecord
from protoscope.inspector.report.rows import analysis_rows
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES


def decode(
    name: str, options: dict[str, object] | None = None
) -> tuple[list[dict[str, Any]], list[StunRecord]]:
    registry = load_registry()
    registry.configure(options or {})
    session = Session.open(SAMPLES / f"{name}.pcap", registry)
    try:
        rows = list(analysis_rows(session, "sessions"))
        stun = [p.record for pd in session.decode() for p in pd.pdus if isinstance(p.record, StunRecord)]
    finally:
        session.close()
    return rows, stun


def truth(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.truth.json").read_text())


def sdp_values(sdp: str, attr: str) -> set[str]:
    return set(re.findall(rf"^a={attr}:(\S+)", sdp, re.MULTILINE))


def test_direct_call() -> None:
    want = truth("webrtc-direct")
    rows, stun = decode("webrtc-direct")
    (ice,) = [r for r in rows if r.get("kind") is None]
    assert set(ice["ufrags"]) == sdp_values(want["offer"], "ice-ufrag") | sdp_values(
        want["answer"], "ice-ufrag"
    )
    assert list(ice["phases"]) == [
        "signaling",
        "ice",
        "ice_connected",
        "nominated",
        "dtls",
        "dtls_done",
        "media",
    ]
    assert ice["findings"] == [] and ice["dtls"]["state"] == "done" and ice["dtls"]["fingerprint_checked"]
    ssrcs = {int(s) for s in sdp_values(want["offer"], "ssrc") | sdp_values(want["answer"], "ssrc")}
    assert {m["ssrc"] for m in ice["media"]} == ssrcs
    assert {m["from_client"] for m in ice["media"]} == {True, False}
    # The ICE passwords came from the SDP in the WebSocket signaling: every check verifies.
    checked = [r.integrity for r in stun if r.method == 1 and r.cls == 0]
    assert checked and set(checked) == {"ok"}
    assert ice["data_records"] >= len(want["messages"])


def test_call_through_coturn() -> None:
    want = truth("webrtc-turn")
    turn = want["turn"]
    auth = f"{turn['username']}:secret@{turn['realm']}"
    rows, stun = decode("webrtc-turn", {"stun.turn_auth": [auth]})
    allocations = [r for r in rows if r.get("kind") == "turn_allocation"]
    relay_candidates = {
        f"{m[0]}:{m[1]}"
        for sdp in (want["offer"], want["answer"])
        for m in re.findall(r"^a=candidate:\S+ \d \w+ \d+ (\S+) (\d+) typ relay", sdp, re.MULTILINE)
    }
    assert allocations and {a["relayed"] for a in allocations} >= relay_candidates
    assert all(a["unauthorized_401"] == 1 and a["released"] and a["findings"] == [] for a in allocations)
    # TURN requests and responses verify with the long-term key (the realm learnt from the flow),
    # ICE checks with the passwords from the SDP.
    checked = [r.integrity for r in stun if r.integrity is not None]
    assert len(checked) >= 20 and set(checked) == {"ok"}
    (ice,) = [r for r in rows if r.get("kind") is None]
    assert ice["findings"] == [] and {"ice", "dtls_done", "media"} <= set(ice["phases"])


def test_signaling_starts_with_the_offer_whatever_the_hash_seed() -> None:
    """Both halves of a session (offer and answer ufrags) merge into the older one, so the report
    does not depend on set order: it once began with the answer under some PYTHONHASHSEEDs."""
    import os
    import subprocess
    import sys

    want = truth("webrtc-turn")
    command = [sys.executable, "-m", "protoscope.inspector.cli", str(SAMPLES / "webrtc-turn.pcap")]
    outputs = set()
    for seed in ("0", "1", "2", "3", "4", "5"):
        done = subprocess.run(
            [*command, "--report", "sessions", "--format", "json"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert done.returncode == 0, done.stderr
        outputs.add(done.stdout)
    assert len(outputs) == 1
    (ice,) = [r for r in json.loads(outputs.pop()) if r.get("kind") is None]
    first = ice["signaling"][0]
    assert set(first["ufrag"]) == sdp_values(want["offer"], "ice-ufrag")
    assert ice["phases"]["signaling"]["frame"] == first["frame"]


FAILURES = ["no-answer", "turn-refused", "bad-fingerprint", "one-way"]


@pytest.mark.parametrize("kind", FAILURES)
def test_failed_calls_name_their_phase(kind: str) -> None:
    """Real aiortc calls that break (captures/samples/make_webrtc_failures.py): the sessions report
    says where, with the findings the truth file expects and no others."""
    want = truth(f"webrtc-{kind}")
    rows, _ = decode(f"webrtc-{kind}")
    (ice,) = [r for r in rows if r.get("kind") is None]
    phase, codes = want["expected"]["session"]
    assert ice["failed_phase"] == phase
    assert sorted(f["code"] for f in ice["findings"]) == sorted(codes)
    assert all(f["phase"] in ("signaling", "turn", "ice", "dtls", "media") for f in ice["findings"])
    # Offer and answer belong to the one session, even where no check ever tied their ufrags.
    assert set(ice["ufrags"]) == sdp_values(want["offer"], "ice-ufrag") | sdp_values(
        want["answer"], "ice-ufrag"
    )
    allocations = [r for r in rows if r.get("kind") == "turn_allocation"]
    if "allocation" in want["expected"]:
        phase, codes = want["expected"]["allocation"]
        assert allocations and all(a["failed_phase"] == phase for a in allocations)
        assert all(sorted({f["code"] for f in a["findings"]}) == sorted(codes) for a in allocations)
        assert all(a["relayed"] is None for a in allocations)
    else:
        assert allocations == []
