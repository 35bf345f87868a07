"""The index grows by appending (issue 14): a capture written in pieces and read after each piece
(`PacketIndex.extend`, then `finish`) gives what `load` gives of the whole file.

The oracle is `load` of the whole file (itself checked against tshark by the other tests). The
pieces are cut at seeded random byte positions, so reads end inside record headers, inside packet
bytes and inside pcapng blocks, as a file that tcpdump writes with a buffered writer does.
"""

from __future__ import annotations

import itertools
import random
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.contrib.gtp import GTP_U_Header
from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from protoscope.captures.index import PacketIndex, load
from protoscope.captures.records import MAX_EMPTY_RUN
from tests.conftest import SAMPLES, public_capture, require_root, require_tool

PIECES = 7
"""Pieces each capture is written in."""
SAMPLE_FILES = sorted(p for p in SAMPLES.glob("*.pcap*") if p.suffix in (".pcap", ".pcapng"))
RECORD_COLUMNS = ("data_off", "caplen", "wirelen", "ts_ns", "iface")
PACKET_COLUMNS = ("l4", "payload_off", "payload_len", "tcp_seq", "tcp_flags", "flow")


def grow(raw: bytes, path: Path, cuts: list[int]) -> PacketIndex:
    """Write `raw` to `path` in pieces ending at `cuts`, reading after each piece, then finish."""
    ends = [*sorted(cuts), len(raw)]
    path.write_bytes(raw[: ends[0]])
    ix = load(path, growing=True)
    with path.open("ab") as out:
        for a, b in itertools.pairwise(ends):
            out.write(raw[a:b])
            out.flush()
            before = len(ix)
            assert ix.extend() == len(ix) - before
    ix.finish()
    return ix


def random_cuts(raw: bytes, pieces: int, seed: str) -> list[int]:
    rng = random.Random(seed)
    return sorted(rng.sample(range(1, len(raw)), min(pieces - 1, len(raw) - 1)))


def assert_same(grown: PacketIndex, whole: PacketIndex) -> None:
    """Every column, flow, finding and rebuilt datagram of `grown` is `whole`'s, but for the ends of
    flows whose first read did not show what the whole file shows (see FlowTable): those must be
    the other way round, with every packet's direction turned."""
    assert len(grown) == len(whole)
    for name in RECORD_COLUMNS:
        np.testing.assert_array_equal(getattr(grown.records, name), getattr(whole.records, name), name)
    for name in PACKET_COLUMNS:
        np.testing.assert_array_equal(getattr(grown, name), getattr(whole, name), name)
    # Stack ids are numbered as names are met, which depends on the reads: compare the names.
    assert [grown.stacks[s] for s in grown.stack.tolist()] == [whole.stacks[s] for s in whole.stack.tolist()]
    assert grown.records.interfaces == whole.records.interfaces
    assert grown.records.comments == whole.records.comments
    assert grown.reassembled == whole.reassembled
    key = lambda pf: (pf[0], pf[1].code, pf[1].message)  # noqa: E731
    assert sorted(grown.findings, key=key) == sorted(whole.findings, key=key)
    assert len(grown.flows) == len(whole.flows)
    turned = np.zeros(len(whole.flows) + 1, bool)  # one more: the index of packets in no flow
    for g, w in zip(grown.flows, whole.flows, strict=True):
        assert (g.id, g.transport, g.first_frame, g.first_ns, g.last_ns) == (
            w.id,
            w.transport,
            w.first_frame,
            w.first_ns,
            w.last_ns,
        )
        assert (g.packets, g.bytes, g.carried, g.protocols) == (w.packets, w.bytes, w.carried, w.protocols)
        if (g.client, g.server) == (w.client, w.server):
            assert (g.packets_c2s, g.bytes_c2s, g.packets_s2c, g.bytes_s2c) == (
                w.packets_c2s,
                w.bytes_c2s,
                w.packets_s2c,
                w.bytes_s2c,
            )
            continue
        # Turned: the whole file has a SYN or SYN-ACK the flow's first read did not have.
        assert (g.client, g.server) == (w.server, w.client)
        assert w.oriented_by in ("syn", "syn-ack") and g.oriented_by in ("port", "first-packet")
        assert (g.packets_c2s, g.bytes_c2s) == (w.packets_s2c, w.bytes_s2c)
        turned[g.id] = True
    flow = whole.flow
    in_flow = flow >= 0
    expect = whole.direction.copy()
    flip = in_flow & turned[np.where(in_flow, flow, 0)]
    expect[flip] ^= 1
    np.testing.assert_array_equal(grown.direction, expect, "direction")


def check_pieces(path: Path, tmp_path: Path, pieces: int = PIECES) -> None:
    raw = path.read_bytes()
    whole = load(path)
    grown = grow(raw, tmp_path / f"growing{path.suffix}", random_cuts(raw, pieces, path.name))
    try:
        assert_same(grown, whole)
    finally:
        grown.close()
        whole.close()


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_a_sample_written_in_pieces_reads_as_the_whole_file(path: Path, tmp_path: Path) -> None:
    check_pieces(path, tmp_path)


def test_every_public_capture_written_in_pieces_reads_as_the_whole_file(
    public: list[Path], tmp_path: Path
) -> None:
    """pcap and pcapng (several sections, interfaces and time resolutions among them)."""
    assert any(p.suffix == ".pcapng" for p in public) and any(p.suffix == ".pcap" for p in public)
    for path in public:
        check_pieces(path, tmp_path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_cut_positions_give_the_same_columns(tmp_path: Path, data: st.DataObject) -> None:
    path = data.draw(
        st.sampled_from(
            [SAMPLES / "loopback-basic.pcap", public_capture("wswiki--protobuf_udp_addressbook.pcapng")]
        )
    )
    raw = path.read_bytes()
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=12))
    whole = load(path)
    grown = grow(raw, tmp_path / f"growing{path.suffix}", cuts)
    try:
        assert_same(grown, whole)
    finally:
        grown.close()
        whole.close()


# -- pcapng written by hand: an interface declared after packets of another ----------------------


def block(btype: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("<II", btype, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def shb() -> bytes:
    return block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))


def idb(linktype: int, tsresol: int) -> bytes:
    options = struct.pack("<HHB3x", 9, 1, tsresol) + struct.pack("<HH", 0, 0)
    return block(1, struct.pack("<HHI", linktype, 0, 0) + options)


def epb(iface: int, ticks: int, frame: bytes) -> bytes:
    head = struct.pack("<IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame), len(frame))
    return block(6, head + frame)


def udp_frame(sport: int, payload: bytes, ether: bool) -> bytes:
    packet = IP(src="127.0.0.1", dst="127.0.0.2") / UDP(sport=sport, dport=9) / Raw(payload)
    return bytes(Ether() / packet if ether else packet)


def test_a_pcapng_that_declares_a_second_interface_later(tmp_path: Path) -> None:
    """dumpcap given a second -i: the new IDB comes after packets of the first interface, with its
    own link type and time resolution; packets of both interfaces follow."""
    first = (
        shb()
        + idb(1, 6)
        + b"".join(epb(0, 1_000_000 + k, udp_frame(4000, b"a%d" % k, True)) for k in range(3))
    )
    second = idb(101, 9) + b"".join(
        epb(k % 2, (1_000_000 + k) * (1000 if k % 2 else 1), udp_frame(4001 + k % 2, b"b%d" % k, k % 2 == 0))
        for k in range(4)
    )
    raw = first + second
    whole_path = tmp_path / "whole.pcapng"
    whole_path.write_bytes(raw)
    whole = load(whole_path)
    grown = grow(raw, tmp_path / "growing.pcapng", [len(first), len(first) + 10])
    try:
        assert [i.linktype for i in grown.records.interfaces] == [1, 101]
        assert grown.records.iface.tolist() == [0, 0, 0, 0, 1, 0, 1]
        assert (grown.time(3), grown.time(4)) == (1.0, 1.000001)  # microsecond and nanosecond ticks
        assert_same(grown, whole)
    finally:
        grown.close()
        whole.close()


# -- state carried from one read to the next -----------------------------------------------------


def test_a_datagram_whose_fragments_span_two_reads_is_reassembled(tmp_path: Path) -> None:
    datagram = (
        IP(src="10.0.0.1", dst="10.0.0.2", id=7) / UDP(sport=5000, dport=5001) / Raw(bytes(range(256)) * 8)
    )
    frames = [Ether() / f for f in fragment(datagram, 600)]
    assert len(frames) == 4
    path = tmp_path / "frags.pcap"
    wrpcap(str(path), frames)
    raw = path.read_bytes()
    whole = load(path)
    middle = 24 + sum(16 + len(bytes(f)) for f in frames[:2]) + 5  # inside the third fragment's record
    grown = grow(raw, tmp_path / "growing.pcap", [middle])
    try:
        assert list(grown.reassembled) == [3] and grown.payload(3) == bytes(range(256)) * 8
        assert_same(grown, whole)
    finally:
        grown.close()
        whole.close()


def test_a_tunnel_read_in_pieces_counts_both_conversations(tmp_path: Path) -> None:
    outer = Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=2152, dport=2152)
    inner = IP(src="192.168.1.1", dst="8.8.8.8") / UDP(sport=5000, dport=3478)
    pkts = [
        Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=2152, dport=2152) / Raw(b"not gtp"),
        outer / GTP_U_Header(teid=7) / inner / Raw(b"one"),
        outer / GTP_U_Header(teid=7) / inner / Raw(b"two"),
        outer
        / GTP_U_Header(teid=8)
        / IP(src="192.168.1.2", dst="8.8.8.8")
        / UDP(sport=6000, dport=53)
        / Raw(b"x"),
    ]
    path = tmp_path / "gtp.pcap"
    wrpcap(str(path), pkts)
    raw = path.read_bytes()
    whole = load(path)
    second = 24 + 16 + len(bytes(pkts[0]))
    grown = grow(raw, tmp_path / "growing.pcap", [second, second + 16 + len(bytes(pkts[1])) + 3])
    try:
        tunnel = grown.flows[0]
        # The tunnel's conversation was known (packet 1, no GTP) before it carried anything.
        assert (tunnel.packets, tunnel.carried, tunnel.protocols) == (4, 3, ["gtp"])
        assert [f.packets for f in grown.flows] == [4, 2, 1]
        assert_same(grown, whole)
    finally:
        grown.close()
        whole.close()


def test_a_flow_keeps_the_ends_its_first_read_gave_it(tmp_path: Path) -> None:
    """The first read shows a packet from 40001 to 40000 and nothing else (no SYN, no port that
    says server): its sender is the client. A later SYN from 40000 does not turn it round."""
    a, b = "10.0.0.1", "10.0.0.2"
    pkts = [
        Ether() / IP(src=b, dst=a) / TCP(sport=40001, dport=40000, flags="A", seq=1) / Raw(b"x"),
        Ether() / IP(src=a, dst=b) / TCP(sport=40000, dport=40001, flags="S", seq=9),
        Ether() / IP(src=b, dst=a) / TCP(sport=40001, dport=40000, flags="A", seq=2),
    ]
    path = tmp_path / "turn.pcap"
    wrpcap(str(path), pkts)
    raw = path.read_bytes()
    whole = load(path)
    grown = grow(raw, tmp_path / "growing.pcap", [24 + 16 + len(bytes(pkts[0]))])
    try:
        [w], [g] = whole.flows, grown.flows
        assert (str(w.client), w.oriented_by) == (f"{a}:40000", "syn")
        assert (str(g.client), g.oriented_by) == (f"{b}:40001", "first-packet")
        assert grown.direction.tolist() == [0, 1, 0]
        assert (g.packets_c2s, g.packets_s2c) == (2, 1)
        assert_same(grown, whole)
    finally:
        grown.close()
        whole.close()


def empty_records(count: int) -> bytes:
    return b"".join(struct.pack("<IIII", 1, 0, 0, 0) for _ in range(count))


def test_empty_records_at_the_end_of_a_read_wait_for_what_follows(tmp_path: Path) -> None:
    """A few empty records are frames; more than MAX_EMPTY_RUN are zeros that end the capture. A
    read that ends inside such a run cannot tell which: the run is read again once what follows
    it is there, and both ways give what the whole file gives."""
    packet = bytes(Ether() / IP() / UDP() / Raw(b"p"))
    record = struct.pack("<IIII", 1, 0, len(packet), len(packet)) + packet
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for run in (3, MAX_EMPTY_RUN + 5):
        raw = header + record + empty_records(run) + record
        path = tmp_path / f"empty-{run}.pcap"
        path.write_bytes(raw)
        whole = load(path)
        cut = len(header) + len(record) + 16 * min(run - 2, MAX_EMPTY_RUN // 2)
        grown = grow(raw, tmp_path / f"growing-{run}.pcap", [cut])
        try:
            assert len(whole) == (run + 2 if run < MAX_EMPTY_RUN else 1)
            assert_same(grown, whole)
        finally:
            grown.close()
            whole.close()


# -- what extend gives when there is nothing to read -----------------------------------------------


def test_extend_gives_nothing_on_an_unchanged_file_or_an_index_that_does_not_grow(tmp_path: Path) -> None:
    sample = SAMPLES / "loopback-basic.pcap"
    whole = load(sample)
    assert (whole.extend(), whole.finish()) == (0, 0)
    path = tmp_path / "growing.pcap"
    path.write_bytes(sample.read_bytes())
    ix = load(path, growing=True)
    try:
        assert len(ix) == len(whole) and ix.extend() == 0 and ix.extend() == 0
        assert ix.finish() == 0 and ix.extend() == 0
    finally:
        ix.close()
        whole.close()


def test_a_file_followed_from_before_its_first_byte(tmp_path: Path) -> None:
    """tcpdump -w buffers: the file exists, empty, until its first buffer is written; then its
    last record is usually cut short, and that is no finding until the end."""
    raw = (SAMPLES / "loopback-basic.pcap").read_bytes()
    path = tmp_path / "growing.pcap"
    path.write_bytes(b"")
    ix = load(path, growing=True)
    try:
        assert len(ix) == 0 and ix.extend() == 0
        with path.open("ab") as out:
            out.write(raw[:-7])
            out.flush()
            assert ix.extend() > 0 and ix.findings == []
            out.write(raw[-7:-3])
        whole = load(SAMPLES / "loopback-basic.pcap")
        assert ix.finish() == 0
        assert [f.code for _, f in ix.findings] == ["capture.truncated"]
        assert len(ix) == len(whole) - 1
        whole.close()
    finally:
        ix.close()


def test_a_file_cut_while_it_is_followed_stops_with_a_finding(tmp_path: Path) -> None:
    raw = (SAMPLES / "loopback-basic.pcap").read_bytes()
    path = tmp_path / "growing.pcap"
    path.write_bytes(raw)
    ix = load(path, growing=True)
    try:
        count = len(ix)
        with path.open("r+b") as out:
            out.truncate(100)
        assert ix.extend() == 0
        assert [f.code for _, f in ix.findings] == ["capture.changed"]
        path.write_bytes(raw + raw[24:])
        assert ix.extend() == 0 and len(ix) == count
    finally:
        ix.close()


def test_columns_read_before_an_extend_keep_their_values(tmp_path: Path) -> None:
    raw = (SAMPLES / "grpc-demo.pcap").read_bytes()
    path = tmp_path / "growing.pcap"
    cut = len(raw) // 3
    path.write_bytes(raw[:cut])
    ix = load(path, growing=True)
    try:
        before = {name: getattr(ix, name).copy() for name in PACKET_COLUMNS}
        views = {name: getattr(ix, name) for name in PACKET_COLUMNS}
        n = len(ix)
        with path.open("ab") as out:
            out.write(raw[cut:])
        assert ix.extend() > 0
        for name in PACKET_COLUMNS:
            np.testing.assert_array_equal(views[name], before[name])
            np.testing.assert_array_equal(getattr(ix, name)[:n], before[name])
    finally:
        ix.close()


# -- a file another program writes ---------------------------------------------------------------


@pytest.mark.parametrize("flags", [["-U"], []], ids=["per-packet", "buffered"])
def test_a_pcap_that_tcpdump_is_writing(tmp_path: Path, flags: list[str]) -> None:
    """`tcpdump -w F` (buffered: the file grows by whole buffers, cut anywhere) and `-U` (a
    flush per packet), read while it writes; what was read then equals the whole file."""
    exe = require_tool("tcpdump")
    require_root()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    path = tmp_path / "tcpdump.pcap"
    cmd = [exe, "-i", "lo", "-n", "-s", "0", "-B", "4096", *flags, "-w", str(path), f"udp port {port}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while b"listening" not in (proc.stderr.readline() if proc.stderr else b"listening"):
            assert time.monotonic() < deadline and proc.poll() is None, "tcpdump did not start"
        ix = load(path, growing=True)
        sent = 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for burst in range(6):
                for k in range(300):
                    tx.sendto(b"%d.%d" % (burst, k) + bytes(k % 200), ("127.0.0.1", port))
                    sent += 1
                time.sleep(0.05)
                ix.extend()
        time.sleep(0.3)  # the last packets from the kernel to tcpdump's buffer
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        ix.extend()
        ix.finish()
        whole = load(path)
        try:
            assert 0.9 * sent <= len(whole) <= sent  # what tcpdump kept is not the question here
            assert_same(ix, whole)
            assert [f.packets for f in ix.flows] == [len(whole)]
        finally:
            whole.close()
            ix.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
