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
