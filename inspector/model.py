"""What the viewer shows, computed headless: packet rows, the decoding pass, per-packet detail.

The Textual app (inspector/tui/) is a thin layer over this; tests drive it without a terminal.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from protoscope.captures.net import Layer
from protoscope.decoders.api import Finding, Pdu

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


@dataclass(slots=True)
class Decoded:
    """Results of the background decoding pass."""

    protocol: PacketNames
    info: PacketTexts
    done: int = 0
    findings: list[tuple[int, Finding]] = field(default_factory=list)
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
        registry = self.session.registry
        analyses = {name: registry.analysis(name) for name in sorted(registry.analyses)}
        drains = {name: d for name, a in analyses.items() if callable(d := getattr(a, "drain", None))}
        out = self.decoded
        n = len(self.index)
        for pd in self.session.decode():
            i = pd.index
            if cancelled is not None and i % 4096 == 0 and cancelled():
                return
            if pd.pdus:
                names = packet_protocols(self.index, i, pd.pdus)
                ctx = self.session.context(i)
                with self._lock:
                    out.protocol[i] = names[-1]
                    out.info[i] = info_column(self.session, pd)
                for analysis in analyses.values():
                    for pdu in pd.pdus:
                        analysis.feed(pdu, ctx)
            if pd.findings:
                with self._lock:
                    out.findings.extend((i, f) for f in pd.findings)
            out.done = i + 1
            if progress is not None and i % 4096 == 0:
                progress(i, n)
            if drains and i % 1024 == 0:
                for name, drain in drains.items():
                    rows = drain()
                    if rows:
                        with self._lock:
                            out.reports.setdefault(name, []).extend(rows)
        for name, analysis in analyses.items():
            rows = (drains[name]() if name in drains else []) + analysis.rows()
            with self._lock:
                report = out.reports.setdefault(name, [])
                report.extend(rows)
                if name == "calls":
                    report.sort(key=lambda c: (c["flow"], c["start"]))
        with self._lock:
            out.calls = out.reports.get("calls", [])
            out.findings.extend((-1, f) for f in self.session.file_findings())
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
        flow = self.index.flows[fid]
        stack = [p for p in flow.protocols if p]
        if "grpc" in stack or (stack and stack[-1] == "http2" and self._has_calls(fid)):
            label = "gRPC/HTTP2"
        else:
            label = "+".join(p.upper() for p in stack) or flow.transport.upper()
        return label

    def _has_calls(self, fid: int) -> bool:
        return any(c["flow"] == fid for c in self.decoded.calls)
