"""HTTP/1.x and SIP messages (the same syntax: start line, header fields, body), with spans.

By hand: the standard library's http.client parses only live responses from a socket, and h11
is an endpoint state machine that refuses what captures show (mid-stream starts, lone responses).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from protoscope.decoders.api import Field, Finding

MAX_HEAD = 64 * 1024
"""Largest start line + header block; a longer one is not HTTP or SIP."""
MAX_READ_BODY = 64 * 1024
"""A body with a longer Content-Length is not reassembled (the session skips its bytes) unless
something reads it (gRPC-Web); SDP and signaling bodies are far smaller."""
READ_BODY_TYPES = ("application/grpc-web",)
"""Content types whose bodies are reassembled whatever their length."""
METHODS = (
    b"GET ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"HEAD ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
    b"INVITE ",
    b"ACK ",
    b"BYE ",
    b"CANCEL ",
    b"REGISTER ",
    b"PRACK ",
    b"SUBSCRIBE ",
    b"NOTIFY ",
    b"PUBLISH ",
    b"INFO ",
    b"REFER ",
    b"MESSAGE ",
    b"UPDATE ",
    b"PRI ",
)


@dataclass(frozen=True, slots=True)
class Message:
    start_line: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    body_offset: int
    end: int
    """Where the message ends in the data (start of the next one)."""
    protocol: str
    """"http" or "sip"."""
    skipped: int = 0
    """Body bytes after `end` that are not read (a body longer than MAX_READ_BODY)."""

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return None

    @property
    def is_request(self) -> bool:
        return not self.start_line.startswith(("HTTP/", "SIP/"))

    @property
    def status(self) -> int | None:
        parts = self.start_line.split(" ", 2)
        return (
            int(parts[1])
            if not self.is_request and len(parts) > 1 and parts[1].isascii() and parts[1].isdigit()
            else None
        )


def starts_message(data: bytes) -> bool:
    return data.startswith(METHODS) or data.startswith((b"HTTP/1.", b"SIP/2.0 "))


SIP_COMPACT = {"l": "content-length", "c": "content-type", "i": "call-id", "f": "from", "t": "to", "v": "via"}


def parse(data: bytes, at_end: bool) -> tuple[Message | None, int, list[Finding]]:
    """One message at the start of `data`: (message, need, findings). `need` > 0 asks for that many
    bytes in all; `at_end` says no more bytes will come (a body then runs to the end)."""
    skip = len(data) - len(data.lstrip(b"\r\n"))  # RFC 9112 2.2: empty lines before a message
    if skip:
        if skip == len(data):
            return None, len(data) + 1, []
        inner, wanted, problems = parse(data[skip:], at_end)
        if inner is None:
            return None, wanted + skip if wanted else 0, problems
        moved = dataclasses.replace(inner, body_offset=inner.body_offset + skip, end=inner.end + skip)
        return moved, 0, problems
    head_end = data.find(b"\r\n\r\n", 0, MAX_HEAD)
    sep = 4
    if head_end < 0:
        head_end = data.find(b"\n\n", 0, MAX_HEAD)
        sep = 2
    if head_end < 0:
        if len(data) > MAX_HEAD:
            return (
                None,
                0,
                [Finding("error", "http.header_too_long", f"no end of headers in {MAX_HEAD} bytes")],
            )
        return None, len(data) + 1, []
    lines = data[:head_end].decode("latin-1").splitlines()
    start = lines[0]
    protocol = "sip" if "SIP/2.0" in start else "http"
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # obsolete line folding
            k, v = headers[-1]
            headers[-1] = (k, v + " " + line.strip())
            continue
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    body_at = head_end + sep
    msg_headers = {
        (SIP_COMPACT.get(k.lower(), k.lower()) if protocol == "sip" else k.lower()): v for k, v in headers
    }
    findings: list[Finding] = []
    length = msg_headers.get("content-length")
    body: bytes
    if msg_headers.get("transfer-encoding", "").lower().endswith("chunked"):
        decoded = _chunked(data, body_at)
        if decoded is None:
            return None, len(data) + 1, []
        body, end = decoded
    elif length is not None and length.strip().isascii() and length.strip().isdigit():
        n = int(length)
        ctype = msg_headers.get("content-type", "").lower()
        if n > MAX_READ_BODY and not at_end and not ctype.startswith(READ_BODY_TYPES):
            return Message(start, tuple(headers), b"", body_at, body_at, protocol, n), 0, findings
        if len(data) < body_at + n:
            return None, body_at + n, []
        body, end = data[body_at : body_at + n], body_at + n
    elif not start.startswith(("HTTP/", "SIP/")) or protocol == "sip":
        body, end = b"", body_at  # a request without a length has no body
    elif at_end or start.split(" ")[1:2] in (["204"], ["304"]) or start.split(" ")[1:2][0:1] == ["1"]:
        body, end = data[body_at:], len(data)
    else:
        body, end = b"", body_at
    return Message(start, tuple(headers), body, body_at, end, protocol), 0, findings


def _chunked(data: bytes, pos: int) -> tuple[bytes, int] | None:
    out = bytearray()
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return None
        size_text = data[pos:eol].split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return bytes(out), eol
        pos = eol + 2
        if size == 0:
            end = data.find(b"\r\n", pos)
            return (bytes(out), end + 2) if end >= 0 else None
        if len(data) < pos + size + 2:
            return None
        out += data[pos : pos + size]
        pos += size + 2


def fields(m: Message, base: int = 0) -> list[Field]:
    p = m.protocol
    out = [
        Field(
            f"{p}.request.line" if m.is_request else f"{p}.response.line",
            m.start_line,
            (base, base + len(m.start_line)),
        )
    ]
    if m.is_request:
        method, _, rest = m.start_line.partition(" ")
        out.append(Field(f"{p}.request.method", method, (base, base + len(method))))
        out.append(Field(f"{p}.request.uri", rest.rsplit(" ", 1)[0], (base, base + len(m.start_line))))
    else:
        out.append(Field(f"{p}.response.code", m.status, (base, base + len(m.start_line))))
    for k, v in m.headers:
        out.append(Field(f"{p}.header", f"{k}: {v}", (base, base + m.body_offset)))
    if m.body:
        out.append(
            Field(
                f"{p}.file_data",
                f"{len(m.body)} bytes",
                (base + m.body_offset, base + m.body_offset + len(m.body)),
            )
        )
    elif m.skipped:
        at = base + m.body_offset
        out.append(Field(f"{p}.file_data", f"{m.skipped} bytes (not read)", (at, at)))
    return out
