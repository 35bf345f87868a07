"""decoders/icmp/message.py: the IcmpError of real kernel errors (the sample's truth), tshark's
words for every type and code, and any bytes cut anywhere or made up: None or an error, never an
exception."""

from __future__ import annotations

import json
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from protoscope.captures.index import load
from protoscope.decoders.icmp import IcmpError, describe, icmp_error
from protoscope.decoders.icmp.message import summary
from protoscope.inspector.icmp_errors import icmp_message
from tests.conftest import ROOT, tshark

SAMPLES = ROOT / "tests" / "decoders" / "icmp" / "samples"


def test_sample_errors_equal_truth() -> None:
    truth = json.loads((SAMPLES / "icmp-unreachable.truth.json").read_text())
    ix = load(SAMPLES / "icmp-unreachable.pcap")
    try:
        errors = []
        for i in range(len(ix)):
            message = icmp_message(ix, i)
            if message is not None:
                data, src, _ = message
                errors.append(icmp_error(data, 6 if ":" in src else 4, src))
    finally:
        ix.close()
    assert [e is not None and e.version for e in errors] == [t["version"] for t in truth]
    for error, expected in zip(errors, truth, strict=True):
        assert isinstance(error, IcmpError)
        assert (error.quoted_src, error.quoted_dst) == (expected["quoted_src"], expected["quoted_dst"])
        assert error.quoted_payload[8:20].hex() == expected["transaction"]  # the STUN request's
        assert error.reporter == ("::1" if error.version == 6 else "127.0.0.1")
        assert error.description == (
            "Destination Unreachable (Port unreachable)"
            if error.version == 6
            else "Destination unreachable (Port unreachable)"
        )


def _codes_capture(tmp: str) -> list[tuple[int, int, int]]:
    """A raw-IP pcap of every (version, type, code) worth naming, written to `tmp`."""
    quoted4 = bytes.fromhex("4500003000004000401100007f0000017f000001") + struct.pack(">HHHH", 1, 2, 28, 0)
    quoted6 = bytes.fromhex("60000000000d1140") + bytes(15) + b"\1" + bytes(15) + b"\1"
    quoted6 += struct.pack(">HHHH", 1, 2, 13, 0)
    # not 9: tshark names a Router advertisement by what follows its header
    cases = [(4, t, c) for t in (3, 4, 5, 11, 12, 40, 43) for c in range(17)]
    cases += [(4, t, 0) for t in (1, 6, 10, 19, 30, 41)]
    cases += [(6, t, c) for t in (1, 2, 3, 4) for c in range(9)] + [(6, t, 0) for t in (130, 133, 137)]
    with open(tmp, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
        for version, t, c in cases:
            if version == 4:
                body = struct.pack(">BBHI", t, c, 0, 0) + quoted4
                frame = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 1, 0, 64, 1, 0,
                                    bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + body  # fmt: skip
            else:
                body = struct.pack(">BBHI", t, c, 0, 0) + quoted6
                frame = struct.pack(">IHBB", 0x60000000, len(body), 58, 64) + (bytes(15) + b"\1") * 2 + body
            f.write(struct.pack("<IIII", 0, 0, len(frame), len(frame)) + frame)
    return cases


def test_names_are_tsharks(tmp_path: object) -> None:
    path = f"{tmp_path}/codes.pcap"
    cases = _codes_capture(path)
    infos = tshark("-r", path, "-o", 'gui.column.format:"Info","%i"').splitlines()
    assert len(infos) == len(cases)
    for (version, t, c), info in zip(cases, infos, strict=True):
        assert summary(version, t, c) == info.strip(), (version, t, c)


def test_description_has_no_padding() -> None:
    assert describe(4, 12, 0) == "Parameter problem (Pointer indicates the error)"
    assert summary(4, 12, 0) == "Parameter problem    (Pointer indicates the error)"
    assert describe(6, 2, 0) == "Packet Too Big"


def _ipv4_error(quote: bytes, mtype: int = 3, code: int = 3) -> bytes:
    return struct.pack(">BBHI", mtype, code, 0, 0) + quote


QUOTE4 = bytes.fromhex("45000030000040004011000a0a0000010a000002") + struct.pack(">HHHH", 5000, 3478, 28, 0)
QUOTE4 += bytes.fromhex("000100002112a442") + bytes(12)


def test_every_cut_is_none_or_an_error() -> None:
    data = _ipv4_error(QUOTE4)
    for cut in range(len(data) + 1):
        error = icmp_error(data[:cut], 4, "10.0.0.9")
        if cut < 8 + 20 + 8:
            assert error is None
        else:
            assert error is not None
            assert error.quoted_src == "10.0.0.1:5000"
            assert error.quoted_dst == "10.0.0.2:3478"
            assert error.quoted_payload == data[36:cut]


def test_not_errors_give_none() -> None:
    assert icmp_error(_ipv4_error(QUOTE4, mtype=8, code=0), 4, "x") is None  # an echo request
    assert icmp_error(_ipv4_error(QUOTE4, mtype=5, code=1), 4, "x") is None  # a redirect
    tcp = bytearray(QUOTE4)
    tcp[9] = 6
    assert icmp_error(_ipv4_error(bytes(tcp)), 4, "x") is None
    assert icmp_error(_ipv4_error(QUOTE4), 5, "x") is None


def test_quoted_ipv6_extension_headers_are_walked_and_bounded() -> None:
    base = bytearray(bytes.fromhex("6000000000000040") + bytes(15) + b"\1" + bytes(15) + b"\2")
    udp = struct.pack(">HHHH", 5000, 3478, 8, 0)
    hop = bytes([17, 0]) + bytes(6)
    base[6] = 0
    quoted = bytes(base) + hop + udp
    error = icmp_error(struct.pack(">BBHI", 1, 4, 0, 0) + quoted, 6, "::9")
    assert error is not None and error.quoted_dst == "[::2]:3478"
    chain = bytes([0, 0]) + bytes(6)
    endless = bytes(base) + chain * 20 + udp
    assert icmp_error(struct.pack(">BBHI", 1, 4, 0, 0) + endless, 6, "::9") is None


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([4, 6]))
def test_any_bytes(data: bytes, version: int) -> None:
    error = icmp_error(data, version, "10.0.0.9")
    assert error is None or isinstance(error, IcmpError)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([3, 11, 12]), st.integers(0, 255), st.binary(max_size=80))
def test_any_quote(mtype: int, code: int, tail: bytes) -> None:
    error = icmp_error(_ipv4_error(QUOTE4[:20] + tail, mtype, code), 4, "10.0.0.9")
    assert error is None or error.quoted_src.startswith("10.0.0.1:")
