"""The gRPC calls decoded from our grpcio sample captures equal what the client and server saw.

captures/samples/make_grpc.py ran a real grpcio server and client and wrote the truth files.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from protoscope.decoders.registry import load_registry
from protoscope.inspector.report.rows import analysis_rows
from protoscope.inspector.schemas import load_schemas
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES

PROTO = SAMPLES / "grpc" / "demo.proto"


def decoded_calls(pcap: Path, with_schema: bool = True) -> list[dict[str, Any]]:
    registry = load_registry()
    options: dict[str, object] = {}
    if with_schema:
        options["protobuf.schemas"] = load_schemas([str(PROTO)])
    registry.configure(options)
    session = Session.open(pcap, registry)
    try:
        return list(analysis_rows(session, "calls"))
    finally:
        session.close()


@pytest.fixture(scope="module")
def demo() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    truth = json.loads((SAMPLES / "grpc-demo.truth.json").read_text())
    return decoded_calls(SAMPLES / "grpc-demo.pcap"), truth


def _match(ours: list[dict[str, Any]], want: dict[str, Any]) -> dict[str, Any]:
    """Our call with the same path and the same first request (calls may interleave)."""
    for call in ours:
        reqs = [r["message"] for r in call["requests"]]
        if call["path"] == want["path"] and reqs[:1] == want["requests"][:1]:
            return call
    raise AssertionError(f"no decoded call for {want['path']} {want['requests'][:1]}")


def test_every_call_is_found_once(demo: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    ours, truth = demo
    assert len(ours) == len(truth["calls"]) == 20
    assert len({(c["flow"], c["stream_id"]) for c in ours}) == 20


def test_calls_equal_what_the_client_saw(demo: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    ours, truth = demo
    for want in truth["calls"]:
        got = _match(ours, want)
        assert got["kind"] == want["kind"]
        assert got["kind_from"] == "schema"
        assert (got["status"], got["status_name"]) == (want["status"], want["status_name"])
        if want["grpc_message"]:
            assert got["grpc_message"] == want["grpc_message"]
        # Every message equals the official library's MessageToDict of what was sent/received.
        assert [r["message"] for r in got["requests"]] == want["requests"]
        assert [r["message"] for r in got["responses"]] == want["responses"]
        for key, value in want["request_metadata"].items():
            assert got["request_metadata"][key] == value
        if want["status"] == 0 or "retry-hint" in want["trailers"]:
            assert got["trailers"] == want["trailers"]
        if "status_details" in want:
            assert got["status_details"] == want["status_details"]
        if want.get("compressed_request"):
            assert all(r["compressed"] for r in got["requests"])
        if want.get("compressed_response"):
            assert all(r["compressed"] for r in got["responses"])
        if "deadline" in want:
            assert got["timeout"] == pytest.approx(want["deadline"], abs=0.01)


def test_big_message_and_interleaved_streams(demo: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    ours, _ = demo
    big = [c for c in ours if c["responses"] and c["responses"][0]["size"] > 64 * 1024]
    assert len(big) == 1
    # The 12 concurrent calls shared one connection: their streams overlap in time.
    concurrent = sorted(
        (c for c in ours if c["requests"][0]["message"].get("prefix", "").startswith("c")),
        key=lambda c: c["start"],
    )
    assert len(concurrent) == 12
    assert any(b["start"] < a["end"] for a, b in itertools.pairwise(concurrent))


def test_without_schema_the_calls_are_still_there(demo: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    _, truth = demo
    ours = decoded_calls(SAMPLES / "grpc-demo.pcap", with_schema=False)
    assert sorted(c["path"] for c in ours) == sorted(c["path"] for c in truth["calls"])
    first = next(c for c in ours if c["stream_id"] == 1)
    assert first["kind_from"] == "observed"
    assert first["requests"][0]["message"] == {"1": "ada", "2": 1}  # Query{prefix, limit} by number


def test_midstream_capture() -> None:
    """The capture begins after the connection carried a call: no preface, HPACK entries unseen."""
    truth = json.loads((SAMPLES / "grpc-midstream.truth.json").read_text())
    ours = decoded_calls(SAMPLES / "grpc-midstream.pcap")
    assert len(ours) == len(truth["calls"]) == 2
    for got, want in zip(ours, truth["calls"], strict=True):
        assert got["unknown_headers"] > 0  # :path and content-type came from the unseen table
        assert got["path"] is None
        assert got["requests"][0]["message"]["1"] == want["requests"][0]["prefix"]
        assert got["responses"][0]["message"]["1"] == want["responses"][0]["name"]
        # Literals still decode: the metadata the client sent is there.
        assert got["request_metadata"]["x-request-id"] == want["request_metadata"]["x-request-id"]


def test_trailers_only_has_no_response_metadata(demo: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    """A Trailers-Only response is one header block: its keys are trailers, not response metadata."""
    ours, truth = demo
    want = next(c for c in truth["calls"] if c["status_name"] == "NOT_FOUND")
    got = _match(ours, want)
    assert got["ended_by"] == "trailers-only" and got["status_from"] == "trailers"
    assert got["response_metadata"] == {}
    assert got["trailers"] == want["trailers"] == {"retry-hint": "never"}


@pytest.fixture(scope="module")
def edge() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    truth = json.loads((SAMPLES / "grpc-edge.truth.json").read_text())
    return decoded_calls(SAMPLES / "grpc-edge.pcap"), truth


def test_edge_calls_equal_what_the_client_saw(edge: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    ours, truth = edge
    assert len(ours) == len(truth["calls"]) == 11
    for got, want in zip(ours, truth["calls"], strict=True):  # one at a time: capture order
        assert got["path"] == want["path"] and got["kind"] == want["kind"]
        assert [r["message"] for r in got["requests"]] == want["requests"]
        assert [r["message"] for r in got["responses"]] == want["responses"]
        if want.get("cancelled"):  # the client's own cancel: nothing on the wire says why
            assert got["status"] is None and got["status_from"] is None
        else:
            assert (got["status"], got["status_name"]) == (want["status"], want["status_name"])


def test_deadline_exceeded_with_or_without_the_servers_trailers(
    edge: tuple[list[dict[str, Any]], dict[str, Any]],
) -> None:
    """Every call whose client deadline elapsed is DEADLINE_EXCEEDED: from the server's trailers
    when it sent them (before or after the client's RST_STREAM), inferred when the reset came
    first and alone. The RST_STREAM code is rst_stream_error, never grpc_message."""
    ours, truth = edge
    assert set(truth["deadline_endings"]) >= {"reset-then-trailers", "reset-only"}
    deadline = [c for c, want in zip(ours, truth["calls"], strict=True) if "deadline" in want]
    assert len(deadline) == 7
    assert {(c["status_from"], c["ended_by"]) for c in deadline} >= {
        ("trailers", "trailers-only"),  # the server's trailers came before the reset
        ("trailers", "rst_stream"),  # ... after it
        ("inferred", "rst_stream"),  # ... never
    }
    for c in deadline:
        assert (c["status"], c["status_name"]) == (4, "DEADLINE_EXCEEDED")
        assert c["timeout"] == pytest.approx(0.2, abs=0.01) or c["timeout"] == pytest.approx(0.3, abs=0.01)
        if c["ended_by"] == "rst_stream":
            assert c["rst_stream_error"] == "CANCEL"
            assert c["duration"] >= c["timeout"] * 0.99 - 0.001
        if c["status_from"] == "inferred":
            assert c["grpc_message"] is None and c["trailers"] == {}
        else:
            assert c["grpc_message"] == "Deadline Exceeded"
    stalled = deadline[-1]  # the stream sent one message before its deadline
    assert stalled["kind"] == "server_streaming" and len(stalled["responses"]) == 1
    assert stalled["ended_by"] == "rst_stream" and stalled["status_from"] == "trailers"


def test_cancel_without_deadline_is_not_inferred(edge: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    ours, truth = edge
    got = next(c for c, want in zip(ours, truth["calls"], strict=True) if want.get("cancelled"))
    assert got["ended_by"] == "rst_stream" and got["rst_stream_error"] == "CANCEL"
    assert got["timeout"] is None and got["status"] is None and got["grpc_message"] is None


def test_abort_is_trailers_only(edge: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    ours, truth = edge
    got, want = next((c, w) for c, w in zip(ours, truth["calls"], strict=True) if w.get("trailers_only"))
    assert got["ended_by"] == "trailers-only" and got["response_metadata"] == {}
    assert (got["status_name"], got["grpc_message"]) == (want["status_name"], want["grpc_message"])


def test_compressed_messages_keep_their_wire_size(edge: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    """size is the length on the wire (gzip), uncompressed_size the message's own length."""
    ours, truth = edge
    pairs = [(c, w) for c, w in zip(ours, truth["calls"], strict=True) if w.get("compressed_request")]
    assert len(pairs) == 2
    for got, want in pairs:
        for items, sizes in (
            (got["requests"], want["request_sizes"]),
            (got["responses"], want["response_sizes"]),
        ):
            assert [m["uncompressed_size"] for m in items] == sizes
            assert all(m["compressed"] and m["size"] < m["uncompressed_size"] for m in items)
    for c in ours:
        for m in c["requests"] + c["responses"]:
            if not m["compressed"]:
                assert m["uncompressed_size"] == m["size"]


def test_server_first_capture() -> None:
    """The capture begins while the server streams: the flow's first packet is the server's, yet
    HTTP/2 names the client (its trailers come after its DATA; later requests carry :method)."""
    truth = json.loads((SAMPLES / "grpc-server-first.truth.json").read_text())
    ours = decoded_calls(SAMPLES / "grpc-server-first.pcap", with_schema=False)
    registry = load_registry()
    session = Session.open(SAMPLES / "grpc-server-first.pcap", registry)
    try:
        flow = session.flows[0]
        assert flow.oriented_by == "first-packet" and flow.client.port == truth["port"]
    finally:
        session.close()
    assert len(ours) == len(truth["calls"]) == 3
    assert {c["client"] for c in ours} == {str(flow.server)}
    stream, upload, get = ours
    # the stream's tail: responses only, every one a message the client received, in order
    names = [r["name"] for r in truth["calls"][0]["responses"]]
    got = [r["message"]["1"] for r in stream["responses"]]
    assert not stream["requests"] and len(got) >= 3 and names[-len(got) :] == got
    assert stream["ended_by"] == "trailers" and stream["kind"] == "server_streaming"
    assert upload["path"] == "/demo.Directory/Upload" and upload["path_from"] == "header"
    assert [r["message"]["1"] for r in upload["requests"]] == [
        p["name"] for p in truth["calls"][1]["requests"]
    ]
    assert len(upload["responses"]) == 1 and upload["ended_by"] == "trailers"
    assert get["requests"][0]["message"]["1"] == "after" and get["responses"][0]["message"]["1"] == "After"
