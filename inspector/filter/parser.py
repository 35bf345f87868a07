"""The parser: tokens to a syntax tree, every field name checked against the registry, and
`compile_filter`, which gives the `DisplayFilter` the rest of protoscope calls."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from protoscope.decoders.api import FieldInfo

from ..fields import closest, field_info
from .checks import _contains_check, _pair_check, _relation_test
from .columns import Bools
from .literals import Literal, _as_bytes, _equal, _literal_value, _number, _order, _unescape
from .nodes import Fields, Node, _And, _FieldPair, _Not, _Operand, _Or, _Presence, _Test
from .syntax import BYTE_LIKE, NUMERIC, RELATIONS, FilterError, Range, Token, _parse_slice, tokenize

if TYPE_CHECKING:
    from protoscope.decoders.registry import Registry

MAX_DEPTH = 64
"""How deeply parentheses and `!` may nest (Python's recursion stays far away)."""


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
