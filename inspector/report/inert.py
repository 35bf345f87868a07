"""Text from a capture made inert before it reaches a terminal: one escaping for every report and
every screen of the viewer (and the capture's file name in its header).

A capture's strings are the sender's: an ESC starts a terminal command (a window title, a cleared
screen, colours), a newline forges a line of output, and a bidi control (U+202E, right-to-left
override) shows text in an order other than its bytes'. These characters become visible escapes,
as Wireshark's `format_text` shows control characters: `\\n`, `\\x1b`, `\\u202e`.
"""

from __future__ import annotations

import re
from typing import Final

UNSAFE: Final = re.compile(
    "["
    "\x00-\x1f\x7f-\x9f"  # C0 and C1 controls, DEL
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"  # format characters (Cf) ...
    "\u200b-\u200f"  # zero-width characters, left-to-right and right-to-left marks
    "\u2028-\u202e"  # line and paragraph separators; bidi embeddings and overrides (U+202A-U+202E)
    "\u2060-\u2064\u2066-\u206f"  # word joiner, invisible operators; bidi isolates (U+2066-U+2069)
    "\ud800-\udfff"  # lone surrogates (from undecodable bytes): they cannot even be encoded
    "\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"  # tags
    "]"
)
"""Characters a terminal would act on rather than show: Unicode's control (Cc), format (Cf),
surrogate (Cs) and line and paragraph separator (Zl, Zp) characters, as of Unicode 15.
tests/inspector/report/test_inert.py checks this against the running Python's unicodedata."""

SHORT: Final = {"\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f", "\r": "\\r"}
"""Escapes as C writes them (and Wireshark shows them); the other characters by their number."""


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    short = SHORT.get(ch)
    if short is not None:
        return short
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def clean(value: object) -> str:
    """`value` as one line of inert text: controls, format characters (bidi overrides, zero-width
    characters) and separators become visible escapes (`\\n`, `\\x1b`, `\\u202e`)."""
    text = str(value)
    # Every character UNSAFE names is one Python calls unprintable: most text is checked in one pass.
    return text if text.isprintable() else UNSAFE.sub(_escape, text)


JSON_UNSAFE: Final = re.compile(
    "[\x7f-\x9f"
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u2028-\u202e"
    "\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
    "]"
)
"""What `json.dumps(..., ensure_ascii=False)` leaves raw that UNSAFE escapes (it escapes C0
itself). A lone surrogate left raw could not even be written as UTF-8."""


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # JSON writes a character past the BMP as a UTF-16 surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def json_inert(text: str) -> str:
    """JSON text with the characters UNSAFE names written as `\\uXXXX` escapes: the same JSON
    value, inert on a terminal. ASCII text without DEL, nearly all of it, is returned at once."""
    if text.isascii() and "\x7f" not in text:
        return text
    return JSON_UNSAFE.sub(_json_escape, text)
