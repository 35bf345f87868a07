"""The command line: reports and their JSON keys, and bad input ending in one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from protoscope.inspector.cli import main
from tests import pcapgen
from tests.conftest import public_capture, public_captures

PUBLIC = [p.name for p in public_captures()] or ["no-corpus"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "protoscope.inspector.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "PROTOSCOPE_DEBUG": ""},
    )


@pytest.mark.parametrize("name", PUBLIC)
def test_summary_runs_on_every_public_capture(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = public_capture(name)
    assert main([str(path), "--report", "summary", "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["packets"] > 0


def test_report_json_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cap = pcapgen.write(tmp_path / "r.pcap", pcapgen.tcp_conversation(pcapgen.RESP_SEGMENTS))
    assert main([str(cap), "--report", "flows", "--format", "json"]) == 0
    flows = json.loads(capsys.readouterr().out)
    assert {"id", "transport", "client", "server", "protocols", "packets", "bytes", "first", "last"} <= set(
        flows[0]
    )
    assert flows[0]["client"] == "127.0.0.1:40000" and flows[0]["server"] == "127.0.0.1:6379"
    assert main([str(cap), "--report", "packets", "--format", "jsonl"]) == 0
    packets = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [p["frame"] for p in packets] == list(range(1, 9))
    assert {"frame", "time", "len", "flow", "protocols", "pdus", "findings"} <= set(packets[0])
    assert packets[0]["protocols"] == ["eth", "ip", "tcp"]
    assert main([str(cap), "--report", "findings", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main([str(cap), "--report", "summary", "--format", "text"]) == 0
    assert "Protocol hierarchy" in capsys.readouterr().out


def test_capture_text_is_shown_literally(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plugin = tmp_path / "say.py"
    plugin.write_text(
        "from protoscope.decoders.api import DecodeResult, Pdu\n"
        "class Say:\n"
        "    name = 'say'; transport = 'datagram'; ports = frozenset({('udp', 3478)})\n"
        "    def sniff(self, d, c): return True\n"
        "    def new_state(self): return None\n"
        "    def decode(self, d, s, c):\n"
        "        return DecodeResult((Pdu('say', (), (0, len(d)), summary=d.decode()),), len(d))\n"
    )
    cap = pcapgen.write(tmp_path / "m.pcap", pcapgen.udp_packets([b"[red]x[/red]\x1b[2J"]))
    assert main([str(cap), "--plugin", str(plugin), "--report", "packets"]) == 0
    out = capsys.readouterr().out
    assert "[red]x[/red]\\x1b[2J" in out and "\x1b" not in out


def _bad_inputs(tmp: Path) -> dict[str, Path]:
    good = pcapgen.write(tmp / "good.pcap", pcapgen.udp_packets([b"a" * 40, b"b" * 40]))
    raw = good.read_bytes()
    cases = {
        "missing": tmp / "nope.pcap",
        "directory": tmp,
        "text": tmp / "t.pcap",
        "empty": tmp / "e.pcap",
        "random": tmp / "r.pcap",
        "header-only-short": tmp / "h.pcap",
    }
    cases["text"].write_text("hello, this is not a capture\n")
    cases["empty"].write_bytes(b"")
    cases["random"].write_bytes(os.urandom(4096))
    cases["header-only-short"].write_bytes(raw[:10])
    return cases


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for what, path in _bad_inputs(tmp_path).items():
        r = run_cli(str(path), "--report", "summary")
        assert r.returncode == 2, what
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("protoscope: "), (what, r.stderr)
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr, (what, r.stderr)


def test_truncated_and_absurd_files_load_with_a_finding(tmp_path: Path) -> None:
    good = pcapgen.write(tmp_path / "good.pcap", pcapgen.udp_packets([b"a" * 40, b"b" * 40]))
    raw = good.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(raw[:-10])
    absurd = bytearray(raw)
    absurd[24 + 8 : 24 + 12] = (0x7FFFFFF0).to_bytes(4, "little")
    bad = tmp_path / "absurd.pcap"
    bad.write_bytes(bytes(absurd))
    for path, code, packets in ((cut, "capture.truncated", 1), (bad, "capture.bad_record_length", 0)):
        r = run_cli(str(path), "--report", "findings", "--format", "jsonl")
        assert r.returncode == 0, r.stderr
        assert [json.loads(x)["code"] for x in r.stdout.splitlines()] == [code]
        s = json.loads(run_cli(str(path), "--report", "summary", "--format", "json").stdout)
        assert s["packets"] == packets


def test_usage_errors_exit_2() -> None:
    for args in ([], ["x.pcap", "--report", "nope"], ["--live"], ["x.pcap", "-d", "garbage"]):
        r = run_cli(*args)
        assert r.returncode == 2, args
        assert "Traceback" not in r.stderr and r.stderr.strip(), args


def test_summary_counts_tcp_gaps_like_the_findings_report(tmp_path: Path) -> None:
    pkts = pcapgen.tcp_conversation([(True, b"a" * 10), (True, b"b" * 10), (True, b"c" * 10)])
    del pkts[4]  # the capture missed the middle segment
    cap = pcapgen.write(tmp_path / "gap.pcap", pkts)
    findings = [
        json.loads(x)
        for x in run_cli(str(cap), "--report", "findings", "--format", "jsonl").stdout.splitlines()
    ]
    assert [(f["code"], f["frame"]) for f in findings] == [("tcp.gap", 5)]
    assert "10 bytes were not captured" in findings[0]["message"]
    summary = json.loads(run_cli(str(cap), "--report", "summary", "--format", "json").stdout)
    assert summary["findings"] == {"error": 0, "warn": 1, "note": 0}
