"""gRPC-Web text over HTTP/1.1 (no HTTP/2 at all): calls, and message lengths equal tshark's."""

from __future__ import annotations

from protoscope.decoders.http2.records import MessageRecord
from protoscope.decoders.registry import load_registry
from protoscope.inspector.report.rows import analysis_rows
from protoscope.inspector.session import Session
from tests.conftest import public_capture, tshark

NAME = "wswiki--client-grpc-web-text-http1-send-two-unary.pcapng"


def test_grpc_web_text_over_http1() -> None:
    path = public_capture(NAME)
    out = tshark("-r", str(path), "-T", "fields", "-e", "frame.number", "-e", "grpc.message_length")
    theirs = {
        int(f): [int(x) for x in n.split(",")]
        for f, n in (line.split("\t") for line in out.splitlines())
        if n
    }
    session = Session.open(path, load_registry())
    try:
        ours: dict[int, list[int]] = {}
        for pd in session.decode():
            sizes = [p.record.size for p in pd.pdus if isinstance(p.record, MessageRecord)]
            if sizes:
                ours[pd.index + 1] = sizes
        calls = list(analysis_rows(session, "calls"))
    finally:
        session.close()
    assert ours == theirs  # the trailers frame (flag 0x80) counts as a message in both
    assert [(c["path"], c["status_name"], len(c["requests"]), len(c["responses"])) for c in calls] == [
        ("/greet.Greeter/SayHello", "OK", 1, 1)
    ] * 2
