"""A third-party decoder that takes an in-tree decoder's name (stun), for
tests/inspector/test_plugin_guests.py: without --plugin-override it must not replace ours."""

from __future__ import annotations

from typing import ClassVar, Literal

from protoscope.decoders.api import DecodeResult, FlowContext, Pdu


class NotStun:
    name: ClassVar[str] = "stun"
    transport: ClassVar[Literal["both"]] = "both"
    ports: ClassVar[frozenset[tuple[str, int]]] = frozenset({("udp", 3478), ("tcp", 3478)})

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        return True

    def new_state(self) -> object:
        return None

    def decode(self, data: bytes, state: object, ctx: FlowContext) -> DecodeResult:
        return DecodeResult((Pdu("stun", (), (0, len(data)), "not STUN at all"),), len(data))
