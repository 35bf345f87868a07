"""A DNS message (RFC 1035 section 4) as mDNS sends it: header, questions and resource records,
names with compression pointers, read within named limits. Hostile input (pointer loops, counts
past the data, names past 255 octets) gives findings and a partial message, never an exception
and never unbounded work."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

from protoscope.decoders.api import Finding

HEADER_LEN = 12
MAX_NAME_LENGTH = 255
"""Octets of a name, with its length bytes (RFC 1035 section 3.1): a longer one is cut there."""
MAX_POINTERS = 32
"""Compression pointers followed in one name. Each must also point before itself (RFC 1035 section
4.1.4 points to a prior occurrence), so a loop cannot form; this bounds a long chain."""
MAX_RECORDS = 256
"""Questions and resource records read from one message; a message claiming more is read that far."""
MAX_TXT_STRINGS = 64
"""Character-strings read from one TXT record."""

TYPE_A, TYPE_PTR, TYPE_TXT, TYPE_AAAA, TYPE_SRV, TYPE_NSEC = 1, 12, 16, 28, 33, 47
TYPE_NAMES = {
    1: "A",
    2: "NS",
    5: "CNAME",
    6: "SOA",
    12: "PTR",
    13: "HINFO",
    15: "MX",
    16: "TXT",
    28: "AAAA",
    33: "SRV",
    41: "OPT",
    47: "NSEC",
    255: "ANY",
}
"""RR TYPE names (RFC 1035, 3596, 2782, 4034), as tshark writes them."""
CACHE_FLUSH = 0x8000
"""The top bit of a record's class in mDNS (RFC 6762 section 10.2); in a question it asks for a
unicast response ("QU", section 5.4)."""


@dataclass(frozen=True, slots=True)
class Question:
    name: str
    type: int
    rclass: int
    """Without the QU bit."""
    unicast: bool
    span: tuple[int, int]


@dataclass(frozen=True, slots=True)
class ResourceRecord:
    name: str
    type: int
    rclass: int
    """Without the cache-flush bit."""
    cache_flush: bool
    ttl: int
    rdlength: int
    data: tuple[tuple[str, object], ...]
    """The RDATA's fields by tshark's names: (("dns.a", "10.0.0.1"),), (("dns.txt", "a=b"), ...)."""
    section: str
    """"answers", "authority" or "additional"."""
    span: tuple[int, int]


@dataclass(slots=True)
class DnsMessage:
    id: int
    flags: int
    counts: tuple[int, int, int, int]
    """QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT as the header says them."""
    questions: list[Question] = field(default_factory=list)
    records: list[ResourceRecord] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def response(self) -> bool:
        return bool(self.flags & 0x8000)

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0x0F


@dataclass(frozen=True, slots=True)
class MdnsAnswers:
    """The `record` of an "mdns" response PDU with A or AAAA records (answers and additional
    records both: responders put a host's addresses in either): (name, IP) pairs in order."""

    answers: list[tuple[str, str]]


class _Cut(Exception):
    """The data ended or went wrong inside a part; the finding says how."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


def _truncated(what: str, at: int) -> _Cut:
    return _Cut(Finding("warn", "mdns.truncated", f"{what} runs past the end of the message", (at, at)))


def read_name(data: bytes, at: int) -> tuple[str, int]:
    """The name at `at` and where the bytes after it start (a pointer ends it in place)."""
    labels: list[str] = []
    length = 0
    end = -1
    pos = at
    jumps = 0
    while True:
        if pos >= len(data):
            raise _truncated("a name", at)
        size = data[pos]
        kind = size & 0xC0
        if kind == 0xC0:
            if pos + 2 > len(data):
                raise _truncated("a name's pointer", pos)
            target = struct.unpack_from(">H", data, pos)[0] & 0x3FFF
            if end < 0:
                end = pos + 2
            if target >= pos or jumps >= MAX_POINTERS:
                raise _Cut(
                    Finding(
                        "warn",
                        "mdns.name_loop",
                        f"a name's pointer to {target} at {pos} does not point back",
                        (pos, pos + 2),
                    )
                )
            jumps += 1
            pos = target
            continue
        if kind:
            raise _Cut(
                Finding(
                    "warn",
                    "mdns.bad_label",
                    f"label type 0x{kind:02x} at {pos} is not defined",
                    (pos, pos + 1),
                )
            )
        if size == 0:
            if end < 0:
                end = pos + 1
            return ".".join(labels), end
        length += size + 1
        if length > MAX_NAME_LENGTH:
            raise _Cut(
                Finding(
                    "warn", "mdns.name_too_long", f"a name longer than {MAX_NAME_LENGTH} octets", (at, pos)
                )
            )
        if pos + 1 + size > len(data):
            raise _truncated("a label", pos)
        labels.append(data[pos + 1 : pos + 1 + size].decode("utf-8", "replace"))
        pos += 1 + size


def _rdata(data: bytes, rtype: int, start: int, end: int) -> tuple[tuple[str, object], ...]:
    """The fields of a record's RDATA in data[start:end] (names may point outside it)."""
    size = end - start
    if rtype == TYPE_A and size == 4:
        return (("dns.a", str(ipaddress.IPv4Address(data[start:end]))),)
    if rtype == TYPE_AAAA and size == 16:
        return (("dns.aaaa", str(ipaddress.IPv6Address(data[start:end]))),)
    if rtype == TYPE_PTR:
        return (("dns.ptr.domain_name", read_name(data, start)[0]),)
    if rtype == TYPE_NSEC:
        return (("dns.nsec.next_domain_name", read_name(data, start)[0]),)
    if rtype == TYPE_SRV and size >= 7:
        priority, weight, port = struct.unpack_from(">HHH", data, start)
        return (
            ("dns.srv.priority", priority),
            ("dns.srv.weight", weight),
            ("dns.srv.port", port),
            ("dns.srv.target", read_name(data, start + 6)[0]),
        )
    if rtype == TYPE_TXT:
        out: list[tuple[str, object]] = []
        pos = start
        while pos < end and len(out) < 2 * MAX_TXT_STRINGS:
            n = data[pos]
            if pos + 1 + n > end:
                raise _truncated("a TXT string", pos)
            out += [
                ("dns.txt.length", n),
                ("dns.txt", data[pos + 1 : pos + 1 + n].decode("utf-8", "replace")),
            ]
            pos += 1 + n
        return tuple(out)
    return ()


SECTIONS = ("answers", "authority", "additional")


def parse_message(data: bytes) -> DnsMessage | None:
    """The DNS message in `data`, or None when it is shorter than a header. What cannot be read
    (a name that loops, a record past the end) ends the reading there, with a finding."""
    if len(data) < HEADER_LEN:
        return None
    ident, flags, qd, an, ns, ar = struct.unpack_from(">HHHHHH", data)
    msg = DnsMessage(ident, flags, (qd, an, ns, ar))
    pos = HEADER_LEN
    budget = MAX_RECORDS
    try:
        for _ in range(min(qd, budget)):
            start = pos
            name, pos = read_name(data, pos)
            if pos + 4 > len(data):
                raise _truncated("a question", start)
            qtype, qclass = struct.unpack_from(">HH", data, pos)
            pos += 4
            msg.questions.append(
                Question(name, qtype, qclass & 0x7FFF, bool(qclass & CACHE_FLUSH), (start, pos))
            )
        budget -= len(msg.questions)
        for section, count in zip(SECTIONS, (an, ns, ar), strict=True):
            for _ in range(count):
                if budget <= 0:
                    break
                budget -= 1
                start = pos
                name, pos = read_name(data, pos)
                if pos + 10 > len(data):
                    raise _truncated("a resource record", start)
                rtype, rclass, ttl, rdlength = struct.unpack_from(">HHIH", data, pos)
                pos += 10
                if pos + rdlength > len(data):
                    raise _truncated("a resource record's data", start)
                fields = _rdata(data, rtype, pos, pos + rdlength)
                pos += rdlength
                msg.records.append(
                    ResourceRecord(
                        name,
                        rtype,
                        rclass & 0x7FFF,
                        bool(rclass & CACHE_FLUSH),
                        ttl,
                        rdlength,
                        fields,
                        section,
                        (start, pos),
                    )
                )
        if qd + an + ns + ar > MAX_RECORDS:
            msg.findings.append(
                Finding(
                    "warn",
                    "mdns.too_many_records",
                    f"{qd + an + ns + ar} records; the first {MAX_RECORDS} are read",
                )
            )
    except _Cut as cut:
        msg.findings.append(cut.finding)
    return msg


def answers(msg: DnsMessage) -> MdnsAnswers | None:
    """The (name, IP) pairs of a response's A and AAAA records; None for a query or none."""
    if not msg.response:
        return None
    pairs = [
        (rr.name, str(value)) for rr in msg.records for key, value in rr.data if key in ("dns.a", "dns.aaaa")
    ]
    return MdnsAnswers(pairs) if pairs else None
