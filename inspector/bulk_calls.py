"""The bulk path of `--report calls` in JSON: whole h2c connections decoded by a C extension.

The Python decoders cost ~130 us per gRPC call (bench/bench_grpc.py); `decoders/grpc/_bulk.c`
follows them step by step for the plain case and writes each row's JSON directly. Which
connections it takes:

- the plan (numpy over the index) keeps TCP flows whose payloads are all captured, arrive in
  order without retransmissions, gaps or IP fragments, and whose first payload the registry hands
  to our HTTP/2 decoder (as the normal pass would); the server's first bytes must be a frame and
  the client's the preface (the extension checks that one);
- gRPC over TLS the same way once the records are opened: inspector/bulk_tls.py takes the
  connections whose ClientHello has a key in the key log (`--keylog`), opens their records and
  feeds the plaintext to an extension decoder of its own;
- a first C run over them, with rows thrown away, names the connections it cannot follow the
  Python decoders on (CONTINUATION, gRPC-Web, latin-1 headers, malformed frames, ...): those
  "bail";
- the normal pass decodes every other packet (the bailed connections among them) into the same
  analysis as always;
- a second C run writes the rows of the connections that did not bail, merged with the Python
  rows in the order the normal pass would give them: by drain point, then by the packet where
  each call was first seen (inspector/report/rows.py drains every DRAIN_EVERY packets).

Without the extension (no C compiler when protoscope was installed) or with schemas loaded
(MessageToDict is the official library's), everything goes the normal way. Tests compare the
two paths row for row (tests/inspector/test_bulk_calls.py).
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from protoscope.decoders.grpc.calls import CallAnalysis
from protoscope.decoders.grpc.grpcurl import grpcurl_command
from protoscope.decoders.http2.decoder import Http2Decoder, find_frame_start

from .session import Session

_bulk: ModuleType | None
try:
    from protoscope.decoders.grpc import _bulk
except ImportError:  # built without a C compiler: the Python decoders do it all
    _bulk = None

IN_TREE = "protoscope.decoders."
IPPROTO_TCP = 6
TCP_SYN = 0x02
CHUNK = 1 << 16
"""Packets handed to the extension at a time (file pages are released between chunks)."""
MAX_MESSAGE = 4 * 1024 * 1024
"""Messages larger than this leave their connection to the Python decoders (gRPC's default limit)."""
MAX_FRAME = 1 << 20
"""Frames larger than this leave their connection to the Python decoders."""


def available() -> bool:
    return _bulk is not None


def _init() -> None:
    from hpack.huffman_table import HUFFMAN_TABLE
    from hpack.table import HeaderTable

    from protoscope.decoders.grpc import calls, status
    from protoscope.decoders.grpc.messages import decompress
    from protoscope.decoders.http2 import decoder
    from protoscope.decoders.http2 import header_block as hb
    from protoscope.decoders.protobuf import wire

    assert _bulk is not None
    _bulk.init(
        list(HeaderTable.STATIC_TABLE),
        list(HUFFMAN_TABLE),
        {
            "max_depth": wire.MAX_DEPTH,
            "max_fields": wire.MAX_FIELDS,
            "max_work": wire.MAX_WORK,
            "max_field_number": wire.MAX_FIELD_NUMBER,
            "max_header_list": hb.MAX_HEADER_LIST_SIZE,
            "max_table": hb.MAX_TABLE_SIZE,
            "default_table": hb.DEFAULT_TABLE_SIZE,
            "max_message": MAX_MESSAGE,
            "max_frame": MAX_FRAME,
            "max_headers": hb.MAX_HEADERS,
            "max_streams": decoder.MAX_OPEN_STREAMS,
            "max_open_calls": calls.MAX_OPEN_CALLS,
            "messages_first": calls.MESSAGES_KEPT_FIRST,
            "messages_last": calls.MESSAGES_KEPT_LAST,
            "message_bytes": calls.MESSAGE_BYTES_KEPT,
            "timeout_rounding": status.TIMEOUT_ROUNDING,
            "timeout_granularity": status.TIMEOUT_GRANULARITY,
        },
        decompress,
    )


@dataclass(slots=True)
class CallsPlan:
    flows: npt.NDArray[np.bool_]
    """Per flow: its connection goes to the extension."""
    packets: npt.NDArray[np.int64]
    """Packets with payload of those flows, in frame order."""


@dataclass(slots=True)
class CleanFlows:
    """The TCP flows whose payloads a bulk path may read straight from the capture."""

    ok: npt.NDArray[np.bool_]
    """Per flow: every payload captured whole, in order, without retransmissions, gaps or IP
    fragments, no data on a SYN."""
    data: npt.NDArray[np.int64]
    """Packets with payload on TCP flows, in frame order."""
    first: npt.NDArray[np.int64]
    """Indexes into `data` of each flow's first payload."""
    server_first: dict[int, int]
    """Flow -> the packet of its server's first payload."""


def clean_flows(session: Session) -> CleanFlows | None:
    """The TCP flows a bulk path may take (numpy over the index); None when there are none."""
    ix = session.index
    nflows = len(ix.flows)
    if not nflows:
        return None
    tcp_flow = np.array([f.transport == "tcp" for f in ix.flows], np.bool_)
    fl = ix.flow
    on_tcp = (fl >= 0) & (ix.l4 == IPPROTO_TCP)
    on_tcp[on_tcp] = tcp_flow[fl[on_tcp]]
    data = np.flatnonzero(on_tcp & (ix.payload_len > 0))
    if not len(data):
        return None
    rec = ix.capture.records
    ok = np.zeros(nflows, np.bool_)
    ok[fl[data]] = True
    flow, direction = fl[data], ix.direction[data]
    seq = ix.tcp_seq[data].astype(np.int64)
    length = ix.payload_len[data].astype(np.int64)
    bad = np.zeros(nflows, np.bool_)
    bad[fl[(fl >= 0) & (ix.l4 != IPPROTO_TCP) & tcp_flow[np.maximum(fl, 0)]]] = True
    # every payload captured whole, no data on a SYN, nothing rebuilt from IP fragments
    captured = rec.caplen[data].astype(np.int64) - ix.payload_off[data]
    bad[flow[(captured < length) | (ix.tcp_flags[data] & TCP_SYN != 0)]] = True
    if ix.reassembled:
        frag = np.fromiter(ix.reassembled, np.int64)
        frag = frag[fl[frag] >= 0]
        bad[fl[frag]] = True
    # in order: each payload starts where the one before it in its direction ended
    key = flow.astype(np.int64) * 2 + direction
    order = np.argsort(key, kind="stable")
    k, s, n = key[order], seq[order], length[order]
    same = k[1:] == k[:-1]
    broken = same & (s[1:] != (s[:-1] + n[:-1]) & 0xFFFF_FFFF)
    bad[(k[1:][broken] // 2)] = True
    # a SYN before the first payload of a direction fixes where that payload must start
    first_of_key = order[np.concatenate(([True], ~same))]
    syn = np.flatnonzero(on_tcp & (ix.tcp_flags & TCP_SYN != 0))
    if len(syn):
        syn_key = fl[syn].astype(np.int64) * 2 + ix.direction[syn]
        _, first_syn = np.unique(syn_key, return_index=True)
        syn_at = dict(zip(syn_key[first_syn].tolist(), syn[first_syn].tolist(), strict=True))
        for j in first_of_key.tolist():
            at = syn_at.get(int(key[j]))
            if at is not None and at < data[j] and (int(ix.tcp_seq[at]) + 1) & 0xFFFF_FFFF != int(seq[j]):
                bad[flow[j]] = True
    ok &= ~bad
    _, first = np.unique(flow, return_index=True)  # first payload of each flow (data is sorted)
    server_first = {int(flow[j]): int(data[j]) for j in first_of_key.tolist() if direction[j] == 1}
    return CleanFlows(ok, data, first, server_first)


def plan_calls(session: Session, clean: CleanFlows | None = None) -> CallsPlan | None:
    """The h2c connections the extension may take; None when there are none."""
    ix = session.index
    http2 = session.registry.decoders.get("http2")
    if _bulk is None or not isinstance(http2, Http2Decoder) or http2.schemas:
        return None
    clean = clean_flows(session) if clean is None else clean
    if clean is None:
        return None
    ok, data = clean.ok.copy(), clean.data
    flow = ix.flow[data]
    # The registry picks our HTTP/2 decoder on the flow's first payload (as the normal pass would);
    # the client starts with the preface (the extension checks) and the server with a frame.
    for j in clean.first.tolist():
        fid = int(flow[j])
        if not ok[fid]:
            continue
        i = int(data[j])
        chosen, _ = session.registry.choose(ix.payload(i), session.context(i))
        server = clean.server_first.get(fid)
        if chosen is not http2 or (server is not None and find_frame_start(ix.payload(server)) != 0):
            ok[fid] = False
    if not ok.any():
        return None
    return CallsPlan(ok, data[ok[flow]])


def _run(session: Session, plan: CallsPlan, flows: npt.NDArray[np.bool_], emit: bool) -> Iterator[Any]:
    """The extension over the plan's packets of `flows`: yields its decoder after the rows."""
    from .report.rows import DRAIN_EVERY

    assert _bulk is not None
    ix = session.index
    rec = ix.capture.records
    packets = plan.packets[flows[ix.flow[plan.packets]]]
    # The connections it takes start with the client's preface on the flow's client side, so the
    # flow's client is the calls' client.
    clients = [json.dumps(str(f.client), ensure_ascii=False) for f in ix.flows]
    dec = _bulk.Decoder(len(ix.flows), emit, DRAIN_EVERY, clients)
    for a in range(0, len(packets), CHUNK):
        p = packets[a : a + CHUNK]
        yield from dec.feed(
            ix.capture.buffer,
            (rec.data_off[p].astype(np.int64) + ix.payload_off[p]).astype(np.int64),
            ix.payload_len[p].astype(np.uint32),
            p.astype(np.int64),
            ix.flow[p].astype(np.int32),
            ix.direction[p].astype(np.uint8),
            rec.ts_ns[p].astype(np.int64),
        )
        ix.capture.release_pages()
    yield from dec.finish(len(ix))
    if emit and dec.bailed():  # the check run let these through: their rows would be missing
        raise RuntimeError(f"the calls extension bailed on connections it had checked: {dec.bailed()}")
    yield dec


def _python_rows(
    session: Session, analysis: CallAnalysis, skip_flows: npt.NDArray[np.bool_]
) -> Iterator[tuple[int, int, str]]:
    """The normal pass over every packet not of `skip_flows`, keyed like the extension's rows."""
    from .report.rows import DRAIN_EVERY

    ix = session.index
    n = len(ix)
    skip = np.zeros(n, np.bool_)
    with_flow = ix.flow >= 0
    skip[with_flow] = skip_flows[ix.flow[with_flow]]

    def drain(bucket: int) -> Iterator[tuple[int, int, str]]:
        for k, row in analysis.drain_keyed():
            yield bucket, k, json.dumps(row, ensure_ascii=False)

    def next_point(last: int) -> int:
        """The first drain point after packet `last` (as the extension's next_point)."""
        return 0 if last < 0 else (last // DRAIN_EVERY + 1) * DRAIN_EVERY

    last = -1
    for pd in session.decode(skip=skip):
        i = pd.index
        if next_point(last) < i:
            yield from drain(next_point(last))
        if pd.pdus:
            ctx = pd.context if pd.context is not None else session.context(i)
            for pdu in pd.pdus:
                analysis.feed(pdu, ctx)
        last = i
        if i % DRAIN_EVERY == 0:
            yield from drain(i)
    if next_point(last) < n:
        yield from drain(next_point(last))
    yield from drain(n)
    for k, row in analysis.rows_keyed():
        yield n + 1, k, json.dumps(row, ensure_ascii=False)


def json_rows(session: Session, name: str) -> Iterator[str] | None:
    """The rows of `--report calls` as JSON text (each as json.dumps(row, ensure_ascii=False)
    would write it), or None when the bulk path does not apply."""
    if name != "calls" or _bulk is None:
        return None
    analysis = session.registry.analysis(name)
    if type(analysis) is not CallAnalysis or analysis.schemas:
        return None
    # Only our decoders are loaded: none of them learns to expect a TCP port from signaling, so the
    # decoder the plan saw the registry choose for a connection is the one the normal pass would.
    if not all(type(d).__module__.startswith(IN_TREE) for d in session.registry.decoders.values()):
        return None
    clean = clean_flows(session)
    if clean is None:
        return None
    from . import bulk_tls

    plan = plan_calls(session, clean)
    tls_plan = bulk_tls.plan_tls(session, clean)
    if plan is None and tls_plan is None:
        return None
    _init()
    taken = np.zeros(len(session.index.flows), np.bool_)
    bulk: list[tuple[Iterator[Any], bool]] = []
    """Each extension run's rows, and whether its connections are h2c (grpcurl -plaintext)."""
    if plan is not None:
        check = list(_run(session, plan, plan.flows, emit=False))
        flows = plan.flows.copy()
        flows[list(check[-1].bailed())] = False
        if flows.any():
            taken |= flows
            bulk.append((_run(session, plan, flows, emit=True), True))
    if tls_plan is not None:
        tls_flows, _, kept = bulk_tls.check(session, tls_plan)
        if tls_flows.any():
            taken |= tls_flows
            bulk.append((bulk_tls.rows(session, tls_plan, tls_flows, kept), False))
    if not taken.any():
        return None
    servers = [str(f.server) for f in session.index.flows]
    return _merge(_python_rows(session, analysis, taken), bulk, servers)


def _merge(
    python_rows: Iterator[tuple[int, int, str]], bulk: list[tuple[Iterator[Any], bool]], servers: list[str]
) -> Iterator[str]:
    """Every stream comes in (drain point, first packet) order; so does their merge."""
    extension = [_commanded(b, servers, plaintext) for b, plaintext in bulk]
    for _, _, text in heapq.merge(python_rows, *extension, key=lambda r: (r[0], r[1])):
        yield text


def _commanded(rows: Iterator[Any], servers: list[str], plaintext: bool) -> Iterator[tuple[int, int, str]]:
    """One extension run's rows with their commands (a function of its own: a generator expression
    in the list above would see the loop's last `plaintext` for every run)."""
    return (_with_command(r, servers, plaintext) for r in rows if isinstance(r, tuple))


def _with_command(
    row: tuple[int, int, str], servers: list[str], plaintext: bool = True
) -> tuple[int, int, str]:
    """An extension row with the `server` and `grpcurl` keys the Python rows end with
    (decoders/grpc/calls.py `with_command`): the extension writes the rest as json.dumps would;
    the command is built from the row the same way, and the two keys are written after the
    extension's text rather than by loading and dumping the whole row again (that took ~2 s of
    bench/bench_decrypt.py's 66,200 rows, more than the extension itself). The connections the
    extension takes start with the client's preface (or ClientHello) on the flow's client side:
    the flow's server is the calls' server."""
    bucket, first, text = row
    call = _command_fields(text)
    server = servers[call["flow"]]
    call["server"] = server
    command = grpcurl_command(call, plaintext)
    server_text, command_text = (
        json.dumps(server, ensure_ascii=False),
        json.dumps(command, ensure_ascii=False),
    )
    return bucket, first, f'{text[:-1]}, "server": {server_text}, "grpcurl": {command_text}}}'


RESPONSES = ', "responses": ['
REQUESTS_OMITTED = '"requests_omitted": '


def _command_fields(text: str) -> dict[str, Any]:
    """The keys of an extension row that the grpcurl command reads, without parsing its responses
    (a third of the row): the row up to its top-level "responses" key, and its "requests_omitted".

    Both are found from the end. A JSON string cannot hold these texts (its quotes are escaped),
    and after the top-level keys only dicts with fixed keys come (findings), so the last
    "requests_omitted" is the top-level one; a "responses" key nested in a response would cut
    the row inside a nested value, which then does not parse: the whole row is parsed instead."""
    cut = text.rfind(RESPONSES)
    at = text.rfind(REQUESTS_OMITTED)
    if cut > 0 and at > cut:
        try:
            call = json.loads(text[:cut] + "}")
            start = at + len(REQUESTS_OMITTED)
            omitted = int(text[start : text.index(",", start)])
        except ValueError:
            pass
        else:
            if isinstance(call, dict) and "requests" in call:
                call["requests_omitted"] = omitted
                return call
    whole: dict[str, Any] = json.loads(text)
    return whole
