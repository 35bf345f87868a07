"""A capture run through the pipeline: index, flows, then decoders over every flow.

`Session.decode()` walks the packets in frame order once and yields what the decoders made of each
one. Nothing per packet is kept: reports and views consume the stream (or cache what they show).
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

MAX_STREAM_BUFFER = 16 * 1024 * 1024
"""Unconsumed bytes a stream decoder may leave waiting in one direction before they are dropped."""
MAX_INNER_DEPTH = 4
"""How deep inner payloads (TURN in TURN in ...) are dispatched again."""
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
    shared: dict[str, object] = field(default_factory=dict)
    """FlowContext.shared: state both directions of the flow see, for this decoding pass."""
    run: _Pass = field(default_factory=_Pass)
    """The pass's (shared by all its flows)."""
    excluded: set[str] = field(default_factory=set)
    """Decoders that failed on this flow (a bad result, a timeout, a sniff or new_state that
    raised): not chosen for it again, nor given its inner payloads."""


class _Walk:
    """The packets a decoding pass visits, in frame order: all of them, `packets`, or all but
    `skip`. A sparse pass leaves out from the start the packets that can change nothing (outside any
    flow, or without payload and SYN) and, as it goes, what `leave_out` names (the later packets of
    flows no decoder took, segments inside skipped bytes), never those in `keep` (packets with
    findings from the index, each flow's last packet, where its reassembly is flushed). The mask is
    read a chunk at a time, so the packets left out cost no Python step each."""

    CHUNK = 4096

    def __init__(
        self,
        n: int,
        packets: Sequence[int] | None,
        skip: npt.NDArray[np.bool_] | None,
        quiet: npt.NDArray[np.bool_] | None,
        keep: npt.NDArray[np.int64],
    ) -> None:
        self.sparse = quiet is not None and packets is None
        self._packets = packets
        self._n = n
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
            self._visit[keep] = True
            self._keep_mask = np.zeros(n, np.bool_)
            self._keep_mask[keep] = True

    def __iter__(self) -> Iterator[int]:
        if self._packets is not None:
            yield from self._packets
            return
        if self._visit is None:
            yield from range(self._n)
            return
        visit = self._visit
        for lo in range(0, self._n, self.CHUNK):
            hi = min(self._n, lo + self.CHUNK)
            # The mask is read a chunk at a time, and again for the rest of the chunk when a flow
            # was buried in it.
            self._changed = False
            todo = (np.flatnonzero(visit[lo:hi]) + lo).tolist()
            k = 0
            while k < len(todo):
                i = todo[k]
                k += 1
                yield i
                if self._changed:
                    self._changed = False
                    todo, k = (np.flatnonzero(visit[i + 1 : hi]) + i + 1).tolist(), 0

    def flow_packets(self, flow: npt.NDArray[np.int32], nflows: int, fid: int) -> npt.NDArray[np.int64]:
        if self._by_flow is None:
            self._by_flow = packets_by_flow(flow, nflows)
        return self._by_flow[fid]

    def leave_out(self, packets: npt.NDArray[np.int64], keep: Sequence[int] = ()) -> None:
        """Visit none of `packets` but those in `keep` and those with findings from the index."""
        if not self.sparse or self._visit is None or len(packets) == 0:
            return
        assert self._keep_mask is not None
        self._changed = True
        self._visit[packets] = self._keep_mask[packets]
        self._visit[np.asarray(keep, np.int64)] = True


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

    def decode(
        self,
        progress: Progress | None = None,
        packets: Sequence[int] | None = None,
        skip: npt.NDArray[np.bool_] | None = None,
        sparse: bool = False,
    ) -> Iterator[PacketDecode]:
        """Decode every packet in frame order, or only `packets` (ascending 0-based indexes).

        Decoder state is per flow, so the packets of one flow alone decode exactly as in the full
        pass: the viewer re-decodes one flow up to the selected packet this way. `skip` makes a
        full pass that leaves out the packets it marks (the bulk RTP path reads those itself).
        `sparse` leaves out the packets of flows no decoder took (after their sniff budget) that
        have no finding: reports that only count PDUs and findings need not look at them.
        """
        progress = progress or self.progress
        ix = self.index
        n = len(ix)
        states: dict[int, _FlowState] = {}
        run = _Pass()
        full = packets is None
        if full:  # a full pass learns afresh (so every pass gives the same); a flow decoded again
            # reuses what the last full pass learnt
            self._capture = {}
            self._hints = {}
            self.registry.expectations.clear()
        flow_col = ix.flow
        index_findings = _group_findings(ix.findings)
        have_decoders = bool(self.registry.decoders)
        # Each flow's last packet: there its TCP reassembly is flushed, so a hole that never
        # filled is reported as a gap and the bytes after it are still decoded.
        last = np.full(len(ix.flows), -1, np.int64)
        with_flow = flow_col >= 0
        np.maximum.at(last, flow_col[with_flow], np.flatnonzero(with_flow))
        last_packet = dict(enumerate(last.tolist()))
        del with_flow
        quiet = None
        if sparse and packets is None:
            payload = ix.captured_payload_len(np.arange(n, dtype=np.int64))
            quiet = (flow_col < 0) | ((payload == 0) & ((ix.tcp_flags & TCP_SYN) == 0))
            del payload
        keep = np.concatenate((np.fromiter(index_findings, np.int64, len(index_findings)), last[last >= 0]))
        keep = keep[keep < n]  # findings about the file itself sit past the last packet
        walk = _Walk(n, packets, skip, quiet, keep)
        step = max(1, n // 200)
        report_at = 0
        release_at = RELEASE_EVERY
        for i in walk:
            if progress is not None and i >= report_at:
                progress(i, n)
                report_at = i + step
            if full and i >= release_at:
                ix.capture.release_pages()
                release_at = i + RELEASE_EVERY
            fid = int(flow_col[i])
            pdus = _PduList()
            findings: list[Finding] = list(index_findings.get(i, ()))
            if fid >= 0:
                st = states.get(fid)
                if st is None:
                    st = states[fid] = _FlowState(dead=not have_decoders, run=run)
                tcp = ix.flows[fid].transport == "tcp"
                if st.dead:
                    if st.planned is not None:
                        findings += st.planned.get(i, ())
                    elif tcp:
                        self._tcp(i, st, pdus, findings, False, last_packet[fid], walk)
                elif tcp:
                    self._tcp(i, st, pdus, findings, True, last_packet[fid], walk)
                else:
                    self._udp(i, st, pdus, findings)
                if st.dead and not st.buried:
                    st.buried = True
                    if full:
                        self._bury(fid, i, st, tcp, last_packet[fid], walk)
            yield PacketDecode(
                i,
                tuple(pdus),
                tuple(findings),
                tuple(pdus.depths),
                tuple(pdus.bases),
                pdus.carried,
                pdus.context,
            )
        if full:
            ix.capture.release_pages()
        if self.registry.guests:
            stop_guard()  # no guest call until the next pass: its timer need not tick
        if progress is not None:
            progress(n, n)

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
            other = st.directions[1 - direction]
            events += d.reassembly.flush(i)
            for ev in other.reassembly.flush(i):  # the other side's gaps are reported, not decoded
                if isinstance(ev, Gap):
                    findings.append(_gap_finding(ev))
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
            if decode and d.skip and i != last:  # a segment inside skipped bytes: skip on from it
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
        if d.skip and i != last:
            self._skip_ahead(i, int(ix.flow[i]), direction, d, last, walk)

    def _skip_ahead(self, i: int, fid: int, direction: int, d: _Direction, last: int, walk: _Walk) -> None:
        """Drop the bytes a decoder skips (DecodeResult.skip) from the segments that follow packet
        `i` in its direction, as far as they arrive in order, from their headers alone: a sparse pass
        does not visit them and a full one does not read them."""
        if not d.reassembly.settled:
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
            for e in pdu.expect:
                self.registry.expect(Expectation(e.transport, e.ip, e.port, e.protocol))
                self._hints.setdefault((e.transport, e.ip, e.port), {}).update(e.hints)
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
        result = self._run(decoder, inner.data, state, ctx, findings, st)
        if result is not None:
            self._collect(
                result, ctx, st, pdus, findings, depth, None if base is None else base + inner.offset
            )


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


def _group_findings(items: list[tuple[int, Finding]]) -> dict[int, list[Finding]]:
    out: dict[int, list[Finding]] = {}
    for i, f in items:
        out.setdefault(i, []).append(f)
    return out


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
    for layer in reversed(d.layers):
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
