"""Decoder registry: decode-as rules, plugin files, dispatch order, and a decoder that raises."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar, Literal

import pytest

from protoscope.decoders.api import DecodeResult, Endpoint, FlowContext, Pdu
from protoscope.decoders.registry import (
    DecodeAs,
    EntryPoint,
    Registry,
    RegistryError,
    entry_points,
    load_plugin_file,
)
from protoscope.inspector.cli import main
from tests import pcapgen


def test_decode_as_parses_tshark_syntax() -> None:
    assert DecodeAs.parse("tcp.port==50051,http2") == DecodeAs("tcp", 50051, 50051, "http2")
    assert DecodeAs.parse(" udp.port == 5000-5010 , rtp ") == DecodeAs("udp", 5000, 5010, "rtp")
    for bad in ("tcp.port=50051,http2", "ip.addr==1.2.3.4,x", "tcp.port==70000,x", "tcp.port==9-1,x", ""):
        with pytest.raises(RegistryError):
            DecodeAs.parse(bad)


class Echo:
    name: ClassVar[str] = "echo"
    transport: ClassVar[Literal["datagram", "stream"]] = "datagram"
    ports: ClassVar[frozenset[tuple[str, int]]] = frozenset({("udp", 7)})

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        return data.startswith(b"ECHO")

    def new_state(self) -> object:
        return None

    def decode(self, data: bytes, state: object, ctx: FlowContext) -> DecodeResult:
        return DecodeResult((Pdu("echo", (), (0, len(data)), summary="echo"),), len(data))


class Other(Echo):
    name: ClassVar[str] = "other"
    ports: ClassVar[frozenset[tuple[str, int]]] = frozenset()

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        return True


def ctx(sport: int, dport: int) -> FlowContext:
    return FlowContext(0, "udp", Endpoint("127.0.0.1", sport), Endpoint("127.0.0.2", dport), True, 1, 0.0)


def test_dispatch_order_decode_as_then_port_then_heuristic() -> None:
    reg = Registry()
    reg.add(Echo())
    reg.add(Other())
    assert reg.choose(b"ECHO", ctx(1234, 7)) == (reg.decoders["echo"], "port")
    assert reg.choose(b"xyz", ctx(1234, 9)) == (reg.decoders["other"], "heuristic")
    reg.add_decode_as(DecodeAs.parse("udp.port==7,other"))
    assert reg.choose(b"ECHO", ctx(1234, 7)) == (reg.decoders["other"], "decode-as")
    with pytest.raises(RegistryError, match="unknown protocol"):
        reg.add_decode_as(DecodeAs.parse("udp.port==7,nope"))


BOOM = """
from typing import ClassVar
from protoscope.decoders.api import DecodeResult, Pdu

class Boom:
    name: ClassVar[str] = "boom"
    transport: ClassVar[str] = "datagram"
    ports: ClassVar[frozenset] = frozenset({("udp", 3478)})
    def sniff(self, data, ctx): return True
    def new_state(self): return None
    def decode(self, data, state, ctx):
        if data[0] == 1:
            raise ValueError("bad first byte")
        return DecodeResult((Pdu("boom", (), (0, len(data)), summary="ok"),), len(data))
"""


def test_decoder_that_raises_becomes_a_finding_and_the_load_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = tmp_path / "boom.py"
    plugin.write_text(BOOM)
    assert [d.name for d in load_plugin_file(str(plugin))] == ["boom"]
    cap = pcapgen.write(tmp_path / "u.pcap", pcapgen.udp_packets([b"\x00ok", b"\x01bad", b"\x00ok"]))
    assert main([str(cap), "--plugin", str(plugin), "--report", "packets", "--format", "jsonl"]) == 0
    packets = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [len(p["pdus"]) for p in packets] == [1, 0, 1]
    assert packets[1]["findings"][0]["code"] == "boom.exception"
    assert "bad first byte" in packets[1]["findings"][0]["message"]


def test_bad_plugin_file_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("raise RuntimeError('nope')\n")
    cap = pcapgen.write(tmp_path / "u.pcap", pcapgen.udp_packets([b"x"]))
    assert main([str(cap), "--plugin", str(bad), "--report", "summary"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "failed to import" in err


@pytest.mark.parametrize(
    "group", ["protoscope.decoders", "protoscope.analyses", "console_scripts", "pytest11"]
)
def test_entry_points_are_importlib_metadatas(group: str) -> None:
    """Our reader of entry_points.txt finds what importlib.metadata finds."""
    from importlib.metadata import entry_points as metadata_entry_points

    ours = sorted((ep.name, ep.value) for ep in entry_points(group))
    theirs = sorted((ep.name, ep.value.split("[")[0].strip()) for ep in metadata_entry_points(group=group))
    assert ours == theirs
    assert ours or group != "protoscope.decoders"


def test_entry_point_load_follows_dotted_attributes() -> None:
    ep = EntryPoint("x", "protoscope.decoders.registry:Registry.add")
    assert ep.load() is Registry.add
