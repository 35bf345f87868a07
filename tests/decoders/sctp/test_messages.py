"""User messages: what aiortc's applications sent equals what the decoder puts together, from a
capture at the senders (with the two packets lost on purpose, whose retransmissions are found by
TSN) and at the receivers (without them); fragments in any order; FORWARD-TSN; I-DATA; DCEP."""

from __future__ import annotations

import itertools
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protoscope.decoders.api import Pdu
from protoscope.decoders.sctp import names as nm
from protoscope.decoders.sctp import reassembly
from protoscope.decoders.sctp.records import UserMessage
from protoscope.inspector.session import flatten
from tests.decoders.sctp.vectors import (
    Run,
    chunk,
    data_chunk,
    dcep_open,
    from_client,
    i_data_chunk,
    packet,
    packets,
    run_vectors,
    vectors,
)


def messages(results: list[tuple[dict[str, Any], Any]]) -> list[tuple[Pdu, UserMessage]]:
    return [(pdu, pdu.record) for _, r in results for pdu in r.pdus if isinstance(pdu.record, UserMessage)]


def sent(side: str, label: str) -> list[tuple[int, bytes]]:
    """(ppid class, bytes) of what `side`'s application sent on channel `label`, in order."""
    channel = next(c for c in vectors()["channels"] if c["label"] == label)
    out = []
    for m in channel["messages"]:
        if m["from"] != side:
            continue
        text = m["type"] == "text"
        data = m["value"].encode() if text else bytes.fromhex(m["value"])
        ppid = (
            (nm.PPID_STRING if data else nm.PPID_STRING_EMPTY)
            if text
            else nm.PPID_BINARY
            if data
            else nm.PPID_BINARY_EMPTY
        )
        out.append((ppid, data))
    return out


@pytest.mark.parametrize("dropped", [True, False], ids=["at-senders", "at-receivers"])
def test_every_message_equals_what_the_application_sent(dropped: bool) -> None:
    got = messages(run_vectors(dropped))
    lost = vectors()["lost"]
    for spec in vectors()["channels"]:
        for side in ("caller", "callee"):
            client = side == "callee"  # aiortc's answerer is the DTLS client
            mine = sorted(
                (m.first_tsn, (m.ppid, m.data))
                for _, m in got
                if m.stream_id == spec["id"] and m.from_client == client and m.ppid != nm.PPID_DCEP
            )
            want = sent(side, spec["label"])
            if not dropped and side == "caller" and spec["label"] == "game":
                want.remove((nm.PPID_BINARY, bytes.fromhex(lost["unreliable"])))  # abandoned, never arrived
            assert [x for _, x in mine] == want, (spec["label"], side)


@pytest.mark.parametrize("dropped", [True, False], ids=["at-senders", "at-receivers"])
def test_retransmissions_found_by_tsn(dropped: bool) -> None:
    results = run_vectors(dropped)
    first: dict[tuple[bool, int], int] = {}
    want = []
    for frame, (p, _) in enumerate(results, 1):
        c = p["chunk"]
        if c["type"] == 0:
            key = (from_client(p), c["tsn"])
            if key in first:
                want.append((frame, c["tsn"], first[key]))
            first.setdefault(key, frame)
    assert bool(want) == dropped and len(want) in (0, 2)
    got = []
    for frame, (_, r) in enumerate(results, 1):
        sctp = r.pdus[0]
        if sctp.record.retransmitted_tsns:
            f = flatten(sctp.fields)
            got.append((frame, sctp.record.retransmitted_tsns[0], f["sctp.retransmission"]))
            assert [x.code for x in sctp.findings] == ["sctp.retransmission"]
            assert len(r.pdus) == 1  # a retransmission makes no second message
    assert got == want


def test_message_records() -> None:
    got = messages(run_vectors())
    big = [m for _, m in got if m.ppid == nm.PPID_BINARY and len(m.data) == 5000]
    assert len(big) == 2
    for m in big:
        assert len(m.frames) == 5 and m.last_tsn - m.first_tsn == 4 and m.ordered and m.sequence == 7
    unordered = [m for _, m in got if m.stream_id == 3 and m.ppid != nm.PPID_DCEP]
    assert unordered and all(not m.ordered and m.sequence is None for m in unordered)
    pdu, text = next((p, m) for p, m in got if m.data == "héllo wörld ✓ 日本語 🎉".encode())
    f = flatten(pdu.fields)
    assert pdu.protocol == "datachannel" and f["datachannel.text"] == "héllo wörld ✓ 日本語 🎉"
    assert f["datachannel.size"] == len(text.data) and f["datachannel.ppid"] == 51
    assert pdu.span[1] - pdu.span[0] == len(text.data)  # in one chunk: its bytes in the hex view
    empty = [(p, m) for p, m in got if m.ppid in nm.EMPTY_PPIDS]
    assert len(empty) == 4 and all(m.data == b"" for _, m in empty)
    assert all(not p.findings for p, _ in got)


def test_dcep_fields_equal_what_aiortc_opened() -> None:
    got = messages(run_vectors())
    opens = {m.stream_id: (p, m) for p, m in got if m.dcep and m.dcep.message_type == nm.DATA_CHANNEL_OPEN}
    acks = {m.stream_id for _, m in got if m.dcep and m.dcep.message_type == nm.DATA_CHANNEL_ACK}
    want_types = {"chat": 0x00, "game": 0x81, "timed": 0x02}
    for spec in vectors()["channels"]:
        if spec["negotiated"]:
            assert spec["id"] not in opens and spec["id"] not in acks
            continue
        pdu, m = opens[spec["id"]]
        assert m.dcep is not None and not m.from_client  # the caller (DTLS server) opened them
        assert (m.dcep.label, m.dcep.protocol) == (spec["label"], spec["protocol"])
        assert m.dcep.channel_type == want_types[spec["label"]]
        assert m.dcep.ordered == spec["ordered"]
        assert m.dcep.reliability == (spec["maxRetransmits"] or spec["maxPacketLifeTime"] or 0)
        f = flatten(pdu.fields)
        assert pdu.protocol == "rtcdc" and f["rtcdc.label"] == spec["label"] and f["rtcdc.message_type"] == 3
        assert (
            f["rtcdc.channel_type"] == want_types[spec["label"]] and f["rtcdc.protocol"] == spec["protocol"]
        )
        assert spec["id"] in acks


def big_message_packets() -> list[bytes]:
    """The five packets of the caller's 5000-byte binary message."""
    return [
        bytes.fromhex(p["hex"])
        for p in packets()
        if p["sender"] == "caller" and p["chunk"]["type"] == 0 and p["chunk"]["stream_seq"] == 7
    ]


def test_fragments_in_any_order() -> None:
    parts = big_message_packets()[:3] + big_message_packets()[4:]  # drop one middle: 4 parts
    whole = big_message_packets()
    for order in itertools.permutations(range(5)):
        run = Run()
        out = [m for i in order for m in run.decode(whole[i], False).pdus[1:]]
        assert len(out) == 1 and len(out[0].record.data) == 5000, order  # type: ignore[attr-defined]
        assert out[0].record.frames == tuple(sorted(range(1, 6), key=lambda f: order[f - 1]))  # type: ignore[attr-defined]
        assert not run.states[False].fragments and run.states[False].pending_bytes == 0
    run = Run()
    assert all(len(run.decode(p, False).pdus) == 1 for p in parts)
    assert len(run.states[False].fragments) == 4


def test_forward_tsn_abandons_what_was_held() -> None:
    parts = big_message_packets()
    run = Run()
    for p in parts[:2]:
        run.decode(p, False)
    last_tsn = struct.unpack("!I", parts[-1][16:20])[0]
    run.decode(packet(chunk(192, 0, struct.pack("!I", last_tsn))), False)
    state = run.states[False]
    assert not state.fragments and state.pending_bytes == 0
    assert all(len(run.decode(p, False).pdus) == 1 for p in parts[3:])  # the rest completes nothing


def test_i_data_interleaved_and_i_forward_tsn() -> None:
    """RFC 8260: two messages interleaved on two streams, fragments out of FSN order."""
    run = Run()
    a = [
        i_data_chunk(1, 1, 0, 51, b"AA", 0x02),
        i_data_chunk(3, 1, 0, 1, b"BB", 0),
        i_data_chunk(5, 1, 0, 2, b"CC", 0x01),
    ]
    b = [i_data_chunk(2, 2, 0, 53, b"xx", 0x06), i_data_chunk(4, 2, 0, 1, b"yy", 0x05)]
    order = [a[0], b[1], a[2], b[0], a[1]]
    out = [m.record for c in order for m in run.decode(packet(c), True).pdus[1:]]
    assert [(m.stream_id, m.ppid, m.data, m.ordered, m.sequence) for m in out] == [  # type: ignore[attr-defined]
        (2, 53, b"xxyy", False, 0),
        (1, 51, b"AABBCC", True, 0),
    ]
    run.decode(packet(i_data_chunk(6, 3, 9, 51, b"held", 0x02)), True)
    assert run.states[True].i_messages
    run.decode(packet(chunk(194, 0, struct.pack("!IHHI", 6, 3, 0, 9))), True)
    assert not run.states[True].i_messages and run.states[True].pending_bytes == 0


def test_dcep_malformed() -> None:
    run = Run()
    bad = dcep_open("chat")[:-2]  # the label is two bytes short of its length
    pdus = run.decode(packet(data_chunk(1, 0, 0, 50, bad)), True).pdus
    assert pdus[1].protocol == "rtcdc" and pdus[1].record.dcep is None  # type: ignore[attr-defined]
    assert [f.code for f in pdus[1].findings] == ["rtcdc.inconsistent_label_and_parameter_length"]
    pdus = run.decode(packet(data_chunk(2, 0, 1, 50, b"\x07")), True).pdus
    assert [f.code for f in pdus[1].findings] == ["rtcdc.message_type.unknown"]
    good = dcep_open("ü", "p", channel_type=0x81, priority=256, reliability=3)
    pdus = run.decode(packet(data_chunk(3, 2, 0, 50, good)), True).pdus
    d = pdus[1].record.dcep  # type: ignore[attr-defined]
    assert (d.label, d.protocol, d.priority, d.reliability_text, d.ordered) == (
        "ü",
        "p",
        256,
        "max_retransmits=3",
        False,
    )
    for cut in range(len(good)):
        run.decode(packet(data_chunk(10 + cut, 2, 0, 50, good[:cut] or b"\x03")), True)


# -- limits: a hostile sender's fragments stay bounded --------------------------------------------


def test_flood_of_fragments_that_never_end_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reassembly, "MAX_PENDING_FRAGMENTS", 64)
    monkeypatch.setattr(reassembly, "MAX_PENDING_BYTES", 4000)
    run = Run()
    findings = []
    for tsn in range(1, 500):
        flags = 0x02 if tsn % 100 == 1 else 0x00  # a B now and then, never an E
        r = run.decode(packet(data_chunk(tsn, tsn % 3, 0, 53, bytes(100), flags)), True)
        findings += [f.code for p in r.pdus for f in p.findings]
        state = run.states[True]
        assert len(state.fragments) <= 64 and state.pending_bytes <= 4000
    assert findings.count("sctp.reassembly_limit") == len(run.states[True].limits_hit) == 1  # once


def test_flood_of_i_data_messages_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reassembly, "MAX_I_DATA_MESSAGES", 16)
    run = Run()
    for mid in range(200):
        run.decode(packet(i_data_chunk(mid, 1, mid, 51, b"x", 0x02)), True)
        assert len(run.states[True].i_messages) <= 16


def test_message_over_the_limit_is_not_reassembled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reassembly, "MAX_MESSAGE", 3000)
    run = Run()
    codes = [f.code for p in big_message_packets() for pdu in run.decode(p, False).pdus for f in pdu.findings]
    assert codes == ["sctp.reassembly_limit"]
    assert not run.states[False].fragments


def test_tsn_history_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reassembly, "MAX_TSN_HISTORY", 100)
    run = Run()
    for tsn in range(300):
        run.decode(packet(data_chunk(tsn, 0, tsn, 51, b"x")), True)
    state = run.states[True]
    assert state.seen_frames is not None and len(state.seen_frames) == 100
    assert run.decode(packet(data_chunk(150, 0, 150, 51, b"x")), True).pdus[0].record.retransmitted_tsns == ()  # type: ignore[attr-defined]
    assert run.decode(packet(data_chunk(299, 0, 299, 51, b"x")), True).pdus[0].record.retransmitted_tsns == (
        299,
    )  # type: ignore[attr-defined]


def test_flood_at_default_limits_stays_bounded() -> None:
    """20,000 never-ending fragments of 1,000 bytes at the real limits: what is held stays under
    MAX_PENDING_FRAGMENTS and MAX_PENDING_BYTES."""
    run = Run()
    payload = bytes(1000)
    for tsn in range(20_000):
        run.decode(packet(data_chunk(tsn, 0, 0, 53, payload, 0x02 if tsn == 0 else 0)), True)
    state = run.states[True]
    assert len(state.fragments) <= reassembly.MAX_PENDING_FRAGMENTS
    assert state.pending_bytes <= reassembly.MAX_PENDING_BYTES
    assert state.limits_hit == {"MAX_PENDING_BYTES"}


def test_i_data_bytes_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reassembly, "MAX_PENDING_BYTES", 1000)
    run = Run()
    for mid in range(100):
        run.decode(packet(i_data_chunk(mid, 1, mid, 51, bytes(100), 0x02)), True)
        assert run.states[True].pending_bytes <= 1000
    assert run.states[True].limits_hit == {"MAX_PENDING_BYTES"}


# -- properties --------------------------------------------------------------------------------


def held(state: reassembly.Direction) -> int:
    """What the books should say: payload bytes plus PIECE_OVERHEAD a fragment held."""
    pieces = len(state.fragments) + sum(len(m.pieces) for m in state.i_messages.values())
    payload = sum(len(f.data) for f in state.fragments.values()) + sum(
        m.size for m in state.i_messages.values()
    )
    return payload + reassembly.PIECE_OVERHEAD * pieces


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.booleans(),  # I-DATA
            st.integers(0, 40),  # TSN
            st.integers(0, 2),  # stream
            st.integers(0, 3),  # SSN / MID
            st.integers(0, 15),  # flags
            st.integers(0, 3),  # PPID or FSN
            st.binary(max_size=20),
        ),
        max_size=60,
    )
)
def test_any_fragments_never_raise_and_the_books_balance(chunks: list[tuple[Any, ...]]) -> None:
    run = Run()
    for i_data, tsn, sid, seq, flags, last, payload in chunks:
        make = i_data_chunk if i_data else data_chunk
        run.decode(packet(make(tsn, sid, seq, 51 + last if flags & 2 else last, payload, flags)), True)
        state = run.states[True]
        assert state.pending_bytes == held(state)
        assert state.pending_pieces == sum(len(m.pieces) for m in state.i_messages.values())
        assert all(f.data for f in state.fragments.values())  # nothing empty is held
        assert all(p[0] for m in state.i_messages.values() for p in m.pieces.values())


@settings(max_examples=200, deadline=None)
@given(
    st.binary(min_size=1, max_size=400), st.integers(1, 12), st.randoms(use_true_random=False), st.booleans()
)
def test_a_message_in_any_split_and_order_comes_out_once(
    message: bytes, parts: int, rnd: Any, i_data: bool
) -> None:
    size = -(-len(message) // parts)
    pieces = [message[k : k + size] for k in range(0, len(message), size)]
    chunks = []
    for n, piece in enumerate(pieces):
        flags = (0x02 if n == 0 else 0) | (0x01 if n == len(pieces) - 1 else 0)
        if i_data:
            chunks.append(i_data_chunk(1000 + n, 4, 7, 53 if n == 0 else n, piece, flags))
        else:
            chunks.append(data_chunk(0xFFFFFFFE + n & 0xFFFFFFFF, 4, 7, 53, piece, flags))  # TSNs wrap
    rnd.shuffle(chunks)
    run = Run()
    out = [pdu.record for c in chunks for pdu in run.decode(packet(c), True).pdus[1:]]
    assert [(m.data, m.ppid, m.stream_id) for m in out] == [(message, 53, 4)]  # type: ignore[attr-defined]
    assert run.states[True].pending_bytes == 0


def test_other_ppids_are_sctp_user_messages() -> None:
    pdus = Run().decode(packet(data_chunk(1, 2, 0, 46, b"\x01\x00\x00\x14diameter")), True).pdus
    assert [p.protocol for p in pdus] == ["sctp", "sctp"]
    f = flatten(pdus[1].fields)
    assert (f["sctp.message_ppid"], f["sctp.message_size"], f["sctp.message_data"]) == (
        46,
        12,
        b"\x01\x00\x00\x14diameter".hex(),
    )
    assert pdus[1].summary.startswith("Diameter on stream 2")


# -- hostile I-DATA and FORWARD-TSN (review of issue 15) ------------------------------------------


def i_data_flood(run: Run, pieces: int, payload: bytes) -> list[str]:
    """Middle I-DATA pieces (no B, no E) over 1000 MIDs, 70 a packet, as /tmp/review's craft.py
    `idata` makes them; the finding codes they got."""
    codes: list[str] = []
    for first in range(1, pieces + 1, 70):
        tsns = range(first, min(pieces + 1, first + 70))
        chunks = [i_data_chunk(t, 0, t % 1000, t // 1000 + 1, payload, 0) for t in tsns]
        codes += [f.code for p in run.decode(packet(*chunks), True).pdus for f in p.findings]
    return codes


def test_empty_fragments_are_not_held() -> None:
    """Empty middle pieces (the review's 280,000 held 318 MB): none is held, DATA or I-DATA."""
    run = Run()
    i_data_flood(run, 5000, b"")
    for tsn in range(10_000, 12_000):
        run.decode(packet(data_chunk(tsn, 0, 0, 53, b"", 0)), True)
    state = run.states[True]
    assert not state.i_messages and not state.fragments
    assert state.pending_pieces == 0 and state.pending_bytes == 0


def test_i_data_pieces_count_in_the_fragment_total() -> None:
    """1-byte I-DATA pieces over 1000 messages at the real limits: every message stays under its
    own MAX_PENDING_FRAGMENTS, but the direction's total is bounded too (the oldest message goes)."""
    run = Run()
    codes = i_data_flood(run, 20_000, b"x")
    state = run.states[True]
    held_pieces = sum(len(m.pieces) for m in state.i_messages.values())
    assert held_pieces == state.pending_pieces
    assert state.pending_pieces + len(state.fragments) <= reassembly.MAX_PENDING_FRAGMENTS
    assert state.pending_bytes <= reassembly.MAX_PENDING_BYTES
    assert codes.count("sctp.reassembly_limit") == 1 and state.limits_hit == {"MAX_PENDING_FRAGMENTS"}


def test_data_and_i_data_share_the_fragment_total(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reassembly, "MAX_PENDING_FRAGMENTS", 50)
    run = Run()
    for tsn in range(5001, 5041):  # TSNs apart from the I-DATA's (1-40)
        run.decode(packet(data_chunk(tsn, 0, 0, 53, b"d", 0)), True)
    i_data_flood(run, 40, b"i")
    state = run.states[True]
    assert len(state.fragments) + state.pending_pieces == 50
    assert state.pending_pieces == 40 and sorted(state.fragments) == list(range(5031, 5041))  # oldest went


def test_tiny_pieces_are_charged_an_overhead(monkeypatch: pytest.MonkeyPatch) -> None:
    """1-byte pieces cost PIECE_OVERHEAD + 1 each against MAX_PENDING_BYTES."""
    monkeypatch.setattr(reassembly, "MAX_PENDING_BYTES", 10 * (reassembly.PIECE_OVERHEAD + 1))
    run = Run()
    codes = i_data_flood(run, 500, b"x")
    state = run.states[True]
    assert state.pending_pieces <= 10 and state.pending_bytes <= reassembly.MAX_PENDING_BYTES
    assert codes.count("sctp.reassembly_limit") == 1 and state.limits_hit == {"MAX_PENDING_BYTES"}


def counting_tsn_le(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the TSN comparisons reassembly makes: the work a FORWARD-TSN costs."""
    calls = [0]
    real = reassembly.tsn_le

    def counted(a: int, b: int) -> bool:
        calls[0] += 1
        return real(a, b)

    monkeypatch.setattr(reassembly, "tsn_le", counted)
    return calls


def test_forward_tsn_that_does_not_advance_costs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The review's fwd.pcap: 16,384 middle fragments held, then FORWARD-TSNs for TSN 1 (behind
    all of them), each of which used to compare every fragment held."""
    run = Run()
    for first in range(10, 10 + 2 * reassembly.MAX_PENDING_FRAGMENTS, 128):
        run.decode(packet(*[data_chunk(t, 0, 0, 51, b"x", 0) for t in range(first, first + 128, 2)]), True)
    state = run.states[True]
    assert len(state.fragments) == reassembly.MAX_PENDING_FRAGMENTS
    calls = counting_tsn_le(monkeypatch)
    forward = packet(chunk(192, 0, struct.pack("!I", 1)))
    for _ in range(1000):
        run.decode(forward, True)
    assert calls[0] <= 2 * 1000  # O(1) a packet, not O(fragments held)
    assert len(state.fragments) == reassembly.MAX_PENDING_FRAGMENTS and state.forward_cumulative == 1


def test_forward_tsn_drops_from_the_oldest(monkeypatch: pytest.MonkeyPatch) -> None:
    run = Run()
    for tsn in range(100, 1100):
        run.decode(packet(data_chunk(tsn, 0, 0, 51, b"x", 0)), True)
    state = run.states[True]
    calls = counting_tsn_le(monkeypatch)
    run.decode(packet(chunk(192, 0, struct.pack("!I", 599))), True)
    assert sorted(state.fragments) == list(range(600, 1100))
    assert calls[0] <= 500 + 2  # the 500 dropped, the one kept, the check against the last
    calls[0] = 0
    for cumulative in range(600, 1100):  # advancing one TSN at a time: O(1) each
        run.decode(packet(chunk(192, 0, struct.pack("!I", cumulative))), True)
    assert not state.fragments and state.pending_bytes == 0
    assert calls[0] <= 3 * 500
