"""HTTP/1.x and SIP messages (the same syntax: start line, header fields, body), with spans.

By hand: the standard library's http.client parses only live responses from a socket, and h11
is an endpoint state machine that refuses what captures show (mid-stream starts, lone responses).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from protoscope.decoders.api import Field, Finding

MAX_HEAD = 64 * 1024
"""Largest start line + header block; a longer one is not HTTP or SIP."""
MAX_READ_BODY = 64 * 1024
"""A body longer than this is not reassembled (the session skips its bytes; a chunked one is
followed chunk by chunk without keeping it) unless something reads it (gRPC-Web); SDP and
signaling bodies are far smaller."""
MAX_BUFFERED_BODY = 4 * 1024 * 1024
"""Largest body reassembled for a reader (gRPC-Web): gRPC's default limit on a message. A longer
one is skipped like a body nothing reads (`http.body_limit`)."""
MAX_CHUNK_LINE = 4 * 1024
"""Longest chunk-size line (hex size and chunk extensions, RFC 9112 section 7.1.1) or trailer field
line; a longer one ends the body (`http.chunk_bad`). A line that has not ended yet is searched
again from its start when more bytes come: this bounds that work."""
MAX_CHUNK_SIZE_DIGITS = 16
"""Hex digits of a chunk size: 64 bits. More is not a size any peer sends."""
READ_BODY_TYPES = ("application/grpc-web",)
"""Content types whose bodies are reassembled (up to MAX_BUFFERED_BODY)."""
PREFIX = 64
"""Bytes of an incomplete message kept to check that the next call's data starts with the same
message before the reading goes on from where it stopped."""
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
_LINE_ENDS = re.compile(rb"[\r\n]*")
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_CHUNK_SIZE = re.compile(rb"[ \t]*([0-9A-Fa-f]{1,%d})[ \t]*(?:;.*)?" % MAX_CHUNK_SIZE_DIGITS, re.DOTALL)


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
    streamed: bool = False
    """A chunked body too long to keep: `end` is where its reading stopped; the rest of its chunks
    are followed (and skipped) as they come."""

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


def only_line_ends(data: bytes, pos: int) -> bool:
    """True when data[pos:] is empty lines only (RFC 9112 section 2.2: they may precede a message)."""
    return _LINE_ENDS.match(data, pos).end() == len(data)  # type: ignore[union-attr]


SIP_COMPACT = {"l": "content-length", "c": "content-type", "i": "call-id", "f": "from", "t": "to", "v": "via"}

SIZE, DATA, DATA_END, TRAILER, DONE = range(5)
"""Where a chunked body's reading stands: a chunk-size line, chunk data, the CRLF after it, the
trailer section, or the end."""


@dataclass(slots=True)
class Chunks:
    """RFC 9112 section 7.1: a chunked body read as its bytes arrive, each byte looked at once.

    Offsets are relative to an origin the caller gives with each call (the message start while
    the message is kept whole, the stream position when the chunks are only followed)."""

    at: int
    """Where the reading stands."""
    keep: int | None
    """Body bytes that may be kept (None: follow the chunks, keep nothing)."""
    phase: int = SIZE
    left: int = 0
    """In DATA: chunk bytes still to come."""
    body: bytearray = dataclasses.field(default_factory=bytearray)
    trailer_at: int = 0
    """Where the trailer section starts (it may take MAX_HEAD bytes)."""
    error: str = ""
    """Why the body ended early (`http.chunk_bad`), or ""."""

    def advance(self, data: bytes, origin: int) -> int:
        """Reads on as far as `data` goes; returns the phase reached (DONE, or where it waits) or
        -1 when the next chunk would make the body longer than `keep` (at its size line)."""
        end = len(data)
        while self.phase != DONE:
            at = origin + self.at
            if self.phase == SIZE:
                eol = data.find(b"\r\n", at, at + MAX_CHUNK_LINE)
                if eol < 0:
                    if end - at >= MAX_CHUNK_LINE:
                        return self._bad(f"no chunk-size line end in {MAX_CHUNK_LINE} bytes")
                    return SIZE
                size = _CHUNK_SIZE.fullmatch(data, at, eol)
                if size is None:
                    self.at = eol - origin  # the message ends with the line that is not a size
                    return self._bad(f"chunk-size line {bytes(data[at : min(eol, at + 40)])!r}")
                n = int(size.group(1), 16)
                if n and self.keep is not None and len(self.body) + n > self.keep:
                    return -1
                self.at = eol + 2 - origin
                if n:
                    self.phase, self.left = DATA, n
                else:  # the last chunk: the trailer section follows
                    self.phase, self.trailer_at = TRAILER, self.at
            elif self.phase == DATA:
                if self.keep is None:
                    # Followed, not kept: the caller skips what has not arrived (DecodeResult.skip).
                    took = min(self.left, end - at)
                    self.at += took
                    self.left -= took
                    if self.left:
                        return DATA
                elif end - at < self.left + 2:
                    return DATA  # kept whole: wait for the chunk and its CRLF together
                else:
                    self.body += data[at : at + self.left]
                    self.at += self.left
                    self.left = 0
                self.phase = DATA_END
            elif self.phase == DATA_END:
                if end - at < 2:
                    return DATA_END
                self.at += 2  # the CRLF after the chunk data (not checked, as peers do not)
                self.phase = SIZE
            else:  # TRAILER: field lines up to an empty line
                eol = data.find(b"\r\n", at, at + MAX_CHUNK_LINE)
                if eol < 0 or eol - (origin + self.trailer_at) > MAX_HEAD:
                    if end - at >= MAX_CHUNK_LINE or end - (origin + self.trailer_at) > MAX_HEAD:
                        return self._bad(
                            f"a trailer line over {MAX_CHUNK_LINE} or a section over {MAX_HEAD} bytes"
                        )
                    return TRAILER
                self.at = eol + 2 - origin
                if eol == at:
                    self.phase = DONE
        return DONE

    def _bad(self, error: str) -> int:
        self.error = error
        self.phase = DONE
        return DONE


@dataclass(slots=True)
class _Head:
    start_line: str
    headers: tuple[tuple[str, str], ...]
    protocol: str
    body_at: int
    fields: dict[str, str]
    """Header names lowercased (SIP's compact forms expanded) -> value."""


@dataclass(slots=True)
class _Pending:
    """An incomplete message: what was read of it, relative to its start."""

    prefix: bytes
    seen: int
    """Bytes of the message the last call had."""
    scanned: int = 0
    """Where the search for the end of the head goes on."""
    head: _Head | None = None
    chunks: Chunks | None = None


class Reader:
    """Messages of one direction, read as bytes arrive: a message that is not whole yet is not
    read again from its start when more bytes come (the session gives the data again from the
    message's start; only what is new is looked at).

    Decoders are not told of holes in the stream: the reading goes on only when the data starts
    with the same PREFIX bytes and is no shorter than before, else it starts afresh. (A message
    after a hole whose first 64 bytes equal those of the one before would be misread; checking
    more would mean reading every byte again.)"""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending: _Pending | None = None

    def read(self, data: bytes, pos: int, at_end: bool) -> tuple[Message | None, int, list[Finding]]:
        """One message at data[pos:]: (message, need, findings), offsets relative to `pos`. `need` > 0
        asks for that many bytes in all; `at_end` says no more bytes will come (a body then runs to
        the end)."""
        p = self.pending
        self.pending = None
        avail = len(data) - pos
        if p is None or avail < p.seen or not data.startswith(p.prefix, pos):
            # A new message (or not the one the last call stopped in: the stream had a hole).
            p = _Pending(b"", 0)
        p.prefix, p.seen = data[pos : pos + PREFIX], avail
        if p.head is None:
            lead = _LINE_ENDS.match(data, pos).end() - pos  # type: ignore[union-attr]
            if lead == avail:
                return None, avail + 1, []
            start = pos + lead
            blank = _BLANK_LINE.search(data, max(start, pos + p.scanned - 3), start + MAX_HEAD)
            if blank is None:
                if len(data) - start > MAX_HEAD:
                    return (
                        None,
                        0,
                        [Finding("error", "http.header_too_long", f"no end of headers in {MAX_HEAD} bytes")],
                    )
                p.scanned = avail
                self.pending = None if at_end else p
                return None, avail + 1, []
            p.head = _head(data[start : blank.start()].decode("latin-1"), blank.end() - pos)
        head = p.head
        m, need, findings = self._body(data, pos, head, p, at_end)
        if m is None and need and not at_end:
            self.pending = p
        return m, need, findings

    def _body(
        self, data: bytes, pos: int, head: _Head, p: _Pending, at_end: bool
    ) -> tuple[Message | None, int, list[Finding]]:
        h = head.fields
        body_at = head.body_at
        avail = len(data) - pos
        ctype = h.get("content-type", "").lower()
        reader = ctype.startswith(READ_BODY_TYPES)
        findings: list[Finding] = []

        def message(body: bytes, end: int, skipped: int = 0, streamed: bool = False) -> Message:
            return Message(
                head.start_line, head.headers, body, body_at, end, head.protocol, skipped, streamed
            )

        length = h.get("content-length")
        if h.get("transfer-encoding", "").lower().endswith("chunked"):
            chunks = p.chunks = p.chunks or Chunks(body_at, MAX_BUFFERED_BODY if reader else MAX_READ_BODY)
            phase = chunks.advance(data, pos)
            if phase == -1:
                # Too long to keep: the message ends here for the session; the decoder follows the
                # rest of its chunks without keeping them.
                findings.append(_body_limit("a chunked body", reader))
                return message(b"", chunks.at, streamed=True), 0, findings
            if phase != DONE:
                if at_end:
                    return None, 0, []
                wait = chunks.left + 2 if phase == DATA else 1
                return None, max(avail + 1, chunks.at + wait), []
            if chunks.error:
                findings.append(Finding("warn", "http.chunk_bad", f"chunked body: {chunks.error}"))
            return message(bytes(chunks.body), chunks.at), 0, findings
        if length is not None and length.strip().isascii() and length.strip().isdigit():
            n = int(length)
            limit = MAX_BUFFERED_BODY if reader else MAX_READ_BODY
            if n > limit and not at_end:
                findings.append(_body_limit(f"a body of {n} bytes", reader))
                return message(b"", body_at, n), 0, findings
            if avail < body_at + n:
                return None, body_at + n, []
            return message(data[pos + body_at : pos + body_at + n], body_at + n), 0, []
        start = head.start_line
        if not start.startswith(("HTTP/", "SIP/")) or head.protocol == "sip":
            return message(b"", body_at), 0, []  # a request without a length has no body
        code = start.split(" ")[1:2]
        if code in (["204"], ["304"]) or code[0:1] == ["1"]:
            return message(b"", body_at), 0, []  # RFC 9112 section 6.3: never a body
        if at_end:  # a response without a length runs to the end of the datagram
            return message(data[pos + body_at :], avail), 0, []
        return message(b"", body_at), 0, []


def _body_limit(what: str, reader: bool) -> Finding:
    """A body not reassembled: a loss where something reads it (gRPC-Web), else a note (an SDP in a
    body that long would not be found)."""
    if reader:
        return Finding(
            "warn", "http.body_limit", f"{what} over MAX_BUFFERED_BODY ({MAX_BUFFERED_BODY}): not read"
        )
    return Finding("note", "http.body_limit", f"{what} over MAX_READ_BODY ({MAX_READ_BODY}): not read")


def _head(text: str, body_at: int) -> _Head:
    lines = text.splitlines()
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
    fields = {
        (SIP_COMPACT.get(k.lower(), k.lower()) if protocol == "sip" else k.lower()): v for k, v in headers
    }
    return _Head(start, tuple(headers), protocol, body_at, fields)


def parse(data: bytes, at_end: bool) -> tuple[Message | None, int, list[Finding]]:
    """One message at the start of `data`: (message, need, findings). `need` > 0 asks for that many
    bytes in all; `at_end` says no more bytes will come (a body then runs to the end)."""
    return Reader().read(data, 0, at_end)


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
    elif m.streamed:
        at = base + m.body_offset
        out.append(Field(f"{p}.file_data", "chunked (not read)", (at, base + m.end)))
    return out
