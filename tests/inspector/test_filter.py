"""Display filters: the grammar, Wireshark's semantics, errors with positions, the columnar path
against the per-packet one, gRPC's virtual fields, -Y headless, hostile input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protoscope.decoders.registry import load_registry
from protoscope.inspector.cli import main
from protoscope.inspector.filter import (
    FilterError,
    PacketFields,
    _context,
    compile_filter,
    filter_rows,
    packet_matcher,
    tokenize,
)
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES, public_capture

PACKET = {
    "frame": [b"\x00\x1a\x2b\x00\x00\x01GET /grpc HTTP"],
    "eth.src": ["00:1a:2b:00:00:01"],
    "eth.dst": ["00:1a:2b:00:00:02"],
    "ip.src": ["10.0.0.1"],
    "ip.dst": ["10.0.0.2"],
    "udp": [True],
    "udp.srcport": [3478],
    "udp.dstport": [5000],
    "stun": [True],
    "stun.type": [257],
    "stun.id": ["0a0b0c0d0e0f101112131415"],
    "stun.att.username": ["abc:def"],
    "rtp.ssrc": [0x1234],
    "rtp.marker": [True],
    "frame.len": [120],
    "frame.time_relative": [1.25],
    "http2.type": [1, 0],
    "http2.header.name": ["content-type", ":path"],
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("stun.type == 0x0101", True),
        ("stun.type eq 257", True),
        ("stun.type == 0401", True),  # octal 257, as Wireshark reads a leading 0
        ("ip.addr == 10.0.0.1 && udp", True),
        ("ip.addr == 10.0.0.3 or tcp", False),
        ("ip.addr == 10.0.0.0/8", True),
        ("ip.addr == 10.1.0.0/16", False),
        ("ip.src > 10.0.0.0 and ip.src < 10.0.0.2", True),
        ("rtp.ssrc == 0x1234", True),
        ("rtp.marker == 1 && rtp.marker == True", True),
        ("udp.port in {53 3478}", True),
        ("udp.port in {53, 3000..4000}", True),
        ("udp.port in {53, 6000..7000}", False),
        ('stun.att.username contains "c:d"', True),
        ('stun.att.username matches "^ABC"', True),  # Wireshark's matches is case-insensitive
        ('stun.att.username matches "(?-i)^ABC"', False),
        ('stun.att.username ~ "def$"', True),
        ("!(tcp) and frame.len > 100", True),
        ("frame.len <= 100", False),
        ("frame.time_relative >= 1.25 && frame.time_relative < 1.3", True),
        ("grpc.status != 0", False),  # absent: false, as tshark
        ("stun.type != 1", True),
        ("not stun", False),
        ("http2.type == 0", True),  # any value
        ("http2.type != 0", False),  # all not equal
        ("http2.type === 1", False),  # all equal
        ("all http2.type == 1", False),
        ("any http2.type == 1", True),
        ("http2.type !== 1", True),  # one differs
        ("http2.type ~= 0", True),
        ("http2.type == HEADERS", True),  # by value name
        ('http2.header.name == ":path"', True),
        ("stun.type & 0x0100", True),
        ("stun.type & 0x0002", False),
        ("eth.src[0:3] == 00:1a:2b", True),
        ("eth.addr[0:3] == 00-1a-2b", True),
        ("eth.src[5] == 01", True),
        ("eth.src[-1] == 01", True),
        ("eth.src[4-5] == 00:01", True),
        ("eth.src[:2] == 00:1a", True),
        ("eth.src[4:] == 00:01", True),
        ("eth.src[0:1,5] == 00:01", True),
        ("eth.src[5:4] == 01", False),  # past the end: false
        ("ip.src[0] == 0a", True),
        ("frame[0:3] == 00:1a:2b", True),
        ('frame contains "GET"', True),
        ('frame contains "\\x47\\105T /\\"" || frame contains "G\\x45T"', True),
        ("frame contains 47:45:54", True),
        ('frame matches "get /GRPC"', True),
        ("stun.id contains 0c:0d", True),  # a bytes field held as hex text
        ("len(stun.att.username) == 7", True),
        ("ip.src == ip.dst", False),  # a field on both sides
        ("udp.srcport < udp.dstport", True),
    ],
)
def test_semantics(text: str, expected: bool) -> None:
    assert compile_filter(text)(PACKET) is expected


@pytest.mark.parametrize(
    ("text", "message", "pos"),
    [
        ("foo == 1", "unknown field 'foo'", 0),
        ("udp && tcp.flag.syn", "unknown field 'tcp.flag.syn' (did you mean: tcp.flags.syn", 7),
        ("frame.len > abc", "'abc' is not a valid integer for frame.len at 12", 12),
        ("ip.addr == 10.0.0.999", "not a valid address", 11),
        ("udp.port[0:1] == 0d", "cannot be sliced", 8),
        ('frame matches "["', "bad regular expression", 14),
        ("frame matches abc", "needs a quoted regular expression", 14),
        ("udp.port contains 1", "'contains' needs bytes or text", 18),
        ("frame.len == 1 @", "unexpected '@' at 15", 15),
        ("(udp", "the filter ends too soon", None),
        ("udp)", "unexpected ')' at 3", 3),
        ("== 3", "expected a field name at 0", 0),
        ("a == b c", "unknown field 'a'", 0),
        ("udp.port in {}", "empty set", 0),
        ("tcp.flags.syn == 2", "is not a boolean", 17),
        ("eth.src[x] == 00", "bad slice", 7),
        ("ip.src & 1", "'&' needs an integer", 9),
        ('frame contains "\\q"', "\\q is not a valid character escape sequence", 16),
    ],
)
def test_errors_say_what_and_where(text: str, message: str, pos: int | None) -> None:
    with pytest.raises(FilterError) as caught:
        compile_filter(text)
    assert message in str(caught.value)
    assert caught.value.pos == pos


@pytest.mark.parametrize(
    "text", ["", "ip.src ==", "(udp", "udp)", "== 3", "a == b c", 'x matches "["', "frame.len > abc"]
)
def test_errors_are_filter_errors(text: str) -> None:
    with pytest.raises(FilterError):
        compile_filter(text)


def test_protocol_names_and_aliases_are_known() -> None:
    for text in ("stun", "dtls", "sip", "grpc", "tcp.flags.rst", "tcp.flags.psh", "pbf.demo.Person.name"):
        compile_filter(text)
    assert compile_filter("tcp.flags.rst")({"tcp.flags.reset": [True]})


def test_tokens_carry_positions() -> None:
    tokens = tokenize('ip.addr == 10.0.0.0/8 && frame[0:2] contains "a b"')
    assert [(t.kind, t.text, t.pos) for t in tokens] == [
        ("word", "ip.addr", 0),
        ("op", "==", 8),
        ("word", "10.0.0.0/8", 11),
        ("op", "&&", 22),
        ("word", "frame", 25),
        ("slice", "[0:2]", 30),
        ("op", "contains", 36),
        ("str", '"a b"', 45),
    ]


def test_nesting_is_bounded() -> None:
    with pytest.raises(FilterError, match="nested deeper"):
        compile_filter("(" * 200 + "udp" + ")" * 200)
    with pytest.raises(FilterError, match="nested deeper"):
        compile_filter("!" * 200 + "udp")


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_random_text_parses_or_fails_cleanly(text: str) -> None:
    try:
        predicate = compile_filter(text)
    except FilterError:
        return
    predicate(PACKET)


FILTER_ALPHABET = st.sampled_from(
    [
        "ip.addr",
        "tcp.port",
        "udp",
        "frame",
        "eth.src",
        "stun.type",
        "==",
        "!=",
        "===",
        "~=",
        ">",
        "&&",
        "||",
        "!",
        "(",
        ")",
        "{",
        "}",
        ",",
        "..",
        "[0:2]",
        "[-1]",
        "[",
        "]",
        '"a"',
        '"\\x',
        "10.0.0.0/8",
        "0x10",
        "1",
        "00:1a",
        "contains",
        "matches",
        "in",
        "any",
        "all",
        "len(",
        "&",
        "~",
        " ",
        "not",
    ]
)


@settings(max_examples=300)
@given(st.lists(FILTER_ALPHABET, max_size=12))
def test_random_token_soup_parses_or_fails_cleanly(parts: list[str]) -> None:
    try:
        predicate = compile_filter(" ".join(parts))
    except FilterError:
        return
    predicate(PACKET)


# -- whole captures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry():  # type: ignore[no-untyped-def]
    return load_registry(use_plugins=False)


def _per_packet(session: Session, text: str) -> list[int]:
    """The filter evaluated packet by packet over a full decoding pass, without the columns."""
    flt = compile_filter(text, session.registry)
    ctx = _context(session)
    from protoscope.inspector.filter import _GrpcPaths

    paths = _GrpcPaths()
    out = []
    for pd in session.decode():
        grpc = paths.see(int(ctx.ix.flow[pd.index]), pd.index, pd.pdus)
        if flt(PacketFields(ctx, pd.index, pd, grpc)):
            out.append(pd.index)
    return out


COLUMNAR = [
    "tcp",
    "!udp",
    "tcp.stream == 0",
    "tcp.port == 47051 && tcp.len > 0",
    "tcp.flags.syn == 1 || tcp.flags.fin",
    "tcp.flags & 0x12",
    "tcp.seq == 1 && tcp.seq_raw > 0",
    "tcp.srcport in {47051, 1..1024}",
    "frame.number in {1, 5..9} or frame.len > 300",
    "frame.time_relative > 0.05 and frame.time_delta < 0.001",
    "ip.addr == 127.0.0.0/8 && !(ip.dst == 127.0.0.1)",
    "ip.src >= 127.0.0.1",
    "ip.proto == 6 && udp.length > 0",
    "ip.addr != 127.0.0.1",
    "tcp.port === 47051",
    "tcp.port !== 47051",
    "all tcp.port > 1000",
    "eth.addr[0:3] == 00:00:00",
    "eth.src == 00:00:00:00:00:00 && eth.type == 0x0800",
    "eth.dst[5] == 00 || eth.dst[4-5] != 00:00",
    "frame[12:2] == 08:00",
    "frame[-4:2] == frame[-4:2] && frame[-2:2] !== 00:00",
    "frame[60:8] == 00:00:00:00:00:00:00:00",
    "ip.ttl == 64 && ip.flags.df && !ip.flags.mf",
    "ip.id > 0x1000 || ip.len < 60",
    "ip.hdr_len == 20 && ip.version == 4 && ip.dsfield == 0",
    "tcp.hdr_len == 32 && tcp.window_size_value > 100",
    "tcp.ack == 1 || tcp.ack_raw == 0",
]

LINK_LAYERS = [
    "ipv6.hlim == 64 || ipv6.plen > 100",
    "ipv6.nxt == 17 && udp.checksum != 0",
    "udp.checksum > 0x8000 || udp.length < 30",
    "ip.ttl < 64 && ip.proto == 17",
    "tcp.ack > 0 && tcp.hdr_len > 20",
    "eth.type == 0x8100 || vlan",
    "eth.addr[0:1] == 00 && frame[0:1] != 01",
    "ip.addr == 10.0.0.0/8 && ip.flags.df == 0",
]


@pytest.mark.parametrize("text", COLUMNAR)
def test_columns_agree_with_the_per_packet_path(registry, text: str) -> None:  # type: ignore[no-untyped-def]
    session = Session.open(SAMPLES / "grpc-demo.pcap", registry)
    try:
        assert filter_rows(session, text) == _per_packet(session, text)
    finally:
        session.close()


@pytest.mark.parametrize("text", LINK_LAYERS)
@pytest.mark.parametrize(
    "name", ["arkime--stun.pcap", "ndpi--stun.pcap", "packt--grpc-go_Server_Streaming.pcapng"]
)
def test_columns_agree_over_vlan_ipv6_icmp_and_loopback(registry, name: str, text: str) -> None:  # type: ignore[no-untyped-def]
    session = Session.open(public_capture(name), registry)
    try:
        assert filter_rows(session, text) == _per_packet(session, text)
    finally:
        session.close()


MIXED = [
    "http2.type == 1 && tcp.srcport != 47051",
    "grpc.status != 0",
    "!http2 && tcp.len > 0",
    'frame.protocols contains "grpc"',
    "http2.streamid in {1 3} || tcp.flags.syn",
    'grpc.path contains "List" && grpc',
]


@pytest.mark.parametrize("text", MIXED)
def test_decoder_fields_agree_with_the_per_packet_path(registry, text: str) -> None:  # type: ignore[no-untyped-def]
    session = Session.open(SAMPLES / "grpc-demo.pcap", registry)
    try:
        assert filter_rows(session, text) == _per_packet(session, text)
    finally:
        session.close()


@pytest.mark.parametrize("text", [*COLUMNAR[:6], *MIXED])
def test_a_running_pass_matches_as_filter_rows(registry, text: str) -> None:  # type: ignore[no-untyped-def]
    session = Session.open(SAMPLES / "grpc-demo.pcap", registry)
    try:
        matches = packet_matcher(session, text)
        assert [pd.index for pd in session.decode() if matches(pd)] == filter_rows(session, text)
    finally:
        session.close()


def test_grpc_virtual_fields(registry) -> None:  # type: ignore[no-untyped-def]
    session = Session.open(SAMPLES / "grpc-demo.pcap", registry)
    try:
        failed = filter_rows(session, "grpc.status != 0")
        assert [i + 1 for i in failed or []] == [18, 98]  # NOT_FOUND and DEADLINE_EXCEEDED
        get = set(filter_rows(session, 'grpc.path == "/demo.Directory/Get"') or [])
        by_method = set(
            filter_rows(session, 'grpc.method == "Get" && grpc.service == "demo.Directory"') or []
        )
        assert get == by_method and 17 in get  # the trailers of the NOT_FOUND call (frame 18)
        assert not get & set(filter_rows(session, 'grpc.method == "List"') or [])
    finally:
        session.close()


def test_streams_are_numbered_as_tshark_numbers_them(registry) -> None:  # type: ignore[no-untyped-def]
    """TCP and UDP conversations apart, each from 0 in order of first packet."""
    session = Session.open(public_capture("arkime--stun.pcap"), registry)
    try:
        udp = [filter_rows(session, f"udp.stream == {k}") for k in range(5)]
        assert [[i + 1 for i in rows or []] for rows in udp] == [[1], [2], [6], [7], [8]]
        assert [i + 1 for i in filter_rows(session, "tcp.stream == 0") or []] == [3, 4, 5]
    finally:
        session.close()


def test_cancelled_and_empty(registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session = Session.open(SAMPLES / "grpc-demo.pcap", registry)
    try:
        assert filter_rows(session, "http2", cancelled=lambda: True) is None
        assert filter_rows(session, "tcp.len > 0 && ip.src == 1.2.3.4", cancelled=lambda: False) == []
    finally:
        session.close()


def test_lazy_fields_compute_only_what_is_asked(registry) -> None:  # type: ignore[no-untyped-def]
    session = Session.open(SAMPLES / "grpc-demo.pcap", registry)
    try:
        fields = PacketFields(_context(session), 0)
        assert fields["frame.number"] == [1] and fields._link is None and fields._decoded is None
        assert fields["tcp.flags.syn"] == [True] and fields._decoded is None
        assert "http2.type" not in fields and fields["frame.protocols"] == ["eth:ethertype:ip:tcp"]
        assert np.isclose(fields["frame.time_relative"][0], 0.0)
    finally:
        session.close()


def test_headless_filter(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                str(SAMPLES / "grpc-demo.pcap"),
                "--report",
                "packets",
                "--format",
                "jsonl",
                "-Y",
                "grpc.status != 0",
            ]
        )
        == 0
    )
    frames = [line.split(",")[0] for line in capsys.readouterr().out.splitlines()]
    assert frames == ['{"frame": 18', '{"frame": 98']  # NOT_FOUND and DEADLINE_EXCEEDED
    assert main([str(SAMPLES / "grpc-demo.pcap"), "--report", "packets", "-Y", "ip.addr =="]) == 2
    assert "bad filter" in capsys.readouterr().err
    assert main([str(SAMPLES / "grpc-demo.pcap"), "--report", "packets", "-Y", "foo == 1"]) == 2
    assert "unknown field 'foo'" in capsys.readouterr().err
