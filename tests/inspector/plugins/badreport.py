"""A third-party analysis that misbehaves on demand, for tests/inspector/test_plugin_guests.py:
the environment variable PROTOSCOPE_BADREPORT names a method and what it does there
("feed:loop", "rows:exit", "rows:bad", "start:raise", ...); otherwise it counts the PDUs it is fed."""

from __future__ import annotations

import os
from typing import ClassVar

from protoscope.decoders.api import FlowContext, Pdu

from .misbehave import act


def _misbehave(method: str) -> str:
    hook, _, what = os.environ.get("PROTOSCOPE_BADREPORT", "").partition(":")
    if hook == method:
        act(what)
        return what
    return ""


class BadReport:
    name: ClassVar[str] = "badreport"

    def __init__(self) -> None:
        _misbehave("start")
        self.pdus = 0

    def feed(self, pdu: Pdu, ctx: FlowContext) -> None:
        _misbehave("feed")
        self.pdus += 1

    def rows(self) -> list[dict[str, object]]:
        if _misbehave("rows") == "bad":
            return "not rows"  # type: ignore[return-value]
        return [{"pdus": self.pdus}]
