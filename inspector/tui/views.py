"""Lists and trees of the viewer's tabs: flows, gRPC calls, findings, any analysis's rows; each
moves with the same keys (↑↓ j k, g G, PgUp PgDn, Enter) and says why it is empty when it is."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable, Tree
from textual.widgets.tree import TreeNode

from ..follow import HEX_WIDTH, hex_lines
from ..model import CaptureModel, FindingAt
from ..report.cells import ssrc_hex
from .detail import json_tree
from .text import literal

TABLE_KEYS: list[BindingType] = [
    Binding("j", "cursor_down", "Down", show=False),
    Binding("k", "cursor_up", "Up", show=False),
    Binding("g", "scroll_top", "First", show=False),
    Binding("G", "scroll_bottom", "Last", show=False),
]
"""The packet list's keys for every table (Wireshark's and vi's fingers work in each view)."""

TREE_KEYS: list[BindingType] = [
    Binding("j", "cursor_down", "Down", show=False),
    Binding("k", "cursor_up", "Up", show=False),
    Binding("g,home", "scroll_home", "First", show=False),
    Binding("G,end", "scroll_end", "Last", show=False),
    Binding("pagedown", "page_down", "Page down", show=False),
    Binding("pageup", "page_up", "Page up", show=False),
]


class ListTable(DataTable[Any]):
    """A row-cursor table with the viewer's list keys."""

    BINDINGS: ClassVar[list[BindingType]] = TABLE_KEYS


class ListTree(Tree[Any]):
    """A tree with the viewer's list keys."""

    BINDINGS: ClassVar[list[BindingType]] = TREE_KEYS


FLOW_COLUMNS = ("#", "Protocols", "Client", "Server", "Packets", "Bytes", "Duration")
FLOW_DROPPED = ("Duration", "Bytes", "Packets")
"""The flows pane's columns that go first, in this order, when the pane is too narrow for all."""


class FlowsTable(ListTable):
    """Conversations with their protocol stack label; Enter shows only that flow's packets.
    Its columns fit the pane (re-fitted when it is resized): the last counters are left out, then
    the protocols cut, never wider than the pane."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cells: list[tuple[str, list[object]]] = []
        self._fitted: tuple[int, int] | None = None

    def fill(self, model: CaptureModel) -> None:
        errors = model.flows_with_errors()
        rows: list[list[object]] = []
        for flow in model.index.flows:
            badge = "⚠ " if flow.id in errors else ""
            rows.append(
                [
                    str(flow.id),
                    literal(badge + model.flow_label(flow.id)),
                    literal(flow.client),
                    literal(flow.server),
                    str(flow.packets),
                    str(flow.bytes),
                    f"{(flow.last_ns - flow.first_ns) / 1e9:.3f}",
                ]
            )
        self._cells = [(title, [row[k] for row in rows]) for k, title in enumerate(FLOW_COLUMNS)]
        self._fitted = None
        self._build()

    def on_resize(self) -> None:
        if self._cells:
            self._build()

    def _widths(self, room: int) -> dict[str, int]:
        """Column title -> width for `room` cells (each column takes 2 more: its padding)."""
        natural = {
            title: max([len(title), *(len(str(getattr(c, "plain", c))) for c in cells)])
            for title, cells in self._cells
        }
        shown = list(FLOW_COLUMNS)
        for title in FLOW_DROPPED:
            if sum(natural[t] + 2 for t in shown) <= room:
                break
            shown.remove(title)
        widths = {t: natural[t] for t in shown}
        over = sum(w + 2 for w in widths.values()) - room
        if over > 0:  # the protocols give way (cut), down to their title
            widths["Protocols"] = max(len("Protocols"), widths["Protocols"] - over)
        return widths

    def _build(self) -> None:
        room = self.size.width - self.styles.scrollbar_size_vertical
        if room <= 0:
            room = sum(len(t) + 2 for t in FLOW_COLUMNS) * 4  # not laid out yet: all of them
        key = (room, len(self._cells[0][1]) if self._cells else 0)
        if key == self._fitted:
            return
        self._fitted = key
        cursor = self.cursor_row
        widths = self._widths(room)
        self.clear(columns=True)
        self.cursor_type = "row"
        chosen = [(title, cells) for title, cells in self._cells if title in widths]
        for title, _ in chosen:
            self.add_column(title, width=widths[title], key=title)
        count = len(chosen[0][1]) if chosen else 0
        for n in range(count):
            self.add_row(*(cells[n] for _, cells in chosen), key=str(n))
        if count:
            self.move_cursor(row=min(cursor, count - 1))


CALL_COLUMNS = ("Method", "Status", "Duration", "Start", "Req", "Resp", "Kind", "Flow", "Stream")
"""In order of need: at 80 columns what a call did, how it ended and when it began are seen
before where it ran (← → scroll the table to Flow and Stream). Start counts seconds from the
capture's first packet, as the packet list's Time does."""


def call_method(path: object) -> str:
    """`/pkg.Service/Method` as `Service/Method`: the package is the part a narrow column can lose
    (the detail tree below shows the whole path)."""
    if not isinstance(path, str) or not path:
        return "(unknown: headers before the capture)"
    service, _, method = path.lstrip("/").rpartition("/")
    return f"{service.rsplit('.', 1)[-1]}/{method}" if service else path


class CallsTable(ListTable):
    def fill(
        self, calls: list[dict[str, object]], first: float = 0.0, digits: int = 6, offset: int = 0
    ) -> None:
        """The calls from `offset` on (each row's key is its call's index); `first` is the
        capture's first packet's time (epoch seconds): Start counts from it with `digits`
        decimals, as the packet list's Time column."""
        self.clear(columns=True)
        self.cursor_type = "row"
        for title in CALL_COLUMNS:
            self.add_column(title)
        for n, c in enumerate(calls[offset:], offset):
            duration = c.get("duration")
            self.add_row(
                literal(call_method(c.get("path"))),
                literal(
                    c.get("status_name") or ("open" if c.get("end") is None else "—"),
                    "green" if c.get("status") == 0 else "bold red" if c.get("status") else "",
                ),
                f"{duration * 1000:.3f} ms" if isinstance(duration, float) else "",
                f"{start - first:.{digits}f}" if isinstance(start := c.get("start"), float) else "",
                str(len(c["requests"])),  # type: ignore[arg-type]
                str(len(c["responses"])),  # type: ignore[arg-type]
                literal(c["kind"]),
                str(c["flow"]),
                str(c["stream_id"]),
                key=str(n),
            )


class CallTree(ListTree):
    def show(self, call: dict[str, object]) -> None:
        self.clear()
        self.root.set_label(literal(f"{call.get('path')} ({call.get('kind')})"))
        status = f"{call.get('status')} {call.get('status_name') or ''}"
        self.root.add_leaf(literal(f"status: {status}"))
        if call.get("grpc_message"):
            self.root.add_leaf(literal(f"grpc-message: {call['grpc_message']}"))
        for key in ("status_details", "request_metadata", "response_metadata", "trailers"):
            if call.get(key):
                json_tree(self.root, call[key], key)
        for key in ("requests", "responses"):
            items = call.get(key) or []
            node = self.root.add(literal(f"{key} [{len(items)}]"), expand=True)  # type: ignore[arg-type]
            for item in items:  # type: ignore[attr-defined]
                head = f"frame {item['frame']}: {item['size']} bytes" + (
                    " (compressed)" if item["compressed"] else ""
                )
                msg = node.add(literal(head), expand=True)
                json_tree(msg, item["message"], item.get("type") or "message")
        self.root.expand()


class FindingsTree(ListTree):
    """Expert info grouped by severity and code, the packets' own and the analyses' (with their
    phase); each leaf's data is its packet (-1: the file, or no packet)."""

    OPEN_UP_TO = 5
    """A code with this many findings or fewer shows them at once (a failed call's one or two)."""

    class Jump(Message):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def fill(self, findings: list[FindingAt]) -> None:
        self.clear()
        self.root.set_label(literal(f"Findings ({len(findings)})"))
        for severity in ("error", "warn", "note"):
            chosen = [f for f in findings if f.finding.severity == severity]
            if not chosen:
                continue
            style = {"error": "bold red", "warn": "yellow", "note": "cyan"}[severity]
            sev = self.root.add(literal(f"{severity} ({len(chosen)})", style), expand=True)
            codes: dict[str, list[FindingAt]] = {}
            for f in chosen:
                codes.setdefault(f.finding.code, []).append(f)
            for code, items in sorted(codes.items()):
                node = sev.add(literal(f"{code} ({len(items)})"), expand=len(items) <= self.OPEN_UP_TO)
                for f in items[:1000]:
                    node.add_leaf(literal(f"{_where(f)}: {f.finding.message}"), data=f.index)
        self.root.expand()

    def on_tree_node_selected(self, event: Tree.NodeSelected[int]) -> None:
        if event.node.data is not None and event.node.data >= 0:
            self.post_message(self.Jump(event.node.data))


def _where(f: FindingAt) -> str:
    """Where a finding is: "frame 25, phase ice"; "file", or the analysis's name when no frame."""
    where = f"frame {f.index + 1}" if f.index >= 0 else (f.analysis or "file")
    return f"{where}, phase {f.phase}" if f.phase else where


class ReportTable(ListTable):
    """Any analysis's rows (RTP streams, WebRTC sessions, a plugin's report); a row opens as a tree.
    Nested values are summarised (`summary`)."""

    def fill(
        self,
        rows: list[dict[str, object]],
        first: Sequence[str] = (),
        defaults: Mapping[str, str] | None = None,
        offset: int = 0,
    ) -> None:
        """Columns in the order the rows give them, after those of `first` that they have; a row
        without a value of `defaults`' keys shows the default (a WebRTC session's kind). Rows from
        `offset` on (each row's key is its index in `rows`)."""
        defaults = defaults or {}
        self.clear(columns=True)
        self.cursor_type = "row"
        shown = rows[offset:]
        columns = [k for k in first if any(k in row for row in shown)]
        for row in shown:  # rows of one report may differ (sessions and TURN allocations)
            columns += [k for k in row if k not in columns]
        columns = columns[:14]
        for title in columns:
            self.add_column(literal(title))  # a plugin's rows: keys are its text
        for n, row in enumerate(shown, offset):
            self.add_row(*(literal(cell(k, row.get(k, defaults.get(k)))) for k in columns), key=str(n))


EVENT_KEYS = frozenset({"opened", "acked", "closed"})
"""A data channel's events ({"frame": 41, "time": ..., "by": "reset"}): a cell shows the frame."""


def cell(key: str, value: object) -> str:
    """A report cell: an SSRC in hex as Wireshark shows it (`0x7f09e13e`), a data channel's event
    by its frame (`41`, `776 reset`), else `summary`."""
    if key == "ssrc" and (text := ssrc_hex(value)) is not None:
        return text
    if key in EVENT_KEYS and isinstance(value, Mapping) and "frame" in value:
        by = value.get("by")
        return f"{value['frame']}" + (f" {by}" if by else "")
    if key == "ssrcs" and isinstance(value, list):
        return summary([ssrc_hex(v) or v for v in value])
    return summary(value)


def summary(value: object) -> str:
    """A cell for a nested value: a mapping of plain values by its values (a nominated pair reads
    `127.0.0.1:58318 → 127.0.0.1:3478`), a mapping of mappings by its keys in order (a session's
    phases read as its timeline), a short list of plain values by its values (`96, 111`), a
    longer one by its length."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, Mapping):
        if not value:
            return "—"
        plain = all(not isinstance(v, Mapping | list) for v in value.values())
        return " → ".join(map(str, value.values() if plain else value))
    if isinstance(value, list):
        shown = ", ".join(summary(v) for v in value)
        plain = all(not isinstance(v, Mapping | list) for v in value)
        if value and plain and len(value) <= SHORT_LIST and len(shown) <= SHORT_LIST_CELLS:
            return shown  # a stream's payload types: `96, 111`
        return str(len(value))
    return str(value)


SHORT_LIST = 4
SHORT_LIST_CELLS = 24
"""A list of plain values reads as its values up to this many of them and cells, else its length."""


FIRST_COLUMNS: dict[str, tuple[str, ...]] = {
    "sessions": (
        "id",
        "kind",
        "failed_phase",
        "nominated_pair",
        "client",
        "server",
        "relayed",
        "inside",
        "nat_type",
        "errors",
    ),
    "streams": ("ssrc", "src", "dst", "packets", "lost", "max_jitter_ms"),
    "datachannels": (
        "label",
        "stream_id",
        "reliability",
        "messages_c2s",
        "messages_s2c",
        "bytes_c2s",
        "bytes_s2c",
        "opened",
        "acked",
        "closed",
        "protocol",
        "negotiated",
        "flow",
    ),
}
"""Columns a report's table shows first: a WebRTC session, a TURN allocation and the NAT verdict
on a socket in no session share them, so every row of the Sessions tab shows values at 80 columns."""

DEFAULT_CELLS: dict[str, dict[str, str]] = {"sessions": {"kind": "session"}}
"""Per report, what a row without the key is (a WebRTC session's row has no `kind`)."""


def session_line(row: Mapping[str, object]) -> str:
    """One line for a WebRTC session or a TURN allocation: where it failed (or OK), the selected
    candidate pair, the DTLS state and the media each way; what a glance at a call needs first."""
    failed = row.get("failed_phase")
    allocation = row.get("kind") == "turn_allocation"
    noun = "TURN allocation" if allocation else "session"
    parts = [f"{noun} {row.get('id')}: " + (f"FAILED in {failed}" if failed else "OK")]
    if allocation:
        parts.append(f"{row.get('client')} → {row.get('server')}")
        if row.get("relayed"):
            parts.append(f"relayed {row['relayed']}")
        errors = row.get("errors")
        if isinstance(errors, list) and errors:
            parts.append(", ".join(map(str, errors)))
        return " · ".join(parts)
    if row.get("kind") == "nat":
        return f"NAT of {row.get('inside')}: {row.get('nat_type')} · I: the verdict and its evidence"
    diagnosis = row.get("diagnosis")
    if isinstance(diagnosis, Mapping) and diagnosis.get("summary"):
        text = str(diagnosis["summary"])
        if failed and text.lower().startswith(f"failed in {failed}".lower()):
            parts[0] = f"{noun} {row.get('id')}: FAILED{text[len('failed') :]}"  # says where already
        else:
            parts.append(text)
    parts.append(_pair_text(row))
    dtls = row.get("dtls")
    state = dtls.get("state") if isinstance(dtls, Mapping) else None
    parts.append(_dtls_text(row, state, failed))
    media = row.get("media")
    if isinstance(media, list):
        parts.append(_media_text([m for m in media if isinstance(m, Mapping)]))
    parts.append("I: NAT/ICE")
    return " · ".join(parts)


def _pair_text(row: Mapping[str, object]) -> str:
    """The selected pair with its candidate types (`pair relay 198.51.100.2:49152 ↔ relay
    198.51.100.2:49153`), else the nominated pair as an older row has it."""
    selected = row.get("selected_pair")
    if isinstance(selected, Mapping) and selected.get("local") is not None:
        local = " ".join(str(v) for v in (selected.get("local_type"), selected.get("local")) if v)
        remote = " ".join(str(v) for v in (selected.get("remote_type"), selected.get("remote")) if v)
        return f"pair {local} ↔ {remote}"
    pair = row.get("nominated_pair")
    if isinstance(pair, Mapping) and pair:
        return f"pair {pair.get('local')} ↔ {pair.get('remote')}"
    return "no nominated pair"


def _media_text(media: list[Mapping[str, object]]) -> str:
    """Packets each way: by party (`media A→B 200, B→A 190 packets`) where the row names the
    sender, else client to server and back."""

    def packets(m: Mapping[str, object]) -> int:
        n = m.get("packets", 0)
        return n if isinstance(n, int) else 0

    if any("from" in m for m in media):
        ways: dict[str, int] = {}
        for m in media:
            way = f"{m.get('from') or '?'}→{m.get('to') or '?'}"
            ways[way] = ways.get(way, 0) + packets(m)
        return "media " + ", ".join(f"{way} {n}" for way, n in ways.items()) + " packets"
    sent = sum(packets(m) for m in media if m.get("from_client"))
    back = sum(packets(m) for m in media if not m.get("from_client"))
    return f"media → {sent} ← {back} packets"


def _dtls_text(row: Mapping[str, object], state: object, failed: object) -> str:
    """The DTLS part of `session_line`: never "done" alone for a session that failed in DTLS
    (a handshake can finish with a certificate SDP did not promise)."""
    if failed != "dtls":
        return f"DTLS {state}" if state not in (None, "none") else "no DTLS handshake"
    findings = row.get("findings")
    why = next(
        (
            str(f.get("message"))
            for f in (findings if isinstance(findings, list) else [])
            if isinstance(f, Mapping) and f.get("phase") == "dtls" and f.get("severity") == "error"
        ),
        None,
    )
    if why and "certificate" in why and "SDP promised" in why:
        why = "certificate not the one SDP promised"
    if state == "done":
        return f"DTLS handshake done, {why}" if why else "DTLS handshake done, then failed"
    return f"DTLS failed: {why}" if why else "DTLS failed"


PPID_NAMES = {
    50: "DCEP",
    51: "string",
    52: "string (partial)",
    53: "binary",
    54: "binary (partial)",
    56: "empty string",
    57: "empty binary",
}
"""RFC 8831's payload protocol identifiers of data channel messages."""
HEX_LINES = 64
"""Lines of 16 bytes a message's hex dump shows in the tree (1 KiB; the JSON report has it all)."""
TEXT_LINE = 120
"""Characters of a text message a tree line shows; longer ones continue on lines below it."""
PREVIEW_BYTES = 16
"""Bytes of a binary message its one line shows, in hex (opened, it shows them all as a dump)."""


class RowTree(ListTree):
    def show(self, title: str, row: dict[str, object]) -> None:
        self.clear()
        self.root.set_label(literal(title))
        messages = row.get("messages") if title.startswith("datachannels") else None
        if isinstance(messages, list):  # a data channel: its messages first, then the rest
            node = self.root.add(literal(f"messages [{len(messages)}]"), expand=True)
            for m in messages:
                if isinstance(m, dict):
                    message_node(node, m)
            json_tree(self.root, {k: v for k, v in row.items() if k != "messages"}, report=True)
        else:
            json_tree(self.root, row, report=True)
        self.root.expand()


def message_line(m: Mapping[str, object]) -> str:
    """`frame 55  s2c (server)  string  5 B  'hello'`: a data channel message on one line."""
    ppid = m.get("ppid")
    kind = PPID_NAMES.get(ppid, f"PPID {ppid}") if isinstance(ppid, int) else ""
    side = f" ({m['dtls_side']})" if m.get("dtls_side") else ""
    text, raw = m.get("text"), m.get("hex")
    if isinstance(text, str):
        preview = repr(text[:TEXT_LINE]) + ("…" if len(text) > TEXT_LINE else "")
    elif isinstance(raw, str) and raw:  # binary: its first bytes in hex
        preview = raw[: PREVIEW_BYTES * 2] + ("…" if len(raw) > PREVIEW_BYTES * 2 else "")
    else:
        preview = ""
    line = f"frame {m.get('frame')}  {m.get('direction', '')}{side}  {kind}  {m.get('size')} B  {preview}"
    return line.rstrip()


def hex_dump(data: bytes) -> list[str]:
    """Follow's Wireshark hex dump (inspector/follow.py `hex_lines`) of the first HEX_LINES lines."""
    shown = HEX_LINES * HEX_WIDTH
    lines = hex_lines(data[:shown])
    if len(data) > shown:
        lines.append(f"… {len(data) - shown} more bytes (--report datachannels --format json has them)")
    return lines


def message_node(parent: TreeNode[Any], m: Mapping[str, object]) -> None:
    """A message: its line, then its frames and its content (text lines, or a hex dump)."""
    node = parent.add(literal(message_line(m)), expand=False)
    frames = m.get("frames")
    if isinstance(frames, list):
        node.add_leaf(literal(f"frames: {', '.join(map(str, frames))}"))
    node.add_leaf(literal(f"time: {m.get('time')}"))
    text, raw = m.get("text"), m.get("hex")
    if isinstance(text, str) and len(text) > TEXT_LINE:
        for at in range(0, min(len(text), HEX_LINES * TEXT_LINE), TEXT_LINE):
            node.add_leaf(literal(text[at : at + TEXT_LINE]))
    elif isinstance(raw, str):
        try:
            data = bytes.fromhex(raw)
        except ValueError:
            data = b""
        for line in hex_dump(data):
            node.add_leaf(literal(line))
