"""IP fragments in the vectorised pass: every fragment header `net.dissect` would have read is read
in bulk, and the index gives the same answer as the reference dissector (and as tshark) whichever
path each fragment of a datagram took.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from scapy.contrib.gtp import GTP_U_Header
from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, fragment6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Packet, Raw

from protoscope.captures import fastpath, fragments, index
from protoscope.captures.columns import ByteColumns
from protoscope.captures.index import load
from protoscope.captures.net import Dissection, Fragment, dissect, transport
from protoscope.captures.source import open_capture
from tests.conftest import tshark

PAYLOAD = bytes(random.Random(7).randrange(256) for _ in range(3000))
MAC = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
T0 = 1_700_000_000
ETHERNET, RAW, LINUX_SLL = 1, 101, 113


def pcap(path: Path, frames: list[bytes | tuple[bytes, int]], linktype: int = ETHERNET) -> Path:
    """A microsecond pcap of `frames`, each its bytes or (captured bytes, wire length)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)]
    for n, frame in enumerate(frames):
        data, wire = frame if isinstance(frame, tuple) else (frame, len(frame))
        out.append(struct.pack("<IIII", T0, n * 1000, len(data), wire) + data)
    path.write_bytes(b"".join(out))
    return path


def v4_datagram(ident: int, l4: Packet, size: int = 1000) -> list[IP]:
    return list(fragment(IP(src="10.0.0.1", dst="10.0.0.2", id=ident) / l4 / Raw(PAYLOAD), size))


def v6_datagram(ident: int, l4: Packet, size: int = 1280) -> list[IPv6]:
    return list(
        fragment6(IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrFragment(id=ident) / l4 / Raw(PAYLOAD), size)
    )


SLOW_IN_MIXED = 7
"""Frames of `mixed_frames` that only net.dissect reads (those marked "slow path" there)."""


def mixed_frames() -> list[bytes | tuple[bytes, int]]:
    """Ethernet frames whose fragments take either path, datagrams split across both."""
    eth = Ether(**MAC)
    udp4 = v4_datagram(1, UDP(sport=5000, dport=3478))
    tcp4 = v4_datagram(2, TCP(sport=40000, dport=443, flags="PA", seq=7))
    tagged = v4_datagram(3, UDP(sport=5002, dport=3478))
    deep = v4_datagram(4, UDP(sport=5003, dport=3478))
    cut = v4_datagram(5, UDP(sport=5004, dport=3478))
    opts = [IP(bytes(f)) for f in v4_datagram(6, UDP(sport=5005, dport=3478))]
    for f in opts:  # a Router Alert option: a 24-byte header
        f.options = [b"\x94\x04\x00\x00"]
        del f.ihl, f.len, f.chksum
    udp6 = v6_datagram(7, UDP(sport=5006, dport=3478))
    tcp6 = v6_datagram(8, TCP(sport=40001, dport=443, flags="A", seq=9))
    hbh = v6_datagram(9, UDP(sport=5007, dport=3478))
    hbh[1] = IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrHopByHop() / hbh[1][IPv6ExtHdrFragment]
    gtp = v4_datagram(10, UDP(sport=5008, dport=3478))
    outer = IP(src="10.9.0.1", dst="10.9.0.2", id=98) / UDP(sport=2152, dport=2152) / GTP_U_Header(teid=1)
    hole = IP(src="10.0.0.1", dst="10.0.0.2", id=11, proto=17, flags="MF") / Raw(b"\x13\x88\x0d")
    hole_end = IP(src="10.0.0.1", dst="10.0.0.2", id=11, proto=17, frag=1) / Raw(b"\x96")
    tiny = IP(src="10.0.0.1", dst="10.0.0.2", id=16, proto=6, flags="MF") / Raw(bytes(TCP(sport=1))[:8])
    tiny_end = IP(src="10.0.0.1", dst="10.0.0.2", id=16, proto=6, frag=1)
    frames: list[bytes | tuple[bytes, int]] = [
        *(bytes(eth / f) for f in (udp4[3], udp4[0], udp4[2], udp4[0], udp4[1])),
        *(bytes(eth / f) for f in reversed(tcp4)),
        *(bytes(eth / Dot1Q(vlan=5) / f) for f in tagged[:2]),
        *(bytes(eth / Dot1Q(vlan=5) / Dot1Q(vlan=6) / f) for f in tagged[2:]),
        *(bytes(eth / Dot1Q() / Dot1Q() / Dot1Q() / f) for f in deep[:1]),  # three tags: slow path
        *(bytes(eth / f) for f in deep[1:]),
        *(bytes(eth / f) for f in opts),
        *(bytes(eth / f) for f in reversed(udp6)),
        *(bytes(eth / f) for f in tcp6),
        *(bytes(eth / f) for f in hbh),  # the second after a hop-by-hop header: slow path
        bytes(eth / outer / gtp[0]),  # inside a GTP-U tunnel: slow path
        *(bytes(eth / f) for f in gtp[1:]),
        bytes(eth / hole),  # 3 bytes with More Fragments: bytes 0-7 never all arrive
        bytes(eth / hole_end),
        bytes(eth / tiny),
        bytes(eth / tiny_end),  # an 8-byte datagram: a TCP header cut short
    ]
    for f in cut:  # captured 100 bytes short of the wire
        data = bytes(eth / f)
        frames.append((data[: max(34, len(data) - 100)], len(data)))
    lying = bytes(eth / IP(src="10.0.0.1", dst="10.0.0.2", id=12, proto=17, flags="MF") / Raw(bytes(16)))
    frames.append(lying[:16] + b"\x01\x00" + lying[18:])  # ip.len past the frame: slow path
    v6 = bytes(eth / IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrFragment(id=13, m=1) / Raw(b"abc"))
    frames.append(v6[:18] + b"\x00\x06" + v6[20:])  # a payload too short for the header: slow path
    atomic = IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrFragment(id=14) / UDP(sport=1, dport=2)
    frames.append(bytes(eth / atomic))  # offset 0 without More Fragments: whole, slow path
    reserved = IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrFragment(id=15, res2=3) / UDP(sport=3, dport=4)
    frames.append(bytes(eth / reserved))  # atomic too (the reserved bits are no offset): slow path
    frames.append((b"", 60))  # no bytes captured: eth.truncated, found in bulk
    frames.append(bytes(eth / IP(src="10.0.0.3", dst="10.0.0.4", id=99) / UDP(sport=7, dport=9) / Raw(b"x")))
    return frames


def raw_frames() -> list[bytes | tuple[bytes, int]]:
    return [bytes(f) for f in v4_datagram(20, UDP(sport=6000, dport=3478)) + v6_datagram(21, UDP())]


def sll_frames() -> list[bytes | tuple[bytes, int]]:
    head = struct.pack(">HHH8sH", 0, 1, 6, bytes(8), 0x0800)
    return [head + bytes(f) for f in v4_datagram(22, UDP(sport=6001, dport=3478))]


CAPTURES = {"mixed": (mixed_frames, ETHERNET), "raw": (raw_frames, RAW), "sll": (sll_frames, LINUX_SLL)}


def write(tmp_path: Path, name: str) -> Path:
    make, linktype = CAPTURES[name]
    return pcap(tmp_path / f"{name}.pcap", make(), linktype)


def reference(path: Path) -> tuple[list[tuple[str, ...]], dict[int, bytes], list[tuple[int, str, str]]]:
    """What the index said before the fast path read fragments: every packet it does not decode
    whole through net.dissect, in order, and its fragments through one Reassembler. Returns each
    packet's protocol names, the payloads rebuilt, and the findings (packet, code, message)."""
    cf = open_capture(path)
    rec = cf.records
    linktype = rec.interfaces[0].linktype
    names: list[tuple[str, ...]] = []
    rebuilt: dict[int, bytes] = {}
    found = [(i, f.code, f.message) for i, f in rec.findings]
    frags = fragments.Reassembler()
    for i in range(len(rec)):
        start = int(rec.data_off[i])
        data = bytes(cf.buffer[start : start + int(rec.caplen[i])])
        d = dissect(linktype, data, int(rec.wirelen[i]))
        found += [(i, f.code, f.message) for f in d.findings]
        stack = d.protocols
        if d.fragment is not None:
            whole = frags.add(i, d.fragment, data)
            if whole is not None:
                inner = dissect_transport(d.ip_proto, whole)
                found += [(i, f.code, f.message) for f in inner.findings]
                stack += inner.protocols
                if inner.l4:
                    rebuilt[i] = whole[inner.payload_off : inner.payload_off + inner.payload_len]
        names.append(stack)
    frags.close()
    found += [(i, f.code, f.message) for i, f in frags.findings]
    cf.close()
    return names, rebuilt, sorted(found, key=lambda f: f[0])


def dissect_transport(proto: int, whole: bytes) -> Dissection:
    d = Dissection()
    transport(proto, whole, 0, len(whole), d)
    return d


@pytest.mark.parametrize("name", CAPTURES)
def test_the_index_gives_the_reference_answer_whichever_path_a_fragment_took(
    tmp_path: Path, name: str
) -> None:
    path = write(tmp_path, name)
    names, rebuilt, found = reference(path)
    ix = load(path)
    try:
        assert [ix.stacks[int(s)] for s in ix.stack] == names
        assert {i: ix.payload(i) for i in ix.reassembled} == rebuilt
        assert [(i, f.code, f.message) for i, f in ix.findings] == found
        assert [bool(ix.l4[i]) for i in range(len(ix))] == [n[-1:] in (("udp",), ("tcp",)) for n in names]
    finally:
        ix.close()


def test_fragments_are_read_in_bulk_and_only_odd_ones_are_dissected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Work counted: net.dissect runs once for each packet the fast path cannot read, never for
    a fragment it can; reassembly gets every fragment once."""
    dissected: list[int] = []
    added: list[int] = []
    real_dissect, real_add = index.dissect, fragments.Reassembler.add

    def counting_dissect(
        linktype: int, data: bytes, wirelen: int | None = None, detail: bool = True
    ) -> Dissection:
        dissected.append(len(data))
        return real_dissect(linktype, data, wirelen, detail)

    def counting_add(self: fragments.Reassembler, frame: int, frag: Fragment, data: bytes) -> bytes | None:
        added.append(frame)
        return real_add(self, frame, frag, data)

    monkeypatch.setattr(index, "dissect", counting_dissect)
    monkeypatch.setattr(fragments.Reassembler, "add", counting_add)
    ix = load(write(tmp_path, "mixed"))
    ix.close()
    assert len(dissected) == SLOW_IN_MIXED
    assert added == sorted(added)  # in the capture's order, whichever path read them
    # Every frame but the last four (two atomic fragments, the empty record, a UDP packet), once.
    assert added == list(range(len(mixed_frames()) - 4))
    for name in ("raw", "sll"):
        dissected.clear()
        load(write(tmp_path, name)).close()
        assert dissected == []


@pytest.mark.parametrize("name", CAPTURES)
def test_the_fast_paths_fragment_table_is_what_net_dissect_reads(tmp_path: Path, name: str) -> None:
    cf = open_capture(write(tmp_path, name))
    rec = cf.records
    fp = fastpath.run(ByteColumns(cf.buffer), rec)
    fr = fp.fragments
    assert len(fr)
    for k, i in enumerate(fr.rows.tolist()):
        start = int(rec.data_off[i])
        d = dissect(rec.interfaces[0].linktype, bytes(cf.buffer[start : start + int(rec.caplen[i])]))
        assert not fp.fast[i]
        assert fastpath.stack_names(int(fp.stack_code[i])) == d.protocols, f"packet {i + 1}"
        key = (
            int(fp.ip_version[i]),
            int(fp.src_hi[i]),
            int(fp.src_lo[i]),
            int(fp.dst_hi[i]),
            int(fp.dst_lo[i]),
        )
        mine = Fragment(
            (*key, int(fr.ident[k]), int(fr.proto[k])),
            int(fr.offset[k]),
            bool(fr.more[k]),
            int(fr.start[k]),
            int(fr.end[k]),
        )
        assert mine == d.fragment, f"packet {i + 1}"
    cf.close()


CLEAN_DATAGRAMS = {1, 2, 3, 6, 7, 8, 9, 10}
"""Datagrams of `mixed_frames` compared with tshark. Not: 4 (tshark's reassembly key has the VLAN
ID in it, ours does not), 5 (captured short: tshark dissects what its first fragment holds),
11 and 16 (holes, and a datagram too short for its transport header), and packets that are not
fragments."""


def test_datagrams_are_rebuilt_in_the_packets_tshark_rebuilds_them_in(tmp_path: Path) -> None:
    path = write(tmp_path, "mixed")
    theirs = []
    fields = ("frame.number", "ip.id", "ipv6.fraghdr.ident", "ip.fragment.count", "ipv6.fragment.count")
    out = tshark("-r", str(path), "-T", "fields", *(f for name in fields for f in ("-e", name)))
    for line in out.splitlines():
        frame, ip_id, v6_id, v4_count, v6_count = (line.split("\t") + [""] * 5)[:5]
        ident = ip_id.split(",")[-1] or v6_id  # the inner header of a tunnelled packet
        if (v4_count or v6_count) and int(ident, 16) in CLEAN_DATAGRAMS:
            theirs.append(int(frame) - 1)
    ix = load(path)
    try:
        ours = []
        for i in sorted(ix.reassembled):
            fragment = ix.dissect(i).fragment
            if fragment is not None and fragment.key[5] in CLEAN_DATAGRAMS:
                ours.append(i)
        assert ours == theirs
        assert [ix.payload(i)[-len(PAYLOAD) :] for i in ours] == [PAYLOAD] * len(ours)
    finally:
        ix.close()


# -- findings bounded per code -------------------------------------------------------------------


def test_a_finding_on_every_packet_is_given_a_hundred_times_then_counted(tmp_path: Path) -> None:
    """Records of 0 captured bytes that say 60 were on the wire: an eth.truncated each."""
    udp = bytes(Ether(**MAC) / IP(src="10.0.0.3", dst="10.0.0.4") / UDP(sport=7, dport=9) / Raw(b"x"))
    crafted = index.FINDINGS_PER_CODE + 150
    path = pcap(tmp_path / "empty.pcap", [(b"", 60)] * crafted + [udp])
    ix = load(path)
    try:
        codes = [(i, f.code) for i, f in ix.findings]
        assert codes == [(i, "eth.truncated") for i in range(index.FINDINGS_PER_CODE)] + [
            (crafted - 1, "eth.truncated")
        ]
        last = ix.findings[-1][1]
        assert last.severity == "warn"
        assert last.message.startswith("150 more eth.truncated findings")
        assert f"(FINDINGS_PER_CODE = {index.FINDINGS_PER_CODE})" in last.message
        assert last.message.endswith("eth header cut short: 0 of 14 bytes captured")
        assert [(str(f.client), str(f.server)) for f in ix.flows] == [("10.0.0.3:7", "10.0.0.4:9")]
    finally:
        ix.close()


@pytest.mark.parametrize("crafted", [2, 3])
def test_findings_up_to_the_limit_are_all_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crafted: int
) -> None:
    monkeypatch.setattr(index, "FINDINGS_PER_CODE", 2)
    frames: list[bytes | tuple[bytes, int]] = [(b"\x02" * 10, 60)] * crafted
    frames += [bytes(Ether(**MAC) / IPv6(plen=9))[:40]] * 3  # ipv6.truncated: a code of its own
    ix = load(pcap(tmp_path / "short.pcap", frames))
    try:
        codes = [(i, f.code) for i, f in ix.findings]
        summary = [(crafted - 1, "eth.truncated")] if crafted > 2 else []
        v6 = [(crafted, "ipv6.truncated"), (crafted + 1, "ipv6.truncated"), (crafted + 2, "ipv6.truncated")]
        assert codes == [(0, "eth.truncated"), (1, "eth.truncated"), *summary, *v6[:2], v6[2]]
        assert "1 more ipv6.truncated findings" in ix.findings[-1][1].message
    finally:
        ix.close()


UDP_PACKET = bytes(IP(src="10.0.0.3", dst="10.0.0.4", id=99) / UDP(sport=7, dport=9) / Raw(b"x"))
LINK_HEADERS = {
    ETHERNET: bytes(Ether(**MAC, type=0x0800)),
    LINUX_SLL: struct.pack(">HHH8sH", 0, 1, 6, bytes(8), 0x0800),
    276: struct.pack(">HHIHBB8s", 0x0800, 0, 1, 1, 0, 6, bytes(8)),  # SLL2
    0: struct.pack("<I", 2),  # NULL, little-endian AF_INET
    108: struct.pack(">I", 2),  # LOOP
    147: bytes(Ether(**MAC, type=0x0800)),  # USER0: not decoded
}


@pytest.mark.parametrize("linktype", LINK_HEADERS)
def test_frames_without_their_link_header_are_found_in_bulk_as_net_dissect_finds_them(
    tmp_path: Path, linktype: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every length short of the link header (and 0 captured of 60 on the wire), then the whole
    packet: the same names and findings as the reference, and net.dissect only for what has a
    link header (and only for packets the fast path does not take)."""
    whole = LINK_HEADERS[linktype] + UDP_PACKET
    frames: list[bytes | tuple[bytes, int]] = [whole[:k] for k in range(len(LINK_HEADERS[linktype]))]
    frames += [(b"", 60), whole]
    path = pcap(tmp_path / "short.pcap", frames, linktype)
    names, _, found = reference(path)
    dissected: list[int] = []
    real_dissect = index.dissect

    def counting_dissect(
        linktype: int, data: bytes, wirelen: int | None = None, detail: bool = True
    ) -> Dissection:
        dissected.append(len(data))
        return real_dissect(linktype, data, wirelen, detail)

    monkeypatch.setattr(index, "dissect", counting_dissect)
    ix = load(path)
    try:
        assert [ix.stacks[int(s)] for s in ix.stack] == names
        assert [(i, f.code, f.message) for i, f in ix.findings] == found
        assert len(found) == len(frames) - (linktype != 147)
        assert dissected == []
        assert bool(ix.l4[-1]) == (linktype != 147)
    finally:
        ix.close()
