"""The fields the TLS decoder emits, named as Wireshark's packet-tls.c registers them (certificate
facts under x509.*, as the DTLS decoder shows them)."""

from __future__ import annotations

from protoscope.decoders.api import FieldInfo
from protoscope.decoders.dtls.names import ALERT_LEVELS, ALERTS, CONTENT_TYPES, EXTENSIONS, HANDSHAKE_TYPES

from .handshake import TLS_VERSIONS
from .suites import NAMES as SUITE_NAMES

FIELDS: tuple[FieldInfo, ...] = (
    FieldInfo("tls", "Transport Layer Security", "protocol"),
    FieldInfo("tls.record", "Record Layer", "string", "One record: its version and content type"),
    FieldInfo("tls.record.content_type", "Content Type", "uint", strings=CONTENT_TYPES),
    FieldInfo("tls.record.opaque_type", "Opaque Type", "uint", "TLS 1.3: always 23", strings=CONTENT_TYPES),
    FieldInfo("tls.record.version", "Version", "uint", strings=TLS_VERSIONS, base="hex", digits=4),
    FieldInfo("tls.record.length", "Length", "uint"),
    FieldInfo(
        "tls.record.sequence_number", "Sequence Number", "uint", "The implicit one, of a decrypted record"
    ),
    FieldInfo("tls.app_data", "Encrypted Application Data", "bytes"),
    FieldInfo("tls.app_data_proto", "Application Data Protocol", "string", "Where the plaintext went"),
    FieldInfo("tls.decrypted", "Decrypted", "uint", "Plaintext bytes of a record opened with the key log"),
    FieldInfo("tls.change_cipher_spec", "Change Cipher Spec Message", "none"),
    FieldInfo("tls.handshake", "Handshake Protocol", "string", "The handshake message's type"),
    FieldInfo("tls.handshake.type", "Handshake Type", "uint", strings=HANDSHAKE_TYPES),
    FieldInfo("tls.handshake.length", "Length", "uint"),
    FieldInfo("tls.handshake.reassembled", "Reassembled", "string", "A message that spanned records"),
    FieldInfo("tls.handshake.version", "Version", "uint", strings=TLS_VERSIONS, base="hex", digits=4),
    FieldInfo("tls.handshake.random", "Random", "bytes"),
    FieldInfo("tls.handshake.session_id", "Session ID", "bytes"),
    FieldInfo("tls.handshake.ciphersuites", "Cipher Suites", "string", "Those the client offers"),
    FieldInfo("tls.handshake.ciphersuite", "Cipher Suite", "uint", strings=SUITE_NAMES, base="hex", digits=4),
    FieldInfo("tls.handshake.extension", "Extension", "string", "One extension: name and data"),
    FieldInfo("tls.handshake.extension.type", "Type", "uint", strings=EXTENSIONS),
    FieldInfo("tls.handshake.extension.len", "Length", "uint"),
    FieldInfo("tls.handshake.extensions_server_name", "Server Name", "string"),
    FieldInfo("tls.handshake.extensions_alpn_str", "ALPN Next Protocol", "string"),
    FieldInfo(
        "tls.handshake.extensions.supported_version",
        "Supported Version",
        "uint",
        strings=TLS_VERSIONS,
        base="hex",
        digits=4,
    ),
    FieldInfo("tls.handshake.certificate", "Certificate", "string", "The certificate's subject"),
    FieldInfo(
        "tls.handshake.key_update",
        "Key Update Request",
        "uint",
        strings={0: "update_not_requested", 1: "update_requested"},
    ),
    FieldInfo("tls.alert_message.level", "Level", "uint", strings=ALERT_LEVELS),
    FieldInfo("tls.alert_message.desc", "Description", "uint", strings=ALERTS),
    FieldInfo("x509", "X.509 certificate", "protocol", "Facts of a certificate in a TLS handshake"),
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
