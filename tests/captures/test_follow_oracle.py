"""Reassembled TCP streams compared byte for byte with tshark's `-z follow,tcp,raw,N`."""

from __future__ import annotations

import pytest

from protoscope.captures.index import load
from protoscope.captures.reassembly import Chunk, follow, packets_by_flow
from tests.conftest import public_capture, public_captures, tshark

TCP_CAPTURES = [p.name for p in public_captures()] or ["no-corpus"]


def tshark_follow(path: str, streams: int) -> dict[frozenset[str], tuple[str, bytes, bytes]]:
    """Endpoint pair -> (node 0, node 0's bytes, node 1's bytes) for every TCP stream."""
    args = ["-r", path, "-q"]
    for n in range(streams):
        args += ["-z", f"follow,tcp,raw,{n}"]
    out = tshark(*args)
    result: dict[frozenset[str], tuple[str, bytes, bytes]] = {}
    for block in out.split(
        "===================================================================\nFollow: tcp,raw"
    )[1:]:
        lines = block.splitlines()
        node0 = next(ln.split(": ", 1)[1] for ln in lines if ln.startswith("Node 0: "))
        node1 = next(ln.split(": ", 1)[1] for ln in lines if ln.startswith("Node 1: "))
        sent: tuple[bytearray, bytearray] = (bytearray(), bytearray())
        for ln in lines:
            if not ln or ln.startswith(("Filter:", "Node ", "=")):
                continue
            if ln.startswith("\t"):
                sent[1].extend(bytes.fromhex(ln.strip()))
            else:
                sent[0].extend(bytes.fromhex(ln.strip()))
        key = frozenset((node0, node1))
        if key in result:  # a reused 4-tuple: tshark starts a new stream, we keep one flow
            prev = result[key]
            result[key] = (prev[0], prev[1] + bytes(sent[0]), prev[2] + bytes(sent[1]))
        else:
            result[key] = (node0, bytes(sent[0]), bytes(sent[1]))
    return result


@pytest.mark.parametrize("name", TCP_CAPTURES)
def test_tcp_streams_equal_tshark_follow(name: str) -> None:
    path = public_capture(name)
    ix = load(path)
    try:
        tcp_flows = [f for f in ix.flows if f.transport == "tcp"]
        if not tcp_flows:
            return
        theirs = tshark_follow(str(path), len(tcp_flows))
        groups = packets_by_flow(ix.flow, len(ix.flows))
        for flow in tcp_flows:
            ours = (bytearray(), bytearray())
            for direction, ev in follow(ix, groups[flow.id]):
                if isinstance(ev, Chunk):
                    ours[direction].extend(ev.data)
            client = str(flow.client)  # follow prints IPv6 as "[::1]:50051", as Endpoint does
            node0, b0, b1 = theirs[frozenset((client, str(flow.server)))]
            c2s, s2c = (b0, b1) if node0 == client else (b1, b0)
            assert bytes(ours[0]) == c2s, f"flow {flow.id} client->server differs"
            assert bytes(ours[1]) == s2c, f"flow {flow.id} server->client differs"
    finally:
        ix.close()
