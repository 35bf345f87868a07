"""Colouring rules on real captures: the packets each default rule colours are the ones tshark
shows with that property; user rules come first; a bad user rule is a problem, not a crash."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from protoscope.decoders.registry import load_registry
from protoscope.inspector.colour import (
    DEFAULT_RULES,
    DTLS_ALERT,
    GRPC_ERROR,
    HTTP,
    STUN_ERROR,
    TCP,
    TCP_PROBLEMS,
    TCP_SYN_FIN,
    UDP,
)
from protoscope.inspector.config import ColourRule
from protoscope.inspector.model import CaptureModel
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES, public_capture, tshark


def _coloured(path: Path, rules: list[ColourRule] | None = None) -> tuple[CaptureModel, dict[str, list[int]]]:
    model = CaptureModel(Session.open(path, load_registry()), rules or [])
    try:
        model.decode_all()
    finally:
        model.session.close()
    frames = {
        rule.name: (np.flatnonzero(model.colours == k + 1) + 1).tolist()
        for k, rule in enumerate(model.colouring.rules)
    }
    return model, frames


def _tshark_frames(path: Path, display_filter: str) -> list[int]:
    out = tshark("-r", str(path), "-Y", display_filter, "-T", "fields", "-e", "frame.number")
    return [int(n) for n in out.split()]


def test_grpc_non_ok_status_is_coloured_as_tshark_sees_it() -> None:
    """grpc-edge's trailers with a grpc-status other than 0 (tshark 4.0 has no grpc.status field:
    its header fields say it)."""
    path = SAMPLES / "grpc-edge.pcap"
    _, frames = _coloured(path)
    port = json.loads(path.with_suffix(".truth.json").read_text())["port"]
    out = tshark(
        "-r", str(path), "-d", f"tcp.port=={port},http2", "-Y",
        'http2.header.name == "grpc-status" && !(http2.header.value == "0")',
        "-T", "fields", "-e", "frame.number",
    )  # fmt: skip
    assert frames[GRPC_ERROR.name] == [int(n) for n in out.split()] != []


def test_tcp_resets_are_coloured_as_tshark_sees_them() -> None:
    path = SAMPLES / "tls-loopback.pcap"
    _, frames = _coloured(path)
    assert frames[TCP_PROBLEMS.name] == _tshark_frames(path, "tcp.flags.reset == 1") != []


def test_dtls_alerts_are_coloured_as_tshark_sees_them() -> None:
    for name in (
        "zeek--dtls1_0.pcap",
        "zeek--dtls1_2.pcap",
        "wswiki--ThreadCommissioning-JPAKE-DTLS-1.pcapng",
    ):
        path = public_capture(name)
        _, frames = _coloured(path)
        assert frames[DTLS_ALERT.name] == _tshark_frames(path, "dtls.alert_message") != [], name


def test_stun_error_responses_are_coloured() -> None:
    """tshark 4.0 cannot mask stun.type in a filter; its Info column names error responses."""
    path = public_capture("ndpi--stun.pcap")
    _, frames = _coloured(path)
    lines = tshark("-r", str(path), "-Y", "stun", "-T", "fields", "-e", "frame.number", "-e", "_ws.col.Info")
    want = [int(line.split("\t")[0]) for line in lines.splitlines() if re.search(r"Error Response", line)]
    assert frames[STUN_ERROR.name] == want != []


def test_error_findings_come_first() -> None:
    model, frames = _coloured(SAMPLES / "webrtc-turn-refused.pcap")
    errors = sorted({f.index + 1 for f in model.decoded.findings if f.finding.severity == "error"})
    assert frames["Errors"] == errors != []


def test_rtp_loss_marks_the_packet_after_a_gap() -> None:
    path = public_capture("wswiki--rtp_example.raw")
    model, frames = _coloured(path)
    lost = sum(int(row["lost"]) for row in model.decoded.reports["streams"])
    assert len(frames["RTP loss"]) >= 1 and lost >= 1


def test_user_rules_win_and_bad_ones_are_problems() -> None:
    path = SAMPLES / "grpc-edge.pcap"
    mine = ColourRule("deadline", "grpc.status == 4", "white on blue")
    broken = ColourRule("broken", "grpc.status ==", "red")
    model, frames = _coloured(path, [broken, mine])
    assert [r.name for r in model.colouring.rules] == ["deadline", *(r.name for r in DEFAULT_RULES)]
    assert len(model.colouring.problems) == 1 and "broken" in model.colouring.problems[0]
    assert len(frames["deadline"]) == 5 and len(frames[GRPC_ERROR.name]) == 1
    assert model.colour_styles[1] == "white on blue"


ORDINARY = [HTTP.name, TCP_SYN_FIN.name, TCP.name, UDP.name]


def _wireshark_colours(path: Path, *decode_as: str) -> dict[str, set[int]]:
    """Frames per colouring rule name, as tshark's default colouring rules colour them."""
    out = tshark("-r", str(path), *decode_as, "--color", "-T", "fields", "-e", "frame.number",
                 "-e", "frame.coloring_rule.name")  # fmt: skip
    rules: dict[str, set[int]] = {}
    for line in out.splitlines():
        number, _, name = line.partition("\t")
        rules.setdefault(name, set()).add(int(number))
    return rules


def test_ordinary_traffic_is_coloured_as_wiresharks_default_rules() -> None:
    """HTTP, TCP SYN/FIN, TCP and UDP as Wireshark colours them, but for the packets an earlier
    (problem) rule colours: ours or Wireshark's (its Bad TCP comes from analysis we do not do)."""
    for path in (SAMPLES / "grpc-demo.pcap", SAMPLES / "webrtc-turn.pcap", SAMPLES / "tls-loopback.pcap"):
        truth = path.with_suffix(".truth.json")
        port = json.loads(truth.read_text()).get("port") if truth.exists() else None
        wireshark = _wireshark_colours(path, *(["-d", f"tcp.port=={port},http2"] if port else []))
        _, frames = _coloured(path)
        ours_problems = {n for name, got in frames.items() if name not in ORDINARY for n in got}
        its_problems = {n for name, got in wireshark.items() if name not in ORDINARY for n in got}
        for name in ORDINARY:
            want = wireshark.get(name, set())
            assert want - ours_problems <= set(frames[name]) <= want | its_problems, (path.name, name)
        assert sum(len(frames[name]) for name in ORDINARY) > len(ours_problems), path.name


def test_a_syn_is_syn_fin_an_http2_packet_http_and_port_80_is_http() -> None:
    model, frames = _coloured(SAMPLES / "grpc-demo.pcap")
    assert frames[TCP_SYN_FIN.name] == [1, 2, 99, 100]  # the handshake and the two FINs
    assert model.row(3).protocol == "HTTP2" and 4 in frames[HTTP.name]
    assert 3 in frames[TCP.name] and not frames[UDP.name]
    path = public_capture("wswiki--http2-h2c.pcap")  # Wireshark's HTTP rule has tcp.port == 80
    _, frames = _coloured(path)
    assert frames[HTTP.name] == sorted(_wireshark_colours(path)[HTTP.name]) == list(range(1, 11))
