"""SCTP packets: every chunk aiortc sent decodes to what aiortc says it sent; the chunks aiortc
never sends (I-DATA, HEARTBEAT, SHUTDOWN*, ERROR causes, NR-SACK, I-FORWARD-TSN, PAD, unknown
types) laid out by hand per their RFCs with a real CRC32c; truncation at every boundary and
arbitrary bytes give findings, never exceptions."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protoscope.decoders.api import declared_fields
from protoscope.decoders.sctp import SctpDecoder
from protoscope.decoders.sctp.packets import crc32c, looks_like_sctp, parse_packet
from protoscope.inspector.session import flatten
from tests.decoders.sctp.vectors import (
    Run,
    chunk,
    ctx,
    data_chunk,
    i_data_chunk,
    packet,
    packets,
    param,
)

DECLARED = {f.abbrev for f in declared_fields(SctpDecoder())}


def values(fields: Any, name: str) -> list[object]:
    """Every value of `name` in a tree, in order (flatten() folds repeats into one list)."""
    got = flatten(fields).get(name)
    if got is None:
        return []
    return list(got) if isinstance(got, list) else [got]


def walk(fields: Any) -> list[Any]:
    out, stack = [], list(fields)
    while stack:
        f = stack.pop()
        out.append(f)
        stack.extend(f.children)
    return out


@pytest.mark.parametrize("n", range(len(packets())))
def test_every_chunk_equals_what_aiortc_sent(n: int) -> None:
    p = packets()[n]
    data = bytes.fromhex(p["hex"])
    want = p["chunk"]
    assert looks_like_sctp(data)
    parsed = parse_packet(data)
    assert parsed.checksum_ok and not parsed.findings
    (c,) = parsed.chunks  # aiortc bundles no chunks
    tree = parsed.fields()
    assert c.ctype == want["type"]
    assert values(tree, "sctp.chunk_type") == [want["type"]]
    assert values(tree, "sctp.chunk_flags") == [want["flags"]]
    start = c.span[0]
    length = values(tree, "sctp.chunk_length")[0]
    assert isinstance(length, int)
    assert data[start + 4 : start + length].hex() == want["body"][: 2 * (length - 4)]
    assert {f.name for f in walk(tree)} <= DECLARED
    for f in walk(tree):
        assert 0 <= f.span[0] <= f.span[1] <= len(data), f
    if want["type"] == 0:
        assert values(tree, "sctp.data_tsn") == values(tree, "sctp.data_tsn_raw") == [want["tsn"]]
        assert values(tree, "sctp.data_sid") == [want["stream_id"]]
        assert values(tree, "sctp.data_ssn") == [want["stream_seq"]]
        assert values(tree, "sctp.data_payload_proto_id") == [want["protocol"]]
        (d,) = parsed.data
        assert data[d.payload[0] : d.payload[1]].hex() == want["user_data"]
        assert values(tree, "sctp.data_b_bit") == [bool(want["flags"] & 2)]
        assert values(tree, "sctp.data_e_bit") == [bool(want["flags"] & 1)]
        assert values(tree, "sctp.data_u_bit") == [bool(want["flags"] & 4)]
    elif want["type"] in (1, 2):
        p_ = "sctp.init_" if want["type"] == 1 else "sctp.initack_"
        assert values(tree, p_ + "initiate_tag") == [want["initiate_tag"]]
        assert values(tree, p_ + "credit") == [want["advertised_rwnd"]]
        assert values(tree, p_ + "nr_out_streams") == [want["outbound_streams"]]
        assert values(tree, p_ + "nr_in_streams") == [want["inbound_streams"]]
        assert values(tree, p_ + "initial_tsn") == [want["initial_tsn"]]
        assert values(tree, "sctp.parameter_type") == [t for t, _ in want["params"]]
        if want["type"] == 2:  # the state cookie
            cookie = next(v for t, v in want["params"] if t == 7)
            assert values(tree, "sctp.parameter_state_cookie") == [cookie]
        assert values(tree, "sctp.supported_chunk_type") == [192, 130]  # FORWARD-TSN, RE-CONFIG
    elif want["type"] == 3:
        assert values(tree, "sctp.sack_cumulative_tsn_ack") == [want["cumulative_tsn"]]
        assert values(tree, "sctp.sack_cumulative_tsn_ack_raw") == [want["cumulative_tsn"]]
        assert values(tree, "sctp.sack_a_rwnd") == [want["advertised_rwnd"]]
        assert values(tree, "sctp.sack_gap_block_start") == [g[0] for g in want["gaps"]]
        assert values(tree, "sctp.sack_gap_block_end") == [g[1] for g in want["gaps"]]
        assert values(tree, "sctp.sack_duplicate_tsn") == want["duplicates"]
        assert values(tree, "sctp.sack_gap_block_start_tsn") == [
            (want["cumulative_tsn"] + g[0]) % 2**32 for g in want["gaps"]
        ]
    elif want["type"] == 192:
        assert values(tree, "sctp.forward_tsn_tsn") == [want["cumulative_tsn"]]
        assert values(tree, "sctp.forward_tsn_sid") == [s[0] for s in want["streams"]]
    elif want["type"] == 130:
        ((ptype, value),) = want["params"]
        v = bytes.fromhex(value)
        assert values(tree, "sctp.parameter_type") == [ptype]
        if ptype == 13:
            req, resp, last = struct.unpack("!III", v[:12])
            assert values(tree, "sctp.parameter_reconfig_request_sequence_number") == [req]
            assert values(tree, "sctp.parameter_reconfig_response_sequence_number") == [resp]
            assert values(tree, "sctp.parameter_senders_last_assigned_tsn") == [last]
            streams = [int.from_bytes(v[i : i + 2], "big") for i in range(12, len(v), 2)]
            assert values(tree, "sctp.parameter_reconfig_sid") == streams
            assert parsed.reset_streams == streams
        else:
            resp, result = struct.unpack("!II", v)
            assert values(tree, "sctp.parameter_reconfig_response_sequence_number") == [resp]
            assert values(tree, "sctp.parameter_reconfig_response_result") == [result]
    elif want["type"] == 6:
        assert parsed.abort_causes == [] and values(tree, "sctp.abort_t_bit") == [False]
    elif want["type"] == 10:
        assert values(tree, "sctp.cookie") == [want["body"]]


def test_checksum_bad_is_a_finding_and_nothing_is_reassembled() -> None:
    p = next(p for p in packets() if p["chunk"]["type"] == 0 and p["chunk"]["protocol"] == 51)
    data = bytearray.fromhex(p["hex"])
    data[-1] ^= 0x40
    assert not looks_like_sctp(bytes(data))
    result = Run().decode(bytes(data), True)
    (pdu,) = result.pdus  # no user message from a packet the receiver would drop
    assert [f.code for f in pdu.findings] == ["sctp.checksum_bad"]
    assert flatten(pdu.fields)["sctp.checksum.status"] == "Bad"
    assert pdu.record.checksum_ok is False  # type: ignore[attr-defined]


def test_zero_checksum_only_where_rfc_9653_was_announced() -> None:
    """RFC 9653: a zero checksum is good only towards a side that announced Zero Checksum
    Acceptable in its INIT or INIT-ACK."""
    init = chunk(1, 0, struct.pack("!IIHHI", 0xA, 65536, 10, 10, 1) + param(0x8001, struct.pack("!I", 1)))
    zero = packet(data_chunk(1, 0, 0, 51, b"hi"), crc=False)
    run = Run()
    assert not run.decoder.sniff(zero, ctx(1, True))
    assert [f.code for f in run.decode(zero, True).findings] == []  # findings ride on the PDU
    assert run.decode(zero, True).pdus[0].findings[0].code == "sctp.checksum_bad"
    run.decode(packet(init), False)  # the server accepts zero checksums
    result = run.decode(zero, True)
    assert flatten(result.pdus[0].fields)["sctp.checksum.status"] == "Zero (RFC 9653)"
    assert [p.protocol for p in result.pdus] == ["sctp", "datachannel"]
    assert run.decode(zero, False).pdus[0].findings[0].code == "sctp.checksum_bad"  # not the other way


def test_init_parameters() -> None:
    params = (
        param(5, bytes([192, 0, 2, 1]))
        + param(6, bytes(range(16)))
        + param(9, struct.pack("!I", 5000))
        + param(11, b"example.org\x00")
        + param(12, struct.pack("!HH", 5, 6))
        + param(0x8008, bytes([130, 192, 64]))
        + param(0xC000, b"")
        + param(0xC006, struct.pack("!I", 0xDEADBEEF))
        + param(0x8002, bytes(32))
        + param(0x7777, b"\x01\x02")  # unknown, high bits 01: stop, report
    )
    data = packet(chunk(1, 0, struct.pack("!IIHHI", 0x11223344, 131072, 1024, 2048, 77) + params))
    tree = parse_packet(data).fields()
    f = flatten(tree)
    assert f["sctp.init_initiate_tag"] == 0x11223344 and f["sctp.init_nr_in_streams"] == 2048
    assert f["sctp.parameter_ipv4_address"] == "192.0.2.1"
    assert f["sctp.parameter_ipv6_address"] == "1:203:405:607:809:a0b:c0d:e0f"
    assert f["sctp.parameter_cookie_preservative_incr"] == 5000
    assert f["sctp.parameter_hostname"] == "example.org"
    assert f["sctp.parameter_supported_address_type"] == [5, 6]
    assert f["sctp.supported_chunk_type"] == [130, 192, 64]
    assert f["sctp.adaptation_layer_indication"] == 0xDEADBEEF
    assert f["sctp.random_number"] == "00" * 32
    assert f["sctp.parameter_bit_1"] is False and f["sctp.parameter_bit_2"] is True
    assert "Unknown parameter 0x7777" in str(values(tree, "sctp.parameter")[-1])
    assert {x.name for x in walk(tree)} <= DECLARED


def test_chunks_aiortc_does_not_send() -> None:
    hb_info = param(1, b"heartbeat-nonce")
    error = chunk(
        9,
        0,
        param(1, struct.pack("!HH", 7, 0))  # invalid stream 7 (a cause has the parameter layout)
        + param(3, struct.pack("!I", 1500))
        + param(9, struct.pack("!I", 42))
        + param(13, b"bad things"),
    )
    abort = chunk(6, 1, param(12, b"bye"))
    nr_sack = chunk(
        16, 0, struct.pack("!IIHHHH", 100, 5000, 1, 1, 1, 0) + struct.pack("!HHHHI", 2, 3, 5, 5, 99)
    )
    i_fwd = chunk(194, 0, struct.pack("!IHHI", 300, 4, 1, 17))
    data = packet(
        chunk(4, 0, hb_info),
        chunk(5, 0, hb_info),
        chunk(7, 0, struct.pack("!I", 1234)),
        chunk(8, 0, b""),
        chunk(14, 1, b""),
        error,
        abort,
        nr_sack,
        i_fwd,
        chunk(132, 0, bytes(7)),
        chunk(12, 0, struct.pack("!I", 55)),
        chunk(13, 0, struct.pack("!I", 56)),
        chunk(0xBF, 0x5A, b"\xaa\xbb"),  # unknown, high bits 10: skip
    )
    parsed = parse_packet(data)
    tree = parsed.fields()
    f = flatten(tree)
    assert f["sctp.chunk_type"] == [4, 5, 7, 8, 14, 9, 6, 16, 194, 132, 12, 13, 0xBF]
    assert f["sctp.parameter_heartbeat_information"] == [b"heartbeat-nonce".hex()] * 2
    assert f["sctp.shutdown_cumulative_tsn_ack"] == 1234
    assert f["sctp.shutdown_complete_t_bit"] is True and f["sctp.abort_t_bit"] is True
    assert f["sctp.cause_code"] == [1, 3, 9, 13, 12]
    assert f["sctp.cause_stream_identifier"] == 7
    assert f["sctp.cause_measure_of_staleness"] == 1500
    assert f["sctp.cause_tsn"] == 42
    assert f["sctp.cause_information"] == [b"bad things".hex(), b"bye".hex()]
    assert parsed.abort_causes == ["User initiated abort: bye"]
    assert f["sctp.nr_sack_cumulative_tsn_ack"] == 100
    assert f["sctp.nr_sack_gap_block_start_tsn"] == 102 and f["sctp.nr_sack_nr_gap_block_end_tsn"] == 105
    assert f["sctp.nr_sack_duplicate_tsn"] == 99
    assert (f["sctp.i_forward_tsn_tsn"], f["sctp.i_forward_tsn_sid"], f["sctp.forward_tsn_mid"]) == (
        300,
        4,
        17,
    )
    assert f["sctp.i_forward_tsn_u_bit"] is True and parsed.forward_streams == [(4, True, 17)]
    assert f["sctp.padding_data"] == "00" * 7
    assert (f["sctp.ecne_lowest_tsn"], f["sctp.cwr_lowest_tsn"]) == (55, 56)
    assert f["sctp.chunk_bit_1"] is True and f["sctp.chunk_bit_2"] is False
    assert [x.code for x in parsed.findings] == ["sctp.unknown_chunk"]
    assert "skip this chunk" in parsed.findings[0].message
    assert {x.name for x in walk(tree)} <= DECLARED


def test_i_data_fields() -> None:
    data = packet(
        i_data_chunk(10, 2, 5, 51, b"first", flags=0x02),
        i_data_chunk(11, 2, 5, 1, b"last", flags=0x01),
    )
    tree = parse_packet(data).fields()
    f = flatten(tree)
    assert f["sctp.data_tsn"] == [10, 11] and f["sctp.data_mid"] == [5, 5]
    assert f["sctp.data_payload_proto_id"] == 51 and f["sctp.data_fsn"] == 1
    result = Run().decode(data, True)
    assert [p.protocol for p in result.pdus] == ["sctp", "datachannel"]
    assert result.pdus[1].record.data == b"firstlast"  # type: ignore[attr-defined]


def boundaries() -> list[tuple[str, bytes, int]]:
    """Each distinct kind of aiortc packet, cut at every offset."""
    seen: dict[tuple[int, int], bytes] = {}
    for p in packets():
        seen.setdefault((p["chunk"]["type"], len(p["hex"]) // 2 > 100), bytes.fromhex(p["hex"]))
    return [(f"type{k[0]}-{cut}", data, cut) for k, data in seen.items() for cut in range(len(data))]


def test_truncation_at_every_boundary() -> None:
    """A packet cut anywhere: findings (a bad checksum at least), spans within the bytes, no
    exception, and the decoder's state still decodes the whole packet afterwards."""
    for name, data, cut in boundaries():
        run = Run()
        short = data[:cut]
        assert not looks_like_sctp(short), name
        result = run.decode(short, True)
        (pdu,) = result.pdus
        assert pdu.findings, name
        for f in walk(pdu.fields):
            assert 0 <= f.span[0] <= f.span[1] <= len(short), (name, f)
        assert run.decode(data, True).pdus[0].record.checksum_ok  # type: ignore[attr-defined]


def test_chunk_lengths_that_lie() -> None:
    base = packet(data_chunk(1, 0, 0, 51, b"hello"))
    for length in (0, 3, 100, 0xFFFF):
        data = bytearray(base)
        data[14:16] = length.to_bytes(2, "big")
        data[8:12] = crc32c(bytes(data)).to_bytes(4, "little")  # the checksum verifies: only the length lies
        assert not looks_like_sctp(bytes(data))
        codes = [f.code for f in parse_packet(bytes(data)).findings]
        assert "sctp.chunk_length_bad" in codes, length


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.booleans())
def test_arbitrary_bytes_never_raise(data: bytes, zero_ok: bool) -> None:
    parse_packet(data, zero_ok)
    run = Run()
    run.decode(data, True)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=40)), max_size=8))
def test_arbitrary_chunks_with_a_good_checksum_never_raise(chunks: list[tuple[int, int, bytes]]) -> None:
    """Valid framing, arbitrary types and values: every parser meets short and odd values."""
    data = packet(*(chunk(t, fl, v) for t, fl, v in chunks))
    run = Run()
    for client in (True, False, True):
        result = run.decode(data, client)
        for f in walk(result.pdus[0].fields):
            assert 0 <= f.span[0] <= f.span[1] <= len(data)
