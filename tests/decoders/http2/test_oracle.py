"""HTTP/2 and gRPC against tshark on every HTTP/2 or gRPC capture of the public corpus and ours.

Per packet: the same HTTP/2 frames (type, stream id, flags, length) and gRPC message lengths;
per stream: the same :path; per call: the same grpc-status. tshark gets the decode-as hint from
the corpus MANIFEST; we get none. Where tshark decodes less, the difference is listed with the
reason and our value is checked another way.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from protoscope.decoders.http2.records import FrameRecord, MessageRecord
from protoscope.decoders.registry import load_registry
from protoscope.inspector.report.rows import analysis_rows
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES, manifest_captures, public_capture, tshark

Frames = dict[int, tuple[list[tuple[int, int, int, int]], list[int]]]


CAPTURES = manifest_captures(r"\b(http2|grpc)\b")
SAMPLE_HINTS = {
    "grpc-demo.pcap": ["-d", "tcp.port==47051,http2"],
    "grpc-midstream.pcap": ["-d", "tcp.port==47052,http2"],
    "grpc-edge.pcap": ["-d", "tcp.port==47053,http2"],
    "grpc-server-first.pcap": ["-d", "tcp.port==47054,http2"],
}

TSHARK_MISSES: dict[str, dict[int, str]] = {
    "arkime--http2-nghttp2.pcap": {
        4: "tshark puts the 16384-byte HEADERS[13] in the packet where it starts, marked "
        "[BoundErrorUnreassembled], and decodes no more HTTP/2 from the client; we decode it where "
        "it ends (packet 22) with its CONTINUATION (24) and the later WINDOW_UPDATE/GOAWAY frames",
        22: "see packet 4",
        24: "see packet 4",
        77: "see packet 4",
        85: "see packet 4",
        95: "see packet 4",
    },
    "suricata-verify--http2_multiple_headers.pcap": {
        4: "the server's SETTINGS and WINDOW_UPDATE come before the client preface; tshark's "
        "heuristic starts at the preface (packet 5)",
    },
    "wswiki--grpc_person_search_protobuf_with_image-missing_headers.pcapng": {
        2: "no HEADERS in the capture: tshark shows bare DATA (it needs fake headers); we read the "
        "DATA as gRPC from its bytes",
        4: "see packet 2",
    },
}
GRPC_UNSEEN = {
    "grpc-midstream.pcap": "the capture starts mid-connection: content-type comes from HPACK entries "
    "tshark never saw, so it does not call the DATA gRPC; we read it from its bytes (the messages "
    "are checked against the truth file in tests/decoders/grpc)",
    "grpc-server-first.pcap": "as grpc-midstream.pcap, and it starts with the server's packets",
}


def tshark_frames(path: Path, hints: list[str]) -> Frames:
    args = list(hints)
    out = tshark(
        "-r",
        str(path),
        *args,
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-e",
        "frame.number",
        "-e",
        "http2.type",
        "-e",
        "http2.streamid",
        "-e",
        "http2.flags",
        "-e",
        "http2.length",
        "-e",
        "grpc.message_length",
    )
    frames: Frames = {}
    for line in out.splitlines():
        num, types, sids, flags, lengths, grpc = line.split("\t")
        if not types:
            continue
        rows = zip(types.split(","), sids.split(","), flags.split(","), lengths.split(","), strict=True)
        frames[int(num)] = (
            [(int(t), int(s), int(f, 16), int(n)) for t, s, f, n in rows],
            [int(x) for x in grpc.split(",")] if grpc else [],
        )
    return frames


def our_frames(path: Path) -> Frames:
    session = Session.open(path, load_registry())
    try:
        frames: Frames = {}
        for pd in session.decode():
            got = [
                (p.record.type, p.record.stream_id, p.record.flags, p.record.length)
                for p in pd.pdus
                if isinstance(p.record, FrameRecord) and not p.record.http1
            ]
            if got:
                sizes = [p.record.size for p in pd.pdus if isinstance(p.record, MessageRecord)]
                frames[pd.index + 1] = (got, sizes)
        return frames
    finally:
        session.close()


def capture_path(name: str) -> Path:
    return SAMPLES / name if name in SAMPLE_HINTS else public_capture(name)


CASES = sorted(CAPTURES) + sorted(SAMPLE_HINTS) if CAPTURES else sorted(SAMPLE_HINTS)


@pytest.mark.parametrize("name", CASES)
def test_frames_per_packet_equal_tshark(name: str) -> None:
    path = capture_path(name)
    hints = SAMPLE_HINTS.get(name) or CAPTURES.get(name, [])
    theirs, ours = tshark_frames(path, hints), our_frames(path)
    misses = TSHARK_MISSES.get(name, {})
    if name in GRPC_UNSEEN:
        assert not any(sizes for _, sizes in theirs.values())
        assert any(sizes for _, sizes in ours.values())
        theirs = {k: (v[0], []) for k, v in theirs.items()}
        ours = {k: (v[0], []) for k, v in ours.items()}
    for frame in sorted(set(theirs) | set(ours)):
        if frame in misses:
            continue
        assert ours.get(frame) == theirs.get(frame), f"packet {frame}"
    for frame in misses:
        assert frame in ours, f"we decode packet {frame} ({misses[frame]})"


def test_midstream_sample_tshark_decodes_less() -> None:
    """tshark shows the frames of our mid-connection capture but no :path; we say unknown, not wrong."""
    path = SAMPLES / "grpc-midstream.pcap"
    paths = tshark("-r", str(path), "-d", "tcp.port==47052,http2", "-T", "fields", "-e", "http2.headers.path")
    assert not paths.strip()


SEP = "\x1f"
"""tshark's separator between occurrences (header values contain commas)."""


def tshark_fields(path: Path, hints: list[str], *fields: str) -> str:
    """tshark's fields of every packet, `|` between fields and every occurrence of each, SEP-joined."""
    flags = ("-T", "fields", "-E", "occurrence=a", "-E", "separator=|", "-E", f"aggregator={SEP}")
    return tshark("-r", str(path), *hints, *flags, *(a for f in fields for a in ("-e", f)))


def tshark_paths_and_status(
    path: Path, hints: list[str]
) -> tuple[dict[tuple[int, int], str], dict[tuple[int, int], int]]:
    out = tshark_fields(
        path,
        hints,
        "tcp.stream",
        "http2.streamid",
        "http2.type",
        "http2.header.name",
        "http2.header.value",
        "http2.headers.path",
    )
    paths: dict[tuple[int, int], str] = {}
    status: dict[tuple[int, int], int] = {}
    for line in out.splitlines():
        tcp, sids, types, names, values, _ = line.split("|")
        if not types:
            continue
        header_sids = [
            int(s) for s, t in zip(sids.split(SEP), types.split(SEP), strict=True) if t in ("1", "9")
        ]
        names_l, values_l = names.split(SEP) if names else [], values.split(SEP) if values else []
        if not header_sids or len(names_l) != len(values_l):
            continue
        # All header blocks of a packet: attribute each header to the packet's only HEADERS stream.
        if len(set(header_sids)) != 1:
            continue
        key = (int(tcp), header_sids[0])
        for n, v in zip(names_l, values_l, strict=True):
            if n == ":path":
                paths[key] = v
            elif n == "grpc-status" and v.isdigit():
                status[key] = int(v)
    return paths, status


@pytest.mark.parametrize("name", [n for n in CASES if "grpc" in n])
def test_paths_and_status_equal_tshark(name: str) -> None:
    path = capture_path(name)
    hints = SAMPLE_HINTS.get(name) or CAPTURES.get(name, [])
    paths, status = tshark_paths_and_status(path, hints)
    if name not in GRPC_UNSEEN and "missing_headers" not in name and "http1" not in name:
        assert paths, "tshark found no :path to compare"
    session = Session.open(path, load_registry())
    try:
        calls = list(analysis_rows(session, "calls"))
    finally:
        session.close()
    ours_by_stream: dict[int, list[dict[str, object]]] = defaultdict(list)
    for c in calls:
        ours_by_stream[int(c["stream_id"])].append(c)  # type: ignore[call-overload]
    for (_, sid), p in paths.items():
        assert any(c["path"] == p for c in ours_by_stream[sid]), (sid, p)
    for (_, sid), code in status.items():
        assert any(c["status"] == code for c in ours_by_stream[sid]), (sid, code)


RST_STREAM_ERRORS = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 5: "STREAM_CLOSED", 8: "CANCEL"}
"""RFC 9113 section 7 names of the codes the captures use."""


def tshark_endings(path: Path, hints: list[str]) -> dict[int, dict[str, object]]:
    """Per HTTP/2 stream: when its first header block came, its first RST_STREAM (error, time) and
    the grpc-status values of its header blocks, as tshark reads them."""
    out = tshark_fields(
        path,
        hints,
        "frame.time_epoch",
        "http2.streamid",
        "http2.type",
        "http2.rst_stream.error",
        "http2.header.name",
        "http2.header.value",
    )
    streams: dict[int, dict[str, object]] = defaultdict(dict)
    for line in out.splitlines():
        when, sids, types, errors, names, values = line.split("|")
        if not types:
            continue
        errs = iter(errors.split(SEP)) if errors else iter(())
        pairs = list(zip(sids.split(SEP), types.split(SEP), strict=True))
        for sid, kind in pairs:
            s = streams[int(sid)]
            if kind == "1":
                s.setdefault("opened", float(when))
            if kind == "3":
                error = int(next(errs))
                s.setdefault("rst", (RST_STREAM_ERRORS.get(error, str(error)), float(when)))
        header_sids = {sid for sid, kind in pairs if kind in ("1", "9")}
        names_l, values_l = names.split(SEP) if names else [], values.split(SEP) if values else []
        if len(header_sids) == 1 and len(names_l) == len(values_l):
            s = streams[int(header_sids.pop())]
            for n, v in zip(names_l, values_l, strict=True):
                if n == "grpc-status":
                    s.setdefault("status", []).append(int(v))  # type: ignore[union-attr]
    return streams


@pytest.mark.parametrize("name", [n for n in CASES if "grpc" in n])
def test_resets_and_status_sources_equal_tshark(name: str) -> None:
    """rst_stream_error is the stream's RST_STREAM code, never in grpc_message; a status "from
    trailers" is one tshark reads there; an "inferred" one is where tshark reads none and the
    reset came after the grpc-timeout."""
    path = capture_path(name)
    theirs = tshark_endings(path, SAMPLE_HINTS.get(name) or CAPTURES.get(name, []))
    session = Session.open(path, load_registry())
    try:
        calls = list(analysis_rows(session, "calls"))
    finally:
        session.close()
    for c in calls:
        t = theirs.get(int(c["stream_id"]), {})  # type: ignore[call-overload]
        if c["ended_by"] == "rst_stream":
            assert c["rst_stream_error"] == t["rst"][0], c["stream_id"]  # type: ignore[index]
        else:
            assert c["rst_stream_error"] is None
        assert c["grpc_message"] not in RST_STREAM_ERRORS.values()
        # gRPC-Web carries grpc-status in a trailers frame inside the body: tshark 4.0 does not
        # show it as a header (tests/decoders/grpc/test_grpc_web.py checks ours)
        if c["status_from"] == "trailers" and "grpc-web" not in name:
            assert c["status"] in t.get("status", []), c["stream_id"]  # type: ignore[operator]
        elif c["status_from"] == "inferred":
            assert "status" not in t and c["status"] == 4
            assert t["rst"][1] - t["opened"] >= c["timeout"] * 0.99 - 0.001  # type: ignore[index, operator]
