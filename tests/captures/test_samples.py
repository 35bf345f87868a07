"""Our sample captures (made with tcpdump by captures/samples/*.py) decode to their recorded truth."""

from __future__ import annotations

import json

from protoscope.captures.index import load
from protoscope.captures.reassembly import Chunk, follow, packets_by_flow
from tests.conftest import SAMPLES


def test_loopback_basic_equals_truth() -> None:
    truth = json.loads((SAMPLES / "loopback-basic.truth.json").read_text())
    ix = load(SAMPLES / "loopback-basic.pcap")
    try:
        tcp = next(f for f in ix.flows if f.transport == "tcp")
        udp = next(f for f in ix.flows if f.transport == "udp")
        assert (str(tcp.client), str(tcp.server)) == (truth["tcp"]["client"], truth["tcp"]["server"])
        assert tcp.oriented_by == "syn"
        sent: tuple[bytearray, bytearray] = (bytearray(), bytearray())
        for direction, ev in follow(ix, packets_by_flow(ix.flow, len(ix.flows))[tcp.id]):
            assert isinstance(ev, Chunk)
            sent[direction].extend(ev.data)
        assert sent[0].decode() == truth["tcp"]["client_sent"]
        assert sent[1].decode() == truth["tcp"]["server_sent"]
        assert (str(udp.client), str(udp.server)) == (truth["udp"]["client"], truth["udp"]["server"])
        assert udp.packets == truth["udp"]["datagrams"]
    finally:
        ix.close()
