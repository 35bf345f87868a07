"""The status line's words: counts with their nouns, and a live capture's counters and state."""

from __future__ import annotations

from protoscope.captures.live import LiveCapture

from ..model import CaptureModel


def counted(n: int, noun: str) -> str:
    """ "1 flow", "3 flows": a status line read at a glance."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def live_text(live: LiveCapture, ended: bool, model: CaptureModel | None) -> str:
    """A live capture's status line: its state and interface, the packets captured, dropped and
    skipped while paused, what the last look found, its error or the pause key, and last the
    spool's name (its directory is in the header), so that 80 columns keep the counters."""
    stats = live.stats
    state = "stopped" if ended else ("PAUSED" if live.paused else "capturing")
    parts = [f"{state} on {live.iface}: {counted(stats.packets, 'packet')}"]
    parts.append(f"{stats.dropped} dropped" if stats.dropped is not None else "drops unknown")
    if stats.skipped:
        parts.append(f"{stats.skipped} not kept (paused)")
    if model is not None:
        flows, calls = len(model.index.flows), len(model.decoded.calls)
        parts.append(f"{counted(flows, 'flow')}, {counted(calls, 'gRPC call')}")
    if live.error is not None:
        parts.append(str(live.error))
    elif not ended:
        parts.append("Ctrl+E " + ("resumes" if live.paused else "pauses"))
    return ", ".join(parts) + f" · {stats.spool.name}"
