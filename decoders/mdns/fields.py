"""The fields of the mDNS decoder, named as Wireshark's packet-dns.c registers them (tshark dissects
mDNS with the DNS dissector: protocol "mdns", fields "dns.*")."""

from __future__ import annotations

from protoscope.decoders.api import FieldInfo

from .message import TYPE_NAMES

RCODES = {
    0: "No error",
    1: "Format error",
    2: "Server failure",
    3: "No such name",
    4: "Not implemented",
    5: "Refused",
}
OPCODES = {
    0: "Standard query",
    1: "Inverse query",
    2: "Server status request",
    4: "Zone change notification",
    5: "Dynamic update",
}
CLASSES = {1: "IN", 255: "ANY"}

FIELDS: tuple[FieldInfo, ...] = (
    FieldInfo("mdns", "Multicast Domain Name System", "protocol"),
    FieldInfo("dns.id", "Transaction ID", "uint", base="hex", digits=4),
    FieldInfo("dns.flags", "Flags", "uint", base="hex", digits=4),
    FieldInfo("dns.flags.response", "Response", "bool", "Message is a response"),
    FieldInfo("dns.flags.opcode", "Opcode", "uint", strings=OPCODES),
    FieldInfo("dns.flags.authoritative", "Authoritative", "bool"),
    FieldInfo("dns.flags.truncated", "Truncated", "bool"),
    FieldInfo("dns.flags.rcode", "Reply code", "uint", strings=RCODES),
    FieldInfo("dns.count.queries", "Questions", "uint"),
    FieldInfo("dns.count.answers", "Answer RRs", "uint"),
    FieldInfo("dns.count.auth_rr", "Authority RRs", "uint"),
    FieldInfo("dns.count.add_rr", "Additional RRs", "uint"),
    FieldInfo("dns.qry.name", "Name", "string", "A question's name"),
    FieldInfo("dns.qry.type", "Type", "uint", strings=TYPE_NAMES),
    FieldInfo("dns.qry.class", "Class", "uint", strings=CLASSES, base="hex", digits=4),
    FieldInfo("dns.qry.qu", '"QU" question', "bool", "RFC 6762 section 5.4: a unicast response is asked for"),
    FieldInfo("dns.resp.name", "Name", "string", "A resource record's owner name"),
    FieldInfo("dns.resp.type", "Type", "uint", strings=TYPE_NAMES),
    FieldInfo("dns.resp.class", "Class", "uint", strings=CLASSES, base="hex", digits=4),
    FieldInfo("dns.resp.cache_flush", "Cache flush", "bool", "RFC 6762 section 10.2"),
    FieldInfo("dns.resp.ttl", "Time to live", "uint"),
    FieldInfo("dns.resp.len", "Data length", "uint"),
    FieldInfo("dns.a", "Address", "ipv4"),
    FieldInfo("dns.aaaa", "AAAA Address", "ipv6"),
    FieldInfo("dns.ptr.domain_name", "Domain Name", "string"),
    FieldInfo("dns.srv.priority", "Priority", "uint"),
    FieldInfo("dns.srv.weight", "Weight", "uint"),
    FieldInfo("dns.srv.port", "Port", "uint"),
    FieldInfo("dns.srv.target", "Target", "string"),
    FieldInfo("dns.txt.length", "TXT Length", "uint"),
    FieldInfo("dns.txt", "TXT", "string"),
    FieldInfo("dns.nsec.next_domain_name", "Next Domain Name", "string"),
)
