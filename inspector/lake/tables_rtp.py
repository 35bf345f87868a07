"""The tables of `--report streams`: `streams` (a row per RTP stream) and `stream_seconds` (its
jitter and loss second by second).
"""

from __future__ import annotations

from typing import Any

from .convert import CONVERTERS
from .shape import (
    Row,
    Shape,
    _address_of,
    _port_of,
    from_caller,
    from_item,
    from_key,
)

STREAMS_SOURCE = "--report streams"
STREAMS = Shape(
    "streams",
    STREAMS_SOURCE,
    "One row per RTP stream (SSRC and direction), like tshark -z rtp,streams.",
    [
        from_caller("stream", "int64", "0-based position in --report streams (what --stream N takes)"),
        from_key("ssrc", "uint32", "rtp.ssrc"),
        from_key("payload_type", "int32", "the first packet's payload type (rtp.p_type)"),
        from_key("payload_types", "list<int64>", "every payload type the stream carried"),
        from_key("src", "string", '"ip:port" of the sender'),
        from_item("src_addr", "string", "the sender's IP address", _address_of("src")),
        from_item("src_port", "uint16", "the sender's port", _port_of("src")),
        from_key("dst", "string", '"ip:port" of the receiver'),
        from_item("dst_addr", "string", "the receiver's IP address", _address_of("dst")),
        from_item("dst_port", "uint16", "the receiver's port", _port_of("dst")),
        from_key("packets", "int64", "RTP packets seen"),
        from_key("expected", "int64", "packets the sequence numbers span (RFC 3550 A.3)"),
        from_key("lost", "int64", "expected - packets: negative with duplicates, as tshark counts"),
        from_key("duplicates", "int64", "packets whose sequence number was seen before"),
        from_key("out_of_order", "int64", "packets older than the highest sequence number seen"),
        from_key("sequence_wraps", "int64", "times the 16-bit sequence number wrapped (RFC 3550 A.1)"),
        from_key("max_delta_ms", "float64", "largest gap between packets, ms"),
        from_key("max_jitter_ms", "float64", "RFC 3550 jitter, largest, ms"),
        from_key("mean_jitter_ms", "float64", "RFC 3550 jitter, mean, ms"),
        from_key("clock_rate", "int64", "RTP clock rate, Hz; null when unknown"),
        from_key("first", "timestamp", "the first packet's time"),
        from_key("last", "timestamp", "the last packet's time"),
        from_key("reported_lost", "int64", "cumulative loss the receiver's last RTCP report block said"),
        from_key("reported_fraction_lost", "float64", "fraction lost in that block (0-1)"),
        from_key("reported_jitter_ms", "float64", "jitter in that block, ms"),
        from_key("rtt_ms", "float64", "round-trip time from RTCP LSR/DLSR, ms"),
        from_key("codec", "string", "encoding name (signaling's rtpmap, else the static payload type's)"),
        from_key("keyframes", "int64", "video keyframes seen in payloads in the clear"),
        from_key("frame_rate", "float64", "video frames per second"),
        from_key("rtx_repaired", "int64", "RTX (RFC 4588): distinct packets repaired"),
    ],
)

STREAM_SECONDS = Shape(
    "stream_seconds",
    STREAMS_SOURCE,
    "One row per second of each RTP stream: its jitter and loss over time (the sparklines).",
    [
        from_caller("stream", "int64", "the stream (streams.stream)"),
        from_caller("ssrc", "uint32", "the stream's SSRC"),
        from_caller("second", "int64", "0-based second since the stream's first packet"),
        from_caller("jitter_ms", "float64", "largest jitter in that second, ms (jitter_ms_per_second)"),
        from_caller("lost", "int64", "packets lost in that second (lost_per_second)"),
    ],
)


def split_streams(position: int, row: Any) -> dict[str, list[Row]]:
    stream = STREAMS.row(row, {"stream": position})
    seconds: list[Row] = []
    if isinstance(row, dict):
        jitter, lost = row.get("jitter_ms_per_second"), row.get("lost_per_second")
        jitter = jitter if type(jitter) is list else []
        lost = lost if type(lost) is list else []
        to_float, to_int = CONVERTERS["float64"], CONVERTERS["int64"]
        ssrc = stream["ssrc"]
        for second in range(max(len(jitter), len(lost))):
            seconds.append(
                {
                    "stream": position,
                    "ssrc": ssrc,
                    "second": second,
                    "jitter_ms": to_float(jitter[second]) if second < len(jitter) else None,
                    "lost": to_int(lost[second]) if second < len(lost) else None,
                }
            )
    return {"streams": [stream], "stream_seconds": seconds}
