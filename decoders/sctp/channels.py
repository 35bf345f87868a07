"""The WebRTC data channels report (`--report datachannels`): one row per channel.

A channel is an SCTP stream of a flow (RFC 8831 section 6.5: the same stream id both ways). It is
opened by DCEP (a DATA_CHANNEL_OPEN answered by a DATA_CHANNEL_ACK, RFC 8832) or agreed out of
band ("pre-negotiated": a stream that carries messages without an OPEN), and closed by resetting
its streams (RFC 6525's Outgoing SSN Reset Request, RFC 8831 section 6.7); its stream id may then
be used again by a new channel, which gets a row of its own.

Each message shows which way it went by flow ("c2s": from the flow's client) and which DTLS side
sent it: the side that sent the ClientHello is the DTLS client; without a handshake in the
capture, an OPEN on an even stream id tells it (RFC 8832 section 6: the DTLS client opens even
ids).

Memory follows the channels: messages listed per channel and over all channels, text and hex
shown over all channels, channels followed, and findings per row each have a named limit; what
passes them is counted, not kept. A message costs O(1): once the listing budget is spent, only
the counts change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import repeat
from typing import ClassVar

from protoscope.decoders.api import AnalysisFinding, FlowContext, Pdu, Severity
from protoscope.decoders.dtls.records import DtlsRecord

from . import names as nm
from .records import SctpRecord, UserMessage

MAX_CHANNELS = 10_000
"""Channels (rows) followed in a capture: a browser opens a handful per call; a flood of OPENs on
new stream ids would otherwise make a row each."""
MAX_MESSAGES = 1000
"""Messages listed per channel (the first ones); all of them are counted in the totals."""
MAX_LISTED_MESSAGES = 100_000
"""Messages listed over all channels (the first ones): MAX_MESSAGES on each of MAX_CHANNELS
channels would be ten million entries (~1 KiB each). Past it messages are counted, not listed,
and the row of the first one left out gets a `datachannel.messages_limit` finding."""
MAX_LISTED_SHOWN = 32 << 20
"""Characters of text and hex shown over all listed messages (the first ones): MAX_SHOWN on
MAX_LISTED_MESSAGES would be 800 MiB of hex. Spent as MAX_LISTED_MESSAGES is."""
MAX_SHOWN = 4096
"""Bytes of a message a row shows (as text or hex); longer ones are marked `truncated`."""
MAX_FINDINGS = 100
"""Findings kept per row (the first), then one `datachannel.findings_limit`."""

SEVERITY: dict[str, Severity] = {
    "datachannel.open_unacked": "error",
    "sctp.abort": "warn",
    "datachannel.reset": "note",
}
"""An OPEN never answered is a channel that did not open (the application's `open` event never
fired); an ABORT ends the association at once (aiortc ends every association this way, so it is a
warning, and a note when the cause is "User initiated abort"); a reset stream is how a channel
closes normally."""


def _finding(code: str, message: str, frame: int | None, severity: Severity | None = None) -> AnalysisFinding:
    return {"frame": frame, "severity": severity or SEVERITY[code], "code": code, "message": message}


@dataclass(slots=True)
class Channel:
    flow: int
    stream_id: int
    negotiated: str
    """"dcep" or "pre-negotiated"."""
    label: str | None = None
    protocol: str | None = None
    channel_type: int | None = None
    ordered: bool | None = None
    reliability: str | None = None
    priority: int | None = None
    opened: dict[str, object] | None = None
    acked: dict[str, object] | None = None
    closed: dict[str, object] | None = None
    reset_by: set[bool] = field(default_factory=set)
    """The directions (from_client) that reset the stream: the channel is closed when both did."""
    messages: list[tuple[dict[str, object], tuple[int, ...]]] = field(default_factory=list)
    """Each listed message: its facts, and the frames it came in (a list in a row)."""
    count: dict[str, int] = field(default_factory=lambda: {"c2s": 0, "s2c": 0})
    size: dict[str, int] = field(default_factory=lambda: {"c2s": 0, "s2c": 0})
    findings: list[AnalysisFinding] = field(default_factory=list)

    def add(self, finding: AnalysisFinding) -> None:
        if len(self.findings) < MAX_FINDINGS:
            self.findings.append(finding)
        elif len(self.findings) == MAX_FINDINGS:
            message = (
                f"more than {MAX_FINDINGS} findings on this channel (MAX_FINDINGS): the rest are not kept"
            )
            self.findings.append(_finding("datachannel.findings_limit", message, finding["frame"], "warn"))


def _direction(from_client: bool) -> str:
    return "c2s" if from_client else "s2c"


class DataChannelAnalysis:
    name: ClassVar[str] = "datachannels"

    def __init__(self) -> None:
        self.channels: list[Channel] = []
        self.current: dict[int, dict[int, Channel]] = {}
        """Flow -> stream id -> the channel that uses the stream now."""
        self.unreset: dict[tuple[int, bool], dict[int, Channel]] = {}
        """(flow, from_client) -> stream id -> the channels of `current` that direction has not
        reset yet: a reset (of some streams or all) visits only those, each once a direction, so
        a flood of RE-CONFIG or ABORT chunks costs O(1) a packet beyond the streams it lists."""
        self.dtls_client: dict[int, bool] = {}
        """Flow -> the direction (from_client) in which the DTLS client sends."""
        self.channels_limit: int | None = None
        """The frame where MAX_CHANNELS first left a channel unfollowed."""
        self.listed = 0
        """Messages listed over all channels (MAX_LISTED_MESSAGES)."""
        self.shown = 0
        """Characters of text and hex listed over all channels (MAX_LISTED_SHOWN)."""
        self.messages_limit: tuple[Channel, int, str] | None = None
        """Where the listing budget ran out: the channel and frame of the first message left
        out, and which limit it was."""

    def feed(self, pdu: Pdu, ctx: FlowContext) -> None:
        rec = pdu.record
        if isinstance(rec, UserMessage):
            self._message(rec, ctx)
        elif isinstance(rec, SctpRecord):
            self._packet(rec, ctx)
        elif isinstance(rec, DtlsRecord) and 1 in rec.handshake_types:
            self.dtls_client[ctx.flow] = ctx.from_client

    # -- what the packets say --------------------------------------------------------------

    def _channel(self, ctx: FlowContext, sid: int, negotiated: str) -> Channel | None:
        if len(self.channels) >= MAX_CHANNELS:
            if self.channels_limit is None:
                self.channels_limit = ctx.frame
            return None
        channel = Channel(ctx.flow, sid, negotiated)
        self.channels.append(channel)
        self.current.setdefault(ctx.flow, {})[sid] = channel
        for way in (True, False):
            self.unreset.setdefault((ctx.flow, way), {})[sid] = channel
        return channel

    def _message(self, msg: UserMessage, ctx: FlowContext) -> None:
        if msg.ppid not in nm.WEBRTC_PPIDS:
            return  # SCTP of another application (Diameter, S1AP, ...): no data channel
        channel = self.current.get(ctx.flow, {}).get(msg.stream_id)
        when = {"frame": ctx.frame, "time": ctx.time, "direction": _direction(msg.from_client)}
        dcep = msg.dcep
        if dcep is not None and dcep.message_type == nm.DATA_CHANNEL_OPEN:
            channel = self._channel(ctx, msg.stream_id, "dcep")
            if channel is None:
                return
            channel.label, channel.protocol, channel.priority = dcep.label, dcep.protocol, dcep.priority
            channel.channel_type = dcep.channel_type
            channel.ordered, channel.reliability = dcep.ordered, dcep.reliability_text
            channel.opened = when
            if ctx.flow not in self.dtls_client:
                # RFC 8832 section 6: the DTLS client opens even stream ids, the server odd ones.
                self.dtls_client[ctx.flow] = msg.from_client == (msg.stream_id % 2 == 0)
            return
        if dcep is not None and dcep.message_type == nm.DATA_CHANNEL_ACK:
            if channel is None:  # the capture started after the OPEN
                channel = self._channel(ctx, msg.stream_id, "dcep")
            if channel is not None and channel.acked is None:
                channel.acked = when
            return
        if msg.ppid == nm.PPID_DCEP:
            return  # a DCEP message that did not parse: the decoder made a finding of it
        if channel is None:
            channel = self._channel(ctx, msg.stream_id, "pre-negotiated")
            if channel is None:
                return
            channel.ordered = msg.ordered
            channel.opened = when
        way = _direction(msg.from_client)
        channel.count[way] += 1
        channel.size[way] += len(msg.data)
        if len(channel.messages) >= MAX_MESSAGES or self.messages_limit is not None:
            return
        hexed = msg.ppid not in nm.TEXT_PPIDS
        cost = min(len(msg.data), MAX_SHOWN) * (2 if hexed else 1)  # a character a byte of text at most
        if self.listed >= MAX_LISTED_MESSAGES:
            self.messages_limit = (channel, ctx.frame, f"more than {MAX_LISTED_MESSAGES} messages")
            return
        if self.shown + cost > MAX_LISTED_SHOWN:
            self.messages_limit = (channel, ctx.frame, f"more than {MAX_LISTED_SHOWN} characters shown")
            return
        self.listed += 1
        self.shown += cost
        entry: dict[str, object] = {
            "frame": ctx.frame,
            "time": ctx.time,
            "direction": way,
            "ppid": msg.ppid,
            "ordered": msg.ordered,
            "size": len(msg.data),
        }
        shown = msg.data[:MAX_SHOWN]
        if hexed:
            entry["hex"] = shown.hex()
        else:
            entry["text"] = shown.decode("utf-8", "replace")
        if len(msg.data) > MAX_SHOWN:
            entry["truncated"] = True
        channel.messages.append((entry, msg.frames))

    def _side(self, flow: int, from_client: bool) -> str | None:
        client = self.dtls_client.get(flow)
        if client is None:
            return None
        return "client" if from_client == client else "server"

    def _packet(self, rec: SctpRecord, ctx: FlowContext) -> None:
        if rec.checksum_ok and rec.abort_causes is not None:
            causes = "; ".join(rec.abort_causes) or "no cause given"
            user = bool(rec.abort_causes) and all(
                c.startswith("User initiated abort") for c in rec.abort_causes
            )
            # The association is over: its channels are closed, and a stream id seen later
            # belongs to a new association's channel.
            for way in (True, False):
                self.unreset.pop((ctx.flow, way), None)
            for channel in self.current.pop(ctx.flow, {}).values():
                if channel.closed is None:
                    channel.add(
                        _finding(
                            "sctp.abort",
                            f"association aborted by {ctx.src} ({causes})",
                            ctx.frame,
                            "note" if user else None,
                        )
                    )
                    channel.closed = {"frame": ctx.frame, "time": ctx.time, "by": "abort"}
        if rec.checksum_ok and rec.reset_streams is not None:
            waiting = self.unreset.get((ctx.flow, ctx.from_client))
            if not waiting:
                return
            if rec.reset_streams:  # these streams (what is listed, bounded by the packet)
                reset = [c for c in map(waiting.pop, set(rec.reset_streams), repeat(None)) if c is not None]
            else:  # all of them
                reset = list(waiting.values())
                waiting.clear()
            for channel in sorted(reset, key=lambda c: c.stream_id):
                if not channel.reset_by:
                    channel.add(
                        _finding(
                            "datachannel.reset",
                            f"stream {channel.stream_id} reset by {ctx.src}: channel closed",
                            ctx.frame,
                        )
                    )
                channel.reset_by.add(ctx.from_client)
                if channel.closed is None:
                    channel.closed = {"frame": ctx.frame, "time": ctx.time, "by": "reset"}
                if len(channel.reset_by) == 2:  # both ways reset: the stream id is free again
                    self.current.get(ctx.flow, {}).pop(channel.stream_id, None)

    # -- the report ------------------------------------------------------------------------

    def rows(self) -> list[dict[str, object]]:
        """A row per channel, in the order they were opened; shares nothing the analysis goes on
        changing, so `snapshot()` is this."""
        out: list[dict[str, object]] = []
        for n, ch in enumerate(self.channels):
            findings = [AnalysisFinding(**f) for f in ch.findings]
            if ch.opened is not None and ch.negotiated == "dcep" and ch.acked is None:
                findings.insert(
                    0,
                    _finding(
                        "datachannel.open_unacked",
                        f"DATA_CHANNEL_OPEN for {ch.label!r} on stream {ch.stream_id} was never acknowledged",
                        int(str(ch.opened["frame"])),
                    ),
                )
            if self.messages_limit is not None and self.messages_limit[0] is ch:
                _, frame, what = self.messages_limit
                message = (
                    f"{what} listed over all channels (MAX_LISTED_MESSAGES, MAX_LISTED_SHOWN): "
                    "later messages are counted, not listed"
                )
                findings.append(_finding("datachannel.messages_limit", message, frame, "warn"))
            if n == len(self.channels) - 1 and self.channels_limit is not None:
                message = f"more than {MAX_CHANNELS} channels (MAX_CHANNELS): the later ones are not followed"
                findings.append(_finding("datachannel.channels_limit", message, self.channels_limit, "warn"))
            out.append(
                {
                    "flow": ch.flow,
                    "stream_id": ch.stream_id,
                    "label": ch.label,
                    "protocol": ch.protocol,
                    "negotiated": ch.negotiated,
                    "channel_type": nm.CHANNEL_TYPES.get(ch.channel_type, ch.channel_type)
                    if ch.channel_type is not None
                    else None,
                    "ordered": ch.ordered,
                    "reliability": ch.reliability,
                    "priority": ch.priority,
                    "opened": dict(ch.opened) if ch.opened else None,
                    "acked": dict(ch.acked) if ch.acked else None,
                    "closed": dict(ch.closed) if ch.closed else None,
                    "messages": [
                        {
                            **m,
                            "frames": list(frames),
                            "dtls_side": self._side(ch.flow, m["direction"] == "c2s"),
                        }
                        for m, frames in ch.messages
                    ],
                    "messages_c2s": ch.count["c2s"],
                    "messages_s2c": ch.count["s2c"],
                    "bytes_c2s": ch.size["c2s"],
                    "bytes_s2c": ch.size["s2c"],
                    "findings": findings,
                }
            )
        return out

    def snapshot(self) -> list[dict[str, object]]:
        """The rows as if the capture ended now (`Analysis`): `rows()` changes nothing."""
        return self.rows()
