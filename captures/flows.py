"""Conversations: packets grouped by transport 5-tuple, oriented client -> server.

Grouping is vectorised: each packet's canonical key (lower endpoint first) is hashed to 64 bits,
a sort groups the hashes, and every group is then checked member by member against its first
packet's full key, so a hash collision can never merge two conversations (it falls back to an exact
but slower grouping). 1M packets group in ~0.13 s; a dict over Python tuples takes ~0.6 s.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from protoscope.decoders.api import Endpoint

from .growing import GrowingColumns
from .linktypes import IPPROTO_TCP, IPPROTO_UDP

IntArray = npt.NDArray[Any]

SERVER_PORTS = frozenset(
    {53, 80, 443, 554, 1935, 3000, 3478, 3479, 5060, 5061, 5349, 8080, 8443, 8888, 19302, 50051}
)
"""Ports that mark the server side when no SYN says which side opened the connection."""
EPHEMERAL_PORT_MIN = 49152

TCP_SYN = 0x02
TCP_ACK = 0x10
TRANSPORT_NAMES = {IPPROTO_TCP: "tcp", IPPROTO_UDP: "udp"}


@dataclass(slots=True)
class Flow:
    """One bidirectional conversation."""

    id: int
    transport: str
    client: Endpoint
    server: Endpoint
    packets: int
    bytes: int
    packets_c2s: int
    bytes_c2s: int
    packets_s2c: int
    bytes_s2c: int
    first_ns: int
    last_ns: int
    first_frame: int
    """0-based index of the flow's first packet."""
    oriented_by: str
    """"syn", "syn-ack", "port" or "first-packet": how the client side was chosen."""
    protocols: list[str] = field(default_factory=list)
    carried: int = 0
    """Packets counted here whose payload is a tunnelled packet (GTP-U), decoded in the inner flow."""


@dataclass(slots=True)
class FlowColumns:
    flow: npt.NDArray[np.int32]
    """Flow id of each packet, -1 for packets outside any UDP/TCP conversation."""
    direction: npt.NDArray[np.uint8]
    """0 when the packet goes client -> server, 1 otherwise."""
    flows: list[Flow]


def _mix(*parts: IntArray) -> IntArray:
    h = np.full(len(parts[0]), 0xCBF29CE484222325, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for p in parts:
            h ^= p.astype(np.uint64)
            h *= np.uint64(0x100000001B3)
            h ^= h >> np.uint64(29)
    return h


def _group(keys: list[IntArray]) -> tuple[IntArray, IntArray]:
    """Return (index of each group's first member, group of each row) for row-wise equal keys."""
    h = _mix(*keys)
    # np.unique with return_index/return_inverse sorts every row; the distinct hashes alone, from a
    # sort and a comparison of neighbours, are found by binary search. np.unique(h) itself took
    # 32-990 ms for 1M rows (numpy 2.4, 4 to 1M distinct values; and it imports numpy.ma, ~8 ms of
    # start-up) where this takes 6-23 ms.
    ordered = np.sort(h)
    distinct = ordered[np.concatenate((ordered[:1] == ordered[:1], ordered[1:] != ordered[:-1]))]
    del ordered
    inv = np.searchsorted(distinct, h)
    first = np.full(len(distinct), len(h), dtype=np.int64)
    np.minimum.at(first, inv, np.arange(len(h), dtype=np.int64))
    if all(np.array_equal(k, k[first][inv]) for k in keys):
        return first, inv
    table = np.rec.fromarrays(keys)
    _, first, inv = np.unique(table, return_index=True, return_inverse=True)
    return first, inv.ravel()


def _ip(version: int, hi: int, lo: int) -> str:
    if version == 4:
        return str(ipaddress.IPv4Address(lo))
    return str(ipaddress.IPv6Address((hi << 64) | lo))


def _server_is_high(lo_port: int, hi_port: int, first_side: int) -> tuple[bool, str]:
    """Decide by ports whether the canonically higher endpoint is the server."""
    lo_known, hi_known = lo_port in SERVER_PORTS, hi_port in SERVER_PORTS
    if lo_known != hi_known:
        return hi_known, "port"
    lo_low, hi_low = lo_port < 1024, hi_port < 1024
    if lo_low != hi_low:
        return hi_low, "port"
    lo_eph, hi_eph = lo_port >= EPHEMERAL_PORT_MIN, hi_port >= EPHEMERAL_PORT_MIN
    if lo_eph != hi_eph:
        return lo_eph, "port"
    # Otherwise the first packet's sender is the client.
    return first_side == 0, "first-packet"


def build(
    l4: IntArray,
    ip_version: IntArray,
    src_hi: IntArray,
    src_lo: IntArray,
    dst_hi: IntArray,
    dst_lo: IntArray,
    sport: IntArray,
    dport: IntArray,
    tcp_flags: IntArray,
    wirelen: IntArray,
    ts_ns: IntArray,
    carrier_frames: IntArray | None = None,
) -> FlowColumns:
    """Group rows into conversations (a FlowTable given every packet at once)."""
    table = FlowTable()
    columns = (l4, ip_version, src_hi, src_lo, dst_hi, dst_lo, sport, dport, tcp_flags, wirelen, ts_ns)
    flow, direction = table.add(*columns, carrier_frames)
    return FlowColumns(flow, direction, table.flows)


KEY_COLUMNS = ("a_hi", "a_lo", "b_hi", "b_lo", "ports")
"""A flow's canonical key, as kept for each flow: the lower endpoint's address (high and low 64
bits), the higher one's, and both ports with the transport and the IP version in one word."""
RECENT_MIN = 4_096
"""Flows kept in the small sorted table of recent flows before it is merged into the big one."""
RECENT_SHARE = 8
"""The recent table is merged into the big one once it holds more than 1/RECENT_SHARE of it: the
merge copies the big table, so each flow is copied ~RECENT_SHARE times in all (amortised O(1)),
and a lookup is two binary searches."""


class FlowTable:
    """The conversations of a capture read so far, and the packets of the next read added to them.

    A read's packets are first looked up among the flows already known: the 64-bit hash of each
    packet's canonical key is searched (np.searchsorted, for all packets at once) in a sorted
    array of the known flows' hashes, and a hit is checked against that flow's full key, so a
    collision never merges two conversations. Only the rest are grouped into new flows, with the
    grouping `build` always did (numbered on from the known ones in order of first packet, like
    tshark's tcp.stream), so a Python step is spent per new flow and per flow a read touches, never
    per packet. A whole file is one read: it groups every packet, and the lookup arrays are only
    built when a second read comes.

    A new flow's client and server are decided by what the read in which it first appears shows
    (its SYN or SYN-ACK, its ports, or its first packet), and a later read never changes them: a
    SYN seen later does not turn a conversation around, as in Wireshark while it captures. A
    known flow's counters and last time are updated in place; its id, ends and transport stay.
    """

    def __init__(self) -> None:
        self.flows: list[Flow] = []
        self._keys = GrowingColumns()
        """Per flow: KEY_COLUMNS (uint64) and client_high (1 when the higher endpoint is the client)."""
        self._indexed = 0
        """Flows [0, _indexed) are in the lookup arrays."""
        self._big = (np.zeros(0, np.uint64), np.zeros(0, np.int64))
        self._recent = (np.zeros(0, np.uint64), np.zeros(0, np.int64))
        """(sorted distinct hashes, flow id of each) of the flows indexed; big and recent."""
        self._collided: dict[tuple[int, ...], int] = {}
        """Full key -> flow id, for a flow whose hash an earlier flow already has."""

    def add(
        self,
        l4: IntArray,
        ip_version: IntArray,
        src_hi: IntArray,
        src_lo: IntArray,
        dst_hi: IntArray,
        dst_lo: IntArray,
        sport: IntArray,
        dport: IntArray,
        tcp_flags: IntArray,
        wirelen: IntArray,
        ts_ns: IntArray,
        carrier_frames: IntArray | None = None,
        first: int = 0,
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.uint8]]:
        """Add a read's rows to the conversations; return each packet's flow id and direction.
        Rows are packets (the first is packet `first` of the capture), then one row per tunnelled
        packet for its outer UDP header (`carrier_frames` gives their packets): tshark counts a
        GTP-U packet in both conversations, and so do we; only the inner one is in the returned
        packet columns."""
        rows_total = len(l4)
        carried = 0 if carrier_frames is None else len(carrier_frames)
        n = rows_total - carried
        frames = np.arange(first, first + rows_total, dtype=np.int64)
        if carrier_frames is not None:
            frames[n:] = carrier_frames
        flow_col = np.full(rows_total, -1, np.int32)
        dir_col = np.zeros(rows_total, np.uint8)
        has_l4 = l4 != 0
        # A slice when every packet has a transport: views instead of gathers.
        sel: slice | IntArray = slice(None) if has_l4.all() else np.flatnonzero(has_l4)
        if not isinstance(sel, slice) and not len(sel):
            return flow_col[:n], dir_col[:n]
        sh, sl, sp = src_hi[sel], src_lo[sel], sport[sel]
        dh, dl, dp = dst_hi[sel], dst_lo[sel], dport[sel]
        side = (sh > dh) | ((sh == dh) & ((sl > dl) | ((sl == dl) & (sp > dp))))
        proto = l4[sel]
        version = ip_version[sel]
        a_port, b_port = np.where(side, dp, sp), np.where(side, sp, dp)
        del sp, dp
        # Every 8-byte column here costs 8 MB a million packets and this is the peak of indexing:
        # the key is built in place from narrow columns, and IPv4-only captures pack both addresses
        # in one word and never build the high ones.
        small = _ports_word(a_port, b_port, proto, version)
        v4only = bool((version == 4).all())
        a_lo, b_lo = np.where(side, dl, sl), np.where(side, sl, dl)
        if v4only:
            del sh, dh, sl, dl
            a_hi = b_hi = np.zeros(0, np.uint64)
        else:
            a_hi, b_hi = np.where(side, dh, sh), np.where(side, sh, dh)
            del sh, dh, sl, dl
        if self.flows:
            zeros = np.zeros(len(side), np.uint64) if v4only else None
            fid = self._lookup(
                [a_hi if zeros is None else zeros, a_lo, b_hi if zeros is None else zeros, b_lo, small]
            )
            del zeros
            old = fid >= 0
            if old.any():
                rows = np.arange(rows_total)[sel]
                self._update(fid[old], side[old], rows[old], n, wirelen, ts_ns)
                flow_col[rows[old]] = fid[old]
                client_high = self._keys.view("client_high")[fid[old]]
                dir_col[rows[old]] = side[old] ^ (client_high == 1)
                if old.all():
                    return flow_col[:n], dir_col[:n]
                new = np.flatnonzero(~old)
                sel = rows[new]
                side, proto, version, small = side[new], proto[new], version[new], small[new]
                a_port, b_port, a_lo, b_lo = a_port[new], b_port[new], a_lo[new], b_lo[new]
                if not v4only:
                    a_hi, b_hi = a_hi[new], b_hi[new]
            del fid, old
        if v4only:
            both = a_lo << np.uint64(32)
            both |= b_lo
            first_row, group = _group([both, small])
            del both
        else:
            first_row, group = _group([a_hi, a_lo, b_hi, b_lo, small])
        del small
        fid_new, dir_new = self._new_flows(
            sel, first_row, group, side, proto, version, a_hi, a_lo, b_hi, b_lo, a_port, b_port,
            tcp_flags, wirelen, ts_ns, frames, n, v4only,
        )  # fmt: skip
        flow_col[sel] = fid_new
        dir_col[sel] = dir_new
        return flow_col[:n], dir_col[:n]

    def _new_flows(
        self,
        sel: slice | IntArray,
        first: IntArray,
        group: IntArray,
        side: IntArray,
        proto: IntArray,
        version: IntArray,
        a_hi: IntArray,
        a_lo: IntArray,
        b_hi: IntArray,
        b_lo: IntArray,
        a_port: IntArray,
        b_port: IntArray,
        tcp_flags: IntArray,
        wirelen: IntArray,
        ts_ns: IntArray,
        frames: IntArray,
        n: int,
        v4only: bool,
    ) -> tuple[IntArray, IntArray]:
        """Number the groups of the selected rows `sel` as new flows, orient them and count them;
        return the flow id and direction of each selected row."""
        rows_total = len(frames)
        base = len(self.flows)
        carried = rows_total > n
        # Renumber groups in order of first appearance, like Wireshark's stream indexes (an outer
        # tunnel conversation before the one inside it).
        sort_key = first
        outer = None
        if carried:
            # A group's first row is the one of its earliest packet, an outer tunnel row first.
            table_rows = np.arange(rows_total) if isinstance(sel, slice) else sel
            outer = table_rows >= n
            size = len(table_rows)
            key = ((frames[table_rows] - frames[0]) * 2 + (table_rows < n)) * size + np.arange(size)
            sort_key = np.full(len(first), np.iinfo(np.int64).max, np.int64)
            np.minimum.at(sort_key, group, key)
            first = sort_key % size
        order = np.argsort(sort_key, kind="stable")
        rank = np.empty(len(first), np.int32)
        rank[order] = np.arange(len(first), dtype=np.int32)
        fid = rank[group]
        del group
        first = first[order]
        nflows = len(first)
        # What the flow list needs of each flow's first row; the per-row columns can go.
        a_hi, b_hi = (a_hi[first], b_hi[first]) if not v4only else (np.zeros(nflows, np.uint64),) * 2
        a_lo, b_lo, a_port, b_port = a_lo[first], b_lo[first], a_port[first], b_port[first]

        # Orientation: a SYN's sender is the client; a SYN-ACK's receiver is; else ports decide.
        flags = tcp_flags[sel]
        is_tcp = proto == IPPROTO_TCP
        client_side = np.full(nflows, -1, np.int64)
        how = np.zeros(nflows, np.int64)
        for mask, flip, code in (
            (is_tcp & ((flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)), 1, 2),
            (is_tcp & ((flags & (TCP_SYN | TCP_ACK)) == TCP_SYN), 0, 1),
        ):
            rows = np.flatnonzero(mask)
            if len(rows):
                # The first such packet of each flow wins; later assignments overwrite earlier ones,
                # so assign in reverse order.
                rows = rows[::-1]
                client_side[fid[rows]] = side[rows].astype(np.int64) ^ flip
                how[fid[rows]] = code
        first_side = side[first].astype(np.int64)
        first_proto, first_version = proto[first], version[first]
        del flags, is_tcp, proto, version
        pk = np.bincount(fid, minlength=nflows)
        by = np.bincount(fid, weights=wirelen[sel].astype(np.float64), minlength=nflows)
        hi_rows = side
        pk_hi = np.bincount(fid[hi_rows], minlength=nflows)
        by_hi = np.bincount(fid[hi_rows], weights=wirelen[sel][hi_rows].astype(np.float64), minlength=nflows)
        ts = ts_ns[sel]
        first_ts = np.full(nflows, np.iinfo(np.int64).max, np.int64)
        last_ts = np.full(nflows, np.iinfo(np.int64).min, np.int64)
        np.minimum.at(first_ts, fid, ts)
        np.maximum.at(last_ts, fid, ts)
        oriented = ("port", "syn", "syn-ack")
        carriers = np.zeros(nflows, np.int64)
        if outer is not None:
            carriers = np.bincount(fid[outer], minlength=nflows)
        flows = self.flows
        for f in range(nflows):
            r = int(first[f])
            if client_side[f] < 0:
                server_high, why = _server_is_high(int(a_port[f]), int(b_port[f]), int(first_side[f]))
                client_side[f] = 0 if server_high else 1
            else:
                why = oriented[int(how[f])]
            v = int(first_version[f])
            ends = (
                Endpoint(_ip(v, int(a_hi[f]), int(a_lo[f])), int(a_port[f])),
                Endpoint(_ip(v, int(b_hi[f]), int(b_lo[f])), int(b_port[f])),
            )
            cs = int(client_side[f])
            total_p, total_b = int(pk[f]), round(by[f])
            hp, hb = int(pk_hi[f]), round(by_hi[f])
            # Packets sent from the high endpoint travel c2s when the client is the high side.
            c2s_p, c2s_b = (hp, hb) if cs == 1 else (total_p - hp, total_b - hb)
            flows.append(
                Flow(
                    id=base + f,
                    transport=TRANSPORT_NAMES[int(first_proto[f])],
                    client=ends[cs],
                    server=ends[1 - cs],
                    packets=total_p,
                    bytes=total_b,
                    packets_c2s=c2s_p,
                    bytes_c2s=c2s_b,
                    packets_s2c=total_p - c2s_p,
                    bytes_s2c=total_b - c2s_b,
                    first_ns=int(first_ts[f]),
                    last_ns=int(last_ts[f]),
                    first_frame=int(frames[r if isinstance(sel, slice) else int(sel[r])]),
                    carried=int(carriers[f]),
                    oriented_by=why,
                    protocols=["gtp"] if carriers[f] else [],
                )
            )
        self._keys.append(
            {
                "a_hi": a_hi,
                "a_lo": a_lo,
                "b_hi": b_hi,
                "b_lo": b_lo,
                "ports": _ports_word(a_port, b_port, first_proto, first_version),
                "client_high": (client_side == 1).astype(np.uint8),
            }
        )
        direction = (side ^ (client_side[fid] == 1)).astype(np.uint8)
        return fid + base, direction

    def _update(
        self,
        fid: IntArray,
        side: IntArray,
        rows: IntArray,
        n: int,
        wirelen: IntArray,
        ts_ns: IntArray,
    ) -> None:
        """Count rows `rows` (of flows `fid`, sent from the higher endpoint where `side`) into
        their known flows, in place: a Python step per flow touched."""
        ordered = np.sort(fid)
        touched = ordered[np.concatenate((ordered[:1] == ordered[:1], ordered[1:] != ordered[:-1]))]
        del ordered
        slot = np.searchsorted(touched, fid)
        count = len(touched)
        size = wirelen[rows].astype(np.float64)
        pk = np.bincount(slot, minlength=count)
        by = np.bincount(slot, weights=size, minlength=count)
        pk_hi = np.bincount(slot[side], minlength=count)
        by_hi = np.bincount(slot[side], weights=size[side], minlength=count)
        carriers = np.bincount(slot[rows >= n], minlength=count)
        ts = ts_ns[rows]
        first_ts = np.full(count, np.iinfo(np.int64).max, np.int64)
        last_ts = np.full(count, np.iinfo(np.int64).min, np.int64)
        np.minimum.at(first_ts, slot, ts)
        np.maximum.at(last_ts, slot, ts)
        client_high = self._keys.view("client_high")[touched]
        for k, f in enumerate(touched.tolist()):
            flow = self.flows[f]
            total_p, total_b = int(pk[k]), round(by[k])
            hp, hb = int(pk_hi[k]), round(by_hi[k])
            c2s_p, c2s_b = (hp, hb) if client_high[k] else (total_p - hp, total_b - hb)
            flow.packets += total_p
            flow.bytes += total_b
            flow.packets_c2s += c2s_p
            flow.bytes_c2s += c2s_b
            flow.packets_s2c += total_p - c2s_p
            flow.bytes_s2c += total_b - c2s_b
            flow.first_ns = min(flow.first_ns, int(first_ts[k]))
            flow.last_ns = max(flow.last_ns, int(last_ts[k]))
            if carriers[k]:
                if not flow.carried:
                    flow.protocols.append("gtp")
                flow.carried += int(carriers[k])

    def _lookup(self, keys: list[IntArray]) -> IntArray:
        """The known flow of each row's canonical key (KEY_COLUMNS), -1 for a key not seen yet."""
        self._catch_up()
        h = _mix(*keys)
        fid = np.full(len(h), -1, np.int64)
        for hashes, ids in (self._big, self._recent):
            if not len(hashes):
                continue
            at = np.minimum(np.searchsorted(hashes, h), len(hashes) - 1)
            hit = hashes[at] == h
            fid[hit] = ids[at[hit]]
        found = np.flatnonzero(fid >= 0)
        same = np.ones(len(found), bool)
        for name, key in zip(KEY_COLUMNS, keys, strict=True):
            same &= self._keys.view(name)[fid[found]] == key[found]
        wrong = found[~same]
        if len(wrong):  # a hash shared by two keys: the exact table settles it
            fid[wrong] = -1
            if self._collided:
                columns = [key[wrong].tolist() for key in keys]
                for k, full in zip(wrong.tolist(), zip(*columns, strict=True), strict=True):
                    fid[k] = self._collided.get(full, -1)
        return fid

    def _catch_up(self) -> None:
        """Put the flows made since the last lookup into the lookup arrays."""
        start, end = self._indexed, len(self.flows)
        if start == end:
            return
        self._indexed = end
        keys = [self._keys.view(name)[start:end] for name in KEY_COLUMNS]
        h = _mix(*keys)
        order = np.argsort(h, kind="stable")
        h, ids = h[order], order.astype(np.int64) + start
        repeat = np.concatenate((np.zeros(min(1, len(h)), bool), h[1:] == h[:-1]))
        for hashes, _ in (self._big, self._recent):
            if len(hashes):
                at = np.minimum(np.searchsorted(hashes, h), len(hashes) - 1)
                repeat |= hashes[at] == h
        for f in ids[repeat].tolist():  # hash collisions: in practice never
            full = tuple(int(self._keys.view(name)[f]) for name in KEY_COLUMNS)
            self._collided[full] = f
        recent = _merge(self._recent, (h[~repeat], ids[~repeat]))
        if len(recent[0]) > max(RECENT_MIN, len(self._big[0]) // RECENT_SHARE):
            self._big, self._recent = _merge(self._big, recent), (recent[0][:0], recent[1][:0])
        else:
            self._recent = recent


def _ports_word(a_port: IntArray, b_port: IntArray, proto: IntArray, version: IntArray) -> IntArray:
    """Both ports, the transport and the IP version of a canonical key in one word."""
    word = a_port.astype(np.uint64)
    word <<= np.uint64(16)
    word |= b_port
    word |= proto.astype(np.uint64) << np.uint64(32)
    word |= version.astype(np.uint64) << np.uint64(40)
    return word


def _merge(
    a: tuple[npt.NDArray[np.uint64], IntArray], b: tuple[npt.NDArray[np.uint64], IntArray]
) -> tuple[npt.NDArray[np.uint64], IntArray]:
    """Two sorted (hashes, ids) tables as one."""
    hashes = np.concatenate((a[0], b[0]))
    order = np.argsort(hashes, kind="stable")  # a merge of two sorted runs: linear
    return hashes[order], np.concatenate((a[1], b[1]))[order]
