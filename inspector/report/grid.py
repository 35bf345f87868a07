"""Drawing a table whose columns fit unfolded, line by line, as rich draws it.

rich's Table costs ~130 µs a cell (2,000 flows of 16 columns: 4 s), so a table that needs no
folding (always when piped) is drawn here from rich's own box characters at ~2 µs a cell; rich
still draws what must fold to fit a terminal. tests/inspector/report/test_grid.py checks that both
draw the same text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from rich.box import Box
from rich.cells import cell_len


def grid_lines(
    box: Box,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    widths: Sequence[int],
    right: Sequence[bool],
    rules: bool,
    style: Callable[[int, str], str] = lambda _column, text: text,
) -> Iterator[str]:
    """The table's lines (without line ends): `widths` are the columns' text widths, at least each
    cell's; `right` aligns numbers; `rules` draws a line between rows; `style(column, text)` may
    wrap a cell's text in terminal styles (column -1: a header)."""
    padded = [w + 2 for w in widths]
    yield box.get_top(padded)
    yield from _row(
        box.head_left, box.head_vertical, box.head_right, headers, widths, right, style, header=True
    )
    yield box.get_row(padded, "head")
    for n, row in enumerate(rows):
        if rules and n:
            yield box.get_row(padded, "row")
        yield from _row(box.mid_left, box.mid_vertical, box.mid_right, row, widths, right, style)
    yield box.get_bottom(padded)


def _row(
    left: str,
    vertical: str,
    end: str,
    cells: Sequence[str],
    widths: Sequence[int],
    right: Sequence[bool],
    style: Callable[[int, str], str],
    header: bool = False,
) -> Iterator[str]:
    split = [cell.split("\n") for cell in cells]
    for k in range(max(len(lines) for lines in split)):
        parts = []
        for i, lines in enumerate(split):
            text = lines[k] if k < len(lines) else ""
            gap = " " * (widths[i] - cell_len(text))
            shown = style(-1 if header else i, text) if text else text
            parts.append(f" {gap}{shown} " if right[i] else f" {shown}{gap} ")
        yield left + vertical.join(parts) + end
