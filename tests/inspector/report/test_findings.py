"""Findings are findings (issue 11): what an analysis finds is in `--report findings`, in frame
order among the packets' own, and in the summary's counts; a display filter keeps an analysis's
finding when its frame matches. On our failure samples (captures/samples/make_webrtc_failures.py)
and with a plugin's analysis."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, ClassVar

import pytest

from protoscope.decoders.api import FlowContext, Pdu
from protoscope.decoders.registry import load_registry
from protoscope.inspector.cli import main
from protoscope.inspector.report import rows
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES

FAILURES = ["no-answer", "turn-refused", "bad-fingerprint", "one-way"]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


def findings(capsys: pytest.CaptureFixture[str], name: str, *args: str) -> list[dict[str, Any]]:
    out = cli(capsys, str(SAMPLES / name), "--report", "findings", "--format", "jsonl", *args)
    return [json.loads(line) for line in out.splitlines()]


def truth(kind: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"webrtc-{kind}.truth.json").read_text())


def in_frame_order(found: list[dict[str, Any]]) -> bool:
    frames = [f["frame"] for f in found]
    framed = [f for f in frames if f is not None]
    return framed == sorted(framed) and frames == framed + [None] * (len(frames) - len(framed))


@pytest.mark.parametrize("kind", FAILURES)
def test_failure_samples_list_what_the_sessions_found(kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    want = truth(kind)["expected"]
    found = findings(capsys, f"webrtc-{kind}.pcap")
    ours = [f for f in found if f.get("analysis") == "sessions"]
    assert sorted(f["code"] for f in ours) == sorted(code for _, codes in want.values() for code in codes)
    for f in ours:
        assert f["phase"] == f["code"].split(".")[0]  # "ice.no_response" is in phase ice
        assert isinstance(f["frame"], int) and f["frame"] >= 1
        assert set(f) == {"frame", "severity", "code", "message", "phase", "analysis"}
    # The finding that decides each row's failed phase is an error; what follows from it is not.
    failed_phases = {phase for phase, _ in want.values()}
    assert {f["code"] for f in ours if f["severity"] == "error"} == {
        f["code"] for f in ours if f["phase"] in failed_phases
    }
    assert in_frame_order(found)
    # The summary counts them with the packets' own.
    summary = json.loads(
        cli(capsys, str(SAMPLES / f"webrtc-{kind}.pcap"), "--report", "summary", "--format", "json")
    )
    assert summary["findings"] == {
        s: Counter(f["severity"] for f in found).get(s, 0) for s in ("error", "warn", "note")
    }


def test_no_answer_in_frame_order_with_the_retransmissions(capsys: pytest.CaptureFixture[str]) -> None:
    """The unanswered checks' retransmission notes (the STUN decoder's), then, on the last check,
    the session's error."""
    found = [(f["frame"], f["severity"], f["code"]) for f in findings(capsys, "webrtc-no-answer.pcap")]
    assert found == [
        (23, "note", "stun.retransmission"),
        (24, "note", "stun.retransmission"),
        (25, "note", "stun.retransmission"),
        (25, "error", "ice.no_response"),
    ]


def test_a_display_filter_keeps_the_analysis_findings_of_the_frames_it_matches(
    capsys: pytest.CaptureFixture[str],
) -> None:
    every = findings(capsys, "webrtc-turn-refused.pcap")
    assert [(f["frame"], f["code"]) for f in every] == [
        (18, "turn.credentials_refused"),
        (23, "ice.no_checks"),
    ]
    # The 401 is STUN; the session's last frame is the SDP answer in a WebSocket message.
    assert [f["code"] for f in findings(capsys, "webrtc-turn-refused.pcap", "-Y", "stun")] == [
        "turn.credentials_refused"
    ]
    assert [f["code"] for f in findings(capsys, "webrtc-turn-refused.pcap", "-Y", "sdp")] == ["ice.no_checks"]
    assert findings(capsys, "webrtc-turn-refused.pcap", "-Y", "frame.number == 1") == []


def test_text_report_lists_them(capsys: pytest.CaptureFixture[str]) -> None:
    out = cli(capsys, str(SAMPLES / "webrtc-bad-fingerprint.pcap"), "--report", "findings")
    assert "dtls.fingerprint_mismatch" in out and "media.one_way" in out


def test_spooled_findings_come_back_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pass's findings wait in a temporary file once they outgrow SPOOL_BYTES: the same rows."""
    path = SAMPLES / "webrtc-no-answer.pcap"

    def report() -> list[dict[str, Any]]:
        session = Session.open(path, load_registry())
        try:
            return list(rows.finding_rows(session))
        finally:
            session.close()

    in_memory = report()
    monkeypatch.setattr(rows, "SPOOL_BYTES", 16)
    assert report() == in_memory and len(in_memory) == 4


# -- a plugin's analysis --------------------------------------------------------------------------


class Tiny:
    """A plugin's analysis: one row per flow, with a finding on the flow's first PDU, one without a
    frame, and one that breaks the contract."""

    name: ClassVar[str] = "tiny"

    def __init__(self) -> None:
        self.first: dict[int, int] = {}

    def feed(self, pdu: Pdu, ctx: FlowContext) -> None:
        self.first.setdefault(ctx.flow, ctx.frame)

    def rows(self) -> list[dict[str, object]]:
        return [
            {
                "flow": flow,
                "findings": [
                    {
                        "frame": frame,
                        "severity": "warn",
                        "code": "tiny.first",
                        "message": f"flow {flow} starts",
                    },
                    {
                        "frame": None,
                        "severity": "note",
                        "code": "tiny.overall",
                        "message": "seen",
                        "phase": "all",
                    },
                    {"frame": frame, "severity": "fatal", "code": "tiny.bad", "message": "not a severity"},
                ],
            }
            for flow, frame in self.first.items()
        ]


def tiny_session() -> Session:
    registry = load_registry()
    registry.analyses["tiny"] = Tiny
    return Session.open(SAMPLES / "grpc-demo.pcap", registry)


def test_a_plugins_analysis_findings_reach_the_report_and_the_summary() -> None:
    session = tiny_session()
    try:
        found = list(rows.finding_rows(session))
        summary = rows.summary(session)
    finally:
        session.close()
    tiny = [f for f in found if f.get("analysis") == "tiny"]
    assert [(f["frame"], f["severity"], f["code"]) for f in tiny] == [
        (4, "warn", "tiny.first"),  # the HTTP/2 preface, after the TCP handshake
        (None, "note", "tiny.overall"),
        (None, "error", "analysis.bad_finding"),
    ]
    assert tiny[1]["phase"] == "all" and "phase" not in tiny[0]
    assert "severity 'fatal'" in tiny[2]["message"]
    assert in_frame_order(found) and found[-2:] == tiny[1:]
    assert summary["findings"] == {
        s: Counter(f["severity"] for f in found).get(s, 0) for s in ("error", "warn", "note")
    }


def test_malformed_findings_are_named() -> None:
    bad = [
        {"findings": "oops"},
        {"findings": [7]},
        {"findings": [{"frame": 0, "severity": "warn", "code": "x", "message": "m"}]},
        {"findings": [{"frame": True, "severity": "warn", "code": "x", "message": "m"}]},
        {"findings": [{"frame": 1, "severity": "warn", "code": 3, "message": "m"}]},
    ]
    found = list(rows.analysis_findings("p", bad, packets=10))
    assert [f["code"] for f in found] == ["analysis.bad_finding"] * 5
    assert all(f["frame"] is None and f["severity"] == "error" and f["analysis"] == "p" for f in found)
    good = {"frame": 10, "severity": "note", "code": "x", "message": "m", "phase": None}
    assert list(rows.analysis_findings("p", [{"findings": [good]}], packets=10)) == [
        {"frame": 10, "severity": "note", "code": "x", "message": "m", "analysis": "p"}
    ]
