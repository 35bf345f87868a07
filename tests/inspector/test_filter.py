"""Display filters: the grammar, Wireshark's semantics, -Y headless, hostile input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protoscope.inspector.cli import main
from protoscope.inspector.filter import FilterError, compile_filter
from tests.conftest import SAMPLES

PACKET = {
    "ip.src": ["10.0.0.1"],
    "ip.dst": ["10.0.0.2"],
    "udp": [True],
    "udp.srcport": [3478],
    "udp.dstport": [5000],
    "stun": [True],
    "stun.type": [257],
    "stun.att.username": ["abc:def"],
    "rtp.ssrc": [0x1234],
    "frame.len": [120],
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("stun.type == 0x0101", True),
        ("stun.type eq 257", True),
        ("ip.addr == 10.0.0.1 && udp", True),
        ("ip.addr == 10.0.0.3 or tcp", False),
        ("rtp.ssrc == 0x1234", True),
        ("udp.port in {53 3478}", True),
        ('stun.att.username contains "c:d"', True),
        ('stun.att.username matches "^ABC"', True),
        ("!(tcp) and frame.len > 100", True),
        ("frame.len <= 100", False),
        ("grpc.status != 0", False),
        ("stun.type != 1", True),
        ("not stun", False),
    ],
)
def test_semantics(text: str, expected: bool) -> None:
    assert compile_filter(text)(PACKET) is expected


@pytest.mark.parametrize(
    "text", ["", "ip.src ==", "(udp", "udp)", "== 3", "a == b c", 'x matches "["', "frame.len > abc"]
)
def test_errors_are_filter_errors(text: str) -> None:
    with pytest.raises(FilterError):
        compile_filter(text)


@given(st.text(max_size=60))
def test_random_text_parses_or_fails_cleanly(text: str) -> None:
    try:
        predicate = compile_filter(text)
    except FilterError:
        return
    predicate(PACKET)


def test_headless_filter(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                str(SAMPLES / "grpc-demo.pcap"),
                "--report",
                "packets",
                "--format",
                "jsonl",
                "-Y",
                "grpc.status != 0",
            ]
        )
        == 0
    )
    frames = [line.split(",")[0] for line in capsys.readouterr().out.splitlines()]
    assert frames == ['{"frame": 18', '{"frame": 98']  # NOT_FOUND and DEADLINE_EXCEEDED
    assert main([str(SAMPLES / "grpc-demo.pcap"), "--report", "packets", "-Y", "ip.addr =="]) == 2
    assert "bad filter" in capsys.readouterr().err
