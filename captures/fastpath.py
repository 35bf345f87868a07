"""The vectorised L2-L4 pass: the common packets of a capture, all at once.

Handles Ethernet (up to two VLAN tags), SLL, SLL2, NULL/LOOP and raw IP carrying an unfragmented
IPv4 (any options) or IPv6 (no extension headers) packet with a UDP or TCP header whose lengths
agree with the IP header. It also reads the headers of IP fragments (IPv4, and IPv6 with the
Fragment header first) into `FastPath.fragments`, for the index to hand to reassembly: a capture of
fragments then costs reassembly's work, not a dissection per packet (1M fragments: ~50 s). Everything
else is left to `net.dissect` (see `FastPath.fast`), which is the reference: a test checks both agree
on every public capture and on fragments that take either path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from . import linktypes as lt
from .columns import ByteColumns, Window
from .records import RecordTable

IntArray = npt.NDArray[Any]
Rows = slice | IntArray
"""Selected packets: `slice(None)` when every packet is selected (views instead of gathers and
scatters: 60 ms less on 1M packets), else their indices."""
ALL = slice(None)
WINDOW = 48
"""Bytes of each frame copied once up front: Ethernet + two VLAN tags + IPv4 + UDP/TCP ports
and flags. Fields beyond it (IPv6 addresses, IPv4 options) are read from the file."""


def _rows(mask: npt.NDArray[np.bool_]) -> Rows:
    return ALL if mask.all() else np.flatnonzero(mask)


def _keep(rows: Rows, ok: npt.NDArray[np.bool_]) -> tuple[Rows, Rows]:
    """Narrow `rows` to those where `ok` (a mask over `rows`); also returns the mask as rows of `ok`."""
    if ok.all():
        return rows, ALL
    kept = np.flatnonzero(ok)
    return (kept if isinstance(rows, slice) else rows[kept]), kept


def _count(rows: Rows, n: int) -> int:
    return n if isinstance(rows, slice) else len(rows)


STACK_LINK = {lt.ETHERNET: 0, lt.LINUX_SLL: 1, lt.LINUX_SLL2: 1, lt.NULL: 2, lt.LOOP: 2}
"""Link type -> link code in a fast stack id; raw IP link types get code 3."""
LINK_CODE_NAMES = ("eth", "sll", "null", "raw")


STACK_FRAGMENT = 64
"""Stack code flag of an IP fragment: the names end at the IP layer (the transport header, if any,
is known once the datagram is reassembled)."""


def stack_names(code: int) -> tuple[str, ...]:
    """The protocol names of a fast-path stack code (fragment*64 + link*16 + vlans*4 + l3*2 + is_tcp)."""
    link, vlans, l3, tcp = (code >> 4) & 3, (code >> 2) & 3, (code >> 1) & 1, code & 1
    names = (LINK_CODE_NAMES[link],) + ("vlan",) * vlans + ("ipv6" if l3 else "ip",)
    return names if code & STACK_FRAGMENT else (*names, "tcp" if tcp else "udp")


@dataclass(slots=True)
class Fragments:
    """IP fragments whose headers the pass read, one row each in packet order: what reassembly
    needs (`net.Fragment`). Their packets' `stack_code`, `ip_version` and addresses are filled
    too; `fast` stays False (the transport is not known). A side table, not columns: a capture
    without fragments pays nothing."""

    rows: IntArray
    """Packet of each fragment (ascending)."""
    ident: IntArray
    """IPv4 identification or IPv6 Fragment header identification."""
    proto: IntArray
    """IPv4 protocol or the Fragment header's next header."""
    offset: IntArray
    """Fragment offset in bytes."""
    more: npt.NDArray[np.bool_]
    """More Fragments flag."""
    start: IntArray
    end: IntArray
    """The fragment's payload in the frame: [start, end), `end` cut at the captured length."""

    @staticmethod
    def empty() -> Fragments:
        return Fragments(
            rows=np.zeros(0, np.int64),
            ident=np.zeros(0, np.uint32),
            proto=np.zeros(0, np.uint8),
            offset=np.zeros(0, np.uint32),
            more=np.zeros(0, bool),
            start=np.zeros(0, np.uint32),
            end=np.zeros(0, np.uint32),
        )

    def __len__(self) -> int:
        return len(self.rows)


def _concat_fragments(parts: list[Fragments]) -> Fragments:
    """One table of `parts`, which are emptied as it is built (a column at a time: the peak is the
    table and one column, not two tables)."""
    if len(parts) == 1:
        return parts[0]
    out = Fragments.empty()
    for name in Fragments.__slots__:
        setattr(out, name, np.concatenate([getattr(p, name) for p in parts]))
        for p in parts:
            setattr(p, name, getattr(out, name)[:0])
    return out


@dataclass(slots=True)
class FastPath:
    """Columns for every packet; only rows where `fast` is True are filled, and for the rows of
    `fragments` the stack code, IP version and addresses."""

    fast: npt.NDArray[np.bool_]
    stack_code: IntArray
    l4: IntArray
    ip_version: IntArray
    src_hi: IntArray
    src_lo: IntArray
    dst_hi: IntArray
    dst_lo: IntArray
    sport: IntArray
    dport: IntArray
    payload_off: IntArray
    payload_len: IntArray
    tcp_seq: IntArray
    tcp_flags: IntArray
    fragments: Fragments


COLUMNS = tuple(name for name in FastPath.__slots__ if name != "fragments")
"""The per-packet columns of a FastPath."""

CHUNK = 1 << 18
"""Packets decoded at a time: every work column and the window copy are per chunk, so the peak of
indexing a million packets is the output columns plus a quarter of the temporaries."""


def run(cols: ByteColumns, rec: RecordTable) -> FastPath:
    n = len(rec)
    linktypes = np.array([i.linktype for i in rec.interfaces], dtype=np.int64)
    if n <= CHUNK:
        return _run(cols, rec.data_off, rec.caplen, rec.wirelen, rec.iface, linktypes)
    out = _empty(n)
    frags: list[Fragments] = []
    for a in range(0, n, CHUNK):
        b = min(n, a + CHUNK)
        part = _run(cols, rec.data_off[a:b], rec.caplen[a:b], rec.wirelen[a:b], rec.iface[a:b], linktypes)
        for name in COLUMNS:
            getattr(out, name)[a:b] = getattr(part, name)
        if len(part.fragments):
            part.fragments.rows += a
            frags.append(part.fragments)
    if frags:
        out.fragments = _concat_fragments(frags)
    return out


def _empty(n: int) -> FastPath:
    return FastPath(
        fast=np.zeros(n, bool),
        stack_code=np.zeros(n, np.uint16),
        l4=np.zeros(n, np.uint8),
        ip_version=np.zeros(n, np.uint8),
        src_hi=np.zeros(n, np.uint64),
        src_lo=np.zeros(n, np.uint64),
        dst_hi=np.zeros(n, np.uint64),
        dst_lo=np.zeros(n, np.uint64),
        sport=np.zeros(n, np.uint16),
        dport=np.zeros(n, np.uint16),
        payload_off=np.zeros(n, np.uint32),
        payload_len=np.zeros(n, np.uint32),
        tcp_seq=np.zeros(n, np.uint32),
        tcp_flags=np.zeros(n, np.uint8),
        fragments=Fragments.empty(),
    )


def _run(
    cols: ByteColumns,
    d: IntArray,
    caplen: IntArray,
    wirelen: IntArray,
    iface: IntArray,
    linktypes: IntArray,
) -> FastPath:
    n = len(d)
    cap = caplen.astype(np.int64)
    wire = np.maximum(wirelen.astype(np.int64), cap)
    link = linktypes[iface] if len(linktypes) else np.zeros(n, np.int64)
    # Per-packet work columns are as narrow as their values: at a million packets each int64
    # column is 8 MB, and the peak of this pass is the peak of indexing.
    l3 = np.full(n, -1, np.int32)
    etype = np.zeros(n, np.int32)
    vlans = np.zeros(n, np.int8)
    link_code = np.full(n, 3, np.int8)

    win = Window(cols, d, WINDOW)
    at = win.read

    is_eth = (link == lt.ETHERNET) & (cap >= 14)
    eth = _rows(is_eth)
    if _count(eth, n):
        link_code[eth] = 0
        etype[eth] = at(eth, 12, ">u2")
        l3[eth] = 14
        for _ in range(2):
            tagged = np.flatnonzero(is_eth & np.isin(etype, list(lt.VLAN_TPIDS)) & (cap >= l3 + 4))
            if not len(tagged):
                break
            etype[tagged] = at(tagged, l3 + 2, ">u2")
            l3[tagged] += 4
            vlans[tagged] += 1
    for linktype, hdr, et_off in ((lt.LINUX_SLL, 16, 14), (lt.LINUX_SLL2, 20, 0)):
        sll = np.flatnonzero((link == linktype) & (cap >= hdr))
        if len(sll):
            link_code[sll] = 1
            etype[sll] = at(sll, et_off, ">u2")
            l3[sll] = hdr
    for linktype, order in ((lt.NULL, "<u4"), (lt.LOOP, ">u4")):
        null = np.flatnonzero((link == linktype) & (cap >= 4))
        if len(null):
            link_code[null] = 2
            fam = at(null, 0, order).astype(np.int64)
            if linktype == lt.NULL:
                swapped = fam > 0xFFFF
                fam[swapped] = at(null[swapped], 0, ">u4")
            etype[null] = np.where(
                fam == lt.AF_INET,
                lt.ETHERTYPE_IPV4,
                np.where(np.isin(fam, list(lt.AF_INET6)), lt.ETHERTYPE_IPV6, 0),
            )
            l3[null] = 4
    raw = np.flatnonzero(np.isin(link, [lt.RAW, lt.RAW_OPENBSD, lt.IPV4, lt.IPV6]) & (cap >= 1))
    if len(raw):
        version = at(raw, 0, "u1") >> 4
        etype[raw] = np.where(version == 4, lt.ETHERTYPE_IPV4, np.where(version == 6, lt.ETHERTYPE_IPV6, 0))
        l3[raw] = 0

    fp = _empty(n)
    l4_off = np.zeros(n, np.int32)
    ip_room = np.zeros(n, np.int32)  # bytes of IP payload
    proto = np.zeros(n, np.int16)

    frags: list[Fragments] = []
    v4 = _rows((etype == lt.ETHERTYPE_IPV4) & (l3 >= 0) & (cap >= l3 + 20))
    if _count(v4, n):
        w0 = at(v4, l3, ">u4")  # version/ihl, tos, total length
        w1 = at(v4, l3 + 6, ">u4")  # flags/fragment offset, ttl, protocol
        ihl = ((w0 >> 24) & 0x0F).astype(np.int64) * 4
        total = (w0 & 0xFFFF).astype(np.int64)
        # The checks net._ipv4 makes before it takes a packet for a fragment or a whole datagram;
        # a header that fails one is a finding there.
        sound = (
            ((w0 >> 28) == 4)
            & (ihl >= 20)
            & (total >= ihl)
            & (cap[v4] >= l3[v4] + ihl)
            & (l3[v4] + total <= wire[v4])
        )
        fragmented = ((w1 >> 16) & 0x3FFF) != 0  # More Fragments or an offset
        if fragmented.any():
            frags.append(_ipv4_fragments(at, v4, sound & fragmented, l3, ihl, total, cap, w1, fp))
        v4, ok = _keep(v4, sound & ~fragmented)
        addrs = at(v4, l3 + 12, ">u8")
        fp.src_lo[v4] = addrs >> np.uint64(32)
        fp.dst_lo[v4] = addrs & np.uint64(0xFFFFFFFF)
        fp.ip_version[v4] = 4
        l4_off[v4] = l3[v4] + ihl[ok]
        ip_room[v4] = total[ok] - ihl[ok]
        proto[v4] = w1[ok] & 0xFF
        del w0, w1, ihl, total, addrs, ok
    v6 = _rows((etype == lt.ETHERTYPE_IPV6) & (l3 >= 0) & (cap >= l3 + 40))
    if _count(v6, n):
        w0 = at(v6, l3, ">u8")  # version/class/flow, payload length, next header, hop limit
        plen = ((w0 >> np.uint64(16)) & np.uint64(0xFFFF)).astype(np.int64)
        v6, ok = _keep(v6, ((w0 >> np.uint64(60)) == 6) & (plen > 0) & (l3[v6] + 40 + plen <= wire[v6]))
        fp.src_hi[v6] = at(v6, l3 + 8, ">u8")
        fp.src_lo[v6] = at(v6, l3 + 16, ">u8")
        fp.dst_hi[v6] = at(v6, l3 + 24, ">u8")
        fp.dst_lo[v6] = at(v6, l3 + 32, ">u8")
        fp.ip_version[v6] = 6
        l4_off[v6] = l3[v6] + 40
        ip_room[v6] = plen[ok]
        proto[v6] = (w0[ok] >> np.uint64(8)) & np.uint64(0xFF)
        del w0, plen, ok
        first_header = _rows((proto == IPV6_FRAGMENT) & (fp.ip_version == 6))
        if _count(first_header, n):
            frags.append(_ipv6_fragments(at, first_header, l3, ip_room, cap, fp))

    has_ip = fp.ip_version > 0
    udp = _rows(has_ip & (proto == lt.IPPROTO_UDP) & (cap >= l4_off + 8))
    if _count(udp, n):
        w = at(udp, l4_off, ">u8")
        ulen = ((w >> np.uint64(16)) & np.uint64(0xFFFF)).astype(np.int64)
        ports = (w >> np.uint64(32)).astype(np.uint32)
        tunnel = ((ports >> 16) == lt.GTPU_PORT) | ((ports & 0xFFFF) == lt.GTPU_PORT)  # to net.dissect
        udp, ok = _keep(udp, (ulen >= 8) & (ulen == ip_room[udp]) & ~tunnel)
        w = w[ok]
        fp.sport[udp] = w >> np.uint64(48)
        fp.dport[udp] = (w >> np.uint64(32)) & np.uint64(0xFFFF)
        fp.payload_off[udp] = l4_off[udp] + 8
        fp.payload_len[udp] = ulen[ok] - 8
        fp.l4[udp] = lt.IPPROTO_UDP
        fp.fast[udp] = True
        del w, ulen, ports, tunnel, ok
    tcp = _rows(has_ip & (proto == lt.IPPROTO_TCP) & (cap >= l4_off + 20))
    if _count(tcp, n):
        hlen = ((at(tcp, l4_off + 12, ">u2") >> 12) & 0x0F).astype(np.int64) * 4
        tcp, ok = _keep(tcp, (hlen >= 20) & (hlen <= ip_room[tcp]) & (cap[tcp] >= l4_off[tcp] + hlen))
        hlen = hlen[ok]
        ports = at(tcp, l4_off, ">u4")
        fp.sport[tcp] = ports >> 16
        fp.dport[tcp] = ports & 0xFFFF
        fp.tcp_seq[tcp] = at(tcp, l4_off + 4, ">u4")
        fp.tcp_flags[tcp] = at(tcp, l4_off + 13, "u1")
        fp.payload_off[tcp] = l4_off[tcp] + hlen
        fp.payload_len[tcp] = ip_room[tcp] - hlen
        fp.l4[tcp] = lt.IPPROTO_TCP
        fp.fast[tcp] = True
    del win, at, l3, etype, l4_off, ip_room, proto, cap, wire
    fast = _rows(fp.fast)
    fp.stack_code[fast] = (
        link_code[fast].astype(np.int64) * 16
        + vlans[fast].astype(np.int64) * 4
        + (fp.ip_version[fast] == 6) * 2
        + (fp.l4[fast] == lt.IPPROTO_TCP)
    )
    frags = [f for f in frags if len(f)]
    if frags:
        fr = fp.fragments = _concat_fragments(frags)
        if len(frags) > 1:  # IPv4 then IPv6: back to packet order, as reassembly must see them
            by_packet = np.argsort(fr.rows, kind="stable")
            fr = fp.fragments = Fragments(*(getattr(fr, name)[by_packet] for name in Fragments.__slots__))
        rows = fr.rows
        fp.stack_code[rows] = (
            STACK_FRAGMENT
            + link_code[rows].astype(np.int64) * 16
            + vlans[rows].astype(np.int64) * 4
            + (fp.ip_version[rows] == 6) * 2
        )
    return fp


IPV6_FRAGMENT = 44
"""IPv6 next header value of the Fragment header (RFC 8200 section 4.5)."""


def _ipv4_fragments(
    at: Any,
    v4: Rows,
    chosen: npt.NDArray[np.bool_],
    l3: IntArray,
    ihl: IntArray,
    total: IntArray,
    cap: IntArray,
    w1: IntArray,
    fp: FastPath,
) -> Fragments:
    """The `chosen` rows of `v4` (sound IPv4 headers with More Fragments or an offset), as
    net._ipv4 reads them; their addresses and IP version go to `fp`'s columns."""
    pick = np.flatnonzero(chosen)
    rows = pick if isinstance(v4, slice) else v4[pick]
    if not len(rows):
        return Fragments.empty()
    base = l3[rows].astype(np.int64)
    flags_frag = (w1[pick] >> 16) & 0xFFFF
    addrs = at(rows, l3 + 12, ">u8")
    fp.src_lo[rows] = addrs >> np.uint64(32)
    fp.dst_lo[rows] = addrs & np.uint64(0xFFFFFFFF)
    fp.ip_version[rows] = 4
    return Fragments(
        rows=rows.astype(np.int64),
        ident=at(rows, l3 + 4, ">u2").astype(np.uint32),
        proto=(w1[pick] & 0xFF).astype(np.uint8),
        offset=((flags_frag & 0x1FFF) * 8).astype(np.uint32),
        more=(flags_frag & 0x2000) != 0,
        start=(base + ihl[pick]).astype(np.uint32),
        end=np.minimum(base + total[pick], cap[rows]).astype(np.uint32),
    )


def _ipv6_fragments(
    at: Any, candidates: Rows, l3: IntArray, ip_room: IntArray, cap: IntArray, fp: FastPath
) -> Fragments:
    """IPv6 packets (sound fixed headers, already in `fp`'s columns) whose first extension header
    is a Fragment header, as net._ipv6 reads them. Left to net.dissect: a Fragment header cut
    short or longer than the payload, and atomic fragments (offset 0 without More Fragments:
    the payload is whole and its transport header is read there)."""
    rows = np.arange(len(cap))[candidates] if isinstance(candidates, slice) else candidates
    rows = rows[(cap[rows] >= l3[rows] + 48) & (ip_room[rows] >= 8)]
    if not len(rows):
        return Fragments.empty()
    header = at(rows, l3 + 40, ">u8")  # next header, reserved, offset/M, identification
    offm = (header >> np.uint64(32)) & np.uint64(0xFFFF)  # offset (13 bits), 2 reserved, M
    fragment = (offm & np.uint64(0xFFF9)) != 0
    rows, header, offm = rows[fragment], header[fragment], offm[fragment]
    base = l3[rows].astype(np.int64) + 48
    return Fragments(
        rows=rows.astype(np.int64),
        ident=(header & np.uint64(0xFFFFFFFF)).astype(np.uint32),
        proto=(header >> np.uint64(56)).astype(np.uint8),
        offset=((offm >> np.uint64(3)) * np.uint64(8)).astype(np.uint32),
        more=(offm & np.uint64(1)) != 0,
        start=base.astype(np.uint32),
        end=np.minimum(base - 8 + ip_room[rows], cap[rows]).astype(np.uint32),
    )
