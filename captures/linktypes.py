"""Link-layer header types (tcpdump.org LINKTYPE_* values) the fast path understands."""

NULL = 0
"""BSD loopback: 4-byte address family in the capturing host's byte order."""
ETHERNET = 1
RAW_OPENBSD = 12
RAW = 101
LOOP = 108
"""OpenBSD loopback: like NULL but the family is big-endian."""
LINUX_SLL = 113
IPV4 = 228
IPV6 = 229
LINUX_SLL2 = 276

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
VLAN_TPIDS = frozenset({0x8100, 0x88A8, 0x9100, 0x9200})
"""802.1Q and 802.1ad (QinQ) tag protocol identifiers, plus the pre-standard QinQ ones."""

AF_INET = 2
AF_INET6 = frozenset({10, 24, 28, 30})
"""AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD and macOS."""

LINK_NAMES = {
    NULL: "null",
    ETHERNET: "eth",
    RAW_OPENBSD: "raw",
    RAW: "raw",
    LOOP: "null",
    LINUX_SLL: "sll",
    IPV4: "raw",
    IPV6: "raw",
    LINUX_SLL2: "sll",
}
"""Protocol names as Wireshark's frame.protocols spells them."""

IPPROTO_TCP = 6
IPPROTO_UDP = 17

GTPU_PORT = 2152
"""GTP-U (3GPP TS 29.281): mobile networks carry user IP packets in UDP on this port."""
