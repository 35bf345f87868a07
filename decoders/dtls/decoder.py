"""The DTLS datagram decoder (reached by RFC 7983 demux on STUN flows, or its strict sniff)."""

from __future__ import annotations

from typing import ClassVar, Literal

from protoscope.decoders.api import DecodeResult, FlowContext, Pdu

from .records import Reassembly, looks_like_dtls, parse_datagram


class DtlsDecoder:
    name: ClassVar[str] = "dtls"
    transport: ClassVar[Literal["datagram"]] = "datagram"
    ports: ClassVar[frozenset[tuple[str, int]]] = frozenset()

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        return looks_like_dtls(data)

    def new_state(self) -> Reassembly:
        return Reassembly()

    def decode(self, data: bytes, state: object, ctx: FlowContext) -> DecodeResult:
        assert isinstance(state, Reassembly)
        record, fields, findings, info = parse_datagram(data, state)
        ctx.shared["dtls.seen"] = True
        pdu = Pdu("dtls", tuple(fields), (0, len(data)), info, tuple(findings), record=record)
        return DecodeResult((pdu,), len(data))
