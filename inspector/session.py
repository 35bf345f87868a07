"""A capture run through the pipeline: index, flows, then decoders over every flow.

`Session.decode()` walks the packets in frame order once and yields what the decoders made of each
one. Nothing per packet is kept: reports and views consume the stream (or cache what they show).
`Session.decoding()` is the same pass taken a piece at a time as the index grows (a live capture,
a file still being written): each `Decoding.more()` goes on from the state the last one left, and
a file is that pass run once to its end (DESIGN.md, "One pipeline, growing input").
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from protoscope.captures.flows import TCP_SYN, Flow
from protoscope.captures.index import PacketIndex, load
from protoscope.captures.pcapng import SECRETS_TLS_KEY_LOG
from protoscope.captures.reassembly import (
    MAX_OUT_OF_ORDER_BYTES,
    Event,
    Gap,
    TcpDirection,
    in_order_run,
    packets_by_flow,
    planned_gaps,
    positions,
)
from protoscope.decoders.api import (
    SNIFF_BYTES,
    SNIFF_DATAGRAMS,
    SNIFF_SEGMENTS,
    ContractError,
    Decoder,
    DecodeResult,
    Finding,
    FlowContext,
    InnerPayload,
    Pdu,
    checked_result,
)
from protoscope.decoders.registry import (
    Expectation,
    GuestFailure,
    Registry,
    call_budget,
    call_guest,
    stop_guard,
)
from protoscope.decoders.tls.keylog import KeyLog

from .icmp_errors import QuotedFlows, icmp_context, icmp_message, icmp_stacks, outer_layers
from .keys import KeyLogFiles

MAX_STREAM_BUFFER = 16 * 1024 * 1024
"""Unconsumed bytes a stream decoder may leave waiting in one direction before they are dropped."""
MAX_INNER_DEPTH = 4
"""How deep inner payloads (TURN in TURN in ...) are dispatched again."""
MAX_INNER_STREAM = 1 << 24
"""Bytes of a stream inner payload (TLS plaintext) held for its decoder's next PDU: an HTTP/2 frame
may declare 16 MiB."""
STREAM_WINDOW = 16 * 1024
"""A stream decoder that stops before the end of its bytes (one PDU a call) is called again with
the next STREAM_WINDOW bytes, or twice what it just consumed, or what it said it `need`s, whichever
is most, rather than with all the rest: a copy of the rest per PDU made 1 MB of small messages
quadratic. To the decoder the window's end is like a segment's end; when it makes no progress
within a window, it gets twice as much. Its first call on new bytes gets them all, as ever."""
MAX_TIMEOUTS = 3
"""Flows a third-party decoder may overrun its time budget on (`decoder.timeout`) before a pass
stops calling it at all: a decoder that hangs on every flow costs the pass this many budgets."""

RELEASE_EVERY = 1 << 16
"""A full pass lets go of the file pages it has read every 65,536 packets and at its end: reading
payloads front to back would otherwise make the whole mapped file resident (230 MB for 1M
packets), and even a sparse pass (one packet in a thousand) faults in most of it, 64 KiB at a time."""

Progress = Callable[[int, int], None]
SignalingSink = Callable[[list[tuple[Pdu, FlowContext]]], None]
"""Takes the PDUs of the signaling given before the capture (--sdp), each with its context."""


@dataclass(frozen=True, slots=True)
class PacketDecode:
    """What the decoders made of one packet."""

    index: int
    """0-based packet index; the frame number is index + 1."""
    pdus: tuple[Pdu, ...]
    findings: tuple[Finding, ...]
    depths: tuple[int, ...] = ()
    """How deep each PDU was dispatched: 0 for the flow's decoder, 1 for what a PDU carried
    (a TURN Data indication's STUN, a ChannelData's DTLS), and so on."""
    bases: tuple[int | None, ...] = ()
    """Where each PDU's spans count from: the offset in the datagram's payload, or the offset in
    its direction's TCP stream; None when its bytes are not the wire's (inflated, de-chunked)."""
    carried: tuple[int, int] | None = None
    """TCP: (stream offset, offset in the payload) of the first new byte this packet carried."""
    context: FlowContext | None = None
    """The context the decoders were given for this packet, when they were called (analyses are
    fed with it rather than a second one built per packet)."""
    late: bool = False
    """More for a packet yielded before: the end of a pass flushed the TCP reassembly of the flow
    this packet ended (tcp.gap findings, PDUs from bytes that waited behind a hole). Consumers
    add its PDUs and findings to the packet's (see `Decoding.more`)."""

    def frame_span(self, k: int, span: tuple[int, int], payload_offset: int, payload_len: int) -> Span:
        """The frame bytes of `span` (relative to PDU k's data), cut to what this packet carried;
        None when none of them are in this packet."""
        base = self.bases[k] if k < len(self.bases) else None
        if base is None or span == (0, 0):
            return None
        lo, hi = base + span[0], base + span[1]
        if self.carried is None:  # a datagram: the payload is the data
            start, end = max(lo, 0), min(hi, payload_len)
            return (payload_offset + start, payload_offset + end) if start < end else None
        stream, skip = self.carried
        start, end = max(lo, stream), min(hi, stream + payload_len - skip)
        if start >= end:
            return None
        return (payload_offset + skip + start - stream, payload_offset + skip + end - stream)


Span = tuple[int, int] | None


class _PduList(list[Pdu]):
    """The PDUs of one packet in order, with the dispatch depth and span base of each."""

    def __init__(self) -> None:
        super().__init__()
        self.depths: list[int] = []
        self.bases: list[int | None] = []
        self.carried: tuple[int, int] | None = None
        self.context: FlowContext | None = None
        self.as_datagram: tuple[FlowContext, FlowContext] | None = None
        """(a TCP context, the same as "udp"): for the datagrams a stream carries (TURN over TCP),
        made once per packet rather than once per datagram."""

    def decode(self, i: int, findings: list[Finding], late: bool = False) -> PacketDecode:
        """What the decoders made of packet `i`: these PDUs and `findings`."""
        return PacketDecode(
            i,
            tuple(self),
            tuple(findings),
            tuple(self.depths),
            tuple(self.bases),
            self.carried,
            self.context,
            late,
        )


_UNSET = object()
"""A direction's decoder state before `new_state()` was called (None is a state)."""


@dataclass(slots=True)
class _Pass:
    """What one decoding pass knows of the third-party decoders across flows."""

    timeouts: dict[str, int] = field(default_factory=dict)
    disabled: set[str] = field(default_factory=set)
    """Decoders that overran their budget on MAX_TIMEOUTS flows: not called again in this pass."""


@dataclass(slots=True)
class _Direction:
    state: object = _UNSET
    reassembly: TcpDirection = field(default_factory=TcpDirection)
    buffer: bytearray = field(default_factory=bytearray)
    base: int = 0
    """Stream offset of buffer[0]."""
    need: int = 0
    failed: bool = False
    skip: int = 0
    """Bytes still to drop unread (DecodeResult.skip)."""
    skip_through: int = -1
    """The last packet of this direction whose bytes were dropped ahead, unread (`_skip_ahead`)."""
    ahead: tuple[npt.NDArray[np.int64], ...] | None = None
    """This direction's packets and their stream positions, for `_skip_ahead`."""


@dataclass(slots=True)
class _FlowState:
    decoder: Decoder | None = None
    how: str = ""
    tries: int = 0
    """Payloads offered to the heuristics (since the last hole, for TCP)."""
    dead: bool = False
    """No decoder took the flow within its sniff budget: its later packets are not read."""
    buried: bool = False
    """The pass has taken note that the flow is dead (see `Session._bury`)."""
    planned: dict[int, list[Finding]] | None = None
    """A dead flow's later findings (`tcp.gap`), worked out from the headers; None when its
    segments are still reassembled one by one, for their gaps only."""
    directions: tuple[_Direction, _Direction] = field(default_factory=lambda: (_Direction(), _Direction()))
    inner_states: dict[tuple[int, str], object] = field(default_factory=dict)
    inner_streams: dict[tuple[int, str], bytes] = field(default_factory=dict)
    """Per direction and decoder, the bytes of stream inner payloads (TLS plaintext) that the
    decoder did not consume yet: the next payload is given after them, as TCP reassembly does."""
    shared: dict[str, object] = field(default_factory=dict)
    """FlowContext.shared: state both directions of the flow see, for this decoding pass."""
    run: _Pass = field(default_factory=_Pass)
    """The pass's (shared by all its flows)."""
    excluded: set[str] = field(default_factory=set)
    """Decoders that failed on this flow (a bad result, a timeout, a sniff or new_state that
    raised): not chosen for it again, nor given its inner payloads."""


class _Walk:
    """The packets one call of a decoding pass visits, in frame order: all of [lo, hi), `packets`,
    or all but `skip`. A sparse pass leaves out from the start the packets that can change nothing
    (outside any flow, or without payload and SYN) and, as it goes, what `leave_out` names (the
    later packets of flows no decoder took, segments inside skipped bytes), never those in `keep`
    (packets with findings from the index, each flow's last packet, where its reassembly is
    flushed). The mask is read a chunk at a time, so the packets left out cost no Python step each.
    `ahead` says whether the call may look past the packet at hand (`Decoding.more(final=True)`):
    only then do `_bury` and `_skip_ahead` work out later packets from their headers."""

    CHUNK = 4096

    def __init__(
        self,
        lo: int,
        hi: int,
        packets: Sequence[int] | None,
        skip: npt.NDArray[np.bool_] | None,
        quiet: npt.NDArray[np.bool_] | None,
        keep: npt.NDArray[np.int64],
        ahead: bool,
    ) -> None:
        """`skip` and `quiet` are masks over [lo, hi); `keep` holds packet indexes within it."""
        self.sparse = quiet is not None and packets is None
        self.ahead = ahead
        self._packets = packets
        self._lo = lo
        self._hi = hi
        self._by_flow: list[npt.NDArray[np.int64]] | None = None
        self._visit: npt.NDArray[np.bool_] | None = None
        self._keep_mask: npt.NDArray[np.bool_] | None = None
        """The packets `keep` names, as a mask: `leave_out` looks them up in it (np.isin over all
        of `keep`, which grows with the flows, made a sparse pass quadratic in them)."""
        self._changed = False
        if skip is not None:
            self._visit = ~skip
        if self.sparse:
            assert quiet is not None
            self._visit = ~quiet if self._visit is None else self._visit & ~quiet
            self._visit[keep - lo] = True
            self._keep_mask = np.zeros(hi - lo, np.bool_)
            self._keep_mask[keep - lo] = True

    def __iter__(self) -> Iterator[int]:
        if self._packets is not None:
            yield from self._packets
            return
        lo, hi = self._lo, self._hi
        if self._visit is None:
            yield from range(lo, hi)
            return
        visit = self._visit
        for a in range(0, hi - lo, self.CHUNK):
            b = min(hi - lo, a + self.CHUNK)
            # The mask is read a chunk at a time, and again for the rest of the chunk when a flow
            # was buried in it.
            self._changed = False
            todo = (np.flatnonzero(visit[a:b]) + (a + lo)).tolist()
            k = 0
            while k < len(todo):
                i = todo[k]
                k += 1
                yield i
                if self._changed:
                    self._changed = False
                    todo, k = (np.flatnonzero(visit[i + 1 - lo : b]) + i + 1).tolist(), 0

    def flow_packets(self, flow: npt.NDArray[np.int32], nflows: int, fid: int) -> npt.NDArray[np.int64]:
        """Flow `fid`'s packets before the end of this call (`ahead` calls only)."""
        if self._by_flow is None:
            self._by_flow = packets_by_flow(flow[: self._hi], nflows)
        return self._by_flow[fid]

    def leave_out(self, packets: npt.NDArray[np.int64], keep: Sequence[int] = ()) -> None:
        """Visit none of `packets` but those in `keep` and those with findings from the index."""
        if not self.sparse or self._visit is None or len(packets) == 0:
            return
        assert self._keep_mask is not None
        self._changed = True
        kept = np.asarray(keep, np.int64)
        lo = self._lo
        if lo:  # the masks start at lo (what is before it was visited by an earlier call)
            packets = packets[packets >= lo] - lo
            kept = kept[kept >= lo] - lo
        self._visit[packets] = self._keep_mask[packets]
        self._visit[kept] = True


class Session:
    """An indexed capture plus the decoders to run over it."""

    def __init__(self, index: PacketIndex, registry: Registry) -> None:
        self.index = index
        self.registry = registry
        self.progress: Progress | None = None
        """Called as (packets done, packets) during decoding passes (the CLI draws a bar)."""
        self.display_filter: str | None = None
        """-Y: reports of packets and findings keep only the packets it matches."""
        self._capture: dict[str, object] = {}
        """FlowContext.capture of the current pass: what flows teach each other (ICE passwords)."""
        self._hints: dict[tuple[str, str, int], dict[str, str]] = {}
        """(transport, ip, port) -> hints announced by signaling (RTP clock rates), for its flows."""
        self._secrets_read = 0
        """pcapng Decryption Secrets Blocks already added to the key log."""
        self.learn_secrets()

    def learn_secrets(self) -> int:
        """Add the key log lines the capture carries (pcapng DSBs of type TLSK, as `editcap
        --inject-secrets` writes them), and what `--keylog`'s files gained since the last look, to
        the key log the decoders read; returns the secrets added. Called at each look at a growing
        capture, before its new packets are decoded."""
        files = self.registry.options.get("tls.keylog_files")
        added = files.refresh() if isinstance(files, KeyLogFiles) else 0
        blocks = self.index.capture.records.secrets
        if len(blocks) <= self._secrets_read:
            return added
        keylog = self.registry.options.get("tls.keylog")
        if not isinstance(keylog, KeyLog):
            keylog = KeyLog()
            self.registry.configure({**self.registry.options, "tls.keylog": keylog})
        for stype, data in blocks[self._secrets_read :]:
            if stype == SECRETS_TLS_KEY_LOG:
                added += keylog.add_text(data.decode("utf-8", "replace"), "pcapng DSB")[0]
        self._secrets_read = len(blocks)
        return added

    @classmethod
    def open(cls, path: str | os.PathLike[str], registry: Registry, growing: bool = False) -> Session:
        return cls(load(path, growing), registry)

    @property
    def flows(self) -> list[Flow]:
        return self.index.flows

    def close(self) -> None:
        self.index.close()

    def context(self, i: int, shared: dict[str, object] | None = None) -> FlowContext:
        ix = self.index
        flow = ix.flows[int(ix.flow[i])]
        c2s = int(ix.direction[i]) == 0
        src, dst = (flow.client, flow.server) if c2s else (flow.server, flow.client)
        transport: Literal["tcp", "udp"] = "tcp" if flow.transport == "tcp" else "udp"
        hints: dict[str, str] = {}
        if self._hints:
            for ep in (src, dst):
                hints.update(self._hints.get((transport, ep.ip, ep.port), {}))
        return FlowContext(
            hints=hints,
            capture=self._capture,
            flow=flow.id,
            transport=transport,
            src=src,
            dst=dst,
            from_client=c2s,
            frame=i + 1,
            time=ix.time(i),
            shared={} if shared is None else shared,
        )

    def file_findings(self) -> list[Finding]:
        """Findings about the file rather than a packet (e.g. it ends inside a record)."""
        n = len(self.index)
        return [f for i, f in self.index.findings if i >= n]

    def signaling(self) -> list[tuple[Pdu, FlowContext]]:
        """--sdp: the signaling given before the capture (registry option "sdp.signaling", see
        inspector/sdpfiles.py), decoded by the "sdp" decoder as frame 0 of no flow at the time of
        the capture's first packet, each PDU with its context. What it announces is learnt by the
        current pass as in-capture signaling's is (`_collect`): RTP/STUN expectations with their
        hints (clock rates, SDES keys) here, ICE passwords by the decoder into ctx.capture."""
        from .sdpfiles import SIGNALING_OPTION, decode_signaling

        messages = self.registry.options.get(SIGNALING_OPTION)
        decoder = self.registry.decoders.get("sdp")
        if not messages or decoder is None or not isinstance(messages, tuple):
            return []
        time = self.index.time(0) if len(self.index) else 0.0
        decoded = decode_signaling(messages, decoder, self._capture, time)
        for pdu, _ in decoded:
            self._expect(pdu)
        return decoded

    def _expect(self, pdu: Pdu) -> None:
        """What a PDU announces (SDP's media endpoints): an expectation of the protocol there and
        the hints that go with it (clock rates, SDES keys), for the flows still to come."""
        for e in pdu.expect:
            self.registry.expect(Expectation(e.transport, e.ip, e.port, e.protocol))
            self._hints.setdefault((e.transport, e.ip, e.port), {}).update(e.hints)

    def decoding(
        self,
        sparse: bool = False,
        skip: npt.NDArray[np.bool_] | None = None,
        on_signaling: SignalingSink | None = None,
    ) -> Decoding:
        """A decoding pass to take a piece at a time as the index grows (`Decoding.more`); `sparse`
        and `skip` as in `decode`. Starting one forgets what the last pass learnt across flows
        (ICE passwords, signaling's hints and expectations), so every pass gives the same.
        `on_signaling` gets the --sdp PDUs (`signaling()`) once, before the first packet."""
        return Decoding(self, sparse, skip, on_signaling=on_signaling)

    def decode(
        self,
        progress: Progress | None = None,
        packets: Sequence[int] | None = None,
        skip: npt.NDArray[np.bool_] | None = None,
        sparse: bool = False,
        on_signaling: SignalingSink | None = None,
    ) -> Iterator[PacketDecode]:
        """Decode every packet in frame order, or only `packets` (ascending 0-based indexes).

        Decoder state is per flow, so the packets of one flow alone decode exactly as in the full
        pass: the viewer re-decodes one flow up to the selected packet this way (reusing what the
        last pass learnt across flows). `skip` makes a full pass that leaves out the packets it
        marks (the bulk RTP path reads those itself). `sparse` leaves out the packets of flows no
        decoder took (after their sniff budget) that have no finding: reports that only count PDUs
        and findings need not look at them. `on_signaling` as in `decoding()`. The full pass is
        `decoding()` run once to the end.
        """
        progress = progress or self.progress
        if packets is not None:
            return Decoding(self, False, None, packets).more(final=True, progress=progress)
        return Decoding(self, sparse, skip, on_signaling=on_signaling).more(final=True, progress=progress)

    def _bury(self, fid: int, i: int, st: _FlowState, tcp: bool, last: int, walk: _Walk) -> None:
        """A flow died at packet `i` of a full pass: work out the findings of its later packets from
        the headers, and leave those without one out of a sparse pass."""
        ix = self.index
        everything = walk.flow_packets(ix.flow, len(ix.flows), fid)
        later = everything[int(np.searchsorted(everything, i, side="right")) :]
        st.planned = {}
        if not tcp or len(later) == 0:
            walk.leave_out(later)
            return
        planned: dict[int, list[Finding]] = {}
        flushed: list[list[Gap]] = []
        for side in (0, 1):
            mine = everything[ix.direction[everything] == side]
            at_push, at_flush = planned_gaps(
                ix.tcp_seq[mine], ix.tcp_flags[mine], ix.captured_payload_len(mine)
            )
            for pos, gap in at_push:
                packet = int(mine[pos])
                if packet > i:
                    planned.setdefault(packet, []).append(_gap_finding(gap))
            flushed.append(at_flush)
        if last > i:
            # At the flow's last packet the other direction's flush is reported first, then what
            # this packet's push and its own direction's flush gave.
            own = int(ix.direction[last])
            at_last = [
                *(_gap_finding(g) for g in flushed[1 - own]),
                *planned.pop(last, []),
                *(_gap_finding(g) for g in flushed[own]),
            ]
            if at_last:
                planned[last] = at_last
        st.planned = planned
        walk.leave_out(later, keep=list(planned))

    # -- datagrams -------------------------------------------------------------------------

    def _udp(self, i: int, st: _FlowState, pdus: _PduList, findings: list[Finding]) -> None:
        data = self.index.payload(i)
        if not data:
            return
        ctx = pdus.context = self.context(i, st.shared)
        if st.decoder is None:
            st.tries += 1
            st.decoder, st.how = self._choose(data, ctx, findings, st)
            if st.decoder is None:
                st.dead = st.dead or st.tries >= SNIFF_DATAGRAMS
                return
            self._pin(ctx.flow, st.decoder)
        decoder = st.decoder
        d = st.directions[0 if ctx.from_client else 1]
        if d.state is _UNSET:
            d.state = self._new_state(decoder, st, findings)
            if d.state is _UNSET:
                return
        result = self._run(decoder, data, d.state, ctx, findings, st)
        if result is not None:
            self._collect(result, ctx, st, pdus, findings, 0, 0)

    def _icmp(
        self, i: int, st: _FlowState, quoted: QuotedFlows, pdus: _PduList, findings: list[Finding]
    ) -> None:
        """Packet `i`, outside any flow, carries an ICMP message: the "icmp" decoder's PDU, fed to
        analyses with the context of the UDP flow the error quotes (inspector/icmp_errors.py). `st`
        is the pass's one state for all ICMP packets: a decoder that fails is dropped from it."""
        decoder = self.registry.decoders.get("icmp")
        if decoder is None or decoder.name in st.excluded or decoder.name in st.run.disabled:
            return
        message = icmp_message(self.index, i)
        if message is None:
            return
        data, src, dst = message
        ctx = icmp_context(self.index, i, src, dst, self._capture)
        d = st.directions[0]
        if d.state is _UNSET:
            d.state = self._new_state(decoder, st, findings)
            if d.state is _UNSET:
                return
        result = self._run(decoder, data, d.state, ctx, findings, st)
        if result is None:
            return
        ctx = pdus.context = quoted.context(self.index.flows, result.pdus, ctx)
        self._collect(result, ctx, st, pdus, findings, 0, None)

    # -- streams ---------------------------------------------------------------------------

    def _tcp(
        self,
        i: int,
        st: _FlowState,
        pdus: _PduList,
        findings: list[Finding],
        decode: bool,
        last: int,
        walk: _Walk,
    ) -> None:
        ix = self.index
        direction = int(ix.direction[i])
        d = st.directions[direction]
        events: list[Event] = []
        if i > d.skip_through:  # else `_skip_ahead` took this segment already
            events = d.reassembly.push(i, int(ix.tcp_seq[i]), int(ix.tcp_flags[i]), ix.payload(i))
        if i == last:
            # The flow ends here. This packet's bytes are decoded before what the flush gives, as
            # when a pass that met this packet before the capture ended flushes later (`_flush`).
            self._flush_other(i, st, direction, findings)
            self._stream(i, st, d, direction, events, pdus, findings, decode, last, walk)
            events = d.reassembly.flush(i)
        self._stream(i, st, d, direction, events, pdus, findings, decode, last, walk)

    def _flush(self, i: int, st: _FlowState, pdus: _PduList, findings: list[Finding], decode: bool) -> None:
        """The end of a flow whose last packet, `i`, was decoded before the pass knew it was the
        last: its TCP reassembly is flushed there (what `_tcp` does at a flow's last packet)."""
        direction = int(self.index.direction[i])
        d = st.directions[direction]
        self._flush_other(i, st, direction, findings)
        self._stream(i, st, d, direction, d.reassembly.flush(i), pdus, findings, decode, i, None)

    @staticmethod
    def _flush_other(i: int, st: _FlowState, direction: int, findings: list[Finding]) -> None:
        """At a flow's last packet, the other side's holes that never filled: its gaps are
        reported, the bytes behind them not decoded."""
        for ev in st.directions[1 - direction].reassembly.flush(i):
            if isinstance(ev, Gap):
                findings.append(_gap_finding(ev))

    def _stream(
        self,
        i: int,
        st: _FlowState,
        d: _Direction,
        direction: int,
        events: list[Event],
        pdus: _PduList,
        findings: list[Finding],
        decode: bool,
        last: int,
        walk: _Walk | None,
    ) -> None:
        """Decode what reassembly released at packet `i` for one direction."""
        ix = self.index
        fresh = 0
        for ev in events:
            if isinstance(ev, Gap):
                findings.append(_gap_finding(ev))
                d.buffer.clear()
                d.need = 0
                d.skip = max(0, d.skip - ev.missing)
                if st.decoder is None:
                    st.tries = 0  # the bytes after a hole are a fresh start for the heuristics
                    fresh = 0
            elif decode:
                data, offset = ev.data, ev.offset
                if d.skip:
                    cut = min(d.skip, len(data))
                    d.skip -= cut
                    data, offset = data[cut:], offset + cut
                    if not data:
                        continue
                if not d.buffer:
                    d.base = offset
                d.buffer += data
                fresh += 1
                if ev.frame == i:
                    pdus.carried = (offset, len(ix.payload(i)) - len(data))
        if not decode or not fresh or d.failed:
            if decode and d.skip and i != last and walk is not None:
                # A segment inside skipped bytes: skip on from it.
                self._skip_ahead(i, int(ix.flow[i]), direction, d, last, walk)
            return
        ctx = pdus.context = self.context(i, st.shared)
        if st.decoder is None:
            st.tries += 1
            with memoryview(d.buffer) as view:
                start = bytes(view[:SNIFF_BYTES])
            st.decoder, st.how = self._choose(start, ctx, findings, st)
            if st.decoder is None:
                if st.dead or st.tries >= SNIFF_SEGMENTS:
                    st.dead = True
                    for side in st.directions:
                        side.buffer.clear()
                return
            self._pin(ctx.flow, st.decoder)
        decoder = st.decoder
        if d.need and len(d.buffer) < d.need:
            return
        if d.state is _UNSET:
            d.state = self._new_state(decoder, st, findings)
            if d.state is _UNSET:
                return
        window = len(d.buffer)  # the first call on new bytes gets them all
        while d.buffer:
            size = len(d.buffer)
            if window >= size:
                data = bytes(d.buffer)
            else:
                with memoryview(d.buffer) as view:
                    data = bytes(view[:window])
            result = self._run(decoder, data, d.state, ctx, findings, st)
            if result is None:
                d.failed = True
                d.buffer.clear()
                return
            self._collect(result, ctx, st, pdus, findings, 0, d.base)
            consumed = max(0, min(result.consumed, len(data)))
            if result.skip > 0:
                d.skip = result.skip
                cut = min(d.skip, size - consumed)
                consumed += cut
                d.skip -= cut
            del d.buffer[:consumed]  # from the front of a bytearray: no copy of the rest
            d.base += consumed
            d.need = result.need
            if (consumed == 0 and len(data) == size) or (d.need and len(d.buffer) < d.need):
                break
            window = max(STREAM_WINDOW, d.need, 2 * (consumed or len(data)))
        if len(d.buffer) > MAX_STREAM_BUFFER:
            findings.append(
                Finding(
                    "error",
                    f"{decoder.name}.buffer_limit",
                    f"{len(d.buffer)} unconsumed bytes exceed {MAX_STREAM_BUFFER}; they are dropped",
                )
            )
            d.buffer.clear()
            d.need = 0
        if d.skip and i != last and walk is not None:
            self._skip_ahead(i, int(ix.flow[i]), direction, d, last, walk)

    def _skip_ahead(self, i: int, fid: int, direction: int, d: _Direction, last: int, walk: _Walk) -> None:
        """Drop the bytes a decoder skips (DecodeResult.skip) from the segments that follow packet
        `i` in its direction, as far as they arrive in order, from their headers alone: a sparse pass
        does not visit them and a full one does not read them. Only in a call that may look ahead
        (`_Walk.ahead`): otherwise the segments drop the skipped bytes as they come."""
        if not walk.ahead or not d.reassembly.settled:
            return
        ix = self.index
        if d.ahead is None:
            everything = walk.flow_packets(ix.flow, len(ix.flows), fid)
            mine = everything[ix.direction[everything] == direction]
            length = ix.captured_payload_len(mine)
            d.ahead = (mine, *positions(ix.tcp_seq[mine], ix.tcp_flags[mine], length), length)
        mine, start, end, length = d.ahead
        k = int(np.searchsorted(mine, i, side="right"))
        before = d.reassembly.offset
        stop = in_order_run(d.reassembly, start, end, length, k, until=before + d.skip)
        if stop > k:
            d.skip -= d.reassembly.offset - before
            d.skip_through = int(mine[stop - 1])
            walk.leave_out(mine[k:stop], keep=[last])

    # -- shared ----------------------------------------------------------------------------

    def _choose(
        self, data: bytes, ctx: FlowContext, findings: list[Finding], st: _FlowState
    ) -> tuple[Decoder | None, str]:

        def sniff(decoder: Decoder, data: bytes, ctx: FlowContext) -> bool:
            took = self._guarded(decoder, "sniff", len(data), st, findings, _sniffs, decoder, data, ctx)
            return took is True

        excluded = st.excluded | st.run.disabled if st.run.disabled else st.excluded
        try:
            return self.registry.choose(data, ctx, sniff, excluded)
        except Exception as exc:
            findings.append(
                Finding(
                    "error",
                    "decoder.sniff_exception",
                    f"choosing a decoder raised {type(exc).__name__}: {exc}",
                )
            )
            return None, ""

    def _pin(self, fid: int, decoder: Decoder) -> None:
        protos = self.index.flows[fid].protocols
        if decoder.name not in protos:
            protos.append(decoder.name)

    def _new_state(self, decoder: Decoder, st: _FlowState, findings: list[Finding]) -> object:
        """The decoder's new_state(), or _UNSET when it failed (the decoder is then dropped for the
        flow)."""
        return self._guarded(decoder, "new_state", 0, st, findings, decoder.new_state)

    def _guarded(
        self,
        decoder: Decoder,
        step: str,
        size: int,
        st: _FlowState,
        findings: list[Finding],
        call: Callable[..., object],
        *args: object,
    ) -> object:
        """`call(*args)`, one step of a decoder: under the guest guard and a budget for `size` bytes
        when the decoder is a plugin's, directly otherwise. A failure drops the decoder for the flow
        with a finding (`_failed`) and gives _UNSET. (decode has its own: its in-tree path is the
        hot one, and a guest's result is checked under the guard.)"""
        try:
            if decoder.name in self.registry.guests:
                return call_guest(call_budget(size), call, *args)
            return call(*args)
        except GuestFailure as exc:
            self._failed(decoder, exc.kind, exc.detail, step, st, findings)
        except Exception as exc:
            self._failed(decoder, "exception", f"raised {type(exc).__name__}: {exc}", step, st, findings)
        return _UNSET

    def _run(
        self,
        decoder: Decoder,
        data: bytes,
        state: object,
        ctx: FlowContext,
        findings: list[Finding],
        st: _FlowState,
    ) -> DecodeResult | None:
        if decoder.name in self.registry.guests:
            try:
                checked = call_guest(call_budget(len(data)), _decodes, decoder, data, state, ctx)
            except GuestFailure as exc:
                self._failed(decoder, exc.kind, exc.detail, "decode", st, findings)
                return None
            if isinstance(checked, ContractError):
                self._failed(
                    decoder, "bad_result", f"returned a bad result: {checked}", "decode", st, findings
                )
                return None
            return checked
        try:
            result = decoder.decode(data, state, ctx)
        except Exception as exc:
            self._failed(decoder, "exception", f"raised {type(exc).__name__}: {exc}", "decode", st, findings)
            return None
        if not isinstance(result, DecodeResult):
            detail = f"returned a bad result: a {type(result).__name__}, not a DecodeResult"
            self._failed(decoder, "bad_result", detail, "decode", st, findings)
            return None
        return result

    def _failed(
        self,
        decoder: Decoder,
        kind: str,
        detail: str,
        during: str,
        st: _FlowState,
        findings: list[Finding],
    ) -> None:
        """A decoder's call failed: a finding naming it, and unless it raised in `decode` (then only
        that packet, or for a stream that direction, is lost, as ever), the decoder is dropped for
        the flow; a timeout on MAX_TIMEOUTS flows drops it for the rest of the pass."""
        name = decoder.name
        if kind == "exception" and during == "decode":
            findings.append(Finding("error", f"{name}.exception", f"decoder {name} {detail}"))
            return
        after = "it is not called again on this flow"
        if kind == "timeout":
            code = "decoder.timeout"
            run = st.run
            run.timeouts[name] = run.timeouts.get(name, 0) + 1
            if run.timeouts[name] >= MAX_TIMEOUTS:
                run.disabled.add(name)
                after = f"it is not called again in this pass (timed out on {MAX_TIMEOUTS} flows)"
        elif kind == "bad_result":
            code = "decoder.bad_result"
        elif during == "sniff":
            code = "decoder.sniff_exception"
        else:
            code = f"{name}.exception"
        where = "" if kind == "bad_result" else f" in {during}"
        findings.append(Finding("error", code, f"decoder {name} {detail}{where}: {after}"))
        st.excluded.add(name)
        if st.decoder is not None and st.decoder.name == name:
            st.dead = True
            for side in st.directions:
                side.failed = True
                side.buffer.clear()
                side.need = 0

    def _collect(
        self,
        result: DecodeResult,
        ctx: FlowContext,
        st: _FlowState,
        pdus: _PduList,
        findings: list[Finding],
        depth: int,
        base: int | None,
    ) -> None:
        """Gather a decode's PDUs; `base` is where the spans of the data it was given count from."""
        findings.extend(result.findings)
        for inner in result.inner:
            self._inner(inner, ctx, st, pdus, findings, depth + 1, base)
        for pdu in result.pdus:
            pdus.append(pdu)
            pdus.depths.append(depth)
            pdus.bases.append(base)
            self._expect(pdu)
            findings.extend(pdu.findings)
            for inner in pdu.inner:
                self._inner(inner, ctx, st, pdus, findings, depth + 1, base)

    def _inner(
        self,
        inner: InnerPayload,
        ctx: FlowContext,
        st: _FlowState,
        pdus: _PduList,
        findings: list[Finding],
        depth: int,
        base: int | None,
    ) -> None:
        if depth > MAX_INNER_DEPTH:
            findings.append(
                Finding(
                    "warn", "decoder.inner_too_deep", f"inner payloads nest deeper than {MAX_INNER_DEPTH}"
                )
            )
            return
        decoder: Decoder | None
        if inner.protocol is not None:
            decoder = self.registry.decoders.get(inner.protocol)
            if decoder is not None and (decoder.name in st.excluded or decoder.name in st.run.disabled):
                return
        else:
            decoder, _ = self._choose(inner.data, ctx, findings, st)
        if decoder is None:
            return
        self._pin(ctx.flow, decoder)
        key = (0 if ctx.from_client else 1, decoder.name)
        state = st.inner_states.get(key, _UNSET)
        if state is _UNSET:
            state = self._new_state(decoder, st, findings)
            if state is _UNSET:
                return
            st.inner_states[key] = state
        if inner.transport == "datagram" and ctx.transport == "tcp":
            # A datagram carried in a stream (TURN over TCP relays UDP): decoded as a datagram.
            if pdus.as_datagram is None or pdus.as_datagram[0] is not ctx:
                pdus.as_datagram = (ctx, dataclasses.replace(ctx, transport="udp"))
            ctx = pdus.as_datagram[1]
        if inner.transport == "stream" and decoder.transport != "datagram":
            self._inner_stream(inner, decoder, key, state, ctx, st, pdus, findings, depth, base)
            return
        result = self._run(decoder, inner.data, state, ctx, findings, st)
        if result is not None:
            self._collect(
                result, ctx, st, pdus, findings, depth, None if base is None else base + inner.offset
            )

    def _inner_stream(
        self,
        inner: InnerPayload,
        decoder: Decoder,
        key: tuple[int, str],
        state: object,
        ctx: FlowContext,
        st: _FlowState,
        pdus: _PduList,
        findings: list[Finding],
        depth: int,
        base: int | None,
    ) -> None:
        """A stream carried in another protocol's PDUs (TLS application data): the payloads of one
        direction are one byte stream, decoded as reassembled TCP bytes are, from the first byte
        its decoder has not consumed. Spans count from this payload only when nothing was held."""
        held = st.inner_streams.get(key, b"")
        data = held + inner.data if held else inner.data
        at = None if base is None or held else base + inner.offset
        while data:
            result = self._run(decoder, data, state, ctx, findings, st)
            if result is None:
                st.inner_streams.pop(key, None)
                return
            self._collect(result, ctx, st, pdus, findings, depth, at)
            used = min(len(data), result.consumed + result.skip)
            if used == 0 or result.need or used == len(data):
                data = data[used:]
                break
            data = data[used:]
            at = None
        if len(data) > MAX_INNER_STREAM:
            findings.append(
                Finding(
                    "warn",
                    "decoder.inner_stream_limit",
                    f"{decoder.name}: more than {MAX_INNER_STREAM} bytes held undecoded; dropped",
                )
            )
            data = b""
        if data:
            st.inner_streams[key] = bytes(data)
        else:
            st.inner_streams.pop(key, None)


class Decoding:
    """One decoding pass over an index that may grow: `more()` decodes the packets that arrived
    since its last call and keeps, between calls, what it knows (each flow's decoder, its states,
    TCP reassembly and unconsumed bytes, FlowContext.shared, and what flows taught each other).

    Knowledge of the future is used only in a call that says none will come (`final=True`): there
    each flow's last packet flushes its TCP reassembly, a flow no decoder took has its later
    findings worked out from the headers (`Session._bury`), and bytes a decoder skips are dropped
    from the segments ahead unread (`Session._skip_ahead`), as a file's pass always did. A call
    with final=False never looks past its `upto`, so what it yields stays true when more comes.
    """

    def __init__(
        self,
        session: Session,
        sparse: bool,
        skip: npt.NDArray[np.bool_] | None,
        packets: Sequence[int] | None = None,
        on_signaling: SignalingSink | None = None,
    ) -> None:
        self.session = session
        session.learn_secrets()
        self.sparse = sparse
        self.skip = skip
        """Packets to leave out (the bulk RTP path reads them); those past its end are decoded."""
        self._packets = packets
        """A flow decoded again (`Session.decode(packets=...)`): one final call over these, with
        what the last pass learnt across flows."""
        self._states: dict[int, _FlowState] = {}
        self._run = _Pass()
        self._next = 0
        """The first packet not decoded yet."""
        self._ended = False
        self._release_at = RELEASE_EVERY
        self._quiet_flows: list[int] = []
        """Datagram flows no decoder took, found so by a call that could not look ahead: a sparse
        pass leaves their packets out from the next call on (as `Session._bury` does at once)."""
        self._taken = 0
        """Entries of the index's findings read so far."""
        self._waiting: list[tuple[int, Finding]] = []
        """The index's findings for packets not decoded yet (and the file's, past its end)."""
        self._capture: dict[str, object] = {}
        """What this pass's flows taught each other: Session._capture, Session._hints and the
        registry's expectations while it runs."""
        self._hints: dict[tuple[str, str, int], dict[str, str]] = {}
        self._expectations: dict[tuple[str, str, int], str] = {}
        self._icmp_state = _FlowState(run=self._run)
        """The decoder state of the ICMP messages (packets outside any flow) of this pass."""
        self._quoted = QuotedFlows()
        self._on_signaling = on_signaling
        self._signaled = False
        """The --sdp signaling was learnt (at the first call that has a packet, or the final one)."""

    def decoder_state(self, fid: int, direction: int, name: str) -> object | None:
        """The state decoder `name` keeps for one direction of flow `fid` in this pass: the
        flow's own decoder's, or that of a payload carried in the flow (RTP demultiplexed from a
        STUN flow); None when it has none. For a bulk path that goes on from where the pass left
        a flow (SRTP keys and rollover counters): read it, never share it with another pass."""
        st = self._states.get(fid)
        if st is None:
            return None
        inner = st.inner_states.get((direction, name), _UNSET)
        if inner is not _UNSET:
            return inner
        if st.decoder is not None and st.decoder.name == name:
            state = st.directions[direction].state
            return None if state is _UNSET else state
        return None

    def flow_shared(self, fid: int) -> dict[str, object] | None:
        """FlowContext.shared of flow `fid` in this pass (what its DTLS handshake taught its SRTP),
        None for a flow the pass has not met."""
        st = self._states.get(fid)
        return None if st is None else st.shared

    @property
    def done(self) -> int:
        """Packets decoded so far (the next call starts at this index)."""
        return self._next

    def more(
        self, upto: int | None = None, final: bool = False, progress: Progress | None = None
    ) -> Iterator[PacketDecode]:
        """Decode the packets from where the last call stopped to `upto` (default: the index's
        length), in frame order.

        `final=True` says no packet comes after `upto`: each flow's reassembly is flushed at its
        last packet, and a flow whose last packet an earlier call yielded is flushed at the end:
        what that gives comes as one more PacketDecode for that packet with `late=True`, after
        this call's packets, in frame order. Findings the index gained for packets decoded before
        (a growing index gives some only when it is finished) come late the same way, at the end
        of any call. No call does anything after a final one.
        """
        if self._ended:
            return
        session = self.session
        session.learn_secrets()
        ix = session.index
        own = self._packets is None  # a pass of its own, not a flow decoded again
        if own:
            # What this pass learnt (from nothing: every pass gives the same) is what its flows
            # see, even if another pass ran in between; a flow decoded again sees it too.
            session._capture, session._hints = self._capture, self._hints
            session.registry.expectations = self._expectations
        if not self._signaled and (len(ix) or final):
            self._signaled = True  # --sdp: learnt before the first packet (its time is theirs)
            signaling = session.signaling()
            if signaling and self._on_signaling is not None:
                self._on_signaling(signaling)
        n = len(ix)
        lo = self._next
        hi = n if upto is None or self._packets is not None else max(lo, min(upto, n))
        flow_col = ix.flow
        index_findings, earlier = self._index_findings(lo, hi)
        have_decoders = bool(session.registry.decoders)
        last: list[int] | None = None
        last_at = np.zeros(0, np.int64)
        if final:
            # Each flow's last packet: there its TCP reassembly is flushed, so a hole that never
            # filled is reported as a gap and the bytes after it are still decoded.
            last_at = np.full(len(ix.flows), -1, np.int64)
            column = flow_col[:hi]
            with_flow = column >= 0
            np.maximum.at(last_at, column[with_flow], np.flatnonzero(with_flow))
            last = last_at.tolist()
            del with_flow, column
        # Packets outside any flow that carry ICMP (None: none do) are decoded too, by `_icmp`.
        icmp = icmp_stacks(ix.stacks) if own and "icmp" in session.registry.decoders else None
        stack_col = ix.stack
        quiet = None
        if self.sparse and own:
            span = np.arange(lo, hi, dtype=np.int64)
            payload = ix.captured_payload_len(span)
            quiet = (flow_col[lo:hi] < 0) | ((payload == 0) & ((ix.tcp_flags[lo:hi] & TCP_SYN) == 0))
            del payload, span
            if self._quiet_flows:
                dead = np.zeros(len(ix.flows) + 1, np.bool_)  # the last: packets outside any flow
                dead[self._quiet_flows] = True
                quiet |= dead[flow_col[lo:hi]]
            if icmp is not None:
                quiet &= ~icmp[stack_col[lo:hi]]
        keep = np.concatenate(
            (np.fromiter(index_findings, np.int64, len(index_findings)), last_at[last_at >= lo])
        )
        keep = keep[keep < hi]
        skip = None
        if self.skip is not None and own:
            skip = np.zeros(hi - lo, np.bool_)
            known = self.skip[lo:hi]
            skip[: len(known)] = known
        walk = _Walk(lo, hi, self._packets, skip, quiet, keep, final)
        states, run = self._states, self._run
        step = max(1, (hi - lo) // 200)
        report_at = lo
        release_at = self._release_at
        reached = lo
        try:
            for i in walk:
                if progress is not None and i >= report_at:
                    progress(i, hi)
                    report_at = i + step
                if own and i >= release_at:
                    ix.capture.release_pages()
                    release_at = self._release_at = i + RELEASE_EVERY
                fid = int(flow_col[i])
                pdus = _PduList()
                findings: list[Finding] = list(index_findings.get(i, ()))
                if fid >= 0:
                    st = states.get(fid)
                    if st is None:
                        st = states[fid] = _FlowState(dead=not have_decoders, run=run)
                    tcp = ix.flows[fid].transport == "tcp"
                    end = last[fid] if last is not None else -1
                    if st.dead:
                        if st.planned is not None:
                            findings += st.planned.get(i, ())
                        elif tcp:
                            session._tcp(i, st, pdus, findings, False, end, walk)
                    elif tcp:
                        session._tcp(i, st, pdus, findings, True, end, walk)
                    else:
                        session._udp(i, st, pdus, findings)
                    if st.dead and not st.buried and (final or not own or not tcp):
                        st.buried = True
                        if final and own:
                            session._bury(fid, i, st, tcp, end, walk)
                        elif own:
                            # A datagram flow's later packets can give nothing: the next calls
                            # of a sparse pass leave them out. A TCP flow's may give gaps, worked
                            # out from what comes only when nothing more will (`_bury`).
                            st.planned = {}
                            self._quiet_flows.append(fid)
                elif icmp is not None and icmp[stack_col[i]]:
                    session._icmp(i, self._icmp_state, self._quoted, pdus, findings)
                reached = i + 1
                yield pdus.decode(i, findings)
            reached = hi
        finally:
            self._next = max(self._next, reached)
        late = [PacketDecode(i, (), tuple(found), late=True) for i, found in earlier.items()]
        if final:
            self._ended = True
            if own:
                late += self._flushed(lo, last_at)
                ix.capture.release_pages()
        if late:
            late.sort(key=_packet)  # stable: a packet's findings from the index before its flush
            yield from late
        if session.registry.guests:
            stop_guard()  # no guest call until the next pass: its timer need not tick
        if progress is not None:
            progress(hi, hi)

    def _index_findings(self, lo: int, hi: int) -> tuple[dict[int, list[Finding]], dict[int, list[Finding]]]:
        """The index's findings (`PacketIndex.findings`) for packets [lo, hi), by packet, and
        those it gained since the last call for packets decoded before (a growing index gives some
        only at its end: datagrams never completed, counts past FINDINGS_PER_CODE). The index's
        list only grows; what it holds for packets not decoded yet waits in `_waiting`."""
        whole = self.session.index.findings
        if len(whole) < self._taken:  # not the list this pass read (the index was read again)
            self._waiting = []
            found = [(i, f) for i, f in whole if i >= lo]
        else:
            found = whole[self._taken :]
        self._taken = len(whole)
        if self._waiting:
            found = [*self._waiting, *found]
        now: dict[int, list[Finding]] = {}
        earlier: dict[int, list[Finding]] = {}
        waiting: list[tuple[int, Finding]] = []
        for i, f in found:
            if i >= hi:
                waiting.append((i, f))
            else:
                (now if i >= lo else earlier).setdefault(i, []).append(f)
        self._waiting = waiting
        return now, earlier

    def _flushed(self, lo: int, last_at: npt.NDArray[np.int64]) -> list[PacketDecode]:
        """The end of a final call for the TCP flows whose last packet an earlier call yielded:
        their reassembly flushed there, as a late PacketDecode of that packet when it gives
        anything."""
        session = self.session
        ix = session.index
        ended = sorted(
            (end, fid)
            for fid, st in self._states.items()
            if 0 <= (end := int(last_at[fid])) < lo and ix.flows[fid].transport == "tcp"
        )
        out: list[PacketDecode] = []
        for end, fid in ended:
            st = self._states[fid]
            if st.planned is not None:
                continue  # its flush was planned with its findings (`Session._bury`)
            pdus = _PduList()
            findings: list[Finding] = []
            session._flush(end, st, pdus, findings, not st.dead)
            if pdus or findings:
                out.append(pdus.decode(end, findings, late=True))
        return out


def _sniffs(decoder: Decoder, data: bytes, ctx: FlowContext) -> bool:
    """A guest's sniff as a bool (its truth value is its code too, so it runs under the guard)."""
    return bool(decoder.sniff(data, ctx))


def _decodes(decoder: Decoder, data: bytes, state: object, ctx: FlowContext) -> DecodeResult | ContractError:
    """A guest's decode, its result checked under the same guard (building LazyFields runs its code)."""
    result = decoder.decode(data, state, ctx)
    try:
        return checked_result(result, len(data))
    except ContractError as exc:
        return exc


def _gap_finding(gap: Gap) -> Finding:
    message = f"{gap.missing} bytes were not captured at stream offset {gap.offset}"
    if gap.forced:
        message += f" (given up: MAX_OUT_OF_ORDER_BYTES, {MAX_OUT_OF_ORDER_BYTES}, waited behind the hole)"
    return Finding("warn", "tcp.gap", message)


def _packet(pd: PacketDecode) -> int:
    return pd.index


def packet_protocols(index: PacketIndex, i: int, pdus: tuple[Pdu, ...]) -> list[str]:
    """The protocol path of a packet, e.g. ["eth", "ip", "udp", "stun"]."""
    names = list(index.stacks[int(index.stack[i])])
    for pdu in pdus:
        if pdu.protocol not in names:
            names.append(pdu.protocol)
    return names


def endpoints(index: PacketIndex, i: int) -> tuple[str, str]:
    """Source and destination of packet `i` as text (ip:port in a flow, else the IP or link)."""
    fid = int(index.flow[i])
    if fid >= 0:
        flow = index.flows[fid]
        src, dst = (flow.client, flow.server) if int(index.direction[i]) == 0 else (flow.server, flow.client)
        return str(src), str(dst)
    d = index.dissect(i)
    for layer in reversed(outer_layers(d.layers)):
        for a, b in (("ip.src", "ip.dst"), ("ipv6.src", "ipv6.dst"), ("eth.src", "eth.dst")):
            if a in layer.fields:
                return str(layer.fields[a]), str(layer.fields[b])
    return "", ""


def flatten(fields: Sequence[Any]) -> dict[str, object]:
    """A Field tree as Wireshark-style name -> value (repeated names become lists)."""
    out: dict[str, object] = {}
    repeated: dict[str, list[object]] = {}
    """The lists made here, appended to in place (a copy per repetition was quadratic)."""
    stack = list(reversed(fields))
    while stack:
        f = stack.pop()
        name = f.name
        if name in repeated:
            repeated[name].append(f.value)
        elif name in out:
            prev = out[name]
            values = [*prev, f.value] if isinstance(prev, list) else [prev, f.value]
            out[name] = repeated[name] = values
        else:
            out[name] = f.value
        stack.extend(reversed(f.children))
    return out


def open_session(path: str, registry: Registry, count: int = 0) -> Session:
    """The capture file as a session; with `count` (-c), only its first `count` packets, as every
    command reads them (the reports, the viewer, the exports)."""
    if not count:
        return Session.open(path, registry)
    from protoscope.captures.index import build_index
    from protoscope.captures.source import open_capture

    capture = open_capture(path)
    rec = capture.records
    if count < len(rec):
        capture.records = dataclasses.replace(
            rec,
            data_off=rec.data_off[:count],
            caplen=rec.caplen[:count],
            wirelen=rec.wirelen[:count],
            ts_ns=rec.ts_ns[:count],
            iface=rec.iface[:count],
            comments={i: c for i, c in rec.comments.items() if i < count},
            findings=[(i, f) for i, f in rec.findings if i < count],
        )
    return Session(build_index(capture), registry)
