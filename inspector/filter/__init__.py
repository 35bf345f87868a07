"""Display filters in Wireshark's language (as tshark 4.0 reads it), parsed by a real parser (no
eval), checked against the field registry, and applied columnar where the index allows.

    grpc.status != 0              stun.type == 0x0101            ip.addr == 10.0.0.0/8 && udp
    rtp.ssrc == 0x1234            frame contains "grpc"          sdp.media matches "^audio"
    tcp.port in {80, 443, 8000..8100}                            eth.addr[0:3] == 00:1a:2b
    tcp.flags.syn == 1 && !tcp.flags.ack                         tcp.flags & 0x02
    all ip.addr == 10.0.0.1       ip.addr === 10.0.0.1           ip.addr !== 10.0.0.1

Semantics, as tshark 4.0's (each checked by tests/inspector/test_filter_oracle.py):

* A bare name tests presence (a protocol or a field: `tcp.flags.syn` is true on every TCP packet).
  A name no one declared is an error that names the closest known ones.
* A field with several values (ip.addr, tcp.port, a repeated header) matches `==`, `>`, `in`,
  `contains`, `matches` and `&` when any value does (`any` says so explicitly; `all` asks it of
  every value); `!=` when none equals (Wireshark's "all not equal"); `===` when all equal; `!==`
  and `~=` when one differs. A test on an absent field is false, `!=` included.
* `matches` is a PCRE in Wireshark, case-insensitive by default; a leading `(?-i)` makes it
  case-sensitive. Python's `re` runs it here (the common subset of PCRE).
* Integers read as decimal, 0x hex, 0 octal, or by their value name (`http2.type == HEADERS`);
  addresses as Wireshark writes them, with CIDR for networks (`ip.addr == 10.0.0.0/8`,
  `ipv6.addr == 2001:db8::/32`); bytes as `0a:0b:0c` (also `-` or `.` separated, or bare hex).
* Slices as Wireshark's: `[i:n]` n bytes from offset i, `[i-j]` offsets i to j inclusive, `[i]`
  one byte, `[:n]`, `[i:]`, negative offsets from the end, several ranges joined with commas.
  They apply to byte-like fields (frame, protocols, addresses, bytes and strings).
* Sets: `{80, 443, 8000..8100}`; the space-separated form of Wireshark before 4.0 is read too.
* Not in tshark 4.0, so not here: `xor`, arithmetic, and functions other than `len()`.

Our own fields (tshark has no such): grpc.status, grpc.path, grpc.service and grpc.method (see
decoders/grpc/fields.py and `grpc_paths._GrpcPaths`). tcp.stream and udp.stream are numbered as tshark numbers
them: TCP and UDP conversations separately, each from 0 in order of their first packet (our flow
ids count both together; `columns._Context` maps them). tcp.seq and tcp.ack are relative as tshark's
default: to the direction's SYN, or one before its first sequence number when no SYN was seen
(or one before the first acknowledgment the other side sent, if that came first); tcp.seq_raw and
tcp.ack_raw are the numbers on the wire. frame.time_relative counts from the first packet,
frame.time_delta from the previous captured one.

frame.time_delta_displayed is not offered: tshark's one-pass `-Y` sees no displayed frame before
the one it filters (the field is 0 there), and the viewer's meaning needs the filter's own result.

Speed: `filter_rows` evaluates with numpy over the index columns whatever the columns know (frame
facts, ports, addresses, streams, TCP flags and numbers, and bytes gathered from the frames for
`frame[...]`, eth.src/dst/addr and eth.type) in three-valued logic (true, false, unknown), and falls
back per packet only where that leaves the answer unknown: L2-L4 fields the columns lack are read
from the packet's dissection, and the decoding pass runs only when a decoder's field is named.

The package, each module importing only from those above it:

    syntax      tokens, FilterError, slices
    literals    literals read for a field's type; one value against one literal
    grpc_paths  the gRPC path of each call, learnt in frame order
    columns     what the index columns answer for all packets (`_Context`)
    nodes       the syntax tree and its evaluation, per packet and columnar
    checks      what each comparison operator tests
    parser      tokens to a tree; `compile_filter`
    packet      one packet's fields, computed lazily (`PacketFields`)
    apply       a filter over a whole capture: `filter_rows`, `packet_matcher`
"""

from .apply import CANCEL_EVERY, filter_rows, packet_matcher
from .columns import Bools, _context, flow_of_stream, stream_of_flow, tcp_bases
from .grpc_paths import _GrpcPaths
from .literals import Compare, Literal
from .nodes import Fields, Node, field_values
from .packet import PacketFields, packet_fields
from .parser import MAX_DEPTH, DisplayFilter, Predicate, compile_filter
from .syntax import (
    BYTE_LIKE,
    MAX_FILTER,
    NUMERIC,
    RELATIONS,
    TOKEN,
    WORD_OPS,
    FilterError,
    Range,
    Token,
    tokenize,
)

__all__ = [
    "BYTE_LIKE",
    "CANCEL_EVERY",
    "MAX_DEPTH",
    "MAX_FILTER",
    "NUMERIC",
    "RELATIONS",
    "TOKEN",
    "WORD_OPS",
    "Bools",
    "Compare",
    "DisplayFilter",
    "Fields",
    "FilterError",
    "Literal",
    "Node",
    "PacketFields",
    "Predicate",
    "Range",
    "Token",
    "_GrpcPaths",
    "_context",
    "compile_filter",
    "field_values",
    "filter_rows",
    "flow_of_stream",
    "packet_fields",
    "packet_matcher",
    "stream_of_flow",
    "tcp_bases",
    "tokenize",
]
