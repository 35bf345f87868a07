"""Handshake messages reassembled from records within bounds: a message sent one byte a record
costs its length once, not once a record (the held bytes are appended to, and parsed once whole);
a length over MAX_HANDSHAKE_MESSAGE is found even when its header is itself split over records.

The real bytes are OpenSSL's (tests/decoders/tls/samples/reneg.pcap, made by make_reneg.py): its
server flight (ServerHello, Certificate, ServerKeyExchange, ServerHelloDone) re-sent one byte a
record decodes as it does whole, and the connection's keys, set up from the reassembled
ServerHello, open every record after it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scapy.layers.inet import TCP
from scapy.utils import rdpcap

from protoscope.decoders.api import Endpoint, FlowContext
from protoscope.decoders.tls.decoder import MAX_HANDSHAKE_MESSAGE, Direction, TlsDecoder

from .common import Replay, keylog

SAMPLES = Path(__file__).parent / "samples"
RENEG, RENEG_KEYS = SAMPLES / "reneg.pcap", SAMPLES / "reneg.keys"
ACCEPTED = next(
    c
    for c in json.loads((SAMPLES / "reneg.truth.json").read_text())["connections"]
    if c["renegotiation"] == "accepted"
)


def segments(path: Path, port: int) -> list[tuple[bool, bytes]]:
    """(from the client, payload) of each TCP segment with data of the connection on `port`."""
    return [
        (p[TCP].dport == port, bytes(p[TCP].payload))
        for p in rdpcap(str(path))
        if TCP in p and port in (p[TCP].sport, p[TCP].dport) and bytes(p[TCP].payload)
    ]


def records(data: bytes) -> list[tuple[int, bytes]]:
    """(content type, content) of each whole record of `data`."""
    out, pos = [], 0
    while pos + 5 <= len(data):
        end = pos + 5 + int.from_bytes(data[pos + 3 : pos + 5], "big")
        out.append((data[pos], data[pos + 5 : end]))
        pos = end
    return out


def one_byte_records(content: bytes, version: bytes = b"\x03\x03") -> bytes:
    return b"".join(b"\x16" + version + b"\x00\x01" + content[k : k + 1] for k in range(len(content)))


class CountingBuffer(bytearray):
    """A direction's held handshake bytes that count every byte copied into or out of them."""

    moved = 0

    def __iadd__(self, other):  # type: ignore[no-untyped-def,override]
        self.moved += len(other)
        return super().__iadd__(other)

    def __setitem__(self, key, value):  # type: ignore[no-untyped-def,override]
        self.moved += len(value) if isinstance(key, slice) else 1
        super().__setitem__(key, value)

    def __bytes__(self) -> bytes:
        self.moved += len(self)
        return bytes(memoryview(self))


def context(from_client: bool, shared: dict[str, object]) -> FlowContext:
    a, b = Endpoint("127.0.0.1", 40000), Endpoint("127.0.0.1", 443)
    return FlowContext(
        1, "tcp", a if from_client else b, b if from_client else a, from_client, 1, 0.0, shared=shared
    )


def server_flight() -> tuple[bytes, bytes]:
    """The accepted connection's ClientHello segment and its server flight's handshake bytes."""
    segs = segments(RENEG, ACCEPTED["port"])
    hello = segs[0][1]
    assert segs[0][0] and not segs[1][0]
    flight = b"".join(content for ctype, content in records(segs[1][1]) if ctype == 22)
    return hello, flight


def test_a_real_flight_one_byte_a_record_decodes_as_it_does_whole() -> None:
    segs = segments(RENEG, ACCEPTED["port"])
    _, flight = server_flight()
    assert len(flight) > 1000
    whole = Replay(keylog(path=RENEG_KEYS)).run(segs)
    replay = Replay(keylog(path=RENEG_KEYS))
    bytewise = replay.run([segs[0], (False, one_byte_records(flight)), *segs[2:]])
    done = [row for row in bytewise[1 : 1 + len(flight)] if "fragment" not in row[1]]
    assert done == whole[1:5]
    assert [row[1] for row in done] == [
        "Server Hello",
        "Certificate",
        "Server Key Exchange",
        "Server Hello Done",
    ]
    assert bytewise[1 + len(flight) :] == whole[5:]  # the rest, renegotiation included, the same
    sent = {"client": b"", "server": b""}
    for from_client, _, inner, codes in bytewise:
        assert codes == ()
        sent["client" if from_client else "server"] += inner
    assert sent == {w: "".join(lines).encode() for w, lines in ACCEPTED["sent"].items()}


@pytest.mark.parametrize("n", [1_000, 20_000])
def test_a_message_one_byte_a_record_is_copied_once(n: int) -> None:
    """The review's input (craft.py tlshs): a Certificate declaring a 1 MiB body, then n one-byte
    records of it. Bytes moved in and out of the held buffer grow with n, not n squared (the
    quadratic reassembly copied the whole held message for every record: ~n^2/2)."""
    hello, _ = server_flight()
    decoder = TlsDecoder()
    shared: dict[str, object] = {}
    decoder.decode(hello, decoder.new_state(), context(True, shared))
    state = Direction(handshake=CountingBuffer())
    header = b"\x16\x03\x03\x00\x04\x0b" + MAX_HANDSHAKE_MESSAGE.to_bytes(3, "big")
    data = header + b"\x16\x03\x03\x00\x01\x00" * n
    result = decoder.decode(data, state, context(False, shared))
    assert result.consumed == len(data) and len(result.pdus) == n + 1
    assert all(p.summary == "Certificate (fragment)" and not p.findings for p in result.pdus)
    held = state.handshake
    assert isinstance(held, CountingBuffer) and len(held) == 4 + n
    assert held.moved <= 4 + n


def test_the_held_message_is_parsed_once_it_is_whole() -> None:
    """A message completed by its last one-byte record is parsed then, once: the bytes moved are
    its length appended plus its length read out."""
    hello, flight = server_flight()
    decoder = TlsDecoder()
    shared: dict[str, object] = {}
    decoder.decode(hello, decoder.new_state(), context(True, shared))
    state = Direction(handshake=CountingBuffer())
    result = decoder.decode(one_byte_records(flight), state, context(False, shared))
    done = [p.summary for p in result.pdus if "fragment" not in p.summary]
    assert done == ["Server Hello", "Certificate", "Server Key Exchange", "Server Hello Done"]
    held = state.handshake
    assert isinstance(held, CountingBuffer) and len(held) == 0
    assert held.moved <= 2 * len(flight)


@pytest.mark.parametrize("split", [1, 2, 3, 4])
def test_a_length_over_the_limit_is_found_when_its_header_is_split(split: int) -> None:
    """A length over MAX_HANDSHAKE_MESSAGE, its header in `split`-byte records after a first byte:
    one tls.handshake_limit when the length is whole, nothing held, later records not parsed."""
    hello, _ = server_flight()
    decoder = TlsDecoder()
    shared: dict[str, object] = {}
    decoder.decode(hello, decoder.new_state(), context(True, shared))
    head = b"\x0b" + (MAX_HANDSHAKE_MESSAGE + 1).to_bytes(3, "big")
    data = b"\x16\x03\x03\x00\x01" + head[:1]
    for k in range(1, 4, split):
        part = head[k : k + split]
        data += b"\x16\x03\x03" + len(part).to_bytes(2, "big") + part
    data += b"\x16\x03\x03\x00\x01\x00" * 100
    state = decoder.new_state()
    result = decoder.decode(data, state, context(False, shared))
    codes = [f.code for p in result.pdus for f in p.findings]
    assert codes == ["tls.handshake_limit"]
    assert state.handshake_off and len(state.handshake) == 0
    assert [p.summary for p in result.pdus][-100:] == ["Handshake"] * 100


def test_a_message_at_the_limit_is_held_whole_and_no_more() -> None:
    """A message of exactly MAX_HANDSHAKE_MESSAGE bytes in 16 KiB records: held until whole (never
    more than 4 + the limit), then parsed (a bad Certificate: a finding, not an exception)."""
    hello, _ = server_flight()
    decoder = TlsDecoder()
    shared: dict[str, object] = {}
    decoder.decode(hello, decoder.new_state(), context(True, shared))
    message = b"\x0b" + MAX_HANDSHAKE_MESSAGE.to_bytes(3, "big") + bytes(MAX_HANDSHAKE_MESSAGE)
    state = decoder.new_state()
    most = 0
    for k in range(0, len(message), 1 << 14):
        part = message[k : k + (1 << 14)]
        result = decoder.decode(
            b"\x16\x03\x03" + len(part).to_bytes(2, "big") + part, state, context(False, shared)
        )
        most = max(most, len(state.handshake))
    assert most <= 4 + MAX_HANDSHAKE_MESSAGE and len(state.handshake) == 0
    assert result.pdus[-1].record.handshake_types == (11,)
