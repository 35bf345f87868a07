"""What the HTTP/2 decoder tells analyses (the gRPC call table) besides the detail tree."""

from __future__ import annotations

from typing import NamedTuple

from protoscope.decoders.protobuf.schema import content_of

from .header_block import Header


class FrameRecord(NamedTuple):
    """One HTTP/2 frame, for analyses (carried as `Pdu.record`). NamedTuples: a capture makes one
    per frame, and they are several times cheaper to make than frozen dataclasses."""

    type: int
    flags: int
    stream_id: int
    length: int
    headers: tuple[Header, ...] | None = None
    """The decoded header block this frame completed (HEADERS/CONTINUATION/PUSH_PROMISE)."""
    block_stream: int = 0
    """The stream the header block belongs to (the promised stream for PUSH_PROMISE)."""
    end_stream: bool = False
    """END_STREAM on this frame, or on the HEADERS frame whose block this frame completed."""
    error_code: int | None = None
    last_stream_id: int | None = None
    http1: bool = False
    """The headers of an HTTP/1.1 gRPC-Web message, posing as a HEADERS frame for the calls
    analysis: not an HTTP/2 frame on the wire."""
    from_client: bool | None = None
    """Whether the HTTP/2 client sent this frame, as the connection has shown it (sides.py); None
    while it has not (then the flow's orientation is all there is to go by)."""


class MessageRecord(NamedTuple):
    """One gRPC message, for analyses (carried as `Pdu.record`)."""

    stream_id: int
    compressed: bool
    size: int
    """Bytes on the wire after the 5-byte prefix."""
    reading: object
    """The decoded content as the decoder left it: `content` gives it as data."""
    type_name: str | None
    """The protobuf message type used, when a schema gave one."""
    frames: tuple[int, ...]
    trailers: tuple[tuple[str, str], ...] | None = None
    """gRPC-Web: the trailers frame (flag 0x80) of a response body."""
    data: bytes | None = None
    """The message bytes (inflated when compressed), None when they could not be inflated."""
    from_client: bool | None = None
    """As FrameRecord.from_client."""

    @property
    def content(self) -> object:
        """Decoded content: MessageToDict with a schema, the schema-less reading without (made
        from the reading now if the decoder left it for later)."""
        return content_of(self.reading)
