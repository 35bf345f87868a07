"""Start-up: headless runs load only what the capture and the report need (checked in a fresh
interpreter, since one test run imports everything)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ..conftest import SAMPLES

RUN = """
import contextlib, io, json, sys
from protoscope.inspector.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        code = main({argv!r})
    except SystemExit as exc:
        code = exc.code
print(json.dumps({{"code": code, "modules": sorted({{m.split(".")[0] for m in sys.modules}}),
                  "full": sorted(sys.modules), "out": out.getvalue()[:200]}}))
"""

HEAVY = {"textual", "scapy", "grpc", "grpc_tools", "grpc_reflection", "google", "cryptography", "rich"}
"""Libraries a headless JSON report must not load unless its capture needs them."""


def loaded(*argv: str) -> tuple[set[str], set[str], str]:
    done = subprocess.run(
        [sys.executable, "-c", RUN.format(argv=list(argv))], capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, done.stderr
    return set(result["modules"]), set(result["full"]), result["out"]


def test_version_loads_nothing_of_the_engine() -> None:
    top, full, _ = loaded("--version")
    assert not (top & (HEAVY | {"numpy"})), sorted(top & (HEAVY | {"numpy"}))
    assert "importlib.metadata" not in full
    assert not any(m.startswith("protoscope.captures") or m.startswith("protoscope.decoders") for m in full)


@pytest.mark.parametrize(
    ("capture", "report", "allowed"),
    [
        ("loopback-basic.pcap", "summary", set()),
        ("grpc-demo.pcap", "calls", set()),
        ("grpc-demo.pcap", "findings", set()),
        ("grpc-demo.pcap", "flows", set()),
        # DTLS certificates are checked with cryptography (a bad one is a finding): these captures
        # need it, for every report that decodes.
        ("webrtc-turn.pcap", "flows", {"cryptography"}),
        ("webrtc-direct.pcap", "sessions", {"cryptography"}),
    ],
)
def test_a_json_report_loads_only_what_its_capture_needs(
    capture: str, report: str, allowed: set[str]
) -> None:
    top, full, _ = loaded(str(SAMPLES / capture), "--report", report, "--format", "json")
    assert not (top & HEAVY) - allowed, sorted((top & HEAVY) - allowed)
    assert "importlib.metadata" not in full


def test_a_text_report_loads_rich_and_nothing_else_heavy() -> None:
    top, _, out = loaded(str(SAMPLES / "loopback-basic.pcap"), "--report", "flows", "--format", "text")
    assert out.strip()
    assert (top & HEAVY) == {"rich"}
