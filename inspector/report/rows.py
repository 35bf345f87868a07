"""The rows of each report as JSON-ready dicts (the JSON contract of DESIGN.md)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np

from protoscope.captures.flows import Flow
from protoscope.decoders.api import Finding, Pdu

from ..session import PacketDecode, Session, endpoints, flatten, packet_protocols

REPORTS = ("summary", "flows", "packets", "findings")


def _ts(ns: int) -> float:
    return ns / 1e9


def flow_row(flow: Flow) -> dict[str, Any]:
    return {
        "id": flow.id,
        "transport": flow.transport,
        "client": str(flow.client),
        "server": str(flow.server),
        "protocols": [flow.transport, *flow.protocols],
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
    from ..filter import compile_filter, packet_fields

    matches = compile_filter(session.display_filter)
    for pd in session.decode():
        if matches(packet_fields(session, pd)):
            yield pd


def packet_rows(session: Session) -> Iterator[dict[str, Any]]:
    ix = session.index
    rec = ix.records
    for pd in filtered(session):
        i = pd.index
        fid = int(ix.flow[i])
        src, dst = endpoints(ix, i)
        yield {
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


def info(session: Session, pd: PacketDecode) -> str:
    """The Info column: the decoders' summaries, else a transport line like Wireshark's."""
    summaries = [p.summary for p in pd.pdus if p.summary]
    if summaries:
        return "; ".join(summaries)
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
        flags = int(ix.tcp_flags[i])
        names = [
            n
            for bit, n in ((1, "FIN"), (2, "SYN"), (4, "RST"), (8, "PSH"), (16, "ACK"), (32, "URG"))
            if flags & bit
        ]
        return f"{sport} → {dport} [{', '.join(names)}] Seq={int(ix.tcp_seq[i])} Len={length}"
    return f"{sport} → {dport} Len={length}"


DRAIN_EVERY = 1024
"""Packets between two drains of an analysis's finished rows."""


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
    drain = getattr(analysis, "drain", None)
    for pd in session.decode():
        if pd.pdus:
            ctx = session.context(pd.index)
            for pdu in pd.pdus:
                analysis.feed(pdu, ctx)
        if drain is not None and pd.index % DRAIN_EVERY == 0:
            yield from drain()
    if drain is not None:
        yield from drain()
    yield from analysis.rows()


def finding_rows(session: Session) -> Iterator[dict[str, Any]]:
    for pd in filtered(session):
        for f in pd.findings:
            yield finding_row(pd.index + 1, f)
    for f in session.file_findings():
        yield finding_row(None, f)


def summary(session: Session) -> dict[str, Any]:
    ix = session.index
    rec = ix.records
    n = len(ix)
    hierarchy: Counter[str] = Counter()
    severities: Counter[str] = Counter()
    stack_counts = np.bincount(ix.stack, minlength=len(ix.stacks)) if n else np.zeros(0, np.int64)
    decoded = bool(session.registry.decoders)
    extra: Counter[tuple[int, tuple[str, ...]]] = Counter()
    # The decode pass also finds TCP gaps, so it runs whenever something could produce a finding.
    needs_pass = decoded or bool(ix.findings) or any(f.transport == "tcp" for f in ix.flows)
    for pd in session.decode() if needs_pass else ():
        severities.update(f.severity for f in pd.findings)
        if pd.pdus:
            names = tuple(dict.fromkeys(p.protocol for p in pd.pdus))
            extra[(int(ix.stack[pd.index]), names)] += 1
    for sid, count in enumerate(stack_counts.tolist()):
        if count:
            path = ix.stacks[sid] or ("frame",)
            for depth in range(1, len(path) + 1):
                hierarchy[":".join(path[:depth])] += count
    severities.update(f.severity for f in session.file_findings())
    for (sid, names), count in extra.items():
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
        "findings": {s: severities.get(s, 0) for s in ("error", "warn", "note")},
        "truncated": any(f.code == "capture.truncated" for _, f in rec.findings),
        "decoders": sorted(session.registry.decoders),
    }
