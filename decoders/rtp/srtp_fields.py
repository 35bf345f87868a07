"""The fields of decrypted SRTP, beside RTP's (fields.py): Wireshark's names where it has them
(packet-rtp.c registers srtp.mki and srtp.auth_tag), and the rollover counter the packet
authenticated with. SRTCP's trailer fields (srtcp.*) are declared in fields.py already."""

from __future__ import annotations

from protoscope.decoders.api import FieldInfo

SRTP_FIELDS: tuple[FieldInfo, ...] = (
    FieldInfo("srtp", "Secure Real-time Transport Protocol", "protocol"),
    FieldInfo("srtp.mki", "SRTP MKI", "bytes", "Master key identifier, hex"),
    FieldInfo("srtp.auth_tag", "SRTP Auth Tag", "bytes", "Authenticated: the payload shown is the plaintext"),
    FieldInfo("srtp.roc", "SRTP Rollover Counter", "uint", "The ROC the packet authenticated with"),
)
