"""A drawn timeline of phases: any report row with a `phases` mapping (name -> {"time", "frame"}),
such as a WebRTC session's signaling, ICE, DTLS and media, gets one lane per phase on a shared time
axis, a bar from each phase to the next, and the failed phase marked. A plugin's rows get it too."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.widgets import Static

from .text import clean

LABEL = 16
TAIL = 26


def phase_times(row: Mapping[str, object]) -> list[tuple[str, float, object]]:
    """(phase, time, frame) of a row's phases in time order; [] when it has none."""
    phases = row.get("phases")
    if not isinstance(phases, Mapping):
        return []
    out: list[tuple[str, float, object]] = []
    for name, value in phases.items():
        if isinstance(value, Mapping) and isinstance(value.get("time"), int | float):
            out.append((str(name), float(value["time"]), value.get("frame")))
    return sorted(out, key=lambda p: p[1])


def phase_chart(row: Mapping[str, object], width: int) -> Text:
    """The chart as text `width` cells wide: a header with the axis, then a lane per phase."""
    phases = phase_times(row)
    failed = row.get("failed_phase")
    out = Text(no_wrap=True)
    if not phases:
        return out
    t0, t1 = phases[0][1], phases[-1][1]
    span = t1 - t0
    cells = max(10, width - LABEL - TAIL)

    def col(t: float) -> int:
        return 0 if span <= 0 else min(cells - 1, round((t - t0) / span * (cells - 1)))

    total = f"{span * 1000:.3f} ms" if span < 1 else f"{span:.3f} s"
    out.append(f"{'phase':<{LABEL}}", "bold")
    out.append(f"0{total:>{cells - 1}}", "bold")
    out.append(f"  {'frame':>7} {'at':>12}\n", "bold")
    for n, (name, t, frame) in enumerate(phases):
        start = col(t)
        end = col(phases[n + 1][1]) if n + 1 < len(phases) else start
        bad = name == failed
        style = "bold red" if bad else ("green" if n + 1 < len(phases) else "cyan")
        out.append(f"{clean(name)[: LABEL - 1]:<{LABEL}}", "bold red" if bad else "")
        out.append(" " * start)
        out.append("●", style)
        out.append("━" * max(0, end - start - 1), style)
        out.append(" " * (cells - max(end, start + 1)))
        out.append(f"  {clean(frame):>7} {f'+{(t - t0) * 1000:.3f} ms':>12}\n")
    if isinstance(failed, str) and failed not in {p[0] for p in phases}:
        out.append(f"{clean(failed)[: LABEL - 1]:<{LABEL}}", "bold red")
        out.append(" " * (cells - 1) + "✗", "bold red")
        out.append("  never reached\n", "bold red")
    elif isinstance(failed, str):
        out.append(f"failed in phase {clean(failed)}\n", "bold red")
    return out


class PhaseChart(Static):
    """Shows `phase_chart` of the selected row, or hides itself when the row has no phases."""

    DEFAULT_CSS = "PhaseChart { height: auto; max-height: 12; display: none; }"

    def show(self, row: Mapping[str, object]) -> None:
        self.row = row
        self.display = bool(phase_times(row))
        self.update(phase_chart(row, max(60, self.size.width or self.app.size.width)))
