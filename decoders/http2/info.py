"""The Info text of one HTTP/2 frame, worded as Wireshark's HTTP/2 dissector words it.

tshark's Info column is what Wireshark users read first, so each frame's text is tshark 4.0's:
`TYPE[stream]`, then `: METHOD PATH` once a header block has shown both, and `: STATUS Reason`
for a `:status` (the reason phrase from Wireshark's table, `Unknown` past it). What tshark does
not say comes after it in parentheses, as tshark's own additions do (`DATA[1] (GRPC)`): the gRPC
status of trailers, the error code of RST_STREAM and GOAWAY, a malformed frame. A reader (and
tests/decoders/http2/test_info_oracle.py) can drop the parenthesised parts and compare with tshark.
"""

from __future__ import annotations

from collections.abc import Sequence

from protoscope.decoders.grpc.status import status_name

from .frames import ERROR_CODES, GOAWAY, RST_STREAM, RawFrame
from .header_block import Header

REASON_PHRASES = {
    100: "Continue",
    101: "Switching Protocols",
    102: "Processing",
    103: "Early Hints",
    199: "Informational - Others",
    200: "OK",
    201: "Created",
    202: "Accepted",
    203: "Non-authoritative Information",
    204: "No Content",
    205: "Reset Content",
    206: "Partial Content",
    207: "Multi-Status",
    208: "Already Reported",
    226: "IM Used",
    299: "Success - Others",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Found",
    303: "See Other",
    304: "Not Modified",
    305: "Use Proxy",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    399: "Redirection - Others",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Time-out",
    409: "Conflict",
    410: "Gone",
    411: "Length Required",
    412: "Precondition Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable",
    417: "Expectation Failed",
    418: "I'm a teapot",
    421: "Misdirected Request",
    422: "Unprocessable Entity",
    423: "Locked",
    424: "Failed Dependency",
    425: "Too Early",
    426: "Upgrade Required",
    428: "Precondition Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    451: "Unavailable For Legal Reasons",
    499: "Client Error - Others",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Time-out",
    505: "HTTP Version not supported",
    506: "Variant Also Negotiates",
    507: "Insufficient Storage",
    508: "Loop Detected",
    510: "Not Extended",
    511: "Network Authentication Required",
    599: "Server Error - Others",
}
"""Wireshark's `vals_http_status_code` (packet-http.c), as `tshark -G values` prints it: the
reason phrases its HTTP/2 Info shows, which differ from Python's `http.HTTPStatus` in places
(`Request Time-out`, `Non-authoritative Information`)."""


def reason_phrase(status: str) -> str:
    """The reason phrase tshark shows for a `:status` value (`Unknown` where its table has none;
    a value that is not a number reads as 0, as C's strtoul reads it)."""
    digits = status[: len(status) - len(status.lstrip("0123456789"))]
    return REASON_PHRASES.get(int(digits) if digits else 0, "Unknown")


def header_info(headers: Sequence[Header]) -> str:
    """What tshark appends to a frame's Info for its header block, and the gRPC status after it:
    `: POST /pkg.Svc/Method`, `: 200 OK`, ` (grpc-status 0 OK)`."""
    text = ""
    method = path = None
    grpc_status = None
    for h in headers:
        # tshark appends the request line when the second of :method and :path arrives, and each
        # :status as it comes; a repeated pseudo-header repeats it, as there.
        if h.name == ":method" or h.name == ":path":
            if h.name == ":method":
                method = h.value
            else:
                path = h.value
            if method is not None and path is not None:
                text += f": {method} {path}"
        elif h.name == ":status":
            text += f": {h.value} {reason_phrase(h.value)}"
        elif h.name == "grpc-status" and grpc_status is None:
            grpc_status = h.value
    if grpc_status is not None:
        code = int(grpc_status) if grpc_status.isascii() and grpc_status.isdigit() else None
        name = status_name(code)
        text += f" (grpc-status {grpc_status}{' ' + name if name else ''})"
    return text


def frame_info(
    raw: RawFrame, headers: Sequence[Header] | None, error_code: int | None, malformed: bool
) -> str:
    """One frame's Info: `HEADERS[1]: POST /demo.Directory/Get`, `HEADERS[1]: 200 OK`,
    `HEADERS[1] (grpc-status 0 OK)`, `DATA[1]`, `SETTINGS[0]`, `RST_STREAM[7] (CANCEL)`.
    `headers`: the header block this frame completed, if any."""
    text = f"{raw.type_name}[{raw.stream_id}]"
    if malformed:
        return text + " (malformed)"
    if headers:
        text += header_info(headers)
    if error_code is not None and raw.type in (RST_STREAM, GOAWAY):
        text += f" ({ERROR_CODES.get(error_code, hex(error_code))})"
    return text


def arrow_info(headers: Sequence[Header]) -> str:
    """A header block in a few words, for a ladder's arrow: `POST /demo.Directory/Get`, `200`,
    `grpc-status 0 OK`, `200 grpc-status 14 UNAVAILABLE` (a Trailers-Only response)."""
    values: dict[str, str] = {}
    for h in headers:
        values.setdefault(h.name, h.value)
    words = []
    if ":method" in values or ":path" in values:
        words.append(" ".join(v for v in (values.get(":method"), values.get(":path")) if v is not None))
    if ":status" in values:
        words.append(values[":status"])
    status = values.get("grpc-status")
    if status is not None:
        name = status_name(int(status)) if status.isascii() and status.isdigit() else None
        words.append(f"grpc-status {status}" + (f" {name}" if name else ""))
    return " ".join(words)
