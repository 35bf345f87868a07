"""Trickle ICE in signaling (RFC 8838/8840): JSON RTCIceCandidateInit at any depth, the end of
candidates in its three spellings, SDP fragments of WHIP/WHEP PATCHes; every fingerprint an SDP
carries. Hostile input gives findings, never exceptions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protoscope.decoders.api import Endpoint, FlowContext
from protoscope.decoders.http.decoder import _inner_sdp
from protoscope.decoders.registry import load_registry
from protoscope.decoders.sdp import SdpDecoder, TrickleRecord, find_sdp, find_trickle, trickle
from protoscope.decoders.sdp.parse import parse
from protoscope.decoders.sdp.trickle import MAX_TRICKLE_CANDIDATES, looks_like_sdpfrag, parse_trickle
from protoscope.inspector.filter import packet_matcher
from protoscope.inspector.session import Session
from tests.pcapgen import tcp_conversation, write

HOST = "candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host"
SRFLX = "candidate:2 1 udp 1694498815 203.0.113.7 40001 typ srflx raddr 10.0.0.1 rport 5000"
FRAGMENT = (
    "a=ice-options:trickle ice2\r\na=group:BUNDLE 0 1\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n"
    "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n"
    "a=candidate:1 1 UDP 2130706431 198.51.100.1 39132 typ host\r\na=end-of-candidates\r\n"
)
"""RFC 8840 section 4.4's example (shortened): a WHIP PATCH body."""


def ctx() -> FlowContext:
    return FlowContext(0, "tcp", Endpoint("10.0.0.1", 40000), Endpoint("10.0.0.2", 443), True, 1, 0.0)


def records(body: bytes) -> list[TrickleRecord]:
    result = SdpDecoder().decode(body, None, ctx())
    assert all(p.protocol == "sdp" for p in result.pdus)
    return [p.record for p in result.pdus if isinstance(p.record, TrickleRecord)]


def test_browser_candidate_json() -> None:
    body = json.dumps({"candidate": HOST, "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "HeEa"})
    (rec,) = records(body.encode())
    assert (rec.candidates, rec.ufrag, rec.mid, rec.mline_index, rec.end_of_candidates) == (
        [HOST],
        "HeEa",
        "0",
        0,
        False,
    )


def test_wrapped_listed_and_prefixed_candidates_join_one_record() -> None:
    """A {"type": "candidate", "candidate": {...}} wrapper in a list, "a=candidate:" as some
    servers forward it, and the empty candidate that ends gathering: one record for the mid."""
    body = json.dumps(
        {
            "type": "ice",
            "data": [
                {"type": "candidate", "candidate": {"candidate": HOST, "sdpMid": "0"}},
                {"type": "candidate", "candidate": {"candidate": "a=" + SRFLX, "sdpMid": "0"}},
                {"type": "candidate", "candidate": {"candidate": "", "sdpMid": "0"}},
            ],
        }
    )
    (rec,) = records(body.encode())
    assert rec.candidates == [HOST, SRFLX] and rec.mid == "0" and rec.end_of_candidates


def test_end_of_candidates_forms() -> None:
    for body in (
        {"candidate": None},
        {"type": "candidate", "candidate": None},
        {"candidate": None, "sdpMid": "1"},
        {"candidate": "a=end-of-candidates", "sdpMid": "1"},
        {"candidate": "", "sdpMLineIndex": 1},
    ):
        (rec,) = records(json.dumps(body).encode())
        assert rec.end_of_candidates and rec.candidates == [], body


def test_apprtc_label_and_id() -> None:
    body = {"type": "candidate", "label": 1, "id": "video", "candidate": HOST}
    (rec,) = records(json.dumps(body).encode())
    assert (rec.mid, rec.mline_index, rec.candidates) == ("video", 1, [HOST])


def test_json_that_is_not_trickle() -> None:
    for body in (
        b'{"candidate": "Ada Lovelace", "votes": 3}',
        b'{"candidate": null, "votes": 3}',
        json.dumps({"type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\na=" + HOST}).encode(),
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[candidate]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        b"[" * 100_000 + b'"candidate"' + b"]" * 100_000,
    ):
        assert find_trickle(body) is None
        result = SdpDecoder().decode(body, None, ctx())
        assert not any(isinstance(p.record, TrickleRecord) for p in result.pdus)


def test_sdp_fragment() -> None:
    assert looks_like_sdpfrag(FRAGMENT) and not looks_like_sdpfrag("v=0\r\n" + FRAGMENT)
    context = ctx()
    result = SdpDecoder().decode(FRAGMENT.encode(), None, context)
    (pdu,) = result.pdus
    rec = pdu.record
    assert isinstance(rec, TrickleRecord)
    assert (rec.ufrag, rec.mid, rec.end_of_candidates) == ("EsAw", "0", True)
    assert rec.candidates == ["candidate:1 1 UDP 2130706431 198.51.100.1 39132 typ host"]
    assert context.capture["ice.passwords"] == {"P2uYro0UCOQ4zxjKXaWCBui1"}  # an ICE restart's
    spans = {f.name: f.span for f in pdu.fields}
    assert FRAGMENT.encode()[slice(*spans["sdp.candidate"])].startswith(b"a=candidate:1 1 UDP")
    assert "end-of-candidates" in pdu.summary


def test_session_level_fragment_without_media() -> None:
    """Some WHIP clients PATCH candidates without an m= line: one record, the session's ufrag."""
    (rec,) = records(b"a=ice-ufrag:abcd\r\na=candidate:" + HOST[len("candidate:") :].encode() + b"\r\n")
    assert rec.ufrag == "abcd" and rec.candidates == [HOST] and rec.mid is None


def test_candidates_over_the_limit() -> None:
    body = json.dumps([{"candidate": HOST, "sdpMid": "0"}] * (MAX_TRICKLE_CANDIDATES + 5)).encode()
    found = parse_trickle(body)
    assert sum(len(r.candidates) for r in found.records) == MAX_TRICKLE_CANDIDATES
    assert [f.code for f in found.findings] == ["sdp.candidates_limit"]


def test_neither_sdp_nor_candidates_is_a_finding() -> None:
    result = SdpDecoder().decode(b"hello", None, ctx())
    assert result.pdus == () and [f.code for f in result.findings] == ["sdp.not_understood"]


def test_every_fingerprint_is_kept() -> None:
    """RFC 8122 section 5: several a=fingerprint lines (hash functions), session and media level;
    `fingerprint` stays the one it was."""
    sdp = (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 AB:CD\r\n"
        "a=fingerprint:sha-512 EF:01\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=fingerprint:sha-384 23:45\r\n"
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=fingerprint:sha-384 23:45\r\n"
    )
    rec, _ = parse(sdp)
    assert rec.fingerprints == ["sha-256 AB:CD", "sha-512 EF:01", "sha-384 23:45"]
    assert rec.fingerprint == "sha-512 EF:01" and rec.media[0].fingerprint == "sha-384 23:45"


def ws_frame(text: bytes) -> bytes:
    n = len(text)
    head = bytes([0x81]) + (bytes([n]) if n < 126 else bytes([126]) + n.to_bytes(2, "big"))
    return head + text


def test_whip_patch_and_websocket_candidates_reach_the_sdp_decoder(tmp_path: Path) -> None:
    patch = (
        b"PATCH /whip/resource/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/trickle-ice-sdpfrag\r\n"
        b"Content-Length: " + str(len(FRAGMENT)).encode() + b"\r\n\r\n" + FRAGMENT.encode()
    )
    ok = b"HTTP/1.1 204 No Content\r\n\r\n"
    upgrade = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    switched = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    message = json.dumps({"type": "candidate", "candidate": {"candidate": SRFLX, "sdpMid": "0"}}).encode()
    offer = json.dumps({"type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\n"}).encode()
    whip = tcp_conversation([(True, patch), (False, ok)], server=("127.0.0.1", 8080))
    ws = tcp_conversation(
        [(True, upgrade), (False, switched), (False, ws_frame(message)), (False, ws_frame(offer))],
        client=("127.0.0.1", 40001),
        server=("127.0.0.1", 8000),
    )
    pcap = write(tmp_path / "trickle.pcap", whip + ws)
    session = Session.open(pcap, load_registry())
    try:
        found = [p for pd in session.decode() for p in pd.pdus if p.protocol == "sdp"]
    finally:
        session.close()
    trickled = [p.record for p in found if isinstance(p.record, TrickleRecord)]
    assert [r.candidates for r in trickled] == [
        ["candidate:1 1 UDP 2130706431 198.51.100.1 39132 typ host"],
        [SRFLX],
    ]
    assert len(found) == 3  # and the offer, which has no candidate: no trickle record for it


@given(st.binary(max_size=600))
def test_random_bodies_never_raise(data: bytes) -> None:
    SdpDecoder().decode(data, None, ctx())
    find_trickle(data)
    find_sdp(data)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=20)
    | st.sampled_from([HOST, "", "a=" + SRFLX]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["candidate", "sdpMid", "sdpMLineIndex", "usernameFragment", "type", "label", "id", "x"]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@given(json_values)
def test_random_json_signaling_never_raises(doc: object) -> None:
    found = parse_trickle(json.dumps(doc).encode())
    for rec in found.records:
        assert all(c.startswith("candidate:") for c in rec.candidates)


def test_a_body_with_an_offer_and_candidates_hands_over_both() -> None:
    """{"type": "offer", "sdp": ..., "candidates": [...]}: the SDP, then the body for its
    candidates; a plain SDP body is handed over once (its a=candidate lines are the SDP's)."""
    sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n"
    body = json.dumps({"type": "offer", "sdp": sdp, "candidates": [HOST]}).encode()
    inner = _inner_sdp(body, 7)
    assert [(p.protocol, p.offset) for p in inner] == [("sdp", 7), ("sdp", 7)]
    assert inner[0].data == sdp.encode() and inner[1].data == body
    assert len(_inner_sdp((sdp + "a=" + HOST + "\r\n").encode(), 0)) == 1
    assert _inner_sdp(b'{"candidate": "Ada"}', 0) == ()


def test_display_filter_finds_trickled_candidates(tmp_path: Path) -> None:
    upgrade = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    switched = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    message = json.dumps({"candidate": SRFLX, "sdpMid": "0", "usernameFragment": "HeEa"}).encode()
    pcap = write(
        tmp_path / "ws.pcap",
        tcp_conversation(
            [(True, upgrade), (False, switched), (False, ws_frame(message))], server=("127.0.0.1", 8000)
        ),
    )
    session = Session.open(pcap, load_registry())
    try:
        session.display_filter = 'sdp.candidate contains "srflx" && sdp.ice_ufrag == "HeEa"'
        matches = packet_matcher(session, session.display_filter)
        hits = [pd.index for pd in session.decode() if matches(pd)]
    finally:
        session.close()
    assert hits == [len(tcp_conversation([(True, upgrade), (False, switched)]))]


class CountingBytes(bytes):
    """A message that counts the bytes its searches scan (the spans' work)."""

    scanned = 0

    def find(self, sub: Any, start: Any = 0, *rest: Any) -> int:
        at = super().find(sub, start, *rest)
        self.scanned += (at if at >= 0 else len(self)) - (start or 0)
        return at


def test_a_huge_message_stops_at_the_limit_and_scans_linearly() -> None:
    """Review finding 4: past MAX_TRICKLE_CANDIDATES no record or field is built, and the spans'
    searches only move forward, so 4x the limit of records (a distinct ufrag each, some JSON-escaped
    and so not found as written) costs a few scans of the message, not one per record."""
    entries = [
        {"usernameFragment": f"u{j}" if j % 500 else f"\u00e9{j}", "candidate": HOST, "x": "p" * 64}
        for j in range(4 * MAX_TRICKLE_CANDIDATES)
    ]
    body = CountingBytes(json.dumps(entries).encode())
    found = parse_trickle(body)
    assert len(found.records) == MAX_TRICKLE_CANDIDATES
    assert len(found.fields) == 2 * MAX_TRICKLE_CANDIDATES
    assert [f.code for f in found.findings] == ["sdp.candidates_limit"]
    assert body.scanned <= 12 * len(body), body.scanned / len(body)


def test_end_of_candidates_floods_are_bounded_too() -> None:
    body = json.dumps([{"candidate": None, "sdpMid": str(j)} for j in range(3 * MAX_TRICKLE_CANDIDATES)])
    found = parse_trickle(body.encode())
    assert len(found.records) == MAX_TRICKLE_CANDIDATES
    assert [f.code for f in found.findings] == ["sdp.candidates_limit"]


def test_sdp_fragment_over_the_limit_builds_no_more_fields() -> None:
    lines = "".join(f"a=candidate:{j} 1 udp 1 10.0.0.1 {j % 60000 + 1} typ host\r\n" for j in range(2048))
    found = parse_trickle(("a=ice-ufrag:abcd\r\n" + lines).encode())
    assert sum(len(r.candidates) for r in found.records) == MAX_TRICKLE_CANDIDATES
    assert sum(f.name == "sdp.candidate" for f in found.fields) == MAX_TRICKLE_CANDIDATES
    assert [f.code for f in found.findings] == ["sdp.candidates_limit"]
    many_media = "".join(f"m=audio 9 RTP/AVP 0\r\na=mid:{j}\r\n" for j in range(2048))
    found = parse_trickle(("a=ice-ufrag:abcd\r\na=end-of-candidates\r\n" + many_media).encode())
    assert len(found.records) == MAX_TRICKLE_CANDIDATES
    assert sum(f.name == "sdp.media" for f in found.fields) == MAX_TRICKLE_CANDIDATES


def test_spans_point_into_each_candidates_own_object() -> None:
    """sdpMid before the candidate, a ufrag repeated in the next object, a mid "0" that the
    candidate's address also contains: each field spans its own JSON string."""
    entries = [
        {"sdpMid": "0", "candidate": HOST, "usernameFragment": "u1"},
        {"usernameFragment": "u1", "candidate": SRFLX, "sdpMid": "0"},
    ]
    body = json.dumps(entries).encode()
    found = parse_trickle(body)
    objects = [body.index(b"{"), body.index(b"}, {") + 1, len(body)]
    per_object = [f for f in found.fields if f.name != "sdp.end_of_candidates"]
    owners = []
    for f in per_object:
        start, end = f.span
        assert body[start:end].decode() == str(f.value), f
        owners.append(0 if end <= objects[1] else 1)
    assert owners == [0, 0, 0, 1, 1, 1]


def test_find_trickle_does_not_parse_the_message_for_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    """The HTTP/WebSocket check before handing a body over stops at its first candidate: the
    "sdp" decoder's parse is the only full one (review finding 4, parsed twice)."""
    calls: list[bytes] = []
    real = trickle.parse_trickle
    monkeypatch.setattr(trickle, "parse_trickle", lambda data: calls.append(data) or real(data))
    body = json.dumps([{"candidate": HOST, "sdpMid": "0"}] * 50).encode()
    assert find_trickle(body) is body and find_trickle(FRAGMENT.encode()) is not None
    assert find_trickle(b'{"candidate": "Ada"}') is None
    assert calls == []
