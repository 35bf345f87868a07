"""The viewer's dialogs: Find packet, Go to packet, Decode As and Export.

Each is a modal screen that returns what the user chose (None on Esc) and does nothing itself:
the app searches, moves the cursor, re-decodes or writes the file. A dialog keeps its own keys
while it is shown and checks its input before it closes, saying what is wrong on its last line,
so a bad entry never reaches the app. All fit an 80x24 terminal.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Label, OptionList, RadioButton, RadioSet, Static
from textual.widgets.option_list import Option

from protoscope.decoders.registry import DecodeAs, Registry, RegistryError

from ..find import KINDS, WHERE, FindKind, FindQuery, check_query
from .text import literal

DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 76; max-width: 100%; height: auto; max-height: 100%;
    border: round $accent; background: $panel; padding: 0 1;
}}
{name} .title {{ text-style: bold; width: 1fr; }}
{name} .hint {{ color: $text-muted; width: 1fr; }}
{name} .problem {{ color: $error; width: 1fr; height: auto; }}
{name} RadioSet {{ layout: horizontal; width: 1fr; height: auto; border: none; padding: 0; }}
{name} RadioButton {{ width: auto; }}
{name} Input {{ width: 1fr; }}
"""


DIALOG_TEXT = 72
"""Cells of text a dialog line holds: its width (76) less its border and padding."""


def _dialog_css(name: str) -> str:
    return DIALOG_CSS.format(name=name)


class FindScreen(ModalScreen[FindQuery | None]):
    """Wireshark's Find Packet: a string or hex bytes in the packet bytes, a regex over the Info
    column and the packet details, or a display filter. Enter searches; the app's n / N then
    find the next and previous match with the query this returns."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("alt+s", "kind('string')", "String", show=False),
        Binding("alt+h", "kind('hex')", "Hex", show=False),
        Binding("alt+r", "kind('regex')", "Regex", show=False),
        Binding("alt+f", "kind('filter')", "Filter", show=False),
        Binding("alt+c", "toggle_case", "Case sensitive", show=False),
        Binding("ctrl+f", "focus_text", "Find text", show=False),
    ]
    DEFAULT_CSS = _dialog_css("FindScreen")
    LABELS: ClassVar[dict[FindKind, str]] = {
        "string": "String",
        "hex": "Hex",
        "regex": "Regex",
        "filter": "Filter",
    }
    PLACEHOLDERS: ClassVar[dict[FindKind, str]] = {
        "string": "text in the packet bytes, e.g. grpc-status",
        "hex": "bytes, e.g. 50:52:49 or 505249",
        "regex": r"e.g. HEADERS\[\d+\]: POST /pkg\.Svc/",
        "filter": "e.g. grpc.status != 0",
    }

    def __init__(self, query: FindQuery | None = None, registry: Registry | None = None) -> None:
        super().__init__()
        self.initial = query or FindQuery("string", "")
        """The last query (n / N repeat it): the dialog opens on it."""
        self.registry = registry
        """The run's decoders: a filter's fields are checked against theirs."""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Find packet", classes="title")
            with RadioSet(id="find-kind"):
                for kind in KINDS:
                    yield RadioButton(self.LABELS[kind], value=kind == self.initial.kind, id=f"find-{kind}")
            yield Input(self.initial.text, placeholder=self.PLACEHOLDERS[self.initial.kind], id="find-text")
            yield Checkbox("Case sensitive", self.initial.case, id="find-case")
            yield Label("", id="find-where", classes="hint")
            yield Label(
                "Enter find · Tab field · ←→/Alt+S H R F kind · Alt+C case · Esc close",
                classes="hint",
            )
            yield Label("", id="find-problem", classes="problem")

    def on_mount(self) -> None:
        self._show_kind()
        self.query_one("#find-text", Input).focus()

    @property
    def kind(self) -> FindKind:
        pressed = self.query_one(RadioSet).pressed_button
        if pressed is None or pressed.id is None:
            return self.initial.kind
        return _kind(pressed.id.removeprefix("find-"))

    def query_value(self) -> FindQuery:
        """The query as the dialog stands."""
        return FindQuery(
            self.kind, self.query_one("#find-text", Input).value, self.query_one("#find-case", Checkbox).value
        )

    def _show_kind(self) -> None:
        kind = self.kind
        self.query_one("#find-where", Label).update(f"searches the {WHERE[kind]}")
        self.query_one("#find-text", Input).placeholder = self.PLACEHOLDERS[kind]
        self.query_one("#find-case", Checkbox).disabled = kind in ("hex", "filter")
        self.query_one("#find-problem", Label).update("")

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        event.stop()
        self._show_kind()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_find()

    def action_find(self) -> None:
        query = self.query_value()
        problem = check_query(query, self.registry)
        if problem is not None:
            self.query_one("#find-problem", Label).update(literal(problem))
            return
        self.dismiss(query)

    def action_kind(self, kind: str) -> None:
        self.query_one(f"#find-{_kind(kind)}", RadioButton).value = True

    def action_toggle_case(self) -> None:
        case = self.query_one("#find-case", Checkbox)
        if not case.disabled:
            case.toggle()

    def action_focus_text(self) -> None:
        self.query_one("#find-text", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)


def _kind(text: str) -> FindKind:
    for kind in KINDS:
        if kind == text:
            return kind
    raise ValueError(f"unknown kind of find {text!r}")


class GoToScreen(ModalScreen[int | None]):
    """Wireshark's Go to Packet: returns the frame number typed (1-based, as the No. column
    shows it) once it is one of the capture's `frames`."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = _dialog_css("GoToScreen")

    def __init__(self, frames: int, current: int | None = None) -> None:
        super().__init__()
        self.frames = frames
        self.current = current
        """The frame the cursor is on (1-based), shown in the input to start from."""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Go to packet", classes="title")
            yield Input(
                "" if self.current is None else str(self.current),
                placeholder=f"frame number, 1 to {self.frames}",
                id="goto-frame",
                restrict=r"[0-9]*",
                max_length=len(str(max(self.frames, 1))) + 1,
            )
            yield Label(f"Enter go · Esc cancel · frames 1 to {self.frames}", classes="hint")
            yield Label("", id="goto-problem", classes="problem")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        problem = self.problem(text)
        if problem is not None:
            self.query_one("#goto-problem", Label).update(problem)
            return
        self.dismiss(int(text))

    def problem(self, text: str) -> str | None:
        """Why `text` is not a frame of this capture, or None when it is."""
        if not text:
            return "type a frame number"
        if not text.isdigit():
            return f"{text!r} is not a frame number"
        if not 1 <= int(text) <= self.frames:
            return f"no frame {int(text)}: the capture has frames 1 to {self.frames}"
        return None

    def action_cancel(self) -> None:
        self.dismiss(None)


class DecodeAsScreen(ModalScreen[list[str] | None]):
    """Wireshark's Decode As: rules in the form of `-d` (`tcp.port==50051,http2`), each checked by
    the registry's own parser and against the decoders loaded. Returns the whole list of rules
    (the app re-decodes with them) or None when nothing is to change."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "apply", "Apply"),
        Binding("delete", "remove", "Remove rule"),
    ]
    DEFAULT_CSS = (
        _dialog_css("DecodeAsScreen")
        + """
    DecodeAsScreen OptionList { height: auto; max-height: 8; min-height: 3; width: 1fr; }
    """
    )

    def __init__(self, rules: Sequence[str], decoders: Sequence[str]) -> None:
        super().__init__()
        self.rules = list(rules)
        self.decoders = sorted(decoders)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Decode As", classes="title")
            yield OptionList(id="decode-as-rules")
            yield Input(
                placeholder="e.g. tcp.port==50051,http2 or udp.port==5000-5010,rtp", id="decode-as-rule"
            )
            names = f"decoders: {', '.join(self.decoders) or 'none loaded'}"
            # wrapped here at the dialog's width: a line the widget wrapped would read as cut
            yield Static(
                Text("\n").join(literal(line) for line in textwrap.wrap(names, DIALOG_TEXT)), classes="hint"
            )
            yield Label(
                "Enter add · empty Enter or Ctrl+S apply · Esc cancel",
                classes="hint",
            )
            yield Label("Tab to the rules: ↑↓ pick one, Del removes it (the last if none)", classes="hint")
            yield Label("", id="decode-as-problem", classes="problem")

    def on_mount(self) -> None:
        self._fill()
        self.query_one(Input).focus()

    def _fill(self) -> None:
        rules = self.query_one(OptionList)
        rules.clear_options()
        if self.rules:
            rules.add_options(Option(literal(rule)) for rule in self.rules)
        else:
            rules.add_option(Option("no rules: decoders are chosen by port and heuristics", disabled=True))

    def problem(self, text: str) -> str | None:
        """Why `text` is not a rule this run can use, or None when it is."""
        try:
            rule = DecodeAs.parse(text)
        except RegistryError as exc:
            return str(exc)
        if rule.protocol not in self.decoders:
            return f"no decoder {rule.protocol!r}: choose one of {', '.join(self.decoders) or 'none'}"
        return None

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip().replace(" ", "")
        if not text:
            self.action_apply()
            return
        problem = self.problem(text)
        if problem is not None:
            self.query_one("#decode-as-problem", Label).update(literal(problem))
            return
        if text not in self.rules:
            self.rules.append(text)
        event.input.value = ""
        self.query_one("#decode-as-problem", Label).update("")
        self._fill()

    def action_remove(self) -> None:
        """Del in the list: the highlighted rule, or (none highlighted yet, as after Tab) the
        last one."""
        rules = self.query_one(OptionList)
        if not rules.has_focus or not self.rules:
            return
        at = rules.highlighted if rules.highlighted is not None else len(self.rules) - 1
        del self.rules[min(at, len(self.rules) - 1)]
        self._fill()
        if self.rules:
            rules.highlighted = min(len(self.rules) - 1, at)

    def action_apply(self) -> None:
        self.dismiss(list(self.rules))

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True, slots=True)
class ExportChoice:
    """Where to write and what: `which` is one of the choices offered ("displayed", "marked",
    "all", "json", ...)."""

    path: str
    which: str


class ExportScreen(ModalScreen[ExportChoice | None]):
    """Export: what to write (one of `choices`) and where (the path prefilled with
    `default_path`). A path that exists must be confirmed with a second Enter; a folder that does
    not exist is refused."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        # from the path box (the choices' own ↑↓ ←→ move them when they have the focus)
        Binding("up", "choose(-1)", "Previous choice", show=False),
        Binding("down", "choose(1)", "Next choice", show=False),
    ]
    DEFAULT_CSS = (
        _dialog_css("ExportScreen")
        + """
    ExportScreen RadioSet { layout: vertical; }
    """
    )
    LABELS: ClassVar[dict[str, str]] = {
        "displayed": "Displayed packets",
        "marked": "Marked packets",
        "all": "All packets",
        "json": "JSON report",
    }

    def __init__(self, default_path: str, choices: list[str]) -> None:
        super().__init__()
        if not choices:
            raise ValueError("ExportScreen needs at least one choice")
        self.default_path = default_path
        self.choices = list(choices)
        self._confirm: str | None = None
        """A path that exists, shown once: a second Enter on it overwrites it."""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Export", classes="title")
            with RadioSet(id="export-which"):
                for n, choice in enumerate(self.choices):
                    label = self.LABELS.get(choice, choice)
                    yield RadioButton(literal(label), value=n == 0, id=f"export-{n}")
            yield Input(self.default_path, placeholder="file to write", id="export-path")
            what = " · ↑↓ what" if len(self.choices) > 1 else ""
            yield Label(f"Enter write{what} · Tab next field · Esc cancel", classes="hint")
            yield Label("", id="export-problem", classes="problem")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @property
    def which(self) -> str:
        pressed = self.query_one(RadioSet).pressed_index
        return self.choices[pressed if 0 <= pressed < len(self.choices) else 0]

    def action_choose(self, step: int) -> None:
        """↑↓ in the path box: the previous or next choice of what to write."""
        buttons = list(self.query(RadioButton).results(RadioButton))
        now = next((n for n, b in enumerate(buttons) if b.value), 0)
        buttons[(now + step) % len(buttons)].value = True

    def problem(self, path: str) -> str | None:
        """Why nothing can be written at `path`, or None."""
        if not path:
            return "type the path of the file to write"
        target = Path(path).expanduser()
        if target.is_dir():
            return f"{path} is a folder: name a file in it"
        if not target.parent.is_dir():
            return f"no folder {target.parent}"
        return None

    def on_input_changed(self, event: Input.Changed) -> None:
        self._confirm = None
        self.query_one("#export-problem", Label).update("")

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        event.stop()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        path = event.value.strip()
        label = self.query_one("#export-problem", Label)
        problem = self.problem(path)
        if problem is not None:
            label.update(literal(problem))
            return
        if Path(path).expanduser().exists() and self._confirm != path:
            self._confirm = path
            label.update(literal(f"{path} exists: Enter again to overwrite it"))
            return
        self.dismiss(ExportChoice(str(Path(path).expanduser()), self.which))

    def action_cancel(self) -> None:
        self.dismiss(None)
