"""The detail tree (every layer, then the decoders' field trees) and the hex view.

Nodes read as Wireshark's do: the field's name and its value as `fields.display` words it
(`Type: HEADERS (1)`, `Flags: 0x05 END_STREAM, END_HEADERS` with one child per flag bit,
`Type: IPv4 (0x0800)`). Each node's data is its byte span in the frame, for the hex view; the
field's filter name stays with the node, so the app can show it (as Wireshark's status bar does),
add it as a column (`+`) or apply it as a filter (`a`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from protoscope.decoders.api import Field, FieldInfo
from protoscope.decoders.registry import Registry

from ..fields import display, field_info
from ..model import PacketDetail
from ..report.cells import ssrc_hex
from .text import clean, literal

Span = tuple[int, int] | None

SIDES = (("src", "dst", "Src", "Dst"), ("srcport", "dstport", "Src Port", "Dst Port"))
"""Fields a layer's label names, as Wireshark's `Internet Protocol Version 4, Src: .., Dst: ..`."""


@dataclass(frozen=True, slots=True)
class NodeField:
    """What a node shows: the filter name of its field and the value, for `+` and `a`."""

    abbrev: str
    value: object
    info: FieldInfo | None


def bit_pattern(bit: int, width: int, value: int) -> str:
    """Wireshark's picture of one bit in a field `width` bits wide: `.... ...1` (set) or
    `.... ...0` (clear) for bit 0x01 of a byte."""
    chars = [("1" if value & bit else "0") if 1 << k == bit else "." for k in range(width - 1, -1, -1)]
    return " ".join("".join(chars[i : i + 4]) for i in range(0, width, 4))


def filter_value(node: NodeField) -> str:
    """The value as a display filter writes it: hex for hex-based fields (`0x1234abcd`), strings
    quoted, addresses bare, booleans as 1 and 0 (Wireshark's "Apply as Filter")."""
    value, info = node.value, node.info
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return f"0x{value:x}" if info is not None and info.base == "hex" else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex(":")
    text = str(value)
    if info is not None and info.type in ("ipv4", "ipv6", "ether"):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class DetailTree(Tree[Span]):
    """Layers as Wireshark shows them; each node's data is its byte span in the frame (or None)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("plus", "add_column", "Add as column", show=False),
        Binding("a", "apply_filter", "Apply as filter", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g,home", "scroll_home", "First", show=False),
        Binding("G,end", "scroll_end", "Last", show=False),
    ]

    class AddColumn(Message):
        """`+`: show the selected field as a packet-list column."""

        def __init__(self, field: str) -> None:
            super().__init__()
            self.field = field

    class ApplyFilter(Message):
        """`a`: filter on the selected field's value (`http2.type == 1`), or on its presence for
        a protocol or a field without a value."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, label: str, *, registry: Registry | None = None, **kwargs: object) -> None:
        super().__init__(label, **kwargs)  # type: ignore[arg-type]
        self.registry = registry
        """Where plugin decoders' fields are declared (the in-tree ones are known without it)."""
        self._fields: dict[int, NodeField] = {}

    def note(self, text: str) -> None:
        """No packet's detail, a line saying why."""
        self.clear()
        self._fields = {}
        self.root.set_label(literal(text))
        self.root.data = None

    def show(self, detail: PacketDetail) -> None:
        self.clear()
        self._fields = {}
        root = self.root
        root.set_label(literal(f"Frame {detail.index + 1}: {len(detail.frame)} bytes captured"))
        root.data = (0, len(detail.frame))
        self._note(root, "frame", None)
        for layer in detail.layers:
            layer_span: Span = (layer.start, layer.end)
            node = root.add(
                literal(self._layer_label(layer.name, layer.fields)), data=layer_span, expand=False
            )
            self._note(node, layer.name, None)
            for name, value in layer.fields.items():
                self._field(node, name, value, layer_span)
        for k, pdu in enumerate(detail.pdus):
            # A TCP PDU may begin in earlier segments: its nodes highlight the bytes in this one.
            span = detail.frame_span(k, pdu.span)
            info = field_info(pdu.protocol, self.registry)
            title = info.name if info is not None else pdu.protocol.upper()
            node = root.add(
                literal(title + (f": {pdu.summary}" if pdu.summary else "")), data=span, expand=True
            )
            self._note(node, pdu.protocol, None)
            self._fields_of(node, pdu.fields, partial(detail.frame_span, k))
            for f in pdu.findings:
                node.add_leaf(literal(f"[{f.severity}] {f.code}: {f.message}", "bold yellow"), data=span)
        for f in detail.findings:
            if not any(f in p.findings for p in detail.pdus):
                root.add_leaf(literal(f"[{f.severity}] {f.code}: {f.message}", "bold yellow"))
        root.expand()

    def selected_field(self) -> str | None:
        """The filter name of the field under the cursor (`http2.type`), None on a node that is no
        field (a finding, a message's decoded content)."""
        found = self._selected()
        return None if found is None else found.abbrev

    def selected_filter(self) -> str | None:
        """A display filter that matches the selected field's value, as Wireshark's "Apply as
        Filter" writes it: `http2.type == 1`, `ip.src == 127.0.0.1`, `http2` for a protocol."""
        found = self._selected()
        if found is None:
            return None
        if found.value is None or (found.info is not None and found.info.type == "protocol"):
            return found.abbrev
        return f"{found.abbrev} == {filter_value(found)}"

    def action_add_column(self) -> None:
        name = self.selected_field()
        if name is not None:
            self.post_message(self.AddColumn(name))

    def action_apply_filter(self) -> None:
        text = self.selected_filter()
        if text is not None:
            self.post_message(self.ApplyFilter(text))

    # -- building --------------------------------------------------------------------------------

    def _selected(self) -> NodeField | None:
        node = self.cursor_node
        return None if node is None else self._fields.get(node.id)

    def _note(self, node: TreeNode[Span], abbrev: str, value: object) -> None:
        self._fields[node.id] = NodeField(abbrev, value, field_info(abbrev, self.registry))

    def _layer_label(self, layer: str, fields: Mapping[str, object]) -> str:
        info = field_info(layer, self.registry)
        label = info.name if info is not None else layer.upper()
        for src, dst, src_label, dst_label in SIDES:
            a, b = fields.get(f"{layer}.{src}"), fields.get(f"{layer}.{dst}")
            if a is not None and b is not None:
                label += f", {src_label}: {a}, {dst_label}: {b}"
        return label

    def _field(self, node: TreeNode[Span], name: str, value: object, span: Span) -> TreeNode[Span]:
        """One field's node (with a child per flag bit, as Wireshark draws a bitmask)."""
        label, text = display(name, value, self.registry)
        info = field_info(name, self.registry)
        number = value if isinstance(value, int) and not isinstance(value, bool) else None
        if info is not None and info.bits and number is not None:
            child = node.add(literal(f"{label}: {text}"), data=span, expand=False)
            width = 4 * max(2, (max(info.bits).bit_length() + 3) // 4)
            for bit, bit_name in sorted(info.bits.items(), reverse=True):
                own = f"{name}.{bit_name.lower()}"
                own_info = field_info(own, self.registry)
                shown = own_info.name if own_info is not None else bit_name.replace("_", " ").title()
                line = f"{bit_pattern(bit, width, number)} = {shown}: {bool(number & bit)}"
                leaf = child.add_leaf(literal(line), data=span)
                if own_info is not None:  # the bit's own field (tcp.flags.syn), else the mask's
                    self._note(leaf, own, bool(number & bit))
                else:
                    self._note(leaf, name, number)
        else:
            child = node.add_leaf(literal(f"{label}: {text}"), data=span)
        self._note(child, name, value)
        return child

    def _fields_of(
        self, node: TreeNode[Span], fields: Sequence[Field], where: Callable[[tuple[int, int]], Span]
    ) -> None:
        for f in fields:
            span = where(f.span)
            if f.children:
                label, text = display(f.name, f.value, self.registry)
                child = node.add(literal(f"{label}: {text}"), data=span, expand=False)
                self._note(child, f.name, f.value)
                self._fields_of(child, f.children, where)
            else:
                self._field(node, f.name, f.value, span)


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


SSRC_KEYS = frozenset({"ssrc", "ssrcs"})
"""Report keys whose integers are SSRCs: shown in hex as Wireshark shows them (`0x7f09553e`)."""


def json_tree(node: TreeNode[Span], value: object, label: str = "", report: bool = False) -> None:
    """A JSON-like value (a decoded message, metadata, a report row) as tree nodes, shown
    literally; in a report's row (`report`), SSRCs in hex."""
    if isinstance(value, dict):
        child = node.add(literal(label or "{}"), expand=True) if label else node
        for k, v in value.items():
            json_tree(child, v, str(k), report)
    elif isinstance(value, list):
        child = node.add(literal(f"{label} [{len(value)}]"), expand=True)
        hex_items = report and label in SSRC_KEYS
        for i, v in enumerate(value):
            json_tree(child, (ssrc_hex(v) if hex_items else None) or v, f"[{i}]", report)
    else:
        if report and label in SSRC_KEYS:
            value = ssrc_hex(value) or value
        node.add_leaf(literal(f"{label}: {clean(value)}" if label else clean(value)))
