"""The display filter language's tokens, the error every stage raises (`FilterError`, with a
position), and slices (`[i:n]`, `[i-j]`, `[i]`) as Wireshark reads and applies them."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_FILTER = 4096
"""Characters a filter may have."""


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
