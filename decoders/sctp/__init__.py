"""SCTP (RFC 9260) with its extensions, user messages reassembled, and WebRTC data channels:
DCEP (RFC 8832) and messages by PPID (RFC 8831)."""

from .decoder import SctpDecoder

__all__ = ["SctpDecoder"]
