"""HPACK header blocks: round trips with the hpack library's encoder, truncation, hostile input."""

from __future__ import annotations

import itertools

import pytest
from hpack import Encoder
from hypothesis import given
from hypothesis import strategies as st

from protoscope.decoders.http2 import header_block as hb
from protoscope.decoders.http2.header_block import (
    MAX_HEADER_LIST_SIZE,
    MAX_HEADERS,
    DynamicTable,
    decode_block,
)

TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
VALUE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)


@given(st.lists(st.lists(st.tuples(TOKEN, VALUE), min_size=1, max_size=12), min_size=1, max_size=5))
def test_round_trip_with_hpack_encoder(blocks: list[list[tuple[str, str]]]) -> None:
    encoder, table = Encoder(), DynamicTable()
    for headers in blocks:
        decoded, findings = decode_block(encoder.encode(headers), table)
        assert not findings
        assert [(h.name, h.value) for h in decoded] == headers


def test_spans_cover_the_block_in_order() -> None:
    block = Encoder().encode([(":method", "POST"), (":path", "/demo.Directory/Get"), ("x-id", "42")])
    decoded, _ = decode_block(block, DynamicTable(), base=100)
    assert decoded[0].span[0] == 100 and decoded[-1].span[1] == 100 + len(block)
    assert all(a.span[1] == b.span[0] for a, b in itertools.pairwise(decoded))


def test_truncation_at_every_boundary() -> None:
    block = Encoder().encode([(":path", "/a/b"), ("custom-key", "custom-value" * 3), ("grpc-timeout", "1S")])
    for cut in range(len(block)):
        decoded, findings = decode_block(block[:cut], DynamicTable())
        complete = [h for h in decoded if h.known]
        assert len(complete) <= 3
        if cut and len(decoded) < 3:
            assert findings or cut in {h.span[1] for h in decoded}


def test_unknown_dynamic_entries_midstream() -> None:
    encoder = Encoder()
    encoder.encode([("x-secret", "before the capture")])
    block = encoder.encode([("x-secret", "before the capture"), ("x-new", "v")])
    table = DynamicTable(complete=False)
    decoded, findings = decode_block(block, table)
    assert [(h.name, h.known) for h in decoded] == [("<unknown>", False), ("x-new", True)]
    assert findings[0].code == "hpack.unknown_index" and findings[0].severity == "warn"
    # The table fills from new literals: the next block's reference to x-new is known.
    decoded, _ = decode_block(encoder.encode([("x-new", "v")]), table)
    assert (decoded[0].name, decoded[0].value) == ("x-new", "v")


def test_header_list_bomb_ends_in_a_finding() -> None:
    encoder = Encoder()
    big = "x" * 4000
    first = encoder.encode([("big", big)])
    bomb = first + bytes([0x80 | 62]) * 100_000  # 100,000 references to a 4 KB entry: 400 MB
    decoded, findings = decode_block(bomb, DynamicTable())
    assert findings[-1].code == "hpack.header_list_too_large"
    assert sum(len(h.value) for h in decoded) <= MAX_HEADER_LIST_SIZE


@given(st.binary(max_size=300))
def test_random_bytes_never_raise(block: bytes) -> None:
    decode_block(block, DynamicTable())


def test_headers_past_max_headers_are_walked_not_kept() -> None:
    """1-byte indexed fields far past MAX_HEADERS: the first are kept, one finding, and a literal
    with indexing after them still reaches the dynamic table (the next block refers to it)."""
    encoder = Encoder()
    tail = encoder.encode([("x-after", "kept in the table")])
    block = b"\x82" * (MAX_HEADERS + 1000) + tail
    table = DynamicTable()
    decoded, findings = decode_block(block, table, base=10)
    assert len(decoded) == MAX_HEADERS and all(h.name == ":method" for h in decoded)
    assert [f.code for f in findings] == ["http2.header_list_limit"]
    assert findings[0].severity == "warn" and findings[0].span == (10 + MAX_HEADERS, 10 + len(block))
    decoded, findings = decode_block(encoder.encode([("x-after", "kept in the table")]), table)
    assert not findings and [(h.name, h.value) for h in decoded] == [("x-after", "kept in the table")]


def test_a_run_of_indexed_fields_past_the_limit_costs_no_call_per_byte(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What is walked past MAX_HEADERS is not decoded a representation at a time: a run of 1-byte
    indexed fields is one step, so 100,000 of them cost a few integer reads, not 100,000."""
    calls = 0
    real = hb._integer

    def counting(block: bytes, pos: int, prefix_bits: int) -> tuple[int, int]:
        nonlocal calls
        calls += 1
        return real(block, pos, prefix_bits)

    monkeypatch.setattr(hb, "_integer", counting)
    decoded, _ = decode_block(b"\x82" * 100_000 + b"\x40\x01a\x01b" + b"\x83" * 100_000, DynamicTable())
    assert len(decoded) == MAX_HEADERS
    assert calls < MAX_HEADERS + 10


def test_max_header_list_size_walks_on_for_the_table() -> None:
    """The bytes limit keeps the block's later table additions too (decoding used to stop there,
    and every later block of the connection read a table missing them)."""
    encoder = Encoder()
    first = encoder.encode([("big", "x" * 4000)])
    later = encoder.encode([("x-later", "v")])
    table = DynamicTable()
    decoded, findings = decode_block(first + bytes([0x80 | 62]) * 300 + later, table)
    assert findings[-1].code == "hpack.header_list_too_large"
    decoded, findings = decode_block(encoder.encode([("x-later", "v")]), table)
    assert not findings and decoded[0].value == "v"


def test_size_update_over_the_receivers_setting_is_a_finding() -> None:
    table = DynamicTable(setting=256)
    _, findings = decode_block(b"\x3f\xe1\x1f" + Encoder().encode([(":path", "/")]), table)  # 4096
    assert [f.code for f in findings] == ["hpack.table_size_over_setting"]
    assert table.max_size == 4096  # followed all the same: the sender's references count on it
    _, findings = decode_block(b"\x3f\xe1\x01", DynamicTable(setting=256))  # 256: within it
    assert not findings
