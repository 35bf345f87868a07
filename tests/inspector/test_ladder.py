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
