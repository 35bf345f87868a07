"""captures/net.py on ICMP and ICMPv6: the message header and the IP and UDP headers an error
quotes, field by field as tshark dissects them, on real kernel errors (tests/decoders/icmp/samples)
and the public corpus; truncated and hostile messages give findings, never exceptions."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protoscope.captures import linktypes as lt
from protoscope.captures.index import load
from protoscope.captures.net import dissect
from tests.conftest import ROOT, public_capture, tshark

SAMPLE = ROOT / "tests" / "decoders" / "icmp" / "samples" / "icmp-unreachable.pcap"
FIELDS = (
    "icmp.type", "icmp.code", "icmp.checksum", "icmp.unused", "icmp.mtu", "icmp.length", "icmp.pointer",
    "icmpv6.type", "icmpv6.code", "icmpv6.checksum", "icmpv6.reserved", "icmpv6.mtu",
    "ip.hdr_len", "ip.len", "ip.id", "ip.ttl", "ip.proto", "ip.frag_offset",
    "ip.flags.df", "ip.flags.mf", "ip.src", "ip.dst",
    "ipv6.plen", "ipv6.nxt", "ipv6.hlim", "ipv6.flow", "ipv6.src", "ipv6.dst",
    "udp.srcport", "udp.dstport", "udp.length", "udp.checksum",
)  # fmt: skip
"""Every field both dissect, in every occurrence (the outer IP header's and the quoted one's).
Not ip.version: tshark gives it for IPv6 headers too."""
ICMP_PUBLIC = (
    "ndpi--stun.pcap",
    "ndpi--stun_signal.pcapng",
    "ndpi--stun_wa_call.pcapng",
    "ndpi--teams.pcap",
    "wswiki--1920x1080_H.265.pcapng",
)
"""The public captures that hold ICMP errors (found with `tshark -Y icmp`)."""


def _text(value: object) -> str:
    """Our value as tshark's -T fields writes it (integers compared as numbers by the caller)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _same(ours: str, theirs: str) -> bool:
    if ours == theirs:
        return True
    try:
        return int(ours) == int(theirs, 0)
    except ValueError:
        return False


def _compare(path: Path) -> int:
    """Compare our ICMP packets' layers with tshark's on `path`; the number of packets compared."""
    rows = tshark("-r", str(path), "-T", "fields", "-E", "occurrence=a", "-e", "frame.number",
                  "-e", "frame.protocols", *(a for f in FIELDS for a in ("-e", f)))  # fmt: skip
    ix = load(path)
    compared = 0
    try:
        for line in rows.splitlines():
            number, protocols, *values = line.split("\t")
            if ":icmp" not in protocols:
                continue
            i = int(number) - 1
            d = ix.dissect(i)
            ours: dict[str, list[str]] = {}
            for layer in d.layers:
                for name, value in layer.fields.items():
                    ours.setdefault(name, []).append(_text(value))
            # tshark names the quoted payload's protocol too (stun, rtp, data): our stack ends at udp
            theirs_stack = [p for p in protocols.split(":") if p != "ethertype"]
            stack = list(ix.stacks[int(ix.stack[i])])
            assert theirs_stack[: len(stack)] == stack, (path.name, number)
            for name, value in zip(FIELDS, values, strict=True):
                expected = value.split(",") if value else []
                got = ours.get(name, [])
                if name == "icmp.unused":  # the part before RFC 4884's length only (net._icmp_rest)
                    expected = expected[:1]
                assert len(got) == len(expected), (path.name, number, name, got, expected)
                assert all(_same(a, b) for a, b in zip(got, expected, strict=True)), (
                    path.name, number, name, got, expected,
                )  # fmt: skip
            assert int(ix.flow[i]) == -1  # an error makes no flow of the datagram it quotes
            compared += 1
    finally:
        ix.close()
    return compared


def test_kernel_errors_match_tshark() -> None:
    assert _compare(SAMPLE) == 4


@pytest.mark.parametrize("name", ICMP_PUBLIC)
def test_public_errors_match_tshark(name: str) -> None:
    assert _compare(public_capture(name)) > 0


def _ipv4(payload: bytes, proto: int = 1) -> bytes:
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64, proto, 0,
                       bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) + payload  # fmt: skip


QUOTED = _ipv4(struct.pack(">HHHH", 5000, 3478, 28, 0) + bytes(20), proto=17)
PORT_UNREACHABLE = struct.pack(">BBHI", 3, 3, 0, 0) + QUOTED


def test_quote_cut_short_names_only_what_is_there() -> None:
    names = []
    for cut in range(len(PORT_UNREACHABLE) + 1):
        d = dissect(lt.RAW, _ipv4(PORT_UNREACHABLE[:cut]))
        names.append(d.protocols)
        assert d.l4 == 0
        if cut < 8:
            assert [f.code for f in d.findings] == ["icmp.truncated"]
        else:
            assert d.findings == []
    assert names[7] == ("raw", "ip")
    assert names[8 + 19] == ("raw", "ip", "icmp")
    assert names[8 + 20] == ("raw", "ip", "icmp", "ip")
    assert names[8 + 27] == ("raw", "ip", "icmp", "ip")
    assert names[8 + 28] == ("raw", "ip", "icmp", "ip", "udp")


def test_echo_has_no_quote() -> None:
    d = dissect(lt.RAW, _ipv4(struct.pack(">BBHHH", 8, 0, 0, 7, 9) + QUOTED))
    assert d.protocols == ("raw", "ip", "icmp")
    assert d.layers[-1].fields["icmp.ident"] == 7
    assert d.layers[-1].fields["icmp.seq"] == 9


def test_quoted_later_fragment_has_no_transport() -> None:
    fragment = bytearray(QUOTED)
    fragment[6:8] = struct.pack(">H", 185)  # offset 1480
    d = dissect(lt.RAW, _ipv4(struct.pack(">BBHI", 11, 1, 0, 0) + bytes(fragment)))
    assert d.protocols == ("raw", "ip", "icmp", "ip")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.booleans())
def test_any_icmp_message_dissects(body: bytes, v6: bool) -> None:
    if v6:
        frame = (
            struct.pack(">IHBB", 0x60000000, len(body), 58, 64) + bytes(15) + b"\1" + bytes(15) + b"\1" + body
        )
    else:
        frame = _ipv4(body)
    for detail in (True, False):
        d = dissect(lt.RAW, frame, detail=detail)
        assert d.l4 == 0
        assert all(layer.start <= layer.end <= len(frame) for layer in d.layers)
