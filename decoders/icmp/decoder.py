"""The "icmp" decoder: an ICMP or ICMPv6 message (which belongs to no flow) as a PDU whose record
is an `IcmpError` when it reports a failed UDP datagram. The session hands it the messages of
flowless packets (inspector/icmp_errors.py); it never takes a UDP flow."""

from __future__ import annotations

import struct
from typing import ClassVar

from protoscope.decoders.api import DecodeResult, Field, FlowContext, Pdu, Transport

from .fields import FIELDS
from .message import ICMP_HEADER, icmp_error, message_summary


class IcmpDecoder:
    """Decodes the ICMP message `data` (from its type byte) of a packet whose context names the
    ICMP packet's own addresses: `ctx.src.ip` is the reporter, and its form says the version."""

    name: ClassVar[str] = "icmp"
    transport: ClassVar[Transport] = "datagram"
    ports: ClassVar[frozenset[tuple[str, int]]] = frozenset()
    fields = FIELDS

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        """Never: ICMP is no payload of a UDP flow (the session calls `decode` itself)."""
        return False

    def new_state(self) -> object:
        return None

    def decode(self, data: bytes, state: object, ctx: FlowContext) -> DecodeResult:
        version = 6 if ":" in ctx.src.ip else 4
        if len(data) < ICMP_HEADER:
            return DecodeResult()
        protocol = "icmpv6" if version == 6 else "icmp"
        mtype, code, checksum = struct.unpack_from(">BBH", data)
        fields = (
            Field(f"{protocol}.type", mtype, (0, 1)),
            Field(f"{protocol}.code", code, (1, 2)),
            Field(f"{protocol}.checksum", checksum, (2, 4)),
        )
        record = icmp_error(data, version, ctx.src.ip)
        pdu = Pdu(protocol, fields, (0, len(data)), message_summary(data, version), record=record)
        return DecodeResult(pdus=(pdu,), consumed=len(data))
