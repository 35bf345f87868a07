"""What `e` writes: the file name it proposes, and the rows of the view that go into the file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..model import CaptureModel


def default_path(capture: Path, what: str, suffix: str) -> str:
    """A file in the current directory named after the capture and what it holds, that does not
    exist yet ("grpc-demo-calls.json", then "grpc-demo-calls-2.json")."""
    stem = f"{capture.stem}-{what}"
    target, n = Path(f"{stem}{suffix}"), 2
    while target.exists():
        target, n = Path(f"{stem}-{n}{suffix}"), n + 1
    return str(target)


def packet_rows(which: str, marked: Sequence[int], shown: list[int] | None, total: int) -> Sequence[int]:
    """The packets to write: the marked ones in frame order, or those the list shows (all of them
    when no filter or flow narrows it)."""
    if which == "marked":
        return sorted(marked)
    return shown if shown is not None else range(total)


def report_rows(model: CaptureModel, name: str) -> list[Any]:
    """A report tab's rows as JSON values; findings as frame (1-based, None for the capture),
    severity, code and message."""
    if name == "findings":
        return [
            {
                "frame": f.index + 1 if f.index >= 0 else None,
                "severity": f.finding.severity,
                "code": f.finding.code,
                "message": f.finding.message,
            }
            for f in model.decoded.findings
        ]
    return model.shown_reports.get(name, [])
