"""Text from captures, made safe to show: no Rich markup, no terminal control characters."""

from __future__ import annotations

from rich.text import Text

from ..report.inert import clean

__all__ = ["clean", "literal"]


def literal(value: object, style: str = "") -> Text:
    """A Text that shows `value` exactly: Text(...) never parses markup like "[red]", and `clean`
    escapes what a terminal would act on (ESC, newlines, bidi overrides such as U+202E)."""
    return Text(clean(value), style=style, no_wrap=True, overflow="ellipsis")
