"""The fields the RTP, RTCP and SRTCP decoders emit, named as Wireshark's packet-rtp.c and
packet-rtcp.c register them. SSRCs are shown in hex, as Wireshark shows them."""

from __future__ import annotations

from protoscope.decoders.api import FieldInfo

from .packets import RTCP_TYPES, STATIC_NAMES

RTP_FIELDS: tuple[FieldInfo, ...] = (
    FieldInfo("rtp", "Real-Time Transport Protocol", "protocol"),
    FieldInfo("rtp.version", "Version", "uint"),
    FieldInfo("rtp.padding", "Padding", "bool"),
    FieldInfo("rtp.padding.count", "Padding count", "uint"),
    FieldInfo("rtp.ext", "Extension", "bool"),
    FieldInfo("rtp.cc", "Contributing source identifiers count", "uint"),
    FieldInfo("rtp.marker", "Marker", "bool"),
    FieldInfo("rtp.p_type", "Payload type", "uint", strings=STATIC_NAMES),
    FieldInfo("rtp.seq", "Sequence number", "uint"),
    FieldInfo("rtp.timestamp", "Timestamp", "uint"),
    FieldInfo("rtp.ssrc", "Synchronization Source identifier", "uint", base="hex", digits=8),
    FieldInfo("rtp.csrc.item", "CSRC item", "uint", base="hex", digits=8),
    FieldInfo("rtp.ext.profile", "Defined by profile", "uint", base="hex", digits=4),
    FieldInfo("rtp.ext.len", "Extension length", "uint"),
    FieldInfo("rtp.ext.rfc5285.id", "Identifier", "uint", "RFC 8285 header extension element"),
    FieldInfo("rtp.ext.rfc5285.len", "Length", "uint"),
    FieldInfo("rtp.ext.rfc5285.data", "Extension Data", "bytes"),
    FieldInfo("rtp.payload", "Payload", "string", "Its size"),
)

RTCP_FIELDS: tuple[FieldInfo, ...] = (
    FieldInfo("rtcp", "Real-time Transport Control Protocol", "protocol"),
    FieldInfo("rtcp.version", "Version", "uint"),
    FieldInfo("rtcp.padding", "Padding", "bool"),
    FieldInfo("rtcp.rc", "Reception report count", "uint"),
    FieldInfo("rtcp.fmt", "Feedback message type (FMT)", "uint"),
    FieldInfo("rtcp.fb", "Feedback message", "string"),
    FieldInfo("rtcp.pt", "Packet type", "uint", strings=RTCP_TYPES),
    FieldInfo("rtcp.length", "Length", "uint", "In 32-bit words minus one"),
    FieldInfo("rtcp.senderssrc", "Sender SSRC", "uint", base="hex", digits=8),
    FieldInfo("rtcp.media_ssrc", "Media source SSRC", "uint", base="hex", digits=8),
    FieldInfo("rtcp.timestamp.ntp.msw", "Timestamp, MSW", "uint"),
    FieldInfo("rtcp.timestamp.ntp.lsw", "Timestamp, LSW", "uint"),
    FieldInfo("rtcp.timestamp.rtp", "RTP timestamp", "uint"),
    FieldInfo("rtcp.sender.packetcount", "Sender's packet count", "uint"),
    FieldInfo("rtcp.sender.octetcount", "Sender's octet count", "uint"),
    FieldInfo("rtcp.ssrc.identifier", "Identifier", "uint", base="hex", digits=8),
    FieldInfo("rtcp.ssrc.fraction", "Fraction lost", "uint"),
    FieldInfo("rtcp.ssrc.cum_nr", "Cumulative number of packets lost", "int"),
    FieldInfo("rtcp.ssrc.ext_high", "Extended highest sequence number received", "uint"),
    FieldInfo("rtcp.ssrc.jitter", "Interarrival jitter", "uint"),
    FieldInfo("rtcp.ssrc.lsr", "Last SR timestamp", "uint"),
    FieldInfo("rtcp.ssrc.dlsr", "Delay since last SR timestamp", "uint"),
    FieldInfo("rtcp.encrypted", "Encrypted RTCP payload", "string", "Its size"),
    FieldInfo("srtcp", "Secure RTCP", "protocol"),
    FieldInfo("srtcp.e", "SRTCP E flag", "bool", "The payload is encrypted"),
    FieldInfo("srtcp.index", "SRTCP Index", "uint"),
    FieldInfo("srtcp.mki", "SRTCP MKI", "bytes", "Master key identifier, hex"),
    FieldInfo("srtcp.auth_tag", "SRTCP Auth Tag", "bytes"),
)

FIELDS: tuple[FieldInfo, ...] = RTP_FIELDS + RTCP_FIELDS
