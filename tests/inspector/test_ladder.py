"""--export mermaid: a sequence diagram of a flow, safe against capture text."""

from __future__ import annotations

import pytest

from protoscope.decoders.registry import load_registry
from protoscope.inspector.cli import main
from protoscope.inspector.report.ladder import LEFT, Arrow, column_labels, draw_ladder, text_ladder
from protoscope.inspector.report.rows import analysis_rows
from protoscope.inspector.report.sessionladder import (
    endpoint_roles,
    session_arrows,
    session_flows,
    session_ladder,
    unwrap,
)
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES
from tests.inspector.report import ice_rows
from tests.inspector.report.ice_rows import relayed_session, turn_allocation


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


# -- a WebRTC session's ladder: endpoints named by role, TURN folded -----------------------------------

A, TURN_SERVER, B = "10.0.1.2:50000", "198.51.100.2:3478", "10.0.2.2:40000"
A_RELAY, B_RELAY = "198.51.100.2:49152", "198.51.100.2:49153"


def _arrow(frame: int, src: str, dst: str, label: str, protocol: str = "stun") -> Arrow:
    return Arrow(frame, 1.0 + frame / 1000, src, dst, label, protocol)


def test_endpoints_are_named_by_role_from_the_session_row() -> None:
    row = relayed_session()
    roles = endpoint_roles(row, [turn_allocation()])
    assert roles[ice_rows.A_HOST] == "A" and roles[ice_rows.B_HOST] == "B"
    assert roles[ice_rows.B_SRFLX] == "B srflx" and roles[ice_rows.B_PRFLX] == "B prflx"
    assert roles[ice_rows.A_RELAY] == "A relay" and roles[ice_rows.B_RELAY] == "B relay"
    assert roles[ice_rows.TURN] == "TURN" and roles[ice_rows.STUN] == "STUN"
    # a row without parties: its allocations still name the TURN server and the relays
    old = endpoint_roles(
        {"id": 0}, [{"kind": "turn_allocation", "client": A, "server": TURN_SERVER, "relayed": A_RELAY}]
    )
    assert old == {TURN_SERVER: "TURN", A_RELAY: "relay"}


def test_column_labels_keep_letters_apart_from_roles() -> None:
    assert column_labels(["x", "y", "z"], {"y": "A", "z": "TURN"}) == ["B", "A", "TURN"]
    assert column_labels(["x"], {"x": "a very long role name"}) == ["a very long "]


def test_turn_wrappers_fold_into_what_they_carry() -> None:
    items = [
        _arrow(36, B, TURN_SERVER, "ChannelData TURN Message 0x4000"),
        _arrow(36, B, TURN_SERVER, "Binding Request user: HeEa:Ppdl"),
        _arrow(37, B_RELAY, A_RELAY, "Binding Request user: HeEa:Ppdl"),
        _arrow(38, A, TURN_SERVER, "ChannelData TURN Message 0x4000"),  # carries nothing decoded
    ]
    assert [a.label for a in unwrap(items)] == [
        "Binding Request user: HeEa:Ppdl [ChannelData]",
        "Binding Request user: HeEa:Ppdl",
        "ChannelData TURN Message 0x4000",
    ]


def test_relayed_media_is_one_path_through_turn() -> None:
    roles = {A: "A", B: "B", TURN_SERVER: "TURN", A_RELAY: "A relay", B_RELAY: "B relay"}
    items = [
        _arrow(132, A, TURN_SERVER, "RTP ×50 from frame 132", "rtp"),
        _arrow(133, A_RELAY, B_RELAY, "RTP ×50 from frame 133", "rtp"),
        _arrow(134, TURN_SERVER, B, "RTP ×50 from frame 134", "rtp"),
        _arrow(135, B, TURN_SERVER, "RTP ×50 from frame 135", "rtp"),
        _arrow(136, B_RELAY, A_RELAY, "RTP ×50 from frame 136", "rtp"),
        _arrow(137, TURN_SERVER, A, "RTP ×50 from frame 137", "rtp"),
        _arrow(140, B, TURN_SERVER, "Refresh Request"),
    ]
    folded = session_arrows(items, roles)
    assert [(a.frame, roles[a.src], roles[a.dst], a.via) for a in folded] == [
        (132, "A", "B", (TURN_SERVER,)),
        (135, "B", "A", (TURN_SERVER,)),
        (140, "B", "TURN", ()),
    ]
    assert folded[0].label == "RTP ×50 from frame 132 via TURN"
    lines = draw_ladder(folded, 100, order=[A, TURN_SERVER, B], named=roles)
    assert lines[0].startswith("A 10.0.1.2:50000 · TURN 198.51.100.2:3478 · B 10.0.2.2:40000")
    row = next(line for line in lines if line.lstrip().startswith("132 "))
    assert "┼" in row and row.index("┼") > row.index("│") and "▶" in row


def test_media_whose_first_leg_is_not_captured_is_drawn_as_it_is() -> None:
    roles = {A: "A", B: "B", TURN_SERVER: "TURN", A_RELAY: "A relay", B_RELAY: "B relay"}
    items = [_arrow(134, TURN_SERVER, B, "RTP ×50 from frame 134", "rtp")]
    assert session_arrows(items, roles) == items


def test_session_flows_add_the_stun_and_turn_exchanges() -> None:
    row = relayed_session()
    row["flows"] = [3, 5]
    frames = {10: 7, 12: 8, 14: 9, 16: 9, 41: 5}
    flows = session_flows(row, lambda frame: frames.get(frame, -1), [turn_allocation()])
    assert flows == [3, 5, 6, 7, 8, 9]


def test_the_session_ladder_of_the_turn_sample_names_the_turn_server() -> None:
    session = Session.open(SAMPLES / "webrtc-turn.pcap", load_registry())
    try:
        rows = list(analysis_rows(session, "sessions"))
        lines, flows = session_ladder(session, rows[0], rows, 150)
    finally:
        session.close()
    assert "TURN 127.0.0.1:3478" in " ".join(lines[: lines.head])
    assert set(rows[0]["flows"]) <= set(flows)  # type: ignore[arg-type]
    assert any("Allocate Request" in line for line in lines)
    assert any("Binding Request" in line and "[ChannelData]" in line for line in lines)
    assert not any("ChannelData TURN Message" in line for line in lines)


def test_a_partys_second_socket_is_told_apart() -> None:
    assert column_labels(["x", "y", "z"], {"x": "A", "y": "A", "z": "A"}) == ["A", "A #2", "A #3"]


def test_media_from_a_peer_to_the_other_peers_relay_is_one_path_too() -> None:
    """A relayed, B not: B sends straight to A's relay, TURN hands it to A; A's media goes
    through TURN and leaves A's relay for B's socket."""
    roles = {A: "A", B: "B prflx", TURN_SERVER: "TURN", A_RELAY: "A relay"}
    items = [
        _arrow(167, A, TURN_SERVER, "RTP ×101 from frame 167", "rtp"),
        _arrow(168, A_RELAY, B, "RTP ×101 from frame 168", "rtp"),
        _arrow(169, B, A_RELAY, "RTP ×101 from frame 169", "rtp"),
        _arrow(170, TURN_SERVER, A, "RTP ×101 from frame 170", "rtp"),
    ]
    folded = session_arrows(items, roles)
    assert [(a.frame, a.src, a.dst, a.via) for a in folded] == [
        (167, A, B, (TURN_SERVER,)),
        (169, B, A, (TURN_SERVER, A_RELAY)),
    ]
