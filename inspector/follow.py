"""Follow stream, as Wireshark's "Follow TCP/UDP Stream": a flow's bytes both ways, in order.

Three views of one conversation: the transport's bytes (TCP reassembled, or each UDP payload),
the HTTP/2 frames of one stream, and a gRPC call as its messages. Each is a `Followed` of
`FollowChunk`s, which `render` turns into lines in Wireshark's ASCII, hex dump or raw form, each
line tagged with the side that sent it (the viewer colours the sides; reports print them).
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from protoscope.captures.reassembly import Chunk, Gap, follow
from protoscope.decoders.http2.records import FrameRecord, MessageRecord

from .session import Session

FOLLOW_MAX_BYTES = 32 * 1024 * 1024
"""Bytes a follow keeps (both sides together); past this the rest is left out and `truncated`
says so. Wireshark holds a whole stream in memory; a 1 GB transfer would hold 1 GB here too."""
HEX_WIDTH = 16
"""Bytes per line of the hex dump, as Wireshark's."""
PRINTABLE = frozenset(string.printable.encode()) - frozenset(b"\x0b\x0c\r\n")
"""Bytes the ASCII view shows as themselves (Wireshark's isprint, plus tab); others are '.'."""

BARE_SUMMARY = re.compile(r"[A-Z_]+(\[\d+\])?")
"""An HTTP/2 frame summary that says no more than its type and stream."""

Mode = Literal["ascii", "hex", "raw"]
MODES: tuple[Mode, ...] = ("ascii", "hex", "raw")


class FollowError(ValueError):
    """What was asked for is not in the capture (no such flow, stream or call)."""


@dataclass(frozen=True, slots=True)
class FollowChunk:
    """Bytes one side sent, as one piece of the conversation."""

    frame: int
    """1-based frame number of the packet that carried (the end of) it."""
    time: float
    """Capture time of that packet, epoch seconds."""
    from_client: bool
    """The flow's client side sent it (Wireshark's first-speaker colouring)."""
    data: bytes
    """Bytes in order (TCP: reassembled stream bytes; UDP: the payload)."""
    label: str = ""
    """For HTTP/2 frames and gRPC messages: "HEADERS[1]: POST /pkg.Svc/M", "request 1 (12 bytes)";
    for a hole in a TCP stream: "[N bytes missing in capture file]" (Wireshark's words)."""
    text: str = ""
    """A decoded form when there is one (a gRPC message as JSON, a header block as lines)."""


@dataclass(frozen=True, slots=True)
class Followed:
    """One followed conversation, ready to render."""

    flow: int
    transport: str
    """"tcp" or "udp"."""
    client: str
    """"ip:port" ("[v6]:port")."""
    server: str
    what: str
    """What was followed, in words: "TCP stream 3", "HTTP/2 stream 5 of flow 3", "gRPC call ..."."""
    chunks: list[FollowChunk]
    client_bytes: int
    server_bytes: int
    truncated: bool
    """More than FOLLOW_MAX_BYTES: the rest was left out."""
    stream: int = -1
    """tshark's tcp.stream (or udp.stream) of the flow: that transport's conversations numbered in
    order of their first packet (our flow ids count TCP and UDP together)."""
    first_from_client: bool = True
    """The flow's first packet was the client's. tshark's Node 0 is the first packet's sender, which
    differs from the client when a capture starts mid-connection with the server's packet."""


def _flow(session: Session, flow: int) -> npt.NDArray[np.int64]:
    """The packets of `flow`, after checking that it exists."""
    if not 0 <= flow < len(session.flows):
        raise FollowError(f"no flow {flow} (the capture has {len(session.flows)})")
    return np.flatnonzero(session.index.flow == flow).astype(np.int64)


def _followed(session: Session, flow: int, what: str, chunks: list[FollowChunk], truncated: bool) -> Followed:
    f = session.flows[flow]
    client = sum(len(c.data) for c in chunks if c.from_client)
    server = sum(len(c.data) for c in chunks if not c.from_client)
    from .filter import stream_of_flow  # the filter's numbering; not loaded by every text report

    stream = stream_of_flow(session, flow)
    first = int(np.argmax(session.index.flow == flow))
    first_from_client = int(session.index.direction[first]) == 0
    return Followed(
        flow,
        f.transport,
        str(f.client),
        str(f.server),
        what,
        chunks,
        client,
        server,
        truncated,
        stream,
        first_from_client,
    )


def follow_flow(session: Session, flow: int) -> Followed:
    """Wireshark's "Follow TCP/UDP Stream": a TCP flow's reassembled bytes each way, one chunk per
    segment that brought new bytes (retransmissions trimmed, holes named), or a UDP flow's payloads."""
    packets = _flow(session, flow)
    ix = session.index
    transport = session.flows[flow].transport
    if transport == "tcp" and _starts_tls(session, packets):
        decrypted = _follow_tls(session, flow, packets)
        if decrypted is not None:
            return decrypted
    chunks: list[FollowChunk] = []
    total = 0
    truncated = False
    if transport == "tcp":
        for direction, ev in follow(ix, packets):
            if isinstance(ev, Gap):
                label = f"[{ev.missing} bytes missing in capture file]"
                chunks.append(FollowChunk(ev.frame + 1, ix.time(ev.frame), direction == 0, b"", label))
                continue
            if total + len(ev.data) > FOLLOW_MAX_BYTES:
                truncated = True
                break
            total += len(ev.data)
            chunks.append(FollowChunk(ev.frame + 1, ix.time(ev.frame), direction == 0, ev.data))
    else:
        for i in packets.tolist():
            data = ix.payload(i)
            if not data:
                continue
            if total + len(data) > FOLLOW_MAX_BYTES:
                truncated = True
                break
            total += len(data)
            chunks.append(FollowChunk(i + 1, ix.time(i), int(ix.direction[i]) == 0, data))
    from .filter import stream_of_flow

    what = f"{transport.upper()} stream {stream_of_flow(session, flow)}"
    return _followed(session, flow, what, chunks, truncated)


def _starts_tls(session: Session, packets: npt.NDArray[np.int64]) -> bool:
    """The flow's first payload is a TLS handshake record (0x16, version 3.x)."""
    ix = session.index
    with_data = packets[ix.payload_len[packets] > 0]
    return bool(len(with_data)) and ix.payload(int(with_data[0]))[:2] == b"\x16\x03"


def _follow_tls(session: Session, flow: int, packets: npt.NDArray[np.int64]) -> Followed | None:
    """Wireshark's "Follow TLS Stream": the plaintext of a TLS flow's records each way, where the key
    log opened them (one chunk per record, at the packet that completed it); None when no record
    of the flow was decrypted (then the TCP bytes are followed)."""
    chunks: list[FollowChunk] = []
    total = 0
    truncated = False
    for pd in session.decode(packets=packets.tolist()):
        from_client = bool(pd.context.from_client) if pd.context is not None else True
        for pdu in pd.pdus:
            if pdu.protocol != "tls":
                continue
            for inner in pdu.inner:
                if inner.transport != "stream" or not inner.data:
                    continue
                if total + len(inner.data) > FOLLOW_MAX_BYTES:
                    truncated = True
                    break
                total += len(inner.data)
                chunks.append(
                    FollowChunk(pd.index + 1, session.index.time(pd.index), from_client, inner.data)
                )
    if not chunks:
        return None
    from .filter import stream_of_flow

    return _followed(
        session, flow, f"TLS stream {stream_of_flow(session, flow)} (decrypted)", chunks, truncated
    )


class _Streams:
    """A TCP flow's two byte streams, reassembled, addressed by stream offset (PDU spans count from
    it): holes are zeros, so offsets after a hole stay right."""

    def __init__(self, session: Session, packets: npt.NDArray[np.int64]) -> None:
        self.sides = (bytearray(), bytearray())
        self.truncated = False
        if session.flows[int(session.index.flow[packets[0]])].transport != "tcp":
            return
        total = 0
        for direction, ev in follow(session.index, packets):
            if not isinstance(ev, Chunk):
                continue
            total += len(ev.data)
            if total > FOLLOW_MAX_BYTES:
                self.truncated = True
                break
            side = self.sides[direction]
            if len(side) < ev.offset:
                side.extend(bytes(ev.offset - len(side)))
            side[ev.offset : ev.offset + len(ev.data)] = ev.data

    def get(self, from_client: bool, base: int | None, span: tuple[int, int]) -> bytes:
        if base is None:
            return b""
        return bytes(self.sides[0 if from_client else 1][base + span[0] : base + span[1]])


def _header_info(record: FrameRecord) -> str:
    """Wireshark's Info for a header block: "POST /pkg.Svc/M", "200, grpc-status 0"."""
    if not record.headers:
        return ""
    values = {h.name: h.value for h in record.headers}
    if ":method" in values:
        return " ".join(v for v in (values.get(":method"), values.get(":path")) if v)
    parts = [values[":status"]] if ":status" in values else []
    if "grpc-status" in values:
        parts.append(f"grpc-status {values['grpc-status']}")
    return ", ".join(parts)


def _frame_label(summary: str, record: FrameRecord) -> str:
    """The decoder's summary, with the header block's gist when the summary is only "TYPE[N]"."""
    info = _header_info(record)
    return f"{summary}: {info}" if info and BARE_SUMMARY.fullmatch(summary) else summary


def _header_text(record: FrameRecord) -> str:
    return "\n".join(f"{h.name}: {h.value}" for h in record.headers or ())


def _stream_pdus(
    session: Session, flow: int, stream_id: int
) -> Iterator[tuple[int, bool, bytes, str, FrameRecord | MessageRecord]]:
    """(0-based packet, from_client, wire bytes, summary, record) of each HTTP/2 frame and gRPC
    message of one stream, in the order the decoders met them."""
    packets = _flow(session, flow)
    if not len(packets):
        return
    streams = _Streams(session, packets)
    for pd in session.decode(packets=packets.tolist()):
        for k, pdu in enumerate(pd.pdus):
            record = pdu.record
            if not isinstance(record, FrameRecord | MessageRecord) or record.stream_id != stream_id:
                continue
            from_client = record.from_client
            if from_client is None:
                from_client = bool(pd.context.from_client) if pd.context is not None else True
            base = pd.bases[k] if k < len(pd.bases) else None
            data = streams.get(from_client, base, pdu.span)
            yield pd.index, from_client, data, pdu.summary, record


def follow_http2(session: Session, flow: int, stream_id: int) -> Followed:
    """The frames of one HTTP/2 stream, each with its bytes as on the wire and Wireshark's Info."""
    ix = session.index
    chunks: list[FollowChunk] = []
    total = 0
    truncated = False
    for i, from_client, data, summary, record in _stream_pdus(session, flow, stream_id):
        if not isinstance(record, FrameRecord):
            continue
        if total + len(data) > FOLLOW_MAX_BYTES:
            truncated = True
            break
        total += len(data)
        chunks.append(
            FollowChunk(
                i + 1, ix.time(i), from_client, data, _frame_label(summary, record), _header_text(record)
            )
        )
    if not chunks:
        raise FollowError(f"no HTTP/2 stream {stream_id} in flow {flow}")
    return _followed(session, flow, f"HTTP/2 stream {stream_id} of flow {flow}", chunks, truncated)


def _json(content: object) -> str:
    try:
        return json.dumps(content, ensure_ascii=False, indent=2, default=str)
    except (TypeError, ValueError):
        return repr(content)


def follow_call(session: Session, call: Mapping[str, object]) -> Followed:
    """A gRPC call (a row of the calls report) as its header blocks and messages in order, each
    message with its bytes (inflated when compressed) and its decoded form as JSON."""
    flow, stream_id = call.get("flow"), call.get("stream_id")
    if not isinstance(flow, int) or not isinstance(stream_id, int):
        raise FollowError("the call has no flow and stream_id")
    ix = session.index
    chunks: list[FollowChunk] = []
    total = 0
    truncated = False
    counts = {True: 0, False: 0}
    for i, from_client, data, summary, record in _stream_pdus(session, flow, stream_id):
        if isinstance(record, FrameRecord):
            if not record.headers:
                continue  # DATA, WINDOW_UPDATE, ...: the messages below say what DATA carried
            chunk = FollowChunk(
                i + 1, ix.time(i), from_client, data, _frame_label(summary, record), _header_text(record)
            )
        else:
            counts[from_client] += 1
            body = record.data if record.data is not None else data
            what = "request" if from_client else "response"
            compressed = ", compressed" if record.compressed else ""
            label = f"{what} {counts[from_client]} ({record.size} bytes{compressed})"
            chunk = FollowChunk(i + 1, ix.time(i), from_client, body, label, _json(record.content))
        if total + len(chunk.data) > FOLLOW_MAX_BYTES:
            truncated = True
            break
        total += len(chunk.data)
        chunks.append(chunk)
    path = call.get("path") or "(unknown path)"
    what = f"gRPC call {path} (HTTP/2 stream {stream_id} of flow {flow})"
    return _followed(session, flow, what, chunks, truncated)


def _printable(data: bytes) -> str:
    return "".join(chr(b) if b in PRINTABLE else "." for b in data)


def _dump_text(data: bytes) -> str:
    """The ASCII column of a hex dump: printable ASCII only (a tab would break the columns)."""
    return "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in data)


def _visible(text: str) -> str:
    """Decoded text with what a terminal would act on (controls, bidi overrides) as '.'."""
    return "".join(c if c.isprintable() else "." for c in text)


def _ascii_lines(data: bytes) -> list[str]:
    """Wireshark's ASCII view: lines split on LF (a CR before it dropped), non-printables as '.'."""
    lines = data.split(b"\n")
    if len(lines) > 1 and lines[-1] == b"":
        lines.pop()
    return [_printable(line[:-1] if line.endswith(b"\r") else line) for line in lines]


def hex_lines(data: bytes, offset: int = 0) -> list[str]:
    """Wireshark's hex dump: offset, 16 bytes in two groups of 8, then the same as ASCII."""
    out = []
    for at in range(0, len(data), HEX_WIDTH):
        row = data[at : at + HEX_WIDTH]
        hexes = " ".join(f"{b:02x}" for b in row[:8])
        if len(row) > 8:
            hexes += "  " + " ".join(f"{b:02x}" for b in row[8:])
        text = _dump_text(row[:8]) + (" " + _dump_text(row[8:]) if len(row) > 8 else "")
        out.append(f"{offset + at:08X}  {hexes:<48}  {text}")
    return out


def render(followed: Followed, mode: Mode) -> list[tuple[bool, str]]:
    """(from_client, line) pairs: `ascii` like Wireshark's (non-printables as '.', lines split on
    LF), `hex` like its hex dump with the stream offset of each side, `raw` one hex string a chunk.
    Labelled chunks (HTTP/2 frames, gRPC messages) start with their label; in ASCII, a chunk with a
    decoded form shows that form instead of its bytes."""
    if mode not in MODES:
        raise ValueError(f"unknown follow mode {mode!r} (known: {', '.join(MODES)})")
    out: list[tuple[bool, str]] = []
    offsets = {True: 0, False: 0}
    for chunk in followed.chunks:
        side = chunk.from_client
        if chunk.label:
            out.append((side, chunk.label))
        if mode == "raw":
            if chunk.data:
                out.append((side, chunk.data.hex()))
        elif mode == "hex":
            out += [(side, line) for line in hex_lines(chunk.data, offsets[side])]
        elif chunk.text:
            out += [(side, "  " + _visible(line)) for line in chunk.text.splitlines()]
        else:
            out += [(side, line) for line in _ascii_lines(chunk.data)]
        offsets[side] += len(chunk.data)
    return out
