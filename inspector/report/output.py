"""Writing reports as text, JSON or JSON Lines (text in `text.py`, imported only when asked for)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TextIO

from ..session import Session
from . import rows
from .inert import json_inert


def write(session: Session, name: str, fmt: str, out: TextIO) -> None:
    if name == "summary":
        data: Any = rows.summary(session)
        if fmt == "text":
            from .text import terminal_width, write_summary

            write_summary(data, out, terminal_width(out))
        else:
            out.write(json_inert(json.dumps(data, ensure_ascii=False)) + "\n")
        return
    if fmt in ("jsonl", "json") and name not in ("flows", "packets", "findings"):
        from ..bulk_calls import json_rows

        texts = json_rows(session, name)
        if texts is not None:
            _write_json(texts, fmt, out)
            return
    items: Iterable[dict[str, Any]]
    if name == "flows":
        items = rows.flow_rows(session)
    elif name == "packets":
        items = rows.packet_rows(session)
    elif name == "findings":
        items = rows.finding_rows(session)
    else:
        items = rows.analysis_rows(session, name)
    if fmt in ("jsonl", "json"):
        _write_json((json.dumps(item, ensure_ascii=False) for item in items), fmt, out)
        return
    from .text import capture_start, terminal_width, write_packets, write_tables

    if name == "packets":
        write_packets(session, items, out)
    else:
        write_tables(name, items, capture_start(session), out, terminal_width(out))


def _write_json(texts: Iterable[str], fmt: str, out: TextIO) -> None:
    """JSON Lines, or a JSON array written item by item (a million packets never sit in memory).
    Characters a terminal would act on are written as JSON escapes (`\\u202e`): the same values."""
    if fmt == "jsonl":
        for text in texts:
            out.write(json_inert(text) + "\n")
        return
    out.write("[")
    sep = "\n"
    for text in texts:
        out.write(sep + json_inert(text))
        sep = ",\n"
    out.write("\n]\n")
