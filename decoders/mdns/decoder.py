"""The "mdns" decoder: mDNS on UDP 5353 as a PDU with the DNS message's detail tree, and for a
response with addresses an `MdnsAnswers` record (an ICE candidate's ".local" name resolved)."""

from __future__ import annotations

from typing import ClassVar

from protoscope.decoders.api import DecodeResult, Field, FlowContext, LazyFields, Pdu, Transport

from .fields import FIELDS
from .message import HEADER_LEN, TYPE_NAMES, DnsMessage, ResourceRecord, answers, parse_message

MDNS_PORT = 5353
KNOWN_OPCODES = frozenset({0})
"""mDNS sends standard queries only (RFC 6762 section 18.3: other opcodes are ignored)."""


class MdnsDecoder:
    name: ClassVar[str] = "mdns"
    transport: ClassVar[Transport] = "datagram"
    ports: ClassVar[frozenset[tuple[str, int]]] = frozenset({("udp", MDNS_PORT)})
    fields = FIELDS

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        """Port 5353 and a header whose counts could fit: never a heuristic guess elsewhere."""
        if MDNS_PORT not in (ctx.src.port, ctx.dst.port) or len(data) < HEADER_LEN:
            return False
        flags = int.from_bytes(data[2:4], "big")
        counts = [int.from_bytes(data[k : k + 2], "big") for k in range(4, 12, 2)]
        return (flags >> 11) & 0x0F in KNOWN_OPCODES and sum(counts) * 5 <= len(data) - HEADER_LEN

    def new_state(self) -> object:
        return None

    def decode(self, data: bytes, state: object, ctx: FlowContext) -> DecodeResult:
        msg = parse_message(bytes(data))
        if msg is None:
            return DecodeResult()
        pdu = Pdu(
            "mdns",
            LazyFields(lambda: _tree(msg)),  # built when the tree or a filter reads it
            (0, len(data)),
            summary(msg),
            findings=tuple(msg.findings),
            record=answers(msg),
        )
        return DecodeResult(pdus=(pdu,), consumed=len(data))


def _record_fields(rr: ResourceRecord) -> Field:
    start, end = rr.span
    data_start = end - rr.rdlength
    children = (
        Field("dns.resp.type", rr.type, (start, end)),
        Field("dns.resp.class", rr.rclass, (start, end)),
        Field("dns.resp.cache_flush", rr.cache_flush, (start, end)),
        Field("dns.resp.ttl", rr.ttl, (start, end)),
        Field("dns.resp.len", rr.rdlength, (start, end)),
        *(Field(key, value, (data_start, end)) for key, value in rr.data),
    )
    return Field("dns.resp.name", rr.name, rr.span, children)


def _tree(msg: DnsMessage) -> tuple[Field, ...]:
    flags = msg.flags
    qd, an, ns, ar = msg.counts
    response = msg.response
    # As tshark: a query's flags have no authoritative bit nor reply code to show.
    flag_fields = (
        Field("dns.flags.response", response, (2, 4)),
        Field("dns.flags.opcode", msg.opcode, (2, 4)),
        *((Field("dns.flags.authoritative", bool(flags & 0x0400), (2, 4)),) if response else ()),
        Field("dns.flags.truncated", bool(flags & 0x0200), (2, 4)),
        *((Field("dns.flags.rcode", flags & 0x000F, (2, 4)),) if response else ()),
    )
    out = [
        Field("dns.id", msg.id, (0, 2)),
        Field("dns.flags", flags, (2, 4), flag_fields),
        Field("dns.count.queries", qd, (4, 6)),
        Field("dns.count.answers", an, (6, 8)),
        Field("dns.count.auth_rr", ns, (8, 10)),
        Field("dns.count.add_rr", ar, (10, 12)),
    ]
    for q in msg.questions:
        children = (
            Field("dns.qry.type", q.type, q.span),
            Field("dns.qry.class", q.rclass, q.span),
            Field("dns.qry.qu", q.unicast, q.span),
        )
        out.append(Field("dns.qry.name", q.name, q.span, children))
    out += [_record_fields(rr) for rr in msg.records]
    return tuple(out)


def _type(t: int) -> str:
    return TYPE_NAMES.get(t, f"Unknown ({t})")


def _rdata_text(rr: ResourceRecord) -> str:
    """What tshark's Info shows of a record's data: an address, a name, SRV's four numbers."""
    values = dict(rr.data)
    if "dns.srv.target" in values:
        return " ".join(
            str(values[k]) for k in ("dns.srv.priority", "dns.srv.weight", "dns.srv.port", "dns.srv.target")
        )
    for key in ("dns.a", "dns.aaaa", "dns.ptr.domain_name", "dns.nsec.next_domain_name"):
        if key in values:
            return str(values[key])
    return ""


def summary(msg: DnsMessage) -> str:
    """tshark's Info: "Standard query response 0x0000 A, cache flush 10.0.0.1", the questions of a
    query, every record of a response."""
    operation = "Standard query" if msg.opcode == 0 else f"Unknown operation ({msg.opcode})"
    parts = [f"{operation}{' response' if msg.response else ''} 0x{msg.id:04x}"]
    for q in msg.questions:
        parts.append(f'{_type(q.type)} {q.name}, "{"QU" if q.unicast else "QM"}" question')
    if msg.response:
        for rr in msg.records:
            text = _type(rr.type) + (", cache flush" if rr.cache_flush else "")
            rdata = _rdata_text(rr)
            parts.append(f"{text} {rdata}" if rdata else text)
    return " ".join(parts)
