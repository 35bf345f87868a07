"""The detail tree (every layer, then the decoders' field trees) and the hex view."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from rich.text import Text
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from protoscope.decoders.api import Field

from ..model import PacketDetail
from .text import clean, literal

Span = tuple[int, int] | None


class DetailTree(Tree[Span]):
    """Layers as Wireshark shows them; each node's data is its byte span in the frame (or None)."""

    def show(self, detail: PacketDetail) -> None:
        self.clear()
        root = self.root
        root.set_label(literal(f"Frame {detail.index + 1}: {len(detail.frame)} bytes captured"))
        root.data = (0, len(detail.frame))
        for layer in detail.layers:
            node = root.add(literal(layer.name.upper()), data=(layer.start, layer.end), expand=False)
            for name, value in layer.fields.items():
                node.add_leaf(literal(f"{name}: {value}"), data=(layer.start, layer.end))
        for k, pdu in enumerate(detail.pdus):
            # A TCP PDU may begin in earlier segments: its nodes highlight the bytes in this one.
            span = detail.frame_span(k, pdu.span)
            label = f"{pdu.protocol.upper()}" + (f": {pdu.summary}" if pdu.summary else "")
            node = root.add(literal(label), data=span, expand=True)
            self._fields(node, pdu.fields, partial(detail.frame_span, k))
            for f in pdu.findings:
                node.add_leaf(literal(f"[{f.severity}] {f.code}: {f.message}", "bold yellow"), data=span)
        for f in detail.findings:
            if not any(f in p.findings for p in detail.pdus):
                root.add_leaf(literal(f"[{f.severity}] {f.code}: {f.message}", "bold yellow"))
        root.expand()

    def _fields(
        self, node: TreeNode[Span], fields: Sequence[Field], where: Callable[[tuple[int, int]], Span]
    ) -> None:
        for f in fields:
            span = where(f.span)
            label = literal(f"{f.name}: {f.value}")
            if f.children:
                child = node.add(label, data=span, expand=False)
                self._fields(child, f.children, where)
            else:
                node.add_leaf(label, data=span)


class HexView(Static):
    """Offset, hex and ASCII, 16 bytes a line; the selected field's bytes are highlighted."""

    DEFAULT_CSS = "HexView { height: auto; }"

    def __init__(self, **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self.data = b""
        self.span: Span = None

    def show(self, data: bytes, span: Span = None) -> None:
        self.data, self.span = data, span
        self.update(self.render_dump())

    def highlight(self, span: Span) -> None:
        self.span = span
        self.update(self.render_dump())

    def render_dump(self) -> Text:
        out = Text(no_wrap=True)
        lo, hi = self.span if self.span is not None else (-1, -1)
        for off in range(0, len(self.data), 16):
            chunk = self.data[off : off + 16]
            out.append(f"{off:04x}  ", "dim")
            for k, b in enumerate(chunk):
                style = "reverse" if lo <= off + k < hi else ""
                out.append(f"{b:02x}", style)
                out.append(" " if k != 7 else "  ")
            out.append("   " * (16 - len(chunk)) + (" " if len(chunk) <= 8 else ""))
            out.append(" ")
            for k, b in enumerate(chunk):
                style = "reverse" if lo <= off + k < hi else ""
                out.append(chr(b) if 0x20 <= b < 0x7F else ".", style)
            out.append("\n")
        return out


def json_tree(node: TreeNode[Span], value: object, label: str = "") -> None:
    """A JSON-like value (a decoded message, metadata) as tree nodes, shown literally."""
    if isinstance(value, dict):
        child = node.add(literal(label or "{}"), expand=True) if label else node
        for k, v in value.items():
            json_tree(child, v, str(k))
    elif isinstance(value, list):
        child = node.add(literal(f"{label} [{len(value)}]"), expand=True)
        for i, v in enumerate(value):
            json_tree(child, v, f"[{i}]")
    else:
        node.add_leaf(literal(f"{label}: {clean(value)}" if label else clean(value)))
