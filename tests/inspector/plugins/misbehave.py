"""A third-party decoder that misbehaves on demand, for tests/inspector/test_plugin_guests.py.

It takes UDP datagrams that start with b"PS:" (port 9999). The rest of a datagram names what its
`decode` (or, for the names that start with "sniff_", its `sniff`) does: b"PS:ok" decodes well,
b"PS:loop" loops for ever, b"PS:pdu_str" returns a str among its PDUs, ... (see ACTIONS and
RESULTS). `new_state`, `configure` and the import do what the environment variable
PROTOSCOPE_MISBEHAVE says: "new_state:exit", "import:loop", ...
"""

from __future__ import annotations

import os
import signal
import time
from typing import ClassVar, Literal

from protoscope.decoders.api import (
    DecodeResult,
    Expect,
    Field,
    Finding,
    FlowContext,
    InnerPayload,
    LazyFields,
    Pdu,
)


def act(what: str) -> None:
    """Misbehave as `what` says; return for anything else."""
    if what == "raise":
        raise ValueError("misbehaving on purpose")
    if what == "exit":
        raise SystemExit(3)
    if what == "interrupt":
        raise KeyboardInterrupt
    if what == "loop":
        while True:
            pass
    if what == "sleep":
        time.sleep(3600)
    if what == "ctrl_c":  # the user presses Ctrl+C while the decoder runs
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(3600)


ACTIONS = ("raise", "exit", "interrupt", "loop", "sleep", "ctrl_c")

hook, _, what = os.environ.get("PROTOSCOPE_MISBEHAVE", "").partition(":")
if hook == "import":
    act(what)


def _ok(data: bytes) -> DecodeResult:
    field = Field("misbehave.what", bytes(data[3:]).decode(), (3, len(data)))
    return DecodeResult((Pdu("misbehave", (field,), (0, len(data)), "ok"),), len(data))


def _cycle() -> list[object]:
    cycle: list[object] = []
    cycle.append(cycle)
    return cycle


def _broken_lazy() -> list[Field]:
    raise ZeroDivisionError("a lazy detail tree that fails")


RESULTS = {
    "not_result": lambda n: None,
    "pdu_str": lambda n: DecodeResult(("a PDU",), n),
    "finding_str": lambda n: DecodeResult(findings=("a finding",), consumed=n),
    "inner_str": lambda n: DecodeResult(inner=("inner",), consumed=n),
    "consumed_str": lambda n: DecodeResult(consumed="3"),
    "need_float": lambda n: DecodeResult(need=1.5),
    "consumed_big": lambda n: DecodeResult(consumed=n + 1),
    "span_out": lambda n: DecodeResult((Pdu("misbehave", (), (0, n + 100)),), n),
    "severity_bad": lambda n: DecodeResult(findings=(Finding("fatal", "m.x", "m"),), consumed=n),  # type: ignore[arg-type]
    "field_cycle": lambda n: DecodeResult((Pdu("misbehave", (Field("m.v", _cycle(), (0, n)),), (0, n)),), n),
    "inner_offset": lambda n: DecodeResult(inner=(InnerPayload(b"x", n + 1),), consumed=n),
    "expect_port": lambda n: DecodeResult(
        (Pdu("misbehave", (), (0, n), expect=(Expect("udp", "10.0.0.1", 70000, "rtp"),)),), n
    ),
    "lazy_raises": lambda n: DecodeResult((Pdu("misbehave", LazyFields(_broken_lazy), (0, n)),), n),
}
"""Bad results by name (each given the length of the data)."""


class Misbehave:
    name: ClassVar[str] = "misbehave"
    transport: ClassVar[Literal["datagram"]] = "datagram"
    ports: ClassVar[frozenset[tuple[str, int]]] = frozenset({("udp", 9999)})

    def configure(self, options: object) -> None:
        hook, _, what = os.environ.get("PROTOSCOPE_MISBEHAVE", "").partition(":")
        if hook == "configure":
            act(what)

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        if data.startswith(b"PS:sniff_"):
            act(bytes(data[9:]).decode())
        return data.startswith(b"PS:")

    def new_state(self) -> object:
        hook, _, what = os.environ.get("PROTOSCOPE_MISBEHAVE", "").partition(":")
        if hook == "new_state":
            act(what)
        return None

    def decode(self, data: bytes, state: object, ctx: FlowContext) -> DecodeResult:
        what = bytes(data[3:]).decode()
        act(what)
        bad = RESULTS.get(what)
        return bad(len(data)) if bad is not None else _ok(data)  # type: ignore[no-any-return]
