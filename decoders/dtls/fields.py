"""The fields the DTLS decoder emits, named as Wireshark's packet-dtls.c and packet-x509af.c
register them (the certificate's facts are ours under x509.*)."""

from __future__ import annotations

from protoscope.decoders.api import FieldInfo

from .names import ALERT_LEVELS, ALERTS, CONTENT_TYPES, EXTENSIONS, HANDSHAKE_TYPES, VERSIONS

FIELDS: tuple[FieldInfo, ...] = (
    FieldInfo("dtls", "Datagram Transport Layer Security", "protocol"),
    FieldInfo("dtls.record", "Record Layer", "string", "One record: its version and content type"),
    FieldInfo("dtls.record.content_type", "Content Type", "uint", strings=CONTENT_TYPES),
    FieldInfo("dtls.record.version", "Version", "uint", strings=VERSIONS, base="hex", digits=4),
    FieldInfo("dtls.record.epoch", "Epoch", "uint"),
    FieldInfo("dtls.record.epoch_bits", "Epoch bits", "uint", "DTLS 1.3 unified header"),
    FieldInfo("dtls.record.sequence_number", "Sequence Number", "uint"),
    FieldInfo("dtls.record.connection_id", "Connection ID", "bytes"),
    FieldInfo("dtls.record.length", "Length", "uint"),
    FieldInfo("dtls.unified_header", "Unified header", "string", "DTLS 1.3 first byte, hex"),
    FieldInfo("dtls.retransmission", "Retransmission", "bool", "A record seen before"),
    FieldInfo("dtls.handshake", "Handshake Protocol", "string", "The handshake message's type"),
    FieldInfo("dtls.handshake.type", "Handshake Type", "uint", strings=HANDSHAKE_TYPES),
    FieldInfo("dtls.handshake.length", "Length", "uint"),
    FieldInfo("dtls.handshake.message_seq", "Message Sequence", "uint"),
    FieldInfo("dtls.handshake.fragment_offset", "Fragment Offset", "uint"),
    FieldInfo("dtls.handshake.fragment_length", "Fragment Length", "uint"),
    FieldInfo("dtls.handshake.reassembled", "Reassembled", "string", "Size of the reassembled message"),
    FieldInfo("dtls.handshake.version", "Version", "uint", strings=VERSIONS, base="hex", digits=4),
    FieldInfo("dtls.handshake.random", "Random", "bytes"),
    FieldInfo("dtls.handshake.session_id", "Session ID", "bytes"),
    FieldInfo("dtls.handshake.cookie", "Cookie", "bytes"),
    FieldInfo("dtls.handshake.ciphersuites", "Cipher Suites", "string", "Those the client offers"),
    FieldInfo("dtls.handshake.ciphersuite", "Cipher Suite", "string", "The one the server chose"),
    FieldInfo("dtls.handshake.extension", "Extension", "string", "One extension: name and data"),
    FieldInfo("dtls.handshake.extension.type", "Type", "uint", strings=EXTENSIONS),
    FieldInfo("dtls.handshake.extension.len", "Length", "uint"),
    FieldInfo("dtls.handshake.extensions_server_name", "Server Name", "string"),
    FieldInfo("dtls.handshake.extensions_alpn_str", "ALPN Next Protocol", "string"),
    FieldInfo(
        "dtls.handshake.extensions.supported_version",
        "Supported Version",
        "uint",
        strings=VERSIONS,
        base="hex",
        digits=4,
    ),
    FieldInfo("dtls.handshake.certificate", "Certificate", "string", "The certificate's subject"),
    FieldInfo("dtls.decrypted", "Decrypted", "uint", "Plaintext bytes of a record opened with the key log"),
    FieldInfo("dtls.app_data_proto", "Application Data Protocol", "string", "Where the plaintext went"),
    FieldInfo("dtls.replay", "Replay", "bool", "A record number opened before"),
    FieldInfo("dtls.alert_message.level", "Level", "uint", strings=ALERT_LEVELS),
    FieldInfo("dtls.alert_message.desc", "Description", "uint", strings=ALERTS),
    FieldInfo("x509", "X.509 certificate", "protocol", "Facts of a certificate in a DTLS handshake"),
    FieldInfo("x509.subject", "Subject", "string", "RFC 4514 text"),
    FieldInfo("x509.issuer", "Issuer", "string", "RFC 4514 text"),
    FieldInfo("x509.not_before", "Not Before", "string", "ISO 8601"),
    FieldInfo("x509.not_after", "Not After", "string", "ISO 8601"),
    FieldInfo("x509.sha-1", "SHA-1 fingerprint", "string"),
    FieldInfo("x509.sha-256", "SHA-256 fingerprint", "string", "As SDP a=fingerprint shows it"),
    FieldInfo("x509.sha256", "SHA-256 fingerprint", "string", "The same as x509.sha-256"),
    FieldInfo("x509.sha-384", "SHA-384 fingerprint", "string"),
    FieldInfo("x509.sha-512", "SHA-512 fingerprint", "string"),
)
