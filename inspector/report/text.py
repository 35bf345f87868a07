"""The text format of reports: rich tables sized to the terminal, or whole when piped.

On a terminal (`width` given) a table that is wider than the terminal is drawn in several blocks
of columns, each repeating the first column, in the order `tables.LAYOUTS` gives; long cells fold
onto more lines. Piped (`width` None) every table is drawn as wide as its widest cell. Either
way no cell is cut. Only this module and `grid.py` import rich, so JSON reports never load it.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from rich.box import HEAVY_HEAD
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from protoscope.captures.linktypes import LINK_NAMES

from ..follow import FOLLOW_MAX_BYTES, Followed
from ..icmp_errors import shown_protocol
from ..session import Session
from .cells import Cells
from .grid import grid_lines
from .inert import clean
from .rows import protocol_column
from .sessionblock import KEY_VALUE, Lines, Part, finding_line, is_session, maps, nat_tables, session_block
from .tables import TextTable, text_tables

FOLD_AT: Final = 24
"""A long column is planned at a third of the terminal (at least this) when columns are shared
out into blocks; rich folds its cells to the width left, so long text wraps in place instead of
pushing the columns after it into more blocks."""

STYLES: Final[dict[str, dict[str, str]]] = {
    "severity": {"error": "bold red", "warn": "yellow", "note": "cyan"},
}
"""Cell styles by column and value (terminals only; piped text has none)."""


def capture_start(session: Session) -> float:
    """Epoch seconds of frame 1, the origin of relative times (tshark's `-t r`)."""
    ts = session.index.records.ts_ns
    return int(ts[0]) / 1e9 if len(ts) else 0.0


def terminal_width(out: TextIO) -> int | None:
    """The terminal's width when `out` is one (or holds text for one: its `terminal_width`), else
    None (nothing is folded or split)."""
    held = getattr(out, "terminal_width", None)
    if isinstance(held, int):
        return held
    return Console(file=out).width if out.isatty() else None


def write_tables(
    report: str,
    rows: Iterable[dict[str, Any]],
    start: float,
    out: TextIO,
    width: int | None,
    why: Callable[[], str] | None = None,
) -> None:
    """Every table of a report's rows; a report without rows says so in one line, and why when
    `why` knows ("no gRPC calls: no HTTP/2 connection in this capture")."""
    cells = Cells(start)
    sessions: list[dict[str, Any]] = []
    nats: list[dict[str, Any]] = []
    if report == "sessions":  # a WebRTC session is a block of its own; TURN allocations a table
        rows = list(rows)
        sessions = [row for row in rows if is_session(row)]
        # the NAT verdicts of sockets in no session read as a session's NAT tables do
        nats = [row for row in rows if row.get("kind") == "nat"]
        rows = [row for row in rows if not is_session(row) and row.get("kind") != "nat"]
    tables = text_tables(report, rows, cells)
    if not tables and not sessions and not nats:
        out.write((clean(why()) if why is not None else f"{report.capitalize()}: none") + "\n")
        return
    console = _console(out, width)
    for row in sessions:
        write_parts(console, session_block(row, cells), width)
    if nats:
        console.file.write(f"NAT behaviour of sockets in no session ({len(nats)})\n")
        write_parts(console, [*nat_tables({"nat": nats}), *nat_findings(nats)], width)
    for table in tables:
        widths = _widths(table)
        for title, columns in _blocks(table, widths, width):
            _print(console, width, title, table, columns, widths)


def print_table(table: TextTable, out: TextIO, width: int | None) -> None:
    """One table drawn as the reports draw theirs (`protoscope query`'s result): on a terminal
    `width` wide, in blocks of columns that fit, each repeating the first, long cells folded;
    piped (`width` None), whole."""
    console = _console(out, width)
    widths = _widths(table)
    for title, columns in _blocks(table, widths, width):
        _print(console, width, title, table, columns, widths)


def nat_findings(rows: list[dict[str, Any]]) -> list[Lines]:
    """The findings of `kind: nat` rows (a symmetric NAT, a limit hit), one a line with its frame."""
    lines = [finding_line(f) for row in rows for f in maps(row.get("findings"))]
    return [Lines([f"Findings ({len(lines)})", *lines])] if lines else []


def write_parts(console: Console, parts: Iterable[Part], width: int | None) -> None:
    """A session's block: its summary lines wrapped to `width` (continuation lines indented under
    their own), then its tables, every column in one block (a narrow terminal folds cells: each
    table has few columns, and a pair split over column blocks would read as two)."""
    for part in parts:
        if isinstance(part, Lines):
            console.file.write("".join(f"{line}\n" for text in part.lines for line in wrap(text, width)))
            continue
        widths = _widths(part)
        header = part.headers != KEY_VALUE
        _print(console, width, part.title, part, list(range(len(part.headers))), widths, header=header)
    console.file.write("\n")


def session_text(row: Mapping[str, Any], start: float, width: int) -> str:
    """A session's block as the text report draws it at `width` (the viewer's NAT/ICE panel)."""
    out = io.StringIO()
    console = _console(out, width)
    if row.get("kind") == "nat":  # the verdict on a socket in no session: its NAT table alone
        write_parts(console, [*nat_tables({"nat": [row]}), *nat_findings([dict(row)])], width)
    else:
        write_parts(console, session_block(row, Cells(start)), width)
    return out.getvalue().rstrip("\n")


def wrap(text: str, width: int | None) -> list[str]:
    """`text` in lines of at most `width` cells, broken at spaces (a word longer than a line is
    folded), each continuation indented two more than the line's own indent; whole when piped."""
    if width is None or cell_len(text) <= width:
        return [text]
    indent = " " * (len(text) - len(text.lstrip(" ")) + 2)
    lines = textwrap.wrap(
        text,
        width=max(width, len(indent) + 8),
        subsequent_indent=indent,
        break_on_hyphens=False,
        drop_whitespace=True,
    )
    return lines or [text]


def _print(
    console: Console,
    width: int | None,
    title: str,
    table: TextTable,
    columns: list[int],
    widths: list[int],
    header: bool = True,
) -> None:
    natural = 1 + sum(widths[i] + 3 for i in columns)  # each column, its padding and its rule
    console.width = width or max(natural, cell_len(title))
    # A row of more than one line needs rules between rows, or its second line reads as the next.
    multiline = any("\n" in row[i] for row in table.cells for i in columns)
    paint = _painter(console, table.keys)
    if header and natural <= console.width and not console.options.ascii_only:
        lines = grid_lines(
            HEAVY_HEAD,
            [table.headers[i] for i in columns],
            [[row[i] for i in columns] for row in table.cells],
            [widths[i] for i in columns],
            [table.numeric[i] for i in columns],
            multiline,
            lambda k, text: paint(columns[k] if k >= 0 else -1, text),
        )
        console.file.write("".join(f"{line}\n" for line in (paint(-1, title), *lines)))
        return
    drawn = _rich_table(table, columns, header, console.width)
    # Whether rich folds a row onto more lines to fit the terminal is known by drawing it.
    drawn.show_lines = multiline or (
        natural > console.width
        and len(console.render_lines(drawn, pad=False)) > len(table.cells) + (4 if header else 2)
    )
    # The title is a line of its own: as a rich table title it would wrap to the table's width.
    console.print(Text(title, style="bold"))
    console.print(drawn)


def _painter(console: Console, keys: list[str]) -> Callable[[int, str], str]:
    """Terminal styles for a hand-drawn table: `paint(column, text)`, column -1 for headers and
    titles (bold), else STYLES by the column's key. Piped text has none."""
    if console.color_system is None:
        return lambda _column, text: text
    done: dict[tuple[str, str], str] = {}

    def paint(column: int, text: str) -> str:
        style = "bold" if column < 0 else STYLES.get(keys[column], {}).get(text)
        if not style:
            return text
        if (style, text) not in done:
            with console.capture() as capture:
                console.print(Text(text, style=style), end="", soft_wrap=True)
            done[(style, text)] = capture.get()
        return done[(style, text)]

    return paint


def _console(out: TextIO, width: int | None) -> Console:
    # Piped: no colour, and the width is set per table (its natural width) so nothing wraps.
    return Console(file=out, width=width, highlight=False, soft_wrap=False, emoji=False, markup=False)


def _widths(table: TextTable) -> list[int]:
    """Each column's natural width: its longest line, header included."""
    return [
        max(
            cell_len(line)
            for text in (table.headers[i], *(r[i] for r in table.cells))
            for line in text.split("\n")
        )
        for i in range(len(table.headers))
    ]


def _blocks(table: TextTable, widths: list[int], width: int | None) -> Iterator[tuple[str, list[int]]]:
    """The column blocks to draw: all columns when piped or when they fit, else blocks that each
    repeat the first column and take the next columns that fit."""
    n = len(table.headers)
    if width is None or n < 2:
        yield table.title, list(range(n))
        return
    fold_at = max(FOLD_AT, width // 3)
    planned = [min(w, max(fold_at, cell_len(h))) for w, h in zip(widths, table.headers, strict=True)]
    blocks: list[list[int]] = []
    block = [0]
    used = 1 + planned[0] + 3
    for i in range(1, n):
        if len(block) > 1 and used + planned[i] + 3 > width:
            blocks.append(block)
            block = [0]
            used = 1 + planned[0] + 3
        block.append(i)
        used += planned[i] + 3
    blocks.append(block)
    if len(blocks) == 1:
        yield table.title, blocks[0]
        return
    for k, cols in enumerate(blocks, 1):
        yield f"{table.title}, columns {k}/{len(blocks)}", cols


MAX_WHOLE_WORD = 24
"""A word up to this wide (an IPv4 endpoint, a frame number, a state) is never folded inside when a
narrow terminal folds a table's cells; a longer one (an IPv6 endpoint, a hash) may be."""


def _column_widths(table: TextTable, columns: list[int], width: int | None) -> dict[int, int] | None:
    """Each column's width when the table must fold to `width` and every column's longest word
    (at most MAX_WHOLE_WORD) can stay whole; None to let rich choose."""
    if width is None:
        return None
    room = width - 3 * len(columns) - 1
    natural = {
        i: max(
            [cell_len(table.headers[i]), *(cell_len(line) for r in table.cells for line in r[i].split("\n"))]
        )
        for i in columns
    }
    if sum(natural.values()) <= room:
        return None  # it fits as it is
    words = {
        i: min(
            natural[i],
            max(
                [min(MAX_WHOLE_WORD, cell_len(w)) for r in table.cells for w in r[i].split()]
                + [min(MAX_WHOLE_WORD, cell_len(w)) for w in table.headers[i].split()]
                + [1]
            ),
        )
        for i in columns
    }
    left = room - sum(words.values())
    if left < 0:
        return None
    widths = dict(words)
    while left > 0:
        wanting = [i for i in columns if widths[i] < natural[i]]
        if not wanting:
            break
        for i in wanting:
            if left == 0:
                break
            widths[i] += 1
            left -= 1
    return widths


def _rich_table(table: TextTable, columns: list[int], header: bool, width: int | None) -> Table:
    out = Table(box=HEAVY_HEAD, show_header=header)
    # A cell folds between words; its longest word (an ip:port) stays whole when every column's
    # longest word fits the width beside the others: each column gets that much, and the room
    # left goes to the columns whose cells are wider, in turn (rich's own shrinking takes from
    # the widest columns first and, when they cannot give, crops the table).
    fixed = _column_widths(table, columns, width)
    for i in columns:
        out.add_column(
            table.headers[i],
            justify="right" if table.numeric[i] else "left",
            overflow="fold",
            width=fixed[i] if fixed else None,
        )
    for row in table.cells:
        out.add_row(*(Text(row[i], style=STYLES.get(table.keys[i], {}).get(row[i], "")) for i in columns))
    return out


def write_summary(data: dict[str, Any], out: TextIO, width: int | None) -> None:
    """The capture summary: what the file is, then its protocol hierarchy (`tshark -z io,phs`)."""
    about = TextTable(
        title="Capture summary",
        headers=["what", "value"],
        cells=[
            *([key, _summary_value(key, data.get(key))] for key in SUMMARY_KEYS),
            ["interfaces", ", ".join(_interface(i) for i in data["interfaces"])],
            ["flows", ", ".join(f"{k} {v}" for k, v in data["flows"].items())],
            ["findings", ", ".join(f"{k} {v}" for k, v in data["findings"].items())],
            ["decoders", clean(", ".join(data["decoders"]) or "none")],
        ],
        numeric=[False, False],
        keys=["what", "value"],
    )
    phs = TextTable(
        title="Protocol hierarchy (frames)",
        headers=["protocol", "frames"],
        cells=[
            ["  " * path.count(":") + clean(path.rsplit(":", 1)[-1]), str(count)]
            for path, count in data["protocols"].items()
        ],
        numeric=[False, True],
        keys=["protocol", "frames"],
    )
    console = _console(out, width)
    _print(console, width, about.title, about, [0, 1], _widths(about), header=False)
    _print(console, width, phs.title, phs, [0, 1], _widths(phs))


SUMMARY_KEYS: Final = ("file", "format", "packets", "bytes", "first", "last", "duration", "truncated")


def _summary_value(key: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and key in ("first", "last"):
        when = datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return f"{value:.6f} ({when} UTC)"
    if isinstance(value, float):
        return f"{value:.6f}"
    return clean(value)


def _interface(interface: dict[str, Any]) -> str:
    """`eth (1) lo`: Wireshark's name for the link type, its number, the interface name."""
    linktype = interface["linktype"]
    name = LINK_NAMES.get(linktype) if isinstance(linktype, int) else None
    text = f"{name} ({linktype})" if name else str(linktype)
    return clean(f"{text} {interface['name']}" if interface.get("name") else text)


def write_packets(
    session: Session,
    items: Iterable[dict[str, Any]],
    out: TextIO,
    detail: bool = False,
    hex_dump: bool = False,
) -> None:
    """Wireshark's packet list columns, one line a packet, streamed (no table in memory). Times are
    relative to frame 1 even under a display filter, as tshark's are. `detail` (tshark -V) adds
    each packet's layers and decoded fields under its line, `hex_dump` (-x) its bytes."""
    start = capture_start(session)
    width = _address_width(session)
    out.write(
        f"{'No.':>7} {'Time':>12} {'Source':<{width}} {'Destination':<{width}} {'Protocol':<8} Length Info\n"
    )
    for item in items:
        proto = protocol_column(shown_protocol(item["protocols"])) if item["protocols"] else ""
        line = (
            f"{item['frame']:>7} {item['time'] - start:>12.6f} {item['src']:<{width}} {item['dst']:<{width}} "
            f"{proto:<8} {item['len']:>6} {item['info']}"
        )
        out.write(clean(line) + "\n")
        if detail:
            out.writelines(clean(text) + "\n" for text in _tree_lines(session, item))
        if hex_dump:
            out.writelines(f"{text}\n" for text in frame_hex_lines(session.index.frame(item["frame"] - 1)))
        if detail or hex_dump:
            out.write("\n")


def _tree_lines(session: Session, item: dict[str, Any]) -> Iterator[str]:
    """A packet's detail tree as tshark -V indents it: each layer, then its fields under it."""
    i = item["frame"] - 1
    yield f"Frame {item['frame']}: {item['len']} bytes on wire, {item['caplen']} bytes captured"
    shown: dict[str, object] = {}
    for layer in session.index.dissect(i).layers:
        yield layer.name
        yield from (f"    {name}: {value}" for name, value in layer.fields.items())
        shown.update(layer.fields)
    for pdu in item["pdus"]:
        if pdu["fields"] and all(shown.get(k, shown) == v for k, v in pdu["fields"].items()):
            continue  # what the layers said already (an ICMP error: its layer, then its PDU)
        yield pdu["protocol"]
        for name, value in pdu["fields"].items():
            for one in value if isinstance(value, list) else [value]:
                yield f"    {name}: {one}"
    for finding in item["findings"]:
        yield f"    [Expert Info ({finding['severity']}): {finding['message']} ({finding['code']})]"


HEX_DUMP_WIDTH: Final = 16


def frame_hex_lines(data: bytes) -> Iterator[str]:
    """A frame's bytes as tshark -x prints them: offset, 16 bytes, then the same as ASCII."""
    for at in range(0, len(data), HEX_DUMP_WIDTH):
        row = data[at : at + HEX_DUMP_WIDTH]
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in row)
        yield f"{at:04x}  {' '.join(f'{b:02x}' for b in row):<47}   {text}"


FOLLOW_RULE: Final = "=" * 67
"""tshark's rule around a followed stream."""


ASCII_KEPT: Final = frozenset(range(0x20, 0x7F)) | {0x0A, 0x0D}
"""Bytes Wireshark's Follow shows as they are in ASCII mode; every other byte is a '.'."""


def write_follow(followed: Followed, mode: str, lines: Iterable[tuple[bool, str]], out: TextIO) -> None:
    """A followed stream as `tshark -q -z follow,tcp,MODE,N` prints it: the two nodes, then the
    client's part as it is and the server's after a tab (in ASCII mode, tshark's: each segment's
    length, the server's after a tab, then its bytes)."""
    plain = followed.what == f"{followed.transport.upper()} stream {followed.stream}"
    head = (
        [f"Follow: {followed.transport},{mode}", f"Filter: {followed.transport}.stream eq {followed.stream}"]
        if plain
        else [f"Follow: {followed.what}, {mode}"]
    )
    # Node 0 is the first packet's sender, as in tshark; the other node's part is after a tab.
    first = followed.first_from_client
    nodes = (followed.client, followed.server) if first else (followed.server, followed.client)
    out.write("\n".join(["", FOLLOW_RULE, *head, f"Node 0: {nodes[0]}", f"Node 1: {nodes[1]}", ""]))
    if plain and mode == "ascii":
        _write_follow_ascii(followed, out)
    else:
        for from_client, line in lines:
            text = clean(line)
            if mode == "hex":
                text = _tshark_hex_line(text)
            out.write(("" if from_client == first else "\t") + text + "\n")
    if followed.truncated:
        out.write(f"[truncated: more than {FOLLOW_MAX_BYTES} bytes; the rest is left out]\n")
    out.write(FOLLOW_RULE + "\n")


def _tshark_hex_line(text: str) -> str:
    """A Follow hex dump line as tshark 4.0 ends it: its ASCII part gets a space after the 8th byte
    even when no byte follows, then loses one trailing space. So a line ending in a space loses
    it, except a line of exactly 8 bytes (whose separator is the space lost)."""
    count = len(text[10:59].split())  # offset, two spaces, then 16 "xx " cells and a group space
    return text[:-1] if text.endswith(" ") and count != 8 else text


def _write_follow_ascii(followed: Followed, out: TextIO) -> None:
    """tshark's ASCII follow, byte for byte when piped. On a terminal a carriage return is shown as
    '.' too: capture bytes must not move the cursor (see report/inert.py)."""
    kept = ASCII_KEPT - {0x0D} if out.isatty() else ASCII_KEPT
    table = bytes(b if b in kept else 0x2E for b in range(256))
    for chunk in followed.chunks:
        indent = "" if chunk.from_client == followed.first_from_client else "\t"
        if not chunk.data:  # a hole in the stream: its label says how many bytes
            out.write(f"{indent}{clean(chunk.label)}\n")
            continue
        out.write(f"{indent}{len(chunk.data)}\n{chunk.data.translate(table).decode('ascii')}\n")


def _address_width(session: Session) -> int:
    """Wide enough for every flow's endpoints (IPv6 too), so columns stay aligned; an address
    outside every flow that is longer still is written whole, not cut."""
    longest = max((len(str(e)) for f in session.flows for e in (f.client, f.server)), default=0)
    return max(len("Destination"), min(longest, 47))
