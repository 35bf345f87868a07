"""The numbers of SCTP (RFC 9260 and its extensions), DCEP (RFC 8832) and WebRTC's PPIDs (RFC 8831),
with the names the RFCs and Wireshark's packet-sctp.c / packet-rtcdc.c give them."""

from __future__ import annotations

DATA, INIT, INIT_ACK, SACK, HEARTBEAT, HEARTBEAT_ACK, ABORT = 0, 1, 2, 3, 4, 5, 6
SHUTDOWN, SHUTDOWN_ACK, ERROR, COOKIE_ECHO, COOKIE_ACK = 7, 8, 9, 10, 11
ECNE, CWR, SHUTDOWN_COMPLETE, AUTH, NR_SACK = 12, 13, 14, 15, 16
I_DATA, ASCONF_ACK, RE_CONFIG, PAD, FORWARD_TSN, ASCONF, I_FORWARD_TSN = 64, 128, 130, 132, 192, 193, 194

CHUNK_TYPES: dict[int, str] = {
    DATA: "DATA",
    INIT: "INIT",
    INIT_ACK: "INIT_ACK",
    SACK: "SACK",
    HEARTBEAT: "HEARTBEAT",
    HEARTBEAT_ACK: "HEARTBEAT_ACK",
    ABORT: "ABORT",
    SHUTDOWN: "SHUTDOWN",
    SHUTDOWN_ACK: "SHUTDOWN_ACK",
    ERROR: "ERROR",
    COOKIE_ECHO: "COOKIE_ECHO",
    COOKIE_ACK: "COOKIE_ACK",
    ECNE: "ECNE",
    CWR: "CWR",
    SHUTDOWN_COMPLETE: "SHUTDOWN_COMPLETE",
    AUTH: "AUTH",
    NR_SACK: "NR-SACK",
    I_DATA: "I_DATA",
    ASCONF_ACK: "ASCONF_ACK",
    RE_CONFIG: "RE_CONFIG",
    PAD: "PAD",
    FORWARD_TSN: "FORWARD_TSN",
    ASCONF: "ASCONF",
    I_FORWARD_TSN: "I_FORWARD_TSN",
}

UNKNOWN_ACTIONS: dict[int, str] = {
    0: "stop processing this packet and discard it",
    1: "stop processing this packet, discard it and report it in an ERROR",
    2: "skip this chunk and continue processing",
    3: "skip this chunk, continue processing and report it in an ERROR",
}
"""RFC 9260 section 3.2: what the two high bits of an unknown chunk (or parameter) type tell the
receiver to do. For parameters, "packet" reads "chunk"."""

# -- parameters (INIT, INIT-ACK, HEARTBEAT, RE-CONFIG, ASCONF) -----------------------------------

HEARTBEAT_INFO, IPV4, IPV6, STATE_COOKIE, UNRECOGNIZED_PARAMETER = 1, 5, 6, 7, 8
COOKIE_PRESERVATIVE, HOSTNAME, SUPPORTED_ADDRESS_TYPES = 9, 11, 12
OUTGOING_SSN_RESET, INCOMING_SSN_RESET, SSN_TSN_RESET, RECONFIG_RESPONSE = 13, 14, 15, 16
ADD_OUTGOING_STREAMS, ADD_INCOMING_STREAMS = 17, 18
ECN_CAPABLE, ZERO_CHECKSUM_ACCEPTABLE, RANDOM, CHUNK_LIST, HMAC_ALGO, PADDING = (
    0x8000,
    0x8001,
    0x8002,
    0x8003,
    0x8004,
    0x8005,
)
SUPPORTED_EXTENSIONS, FORWARD_TSN_SUPPORTED, ADAPTATION_LAYER = 0x8008, 0xC000, 0xC006

PARAMETER_TYPES: dict[int, str] = {
    HEARTBEAT_INFO: "Heartbeat info",
    IPV4: "IPv4 address",
    IPV6: "IPv6 address",
    STATE_COOKIE: "State cookie",
    UNRECOGNIZED_PARAMETER: "Unrecognized parameter",
    COOKIE_PRESERVATIVE: "Cookie preservative",
    HOSTNAME: "Hostname",
    SUPPORTED_ADDRESS_TYPES: "Supported address types",
    OUTGOING_SSN_RESET: "Outgoing SSN reset request",
    INCOMING_SSN_RESET: "Incoming SSN reset request",
    SSN_TSN_RESET: "SSN/TSN reset request",
    RECONFIG_RESPONSE: "Re-configuration response",
    ADD_OUTGOING_STREAMS: "Add outgoing streams request",
    ADD_INCOMING_STREAMS: "Add incoming streams request",
    ECN_CAPABLE: "ECN",
    ZERO_CHECKSUM_ACCEPTABLE: "Zero checksum acceptable",
    RANDOM: "Random",
    CHUNK_LIST: "Chunk list",
    HMAC_ALGO: "Requested HMAC algorithm",
    PADDING: "Padding",
    SUPPORTED_EXTENSIONS: "Supported extensions",
    FORWARD_TSN_SUPPORTED: "Forward TSN supported",
    0xC001: "Add IP address",
    0xC002: "Delete IP address",
    0xC003: "Error cause indication",
    0xC004: "Set primary address",
    0xC005: "Success indication",
    ADAPTATION_LAYER: "Adaptation layer indication",
}

RECONFIG_RESULTS: dict[int, str] = {
    0: "Success - Nothing to do",
    1: "Success - Performed",
    2: "Denied",
    3: "Error - Wrong SSN",
    4: "Error - Request already in progress",
    5: "Error - Bad Sequence Number",
    6: "In progress",
}
"""RFC 6525 section 4.4 (6: RFC 8260 errata, used by usrsctp and aiortc)."""

# -- error causes (ABORT, ERROR) ---------------------------------------------------------------

INVALID_STREAM, MISSING_PARAMETER, STALE_COOKIE, NO_USER_DATA, USER_INITIATED_ABORT = 1, 2, 3, 9, 12
PROTOCOL_VIOLATION = 13

CAUSES: dict[int, str] = {
    INVALID_STREAM: "Invalid stream identifier",
    MISSING_PARAMETER: "Missing mandatory parameter",
    STALE_COOKIE: "Stale cookie error",
    4: "Out of resource",
    5: "Unresolvable address",
    6: "Unrecognized chunk type",
    7: "Invalid mandatory parameter",
    8: "Unrecognized parameters",
    NO_USER_DATA: "No user data",
    10: "Cookie received while shutting down",
    11: "Restart of an association with new addresses",
    USER_INITIATED_ABORT: "User initiated abort",
    PROTOCOL_VIOLATION: "Protocol violation",
    0x00A0: "Request to delete last remaining IP address",
    0x00A1: "Operation refused due to resource shortage",
    0x00A2: "Request to delete source IP address",
    0x00A3: "Association aborted due to illegal ASCONF-ACK",
    0x00A4: "Request refused - no authorization",
    0x0105: "Unsupported HMAC identifier",
}

# -- WebRTC: PPIDs (RFC 8831 section 8, IANA) and DCEP (RFC 8832) -------------------------------

PPID_DCEP, PPID_STRING, PPID_BINARY_PARTIAL, PPID_BINARY, PPID_STRING_PARTIAL = 50, 51, 52, 53, 54
PPID_STRING_EMPTY, PPID_BINARY_EMPTY = 56, 57

PPIDS: dict[int, str] = {
    PPID_DCEP: "WebRTC DCEP",
    PPID_STRING: "WebRTC String",
    PPID_BINARY_PARTIAL: "WebRTC Binary Partial (deprecated)",
    PPID_BINARY: "WebRTC Binary",
    PPID_STRING_PARTIAL: "WebRTC String Partial (deprecated)",
    PPID_STRING_EMPTY: "WebRTC String Empty",
    PPID_BINARY_EMPTY: "WebRTC Binary Empty",
}
WEBRTC_PPIDS = frozenset(PPIDS)
PPID_NAMES: dict[int, str] = {
    0: "Not specified",
    1: "IUA",
    2: "M2UA",
    3: "M3UA",
    4: "SUA",
    5: "M2PA",
    18: "S1AP",
    27: "X2AP",
    46: "Diameter",
    47: "Diameter DTLS",
    60: "NGAP",
    61: "XnAP",
    62: "F1AP",
    **PPIDS,
}
"""The names of the IANA payload protocol identifiers a capture is likely to show (for the detail
tree; the decoder treats only WebRTC's specially)."""
TEXT_PPIDS = frozenset({PPID_STRING, PPID_STRING_PARTIAL, PPID_STRING_EMPTY})
EMPTY_PPIDS = frozenset({PPID_STRING_EMPTY, PPID_BINARY_EMPTY})
"""RFC 8831 section 6.6: an empty message is sent as one byte (0x00) with these PPIDs, since SCTP
cannot carry an empty user message."""

DATA_CHANNEL_ACK, DATA_CHANNEL_OPEN = 0x02, 0x03
DCEP_TYPES: dict[int, str] = {DATA_CHANNEL_ACK: "DATA_CHANNEL_ACK", DATA_CHANNEL_OPEN: "DATA_CHANNEL_OPEN"}

RELIABLE, REXMIT, TIMED = 0x00, 0x01, 0x02
UNORDERED = 0x80
CHANNEL_TYPES: dict[int, str] = {
    0x00: "DATA_CHANNEL_RELIABLE",
    0x80: "DATA_CHANNEL_RELIABLE_UNORDERED",
    0x01: "DATA_CHANNEL_PARTIAL_RELIABLE_REXMIT",
    0x81: "DATA_CHANNEL_PARTIAL_RELIABLE_REXMIT_UNORDERED",
    0x02: "DATA_CHANNEL_PARTIAL_RELIABLE_TIMED",
    0x82: "DATA_CHANNEL_PARTIAL_RELIABLE_TIMED_UNORDERED",
}


def chunk_name(ctype: int) -> str:
    return CHUNK_TYPES.get(ctype, f"Unknown({ctype})")
