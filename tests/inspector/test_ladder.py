"""--export mermaid: a sequence diagram of a flow, safe against capture text."""

from __future__ import annotations

import pytest

from protoscope.inspector.cli import main
from tests.conftest import SAMPLES


def test_mermaid_of_a_grpc_flow(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(SAMPLES / "grpc-demo.pcap"), "--export", "mermaid", "--flow", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "sequenceDiagram"
    assert lines[1] == "    participant P0 as 127.0.0.1:40450" and lines[2].endswith("127.0.0.1:47051")
    arrows = [line for line in lines if "->>" in line]
    assert arrows[0].startswith("    P1->>P0: 4: SETTINGS") and any("gRPC request" in a for a in arrows)
    assert all(";" not in a.split(": ", 1)[1] and "\n" not in a for a in arrows)


def test_unknown_flow_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(SAMPLES / "grpc-demo.pcap"), "--export", "mermaid", "--flow", "9"]) == 2
    assert capsys.readouterr().err.strip() == "protoscope: no flow 9 (the capture has 1)"


def test_mermaid_of_a_webrtc_session(capsys: pytest.CaptureFixture[str]) -> None:
    """--session N: the signaling (WebSocket with SDP), the TURN allocations, the relayed checks,
    DTLS and media of one session, across every endpoint; media runs are one arrow each."""
    assert main([str(SAMPLES / "webrtc-turn.pcap"), "--export", "mermaid", "--session", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    participants = [line for line in lines if line.startswith("    participant ")]
    assert len(participants) >= 5 and any("127.0.0.1:3478" in p for p in participants)
    arrows = [line.split(": ", 1)[1] for line in lines if "->>" in line]
    assert any("SDP" in a for a in arrows) and any("Allocate Request" in a for a in arrows)
    assert any("Binding Request" in a for a in arrows) and any("Client Hello" in a for a in arrows)
    media = [a for a in arrows if "RTP ×" in a or "RTCP ×" in a]
    assert media and len(arrows) < 300  # 451 packets, hundreds of them RTP


def test_session_and_flow_together_or_unknown_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    capture = str(SAMPLES / "webrtc-turn.pcap")
    assert main([capture, "--export", "mermaid", "--session", "7"]) == 2
    assert capsys.readouterr().err.strip() == "protoscope: no session 7 (the capture has 1)"
    assert main([capture, "--export", "mermaid", "--session", "0", "--flow", "1"]) == 2
    assert "not both" in capsys.readouterr().err


def test_drawn_ladder_has_a_column_per_endpoint() -> None:
    from protoscope.inspector.report.ladder import Arrow, draw

    items = [
        Arrow(1, 0.0, "a:1", "b:2", "offer", "sdp"),
        Arrow(2, 0.5, "b:2", "c:3", "offer", "sdp"),
        Arrow(3, 1.0, "c:3", "a:1", "answer", "sdp"),
    ]
    lines = draw(items, width=100)
    assert [lines[0].index(n) < lines[0].index(m) for n, m in (("a:1", "b:2"), ("b:2", "c:3"))] == [
        True,
        True,
    ]
    first, second, third = lines[1:]
    assert first.startswith("      1   0.000000 ") and first.count("│") == 3 and "offer" in first
    assert second.index("offer") > first.index("offer")  # b -> c starts at b's column
    assert "◀" in third and "▶" not in third and "answer" in third
