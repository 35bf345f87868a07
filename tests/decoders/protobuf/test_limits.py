"""Schema-less protobuf within its limits (issue 12): the tree refers to the message's bytes (no copy
per nesting level), nesting, fields kept and fields read are bounded, and each limit hit is a
finding. The official library (its UnknownFieldSet) is the oracle for the values read."""

from __future__ import annotations

import tracemalloc

import pytest
from google.protobuf import empty_pb2
from google.protobuf.unknown_fields import UnknownFieldSet

from protoscope.decoders.protobuf import wire
from protoscope.decoders.protobuf.schema import content_of, decode_message
from tests.decoders.protobuf.test_wire import sample_messages, varint, wire_len


@pytest.fixture(scope="module")
def samples() -> list[bytes]:
    """The gRPC messages of captures/samples/grpc-demo.pcap (grpcio's demo service)."""
    return sample_messages()


def library_fields(data: bytes) -> list[tuple[int, int, object]]:
    """(number, wire type, value) of the top-level fields, as the official library reads them."""
    msg = empty_pb2.Empty()
    msg.ParseFromString(data)
    return [(f.field_number, f.wire_type, f.data) for f in UnknownFieldSet(msg)]


def ours(fields: list[wire.WireField]) -> list[tuple[int, int, object]]:
    return [(f.number, f.wire_type, f.value) for f in fields]


def nested(depth: int, leaf: bytes) -> bytes:
    data = leaf
    for _ in range(depth):
        data = wire_len(1, data)
    return data


def count_nodes(fields: list[wire.WireField]) -> int:
    return sum(1 + count_nodes(f.children) for f in fields)


def test_values_equal_the_official_library(samples: list[bytes]) -> None:
    for message in samples:
        reading = wire.read(message)
        assert reading.error is None and reading.limits == {}
        assert ours(reading.fields) == library_fields(message)


def test_nested_fields_refer_to_the_message_bytes(samples: list[bytes]) -> None:
    """Every level holds the buffer it was given, not a copy of its part: a 4 MiB message nested
    20 deep is read with a few KB of allocations (a copy a level was 80 MiB)."""
    message = max(samples, key=len)
    data = nested(20, wire_len(2, message) + wire_len(3, bytes(4 << 20)))
    tracemalloc.start()
    try:
        reading = wire.read(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reading.error is None and reading.limits == {}
    assert peak < 256 << 10
    node = reading.fields[0]
    for _ in range(19):
        assert node.raw is data and node.kind == "message"
        node = node.children[0]
    leaf = node.children[1]
    assert leaf.raw is data and leaf.kind == "packed" and leaf.view.nbytes == 4 << 20
    assert ours(node.children[0].children) == library_fields(message)


def test_depth_limit_is_a_finding() -> None:
    data = nested(wire.MAX_DEPTH + 8, wire_len(1, b"\x08\x01"))
    decoded = decode_message(data, None)
    assert [f.code for f in decoded.findings] == ["protobuf.depth_limit"]
    assert f"MAX_DEPTH ({wire.MAX_DEPTH})" in decoded.findings[0].message
    node = content_of(decoded.content)
    depth = 0
    while isinstance(node, dict):
        node = node["1"]
        depth += 1
    assert depth == wire.MAX_DEPTH + 1 and isinstance(node, str)  # the level below is hex
    assert bytes.fromhex(node) == nested(7, wire_len(1, b"\x08\x01"))


def test_field_limit_cuts_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """More top-level fields than MAX_FIELDS: the first MAX_FIELDS are kept, with the library's
    values, and the finding says so (before, a `protobuf.malformed` error)."""
    monkeypatch.setattr(wire, "MAX_FIELDS", 1000)
    data = b"".join(varint(1 << 3) + varint(n * 977) for n in range(1500))
    decoded = decode_message(data, None)
    assert [f.code for f in decoded.findings] == ["protobuf.field_limit"]
    reading = wire.read(data)
    assert reading.error is None and len(reading.fields) == 1000
    assert ours(reading.fields) == library_fields(data)[:1000]


def test_salvage_keeps_within_the_field_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed message is salvaged field by field: before, each top-level field was read again
    with a fresh allowance of MAX_FIELDS, so ten fields of 900 fields each kept 9,000."""
    monkeypatch.setattr(wire, "MAX_FIELDS", 1000)
    inner = b"".join(varint(1 << 3) + varint(n) for n in range(900))
    data = wire_len(1, inner) * 10 + b"\x00"  # field number 0: malformed at the end
    reading = wire.read(data)
    assert reading.error is not None and "field number 0" in reading.error
    assert count_nodes(reading.fields) <= 1000
    assert reading.fields[0].kind == "message" and reading.fields[1].kind != "message"
    assert ours(reading.fields) == library_fields(data[:-1])[: len(reading.fields)]


def test_abandoned_readings_are_bounded_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Length-delimited fields that parse as fields up to their last byte: each is read as a message
    and abandoned. Reads are counted: at most MAX_WORK plus the fields kept, not one per byte."""
    monkeypatch.setattr(wire, "MAX_WORK", 5000)
    calls = 0
    real = wire.read_varint

    def counted(data: wire.Buffer, pos: int, end: int) -> tuple[int, int]:
        nonlocal calls
        calls += 1
        return real(data, pos, end)

    monkeypatch.setattr(wire, "read_varint", counted)
    almost = b"\x08\x01" * 2000 + b"\x07"  # wire type 7 does not exist: the reading fails at the end
    data = wire_len(1, almost) * 100  # 100 x 2,000 fields: 200,000 reads without the limit
    decoded = decode_message(data, None)
    assert [f.code for f in decoded.findings] == ["protobuf.work_limit"]
    assert calls < 2 * (5000 + 2000 + 200)  # a tag and a value varint per field read
    assert content_of(decoded.content) == {"1": [almost.hex()] * 100}


def test_truncation_at_every_boundary_keeps_the_whole_fields_before(samples: list[bytes]) -> None:
    message = max((m for m in samples if len(m) < 1000), key=len)
    whole = wire.read(message).fields
    for cut in range(len(message)):
        reading = wire.read(message[:cut])
        want = [(f.number, f.span, f.kind) for f in whole if f.span[1] <= cut]
        assert [(f.number, f.span, f.kind) for f in reading.fields] == want


def test_printable_looks_at_the_start_first() -> None:
    """Text is told from binary by its first bytes (PRINTABLE_PREFIX) before it is decoded whole:
    a large binary field is not decoded at every nesting level. A character cut at the prefix's
    end is not binary; text is checked whole."""
    text = "héllo wörld\tand\r\nmore " * 1000
    assert wire._printable(memoryview(text.encode()))
    assert not wire._printable(memoryview(text.encode() + b"\x01"))
    straddling = ("a" * (wire.PRINTABLE_PREFIX - 1) + "é" * 10).encode()
    assert straddling[wire.PRINTABLE_PREFIX - 1] == 0xC3 and wire._printable(memoryview(straddling))
    assert not wire._printable(memoryview(b"\xff" + b"a" * 1000))
