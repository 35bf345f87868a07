"""Flows, gRPC calls and findings."""

from __future__ import annotations

from typing import Any

from textual.message import Message
from textual.widgets import DataTable, Tree

from ..model import CaptureModel, FindingAt
from .detail import Span, json_tree
from .text import literal


class FlowsTable(DataTable[Any]):
    """Conversations with their protocol stack label; Enter shows only that flow's packets."""

    def fill(self, model: CaptureModel) -> None:
        self.clear(columns=True)
        self.cursor_type = "row"
        for title in ("#", "Protocols", "Client", "Server", "Packets", "Bytes", "Duration"):
            self.add_column(title)
        errors = model.flows_with_errors()
        for flow in model.index.flows:
            badge = "⚠ " if flow.id in errors else ""
            self.add_row(
                str(flow.id),
                literal(badge + model.flow_label(flow.id)),
                literal(flow.client),
                literal(flow.server),
                str(flow.packets),
                str(flow.bytes),
                f"{(flow.last_ns - flow.first_ns) / 1e9:.3f}",
                key=str(flow.id),
            )


class CallsTable(DataTable[Any]):
    def fill(self, calls: list[dict[str, object]]) -> None:
        self.clear(columns=True)
        self.cursor_type = "row"
        for title in ("Flow", "Stream", "Method", "Kind", "Status", "Req", "Resp", "Duration"):
            self.add_column(title)
        for n, c in enumerate(calls):
            duration = c.get("duration")
            self.add_row(
                str(c["flow"]),
                str(c["stream_id"]),
                literal(c.get("path") or "(unknown: headers before the capture)"),
                literal(c["kind"]),
                literal(
                    c.get("status_name") or ("open" if c.get("end") is None else "—"),
                    "green" if c.get("status") == 0 else "bold red" if c.get("status") else "",
                ),
                str(len(c["requests"])),  # type: ignore[arg-type]
                str(len(c["responses"])),  # type: ignore[arg-type]
                f"{duration:.6f}" if isinstance(duration, float) else "",
                key=str(n),
            )


class CallTree(Tree[Span]):
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


class FindingsTree(Tree[int]):
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


class ReportTable(DataTable[Any]):
    """Any analysis's rows (RTP streams, WebRTC sessions, a plugin's report); a row opens as a tree.
    Nested values are summarised: a list by its length, a dict by its keys in order (a session's
    phases read as its timeline)."""

    def fill(self, rows: list[dict[str, object]]) -> None:
        self.clear(columns=True)
        self.cursor_type = "row"
        columns: list[str] = []
        for row in rows:  # rows of one report may differ (sessions and TURN allocations)
            columns += [k for k in row if k not in columns]
        columns = columns[:14]
        for title in columns:
            self.add_column(literal(title))  # a plugin's rows: keys are its text
        for n, row in enumerate(rows):
            self.add_row(*(literal(_summary(row.get(k))) for k in columns), key=str(n))


def _summary(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict):
        return " → ".join(map(str, value)) if value else "—"
    if isinstance(value, list):
        return str(len(value))
    return str(value)


class RowTree(Tree[Span]):
    def show(self, title: str, row: dict[str, object]) -> None:
        self.clear()
        self.root.set_label(literal(title))
        json_tree(self.root, row)
        self.root.expand()
