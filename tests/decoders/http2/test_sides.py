"""Which side of an HTTP/2 connection is the client, from what HTTP/2 shows (decoders/http2/sides.py).

The real capture (captures/samples/grpc-server-first.pcap) starts while a grpcio server streams, so
its flow is oriented the wrong way round by its first packet; cut copies of it show each sign alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpack import Encoder
from hyperframe.frame import DataFrame, GoAwayFrame, HeadersFrame, PushPromiseFrame
from scapy.utils import rdpcap, wrpcap

from protoscope.decoders.api import Endpoint, FlowContext
from protoscope.decoders.http2 import Http2Decoder
from protoscope.decoders.http2.records import FrameRecord, MessageRecord
from protoscope.decoders.registry import load_registry
from protoscope.inspector.report.rows import analysis_rows
from protoscope.inspector.schemas import load_schemas
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES
from tests.pcapgen import tcp_conversation
from tests.pcapgen import write as write_pcap

SERVER_FIRST = SAMPLES / "grpc-server-first.pcap"
TRAILERS_FRAME = 29
"""The frame of the streaming call's trailers (tshark: HEADERS[3] with END_STREAM)."""


def cut(tmp: Path, packets: int) -> Path:
    path = tmp / "cut.pcap"
    wrpcap(str(path), rdpcap(str(SERVER_FIRST))[:packets])
    return path


def decoded(path: Path) -> tuple[list[dict[str, Any]], list[tuple[int, Any]], list[tuple[int, str]]]:
    """Calls, (frame, record) of every HTTP/2 and gRPC PDU, and (frame, code) of every finding."""
    session = Session.open(path, load_registry())
    try:
        records = []
        findings = []
        for pd in session.decode():
            records += [(pd.index + 1, p.record) for p in pd.pdus if p.record is not None]
            findings += [(pd.index + 1, f.code) for p in pd.pdus for f in p.findings]
        return list(analysis_rows(session, "calls")), records, findings
    finally:
        session.close()


def test_the_sample_starts_with_the_servers_data() -> None:
    _, records, _ = decoded(SERVER_FIRST)
    first_frame, first = records[0]
    assert first_frame == 1 and isinstance(first, FrameRecord) and first.type == 0 and first.stream_id == 3


def test_trailers_after_data_show_the_server(tmp_path: Path) -> None:
    """Up to the stream's trailers only: no request headers at all, yet the DATA before them are
    responses and the trailers end the call."""
    calls, records, findings = decoded(cut(tmp_path, TRAILERS_FRAME))
    assert (TRAILERS_FRAME, "http2.client_side") in findings
    (call,) = calls
    assert call["ended_by"] == "trailers" and not call["requests"] and len(call["responses"]) >= 3
    session = Session.open(SERVER_FIRST, load_registry())
    try:
        assert call["client"] == str(session.flows[0].server)  # the flow has them the wrong way round
    finally:
        session.close()
    assert all(r.from_client is not None for frame, r in records if frame >= TRAILERS_FRAME)


def test_without_a_sign_nothing_is_guessed_in_the_summaries(tmp_path: Path) -> None:
    """Before the connection shows its client, a message is a "message", not a request."""
    session = Session.open(cut(tmp_path, 10), load_registry())
    try:
        pdus = [p for pd in session.decode() for p in pd.pdus if isinstance(p.record, MessageRecord)]
    finally:
        session.close()
    assert pdus and all(p.record.from_client is None for p in pdus)
    assert all(p.summary.startswith("gRPC message, ") for p in pdus)


def test_request_headers_show_the_client() -> None:
    """grpc-midstream.pcap starts with the client's request (:method is in the static table)."""
    _, records, findings = decoded(SAMPLES / "grpc-midstream.pcap")
    assert all(r.from_client is not None for _, r in records)
    assert "http2.client_side" not in {code for _, code in findings}  # the flow had it right


# -- each sign alone, on frames built with hyperframe and hpack ---------------------------------


def sides_after(frames: bytes) -> tuple[bool | None, list[str]]:
    """Decode `frames` as sent by the flow's client side (a flow oriented the wrong way round when
    they are the server's); the last record's from_client, and the findings."""
    ctx = FlowContext(0, "tcp", Endpoint("127.0.0.1", 50051), Endpoint("127.0.0.1", 40000), True, 1, 0.0)
    decoder = Http2Decoder()
    result = decoder.decode(frames, decoder.new_state(), ctx)
    records = [p.record for p in result.pdus if isinstance(p.record, FrameRecord)]
    return records[-1].from_client, [f.code for p in result.pdus for f in p.findings]


def test_status_headers_show_the_server() -> None:
    block = Encoder().encode([(":status", "200"), ("content-type", "application/grpc")])
    from_client, codes = sides_after(HeadersFrame(1, block, flags=["END_HEADERS"]).serialize())
    assert from_client is False and "http2.client_side" in codes


def test_push_promise_shows_the_server_even_with_a_request_block() -> None:
    """A PUSH_PROMISE carries request headers, but the server sends it."""
    block = Encoder().encode([(":method", "GET"), (":path", "/pushed"), (":scheme", "http")])
    frame = PushPromiseFrame(1, promised_stream_id=2, data=block, flags=["END_HEADERS"])
    assert sides_after(frame.serialize())[0] is False


def test_data_on_an_even_stream_shows_the_server() -> None:
    assert sides_after(DataFrame(2, b"pushed").serialize())[0] is False


def test_goaway_names_a_stream_of_its_peer() -> None:
    """The server's GOAWAY names the last client stream (odd) it processed, the client's an even one."""
    assert sides_after(GoAwayFrame(0, last_stream_id=7).serialize())[0] is False
    assert sides_after(GoAwayFrame(0, last_stream_id=2).serialize())[0] is True
    assert sides_after(GoAwayFrame(0, last_stream_id=0).serialize())[0] is None  # says nothing


def test_the_first_sign_decides() -> None:
    status = Encoder().encode([(":status", "200")])
    frames = HeadersFrame(1, status, flags=["END_HEADERS"]).serialize()
    frames += GoAwayFrame(0, last_stream_id=2).serialize()  # would say the opposite: too late
    assert sides_after(frames)[0] is False


# -- a path whose header name came from an entry sent before the capture ------------------------


def unknown_name_literal(index: int, value: bytes) -> bytes:
    """A literal without indexing whose name is dynamic-table entry `index` (RFC 7541 6.2.2)."""
    assert 15 <= index < 15 + 128
    return bytes([0x0F, index - 15, len(value)]) + value


def test_path_from_its_value(tmp_path: Path) -> None:
    """Mid-connection: `:path` refers to an entry from before the capture, but its value reads
    /package.Service/Method, so the call has its path (and with the schema, typed messages)."""
    query = bytes.fromhex("0a03616461") + bytes.fromhex("1001")  # demo.Query{prefix: "ada", limit: 1}
    block = bytes([0x83, 0x86]) + unknown_name_literal(70, b"/demo.Directory/Get") + bytes([0xBF])
    client = HeadersFrame(5, block, flags=["END_HEADERS"]).serialize()
    client += DataFrame(5, b"\x00" + len(query).to_bytes(4, "big") + query, flags=["END_STREAM"]).serialize()
    server = HeadersFrame(5, bytes([0x88, 0xBE]), flags=["END_HEADERS"]).serialize()
    trailers = Encoder().encode([("grpc-status", "0")])
    server += HeadersFrame(5, trailers, flags=["END_HEADERS", "END_STREAM"]).serialize()
    path = write_pcap(tmp_path / "value.pcap", tcp_conversation([(True, client), (False, server)]))
    (call,) = decoded(path)[0]
    assert (call["path"], call["path_from"]) == ("/demo.Directory/Get", "value")
    assert (call["service"], call["method"]) == ("demo.Directory", "Get")
    assert call["status"] == 0 and call["unknown_headers"] == 3
    registry = load_registry()
    registry.configure({"protobuf.schemas": load_schemas([str(SAMPLES / "grpc" / "demo.proto")])})
    session = Session.open(path, registry)
    try:
        (typed,) = analysis_rows(session, "calls")
    finally:
        session.close()
    assert typed["requests"][0]["type"] == "demo.Query"
    assert typed["requests"][0]["message"] == {"prefix": "ada", "limit": 1}
