"""A gRPC call's path (PROTOCOL-HTTP2.md "Path": `/` Service-Name `/` method name) in its request
headers, even when the capture began after the HPACK entry that names the header was sent."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from protoscope.decoders.http2.header_block import Header

GRPC_PATH = re.compile(r"/(?:[A-Za-z_][A-Za-z0-9_]*\.)*[A-Za-z_][A-Za-z0-9_]*/[A-Za-z_][A-Za-z0-9_]*")
"""`/package.Service/Method`: protobuf identifiers, the package optional."""

PathFrom = Literal["header", "value"]


def request_path(headers: Iterable[Header]) -> tuple[str | None, PathFrom | None]:
    """The path and where it came from: the first `:path` header ("header"), else the first header
    whose name referred to an HPACK entry from before the capture and whose value reads like a gRPC
    path ("value"), else (None, None)."""
    guess = None
    for h in headers:
        if h.name == ":path" and h.known:
            return h.value, "header"
        if guess is None and not h.known and h.representation != "indexed" and GRPC_PATH.fullmatch(h.value):
            guess = h.value
    return (guess, "value") if guess is not None else (None, None)
