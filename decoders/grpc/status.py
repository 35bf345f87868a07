"""gRPC status codes, grpc-message, grpc-timeout and -bin metadata (gRPC's PROTOCOL-HTTP2.md)."""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote_to_bytes

from protoscope.decoders.protobuf import wire

STATUS_NAMES = {
    0: "OK",
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}
DEADLINE_EXCEEDED = 4
TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
TIMEOUT = re.compile(r"^(\d{1,8})([HMSmun])$")


def status_name(code: int | None) -> str | None:
    if code is None:
        return None
    return STATUS_NAMES.get(code, f"CODE_{code}")


def parse_status(value: str) -> int | None:
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 10 else None


def grpc_message(value: str) -> str:
    """grpc-message is percent-encoded UTF-8 (invalid sequences are kept as replacement chars)."""
    return unquote_to_bytes(value).decode("utf-8", "replace")


def grpc_timeout(value: str) -> float | None:
    """Seconds of a `grpc-timeout` header ("100m" is 0.1), None when malformed."""
    m = TIMEOUT.match(value)
    return int(m[1]) * TIMEOUT_UNITS[m[2]] if m else None


TIMEOUT_ROUNDING = 0.01
"""grpc-timeout may be rounded up: gRPC C-core keeps three significant digits (at most 1%)."""
TIMEOUT_GRANULARITY = 1e-3
"""... and whole milliseconds below one second."""


def deadline_elapsed(elapsed: float, timeout: float) -> bool:
    """Whether a call that lasted `elapsed` seconds outlived its `grpc-timeout` (seconds), allowing
    for the client's rounding up of the header (the bulk path in _bulk.c computes the same)."""
    return elapsed >= timeout - (timeout * TIMEOUT_ROUNDING + TIMEOUT_GRANULARITY)


def binary_value(value: str | bytes) -> bytes | None:
    """The bytes of a `-bin` header: base64 (padded or not), or raw bytes ("true binary").

    gRPC's true-binary metadata (two C-core peers that both announce it) sends the raw bytes
    after a NUL byte; our HPACK layer gives such non-ASCII values as latin-1 text.
    """
    if isinstance(value, bytes):
        return value
    if value.startswith("\x00"):
        try:
            return value[1:].encode("latin-1")
        except UnicodeEncodeError:
            return None
    text = value.strip()
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def status_details(raw: bytes) -> dict[str, object] | None:
    """google.rpc.Status {int32 code = 1; string message = 2; repeated google.protobuf.Any details = 3}.

    Decoded from the wire format by field number so that no googleapis package is needed;
    each Any gives its type_url and value bytes (hex).
    """
    fields, error = wire.decode(raw)
    if error is not None:
        return None
    out: dict[str, object] = {}
    details: list[dict[str, object]] = []
    for f in fields:
        if f.number == 1 and f.wire_type == wire.VARINT:
            assert isinstance(f.value, int)
            out["code"] = wire.as_signed(f.value & 0xFFFF_FFFF, 32)
        elif f.number == 2 and f.wire_type == wire.LEN:
            assert isinstance(f.value, bytes)
            out["message"] = f.value.decode("utf-8", "replace")
        elif f.number == 3 and f.wire_type == wire.LEN:
            item: dict[str, object] = {}
            for g in f.children:
                if g.number == 1 and isinstance(g.value, bytes):
                    item["type_url"] = g.value.decode("utf-8", "replace")
                elif g.number == 2 and isinstance(g.value, bytes):
                    item["value"] = g.value.hex()
            details.append(item)
    if details:
        out["details"] = details
    return out
