"""Our record tables equal scapy's readers (the oracle) on every public pcap/pcapng file."""

from __future__ import annotations

import pytest
from scapy.utils import RawPcapNgReader, RawPcapReader

from protoscope.captures.index import load
from protoscope.captures.source import open_capture
from tests.conftest import public_capture, public_captures

NAMES = [p.name for p in public_captures()] or ["no-corpus"]


@pytest.mark.parametrize("name", NAMES)
def test_records_equal_scapy(name: str) -> None:
    path = public_capture(name)
    cf = open_capture(path)
    try:
        rec = cf.records
        if rec.format == "netxray":
            pytest.skip(
                "scapy has no NetXRay reader; tests/captures/test_readers.py checks it against tshark"
            )
        theirs = []
        if rec.format == "pcapng":
            with RawPcapNgReader(str(path)) as r:
                for data, m in r:
                    ticks = (m.tshigh << 32) | m.tslow
                    theirs.append((data, ticks * 1_000_000_000 // m.tsresol, m.wirelen))
        else:
            with RawPcapReader(str(path)) as r:
                scale = 1 if r.nano else 1000
                theirs.extend((data, m.sec * 1_000_000_000 + m.usec * scale, m.wirelen) for data, m in r)
        assert len(rec) == len(theirs)
        for i, (data, ts_ns, wirelen) in enumerate(theirs):
            start = int(rec.data_off[i])
            assert bytes(cf.buffer[start : start + int(rec.caplen[i])]) == data, f"record {i + 1} bytes"
            assert int(rec.ts_ns[i]) == ts_ns, f"record {i + 1} time"
            assert int(rec.wirelen[i]) == wirelen, f"record {i + 1} wire length"
    finally:
        cf.close()


@pytest.mark.parametrize("name", NAMES)
def test_fast_path_agrees_with_reference_dissector(name: str) -> None:
    """Every packet the vectorised pass decoded gets the same L2-L4 answer from `net.dissect`."""
    path = public_capture(name)
    ix = load(path)
    try:
        for i in range(len(ix)):
            d = ix.dissect(i)
            assert ix.stacks[int(ix.stack[i])] == d.protocols or i in ix.reassembled, f"packet {i + 1} stack"
            if i in ix.reassembled or not d.l4:
                continue
            assert int(ix.l4[i]) == d.l4, f"packet {i + 1}"
            assert int(ix.payload_off[i]) == d.payload_off, f"packet {i + 1}"
            assert int(ix.payload_len[i]) == d.payload_len, f"packet {i + 1}"
            if d.l4 == 6:
                assert int(ix.tcp_seq[i]) == d.tcp_seq
                assert int(ix.tcp_flags[i]) == d.tcp_flags
            flow = ix.flows[int(ix.flow[i])]
            ends = {(flow.client.port, flow.server.port), (flow.server.port, flow.client.port)}
            assert (d.sport, d.dport) in ends
    finally:
        ix.close()
