"""Our aiortc samples (captures/samples/make_webrtc.py): decoded sessions equal what the peers said."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from protoscope.decoders.dtls.records import DtlsRecord
from protoscope.decoders.registry import load_registry
from protoscope.decoders.rtp.packets import RtpRecord
from protoscope.decoders.sdp.parse import SdpRecord
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
    # The relay worked: a note that says why it was needed (issue 16), nothing else.
    assert [f["code"] for f in ice["findings"]] == ["ice.relay_only"]
    assert ice["failed_phase"] is None and {"ice", "dtls_done", "media"} <= set(ice["phases"])


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
    # Findings are findings (the Analysis contract): each names a frame and a severity, and the
    # findings of the failed phase are the errors; what followed from them is a warning.
    for row in [ice, *allocations]:
        for f in row["findings"]:
            assert isinstance(f["frame"], int) and f["frame"] >= 1
            assert f["severity"] == ("error" if f["phase"] == row["failed_phase"] else "warn")


def packets(name: str) -> list[tuple[int, object, str]]:
    """(frame, record, source) of every PDU of a sample, in frame order."""
    session = Session.open(SAMPLES / f"{name}.pcap", load_registry())
    try:
        return [
            (pd.index + 1, p.record, str(session.context(pd.index).src))
            for pd in session.decode()
            for p in pd.pdus
        ]
    finally:
        session.close()


def where(name: str) -> dict[str, int]:
    """Each finding's frame in the sessions report of a failure sample, by code."""
    rows, _ = decode(name)
    return {f["code"]: f["frame"] for row in rows for f in row["findings"]}


def test_no_answer_shows_on_the_last_unanswered_check() -> None:
    checks = [
        frame
        for frame, rec, _ in packets("webrtc-no-answer")
        if isinstance(rec, StunRecord) and (rec.method, rec.cls) == (1, 0)
    ]
    assert len(checks) == 4  # the first check and its three retransmissions
    assert where("webrtc-no-answer") == {"ice.no_response": checks[-1]}


def test_refused_credentials_show_on_the_401_and_no_checks_on_the_sessions_last_frame() -> None:
    pdus = packets("webrtc-turn-refused")
    refusals = [
        frame
        for frame, rec, _ in pdus
        if isinstance(rec, StunRecord) and rec.cls == 3 and rec.attributes.get("error_code") == 401
    ]
    sdp = [frame for frame, rec, _ in pdus if isinstance(rec, SdpRecord)]
    # The first 401 is the nonce dance; the second answers the request that carried USERNAME. The
    # session never reached ICE: its last packet is the answer's SDP.
    assert where("webrtc-turn-refused") == {"turn.credentials_refused": refusals[1], "ice.no_checks": sdp[-1]}


def test_fingerprint_mismatch_shows_on_the_certificate() -> None:
    rows, _ = decode("webrtc-bad-fingerprint")
    (ice,) = [r for r in rows if r.get("kind") is None]
    (mismatch,) = [f for f in ice["findings"] if f["code"] == "dtls.fingerprint_mismatch"]
    endpoint = mismatch["message"].split()[2]  # "certificate of 127.0.0.1:34343 is not ..."
    pdus = packets("webrtc-bad-fingerprint")
    certificates = [
        frame
        for frame, rec, src in pdus
        if isinstance(rec, DtlsRecord) and "certificates" in rec.facts and src == endpoint
    ]
    first_rtp = next(frame for frame, rec, _ in pdus if isinstance(rec, RtpRecord))
    assert where("webrtc-bad-fingerprint") == {
        "dtls.fingerprint_mismatch": certificates[0],
        "media.one_way": first_rtp,
    }


def test_one_way_media_shows_on_its_first_packet() -> None:
    first_rtp = next(frame for frame, rec, _ in packets("webrtc-one-way") if isinstance(rec, RtpRecord))
    assert where("webrtc-one-way") == {"media.one_way": first_rtp}
