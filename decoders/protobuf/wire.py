"""The protobuf wire format read without a schema, with a byte span for every field.

Written by hand: the protobuf library parses only into a known message type (or an opaque
UnknownFieldSet without spans) and raises on broken input; an inspector needs spans, a bounded
walk over hostile bytes, and honest guesses. A length-delimited field may be a string, bytes, a
nested message or packed numbers; `candidates` lists every reading the bytes allow and `kind`
is the one shown first (message if the bytes parse as one, as `protoc --decode_raw` does).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5
WIRE_TYPE_NAMES = {VARINT: "varint", I64: "i64", LEN: "len", SGROUP: "sgroup", EGROUP: "egroup", I32: "i32"}
MAX_DEPTH = 32
"""Nested messages and groups decoded below this depth are kept as bytes."""
MAX_FIELDS = 100_000
"""Fields decoded in one message tree; a message with more is cut with an error."""
MAX_FIELD_NUMBER = (1 << 29) - 1


class WireError(ValueError):
    """The bytes are not a protobuf message (raised inside this module only)."""


@dataclass(slots=True)
class WireField:
    number: int
    wire_type: int
    span: tuple[int, int]
    """The whole field: tag, length prefix and value."""
    value_span: tuple[int, int]
    value: int | bytes
    """The varint / fixed integer, or the raw bytes of a LEN field."""
    kind: str = ""
    """How the value is shown: "varint", "fixed64", "fixed32", "message", "group", "string", "bytes"."""
    children: list[WireField] = field(default_factory=list)
    candidates: tuple[str, ...] = ()
    """Every reading of a LEN field the bytes allow, e.g. ("message", "string")."""


def read_varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end:
            raise WireError("varint runs past the end")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")


class _Budget:
    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = MAX_FIELDS


def _fields(
    data: bytes, start: int, end: int, depth: int, budget: _Budget, group: int = 0
) -> tuple[list[WireField], int]:
    """Fields in data[start:end]; inside a group, stops at its end tag and returns the position after it."""
    out: list[WireField] = []
    pos = start
    while pos < end:
        budget.left -= 1
        if budget.left < 0:
            raise WireError(f"more than {MAX_FIELDS} fields")
        tag_at = pos
        tag, pos = read_varint(data, pos, end)
        number, wire_type = tag >> 3, tag & 7
        if number < 1 or number > MAX_FIELD_NUMBER:
            raise WireError(f"field number {number} is out of range")
        if wire_type == VARINT:
            value_at = pos
            value, pos = read_varint(data, pos, end)
            out.append(WireField(number, wire_type, (tag_at, pos), (value_at, pos), value, "varint"))
        elif wire_type == I64:
            if pos + 8 > end:
                raise WireError("fixed64 runs past the end")
            value = int.from_bytes(data[pos : pos + 8], "little")
            out.append(WireField(number, wire_type, (tag_at, pos + 8), (pos, pos + 8), value, "fixed64"))
            pos += 8
        elif wire_type == I32:
            if pos + 4 > end:
                raise WireError("fixed32 runs past the end")
            value = int.from_bytes(data[pos : pos + 4], "little")
            out.append(WireField(number, wire_type, (tag_at, pos + 4), (pos, pos + 4), value, "fixed32"))
            pos += 4
        elif wire_type == LEN:
            length, pos = read_varint(data, pos, end)
            if pos + length > end:
                raise WireError(f"length {length} runs past the end")
            f = WireField(
                number, wire_type, (tag_at, pos + length), (pos, pos + length), data[pos : pos + length]
            )
            _classify(f, data, depth, budget)
            out.append(f)
            pos += length
        elif wire_type == SGROUP:
            if depth >= MAX_DEPTH:
                raise WireError(f"groups nest deeper than {MAX_DEPTH}")
            children, after = _fields(data, pos, end, depth + 1, budget, group=number)
            f = WireField(
                number, wire_type, (tag_at, after), (pos, after), data[pos:after], "group", children
            )
            out.append(f)
            pos = after
        elif wire_type == EGROUP:
            if number != group:
                raise WireError(f"end of group {number} without its start")
            return out, pos
        else:
            raise WireError(f"wire type {wire_type} does not exist")
    if group:
        raise WireError(f"group {group} has no end")
    return out, pos


def _printable(raw: bytes) -> bool:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\t\n\r" for ch in text)


def _classify(f: WireField, data: bytes, depth: int, budget: _Budget) -> None:
    start, end = f.value_span
    candidates: list[str] = []
    if end > start and depth < MAX_DEPTH:
        saved = budget.left
        try:
            f.children, _ = _fields(data, start, end, depth + 1, budget)
            candidates.append("message")
        except WireError:
            f.children = []
            budget.left = saved
    raw = data[start:end]
    if _printable(raw):
        candidates.append("string")
    if end > start and _packed_varints(raw):
        candidates.append("packed")
    candidates.append("bytes")
    f.candidates = tuple(candidates)
    f.kind = candidates[0]


def _packed_varints(raw: bytes) -> bool:
    return raw[-1] < 0x80


def decode(data: bytes) -> tuple[list[WireField], str | None]:
    """All fields of a message; on malformed input, returns the fields read so far and the error."""
    budget = _Budget()
    try:
        fields, _ = _fields(data, 0, len(data), 0, budget)
        return fields, None
    except WireError as exc:
        # Keep what parsed before the error: decode again up to it, field by field.
        good: list[WireField] = []
        pos = 0
        while pos < len(data):
            try:
                one, _ = _fields_one(data, pos)
            except WireError:
                break
            good.append(one)
            pos = one.span[1]
        return good, str(exc)


def _fields_one(data: bytes, pos: int) -> tuple[WireField, int]:
    """The single field at `pos` (used to salvage the good prefix of a broken message)."""
    tag, after = read_varint(data, pos, len(data))
    wire_type = tag & 7
    if wire_type == VARINT:
        _, end = read_varint(data, after, len(data))
    elif wire_type == I64:
        end = after + 8
    elif wire_type == I32:
        end = after + 4
    elif wire_type == LEN:
        length, body = read_varint(data, after, len(data))
        end = body + length
    else:
        raise WireError("not salvaged")
    if end > len(data):
        raise WireError("runs past the end")
    fields, _ = _fields(data, pos, end, 0, _Budget())
    return fields[0], end


def zigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def as_signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) else value


def as_double(value: int) -> float:
    return float(struct.unpack("<d", value.to_bytes(8, "little"))[0])


def as_float(value: int) -> float:
    return float(struct.unpack("<f", value.to_bytes(4, "little"))[0])


def to_text(fields: list[WireField], indent: int = 0) -> str:
    """The `protoc --decode_raw` rendering of `fields` (used to compare with protoc)."""
    pad = "  " * indent
    lines: list[str] = []
    for f in fields:
        if isinstance(f.value, int):
            form = {"varint": "{}", "fixed64": "0x{:016x}", "fixed32": "0x{:08x}"}[f.kind]
            lines.append(f"{pad}{f.number}: " + form.format(f.value))
        elif f.kind in ("message", "group"):
            lines.append(f"{pad}{f.number} {{")
            inner = to_text(f.children, indent + 1)
            if inner:
                lines.append(inner)
            lines.append(f"{pad}}}")
        else:
            assert isinstance(f.value, bytes)
            lines.append(f'{pad}{f.number}: "{c_escape(f.value)}"')
    return "\n".join(lines)


def c_escape(raw: bytes) -> str:
    """protoc's CEscape: printable ASCII as is, quotes and backslash escaped, the rest octal."""
    out = []
    for b in raw:
        if b == 0x0A:
            out.append("\\n")
        elif b == 0x0D:
            out.append("\\r")
        elif b == 0x09:
            out.append("\\t")
        elif b == 0x22:
            out.append('\\"')
        elif b == 0x27:
            out.append("\\'")
        elif b == 0x5C:
            out.append("\\\\")
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\{b:03o}")
    return "".join(out)
