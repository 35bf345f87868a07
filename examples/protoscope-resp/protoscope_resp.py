"""An example out-of-tree protoscope decoder: Redis's RESP2 protocol over TCP.

It shows the plugin contract for a stream protocol: `sniff` is cheap and strict, `decode` returns
whole PDUs, how many bytes they `consumed`, and how many bytes it `need`s when the data ends
inside a message. Install it with pip and protoscope finds it through the `protoscope.decoders`
entry point group.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from protoscope.decoders.api import DecodeResult, Field, Finding, FlowContext, Pdu

MAX_ELEMENTS = 1024
"""Array elements decoded per message; more is reported, not followed."""
PREFIXES = b"+-:$*"


class _Incomplete(Exception):
    pass


def _line(data: bytes, pos: int) -> tuple[bytes, int]:
    end = data.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    return data[pos:end], end + 2


def _value(data: bytes, pos: int, depth: int = 0) -> tuple[object, int]:
    if pos >= len(data):
        raise _Incomplete
    kind = data[pos : pos + 1]
    body, nxt = _line(data, pos + 1)
    if kind in (b"+", b"-"):
        return body.decode("utf-8", "replace"), nxt
    if kind == b":":
        return int(body), nxt
    if kind == b"$":
        size = int(body)
        if size < 0:
            return None, nxt
        if len(data) < nxt + size + 2:
            raise _Incomplete
        return data[nxt : nxt + size].decode("utf-8", "replace"), nxt + size + 2
    if kind == b"*":
        count = int(body)
        if count < 0 or depth > 8 or count > MAX_ELEMENTS:
            raise ValueError(f"array of {count} elements at depth {depth}")
        items = []
        for _ in range(count):
            item, nxt = _value(data, nxt, depth + 1)
            items.append(item)
        return items, nxt
    raise ValueError(f"unknown RESP type byte {kind!r}")


class RespDecoder:
    """Redis serialization protocol (RESP2), client commands and server replies."""

    name: ClassVar[str] = "resp"
    transport: ClassVar[Literal["datagram", "stream"]] = "stream"
    ports: ClassVar[frozenset[tuple[str, int]]] = frozenset({("tcp", 6379)})

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        return len(data) >= 4 and data[:1] == b"*" and data[1:2].isdigit() and b"\r\n$" in data[:16]

    def new_state(self) -> object:
        return None

    def decode(self, data: bytes, state: object, ctx: FlowContext) -> DecodeResult:
        pdus = []
        pos = 0
        while pos < len(data):
            try:
                value, end = _value(data, pos)
            except _Incomplete:
                return DecodeResult(tuple(pdus), consumed=pos, need=0)
            except ValueError as exc:
                bad = Finding("error", "resp.malformed", str(exc), (pos, len(data)))
                return DecodeResult(tuple(pdus), consumed=len(data), findings=(bad,))
            if isinstance(value, list) and value and ctx.from_client:
                summary = "Request: " + " ".join(str(v) for v in value)
                fields = (
                    Field("resp.command", str(value[0]).upper(), (pos, end)),
                    Field("resp.args", [str(v) for v in value[1:]], (pos, end)),
                )
            else:
                summary = f"Reply: {value!r}"
                fields = (Field("resp.reply", value, (pos, end)),)
            pdus.append(Pdu("resp", fields, (pos, end), summary=summary))
            pos = end
        return DecodeResult(tuple(pdus), consumed=pos)
