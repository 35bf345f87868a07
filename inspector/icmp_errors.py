"""ICMP messages in a decoding pass: they belong to no flow, so the session finds them by their
protocol stack, hands their bytes to the "icmp" decoder, and gives analyses the error's PDU with the
flow of the UDP datagram it quotes (`QuotedFlows`): a connectivity check that met a closed port is
then a failure of that check's flow (issue 16; RFC 8445 section 7.2.5.2.1 counts an ICMP error as a
failed check)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from protoscope.captures.flows import Flow
from protoscope.captures.index import PacketIndex
from protoscope.captures.net import Layer, dissect, ip_text
from protoscope.decoders.api import Endpoint, FlowContext, Pdu
from protoscope.decoders.icmp import IcmpError

ICMP_LAYERS = ("icmp", "icmpv6")


def icmp_stacks(stacks: Sequence[tuple[str, ...]]) -> npt.NDArray[np.bool_] | None:
    """Per stack id, whether its packets carry an ICMP message; None when none does, so that a
    capture without ICMP pays one look at its few stacks and nothing per packet."""
    table = np.array([any(name in names for name in ICMP_LAYERS) for names in stacks], np.bool_)
    return table if table.any() else None


def icmp_message(index: PacketIndex, i: int) -> tuple[bytes, str, str] | None:
    """(the ICMP message, from its type byte; the packet's source IP; its destination IP) of
    packet `i`, or None when its ICMP header is not in its frame (an ICMP datagram rebuilt from
    IP fragments, which the index does not keep)."""
    frame = index.frame(i)
    d = dissect(index.linktype(i), frame, int(index.records.wirelen[i]), detail=False)
    for layer in d.layers:
        if layer.name in ICMP_LAYERS:
            return frame[layer.start : layer.end], ip_text(d.src), ip_text(d.dst)
    return None


TAIL_KEPT = 1024
"""Unsorted flows QuotedFlows searches one by one before it sorts them in."""


class QuotedFlows:
    """UDP flows by their two endpoints, for the datagrams ICMP errors quote: a sorted column of
    each flow's key hash and its id (16 bytes a flow), grown with the flows as the index grows; a
    hash hit is checked against the flow itself, so a collision never picks a wrong flow."""

    def __init__(self) -> None:
        self._hashes = np.zeros(0, np.int64)
        self._ids = np.zeros(0, np.int64)
        self._tail: dict[int, list[int]] = {}
        self._tail_size = 0
        """Flows added since the last sort (searched one by one): sorted in once they are a
        quarter of the rest, so a live capture's growing flows cost amortised O(log n) each."""
        self._known = 0
        """Flows [0, _known) are in the columns or the tail."""

    @staticmethod
    def _key(a: str, b: str) -> int:
        return hash((a, b) if a <= b else (b, a))

    def _catch_up(self, flows: Sequence[Flow]) -> None:
        if len(flows) == self._known:
            return
        for f in flows[self._known :]:
            if f.transport == "udp":
                self._tail.setdefault(self._key(str(f.client), str(f.server)), []).append(f.id)
                self._tail_size += 1
        self._known = len(flows)
        if self._tail_size <= max(TAIL_KEPT, len(self._hashes) // 4):
            return
        pairs = [(h, fid) for h, fids in self._tail.items() for fid in fids]
        hashes = np.concatenate((self._hashes, np.array([h for h, _ in pairs], np.int64)))
        ids = np.concatenate((self._ids, np.array([f for _, f in pairs], np.int64)))
        order = np.argsort(hashes, kind="stable")
        self._hashes, self._ids = hashes[order], ids[order]
        self._tail, self._tail_size = {}, 0

    def find(self, flows: Sequence[Flow], src: str, dst: str) -> Flow | None:
        """The UDP flow between endpoints `src` and `dst` ("ip:port"), if the capture has it."""
        self._catch_up(flows)
        key = self._key(src, dst)
        lo = int(np.searchsorted(self._hashes, key, "left"))
        hi = int(np.searchsorted(self._hashes, key, "right"))
        candidates = [*self._ids[lo:hi].tolist(), *self._tail.get(key, ())]
        for fid in candidates:
            flow = flows[int(fid)]
            if {str(flow.client), str(flow.server)} == {src, dst}:
                return flow
        return None

    def context(self, flows: Sequence[Flow], pdus: Sequence[Pdu], ctx: FlowContext) -> FlowContext:
        """`ctx` (the ICMP packet's) with the flow of the datagram the error among `pdus` quotes:
        `flow` its id and `from_client` the way the ICMP travels in it (back to the datagram's
        sender); `ctx` itself when no PDU is such an error or the capture lacks that flow."""
        for pdu in pdus:
            record = pdu.record
            if isinstance(record, IcmpError):
                flow = self.find(flows, record.quoted_src, record.quoted_dst)
                if flow is None:
                    return ctx
                towards_client = record.quoted_src == str(flow.client)
                return replace(ctx, flow=flow.id, transport="udp", from_client=not towards_client)
        return ctx


def icmp_context(index: PacketIndex, i: int, src: str, dst: str, capture: dict[str, object]) -> FlowContext:
    """The context of ICMP packet `i` from `src` to `dst` (IPs; port 0: ICMP has none), outside
    any flow (-1) until `QuotedFlows.context` names the one its error concerns."""
    return FlowContext(
        flow=-1,
        transport="udp",
        src=Endpoint(src, 0),
        dst=Endpoint(dst, 0),
        from_client=False,
        frame=i + 1,
        time=index.time(i),
        capture=capture,
    )


def outer_layers(layers: Sequence[Layer]) -> Sequence[Layer]:
    """`layers` without the headers an ICMP error quotes: the packet's own addresses are the
    ICMP packet's, not those of the datagram it reports on (tshark's Source and Destination)."""
    for k, layer in enumerate(layers):
        if layer.name in ICMP_LAYERS:
            return layers[: k + 1]
    return layers


def outer_protocols(names: Sequence[str]) -> Sequence[str]:
    """Protocol names (`packet_protocols`, a stack) up to an ICMP error's: what `tshark -z io,phs`
    counts, which leaves out the quoted headers that frame.protocols lists after it."""
    for k, name in enumerate(names):
        if name in ICMP_LAYERS:
            return names[: k + 1]
    return names


def shown_protocol(names: Sequence[str]) -> str:
    """The Protocol column of a packet whose protocol names are `names` (`packet_protocols`): the
    last one, but an ICMP error's, whose quoted IP and UDP headers follow it, is ICMP's (tshark)."""
    outer = outer_protocols(names)
    return outer[-1] if outer else ""
