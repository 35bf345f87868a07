"""Display filters in Wireshark's language (as tshark 4.0 reads it), parsed by a real parser (no
eval), checked against the field registry, and applied columnar where the index allows.

    grpc.status != 0              stun.type == 0x0101            ip.addr == 10.0.0.0/8 && udp
    rtp.ssrc == 0x1234            frame contains "grpc"          sdp.media matches "^audio"
    tcp.port in {80, 443, 8000..8100}                            eth.addr[0:3] == 00:1a:2b
    tcp.flags.syn == 1 && !tcp.flags.ack                         tcp.flags & 0x02
    all ip.addr == 10.0.0.1       ip.addr === 10.0.0.1           ip.addr !== 10.0.0.1

Semantics, as tshark 4.0's (each checked by tests/inspector/test_filter_oracle.py):

* A bare name tests presence (a protocol or a field: `tcp.flags.syn` is true on every TCP packet).
  A name no one declared is an error that names the closest known ones.
* A field with several values (ip.addr, tcp.port, a repeated header) matches `==`, `>`, `in`,
  `contains`, `matches` and `&` when any value does (`any` says so explicitly; `all` asks it of
  every value); `!=` when none equals (Wireshark's "all not equal"); `===` when all equal; `!==`
  and `~=` when one differs. A test on an absent field is false, `!=` included.
* `matches` is a PCRE in Wireshark, case-insensitive by default; a leading `(?-i)` makes it
  case-sensitive. Python's `re` runs it here (the common subset of PCRE).
* Integers read as decimal, 0x hex, 0 octal, or by their value name (`http2.type == HEADERS`);
  addresses as Wireshark writes them, with CIDR for networks (`ip.addr == 10.0.0.0/8`,
  `ipv6.addr == 2001:db8::/32`); bytes as `0a:0b:0c` (also `-` or `.` separated, or bare hex).
* Slices as Wireshark's: `[i:n]` n bytes from offset i, `[i-j]` offsets i to j inclusive, `[i]`
  one byte, `[:n]`, `[i:]`, negative offsets from the end, several ranges joined with commas.
  They apply to byte-like fields (frame, protocols, addresses, bytes and strings).
* Sets: `{80, 443, 8000..8100}`; the space-separated form of Wireshark before 4.0 is read too.
* Not in tshark 4.0, so not here: `xor`, arithmetic, and functions other than `len()`.

Our own fields (tshark has no such): grpc.status, grpc.path, grpc.service and grpc.method (see
decoders/grpc/fields.py and `_GrpcPaths`). tcp.stream and udp.stream are numbered as tshark numbers
them: TCP and UDP conversations separately, each from 0 in order of their first packet (our flow
ids count both together; `_Context` maps them). tcp.seq and tcp.ack are relative as tshark's
default: to the direction's SYN, or one before its first sequence number when no SYN was seen
(or one before the first acknowledgment the other side sent, if that came first); tcp.seq_raw and
tcp.ack_raw are the numbers on the wire. frame.time_relative counts from the first packet,
frame.time_delta from the previous captured one.

frame.time_delta_displayed is not offered: tshark's one-pass `-Y` sees no displayed frame before
the one it filters (the field is 0 there), and the viewer's meaning needs the filter's own result.

Speed: `filter_rows` evaluates with numpy over the index columns whatever the columns know (frame
facts, ports, addresses, streams, TCP flags and numbers, and bytes gathered from the frames for
`frame[...]`, eth.src/dst/addr and eth.type) in three-valued logic (true, false, unknown), and falls
back per packet only where that leaves the answer unknown: L2-L4 fields the columns lack are read
from the packet's dissection, and the decoding pass runs only when a decoder's field is named.
"""

from __future__ import annotations

import ipaddress
import re
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from protoscope.captures import linktypes as lt
from protoscope.decoders.api import FieldInfo

from .fields import ALIASES, LINK_FIELDS, TCP_FLAG_ALIASES, TCP_FLAG_FIELDS, closest, field_info

if TYPE_CHECKING:
    from protoscope.decoders.registry import Registry

    from .session import PacketDecode, Session

MAX_FILTER = 4096
"""Characters a filter may have."""
MAX_DEPTH = 64
"""How deeply parentheses and `!` may nest (Python's recursion stays far away)."""
CANCEL_EVERY = 4096
"""Packets of the per-packet fallback between looks at the cancel flag."""

Fields = Mapping[str, Sequence[object]]
Bools = npt.NDArray[np.bool_]


class FilterError(ValueError):
    """A filter that does not parse or names an unknown field: the message says what and where
    (`pos`: the 0-based offset in the text, when there is one)."""

    def __init__(self, message: str, pos: int | None = None) -> None:
        super().__init__(message)
        self.pos = pos


# -- tokens ----------------------------------------------------------------------------------------

TOKEN = re.compile(
    r"""\s*(?:
      (?P<op>===|!==|==|!=|~=|>=|<=|&&|\|\||[><!(){},&~])
    | (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<slice>\[[^\[\]]*\])
    | (?P<word>[A-Za-z0-9_.:/\-]+)
    )""",
    re.VERBOSE,
)
WORD_OPS = {
    "eq": "==",
    "any_eq": "==",
    "ne": "!=",
    "all_ne": "!=",
    "all_eq": "===",
    "any_ne": "!==",
    "gt": ">",
    "lt": "<",
    "ge": ">=",
    "le": "<=",
    "and": "&&",
    "or": "||",
    "not": "!",
    "bitwise_and": "&",
    "contains": "contains",
    "matches": "matches",
    "in": "in",
}
RELATIONS = frozenset({"==", "!=", "===", "!==", "~=", ">", "<", ">=", "<=", "contains", "matches", "~", "&"})
NUMERIC = frozenset({"uint", "int", "float", "time"})
BYTE_LIKE = frozenset({"bytes", "ether", "ipv4", "ipv6", "string", "protocol", "none"})


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    """"op", "str", "slice" or "word"."""
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    """The tokens of `text`; FilterError at the first character that starts none."""
    if len(text) > MAX_FILTER:
        raise FilterError(f"filter longer than {MAX_FILTER} characters")
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            at = len(text) - len(text[pos:].lstrip())
            raise FilterError(f"unexpected {text[at : at + 10]!r} at {at}", at)
        kind = m.lastgroup or "word"
        value = m.group(kind)
        start = m.start(kind)
        if kind == "word" and value.lower() in WORD_OPS:
            kind, value = "op", WORD_OPS[value.lower()]
        out.append(Token(kind, value, start))
        pos = m.end()
    return out


# -- literals --------------------------------------------------------------------------------------

_OCTAL = re.compile(r"0[0-7]+")
_BYTES = re.compile(r"[0-9A-Fa-f]{2}(?:[:.\-][0-9A-Fa-f]{2})*|[0-9A-Fa-f]{1,2}")


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_HEX_ESCAPE = re.compile(r"x([0-9A-Fa-f]{1,2})")
_OCTAL_ESCAPE = re.compile(r"[0-7]{1,3}")


def _unescape(quoted: str, pos: int) -> str:
    """A string literal's text: C escapes as Wireshark reads them (\\n, \\t, \\xhh, \\ooo);
    \\", \\\\ and \\' stand for themselves; any other escape is an error, as in tshark."""
    body = quoted[1:-1]
    out: list[str] = []
    k = 0
    while k < len(body):
        c = body[k]
        if c != "\\" or k + 1 == len(body):
            out.append(c)
            k += 1
            continue
        if m := _HEX_ESCAPE.match(body, k + 1):
            out.append(chr(int(m.group(1), 16)))
            k = m.end()
        elif m := _OCTAL_ESCAPE.match(body, k + 1):
            out.append(chr(int(m.group(), 8) & 0xFF))
            k = m.end()
        elif body[k + 1] in _ESCAPES:
            out.append(_ESCAPES[body[k + 1]])
            k += 2
        elif body[k + 1] in "\"\\'":
            out.append(body[k + 1])
            k += 2
        else:
            at = pos + 1 + k
            raise FilterError(f"\\{body[k + 1]} is not a valid character escape sequence at {at}", at)
    return "".join(out)


def _int(text: str) -> int | None:
    try:
        if _OCTAL.fullmatch(text):
            return int(text, 8)
        return int(text, 0)
    except ValueError:
        return None


def _number(value: object) -> int | float | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        n = _int(value)
        if n is not None:
            return n
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _hex_bytes(text: str) -> bytes | None:
    """`0a:0b:0c`, `0a-0b`, `0a.0b`, `0a0b0c` or a single byte `0a` as bytes; None otherwise."""
    if _BYTES.fullmatch(text):
        return bytes.fromhex(re.sub(r"[:.\-]", "", text).rjust(2, "0"))
    if re.fullmatch(r"(?:[0-9A-Fa-f]{2})+", text):
        return bytes.fromhex(text)
    return None


def _as_bytes(value: object, kind: str) -> bytes | None:
    """A field value as the bytes Wireshark would slice or search."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, bool) or not isinstance(value, str):
        return None
    if kind == "ether":
        return _hex_bytes(value)
    if kind in ("ipv4", "ipv6"):
        try:
            return ipaddress.ip_address(value).packed
        except ValueError:
            return value.encode()
    if kind == "bytes":
        raw = _hex_bytes(value)
        return raw if raw is not None else value.encode()
    return value.encode("utf-8", "surrogateescape")


@dataclass(frozen=True, slots=True)
class Literal:
    """The right-hand side of a test, read for the type of the field on the left."""

    text: str
    quoted: bool
    pos: int


def _literal_value(lit: Literal, info: FieldInfo | None, sliced: bool, name: str) -> object:
    """What a literal means for a field: an int, float, bool, network, bytes or str. Raises
    FilterError when the field's type cannot hold it (tshark refuses these too)."""
    kind = "bytes" if sliced else info.type if info is not None else "none"
    text = lit.text
    if kind in ("uint", "int"):
        n = None if lit.quoted else _int(text)
        if n is None and info is not None and info.strings:
            names = {v.lower(): k for k, v in info.strings.items()}
            n = names.get(text.lower())
        if n is None:
            raise FilterError(f"{text!r} is not a valid integer for {name} at {lit.pos}", lit.pos)
        return n
    if kind in ("float", "time"):
        n2 = _number(text)
        if n2 is None or lit.quoted:
            raise FilterError(f"{text!r} is not a number for {name} at {lit.pos}", lit.pos)
        return float(n2)
    if kind == "bool":
        low = text.lower()
        if low in ("1", "true"):
            return True
        if low in ("0", "false"):
            return False
        raise FilterError(f"{text!r} is not a boolean (1, 0, True, False) for {name} at {lit.pos}", lit.pos)
    if kind in ("ipv4", "ipv6"):
        try:
            return ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise FilterError(f"{text!r} is not a valid address for {name} at {lit.pos}", lit.pos) from None
    if kind in ("ether", "bytes", "protocol"):
        if lit.quoted:
            return text.encode("utf-8", "surrogateescape")
        raw = _hex_bytes(text)
        if raw is None:
            raise FilterError(f"{text!r} is not a valid byte string for {name} at {lit.pos}", lit.pos)
        return raw
    return text


def _equal(value: object, wanted: object, kind: str) -> bool:
    """Whether one field value equals a literal's value (see `_literal_value`)."""
    if isinstance(wanted, bool):
        return (
            bool(value) is wanted
            if isinstance(value, bool | int)
            else str(value).lower() == str(wanted).lower()
        )
    if isinstance(wanted, int | float):
        n = _number(value)
        return n is not None and n == wanted
    if isinstance(wanted, ipaddress.IPv4Network | ipaddress.IPv6Network):
        try:
            return ipaddress.ip_address(str(value)) in wanted
        except ValueError:
            return False
    if isinstance(wanted, bytes):
        return _as_bytes(value, kind) == wanted
    return _loose_equal(value, str(wanted))


def _loose_equal(value: object, text: str) -> bool:
    """Equality for a field of unknown type (a schema's pbf.* field): as a number, an address,
    then as text."""
    a, b = _number(value), _number(text)
    if a is not None and b is not None:
        return a == b
    if isinstance(value, bool):
        return str(value).lower() == text.lower() or (text in ("1", "0") and int(value) == int(text))
    return str(value) == text


def _order(value: object, wanted: object, kind: str) -> tuple[Any, Any] | None:
    """The two sides as comparable keys for <, >, <=, >=; None when they cannot be ordered."""
    if isinstance(wanted, ipaddress.IPv4Network | ipaddress.IPv6Network):
        try:
            return int(ipaddress.ip_address(str(value))), int(wanted.network_address)
        except ValueError:
            return None
    if isinstance(wanted, bool | int | float):
        n = _number(value)
        return None if n is None else (n, wanted)
    if isinstance(wanted, bytes):
        raw = _as_bytes(value, kind)
        return None if raw is None else (raw, wanted)
    a, b = _number(value), _number(wanted)
    if a is not None and b is not None:
        return a, b
    return str(value), str(wanted)


# -- slices ----------------------------------------------------------------------------------------

Range = tuple[int | None, int | None, str]
"""(start, length or end, form): form ":" for [i:n], "-" for [i-j], "1" for [i]."""


def _parse_slice(tok: Token) -> tuple[Range, ...]:
    body = tok.text[1:-1].strip()
    if not body:
        raise FilterError(f"empty slice at {tok.pos}", tok.pos)
    out: list[Range] = []
    for part in body.split(","):
        part = part.strip()
        m = re.fullmatch(r"(-?\d+)?\s*:\s*(\d+)?", part)
        if m:
            start = int(m.group(1)) if m.group(1) else 0
            out.append((start, int(m.group(2)) if m.group(2) else None, ":"))
            continue
        m = re.fullmatch(r"(-?\d+)\s*-\s*(-?\d+)", part)
        if m:
            out.append((int(m.group(1)), int(m.group(2)), "-"))
            continue
        if re.fullmatch(r"-?\d+", part):
            out.append((int(part), 1, "1"))
            continue
        raise FilterError(f"bad slice {tok.text!r} at {tok.pos}", tok.pos)
    return tuple(out)


def _slice(data: bytes, ranges: tuple[Range, ...]) -> bytes | None:
    """Wireshark's slice of `data`; None when a range falls outside it (the test is then false)."""
    out = b""
    size = len(data)
    for start, second, form in ranges:
        lo = (start or 0) + size if (start or 0) < 0 else start or 0
        if form == "-":
            assert second is not None
            hi = second + size + 1 if second < 0 else second + 1
        elif second is None:
            hi = size
        else:
            hi = lo + second
        if lo < 0 or hi > size or lo > hi:
            return None
        out += data[lo:hi]
    return out


# -- the syntax tree -------------------------------------------------------------------------------


class Node:
    """One node of a parsed filter: a test per packet (`test`), and, where the index columns
    know the answer, a three-valued one over all packets (`columns`)."""

    needs_decode: bool = False
    """Whether a decoder's field is read (the decoding pass must run)."""

    def test(self, fields: Fields) -> bool:
        raise NotImplementedError

    def columns(self, ctx: _Context) -> tuple[Bools, Bools] | None:
        """(value, known) for every packet; None when the columns know nothing."""
        return None


@dataclass(eq=False)
class _And(Node):
    left: Node
    right: Node

    def __post_init__(self) -> None:
        self.needs_decode = self.left.needs_decode or self.right.needs_decode

    def test(self, fields: Fields) -> bool:
        return self.left.test(fields) and self.right.test(fields)

    def columns(self, ctx: _Context) -> tuple[Bools, Bools] | None:
        a, b = _three(self.left, ctx), _three(self.right, ctx)
        known = (a[1] & b[1]) | (a[1] & ~a[0]) | (b[1] & ~b[0])
        return a[0] & b[0], known


@dataclass(eq=False)
class _Or(Node):
    left: Node
    right: Node

    def __post_init__(self) -> None:
        self.needs_decode = self.left.needs_decode or self.right.needs_decode

    def test(self, fields: Fields) -> bool:
        return self.left.test(fields) or self.right.test(fields)

    def columns(self, ctx: _Context) -> tuple[Bools, Bools] | None:
        a, b = _three(self.left, ctx), _three(self.right, ctx)
        known = (a[1] & b[1]) | (a[1] & a[0]) | (b[1] & b[0])
        return a[0] | b[0], known


@dataclass(eq=False)
class _Not(Node):
    inner: Node

    def __post_init__(self) -> None:
        self.needs_decode = self.inner.needs_decode

    def test(self, fields: Fields) -> bool:
        return not self.inner.test(fields)

    def columns(self, ctx: _Context) -> tuple[Bools, Bools] | None:
        value, known = _three(self.inner, ctx)
        return ~value, known


def _three(node: Node, ctx: _Context) -> tuple[Bools, Bools]:
    got = node.columns(ctx)
    if got is None:
        none = np.zeros(ctx.n, np.bool_)
        return none, none
    return got


@dataclass(eq=False)
class _Operand:
    """A field, maybe sliced, maybe inside len()."""

    name: str
    info: FieldInfo | None
    ranges: tuple[Range, ...] = ()
    length: bool = False
    pos: int = 0

    @property
    def kind(self) -> str:
        if self.length:
            return "uint"
        if self.ranges:
            return "bytes"
        return self.info.type if self.info is not None else "none"

    def values(self, fields: Fields) -> list[object]:
        raw = field_values(fields, self.name)
        if self.ranges or self.length:
            kind = self.info.type if self.info is not None else "none"
            out: list[object] = []
            for v in raw:
                data = _as_bytes(v, kind)
                if data is None and self.length:
                    data = str(v).encode()
                if data is None:
                    continue
                if self.ranges:
                    data = _slice(data, self.ranges)
                    if data is None:
                        continue
                out.append(len(data) if self.length else data)
            return out
        return raw


def field_values(fields: Fields, name: str) -> list[object]:
    """The values of `name` in one packet's fields; ip.addr, tcp.port and friends give the source's
    and the destination's, as in a filter and in tshark's -T fields -e."""
    name = TCP_FLAG_ALIASES.get(name, name)
    if name in ALIASES:
        return [v for alias in ALIASES[name] for v in fields.get(alias, ())]
    return list(fields.get(name, ()))


@dataclass(eq=False)
class _Presence(Node):
    operand: _Operand

    def __post_init__(self) -> None:
        self.needs_decode = _needs_decode(self.operand.name)

    def test(self, fields: Fields) -> bool:
        return bool(self.operand.values(fields))

    def columns(self, ctx: _Context) -> tuple[Bools, Bools] | None:
        if self.operand.ranges or self.operand.length:
            return None
        cols = ctx.column(self.operand.name)
        if cols is None:
            return None
        present = np.zeros(ctx.n, np.bool_)
        for _, p in cols.parts:
            present |= p
        return present, cols.known


Compare = Callable[[object], bool]


@dataclass(eq=False)
class _Test(Node):
    """`operand OP right`, with the quantifier (any, all) the operator or a keyword gives."""

    operand: _Operand
    op: str
    check: Compare
    """Whether one value of the field passes."""
    quantifier: str = "any"
    """"any": some value passes; "all": every value does; "none": no value does (!=)."""
    numeric: Callable[[npt.NDArray[Any]], Bools] | None = None
    """The same check over a column of numbers (frame, L2-L4 fields), when it can be made."""
    address: Compare | None = None
    """The check over an address text (ip.src, ...), evaluated once per distinct address."""
    rows: Callable[[npt.NDArray[np.uint8]], Bools] | None = None
    """The check over byte strings gathered from the frames, one row a packet (frame[0:2],
    eth.src), when it can be made."""

    def __post_init__(self) -> None:
        self.needs_decode = _needs_decode(self.operand.name)

    def test(self, fields: Fields) -> bool:
        values = self.operand.values(fields)
        if not values:
            return False
        if self.quantifier == "any":
            return any(self.check(v) for v in values)
        if self.quantifier == "all":
            return all(self.check(v) for v in values)
        return not any(self.check(v) for v in values)

    def columns(self, ctx: _Context) -> tuple[Bools, Bools] | None:
        if self.operand.length:
            return None
        if self.rows is not None:
            cols = ctx.byte_column(self.operand.name, self.operand.ranges)
        elif self.operand.ranges:
            return None
        else:
            cols = ctx.column(self.operand.name)
        if cols is None:
            return None
        if cols.gathered is not None:
            assert self.rows is not None
            parts: list[tuple[Bools, Bools]] = []
            for packets, matrix in cols.gathered:
                hit = np.zeros(ctx.n, np.bool_)
                hit[packets] = self.rows(matrix)
                parts.append((hit, cols.parts[len(parts)][1]))
        elif cols.addresses is not None:
            if self.address is None:
                return None
            parts = [(ctx.address_match(addr, self.address), p) for addr, p in cols.addresses]
        else:
            if self.numeric is None:
                return None
            parts = [(self.numeric(v), p) for v, p in cols.parts]
        present = np.zeros(ctx.n, np.bool_)
        hit_any = np.zeros(ctx.n, np.bool_)
        miss_any = np.zeros(ctx.n, np.bool_)
        for hit, p in parts:
            present |= p
            hit_any |= hit & p
            miss_any |= ~hit & p
        if self.quantifier == "any":
            value = hit_any
        elif self.quantifier == "all":
            value = present & ~miss_any
        else:
            value = present & ~hit_any
        return value, cols.known


@dataclass(eq=False)
class _FieldPair(Node):
    """`a OP b` with a field on both sides: some pair of values passes (any), as tshark."""

    left: _Operand
    right: _Operand
    check: Callable[[object, object], bool]

    def __post_init__(self) -> None:
        self.needs_decode = _needs_decode(self.left.name) or _needs_decode(self.right.name)

    def test(self, fields: Fields) -> bool:
        rights = self.right.values(fields)
        return any(self.check(a, b) for a in self.left.values(fields) for b in rights)


def _needs_decode(name: str) -> bool:
    name = TCP_FLAG_ALIASES.get(name, name)
    return name not in LINK_FIELDS


# -- the parser ------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: list[Token], registry: Registry | None) -> None:
        self.tokens = tokens
        self.i = 0
        self.registry = registry
        self.depth = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise FilterError("the filter ends too soon")
        self.i += 1
        return tok

    def expect(self, text: str) -> Token:
        tok = self.take()
        if tok.text != text or tok.kind != "op":
            raise FilterError(f"expected {text!r} at {tok.pos}, found {tok.text!r}", tok.pos)
        return tok

    def at_op(self, *texts: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "op" and tok.text in texts

    def parse(self) -> Node:
        node = self.or_expr()
        tok = self.peek()
        if tok is not None:
            raise FilterError(f"unexpected {tok.text!r} at {tok.pos}", tok.pos)
        return node

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.at_op("||"):
            self.take()
            node = _Or(node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.not_expr()
        while self.at_op("&&"):
            self.take()
            node = _And(node, self.not_expr())
        return node

    def not_expr(self) -> Node:
        if self.at_op("!"):
            tok = self.take()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise FilterError(f"nested deeper than {MAX_DEPTH} at {tok.pos}", tok.pos)
            node: Node = _Not(self.not_expr())
            self.depth -= 1
            return node
        return self.primary()

    def primary(self) -> Node:
        tok = self.peek()
        if tok is not None and tok.kind == "op" and tok.text == "(":
            self.take()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise FilterError(f"nested deeper than {MAX_DEPTH} at {tok.pos}", tok.pos)
            node = self.or_expr()
            self.expect(")")
            self.depth -= 1
            return node
        quantifier = "any"
        if tok is not None and tok.kind == "word" and tok.text in ("any", "all"):
            nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
            if nxt is not None and nxt.kind == "word":
                quantifier = tok.text
                self.take()
        operand = self.operand()
        nxt = self.peek()
        if nxt is None or nxt.kind != "op" or nxt.text not in (*RELATIONS, "in"):
            if quantifier != "any" or operand.length:
                where = nxt.pos if nxt is not None else "the end"
                raise FilterError(f"expected a comparison at {where}", nxt.pos if nxt else None)
            return _Presence(operand)
        op = self.take().text
        if op == "in":
            return self.membership(operand, quantifier)
        if op in ("matches", "~"):
            return self.matches(operand, quantifier)
        right = self.right_side(operand)
        if isinstance(right, _Operand):
            return _FieldPair(operand, right, _pair_check(op, operand, right))
        return self.relation(operand, op, right, quantifier)

    def operand(self) -> _Operand:
        tok = self.take()
        if tok.kind == "word" and tok.text == "len" and self.at_op("("):
            self.take()
            inner = self.operand()
            self.expect(")")
            return _Operand(inner.name, inner.info, inner.ranges, True, tok.pos)
        if tok.kind != "word" or not re.fullmatch(r"[A-Za-z_][\w.\-]*", tok.text):
            raise FilterError(f"expected a field name at {tok.pos}, found {tok.text!r}", tok.pos)
        info = self.known(tok)
        ranges: tuple[Range, ...] = ()
        nxt = self.peek()
        if nxt is not None and nxt.kind == "slice":
            self.take()
            if info.type not in BYTE_LIKE:
                raise FilterError(
                    f"{tok.text} is a {info.type} field and cannot be sliced (at {nxt.pos})", nxt.pos
                )
            ranges = _parse_slice(nxt)
        return _Operand(tok.text, info, ranges, False, tok.pos)

    def known(self, tok: Token) -> FieldInfo:
        info = field_info(tok.text, self.registry)
        if info is None:
            near = closest(tok.text, self.registry)
            hint = f" (did you mean: {', '.join(near)})" if near else ""
            raise FilterError(f"unknown field {tok.text!r}{hint}", tok.pos)
        return info

    def literal(self) -> Literal:
        tok = self.take()
        if tok.kind == "str":
            return Literal(_unescape(tok.text, tok.pos), True, tok.pos)
        if tok.kind == "word":
            return Literal(tok.text, False, tok.pos)
        raise FilterError(f"expected a value at {tok.pos}, found {tok.text!r}", tok.pos)

    def right_side(self, left: _Operand) -> Literal | _Operand:
        """A literal, or a field when the word names one (and is not a value of the left's type)."""
        tok = self.peek()
        if tok is not None and tok.kind == "word":
            info = field_info(tok.text, self.registry)
            after = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
            sliced = after is not None and after.kind == "slice"
            if (
                info is not None
                and (info.type != "protocol" or sliced)
                and not self._reads_as_value(tok, left)
            ):
                return self.operand()
        return self.literal()

    def _reads_as_value(self, tok: Token, left: _Operand) -> bool:
        try:
            _literal_value(Literal(tok.text, False, tok.pos), left.info, bool(left.ranges), left.name)
        except FilterError:
            return False
        return True

    def relation(self, operand: _Operand, op: str, lit: Literal, quantifier: str) -> Node:
        kind = operand.kind
        info = None if operand.ranges else operand.info
        if operand.length:
            info = FieldInfo(operand.name, "length", "uint")
        if op == "contains":
            if kind in NUMERIC or kind == "bool":
                raise FilterError(
                    f"{operand.name} is a {kind} field: 'contains' needs bytes or text", lit.pos
                )
            return _Test(operand, op, _contains_check(lit, kind), quantifier)
        if op == "&":
            if kind not in ("uint", "int"):
                raise FilterError(f"{operand.name} is a {kind} field: '&' needs an integer", lit.pos)
            mask = _literal_value(lit, info, False, operand.name)
            assert isinstance(mask, int)
            return _Test(
                operand,
                op,
                lambda v: (n := _number(v)) is not None and int(n) & mask != 0,
                quantifier,
                numeric=lambda col: (col.astype(np.int64) & mask) != 0,
            )
        wanted = _literal_value(lit, info, bool(operand.ranges), operand.name)
        return _relation_test(operand, op, wanted, kind, quantifier)

    def membership(self, operand: _Operand, quantifier: str) -> Node:
        self.expect("{")
        info = None if operand.ranges else operand.info
        kind = operand.kind
        members: list[tuple[object, object]] = []
        while not self.at_op("}"):
            lit = self.literal()
            low_text, sep, high_text = lit.text.partition("..")
            if sep and not lit.quoted:
                low = _literal_value(
                    Literal(low_text, False, lit.pos), info, bool(operand.ranges), operand.name
                )
                high = _literal_value(
                    Literal(high_text, False, lit.pos + len(low_text) + 2),
                    info,
                    bool(operand.ranges),
                    operand.name,
                )
                members.append((low, high))
            else:
                value = _literal_value(lit, info, bool(operand.ranges), operand.name)
                members.append((value, None))
            if self.at_op(","):
                self.take()
        self.expect("}")
        if not members:
            raise FilterError(f"empty set in the test of {operand.name}", operand.pos)

        def check(v: object) -> bool:
            for low, high in members:
                if high is None:
                    if _equal(v, low, kind):
                        return True
                    continue
                lo, hi = _order(v, low, kind), _order(v, high, kind)
                if lo is not None and hi is not None and lo[0] >= lo[1] and hi[0] <= hi[1]:
                    return True
            return False

        numeric = None
        address = None
        if all(
            isinstance(m, int | float) and not isinstance(m, bool)
            for pair in members
            for m in pair
            if m is not None
        ):

            def numeric(col: npt.NDArray[Any]) -> Bools:
                out = np.zeros(len(col), np.bool_)
                for low, high in members:
                    out |= (col == low) if high is None else ((col >= low) & (col <= high))
                return out

        elif kind in ("ipv4", "ipv6"):
            address = check
        return _Test(operand, "in", check, quantifier, numeric, address)

    def matches(self, operand: _Operand, quantifier: str) -> Node:
        tok = self.take()
        if tok.kind != "str":
            raise FilterError(f"'matches' needs a quoted regular expression at {tok.pos}", tok.pos)
        pattern_text = _unescape(tok.text, tok.pos)
        flags = re.IGNORECASE | re.DOTALL
        if pattern_text.startswith("(?-i)"):
            pattern_text, flags = pattern_text[5:], re.DOTALL
        try:
            pattern = re.compile(pattern_text, flags)
        except (re.error, OverflowError, RecursionError) as exc:
            raise FilterError(
                f"bad regular expression {pattern_text!r} at {tok.pos}: {exc}", tok.pos
            ) from None
        kind = operand.kind

        def check(v: object) -> bool:
            if isinstance(v, bytes | bytearray):
                return pattern.search(bytes(v).decode("latin-1")) is not None
            if kind in BYTE_LIKE and kind not in ("string", "none") and isinstance(v, str):
                raw = _as_bytes(v, kind)
                if raw is not None:
                    return pattern.search(raw.decode("latin-1")) is not None
            return pattern.search(str(v)) is not None

        return _Test(operand, "matches", check, quantifier)


def _contains_check(lit: Literal, kind: str) -> Compare:
    if lit.quoted:
        text = lit.text
        needle = text.encode("utf-8", "surrogateescape")
    else:
        raw = _hex_bytes(lit.text)
        needle = raw if raw is not None else lit.text.encode()
        text = needle.decode("utf-8", "surrogateescape") if raw is not None else lit.text

    def check(v: object) -> bool:
        if isinstance(v, str) and kind in ("string", "none"):
            return text in v or needle in v.encode("utf-8", "surrogateescape")
        data = _as_bytes(v, kind)
        if data is None:
            return text in str(v)
        return needle in data

    return check


def _relation_test(operand: _Operand, op: str, wanted: object, kind: str, quantifier: str) -> Node:
    if op in ("==", "!=", "===", "!==", "~="):
        differs = op in ("!==", "~=")

        def check(v: object) -> bool:
            return _equal(v, wanted, kind) != differs

        quant = {"==": quantifier, "!=": "none", "===": "all"}.get(op, "any")
        numeric: Callable[[npt.NDArray[Any]], Bools] | None = None
        address = None
        if isinstance(wanted, bool):
            numeric = lambda col: (col.astype(np.bool_) == wanted) != differs  # noqa: E731
        elif isinstance(wanted, int | float):
            numeric = lambda col: (col == wanted) != differs  # noqa: E731
        elif isinstance(wanted, ipaddress.IPv4Network | ipaddress.IPv6Network):
            address = check
        elif isinstance(wanted, bytes) and kind in ("bytes", "ether"):
            return _Test(operand, op, check, quant, rows=_rows_equal(wanted, differs))
        return _Test(operand, op, check, quant, numeric, address)
    compare: Callable[[Any, Any], Any] = {
        ">": lambda a, b: a > b,
        "<": lambda a, b: a < b,
        ">=": lambda a, b: a >= b,
        "<=": lambda a, b: a <= b,
    }[op]

    def ordered(v: object) -> bool:
        keys = _order(v, wanted, kind)
        if keys is None:
            return False
        try:
            return bool(compare(keys[0], keys[1]))
        except TypeError:
            return False

    numeric = None
    address = None
    if isinstance(wanted, int | float) and not isinstance(wanted, bool):
        numeric = lambda col: compare(col, wanted)  # noqa: E731
    elif isinstance(wanted, ipaddress.IPv4Network | ipaddress.IPv6Network):
        address = ordered
    return _Test(operand, op, ordered, quantifier, numeric, address)


def _rows_equal(wanted: bytes, differs: bool) -> Callable[[npt.NDArray[np.uint8]], Bools]:
    target = np.frombuffer(wanted, np.uint8)

    def rows(matrix: npt.NDArray[np.uint8]) -> Bools:
        if matrix.shape[1] != len(target):
            return np.full(len(matrix), differs, np.bool_)
        same: Bools = (matrix == target).all(axis=1)
        return ~same if differs else same

    return rows


def _pair_check(op: str, left: _Operand, right: _Operand) -> Callable[[object, object], bool]:
    kind_l, kind_r = left.kind, right.kind

    def keys(a: object, b: object) -> tuple[Any, Any]:
        na, nb = _number(a), _number(b)
        if na is not None and nb is not None and kind_l in NUMERIC | {"bool"}:
            return na, nb
        ba, bb = _as_bytes(a, kind_l), _as_bytes(b, kind_r)
        if ba is not None and bb is not None:
            return ba, bb
        return str(a), str(b)

    def check(a: object, b: object) -> bool:
        x, y = keys(a, b)
        if op == "contains":
            return isinstance(x, bytes | str) and type(x) is type(y) and y in x  # type: ignore[operator]
        try:
            return bool(
                {
                    "==": x == y,
                    "===": x == y,
                    "!=": x != y,
                    "!==": x != y,
                    "~=": x != y,
                    ">": x > y,
                    "<": x < y,
                    ">=": x >= y,
                    "<=": x <= y,
                }[op]
            )
        except (TypeError, KeyError):
            return False

    if op in ("&", "matches", "~"):
        raise FilterError(f"'{op}' needs a value on its right, not the field {right.name}", right.pos)
    return check


# -- the compiled filter ---------------------------------------------------------------------------


@dataclass(eq=False)
class DisplayFilter:
    """A parsed filter: call it on a packet's fields (a Mapping of name -> values), or hand it to
    `filter_rows` for a whole capture."""

    text: str
    root: Node

    @property
    def needs_decode(self) -> bool:
        return self.root.needs_decode

    def __call__(self, fields: Fields) -> bool:
        return self.root.test(fields)


Predicate = Callable[[Fields], bool]


def compile_filter(text: str, registry: Registry | None = None) -> DisplayFilter:
    """Parse `text`; raise FilterError (with a position) when it is not a valid filter or names a
    field neither the registry's decoders nor the capture layers declare."""
    tokens = tokenize(text)
    if not tokens:
        raise FilterError("empty filter")
    return DisplayFilter(text, _Parser(tokens, registry).parse())


# -- what the columns know -------------------------------------------------------------------------


@dataclass(slots=True)
class _Columns:
    """A field over all packets: (values, present) parts (two for ip.addr and tcp.port), or
    per-part address texts by flow; `known` marks the packets the columns speak for."""

    parts: list[tuple[npt.NDArray[Any], Bools]]
    known: Bools
    addresses: list[tuple[tuple[npt.NDArray[np.int32], list[str]], Bools]] | None = None
    gathered: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]] | None = None
    """Byte strings from the frames: (packets, one row of bytes each) per part; `parts` then
    holds each part's presence."""


class _Context:
    """What filtering a session needs beyond one packet: stream numbers as tshark's, relative
    sequence bases, times, columns by field name, and the gRPC paths seen so far."""

    def __init__(self, session: Session) -> None:
        # Not the session itself: this context is the value of a WeakKeyDictionary keyed by it.
        self.registry = session.registry
        ix = session.index
        self.ix = ix
        self.n = len(ix)
        rec = ix.records
        self.first_ns = int(rec.ts_ns[0]) if self.n else 0
        self._columns: dict[str, _Columns | None] = {}
        self._stream: dict[str, npt.NDArray[np.int64]] = {}
        self._bases: npt.NDArray[np.int64] | None = None
        self._net: npt.NDArray[np.int64] | None = None
        self.grpc = _GrpcPaths()
        stacks = ix.stacks
        self._stack_has: dict[str, Bools] = {}
        self._simple = np.array(
            ["gtp" not in names and sum(1 for nm in names if nm in ("ip", "ipv6")) <= 1 for names in stacks],
            np.bool_,
        )

    # -- per-flow facts ---------------------------------------------------------------------------

    def stream_of_flow(self, transport: str) -> npt.NDArray[np.int64]:
        """Flow id -> tshark's tcp.stream (or udp.stream): conversations of one transport, numbered
        from 0 in order of their first packet."""
        got = self._stream.get(transport)
        if got is None:
            flows = self.ix.flows
            got = np.full(len(flows) + 1, -1, np.int64)
            ordered = sorted((f.first_frame, f.id) for f in flows if f.transport == transport)
            for number, (_, fid) in enumerate(ordered):
                got[fid] = number
            self._stream[transport] = got
        return got

    def tcp_bases(self) -> npt.NDArray[np.int64]:
        """(flow, direction) -> the sequence number tshark's relative numbers count from: the
        SYN's, or one before the first seen, or one before the first acknowledgment of it the
        other side sent when that came first."""
        if self._bases is not None:
            return self._bases
        ix = self.ix
        nflows = len(ix.flows)
        bases = np.full((nflows + 1, 2), -1, np.int64)
        tcp = np.flatnonzero((ix.flow >= 0) & (ix.l4 == 6))
        if len(tcp):
            key = ix.flow[tcp].astype(np.int64) * 2 + ix.direction[tcp]
            _, first = np.unique(key, return_index=True)
            firsts = tcp[first]
            seen: dict[tuple[int, int], int] = {}
            for i in firsts.tolist():
                seen[(int(ix.flow[i]), int(ix.direction[i]))] = i
            for (fid, d), i in seen.items():
                seq = int(ix.tcp_seq[i])
                base = seq if int(ix.tcp_flags[i]) & 0x02 else (seq - 1) & 0xFFFFFFFF
                other = seen.get((fid, 1 - d))
                if other is not None and other < i and int(ix.tcp_flags[other]) & 0x10:
                    ack = ix.dissect(other).tcp_ack
                    base = (ack - 1) & 0xFFFFFFFF
                bases[fid, d] = base
        self._bases = bases
        return bases

    def stack_has(self, name: str) -> Bools:
        got = self._stack_has.get(name)
        if got is None:
            table = np.array([name in names for names in self.ix.stacks] or [False], np.bool_)
            got = self._stack_has[name] = table[self.ix.stack] if self.n else np.zeros(0, np.bool_)
        return got

    def address_match(self, addresses: tuple[npt.NDArray[np.int32], list[str]], check: Compare) -> Bools:
        """`check` of each packet's address, evaluated once per distinct address text."""
        codes, texts = addresses
        table = np.array([check(t) for t in texts] or [False], np.bool_)
        return table[codes]

    # -- columns by field name --------------------------------------------------------------------

    def column(self, name: str) -> _Columns | None:
        name = TCP_FLAG_ALIASES.get(name, name)
        if name not in self._columns:
            self._columns[name] = self._make_column(name)
        return self._columns[name]

    def _make_column(self, name: str) -> _Columns | None:
        ix = self.ix
        n = self.n
        rec = ix.records
        everywhere = np.ones(n, np.bool_)
        if name == "frame":
            return _Columns([(everywhere, everywhere)], everywhere)
        if name == "frame.number":
            return _Columns([(np.arange(1, n + 1, dtype=np.int64), everywhere)], everywhere)
        if name == "frame.len":
            return _Columns([(rec.wirelen, everywhere)], everywhere)
        if name == "frame.cap_len":
            return _Columns([(rec.caplen, everywhere)], everywhere)
        if name == "frame.time_epoch":
            return _Columns([(rec.ts_ns / 1e9, everywhere)], everywhere)
        if name == "frame.time_relative":
            return _Columns([((rec.ts_ns - self.first_ns) / 1e9, everywhere)], everywhere)
        if name == "frame.time_delta":
            delta = np.zeros(n, np.float64)
            if n > 1:
                delta[1:] = np.diff(rec.ts_ns) / 1e9
            return _Columns([(delta, everywhere)], everywhere)
        if name in ("eth", "vlan", "sll", "null", "raw", "gtp", "ip", "ipv6", "udp", "tcp"):
            has = self.stack_has(name)
            return _Columns([(has, has)], everywhere)
        gathered = self._header_column(name)
        if gathered is not None:
            return gathered
        if name == "eth.type":
            eth = self._starts_with_eth() & (rec.caplen >= 14)
            packets = np.flatnonzero(eth)
            buffer = np.frombuffer(ix.capture.buffer, np.uint8)
            at = rec.data_off[packets].astype(np.int64) + 12
            etype = np.zeros(n, np.int64)
            etype[packets] = buffer[at].astype(np.int64) << 8 | buffer[at + 1]
            return _Columns([(etype, eth)], self._known_link(name))
        in_flow = ix.flow >= 0
        simple = self._simple[ix.stack] if n else np.zeros(0, np.bool_)
        tcp = in_flow & (ix.l4 == 6)
        udp = in_flow & (ix.l4 == 17)
        # Packets with a transport header outside any flow, or tunnelled ones (two IP headers),
        # are left to the per-packet path.
        flowless = ~in_flow & (self.stack_has("tcp") | self.stack_has("udp"))
        known_l4 = simple & ~flowless
        if name in ("tcp.stream", "udp.stream"):
            proto = name.split(".")[0]
            stream = self.stream_of_flow(proto)[ix.flow]
            present = tcp if proto == "tcp" else udp
            return _Columns([(stream, present)], known_l4)
        if name in ("tcp.srcport", "tcp.dstport", "tcp.port", "udp.srcport", "udp.dstport", "udp.port"):
            proto, what = name.split(".")
            present = tcp if proto == "tcp" else udp
            src, dst = self._ports()
            parts = {"srcport": [src], "dstport": [dst], "port": [src, dst]}[what]
            return _Columns([(p, present) for p in parts], known_l4)
        if name == "tcp.len":
            return _Columns([(ix.payload_len, tcp)], known_l4)
        if name == "udp.length":  # payload_len is the length the UDP header declares, less its 8 bytes
            return _Columns([(ix.payload_len.astype(np.int64) + 8, udp)], known_l4)
        if name == "ip.proto":
            return _Columns(
                [(ix.l4, in_flow & self.stack_has("ip"))], simple & (in_flow | ~self.stack_has("ip"))
            )
        if name == "tcp.flags":
            return _Columns([(ix.tcp_flags, tcp)], known_l4)
        if name in TCP_FLAG_FIELDS:
            bit = TCP_FLAG_FIELDS[name]
            if bit > 0xFF:
                return None
            return _Columns([((ix.tcp_flags & bit) != 0, tcp)], known_l4)
        if name == "tcp.seq_raw":
            return _Columns([(ix.tcp_seq, tcp)], known_l4)
        if name == "tcp.seq":
            bases = self.tcp_bases()
            base = bases[ix.flow, ix.direction]
            rel = (ix.tcp_seq.astype(np.int64) - base) & 0xFFFFFFFF
            return _Columns([(rel, tcp)], known_l4)
        if name in ("ip.src", "ip.dst", "ip.addr", "ipv6.src", "ipv6.dst", "ipv6.addr"):
            proto, what = name.split(".")
            present = in_flow & self.stack_has(proto)
            # a packet with the IP layer but no flow (ICMP, a fragment) is read per packet
            known = simple & (in_flow | ~self.stack_has(proto))
            src_addr, dst_addr = self._addresses()
            sides = {"src": [src_addr], "dst": [dst_addr], "addr": [src_addr, dst_addr]}[what]
            return _Columns([], known, [(side, present) for side in sides])
        return None

    def byte_column(self, name: str, ranges: tuple[Range, ...]) -> _Columns | None:
        """Frame bytes as rows, gathered with numpy from the capture's buffer: `frame` sliced, and
        eth.src/dst/addr (sliced or whole) of Ethernet frames. None for other fields or for
        several ranges (the per-packet path reads those)."""
        fixed = {"eth.dst": [0], "eth.src": [6], "eth.addr": [6, 0], "frame": [0]}.get(name)
        if fixed is None or len(ranges) > 1 or (name == "frame" and not ranges):
            return None
        rec = self.ix.records
        caplen = rec.caplen.astype(np.int64)
        if name == "frame":
            size = caplen
            present = np.ones(self.n, np.bool_)
        else:
            size = np.full(self.n, 6, np.int64)
            present = self._starts_with_eth() & (caplen >= 14)
        start_of, length = self._range(ranges[0] if ranges else (0, 6, ":"), size)
        if start_of is None:
            return None
        inside = present & (start_of >= 0) & (start_of + length <= size)
        packets = np.flatnonzero(inside)
        buffer = np.frombuffer(self.ix.capture.buffer, np.uint8)
        steps = np.arange(length, dtype=np.int64)
        gathered = []
        parts = []
        for offset in fixed:
            first = rec.data_off[packets].astype(np.int64) + offset + start_of[packets]
            gathered.append((packets, buffer[first[:, None] + steps]))
            parts.append((inside, inside))
        return _Columns(parts, self._known_link(name), gathered=gathered)

    def _network_offset(self) -> npt.NDArray[np.int64]:
        """Where each frame's (only) IP header starts, -1 where the columns cannot say: from the
        link type and the VLAN tags the stack names; not for tunnels, nor for packets whose
        transport header came from IP reassembly (it is not in their frame)."""
        if self._net is None:
            rec = self.ix.records
            link = {lt.ETHERNET: 14, lt.LINUX_SLL: 16, lt.LINUX_SLL2: 20, lt.NULL: 4, lt.LOOP: 4}
            link |= {lt.RAW: 0, lt.RAW_OPENBSD: 0, lt.IPV4: 0, lt.IPV6: 0}
            by_iface = np.array([link.get(i.linktype, -1) for i in rec.interfaces] or [-1], np.int64)
            vlans = np.array([names.count("vlan") for names in self.ix.stacks] or [0], np.int64)
            offset = by_iface[rec.iface] + 4 * vlans[self.ix.stack]
            offset[~self._simple[self.ix.stack]] = -1
            if self.ix.reassembled:
                offset[np.fromiter(self.ix.reassembled, np.int64, len(self.ix.reassembled))] = -1
            self._net = offset
        return self._net

    def _gather(self, at: npt.NDArray[np.int64], width: int, where: Bools) -> npt.NDArray[np.int64]:
        """Big-endian unsigned integers of `width` bytes at frame offset `at`, where `where`."""
        rec = self.ix.records
        buffer = np.frombuffer(self.ix.capture.buffer, np.uint8)
        packets = np.flatnonzero(where)
        first = rec.data_off[packets].astype(np.int64) + at[packets]
        out = np.zeros(self.n, np.int64)
        value = np.zeros(len(packets), np.int64)
        for k in range(width):
            value = value << 8 | buffer[first + k]
        out[packets] = value
        return out

    def _header_column(self, name: str) -> _Columns | None:
        """IPv4, IPv6, TCP and UDP header fields read from the frames where `_network_offset`
        knows the IP header (the rest of the packets are left to the per-packet path)."""
        ix = self.ix
        caplen = ix.records.caplen.astype(np.int64)
        net = self._network_offset()
        known = (net >= 0) | ~(self.stack_has("ip") | self.stack_has("ipv6"))
        if name in _IPV4_HEADER:
            at, width, shift, mask = _IPV4_HEADER[name]
            present = (net >= 0) & self.stack_has("ip") & (caplen >= net + 20)
            value = (self._gather(net + at, width, present) >> shift) & mask
            if name == "ip.hdr_len":
                value = value * 4
            return _Columns(
                [(value.astype(np.bool_) if name.startswith("ip.flags") else value, present)], known
            )
        if name in _IPV6_HEADER:
            at, width = _IPV6_HEADER[name]
            present = (net >= 0) & self.stack_has("ipv6") & (caplen >= net + 40)
            return _Columns([(self._gather(net + at, width, present), present)], known)
        if name not in _TCP_HEADER and name not in ("udp.checksum", "tcp.ack"):
            return None
        ipv4 = (net >= 0) & self.stack_has("ip") & (caplen >= net + 20)
        ihl = (self._gather(net, 1, ipv4) & 0x0F) * 4
        # IPv6: only when the TCP or UDP header follows the fixed header (no extension headers)
        ipv6 = (net >= 0) & self.stack_has("ipv6") & (caplen >= net + 40)
        nxt = self._gather(net + 6, 1, ipv6)
        proto = 17 if name == "udp.checksum" else 6
        l4 = (ix.flow >= 0) & (ix.l4 == proto)
        start = np.where(ipv4, net + ihl, net + 40)
        where = l4 & (ipv4 | (ipv6 & (nxt == proto))) & (caplen >= start + (8 if proto == 17 else 20))
        known = known & (where | ~l4)
        if name == "udp.checksum":
            return _Columns([(self._gather(start + 6, 2, where), where)], known)
        if name == "tcp.ack":
            raw = self._gather(start + 8, 4, where)
            bases = self.tcp_bases()[ix.flow, 1 - ix.direction.astype(np.int64)]
            rel = np.where(bases < 0, (raw != 0).astype(np.int64), (raw - bases) & 0xFFFFFFFF)
            return _Columns([(np.where(raw == 0, 0, rel), where)], known)
        at, width, shift, mask = _TCP_HEADER[name]
        value = (self._gather(start + at, width, where) >> shift) & mask
        return _Columns([(value * 4 if name == "tcp.hdr_len" else value, where)], known)

    @staticmethod
    def _range(one: Range, size: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64] | None, int]:
        start, second, form = one
        begin = start or 0
        starts = size + begin if begin < 0 else np.full(len(size), begin, np.int64)
        if form == "-":
            assert second is not None
            if (begin < 0) != (second < 0):
                return None, 0
            return starts, second - begin + 1
        if second is None:
            return None, 0  # to the end: a length per packet
        return starts, second

    def _starts_with_eth(self) -> Bools:
        table = np.array([bool(names) and names[0] == "eth" for names in self.ix.stacks] or [False], np.bool_)
        return table[self.ix.stack] if self.n else np.zeros(0, np.bool_)

    def _known_link(self, name: str) -> Bools:
        """Ethernet fields are known from the frame when Ethernet is the link layer (a tunnel's
        inner Ethernet header is not gathered: those packets are read per packet)."""
        if name == "frame":
            return np.ones(self.n, np.bool_)
        eth_twice = np.array([names.count("eth") > 1 for names in self.ix.stacks] or [False], np.bool_)
        return ~eth_twice[self.ix.stack] if self.n else np.zeros(0, np.bool_)

    def _ports(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        ix = self.ix
        client = np.array([f.client.port for f in ix.flows] + [0], np.int64)
        server = np.array([f.server.port for f in ix.flows] + [0], np.int64)
        flow = ix.flow
        forward = ix.direction == 0
        return np.where(forward, client[flow], server[flow]), np.where(forward, server[flow], client[flow])

    def _addresses(
        self,
    ) -> tuple[tuple[npt.NDArray[np.int32], list[str]], tuple[npt.NDArray[np.int32], list[str]]]:
        ix = self.ix
        texts: dict[str, int] = {}
        client = np.array([texts.setdefault(f.client.ip, len(texts)) for f in ix.flows] + [0], np.int32)
        server = np.array([texts.setdefault(f.server.ip, len(texts)) for f in ix.flows] + [0], np.int32)
        names = list(texts) or [""]
        flow = ix.flow
        forward = ix.direction == 0
        src = np.where(forward, client[flow], server[flow]).astype(np.int32)
        dst = np.where(forward, server[flow], client[flow]).astype(np.int32)
        return (src, names), (dst, names)


_IPV4_HEADER = {
    "ip.version": (0, 1, 4, 0x0F),
    "ip.hdr_len": (0, 1, 0, 0x0F),
    "ip.dsfield": (1, 1, 0, 0xFF),
    "ip.len": (2, 2, 0, 0xFFFF),
    "ip.id": (4, 2, 0, 0xFFFF),
    "ip.flags.df": (6, 2, 14, 1),
    "ip.flags.mf": (6, 2, 13, 1),
    "ip.ttl": (8, 1, 0, 0xFF),
}
"""IPv4 header fields (RFC 791): (offset, bytes, shift, mask)."""
_IPV6_HEADER = {"ipv6.plen": (4, 2), "ipv6.nxt": (6, 1), "ipv6.hlim": (7, 1)}
"""IPv6 fixed header fields (RFC 8200): (offset, bytes)."""
_TCP_HEADER = {
    "tcp.ack_raw": (8, 4, 0, 0xFFFFFFFF),
    "tcp.hdr_len": (12, 1, 4, 0x0F),
    "tcp.window_size_value": (14, 2, 0, 0xFFFF),
}
"""TCP header fields (RFC 9293): (offset, bytes, shift, mask)."""

_CONTEXTS: weakref.WeakKeyDictionary[Session, _Context] = weakref.WeakKeyDictionary()


def _context(session: Session) -> _Context:
    ctx = _CONTEXTS.get(session)
    if ctx is None or ctx.n != len(session.index):
        ctx = _CONTEXTS[session] = _Context(session)
    return ctx


def stream_of_flow(session: Session, flow: int) -> int:
    """tshark's tcp.stream (or udp.stream) of our flow `flow`."""
    transport = session.flows[flow].transport
    return int(_context(session).stream_of_flow(transport)[flow])


def flow_of_stream(session: Session, transport: str, number: int) -> int | None:
    """Our flow id of tshark's `tcp.stream == number` (or udp.stream), if there is one."""
    flows = np.flatnonzero(_context(session).stream_of_flow(transport) == number)
    return int(flows[0]) if len(flows) else None


def tcp_bases(session: Session) -> npt.NDArray[np.int64]:
    """Each TCP flow's initial sequence number per direction ([flow, direction]): what tcp.seq and
    tcp.ack are relative to, here and in the Info column, so both agree."""
    return _context(session).tcp_bases()


# -- gRPC paths ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _GrpcPaths:
    """(flow, HTTP/2 stream) -> the gRPC call's :path, learnt from request headers in frame order,
    so that the call's later packets (messages, response headers, trailers) know it too."""

    paths: dict[tuple[int, int], str] = field(default_factory=dict)
    last: int = -1

    def see(self, flow: int, index: int, pdus: Sequence[Any]) -> list[str]:
        """Learn from one packet's PDUs and return the paths of its calls; called once per packet
        in frame order (a packet at or before the last one seen starts a new pass)."""
        if not pdus:
            return []
        from protoscope.decoders.grpc.path import GRPC_PATH, request_path
        from protoscope.decoders.http2.records import FrameRecord, MessageRecord

        if index <= self.last:  # a new pass from the start: what the last one learnt is stale
            self.paths.clear()
        self.last = index
        found: list[str] = []
        for pdu in pdus:
            rec = pdu.record
            if isinstance(rec, FrameRecord):
                stream = rec.block_stream or rec.stream_id
                if rec.headers:
                    path, _ = request_path(rec.headers)
                    grpc = any(
                        h.name == "content-type" and h.value.startswith("application/grpc")
                        for h in rec.headers
                    )
                    if path is not None and (grpc or GRPC_PATH.fullmatch(path)):
                        self.paths[(flow, stream)] = path
                known = self.paths.get((flow, stream))
            elif isinstance(rec, MessageRecord):
                known = self.paths.get((flow, rec.stream_id))
            else:
                continue
            if known is not None and known not in found:
                found.append(known)
        return found


# -- one packet's fields ---------------------------------------------------------------------------


class PacketFields(Mapping[str, Sequence[object]]):
    """One packet's fields by Wireshark name, each computed on first access: frame facts from
    the records, L2-L4 from the packet's dissection, decoder fields from its PDUs, virtual ones
    from the session's context. A filter that reads three fields costs three fields."""

    def __init__(
        self, ctx: _Context, index: int, pd: PacketDecode | None = None, grpc: Sequence[str] = ()
    ) -> None:
        self.ctx = ctx
        self.index = index
        self.pd = pd
        self._grpc = grpc
        """The gRPC paths of this packet's calls (`_GrpcPaths.see`, called in frame order)."""
        self._link: dict[str, list[object]] | None = None
        self._layers: list[Any] = []
        self._decoded: dict[str, list[object]] | None = None
        self._cache: dict[str, list[object]] = {}

    def __getitem__(self, name: str) -> Sequence[object]:
        got = self._cache.get(name)
        if got is None:
            got = self._cache[name] = self._compute(name)
        if not got:
            raise KeyError(name)
        return got

    def __iter__(self) -> Iterator[str]:
        names = [*self._link_fields(), *self._decoder_fields()]
        names += ["frame.number", "frame.len", "frame.cap_len", "frame.time_epoch", "frame.time_relative"]
        names += ["frame.time_delta", "frame.protocols", "frame"]
        return iter(dict.fromkeys(n for n in names if self.get(n)))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def _link_fields(self) -> dict[str, list[object]]:
        if self._link is None:
            out: dict[str, list[object]] = {}
            d = self.ctx.ix.dissect(self.index)
            for layer in d.layers:
                for key, value in layer.fields.items():
                    out.setdefault(key, []).append(value)
            self._link = out
            self._layers = d.layers
        return self._link

    def _decoder_fields(self) -> dict[str, list[object]]:
        if self._decoded is None:
            out: dict[str, list[object]] = {}
            if self.pd is not None:
                stack = [f for p in self.pd.pdus for f in reversed(p.fields)]
                stack.reverse()
                while stack:
                    f = stack.pop()
                    out.setdefault(f.name, []).append(f.value)
                    stack.extend(reversed(f.children))
            self._decoded = out
        return self._decoded

    def _frame(self) -> bytes:
        return bytes(self.ctx.ix.frame(self.index))

    def _compute(self, name: str) -> list[object]:
        ctx, i = self.ctx, self.index
        ix = ctx.ix
        rec = ix.records
        if name == "frame":
            return [self._frame()]
        if name == "frame.number":
            return [i + 1]
        if name == "frame.len":
            return [int(rec.wirelen[i])]
        if name == "frame.cap_len":
            return [int(rec.caplen[i])]
        if name == "frame.time_epoch":
            return [int(rec.ts_ns[i]) / 1e9]
        if name == "frame.time_relative":
            return [(int(rec.ts_ns[i]) - ctx.first_ns) / 1e9]
        if name == "frame.time_delta":
            return [(int(rec.ts_ns[i]) - int(rec.ts_ns[i - 1])) / 1e9 if i else 0.0]
        if name == "frame.protocols":
            return [":".join(self._protocols(tshark=True))]
        if name in ("tcp.stream", "udp.stream"):
            proto = name.split(".")[0]
            fid = int(ix.flow[i])
            if fid < 0 or int(ix.l4[i]) != (6 if proto == "tcp" else 17):
                return []
            return [int(ctx.stream_of_flow(proto)[fid])]
        link = self._link_fields()
        if name.startswith("tcp.") and "tcp.flags" in link:
            got = self._tcp(name, link)
            if got is not None:
                return got
        if name in link:
            return link[name]
        if name in ("grpc.path", "grpc.service", "grpc.method"):
            return self._grpc_field(name)
        if self._is_protocol(name):
            return self._protocol_bytes(name)
        return self._decoder_fields().get(name, [])

    def _tcp(self, name: str, link: dict[str, list[object]]) -> list[object] | None:
        ix, i = self.ctx.ix, self.index
        if name in TCP_FLAG_FIELDS:
            return [bool(_int_of(link["tcp.flags"][-1]) & TCP_FLAG_FIELDS[name])]
        if name == "tcp.len":
            return [int(ix.payload_len[i])]
        fid = int(ix.flow[i])
        if name in ("tcp.seq", "tcp.ack") and fid >= 0:
            bases = self.ctx.tcp_bases()
            d = int(ix.direction[i])
            raw = _int_of(link["tcp.seq_raw" if name == "tcp.seq" else "tcp.ack_raw"][-1])
            base = int(bases[fid, d if name == "tcp.seq" else 1 - d])
            if base < 0:  # the other side never sent a packet: tshark counts from this ack
                return [1 if raw else 0]
            return [(raw - base) & 0xFFFFFFFF if raw or name == "tcp.seq" else 0]
        return None

    def _protocols(self, tshark: bool = False) -> list[str]:
        from .session import packet_protocols

        pdus = self.pd.pdus if self.pd is not None else ()
        names = packet_protocols(self.ctx.ix, self.index, pdus)
        if not tshark:
            return names
        out: list[str] = []
        for nm in names:
            out.append(nm)
            if nm in ("eth", "vlan", "sll"):
                out.append("ethertype")
        return out

    def _is_protocol(self, name: str) -> bool:
        info = field_info(name, self.ctx.registry)
        return info is not None and info.type == "protocol"

    def _protocol_bytes(self, name: str) -> list[object]:
        """A protocol's bytes in this packet (what `udp contains 01:02` and `udp[0:2]` read); True
        for a protocol present whose bytes do not map to the frame (inflated, reassembled)."""
        self._link_fields()
        frame = None
        out: list[object] = []
        for layer in self._layers:
            if layer.name == name:
                frame = frame if frame is not None else self._frame()
                out.append(
                    frame[layer.start : layer.end] if layer.end > layer.start else frame[layer.start :]
                )
        if out or self.pd is None:
            if not out and name in self._protocols():
                out.append(True)
            return out
        if not any(pdu.protocol == name for pdu in self.pd.pdus):
            # a protocol shown inside another's tree (protobuf in a gRPC message)
            return [True] if name in self._decoder_fields() else []
        ix, i = self.ctx.ix, self.index
        for k, pdu in enumerate(self.pd.pdus):
            if pdu.protocol != name:
                continue
            span = self.pd.frame_span(k, pdu.span, int(ix.payload_off[i]), int(ix.payload_len[i]))
            if span is None:
                out.append(True)
            else:
                frame = frame if frame is not None else self._frame()
                out.append(frame[span[0] : span[1]])
        return out

    def _grpc_field(self, name: str) -> list[object]:
        out: list[object] = []
        for path in self._grpc:
            _, service, method = [*path.split("/", 2), "", ""][:3]
            out.append({"grpc.path": path, "grpc.service": service, "grpc.method": method}[name])
        return out


def _int_of(value: object) -> int:
    n = _number(value)
    return int(n) if n is not None else 0


def packet_fields(session: object, pd: object) -> PacketFields:
    """Every field of one decoded packet by Wireshark name, computed lazily on first access."""
    from .session import PacketDecode, Session

    assert isinstance(session, Session) and isinstance(pd, PacketDecode)
    ctx = _context(session)
    return PacketFields(ctx, pd.index, pd, ctx.grpc.see(int(ctx.ix.flow[pd.index]), pd.index, pd.pdus))


# -- a whole capture -------------------------------------------------------------------------------


def filter_rows(
    session: Session, text: str | DisplayFilter, cancelled: Callable[[], bool] | None = None
) -> list[int] | None:
    """Packets (0-based, ascending) the filter matches; None when cancelled. Raises FilterError.

    Columns first (frame, L2-L4, streams: numpy over the index), then packet by packet only
    where they leave the answer open; the decoding pass runs only when a decoder's field is named.
    """
    flt = text if isinstance(text, DisplayFilter) else compile_filter(text, session.registry)
    ctx = _context(session)
    n = ctx.n
    if n == 0:
        return []
    value, known = _three(flt.root, ctx)
    matched = value & known
    open_rows = ~known
    if open_rows.any():
        if flt.needs_decode:
            paths = _GrpcPaths()
            flow = ctx.ix.flow
            for pd in session.decode():
                i = pd.index
                if cancelled is not None and i % CANCEL_EVERY == 0 and cancelled():
                    return None
                grpc = paths.see(int(flow[i]), i, pd.pdus)
                if open_rows[i] and flt.root.test(PacketFields(ctx, i, pd, grpc)):
                    matched[i] = True
        else:
            for k, i in enumerate(np.flatnonzero(open_rows).tolist()):
                if cancelled is not None and k % CANCEL_EVERY == 0 and cancelled():
                    return None
                if flt.root.test(PacketFields(ctx, i)):
                    matched[i] = True
    elif cancelled is not None and cancelled():
        return None
    return np.flatnonzero(matched).tolist()


def packet_matcher(session: Session, text: str | DisplayFilter) -> Callable[[PacketDecode], bool]:
    """Whether each packet of a decoding pass that runs anyway (a report, an export, colouring)
    matches: the columns answer where they know (no per-packet work at all), the packet's fields
    elsewhere. Call it on the pass's packets in frame order (gRPC paths are learnt as it goes).
    Raises FilterError."""
    flt = text if isinstance(text, DisplayFilter) else compile_filter(text, session.registry)
    ctx = _context(session)
    value, known = _three(flt.root, ctx)
    paths = _GrpcPaths()
    flow = ctx.ix.flow

    def matches(pd: PacketDecode) -> bool:
        i = pd.index
        grpc = paths.see(int(flow[i]), i, pd.pdus)
        if known[i]:
            return bool(value[i])
        return flt.root.test(PacketFields(ctx, i, pd, grpc))

    return matches
