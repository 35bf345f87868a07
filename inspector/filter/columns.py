"""What the index columns answer for a whole capture at once (`_Context`): fields as numpy
columns, tshark's stream numbers, relative TCP sequence numbers, and header bytes gathered from the
frames; one context per session, made again when the index grows."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from protoscope.captures import linktypes as lt

from ..fields import TCP_FLAG_ALIASES, TCP_FLAG_FIELDS
from .grpc_paths import _GrpcPaths
from .literals import Compare
from .syntax import Range

if TYPE_CHECKING:
    from ..session import Session

Bools = npt.NDArray[np.bool_]


@dataclass(slots=True)
class _Columns:
    """A field over all packets: (values, present) parts (two for ip.addr and tcp.port), or
    per-part address texts by flow; `known` marks the packets the columns speak for."""

    parts: list[tuple[npt.NDArray[Any], Bools]]
    known: Bools
    addresses: list[tuple[tuple[npt.NDArray[np.int32], list[str]], Bools]] | None = None
    gathered: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]] | None = None
    """Byte strings from the frames: (packets, one row of bytes each) per part; `parts` then
    holds each part's presence."""


class _Context:
    """What filtering a session needs beyond one packet: stream numbers as tshark's, relative
    sequence bases, times, columns by field name, and the gRPC paths seen so far."""

    def __init__(self, session: Session) -> None:
        # Not the session itself: this context is the value of a WeakKeyDictionary keyed by it.
        self.registry = session.registry
        ix = session.index
        self.ix = ix
        self.n = len(ix)
        rec = ix.records
        self.first_ns = int(rec.ts_ns[0]) if self.n else 0
        self._columns: dict[str, _Columns | None] = {}
        self._stream: dict[str, npt.NDArray[np.int64]] = {}
        self._bases: npt.NDArray[np.int64] | None = None
        self._net: npt.NDArray[np.int64] | None = None
        self.grpc = _GrpcPaths()
        stacks = ix.stacks
        self._stack_has: dict[str, Bools] = {}
        self._simple = np.array(
            ["gtp" not in names and sum(1 for nm in names if nm in ("ip", "ipv6")) <= 1 for names in stacks],
            np.bool_,
        )

    # -- per-flow facts ---------------------------------------------------------------------------

    def stream_of_flow(self, transport: str) -> npt.NDArray[np.int64]:
        """Flow id -> tshark's tcp.stream (or udp.stream): conversations of one transport, numbered
        from 0 in order of their first packet."""
        got = self._stream.get(transport)
        if got is None:
            flows = self.ix.flows
            got = np.full(len(flows) + 1, -1, np.int64)
            ordered = sorted((f.first_frame, f.id) for f in flows if f.transport == transport)
            for number, (_, fid) in enumerate(ordered):
                got[fid] = number
            self._stream[transport] = got
        return got

    def tcp_bases(self) -> npt.NDArray[np.int64]:
        """(flow, direction) -> the sequence number tshark's relative numbers count from: the
        SYN's, or one before the first seen, or one before the first acknowledgment of it the
        other side sent when that came first."""
        if self._bases is not None:
            return self._bases
        ix = self.ix
        nflows = len(ix.flows)
        bases = np.full((nflows + 1, 2), -1, np.int64)
        tcp = np.flatnonzero((ix.flow >= 0) & (ix.l4 == 6))
        if len(tcp):
            key = ix.flow[tcp].astype(np.int64) * 2 + ix.direction[tcp]
            _, first = np.unique(key, return_index=True)
            firsts = tcp[first]
            seen: dict[tuple[int, int], int] = {}
            for i in firsts.tolist():
                seen[(int(ix.flow[i]), int(ix.direction[i]))] = i
            for (fid, d), i in seen.items():
                seq = int(ix.tcp_seq[i])
                base = seq if int(ix.tcp_flags[i]) & 0x02 else (seq - 1) & 0xFFFFFFFF
                other = seen.get((fid, 1 - d))
                if other is not None and other < i and int(ix.tcp_flags[other]) & 0x10:
                    ack = ix.dissect(other).tcp_ack
                    base = (ack - 1) & 0xFFFFFFFF
                bases[fid, d] = base
        self._bases = bases
        return bases

    def stack_has(self, name: str) -> Bools:
        got = self._stack_has.get(name)
        if got is None:
            table = np.array([name in names for names in self.ix.stacks] or [False], np.bool_)
            got = self._stack_has[name] = table[self.ix.stack] if self.n else np.zeros(0, np.bool_)
        return got

    def address_match(self, addresses: tuple[npt.NDArray[np.int32], list[str]], check: Compare) -> Bools:
        """`check` of each packet's address, evaluated once per distinct address text."""
        codes, texts = addresses
        table = np.array([check(t) for t in texts] or [False], np.bool_)
        return table[codes]

    # -- columns by field name --------------------------------------------------------------------

    def column(self, name: str) -> _Columns | None:
        name = TCP_FLAG_ALIASES.get(name, name)
        if name not in self._columns:
            self._columns[name] = self._make_column(name)
        return self._columns[name]

    def _make_column(self, name: str) -> _Columns | None:
        ix = self.ix
        n = self.n
        rec = ix.records
        everywhere = np.ones(n, np.bool_)
        if name == "frame":
            return _Columns([(everywhere, everywhere)], everywhere)
        if name == "frame.number":
            return _Columns([(np.arange(1, n + 1, dtype=np.int64), everywhere)], everywhere)
        if name == "frame.len":
            return _Columns([(rec.wirelen, everywhere)], everywhere)
        if name == "frame.cap_len":
            return _Columns([(rec.caplen, everywhere)], everywhere)
        if name == "frame.time_epoch":
            return _Columns([(rec.ts_ns / 1e9, everywhere)], everywhere)
        if name == "frame.time_relative":
            return _Columns([((rec.ts_ns - self.first_ns) / 1e9, everywhere)], everywhere)
        if name == "frame.time_delta":
            delta = np.zeros(n, np.float64)
            if n > 1:
                delta[1:] = np.diff(rec.ts_ns) / 1e9
            return _Columns([(delta, everywhere)], everywhere)
        if name in ("eth", "vlan", "sll", "null", "raw", "gtp", "ip", "ipv6", "udp", "tcp"):
            has = self.stack_has(name)
            return _Columns([(has, has)], everywhere)
        gathered = self._header_column(name)
        if gathered is not None:
            return gathered
        if name == "eth.type":
            eth = self._starts_with_eth() & (rec.caplen >= 14)
            packets = np.flatnonzero(eth)
            buffer = np.frombuffer(ix.capture.buffer, np.uint8)
            at = rec.data_off[packets].astype(np.int64) + 12
            etype = np.zeros(n, np.int64)
            etype[packets] = buffer[at].astype(np.int64) << 8 | buffer[at + 1]
            return _Columns([(etype, eth)], self._known_link(name))
        in_flow = ix.flow >= 0
        simple = self._simple[ix.stack] if n else np.zeros(0, np.bool_)
        tcp = in_flow & (ix.l4 == 6)
        udp = in_flow & (ix.l4 == 17)
        # Packets with a transport header outside any flow, or tunnelled ones (two IP headers),
        # are left to the per-packet path.
        flowless = ~in_flow & (self.stack_has("tcp") | self.stack_has("udp"))
        known_l4 = simple & ~flowless
        if name in ("tcp.stream", "udp.stream"):
            proto = name.split(".")[0]
            stream = self.stream_of_flow(proto)[ix.flow]
            present = tcp if proto == "tcp" else udp
            return _Columns([(stream, present)], known_l4)
        if name in ("tcp.srcport", "tcp.dstport", "tcp.port", "udp.srcport", "udp.dstport", "udp.port"):
            proto, what = name.split(".")
            present = tcp if proto == "tcp" else udp
            src, dst = self._ports()
            parts = {"srcport": [src], "dstport": [dst], "port": [src, dst]}[what]
            return _Columns([(p, present) for p in parts], known_l4)
        if name == "tcp.len":
            return _Columns([(ix.payload_len, tcp)], known_l4)
        if name == "udp.length":  # payload_len is the length the UDP header declares, less its 8 bytes
            return _Columns([(ix.payload_len.astype(np.int64) + 8, udp)], known_l4)
        if name == "ip.proto":
            return _Columns(
                [(ix.l4, in_flow & self.stack_has("ip"))], simple & (in_flow | ~self.stack_has("ip"))
            )
        if name == "tcp.flags":
            return _Columns([(ix.tcp_flags, tcp)], known_l4)
        if name in TCP_FLAG_FIELDS:
            bit = TCP_FLAG_FIELDS[name]
            if bit > 0xFF:
                return None
            return _Columns([((ix.tcp_flags & bit) != 0, tcp)], known_l4)
        if name == "tcp.seq_raw":
            return _Columns([(ix.tcp_seq, tcp)], known_l4)
        if name == "tcp.seq":
            bases = self.tcp_bases()
            base = bases[ix.flow, ix.direction]
            rel = (ix.tcp_seq.astype(np.int64) - base) & 0xFFFFFFFF
            return _Columns([(rel, tcp)], known_l4)
        if name in ("ip.src", "ip.dst", "ip.addr", "ipv6.src", "ipv6.dst", "ipv6.addr"):
            proto, what = name.split(".")
            present = in_flow & self.stack_has(proto)
            # a packet with the IP layer but no flow (ICMP, a fragment) is read per packet
            known = simple & (in_flow | ~self.stack_has(proto))
            src_addr, dst_addr = self._addresses()
            sides = {"src": [src_addr], "dst": [dst_addr], "addr": [src_addr, dst_addr]}[what]
            return _Columns([], known, [(side, present) for side in sides])
        return None

    def byte_column(self, name: str, ranges: tuple[Range, ...]) -> _Columns | None:
        """Frame bytes as rows, gathered with numpy from the capture's buffer: `frame` sliced, and
        eth.src/dst/addr (sliced or whole) of Ethernet frames. None for other fields or for
        several ranges (the per-packet path reads those)."""
        fixed = {"eth.dst": [0], "eth.src": [6], "eth.addr": [6, 0], "frame": [0]}.get(name)
        if fixed is None or len(ranges) > 1 or (name == "frame" and not ranges):
            return None
        rec = self.ix.records
        caplen = rec.caplen.astype(np.int64)
        if name == "frame":
            size = caplen
            present = np.ones(self.n, np.bool_)
        else:
            size = np.full(self.n, 6, np.int64)
            present = self._starts_with_eth() & (caplen >= 14)
        start_of, length = self._range(ranges[0] if ranges else (0, 6, ":"), size)
        if start_of is None:
            return None
        inside = present & (start_of >= 0) & (start_of + length <= size)
        packets = np.flatnonzero(inside)
        buffer = np.frombuffer(self.ix.capture.buffer, np.uint8)
        steps = np.arange(length, dtype=np.int64)
        gathered = []
        parts = []
        for offset in fixed:
            first = rec.data_off[packets].astype(np.int64) + offset + start_of[packets]
            gathered.append((packets, buffer[first[:, None] + steps]))
            parts.append((inside, inside))
        return _Columns(parts, self._known_link(name), gathered=gathered)

    def _network_offset(self) -> npt.NDArray[np.int64]:
        """Where each frame's (only) IP header starts, -1 where the columns cannot say: from the
        link type and the VLAN tags the stack names; not for tunnels, nor for packets whose
        transport header came from IP reassembly (it is not in their frame)."""
        if self._net is None:
            rec = self.ix.records
            link = {lt.ETHERNET: 14, lt.LINUX_SLL: 16, lt.LINUX_SLL2: 20, lt.NULL: 4, lt.LOOP: 4}
            link |= {lt.RAW: 0, lt.RAW_OPENBSD: 0, lt.IPV4: 0, lt.IPV6: 0}
            by_iface = np.array([link.get(i.linktype, -1) for i in rec.interfaces] or [-1], np.int64)
            vlans = np.array([names.count("vlan") for names in self.ix.stacks] or [0], np.int64)
            offset = by_iface[rec.iface] + 4 * vlans[self.ix.stack]
            offset[~self._simple[self.ix.stack]] = -1
            if self.ix.reassembled:
                offset[np.fromiter(self.ix.reassembled, np.int64, len(self.ix.reassembled))] = -1
            self._net = offset
        return self._net

    def _gather(self, at: npt.NDArray[np.int64], width: int, where: Bools) -> npt.NDArray[np.int64]:
        """Big-endian unsigned integers of `width` bytes at frame offset `at`, where `where`."""
        rec = self.ix.records
        buffer = np.frombuffer(self.ix.capture.buffer, np.uint8)
        packets = np.flatnonzero(where)
        first = rec.data_off[packets].astype(np.int64) + at[packets]
        out = np.zeros(self.n, np.int64)
        value = np.zeros(len(packets), np.int64)
        for k in range(width):
            value = value << 8 | buffer[first + k]
        out[packets] = value
        return out

    def _header_column(self, name: str) -> _Columns | None:
        """IPv4, IPv6, TCP and UDP header fields read from the frames where `_network_offset`
        knows the IP header (the rest of the packets are left to the per-packet path)."""
        ix = self.ix
        caplen = ix.records.caplen.astype(np.int64)
        net = self._network_offset()
        known = (net >= 0) | ~(self.stack_has("ip") | self.stack_has("ipv6"))
        if name in _IPV4_HEADER:
            at, width, shift, mask = _IPV4_HEADER[name]
            present = (net >= 0) & self.stack_has("ip") & (caplen >= net + 20)
            value = (self._gather(net + at, width, present) >> shift) & mask
            if name == "ip.hdr_len":
                value = value * 4
            return _Columns(
                [(value.astype(np.bool_) if name.startswith("ip.flags") else value, present)], known
            )
        if name in _IPV6_HEADER:
            at, width = _IPV6_HEADER[name]
            present = (net >= 0) & self.stack_has("ipv6") & (caplen >= net + 40)
            return _Columns([(self._gather(net + at, width, present), present)], known)
        if name not in _TCP_HEADER and name not in ("udp.checksum", "tcp.ack"):
            return None
        ipv4 = (net >= 0) & self.stack_has("ip") & (caplen >= net + 20)
        ihl = (self._gather(net, 1, ipv4) & 0x0F) * 4
        # IPv6: only when the TCP or UDP header follows the fixed header (no extension headers)
        ipv6 = (net >= 0) & self.stack_has("ipv6") & (caplen >= net + 40)
        nxt = self._gather(net + 6, 1, ipv6)
        proto = 17 if name == "udp.checksum" else 6
        l4 = (ix.flow >= 0) & (ix.l4 == proto)
        start = np.where(ipv4, net + ihl, net + 40)
        where = l4 & (ipv4 | (ipv6 & (nxt == proto))) & (caplen >= start + (8 if proto == 17 else 20))
        known = known & (where | ~l4)
        if name == "udp.checksum":
            return _Columns([(self._gather(start + 6, 2, where), where)], known)
        if name == "tcp.ack":
            raw = self._gather(start + 8, 4, where)
            bases = self.tcp_bases()[ix.flow, 1 - ix.direction.astype(np.int64)]
            rel = np.where(bases < 0, (raw != 0).astype(np.int64), (raw - bases) & 0xFFFFFFFF)
            return _Columns([(np.where(raw == 0, 0, rel), where)], known)
        at, width, shift, mask = _TCP_HEADER[name]
        value = (self._gather(start + at, width, where) >> shift) & mask
        return _Columns([(value * 4 if name == "tcp.hdr_len" else value, where)], known)

    @staticmethod
    def _range(one: Range, size: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64] | None, int]:
        start, second, form = one
        begin = start or 0
        starts = size + begin if begin < 0 else np.full(len(size), begin, np.int64)
        if form == "-":
            assert second is not None
            if (begin < 0) != (second < 0):
                return None, 0
            return starts, second - begin + 1
        if second is None:
            return None, 0  # to the end: a length per packet
        return starts, second

    def _starts_with_eth(self) -> Bools:
        table = np.array([bool(names) and names[0] == "eth" for names in self.ix.stacks] or [False], np.bool_)
        return table[self.ix.stack] if self.n else np.zeros(0, np.bool_)

    def _known_link(self, name: str) -> Bools:
        """Ethernet fields are known from the frame when Ethernet is the link layer (a tunnel's
        inner Ethernet header is not gathered: those packets are read per packet)."""
        if name == "frame":
            return np.ones(self.n, np.bool_)
        eth_twice = np.array([names.count("eth") > 1 for names in self.ix.stacks] or [False], np.bool_)
        return ~eth_twice[self.ix.stack] if self.n else np.zeros(0, np.bool_)

    def _ports(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        ix = self.ix
        client = np.array([f.client.port for f in ix.flows] + [0], np.int64)
        server = np.array([f.server.port for f in ix.flows] + [0], np.int64)
        flow = ix.flow
        forward = ix.direction == 0
        return np.where(forward, client[flow], server[flow]), np.where(forward, server[flow], client[flow])

    def _addresses(
        self,
    ) -> tuple[tuple[npt.NDArray[np.int32], list[str]], tuple[npt.NDArray[np.int32], list[str]]]:
        ix = self.ix
        texts: dict[str, int] = {}
        client = np.array([texts.setdefault(f.client.ip, len(texts)) for f in ix.flows] + [0], np.int32)
        server = np.array([texts.setdefault(f.server.ip, len(texts)) for f in ix.flows] + [0], np.int32)
        names = list(texts) or [""]
        flow = ix.flow
        forward = ix.direction == 0
        src = np.where(forward, client[flow], server[flow]).astype(np.int32)
        dst = np.where(forward, server[flow], client[flow]).astype(np.int32)
        return (src, names), (dst, names)


_IPV4_HEADER = {
    "ip.version": (0, 1, 4, 0x0F),
    "ip.hdr_len": (0, 1, 0, 0x0F),
    "ip.dsfield": (1, 1, 0, 0xFF),
    "ip.len": (2, 2, 0, 0xFFFF),
    "ip.id": (4, 2, 0, 0xFFFF),
    "ip.flags.df": (6, 2, 14, 1),
    "ip.flags.mf": (6, 2, 13, 1),
    "ip.ttl": (8, 1, 0, 0xFF),
}
"""IPv4 header fields (RFC 791): (offset, bytes, shift, mask)."""
_IPV6_HEADER = {"ipv6.plen": (4, 2), "ipv6.nxt": (6, 1), "ipv6.hlim": (7, 1)}
"""IPv6 fixed header fields (RFC 8200): (offset, bytes)."""
_TCP_HEADER = {
    "tcp.ack_raw": (8, 4, 0, 0xFFFFFFFF),
    "tcp.hdr_len": (12, 1, 4, 0x0F),
    "tcp.window_size_value": (14, 2, 0, 0xFFFF),
}
"""TCP header fields (RFC 9293): (offset, bytes, shift, mask)."""

_CONTEXTS: weakref.WeakKeyDictionary[Session, _Context] = weakref.WeakKeyDictionary()


def _context(session: Session) -> _Context:
    ctx = _CONTEXTS.get(session)
    if ctx is None or ctx.n != len(session.index):
        ctx = _CONTEXTS[session] = _Context(session)
    return ctx


def stream_of_flow(session: Session, flow: int) -> int:
    """tshark's tcp.stream (or udp.stream) of our flow `flow`."""
    transport = session.flows[flow].transport
    return int(_context(session).stream_of_flow(transport)[flow])


def flow_of_stream(session: Session, transport: str, number: int) -> int | None:
    """Our flow id of tshark's `tcp.stream == number` (or udp.stream), if there is one."""
    flows = np.flatnonzero(_context(session).stream_of_flow(transport) == number)
    return int(flows[0]) if len(flows) else None


def tcp_bases(session: Session) -> npt.NDArray[np.int64]:
    """Each TCP flow's initial sequence number per direction ([flow, direction]): what tcp.seq and
    tcp.ack are relative to, here and in the Info column, so both agree."""
    return _context(session).tcp_bases()
