"""Every report in every format, and every export, on every sample and public capture: exit 0, no
internal error, JSON that parses, text that renders (issue 11). Runs in-process: a subprocess per
run would cost ~0.3 s of interpreter start-up times ~1,900 runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protoscope.captures.index import load
from protoscope.decoders.registry import load_registry
from protoscope.inspector.cli import main
from protoscope.inspector.report import REPORTS
from tests.conftest import SAMPLES, public_capture, public_captures

SAMPLE_NAMES = sorted(p.name for p in SAMPLES.glob("*.pcap"))
PUBLIC_NAMES = [p.name for p in public_captures()] or ["no-corpus"]
"""A missing corpus is one test that fails under CI=true (and skips elsewhere)."""

CAPTURES = [*(("samples", n) for n in SAMPLE_NAMES), *(("public", n) for n in PUBLIC_NAMES)]
NAMES = [*REPORTS, *sorted(load_registry().analyses)]
FORMATS = ("text", "json", "jsonl")


def _path(where: str, name: str) -> Path:
    return SAMPLES / name if where == "samples" else public_capture(name)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run the command line in this process; its stdout, after checking it ended well."""
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, f"exit {code}: {err.strip()}"
    assert "internal error" not in err and "Traceback" not in err, err
    return out


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    # PROTOSCOPE_DEBUG re-raises internal errors; the matrix checks that none happens, either way.
    monkeypatch.delenv("PROTOSCOPE_DEBUG", raising=False)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("report", NAMES)
@pytest.mark.parametrize(("where", "capture"), [pytest.param(w, n, id=n) for w, n in CAPTURES])
def test_report(where: str, capture: str, report: str, fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = _run(capsys, str(_path(where, capture)), "--report", report, "--format", fmt)
    if fmt == "json":
        data = json.loads(out)
        assert isinstance(data, dict if report == "summary" else list)
    elif fmt == "jsonl":
        for line in out.splitlines():
            assert isinstance(json.loads(line), dict)
    else:
        assert out.strip(), "no text at all"
        assert "Traceback" not in out
        # Piped, nothing is cut: rich marks a cut cell with an ellipsis.
        assert "…" not in out


@pytest.mark.parametrize(("where", "capture"), [pytest.param(w, n, id=n) for w, n in CAPTURES])
def test_exports(where: str, capture: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(_path(where, capture))
    flows = json.loads(_run(capsys, path, "--report", "flows", "--format", "json"))
    if flows:
        ladder = _run(capsys, path, "--export", "mermaid", "--flow", str(flows[0]["id"]))
        assert ladder.startswith("sequenceDiagram\n")
    sessions = json.loads(_run(capsys, path, "--report", "sessions", "--format", "json"))
    ice = [row for row in sessions if row.get("kind") is None]
    if ice:
        ladder = _run(capsys, path, "--export", "mermaid", "--session", str(ice[0]["id"]))
        assert ladder.startswith("sequenceDiagram\n")
    written = tmp_path / "all.pcapng"
    _run(capsys, path, "--export", "pcapng", "--output", str(written))
    original, copy = load(path), load(written)
    try:
        assert len(copy) == len(original)
    finally:
        original.close()
        copy.close()
