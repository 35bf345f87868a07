"""What each comparison operator tests: the check of one value, and where it can be made, the same
check over a numeric column or over rows of frame bytes."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from .columns import Bools
from .literals import Compare, Literal, _as_bytes, _equal, _hex_bytes, _number, _order
from .nodes import Node, _Operand, _Test
from .syntax import NUMERIC, FilterError


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
