"""The detail tree, driven by Pilot on captures/samples/grpc-demo.pcap: values named as Wireshark
names them, flag bits as children, spans for the hex view, and `+` / `a` posting the selected
field for the app (a column, a filter)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from textual.app import App, ComposeResult
from textual.widgets.tree import TreeNode

from protoscope.decoders.registry import load_registry
from protoscope.inspector.model import CaptureModel, PacketDetail
from protoscope.inspector.session import Session
from protoscope.inspector.tui.detail import DetailTree, NodeField, bit_pattern, filter_value
from tests.conftest import SAMPLES

DEMO = SAMPLES / "grpc-demo.pcap"


class Host(App[None]):
    """The tree alone, with the messages it posts kept."""

    def __init__(self) -> None:
        super().__init__()
        self.posted: list[object] = []

    def compose(self) -> ComposeResult:
        yield DetailTree("packet", id="detail")

    def on_detail_tree_add_column(self, message: DetailTree.AddColumn) -> None:
        self.posted.append(("column", message.field))

    def on_detail_tree_apply_filter(self, message: DetailTree.ApplyFilter) -> None:
        self.posted.append(("filter", message.text))


def detail(frame: int) -> PacketDetail:
    session = Session.open(DEMO, load_registry())
    return CaptureModel(session).detail(frame - 1)


def nodes(node: TreeNode[Any]) -> Iterator[TreeNode[Any]]:
    yield node
    for child in node.children:
        yield from nodes(child)


def find(tree: DetailTree, label: str) -> TreeNode[Any]:
    return next(n for n in nodes(tree.root) if str(n.label) == label)


async def select(pilot: Any, tree: DetailTree, node: TreeNode[Any]) -> None:
    """Put the cursor on `node`, opening the nodes above it (the tree lays out its lines on the
    next refresh)."""
    parent = node.parent
    while parent is not None:
        parent.expand()
        parent = parent.parent
    await pilot.pause()
    tree.move_cursor(node)
    await pilot.pause()


async def test_values_are_named_and_flags_have_bit_children() -> None:
    app = Host()
    async with app.run_test(size=(120, 40)) as pilot:
        tree = app.query_one(DetailTree)
        tree.show(detail(10))  # HEADERS[1] POST /demo.Directory/Get, WINDOW_UPDATE, DATA, ...
        await pilot.pause()
        labels = [str(n.label) for n in nodes(tree.root)]
        assert "Type: IPv4 (0x0800)" in labels
        assert "Internet Protocol Version 4, Src: 127.0.0.1, Dst: 127.0.0.1" in labels
        assert "Transmission Control Protocol, Src Port: 40450, Dst Port: 47051" in labels
        assert "Protocol: TCP (6)" in labels
        assert "HyperText Transfer Protocol 2: HEADERS[1]: POST /demo.Directory/Get" in labels
        assert "Type: HEADERS (1)" in labels
        flags = find(tree, "Flags: 0x04 END_HEADERS")
        assert [str(c.label) for c in flags.children] == [
            "..0. .... = Priority: False",
            ".... 0... = Padded: False",
            ".... .1.. = End Headers: True",
            ".... ...0 = End Stream: False",
        ]
        # Each node keeps the bytes it came from: the frame header's type byte, the flags byte.
        headers = find(tree, "HyperText Transfer Protocol 2: HEADERS[1]: POST /demo.Directory/Get")
        assert headers.data is not None
        start = headers.data[0]
        assert find(tree, "Type: HEADERS (1)").data == (start + 3, start + 4)
        assert flags.data == (start + 4, start + 5)
        assert all(c.data == flags.data for c in flags.children)
        tcp_flags = find(tree, "Flags: 0x018 PSH, ACK")
        assert ".... ...1 .... = ACK: True" in [str(c.label) for c in tcp_flags.children]


async def test_plus_and_a_post_the_selected_field() -> None:
    app = Host()
    async with app.run_test(size=(120, 40)) as pilot:
        tree = app.query_one(DetailTree)
        tree.show(detail(10))
        await pilot.pause()
        tree.focus()
        await select(pilot, tree, find(tree, "Type: HEADERS (1)"))
        assert tree.selected_field() == "http2.type"
        await pilot.press("plus", "a")
        await pilot.pause()
        assert app.posted == [("column", "http2.type"), ("filter", "http2.type == 1")]
        app.posted.clear()
        await select(pilot, tree, find(tree, "Source Address: 127.0.0.1"))
        await pilot.press("a")
        await select(pilot, tree, find(tree, "Path: /demo.Directory/Get"))
        await pilot.press("a")
        await select(
            pilot, tree, find(tree, "HyperText Transfer Protocol 2: HEADERS[1]: POST /demo.Directory/Get")
        )
        await pilot.press("a")
        tcp_flags = find(tree, "Flags: 0x018 PSH, ACK")
        await select(
            pilot, tree, next(c for c in tcp_flags.children if str(c.label).endswith("= SYN: False"))
        )
        await pilot.press("a")
        await pilot.pause()
        assert app.posted == [
            ("filter", "ip.src == 127.0.0.1"),
            ("filter", 'http2.headers.path == "/demo.Directory/Get"'),
            ("filter", "http2"),
            ("filter", "tcp.flags.syn == 0"),
        ]
        await select(pilot, tree, tree.root)
        assert tree.selected_field() == "frame"


async def test_findings_are_no_field() -> None:
    app = Host()
    async with app.run_test(size=(120, 40)) as pilot:
        tree = app.query_one(DetailTree)
        d = detail(10)
        tree.show(d)
        await pilot.pause()
        leaf = tree.root.add_leaf("a node that is no field")
        await select(pilot, tree, leaf)
        assert tree.selected_field() is None and tree.selected_filter() is None
        await pilot.press("plus", "a")
        assert app.posted == []


def test_bit_pattern_and_filter_values() -> None:
    assert bit_pattern(0x01, 8, 0x05) == ".... ...1"
    assert bit_pattern(0x20, 8, 0x05) == "..0. ...."
    assert bit_pattern(0x010, 12, 0x018) == ".... ...1 ...."
    assert filter_value(NodeField("rtp.ssrc", 0x1234ABCD, None)) == "305441741"
    from protoscope.inspector.fields import field_info

    assert filter_value(NodeField("eth.type", 0x0800, field_info("eth.type"))) == "0x800"
    assert filter_value(NodeField("x", 'a "b" \\', None)) == '"a \\"b\\" \\\\"'
    assert filter_value(NodeField("x", True, None)) == "1"
