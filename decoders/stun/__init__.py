"""STUN (RFC 8489, classic 3489), TURN (RFC 8656) and ICE (RFC 8445) attributes, RFC 7983 demux."""

from .decoder import StunDecoder

__all__ = ["StunDecoder"]
