"""Display filters in Wireshark's syntax, parsed by a real parser (no eval) and applied to packets.

    grpc.status != 0            stun.type == 0x0101          ip.addr == 10.0.0.1 && udp
    rtp.ssrc == 0x1234          http2.header contains "grpc"  sdp.media matches "^audio"
    udp.port in {3478 5349}     !(tcp) and frame.len > 100

A bare name tests presence (a protocol or a field). A field with several values matches `==` when
any value does; `!=` when none does (Wireshark's "all not equal"). ip.addr, ipv6.addr, tcp.port
and udp.port stand for the source or the destination. A comparison with an absent field is false.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

TOKEN = re.compile(
    r"\s*(?:(?P<op>==|!=|>=|<=|&&|\|\||[><!(){}])|(?P<str>\"(?:[^\"\\]|\\.)*\")|(?P<word>[^\s=!<>&|(){}\"]+))"
)
WORD_OPS = {
    "eq": "==",
    "ne": "!=",
    "gt": ">",
    "lt": "<",
    "ge": ">=",
    "le": "<=",
    "and": "&&",
    "or": "||",
    "not": "!",
}
COMPARE = ("==", "!=", ">", "<", ">=", "<=", "contains", "matches", "in")
ALIASES = {
    "ip.addr": ("ip.src", "ip.dst"),
    "ipv6.addr": ("ipv6.src", "ipv6.dst"),
    "tcp.port": ("tcp.srcport", "tcp.dstport"),
    "udp.port": ("udp.srcport", "udp.dstport"),
    "eth.addr": ("eth.src", "eth.dst"),
}
MAX_FILTER = 4096


class FilterError(ValueError):
    """A filter that does not parse: the message says where."""


Fields = Mapping[str, list[object]]
Predicate = Callable[[Fields], bool]


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "op", "str", "word"
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_FILTER:
        raise FilterError(f"filter longer than {MAX_FILTER} characters")
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise FilterError(f"unexpected {text[pos:].strip()[:10]!r} at {pos}")
        kind = m.lastgroup or "word"
        value = m.group(kind)
        if kind == "word" and value.lower() in WORD_OPS:
            kind, value = "op", WORD_OPS[value.lower()]
        out.append(Token(kind, value, m.start(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise FilterError("the filter ends too soon")
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        tok = self.take()
        if tok.text != text:
            raise FilterError(f"expected {text!r} at {tok.pos}, found {tok.text!r}")

    def parse(self) -> Predicate:
        pred = self.or_expr()
        if self.peek() is not None:
            tok = self.take()
            raise FilterError(f"unexpected {tok.text!r} at {tok.pos}")
        return pred

    def or_expr(self) -> Predicate:
        left = self.and_expr()
        while (tok := self.peek()) is not None and tok.kind == "op" and tok.text == "||":
            self.take()
            right = self.and_expr()
            left = (lambda a, b: lambda f: a(f) or b(f))(left, right)
        return left

    def and_expr(self) -> Predicate:
        left = self.not_expr()
        while (tok := self.peek()) is not None and tok.kind == "op" and tok.text == "&&":
            self.take()
            right = self.not_expr()
            left = (lambda a, b: lambda f: a(f) and b(f))(left, right)
        return left

    def not_expr(self) -> Predicate:
        tok = self.peek()
        if tok is not None and tok.kind == "op" and tok.text == "!":
            self.take()
            inner = self.not_expr()
            return lambda f: not inner(f)
        return self.primary()

    def primary(self) -> Predicate:
        tok = self.take()
        if tok.kind == "op" and tok.text == "(":
            inner = self.or_expr()
            self.expect(")")
            return inner
        if tok.kind != "word" or not re.fullmatch(r"[A-Za-z_][\w.\-]*", tok.text):
            raise FilterError(f"expected a field name at {tok.pos}, found {tok.text!r}")
        name = tok.text
        nxt = self.peek()
        if nxt is None or nxt.text not in COMPARE:
            return lambda f: _values(f, name) != []
        op = self.take().text
        if op == "in":
            self.expect("{")
            items = []
            while (t := self.peek()) is not None and t.text != "}":
                items.append(self.value())
            self.expect("}")
            return lambda f: any(_equal(v, item) for v in _values(f, name) for item in items)
        literal = self.value()
        if op == "matches":
            try:
                pattern = re.compile(str(literal), re.IGNORECASE)
            except re.error as exc:
                raise FilterError(f"bad regular expression {literal!r}: {exc}") from None
            return lambda f: any(pattern.search(str(v)) for v in _values(f, name))
        if op == "contains":
            return lambda f: any(str(literal) in str(v) for v in _values(f, name))
        if op == "==":
            return lambda f: any(_equal(v, literal) for v in _values(f, name))
        if op == "!=":  # the field is there, and none of its values equals the literal
            return lambda f: bool(vs := _values(f, name)) and not any(_equal(v, literal) for v in vs)
        compare: Callable[[float, float], bool] = {
            ">": lambda a, b: a > b,
            "<": lambda a, b: a < b,
            ">=": lambda a, b: a >= b,
            "<=": lambda a, b: a <= b,
        }[op]
        number = _number(literal)
        if number is None:
            raise FilterError(f"{op} needs a number, not {literal!r}")
        return lambda f: any((n := _number(v)) is not None and compare(n, number) for v in _values(f, name))

    def value(self) -> str:
        tok = self.take()
        if tok.kind == "str":
            return bytes(tok.text[1:-1], "utf-8").decode("unicode_escape")
        if tok.kind == "word":
            return tok.text
        raise FilterError(f"expected a value at {tok.pos}, found {tok.text!r}")


def _values(fields: Fields, name: str) -> list[object]:
    if name in ALIASES:
        return [v for alias in ALIASES[name] for v in fields.get(alias, [])]
    return list(fields.get(name, []))


def _number(value: object) -> int | float | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    text = str(value)
    try:
        return int(text, 0)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None


def _equal(value: object, literal: str) -> bool:
    a, b = _number(value), _number(literal)
    if a is not None and b is not None:
        return a == b
    try:
        return ipaddress.ip_address(str(value)) == ipaddress.ip_address(literal)
    except ValueError:
        pass
    if isinstance(value, bool):
        return str(value).lower() == literal.lower() or (literal in ("1", "0") and int(value) == int(literal))
    return str(value) == literal


def compile_filter(text: str) -> Predicate:
    """Parse `text`; raise FilterError with a position when it is not a valid filter."""
    tokens = tokenize(text)
    if not tokens:
        raise FilterError("empty filter")
    return _Parser(tokens).parse()


def packet_fields(session: object, pd: object) -> dict[str, list[object]]:
    """Every field of one decoded packet by Wireshark name: frame, L2-L4 layers, decoders' trees,
    and each protocol's name (for presence tests)."""
    from .session import PacketDecode, Session, packet_protocols

    assert isinstance(session, Session) and isinstance(pd, PacketDecode)
    ix = session.index
    i = pd.index
    rec = ix.records
    out: dict[str, list[object]] = {
        "frame.number": [i + 1],
        "frame.len": [int(rec.wirelen[i])],
        "frame.cap_len": [int(rec.caplen[i])],
        "frame.time_epoch": [int(rec.ts_ns[i]) / 1e9],
    }
    for name in packet_protocols(ix, i, pd.pdus):
        out.setdefault(name, []).append(True)
    for layer in ix.dissect(i).layers:
        out.setdefault(layer.name, []).append(True)
        for key, value in layer.fields.items():
            out.setdefault(key, []).append(value)
    stack = [f for p in pd.pdus for f in p.fields]
    for p in pd.pdus:
        out.setdefault(p.protocol, []).append(True)
    while stack:
        f = stack.pop()
        out.setdefault(f.name, []).append(f.value)
        stack.extend(f.children)
    return out
