"""HTTP/1.x with WebSocket and h2c upgrades, and SIP: the carriers of signaling (SDP)."""

from .decoder import HttpDecoder, SipDecoder

__all__ = ["HttpDecoder", "SipDecoder"]
