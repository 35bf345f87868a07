"""Follow stream: TCP and UDP bytes both ways equal tshark's `-z follow,...,raw` byte for byte, the
hex dump equals tshark's, and HTTP/2 streams and gRPC calls come out as their frames and messages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from protoscope.decoders.registry import load_registry
from protoscope.inspector import follow as follow_module
from protoscope.inspector.follow import (
    FollowError,
    follow_call,
    follow_flow,
    follow_http2,
    render,
)
from protoscope.inspector.report.rows import analysis_rows
from protoscope.inspector.session import Session
from tests import pcapgen
from tests.conftest import SAMPLES, public_capture, tshark

FOLLOW_CAPTURES = [
    ("samples", "grpc-demo.pcap", "tcp"),
    ("samples", "grpc-midstream.pcap", "tcp"),
    ("public", "arkime--http2-nghttp2.pcap", "tcp"),
    ("public", "packt--grpc-go_Unary.pcapng", "tcp"),
    ("public", "ndpi--stun_tcp_multiple_msgs_same_pkt.pcap", "tcp"),
    ("public", "ndpi--stun.pcap", "udp"),
]
STREAMS_PER_CAPTURE = 4
"""tshark streams compared per capture (each costs a tshark run)."""


def _path(where: str, name: str) -> Path:
    return SAMPLES / name if where == "samples" else public_capture(name)


@pytest.fixture
def grpc_demo() -> Iterator[Session]:
    session = Session.open(SAMPLES / "grpc-demo.pcap", load_registry())
    yield session
    session.close()


def _tshark_streams(path: Path, transport: str) -> dict[int, int]:
    """tshark's stream index -> the frame number of its first packet."""
    first: dict[int, int] = {}
    out = tshark(
        "-r", str(path), "-Y", transport, "-T", "fields", "-e", "frame.number", "-e", f"{transport}.stream"
    )
    for line in out.splitlines():
        frame, _, stream = line.partition("\t")
        if stream:
            first.setdefault(int(stream.split(",")[0]), int(frame))
    return first


def _tshark_follow(path: Path, transport: str, mode: str, stream: int) -> tuple[list[str], list[str]]:
    """(the two nodes, the body lines) of tshark's follow output; node 1's lines start with a tab."""
    lines = tshark("-r", str(path), "-q", "-z", f"follow,{transport},{mode},{stream}").splitlines()
    nodes = [line.split(": ", 1)[1] for line in lines if line.startswith(("Node 0: ", "Node 1: "))]
    start = next(k for k, line in enumerate(lines) if line.startswith("Node 1: ")) + 1
    body = [line for line in lines[start:] if not line.startswith("====")]
    return nodes, body


@pytest.mark.parametrize(("where", "name", "transport"), FOLLOW_CAPTURES, ids=[c[1] for c in FOLLOW_CAPTURES])
def test_follow_equals_tshark_raw(where: str, name: str, transport: str) -> None:
    path = _path(where, name)
    session = Session.open(path, load_registry())
    try:
        streams = sorted(_tshark_streams(path, transport).items())[:STREAMS_PER_CAPTURE]
        assert streams, "tshark found no stream to compare"
        for stream, frame in streams:
            # Our flows are numbered over TCP and UDP together: tshark's stream is found by its first frame.
            flow = int(session.index.flow[frame - 1])
            followed = follow_flow(session, flow)
            nodes, body = _tshark_follow(path, transport, "raw", stream)
            theirs = {nodes[0]: b"", nodes[1]: b""}
            for line in body:
                theirs[nodes[1] if line.startswith("\t") else nodes[0]] += bytes.fromhex(line.strip())
            ours = {
                followed.client: b"".join(c.data for c in followed.chunks if c.from_client),
                followed.server: b"".join(c.data for c in followed.chunks if not c.from_client),
            }
            assert ours == theirs, (name, stream, flow)
            assert (followed.client_bytes, followed.server_bytes) == (
                len(ours[followed.client]),
                len(ours[followed.server]),
            )
            assert not followed.truncated
    finally:
        session.close()


def test_hex_mode_equals_tshark_hex(grpc_demo: Session) -> None:
    _, body = _tshark_follow(SAMPLES / "grpc-demo.pcap", "tcp", "hex", 0)
    lines = render(follow_flow(grpc_demo, 0), "hex")
    # tshark drops the trailing blank of a dump whose ASCII column ends in a space.
    ours = [("" if from_client else "\t") + line.rstrip() for from_client, line in lines]
    assert ours == [line.rstrip() for line in body if line.strip()]


def test_raw_mode_is_one_hex_string_a_chunk(grpc_demo: Session) -> None:
    followed = follow_flow(grpc_demo, 0)
    lines = render(followed, "raw")
    assert [bytes.fromhex(line) for _, line in lines] == [c.data for c in followed.chunks]
    assert [side for side, _ in lines] == [c.from_client for c in followed.chunks]


def test_ascii_mode_splits_lines_and_hides_controls() -> None:
    chunk = follow_module.FollowChunk(1, 0.0, True, b"GET / HTTP/1.1\r\nHost: x\r\n\x00\x1b[2Jz\n")
    followed = follow_module.Followed(
        0, "tcp", "a:1", "b:2", "TCP stream 0", [chunk], len(chunk.data), 0, False
    )
    assert render(followed, "ascii") == [(True, "GET / HTTP/1.1"), (True, "Host: x"), (True, "..[2Jz")]
    with pytest.raises(ValueError, match="unknown follow mode"):
        render(followed, "ebcdic")


def test_follow_http2_stream_gives_its_frames(grpc_demo: Session) -> None:
    followed = follow_http2(grpc_demo, 0, 1)
    assert followed.what == "HTTP/2 stream 1 of flow 0"
    assert followed.chunks[0].label == "HEADERS[1]: POST /demo.Directory/Get"
    assert followed.chunks[0].from_client
    assert ":path: /demo.Directory/Get" in followed.chunks[0].text.splitlines()
    for chunk in followed.chunks:
        # Each chunk is one whole frame as on the wire: its 9-byte header names stream 1 and its length.
        assert int.from_bytes(chunk.data[5:9], "big") & 0x7FFFFFFF == 1
        assert int.from_bytes(chunk.data[:3], "big") == len(chunk.data) - 9
    assert any(not c.from_client and "grpc-status 0" in c.label for c in followed.chunks)
    with pytest.raises(FollowError, match="no HTTP/2 stream 999"):
        follow_http2(grpc_demo, 0, 999)


def test_follow_call_gives_its_messages_in_order(grpc_demo: Session) -> None:
    call = next(iter(analysis_rows(grpc_demo, "calls")))
    followed = follow_call(grpc_demo, call)
    labels = [c.label for c in followed.chunks]
    assert labels[0].startswith("HEADERS[1]: POST /demo.Directory/Get")
    messages = [c for c in followed.chunks if c.label.startswith(("request", "response"))]
    assert [c.label for c in messages] == ["request 1 (7 bytes)", "response 1 (127 bytes)"]
    request = call["requests"][0]
    assert json.loads(messages[0].text) == request["message"]
    assert len(messages[0].data) == request["size"]
    assert messages[0].frame == request["frame"]
    assert "/demo.Directory/Get" in followed.what


def test_follow_names_a_hole_and_limits_its_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    packets = pcapgen.tcp_conversation(
        [(True, b"a" * 10), (True, b"b" * 10), (True, b"c" * 10), (False, b"ok")]
    )
    del packets[4]  # the capture missed the middle segment
    session = Session.open(pcapgen.write(tmp_path / "gap.pcap", packets), load_registry())
    try:
        followed = follow_flow(session, 0)
        # The segment after the hole waits for it until the flow ends, then comes after the hole.
        assert [(c.label, c.data) for c in followed.chunks] == [
            ("", b"a" * 10),
            ("", b"ok"),
            ("[10 bytes missing in capture file]", b""),
            ("", b"c" * 10),
        ]
        assert (followed.client_bytes, followed.server_bytes) == (20, 2)
        monkeypatch.setattr(follow_module, "FOLLOW_MAX_BYTES", 15)
        cut = follow_flow(session, 0)
        assert cut.truncated and [c.data for c in cut.chunks if c.data] == [b"a" * 10, b"ok"]
        with pytest.raises(FollowError, match="no flow 7"):
            follow_flow(session, 7)
    finally:
        session.close()
