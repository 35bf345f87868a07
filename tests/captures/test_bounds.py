"""Named limits of the capture layer (issue 12): files of zeros, IP fragments that never complete,
TCP bytes held behind a hole. Each limit, when hit, is a finding that names it, and the rest of the
capture is still read.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from protoscope.captures import fragments, reassembly
from protoscope.captures.index import load
from protoscope.captures.reassembly import HELD_SEGMENT_OVERHEAD, MAX_OUT_OF_ORDER_BYTES, Gap, TcpDirection
from protoscope.captures.records import MAX_EMPTY_RUN
from protoscope.captures.source import open_capture, scan
from tests.captures.test_readers import FRAME_A, option, pcapng_block
from tests.conftest import SAMPLES, public_capture, tshark

SAMPLE = SAMPLES / "grpc-demo.pcap"
PACKETS = 101
PCAP_HEADER_LEN = 24
EMPTY_RECORD = bytes(16)
"""A pcap record header with no bytes: what a file of zeros reads as, 16 bytes at a time."""

# -- files of zeros ------------------------------------------------------------------------------


def test_a_pcap_header_followed_by_zeros_is_one_finding_and_no_records(tmp_path: Path) -> None:
    """Before: one empty record and one finding per 16 bytes (16 MB: 602 MB of memory, 38 s)."""
    path = tmp_path / "zeros.pcap"
    path.write_bytes(SAMPLE.read_bytes()[:PCAP_HEADER_LEN] + bytes(4 << 20))
    capture = open_capture(path)
    assert len(capture.records) == 0
    [(at, finding)] = capture.records.findings
    assert (at, finding.code, finding.severity) == (0, "capture.empty_records", "error")
    assert f"more than {MAX_EMPTY_RUN} records" in finding.message
    assert f"the last {4 << 20} bytes are not read (all zeros)" in finding.message
    capture.close()


def test_zeros_inside_a_capture_end_it_where_they_start(tmp_path: Path) -> None:
    raw = SAMPLE.read_bytes()
    zeros = EMPTY_RECORD * (MAX_EMPTY_RUN + 1)
    path = tmp_path / "hole.pcap"
    path.write_bytes(raw + zeros + raw[PCAP_HEADER_LEN:])
    capture = open_capture(path)
    assert len(capture.records) == PACKETS
    [(at, finding)] = capture.records.findings
    assert (at, finding.code) == (PACKETS, "capture.empty_records")
    assert f"from record {PACKETS + 1} (byte {len(raw)}) on" in finding.message
    assert "not all zeros: the file is damaged from there" in finding.message
    capture.close()


def test_a_few_empty_records_are_frames_as_for_tshark(tmp_path: Path) -> None:
    """Short runs stay (Wireshark shows them as empty frames): the numbering after them is tshark's."""
    raw = SAMPLE.read_bytes()
    path = tmp_path / "few.pcap"
    path.write_bytes(raw + EMPTY_RECORD * 3 + raw[PCAP_HEADER_LEN:] + EMPTY_RECORD * MAX_EMPTY_RUN)
    capture = open_capture(path)
    theirs = tshark("-r", str(path), "-T", "fields", "-e", "frame.cap_len").split()
    assert [int(n) for n in capture.records.caplen.tolist()] == [int(n) for n in theirs]
    assert len(theirs) == 2 * PACKETS + 3 + MAX_EMPTY_RUN
    assert capture.records.findings == []
    capture.close()


def test_a_run_of_zeros_across_the_walks_batches_is_found(tmp_path: Path) -> None:
    """The record walk looks at its headers 16 MB at a time: a run that starts just before a
    batch ends and goes on in the next is one run."""
    raw = SAMPLE.read_bytes()
    records = raw[PCAP_HEADER_LEN:]
    copies = (16 << 20) // len(records) + 1
    body = raw[:PCAP_HEADER_LEN] + records * copies
    path = tmp_path / "across.pcap"
    path.write_bytes(body + EMPTY_RECORD * (MAX_EMPTY_RUN + 1) + records)
    capture = open_capture(path)
    assert len(capture.records) == PACKETS * copies
    assert [f.code for _, f in capture.records.findings] == ["capture.empty_records"]
    capture.close()


def test_pcapng_blocks_with_no_bytes_end_the_table(tmp_path: Path) -> None:
    le = "<"
    data = pcapng_block(le, 0x0A0D0D0A, struct.pack(le + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    data += pcapng_block(le, 1, struct.pack(le + "HHI", 1, 0, 0) + option(le, 0, b""))
    ticks = 1_700_000_000_000_000
    epb = struct.pack(le + "IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, len(FRAME_A), len(FRAME_A)) + FRAME_A
    data += pcapng_block(le, 6, epb + b"\x00" * (-len(FRAME_A) % 4))
    empty = pcapng_block(le, 6, struct.pack(le + "IIIII", 0, 0, 0, 0, 0))
    rec = scan(data + empty * (MAX_EMPTY_RUN + 1) + pcapng_block(le, 6, epb))
    assert len(rec) == 1
    assert [(i, f.code) for i, f in rec.findings] == [(1, "capture.empty_records")]
    assert len(scan(data + empty * MAX_EMPTY_RUN)) == 1 + MAX_EMPTY_RUN  # a shorter run is kept


def test_netxray_records_with_no_bytes_end_the_table() -> None:
    raw = bytearray(public_capture("wswiki--RTP-only_PCMU_2-packets.cap").read_bytes())
    struct.pack_into("<I", raw, 16, 100_000)  # frames the header declares
    struct.pack_into("<I", raw, 28, 0)  # end offset: none (the file's end)
    rec = scan(bytes(raw) + bytes(40) * (MAX_EMPTY_RUN + 1))
    assert len(rec) == 2
    assert [(i, f.code) for i, f in rec.findings] == [(2, "capture.empty_records")]


# -- IP fragments --------------------------------------------------------------------------------

PAYLOAD = bytes(random.Random(12).randrange(256) for _ in range(3000))
MAC = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}


def udp_fragments() -> list[Ether]:
    """A 3,000-byte UDP datagram over IPv4 in 4 fragments (scapy's fragment()), sent last first,
    one twice; then the same over IPv6 in 3, last first."""
    v4 = fragment(
        IP(src="10.0.0.1", dst="10.0.0.2", id=77) / UDP(sport=5000, dport=3478) / Raw(PAYLOAD), 1000
    )
    v6 = (
        IPv6(src="fd00::1", dst="fd00::2")
        / IPv6ExtHdrFragment(id=9)
        / UDP(sport=5001, dport=3478)
        / Raw(PAYLOAD)
    )
    order = [v4[3], v4[0], v4[2], v4[0], v4[1], *reversed(fragment6(v6, 1280))]
    return [Ether(**MAC) / f for f in order]


def write(path: Path, packets: list[Ether]) -> Path:
    for n, p in enumerate(packets):
        p.time = 1_700_000_000 + n / 1000
    wrpcap(str(path), packets)
    return path


def test_fragments_out_of_order_and_repeated_reassemble_where_tshark_does(tmp_path: Path) -> None:
    path = write(tmp_path / "frag.pcap", udp_fragments())
    index = load(path)
    whole = [i for i in range(len(index)) if "udp" in index.stacks[int(index.stack[i])]]
    assert [index.payload(i) for i in whole] == [PAYLOAD, PAYLOAD]
    theirs = tshark("-r", str(path), "-T", "fields", "-e", "frame.number", "-e", "udp.length").splitlines()
    assert [int(line.split()[0]) - 1 for line in theirs if len(line.split()) == 2] == whole
    assert index.findings == []
    index.close()


def one_datagram(count: int, ident: int = 0x4242, round_at: int = 8_000) -> list[Ether]:
    """`count` fragments of 8 bytes of one IPv4 datagram, all with More Fragments, at offsets that
    go round every `round_at` fragments (with other bytes each time round)."""
    out = []
    for n in range(count):
        frag = IP(src="10.0.0.1", dst="10.0.0.2", id=ident, proto=17, flags="MF", frag=n % round_at)
        out.append(Ether(**MAC) / frag / Raw(struct.pack("!Q", n)))
    return out


def test_a_datagram_of_too_many_fragments_is_given_up_with_a_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's never-complete datagram (1M fragments: 116 s of sorting), with MAX_FRAGMENTS
    at 300 for speed: one ip.fragment_overlap (the offsets come round with other bytes) and one
    ip.fragments_limit per MAX_FRAGMENTS + 1 fragments, however many there are."""
    monkeypatch.setattr(fragments, "MAX_FRAGMENTS", 300)
    index = load(write(tmp_path / "many.pcap", one_datagram(602, round_at=200)))
    codes = [(i, f.code) for i, f in index.findings]
    assert codes == [
        (200, "ip.fragment_overlap"),
        (300, "ip.fragments_limit"),  # the datagram is given up; the next fragment starts afresh
        (501, "ip.fragment_overlap"),
        (601, "ip.fragments_limit"),
    ]
    assert "more than 300 fragments (MAX_FRAGMENTS; its first was frame 1)" in index.findings[1][1].message
    index.close()


def test_datagrams_past_the_pending_limits_give_up_the_oldest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fragments, "MAX_PENDING", 3)
    monkeypatch.setattr(fragments, "FINDINGS_PER_CODE", 2)
    packets: list[Ether] = [p for ident in range(6) for p in one_datagram(1, ident)]
    packets += udp_fragments()[:5]  # the IPv4 datagram completes
    index = load(write(tmp_path / "pending.pcap", packets))
    codes = [(i, f.code) for i, f in index.findings]
    # 6 + 1 datagrams, 3 at a time: the first 4 are given up; 2 findings, then the count of the rest
    assert codes == [(3, "ip.reassembly_dropped"), (4, "ip.reassembly_dropped"), (6, "ip.reassembly_dropped")]
    assert "first seen in frame 1" in index.findings[0][1].message
    assert "MAX_PENDING (3)" in index.findings[0][1].message
    assert "2 more ip.reassembly_dropped findings" in index.findings[2][1].message
    assert index.payload(10) == PAYLOAD
    index.close()


def test_pending_bytes_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each datagram holds its bytes and a map of 8-byte units; past MAX_PENDING_BYTES in all,
    the oldest go."""
    monkeypatch.setattr(fragments, "MAX_PENDING_BYTES", 100_000)
    r = fragments.Reassembler()
    far = 60_000  # a fragment this far in makes its datagram hold 60,000 bytes and 7,500 units
    for ident in range(3):
        frame = one_datagram(1, ident)[0]
        data = bytes(frame)
        frag = fragments.Fragment((4, b"a", b"b", ident, 17), far, True, len(data) - 8, len(data))
        assert r.add(ident, frag, data) is None
    assert len(r._pending) == 1
    assert r._bytes == far + 8 + (far + 8) // 8
    assert [f.code for _, f in r.findings] == ["ip.reassembly_dropped"] * 2


# -- TCP bytes behind a hole ---------------------------------------------------------------------


def test_one_byte_segments_behind_a_hole_count_what_they_hold() -> None:
    """4 MiB of one-byte segments would be 4M heap entries (~700 MB): each counts its overhead,
    so the hole is given up after MAX_OUT_OF_ORDER_BYTES / (1 + HELD_SEGMENT_OVERHEAD) of them,
    and the Gap says the limit did it."""
    d = TcpDirection()
    assert d.push(0, 1000, 0x02, b"") == []  # SYN
    held = MAX_OUT_OF_ORDER_BYTES // (1 + HELD_SEGMENT_OVERHEAD)
    for k in range(held):
        assert d.push(k + 1, 1002 + k, 0x10, b"x") == []
    events = d.push(held + 1, 1002 + held, 0x10, b"x")
    assert events[0] == Gap(0, 1, held + 1, forced=True)
    assert sum(len(e.data) for e in events[1:] if not isinstance(e, Gap)) == held + 1


def test_a_hole_at_the_end_of_a_stream_is_not_forced() -> None:
    d = TcpDirection()
    d.push(0, 1000, 0x02, b"")
    d.push(1, 1011, 0x10, b"late")
    assert d.flush(2) == [Gap(0, 10, 2), reassembly.Chunk(10, b"late", 1)]
    assert not d.flush(3)
