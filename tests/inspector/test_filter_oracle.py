"""Display filters against tshark 4.0: the same frames for the same filter over the public corpus,
wherever both know the fields (`tshark -r F [hint] -Y EXPR -T fields -e frame.number`).

Filters on fields only we have (grpc.path, grpc.status, ...) are in tests/inspector/test_filter.py;
here every field named is one tshark 4.0 registers under the same name and type. A difference that
is tshark's doing is listed in TSHARK_DIFFERS with the frames it makes and why.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from protoscope.decoders.registry import load_registry
from protoscope.inspector.filter import filter_rows
from protoscope.inspector.session import Session
from tests.conftest import public_capture, tshark

GRPC_HINT = ["-d", "tcp.port==50051,http2"]

CASES: dict[str, tuple[list[str], list[str]]] = {
    # grpc-go server streaming over h2c on IPv6 loopback (NULL link type)
    "packt--grpc-go_Server_Streaming.pcapng": (
        GRPC_HINT,
        [
            "http2",
            "grpc",
            "null",
            "http2.type == 0",
            "http2.type == HEADERS",
            "http2.flags & 0x01",
            "http2.streamid == 1",
            "http2.streamid == 0 && http2.type == 4",
            'http2.headers.path == "/greet.GreetService/GreetManyTimes"',
            'http2.header.name == "grpc-status"',
            'http2.header.value matches "^application/grpc"',
            'http2.headers.method == "POST"',
            "http2.headers.status == 200",
            "http2.window_update.window_size_increment > 0",
            "grpc.message_length > 0 && grpc.compressed_flag == 0",
            "protobuf",
            'frame.protocols contains "grpc"',
            "ipv6.addr == ::/64",
            "tcp.seq == 1",
            "tcp.ack > 100",
            "tcp.len == 0 && !http2",
            "tcp.flags.push == 1",
            "frame.len > 100 and http2",
            "ipv6.hlim == 64 && tcp.window_size_value > 100",
            "tcp.ack > 0 && tcp.hdr_len > 20",
        ],
    ),
    # h2c Upgrade and HTTP/1.1 on five interleaved connections
    "suricata-verify--http2-range.pcap": (
        [],
        [
            "http",
            "tcp.stream == 2",
            "tcp.stream in {1, 3..4}",
            "tcp.flags.syn == 1 && tcp.flags.ack == 0",
            "tcp.flags.fin",
            "tcp.seq == 1 && tcp.ack == 1",
            "tcp.ack_raw == 0",
            "tcp.srcport > tcp.dstport",
            "http2.type == 3",
            "http2.type == 1 && http2.flags & 0x04",
            'http.request.method == "GET"',
            "http2.headers.status == 206",
            'frame contains "Range"',
            'frame matches "bytes=\\\\d+-"',
            "frame.time_delta > 0.01",
            "ip.len > 200 && ip.ttl == 64",
            "ip.flags.df && ip.id > 0x1000",
            "tcp.hdr_len > 20",
            "!(tcp.port == 8080)",
        ],
    ),
    # WebRTC: ICE Binding checks, then DTLS 1.0
    "zeek--webrtc-stun.pcap": (
        [],
        [
            "stun",
            "dtls",
            "stun.type == 0x0001",
            'stun.att.username contains ":"',
            "stun.att.priority > 1000",
            "stun.att.tie-breaker",
            "stun.att.type == 0x0024",
            "dtls.record.content_type == 22",
            "dtls.handshake.type in {11, 12}",
            "dtls.record.version == 0xfeff",
            "dtls.record.epoch == 1",
            "dtls.handshake.random[0:1] == dtls.handshake.random[0:1]",
            "ip.src == 192.168.0.0/16 && udp.length > 100",
            "udp.stream == 0 && frame[0:1] == frame[0:1]",
        ],
    ),
    # DTLS 1.2 with a fragmented ClientHello and Certificate
    "zeek--dtls1_2.pcap": (
        [],
        [
            "dtls.handshake.type == 3",
            "dtls.handshake.fragment_offset > 0",
            "dtls.handshake.message_seq == 2",
            "dtls.record.sequence_number > 3",
            "dtls.handshake.version == 0xfefd",
        ],
    ),
    # SIP call with PCMU and PCMA set up by SDP
    "wswiki--sip-rtp-g711.pcap": (
        [],
        [
            "sip",
            "sdp",
            "rtp.p_type == 8",
            "rtp.marker == 1",
            "rtp.seq in {38000..38010}",
            "rtp.ssrc == 0x343da99b",
            'sdp.media contains "RTP/AVP"',
            "udp.stream == 1",
            "udp.port == 5060 && frame.len > 500",
            "rtp.version == 2 && ip.dst == 10.0.2.20",
        ],
    ),
    # STUN over UDP and TCP, a VLAN, ICMP, IPv6
    "arkime--stun.pcap": (
        [],
        [
            "vlan",
            "tcp.stream == 0",
            "udp.stream == 2 || udp.stream == 4",
            "ip.addr == 10.0.0.0/24 && !tcp",
            "eth.type == 0x8100",
            "frame.time_relative > 0.5",
            "ip.addr !== 10.0.0.1",
            "ip.addr != 10.0.0.1",
            "any ip.addr == 10.0.0.1",
            "all ip.addr == 10.0.0.1",
            "udp.checksum > 0x8000 || ip.dsfield == 0",
        ],
    ),
}

TSHARK_DIFFERS: dict[tuple[str, str], tuple[list[str], tuple[list[int], list[int]]]] = {
    # A 4-byte keepalive on the RTP conversation SDP announced: tshark's RTP dissector is called for
    # it (conversation set up by SDP), fails its version check, and leaves an `rtp` item anyway
    # (its frame.protocols says "data"); it is not RTP, and we say so with an rtp.not_rtp note.
    ("wswiki--sip-rtp-g711.pcap", "rtp"): ([], ([], [431])),
}


def _cases() -> Iterator[tuple[str, list[str], str]]:
    for name, (hint, filters) in CASES.items():
        for text in filters:
            yield name, hint, text


def test_the_oracle_is_big_enough() -> None:
    assert sum(len(filters) for _, filters in CASES.values()) >= 40


@pytest.fixture(scope="module")
def sessions() -> Iterator[dict[str, Session]]:
    opened: dict[str, Session] = {}
    yield opened
    for session in opened.values():
        session.close()


def _ours(sessions: dict[str, Session], name: str, text: str) -> list[int]:
    path: Path = public_capture(name)
    session = sessions.get(name)
    if session is None:
        session = sessions[name] = Session.open(path, load_registry(use_plugins=False))
    rows = filter_rows(session, text)
    assert rows is not None
    return [i + 1 for i in rows]


def _theirs(name: str, hint: list[str], text: str) -> list[int]:
    out = tshark("-r", str(public_capture(name)), *hint, "-Y", text, "-T", "fields", "-e", "frame.number")
    return [int(x) for x in out.split()]


@pytest.mark.parametrize(
    ("name", "hint", "text"), list(_cases()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_same_frames_as_tshark(sessions: dict[str, Session], name: str, hint: list[str], text: str) -> None:
    assert _ours(sessions, name, text) == _theirs(name, hint, text)


@pytest.mark.parametrize(("name", "text"), list(TSHARK_DIFFERS))
def test_known_tshark_differences(sessions: dict[str, Session], name: str, text: str) -> None:
    hint, (ours_only, tshark_only) = TSHARK_DIFFERS[(name, text)]
    ours, theirs = set(_ours(sessions, name, text)), set(_theirs(name, hint, text))
    assert (sorted(ours - theirs), sorted(theirs - ours)) == (ours_only, tshark_only)
