"""Text made inert for a terminal: every control, format and separator character escaped."""

from __future__ import annotations

import json
import sys
import unicodedata

import pytest

from protoscope.inspector.report.inert import UNSAFE, clean, json_inert

ESCAPED = ("Cc", "Cf", "Cs", "Zl", "Zp")
"""Unicode categories a terminal acts on or cannot show."""


def test_every_control_format_and_separator_character_is_escaped() -> None:
    """Checked against the running Python's Unicode database: none is left out (a newer Unicode
    may add format characters: UNSAFE must grow with it)."""
    missed = [
        f"U+{c:04X}"
        for c in range(sys.maxunicode + 1)
        if unicodedata.category(chr(c)) in ESCAPED and clean(chr(c)) == chr(c)
    ]
    assert missed == []


def test_printable_text_is_kept() -> None:
    text = "Grüße /svc.Method [red]x[/red] 日本語 \\x1b عربى 🙂 \u00a0"
    assert clean(text) == text


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a\nb\tc\rd", "a\\nb\\tc\\rd"),
        ("\x1b]0;title\x07", "\\x1b]0;title\\a"),
        ("\x00\x7f\x85\x9b", "\\x00\\x7f\\x85\\x9b"),
        ("\u202eevil\u202c", "\\u202eevil\\u202c"),
        ("\u2066\u2067\u2068\u2069", "\\u2066\\u2067\\u2068\\u2069"),
        ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
        ("\u2028\u2029", "\\u2028\\u2029"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("\udcff", "\\udcff"),
        (12, "12"),
    ],
)
def test_escapes(raw: object, shown: str) -> None:
    assert clean(raw) == shown


def test_json_keeps_the_value_and_is_inert() -> None:
    value = {"user": "a\u202eb\x7f\x85\u2066\U000e0041\udcff", "plain": "ascii"}
    text = json_inert(json.dumps(value, ensure_ascii=False))
    assert not UNSAFE.search(text.replace("\n", ""))
    assert json.loads(text) == value
    plain = json.dumps({"a": 1})
    assert json_inert(plain) is plain
