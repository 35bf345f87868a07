"""The fields the SDP decoder emits: one per line, named as Wireshark's packet-sdp.c names them."""

from __future__ import annotations

from protoscope.decoders.api import FieldInfo

FIELDS: tuple[FieldInfo, ...] = (
    FieldInfo("sdp", "Session Description Protocol", "protocol"),
    FieldInfo("sdp.version", "Session Description Protocol Version (v)", "string"),
    FieldInfo("sdp.owner", "Owner/Creator, Session Id (o)", "string"),
    FieldInfo("sdp.session_name", "Session Name (s)", "string"),
    FieldInfo("sdp.connection_info", "Connection Information (c)", "string"),
    FieldInfo("sdp.time", "Time Description, active time (t)", "string"),
    FieldInfo("sdp.bandwidth", "Bandwidth Information (b)", "string"),
    FieldInfo("sdp.session_attr", "Session Attribute (a)", "string", "An a= line before the first m= line"),
    FieldInfo("sdp.media", "Media Description, name and address (m)", "string"),
    FieldInfo("sdp.media_attr", "Media Attribute (a)", "string", "An a= line of a media description"),
    FieldInfo("sdp.line", "Line", "string", "A line of another type (its text)"),
    FieldInfo(
        "sdp.candidate", "Trickled ICE candidate", "string", "A candidate sent after the SDP (RFC 8838)"
    ),
    FieldInfo("sdp.end_of_candidates", "End of candidates", "bool", "The sender gathered all its candidates"),
    FieldInfo("sdp.mid", "Media ID (sdpMid)", "string", "The media section a trickled candidate is for"),
    FieldInfo("sdp.mline_index", "Media line index (sdpMLineIndex)", "uint"),
    FieldInfo("sdp.ice_ufrag", "ICE username fragment", "string", "Of trickled candidates"),
)
