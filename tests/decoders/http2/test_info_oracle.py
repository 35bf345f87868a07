"""The HTTP/2 Info column against tshark's, packet by packet, on every HTTP/2 or gRPC capture of
the public corpus and ours.

Both sides are read as a list of frame texts (`HEADERS[1]: POST /demo.Directory/Get`, `DATA[1]`):
what tshark's other dissectors append (`(GRPC) (PROTOBUF)`, `(text/plain)`, a DNS answer) and what
we add in parentheses (`(gRPC request, 7 bytes)`, `(grpc-status 0 OK)`, `(CANCEL)`) are left out, so
what remains must be equal. Where it is not, the packet is listed with the reason, and it is
tshark's doing (or a place where we decode more).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from protoscope.decoders.http2.frames import TYPE_NAMES
from protoscope.decoders.registry import load_registry
from protoscope.inspector.report.rows import info
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES, public_capture, tshark
from tests.decoders.http2.test_oracle import CAPTURES, CASES, SAMPLE_HINTS, TSHARK_MISSES, capture_path

FRAME_ITEM = re.compile(r"(?:Magic|(?:" + "|".join(TYPE_NAMES.values()) + r")\[\d+\])")
"""Where one frame's text starts."""
SPLIT = re.compile(r", (?=" + FRAME_ITEM.pattern + r"|[A-Z][a-z])")
"""Between two frames, or before another dissector's text (`, JavaScript Object Notation`); not
inside a header value (a path starts with `/`, a status with a digit)."""
ADDITION = re.compile(r"(?: \([^()]*(?:\([^()]*\)[^()]*)*\)|\[BoundError[^\]]*\])+$")
"""Parenthesised additions at the end of a frame's text (tshark's and ours), and tshark's
`[BoundErrorUnreassembled Packet]` mark."""

INFO_DIFFERENCES: dict[str, dict[int, str]] = {
    "suricata-verify--dns-over-http2.pcap": {
        9: "the DNS dissector clears tshark's Info column before it writes its answer: the DATA "
        "frames that carried the answer are gone from tshark's text (frames after it stay)",
        11: "see packet 9",
        17: "see packet 9",
        22: "see packet 9",
    },
    "suricata-verify--http2-continuation.pcap": {
        14: "tshark inflates a header block frame by frame, so `: GET /tata` shows on the HEADERS "
        "frame that holds those bytes; we decode a block when its last CONTINUATION arrives "
        "(packet 19) and show the request line there",
        19: "see packet 14",
    },
}
"""Packets where the frame texts differ, and why."""


def frame_items(text: str) -> list[str]:
    """The frame texts of one Info column, without the parenthesised additions."""
    return [ADDITION.sub("", item) for item in SPLIT.split(text) if FRAME_ITEM.match(item)]


def tshark_info(path: Path, hints: list[str]) -> dict[int, list[str]]:
    fields = ("-T", "fields", "-e", "frame.number", "-e", "_ws.col.Info")
    out = tshark("-r", str(path), *hints, "-Y", "http2", *fields)
    rows = (line.split("\t", 1) for line in out.splitlines() if line)
    return {int(num): items for num, text in rows if (items := frame_items(text))}


def our_info(path: Path) -> dict[int, list[str]]:
    session = Session.open(path, load_registry())
    try:
        return {
            pd.index + 1: items
            for pd in session.decode()
            if any(p.protocol == "http2" for p in pd.pdus) and (items := frame_items(info(session, pd)))
        }
    finally:
        session.close()


def test_frame_items_drop_additions_only() -> None:
    text = (
        "Magic, SETTINGS[0], HEADERS[1]: POST /helloworld.Greeter/SayHello, DATA[1] (GRPC) (PROTOBUF), "
        "HEADERS[1] (grpc-status 0 OK), DATA[1] (gRPC request, 7 bytes), HEADERS[13][BoundErrorUnreassembled"
        " Packet], RST_STREAM[7] (CANCEL), Standard query response 0x0000 A www.gstatic.com"
    )
    assert frame_items(text) == [
        "Magic",
        "SETTINGS[0]",
        "HEADERS[1]: POST /helloworld.Greeter/SayHello",
        "DATA[1]",
        "HEADERS[1]",
        "DATA[1]",
        "HEADERS[13]",
        "RST_STREAM[7]",
    ]


@pytest.mark.parametrize("name", CASES)
def test_http2_info_equals_tshark(name: str) -> None:
    path = capture_path(name)
    hints = SAMPLE_HINTS.get(name) or CAPTURES.get(name, [])
    theirs, ours = tshark_info(path, hints), our_info(path)
    skip = {**TSHARK_MISSES.get(name, {}), **INFO_DIFFERENCES.get(name, {})}
    compared = 0
    for frame in sorted(set(theirs) | set(ours)):
        if frame in skip:
            continue
        assert ours.get(frame) == theirs.get(frame), f"packet {frame}"
        compared += 1
    assert compared or set(theirs) <= set(skip)
    for frame in INFO_DIFFERENCES.get(name, {}):
        assert frame in ours, f"we show packet {frame}'s frames ({skip[frame]})"


# -- the TCP line of packets without a decoded PDU ------------------------------------------------

TCP_LINE = re.compile(r"^(?:\[TCP [^\]]*\] )*(\d+ → \d+ \[[^\]]*\] Seq=\d+(?: Ack=\d+)? Win=\d+ Len=\d+)")
"""tshark's TCP Info up to `Len=`: without its analysis marks before (`[TCP Retransmission]`) and
the options after (`MSS=`, `TSval=`), which we do not write."""
TCP_CAPTURES = [
    "suricata-verify--http2-range.pcap",
    "arkime--http2-nghttp2.pcap",
    "suricata-verify--http2-errorcode.pcap",
    "packt--grpc-go_Bidi_Streaming.pcapng",
]
"""Public captures with handshakes, window scaling, IPv4 and IPv6, several connections."""


def tshark_tcp_lines(path: Path) -> dict[int, str]:
    out = tshark("-r", str(path), "-Y", "tcp", "-T", "fields", "-e", "frame.number", "-e", "_ws.col.Info")
    rows = (line.split("\t", 1) for line in out.splitlines() if line)
    return {int(num): m.group(1) for num, text in rows if (m := TCP_LINE.match(text))}


@pytest.mark.parametrize("name", [*TCP_CAPTURES, "grpc-demo.pcap"])
def test_tcp_info_equals_tshark(name: str) -> None:
    path = SAMPLES / name if name in SAMPLE_HINTS else public_capture(name)
    theirs = tshark_tcp_lines(path)
    session = Session.open(path, load_registry())
    try:
        ours = {
            pd.index + 1: info(session, pd)
            for pd in session.decode(sparse=False)
            if not pd.pdus and pd.index + 1 in theirs
        }
    finally:
        session.close()
    assert len(ours) >= 5
    assert {k: theirs[k] for k in ours} == ours
