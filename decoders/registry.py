"""Finding decoders (entry points, plugin files) and choosing one for a flow.

Dispatch follows Wireshark's proven order: a flow already pinned to a decoder keeps it; then the
user's decode-as rules; then expectations learned from signaling; then the port table; then each
decoder's strict `sniff` heuristic. Our own decoders register through the same
`protoscope.decoders` entry point group as third-party ones.

Third-party decoders and analyses are guests: they are loaded after ours and may not take an
in-tree name (unless the user says `--plugin-override`); everything of theirs the run calls (import,
start, `sniff`, `new_state`, `decode`, `feed`, `rows`, ...) goes through `call_guest`, which turns
whatever they raise (SystemExit and their own KeyboardInterrupt too) or a call that overruns its
time budget into a `GuestFailure`; and the session checks what they return (`api.checked_result`).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any, Literal, TypeVar, cast

from .api import (
    Analysis,
    AnalysisFinding,
    ContractError,
    Decoder,
    FieldInfo,
    FlowContext,
    Options,
    checked_value,
    declared_fields,
)

ENTRY_POINT_GROUP = "protoscope.decoders"
ANALYSIS_GROUP = "protoscope.analyses"
"""Entry points naming Analysis classes: each gives a `--report` of that name."""
IN_TREE_PREFIX = "protoscope."
"""Entry points whose module starts with this are ours and stay loaded under --no-plugins."""

DECODE_AS = re.compile(
    r"^\s*(?P<layer>tcp|udp)\.port\s*==\s*(?P<lo>\d+)(?:-(?P<hi>\d+))?\s*,\s*(?P<proto>[\w.-]+)\s*$"
)


class RegistryError(Exception):
    """A plugin or decode-as rule the user gave cannot be used; one line for stderr."""


# -- guests: third-party code runs contained and under a time budget ------------------------------

CALL_BUDGET = 0.5
"""Seconds one call of a third-party decoder (`sniff`, `new_state`, `decode`) or analysis (`feed`)
may take on a packet, plus BUDGET_PER_MIB for each MiB it is given; then it is stopped. Measured:
our decoders take a median 9 us a call and at most 80 ms (DTLS's first certificate, importing
`cryptography`) over the sample and public captures, 6 ms at the 99.9th percentile."""
BUDGET_PER_MIB = 0.5
"""Seconds more per MiB of data a call is given (a stream decoder may get megabytes at once)."""
LONG_BUDGET = 10.0
"""Seconds for a guest's import, start and `configure`, and an analysis's `rows`, `drain` or
`feed_rtp` (work over a whole capture)."""
GUARD_TICK = 0.05
"""How often the guard looks at the calls it watches: a call is stopped between its budget and its
budget plus a tick, and again every tick while it swallows the exception."""
GUARD_IDLE = 1.0
"""Seconds without a guest call after which the guard's timer (or watchdog thread) stops."""
GUARD_REFIRE = 1.0
"""Off the main thread, seconds between two stops of a call that swallowed the first: long, so that
the thread is surely out of the guest's code (and no longer watched) before another could come."""

T = TypeVar("T")


class GuestTimeout(BaseException):
    """Raised inside a guest's code that overran its budget: a BaseException, so that the guest's
    own `except Exception` does not take it."""


class GuestFailure(Exception):
    """A guest's call failed: it raised (anything: SystemExit and its own KeyboardInterrupt are
    contained too) or ran out of time. `detail` says which, for a message naming the guest."""

    def __init__(self, kind: Literal["exception", "timeout"], detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def call_budget(size: int) -> float:
    """The budget of one call given `size` bytes."""
    return CALL_BUDGET + BUDGET_PER_MIB * size / (1 << 20)


def call_guest(budget: float, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` for a guest: its value, or GuestFailure when it raised or took longer than
    `budget` seconds. A Ctrl+C of the user's still stops the program: a KeyboardInterrupt is the
    guest's own only when no SIGINT arrived during the call.

    In the main thread a SIGALRM timer that ticks while guests run raises GuestTimeout in the call
    (it also stops a guest blocked in a system call); in other threads (the viewer's workers) a
    watchdog thread raises it there with PyThreadState_SetAsyncExc, which stops Python code but
    not a blocking system call. Either costs ~1 us a call; our own decoders are not guarded.
    Neither stops a guest that swallows every exception in a loop, nor one stuck in C code that
    holds the GIL: only a process of its own could."""
    global _GUARD
    if _GUARD is None:
        _GUARD = _Guard()
    return _GUARD.call(budget, fn, args)


def _raised(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        text = ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Guard:
    """The watches over guest calls: one for the main thread (signals), one per other thread."""

    def __init__(self) -> None:
        import signal
        import threading

        self._threading = threading
        self.main = threading.main_thread().ident
        self.lock = threading.Lock()
        # the main thread's call
        self.armed = False
        self.deadline = 0.0
        self.ticking = False
        self.idle = 0
        self.sigints = 0
        self.signals = hasattr(signal, "setitimer")
        self.previous_alarm: Any = None
        self.previous_int: Any = None
        self.exit_hooked = False
        # other threads' calls: thread id -> [deadline, fired]
        self.workers: dict[int, list[Any]] = {}
        self.watcher: Any = None
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        """A child process inherits no timer and no watchdog thread, only their bookkeeping."""
        self.main = self._threading.main_thread().ident
        self.lock = self._threading.Lock()
        self.armed = self.ticking = False
        self.workers = {}
        self.watcher = None

    def call(self, budget: float, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        ident = self._threading.get_ident()
        if ident == self.main and self.signals:
            if self.armed:  # a nested call: the outer budget covers it
                return fn(*args)
            if self.ticking or self._start():
                return self._call_main(budget, fn, args)
        return self._call_other(ident, budget, fn, args)

    # -- the main thread: SIGALRM ticks while guests run ------------------------------------------

    def _call_main(self, budget: float, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        seen = self.sigints
        self.deadline = time.monotonic() + budget
        try:
            try:
                self.armed = True
                value = fn(*args)
            finally:
                self.armed = False
        except GuestTimeout:
            raise GuestFailure("timeout", f"took longer than {budget:.3g} s") from None
        except KeyboardInterrupt:
            if self.sigints != seen:  # the user's Ctrl+C
                raise
            raise GuestFailure("exception", "raised KeyboardInterrupt") from None
        except BaseException as exc:
            raise GuestFailure("exception", f"raised {_raised(exc)}") from None
        if self.sigints != seen:  # the guest swallowed the user's Ctrl+C
            raise KeyboardInterrupt
        return value

    def _start(self) -> bool:
        import signal

        alarm = signal.getsignal(signal.SIGALRM)
        if signal.getitimer(signal.ITIMER_REAL)[0] or alarm not in (signal.SIG_DFL, None, self._on_alarm):
            self.signals = False  # someone else's alarm: the watchdog thread watches us too
            return False
        if not self.exit_hooked:  # a timer left ticking would end the exiting process (SIGALRM)
            import atexit

            atexit.register(self.stop)
            self.exit_hooked = True
        self.previous_alarm = signal.signal(signal.SIGALRM, self._on_alarm)
        self.previous_int = signal.signal(signal.SIGINT, self._on_sigint)
        signal.setitimer(signal.ITIMER_REAL, GUARD_TICK, GUARD_TICK)
        self.ticking = True
        self.idle = 0
        return True

    def stop(self) -> None:
        """Stop the main thread's timer (at once, where GUARD_IDLE would stop it later); from the
        main thread, and when no guest call runs there."""
        if not self.ticking or self.armed or self._threading.get_ident() != self.main:
            return
        import signal

        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.previous_alarm or signal.SIG_DFL)
        if signal.getsignal(signal.SIGINT) == self._on_sigint:
            signal.signal(
                signal.SIGINT, self.previous_int if self.previous_int is not None else signal.SIG_DFL
            )
        self.ticking = False

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        if self.armed:
            self.idle = 0
            now = time.monotonic()
            if now >= self.deadline:
                self.deadline = now + GUARD_TICK
                raise GuestTimeout
        else:
            self.idle += 1
            if self.idle * GUARD_TICK >= GUARD_IDLE:
                self.stop()

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        import signal

        self.sigints += 1
        previous = self.previous_int
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt

    # -- other threads: a watchdog thread ----------------------------------------------------------

    def _call_other(self, ident: int, budget: float, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        with self.lock:
            if ident in self.workers:
                nested = True
            else:
                nested = False
                self.workers[ident] = [time.monotonic() + budget, False]
                if self.watcher is None:
                    self.watcher = self._threading.Thread(
                        target=self._watch, name="protoscope-guest-watchdog", daemon=True
                    )
                    self.watcher.start()
        if nested:
            return fn(*args)
        try:
            try:
                value = fn(*args)
            finally:
                self._disarm(ident)
        except GuestTimeout:
            self._disarm(ident)  # again: the timeout may have come before the first was done
            raise GuestFailure("timeout", f"took longer than {budget:.3g} s") from None
        except KeyboardInterrupt:
            if ident == self.main:  # the fallback in the main thread: it may be the user's
                raise
            raise GuestFailure("exception", "raised KeyboardInterrupt") from None
        except BaseException as exc:
            raise GuestFailure("exception", f"raised {_raised(exc)}") from None
        return value

    def _disarm(self, ident: int) -> None:
        with self.lock:  # once out, the watchdog cannot fire at this thread
            slot = self.workers.pop(ident, None)
        if slot is not None and slot[1]:  # it fired as the call returned: cancel what is pending
            _async_raise(ident, None)

    def _watch(self) -> None:
        idle = 0
        while True:
            time.sleep(GUARD_TICK)
            now = time.monotonic()
            with self.lock:
                if not self.workers:
                    idle += 1
                    if idle * GUARD_TICK >= GUARD_IDLE:
                        self.watcher = None
                        return
                    continue
                idle = 0
                for ident, slot in self.workers.items():
                    if now >= slot[0]:
                        slot[0] = now + GUARD_REFIRE
                        slot[1] = True
                        _async_raise(ident, GuestTimeout)


def _async_raise(ident: int, exc: type[BaseException] | None) -> None:
    """Raise `exc` in thread `ident` at its next Python instruction (None: cancel what is pending)."""
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(exc) if exc is not None else None
    )


_GUARD: _Guard | None = None
"""Made by the first guest call: a run without plugins imports neither threading nor ctypes here."""


def stop_guard() -> None:
    """Stop the main thread's guard timer now if no guest call runs (e.g. once plugins are loaded,
    before the viewer starts); the next guest call starts it again."""
    if _GUARD is not None:
        _GUARD.stop()


@dataclass(frozen=True, slots=True)
class DecodeAs:
    """A tshark-style rule: `tcp.port==50051,http2` or `udp.port==5000-5010,rtp`."""

    transport: str
    low: int
    high: int
    protocol: str

    @classmethod
    def parse(cls, text: str) -> DecodeAs:
        m = DECODE_AS.match(text)
        if m is None:
            raise RegistryError(
                f"bad decode-as rule {text!r}: expected tshark's form, e.g. 'tcp.port==50051,http2'"
            )
        low = int(m["lo"])
        high = int(m["hi"]) if m["hi"] else low
        if not (0 <= low <= high <= 65535):
            raise RegistryError(f"bad port range in decode-as rule {text!r}")
        return cls(m["layer"], low, high, m["proto"])

    def matches(self, transport: str, ports: Iterable[int]) -> bool:
        return transport == self.transport and any(self.low <= p <= self.high for p in ports)


@dataclass(frozen=True, slots=True)
class Expectation:
    """A conversation that signaling announced (an SDP m-line, a TURN channel, ...)."""

    transport: str
    ip: str
    port: int
    protocol: str


NAME = re.compile(r"[\w.-]+")
"""What a decoder's name may be (what a decode-as rule can name)."""


def _is_decoder_class(obj: Any) -> bool:
    return (
        isinstance(obj, type)
        and isinstance(getattr(obj, "name", None), str)
        and getattr(obj, "transport", None) in ("datagram", "stream", "both")
        and callable(getattr(obj, "decode", None))
        and callable(getattr(obj, "sniff", None))
        and callable(getattr(obj, "new_state", None))
    )


def is_ours(obj: object) -> bool:
    """Whether a decoder or analysis (or its class) is in-tree: defined in a protoscope module."""
    cls = obj if isinstance(obj, type) else type(obj)
    return str(getattr(cls, "__module__", "")).startswith(IN_TREE_PREFIX)


def _instantiate(obj: Any, origin: str) -> Decoder:
    guest = not is_ours(obj)
    try:
        if not isinstance(obj, type):
            decoder = obj
        elif guest:
            decoder = call_guest(LONG_BUDGET, obj)
        else:
            decoder = obj()
    except GuestFailure as exc:
        raise RegistryError(f"decoder from {origin} failed to start: it {exc.detail}") from None
    except Exception as exc:
        raise RegistryError(f"decoder from {origin} failed to start: {exc}") from None
    if not _is_decoder_class(type(decoder)):
        raise RegistryError(
            f"{origin} is not a decoder (needs name, transport, ports, sniff, new_state, decode)"
        )
    if guest:
        problem = _guest_problem(decoder)
        if problem:
            raise RegistryError(f"decoder from {origin} {problem}")
    return cast(Decoder, decoder)


def _guest_problem(decoder: Any) -> str:
    """What makes a third-party decoder unusable, "" if nothing."""
    if not NAME.fullmatch(decoder.name):
        return f"has a bad name {decoder.name!r} (letters, digits, '_', '.' and '-' only)"
    ports = getattr(decoder, "ports", None)
    if not isinstance(ports, frozenset | set) or not all(
        isinstance(p, tuple)
        and len(p) == 2
        and p[0] in ("tcp", "udp")
        and type(p[1]) is int
        and 0 <= p[1] <= 65535
        for p in ports
    ):
        return "has bad ports: a frozenset of ('tcp' or 'udp', port) pairs is needed"
    return ""


def load_plugin_file(path: str) -> list[Decoder]:
    """Import a plugin file and return the decoders it defines (classes, or a DECODERS list)."""
    p = Path(path)
    if not p.is_file():
        raise RegistryError(f"plugin {path}: no such file")
    name = f"protoscope_plugin_{p.stem}"
    spec = importlib.util.spec_from_file_location(name, p)
    if spec is None or spec.loader is None:
        raise RegistryError(f"plugin {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        call_guest(LONG_BUDGET, spec.loader.exec_module, module)
    except GuestFailure as exc:
        sys.modules.pop(name, None)
        what = exc.detail.removeprefix("raised ") if exc.kind == "exception" else f"it {exc.detail}"
        raise RegistryError(f"plugin {path} failed to import: {what}") from None
    return _decoders_of(module, str(p))


def _decoders_of(module: ModuleType, origin: str) -> list[Decoder]:
    listed = getattr(module, "DECODERS", None)
    try:
        candidates = (
            list(listed)
            if listed is not None
            else [
                obj
                for obj in vars(module).values()
                if _is_decoder_class(obj) and obj.__module__ == module.__name__
            ]
        )
    except Exception as exc:
        raise RegistryError(f"plugin {origin}: DECODERS is not a list: {_raised(exc)}") from None
    if not candidates:
        raise RegistryError(f"plugin {origin} defines no decoder")
    return [_instantiate(c, origin) for c in candidates]


def _load_guest(ep: EntryPoint) -> Any:
    try:
        return call_guest(LONG_BUDGET, ep.load)
    except GuestFailure as exc:
        raise RegistryError(f"it {exc.detail}") from None


Sniff = Callable[[Decoder, bytes, FlowContext], bool]
"""How `Registry.choose` asks a decoder's heuristic (the session's asks guests under the guard)."""


def _sniff(decoder: Decoder, data: bytes, ctx: FlowContext) -> bool:
    return decoder.sniff(data, ctx)


@dataclass(slots=True)
class Registry:
    """The decoders of a run and the rules that pick one for a flow."""

    decoders: dict[str, Decoder] = field(default_factory=dict)
    decode_as: list[DecodeAs] = field(default_factory=list)
    expectations: dict[tuple[str, str, int], str] = field(default_factory=dict)
    load_errors: list[str] = field(default_factory=list)
    """Entry points that failed to load: reported once, and the run goes on."""
    analyses: dict[str, Callable[[], Analysis]] = field(default_factory=dict)
    """Report name -> a factory of fresh analyses (one per decoding pass)."""
    options: Options = field(default_factory=dict)
    """The settings given to `configure` (analyses get them too)."""
    guests: set[str] = field(default_factory=set)
    """Names of the third-party decoders: their calls are guarded and their results checked."""
    origins: dict[str, str] = field(default_factory=dict)
    """Decoder name -> where it came from (an entry point's value, a plugin file), for messages."""

    def add(self, decoder: Decoder, guest: bool | None = None, origin: str = "") -> None:
        """Add (or replace) a decoder; `guest` defaults to whether its class is third-party."""
        name = decoder.name
        self.decoders[name] = decoder
        self.origins[name] = origin or f"{type(decoder).__module__}:{type(decoder).__qualname__}"
        if is_ours(decoder) if guest is None else not guest:
            self.guests.discard(name)
        else:
            self.guests.add(name)

    def add_guest(self, decoder: Decoder, origin: str, override: bool) -> str:
        """Add a third-party decoder unless it would take an in-tree decoder's name without
        `override`; return the problem ("" when added)."""
        name = decoder.name
        if name in self.decoders and name not in self.guests and not override:
            return (
                f"decoder {name} from {origin} not loaded: the in-tree decoder {name} "
                f"({self.origins.get(name, '?')}) has that name (--plugin-override replaces it)"
            )
        self.add(decoder, guest=True, origin=origin)
        return ""

    def configure(self, options: Options) -> None:
        """Hand command-line settings to every decoder that takes them. A third-party decoder whose
        `configure` fails is dropped, with a line in `load_errors`."""
        self.options = options
        for name, decoder in list(self.decoders.items()):
            configure = getattr(decoder, "configure", None)
            if not callable(configure):
                continue
            if name not in self.guests:
                configure(options)
                continue
            try:
                call_guest(LONG_BUDGET, configure, options)
            except GuestFailure as exc:
                del self.decoders[name]
                self.guests.discard(name)
                self.load_errors.append(f"decoder {name} ({self.origins.get(name)}) dropped: configure {exc}")
        stop_guard()

    def add_decode_as(self, rule: DecodeAs) -> None:
        if rule.protocol not in self.decoders:
            known = ", ".join(sorted(self.decoders)) or "none loaded"
            raise RegistryError(f"decode-as names unknown protocol {rule.protocol!r} (known: {known})")
        self.decode_as.append(rule)

    def analysis(self, name: str) -> Analysis:
        """A fresh analysis for one decoding pass, configured like the decoders; a third-party
        one comes wrapped in a GuestAnalysis."""
        make = self.analyses[name]
        if is_ours(make):
            analysis = make()
            configure = getattr(analysis, "configure", None)
            if callable(configure):
                configure(self.options)
            return analysis
        guest = GuestAnalysis(name)
        try:
            inner = call_guest(LONG_BUDGET, make)
            configure = getattr(inner, "configure", None)
            if callable(configure):
                call_guest(LONG_BUDGET, configure, self.options)
        except GuestFailure as exc:
            guest.fail(exc, None, "start")
        else:
            guest.inner = inner
        return cast(Analysis, guest)

    def fields(self) -> dict[str, FieldInfo]:
        """Every field the loaded decoders declare (their `fields` attribute), by abbrev, with a
        protocol entry for each decoder's name: what the display filter and `--list-fields` know.
        A field declared twice keeps its first declaration (in-tree decoders come first)."""
        out: dict[str, FieldInfo] = {}
        for name, decoder in self.decoders.items():
            for info in declared_fields(decoder):
                out.setdefault(info.abbrev, info)
            out.setdefault(name, FieldInfo(name, name.upper(), "protocol", f"decoder {name}"))
        return out

    def expect(self, expectation: Expectation) -> None:
        if expectation.protocol in self.decoders:
            key = (expectation.transport, expectation.ip, expectation.port)
            self.expectations[key] = expectation.protocol

    def choose(
        self, data: bytes, ctx: FlowContext, sniff: Sniff = _sniff, excluded: Collection[str] = ()
    ) -> tuple[Decoder | None, str]:
        """Pick the decoder for a flow's first payload; return (decoder, how it was chosen).
        `sniff` asks a decoder's heuristic; decoders named in `excluded` are not chosen."""
        transport = ctx.transport
        kind = "stream" if transport == "tcp" else "datagram"
        ports = (ctx.src.port, ctx.dst.port)
        for rule in self.decode_as:
            if rule.matches(transport, ports) and rule.protocol not in excluded:
                return self.decoders[rule.protocol], "decode-as"
        for ep in (ctx.dst, ctx.src):
            name = self.expectations.get((transport, ep.ip, ep.port))
            if name is not None and name not in excluded:
                return self.decoders[name], "expectation"
        candidates = [
            d for d in self.decoders.values() if d.transport in (kind, "both") and d.name not in excluded
        ]
        by_port = [d for d in candidates if any((transport, p) in d.ports for p in ports)]
        for d in by_port:
            if sniff(d, data, ctx):
                return d, "port"
        for d in candidates:
            if d not in by_port and sniff(d, data, ctx):
                return d, "heuristic"
        return None, ""


def _checked_rows(method: Callable[[], object]) -> list[dict[str, object]] | str:
    """An analysis's rows (from `rows` or `drain`) made plain data (see api.checked_value), or what
    is wrong with them. Run under the guard: a value's str() is the guest's code."""
    rows = method()
    if not isinstance(rows, list):
        return f"returned a {type(rows).__name__}, not a list of rows"
    out: list[dict[str, object]] = []
    for k, row in enumerate(rows):
        if not isinstance(row, dict) or not all(isinstance(key, str) for key in row):
            return f"returned a row {k} that is not a dict with str keys"
        try:
            out.append({key: checked_value(value) for key, value in row.items()})
        except ContractError as exc:
            return f"returned a row {k} whose value {exc}"
    return out


class GuestAnalysis:
    """A third-party analysis behind the guard. A call that raises, overruns its budget or returns
    rows that are not a list of dicts ends it: it is fed no more, and its report gets one row whose
    finding says so (`analysis.exception`, `analysis.timeout`, `analysis.bad_result`), after the
    rows it had handed over."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.inner: Any = None
        self.failure: AnalysisFinding | None = None

    def fail(self, exc: GuestFailure | str, frame: int | None, during: str) -> None:
        if self.failure is not None:
            return
        if isinstance(exc, str):
            code, detail = "analysis.bad_result", exc
        else:
            code, detail = f"analysis.{exc.kind}", exc.detail
        self.failure = {
            "frame": frame,
            "severity": "error",
            "code": code,
            "message": f"analysis {self.name} {detail} in {during}: it is not fed any more",
        }

    def feed(self, pdu: Any, ctx: FlowContext) -> None:
        if self.failure is None:
            try:
                call_guest(CALL_BUDGET, self.inner.feed, pdu, ctx)
            except GuestFailure as exc:
                self.fail(exc, ctx.frame, "feed")

    def rows(self) -> list[dict[str, object]]:
        rows = self._rows("rows") if self.failure is None else []
        return rows + ([{"findings": [self.failure]}] if self.failure is not None else [])

    def _rows(self, method: str) -> list[dict[str, object]]:
        try:
            rows = call_guest(LONG_BUDGET, _checked_rows, getattr(self.inner, method))
        except GuestFailure as exc:
            self.fail(exc, None, method)
            return []
        if isinstance(rows, str):
            self.fail(rows, None, method)
            return []
        return rows

    def _drain(self) -> list[dict[str, object]]:
        return self._rows("drain") if self.failure is None else []

    def _feed_rtp(self, columns: Any) -> None:
        if self.failure is None:
            try:
                call_guest(LONG_BUDGET, self.inner.feed_rtp, columns)
            except GuestFailure as exc:
                self.fail(exc, None, "feed_rtp")

    def __getattr__(self, attribute: str) -> Any:
        # `drain` and `feed_rtp` are optional: there when the guest has them
        if attribute in ("drain", "feed_rtp"):
            inner = self.__dict__.get("inner")
            if callable(getattr(inner, attribute, None)):
                return getattr(self, f"_{attribute}")
        raise AttributeError(attribute)


@dataclass(frozen=True, slots=True)
class EntryPoint:
    """One line of a distribution's entry_points.txt: `name = module:attribute [extras]`."""

    name: str
    value: str
    """"module:attribute", without extras."""

    def load(self) -> Any:
        module, _, attribute = self.value.partition(":")
        obj: Any = importlib.import_module(module.strip())
        for part in attribute.strip().split(".") if attribute.strip() else ():
            obj = getattr(obj, part)
        return obj


def entry_points(group: str) -> list[EntryPoint]:
    """The entry points of `group` of every distribution on sys.path, the first of each name.

    What importlib.metadata.entry_points(group=...) gives, read straight from the `*.dist-info` and
    `*.egg-info` folders: importing importlib.metadata alone took ~45 ms of a ~150 ms start-up
    (email, zipfile, csv...), reading the files takes ~1 ms. Distributions are taken in sys.path
    order and a name seen twice keeps its first (as importlib.metadata does).
    """
    found: list[EntryPoint] = []
    seen: set[str] = set()
    for text in _entry_point_files(seen):
        section = None
        for line in text.splitlines():
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1].strip()
            elif section == group and "=" in line:
                name, _, value = line.partition("=")
                found.append(EntryPoint(name.strip(), value.split("[", 1)[0].strip()))
    return found


def _entry_point_files(seen: set[str]) -> Iterator[str]:
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for folder in names:
            if not folder.endswith((".dist-info", ".egg-info")):
                continue
            dist = re.sub(r"[-_.]+", "_", folder.rsplit(".", 1)[0].split("-", 1)[0]).lower()
            if dist in seen:
                continue
            seen.add(dist)
            try:
                with open(os.path.join(entry or ".", folder, "entry_points.txt"), encoding="utf-8") as f:
                    yield f.read()
            except OSError:
                continue


def load_registry(
    plugin_files: Iterable[str] = (),
    use_plugins: bool = True,
    decode_as: Iterable[str] = (),
    plugin_override: bool = False,
) -> Registry:
    """Load entry-point decoders and analyses, ours first, then third-party ones (unless
    `use_plugins` is False) and plugin files. A third-party decoder or analysis may take an in-tree
    one's name only with `plugin_override`; one that fails to load or would take a name is skipped
    with a line in `load_errors`, except a plugin file that cannot be imported (RegistryError)."""
    reg = Registry()
    decoders = entry_points(ENTRY_POINT_GROUP)
    analyses = entry_points(ANALYSIS_GROUP)
    for ep in decoders:
        if ep.value.startswith(IN_TREE_PREFIX):
            try:
                reg.add(_instantiate(ep.load(), f"entry point {ep.name} ({ep.value})"), origin=ep.value)
            except Exception as exc:
                reg.load_errors.append(f"decoder {ep.name} ({ep.value}) not loaded: {_raised(exc)}")
    for ep in analyses:
        if ep.value.startswith(IN_TREE_PREFIX):
            try:
                reg.analyses[ep.name] = ep.load()
            except Exception as exc:
                reg.load_errors.append(f"analysis {ep.name} ({ep.value}) not loaded: {_raised(exc)}")
    ours = set(reg.analyses)
    if use_plugins:
        for ep in decoders:
            if ep.value.startswith(IN_TREE_PREFIX):
                continue
            try:
                decoder = _instantiate(_load_guest(ep), f"entry point {ep.name} ({ep.value})")
            except RegistryError as exc:
                reg.load_errors.append(f"decoder {ep.name} ({ep.value}) not loaded: {exc}")
                continue
            problem = reg.add_guest(decoder, ep.value, plugin_override)
            if problem:
                reg.load_errors.append(problem)
        for ep in analyses:
            if ep.value.startswith(IN_TREE_PREFIX):
                continue
            if ep.name in ours and not plugin_override:
                reg.load_errors.append(
                    f"analysis {ep.name} ({ep.value}) not loaded: the in-tree analysis {ep.name} has "
                    "that name (--plugin-override replaces it)"
                )
                continue
            try:
                reg.analyses[ep.name] = _load_guest(ep)
            except RegistryError as exc:
                reg.load_errors.append(f"analysis {ep.name} ({ep.value}) not loaded: {exc}")
    for path in plugin_files:
        for decoder in load_plugin_file(path):
            problem = reg.add_guest(decoder, f"plugin {path}", plugin_override)
            if problem:
                reg.load_errors.append(problem)
    for rule in decode_as:
        reg.add_decode_as(DecodeAs.parse(rule))
    stop_guard()
    return reg
