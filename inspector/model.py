"""What the viewer shows, computed headless: packet rows, the decoding pass, per-packet detail.

The Textual app (inspector/tui/) is a thin layer over this; tests drive it without a terminal.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from protoscope.captures.growing import GrowingColumns
from protoscope.captures.net import Layer
from protoscope.decoders.api import Finding, Pdu, Severity

from .colour import Colouring
from .config import ColourRule
from .icmp_errors import shown_protocol
from .report.rows import (
    SEVERITIES,
    AnalysisPass,
    FlowProtocols,
    analysis_findings,
    fresh_analyses,
    merge_findings,
    protocol_column,
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
        self._columns = GrowingColumns()
        self._columns.append(self._none(n))
        self._start = self._columns.view("start")
        self._length = self._columns.view("length")
        self._data = bytearray()
        self.count = 0

    @staticmethod
    def _none(n: int) -> dict[str, np.ndarray[Any, Any]]:
        """The columns of `n` packets without a text."""
        return {"start": np.full(n, -1, np.int64), "length": np.zeros(n, np.uint16)}

    def grow(self, n: int) -> None:
        """Room for `n` packets (a live capture's or a followed file's new ones have no text yet)."""
        added = n - len(self._columns)
        if added > 0:
            self._columns.append(
                {"start": np.full(added, -1, np.int64), "length": np.zeros(added, np.uint16)}
            )
            self._start = self._columns.view("start")
            self._length = self._columns.view("length")

    def __setitem__(self, i: int, text: str) -> None:
        raw = text.encode("utf-8", "replace")[: self.MAX_BYTES]
        start = len(self._data)
        self._data += raw
        self._length[i] = len(raw)
        self._start[i] = start  # last: a reader sees the packet only once its bytes are there
        self.count += 1

    def get(self, i: int) -> str | None:
        if i >= len(self._start):  # a packet of a growing capture this was made before
            return None
        start = int(self._start[i])
        if start < 0:
            return None
        return self._data[start : start + int(self._length[i])].decode("utf-8", "replace")

    def __len__(self) -> int:
        return self.count


class PacketNames:
    """One short name per packet from a small vocabulary (protocols): 2 bytes a packet."""

    def __init__(self, n: int) -> None:
        self._columns = GrowingColumns()
        self._columns.append({"code": np.zeros(n, np.uint16)})
        self._codes = self._columns.view("code")
        self._names: list[str] = [""]
        self._ids: dict[str, int] = {}

    def grow(self, n: int) -> None:
        added = n - len(self._columns)
        if added > 0:
            self._columns.append({"code": np.zeros(added, np.uint16)})
            self._codes = self._columns.view("code")

    def __setitem__(self, i: int, name: str) -> None:
        code = self._ids.get(name)
        if code is None:
            if len(self._names) > 0xFFFF:
                return  # vocabulary full (a hostile capture): the index's stack name is shown
            code = self._ids[name] = len(self._names)
            self._names.append(name)
        self._codes[i] = code

    def get(self, i: int) -> str | None:
        if i >= len(self._codes):
            return None
        return self._names[int(self._codes[i])] or None

    def values(self) -> list[str]:
        return [self._names[c] for c in self._codes.tolist() if c]

    def vocabulary(self) -> set[str]:
        """Every name given to a packet so far (without a pass over the packets)."""
        return set(self._names[1:])


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


REFERENCE = "*REF*"
"""What Wireshark's Time column shows on a time reference packet."""


class CaptureModel:
    def __init__(self, session: Session, colour_rules: Sequence[ColourRule] = ()) -> None:
        self.session = session
        self.index = session.index
        rec = self.index.records
        self.first_ns = int(rec.ts_ns.min()) if len(self.index) else 0
        self.decoded = Decoded(PacketNames(len(self.index)), PacketTexts(len(self.index)))
        self.colouring = Colouring(colour_rules, session.registry)
        """The rules of the decoding pass; its `problems` name the user rules left out."""
        self._columns = GrowingColumns()
        self._columns.append({"colour": np.zeros(len(self.index), np.uint8)})
        self.colours = self._columns.view("colour")
        """Per packet, the code of the first colouring rule it matches (`colour_styles`)."""
        self.colour_styles = self.colouring.styles()
        self._digits: int | None = None
        self._lock = threading.Lock()
        self._flow_packets: dict[int, np.ndarray[Any, Any]] = {}
        self.flows = FlowProtocols()
        """What the decoding pass saw on each flow (its label)."""
        self.pass_lock = threading.RLock()
        """Held by every decoding pass over the session (they share what flows teach each other):
        the first pass, a live capture's next part, a filter's or a column's own pass."""
        self._on80 = np.zeros(1, np.bool_)
        """Per flow so far: a TCP conversation on port 80 (`_port80`), then False for no flow."""
        self.shown: int | None = None
        """A growing capture's packets published to the views (see __len__)."""
        self.growing = False
        """The capture is still being written (live, --follow): its pass is never `complete`."""
        self._pass: AnalysisPass | None = None
        """The pass of a growing capture, continued by decode_more()."""
        self.shown_reports: dict[str, list[dict[str, Any]]] = {}
        """Every analysis's rows as the views show them (live: with the rows still open)."""

    def __len__(self) -> int:
        """The packets the views show: all the index has, or for a growing capture those the UI
        thread was told of (`shown`), so a view never reads a packet whose columns are still
        being appended by the worker that grows the index."""
        return len(self.index) if self.shown is None else self.shown

    def row(self, i: int) -> PacketRow:
        ix = self.index
        rec = ix.records
        src, dst = endpoints(ix, i)
        protocol = self.decoded.protocol.get(i) or shown_protocol(ix.stacks[int(ix.stack[i])] or ("frame",))
        text = self.decoded.info.get(i)
        if text is None:
            text = info_column(self.session, PacketDecode(i, (), ()))
        return PacketRow(
            i + 1,
            (int(rec.ts_ns[i]) - self.first_ns) / 1e9,
            src,
            dst,
            protocol_column(protocol),
            int(rec.wirelen[i]),
            text,
        )

    def time_digits(self) -> int:
        """Decimals of the Time column: 9 when some timestamp has nanoseconds, else 6 (tshark
        uses the file's precision; ours is what the timestamps show)."""
        if self._digits is None:
            ts = self.index.records.ts_ns
            self._digits = 9 if len(ts) and bool(np.any(ts % 1000)) else 6
        return self._digits

    def time_text(
        self,
        i: int,
        fmt: str,
        previous_shown: int | None = None,
        references: Sequence[int] = (),
    ) -> str:
        """Packet `i`'s Time column in a format of Wireshark's View > Time Display Format
        (config.TIME_FORMATS; tshark -t r, d, dd, a, ud, e). `previous_shown` is the packet
        displayed before it (for "delta_displayed"); `references` the time reference packets,
        ascending: a reference shows *REF*, and "relative" counts from the last one before."""
        if references and _contains(references, i):
            return REFERENCE
        ts = self.index.records.ts_ns
        now = int(ts[i])
        digits = self.time_digits()
        if fmt == "relative":
            k = _last_at_or_before(references, i)
            # Wireshark counts from the first packet in the file, not the earliest one.
            return _seconds(now - int(ts[references[k] if k >= 0 else 0]), digits)
        if fmt == "delta":
            return _seconds(now - int(ts[i - 1]) if i > 0 else 0, digits)
        if fmt == "delta_displayed":
            return _seconds(now - int(ts[previous_shown]) if previous_shown is not None else 0, digits)
        if fmt == "epoch":
            return _seconds(now, digits)
        whole, frac = divmod(now, 1_000_000_000)
        fraction = f"{frac:09d}"[:digits]
        if fmt == "absolute":
            return time.strftime("%H:%M:%S", time.localtime(whole)) + "." + fraction
        if fmt == "utc":
            return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(whole)) + "." + fraction
        raise ValueError(f"unknown time format {fmt!r}")

    def decode_all(
        self, progress: Callable[[int, int], None] | None = None, cancelled: Cancelled | None = None
    ) -> None:
        """The decoding pass: protocol and Info per packet, findings, and every analysis's report
        (gRPC calls, RTP streams, a plugin's own). Runs in a worker."""
        with self.pass_lock:
            n = len(self.index)
            decoding = self._analysis_pass()
            check_at = 0
            for pd in decoding.packets():
                i = pd.index
                if i >= check_at:  # the pass leaves packets out: look every 4,096 packets
                    check_at = i + 4096
                    if cancelled is not None and cancelled():
                        return
                    if progress is not None:
                        progress(i, n)
                self._take(pd)
            decoding.finish()
            self._publish(None, 0, n, complete=True)
        if progress is not None:
            progress(n, n)

    def _analysis_pass(self) -> AnalysisPass:
        out = self.decoded

        def take(name: str, rows: list[dict[str, Any]]) -> None:
            with self._lock:
                out.reports.setdefault(name, []).extend(rows)

        decoding = AnalysisPass(self.session, fresh_analyses(self.session), take)
        self.flows = decoding.flows
        return decoding

    def _take(self, pd: PacketDecode) -> None:
        """One packet of the pass: its colour, protocol, Info and findings (a late decode, made
        when a live capture ends, adds to its packet's)."""
        out = self.decoded
        i = pd.index
        if pd.pdus:
            self.colours[i] = self.colouring.packet(self.session, pd, int(self.index.flow[i]))
            names = packet_protocols(self.index, i, pd.pdus)
            text = info_column(self.session, pd)
            with self._lock:
                before = out.info.get(i) if pd.late else None
                out.protocol[i] = shown_protocol(names)
                out.info[i] = f"{before}, {text}" if before else text
        if pd.findings:
            with self._lock:
                out.findings.extend(FindingAt(i, f) for f in pd.findings)
        out.done = max(out.done, i + 1)

    def _publish(
        self, snapshot: Mapping[str, list[dict[str, Any]]] | None, lo: int, hi: int, complete: bool
    ) -> None:
        """The reports and findings as the viewer shows them: the rows the analyses handed over,
        plus (live) what they would give if the capture ended now; the colours of packets lo..hi."""
        out = self.decoded
        n = len(self.index)
        with self._lock:
            reports = {name: list(rows) for name, rows in out.reports.items()}
            for name, rows in (snapshot or {}).items():
                reports.setdefault(name, []).extend(rows)
            calls = reports.get("calls")
            if calls is not None:
                calls.sort(key=lambda c: (c["flow"], c["start"]))
            found = [
                FindingAt.from_row(row)
                for name, rows in reports.items()
                for row in analysis_findings(name, rows, n)
            ]
            own = sorted((f for f in out.findings if f.analysis is None and f.index >= 0), key=_packet)
            if complete:
                own += [FindingAt(-1, f) for f in self.session.file_findings()]
            shown = list(merge_findings(own, found, _frame))
            if snapshot is None and complete:
                out.reports = reports
            self.shown_reports = reports
            out.calls = reports.get("calls", [])
            self.colouring.finish(
                self.colours[lo:hi],
                self.index.tcp_flags[lo:hi],
                ((f.index - lo, f.finding.severity, f.finding.code) for f in shown if lo <= f.index < hi),
                self.index.l4[lo:hi],
                self._port80(lo, hi),
            )
            out.findings = shown
            out.complete = complete

    def grow(self, final: bool = False) -> int:
        """Index what the file gained since the last look (a live capture's spool, a followed
        file): the packets it adds, whose per-packet arrays grow with them. `final`: the file is
        complete (the capture stopped): its last records are read and the index is finished."""
        with self.pass_lock:  # a filter's pass reads the index's columns whole
            added = self.index.extend()
            if final:
                added += self.index.finish()
        if added:
            n = len(self.index)
            self.decoded.protocol.grow(n)
            self.decoded.info.grow(n)
            self._columns.append({"colour": np.zeros(added, np.uint8)})
            self.colours = self._columns.view("colour")
            if n == added:
                self.first_ns = int(self.index.records.ts_ns.min())
            self._flow_packets.clear()
            self._digits = None
        return added

    def decode_more(self, final: bool = False) -> int:
        """Decode what arrived since the last call, from the pass's state (the viewer on a growing
        capture calls it about once a second, after grow()); `final` when nothing more will come
        (after grow(final=True)). The number of packets decoded."""
        with self.pass_lock:
            if self._pass is None:
                self._pass = self._analysis_pass()
            lo = self._pass.done
            decoded = 0
            for pd in self._pass.more(final=final):
                self._take(pd)
                decoded += 1
            if final:
                self._pass.finish()
            self._publish(None if final else self._pass.snapshot(), lo, self._pass.done, complete=final)
        return decoded

    def _port80(self, lo: int, hi: int) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Per packet of lo..hi: it belongs to a TCP conversation on port 80 (Wireshark's HTTP
        colouring rule has `tcp.port == 80`)."""
        flows = self.index.flows
        # A flow's transport and ports never change: only the flows new since the last look are
        # looked at (a look of a growing capture costs what arrived, not every flow).
        known = len(self._on80) - 1
        if len(flows) > known:
            new = [f.transport == "tcp" and 80 in (f.client.port, f.server.port) for f in flows[known:]]
            self._on80 = np.concatenate((self._on80[:known], np.array(new, bool), [False]))
        flow, none = self.index.flow[lo:hi], len(self._on80) - 1
        return self._on80[np.where((flow >= 0) & (flow < none), flow, none)]

    def field_texts(self, name: str, cancelled: Cancelled | None = None) -> PacketTexts | None:
        """Display-filter field `name` of every packet as text (several values joined by ","; a
        packet without it has ""), from one decoding pass; None when cancelled. Runs in a worker:
        it is what a column added from the detail tree shows."""
        from .filter import packet_fields

        with self.pass_lock:
            out = PacketTexts(len(self.index))
            for pd in self.session.decode():
                if cancelled is not None and pd.index % 4096 == 0 and cancelled():
                    return None
                values = packet_fields(self.session, pd).get(name)
                if values:
                    out[pd.index] = ",".join(_value_text(v) for v in values)
            return out

    def sort_key(
        self, field: str, time_format: str = "relative", values: PacketTexts | None = None
    ) -> Callable[[int], str] | np.ndarray[Any, Any]:
        """What sorts a packet-list column (config.BUILTIN_FIELDS, or a field whose texts are
        `values`): a numpy column for numbers, times and addresses, a text per packet otherwise."""
        records = self.index.records
        if field == "frame.number":
            return np.arange(len(self), dtype=np.int64)
        if field == "length":
            return np.asarray(records.wirelen, np.int64)
        if field == "time":
            times = np.asarray(records.ts_ns, np.int64)
            return np.diff(times, prepend=times[:1]) if time_format == "delta" else times
        if field in ("source", "destination"):
            return self.endpoint_ranks(destination=field == "destination")
        if field in ("protocol", "info"):
            return lambda i: str(getattr(self.row(i), field))
        return lambda i: (values.get(i) or "") if values is not None else ""

    def sort_order(
        self,
        rows: np.ndarray[Any, Any],
        key: Callable[[int], str] | np.ndarray[Any, Any],
        cancelled: Cancelled | None = None,
    ) -> np.ndarray[Any, Any] | None:
        """Positions of `rows` (packet indexes) in ascending order of `key`: a numeric column
        (indexed by packet) sorts with numpy; a text per packet sorts as numbers when every text
        is one, else as text. Stable, so equal keys keep frame order. None when cancelled."""
        if isinstance(key, np.ndarray):
            return np.argsort(key[rows], kind="stable")
        texts: list[str] = []
        for k, i in enumerate(rows.tolist()):
            if cancelled is not None and k % 4096 == 0 and cancelled():
                return None
            texts.append(key(i))
        numbers = _numbers(texts)
        if numbers is not None:
            return np.argsort(numbers, kind="stable")
        return np.array(sorted(range(len(texts)), key=texts.__getitem__), dtype=np.int64)

    def endpoint_ranks(self, destination: bool = False) -> np.ndarray[Any, Any]:
        """Per packet, the rank of its Source (or Destination) text among all of them: what sorts
        that column without a string a packet. A flow's packets take their side's address from
        the flow (two texts a flow); only packets outside any flow are looked at one by one."""
        ix = self.index
        flow = ix.flow.astype(np.int64)
        side = ix.direction.astype(np.int64) ^ int(destination)  # 0: the client's, 1: the server's
        names = [str(a) for f in ix.flows for a in (f.client, f.server)]
        code = np.where(flow >= 0, flow * 2 + side, -1)
        loose = np.flatnonzero(flow < 0)
        if len(loose):
            code[loose] = np.arange(len(names), len(names) + len(loose))
            names += [endpoints(ix, int(i))[int(destination)] for i in loose.tolist()]
        if not names:
            return np.zeros(len(ix), np.int64)
        # Equal texts (one server seen by several flows) share a rank: a stable sort then keeps
        # their packets in frame order.
        _, rank = np.unique(np.array(names, dtype=object), return_inverse=True)
        return np.asarray(rank, np.int64).reshape(-1)[code]

    def filter_rows(self, text: str, cancelled: Cancelled | None = None) -> list[int] | None:
        """Packets (0-based) the display filter matches; None when cancelled. Raises FilterError."""
        from .filter import filter_rows

        with self.pass_lock:
            return filter_rows(self.session, text, cancelled)

    def detail(self, i: int, cancelled: Cancelled | None = None) -> PacketDetail:
        """Layers and decoded PDUs of one packet (re-decodes its flow up to it; a flow no decoder
        took is not decoded again: its packets' findings are the pass's)."""
        ix = self.index
        d = ix.dissect(i)
        fid = int(ix.flow[i])
        pdus: list[Pdu] = []
        findings: list[Finding] = list(d.findings)
        decoded: PacketDecode | None = None
        decoders = self.session.registry.decoders
        undecoded = (
            fid >= 0 and self.decoded.done > i and not any(p in decoders for p in ix.flows[fid].protocols)
        )
        if fid >= 0 and not undecoded:
            last: PacketDecode | None = None
            with self.pass_lock:  # the decoding passes share what flows teach each other
                packets = self._flow_packets.get(fid)
                if packets is None or packets[-1] < i:
                    packets = self._flow_packets[fid] = np.flatnonzero(ix.flow == fid)
                upto = packets[: int(np.searchsorted(packets, i)) + 1].tolist()
                for k, pd in enumerate(self.session.decode(packets=upto)):
                    last = pd
                    if cancelled is not None and k % 4096 == 4095 and cancelled():
                        break
            if last is not None and last.index == i:
                pdus = list(last.pdus)
                findings = list(last.findings)
                decoded = last
        elif fid >= 0:  # no decoder took the flow: the pass's findings of the packet (the index's too)
            with self._lock:
                findings = [f.finding for f in self.decoded.findings if f.index == i and f.analysis is None]
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


def _value_text(value: object) -> str:
    """A field value as a column shows it (bytes as Wireshark's colon-separated hex)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex(":")
    return str(value)


def _numbers(texts: list[str]) -> np.ndarray[Any, Any] | None:
    """`texts` as float64 when every one is a number (empty counts as -inf: absent sorts first)."""
    out = np.empty(len(texts), np.float64)
    for k, text in enumerate(texts):
        if not text:
            out[k] = -np.inf
            continue
        try:
            out[k] = float(int(text, 0)) if text[:2].lower() == "0x" else float(text.split(",")[0])
        except ValueError:
            return None
    return out


def _seconds(ns: int, digits: int) -> str:
    """Nanoseconds as seconds with `digits` decimals, cut (not rounded) as Wireshark does."""
    sign = "-" if ns < 0 else ""
    whole, frac = divmod(abs(ns), 1_000_000_000)
    return f"{sign}{whole}.{f'{frac:09d}'[:digits]}"


def _last_at_or_before(sorted_items: Sequence[int], i: int) -> int:
    """Position of the last item <= i in ascending `sorted_items`, -1 when none."""
    return bisect.bisect_right(sorted_items, i) - 1


def _contains(sorted_items: Sequence[int], i: int) -> bool:
    k = _last_at_or_before(sorted_items, i)
    return k >= 0 and sorted_items[k] == i


def _packet(f: FindingAt) -> int:
    return f.index


def _frame(f: FindingAt) -> int | None:
    return f.index + 1 if f.index >= 0 else None
