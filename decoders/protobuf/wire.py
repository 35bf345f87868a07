"""The protobuf wire format read without a schema, with a byte span for every field.

Written by hand: the protobuf library parses only into a known message type (or an opaque
UnknownFieldSet without spans) and raises on broken input; an inspector needs spans, a bounded
walk over hostile bytes, and honest guesses. A length-delimited field may be a string, bytes, a
nested message or packed numbers; `candidates` lists every reading the bytes allow and `kind`
is the one shown first (message if the bytes parse as one, as `protoc --decode_raw` does).
"""

from __future__ import annotations

import codecs
import struct
from dataclasses import dataclass, field

VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5
WIRE_TYPE_NAMES = {VARINT: "varint", I64: "i64", LEN: "len", SGROUP: "sgroup", EGROUP: "egroup", I32: "i32"}
MAX_DEPTH = 32
"""Nested messages below this depth are kept as bytes (`protobuf.depth_limit`); a group cannot be
stepped over without reading it, so the length-delimited field holding one below it is kept as
bytes. Real schemas nest a few levels; protoc's own limit is 100."""
MAX_FIELDS = 100_000
"""Fields kept in one message tree (readings tried and abandoned give theirs back). A message with
more is cut there (`protobuf.field_limit`): ~20 MB of field objects."""
MAX_WORK = 4 * MAX_FIELDS
"""Fields read in one message tree, readings tried and abandoned included (a string whose first
bytes look like fields is read as a message until they stop doing so). Each field is read once,
but only the fields kept count against MAX_FIELDS: without this, a message of many length-delimited
fields that each almost parse costs a read per byte. Past it, no more length-delimited fields are
tried as messages (`protobuf.work_limit`): they are shown as strings or bytes."""
MAX_FIELD_NUMBER = (1 << 29) - 1
PRINTABLE_PREFIX = 256
"""Bytes of a length-delimited field decoded first to tell text from binary. Binary fails within its
first bytes, so only text is decoded whole: a large binary field is not decoded again at every
nesting level it lies in."""

Buffer = bytes | bytearray | memoryview


class WireError(ValueError):
    """The bytes are not a protobuf message (raised inside this module only)."""


class WireLimit(WireError):
    """A limit stopped the reading (raised inside this module only)."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


@dataclass(slots=True)
class WireField:
    number: int
    wire_type: int
    span: tuple[int, int]
    """The whole field: tag, length prefix and value."""
    value_span: tuple[int, int]
    raw: int | Buffer = field(repr=False)
    """The varint / fixed integer, or the message's bytes (the buffer given to `read`, never a copy:
    every nesting level holds the same one), of which `value_span` is this field's value."""
    kind: str = ""
    """How the value is shown: "varint", "fixed64", "fixed32", "message", "group", "string", "bytes"."""
    children: list[WireField] = field(default_factory=list)
    candidates: tuple[str, ...] = ()
    """Every reading of a LEN field the bytes allow, e.g. ("message", "string")."""

    @property
    def value(self) -> int | bytes:
        """The varint / fixed integer, or a copy of the LEN field's or group's bytes (made when
        asked for: the tree itself holds no copy)."""
        raw = self.raw
        if isinstance(raw, int):
            return raw
        return bytes(raw[self.value_span[0] : self.value_span[1]])

    @property
    def view(self) -> memoryview:
        """The LEN field's or group's bytes without a copy."""
        assert not isinstance(self.raw, int)
        return memoryview(self.raw)[self.value_span[0] : self.value_span[1]]


@dataclass(slots=True)
class Reading:
    """What `read` made of a message."""

    fields: list[WireField]
    error: str | None
    """Why the bytes are not a well-formed message (the fields read before it are kept), or None."""
    limits: dict[str, str]
    """Limits hit (name -> what that did, from LIMITS): the reading is cut or shallower than the
    bytes allow."""


def read_varint(data: Buffer, pos: int, end: int) -> tuple[int, int]:
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


LIMITS = {
    "MAX_DEPTH": f"messages nested deeper than MAX_DEPTH ({MAX_DEPTH}) are shown as bytes",
    "MAX_FIELDS": f"more than MAX_FIELDS ({MAX_FIELDS}) fields: the rest are cut or shown as bytes",
    "MAX_WORK": f"more than MAX_WORK ({MAX_WORK}) fields read: later fields are not tried as messages",
}
"""What hitting each limit does to a reading (the findings' text)."""


class _Budget:
    """What one message's reading may still spend, and the limits it hit."""

    __slots__ = ("left", "limits", "work")

    def __init__(self) -> None:
        self.left = MAX_FIELDS
        self.work = MAX_WORK
        self.limits: dict[str, str] = {}

    def hit(self, limit: str) -> None:
        self.limits.setdefault(limit, LIMITS[limit])


def _fields(
    data: Buffer, start: int, end: int, depth: int, budget: _Budget, group: int = 0
) -> tuple[list[WireField], int]:
    """Fields in data[start:end]; inside a group, stops at its end tag and returns the position after it."""
    out: list[WireField] = []
    pos = start
    while pos < end:
        budget.left -= 1
        budget.work -= 1
        if budget.left < 0:
            raise WireLimit("MAX_FIELDS", f"more than {MAX_FIELDS} fields")
        tag_at = pos
        # One-byte varints (most tags, small values and lengths) read inline: a call per varint
        # was a fifth of a schema-less reading's time.
        tag = data[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = read_varint(data, pos, end)
        number, wire_type = tag >> 3, tag & 7
        if number < 1 or number > MAX_FIELD_NUMBER:
            raise WireError(f"field number {number} is out of range")
        if wire_type == VARINT:
            value_at = pos
            if pos < end and data[pos] < 0x80:
                value = data[pos]
                pos += 1
            else:
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
            if pos < end and data[pos] < 0x80:
                length = data[pos]
                pos += 1
            else:
                length, pos = read_varint(data, pos, end)
            if pos + length > end:
                raise WireError(f"length {length} runs past the end")
            f = WireField(number, wire_type, (tag_at, pos + length), (pos, pos + length), data)
            _classify(f, data, depth, budget)
            out.append(f)
            pos += length
        elif wire_type == SGROUP:
            if depth >= MAX_DEPTH:
                raise WireLimit("MAX_DEPTH", f"groups nest deeper than {MAX_DEPTH}")
            children, after = _fields(data, pos, end, depth + 1, budget, group=number)
            f = WireField(number, wire_type, (tag_at, after), (pos, after), data, "group", children)
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


def _text(text: str) -> bool:
    """Every character printable, tabs and line ends allowed (str.isprintable runs in C)."""
    return text.isprintable() or text.replace("\t", " ").replace("\n", " ").replace("\r", " ").isprintable()


def _printable(raw: Buffer) -> bool:
    """UTF-8 whose characters are all printable, tabs and line ends allowed."""
    if len(raw) > PRINTABLE_PREFIX:
        try:  # final=False: a character cut at the prefix's end is not an error
            head, _ = codecs.utf_8_decode(raw[:PRINTABLE_PREFIX], "strict", False)
        except UnicodeDecodeError:
            return False
        if not _text(head):
            return False
    try:
        text = codecs.utf_8_decode(raw, "strict", True)[0]
    except UnicodeDecodeError:
        return False
    return _text(text)


def _classify(f: WireField, data: Buffer, depth: int, budget: _Budget) -> None:
    start, end = f.value_span
    candidates: list[str] = []
    if end > start:
        if depth >= MAX_DEPTH:
            budget.hit("MAX_DEPTH")
        elif budget.work <= 0:
            budget.hit("MAX_WORK")
        else:
            saved_left, saved_limits = budget.left, dict(budget.limits)
            try:
                f.children, _ = _fields(data, start, end, depth + 1, budget)
                candidates.append("message")
            except WireError as exc:
                # An abandoned reading gives its fields back, and the limits it met did not shape
                # what is shown, unless one of them stopped it (this field is bytes because of it).
                f.children = []
                budget.left = saved_left
                budget.limits = saved_limits
                if isinstance(exc, WireLimit):
                    budget.hit(exc.limit)
    view = memoryview(data)[start:end]
    if _printable(view):
        candidates.append("string")
    if end > start and data[end - 1] < 0x80:  # a packed varint ends with a byte below 0x80
        candidates.append("packed")
    candidates.append("bytes")
    f.candidates = tuple(candidates)
    f.kind = candidates[0]


def read(data: Buffer) -> Reading:
    """All fields of a message, within the limits; on malformed input, the fields read before the
    error. Spans are offsets into `data`, which the fields refer to (no copies)."""
    budget = _Budget()
    try:
        fields, _ = _fields(data, 0, len(data), 0, budget)
        return Reading(fields, None, budget.limits)
    except WireError as exc:
        error: str | None = str(exc)
        if isinstance(exc, WireLimit):
            budget.hit(exc.limit)
            error = None
    # Keep what parsed before the error: read again up to it, top-level field by field, with the
    # work left and one allowance of fields for them all (before, each field had one of its own:
    # a broken message of many large fields kept MAX_FIELDS of each).
    good: list[WireField] = []
    budget.left = MAX_FIELDS
    pos = 0
    while pos < len(data):
        try:
            end = _extent(data, pos)
            one, _ = _fields(data, pos, end, 0, budget)
        except WireError:
            break
        good.append(one[0])
        pos = end
    return Reading(good, error, budget.limits)


def decode(data: Buffer) -> tuple[list[WireField], str | None]:
    """All fields of a message; on malformed input, returns the fields read so far and the error.
    A message cut by a limit has no error here: `read` says which limit."""
    reading = read(data)
    return reading.fields, reading.error


def _extent(data: Buffer, pos: int) -> int:
    """Where the single field at `pos` ends (groups are not salvaged)."""
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
    return end


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
