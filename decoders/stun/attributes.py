"""STUN/TURN/ICE names: methods, classes, attributes and error codes (RFC 8489, 8656, 8445, 5780,
3489, and the vendor attributes browsers and Microsoft Teams send)."""

from __future__ import annotations

MAGIC_COOKIE = 0x2112A442
FINGERPRINT_XOR = 0x5354554E

METHODS = {
    0x001: "Binding",
    0x002: "SharedSecret",
    0x003: "Allocate",
    0x004: "Refresh",
    0x006: "Send",
    0x007: "Data",
    0x008: "CreatePermission",
    0x009: "ChannelBind",
    0x00A: "Connect",
    0x00B: "ConnectionBind",
    0x00C: "ConnectionAttempt",
    0x080: "GOOG-PING",
}
CLASSES = ("Request", "Indication", "Success Response", "Error Response")

XOR_ADDRESSES = {0x0012, 0x0016, 0x0020, 0x8020}
PLAIN_ADDRESSES = {0x0001, 0x0002, 0x0004, 0x0005, 0x000B, 0x0011, 0x8023, 0x802B, 0x802C}
TEXT = {0x0006, 0x0014, 0x0015, 0x8022, 0x8003}
ADDRESS_KEYS = {
    0x0020: "xor_mapped",
    0x8020: "xor_mapped",
    0x0012: "xor_peer",
    0x0016: "xor_relayed",
    0x0001: "mapped",
    0x0004: "source_address",
    0x0005: "changed_address",
    0x802B: "response_origin",
    0x802C: "other_address",
}
"""Address attributes kept in StunRecord.attributes, under these keys, as (ip, port). RFC 5780's
RESPONSE-ORIGIN and OTHER-ADDRESS (and RFC 3489's SOURCE-ADDRESS and CHANGED-ADDRESS before them)
are what NAT behaviour discovery reads: where a response came from, and the server's other
address to probe."""
CHANGE_IP, CHANGE_PORT = 0x04, 0x02
"""RFC 5780 section 7.2: the CHANGE-REQUEST flags (the last byte of its 32-bit value)."""
U32 = {0x000D: "lifetime", 0x0010: "bandwidth", 0x0024: "priority", 0x8027: "cache_timeout", 0x8025: "ttc"}

ATTRIBUTES = {
    0x0001: ("MAPPED-ADDRESS", "stun.att.mapped_address"),
    0x0002: ("RESPONSE-ADDRESS", "stun.att.response_address"),
    0x0003: ("CHANGE-REQUEST", "stun.att.change_request"),
    0x0004: ("SOURCE-ADDRESS", "stun.att.source_address"),
    0x0005: ("CHANGED-ADDRESS", "stun.att.changed_address"),
    0x0006: ("USERNAME", "stun.att.username"),
    0x0007: ("PASSWORD", "stun.att.password"),
    0x0008: ("MESSAGE-INTEGRITY", "stun.att.hmac"),
    0x0009: ("ERROR-CODE", "stun.att.error"),
    0x000A: ("UNKNOWN-ATTRIBUTES", "stun.att.unknown"),
    0x000B: ("REFLECTED-FROM", "stun.att.reflected_from"),
    0x000C: ("CHANNEL-NUMBER", "stun.att.channelnum"),
    0x000D: ("LIFETIME", "stun.att.lifetime"),
    0x000F: ("MAGIC-COOKIE", "stun.att.magic_cookie"),
    0x0010: ("BANDWIDTH", "stun.att.bandwidth"),
    0x0011: ("DESTINATION-ADDRESS", "stun.att.destination_address"),
    0x0012: ("XOR-PEER-ADDRESS", "stun.att.xor_peer_address"),
    0x0013: ("DATA", "stun.att.data"),
    0x0014: ("REALM", "stun.att.realm"),
    0x0015: ("NONCE", "stun.att.nonce"),
    0x0016: ("XOR-RELAYED-ADDRESS", "stun.att.xor_relayed_address"),
    0x0017: ("REQUESTED-ADDRESS-FAMILY", "stun.att.family"),
    0x0018: ("EVEN-PORT", "stun.att.even-port.reserve-next"),
    0x0019: ("REQUESTED-TRANSPORT", "stun.att.transp"),
    0x001A: ("DONT-FRAGMENT", "stun.att.dont_fragment"),
    0x001B: ("ACCESS-TOKEN", "stun.att.token"),
    0x001C: ("MESSAGE-INTEGRITY-SHA256", "stun.att.hmac_sha256"),
    0x001D: ("PASSWORD-ALGORITHM", "stun.att.pw_alg"),
    0x001E: ("USERHASH", "stun.att.userhash"),
    0x0020: ("XOR-MAPPED-ADDRESS", "stun.att.xor_mapped_address"),
    0x0022: ("RESERVATION-TOKEN", "stun.att.token"),
    0x0024: ("PRIORITY", "stun.att.priority"),
    0x0025: ("USE-CANDIDATE", "stun.att.use_candidate"),
    0x0026: ("PADDING", "stun.att.padding"),
    0x0027: ("RESPONSE-PORT", "stun.att.response_port"),
    0x002A: ("CONNECTION-ID", "stun.att.connection_id"),
    0x8000: ("ADDITIONAL-ADDRESS-FAMILY", "stun.att.family"),
    0x8001: ("ADDRESS-ERROR-CODE", "stun.att.error"),
    0x8002: ("PASSWORD-ALGORITHMS", "stun.att.pw_alg"),
    0x8003: ("ALTERNATE-DOMAIN", "stun.att.alternate_domain"),
    0x8004: ("ICMP", "stun.att.icmp"),
    0x8020: ("XOR-MAPPED-ADDRESS (draft)", "stun.att.xor_mapped_address"),
    0x8022: ("SOFTWARE", "stun.att.software"),
    0x8023: ("ALTERNATE-SERVER", "stun.att.alternate_server"),
    0x8025: ("TRANSACTION-TRANSMIT-COUNTER", "stun.att.ttc"),
    0x8027: ("CACHE-TIMEOUT", "stun.att.cache-timeout"),
    0x8028: ("FINGERPRINT", "stun.att.crc32"),
    0x8029: ("ICE-CONTROLLED", "stun.att.tie-breaker"),
    0x802A: ("ICE-CONTROLLING", "stun.att.tie-breaker"),
    0x802B: ("RESPONSE-ORIGIN", "stun.att.response_origin"),
    0x802C: ("OTHER-ADDRESS", "stun.att.other_address"),
    0x802D: ("ECN-CHECK", "stun.att.ecn_check"),
    0x802E: ("THIRD-PARTY-AUTHORIZATION", "stun.att.third_party_authorization"),
    0x8030: ("MOBILITY-TICKET", "stun.att.mobility_ticket"),
    0x8008: ("MS-VERSION", "stun.att.ms.version"),
    0x8050: ("MS-SEQUENCE-NUMBER", "stun.att.ms.sequence_number"),
    0x8054: ("MS-CANDIDATE-IDENTIFIER", "stun.att.ms.foundation"),
    0x8055: ("MS-SERVICE-QUALITY", "stun.att.ms.service_quality"),
    0x8056: ("MS-ALTERNATE-MAPPED-ADDRESS", "stun.att.ms.alternate_mapped_address"),
    0x8070: ("MS-IMPLEMENTATION-VERSION", "stun.att.ms.version.ice"),
    0xC057: ("GOOG-NETWORK-INFO", "stun.att.google.network_id"),
    0xC058: ("GOOG-LAST-ICE-CHECK-RECEIVED", "stun.att.google.last_ice_check_received"),
    0xC059: ("GOOG-MISC-INFO", "stun.att.google.misc_info"),
    0xC05A: ("GOOG-OBSOLETE-1", "stun.att.google.obsolete_1"),
    0xC05B: ("GOOG-CONNECTION-ID", "stun.att.google.connection_id"),
    0xC05C: ("GOOG-DELTA", "stun.att.google.delta"),
    0xC05D: ("GOOG-DELTA-ACK", "stun.att.google.delta_ack"),
    0xC060: ("GOOG-MESSAGE-INTEGRITY-32", "stun.att.google.hmac32"),
}

ERROR_REASONS = {
    300: "Try Alternate",
    400: "Bad Request",
    401: "Unauthenticated",
    403: "Forbidden",
    405: "Mobility Forbidden",
    420: "Unknown Attribute",
    437: "Allocation Mismatch",
    438: "Stale Nonce",
    440: "Address Family not Supported",
    441: "Wrong Credentials",
    442: "Unsupported Transport Protocol",
    443: "Peer Address Family Mismatch",
    446: "Connection Already Exists",
    447: "Connection Timeout or Failure",
    486: "Allocation Quota Reached",
    487: "Role Conflict",
    500: "Server Error",
    508: "Insufficient Capacity",
}


def method_of(msg_type: int) -> int:
    return (msg_type & 0x000F) | ((msg_type & 0x00E0) >> 1) | ((msg_type & 0x3E00) >> 2)


def class_of(msg_type: int) -> int:
    return ((msg_type & 0x0010) >> 4) | ((msg_type & 0x0100) >> 7)


def type_name(msg_type: int) -> str:
    method = METHODS.get(method_of(msg_type), f"Method 0x{method_of(msg_type):03x}")
    return f"{method} {CLASSES[class_of(msg_type)]}"
