"""ICMP (RFC 792) and ICMPv6 (RFC 4443) messages, above all the errors that quote a UDP datagram:
what analyses learn when a connectivity check or a media packet hit a closed port or a dead route."""

from .decoder import IcmpDecoder
from .message import IcmpError, describe, icmp_error

__all__ = ["IcmpDecoder", "IcmpError", "describe", "icmp_error"]
