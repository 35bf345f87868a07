"""Schema-less protobuf: protoc --decode_raw is the oracle; hostile input stays bounded."""

from __future__ import annotations

import subprocess
import sys

from google.protobuf import descriptor_pb2
from hypothesis import given
from hypothesis import strategies as st

from protoscope.decoders.http2.records import MessageRecord
from protoscope.decoders.protobuf import wire
from protoscope.decoders.registry import load_registry
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES


def decode_raw(data: bytes) -> str:
    """protoc --decode_raw (grpcio-tools' protoc) on `data`."""
    result = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "--decode_raw"],
        input=data,
        capture_output=True,
        check=True,
    )
    return result.stdout.decode().rstrip("\n")


def sample_messages() -> list[bytes]:
    session = Session.open(SAMPLES / "grpc-demo.pcap", load_registry())
    try:
        return [
            p.record.data
            for pd in session.decode()
            for p in pd.pdus
            if isinstance(p.record, MessageRecord) and p.record.data is not None
        ]
    finally:
        session.close()


def test_every_sample_message_equals_protoc_decode_raw() -> None:
    messages = sample_messages()
    assert len(messages) >= 40
    # One protoc run for all: each message is wrapped as field 1 of an outer message.
    outer = b"".join(wire_len(1, m) for m in messages)
    ours = wire.to_text(wire.decode(outer)[0])
    assert ours == decode_raw(outer)


def wire_len(number: int, data: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(data)) + data


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def test_descriptor_bytes_equal_protoc() -> None:
    fd = descriptor_pb2.FileDescriptorProto(name="x.proto", package="a.b")
    msg = fd.message_type.add(name="M")
    msg.field.add(name="f", number=1, type=9, label=1)
    msg.field.add(name="g", number=2, type=1, label=3)
    raw = fd.SerializeToString()
    assert wire.to_text(wire.decode(raw)[0]) == decode_raw(raw)


def test_ambiguous_len_field_lists_its_readings() -> None:
    fields, error = wire.decode(wire_len(1, b"hi"))
    assert error is None
    # b"hi" parses as {13: 105} and is printable text: both readings are offered, message first
    # (as protoc --decode_raw shows it).
    assert fields[0].candidates[:2] == ("message", "string")


def test_groups() -> None:
    data = bytes([0x0B, 0x10, 0x05, 0x0C])  # field 1 start group, field 2 varint 5, end group
    fields, error = wire.decode(data)
    assert error is None and fields[0].kind == "group" and fields[0].children[0].value == 5


def test_deep_nesting_is_bounded() -> None:
    data = b""
    for _ in range(5000):
        data = wire_len(1, data) if data else wire_len(1, b"x")
    fields, error = wire.decode(data)
    assert error is None
    depth = 0
    node = fields[0]
    while node.children:
        node = node.children[0]
        depth += 1
    assert depth <= wire.MAX_DEPTH


def test_huge_declared_length_is_an_error_not_an_allocation() -> None:
    data = varint(1 << 3 | 2) + varint(2**31) + b"abc"
    fields, error = wire.decode(data)
    assert fields == [] and error is not None and "runs past the end" in error


@given(st.binary(max_size=500))
def test_random_bytes_never_raise(data: bytes) -> None:
    fields, _ = wire.decode(data)
    wire.to_text(fields)
