"""What the viewer shows, computed headless: packet rows, the decoding pass, per-packet detail.

The Textual app (inspector/tui/) is a thin layer over this; tests drive it without a terminal.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from protoscope.captures.net import Layer
from protoscope.decoders.api import Finding, Pdu, Severity

from .report.rows import (
    SEVERITIES,
    AnalysisPass,
    FlowProtocols,
    analysis_findings,
    fresh_analyses,
    merge_findings,
)
from .report.rows import info as info_column
from .session import PacketDecode, Session, endpoints, packet_protocols

Cancelled = Callable[[], bool]


@dataclass(frozen=True, slots=True)
class PacketRow:
    frame: int
    time: float
    """Seconds since the first packet."""
    src: str
    dst: str
    protocol: str
    length: int
    info: str


@dataclass(slots=True)
class PacketDetail:
    index: int
    layers: list[Layer]
    """L2-L4 headers, spans in frame offsets."""
    pdus: list[Pdu]
    findings: list[Finding]
    frame: bytes
    payload_offset: int
    """Frame offset of the transport payload."""
    decoded: PacketDecode | None = None
    """The decode the PDUs come from: it knows where their spans lie in this frame."""

    def frame_span(self, k: int, span: tuple[int, int]) -> tuple[int, int] | None:
        """Frame bytes of `span` (relative to PDU k's data) that this packet carries, if any."""
        if self.decoded is None:
            return None
        return self.decoded.frame_span(k, span, self.payload_offset, len(self.frame) - self.payload_offset)


class PacketTexts:
    """A short text per packet (protocol names, Info lines) for a million packets: the texts are
    packed as UTF-8 in one buffer with an offset and a length per packet, ~10 bytes a packet plus
    the text, where a dict of str costs ~200 bytes an entry (measured: 195 MB for 1M RTP packets).
    Written by the decoding worker in frame order, read by the UI thread at any time."""

    MAX_BYTES = 0xFFFF

    def __init__(self, n: int) -> None:
        self._start = np.full(n, -1, np.int64)
        self._length = np.zeros(n, np.uint16)
        self._data = bytearray()
        self.count = 0

    def __setitem__(self, i: int, text: str) -> None:
        raw = text.encode("utf-8", "replace")[: self.MAX_BYTES]
        start = len(self._data)
        self._data += raw
        self._length[i] = len(raw)
        self._start[i] = start  # last: a reader sees the packet only once its bytes are there
        self.count += 1

    def get(self, i: int) -> str | None:
        start = int(self._start[i])
        if start < 0:
            return None
        return self._data[start : start + int(self._length[i])].decode("utf-8", "replace")

    def __len__(self) -> int:
        return self.count


class PacketNames:
    """One short name per packet from a small vocabulary (protocols): 2 bytes a packet."""

    def __init__(self, n: int) -> None:
        self._codes = np.zeros(n, np.uint16)
        self._names: list[str] = [""]
        self._ids: dict[str, int] = {}

    def __setitem__(self, i: int, name: str) -> None:
        code = self._ids.get(name)
        if code is None:
            if len(self._names) > 0xFFFF:
                return  # vocabulary full (a hostile capture): the index's stack name is shown
            code = self._ids[name] = len(self._names)
            self._names.append(name)
        self._codes[i] = code

    def get(self, i: int) -> str | None:
        return self._names[int(self._codes[i])] or None

    def values(self) -> list[str]:
        return [self._names[c] for c in self._codes.tolist() if c]


@dataclass(frozen=True, slots=True)
class FindingAt:
    """A finding where the viewer shows it: a packet's own, or one an analysis made."""

    index: int
    """0-based packet; -1 for the file's findings and an analysis's finding without a frame."""
    finding: Finding
    phase: str | None = None
    """The phase of the analysis row it concerns (a WebRTC session's "ice", "dtls", ...)."""
    analysis: str | None = None
    """The report it comes from ("sessions"); None for a packet's own."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> FindingAt:
        """From a findings-report row of an analysis (`analysis_findings`)."""
        frame = row["frame"]
        finding = Finding(cast(Severity, row["severity"]), str(row["code"]), str(row["message"]))
        return cls(
            frame - 1 if isinstance(frame, int) else -1, finding, row.get("phase"), row.get("analysis")
        )


@dataclass(slots=True)
class Decoded:
    """Results of the background decoding pass."""

    protocol: PacketNames
    info: PacketTexts
    done: int = 0
    findings: list[FindingAt] = field(default_factory=list)
    """The packets' findings in frame order during the pass; once `complete`, the analyses' too
    (in frame order among them), and the file's last."""
    calls: list[dict[str, object]] = field(default_factory=list)
    reports: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    """Rows of every analysis by report name ("calls", "streams", a plugin's)."""
    complete: bool = False


class CaptureModel:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.index = session.index
        rec = self.index.records
        self.first_ns = int(rec.ts_ns.min()) if len(self.index) else 0
        self.decoded = Decoded(PacketNames(len(self.index)), PacketTexts(len(self.index)))
        self._lock = threading.Lock()
        self._flow_packets: dict[int, np.ndarray[Any, Any]] = {}
        self.flows = FlowProtocols()
        """What the decoding pass saw on each flow (its label)."""

    def __len__(self) -> int:
        return len(self.index)

    def row(self, i: int) -> PacketRow:
        ix = self.index
        rec = ix.records
        src, dst = endpoints(ix, i)
        protocol = self.decoded.protocol.get(i) or (ix.stacks[int(ix.stack[i])] or ("frame",))[-1]
        text = self.decoded.info.get(i)
        if text is None:
            text = info_column(self.session, PacketDecode(i, (), ()))
        return PacketRow(
            i + 1,
            (int(rec.ts_ns[i]) - self.first_ns) / 1e9,
            src,
            dst,
            protocol.upper() if len(protocol) <= 5 else protocol,
            int(rec.wirelen[i]),
            text,
        )

    def decode_all(
        self, progress: Callable[[int, int], None] | None = None, cancelled: Cancelled | None = None
    ) -> None:
        """The decoding pass: protocol and Info per packet, findings, and every analysis's report
        (gRPC calls, RTP streams, a plugin's own). Runs in a worker."""
        out = self.decoded
        n = len(self.index)

        def take(name: str, rows: list[dict[str, Any]]) -> None:
            with self._lock:
                out.reports.setdefault(name, []).extend(rows)

        decoding = AnalysisPass(self.session, fresh_analyses(self.session), take)
        self.flows = decoding.flows
        check_at = 0
        for pd in decoding.packets():
            i = pd.index
            if i >= check_at:  # the pass leaves packets out: look every 4,096 packets of the capture
                check_at = i + 4096
                if cancelled is not None and cancelled():
                    return
                if progress is not None:
                    progress(i, n)
            if pd.pdus:
                names = packet_protocols(self.index, i, pd.pdus)
                with self._lock:
                    out.protocol[i] = names[-1]
                    out.info[i] = info_column(self.session, pd)
            if pd.findings:
                with self._lock:
                    out.findings.extend(FindingAt(i, f) for f in pd.findings)
            out.done = i + 1
        decoding.finish()
        with self._lock:
            calls = out.reports.get("calls")
            if calls is not None:
                calls.sort(key=lambda c: (c["flow"], c["start"]))
            out.calls = out.reports.get("calls", [])
            found = [
                FindingAt.from_row(row)
                for name, rows in out.reports.items()
                for row in analysis_findings(name, rows, n)
            ]
            own = [*out.findings, *(FindingAt(-1, f) for f in self.session.file_findings())]
            out.findings = list(merge_findings(own, found, _frame))
            out.complete = True
        if progress is not None:
            progress(n, n)

    def filter_rows(self, text: str, cancelled: Cancelled | None = None) -> list[int] | None:
        """Packets (0-based) the display filter matches; None when cancelled. Raises FilterError."""
        from .filter import compile_filter, packet_fields

        matches = compile_filter(text)
        rows: list[int] = []
        for pd in self.session.decode():
            if cancelled is not None and pd.index % 4096 == 0 and cancelled():
                return None
            if matches(packet_fields(self.session, pd)):
                rows.append(pd.index)
        return rows

    def detail(self, i: int) -> PacketDetail:
        """Layers and decoded PDUs of one packet (re-decodes its flow up to it)."""
        ix = self.index
        d = ix.dissect(i)
        fid = int(ix.flow[i])
        pdus: list[Pdu] = []
        findings: list[Finding] = list(d.findings)
        decoded: PacketDecode | None = None
        if fid >= 0:
            packets = self._flow_packets.get(fid)
            if packets is None:
                packets = self._flow_packets[fid] = np.flatnonzero(ix.flow == fid)
            upto = packets[: int(np.searchsorted(packets, i)) + 1].tolist()
            last: PacketDecode | None = None
            for pd in self.session.decode(packets=upto):
                last = pd
            if last is not None and last.index == i:
                pdus = list(last.pdus)
                findings = list(last.findings)
                decoded = last
        return PacketDetail(i, d.layers, pdus, findings, ix.frame(i), int(ix.payload_off[i]), decoded)

    def flow_label(self, fid: int) -> str:
        """What the flow carries, as the flows report's `label` names it ("gRPC/HTTP2")."""
        return self.flows.label(self.index.flows[fid])

    def finding_counts(self) -> dict[str, int]:
        """Findings by severity ("error", "warn", "note"), the analyses' included once complete."""
        with self._lock:
            counts = dict.fromkeys(SEVERITIES, 0)
            for f in self.decoded.findings:
                counts[f.finding.severity] += 1
        return counts

    def flows_with_errors(self) -> set[int]:
        """Flows with an error finding on one of their packets."""
        flow = self.index.flow
        with self._lock:
            return {
                int(flow[f.index])
                for f in self.decoded.findings
                if f.index >= 0 and f.finding.severity == "error" and int(flow[f.index]) >= 0
            }


def _frame(f: FindingAt) -> int | None:
    return f.index + 1 if f.index >= 0 else None
