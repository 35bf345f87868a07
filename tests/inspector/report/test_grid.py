"""The hand-drawn table is the text rich draws for the same table (rich is the oracle)."""

from __future__ import annotations

import io

import pytest
from rich.box import HEAVY_HEAD
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from protoscope.inspector.report.grid import grid_lines

HEADERS = ["id", "pair", "phases", "bytes"]
ROWS = [
    ["0", "127.0.0.1:5000 ↔ 127.0.0.1:6000", "signaling 0.003856 #23\nice 0.007089 #36", "116979"],
    ["12", "[2001:db8::1]:443 ↔ [2001:db8::2]:50051", "", "0"],
    ["3", "名前 ↔ ü", "media 1.5 #132", ""],
]
RIGHT = [True, False, False, True]


def rich_text(rows: list[list[str]], rules: bool) -> str:
    table = Table(box=HEAVY_HEAD, show_lines=rules)
    for header, right in zip(HEADERS, RIGHT, strict=True):
        table.add_column(header, justify="right" if right else "left", overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    out = io.StringIO()
    Console(file=out, width=1000, highlight=False).print(table)
    return out.getvalue()


@pytest.mark.parametrize("rules", [False, True], ids=["plain", "rules"])
@pytest.mark.parametrize("rows", [ROWS, ROWS[1:2], []], ids=["rows", "one", "none"])
def test_same_text_as_rich(rows: list[list[str]], rules: bool) -> None:
    widths = [
        max(cell_len(line) for text in (h, *(r[i] for r in rows)) for line in text.split("\n"))
        for i, h in enumerate(HEADERS)
    ]
    mine = "".join(line + "\n" for line in grid_lines(HEAVY_HEAD, HEADERS, rows, widths, RIGHT, rules))
    assert mine == rich_text(rows, rules)


def test_styles_wrap_the_text_not_the_padding() -> None:
    lines = list(
        grid_lines(HEAVY_HEAD, ["severity"], [["error"]], [8], [False], False, lambda i, t: f"<{i}>{t}</>")
    )
    assert lines[1] == "┃ <-1>severity</> ┃" and lines[3] == "│ <0>error</>    │"
