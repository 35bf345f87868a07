"""The STUN transactions report against tshark's request/response pairing, on real captures.

tshark (`-2`: two passes, so a request knows its answer) pairs a response with its request within
one conversation (5-tuple) by transaction id, and gives each first response `stun.response-to`
and `stun.time`. Every such pair is one of our rows with the same frames and round-trip time
(within 1 us). Where we answer more than tshark, the reason is known: RFC 5780 tests answered from
the server's other address (another 5-tuple; we pair by the requester's address, where RFC 8489
sends a response), and what TURN relays (tshark leaves STUN inside ChannelData undecoded).
tshark also pairs later copies of a response (marked `stun.reqduplicate`): we take the first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protoscope.decoders.api import Endpoint, FlowContext, Pdu
from protoscope.decoders.registry import load_registry
from protoscope.decoders.stun import transactions as tr
from protoscope.decoders.stun.decoder import StunDecoder
from protoscope.decoders.stun.messages import StunRecord
from protoscope.decoders.stun.transactions import StunTransactionAnalysis
from protoscope.inspector.report.rows import DRAIN_EVERY, AnalysisPass
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES, manifest_captures, public_capture, tshark

SAMPLE_NAMES = (
    "webrtc-turn.pcap",
    "webrtc-direct.pcap",
    "webrtc-no-answer.pcap",
    "nat-full-cone-inside.pcap",
    "nat-address-restricted-inside.pcap",
    "nat-port-restricted-inside.pcap",
    "nat-symmetric-inside.pcap",
    "nat-relay-inside.pcap",
    "nat-full-cone-outside.pcap",
)
PUBLIC_NAMES = (
    "arkime--stun.pcap",
    "arkime--stun-ice-testcall.pcap",
    "arkime--turn.pcap",
    "ndpi--stun.pcap",
    "ndpi--stun_classic.pcap",
    "ndpi--stun_dtls_rtp.pcapng",
    "ndpi--stun_google_meet.pcapng",
    "ndpi--stun_signal.pcapng",
    "ndpi--stun_tcp_multiple_msgs_same_pkt.pcap",
    "ndpi--stun_wa_call.pcapng",
    "ndpi--stun_zoom.pcapng",
    "zeek--webrtc-stun.pcap",
)
UNANSWERED = {
    "webrtc-no-answer.pcap",
    "arkime--stun.pcap",
    "ndpi--stun_tcp_multiple_msgs_same_pkt.pcap",
}
"""Captures with requests only."""
MAGIC = b"\x21\x12\xa4\x42"
HINTS = manifest_captures(r"\b(stun|classicstun)\b")
TSHARK_FIELDS = (
    "frame.number",
    "stun.type.method",
    "stun.response-to",
    "classicstun.response_to",
    "stun.time",
    "classicstun.time",
    "stun.reqduplicate",
    "stun.att.error.class",
    "stun.att.error",
)


def report(path: Path) -> list[dict[str, Any]]:
    """`--report stun_transactions` of a capture, through the reports' decoding pass."""
    registry = load_registry()
    registry.analyses[StunTransactionAnalysis.name] = StunTransactionAnalysis
    session = Session.open(path, registry)
    rows: list[dict[str, Any]] = []
    try:
        analyses = {StunTransactionAnalysis.name: registry.analysis(StunTransactionAnalysis.name)}
        decoding = AnalysisPass(session, analyses, lambda _name, got: rows.extend(got))
        for _ in decoding.packets():
            pass
        decoding.finish()
    finally:
        session.close()
    return rows


def tshark_pairs(path: Path, args: list[str]) -> dict[int, dict[str, Any]]:
    """Response frame -> what tshark says of it: the request frame, the time, the method and the
    error code, for the first response of each transaction tshark pairs."""
    cmd = ["-2", "-r", str(path), *args, "-Y", "stun || classicstun", "-T", "fields"]
    out = tshark(*cmd, "-E", "occurrence=f", *[a for f in TSHARK_FIELDS for a in ("-e", f)])
    pairs: dict[int, dict[str, Any]] = {}
    for line in out.splitlines():
        c = dict(zip(TSHARK_FIELDS, line.split("\t"), strict=True))
        request = c["stun.response-to"] or c["classicstun.response_to"]
        if not request or c["stun.reqduplicate"]:
            continue
        error = None
        if c["stun.att.error.class"]:
            error = int(c["stun.att.error.class"]) * 100 + int(c["stun.att.error"])
        pairs[int(c["frame.number"])] = {
            "request_frame": int(request),
            "rtt_ms": float(c["stun.time"] or c["classicstun.time"]) * 1000,
            "method_code": int(c["stun.type.method"], 16) if c["stun.type.method"] else None,
            "error_code": error,
        }
    return pairs


def _capture(name: str) -> Path:
    return SAMPLES / name if name in SAMPLE_NAMES else public_capture(name)


@pytest.mark.parametrize("name", SAMPLE_NAMES + PUBLIC_NAMES)
def test_pairs_equal_tshark(name: str) -> None:
    path = _capture(name)
    rows = report(path)
    theirs = tshark_pairs(path, HINTS.get(name, []))
    assert bool(theirs) == (name not in UNANSWERED), f"{name}: tshark pairs {len(theirs)} responses"
    by_response = {(r["response_frame"], r["relayed"]): r for r in rows if r["response_frame"]}
    for frame, want in theirs.items():
        got = by_response.get((frame, False))
        assert got is not None, f"{name}: tshark pairs response {frame} with {want['request_frame']}, we not"
        assert got["request_frame"] == want["request_frame"], f"{name}: response {frame}"
        assert abs(got["rtt_ms"] - want["rtt_ms"]) <= 0.001, f"{name}: response {frame}"
        if want["method_code"] is not None:  # tshark names no method for RFC 3489's messages
            assert got["method_code"] == want["method_code"], f"{name}: response {frame}"
        assert got["error_code"] == want["error_code"], f"{name}: response {frame}"
    for row in rows:
        if row["response_frame"] and not row["relayed"] and row["response_frame"] not in theirs:
            # The one reason tshark leaves a response of the clear unpaired: another 5-tuple.
            assert row["response_from"] != row["server"], f"{name}: {row}"
    keys = [(r["relayed"], r["transaction_id"], r["client"]) for r in rows]
    assert len(keys) == len(set(keys)), f"{name}: a transaction has two rows"


def test_relayed_check_has_a_row_per_leg() -> None:
    """webrtc-turn: both agents relay; one check travels client -> TURN (ChannelData), relayed
    address -> relayed address (clear), TURN -> other client (ChannelData), and its first copy
    was dropped by the TURN server (no permission yet), so it was sent twice."""
    rows = report(SAMPLES / "webrtc-turn.pcap")
    legs = sorted(
        (r["request_frame"], r["relayed"], r["requests"], r["response_frame"])
        for r in rows
        if r["transaction_id"] == "3b663db08596d9cc89cf58bc"
    )
    assert legs == [(36, True, 2, 53), (37, False, 2, 52), (50, True, 1, 51)]
    check = next(r for r in rows if r["request_frame"] == 36)
    assert check["username"] == "HeEa:Ppdl" and check["ice_role"] == "controlled"
    assert check["method"] == "Binding" and check["mapped_address"] == "127.0.0.1:49182"
    assert (check["client"], check["server"]) == ("127.0.0.1:58318", "127.0.0.1:3478")
    allocate = next(r for r in rows if r["request_frame"] == 19)
    assert allocate["relayed_address"] == "127.0.0.1:49177" and allocate["lifetime"] == 600
    refused = next(r for r in rows if r["request_frame"] == 15)
    assert (refused["response_class"], refused["error_code"]) == ("error", 401)
    refresh = next(r for r in rows if r["request_frame"] == 34)
    assert refresh["requested_lifetime"] == 0 and refresh["lifetime"] == 0
    assert not any(r["findings"] for r in rows)


def test_retransmissions_of_an_unanswered_check() -> None:
    rows = report(SAMPLES / "webrtc-no-answer.pcap")
    assert [(r["request_frame"], r["requests"], r["response_frame"]) for r in rows] == [(20, 4, None)]
    assert rows[0]["findings"] == []  # a check: the sessions report says ice.no_response


def test_answer_from_the_other_address() -> None:
    """RFC 5780 CHANGE-REQUEST: the answer comes from the server's other IP and port."""
    rows = report(SAMPLES / "nat-full-cone-outside.pcap")
    row = next(r for r in rows if r["request_frame"] == 3)
    assert (row["server"], row["response_from"], row["response_frame"]) == (
        "203.0.113.1:3478",
        "203.0.113.2:3479",
        4,
    )


# -- synthetic: what the captures do not show --------------------------------------------------


def _ctx(frame: int, time: float, src: str = "10.0.0.1:5000", dst: str = "10.0.0.2:3478") -> FlowContext:
    (sip, sport), (dip, dport) = (s.rsplit(":", 1) for s in (src, dst))
    return FlowContext(1, "udp", Endpoint(sip, int(sport)), Endpoint(dip, int(dport)), True, frame, time)


def _pdu(cls: int, txid: bytes, method: int = 1, size: int = 20, **attrs: object) -> Pdu:
    msg_type = method | (0x0010 if cls & 1 else 0) | (0x0100 if cls & 2 else 0)
    return Pdu("stun", (), (0, size), record=StunRecord(msg_type, method, cls, txid, False, dict(attrs)))


def test_given_up_after_the_transaction_timeout() -> None:
    a = StunTransactionAnalysis()
    a.feed(_pdu(0, b"A" * 12), _ctx(1, 100.0))
    a.feed(_pdu(0, b"A" * 12), _ctx(2, 100.5))
    a.feed(_pdu(0, b"B" * 12, username="x:y"), _ctx(3, 101.0))
    assert a.drain() == []
    a.feed(_pdu(0, b"C" * 12), _ctx(4, 100.0 + tr.GIVE_UP_AFTER))
    (row,) = a.drain()
    assert (row["transaction_id"], row["requests"], row["response_frame"]) == ((b"A" * 12).hex(), 2, None)
    assert [(f["code"], f["frame"]) for f in row["findings"]] == [("stun.no_response", 2)]
    # The late answer is nobody's; the check (B) is given up too, without a finding (the
    # sessions report judges checks); C is open, too recent for one.
    a.feed(_pdu(2, b"A" * 12), _ctx(5, 141.0, "10.0.0.2:3478", "10.0.0.1:5000"))
    rest = a.rows()
    assert [(r["request_frame"], r["findings"]) for r in rest] == [(3, []), (4, [])]


def test_every_packet_moves_the_clock() -> None:
    """A TURN request nobody answers, then only media: the media's times give it up."""
    a = StunTransactionAnalysis()
    a.feed(_pdu(0, b"A" * 12, method=3), _ctx(1, 0.0))
    a.feed(Pdu("rtp", (), (0, 172), record=None), _ctx(2, 6.0))
    assert a.drain() == [] and a.rows()[0]["findings"][0]["code"] == "stun.no_response"
    a.feed(Pdu("rtp", (), (0, 172), record=None), _ctx(3, tr.GIVE_UP_AFTER))
    (row,) = a.drain()
    assert row["method"] == "Allocate" and "Allocate request" in row["findings"][0]["message"]


def test_late_copies_are_not_new_transactions() -> None:
    a = StunTransactionAnalysis()
    a.feed(_pdu(0, b"A" * 12), _ctx(1, 10.0))
    a.feed(_pdu(2, b"A" * 12, xor_mapped=("1.2.3.4", 9)), _ctx(2, 10.1, "10.0.0.2:3478", "10.0.0.1:5000"))
    a.feed(_pdu(0, b"A" * 12), _ctx(3, 10.2))  # crossed the answer
    a.feed(_pdu(3, b"A" * 12, error_code=487), _ctx(4, 10.3, "10.0.0.2:3478", "10.0.0.1:5000"))
    (row,) = a.drain()
    assert (row["response_frame"], row["rtt_ms"], row["mapped_address"]) == (2, 100.0, "1.2.3.4:9")
    assert a.rows() == []


def test_relayed_only_when_the_carrier_holds_it() -> None:
    """After ChannelData of 28 bytes, a 28-byte STUN PDU of the same packet is what it carried;
    another message after it in the same TCP segment is not."""
    a = StunTransactionAnalysis()
    ctx = _ctx(7, 1.0)
    a.feed(Pdu("stun", (), (0, 32), record=("channel", 0x4000, 28)), ctx)
    a.feed(_pdu(0, b"R" * 12, size=28, username="a:b"), ctx)
    a.feed(_pdu(0, b"P" * 12, size=28), ctx)
    send = StunRecord(0x0016, 6, 1, b"S" * 12, False, {})
    send.data = bytes(40)
    a.feed(Pdu("stun", (), (0, 80), record=send), ctx)
    a.feed(_pdu(0, b"Q" * 12, size=36), ctx)  # not the carried size
    assert [(r["transaction_id"][:2], r["relayed"]) for r in a.rows()] == [
        ("52", True),
        ("50", False),
        ("51", False),
    ]


def test_snapshot_changes_nothing() -> None:
    a = StunTransactionAnalysis()
    a.feed(_pdu(0, b"A" * 12), _ctx(1, 0.0))
    a.feed(_pdu(0, b"B" * 12), _ctx(2, 6.0))
    a.feed(_pdu(2, b"B" * 12), _ctx(3, 6.1, "10.0.0.2:3478", "10.0.0.1:5000"))
    first = a.snapshot()
    first[0]["findings"].append({"code": "mine"})
    assert a.snapshot() == a.snapshot() != first
    assert [r["request_frame"] for r in a.drain()] == [2]  # finished first: answered
    (open_row,) = a.rows()
    assert open_row["request_frame"] == 1 and open_row["findings"][0]["code"] == "stun.no_response"


def test_open_transactions_are_bounded() -> None:
    """A hostile capture: 50,000 requests nobody answers, within seconds. The analysis holds at
    most MAX_OPEN_TRANSACTIONS of them (and as many finished ids), every one gets its row once,
    with one limit warning and at most MAX_NO_RESPONSE_FINDINGS notes."""
    a = StunTransactionAnalysis()
    rows: list[dict[str, object]] = []
    count = 50_000
    for i in range(count):
        a.feed(_pdu(0, os.urandom(12)), _ctx(i + 1, 1000.0 + i * 1e-4))
        assert len(a.open) <= tr.MAX_OPEN_TRANSACTIONS and len(a.finished) <= tr.FINISHED_KEPT
        if (i + 1) % DRAIN_EVERY == 0:
            rows += a.drain()
    rows += a.drain() + a.rows()
    assert len(rows) == count and len({r["transaction_id"] for r in rows}) == count
    codes = [f["code"] for r in rows for f in r["findings"]]  # type: ignore[attr-defined]
    assert codes.count("stun.transactions_limit") == 1
    assert codes.count("stun.no_response") <= tr.MAX_NO_RESPONSE_FINDINGS


# -- never raises ---------------------------------------------------------------------------------

_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.tuples(st.text(max_size=6), st.integers(-5, 70000)),
    st.tuples(st.integers(), st.text()),
    st.lists(st.integers(), max_size=3),
)
_attrs = st.dictionaries(
    st.sampled_from(
        [
            "username",
            "role",
            "priority",
            "use_candidate",
            "lifetime",
            "xor_mapped",
            "mapped",
            "xor_relayed",
            "error_code",
            "error_reason",
            "data",
        ]
    ),
    _values,
    max_size=6,
)


@st.composite
def _records(draw: st.DrawFn) -> object:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        rec = StunRecord(
            draw(st.integers(0, 0xFFFF)),
            draw(st.sampled_from([1, 3, 4, 6, 7, 8, 9, 0x80, 0xFFF])),
            draw(st.integers(0, 3)),
            draw(st.binary(min_size=0, max_size=16)),
            draw(st.booleans()),
            draw(_attrs),
        )
        rec.data = draw(st.none() | st.binary(max_size=40))
        return rec
    if kind == 1:
        return ("channel", draw(_values), draw(_values))
    if kind == 2:
        return draw(st.tuples(_values, _values))
    return draw(_values)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            _records(),
            st.tuples(st.integers(-5, 100), st.integers(-5, 100)),
            st.integers(0, 3),
            st.floats(-1e3, 1e10, allow_nan=False),
            st.booleans(),
        ),
        max_size=30,
    )
)
def test_random_records_never_raise(feeds: list[tuple[object, tuple[int, int], int, float, bool]]) -> None:
    a = StunTransactionAnalysis()
    for i, (record, span, frame, time, forward) in enumerate(feeds):
        ends = ("10.0.0.1:5000", "10.0.0.2:3478")
        ctx = _ctx(frame, time, *(ends if forward else ends[::-1]))
        a.feed(Pdu("stun", (), span, record=record), ctx)
        if i % 7 == 0:
            a.snapshot()
            a.drain()
    for row in a.rows():
        assert set(row) == set(tr.ROW_KEYS)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=60), max_size=12), st.binary(min_size=12, max_size=12))
def test_decoded_bytes_never_raise(datagrams: list[bytes], txid: bytes) -> None:
    """STUN-like datagrams (a header with the magic cookie and a random body) through the STUN
    decoder, then fed: whatever it makes of them."""
    decoder = StunDecoder()
    a = StunTransactionAnalysis()
    ends = ("10.0.0.1:5000", "10.0.0.2:3478")
    for i, body in enumerate(datagrams):
        for msg_type, src, dst in ((0x0001, *ends), (0x0101, *ends[::-1])):
            data = msg_type.to_bytes(2, "big") + len(body).to_bytes(2, "big") + MAGIC + txid + body
            ctx = _ctx(i + 1, float(i), src, dst)
            for pdu in decoder.decode(data, decoder.new_state(), ctx).pdus:
                a.feed(pdu, ctx)
    a.rows()
