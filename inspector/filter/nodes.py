"""The syntax tree of a parsed filter: each node tests one packet's fields, and answers over all
packets at once in three-valued logic (value, known) wherever the index columns can."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from protoscope.decoders.api import FieldInfo

from ..fields import ALIASES, LINK_FIELDS, TCP_FLAG_ALIASES
from .columns import Bools, _Context
from .literals import Compare, _as_bytes
from .syntax import Range, _slice

Fields = Mapping[str, Sequence[object]]


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
