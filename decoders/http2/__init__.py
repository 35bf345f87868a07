"""HTTP/2 (RFC 9113) with HPACK (RFC 7541); carries gRPC."""

from .decoder import Http2Decoder

__all__ = ["Http2Decoder"]
