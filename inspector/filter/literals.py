"""Literals, the right-hand side of a test, read for the type of the field on the left, and one
field value set against one literal's value: equal, ordered, as bytes."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protoscope.decoders.api import FieldInfo

from .syntax import FilterError

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


Compare = Callable[[object], bool]
"""Whether one value of a field passes a test."""
