"""The field registry: declarations, Wireshark-style display, and that every field a decoder
emits over the samples and the public corpus is declared."""

from __future__ import annotations

import pytest

from protoscope.decoders.api import FieldInfo, declared_fields
from protoscope.decoders.registry import load_registry
from protoscope.inspector.fields import closest, display, field_info, known_fields, list_fields_text
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES, public_captures, require_public


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("http2.type", 1, ("Type", "HEADERS (1)")),
        ("http2.type", 99, ("Type", "Unknown (99)")),
        ("http2.flags", 0x05, ("Flags", "0x05 END_STREAM, END_HEADERS")),
        ("http2.flags", 0, ("Flags", "0x00")),
        ("eth.type", 0x0800, ("Type", "IPv4 (0x0800)")),
        ("eth.type", 0x86DD, ("Type", "IPv6 (0x86dd)")),
        ("rtp.ssrc", 0x1234ABCD, ("Synchronization Source identifier", "0x1234abcd")),
        ("rtp.ssrc", 0xABCD, ("Synchronization Source identifier", "0x0000abcd")),
        ("tcp.flags", 0x012, ("Flags", "0x012 SYN, ACK")),
        ("grpc.status", 5, ("Status", "NOT_FOUND (5)")),
        ("ip.proto", 17, ("Protocol", "UDP (17)")),
        ("rtp.marker", True, ("Marker", "True")),
        ("udp.srcport", 3478, ("Source Port", "3478")),
        ("http2.headers.path", "/a.B/C", ("Path", "/a.B/C")),
        ("no.such.field", 7, ("no.such.field", "7")),
    ],
)
def test_display_as_wireshark(name: str, value: object, shown: tuple[str, str]) -> None:
    assert display(name, value) == shown


def test_field_info_and_closest() -> None:
    info = field_info("http2.type")
    assert info is not None and info.name == "Type" and info.strings is not None
    assert field_info("tcp.flags.rst") == field_info("tcp.flags.reset")
    assert field_info("nonsense") is None
    dynamic = field_info("pbf.demo.Person.name")
    assert dynamic is not None and dynamic.type == "string"
    assert "tcp.flags" in closest("tcp.flag")
    assert closest("zzzzzzzz") == []


def test_known_fields_sorted_and_listed() -> None:
    fields = known_fields()
    names = [f.abbrev for f in fields]
    assert names == sorted(names) and len(names) == len(set(names))
    for needed in ("frame.number", "tcp.stream", "udp.stream", "grpc.path", "stun.type", "rtp.ssrc", "dtls"):
        assert needed in names
    lines = list(list_fields_text())
    assert len(lines) == len(fields)
    assert "tcp.len\tTCP Segment Len\tuint\tPayload bytes" in lines
    assert all(len(line.split("\t")) == 4 for line in lines)


def test_registry_collects_declared_fields() -> None:
    registry = load_registry(use_plugins=False)
    table = registry.fields()
    assert table["http2.type"].strings is not None
    assert table["stun"].type == "protocol" and "sip" in table
    for name, decoder in registry.decoders.items():
        assert declared_fields(decoder), f"decoder {name} declares no fields"


def test_declared_fields_of_a_plugin_without_them() -> None:
    class Bare:
        fields = "not a tuple"

    assert declared_fields(Bare()) == ()
    assert declared_fields(object()) == ()

    class Some:
        fields = (FieldInfo("x.y", "Y"), "junk")

    assert declared_fields(Some()) == (FieldInfo("x.y", "Y"),)

    class Raising:
        @property
        def fields(self) -> tuple[FieldInfo, ...]:
            raise RuntimeError("no")

    assert declared_fields(Raising()) == ()


def _emitted(paths: list[str]) -> dict[str, str]:
    registry = load_registry(use_plugins=False)
    seen: dict[str, str] = {}
    for path in paths:
        session = Session.open(path, registry)
        try:
            for pd in session.decode():
                stack = [f for pdu in pd.pdus for f in pdu.fields]
                while stack:
                    f = stack.pop()
                    seen.setdefault(f.name, path)
                    stack.extend(f.children)
        finally:
            session.close()
    return seen


def test_every_emitted_field_is_declared() -> None:
    require_public()
    paths = [str(p) for p in sorted(SAMPLES.glob("*.pcap*"))] + [str(p) for p in public_captures()]
    emitted = _emitted(paths)
    assert len(emitted) > 150
    undeclared = {name: path for name, path in emitted.items() if field_info(name) is None}
    assert undeclared == {}
