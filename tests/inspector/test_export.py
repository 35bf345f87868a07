"""--export pcapng: a flow or the filtered packets, bytes and times kept (scapy reads it back)."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.utils import RawPcapNgReader

from protoscope.captures.index import load
from protoscope.inspector.cli import main
from tests.conftest import SAMPLES


def test_flow_export_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "flow.pcapng"
    args = [str(SAMPLES / "loopback-basic.pcap"), "--export", "pcapng", "--flow", "0", "--output", str(out)]
    assert main(args) == 0
    original = load(SAMPLES / "loopback-basic.pcap")
    exported = load(out)
    try:
        chosen = [i for i in range(len(original)) if original.flow[i] == 0]
        assert [bytes(data) for data, _ in RawPcapNgReader(str(out))] == [original.frame(i) for i in chosen]
        assert exported.records.ts_ns.tolist() == [int(original.records.ts_ns[i]) for i in chosen]
    finally:
        original.close()
        exported.close()
    assert "wrote" in capsys.readouterr().err


def test_filtered_export(tmp_path: Path) -> None:
    out = tmp_path / "errors.pcapng"
    args = [
        str(SAMPLES / "grpc-demo.pcap"),
        "--export",
        "pcapng",
        "-Y",
        "grpc.status != 0",
        "--output",
        str(out),
    ]
    assert main(args) == 0
    exported = load(out)
    try:
        assert len(exported) == 2
    finally:
        exported.close()
