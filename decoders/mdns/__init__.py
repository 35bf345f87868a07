"""Multicast DNS (RFC 6762) messages, for the names WebRTC hides host candidates behind
("<uuid>.local", draft-ietf-mmusic-mdns-ice-candidates): a response's A and AAAA records say which
address a candidate's name stood for."""

from .decoder import MdnsDecoder
from .message import DnsMessage, MdnsAnswers, ResourceRecord, parse_message

__all__ = ["DnsMessage", "MdnsAnswers", "MdnsDecoder", "ResourceRecord", "parse_message"]
