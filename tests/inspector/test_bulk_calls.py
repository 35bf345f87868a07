"""The compiled bulk path of `--report calls` gives the same text as the Python decoders.

The Python decoders are the oracle: on every capture, and on generated h2c conversations (random
calls, metadata, protobuf messages, framing and TCP segmentation, then random byte flips), the
report written with the extension must equal, byte for byte, the report written without it.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import random
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hpack import Encoder
from hpack.hpack import encode_integer
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hyperframe.frame import (
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.packet import Packet

from protoscope.decoders.grpc.messages import MAX_DECOMPRESSED_LEN
from protoscope.decoders.registry import load_registry
from protoscope.inspector import bulk_calls
from protoscope.inspector.report import rows
from protoscope.inspector.report.output import write
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES, public_captures
from tests.pcapgen import tcp_conversation
from tests.pcapgen import write as write_pcap

BUILT = bulk_calls._bulk
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def test_extension_is_built_in_ci() -> None:
    """CI installs a C compiler: there the bulk path must exist (elsewhere it is optional)."""
    if os.environ.get("CI") == "true":
        assert bulk_calls.available(), "decoders/grpc/_bulk.c was not compiled"
    elif not bulk_calls.available():
        pytest.skip("the extension was not compiled (no C compiler at install time)")


@contextmanager
def bulk(enabled: bool) -> Iterator[None]:
    saved = bulk_calls._bulk
    bulk_calls._bulk = BUILT if enabled else None
    try:
        yield
    finally:
        bulk_calls._bulk = saved


def report(path: Path, enabled: bool, fmt: str = "jsonl", drain_every: int = rows.DRAIN_EVERY) -> str:
    """The calls report; a small `drain_every` makes rows leave in many batches, so the merge of
    the extension's rows with Python's is exercised on small captures too."""
    saved = rows.DRAIN_EVERY
    rows.DRAIN_EVERY = drain_every
    try:
        with bulk(enabled):
            session = Session.open(path, load_registry())
            try:
                out = io.StringIO()
                write(session, "calls", fmt, out)
                return out.getvalue()
            finally:
                session.close()
    finally:
        rows.DRAIN_EVERY = saved


def bailed(path: Path) -> dict[int, str] | None:
    """{flow: where} of the connections the extension left to Python; None when none was planned."""
    session = Session.open(path, load_registry())
    try:
        plan = bulk_calls.plan_calls(session)
        if plan is None:
            return None
        bulk_calls._init()
        *_, dec = bulk_calls._run(session, plan, plan.flows, emit=False)
        result: dict[int, str] = dec.bailed()
        return result
    finally:
        session.close()


needs_extension = pytest.mark.skipif(BUILT is None, reason="the extension was not compiled")


def tcp_captures() -> list[Path]:
    return sorted(SAMPLES.glob("*.pcap")) + [
        p for p in public_captures() if "http2" in p.name or "grpc" in p.name
    ]


@needs_extension
@pytest.mark.parametrize("path", tcp_captures(), ids=lambda p: p.name)
def test_same_report_on_every_grpc_capture(path: Path) -> None:
    assert report(path, True) == report(path, False)


@needs_extension
def test_json_array_too() -> None:
    path = SAMPLES / "grpc-demo.pcap"
    assert report(path, True, "json") == report(path, False, "json")


@needs_extension
@pytest.mark.parametrize(
    "name",
    [
        "packt--grpc-go_Unary.pcapng",
        "packt--grpc-go_Bidi_Streaming.pcapng",
        "wswiki--grpc_person_search_protobuf_with_image.pcapng",
        "suricata-verify--http2-errorcode.pcap",
    ],
)
def test_clean_connections_are_taken_whole(name: str) -> None:
    """The comparisons above are only worth something if the extension really wrote rows."""
    from tests.conftest import public_capture

    assert bailed(public_capture(name)) == {}


@needs_extension
def test_our_grpcio_sample_is_taken_whole() -> None:
    """Real grpcio traffic with true-binary metadata, status details, gzip and every call kind;
    and deadlines, cancels and Trailers-Only (the server's trailers after a client's reset too)."""
    assert bailed(SAMPLES / "grpc-demo.pcap") == {}
    assert bailed(SAMPLES / "grpc-edge.pcap") == {}


@needs_extension
def test_what_the_extension_leaves_to_python() -> None:
    from tests.conftest import public_capture

    assert bailed(public_capture("suricata-verify--http2-continuation.pcap")) == {0: "on_frame"}
    assert bailed(public_capture("wswiki--client-grpc-web-proto-http2-send-two-unary.pcapng")) == {
        0: "on_headers"
    }
    assert bailed(SAMPLES / "grpc-midstream.pcap") == {0: "feed_direction"}  # no preface
    assert bailed(SAMPLES / "grpc-server-first.pcap") == {0: "feed_direction"}
    assert bailed(SAMPLES / "tls-loopback.pcap") is None  # no connection is h2c


# -- generated conversations -----------------------------------------------------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(number: int, wire_type: int, body: bytes) -> bytes:
    return varint(number << 3 | wire_type) + body


@st.composite
def protobuf(draw: st.DrawFn, depth: int = 0) -> bytes:
    """A message from a random tree of fields (the schema-less reading must recover it)."""
    parts = []
    for _ in range(draw(st.integers(0, 5))):
        number = draw(st.sampled_from([1, 2, 3, 15, 16, 2047, (1 << 29) - 1]))
        kind = draw(
            st.sampled_from(["varint", "i64", "i32", "string", "bytes", "message", "packed", "group"])
        )
        if kind == "varint":
            parts.append(field(number, 0, varint(draw(st.integers(0, (1 << 64) - 1)))))
        elif kind == "i64":
            parts.append(field(number, 1, draw(st.binary(min_size=8, max_size=8))))
        elif kind == "i32":
            parts.append(field(number, 5, draw(st.binary(min_size=4, max_size=4))))
        elif kind == "string":
            text = draw(st.text(max_size=12)).encode("utf-8", "surrogatepass")
            parts.append(field(number, 2, varint(len(text)) + text))
        elif kind == "bytes":
            raw = draw(st.binary(max_size=12))
            parts.append(field(number, 2, varint(len(raw)) + raw))
        elif kind == "packed":
            raw = b"".join(varint(v) for v in draw(st.lists(st.integers(0, 1 << 40), max_size=4)))
            parts.append(field(number, 2, varint(len(raw)) + raw))
        elif kind == "message" and depth < 3:
            inner = draw(protobuf(depth + 1))
            parts.append(field(number, 2, varint(len(inner)) + inner))
        elif kind == "group" and depth < 3:
            inner = draw(protobuf(depth + 1))
            parts.append(field(number, 3, inner) + varint(number << 3 | 4))
    return b"".join(parts)


TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=10)
NAMES = st.sampled_from(["x-a", "x-b", "trace-bin", "x-id", "user-agent", "te", "grpc-timeout", "a-bin"])


@st.composite
def metadata(draw: st.DrawFn) -> list[tuple[str, str | bytes]]:
    out: list[tuple[str, str | bytes]] = []
    for _ in range(draw(st.integers(0, 4))):
        name = draw(NAMES)
        form = draw(st.sampled_from(["text", "base64", "unpadded", "true-binary"]))
        value: str | bytes = draw(TEXT)
        if name.endswith("-bin") and form == "true-binary":  # grpc C-core's raw form: NUL, then bytes
            value = b"\x00" + draw(st.binary(max_size=8))
        elif name.endswith("-bin") and form != "text":
            value = base64.b64encode(draw(st.binary(max_size=8))).decode()
            value = value.rstrip("=") if form == "unpadded" else value
        out.append((name, value))
    return out


@st.composite
def status_blob(draw: st.DrawFn) -> bytes:
    """A google.rpc.Status (fields in any order), or bytes that may not be one."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=16))
    parts = [field(1, 0, varint(draw(st.integers(-(1 << 31), (1 << 31) - 1)) & ((1 << 64) - 1)))]
    text = draw(st.text(max_size=8)).encode("utf-8", "surrogatepass")
    parts.append(field(2, 2, varint(len(text)) + text))
    for _ in range(draw(st.integers(0, 2))):
        url = draw(st.sampled_from([b"type.googleapis.com/x.Y", b"", b"\xff\xfe"]))
        inner = field(1, 2, varint(len(url)) + url) + field(2, 2, b"\x02\x08\x01")
        parts.append(field(3, 2, varint(len(inner)) + inner))
    return b"".join(draw(st.permutations(parts)))


@st.composite
def call(draw: st.DrawFn) -> dict[str, object]:
    return {
        "path": draw(st.sampled_from(["/pkg.Svc/Do", "/a", "noslash", "//x/y/z", "/Svc/"])),
        "ctype": draw(st.sampled_from(["application/grpc", "application/grpc+proto", None, "text/plain"])),
        # "1m" and "50u" elapse within a generated conversation (packets 1/997 s apart)
        "timeout": draw(
            st.sampled_from([None, "100m", "5S", "1", "99999999H", "abc", "", "1m", "50u", "3m"])
        ),
        "request_md": draw(metadata()),
        "requests": draw(st.lists(protobuf() | st.binary(max_size=20), max_size=3)),
        "trailers_only": draw(st.booleans()),
        "response_md": draw(metadata()),
        "responses": draw(st.lists(protobuf(), max_size=3)),
        "status": draw(st.sampled_from(["0", "5", "17", "x", "12345678901", ""])),
        "message": draw(
            st.sampled_from([None, "", "plain", "a%20b", "%E2%80%9Cq%E2%80%9D", "bad%zz%", "%ff"])
        ),
        "trailer_md": draw(metadata()),
        "details": draw(st.none() | st.tuples(st.sampled_from(["true-binary", "base64"]), status_blob())),
        "encoding": draw(st.sampled_from([None, "gzip", "deflate", "identity", "snappy", ""])),
        "compress": draw(st.booleans()),
        "end": draw(st.sampled_from(["trailers", "trailers", "rst", "open", "client_rst"])),
        "rst_code": draw(st.integers(0, 20)),
        # what the server sends after its response when the client resets the call (the reset may
        # reach it before or after: the two sides interleave at random)
        "after_client_rst": draw(st.sampled_from(["trailers", "nothing", "rst", "data"])),
    }


def grpc_body(messages: list[bytes], encoding: str | None = None) -> bytes:
    """Length-prefixed messages; compressed (flag 1) with `encoding` when one is given."""
    if encoding is None:
        return b"".join(b"\x00" + len(m).to_bytes(4, "big") + m for m in messages)
    out = []
    for m in messages:
        if encoding == "gzip":
            m = gzip.compress(m)
        elif encoding == "deflate":
            m = zlib.compress(m)
        elif encoding == "snappy":
            m = m[::-1]  # an encoding nobody here knows
        out.append(b"\x01" + len(m).to_bytes(4, "big") + m)
    return b"".join(out)


def frames_of(
    c: dict[str, object], sid: int, draw: st.DrawFn
) -> tuple[list[tuple[int, object]], list[bytes]]:
    """(side, frame or header list) events of one call, in each side's order."""
    req: list[tuple[str, str]] = [(":method", "POST"), (":scheme", "http"), (":path", str(c["path"]))]
    if c["ctype"] is not None:
        req.append(("content-type", str(c["ctype"])))
    if c["timeout"] is not None:
        req.append(("grpc-timeout", str(c["timeout"])))
    if c["encoding"] is not None:
        req.append(("grpc-encoding", str(c["encoding"])))
    req += c["request_md"]  # type: ignore[operator]
    client: list[object] = [("headers", req, not c["requests"])]
    body = grpc_body(c["requests"], str(c["encoding"]) if c["compress"] and c["encoding"] else None)  # type: ignore[arg-type]
    if body:
        cuts = sorted(draw(st.lists(st.integers(1, max(1, len(body) - 1)), max_size=2)))
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True) if b > a]
        for k, piece in enumerate(pieces):
            client.append(("data", piece, k == len(pieces) - 1, draw(st.sampled_from([None, 0, 3]))))
    if c["end"] == "client_rst":
        client.append(("rst", c["rst_code"]))
    trailers: list[tuple[str, str]] = [("grpc-status", str(c["status"]))]
    if c["message"] is not None:
        trailers.append(("grpc-message", str(c["message"])))
    trailers += c["trailer_md"]  # type: ignore[operator]
    if c["details"] is not None:
        form, blob = c["details"]  # type: ignore[misc]
        value = b"\x00" + blob if form == "true-binary" else base64.b64encode(blob).decode()
        trailers.append(("grpc-status-details-bin", value))
    server: list[object] = []
    if c["trailers_only"]:
        server.append(
            ("headers", [(":status", "200"), ("content-type", "application/grpc"), *trailers], True)
        )
    else:
        server.append(
            ("headers", [(":status", "200"), ("content-type", "application/grpc"), *c["response_md"]], False)
        )  # type: ignore[misc]
        rbody = grpc_body(c["responses"])  # type: ignore[arg-type]
        if rbody:
            server.append(("data", rbody, False, None))
        after = c["after_client_rst"] if c["end"] == "client_rst" else None
        if after == "data":
            server.append(("data", grpc_body([b"\x08\x01"]), False, None))
        if c["end"] == "trailers" or after in ("trailers", "data"):
            server.append(("headers", trailers, True))
    if c["end"] == "rst" or (c["end"] == "client_rst" and c["after_client_rst"] == "rst"):
        server.append(("rst", c["rst_code"]))
    return [(0, e) for e in client], [(1, e) for e in server]  # type: ignore[return-value]


HUFFMAN = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)


def hpack_string(raw: bytes, huffman: bool) -> bytes:
    if huffman:
        raw = HUFFMAN.encode(raw)
    out = bytearray(encode_integer(len(raw), 7))
    out[0] |= 0x80 if huffman else 0
    return bytes(out) + raw


def hpack_representation(rng: random.Random) -> bytes:
    """One HPACK representation chosen at random (RFC 7541 section 6), to walk the dynamic table's
    corners the hpack encoder never goes to: references past its end, size updates, evictions."""
    kind = rng.choice(["indexed", "indexed", "literal-indexed", "literal", "never", "size"])
    if kind == "indexed":
        out = bytearray(encode_integer(rng.randrange(1, 90), 7))
        out[0] |= 0x80
        return bytes(out)
    if kind == "size":
        out = bytearray(encode_integer(rng.choice([0, 40, 100, 4096, 1 << 21]), 5))
        out[0] |= 0x20
        return bytes(out)
    prefix, flag = {"literal-indexed": (6, 0x40), "literal": (4, 0x00), "never": (4, 0x10)}[kind]
    index = rng.choice([0, 0, rng.randrange(1, 90)])
    out = bytearray(encode_integer(index, prefix))
    out[0] |= flag
    if not index:
        out += hpack_string(rng.choice([b"x-a", b"x-b", b"grpc-timeout", b"a-bin"]), rng.random() < 0.5)
    value = rng.choice([b"", b"v", b"1S", b"\x00\xff\x01", b"QUJD", b"x" * 50])
    return bytes(out) + hpack_string(value, rng.random() < 0.5)


def serialize(event: tuple, sid: int, enc: Encoder, priority: bool, rng: random.Random) -> bytes:
    kind = event[0]
    if kind == "headers":
        flags = ["END_HEADERS"] + (["END_STREAM"] if event[2] else [])
        block = enc.encode(event[1])
        if rng.random() < 0.2:  # the encoder's table is no longer ours: later blocks may not decode
            block += b"".join(hpack_representation(rng) for _ in range(rng.randrange(1, 4)))
        f = HeadersFrame(sid, block, flags=flags)
        if priority:
            f.flags.add("PRIORITY")
            f.depends_on, f.stream_weight = 0, 15
        return f.serialize()
    if kind == "data":
        d = DataFrame(sid, event[1], flags=["END_STREAM"] if event[2] else [])
        if event[3] is not None:
            d.flags.add("PADDED")
            d.pad_length = event[3]
        return d.serialize()
    return RstStreamFrame(sid, error_code=event[1]).serialize()


@st.composite
def conversation(draw: st.DrawFn) -> list[tuple[bool, bytes]]:
    """One h2c connection: TCP segments (from_client, payload) in capture order."""
    calls = draw(st.lists(call(), min_size=1, max_size=4))
    queues: list[list[tuple[int, tuple]]] = []
    for k, c in enumerate(calls):
        client, server = frames_of(c, 2 * k + 1, draw)
        queues.append([(side, (2 * k + 1, e)) for side, e in client])
        queues.append([(side, (2 * k + 1, e)) for side, e in server])
    rng = random.Random(draw(st.integers(0, 1 << 30)))
    encoders = (Encoder(), Encoder())
    out: list[tuple[int, bytes]] = [
        (1, SettingsFrame(0).serialize()),
        (0, PREFACE + SettingsFrame(0).serialize()),
    ]
    # each call's server side waits for its request headers
    requested = [False] * len(calls)
    while any(queues):
        i = rng.choice([i for i, q in enumerate(queues) if q and (i % 2 == 0 or requested[i // 2])])
        side, (sid, event) = queues[i].pop(0)
        if event[0] == "headers" and rng.random() < 0.15:  # a dynamic table size update, even to 0
            encoders[side].header_table_size = rng.choice([0, 64, 4096])
        requested[i // 2] |= i % 2 == 0
        out.append((side, serialize(event, sid, encoders[side], rng.random() < 0.2, rng)))
        extra = rng.random()
        if extra < 0.1:
            out.append((side, PingFrame(0).serialize()))
        elif extra < 0.2:
            out.append((side, WindowUpdateFrame(rng.choice([0, sid]), window_increment=100).serialize()))
    if draw(st.booleans()):
        out.append((1, GoAwayFrame(0, last_stream_id=draw(st.integers(0, 8))).serialize()))
    # TCP segments: frames glued together or cut anywhere, each side's bytes in order
    segments: list[tuple[bool, bytes]] = []
    for side, raw in out:
        if segments and segments[-1][0] == (side == 0) and rng.random() < 0.4:
            segments[-1] = (side == 0, segments[-1][1] + raw)
        elif len(raw) > 2 and rng.random() < 0.3:
            cut = rng.randrange(1, len(raw))
            segments += [(side == 0, raw[:cut]), (side == 0, raw[cut:])]
        else:
            segments.append((side == 0, raw))
    return segments


def capture(tmp: Path, conversations: list[list[tuple[bool, bytes]]], rng: random.Random) -> Path:
    packets: list[list[Packet]] = [
        tcp_conversation(segs, client=("127.0.0.1", 40000 + k), server=("127.0.0.2", 50051))
        for k, segs in enumerate(conversations)
    ]
    merged: list[Packet] = []
    while any(packets):
        merged.append(rng.choice([p for p in packets if p]).pop(0))
    for n, p in enumerate(merged):
        p.time = 1_700_000_000 + n / 997
    return write_pcap(tmp / "gen.pcap", merged)


DRAINS = st.sampled_from([1024, 1, 2, 3, 7])


def flip(conversations: list[list[tuple[bool, bytes]]], flips: list[tuple[int, int, int]]) -> None:
    for conv, at, value in flips:
        segs = conversations[conv % len(conversations)]
        k = at % len(segs)
        side, data = segs[k]
        if data:
            b = bytearray(data)
            b[at % len(b)] = value
            segs[k] = (side, bytes(b))


@needs_extension
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(st.lists(conversation(), min_size=1, max_size=2), st.integers(0, 1 << 30), DRAINS)
def test_generated_conversations(
    tmp_path_factory: pytest.TempPathFactory, convs: list, seed: int, drain_every: int
) -> None:
    path = capture(tmp_path_factory.mktemp("gen"), convs, random.Random(seed))
    assert report(path, True, drain_every=drain_every) == report(path, False, drain_every=drain_every)


@needs_extension
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(
    st.lists(conversation(), min_size=1, max_size=2),
    st.integers(0, 1 << 30),
    st.lists(
        st.tuples(st.integers(0, 1), st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=6
    ),
    DRAINS,
)
def test_generated_conversations_with_flipped_bytes(
    tmp_path_factory: pytest.TempPathFactory,
    convs: list,
    seed: int,
    flips: list[tuple[int, int, int]],
    drain_every: int,
) -> None:
    flip(convs, flips)
    path = capture(tmp_path_factory.mktemp("gen"), convs, random.Random(seed))
    assert report(path, True, drain_every=drain_every) == report(path, False, drain_every=drain_every)


def nested(depth: int) -> bytes:
    msg = field(1, 0, varint(7))
    for _ in range(depth):
        msg = field(1, 2, varint(len(msg)) + msg)
    return msg


def hostile_connection(kind: str) -> list[tuple[bool, bytes]]:
    enc = Encoder()
    request = [(":method", "POST"), (":path", "/x.Y/Z"), ("content-type", "application/grpc")]
    if kind == "gzip-bomb":
        request.append(("grpc-encoding", "gzip"))
    if kind == "hpack-bomb":
        # one 4,000-byte entry in the table, then a block naming it 1,000 times (4 MB decoded)
        first = enc.encode([*request, ("x-big", "a" * 4000)])
        bomb = b"\xbe" * 1000  # indexed header field, index 62: the newest dynamic entry
        headers = [
            HeadersFrame(1, first, flags=["END_HEADERS"]),
            HeadersFrame(3, bomb, flags=["END_HEADERS"]),
        ]
        body = b""
    else:
        headers = [HeadersFrame(1, enc.encode(request), flags=["END_HEADERS"])]
        if kind == "2gib":
            body = b"\x00\x80\x00\x00\x00" + b"\x00" * 100
        elif kind == "gzip-bomb":  # 65 KB that inflate past messages.MAX_DECOMPRESSED_LEN
            bomb = gzip.compress(b"\x00" * (MAX_DECOMPRESSED_LEN + 1024), compresslevel=9)
            body = b"\x01" + len(bomb).to_bytes(4, "big") + bomb
        else:  # a message nested 200 deep: decoded to depth 32, the rest kept as bytes
            body = grpc_body([nested(200)])
    client = PREFACE + SettingsFrame(0).serialize() + b"".join(h.serialize() for h in headers)
    if body:
        client += DataFrame(1, body, flags=["END_STREAM"]).serialize()
    return [(False, SettingsFrame(0).serialize()), (True, client)]


@needs_extension
@pytest.mark.parametrize("kind", ["hpack-bomb", "2gib", "deep", "gzip-bomb"])
def test_hostile_input_is_left_to_python_or_decoded_alike(tmp_path: Path, kind: str) -> None:
    path = capture(tmp_path, [hostile_connection(kind)], random.Random(0))
    assert report(path, True) == report(path, False)
    expected = {"hpack-bomb": {0: "hp_block"}, "2gib": {0: "on_data"}, "deep": {}, "gzip-bomb": {}}[kind]
    assert bailed(path) == expected


@needs_extension
def test_table_size_update_to_zero_lasts_across_packets(tmp_path: Path) -> None:
    """A size update to 0 empties the table for good: an entry added afterwards is evicted at once,
    so a later reference to it is unknown (the extension leaves that to Python), in every packet."""
    request = Encoder().encode(
        [(":method", "POST"), (":path", "/x.Y/Z"), ("content-type", "application/grpc")]
    )
    first = HeadersFrame(1, b"\x20" + request, flags=["END_HEADERS", "END_STREAM"])  # size update: 0
    added = HeadersFrame(3, request + b"\x40\x01a\x01b", flags=["END_HEADERS", "END_STREAM"])  # a: b, indexed
    refer = HeadersFrame(5, request + b"\xbe", flags=["END_HEADERS", "END_STREAM"])  # index 62
    segments = [
        (False, SettingsFrame(0).serialize()),
        (True, PREFACE + SettingsFrame(0).serialize() + first.serialize()),
        (True, added.serialize()),
        (True, refer.serialize()),
    ]
    path = capture(tmp_path, [segments], random.Random(0))
    assert report(path, True) == report(path, False)
    assert bailed(path) == {0: "hp_block"}


@needs_extension
def test_decoder_refuses_bad_arguments() -> None:
    import numpy as np

    assert BUILT is not None
    bulk_calls._init()
    dec = BUILT.Decoder(1, True, 1024, ['"127.0.0.1:40000"'])

    def feed(starts: list[int], lengths: list[int], packets: list[int]) -> object:
        n = len(packets)
        return dec.feed(
            b"\x00" * 64,
            np.array(starts, np.int64),
            np.array(lengths, np.uint32),
            np.array(packets, np.int64),
            np.zeros(n, np.int32),
            np.zeros(n, np.uint8),
            np.zeros(n, np.int64),
        )

    with pytest.raises(ValueError, match="outside the buffer"):
        feed([60], [10], [0])
    with pytest.raises(ValueError, match="expected"):
        dec.feed(b"", np.zeros(2, np.int64), np.zeros(1, np.uint32), np.zeros(2, np.int64), *([None] * 3))
    assert feed([0], [8], [5]) == []  # not a preface: the connection bails, nothing to say yet
    with pytest.raises(ValueError, match="out of order"):
        feed([0], [8], [5])
    assert dec.bailed() == {0: "feed_direction"} and dec.finish(10) == []


@needs_extension
@pytest.mark.parametrize("drain_every", [1, 2, 1024])
def test_what_the_server_sends_after_a_clients_reset(tmp_path: Path, drain_every: int) -> None:
    """After the client resets a call, the server's frames sent before it read the reset still
    belong to it (its trailers give the real status) until the server ends that stream or answers
    on a stream opened after the reset; a reset with no answer at all comes out at the end."""
    enc, dec = Encoder(), Encoder()

    def request(sid: int) -> bytes:
        headers = [(":method", "POST"), (":path", "/x.Y/Z"), ("content-type", "application/grpc")]
        block = enc.encode([*headers, ("grpc-timeout", "1m")])
        return HeadersFrame(sid, block, flags=["END_HEADERS"]).serialize()

    def trailers(sid: int, status: str) -> bytes:
        block = dec.encode([(":status", "200"), ("grpc-status", status), ("grpc-message", "late")])
        return HeadersFrame(sid, block, flags=["END_HEADERS", "END_STREAM"]).serialize()

    def reset(sid: int) -> bytes:
        return RstStreamFrame(sid, error_code=8).serialize()

    segments = [
        (False, SettingsFrame(0).serialize()),
        (True, PREFACE + SettingsFrame(0).serialize() + request(1)),
        (True, reset(1)),  # 1: the server answers on stream 3 only: it read the reset
        (True, request(3)),
        (True, request(5)),
        (False, trailers(3, "0")),
        (True, reset(5)),  # 5: the server's trailers come after the reset
        (True, request(7)),
        (False, trailers(5, "4")),
        (True, reset(7)),  # 7: nothing more from the server, to the end of the capture
        (True, PingFrame(0).serialize()),
    ]
    path = capture(tmp_path, [segments], random.Random(0))
    text = report(path, True, drain_every=drain_every)
    assert text == report(path, False, drain_every=drain_every)
    assert bailed(path) == {}
    rows = {r["stream_id"]: r for r in map(json.loads, text.split("\n")[:-1])}
    want = {
        1: ("rst_stream", "CANCEL", 4, "inferred", None),
        3: ("trailers-only", None, 0, "trailers", "late"),
        5: ("rst_stream", "CANCEL", 4, "trailers", "late"),
        7: ("rst_stream", "CANCEL", 4, "inferred", None),
    }
    got = {
        sid: (r["ended_by"], r["rst_stream_error"], r["status"], r["status_from"], r["grpc_message"])
        for sid, r in rows.items()
    }
    assert got == want
    assert next(reversed(rows)) == 7  # waited to the end of the capture


# -- the limits: the same rows to the byte when they are hit -----------------------------------


SMALL_LIMITS = {
    "MESSAGES_KEPT_FIRST": 1,
    "MESSAGES_KEPT_LAST": 1,
    "MESSAGE_BYTES_KEPT": 24,
    "MAX_OPEN_CALLS": 2,
    "MAX_OPEN_STREAMS": 3,
    "MAX_HEADERS": 6,
    "MAX_FIELDS": 16,
    "MAX_WORK": 12,
}
"""Every limit of the calls report, small enough for a generated conversation to hit."""


@contextmanager
def limits(values: dict[str, int]) -> Iterator[None]:
    """Limits of calls.py, the HTTP/2 decoder, HPACK and the protobuf wire format set for a while:
    the extension reads them at init, as the Python modules read theirs at run time."""
    from protoscope.decoders.grpc import calls
    from protoscope.decoders.http2 import decoder, header_block
    from protoscope.decoders.protobuf import wire

    modules = (calls, decoder, header_block, wire)
    owner = {name: m for m in modules for name in SMALL_LIMITS if hasattr(m, name)}
    saved = {name: getattr(owner[name], name) for name in values}
    try:
        for name, value in values.items():
            setattr(owner[name], name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(owner[name], name, value)


@needs_extension
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(st.lists(conversation(), min_size=1, max_size=2), st.integers(0, 1 << 30), DRAINS)
def test_generated_conversations_past_small_limits(
    tmp_path_factory: pytest.TempPathFactory, convs: list, seed: int, drain_every: int
) -> None:
    path = capture(tmp_path_factory.mktemp("gen"), convs, random.Random(seed))
    with limits(SMALL_LIMITS):
        assert report(path, True, drain_every=drain_every) == report(path, False, drain_every=drain_every)


def endless_stream(messages: int, calls: int = 1) -> list[tuple[bool, bytes]]:
    """Server-streaming calls that never end, each answered by `messages` messages that carry a
    blob of 0xff bytes (ten of them read as a varint pass 64 bits: not a nested message)."""
    client, server = Encoder(), Encoder()
    request = [(":method", "POST"), (":path", "/x.Feed/Watch"), ("content-type", "application/grpc")]
    out = [(False, SettingsFrame(0).serialize()), (True, PREFACE + SettingsFrame(0).serialize())]
    for k in range(calls):
        sid = 2 * k + 1
        out.append(
            (True, HeadersFrame(sid, client.encode(request), flags=["END_HEADERS", "END_STREAM"]).serialize())
        )
        block = server.encode([(":status", "200"), ("content-type", "application/grpc")])
        out.append((False, HeadersFrame(sid, block, flags=["END_HEADERS"]).serialize()))
    for n in range(messages):
        for k in range(calls):
            body = field(1, 0, varint(n)) + field(5, 2, b"\x40" + b"\xff" * 64)
            out.append((False, DataFrame(2 * k + 1, grpc_body([body])).serialize()))
    return out


@needs_extension
def test_a_stream_past_the_limits_is_taken_whole(tmp_path: Path) -> None:
    """The extension keeps the limits itself (a connection that hits them is not left to Python,
    which is ~50x slower on it): the same rows, the middle messages counted, the findings."""
    from protoscope.decoders.grpc import calls

    path = capture(
        tmp_path, [endless_stream(calls.MESSAGES_KEPT_FIRST + calls.MESSAGES_KEPT_LAST + 7)], random.Random(0)
    )
    assert bailed(path) == {}
    text = report(path, True)
    assert text == report(path, False)
    (row,) = map(json.loads, text.splitlines())
    assert (
        row["responses_omitted"] == 7
        and len(row["responses"]) == calls.MESSAGES_KEPT_FIRST + calls.MESSAGES_KEPT_LAST
    )
    assert [f["code"] for f in row["findings"]] == ["grpc.messages_limit"]


@needs_extension
def test_calls_past_max_open_calls_alike(tmp_path: Path) -> None:
    with limits({"MAX_OPEN_CALLS": 2, "MESSAGES_KEPT_FIRST": 1, "MESSAGES_KEPT_LAST": 1}):
        path = capture(tmp_path, [endless_stream(4, calls=5)], random.Random(0))
        assert bailed(path) == {}
        text = report(path, True, drain_every=3)
        assert text == report(path, False, drain_every=3)
    rows = list(map(json.loads, text.splitlines()))
    # Five streams taking turns on a connection that follows two: each message on a stream given
    # up opens a call anew and gives up the oldest (every row is written, with what it saw).
    given_up = [r for r in rows if r["ended_by"] == "calls_limit"]
    assert len(given_up) > 5 and all(r["findings"][-1]["code"] == "grpc.calls_limit" for r in given_up)
    assert [r["ended_by"] for r in rows[-2:]] == [None, None]
    assert sum(len(r["responses"]) for r in rows) == 5 * 4


# -- the grpcurl command added to the extension's rows -----------------------------------------


def row_of(draw: st.DrawFn) -> dict[str, object]:
    """A row as the extension writes it (its keys in its order), with names that are keys of the
    row itself in the places a capture chooses names: metadata and messages."""
    names = st.sampled_from(["x-a", "responses", "requests_omitted", "requests", "a-bin", "flow"])
    values = st.text(max_size=6) | st.lists(st.text(max_size=4), min_size=2, max_size=3)
    metadata = st.dictionaries(names, values, max_size=3)
    message = st.recursive(
        st.integers() | st.text(max_size=6),
        lambda inner: st.dictionaries(names | st.sampled_from(["1", "2"]), inner, max_size=3),
        max_leaves=6,
    )
    item = st.fixed_dictionaries(
        {"frame": st.integers(0, 99), "type": st.none() | st.just("x.Y"), "message": message}
    )
    return {
        "flow": 0,
        "client": "127.0.0.1:40000",
        "stream_id": 1,
        "path": draw(st.none() | st.sampled_from(["/x.Y/Z", "/", "/a b/'c'"])),
        "status_details": draw(st.none() | message),
        "timeout": draw(st.none() | st.sampled_from([0.5, 3, -1])),
        "request_metadata": draw(metadata),
        "response_metadata": draw(metadata),
        "trailers": draw(metadata),
        "requests": draw(st.lists(item, max_size=3)),
        "responses": draw(st.lists(item, max_size=3)),
        "requests_omitted": draw(st.integers(0, 5)),
        "responses_omitted": 0,
        "findings": [],
    }


@settings(max_examples=200, deadline=None)
@given(st.data(), st.none() | st.just("127.0.0.2:50051"))
def test_command_added_as_with_command_adds_it(data: st.DataObject, server: str | None) -> None:
    """The keys found from the end of the text (bulk_calls._command_fields) are the row's own,
    whatever names the capture put in its metadata and messages."""
    from protoscope.decoders.grpc.calls import with_command

    row = data.draw(st.composite(row_of)())
    text = json.dumps(row, ensure_ascii=False)
    _, _, got = bulk_calls._with_command((0, 0, text), [server])  # type: ignore[list-item]
    assert got == json.dumps(with_command(dict(row), server), ensure_ascii=False)
