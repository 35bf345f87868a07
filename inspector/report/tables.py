"""The tables a report's rows make in text: one per row kind, its columns most useful first.

Rows of one report may differ in shape: the sessions report has ICE sessions and, with
`kind: turn_allocation`, TURN allocations. Each kind gets a table of its own; a kind this module
knows has its columns in the order people read them, followed by any other key its rows carry;
a kind it does not know (a plugin's) shows the union of its rows' keys. A missing key is an
empty cell, never an error.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from .cells import Cells
from .inert import clean

Row = Mapping[str, object]

NUMBER: Final = re.compile(r"-?[0-9]+(\.[0-9]+)?|")
"""Cells of a column that is right-aligned: decimal numbers (SSRCs in hex read as text), or empty."""


@dataclass(frozen=True, slots=True)
class Column:
    """A column of a known kind: the key it shows, the keys it also stands for, how it reads them."""

    key: str
    covers: tuple[str, ...] = ()
    """Keys this column already shows (left out of the table's other columns)."""
    show: Callable[[Cells, Row], str] | None = None
    """The cell from the whole row; by default the row's `key` shown by `Cells.show`."""


@dataclass(frozen=True, slots=True)
class TextTable:
    """A table ready to draw: its title, headers, cells as text, and which columns are numbers."""

    title: str
    headers: list[str]
    cells: list[list[str]]
    numeric: list[bool]
    keys: list[str]
    """The row key behind each column (for styles)."""


def _call_path(cells: Cells, row: Row) -> str:
    path = row.get("path")
    return clean(path) if path else "(unknown: headers before the capture)"


def _call_status(cells: Cells, row: Row) -> str:
    """`NOT_FOUND (5)`; a call still open at the end of the capture shows `open`."""
    name, status = row.get("status_name"), row.get("status")
    if status is None and not name:
        return "open" if row.get("end") is None else ""
    return " ".join(
        p for p in (clean(name) if name else "", f"({status})" if status is not None else "") if p
    )


def _protocol_tree(cells: Cells, row: Row) -> str:
    """The protocol indented by its depth, as `tshark -z io,phs` draws the tree."""
    depth = row.get("depth")
    return "  " * (depth if isinstance(depth, int) else 0) + clean(row.get("protocol", ""))


def _seconds(key: str) -> Callable[[Cells, Row], str]:
    """Seconds since the first packet as the row has them (not epoch times, which TIME_KEYS are)."""

    def show(cells: Cells, row: Row) -> str:
        value = row.get(key)
        return f"{value:.6f}" if isinstance(value, int | float) else ""

    return show


def _statuses(cells: Cells, row: Row) -> str:
    statuses = row.get("statuses")
    if not isinstance(statuses, Mapping):
        return ""
    return ", ".join(f"{clean(k)} {v}" for k, v in statuses.items())


def _at(key: str) -> Callable[[Cells, Row], str]:
    """A data channel's event ({"frame": 41, "by": "reset", ...}) as `frame 41` (`frame 776 reset`)."""

    def show(cells: Cells, row: Row) -> str:
        event = row.get(key)
        if not isinstance(event, Mapping):
            return ""
        by = event.get("by")
        return f"frame {event.get('frame')}" + (f" {clean(by)}" if by else "")

    return show


MESSAGE_PREVIEW = 60
"""Characters of a data channel message a text table shows (the JSON report has it whole)."""


def _messages(rows: Iterable[Row]) -> Iterable[Row]:
    """Each data channel's messages as rows of their own (a table after the channels')."""
    for row in rows:
        messages = row.get("messages")
        if not isinstance(messages, list):
            continue
        for m in messages:
            if not isinstance(m, Mapping):
                continue
            text, raw = m.get("text"), m.get("hex")
            content = (
                repr(text)
                if isinstance(text, str)
                else (f"hex {raw}" if raw else "(empty binary)")
                if isinstance(raw, str)
                else ""
            )
            if len(content) > MESSAGE_PREVIEW:
                content = content[: MESSAGE_PREVIEW - 1] + "…"
            yield {
                "kind": "datachannel_message",
                **{k: m.get(k) for k in ("frame", "time", "direction", "ppid", "size")},
                "flow": row.get("flow"),
                "stream_id": row.get("stream_id"),
                "label": row.get("label"),
                "content": content,
            }


LAYOUTS: Final[dict[str, tuple[str | Column, ...]]] = {
    "hierarchy": (Column("protocol", covers=("path", "depth"), show=_protocol_tree), "frames", "bytes"),
    "endpoints": ("address", "port", "packets", "bytes", "tx_packets", "tx_bytes", "rx_packets", "rx_bytes"),
    "conversations": (
        "a",
        "b",
        "packets",
        "bytes",
        "a_to_b_packets",
        "a_to_b_bytes",
        "b_to_a_packets",
        "b_to_a_bytes",
        Column("start", show=_seconds("start")),
        Column("duration", show=_seconds("duration")),
    ),
    "io": (Column("start", show=_seconds("start")), Column("end", show=_seconds("end"))),
    "methods": (
        "path",
        "calls",
        Column("statuses", show=_statuses),
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "request_bytes",
        "response_bytes",
        "max_message",
    ),
    "flows": (
        "id",
        "client",
        "server",
        Column("label", covers=("transport", "protocols")),
        "packets",
        "bytes",
        "first",
        "last",
    ),
    "findings": ("frame", "severity", "code", "message", "phase", "analysis"),
    "calls": (
        Column("path", covers=("service", "method"), show=_call_path),
        Column("status", covers=("status_name",), show=_call_status),
        "duration",
        "requests",
        "responses",
        "flow",
        "stream_id",
        "kind",
        "grpc_message",
        "start",
        "end",
    ),
    "streams": (
        "ssrc",
        "src",
        "dst",
        "payload_type",
        "packets",
        "lost",
        "max_delta_ms",
        "max_jitter_ms",
        "mean_jitter_ms",
        "first",
        "last",
    ),
    "sessions": (
        "id",
        "failed_phase",
        "phases",
        "nominated_pair",
        "dtls",
        "media",
        "findings",
        "ufrags",
        "candidate_pairs",
    ),
    "datachannels": (
        "flow",
        "stream_id",
        "label",
        "protocol",
        "negotiated",
        "ordered",
        "reliability",
        "messages_c2s",
        "messages_s2c",
        "bytes_c2s",
        "bytes_s2c",
        Column("opened", show=_at("opened")),
        Column("acked", show=_at("acked")),
        Column("closed", show=_at("closed")),
        "findings",
    ),
    "datachannel_message": (
        "frame",
        "time",
        "flow",
        "stream_id",
        "label",
        "direction",
        "ppid",
        "size",
        "content",
    ),
    "nat": (
        "id",
        "inside",
        "nat_type",
        "mapping",
        "filtering",
        "public",
        "findings",
        "evidence",
        "port_preservation",
        "hairpinning",
    ),
    "turn_allocation": (
        "id",
        "client",
        "server",
        "relayed",
        "failed_phase",
        "findings",
        "unauthorized_401",
        "errors",
        "lifetime",
        "released",
        "permissions",
        "channels",
    ),
    "stun_transactions": (
        "method",
        "client",
        "server",
        "relayed",
        "request_frame",
        "requests",
        "response_frame",
        "rtt_ms",
        "response_class",
        "error_code",
        "error_reason",
        "username",
        "mapped_address",
        "relayed_address",
        "lifetime",
    ),
}
"""Columns of each known row kind, most useful first (a terminal too narrow shows them in this
order); keys a row has beyond these follow in the row's order."""

TEXT_LEFT_OUT: Final = {
    "calls": ("grpcurl",),
    "datachannels": ("messages", "channel_type"),
    "nat": ("party", "ufrag", "mappings", "rfc5780", "binding_lifetime_s"),
}
"""Keys a text table leaves out (JSON keeps them): a call's grpcurl command is a line of its own to
copy, as wide as the rest of the row (`--format json` or `y` in the viewer gives it)."""

TITLES: Final = {
    "turn_allocation": "TURN allocations",
    "nat": "NAT behaviour of sockets in no session",
    "hierarchy": "Protocol hierarchy",
    "io": "I/O statistics",
    "methods": "gRPC methods",
    "datachannels": "Data channels",
    "datachannel_message": "Data channel messages",
    "stun_transactions": "STUN transactions",
}


def _columns(layout: tuple[str | Column, ...]) -> list[Column]:
    return [c if isinstance(c, Column) else Column(c) for c in layout]


@functools.cache
def _kind_is_a_column(report: str) -> bool:
    """Whether the report uses `kind` as a column of its own (a gRPC call's kind is unary, ...):
    asked once a report, not once a row."""
    return any(c.key == "kind" for c in _columns(LAYOUTS.get(report, ())))


def kind_of(report: str, row: Row) -> str:
    """The table a row belongs to: its `kind`, unless the report uses `kind` as a column of its own,
    else the report's."""
    kind = row.get("kind")
    if isinstance(kind, str) and kind and not _kind_is_a_column(report):
        return kind
    return report


def text_tables(report: str, rows: Iterable[Row], cells: Cells) -> list[TextTable]:
    """The tables of a report's rows, in the order their kinds first appear."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(kind_of(report, row), []).append(row)
    if report == "datachannels" and report in groups:
        groups["datachannel_message"] = list(_messages(groups[report]))
    return [_table(report, kind, members, cells) for kind, members in groups.items()]


def _table(report: str, kind: str, rows: list[Row], cells: Cells) -> TextTable:
    present: dict[str, None] = {}
    for row in rows:
        present.update(dict.fromkeys(row))
    if kind != report:
        present.pop("kind", None)  # the table's title says it
    for key in TEXT_LEFT_OUT.get(kind, ()):
        present.pop(key, None)
    columns = [c for c in _columns(LAYOUTS.get(kind, ())) if c.key in present or c.show is not None]
    shown = {k for c in columns for k in (c.key, *c.covers)}
    columns += [Column(k) for k in present if k not in shown]
    table_cells = [
        [c.show(cells, row) if c.show is not None else cells.show(c.key, row.get(c.key)) for c in columns]
        for row in rows
    ]
    numeric = [all(NUMBER.fullmatch(r[i]) for r in table_cells) for i in range(len(columns))]
    base = TITLES.get(kind) or (report.capitalize() if kind == report else f"{report.capitalize()}: {kind}")
    return TextTable(  # a plugin's rows name their kind and keys: capture text as much as values
        title=clean(f"{base} ({len(rows)})"),
        headers=[clean(c.key) for c in columns],
        cells=table_cells,
        numeric=numeric,
        keys=[c.key for c in columns],
    )
