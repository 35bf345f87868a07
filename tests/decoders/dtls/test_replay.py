"""DTLS replay detection in a sliding window (RFC 6347 section 4.1.2.6, 64 record numbers), as
SRTP's replay list keeps one: two integers a side however many records come (the set it replaces
held up to 65,536 record numbers a side).

On real bytes: aiortc's DTLS 1.2 records of captures/samples/webrtc-datachannels.pcap (97
application data records each way). A record replayed within the window is a note and its
plaintext is not handed on again; one older than the window cannot be told and is handed on."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import UDP
from scapy.utils import rdpcap

from protoscope.decoders.tls.connection import Connection
from protoscope.decoders.tls.replay import WINDOW, ReplayWindow
from tests.decoders.dtls.test_decrypt import WEBRTC, WEBRTC_KEYS, Flow
from tests.decoders.tls.common import keylog


def datagrams() -> list[tuple[bool, bytes]]:
    """The capture's DTLS datagrams (RFC 7983: first byte 20-63), from the DTLS client's port."""
    grams = [
        (p[UDP].sport, bytes(p[UDP].payload))
        for p in rdpcap(str(WEBRTC))
        if UDP in p and bytes(p[UDP].payload) and 20 <= bytes(p[UDP].payload)[0] <= 63
    ]
    client = grams[0][0]  # the first DTLS datagram is the ClientHello
    return [(port == client, data) for port, data in grams]


def number(datagram: bytes) -> int:
    """The first record's 64-bit record number (epoch << 48 | sequence number)."""
    return int.from_bytes(datagram[3:11], "big")


def test_a_side_holds_a_window_not_every_record_number() -> None:
    flow = Flow(keylog(path=WEBRTC_KEYS))
    grams = datagrams()
    pdus = [flow.feed(c, d) for c, d in grams]
    opened = [(c, d) for (c, d), p in zip(grams, pdus, strict=True) if p.inner]
    assert len(opened) >= 2 * 90 and not [
        f for p in pdus for f in p.findings if f.code != "dtls.retransmission"
    ]
    conn = flow.shared["dtls.connection"]
    assert isinstance(conn, Connection)
    for side, from_client in ((conn.client, True), (conn.server, False)):
        window = side.replay
        assert isinstance(window, ReplayWindow) and 0 < window.bits < 1 << WINDOW
        assert window.top == max(number(d) for c, d in grams if c == from_client)  # every record opened
        assert window.bits == (1 << WINDOW) - 1  # aiortc sent every number: all 64 opened


def test_within_the_window_a_replay_is_a_note_behind_it_unknown() -> None:
    flow = Flow(keylog(path=WEBRTC_KEYS))
    grams = datagrams()
    pdus = [flow.feed(c, d) for c, d in grams]
    sent = {number(d): d for (c, d), p in zip(grams, pdus, strict=True) if p.inner and c}
    top = max(sent)
    for back in (0, 1, WINDOW - 1):
        again = flow.feed(True, sent[top - back])
        assert [f.code for f in again.findings] == ["dtls.replay"] and not again.inner
    late = flow.feed(True, sent[top - WINDOW])  # the receiver would drop it; whether seen: unknown
    assert late.inner and not late.findings
    conn = flow.shared["dtls.connection"]
    assert isinstance(conn, Connection) and conn.client.replay.top == top


def test_a_jump_of_an_epoch_keeps_the_window_small() -> None:
    window = ReplayWindow()
    for n in range(200):
        window.add(n)
    window.add(1 << 48)  # the next epoch's first record
    assert window.top == 1 << 48 and window.bits == 1
    assert window.check(199) == "old" and window.check(1 << 48) == "replay"
    assert window.check((1 << 48) + 1) == "new"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 1 << 64), max_size=300), st.integers(0, 1 << 64))
def test_the_window_agrees_with_every_number_remembered(added: list[int], probe: int) -> None:
    """Against a set of every number added: within WINDOW of the highest, "replay" exactly when it
    was added; behind it "old"; above it "new". The window never holds more than WINDOW bits."""
    window = ReplayWindow()
    seen: set[int] = set()
    for n in added:
        if window.check(n) != "replay":
            window.add(n)
        seen.add(n)
        assert 0 <= window.bits < 1 << WINDOW
    for n in [probe, *added[-5:], *(max(added, default=0) - k for k in range(WINDOW + 2))]:
        top = max(seen, default=-1)
        if n > top:
            assert window.check(n) == "new"
        elif top - n >= WINDOW:
            assert window.check(n) == "old"
        else:
            assert window.check(n) == ("replay" if n in seen else "new")
