"""DTLS handshake reassembly within its limits (issue 12): memory follows the bytes received, not the
lengths declared; each fragment costs a binary search; certificates cryptography refuses are
findings. The messages are real: zeek's DTLS 1.2 handshake (a ClientHello in two fragments, a
Certificate, a ServerKeyExchange)."""

from __future__ import annotations

import random
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protoscope.decoders.dtls import records
from protoscope.decoders.dtls.records import Pending, Reassembly, parse_datagram
from protoscope.decoders.registry import load_registry
from protoscope.inspector.session import Session, flatten
from tests.conftest import public_capture
from tests.decoders.dtls.test_records import handshake, record

ZEEK = "zeek--dtls1_2.pcap"
SERVER_FLIGHT = range(6, 13)
"""zeek--dtls1_2.pcap frames 6-12: ServerHello, Certificate (874 bytes in five fragments),
ServerKeyExchange (329 bytes in three), ServerHelloDone."""


def datagrams(path: Path, frames: range) -> list[bytes]:
    session = Session.open(path, load_registry())
    try:
        return [bytes(session.index.payload(n - 1)) for n in frames]
    finally:
        session.close()


def handshake_messages(data: list[bytes]) -> dict[int, tuple[int, bytes]]:
    """message_seq -> (msg_type, body), put together here by hand from the records' fragments."""
    parts: dict[int, tuple[int, bytearray]] = {}
    for datagram in data:
        pos = 0
        while pos + 13 <= len(datagram):
            end = pos + 13 + int.from_bytes(datagram[pos + 11 : pos + 13], "big")
            at = pos + 13
            while datagram[pos] == 22 and at + 12 <= end:
                length = int.from_bytes(datagram[at + 1 : at + 4], "big")
                mseq = int.from_bytes(datagram[at + 4 : at + 6], "big")
                foff = int.from_bytes(datagram[at + 6 : at + 9], "big")
                flen = int.from_bytes(datagram[at + 9 : at + 12], "big")
                body = parts.setdefault(mseq, (datagram[at], bytearray(length)))[1]
                body[foff : foff + flen] = datagram[at + 12 : at + 12 + flen]
                at += 12 + flen
            pos = end
    return {k: (t, bytes(b)) for k, (t, b) in parts.items()}


@pytest.fixture(scope="module")
def certificate() -> bytes:
    """The body of zeek's Certificate message (type 11)."""
    messages = handshake_messages(datagrams(public_capture(ZEEK), SERVER_FLIGHT))
    found = [body for mtype, body in messages.values() if mtype == 11]
    assert len(found) == 1 and len(found[0]) == 874
    return found[0]


def fragments(mtype: int, mseq: int, body: bytes, offsets: list[tuple[int, int]]) -> list[bytes]:
    """One datagram per (offset, length) piece of `body`."""
    return [
        record(handshake(mtype, mseq, body[lo : lo + n], lo, len(body)), seq=i)
        for i, (lo, n) in enumerate(offsets)
    ]


def certificates_of(data: list[bytes], ra: Reassembly) -> tuple[list[object], list[str]]:
    certs: list[object] = []
    codes: list[str] = []
    for datagram in data:
        rec, _, findings, _ = parse_datagram(datagram, ra)
        codes += [f.code for f in findings]
        if "certificates" in rec.facts:
            certs.append(rec.facts["certificates"])
    return certs, codes


def test_the_real_flight_reassembles(certificate: bytes) -> None:
    ra = Reassembly()
    certs, codes = certificates_of(datagrams(public_capture(ZEEK), SERVER_FLIGHT), ra)
    assert codes == [] and len(certs) == 1
    assert ra.messages == {} and ra.pending_bytes == 0  # nothing held once the flight is whole
    assert ra.done == {1: (2, 57), 2: (11, 874), 3: (12, 329), 4: (14, 0)}


def test_one_byte_fragments_in_the_worst_order_cost_a_search_each(
    certificate: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every other byte first (each fragment a range of its own), then the bytes between (each
    merging two ranges): 874 fragments, two binary searches each, and the message is whole."""
    calls = 0

    def counted(name: str) -> None:
        real = getattr(records, name)

        def count(*args: object) -> int:
            nonlocal calls
            calls += 1
            return int(real(*args))

        monkeypatch.setattr(records, name, count)

    counted("bisect_left")
    counted("bisect_right")
    n = len(certificate)
    order = [(i, 1) for i in range(0, n, 2)] + [(i, 1) for i in range(1, n, 2)]
    ra = Reassembly()
    certs, codes = certificates_of(fragments(11, 1, certificate, order), ra)
    assert codes == [] and len(certs) == 1
    assert calls == 2 * n
    assert ra.messages == {} and ra.done == {1: (11, n)}


def test_fragment_floods_under_new_message_seqs_hold_what_arrived() -> None:
    """The issue's 837 KB capture: 1-byte fragments, each of a 1 MiB message of its own. Before,
    each held a 1 MiB buffer; now one byte each, at most MAX_PENDING_MESSAGES of them, and one
    finding names the limit. A real ClientHello after the flood is still reassembled."""
    ra = Reassembly()
    flood = [
        record(handshake(11, mseq, b"\x01", 5, records.MAX_MESSAGE), seq=mseq)
        for mseq in range(1000, 1000 + 3 * records.MAX_PENDING_MESSAGES)
    ]
    found = [f for d in flood for f in parse_datagram(d, ra)[2]]
    assert [f.code for f in found] == ["dtls.handshake_limit"]
    assert (
        "MAX_PENDING_MESSAGES" in found[0].message and str(records.MAX_PENDING_MESSAGES) in found[0].message
    )
    assert (
        len(ra.messages) == records.MAX_PENDING_MESSAGES and ra.pending_bytes == records.MAX_PENDING_MESSAGES
    )
    hello = datagrams(public_capture(ZEEK), range(1, 3))  # frames 1-2: a ClientHello in two fragments
    rec, fields, findings, _ = parse_datagram(hello[1], Reassembly())
    assert "client_hello" not in rec.facts  # the second fragment alone is not the message
    for datagram in hello:
        rec, fields, findings, _ = parse_datagram(datagram, ra)
    assert findings == [] and "client_hello" in rec.facts
    assert flatten(fields)["dtls.handshake.reassembled"] == "287 bytes"


def test_a_declared_length_over_max_message_is_not_reassembled() -> None:
    ra = Reassembly()
    big = records.MAX_MESSAGE + 1
    found = [f for n in range(3) for f in parse_datagram(record(handshake(11, n, b"ab", 0, big)), ra)[2]]
    assert [f.code for f in found] == ["dtls.handshake_limit"]  # once, not once a fragment
    assert f"over {records.MAX_MESSAGE}" in found[0].message and ra.messages == {}


def test_pending_bytes_drop_the_oldest_message(certificate: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "MAX_PENDING_BYTES", 1000)
    ra = Reassembly()
    # Three Certificate messages, each 174 bytes short of whole: each pushes the one before out.
    found = []
    for mseq in (1, 2, 3):
        found += parse_datagram(fragments(11, mseq, certificate, [(0, 700)])[0], ra)[2]
        assert ra.pending_bytes <= 1000
    assert list(ra.messages) == [3] and ra.pending_bytes == 700
    assert [f.code for f in found] == ["dtls.handshake_limit"]
    assert "MAX_PENDING_BYTES" in found[0].message and "message_seq 1 dropped" in found[0].message
    # message_seq 3 completes; the dropped ones' later fragments start them again, they do not raise.
    certs, codes = certificates_of(fragments(11, 3, certificate, [(700, len(certificate) - 700)]), ra)
    assert len(certs) == 1 and codes == []


@pytest.mark.parametrize("step", [1, 2])
def test_too_many_fragments_give_the_message_up(
    certificate: bytes, step: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1-byte fragments, side by side (one range, many pieces) or apart: past MAX_FRAGMENTS the
    message is given up, its bytes let go."""
    monkeypatch.setattr(records, "MAX_FRAGMENTS", 10)
    ra = Reassembly()
    order = [(i, 1) for i in range(0, 20 * step, step)]
    certs, codes = certificates_of(fragments(11, 1, certificate, order), ra)
    assert certs == [] and codes == ["dtls.handshake_limit"]
    assert ra.limits_hit == {"MAX_FRAGMENTS"}
    assert ra.pending_bytes == 0 and ra.messages[1].given_up and ra.messages[1].pieces == []
    # Its later fragments are ignored quietly; a copy sent whole is decoded.
    certs, codes = certificates_of(fragments(11, 1, certificate, [(0, len(certificate))]), ra)
    assert codes == [] and len(certs) == 1


def test_retransmitted_fragments_and_messages_are_notes(certificate: bytes) -> None:
    ra = Reassembly()
    half = len(certificate) // 2
    first, second = fragments(11, 1, certificate, [(0, half), (half, len(certificate) - half)])
    assert certificates_of([first, first], ra)[1] == ["dtls.retransmission"]
    assert ra.pending_bytes == half  # the copy added nothing
    certs, codes = certificates_of([second, second, first], ra)
    assert len(certs) == 1 and codes == ["dtls.retransmission", "dtls.retransmission"]


def test_a_new_handshake_may_reuse_a_message_seq() -> None:
    """The same message_seq for another message (type or length): a new handshake on the flow
    (a client that restarted); its fragments replace the old ones."""
    ra = Reassembly()
    parse_datagram(record(handshake(1, 0, b"x" * 10, 0, 300)), ra)
    parse_datagram(record(handshake(1, 0, b"y" * 10, 0, 200)), ra)
    assert ra.messages[0].length == 200 and ra.pending_bytes == 10


def test_certificate_cryptography_refuses_is_a_finding(certificate: bytes) -> None:
    """X.509 version 10 (the DER INTEGER under [0] says 9): cryptography raises InvalidVersion,
    which is not a ValueError. The fingerprints are still there, and so is the next record."""
    v3 = bytes.fromhex("a003020102")
    assert certificate.count(v3) == 1
    bad = certificate.replace(v3, bytes.fromhex("a003020109"))
    datagram = record(handshake(11, 1, bad, 0, len(bad))) + record(b"\x01", seq=1, ctype=20)
    rec, _, findings, info = parse_datagram(datagram, Reassembly())
    assert [f.code for f in findings] == ["dtls.bad_certificate"]
    assert "InvalidVersion" in findings[0].message and findings[0].span == (28, 28 + 3 + 868)
    certs = rec.facts["certificates"]
    assert isinstance(certs, list) and "subject" not in certs[0] and certs[0]["sha256"].count(":") == 31
    assert rec.content_types == (22, 20) and info == "Certificate, Change Cipher Spec"


@given(st.lists(st.tuples(st.integers(0, 873), st.integers(0, 120)), max_size=60), st.randoms())
def test_pieces_equal_a_byte_map(pieces: list[tuple[int, int]], rnd: random.Random) -> None:
    """Pending against the obvious model (a bytearray and a set of received offsets): the same
    bytes received, the first copy of each byte kept, and merged ranges that stay disjoint."""
    body = bytes(rnd.getrandbits(8) for _ in range(874))
    pending = Pending(11, len(body))
    got: dict[int, int] = {}
    for lo, n in pieces:
        chunk = bytes(rnd.getrandbits(8) for _ in range(min(n, len(body) - lo)))
        new = {lo + i: b for i, b in enumerate(chunk) if lo + i not in got}
        assert pending.add(lo, chunk) == len(new)
        got.update(new)
    assert pending.covered == len(got)
    ranges = list(zip(pending.starts, pending.ends, strict=True))
    assert all(a < b for a, b in ranges) and all(b1 < a2 for (_, b1), (a2, _) in pairwise(ranges))
    assert {i for a, b in ranges for i in range(a, b)} == set(got)
    whole = pending.whole()
    assert all(whole[i] == b for i, b in got.items())


def test_truncated_fragments_at_every_boundary(certificate: bytes) -> None:
    """A Certificate fragment cut at every byte: never raises, and what is held is what arrived."""
    whole = fragments(11, 1, certificate, [(100, 600)])[0]
    for cut in range(len(whole)):
        ra = Reassembly()
        parse_datagram(whole[:cut], ra)
        assert ra.pending_bytes == sum(p.covered for p in ra.messages.values()) <= max(0, cut - 25)
