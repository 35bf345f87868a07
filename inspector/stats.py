"""Statistics like Wireshark's menu of that name: protocol hierarchy, endpoints, conversations, an
I/O graph and gRPC statistics per method, each as plain rows (reports print them, the viewer draws
them, tests compare them with tshark's `-z`).

Counting is numpy over the index columns (a million packets cost tens of milliseconds); only the
protocol hierarchy's layers above L4 need a decoding pass, and only the packets outside any flow
are dissected one by one for their addresses (ARP, ICMP, IP fragments: few in real captures).
Every function takes `packets`, a mask of the packets to count (a display filter's), or counts
them all.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from protoscope.captures import linktypes as lt
from protoscope.captures.columns import ByteColumns, gather
from protoscope.decoders.rtp.packets import RtpRecord

from .bulk import RtpPlan, plan_rtp
from .icmp_errors import outer_protocols
from .session import Session, packet_protocols

Layer = Literal["eth", "ip", "ipv6", "tcp", "udp"]
LAYERS: tuple[Layer, ...] = ("eth", "ip", "ipv6", "tcp", "udp")
Mask = npt.NDArray[np.bool_]
Row = dict[str, object]
MAX_IO_BUCKETS = 100_000
"""Intervals an I/O graph may have. A capture whose clock jumps years (ndpi--stun.pcap spans four)
would need 128M one-second buckets: the interval is then widened tenfold until they fit, and
IoGraph.interval says which was used."""
ALL_PACKETS = "all packets"
"""The I/O graph's label of the series without a filter."""
ETH_HEADER = 14
_Add = Callable[[str, str, tuple[int, int], tuple[int, int], int, int], None]
"""How `conversations` is told of traffic: (a, b, a->b (packets, bytes), b->a, first ns, last ns)."""


def _wirelen(session: Session) -> npt.NDArray[np.int64]:
    wirelen: npt.NDArray[np.int64] = session.index.records.wirelen.astype(np.int64)
    return wirelen


def _chosen(session: Session, packets: Mask | None) -> Mask:
    n = len(session.index)
    if packets is None:
        return np.ones(n, np.bool_)
    if len(packets) != n:
        raise ValueError(f"a packet mask of {len(packets)} for {n} packets")
    return packets


# -- protocol hierarchy ---------------------------------------------------------------------------


def protocol_hierarchy(session: Session, *, packets: Mask | None = None) -> list[Row]:
    """Like `tshark -z io,phs`: each protocol path with the frames that contain it and their bytes,
    in tree order (children in the order they first appear). L2-L4 come from the index; the
    protocols above from one decoding pass ("eth:ip:tcp:http2:grpc")."""
    ix = session.index
    chosen = _chosen(session, packets)
    counts: dict[tuple[str, ...], list[int]] = {}
    """Full path -> [frames, bytes, first packet]."""
    upper = np.zeros(len(ix), np.bool_)
    """Packets whose path the decoding pass gave (the others are their L2-L4 stack)."""
    if session.registry.decoders and len(ix):
        # The RTP packets the bulk path reads (inspector/bulk.py), as for the flows report: a
        # million RTP packets decoded one by one cost ~40 s, their headers read in bulk far less.
        bulk = plan_rtp(session)
        if bulk is None or not _upper_paths(session, chosen, counts, upper, bulk):
            counts.clear()
            upper[:] = False
            _upper_paths(session, chosen, counts, upper, None)
    _add_stacks(session, np.flatnonzero(chosen & ~upper), counts, ())
    return _tree(counts)


def _add_stacks(
    session: Session,
    rows: npt.NDArray[np.int64],
    counts: dict[tuple[str, ...], list[int]],
    above: tuple[str, ...],
) -> None:
    """Count `rows` under their L2-L4 stack followed by `above`, by a bincount over stack ids."""
    ix = session.index
    if not len(rows):
        return
    stack = ix.stack[rows].astype(np.int64)
    frames = np.bincount(stack, minlength=len(ix.stacks))
    sizes = np.bincount(stack, weights=_wirelen(session)[rows], minlength=len(ix.stacks))
    first = np.full(len(ix.stacks), len(ix), np.int64)
    np.minimum.at(first, stack, rows)
    for sid in np.flatnonzero(frames).tolist():
        entry = counts.setdefault((*outer_protocols(ix.stacks[sid]), *above), [0, 0, int(first[sid])])
        entry[0] += int(frames[sid])
        entry[1] += round(float(sizes[sid]))
        entry[2] = min(entry[2], int(first[sid]))


def _upper_paths(
    session: Session,
    chosen: Mask,
    counts: dict[tuple[str, ...], list[int]],
    upper: Mask,
    plan: RtpPlan | None,
) -> bool:
    """Count the paths of the decoded packets (with `plan`, its RTP packets without decoding them:
    their L2-L4 stack and "rtp"); False when a packet the plan holds for checking did not decode to
    the RTP it read (the caller counts again without the plan)."""
    ix = session.index
    wirelen = _wirelen(session)
    skip = held_at = None
    if plan is not None:
        skip = np.zeros(len(ix), np.bool_)
        skip[plan.packets[~plan.held]] = True
        held_at = np.full(len(ix), -1, np.int64)
        held_at[plan.packets[plan.held]] = np.flatnonzero(plan.held)
    visited = np.zeros(len(ix), np.bool_)
    for pd in session.decode(skip=skip, sparse=True):
        i = pd.index
        visited[i] = True
        if plan is not None and held_at is not None and (k := int(held_at[i])) >= 0:
            rtp = pd.pdus[0].record if len(pd.pdus) == 1 else None
            if not (
                isinstance(rtp, RtpRecord) and (rtp.ssrc, rtp.seq) == (int(plan.ssrc[k]), int(plan.seq[k]))
            ):
                return False
        if not pd.pdus or not chosen[i]:
            continue
        upper[i] = True
        path = tuple(outer_protocols(packet_protocols(ix, i, pd.pdus)))
        entry = counts.get(path)
        if entry is None:
            counts[path] = [1, int(wirelen[i]), i]
        else:
            entry[0] += 1
            entry[1] += int(wirelen[i])
    if plan is not None:
        bulk = plan.packets[~plan.held]
        bulk = bulk[chosen[bulk] & ~visited[bulk]]  # a pass also visits each flow's last packet
        upper[bulk] = True
        _add_stacks(session, bulk, counts, ("rtp",))
    return True


def _tree(counts: Mapping[tuple[str, ...], list[int]]) -> list[Row]:
    """Every prefix of the paths as a node, with the sums of the paths under it, depth first."""
    nodes: dict[tuple[str, ...], list[int]] = {}
    for path, (frames, size, first) in counts.items():
        for depth in range(1, len(path) + 1):
            node = nodes.setdefault(path[:depth], [0, 0, first])
            node[0] += frames
            node[1] += size
            node[2] = min(node[2], first)
    children: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    for path in nodes:
        children.setdefault(path[:-1], []).append(path)
    out: list[Row] = []
    stack = sorted(children.get((), []), key=lambda p: nodes[p][2], reverse=True)
    while stack:
        path = stack.pop()
        frames, size, _ = nodes[path]
        out.append(
            {
                "protocol": path[-1],
                "path": ":".join(path),
                "depth": len(path) - 1,
                "frames": frames,
                "bytes": size,
            }
        )
        stack += sorted(children.get(path, []), key=lambda p: nodes[p][2], reverse=True)
    return out


# -- per-flow counts (tcp, udp, and ip where the packets have a flow) ----------------------------


@dataclass(slots=True)
class _FlowCounts:
    """Per flow: packets and bytes each way, first and last capture time (ns)."""

    c2s_packets: npt.NDArray[np.int64]
    c2s_bytes: npt.NDArray[np.int64]
    s2c_packets: npt.NDArray[np.int64]
    s2c_bytes: npt.NDArray[np.int64]
    first_ns: npt.NDArray[np.int64]
    last_ns: npt.NDArray[np.int64]
    client_first: npt.NDArray[np.bool_]
    """The flow's first (counted) packet was the client's: the client is Wireshark's address A."""


def _flow_counts(session: Session, packets: Mask | None) -> _FlowCounts:
    ix = session.index
    flows = session.flows
    if packets is None:  # the flow table's own counts (which also count tunnel carriers, as tshark)
        first_frames = np.array([f.first_frame for f in flows], np.int64)
        return _FlowCounts(
            np.array([f.packets_c2s for f in flows], np.int64),
            np.array([f.bytes_c2s for f in flows], np.int64),
            np.array([f.packets_s2c for f in flows], np.int64),
            np.array([f.bytes_s2c for f in flows], np.int64),
            np.array([f.first_ns for f in flows], np.int64),
            np.array([f.last_ns for f in flows], np.int64),
            ix.direction[first_frames] == 0 if len(flows) else np.zeros(0, np.bool_),
        )
    nflows = len(flows)
    rows = np.flatnonzero(packets & (ix.flow >= 0))
    fid = ix.flow[rows].astype(np.int64)
    key = fid * 2 + ix.direction[rows]
    wirelen = _wirelen(session)[rows]
    pk = np.bincount(key, minlength=2 * nflows).reshape(-1, 2)
    by = np.bincount(key, weights=wirelen, minlength=2 * nflows).reshape(-1, 2).round().astype(np.int64)
    ts = ix.records.ts_ns[rows]
    first = np.full(nflows, np.iinfo(np.int64).max, np.int64)
    last = np.full(nflows, np.iinfo(np.int64).min, np.int64)
    np.minimum.at(first, fid, ts)
    np.maximum.at(last, fid, ts)
    first_row = np.full(nflows, len(ix), np.int64)
    np.minimum.at(first_row, fid, rows)
    client_first = np.zeros(nflows, np.bool_)
    seen = first_row < len(ix)
    client_first[seen] = ix.direction[first_row[seen]] == 0
    return _FlowCounts(pk[:, 0], by[:, 0], pk[:, 1], by[:, 1], first, last, client_first)


def _counted(fc: _FlowCounts) -> npt.NDArray[np.int64]:
    return np.flatnonzero((fc.c2s_packets + fc.s2c_packets) > 0)


# -- addresses of packets outside flows ----------------------------------------------------------


def _loose_addresses(session: Session, layer: Layer, chosen: Mask) -> list[tuple[int, str, str]]:
    """(packet, source, destination) of the `layer` (ip or ipv6) header of counted packets that no
    flow holds: they are dissected one by one."""
    ix = session.index
    wanted = [sid for sid, names in enumerate(ix.stacks) if layer in names]
    if not wanted:
        return []
    rows = np.flatnonzero(chosen & (ix.flow < 0) & np.isin(ix.stack, wanted))
    out = []
    src, dst = f"{layer}.src", f"{layer}.dst"
    for i in rows.tolist():
        for dissected in ix.dissect(i).layers:
            if src in dissected.fields and dissected.name == layer:
                out.append((i, str(dissected.fields[src]), str(dissected.fields[dst])))
                break
    return out


def _ip_version(address: str) -> int:
    return ipaddress.ip_address(address).version


def _macs(session: Session, chosen: Mask) -> tuple[npt.NDArray[np.int64], list[int], npt.NDArray[np.int64]]:
    """The counted Ethernet frames: (packets, the distinct MACs as integers, and for each packet
    the positions of its source and destination MAC in that list as an (n, 2) array)."""
    ix = session.index
    rec = ix.records
    eth = [k for k, iface in enumerate(rec.interfaces) if iface.linktype == lt.ETHERNET]
    rows = np.flatnonzero(chosen & np.isin(rec.iface, eth) & (rec.caplen >= ETH_HEADER))
    if not len(rows):
        return rows, [], np.zeros((0, 2), np.int64)
    head = gather(ByteColumns(ix.capture.buffer), rec.data_off[rows], 12, release=True)
    # Each MAC as a big-endian integer: six bytes behind two zeros, read as one u8 (a byte-wise
    # product in int64 would cost 96 bytes a frame; this costs 16).
    both = np.zeros((2 * len(rows), 8), np.uint8)
    both[: len(rows), 2:] = head[:, 6:12]
    both[len(rows) :, 2:] = head[:, 0:6]
    del head
    # A few distinct MACs among millions of frames: small ids make every later step a bincount.
    macs, ids = np.unique(both.view(">u8").ravel(), return_inverse=True)
    return rows, macs.tolist(), ids.ravel().reshape(2, -1).T


def _mac_text(value: int) -> str:
    return ":".join(f"{b:02x}" for b in value.to_bytes(6, "big"))


# -- endpoints ------------------------------------------------------------------------------------


class _Tally:
    """Per key: [packets, bytes, tx packets, tx bytes, rx packets, rx bytes]."""

    def __init__(self) -> None:
        self.rows: dict[object, list[int]] = {}

    def add(self, key: object, tx: tuple[int, int], rx: tuple[int, int]) -> None:
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = [0, 0, 0, 0, 0, 0]
        row[0] += tx[0] + rx[0]
        row[1] += tx[1] + rx[1]
        row[2] += tx[0]
        row[3] += tx[1]
        row[4] += rx[0]
        row[5] += rx[1]


def endpoints(session: Session, layer: Layer, *, packets: Mask | None = None) -> list[Row]:
    """Like `tshark -z endpoints,LAYER`: each address (and port for tcp/udp) with the packets and
    bytes it sent (tx) and received (rx), most packets first. A packet from an address to itself
    counts for it twice, as in tshark."""
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r} (known: {', '.join(LAYERS)})")
    tally = _Tally()
    if layer == "eth":
        chosen = _chosen(session, packets)
        rows, macs, ids = _macs(session, chosen)
        wirelen = _wirelen(session)[rows]
        for column, sent in ((0, True), (1, False)):
            pk = np.bincount(ids[:, column], minlength=len(macs))
            by = np.bincount(ids[:, column], weights=wirelen, minlength=len(macs))
            for k in np.flatnonzero(pk).tolist():
                counts = (int(pk[k]), round(float(by[k])))
                tally.add(_mac_text(macs[k]), counts if sent else (0, 0), (0, 0) if sent else counts)
    else:
        _flow_endpoints(session, layer, tally, packets)
    out: list[Row] = []
    for key, (packets_, bytes_, txp, txb, rxp, rxb) in tally.rows.items():
        row: Row = {"address": key[0] if isinstance(key, tuple) else key}
        if isinstance(key, tuple):
            row["port"] = key[1]
        row |= {
            "packets": packets_,
            "bytes": bytes_,
            "tx_packets": txp,
            "tx_bytes": txb,
            "rx_packets": rxp,
            "rx_bytes": rxb,
        }
        out.append(row)
    out.sort(key=lambda r: (-int(str(r["packets"])), str(r["address"]), int(str(r.get("port", 0)))))
    return out


def _flow_endpoints(session: Session, layer: Layer, tally: _Tally, packets: Mask | None) -> None:
    fc = _flow_counts(session, packets)
    version = 6 if layer == "ipv6" else 4
    for f in _counted(fc).tolist():
        flow = session.flows[f]
        if layer in ("tcp", "udp") and flow.transport != layer:
            continue
        c2s = (int(fc.c2s_packets[f]), int(fc.c2s_bytes[f]))
        s2c = (int(fc.s2c_packets[f]), int(fc.s2c_bytes[f]))
        if layer in ("tcp", "udp"):
            client: object = (flow.client.ip, flow.client.port)
            server: object = (flow.server.ip, flow.server.port)
        elif _ip_version(flow.client.ip) != version:
            continue
        else:
            client, server = flow.client.ip, flow.server.ip
        tally.add(client, c2s, s2c)
        tally.add(server, s2c, c2s)
    if layer in ("ip", "ipv6"):
        wirelen = _wirelen(session)
        for i, src, dst in _loose_addresses(session, layer, _chosen(session, packets)):
            one = (1, int(wirelen[i]))
            tally.add(src, one, (0, 0))
            tally.add(dst, (0, 0), one)


# -- conversations --------------------------------------------------------------------------------


def conversations(session: Session, layer: Layer, *, packets: Mask | None = None) -> list[Row]:
    """Like `tshark -z conv,LAYER`: each pair of addresses (ip:port for tcp/udp), A being the sender
    of its first packet, with packets and bytes each way, the start relative to the first packet of
    the capture (s) and the duration (s), most packets first. tcp/udp conversations are our flows
    (tcp.stream / udp.stream)."""
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r} (known: {', '.join(LAYERS)})")
    ix = session.index
    pairs: dict[tuple[str, str], list[int]] = {}
    """(a, b) -> [a->b packets, a->b bytes, b->a packets, b->a bytes, first ns, last ns]."""

    def add(a: str, b: str, a_to_b: tuple[int, int], b_to_a: tuple[int, int], first: int, last: int) -> None:
        if (a, b) not in pairs and (b, a) in pairs:  # known the other way round
            a, b, a_to_b, b_to_a = b, a, b_to_a, a_to_b
        entry = pairs.get((a, b))
        if entry is None:
            pairs[(a, b)] = [*a_to_b, *b_to_a, first, last]
            return
        entry[0] += a_to_b[0]
        entry[1] += a_to_b[1]
        entry[2] += b_to_a[0]
        entry[3] += b_to_a[1]
        entry[4], entry[5] = min(entry[4], first), max(entry[5], last)

    if layer == "eth":
        _eth_conversations(session, _chosen(session, packets), add)
    else:
        _flow_conversations(session, layer, packets, add)
    start_ns = int(ix.records.ts_ns[0]) if len(ix) else 0
    out: list[Row] = []
    for (a, b), (abp, abb, bap, bab, first, last) in pairs.items():
        out.append(
            {
                "a": a,
                "b": b,
                "packets": abp + bap,
                "bytes": abb + bab,
                "a_to_b_packets": abp,
                "a_to_b_bytes": abb,
                "b_to_a_packets": bap,
                "b_to_a_bytes": bab,
                "start": (first - start_ns) / 1e9,
                "duration": (last - first) / 1e9,
            }
        )
    out.sort(key=lambda r: (-int(str(r["packets"])), float(str(r["start"]))))
    return out


def _flow_conversations(session: Session, layer: Layer, packets: Mask | None, add: _Add) -> None:
    fc = _flow_counts(session, packets)
    version = 6 if layer == "ipv6" else 4
    # Flows in the order of their first packet, so that A is the sender of a pair's first packet.
    counted = _counted(fc)
    for f in counted[np.argsort(fc.first_ns[counted], kind="stable")].tolist():
        flow = session.flows[f]
        if layer in ("tcp", "udp"):
            if flow.transport != layer:
                continue
            client, server = str(flow.client), str(flow.server)
        elif _ip_version(flow.client.ip) != version:
            continue
        else:
            client, server = flow.client.ip, flow.server.ip
        c2s = (int(fc.c2s_packets[f]), int(fc.c2s_bytes[f]))
        s2c = (int(fc.s2c_packets[f]), int(fc.s2c_bytes[f]))
        first, last = int(fc.first_ns[f]), int(fc.last_ns[f])
        if client == server:  # an address talking to itself: one direction, as tshark counts it
            add(client, server, (c2s[0] + s2c[0], c2s[1] + s2c[1]), (0, 0), first, last)
        elif fc.client_first[f]:
            add(client, server, c2s, s2c, first, last)
        else:
            add(server, client, s2c, c2s, first, last)
    if layer in ("ip", "ipv6"):
        wirelen = _wirelen(session)
        ts = session.index.records.ts_ns
        for i, src, dst in _loose_addresses(session, layer, _chosen(session, packets)):
            t = int(ts[i])
            add(src, dst, (1, int(wirelen[i])), (0, 0), t, t)


def _eth_conversations(session: Session, chosen: Mask, add: _Add) -> None:
    rows, macs, ids = _macs(session, chosen)
    if not len(rows):
        return
    # One integer per (source, destination): the two directions of a pair are added one by one.
    key = ids[:, 0] * len(macs) + ids[:, 1]
    directed, inverse = np.unique(key, return_inverse=True)
    inverse = inverse.ravel()
    wirelen = _wirelen(session)[rows]
    ts = session.index.records.ts_ns[rows]
    pk = np.bincount(inverse, minlength=len(directed))
    by = np.bincount(inverse, weights=wirelen, minlength=len(directed))
    first = np.full(len(directed), np.iinfo(np.int64).max, np.int64)
    last = np.full(len(directed), np.iinfo(np.int64).min, np.int64)
    np.minimum.at(first, inverse, ts)
    np.maximum.at(last, inverse, ts)
    for g in np.argsort(first, kind="stable").tolist():  # a pair's A sent its first frame
        src, dst = divmod(int(directed[g]), len(macs))
        sent = (int(pk[g]), round(float(by[g])))
        add(_mac_text(macs[src]), _mac_text(macs[dst]), sent, (0, 0), int(first[g]), int(last[g]))


# -- I/O graph --------------------------------------------------------------------------------------


@dataclass
class IoGraph:
    """Packets or bytes per interval, one series per filter (Wireshark's I/O Graph)."""

    interval: float
    """Seconds per bucket."""
    start: float
    """Epoch seconds of the first bucket (the first packet's time)."""
    series: dict[str, list[float]] = field(default_factory=dict)
    """Label ("all packets" or the filter text) -> one value a bucket."""


def matching(session: Session, text: str) -> Mask:
    """The packets a display filter matches (filter.filter_rows: columns first, a decoding pass
    only for decoders' fields). Raises filter.FilterError on a bad filter."""
    from .filter import filter_rows

    mask = np.zeros(len(session.index), np.bool_)
    rows = filter_rows(session, text)
    if rows:
        mask[np.asarray(rows, np.int64)] = True
    return mask


def io_graph(
    session: Session,
    interval: float,
    filters: Sequence[str | None] = (None,),
    unit: Literal["packets", "bytes"] = "packets",
    *,
    packets: Mask | None = None,
) -> IoGraph:
    """Like `tshark -z io,stat,INTERVAL,FILTER...`: bucket k holds the packets captured k to k+1
    intervals after the first packet (packets stamped before the first one count in bucket 0).
    More than MAX_IO_BUCKETS intervals widen the interval. Raises filter.FilterError on a bad
    filter."""
    if not math.isfinite(interval) or interval <= 0:
        raise ValueError(f"the interval must be a positive number of seconds, not {interval}")
    if unit not in ("packets", "bytes"):
        raise ValueError(f"unknown unit {unit!r} (packets or bytes)")
    ix = session.index
    ts = ix.records.ts_ns
    if not len(ix):
        return IoGraph(interval, 0.0, {ALL_PACKETS if f is None else f: [] for f in filters})
    start = int(ts[0])
    span = int(ts.max()) - start
    while span // max(1, round(interval * 1e9)) >= MAX_IO_BUCKETS:
        interval *= 10
    step = max(1, round(interval * 1e9))
    # Integer nanoseconds: float seconds since 1970 lose the microseconds that decide a bucket.
    bucket = np.maximum((ts - start) // step, 0)
    buckets = int(bucket.max()) + 1
    weights = _wirelen(session).astype(np.float64) if unit == "bytes" else None
    base = _chosen(session, packets)
    series: dict[str, list[float]] = {}
    for text in filters:
        mask = base if text is None else base & matching(session, text)
        rows = np.flatnonzero(mask)
        values = np.bincount(
            bucket[rows], weights=None if weights is None else weights[rows], minlength=buckets
        )
        series[ALL_PACKETS if text is None else text] = values.astype(np.float64).tolist()
    return IoGraph(interval, start / 1e9, series)


def io_rows(graph: IoGraph) -> list[Row]:
    """The I/O graph as rows, one per interval: `start` and `end` (s since the first packet), then
    one column per series."""
    count = max((len(v) for v in graph.series.values()), default=0)
    out: list[Row] = []
    for k in range(count):
        row: Row = {"start": round(k * graph.interval, 9), "end": round((k + 1) * graph.interval, 9)}
        for label, values in graph.series.items():
            value = values[k]
            row[label] = int(value) if value.is_integer() else value
        out.append(row)
    return out


# -- gRPC methods ----------------------------------------------------------------------------------


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    return round(float(np.percentile(np.asarray(values, np.float64), q)), 3)


def _sizes(messages: object) -> list[int]:
    if not isinstance(messages, list):
        return []
    return [int(m["size"]) for m in messages if isinstance(m, Mapping) and isinstance(m.get("size"), int)]


def grpc_methods(calls: Sequence[Mapping[str, object]]) -> list[Row]:
    """Per method path, Wireshark's "gRPC statistics" and more: calls, status codes by name,
    latency percentiles (ms, of the calls that ended), message bytes each way and the largest
    message. Calls whose headers the capture missed count under "(unknown)"."""
    groups: dict[str, list[Mapping[str, object]]] = {}
    for call in calls:
        path = call.get("path")
        groups.setdefault(str(path) if path else "(unknown)", []).append(call)
    out: list[Row] = []
    for path, members in groups.items():
        statuses: dict[str, int] = {}
        latencies: list[float] = []
        request_bytes = response_bytes = largest = 0
        for call in members:
            name = call.get("status_name") or (
                str(call["status"])
                if call.get("status") is not None
                else "open"
                if call.get("end") is None
                else "none"
            )
            statuses[str(name)] = statuses.get(str(name), 0) + 1
            duration = call.get("duration")
            if isinstance(duration, int | float):
                latencies.append(float(duration) * 1000)
            requests, responses = _sizes(call.get("requests")), _sizes(call.get("responses"))
            request_bytes += sum(requests)
            response_bytes += sum(responses)
            largest = max([largest, *requests, *responses])
        out.append(
            {
                "path": path,
                "calls": len(members),
                "statuses": statuses,
                "p50_ms": _percentile(latencies, 50),
                "p90_ms": _percentile(latencies, 90),
                "p99_ms": _percentile(latencies, 99),
                "request_bytes": request_bytes,
                "response_bytes": response_bytes,
                "max_message": largest,
            }
        )
    out.sort(key=lambda r: (-int(str(r["calls"])), str(r["path"])))
    return out
