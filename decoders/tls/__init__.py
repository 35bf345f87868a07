"""TLS records, handshakes and decryption from key logs (NSS key log format).

keylog.py (the secrets), suites.py (the cipher suite table), crypto.py (PRF, HKDF-Expand-Label,
record protection, exporters), connection.py (one connection's key schedule, shared with DTLS),
replay.py (DTLS's replay window), handshake.py (hello/certificate parsers, shared with DTLS),
decoder.py (the TCP stream decoder).
"""

from .decoder import TlsDecoder

__all__ = ["TlsDecoder"]
