"""Text reports: every row kind drawn, values whole when piped, folded (never cut) on a terminal."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from rich.cells import cell_len

from protoscope.captures.index import load
from protoscope.decoders.registry import load_registry
from protoscope.inspector.cli import main
from protoscope.inspector.report.rows import analysis_rows
from protoscope.inspector.report.text import capture_start, write_tables
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES

LONG_PATH = "/com.example.very.long.package.name.v1alpha1.SomeExtremelyVerboseServiceName/DoTheThing"
ROWS: list[dict[str, object]] = [
    {
        "id": 0,
        "path": LONG_PATH,
        "pair": {"local": "127.0.0.1:5000", "remote": "127.0.0.1:6000"},
        "note": "x" * 70,
        "ok": True,
        "missing": None,
    },
    {"id": 1, "kind": "other", "size": 12345678901234567890, "tags": ["a", "b"]},
    {"id": 2, "path": "/short.Service/Get", "extra": {"k": "v"}},
]


def render(rows: list[dict[str, object]], width: int | None, report: str = "plugin") -> str:
    out = io.StringIO()
    write_tables(report, rows, 0.0, out, width)
    return out.getvalue()


def column(text: str, header: str) -> list[str]:
    """The cells under `header` in every table block that has it, each row's lines joined."""
    cells: list[str] = []
    lines = text.splitlines()
    for n, line in enumerate(lines):
        if not line.startswith("┃") or f" {header} " not in line:
            continue
        bars = [i for i, c in enumerate(line) if c == "┃"]
        at = line.index(f" {header} ")
        left, right = max(b for b in bars if b < at), min(b for b in bars if b > at)
        body = lines[n + 2 : next(k for k in range(n, len(lines)) if lines[k].startswith("└"))]
        rows: list[list[str]] = [[]]
        for line in body:
            if line.startswith("├"):
                rows.append([])
            elif not any(b.startswith("├") for b in body) and rows[-1]:
                rows.append([line])  # without rules between rows, a line is a row
            else:
                rows[-1].append(line)
        cells += ["".join(r[left + 1 : right].strip() for r in row) for row in rows]
    return cells


def test_piped_every_value_is_whole_on_one_line() -> None:
    text = render(ROWS, None)
    lines = text.splitlines()
    for value in (LONG_PATH, "x" * 70, "127.0.0.1:5000 ↔ 127.0.0.1:6000", "12345678901234567890", "a, b"):
        assert any(value in line for line in lines), value
    assert "…" not in text
    assert "Plugin (2)" in text and "Plugin: other (1)" in text


@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_on_a_narrow_terminal_cells_fold_and_fit(width: int) -> None:
    text = render(ROWS, width)
    assert "…" not in text
    assert max(cell_len(line) for line in text.splitlines()) <= width
    assert LONG_PATH in column(text, "path")
    assert "x" * 70 in column(text, "note")
    assert "yes" in column(text, "ok")


def test_too_many_columns_split_into_blocks_that_repeat_the_first() -> None:
    rows: list[dict[str, object]] = [
        {"id": n, **{f"column_{c}": f"value-{n}-{c}" for c in range(12)}} for n in range(3)
    ]
    text = render(rows, 80)
    titles = [line for line in text.splitlines() if line.startswith("Plugin (3)")]
    assert len(titles) > 1 and titles[0].endswith(f"columns 1/{len(titles)}")
    assert text.count("┃ id ") == len(titles)
    for c in range(12):
        assert column(text, f"column_{c}") == [f"value-{n}-{c}" for n in range(3)]
    assert "…" not in text and max(cell_len(line) for line in text.splitlines()) <= 80


def test_a_report_without_rows_says_so() -> None:
    assert render([], None, "calls") == "Calls: none\n"


@pytest.mark.parametrize("width", [None, 80])
def test_sessions_show_values_not_keys(width: int | None) -> None:
    """A WebRTC session is a block (its summary lines, then narrow tables: tests/inspector/report/
    test_sessionblock.py); the TURN allocations stay a table."""
    session = Session.open(SAMPLES / "webrtc-turn.pcap", load_registry())
    try:
        rows = list(analysis_rows(session, "sessions"))
        start = capture_start(session)
    finally:
        session.close()
    out = io.StringIO()
    write_tables("sessions", rows, start, out, width)
    text = out.getvalue()
    assert text.startswith("Session 0: ") and "TURN allocations (3)" in text
    if width is not None:
        assert all(cell_len(line) <= width for line in text.split("TURN allocations")[0].splitlines())
    unwrapped = " ".join(line.strip() for line in text.splitlines())
    assert "phases: signaling 0.003856 #23 → ice 0.007089 #36" in unwrapped
    assert "media 0.534490 #132" in unwrapped and " pair: " in unwrapped
    assert "done 1.2 SRTP_AEAD_AES_256_GCM" in text and "Candidate pairs (" in text
    assert "turn_allocation" not in text and "{" not in text


def test_packet_times_are_relative_to_frame_1_under_a_filter(capsys: pytest.CaptureFixture[str]) -> None:
    path = SAMPLES / "grpc-demo.pcap"
    assert main([str(path), "--report", "packets", "-Y", "grpc"]) == 0
    lines = capsys.readouterr().out.splitlines()
    index = load(path)
    try:
        ts = index.records.ts_ns
        first = lines[1].split()
        frame = int(first[0])
        assert frame > 1 and first[1] == f"{(int(ts[frame - 1]) - int(ts[0])) / 1e9:.6f}"
    finally:
        index.close()


def test_json_reports_do_not_load_rich() -> None:
    args = [str(SAMPLES / "webrtc-turn.pcap"), "--report", "sessions", "--format", "json"]
    code = (
        "import sys, io, contextlib\n"
        "from protoscope.inspector.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main({args!r}) == 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
