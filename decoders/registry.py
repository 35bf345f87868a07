"""Finding decoders (entry points, plugin files) and choosing one for a flow.

Dispatch follows Wireshark's proven order: a flow already pinned to a decoder keeps it; then the
user's decode-as rules; then expectations learned from signaling; then the port table; then each
decoder's strict `sniff` heuristic. Our own decoders register through the same
`protoscope.decoders` entry point group as third-party ones.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from .api import Analysis, Decoder, FlowContext, Options

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


def _is_decoder_class(obj: Any) -> bool:
    return (
        isinstance(obj, type)
        and isinstance(getattr(obj, "name", None), str)
        and getattr(obj, "transport", None) in ("datagram", "stream", "both")
        and callable(getattr(obj, "decode", None))
        and callable(getattr(obj, "sniff", None))
        and callable(getattr(obj, "new_state", None))
    )


def _instantiate(obj: Any, origin: str) -> Decoder:
    try:
        decoder = obj() if isinstance(obj, type) else obj
    except Exception as exc:
        raise RegistryError(f"decoder from {origin} failed to start: {exc}") from None
    if not _is_decoder_class(type(decoder)):
        raise RegistryError(
            f"{origin} is not a decoder (needs name, transport, ports, sniff, new_state, decode)"
        )
    return cast(Decoder, decoder)


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
        spec.loader.exec_module(module)
    except Exception as exc:
        raise RegistryError(f"plugin {path} failed to import: {type(exc).__name__}: {exc}") from None
    return _decoders_of(module, str(p))


def _decoders_of(module: ModuleType, origin: str) -> list[Decoder]:
    listed = getattr(module, "DECODERS", None)
    candidates = (
        list(listed)
        if listed is not None
        else [
            obj
            for obj in vars(module).values()
            if _is_decoder_class(obj) and obj.__module__ == module.__name__
        ]
    )
    if not candidates:
        raise RegistryError(f"plugin {origin} defines no decoder")
    return [_instantiate(c, origin) for c in candidates]


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

    def add(self, decoder: Decoder) -> None:
        self.decoders[decoder.name] = decoder

    def configure(self, options: Options) -> None:
        """Hand command-line settings to every decoder that takes them."""
        self.options = options
        for decoder in self.decoders.values():
            configure = getattr(decoder, "configure", None)
            if callable(configure):
                configure(options)

    def add_decode_as(self, rule: DecodeAs) -> None:
        if rule.protocol not in self.decoders:
            known = ", ".join(sorted(self.decoders)) or "none loaded"
            raise RegistryError(f"decode-as names unknown protocol {rule.protocol!r} (known: {known})")
        self.decode_as.append(rule)

    def analysis(self, name: str) -> Analysis:
        """A fresh analysis for one decoding pass, configured like the decoders."""
        analysis = self.analyses[name]()
        configure = getattr(analysis, "configure", None)
        if callable(configure):
            configure(self.options)
        return analysis

    def expect(self, expectation: Expectation) -> None:
        if expectation.protocol in self.decoders:
            key = (expectation.transport, expectation.ip, expectation.port)
            self.expectations[key] = expectation.protocol

    def choose(self, data: bytes, ctx: FlowContext) -> tuple[Decoder | None, str]:
        """Pick the decoder for a flow's first payload; return (decoder, how it was chosen)."""
        transport = ctx.transport
        kind = "stream" if transport == "tcp" else "datagram"
        ports = (ctx.src.port, ctx.dst.port)
        for rule in self.decode_as:
            if rule.matches(transport, ports):
                return self.decoders[rule.protocol], "decode-as"
        for ep in (ctx.dst, ctx.src):
            name = self.expectations.get((transport, ep.ip, ep.port))
            if name is not None:
                return self.decoders[name], "expectation"
        by_port = [
            d
            for d in self.decoders.values()
            if d.transport in (kind, "both") and any((transport, p) in d.ports for p in ports)
        ]
        for d in by_port:
            if d.sniff(data, ctx):
                return d, "port"
        for d in self.decoders.values():
            if d.transport in (kind, "both") and d not in by_port and d.sniff(data, ctx):
                return d, "heuristic"
        return None, ""


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
    plugin_files: Iterable[str] = (), use_plugins: bool = True, decode_as: Iterable[str] = ()
) -> Registry:
    """Load entry-point decoders (third-party ones unless `use_plugins` is False) and plugin files."""
    reg = Registry()
    for ep in entry_points(ENTRY_POINT_GROUP):
        ours = ep.value.startswith(IN_TREE_PREFIX)
        if not ours and not use_plugins:
            continue
        try:
            reg.add(_instantiate(ep.load(), f"entry point {ep.name} ({ep.value})"))
        except Exception as exc:
            reg.load_errors.append(f"decoder {ep.name} ({ep.value}) not loaded: {type(exc).__name__}: {exc}")
    for ep in entry_points(ANALYSIS_GROUP):
        if not ep.value.startswith(IN_TREE_PREFIX) and not use_plugins:
            continue
        try:
            reg.analyses[ep.name] = ep.load()
        except Exception as exc:
            reg.load_errors.append(f"analysis {ep.name} ({ep.value}) not loaded: {type(exc).__name__}: {exc}")
    for path in plugin_files:
        for decoder in load_plugin_file(path):
            reg.add(decoder)
    for rule in decode_as:
        reg.add_decode_as(DecodeAs.parse(rule))
    return reg
