"""Headless reports on a growing capture, row by row as each is complete (`--live ... --format
jsonl`, `--follow FILE`): a packet and its findings when it is decoded, a gRPC call when it ends
(the calls analysis drains it), every other analysis's rows at the end, and with `--interval S`
what an analysis would give if the capture ended now, every S seconds (RTP streams so far).

The index, the decoding pass and the analyses continue from their state on each look at the file
(`PacketIndex.extend`, `AnalysisPass.more`): a look costs what arrived since the last one.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from .report.inert import json_inert
from .report.rows import (
    AnalysisPass,
    analysis_findings,
    finding_analyses,
    finding_row,
    fresh_analyses,
    packet_row,
)
from .session import PacketDecode, Session

if TYPE_CHECKING:
    from .filter.apply import PacketMatcher

TICK = 0.25
"""Seconds between two looks at the growing file (a row is out at most this late, plus what the
capture's own batching holds back: see captures/live.py)."""

STREAMED = ("packets", "findings")
HPACK_NOTE = (
    "protoscope: note: calls on an HTTP/2 connection opened before the capture may have no path or "
    "status (their headers refer to HPACK entries sent before it: see unknown_headers); start the "
    "capture before the client connects"
)


def _before_capture(row: dict[str, Any]) -> bool:
    """A call whose headers referred to HPACK entries from before the capture, without a path."""
    return row.get("path") is None and bool(row.get("unknown_headers"))


"""Reports of the decoding pass itself; every other one is an analysis's."""


@dataclass(frozen=True, slots=True)
class StreamOptions:
    report: str
    interval: float | None = None
    """Seconds between two snapshots of an analysis's rows (None: its rows at the end only)."""
    display_filter: str | None = None


class RowWriter:
    """JSON Lines on `out`, flushed after every look so that `| jq` sees rows as they come."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.rows = 0

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.out.write(json_inert(json.dumps(row, ensure_ascii=False)) + "\n")
            self.rows += 1

    def flush(self) -> None:
        self.out.flush()


class LiveReport:
    """One report over a session whose index grows: `look()` takes what arrived, `end()` what the
    end of the capture completes (open calls, streams, sessions, the analyses' findings)."""

    def __init__(self, session: Session, options: StreamOptions, out: RowWriter) -> None:
        self.session = session
        self.options = options
        self.out = out
        name = options.report
        self._ready: list[dict[str, Any]] = []
        analyses = {}
        if name == "findings":
            analyses = finding_analyses(session)
        elif name != "packets":
            analyses = fresh_analyses(session, [name])
        # The packets report and -Y see every packet; the others only those that can give a PDU
        # or a finding (Session.decode's sparse pass).
        sparse = name != "packets" and not options.display_filter
        self._pass = AnalysisPass(session, analyses, self._took, sparse=sparse)
        self._next_snapshot = time.monotonic() + options.interval if options.interval else None
        self._told_hpack = False
        self._matches: PacketMatcher | None = None
        if options.display_filter and name in STREAMED:
            from .filter import packet_matcher

            self._matches = packet_matcher(session, options.display_filter)

    def _took(self, name: str, rows: list[dict[str, Any]]) -> None:
        """Rows an analysis handed over (drained, or at the end): its findings for the findings
        report, the rows themselves for its own."""
        if self.options.report == "findings":
            self._ready += analysis_findings(name, rows, len(self.session.index))
            return
        self._ready += rows
        if name == "calls" and not self._told_hpack and any(_before_capture(row) for row in rows):
            self._told_hpack = True
            print(HPACK_NOTE, file=sys.stderr)

    def look(self, final: bool = False) -> None:
        """Read what the file gained and write every row it completes."""
        self.session.index.extend()
        if final:
            self.session.index.finish()
        matches = self._matches
        if matches is not None:
            matches.grown()
        for pd in self._pass.more(final=final):
            if matches is not None and not matches(pd):
                continue
            self.out.write(self._packet_rows(pd))
        if final:
            self._pass.finish()
            if self.options.report == "findings":
                self._ready += [finding_row(None, f) for f in self.session.file_findings()]
        self.out.write(self._ready)
        self._ready.clear()
        if self._next_snapshot is not None and not final and time.monotonic() >= self._next_snapshot:
            assert self.options.interval is not None
            self._next_snapshot += self.options.interval
            self.out.write(self._pass.snapshot().get(self.options.report, []))
        self.out.flush()

    def _packet_rows(self, pd: PacketDecode) -> Iterator[dict[str, Any]]:
        name = self.options.report
        if name == "packets" and not pd.late:
            yield packet_row(self.session, pd)
        elif name == "findings":
            for f in pd.findings:
                yield finding_row(pd.index + 1, f)


def run(
    session: Session, options: StreamOptions, out: TextIO, ended: Callable[[], bool], stop: Callable[[], None]
) -> int:
    """Look at the growing file every TICK seconds until `ended()` (the capture stopped by itself,
    or Ctrl-C / SIGTERM, which the CLI turns into a flag rather than an exception in the middle of
    a pass), then `stop()` the capture and look once more, for the end; the number of rows
    written."""
    writer = RowWriter(out)
    report = LiveReport(session, options, writer)
    while not ended():
        report.look()
        time.sleep(TICK)
    stop()
    report.look(final=True)
    return writer.rows
