"""DTLS 1.0/1.2 records and handshakes (with fragment reassembly), DTLS 1.3 unified headers."""

from .decoder import DtlsDecoder

__all__ = ["DtlsDecoder"]
