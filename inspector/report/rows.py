"""The rows of each report as JSON-ready dicts (the JSON contract of DESIGN.md), and the decoding
pass that feeds the analyses (`AnalysisPass`): the reports and the viewer share it."""

from __future__ import annotations

import copy
import heapq
import pickle
import tempfile
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, TypeVar

import numpy as np
import numpy.typing as npt

from protoscope.captures.flows import Flow
from protoscope.captures.net import dissect
from protoscope.decoders.api import Analysis, Finding, FlowContext, Pdu
from protoscope.decoders.rtp.packets import RtpRecord

from ..session import Decoding, PacketDecode, Progress, Session, endpoints, flatten, packet_protocols

if TYPE_CHECKING:
    from ..bulk import RtpPlan

SEVERITIES = ("error", "warn", "note")


def _ts(ns: int) -> float:
    return ns / 1e9


# -- what a flow carries --------------------------------------------------------------------------

PROTOCOL_LABELS = {"grpc": "gRPC", "websocket": "WebSocket"}
"""How a flow label writes a protocol; the rest in capitals, as Wireshark's Protocol column."""


def flow_ends(session: Session) -> dict[tuple[str, str], int]:
    """Each flow by its two endpoints ("ip:port" as rows write them), either way round."""
    ends = {(str(f.client), str(f.server)): f.id for f in session.flows}
    ends.update({(server, client): fid for (client, server), fid in list(ends.items())})
    return ends


def row_flow(row: Mapping[str, Any], ends: Mapping[tuple[str, str], int]) -> int | None:
    """The flow a report row stands for: its `flow`, else the flow between its `src` and `dst`
    (an RTP stream's row); `ends` from `flow_ends`."""
    flow = row.get("flow")
    if isinstance(flow, int):
        return flow
    return ends.get((str(row.get("src")), str(row.get("dst"))))


COLUMN_NAMES = {"datachannel": "DataChannel", "icmpv6": "ICMPv6"}
"""Protocol column names longer than five letters, written as Wireshark capitalises its own."""


def protocol_column(name: str) -> str:
    """A packet's Protocol column, the viewer's and the packets report's: short names in capitals
    as Wireshark writes them (TCP, HTTP2, STUN, DTLS), longer ones as they are."""
    return name.upper() if len(name) <= 5 else COLUMN_NAMES.get(name, name)


def protocols_label(names: Sequence[str]) -> str:
    """The viewer's label of a flow from what it carried, e.g. "gRPC/HTTP2", "STUN+DTLS+RTP+RTCP"."""
    shown = [PROTOCOL_LABELS.get(n, n.upper()) for n in names]
    if "grpc" in names and "http2" in names:  # gRPC is how HTTP/2 is used here: one name
        at = min(names.index("grpc"), names.index("http2"))
        shown = [x for n, x in zip(names, shown, strict=True) if n not in ("grpc", "http2")]
        shown.insert(at, "gRPC/HTTP2")
    return "+".join(shown)


class FlowProtocols:
    """The protocols a decoding pass saw on each flow, in the order it first saw them: the flows
    report's `protocols` and the viewer's flow label come from here, so they name the same."""

    def __init__(self) -> None:
        self._seen: dict[int, dict[str, None]] = {}

    def see(self, fid: int, pdus: Sequence[Pdu]) -> None:
        seen = self._seen.get(fid)
        if seen is None:
            seen = self._seen[fid] = {}
        for pdu in pdus:
            if pdu.protocol not in seen:
                seen[pdu.protocol] = None

    def protocols(self, flow: Flow) -> list[str]:
        """E.g. ["tcp", "http2", "grpc"], ["udp", "stun", "dtls", "rtp", "srtcp"]."""
        return [flow.transport, *self._seen.get(flow.id, ())]

    def label(self, flow: Flow) -> str:
        return protocols_label(list(self._seen.get(flow.id, ()))) or flow.transport.upper()


# -- the decoding pass that feeds the analyses ----------------------------------------------------

DRAIN_EVERY = 1024
"""Packets between two drains of an analysis's finished rows."""

RowsSink = Callable[[str, list[dict[str, Any]]], None]
"""Takes an analysis's rows as they are ready: (report name, rows)."""


def fresh_analyses(session: Session, names: Iterable[str] | None = None) -> dict[str, Analysis]:
    """A new analysis of each name (default: every one the registry has), by name."""
    registry = session.registry
    return {name: registry.analysis(name) for name in sorted(registry.analyses if names is None else names)}


def finding_analyses(session: Session) -> dict[str, Analysis]:
    """The analyses that may make findings (all but those whose class says `makes_findings =
    False`, as the RTP streams analysis does: feeding it was a third of a summary on RTP)."""
    registry = session.registry
    return fresh_analyses(
        session, [n for n, make in registry.analyses.items() if getattr(make, "makes_findings", True)]
    )


class AnalysisPass:
    """One decoding pass that feeds every PDU to the analyses and notes each flow's protocols.

    A file: iterate `packets()` (what `Session.decode()` yields, each packet fed before it is
    yielded), then call `finish()`. A growing capture: call `more()` as packets arrive (the last
    time with final=True), `snapshot()` whenever the rows so far are wanted, and `finish()` at the
    end. Rows go to `on_rows` as they are ready: an analysis with a `drain()` hands over finished
    rows every DRAIN_EVERY packets and at the end of each `more()`, so a long capture holds only
    what is still open; `finish()` hands over the rest. This is the one per-packet loop of the
    reports and the viewer.
    """

    def __init__(
        self, session: Session, analyses: Mapping[str, Analysis], on_rows: RowsSink, sparse: bool = True
    ) -> None:
        """`sparse`: what `more()` passes to `Session.decoding` (`packets()` takes its own)."""
        self.session = session
        self.analyses = dict(analyses)
        self.on_rows = on_rows
        self.flows = FlowProtocols()
        self.sparse = sparse
        self._drains = {n: d for n, a in self.analyses.items() if callable(d := getattr(a, "drain", None))}
        self._decoding: Decoding | None = None
        self._drain_at = 0
        """The packet before which the analyses drain next (after packet k * DRAIN_EVERY)."""

    def packets(
        self, skip: npt.NDArray[np.bool_] | None = None, sparse: bool = True
    ) -> Iterator[PacketDecode]:
        """The pass (without the packets `skip` marks, as `Session.decode`). `sparse` (the default)
        leaves out packets that can give no PDU and no finding (`Session.decode(sparse=True)`);
        a pass that must see every packet (a display filter's) says sparse=False. Drains happen at
        the same points either way: after packet k * DRAIN_EVERY, or before the first packet past it
        when that one is left out (as inspector/bulk_calls.py's pass does)."""
        return self._fed(self.session.decode(skip=skip, sparse=sparse, on_signaling=self._signaling))

    @property
    def done(self) -> int:
        """Packets `more()` decoded so far: where its next call starts (a sparse pass leaves some
        out, so the last packet it yielded may be before it)."""
        return 0 if self._decoding is None else self._decoding.done

    def more(
        self, upto: int | None = None, final: bool = False, progress: Progress | None = None
    ) -> Iterator[PacketDecode]:
        """The packets that arrived since the last call, up to `upto` (`Decoding.more`: final=True
        says none comes after it), each fed before it is yielded, late decodes included. The
        analyses drain at the end, so a call that ended in these packets reaches `on_rows` within
        this call. After the final call, `finish()` hands over what is still open."""
        if self._decoding is None:
            self._decoding = self.session.decoding(sparse=self.sparse, on_signaling=self._signaling)
        yield from self._fed(self._decoding.more(upto, final, progress))
        if self._drains:
            self._drain()

    def _signaling(self, pdus: list[tuple[Pdu, FlowContext]]) -> None:
        """--sdp's PDUs (inspector/sdpfiles.py), fed before the capture's first packet: of no flow,
        so no flow's protocols name them."""
        for analysis in self.analyses.values():
            for pdu, ctx in pdus:
                analysis.feed(pdu, ctx)

    def _fed(self, decoded: Iterator[PacketDecode]) -> Iterator[PacketDecode]:
        session = self.session
        flow_col = session.index.flow
        feeds = [a.feed for a in self.analyses.values()]
        drains = bool(self._drains)
        drain_at = self._drain_at
        try:
            for pd in decoded:
                i = pd.index
                if drains and drain_at < i:
                    self._drain()
                if pd.pdus:
                    self.flows.see(int(flow_col[i]), pd.pdus)
                    ctx = pd.context or session.context(i)
                    for feed in feeds:
                        for pdu in pd.pdus:
                            feed(pdu, ctx)
                if drains and i % DRAIN_EVERY == 0 and not pd.late:
                    self._drain()
                drain_at = max(drain_at, (i // DRAIN_EVERY + 1) * DRAIN_EVERY)
                yield pd
        finally:
            self._drain_at = drain_at

    def _drain(self) -> None:
        for name, drain in self._drains.items():
            rows = drain()
            if rows:
                self.on_rows(name, rows)

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Each analysis's rows as if the capture ended now, without changing what it will give
        (`analysis_snapshot`): rows `on_rows` already had are not among them. Analyses whose
        rows cannot be had so are left out."""
        out: dict[str, list[dict[str, Any]]] = {}
        for name, analysis in self.analyses.items():
            rows = analysis_snapshot(analysis)
            if rows is not None:
                out[name] = rows
        return out

    def finish(self) -> None:
        for name, analysis in self.analyses.items():
            drain = self._drains.get(name)
            self.on_rows(name, (drain() if drain is not None else []) + analysis.rows())


def analysis_snapshot(analysis: Analysis) -> list[dict[str, Any]] | None:
    """An analysis's rows as if the capture ended now, its state untouched: its `snapshot()` when
    it has one (see `Analysis`), else `rows()` of a deep copy of it (a third-party analysis); None
    when that copy cannot be made or its rows raise."""
    snapshot = getattr(analysis, "snapshot", None)
    try:
        if callable(snapshot):
            return list(snapshot())
        return list(copy.deepcopy(analysis).rows())
    except Exception:
        return None


# -- flows ----------------------------------------------------------------------------------------


def flow_rows(session: Session) -> Iterator[dict[str, Any]]:
    """The flows report: one decoding pass names what each flow carries. No analysis is fed: the
    protocols come from the PDUs alone."""
    seen = _flow_protocols(session)
    for flow in session.flows:
        yield flow_row(flow, seen)


def _flow_protocols(session: Session) -> FlowProtocols:
    if not session.registry.decoders:
        return FlowProtocols()
    from ..bulk import plan_rtp

    plan = plan_rtp(session)
    if plan is not None:
        seen = _flow_protocols_without_bulk_rtp(session, plan)
        if seen is not None:
            return seen
    decoding = AnalysisPass(session, {}, _ignore)
    for _ in decoding.packets():
        pass
    return decoding.flows


def _flow_protocols_without_bulk_rtp(session: Session, plan: RtpPlan) -> FlowProtocols | None:
    """The pass without the RTP packets the bulk plan reads (inspector/bulk.py): they would only
    name RTP again, which their flow's first ones, decoded and checked here, already did (on
    bench/out/udp-1m.pcap the whole report takes 1.4 s of CPU; a plain pass alone, ~40 s). None
    when a checked packet is not the RTP the plan read: the plain pass answers then."""
    n = len(session.index)
    skip = np.zeros(n, np.bool_)
    skip[plan.packets[~plan.held]] = True
    held_at = np.full(n, -1, np.int64)
    held_at[plan.packets[plan.held]] = np.flatnonzero(plan.held)
    decoding = AnalysisPass(session, {}, _ignore)
    for pd in decoding.packets(skip):
        k = int(held_at[pd.index])
        if k >= 0:
            rtp = pd.pdus[0].record if len(pd.pdus) == 1 else None
            planned = (int(plan.ssrc[k]), int(plan.seq[k]), int(plan.timestamp[k]))
            if not (isinstance(rtp, RtpRecord) and (rtp.ssrc, rtp.seq, rtp.timestamp) == planned):
                return None
    return decoding.flows


def _ignore(name: str, rows: list[dict[str, Any]]) -> None:
    """Rows nobody asked for (a pass fed no analysis)."""


def flow_row(flow: Flow, seen: FlowProtocols) -> dict[str, Any]:
    """A flow's row; `protocols` and `label` from what a decoding pass saw on it (`seen`)."""
    return {
        "id": flow.id,
        "transport": flow.transport,
        "client": str(flow.client),
        "server": str(flow.server),
        "protocols": seen.protocols(flow),
        "label": seen.label(flow),
        "packets": flow.packets,
        "bytes": flow.bytes,
        "packets_c2s": flow.packets_c2s,
        "bytes_c2s": flow.bytes_c2s,
        "packets_s2c": flow.packets_s2c,
        "bytes_s2c": flow.bytes_s2c,
        "first": _ts(flow.first_ns),
        "last": _ts(flow.last_ns),
        "oriented_by": flow.oriented_by,
        "tunnelled_packets": flow.carried,
    }


def finding_row(frame: int | None, f: Finding) -> dict[str, Any]:
    return {"frame": frame, "severity": f.severity, "code": f.code, "message": f.message}


def analysis_findings(name: str, rows: Iterable[Mapping[str, Any]], packets: int) -> Iterator[dict[str, Any]]:
    """The findings in an analysis's rows (see `Analysis`) as findings-report rows: `frame`,
    `severity`, `code`, `message`, `phase` when there is one, and `analysis` (the report's name).
    A malformed one becomes an `analysis.bad_finding` error without a frame. A finding several
    rows carry alike (an SCTP association's ABORT, on each of its data channels) is given once."""
    given: set[tuple[object, ...]] = set()
    for row in rows:
        items = row.get("findings")
        if not items:
            continue
        if not isinstance(items, list):
            yield _bad_finding(name, f"`findings` is a {type(items).__name__}, not a list")
            continue
        for item in items:
            problem = _malformed(item, packets)
            if problem:
                yield _bad_finding(name, problem)
                continue
            out = {k: item[k] for k in FINDING_KEYS}
            if item.get("phase") is not None:
                out["phase"] = str(item["phase"])
            alike = tuple(out.values())
            if alike in given:
                continue
            given.add(alike)
            out["analysis"] = name
            yield out


def _malformed(item: object, packets: int) -> str:
    """What is wrong with an analysis's finding, "" if nothing."""
    if not isinstance(item, Mapping):
        return f"a finding is a {type(item).__name__}, not a dict"
    frame = item.get("frame")
    if frame is not None and (type(frame) is not int or not 1 <= frame <= packets):
        return f"{item.get('code')!r}: frame {frame!r} is not a frame of the capture"
    if item.get("severity") not in SEVERITIES:
        return f"{item.get('code')!r}: severity {item.get('severity')!r} is not one of {SEVERITIES}"
    if not isinstance(item.get("code"), str) or not isinstance(item.get("message"), str):
        return f"{item.get('code')!r}: `code` and `message` must be strings"
    return ""


def _bad_finding(name: str, problem: str) -> dict[str, Any]:
    return {
        "frame": None,
        "severity": "error",
        "code": "analysis.bad_finding",
        "message": f"analysis {name}: {problem}",
        "analysis": name,
    }


T = TypeVar("T")


def merge_findings(
    packet_findings: Iterable[T], analyses_findings: Iterable[T], frame: Callable[[T], int | None]
) -> Iterator[T]:
    """The decoding pass's findings (in frame order, the file's last) with the analyses' put in
    frame order among them; at one frame the packet's own come first, and analysis findings
    without a frame come last, after the file's."""
    last = float("inf")

    def key(item: T) -> float:
        f = frame(item)
        return last if f is None else f

    return heapq.merge(packet_findings, sorted(analyses_findings, key=key), key=key)


def pdu_row(pdu: Pdu) -> dict[str, Any]:
    return {
        "protocol": pdu.protocol,
        "summary": pdu.summary,
        "fields": {k: _jsonable(v) for k, v in flatten(pdu.fields).items()},
        "span": list(pdu.span),
    }


def _jsonable(value: object) -> object:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def filtered(session: Session) -> Iterator[PacketDecode]:
    """The decoding pass, keeping the packets the session's display filter matches."""
    if not session.display_filter:
        yield from session.decode()
        return
    from ..filter import packet_matcher

    matches = packet_matcher(session, session.display_filter)
    for pd in session.decode():
        if matches(pd):
            yield pd


def packet_rows(session: Session) -> Iterator[dict[str, Any]]:
    for pd in filtered(session):
        yield packet_row(session, pd)


def packet_row(session: Session, pd: PacketDecode) -> dict[str, Any]:
    """The packets report's row of one decoded packet."""
    ix = session.index
    rec = ix.records
    i = pd.index
    fid = int(ix.flow[i])
    src, dst = endpoints(ix, i)
    return {
        "frame": i + 1,
        "time": _ts(int(rec.ts_ns[i])),
        "len": int(rec.wirelen[i]),
        "caplen": int(rec.caplen[i]),
        "flow": fid if fid >= 0 else None,
        "src": src,
        "dst": dst,
        "protocols": packet_protocols(ix, i, pd.pdus),
        "info": info(session, pd),
        "pdus": [pdu_row(p) for p in pd.pdus],
        "findings": [finding_row(i + 1, f) for f in pd.findings],
        **({"comments": rec.comments[i]} if i in rec.comments else {}),
    }


CARRIED_INFO = frozenset({"grpc"})
"""Protocols whose PDUs ride in the PDU before them (a gRPC message in its DATA frame): their text
goes in parentheses after that PDU's, as tshark writes `DATA[1] (GRPC)`."""


def pdu_info(pdus: Sequence[Pdu]) -> str:
    """The decoders' summaries as one Info text: PDUs joined with ", " as tshark joins the frames
    of a packet (`HEADERS[1]: POST /demo.Directory/Get, DATA[1] (gRPC request, 7 bytes)`)."""
    items: list[str] = []
    for p in pdus:
        if not p.summary:
            continue
        if p.protocol in CARRIED_INFO and items:
            items[-1] += f" ({p.summary})"
        else:
            items.append(p.summary)
    return ", ".join(items)


def info(session: Session, pd: PacketDecode) -> str:
    """The Info column: the decoders' summaries, else a transport line like Wireshark's."""
    text = pdu_info(pd.pdus)
    if text:
        return text
    ix = session.index
    i = pd.index
    fid = int(ix.flow[i])
    if fid < 0:
        return ""
    flow = ix.flows[fid]
    c2s = int(ix.direction[i]) == 0
    sport, dport = (flow.client.port, flow.server.port) if c2s else (flow.server.port, flow.client.port)
    length = int(ix.payload_len[i])
    if flow.transport == "tcp":
        return f"{sport} → {dport} {tcp_info(session, i)} Len={length}"
    return f"{sport} → {dport} Len={length}"


TCP_INFO_FLAGS = (
    (1, "FIN"),
    (2, "SYN"),
    (4, "RST"),
    (8, "PSH"),
    (16, "ACK"),
    (32, "URG"),
    (64, "ECE"),
    (128, "CWR"),
)
"""The flags tshark's TCP Info names, in its order."""
TCP_WINDOW_SCALE = 3
"""RFC 7323 section 2.2: the Window Scale option's kind."""
MAX_WINDOW_SHIFT = 14
"""RFC 7323 section 2.3: a larger shift is taken as 14."""


class TcpNumbers:
    """What tshark's TCP Info needs beyond one packet, per session: each flow direction's window
    shift from the SYNs (the window is scaled only when both SYNs carried the option), found once
    from the SYN packets (a few per flow) and read from their options on first use."""

    def __init__(self, session: Session) -> None:
        ix = session.index
        self.n = len(ix)
        syns = np.flatnonzero((ix.flow >= 0) & (ix.l4 == 6) & ((ix.tcp_flags & 0x02) != 0))
        self._syn: dict[tuple[int, int], int] = {}
        for i in syns.tolist():
            self._syn.setdefault((int(ix.flow[i]), int(ix.direction[i])), i)
        self._shifts: dict[tuple[int, int], int | None] = {}

    def shift(self, session: Session, fid: int, direction: int) -> int | None:
        """The window shift of one direction; None when the window is not scaled (a SYN without
        the option, or no SYN seen: tshark then shows the window as sent)."""
        shifts = [self._own_shift(session, fid, d) for d in (direction, 1 - direction)]
        return shifts[0] if shifts[1] is not None else None

    def _own_shift(self, session: Session, fid: int, direction: int) -> int | None:
        key = (fid, direction)
        if key not in self._shifts:
            i = self._syn.get(key)
            self._shifts[key] = None if i is None else _window_shift(session, i)
        return self._shifts[key]


def _window_shift(session: Session, i: int) -> int | None:
    """The Window Scale option of the SYN that is packet `i`, if it carries one."""
    d = session.index.dissect(i)
    tcp = next((layer for layer in d.layers if layer.name == "tcp"), None)
    if tcp is None:
        return None
    options = session.index.frame(i)[tcp.start + 20 : tcp.end]
    k = 0
    while k < len(options):
        kind = options[k]
        if kind == 0:
            break
        if kind == 1:
            k += 1
            continue
        size = options[k + 1] if k + 1 < len(options) else 0
        if size < 2:
            break
        if kind == TCP_WINDOW_SCALE and size == 3 and k + 2 < len(options):
            return min(int(options[k + 2]), MAX_WINDOW_SHIFT)
        k += size
    return None


_TCP_NUMBERS: weakref.WeakKeyDictionary[Session, TcpNumbers] = weakref.WeakKeyDictionary()


def tcp_info(session: Session, i: int) -> str:
    """tshark's TCP Info between the ports and `Len=`: `[PSH, ACK] Seq=1 Ack=1 Win=65536`, with
    sequence and acknowledgement numbers relative to each direction's first (the display
    filter's tcp.seq and tcp.ack, so both agree) and the window scaled by the SYNs' shift."""
    from ..filter import tcp_bases  # one rule for the column and -Y

    ix = session.index
    numbers = _TCP_NUMBERS.get(session)
    if numbers is None or numbers.n != len(ix):
        numbers = _TCP_NUMBERS[session] = TcpNumbers(session)
    fid, direction = int(ix.flow[i]), int(ix.direction[i])
    flags = int(ix.tcp_flags[i])
    frame = ix.frame(i)
    # Without the layers' fields (their text costs twice the walk): the window is read from the
    # TCP header's bytes (RFC 9293 section 3.1: offset 14).
    d = dissect(ix.linktype(i), frame, int(ix.records.wirelen[i]), detail=False)
    tcp = next((layer for layer in d.layers if layer.name == "tcp"), None)
    window = int.from_bytes(frame[tcp.start + 14 : tcp.start + 16], "big") if tcp is not None else 0
    bases = tcp_bases(session)
    seq = (d.tcp_seq - int(bases[fid, direction])) & 0xFFFFFFFF
    text = f"[{', '.join(n for bit, n in TCP_INFO_FLAGS if flags & bit)}] Seq={seq}"
    if flags & 0x10:
        base = int(bases[fid, 1 - direction])
        ack = (d.tcp_ack - base) & 0xFFFFFFFF if base >= 0 else 1
        text += f" Ack={ack}"
    shift = None if flags & 0x02 else numbers.shift(session, fid, direction)
    return text + f" Win={window << shift if shift is not None else window}"


def analysis_rows(session: Session, name: str) -> Iterator[dict[str, Any]]:
    """Run a decoding pass through the named analysis (e.g. "calls") and yield its rows.

    An analysis with a `drain()` hands over finished rows during the pass (in the order they
    finish), so a report on a long capture holds only what is still open; the rest follows.
    """
    analysis = session.registry.analysis(name)
    if callable(getattr(analysis, "feed_rtp", None)):
        from ..bulk import plan_rtp, rows_with_bulk_rtp

        plan = plan_rtp(session)
        bulk = rows_with_bulk_rtp(session, analysis, plan) if plan is not None else None
        if bulk is not None:
            yield from bulk
            return
        analysis = session.registry.analysis(name)  # the bulk try fed it: start again
    ready: list[dict[str, Any]] = []
    decoding = AnalysisPass(session, {name: analysis}, lambda _, rows: ready.extend(rows))
    for _ in decoding.packets():
        if ready:
            yield from ready
            ready.clear()
    decoding.finish()
    yield from ready


FINDING_KEYS = ("frame", "severity", "code", "message")
SPOOL_BYTES = 4 << 20
"""The findings report keeps up to this much of the pass's findings in memory, the rest in a
temporary file: the analyses' findings are known only when the pass ends, and a million
per-packet findings must not sit in memory as objects until then."""
SPOOL_BATCH = 4096
"""Findings pickled into the spool at a time (one by one, writing cost more than decoding)."""


def finding_rows(session: Session) -> Iterator[dict[str, Any]]:
    """The findings report: the decoding pass's findings and every analysis's, in frame order
    (one pass feeds the analyses). With a display filter, only the packets it matches keep
    theirs, and an analysis's finding stays when its frame matches."""
    ix = session.index
    n = len(ix)
    found: list[dict[str, Any]] = []
    decoding = AnalysisPass(
        session, finding_analyses(session), lambda name, rows: found.extend(analysis_findings(name, rows, n))
    )
    matches = None
    if session.display_filter:
        from ..filter import packet_matcher

        matches = packet_matcher(session, session.display_filter)
    kept = np.zeros(n, np.bool_) if matches is not None else None
    with tempfile.SpooledTemporaryFile(SPOOL_BYTES) as spool:
        batch: list[tuple[int | None, str, str, str]] = []
        for pd in decoding.packets(sparse=matches is None):
            if matches is not None and kept is not None:
                if not matches(pd):
                    continue
                kept[pd.index] = True
            if pd.findings:
                batch += [(pd.index + 1, f.severity, f.code, f.message) for f in pd.findings]
                if len(batch) >= SPOOL_BATCH:
                    pickle.dump(batch, spool, pickle.HIGHEST_PROTOCOL)
                    batch = []
        decoding.finish()
        batch += [(None, f.severity, f.code, f.message) for f in session.file_findings()]
        pickle.dump(batch, spool, pickle.HIGHEST_PROTOCOL)
        del batch
        if kept is not None:
            found = [f for f in found if f["frame"] is None or kept[f["frame"] - 1]]
        spool.seek(0)
        yield from merge_findings(_unspooled(spool), found, lambda f: f["frame"])


def _unspooled(spool: IO[bytes]) -> Iterator[dict[str, Any]]:
    while True:
        try:
            batch = pickle.load(spool)
        except EOFError:
            return
        for item in batch:
            yield dict(zip(FINDING_KEYS, item, strict=True))


class SummaryCounts:
    """What the summary counts during a decoding pass: the findings by severity (the packets',
    the file's and the analyses') and the protocols the PDUs add to each packet's L2-L4 stack.
    `summary()` runs its own pass; the lake's export (inspector/lake/export.py) feeds one from
    the pass it makes anyway, so its `captures` row says what --report summary says."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.severities: Counter[str] = Counter()
        self.extra: Counter[tuple[int, tuple[str, ...]]] = Counter()
        self._packets = len(session.index)

    def analysis_rows(self, name: str, rows: list[dict[str, Any]]) -> None:
        """An `on_rows` sink of an AnalysisPass over the analyses that make findings."""
        self.add_findings(analysis_findings(name, rows, self._packets))

    def add_findings(self, found: Iterable[Mapping[str, Any]]) -> None:
        """Findings-report rows of an analysis (`analysis_findings`), counted by severity."""
        self.severities.update(f["severity"] for f in found)

    def packet(self, pd: PacketDecode) -> None:
        self.severities.update(f.severity for f in pd.findings)
        if pd.pdus:
            names = tuple(dict.fromkeys(p.protocol for p in pd.pdus))
            self.extra[(int(self.session.index.stack[pd.index]), names)] += 1

    def summary(self) -> dict[str, Any]:
        """The summary, once the pass (and its analyses) finished."""
        session = self.session
        ix = session.index
        rec = ix.records
        n = len(ix)
        hierarchy: Counter[str] = Counter()
        severities = Counter(self.severities)
        stack_counts = np.bincount(ix.stack, minlength=len(ix.stacks)) if n else np.zeros(0, np.int64)
        for sid, count in enumerate(stack_counts.tolist()):
            if count:
                path = ix.stacks[sid] or ("frame",)
                for depth in range(1, len(path) + 1):
                    hierarchy[":".join(path[:depth])] += count
        severities.update(f.severity for f in session.file_findings())
        for (sid, names), count in self.extra.items():
            base = ":".join(ix.stacks[sid])
            for depth in range(1, len(names) + 1):
                hierarchy[":".join((base, *names[:depth]))] += count
        first = int(rec.ts_ns.min()) if n else 0
        last = int(rec.ts_ns.max()) if n else 0
        transports = Counter(f.transport for f in ix.flows)
        return {
            "file": str(ix.capture.path),
            "format": rec.format + (" (gzip)" if ix.capture.compressed else ""),
            "packets": n,
            "bytes": int(rec.wirelen.sum()) if n else 0,
            "captured_bytes": int(rec.caplen.sum()) if n else 0,
            "first": _ts(first) if n else None,
            "last": _ts(last) if n else None,
            "duration": (last - first) / 1e9 if n else 0.0,
            "interfaces": [
                {"linktype": i.linktype, "name": i.name, "snaplen": i.snaplen} for i in rec.interfaces
            ],
            "flows": {"total": len(ix.flows), **dict(sorted(transports.items()))},
            "protocols": dict(sorted(hierarchy.items())),
            "findings": {s: severities.get(s, 0) for s in SEVERITIES},
            "truncated": any(f.code == "capture.truncated" for _, f in rec.findings),
            "decoders": sorted(session.registry.decoders),
        }


def summary(session: Session) -> dict[str, Any]:
    ix = session.index
    counts = SummaryCounts(session)
    decoding = AnalysisPass(session, finding_analyses(session), counts.analysis_rows)
    # The decode pass also finds TCP gaps, so it runs whenever something could produce a finding.
    decoded = bool(session.registry.decoders)
    needs_pass = decoded or bool(ix.findings) or any(f.transport == "tcp" for f in ix.flows)
    for pd in decoding.packets() if needs_pass else ():
        counts.packet(pd)
    decoding.finish()
    return counts.summary()
