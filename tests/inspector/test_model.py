"""Where decoded PDUs lie in their frame, for the hex view: datagrams, TCP segments and PDUs carried
inside others (gRPC in HTTP/2 DATA, STUN in TURN). Checked on our real samples against the bytes:
a span that is wholly in its frame must start with that protocol's own header, with its length.
And the viewer's findings: the analyses' are there, as in the findings report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from protoscope.decoders.registry import load_registry
from protoscope.inspector.model import CaptureModel
from protoscope.inspector.report.rows import finding_rows, summary
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES, public_capture, tshark

MAGIC_COOKIE = bytes.fromhex("2112a442")


def _header_agrees(protocol: str, data: bytes) -> bool:
    """`data` (a whole PDU's bytes) starts with its protocol's header announcing its length."""
    if protocol == "http2":
        if data.startswith(b"PRI * HTTP/2.0"):
            return True
        return int.from_bytes(data[:3], "big") == len(data) - 9
    if protocol == "grpc":
        return int.from_bytes(data[1:5], "big") == len(data) - 5
    if protocol == "stun" and 0x40 <= data[0] <= 0x4F:  # TURN ChannelData: channel, length, data
        return int.from_bytes(data[2:4], "big") == len(data) - 4
    if protocol == "stun":
        return data[4:8] == MAGIC_COOKIE and int.from_bytes(data[2:4], "big") == len(data) - 20
    raise AssertionError(protocol)


@pytest.mark.parametrize("name", ["grpc-demo.pcap", "grpc-midstream.pcap", "webrtc-turn.pcap"])
def test_pdu_spans_point_at_their_headers(name: str) -> None:
    model = CaptureModel(Session.open(SAMPLES / name, load_registry()))
    whole = partial = 0
    for i in range(len(model)):
        detail = model.detail(i)
        payload = len(detail.frame) - detail.payload_offset
        for k, pdu in enumerate(detail.pdus):
            span = detail.frame_span(k, pdu.span)
            if span is None:
                continue
            start, end = span
            assert detail.payload_offset <= start < end <= detail.payload_offset + payload
            if pdu.protocol not in ("http2", "grpc", "stun"):
                continue
            if end - start == pdu.span[1] - pdu.span[0]:
                whole += 1
                assert _header_agrees(pdu.protocol, detail.frame[start:end]), (i + 1, pdu.summary)
            else:
                partial += 1  # the rest of it came in earlier segments
    assert whole > 20
    if name == "grpc-demo.pcap":
        assert partial > 0  # the 100 KiB message spans segments


def test_fields_of_a_tcp_pdu_map_into_the_frame() -> None:
    """A HEADERS frame's :path field highlights bytes of this frame's payload."""
    model = CaptureModel(Session.open(SAMPLES / "grpc-demo.pcap", load_registry()))
    for i in range(len(model)):
        detail = model.detail(i)
        for k, pdu in enumerate(detail.pdus):
            if pdu.protocol == "http2" and pdu.summary.startswith("HEADERS"):
                spans = [detail.frame_span(k, f.span) for f in pdu.fields]
                assert any(s is not None for s in spans)
                return
    raise AssertionError("no HEADERS frame")


def test_a_packet_outside_any_flow_has_no_pdu_spans(tmp_path: Path) -> None:
    from tests.pcapgen import write

    path = tmp_path / "arp.pcap"
    write(path, [bytes(14 + 28)])
    model = CaptureModel(Session.open(path, load_registry()))
    detail = model.detail(0)
    assert detail.pdus == [] and detail.frame_span(0, (0, 4)) is None


@pytest.mark.parametrize("kind", ["no-answer", "turn-refused", "bad-fingerprint", "one-way"])
def test_the_analyses_findings_are_the_models(kind: str) -> None:
    """What the sessions analysis finds on our failure samples is in the viewer's findings, in frame
    order among the packets' own, with its phase; the counts are the summary's."""
    path = SAMPLES / f"webrtc-{kind}.pcap"
    model = CaptureModel(Session.open(path, load_registry()))
    try:
        model.decode_all()
        shown = [
            (f.index + 1 if f.index >= 0 else None, f.finding.severity, f.finding.code, f.phase, f.analysis)
            for f in model.decoded.findings
        ]
        session = model.session
        report = [
            (r["frame"], r["severity"], r["code"], r.get("phase"), r.get("analysis"))
            for r in finding_rows(session)
        ]
        counts = summary(session)["findings"]
    finally:
        model.session.close()
    assert shown == report
    want = json.loads((SAMPLES / f"webrtc-{kind}.truth.json").read_text())["expected"]
    codes = {code for _, found in want.values() for code in found}
    assert {code for _, _, code, _, analysis in shown if analysis == "sessions"} == codes
    assert all(phase == code.split(".")[0] for _, _, code, phase, analysis in shown if analysis)
    assert model.finding_counts() == counts
    errors = {f.index for f in model.decoded.findings if f.finding.severity == "error"}
    assert model.flows_with_errors() == {int(model.index.flow[i]) for i in errors}


TIME_FLAGS = {"relative": "r", "delta": "d", "absolute": "a", "utc": "ud", "epoch": "e"}


@pytest.mark.parametrize("name", ["packt--grpc-go_Server_Streaming.pcapng", "wswiki--rtp_example.raw"])
def test_time_formats_are_tsharks(name: str) -> None:
    """Every packet's Time column in each of Wireshark's formats equals tshark -t r|d|a|ud|e; the
    delta since the previous displayed packet equals -t dd under a display filter."""
    path = public_capture(name)
    model = CaptureModel(Session.open(path, load_registry()))
    try:
        for fmt, flag in TIME_FLAGS.items():
            want = tshark("-r", str(path), "-t", flag, "-T", "fields", "-e", "_ws.col.Time").splitlines()
            assert [model.time_text(i, fmt) for i in range(len(model))] == want, fmt
        lines = tshark("-r", str(path), "-t", "dd", "-Y", "frame.len > 100", "-T", "fields", "-e",
                       "frame.number", "-e", "_ws.col.Time").splitlines()  # fmt: skip
        shown = [(int(a) - 1, b) for a, b in (line.split("\t") for line in lines)]
        assert len(shown) > 2
        previous = [None, *(i for i, _ in shown[:-1])]
        got = [model.time_text(i, "delta_displayed", p) for (i, _), p in zip(shown, previous, strict=True)]
        assert got == [t for _, t in shown]
    finally:
        model.session.close()


def test_time_references() -> None:
    """A reference shows *REF*; relative times after it count from it, before it from the first."""
    model = CaptureModel(Session.open(SAMPLES / "grpc-demo.pcap", load_registry()))
    try:
        ts = model.index.records.ts_ns
        refs = [10, 40]
        assert model.time_text(10, "relative", None, refs) == "*REF*"
        assert model.time_text(40, "epoch", None, refs) == "*REF*"
        assert model.time_text(5, "relative", None, refs) == f"{(int(ts[5]) - int(ts[0])) / 1e9:.6f}"
        assert model.time_text(20, "relative", None, refs) == f"{(int(ts[20]) - int(ts[10])) / 1e9:.6f}"
        assert model.time_text(50, "relative", None, refs) == f"{(int(ts[50]) - int(ts[40])) / 1e9:.6f}"
        assert model.time_text(50, "delta", None, refs) == model.time_text(50, "delta")
        with pytest.raises(ValueError):
            model.time_text(0, "sideways")
    finally:
        model.session.close()


def test_sort_order_by_numbers_and_texts() -> None:
    model = CaptureModel(Session.open(SAMPLES / "grpc-demo.pcap", load_registry()))
    try:
        rows = np.arange(len(model), dtype=np.int64)
        order = model.sort_order(rows, model.index.records.wirelen)
        assert order is not None
        lengths = model.index.records.wirelen[rows[order]]
        assert (np.diff(lengths.astype(np.int64)) >= 0).all()
        texts = {0: "10", 1: "9", 2: "0x20"}
        assert model.sort_order(np.arange(3), lambda i: texts[i]).tolist() == [1, 0, 2]
        words = {0: "b", 1: "a", 2: ""}
        assert model.sort_order(np.arange(3), lambda i: words[i]).tolist() == [2, 1, 0]
        assert model.sort_order(rows, lambda i: str(i), lambda: True) is None
    finally:
        model.session.close()


def test_field_texts_of_every_packet() -> None:
    model = CaptureModel(Session.open(SAMPLES / "grpc-demo.pcap", load_registry()))
    try:
        values = model.field_texts("http2.headers.path")
        assert values is not None
        paths = {values.get(i) for i in range(len(model))} - {None}
        assert "/demo.Directory/Get" in paths
        assert model.field_texts("frame.len", lambda: True) is None
    finally:
        model.session.close()


@pytest.mark.parametrize("name", ["ndpi--teams.pcap", "packt--grpc-go_Unary.pcapng"])
def test_endpoint_ranks_sort_as_the_texts_do(name: str) -> None:
    """Sorting by Source or Destination through the ranks is a stable sort by the column's text."""
    model = CaptureModel(Session.open(public_capture(name), load_registry()))
    try:
        for destination in (False, True):
            texts = [model.row(i).dst if destination else model.row(i).src for i in range(len(model))]
            order = np.argsort(model.endpoint_ranks(destination), kind="stable").tolist()
            assert order == sorted(range(len(model)), key=texts.__getitem__)
    finally:
        model.session.close()
