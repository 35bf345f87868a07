"""The tables of `--report datachannels`: `datachannels` (a row per data channel) and
`datachannel_messages` (its messages).
"""

from __future__ import annotations

from typing import Any

from .shape import (
    FINDINGS_DOC,
    Row,
    Shape,
    _at,
    from_caller,
    from_item,
    from_key,
)

DATACHANNELS_SOURCE = "--report datachannels"
DATACHANNELS = Shape(
    "datachannels",
    DATACHANNELS_SOURCE,
    "One row per WebRTC data channel (an SCTP stream opened by DCEP or pre-negotiated).",
    [
        from_caller("datachannel", "int64", "0-based position in --report datachannels"),
        from_key("flow", "int64", "the flow of the SCTP association (flows.flow)"),
        from_key("stream_id", "uint16", "SCTP stream identifier (sctp.data_sid)"),
        from_key("label", "string", "DCEP label"),
        from_key("protocol", "string", "DCEP protocol"),
        from_key("negotiated", "string", "dcep or pre-negotiated"),
        from_key("channel_type", "string", "DATA_CHANNEL_RELIABLE, ..._PARTIAL_RELIABLE_REXMIT ..."),
        from_key("ordered", "bool", "ordered delivery (DCEP channel type)"),
        from_key("reliability", "string", "reliable, or the partial-reliability limit"),
        from_key("priority", "int64", "DCEP priority"),
        from_item("opened_frame", "int64", "the OPEN (or first message)", _at("opened", "frame")),
        from_item("opened_time", "timestamp", "when it opened", _at("opened", "time")),
        from_item("opened_direction", "string", "c2s or s2c", _at("opened", "direction")),
        from_item("acked_frame", "int64", "the DATA_CHANNEL_ACK", _at("acked", "frame")),
        from_item("acked_time", "timestamp", "when the ACK came", _at("acked", "time")),
        from_item("closed_frame", "int64", "the stream reset or ABORT", _at("closed", "frame")),
        from_item("closed_time", "timestamp", "when it closed", _at("closed", "time")),
        from_item("closed_by", "string", "reset or abort", _at("closed", "by")),
        from_key(
            "messages_listed",
            "int64",
            "messages listed (in datachannel_messages)",
            key="messages",
            count=True,
        ),
        from_key("messages_c2s", "int64", "messages from the flow's client"),
        from_key("messages_s2c", "int64", "messages from the flow's server"),
        from_key("bytes_c2s", "int64", "message bytes from the flow's client"),
        from_key("bytes_s2c", "int64", "message bytes from the flow's server"),
        from_key("findings", "int32", FINDINGS_DOC, count=True),
        from_key("opened", "json", "{frame, time, direction} of the OPEN"),
        from_key("acked", "json", "{frame, time, direction} of the ACK"),
        from_key("closed", "json", "{frame, time, by}"),
    ],
)

DATACHANNEL_MESSAGES = Shape(
    "datachannel_messages",
    DATACHANNELS_SOURCE,
    "One row per message a data channel lists.",
    [
        from_caller("datachannel", "int64", "the channel (datachannels.datachannel)"),
        from_caller("flow", "int64", "the channel's flow"),
        from_caller("stream_id", "uint16", "the channel's SCTP stream"),
        from_caller("index", "int64", "0-based position in the channel's `messages`"),
        from_key("frame", "int64", "the frame that completed it"),
        from_key("time", "timestamp", "that frame's time"),
        from_key("direction", "string", "c2s or s2c"),
        from_key("ppid", "uint32", "SCTP payload protocol identifier (51 text, 53 binary ...)"),
        from_key("ordered", "bool", "sent for ordered delivery (the U bit clear)"),
        from_key("size", "int64", "bytes"),
        from_key("text", "string", "the message as text (text PPIDs), up to MAX_SHOWN bytes"),
        from_key("hex", "string", "the message in hex (binary PPIDs), up to MAX_SHOWN bytes"),
        from_key("truncated", "bool", "longer than what text/hex show; null when not"),
        from_key("frames", "list<int64>", "the frames that carried its chunks"),
        from_key("dtls_side", "string", "client or server: the DTLS side that sent it"),
    ],
)


def split_datachannels(position: int, row: Any) -> dict[str, list[Row]]:
    channel = DATACHANNELS.row(row, {"datachannel": position})
    messages: list[Row] = []
    if isinstance(row, dict):
        parent = {"datachannel": position, "flow": channel["flow"], "stream_id": channel["stream_id"]}
        messages = DATACHANNEL_MESSAGES.rows(row.get("messages"), parent)
    return {"datachannels": [channel], "datachannel_messages": messages}
