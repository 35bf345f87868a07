"""The table of `--report stun_transactions`: a row per STUN transaction (request and answer)."""

from __future__ import annotations

from typing import Any

from .shape import (
    FINDINGS_DOC,
    Row,
    Shape,
    from_caller,
    from_key,
)

STUN_SOURCE = "--report stun_transactions"
STUN_TRANSACTIONS = Shape(
    "stun_transactions",
    STUN_SOURCE,
    "One row per STUN request (transaction id and leg) and what answered it.",
    [
        from_caller("transaction", "int64", "0-based position in --report stun_transactions"),
        from_key("flow", "int64", "the flow of this leg (flows.flow)"),
        from_key("transaction_id", "string", "stun.id, 24 hex digits"),
        from_key("method", "string", "Binding, Allocate, Refresh, CreatePermission, ChannelBind ..."),
        from_key("method_code", "int32", "stun.type's method"),
        from_key("client", "string", '"ip:port" of the requester on this leg'),
        from_key("server", "string", '"ip:port" of the responder'),
        from_key("relayed", "bool", "carried inside TURN (ChannelData, Send/Data)"),
        from_key("request_frame", "int64", "the first copy of the request"),
        from_key("request_time", "timestamp", "the first copy's time"),
        from_key("requests", "int64", "copies of the request (retransmissions included)"),
        from_key("response_frame", "int64", "the first response"),
        from_key("response_time", "timestamp", "the first response's time"),
        from_key("response_from", "string", '"ip:port" the response came from'),
        from_key("response_class", "string", "success or error; null when unanswered"),
        from_key("error_code", "int32", "ERROR-CODE"),
        from_key("error_reason", "string", "ERROR-CODE's reason phrase"),
        from_key("rtt_ms", "float64", "first request to first response, ms"),
        from_key("username", "string", "USERNAME"),
        from_key("use_candidate", "bool", "USE-CANDIDATE"),
        from_key("ice_role", "string", "controlling or controlled"),
        from_key("priority", "int64", "PRIORITY"),
        from_key("mapped_address", "string", "XOR-MAPPED-ADDRESS of a success"),
        from_key("relayed_address", "string", "XOR-RELAYED-ADDRESS"),
        from_key("lifetime", "int64", "LIFETIME granted, seconds"),
        from_key("requested_lifetime", "int64", "LIFETIME asked for, seconds"),
        from_key("findings", "int32", FINDINGS_DOC, count=True),
    ],
)


def split_stun_transactions(position: int, row: Any) -> dict[str, list[Row]]:
    return {"stun_transactions": [STUN_TRANSACTIONS.row(row, {"transaction": position})]}
