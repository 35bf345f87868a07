"""HTTP/2 frames (RFC 9113 section 4 and 6): parsed with hyperframe, laid out with byte spans.

hyperframe checks and parses each frame body; this module adds what a passive inspector needs
and hyperframe does not give: where each field lies in the capture (for the hex view), the raw
flag byte, and a finding instead of an exception for a frame that breaks the rules.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from protoscope.decoders.api import Field, Finding

FRAME_HEADER_LEN = 9
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    range(10)
)
TYPE_NAMES = {
    DATA: "DATA",
    HEADERS: "HEADERS",
    PRIORITY: "PRIORITY",
    RST_STREAM: "RST_STREAM",
    SETTINGS: "SETTINGS",
    PUSH_PROMISE: "PUSH_PROMISE",
    PING: "PING",
    GOAWAY: "GOAWAY",
    WINDOW_UPDATE: "WINDOW_UPDATE",
    CONTINUATION: "CONTINUATION",
    10: "ALTSVC",
    12: "ORIGIN",
    16: "PRIORITY_UPDATE",
}
FLAG_END_STREAM = 0x01  # DATA, HEADERS; ACK for SETTINGS and PING
FLAG_END_HEADERS = 0x04
FLAG_PADDED = 0x08
FLAG_PRIORITY = 0x20
ERROR_CODES = {
    0x0: "NO_ERROR",
    0x1: "PROTOCOL_ERROR",
    0x2: "INTERNAL_ERROR",
    0x3: "FLOW_CONTROL_ERROR",
    0x4: "SETTINGS_TIMEOUT",
    0x5: "STREAM_CLOSED",
    0x6: "FRAME_SIZE_ERROR",
    0x7: "REFUSED_STREAM",
    0x8: "CANCEL",
    0x9: "COMPRESSION_ERROR",
    0xA: "CONNECT_ERROR",
    0xB: "ENHANCE_YOUR_CALM",
    0xC: "INADEQUATE_SECURITY",
    0xD: "HTTP_1_1_REQUIRED",
}
SETTING_NAMES = {
    1: "SETTINGS_HEADER_TABLE_SIZE",
    2: "SETTINGS_ENABLE_PUSH",
    3: "SETTINGS_MAX_CONCURRENT_STREAMS",
    4: "SETTINGS_INITIAL_WINDOW_SIZE",
    5: "SETTINGS_MAX_FRAME_SIZE",
    6: "SETTINGS_MAX_HEADER_LIST_SIZE",
    8: "SETTINGS_ENABLE_CONNECT_PROTOCOL",
    9: "SETTINGS_NO_RFC7540_PRIORITIES",
}


@dataclass(frozen=True, slots=True)
class RawFrame:
    """One frame as it lies in the stream, before its body is interpreted."""

    offset: int
    length: int
    type: int
    flags: int
    stream_id: int

    @property
    def end(self) -> int:
        return self.offset + FRAME_HEADER_LEN + self.length

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.type, f"Unknown({self.type})")


def frame_header(data: bytes, pos: int) -> RawFrame:
    """The frame header at `pos` (9 bytes must be there)."""
    length = int.from_bytes(data[pos : pos + 3], "big")
    stream_id = int.from_bytes(data[pos + 5 : pos + 9], "big") & 0x7FFF_FFFF
    return RawFrame(pos, length, data[pos + 3], data[pos + 4], stream_id)


FLAGS_DEFINED = {
    DATA: 0x09,
    HEADERS: 0x2D,
    PRIORITY: 0,
    RST_STREAM: 0,
    SETTINGS: 0x01,
    PUSH_PROMISE: 0x0C,
    PING: 0x01,
    GOAWAY: 0,
    WINDOW_UPDATE: 0,
    CONTINUATION: 0x04,
}
"""The flags each frame type defines (RFC 9113 section 6); any other bit makes a guess implausible."""
FIXED_LENGTH = {PRIORITY: 5, RST_STREAM: 4, PING: 8, WINDOW_UPDATE: 4}
CONNECTION_LEVEL = frozenset({SETTINGS, PING, GOAWAY})
MAX_GUESSED_LENGTH = 1 << 20


def plausible_header(data: bytes, pos: int = 0) -> bool:
    """A strict guess that a frame header starts at `pos`: known type, flags that type defines,
    a stream id of the right kind, a sane length. (A TLS record header never passes: its first
    three bytes read as a length over 1.3 MB.)"""
    if len(data) < pos + FRAME_HEADER_LEN:
        return False
    length = int.from_bytes(data[pos : pos + 3], "big")
    ftype, flags = data[pos + 3], data[pos + 4]
    allowed = FLAGS_DEFINED.get(ftype)
    if allowed is None or flags & ~allowed or data[pos + 5] & 0x80 or length > MAX_GUESSED_LENGTH:
        return False
    stream_id = int.from_bytes(data[pos + 5 : pos + 9], "big")
    if (ftype in CONNECTION_LEVEL) != (stream_id == 0) and ftype != WINDOW_UPDATE:
        return False
    fixed = FIXED_LENGTH.get(ftype)
    if fixed is not None and length != fixed:
        return False
    return not (ftype == SETTINGS and length % 6)


TLS_RECORD_HEADER_LEN = 5
TLS_MAX_RECORD = (1 << 14) + 2048
"""Largest TLSCiphertext.length (RFC 5246 section 6.2.3; TLS 1.3 allows less)."""
_TLS_HEADER = re.compile(rb"[\x14-\x17]\x03[\x00-\x04]")
"""ContentType change_cipher_spec, alert, handshake or application_data, then version 3.0-3.4."""


def _tls_length(data: bytes, pos: int) -> int | None:
    """The record length of a TLS record header at `pos`, or None when there is none."""
    if len(data) < pos + TLS_RECORD_HEADER_LEN or not _TLS_HEADER.match(data, pos):
        return None
    length = int.from_bytes(data[pos + 3 : pos + 5], "big")
    return length if 0 < length <= TLS_MAX_RECORD else None


def tls_records_at(data: bytes, pos: int) -> bool:
    """TLS records start at `pos`: a record header whose record ends exactly where the data ends or
    where another record header starts; at the start of the data, one header is enough."""
    length = _tls_length(data, pos)
    if length is None:
        return False
    end = pos + TLS_RECORD_HEADER_LEN + length
    if pos == 0 or end == len(data):
        return True
    return end < len(data) and _tls_length(data, end) is not None


def find_tls_records(data: bytes, start: int = 0, end: int | None = None) -> int | None:
    """The first offset in [start, end) where TLS records start (see tls_records_at)."""
    for m in _TLS_HEADER.finditer(data, start, len(data) if end is None else end):
        if tls_records_at(data, m.start()):
            return m.start()
    return None


@dataclass(frozen=True, slots=True)
class ParsedFrame:
    raw: RawFrame
    frame: Any
    """The hyperframe object (DataFrame, SettingsFrame, ...); None for a malformed frame and, until
    the detail tree asks for it, for the frames read by hand (HOT)."""
    body_start: int
    """Where the payload proper starts (after pad length and priority fields)."""
    body_end: int
    """Where it ends (before padding)."""
    findings: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.findings


HOT = frozenset({DATA, HEADERS, CONTINUATION})
"""Frame types the bulk pass reads by hand: hyperframe's parse costs ~10 us a frame here (3.5 s
of a 200,000-packet gRPC capture), these few lines ~1 us. Every other type, and the detail tree
of these, goes through hyperframe."""


def _bad(raw: RawFrame, message: str) -> ParsedFrame:
    finding = Finding("error", "http2.bad_frame", f"{raw.type_name} frame: {message}", (raw.offset, raw.end))
    return ParsedFrame(raw, None, raw.offset + FRAME_HEADER_LEN, raw.end, (finding,))


def parse(data: bytes, raw: RawFrame, full: bool = False) -> ParsedFrame:
    """Parse the body of a complete frame; never raises. `full` makes hyperframe parse HOT ones too."""
    start, end = raw.offset + FRAME_HEADER_LEN, raw.end
    if raw.type in HOT and not full:
        pad = 0
        if raw.type != CONTINUATION and raw.flags & FLAG_PADDED:
            if start >= end:
                return _bad(raw, "PADDED without a pad length")
            pad = data[start]
            start += 1
        if raw.type == HEADERS and raw.flags & FLAG_PRIORITY:
            start += 5
        if start + pad > end:
            return _bad(raw, f"padding of {pad} bytes is longer than the frame")
        if raw.stream_id == 0:
            return _bad(raw, "must be on a stream, not stream 0")
        return ParsedFrame(raw, None, start, end - pad)
    Frame, HyperframeError = _hyperframe()
    header = memoryview(data)[raw.offset : raw.offset + FRAME_HEADER_LEN]
    body = memoryview(data)[start:end]
    try:
        frame, _ = Frame.parse_frame_header(header)
        frame.parse_body(body)
    except (HyperframeError, ValueError) as exc:
        return _bad(raw, str(exc) or type(exc).__name__)
    if raw.type in (DATA, HEADERS, PUSH_PROMISE) and raw.flags & FLAG_PADDED:
        start += 1
        end -= getattr(frame, "pad_length", 0)
    if raw.type == HEADERS and raw.flags & FLAG_PRIORITY:
        start += 5
    if raw.type == PUSH_PROMISE:
        start += 4
    return ParsedFrame(raw, frame, start, end)


@functools.cache
def _hyperframe() -> tuple[Any, type[Exception]]:
    """hyperframe's Frame and HyperframeError, imported with the first frame it parses (a capture
    without HTTP/2 never needs it) and not again per frame."""
    from hyperframe.exceptions import HyperframeError
    from hyperframe.frame import Frame

    return Frame, HyperframeError


def _u(name: str, value: object, start: int, end: int) -> Field:
    return Field(name, value, (start, end))


def fields(data: bytes, p: ParsedFrame) -> list[Field]:
    """The detail tree of a frame, with Wireshark's field names (hyperframe parses the body)."""
    r = p.raw
    f = p.frame if p.frame is not None or not p.ok else parse(data, r, full=True).frame
    o = r.offset
    out = [
        _u("http2.length", r.length, o, o + 3),
        _u("http2.type", r.type, o + 3, o + 4),
        _u("http2.flags", r.flags, o + 4, o + 5),
        _u("http2.streamid", r.stream_id, o + 5, o + 9),
    ]
    if f is None:
        return out
    body = o + FRAME_HEADER_LEN
    if r.type in (DATA, HEADERS, PUSH_PROMISE) and r.flags & FLAG_PADDED:
        out.append(_u("http2.pad_length", f.pad_length, body, body + 1))
        if f.pad_length:
            out.append(_u("http2.padding", f.pad_length, p.body_end, r.end))
    if r.type == HEADERS and r.flags & FLAG_PRIORITY:
        at = p.body_start - 5
        out.append(_u("http2.exclusive", bool(f.exclusive), at, at + 4))
        out.append(_u("http2.stream_dependency", f.depends_on, at, at + 4))
        out.append(_u("http2.headers.weight", f.stream_weight + 1, at + 4, at + 5))
    if r.type == DATA:
        out.append(_u("http2.data.data", p.body_end - p.body_start, p.body_start, p.body_end))
    elif r.type == PRIORITY:
        out.append(_u("http2.exclusive", bool(f.exclusive), body, body + 4))
        out.append(_u("http2.stream_dependency", f.depends_on, body, body + 4))
        out.append(_u("http2.headers.weight", f.stream_weight + 1, body + 4, body + 5))
    elif r.type == RST_STREAM:
        out.append(_u("http2.rst_stream.error", f.error_code, body, body + 4))
    elif r.type == SETTINGS:
        at = body
        for ident, value in f.settings.items():
            name = SETTING_NAMES.get(ident, f"Unknown({ident})")
            out.append(
                Field(
                    "http2.settings",
                    name,
                    (at, at + 6),
                    (
                        _u("http2.settings.id", ident, at, at + 2),
                        _u("http2.settings.value", value, at + 2, at + 6),
                    ),
                )
            )
            at += 6
    elif r.type == PUSH_PROMISE:
        at = p.body_start - 4
        out.append(_u("http2.push_promise.promised_stream_id", f.promised_stream_id, at, at + 4))
    elif r.type == PING:
        out.append(_u("http2.ping", bytes(f.opaque_data).hex(), body, body + 8))
    elif r.type == GOAWAY:
        out.append(_u("http2.goaway.last_stream_id", f.last_stream_id, body, body + 4))
        out.append(_u("http2.goaway.error", f.error_code, body + 4, body + 8))
        if f.additional_data:
            out.append(_u("http2.goaway.addata", bytes(f.additional_data), body + 8, r.end))
    elif r.type == WINDOW_UPDATE:
        out.append(_u("http2.window_update.window_size_increment", f.window_increment, body, body + 4))
    return out
