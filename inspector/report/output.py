"""Writing reports as text (rich tables), JSON or JSON Lines."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..session import Session
from . import rows

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def literal(value: object) -> Text:
    """Text from a capture, shown as is: no Rich markup, no terminal control characters."""
    s = str(value)
    s = CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", s)
    return Text(s)


def write(session: Session, name: str, fmt: str, out: TextIO) -> None:
    if name == "summary":
        data: Any = rows.summary(session)
        if fmt == "text":
            _summary_text(data, out)
        else:
            out.write(json.dumps(data, ensure_ascii=False) + "\n")
        return
    if fmt in ("jsonl", "json") and name not in ("flows", "packets", "findings"):
        from ..bulk_calls import json_rows

        texts = json_rows(session, name)
        if texts is not None:
            _write_json(texts, fmt, out)
            return
    items: Iterable[dict[str, Any]]
    if name == "flows":
        items = (rows.flow_row(f) for f in session.flows)
    elif name == "packets":
        items = rows.packet_rows(session)
    elif name == "findings":
        items = rows.finding_rows(session)
    else:
        items = rows.analysis_rows(session, name)
    if fmt in ("jsonl", "json"):
        _write_json((json.dumps(item, ensure_ascii=False) for item in items), fmt, out)
    elif name == "packets":
        _packets_text(items, out)
    else:
        _table_text(name, items, out)


def _write_json(texts: Iterable[str], fmt: str, out: TextIO) -> None:
    """JSON Lines, or a JSON array written item by item (a million packets never sit in memory)."""
    if fmt == "jsonl":
        for text in texts:
            out.write(text + "\n")
        return
    out.write("[")
    sep = "\n"
    for text in texts:
        out.write(sep + text)
        sep = ",\n"
    out.write("\n]\n")


def _console(out: TextIO) -> Console:
    return Console(file=out, width=200 if not out.isatty() else None, highlight=False, soft_wrap=False)


def _summary_text(data: dict[str, Any], out: TextIO) -> None:
    console = _console(out)
    table = Table(title="Capture summary", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    for key in ("file", "format", "packets", "bytes", "first", "last", "duration", "truncated"):
        table.add_row(key, literal(data[key]))
    table.add_row(
        "interfaces",
        literal(
            ", ".join(f"{i['linktype']}{' ' + i['name'] if i['name'] else ''}" for i in data["interfaces"])
        ),
    )
    table.add_row("flows", literal(", ".join(f"{k} {v}" for k, v in data["flows"].items())))
    table.add_row("findings", literal(", ".join(f"{k} {v}" for k, v in data["findings"].items())))
    table.add_row("decoders", literal(", ".join(data["decoders"]) or "none"))
    console.print(table)
    phs = Table(title="Protocol hierarchy (frames)", title_justify="left")
    phs.add_column("protocol")
    phs.add_column("frames", justify="right")
    for path, count in data["protocols"].items():
        depth = path.count(":")
        phs.add_row(literal("  " * depth + path.rsplit(":", 1)[-1]), str(count))
    console.print(phs)


COLUMNS = {
    "flows": ("id", "transport", "client", "server", "protocols", "packets", "bytes", "first", "last"),
    "findings": ("frame", "severity", "code", "message"),
    "calls": ("flow", "stream_id", "path", "kind", "status_name", "requests", "responses", "duration"),
}
"""Columns of a text table; a report without an entry shows its scalar keys."""


def _table_text(name: str, items: Iterable[dict[str, Any]], out: TextIO) -> None:
    table = Table(title=name.capitalize(), title_justify="left")
    items = list(items)
    cols = COLUMNS.get(name) or tuple(
        k for k, v in (items[0].items() if items else ()) if not isinstance(v, dict | list)
    )
    for c in cols:
        table.add_column(c, justify="right" if c in ("id", "packets", "bytes", "frame") else "left")
    for item in items:
        table.add_row(*(literal(_cell(v)) for v in (item[c] for c in cols)))
    _console(out).print(table)


def _cell(v: Any) -> Any:
    if isinstance(v, list):
        return str(len(v)) if v and isinstance(v[0], dict) else ",".join(map(str, v))
    if isinstance(v, float):
        return f"{v:.6f}"
    return "" if v is None else v


def _packets_text(items: Iterable[dict[str, Any]], out: TextIO) -> None:
    """Wireshark's packet list columns, one line a packet, streamed (no table in memory)."""
    out.write(
        f"{'No.':>7} {'Time':>12} {'Source':<24} {'Destination':<24} {'Protocol':<8} {'Length':>6} Info\n"
    )
    start: float | None = None
    for item in items:
        if start is None:
            start = item["time"]
        proto = item["protocols"][-1] if item["protocols"] else ""
        line = (
            f"{item['frame']:>7} {item['time'] - start:>12.6f} {item['src']:<24} {item['dst']:<24} "
            f"{proto:<8} {item['len']:>6} {item['info']}"
        )
        out.write(CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", line) + "\n")
