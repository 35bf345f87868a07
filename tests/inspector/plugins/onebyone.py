"""A third-party stream decoder that decodes one message a call (a style the contract allows):
a 2-byte big-endian length, then that many bytes, over TCP port 7777. It notes the size of the data
of every call in CALLS, for tests/inspector/test_plugin_guests.py."""

from __future__ import annotations

from typing import ClassVar, Literal

from protoscope.decoders.api import DecodeResult, Field, FlowContext, Pdu

CALLS: list[int] = []


class OneByOne:
    name: ClassVar[str] = "onebyone"
    transport: ClassVar[Literal["stream"]] = "stream"
    ports: ClassVar[frozenset[tuple[str, int]]] = frozenset({("tcp", 7777)})

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        return len(data) >= 2

    def new_state(self) -> object:
        return None

    def decode(self, data: bytes, state: object, ctx: FlowContext) -> DecodeResult:
        CALLS.append(len(data))
        if len(data) < 2:
            return DecodeResult(need=2)
        end = 2 + int.from_bytes(data[:2], "big")
        if len(data) < end:
            return DecodeResult(need=end)
        field = Field("onebyone.length", end - 2, (0, 2))
        return DecodeResult((Pdu("onebyone", (field,), (0, end), f"{end - 2} bytes"),), end)
