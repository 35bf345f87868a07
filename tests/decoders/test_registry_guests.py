"""The guest boundary's parts: `call_guest` (what a guest raises, a hang, the user's Ctrl+C, in the
main thread and in others) and `checked_result` (the plugin contract checked)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from protoscope.decoders import registry
from protoscope.decoders.api import (
    ContractError,
    DecodeResult,
    Field,
    Finding,
    InnerPayload,
    LazyFields,
    Pdu,
    checked_result,
)
from protoscope.decoders.registry import GuestFailure, call_guest, stop_guard


@pytest.fixture(autouse=True)
def quick_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(registry, "GUARD_TICK", 0.02)
    yield
    stop_guard()


def loop() -> None:
    while True:
        pass


def failure(fn: Any, *args: Any, budget: float = 0.3) -> GuestFailure:
    with pytest.raises(GuestFailure) as caught:
        call_guest(budget, fn, *args)
    return caught.value


# -- call_guest ----------------------------------------------------------------------------------


def test_a_call_that_behaves_gives_its_value() -> None:
    assert call_guest(1.0, divmod, 7, 2) == (3, 1)


def raise_(exc: BaseException) -> None:
    raise exc


@pytest.mark.parametrize(
    ("exc", "detail"),
    [
        (ValueError("nope"), "raised ValueError: nope"),
        (SystemExit(3), "raised SystemExit: 3"),
        (KeyboardInterrupt(), "raised KeyboardInterrupt"),
        (GeneratorExit(), "raised GeneratorExit"),
    ],
)
def test_whatever_a_guest_raises_is_contained(exc: BaseException, detail: str) -> None:
    got = failure(raise_, exc)
    assert (got.kind, got.detail) == ("exception", detail)


@pytest.mark.parametrize("hang", [loop, lambda: time.sleep(60)])
def test_a_hang_in_the_main_thread_is_stopped(hang: Any) -> None:
    got = failure(hang)
    assert (got.kind, got.detail) == ("timeout", "took longer than 0.3 s")
    assert call_guest(1.0, int, "5") == 5  # and the guard goes on


def test_a_hang_in_another_thread_is_stopped() -> None:
    results: list[object] = []

    def worker() -> None:
        try:
            call_guest(0.3, loop)
        except GuestFailure as exc:
            results.append(exc.kind)
        # nothing is left pending for the thread's own code
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            pass
        results.append(call_guest(1.0, int, "5"))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(30)
    assert not thread.is_alive() and results == ["timeout", 5]


def test_a_keyboard_interrupt_in_another_thread_is_the_guests() -> None:
    results: list[str] = []

    def worker() -> None:
        try:
            call_guest(1.0, raise_, KeyboardInterrupt())
        except GuestFailure as exc:
            results.append(exc.detail)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(30)
    assert results == ["raised KeyboardInterrupt"]


def ctrl_c_then(then: Any) -> None:
    os.kill(os.getpid(), signal.SIGINT)
    then()


def swallow() -> None:
    try:
        time.sleep(60)
    except KeyboardInterrupt:
        pass


@pytest.mark.parametrize("then", [lambda: time.sleep(60), swallow])
def test_the_users_ctrl_c_goes_through(then: Any) -> None:
    """A SIGINT during a guest's call is the user's: KeyboardInterrupt, even when the guest
    swallowed it."""
    with pytest.raises(KeyboardInterrupt):
        call_guest(5.0, ctrl_c_then, then)


def test_the_guard_leaves_the_signal_handlers_as_it_found_them() -> None:
    alarm, interrupt = signal.getsignal(signal.SIGALRM), signal.getsignal(signal.SIGINT)
    call_guest(1.0, int, "5")
    assert signal.getitimer(signal.ITIMER_REAL)[0] > 0  # ticking while guests run
    stop_guard()
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert (signal.getsignal(signal.SIGALRM), signal.getsignal(signal.SIGINT)) == (alarm, interrupt)


def test_someone_elses_alarm_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """With an alarm of someone else's set, the watchdog thread watches the main thread too."""
    monkeypatch.setattr(registry, "_GUARD", None)
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    signal.setitimer(signal.ITIMER_REAL, 30)
    try:
        got = failure(loop)
        assert got.kind == "timeout"
        assert 0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 30
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert fired == []


# -- checked_result ------------------------------------------------------------------------------


def good() -> DecodeResult:
    field = Field("x.a", 1, (0, 2), (Field("x.b", "text", (1, 2)),))
    pdu = Pdu("x", (field,), (0, 4), "x", (Finding("note", "x.n", "m", (0, 1)),), (InnerPayload(b"ab", 2),))
    return DecodeResult((pdu,), 4, 0, (Finding("warn", "x.w", "m"),))


def test_a_good_result_is_returned_as_it_is() -> None:
    result = good()
    assert checked_result(result, 4) is result
    assert checked_result(DecodeResult(), 0) == DecodeResult()


class Index:
    def __index__(self) -> int:
        return 3


class Thing:
    def __str__(self) -> str:
        return "a thing"


def test_what_a_report_would_run_later_is_settled() -> None:
    lazy = LazyFields(lambda: [Field("x.v", Thing(), [0, 1])])  # type: ignore[arg-type]
    result = DecodeResult(
        [Pdu("x", lazy, (0, 4), inner=[InnerPayload(bytearray(b"ab"), 2)])],  # type: ignore[arg-type]
        consumed=Index(),  # type: ignore[arg-type]
    )
    got = checked_result(result, 4)
    assert got == DecodeResult(
        (Pdu("x", (Field("x.v", "a thing", (0, 1)),), (0, 4), inner=(InnerPayload(b"ab", 2),)),), 3
    )
    assert type(got.pdus[0].fields) is tuple and type(got.pdus[0].inner[0].data) is bytes


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"consumed": True}, "consumed is a bool, not an int"),
        ({"consumed": 5}, "consumed is 5: it must be within 0..4"),
        ({"need": -1}, "need is -1: it must be within 0..281474976710656"),
        ({"skip": 2.0}, "skip is a float, not an int"),
        ({"pdus": None}, "pdus is a NoneType, not a tuple"),
        ({"pdus": (Pdu("x", (), (3, 1)),)}, "pdus[0].span (3, 1) ends before it starts"),
        ({"pdus": (Pdu("x", (), (0,)),)}, "pdus[0].span is not a (start, end) pair"),  # type: ignore[arg-type]
        ({"pdus": (Pdu(1, (), (0, 1)),)}, "pdus[0].protocol is a int, not a str"),  # type: ignore[arg-type]
        ({"pdus": (Pdu("x", (Field("a", 1, (0, 9)),), (0, 1)),)}, "pdus[0].fields[0].span[1] is 9"),
        (
            {"pdus": (Pdu("x", (Field("a", 1, (0, 1), ("c",)),), (0, 1)),)},  # type: ignore[arg-type]
            "pdus[0].fields[0].children[0] is a str, not a Field",
        ),
        ({"findings": (Finding("warn", "c", "m", (0, 5)),)}, "findings[0].span[1] is 5"),
        ({"inner": (InnerPayload("s", 0),)}, "inner[0].data is a str, not bytes"),  # type: ignore[arg-type]
        ({"inner": (InnerPayload(b"", 0, transport="x"),)}, "inner[0].transport is 'x'"),  # type: ignore[arg-type]
    ],
)
def test_a_bad_result_says_where(change: dict[str, object], problem: str) -> None:
    fields = {"pdus": (), "consumed": 0, "need": 0, "findings": (), "inner": (), "skip": 0, **change}
    with pytest.raises(ContractError) as caught:
        checked_result(DecodeResult(**fields), 4)  # type: ignore[arg-type]
    assert str(caught.value).startswith(problem)


def test_a_detail_tree_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from protoscope.decoders import api

    monkeypatch.setattr(api, "MAX_RESULT_FIELDS", 10)
    many = tuple(Field("a", k, (0, 1)) for k in range(11))
    with pytest.raises(ContractError, match="makes more than 10 fields"):
        checked_result(DecodeResult((Pdu("x", many, (0, 1)),), 1), 1)
    deep = Field("a", 0, (0, 1))
    for _ in range(api.MAX_FIELD_DEPTH + 1):
        deep = Field("a", 0, (0, 1), (deep,))
    monkeypatch.setattr(api, "MAX_RESULT_FIELDS", 1000)
    with pytest.raises(ContractError, match="nests fields deeper than"):
        checked_result(DecodeResult((Pdu("x", (deep,), (0, 1)),), 1), 1)


# -- GuestAnalysis -------------------------------------------------------------------------------


class Rows:
    """An analysis whose rows are given: fed nothing."""

    name = "rows"
    given: object = None

    def feed(self, pdu: object, ctx: object) -> None:
        pass

    def rows(self) -> object:
        return self.given


def guest_rows(given: object) -> list[dict[str, object]]:
    Rows.given = given
    reg = registry.Registry()
    reg.analyses["rows"] = Rows
    return reg.analysis("rows").rows()


def test_an_analysis_rows_are_made_plain_data() -> None:
    assert guest_rows([{"a": 1, "b": [Thing(), b"x"], "c": {(1, 2): None}}]) == [
        {"a": 1, "b": ["a thing", b"x"], "c": {"(1, 2)": None}}
    ]


CYCLE: list[object] = []
CYCLE.append(CYCLE)


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("rows", "returned a str, not a list of rows"),
        ([{"a": 1}, [1]], "returned a row 1 that is not a dict with str keys"),
        ([{1: 1}], "returned a row 0 that is not a dict with str keys"),
        ([{"a": CYCLE}], "returned a row 0 whose value nests deeper than 16"),
    ],
)
def test_an_analysis_with_bad_rows_says_so(given: object, problem: str) -> None:
    [row] = guest_rows(given)
    [finding] = row["findings"]  # type: ignore[misc]
    assert finding["code"] == "analysis.bad_result"  # type: ignore[index]
    assert finding["message"].startswith(f"analysis rows {problem}")  # type: ignore[index]
