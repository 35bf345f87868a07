"""The `?` help: every key of every view, as a table the tests press one by one, and the box that
shows it."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP_WIDTH = 75
"""Cells a help line may take: 80 columns less the box's border, padding and scrollbar."""

# The keys of every view, shown by `?` and tested one by one (tests/inspector/tui/test_keys.py).
HELP_KEYS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Everywhere",
        (
            ("q", "quit"),
            ("?", "this help (↑↓ PgUp PgDn scroll, Esc closes)"),
            ("Tab Shift+Tab", "next / previous pane (the flows pane too)"),
            ("p c s w", "packets, gRPC calls, RTP streams, WebRTC sessions"),
            ("D", "WebRTC data channels (their messages: Enter)"),
            ("t f i", "timeline, findings, statistics"),
            ("l", "ladder of the selected call, session, stream, flow"),
            ("I", "NAT/ICE of the session (Enter on a session too)"),
            ("/", "display filter bar"),
            ("e", "export the view (asks the path)"),
            ("Esc", "back: all packets; stop loading"),
            ("Ctrl+P", "palette: go to frame / flow / call, saved filters"),
            ("Ctrl+P", '"go to call …" without a number: the first (frame: asks)'),
            ("Ctrl+E", "live capture: pause / resume"),
            ("\\", "layout: list / list + detail / list + detail + hex"),
            ("z", "zoom the focused pane / back"),
            ("F", "follow the packet's flow (in Calls: the call)"),
            ("Ctrl+F", "find: a string, hex bytes, a regex, a filter"),
            ("n N", "find next / previous"),
            ("Ctrl+G", "go to packet"),
            ("d", "decode as (-d rules: tcp.port==50051,http2)"),
            ("y", "copy the call as a grpcurl command (Calls)"),
        ),
    ),
    (
        "Packet list",
        (
            ("↑↓ j k", "move"),
            ("PgUp PgDn Space Ctrl+B", "page"),
            ("g G Home End", "first / last packet"),
            ("Enter", "to the detail tree"),
            ("← →", "scroll sideways"),
            ("m", "mark / unmark the packet"),
            ("T", "cycle the time format"),
            ("Ctrl+T", "time reference on / off"),
            ("C", "colouring on / off"),
            ("[ ]", "select a column"),
            ("{ }", "move it"),
            ("-", "hide it"),
            ("=", "reset the columns: Wireshark's seven again (added fields stay)"),
            ("o", "sort by it: ascending, descending, frame order"),
        ),
    ),
    (
        "Detail tree",
        (
            ("+", "add the selected field as a column"),
            ("a", "apply the selected field as a filter"),
        ),
    ),
    (
        "Filter bar",
        (
            ("Tab", "complete a field name"),
            ("↑↓", "walk the filter history"),
            ("Enter", "apply (and remember)"),
            ("Esc", "clear, all packets"),
        ),
    ),
    ("Lists, tables and trees", (("↑↓ j k g G PgUp PgDn", "move"), ("Enter", "open"))),
    (
        "Statistics",
        (
            ("1 2 3 4 5", "hierarchy, endpoints, conversations, I/O, gRPC"),
            ("v", "address layer (Ethernet, IPv4, IPv6, TCP, UDP)"),
            ("o", "sort by the column"),
            ("+ - u", "I/O graph: finer, coarser interval; packets/bytes"),
            ("x", "I/O graph: remove the last filter line"),
            ("a", "I/O graph: add a filter line (type it, Enter)"),
        ),
    ),
    (
        "Ladder",
        (
            ("← →", "scroll sideways"),
            ("e", "export it as Mermaid (--export mermaid --flow N too)"),
            ("Esc q l", "close"),
        ),
    ),
    ("Follow stream", (("a h r", "ASCII, hex dump, raw"), ("Esc q", "close"))),
    ("NAT/ICE panel", (("j k g G PgUp PgDn", "scroll"), ("Esc q I", "close"))),
    (
        "Timeline",
        (
            ("← → < >", "pan"),
            ("+ -", "zoom in / out"),
            ("0", "the whole capture"),
            ("↑↓ j k g G", "select a flow's lane (l draws its ladder)"),
        ),
    ),
)


def help_text() -> str:
    """HELP_KEYS as lines that fit 80 columns with the box (a key column of 25 cells, then what
    it does: HELP_WIDTH cells at most)."""
    lines = ["protoscope keys", ""]
    for section, keys in HELP_KEYS:
        lines.append(section)
        lines += [f"  {key:<23}{what}" for key, what in keys]
        lines.append("")
    lines.append("Capture text is shown literally: no markup; control, bidi and other")
    lines.append("format characters are escaped (\\x1b, \\u202e).")
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    """Every key of every view, in a box that fits 80 columns and scrolls."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close"),
        Binding("j", "scroll('down')", "Down", show=False),
        Binding("k", "scroll('up')", "Up", show=False),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 100%; max-width: 84; height: 100%; max-height: 40;
        border: round $accent; padding: 0 1; background: $panel; scrollbar-size-vertical: 1;
    }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text(help_text()), id="help-text")  # our text: no capture bytes in it

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()

    def action_scroll(self, where: str) -> None:
        scroll = self.query_one(VerticalScroll)
        scroll.scroll_down() if where == "down" else scroll.scroll_up()
