"""The SCTP datagram decoder: SCTP carried in DTLS on a WebRTC flow (RFC 8261: no IP header; the
DTLS decoder hands the plaintext on as `InnerPayload(..., protocol="sctp")`), or encapsulated in
UDP (RFC 6951, port 9899). One PDU per packet, then one per user message the packet completes."""

from __future__ import annotations

from typing import ClassVar, Literal

from protoscope.decoders.api import DecodeResult, Field, Finding, FlowContext, Pdu

from . import names as nm
from .dcep import message_pdu
from .fields import FIELDS
from .packets import Parsed, looks_like_sctp, parse_packet
from .reassembly import Assembled, Direction
from .records import SctpRecord, UserMessage

LABELS = "sctp.labels"
"""FlowContext.shared: the association's data channel labels by stream id (dcep.message_pdu)."""
ZERO_CHECKSUM = "sctp.zero_checksum"
"""FlowContext.shared key: the directions (from_client values) whose packets may carry a zero
checksum, because the other side announced Zero Checksum Acceptable (RFC 9653) in its INIT or
INIT-ACK."""
UDP_ENCAPSULATION_PORT = 9899
"""RFC 6951 section 5.1: the IANA port of SCTP over UDP."""


class SctpDecoder:
    name: ClassVar[str] = "sctp"
    fields = FIELDS
    transport: ClassVar[Literal["datagram"]] = "datagram"
    ports: ClassVar[frozenset[tuple[str, int]]] = frozenset({("udp", UDP_ENCAPSULATION_PORT)})

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        return looks_like_sctp(data, _zero_ok(ctx))

    def new_state(self) -> Direction:
        return Direction()

    def decode(self, data: bytes, state: object, ctx: FlowContext) -> DecodeResult:
        assert isinstance(state, Direction)
        data = bytes(data)
        parsed = parse_packet(data, _zero_ok(ctx))
        if parsed.zero_checksum_acceptable:
            # This side takes zero checksums: the other side (the other direction) may send them.
            allowed = ctx.shared.setdefault(ZERO_CHECKSUM, set())
            if isinstance(allowed, set):
                allowed.add(not ctx.from_client)
        messages: list[Pdu] = []
        retransmitted: list[int] = []
        if parsed.checksum_ok:
            messages = _reassemble(data, parsed, state, ctx, retransmitted)
        record = SctpRecord(
            int.from_bytes(data[0:2], "big"),
            int.from_bytes(data[2:4], "big"),
            int.from_bytes(data[4:8], "big"),
            parsed.checksum_ok,
            tuple(c.ctype for c in parsed.chunks),
            tuple(parsed.abort_causes) if parsed.abort_causes is not None else None,
            tuple(parsed.reset_streams) if parsed.reset_streams is not None else None,
            tuple(retransmitted),
        )
        summary = ", ".join(parsed.info[:8]) + (
            f", ... ({len(parsed.info)} chunks)" if len(parsed.info) > 8 else ""
        )
        pdu = Pdu(
            "sctp", tuple(parsed.fields()), (0, len(data)), summary, tuple(parsed.findings), record=record
        )
        return DecodeResult((pdu, *messages), len(data))


def _zero_ok(ctx: FlowContext) -> bool:
    allowed = ctx.shared.get(ZERO_CHECKSUM)
    return isinstance(allowed, set) and ctx.from_client in allowed


def _reassemble(
    data: bytes, parsed: Parsed, state: Direction, ctx: FlowContext, retransmitted: list[int]
) -> list[Pdu]:
    """The user messages this packet completes; retransmitted chunks are marked in their trees."""
    out: list[Pdu] = []
    for d in parsed.data:
        first = state.retransmission(d.tsn, ctx.frame)
        if first is not None:
            retransmitted.append(d.tsn)
            chunk = parsed.chunks[d.chunk]
            chunk.children.append(Field("sctp.retransmission", first, chunk.span))
            parsed.findings.append(
                Finding(
                    "note", "sctp.retransmission", f"TSN {d.tsn} was first sent in frame {first}", chunk.span
                )
            )
            continue
        findings: list[Finding] = []
        payload = data[d.payload[0] : d.payload[1]]
        add = state.add_i_data if d.i_data else state.add_data
        whole = add(d, payload, ctx.frame, findings)
        parsed.findings.extend(findings)
        if whole is not None:
            single = whole.first_tsn == whole.last_tsn and whole.frames == (ctx.frame,)
            out.append(_message(whole, d.payload if single else None, ctx))
    if parsed.forward_tsn is not None:
        state.forward(
            parsed.forward_tsn, parsed.forward_streams, nm.I_FORWARD_TSN in (c.ctype for c in parsed.chunks)
        )
    return out


def _message(whole: Assembled, span: tuple[int, int] | None, ctx: FlowContext) -> Pdu:
    findings: list[Finding] = []
    data = whole.data
    if whole.ppid in nm.EMPTY_PPIDS:
        # RFC 8831 section 6.6: an empty message travels as one zero byte.
        if data != b"\x00":
            findings.append(
                Finding(
                    "warn",
                    "datachannel.empty_not_zero",
                    f"an empty-message PPID {whole.ppid} with {len(data)} bytes",
                )
            )
        data = b""
    msg = UserMessage(
        whole.sid,
        whole.ppid,
        data,
        not whole.unordered,
        None if whole.unordered and not whole.i_data else whole.sequence,
        whole.first_tsn,
        whole.last_tsn,
        whole.frames,
        ctx.from_client,
        ctx.time,
    )
    labels = ctx.shared.setdefault(LABELS, {})
    return message_pdu(msg, span, findings, labels if isinstance(labels, dict) else None)
