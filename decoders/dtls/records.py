"""DTLS records (RFC 6347, RFC 9147) and handshake messages, with fragment reassembly.

By hand: no Python library parses DTLS passively (ssl and cryptography are endpoints). Hello and
Certificate bodies are parsed by decoders/tls/handshake.py, which TLS shares.
"""

from __future__ import annotations

import struct
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field

from protoscope.decoders.api import Field, Finding, InnerPayload
from protoscope.decoders.tls.handshake import certificates, hello

from . import names as nm
from .decrypt import DtlsCrypt

RECORD_HEADER = 13
HANDSHAKE_HEADER = 12
MAX_MESSAGE = 1 << 20
"""Largest handshake message reassembled from fragments. A certificate chain of a few KB is the
largest message a real handshake sends; the length field allows 16 MiB, which is what an attacker
declares. Larger messages are not reassembled (`dtls.handshake_limit`)."""
MAX_PENDING_BYTES = 2 << 20
"""Handshake bytes held per flow direction for messages not yet whole: the largest message plus
the rest of its flight. Fragments are kept as received (never a buffer of the declared length), so
this bounds what one direction holds; past it the oldest incomplete message is dropped."""
MAX_PENDING_MESSAGES = 32
"""Incomplete handshake messages (message_seq values) held per flow direction. A flight has at
most six messages; retransmitted flights reuse their message_seq. Past it the oldest incomplete
message is dropped, so a flood of new message_seq values costs no more than this many."""
MAX_FRAGMENTS = 4096
"""Fragments that bring new bytes to one handshake message (each is kept as a piece of its own).
1 MiB in fragments of a 576-byte path MTU is about 2,000; an attacker's 1-byte fragments would cost
a list entry (~100 bytes) per byte. Past it the message is given up."""
VERSIONS = frozenset(nm.VERSIONS)


Span = Callable[[int, int], tuple[int, int]]
"""Maps offsets in a handshake message to offsets in the datagram ((0, 0) when reassembled)."""


@dataclass(slots=True)
class Pending:
    """A handshake message being reassembled: its fragments as received, with the byte ranges they
    cover kept merged (sorted, disjoint), so that each fragment costs a binary search and memory
    grows with the bytes that arrived, not with the length the message declares."""

    msg_type: int
    length: int
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    """Covered ranges [starts[i], ends[i]), sorted and disjoint (touching ranges are merged)."""
    pieces: list[tuple[int, bytes]] = field(default_factory=list)
    """(offset, bytes) of each fragment's new bytes, in arrival order; they never overlap."""
    covered: int = 0
    """Bytes of the message received: the sum of the ranges, and of the pieces' lengths."""
    given_up: bool = False
    """A limit was hit: the pieces are dropped and later fragments of it are ignored."""

    def add(self, offset: int, data: bytes) -> int:
        """Keep the parts of `data` (at `offset`) not received before; returns the bytes added.
        Two binary searches and one splice of the range lists (each range merged away was added
        once before), whatever order the fragments come in."""
        lo, hi = offset, offset + len(data)
        if lo >= hi:
            return 0
        starts, ends = self.starts, self.ends
        # The ranges that overlap or touch [lo, hi): i .. j-1.
        i = bisect_left(ends, lo)
        j = bisect_right(starts, hi)
        at, added = lo, 0
        for k in range(i, j):
            if starts[k] > at:
                self.pieces.append((at, data[at - lo : starts[k] - lo]))
                added += starts[k] - at
            at = max(at, ends[k])
        if at < hi:
            self.pieces.append((at, data[at - lo :]))
            added += hi - at
        if i < j:
            lo, hi = min(lo, starts[i]), max(hi, ends[j - 1])
        starts[i:j] = [lo]
        ends[i:j] = [hi]
        self.covered += added
        return added

    def whole(self) -> bytes:
        out = bytearray(self.length)
        for offset, data in self.pieces:
            out[offset : offset + len(data)] = data
        return bytes(out)


@dataclass(slots=True)
class Reassembly:
    """Handshake fragments of one flow direction (RFC 6347 section 4.2.3), within named limits."""

    messages: dict[int, Pending] = field(default_factory=dict)
    """message_seq -> the message being reassembled; oldest first (dropped first)."""
    done: dict[int, tuple[int, int]] = field(default_factory=dict)
    """message_seq -> (msg_type, length) of messages seen whole: a fragment of one again is a
    retransmission. At most 65,536 entries (message_seq is 16 bits)."""
    pending_bytes: int = 0
    """Bytes held in `messages`."""
    limits_hit: set[str] = field(default_factory=set)
    """Limits already reported in this direction: each is reported on the first packet that hits
    it, not on every fragment of a flood."""

    def drop(self, mseq: int) -> None:
        pending = self.messages.pop(mseq)
        self.pending_bytes -= pending.covered

    def give_up(self, pending: Pending) -> None:
        self.pending_bytes -= pending.covered
        pending.pieces, pending.starts, pending.ends, pending.covered = [], [], [], 0
        pending.given_up = True


@dataclass(frozen=True, slots=True)
class DtlsRecord:
    content_types: tuple[int, ...]
    handshake_types: tuple[int, ...]
    version: int | None
    facts: dict[str, object]
    """client_hello / server_hello details, certificate fingerprints, alert (for sessions)."""


def looks_like_dtls(data: bytes) -> bool:
    """Strict: plaintext-header records (a known content type and version) whose lengths add up
    to the datagram exactly, or a DTLS 1.3 unified-header record (first bits 001)."""
    pos = 0
    count = 0
    while pos + RECORD_HEADER <= len(data):
        ctype, version = data[pos], int.from_bytes(data[pos + 1 : pos + 3], "big")
        if ctype not in nm.CONTENT_TYPES or version not in VERSIONS:
            return count > 0 and data[pos] >> 5 == 1
        pos += RECORD_HEADER + int.from_bytes(data[pos + 11 : pos + 13], "big")
        count += 1
    return count > 0 and pos == len(data)


def parse_datagram(
    data: bytes, reassembly: Reassembly, crypt: DtlsCrypt | None = None
) -> tuple[DtlsRecord, list[Field], list[Finding], str]:
    """One datagram's records. With `crypt` (a key log was given) protected records are opened,
    their plaintext decoded as the plaintext records are, and application data put in
    `crypt.inner`; its findings go to the list returned too."""
    fields: list[Field] = []
    findings: list[Finding] = crypt.findings if crypt is not None else []
    ctypes: list[int] = []
    htypes: list[int] = []
    facts: dict[str, object] = {}
    version: int | None = None
    info: list[str] = []
    pos = 0
    while pos < len(data):
        first = data[pos]
        if first >> 5 == 1 and first not in nm.CONTENT_TYPES:
            end, ctype = _unified(data, pos, fields, crypt, reassembly, htypes, facts, findings, info)
            ctypes.append(ctype)
            pos = end
            continue
        if pos + RECORD_HEADER > len(data):
            findings.append(Finding("warn", "dtls.truncated", "record header cut short", (pos, len(data))))
            break
        ctype, ver, epoch = (
            data[pos],
            int.from_bytes(data[pos + 1 : pos + 3], "big"),
            int.from_bytes(data[pos + 3 : pos + 5], "big"),
        )
        seq, length = (
            int.from_bytes(data[pos + 5 : pos + 11], "big"),
            int.from_bytes(data[pos + 11 : pos + 13], "big"),
        )
        end = pos + RECORD_HEADER + length
        if ctype not in nm.CONTENT_TYPES or ver not in VERSIONS:
            findings.append(
                Finding("warn", "dtls.not_a_record", "bytes that are not a DTLS record", (pos, len(data)))
            )
            break
        if end > len(data):
            findings.append(
                Finding("error", "dtls.truncated", f"record says {length} bytes, {len(data) - pos - 13} here")
            )
            end = len(data)
        version = version or ver
        ctypes.append(ctype)
        children = [
            Field("dtls.record.content_type", ctype, (pos, pos + 1)),
            Field("dtls.record.version", ver, (pos + 1, pos + 3)),
            Field("dtls.record.epoch", epoch, (pos + 3, pos + 5)),
            Field("dtls.record.sequence_number", seq, (pos + 5, pos + 11)),
            Field("dtls.record.length", length, (pos + 11, pos + 13)),
        ]
        body = pos + RECORD_HEADER
        if ctype == 23:  # the bytes as sent, opened or not (tshark's dtls.app_data)
            children.append(Field("dtls.app_data", data[body:end].hex(), (body, end)))
        opened = None
        if crypt is not None and epoch > 0 and ctype != 20:
            opened = crypt.open12(data, pos, end, ctype, ver, epoch, seq)
        if opened is not None:
            assert crypt is not None
            ctype, plain, base, replay = opened
            children += _plaintext(
                data, ctype, plain, base, replay, crypt, reassembly, htypes, facts, findings, info
            )
        elif ctype == 22 and epoch == 0:
            children += _handshakes(data, body, end, reassembly, htypes, facts, findings, info, crypt)
        elif ctype == 22:
            info.append("Encrypted Handshake Message")
        elif ctype == 21 and epoch == 0 and end - body >= 2:
            level, desc = data[body], data[body + 1]
            facts["alert"] = (nm.ALERT_LEVELS.get(level, str(level)), nm.ALERTS.get(desc, str(desc)))
            children += [
                Field("dtls.alert_message.level", level, (body, body + 1)),
                Field("dtls.alert_message.desc", desc, (body + 1, body + 2)),
            ]
            info.append(f"Alert ({nm.ALERT_LEVELS.get(level, level)}, {nm.ALERTS.get(desc, desc)})")
        elif ctype == 21:
            info.append("Encrypted Alert")
        elif ctype == 20:
            info.append("Change Cipher Spec")
            if crypt is not None:
                crypt.change_cipher_spec(epoch)
        elif ctype == 23:
            info.append("Application Data")
        label = f"{nm.VERSIONS.get(ver, hex(ver))} Record Layer: {nm.CONTENT_TYPES[ctype]}"
        fields.append(Field("dtls.record", label, (pos, end), tuple(children)))
        pos = end
    record = DtlsRecord(tuple(ctypes), tuple(htypes), version, facts)
    return record, fields, findings, ", ".join(info)


def _plaintext(
    data: bytes,
    ctype: int,
    plain: bytes,
    base: int,
    replay: bool,
    crypt: DtlsCrypt,
    ra: Reassembly,
    htypes: list[int],
    facts: dict[str, object],
    findings: list[Finding],
    info: list[str],
) -> list[Field]:
    """The fields of a decrypted record's content. The plaintext is put where its ciphertext was
    (AEAD and CBC map byte for byte), so that spans point at the bytes that carried it."""
    end = base + len(plain)
    view = data[:base] + plain + data[end:]
    out = [Field("dtls.decrypted", len(plain), (base, end))]
    if replay:
        out.append(Field("dtls.replay", True, (base, end)))
    if ctype == 22:
        out += _handshakes(view, base, end, ra, htypes, facts, findings, info, crypt, decrypted=True)
    elif ctype == 21 and len(plain) >= 2:
        level, desc = plain[0], plain[1]
        facts["alert"] = (nm.ALERT_LEVELS.get(level, str(level)), nm.ALERTS.get(desc, str(desc)))
        out += [
            Field("dtls.alert_message.level", level, (base, base + 1)),
            Field("dtls.alert_message.desc", desc, (base + 1, base + 2)),
        ]
        info.append(f"Alert ({nm.ALERT_LEVELS.get(level, level)}, {nm.ALERTS.get(desc, desc)})")
    elif ctype == 23:
        info.append("Application Data")
        proto = crypt.inner_protocol()
        out.append(Field("dtls.app_data_proto", proto or "", (base, end)))
        if plain and not replay:
            crypt.inner.append(InnerPayload(bytes(plain), base, protocol=proto))
    elif ctype == 26:
        info.append("ACK")
        out += _ack(plain, base)
    else:
        info.append(nm.CONTENT_TYPES.get(ctype, f"Content type {ctype}"))
    return out


def _ack(plain: bytes, base: int) -> list[Field]:
    """RFC 9147 section 7: the record numbers (epoch, sequence number: 8 bytes each) a peer
    acknowledges, in a 2-byte-length vector; a short vector shows what is there."""
    if len(plain) < 2:
        return []
    length = int.from_bytes(plain[:2], "big")
    out = [Field("dtls.ack.record_numbers_length", length, (base, base + 2))]
    stop = min(len(plain), 2 + length)
    for at in range(2, stop - 15, 16):
        epoch = int.from_bytes(plain[at : at + 8], "big")
        seq = int.from_bytes(plain[at + 8 : at + 16], "big")
        span = (base + at, base + at + 16)
        out.append(Field("dtls.ack.record_number", f"epoch {epoch}, sequence {seq}", span))
    return out


def _unified(
    data: bytes,
    pos: int,
    fields: list[Field],
    crypt: DtlsCrypt | None,
    ra: Reassembly,
    htypes: list[int],
    facts: dict[str, object],
    findings: list[Finding],
    info: list[str],
) -> tuple[int, int]:
    """RFC 9147 section 4: 001CSLEE, optional connection id, 8/16-bit sequence, optional length.
    Returns (end, content type): 23 unless the record was opened."""
    first = data[pos]
    at = pos + 1
    cid_len = 0
    children = [Field("dtls.unified_header", f"0x{first:02x}", (pos, pos + 1))]
    if first & 0x10:
        # The CID length is not in the header; DTLS 1.3 captures negotiate it. Without that,
        # take the bytes up to the sequence and length fields that make the record fit exactly.
        cid_len = _guess_cid(data, pos)
        children.append(Field("dtls.record.connection_id", data[at : at + cid_len].hex(), (at, at + cid_len)))
        at += cid_len
    seq_len = 2 if first & 0x08 else 1
    seq_at = at
    seq_field = len(children)
    children.append(
        Field(
            "dtls.record.sequence_number", int.from_bytes(data[at : at + seq_len], "big"), (at, at + seq_len)
        )
    )
    at += seq_len
    if first & 0x04:
        length = int.from_bytes(data[at : at + 2], "big")
        children.append(Field("dtls.record.length", length, (at, at + 2)))
        at += 2
        end = min(len(data), at + length)
    else:
        end = len(data)
    children.append(Field("dtls.record.epoch_bits", first & 0x03, (pos, pos + 1)))
    opened = crypt.open13(data, pos, at, end, seq_at, seq_len) if crypt is not None and at <= end else None
    if opened is None:
        info.append("Encrypted (DTLS 1.3)")
        fields.append(
            Field(
                "dtls.record",
                "DTLS 1.3 Record Layer: encrypted (unified header)",
                (pos, end),
                tuple(children),
            )
        )
        return end, 23
    assert crypt is not None
    ctype, plain, base, seq, replay = opened
    children[seq_field] = Field("dtls.record.sequence_number", seq, (seq_at, seq_at + seq_len))
    children.append(Field("dtls.record.content_type", ctype, (end - 1, end)))
    children += _plaintext(data, ctype, plain, base, replay, crypt, ra, htypes, facts, findings, info)
    label = f"DTLS 1.3 Record Layer: {nm.CONTENT_TYPES.get(ctype, ctype)} (unified header, decrypted)"
    fields.append(Field("dtls.record", label, (pos, end), tuple(children)))
    return end, ctype


def _guess_cid(data: bytes, pos: int) -> int:
    first = data[pos]
    seq_len = 2 if first & 0x08 else 1
    if not first & 0x04:
        return 0
    for cid in range(0, 21):
        at = pos + 1 + cid + seq_len
        if at + 2 <= len(data) and at + 2 + int.from_bytes(data[at : at + 2], "big") == len(data):
            return cid
    return 0


def _handshakes(
    data: bytes,
    pos: int,
    end: int,
    ra: Reassembly,
    htypes: list[int],
    facts: dict[str, object],
    findings: list[Finding],
    info: list[str],
    crypt: DtlsCrypt | None = None,
    decrypted: bool = False,
) -> list[Field]:
    out: list[Field] = []
    while pos + HANDSHAKE_HEADER <= end:
        mtype = data[pos]
        length = int.from_bytes(data[pos + 1 : pos + 4], "big")
        mseq = int.from_bytes(data[pos + 4 : pos + 6], "big")
        foff = int.from_bytes(data[pos + 6 : pos + 9], "big")
        flen = int.from_bytes(data[pos + 9 : pos + 12], "big")
        body = pos + HANDSHAKE_HEADER
        stop = min(end, body + flen)
        htypes.append(mtype)
        name = nm.HANDSHAKE_TYPES.get(mtype, f"Unknown({mtype})")
        children = [
            Field("dtls.handshake.type", mtype, (pos, pos + 1)),
            Field("dtls.handshake.length", length, (pos + 1, pos + 4)),
            Field("dtls.handshake.message_seq", mseq, (pos + 4, pos + 6)),
            Field("dtls.handshake.fragment_offset", foff, (pos + 6, pos + 9)),
            Field("dtls.handshake.fragment_length", flen, (pos + 9, pos + 12)),
        ]
        fragment = data[body:stop]
        whole: bytes | None = None
        fresh = True
        if foff == 0 and flen == length:
            whole = fragment
            if ra.done.get(mseq) == (mtype, length):
                fresh = False
                _retransmission(name, mseq, (pos, stop), children, findings)
            ra.done[mseq] = (mtype, length)
            if mseq in ra.messages:
                ra.drop(mseq)
        else:
            whole = _reassemble(
                ra, mtype, length, mseq, foff, fragment, name, (pos, stop), children, findings
            )
        if whole is not None and len(whole) == length:
            tls13 = crypt is not None and crypt.conn.tls13
            children += _message(
                mtype, whole, body if foff == 0 and flen == length else None, facts, findings, tls13
            )
            if crypt is not None and fresh:
                _event(crypt, mtype, facts, decrypted)
        info.append(name if whole is not None or foff == 0 else f"{name} (fragment)")
        out.append(Field("dtls.handshake", name, (pos, stop), tuple(children)))
        pos = stop
    return out


def _event(crypt: DtlsCrypt, mtype: int, facts: dict[str, object], decrypted: bool) -> None:
    """A whole, new handshake message that moves the key schedule."""
    if mtype in (1, 2):
        hello = facts.get("client_hello" if mtype == 1 else "server_hello")
        if isinstance(hello, dict) and mtype == 1:
            crypt.client_hello(hello, protected=decrypted)
        elif isinstance(hello, dict):
            crypt.server_hello(hello)
    elif decrypted and mtype in (20, 24):
        crypt.handshake_done(mtype)


def _retransmission(
    name: str, mseq: int, span: tuple[int, int], children: list[Field], findings: list[Finding]
) -> None:
    findings.append(Finding("note", "dtls.retransmission", f"{name} (message_seq {mseq}) sent again", span))
    children.append(Field("dtls.retransmission", True, span))


def _limit(ra: Reassembly, name: str, message: str, span: tuple[int, int], findings: list[Finding]) -> None:
    """A `dtls.handshake_limit` finding, once per limit and direction (not once per fragment of a flood)."""
    if name not in ra.limits_hit:
        ra.limits_hit.add(name)
        findings.append(Finding("warn", "dtls.handshake_limit", f"{name}: {message}", span))


def _reassemble(
    ra: Reassembly,
    mtype: int,
    length: int,
    mseq: int,
    foff: int,
    fragment: bytes,
    name: str,
    span: tuple[int, int],
    children: list[Field],
    findings: list[Finding],
) -> bytes | None:
    """Adds one fragment of a message; returns the message when this fragment completes it."""
    if ra.done.get(mseq) == (mtype, length):
        _retransmission(name, mseq, span, children, findings)
        return None
    if foff + len(fragment) > length:
        return None  # a fragment past the end of its message: nowhere to put it
    if length > MAX_MESSAGE:
        what = f"{name} (message_seq {mseq}) declares {length} bytes, over {MAX_MESSAGE}: not reassembled"
        _limit(ra, "MAX_MESSAGE", what, span, findings)
        return None
    pending = ra.messages.get(mseq)
    if pending is not None and (pending.msg_type, pending.length) != (mtype, length):
        ra.drop(mseq)  # the same message_seq for another message: a new handshake on this flow
        pending = None
    if pending is None:
        while len(ra.messages) >= MAX_PENDING_MESSAGES:
            oldest = next(iter(ra.messages))
            ra.drop(oldest)
            what = f"over {MAX_PENDING_MESSAGES} incomplete handshake messages, message_seq {oldest} dropped"
            _limit(ra, "MAX_PENDING_MESSAGES", what, span, findings)
        pending = ra.messages[mseq] = Pending(mtype, length)
    if pending.given_up:
        return None
    had = pending.covered
    added = pending.add(foff, fragment)
    if not added:
        if had and fragment:
            _retransmission(name, mseq, span, children, findings)
        return None
    ra.pending_bytes += added
    if len(pending.pieces) > MAX_FRAGMENTS:
        ra.give_up(pending)
        what = f"{name} (message_seq {mseq}) in more than {MAX_FRAGMENTS} fragments: not reassembled"
        _limit(ra, "MAX_FRAGMENTS", what, span, findings)
        return None
    while ra.pending_bytes > MAX_PENDING_BYTES:
        other = next((k for k in ra.messages if k != mseq), None)
        if other is None:  # this message alone (MAX_MESSAGE is the smaller limit; not so if changed)
            ra.give_up(pending)
            return None
        ra.drop(other)
        what = f"over {MAX_PENDING_BYTES} bytes of incomplete handshake messages, message_seq {other} dropped"
        _limit(ra, "MAX_PENDING_BYTES", what, span, findings)
    if pending.covered < length:
        return None
    ra.drop(mseq)
    ra.done[mseq] = (mtype, length)
    children.append(Field("dtls.handshake.reassembled", f"{length} bytes", span))
    return pending.whole()


def _message(
    mtype: int,
    body: bytes,
    base: int | None,
    facts: dict[str, object],
    findings: list[Finding],
    tls13: bool = False,
) -> list[Field]:
    """Details of a whole handshake message; spans only when it lay in one fragment."""

    def span(a: int, b: int) -> tuple[int, int]:
        return (base + a, base + b) if base is not None else (0, 0)

    try:
        if mtype in (1, 2):
            return hello(mtype, body, span, facts, "dtls", dtls=True)
        if mtype == 3 and len(body) >= 3:
            cookie = body[3 : 3 + body[2]]
            return [Field("dtls.handshake.cookie", cookie.hex(), span(3, 3 + len(cookie)))]
        if mtype == 11:
            return certificates(body, span, facts, findings, "dtls", tls13=tls13)
    except (IndexError, ValueError, struct.error) as exc:
        findings.append(
            Finding("warn", "dtls.bad_handshake", f"{nm.HANDSHAKE_TYPES.get(mtype, mtype)}: {exc}")
        )
    return []
