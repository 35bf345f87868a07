"""Text from captures, made safe to show: no Rich markup, no terminal control characters."""

from __future__ import annotations

import re

from rich.text import Text

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(value: object) -> str:
    """`value` as one line: control characters (ESC included) become visible \\xNN escapes."""
    return (
        CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value)).replace("\n", "\\n").replace("\t", " ")
    )


def literal(value: object, style: str = "") -> Text:
    """A Text that shows `value` exactly: Text(...) never parses markup like "[red]"."""
    return Text(clean(value), style=style, no_wrap=True, overflow="ellipsis")
