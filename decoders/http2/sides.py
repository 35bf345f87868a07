"""Which endpoint of an HTTP/2 connection is the client, from what HTTP/2 itself shows.

The flow's orientation (SYN, then well-known ports, then the first packet) is only a guess when a
capture starts mid-connection: a server that was sending when the capture began looks like the
client. HTTP/2 says better (RFC 9113): the client sends the connection preface and the request
pseudo-headers (`:method`, `:path`, ...), the server sends `:status` and PUSH_PROMISE, only the
server sends on even-numbered (pushed) streams, GOAWAY names the last stream its sender processed
among those its peer initiated (odd ones are the client's), and in gRPC only the server sends a
header block after its own DATA on a stream (trailers). The first of these a connection shows
decides; until then the flow's orientation stands.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .header_block import Header

REQUEST_PSEUDO = frozenset({":method", ":path", ":scheme", ":authority", ":protocol"})
RESPONSE_PSEUDO = frozenset({":status"})


def block_from_client(headers: Iterable[Header]) -> bool | None:
    """True when a HEADERS block is a request (so its sender is the client), False when it is a
    response, None when its pseudo-headers (if any) could not be decoded."""
    for h in headers:
        if h.known and h.name in REQUEST_PSEUDO:
            return True
        if h.known and h.name in RESPONSE_PSEUDO:
            return False
    return None


@dataclass(slots=True)
class Sides:
    """One connection's client, as a direction of its flow: 0 is the side the flow calls its
    client (`FlowContext.from_client`), 1 the other."""

    client: int | None = None
    """None until the connection shows it."""

    def learn(self, side: int, sender_is_client: bool) -> bool:
        """Record what a frame from `side` showed; True when this decided the client just now."""
        if self.client is not None:
            return False
        self.client = side if sender_is_client else 1 - side
        return True

    def from_client(self, side: int) -> bool | None:
        """Whether `side` is the client, None while the connection has not shown it."""
        return None if self.client is None else side == self.client
