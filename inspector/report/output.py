"""Writing reports as text, JSON or JSON Lines (text in `text.py`, imported only when asked for)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TextIO

import numpy as np

from ..session import Session
from . import rows
from .inert import json_inert

if TYPE_CHECKING:
    from ..follow import Followed, Mode
    from ..stats import Layer, Mask

STATISTICS = ("hierarchy", "endpoints", "conversations", "io", "methods")
"""Reports of `inspector/stats.py` (Wireshark's Statistics menu, tshark's `-z`)."""
UNFILTERED = frozenset({"summary", "follow"})
"""Reports a display filter (-Y) means nothing for (`ReportError`): follow shows a whole flow
(choose it with --flow), the summary describes the file. Every other report filters: packets and
findings keep the matching packets; flows, every analysis's rows (calls, streams, sessions, a
plugin's) and the statistics keep or count what has a matching packet."""


class ReportError(ValueError):
    """What a report was asked cannot be done (a flow that is not there, -Y where it means
    nothing): one line for the user."""


@dataclass(frozen=True, slots=True)
class ReportOptions:
    """What the statistics and follow reports are asked beyond their name (tshark's `-z` args)."""

    layer: Layer = "ip"
    """endpoints and conversations: eth, ip, ipv6, tcp or udp."""
    interval: float = 1.0
    """io: seconds per bucket."""
    io_filters: tuple[str | None, ...] = (None,)
    """io: one series per filter; None is all packets."""
    unit: str = "packets"
    """io: packets or bytes."""
    flow: int | None = None
    """follow: the flow (tcp.stream / udp.stream); the first flow when None."""
    stream: int | None = None
    """follow: an HTTP/2 stream of the flow."""
    call: int | None = None
    """follow: the call at this position (0-based) of the calls report."""
    follow_mode: Mode = "ascii"
    detail: bool = False
    """packets (text): each packet's detail tree after its line (tshark -V)."""
    hex: bool = False
    """packets (text): each packet's bytes as a hex dump (tshark -x)."""


def write(session: Session, name: str, fmt: str, out: TextIO, options: ReportOptions | None = None) -> None:
    options = options or ReportOptions()
    if session.display_filter and name in UNFILTERED:
        raise ReportError(f"-Y does not apply to --report {name} (it filters every other report)")
    if name == "summary":
        data: Any = rows.summary(session)
        if fmt == "text":
            from .text import terminal_width, write_summary

            write_summary(data, out, terminal_width(out))
        else:
            out.write(json_inert(json.dumps(data, ensure_ascii=False)) + "\n")
        return
    if name == "follow":
        _write_follow(session, fmt, out, options)
        return
    if (
        fmt in ("jsonl", "json")
        and name not in ("flows", "packets", "findings")
        and not session.display_filter
    ):
        from ..bulk_calls import json_rows

        texts = json_rows(session, name) if name not in STATISTICS else None
        if texts is not None:
            _write_json(texts, fmt, out)
            return
    items: Iterable[dict[str, Any]]
    if name == "flows":
        items = _matched_flows(session) if session.display_filter else rows.flow_rows(session)
    elif name == "packets":
        items = rows.packet_rows(session)
    elif name == "findings":
        items = rows.finding_rows(session)
    elif name in STATISTICS:
        try:
            items = statistics_rows(session, name, options)
        except ValueError as exc:  # a bad interval or layer, a bad --io-filter (FilterError)
            raise ReportError(str(exc)) from None
    else:
        items = rows.analysis_rows(session, name)
        if session.display_filter:
            items = _with_matching_packet(session, items, _mask(session))
    if fmt in ("jsonl", "json"):
        _write_json((json.dumps(item, ensure_ascii=False) for item in items), fmt, out)
        return
    from .text import capture_start, terminal_width, write_packets, write_tables

    if name == "packets":
        write_packets(session, items, out, detail=options.detail, hex_dump=options.hex)
    else:
        why = None
        if name in session.registry.analyses:
            from .empty import empty_reason

            def why() -> str:  # the flows' protocols, as the analysis pass just pinned them
                return empty_reason(name, {p for flow in session.flows for p in flow.protocols})

        write_tables(name, items, capture_start(session), out, terminal_width(out), why)


def _mask(session: Session) -> Mask | None:
    """The packets -Y matches, as a mask; None without -Y."""
    if not session.display_filter:
        return None
    from ..stats import matching

    return matching(session, session.display_filter)


def _matched_flows(session: Session) -> Iterator[dict[str, Any]]:
    """The flows report under -Y: the flows with a matching packet."""
    mask = _mask(session)
    assert mask is not None
    wanted = set(np.unique(session.index.flow[mask]).tolist())
    for row in rows.flow_rows(session):
        if row["id"] in wanted:
            yield row


def _frames(row: Mapping[str, Any]) -> Iterator[int]:
    """The frames an analysis row names: `frame`, those of its requests and responses (a call),
    and those where its phases began (a session)."""
    if isinstance(row.get("frame"), int):
        yield row["frame"]
    for key in ("requests", "responses"):
        for item in row.get(key) or ():
            if isinstance(item, Mapping) and isinstance(item.get("frame"), int):
                yield item["frame"]
    phases = row.get("phases")
    if isinstance(phases, Mapping):
        for phase in phases.values():
            if isinstance(phase, Mapping) and isinstance(phase.get("frame"), int):
                yield phase["frame"]


def _with_matching_frame(items: Iterable[dict[str, Any]], mask: Mask | None) -> Iterator[dict[str, Any]]:
    """Rows under -Y: those with a frame the filter matches."""
    for row in items:
        if mask is None or any(0 < f <= len(mask) and mask[f - 1] for f in _frames(row)):
            yield row


def _with_matching_packet(
    session: Session, items: Iterable[dict[str, Any]], mask: Mask | None
) -> Iterator[dict[str, Any]]:
    """An analysis's rows under -Y: those with a matching packet. A row that lists its packets'
    frames (a gRPC call: its requests and responses) matches by them; a row that stands for whole
    flows (a WebRTC session's `flows`, a row's `flow`, an RTP stream's `src` and `dst`) matches
    when one of those flows has a matching packet."""
    if mask is None:
        yield from items
        return
    matched = set(np.unique(session.index.flow[mask]).tolist())
    streams: set[tuple[int, int]] | None = None
    ends = rows.flow_ends(session)
    for row in items:
        if any(0 < f <= len(mask) and mask[f - 1] for f in _frames(row)):
            yield row
            continue
        if "requests" in row or "responses" in row:
            # A gRPC call: its messages' frames said no; its header blocks (the trailers with
            # grpc-status) are on the packets of its HTTP/2 stream.
            if row.get("flow") in matched and isinstance(row.get("stream_id"), int):
                streams = _matching_streams(session, mask) if streams is None else streams
                if (row["flow"], row["stream_id"]) in streams:
                    yield row
            continue
        flows = row.get("flows")
        named = [*(flows if isinstance(flows, list) else ()), rows.row_flow(row, ends)]
        if any(isinstance(f, int) and f in matched for f in named):
            yield row


def _matching_streams(session: Session, mask: Mask) -> set[tuple[int, int]]:
    """(flow, HTTP/2 stream id) of every frame the matching packets carry."""
    from ..session import flatten

    found: set[tuple[int, int]] = set()
    packets = np.flatnonzero(mask)
    flows = np.unique(session.index.flow[packets])
    # The matching packets' flows decoded from their start (HTTP/2 needs its HPACK state).
    wanted = np.flatnonzero(np.isin(session.index.flow, flows[flows >= 0]))
    for pd in session.decode(packets=wanted.tolist()):
        if not mask[pd.index]:
            continue
        fid = int(session.index.flow[pd.index])
        for pdu in pd.pdus:
            ids = flatten(pdu.fields).get("http2.streamid")
            for sid in ids if isinstance(ids, list) else [ids]:
                if isinstance(sid, int):
                    found.add((fid, sid))
    return found


def statistics_rows(session: Session, name: str, options: ReportOptions) -> list[dict[str, Any]]:
    """The rows of a statistics report (`STATISTICS`), counting only what -Y matches."""
    from .. import stats

    mask = _mask(session)
    if name == "hierarchy":
        return stats.protocol_hierarchy(session, packets=mask)
    if name == "endpoints":
        return stats.endpoints(session, options.layer, packets=mask)
    if name == "conversations":
        return stats.conversations(session, options.layer, packets=mask)
    if name == "io":
        unit: Literal["packets", "bytes"] = "bytes" if options.unit == "bytes" else "packets"
        return stats.io_rows(
            stats.io_graph(session, options.interval, options.io_filters, unit, packets=mask)
        )
    if name == "methods":
        if "calls" not in session.registry.analyses:
            return []
        return stats.grpc_methods(list(_with_matching_frame(rows.analysis_rows(session, "calls"), mask)))
    raise ReportError(f"unknown statistics report {name!r}")


def _followed(session: Session, options: ReportOptions) -> Followed | None:
    """What --report follow follows; None when the capture has no flow (and none was named)."""
    from ..follow import FollowError, follow_call, follow_flow, follow_http2

    try:
        if options.call is not None:
            if "calls" not in session.registry.analyses:
                raise ReportError("--call needs the calls analysis (it is not loaded)")
            calls = list(rows.analysis_rows(session, "calls"))
            if not 0 <= options.call < len(calls):
                raise ReportError(f"no call {options.call} (the capture has {len(calls)})")
            return follow_call(session, calls[options.call])
        flow = options.flow
        if flow is None:
            if not session.flows:
                return None
            flow = 0
        if options.stream is not None:
            return follow_http2(session, flow, options.stream)
        return follow_flow(session, flow)
    except FollowError as exc:
        raise ReportError(str(exc)) from None


def follow_rows(followed: Followed) -> Iterator[dict[str, Any]]:
    """One JSON row per chunk: who sent it, where, its bytes in hex, its label and decoded text."""
    for c in followed.chunks:
        yield {
            "flow": followed.flow,
            "frame": c.frame,
            "time": c.time,
            "from_client": c.from_client,
            "src": followed.client if c.from_client else followed.server,
            "dst": followed.server if c.from_client else followed.client,
            "size": len(c.data),
            "data": c.data.hex(),
            "label": c.label,
            "text": c.text,
        }


def _write_follow(session: Session, fmt: str, out: TextIO, options: ReportOptions) -> None:
    from ..follow import render

    followed = _followed(session, options)
    if fmt in ("json", "jsonl"):
        items = follow_rows(followed) if followed is not None else iter(())
        _write_json((json.dumps(item, ensure_ascii=False) for item in items), fmt, out)
        return
    if followed is None:
        out.write("Follow: no flows in this capture\n")
        return
    from .text import write_follow

    write_follow(followed, options.follow_mode, render(followed, options.follow_mode), out)


def _write_json(texts: Iterable[str], fmt: str, out: TextIO) -> None:
    """JSON Lines, or a JSON array written item by item (a million packets never sit in memory).
    Characters a terminal would act on are written as JSON escapes (`\\u202e`): the same values."""
    if fmt == "jsonl":
        for text in texts:
            out.write(json_inert(text) + "\n")
        return
    out.write("[")
    sep = "\n"
    for text in texts:
        out.write(sep + json_inert(text))
        sep = ",\n"
    out.write("\n]\n")
