"""What a call's row keeps: the first and the last messages of each direction, bytes of them, and
open calls per connection (decoders/grpc/calls.py), on h2c connections made with hyperframe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hpack import Encoder
from hyperframe.frame import DataFrame, GoAwayFrame, HeadersFrame, SettingsFrame

from protoscope.decoders.grpc import calls
from protoscope.decoders.registry import load_registry
from protoscope.inspector.report.rows import analysis_rows
from protoscope.inspector.session import Session
from tests.pcapgen import tcp_conversation
from tests.pcapgen import write as write_pcap

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def message(n: int, size: int = 0) -> bytes:
    body = b"\x08" + bytes([n]) + (b"\x12" + bytes([size]) + b"x" * size if size else b"")
    return b"\x00" + len(body).to_bytes(4, "big") + body


class H2c:
    """One connection's TCP segments, a frame or a few per segment."""

    def __init__(self) -> None:
        self.client, self.server = Encoder(), Encoder()
        self.segments: list[tuple[bool, bytes]] = [
            (True, PREFACE + SettingsFrame(0).serialize()),
            (False, SettingsFrame(0).serialize()),
        ]

    def request(self, sid: int, end: bool = False) -> None:
        block = self.client.encode(
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", "/x.Feed/Watch"),
                ("content-type", "application/grpc"),
            ]
        )
        flags = ["END_HEADERS", "END_STREAM"] if end else ["END_HEADERS"]
        self.segments.append((True, HeadersFrame(sid, block, flags=flags).serialize()))

    def response(self, sid: int) -> None:
        block = self.server.encode([(":status", "200"), ("content-type", "application/grpc")])
        self.segments.append((False, HeadersFrame(sid, block, flags=["END_HEADERS"]).serialize()))

    def data(self, from_client: bool, sid: int, body: bytes) -> None:
        self.segments.append((from_client, DataFrame(sid, body).serialize()))

    def trailers(self, sid: int) -> None:
        block = self.server.encode([("grpc-status", "0")])
        self.segments.append(
            (False, HeadersFrame(sid, block, flags=["END_HEADERS", "END_STREAM"]).serialize())
        )

    def rows(self, tmp: Path) -> list[dict[str, Any]]:
        path = write_pcap(tmp / "limits.pcap", tcp_conversation(self.segments, server=("127.0.0.1", 50051)))
        session = Session.open(path, load_registry())
        try:
            return list(analysis_rows(session, "calls"))
        finally:
            session.close()


FIRST_DATA = 6
"""The frame of the first message in these conversations: after the handshake (3), both
prefaces and the request."""


def test_a_long_stream_keeps_its_first_and_last_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(calls, "MESSAGES_KEPT_FIRST", 3)
    monkeypatch.setattr(calls, "MESSAGES_KEPT_LAST", 2)
    c = H2c()
    c.request(1, end=True)
    c.response(1)
    for n in range(10):
        c.data(False, 1, message(n))
    (row,) = c.rows(tmp_path)
    got = [r["message"]["1"] for r in row["responses"]]
    assert got == [0, 1, 2, 8, 9]
    assert [r["frame"] for r in row["responses"]] == [8, 9, 10, 16, 17]
    assert (row["responses_omitted"], row["requests_omitted"]) == (5, 0)
    assert row["kind"] == "server_streaming" and row["ended_by"] is None
    (finding,) = row["findings"]
    assert finding["code"] == "grpc.messages_limit" and finding["severity"] == "warn"
    assert finding["frame"] == 11  # message 3: the first one left out
    assert finding["message"].startswith("5 of 10 responses left out: kept the first 3 and the last 2")


def test_bytes_kept_of_each_direction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MESSAGE_BYTES_KEPT bounds the first messages kept and the last ones; the first and the
    latest message are kept whatever their size."""
    monkeypatch.setattr(calls, "MESSAGE_BYTES_KEPT", 100)
    c = H2c()
    c.request(1, end=True)
    c.response(1)
    for n, size in enumerate([40, 40, 40, 120, 10, 10, 90]):
        c.data(False, 1, message(n, size))
    (row,) = c.rows(tmp_path)
    # first: 44 + 44 bytes (a third would pass 100); last: 10 + 94 is over, so only the latest
    assert [r["message"]["1"] for r in row["responses"]] == [0, 1, 6]
    assert [r["uncompressed_size"] for r in row["responses"]] == [44, 44, 94]
    assert row["responses_omitted"] == 4


def test_open_calls_past_the_limit_give_up_the_oldest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(calls, "MAX_OPEN_CALLS", 2)
    c = H2c()
    for sid in (1, 3):
        c.request(sid)
    c.response(3)
    c.trailers(3)  # done: room for another
    c.request(5)
    c.request(7)  # three open: 1, 5, 7 -> 1 is given up
    c.data(True, 1, message(1))  # a new call on stream 1: its row starts here
    c.segments.append((False, GoAwayFrame(0, last_stream_id=5).serialize()))
    rows = c.rows(tmp_path)
    got = [(r["stream_id"], r["ended_by"], [(f["code"], f["frame"]) for f in r["findings"]]) for r in rows]
    assert got == [
        (1, "calls_limit", [("grpc.calls_limit", 11)]),  # given up for stream 7's request
        (3, "trailers", []),
        (5, "calls_limit", [("grpc.calls_limit", 12)]),  # given up for the new call on stream 1
        (7, "goaway", []),  # the GOAWAY ends the open calls past its last stream, 5
        (1, None, []),
    ]
    assert rows[0]["end"] is None and rows[0]["requests"] == []
    assert "more than 2 calls open on this connection (MAX_OPEN_CALLS)" in rows[0]["findings"][0]["message"]
    assert [m["message"] for m in rows[4]["requests"]] == [{"1": 1}]
