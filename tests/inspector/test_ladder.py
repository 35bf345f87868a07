"""--export mermaid: a sequence diagram of a flow, safe against capture text."""

from __future__ import annotations

import pytest

from protoscope.decoders.registry import load_registry
from protoscope.inspector.cli import main
from protoscope.inspector.report.ladder import LEFT, text_ladder
from protoscope.inspector.session import Session
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
    assert lines[0] == "A a:1 · B b:2 · C c:3"
    assert lines[1] == "t = 0 at frame 1, 1970-01-01 00:00:00.000000 UTC"
    header = lines[2]
    assert header.split() == ["A", "B", "C"] and header.index("A") == LEFT
    first, second, third = lines[3:]
    assert first.startswith("      1   0.000000 ") and first.count("│") == 3 and "offer" in first
    assert first.index("│") == LEFT and len(first) <= 100
    assert second.index("offer") > first.index("offer")  # b -> c starts at b's column
    assert "◀" in third and "▶" not in third and "answer" in third
    assert (lines.head, lines.fixed) == (2, LEFT)


def ladder(name: str, flow: int = 0, width: int = 100, stream_id: int | None = None) -> list[str]:
    session = Session.open(SAMPLES / name, load_registry())
    try:
        return list(text_ladder(session, flow, width, stream_id=stream_id))
    finally:
        session.close()


def test_headers_arrows_say_path_and_status_and_the_legend_the_endpoints() -> None:
    lines = ladder("grpc-demo.pcap", width=80)
    assert lines[0] == "A 127.0.0.1:40450 · B 127.0.0.1:47051"
    assert lines[1].startswith("t = 0 at frame 1, ")  # the packet list's origin
    assert all(len(line) <= 80 for line in lines)
    arrows = [line for line in lines if "▶" in line or "◀" in line]
    assert any("HEADERS[1] POST /demo.Directory/Get ─" in a and a.endswith("▶│") for a in arrows)
    assert any("─ HEADERS[1] 200 ─" in a and "◀" in a for a in arrows)
    assert any("─ HEADERS[1] grpc-status 0 OK ─" in a for a in arrows)
    assert any("HEADERS[3] 200 grpc-status 5 NOT_FOUND" in a for a in arrows)  # Trailers-Only


def test_a_calls_ladder_draws_its_stream_only() -> None:
    lines = ladder("grpc-demo.pcap", stream_id=3)
    arrows = [line for line in lines if "▶" in line or "◀" in line]
    assert arrows and all("[3]" in a or "gRPC" in a for a in arrows)
    assert not any("SETTINGS" in a or "PING" in a or "[1]" in a for a in arrows)
    assert [a.split()[0] for a in arrows] == ["17", "17", "17", "17", "18"]
    assert lines[1].startswith("t = 0 at frame 1, ") and arrows[0].split()[1] == "0.002405"


def test_client_first_where_http2_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    """grpc-server-first.pcap begins with the server's packets: the flow takes the server for the
    client; HTTP/2 knows better, and the ladder and Mermaid put the real client first."""
    lines = ladder("grpc-server-first.pcap")
    assert lines[0] == "A 127.0.0.1:38760 · B 127.0.0.1:47054"
    assert main([str(SAMPLES / "grpc-server-first.pcap"), "--export", "mermaid", "--flow", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "    participant P0 as 127.0.0.1:38760"
