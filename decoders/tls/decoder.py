"""The TLS stream decoder: records reassembled from TCP, handshake messages reassembled from records,
and, with a key log, every protected record opened (authenticated first) and its plaintext handed
on: application data to HTTP/2 when ALPN chose h2 (gRPC over TLS on any port), else to whatever
the registry's heuristics find in it.

After a hole in the TCP stream the next record header is found again (`resync`) and the records
the hole swallowed are accounted for: their record numbers are skipped by trying the next ones
until a tag verifies (`MAX_SKIPPED_RECORDS`, `SEARCHES`), with one `tls.decrypt_resync` note for
the hole rather than a failure for every record after it.

One PDU per record. Connection state (randoms, suite, keys, sequence numbers) lives in the flow's
`ctx.shared["tls.connection"]`, since both directions feed it; each direction's own state is the
bytes of a handshake message not yet whole.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar, Literal

from protoscope.decoders.api import (
    DecodeResult,
    Field,
    Finding,
    FlowContext,
    InnerPayload,
    LazyFields,
    Options,
    Pdu,
)
from protoscope.decoders.dtls import names as nm

from . import crypto
from .connection import Connection, Side
from .fields import FIELDS
from .handshake import TLS_VERSIONS, certificates, extensions, hello
from .keylog import KeyLog

RECORD_HEADER = 5
MAX_RECORD = (1 << 14) + 2048
"""Largest TLSCiphertext.length (RFC 5246 section 6.2.3; TLS 1.3 allows 2^14 + 256)."""
MAX_HANDSHAKE_MESSAGE = 1 << 20
"""Largest handshake message reassembled from records. A certificate chain of a few tens of KB is
the largest a real handshake sends; the length field allows 16 MiB, which is what an attacker
declares. A larger one stops handshake parsing in that direction (`tls.handshake_limit`)."""
RESYNC_WINDOW = 64 * 1024
"""Bytes searched for the next record header when the stream is not where a record starts."""
MAX_SKIPPED_RECORDS = 256
"""Record numbers tried past the expected one when a record fails after a gap in the TCP stream
(the records the hole swallowed each took a number). A wrong number cannot pass the tag (2^-128),
so the bound is about cost and reach: one search costs at most 256 record decryptions (a few ms
with 16 KiB records) and happens once per gap, and 256 records cover a lost 64 KiB loopback
segment (TSO) of gRPC-sized records (~250 bytes) or 4 MiB of full-size ones."""
SEARCHES = 2
"""Failures in a row after a gap or an opened record that search the record numbers ahead: two,
because a false header resync took (see `resync`) fails first and the true record after it is
the one to find; after them a side whose records all fail (a KeyUpdate lost in the hole, a wrong
application secret) costs one decryption a record again, and says nothing more."""
CONTENT_TYPES = frozenset((20, 21, 22, 23, 24))
HANDSHAKE_FINISHED = 20
HANDSHAKE_KEY_UPDATE = 24
HANDSHAKE_ENCRYPTED_EXTENSIONS = 8
CONNECTION = "tls.connection"


@dataclass(slots=True)
class TlsRecord:
    """Typed facts of one record, for analyses (read them, do not change them: not frozen only
    because a frozen dataclass costs four times as much to make, once per record)."""

    content_type: int
    """The true content type (a TLS 1.3 record's inner one once decrypted)."""
    version: int
    handshake_types: tuple[int, ...] = ()
    facts: dict[str, object] = field(default_factory=dict)
    """client_hello / server_hello details, certificates, alert."""
    decrypted: bool = False
    length: int = 0
    """Plaintext bytes when decrypted, else the record's fragment length."""


@dataclass(slots=True)
class Direction:
    """One direction's bytes of a handshake message not yet whole."""

    handshake: bytearray = field(default_factory=bytearray)
    handshake_off: bool = False
    """MAX_HANDSHAKE_MESSAGE was hit: no more handshake parsing in this direction."""
    lost: bool = False
    """Bytes that are not records were met (reported once)."""
    ccs: bool = False
    """A ChangeCipherSpec went this way: what follows is protected even when the capture missed
    the ClientHello (and so does not know which side this is)."""


def valid_header(data: bytes, pos: int) -> bool:
    return (
        data[pos] in CONTENT_TYPES
        and data[pos + 1] == 3
        and data[pos + 2] <= 4
        and int.from_bytes(data[pos + 3 : pos + 5], "big") <= MAX_RECORD
    )


def resync(data: bytes, start: int, version: bytes | None = None) -> int | None:
    """The next offset after `start` where a record header is followed by the data's end or by
    another record header: where the stream can be read again.

    With `version` (the record-layer version a connection's protected records carry, b"\x03\x03"
    for TLS 1.2 and 1.3), also an application data header of that version whose record runs past
    the data's end: after a hole in a bulk transfer the next header is followed by a record of up
    to 16 KiB that arrives over several segments, so the data never holds a whole record after a
    header to confirm it. A header found that way is false once in about 10^7 offsets (type,
    version and length must match); its record then fails its tag and the stream resyncs again."""
    stop = min(len(data), start + RESYNC_WINDOW) - RECORD_HEADER
    for k in range(start + 1, stop + 1):
        if not valid_header(data, k):
            continue
        end = k + RECORD_HEADER + int.from_bytes(data[k + 3 : k + 5], "big")
        if end == len(data) or (end + RECORD_HEADER <= len(data) and valid_header(data, end)):
            return k
        if version is not None and end + RECORD_HEADER > len(data) and data[k] == 23:
            if data[k + 1 : k + 3] == version:
                return k
    return None


class TlsDecoder:
    """TLS over TCP (RFC 5246, RFC 8446), decrypted with an NSS key log when one is given."""

    name: ClassVar[str] = "tls"
    fields = FIELDS
    transport: ClassVar[Literal["stream"]] = "stream"
    ports: ClassVar[frozenset[tuple[str, int]]] = frozenset(
        ("tcp", p) for p in (443, 8443, 853, 993, 995, 465, 636, 5061)
    )

    def __init__(self) -> None:
        self.keys = KeyLog()

    def configure(self, options: Options) -> None:
        keys = options.get("tls.keylog")
        self.keys = keys if isinstance(keys, KeyLog) else KeyLog()

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        """Strict: a handshake record that starts with a ClientHello or ServerHello whose length fits."""
        if len(data) < 9 or data[0] != 22 or data[1] != 3 or data[2] > 4 or data[5] not in (1, 2):
            return False
        length = int.from_bytes(data[3:5], "big")
        message = int.from_bytes(data[6:9], "big")
        return 38 <= length <= MAX_RECORD and 34 <= message <= MAX_HANDSHAKE_MESSAGE

    def new_state(self) -> Direction:
        return Direction()

    def decode(self, data: bytes, state: object, ctx: FlowContext) -> DecodeResult:
        assert isinstance(state, Direction)
        conn = ctx.shared.get(CONNECTION)
        if not isinstance(conn, Connection):
            conn = ctx.shared[CONNECTION] = Connection()
        pdus: list[Pdu] = []
        findings: list[Finding] = []
        pos = 0
        need = 0
        while len(data) - pos >= RECORD_HEADER:
            if not valid_header(data, pos):
                nxt = resync(data, pos, b"\x03\x03" if conn.version in (0x0303, 0x0304) else None)
                if not state.lost:
                    state.lost = True
                    findings.append(
                        Finding(
                            "warn",
                            "tls.not_a_record",
                            "bytes that are not a TLS record: skipped",
                            (pos, nxt or len(data)),
                        )
                    )
                if nxt is None:
                    pos = max(pos, len(data) - RECORD_HEADER + 1)
                    break
                side = conn.side(ctx.from_client)
                if side is not None and side.opener is not None:
                    side.resume = SEARCHES  # records may have been lost before this one
                pos = nxt
                continue
            end = pos + RECORD_HEADER + int.from_bytes(data[pos + 3 : pos + 5], "big")
            if end > len(data):
                need = end - pos
                break
            tried: Tried = None
            if data[pos] == 23:
                fast = _application_fast(conn, ctx.from_client, data, pos, end)
                if isinstance(fast, Pdu):
                    pdus.append(fast)
                    pos = end
                    continue
                tried = fast
            pdus.append(_Record(self.keys, conn, state, ctx, data, pos, end, tried).pdu())
            pos = end
        else:
            if pos < len(data):
                need = RECORD_HEADER
        return DecodeResult(tuple(pdus), pos, need, tuple(findings))


Tried = bytes | crypto.DecryptError | None
"""What opening a record under the side's next record number gave, when the fast path tried it
first (the general path does not open it twice); None: not tried."""


def _application_fast(conn: Connection, from_client: bool, data: bytes, pos: int, end: int) -> Pdu | Tried:
    """The bulk of a connection: an application data record of a side whose records are protected,
    opened under its expected record number when its key is known. Its PDU is made here without
    the general path's objects (a _Record, its lists, the side looked up thrice).
    Anything unusual (no key, a failed tag, a handshake message, an alert or padding inside) goes
    to the general path with what opening gave (`Tried`); the side's state is left as it was."""
    if conn.client_is_flow_client is None:
        return None
    side = conn.client if from_client == conn.client_is_flow_client else conn.server
    if not side.encrypted:
        return None
    opener = side.opener
    version = (data[pos + 1] << 8) | data[pos + 2]
    if opener is None:
        if side.no_key and not side.reported:
            return None  # the general path says once why it cannot be opened
        tree = LazyFields(partial(_application_tree, data, pos, end, conn.tls13, None, None))
        record = TlsRecord(23, version, (), {}, False, end - pos - RECORD_HEADER)
        return Pdu("tls", tree, (pos, end), "Application Data", (), (), record)
    seq = side.seq
    try:
        plain = opener.open(
            seq, 23, version, data[pos : pos + RECORD_HEADER], data[pos + RECORD_HEADER : end]
        )
    except crypto.DecryptError as exc:
        return exc
    tls13 = conn.tls13
    if tls13:
        if not plain or plain[-1] != 23:
            return plain
        content = plain[:-1]
        base = pos + RECORD_HEADER
    else:
        content = plain
        base = pos + RECORD_HEADER + side.skip
    side.seq = seq + 1
    side.opened = seq
    side.resume = SEARCHES
    side.astray = False
    proto = "http2" if conn.alpn == "h2" else None
    inner = (InnerPayload(content, base, protocol=proto, transport="stream"),) if content else ()
    tree = LazyFields(partial(_application_tree, data, pos, end, tls13, (content, base, seq), proto))
    return Pdu(
        "tls",
        tree,
        (pos, end),
        "Application Data",
        (),
        inner,
        TlsRecord(23, version, (), {}, True, len(content)),
    )


def _application_tree(
    data: bytes,
    pos: int,
    end: int,
    opaque: bool,
    opened: tuple[bytes, int, int] | None,
    proto: str | None,
) -> tuple[Field, ...]:
    """The detail tree of an application data record: `opened` is (plaintext, where it maps in
    the data, record number), None when it was not opened; `opaque`: the header's type is TLS
    1.3's opaque_type."""
    ctype = data[pos]
    version = (data[pos + 1] << 8) | data[pos + 2]
    prefix = f"{TLS_VERSIONS.get(version, hex(version))} Record Layer"
    children = [
        Field("tls.record.opaque_type" if opaque else "tls.record.content_type", ctype, (pos, pos + 1)),
        Field("tls.record.version", version, (pos + 1, pos + 3)),
        Field("tls.record.length", end - pos - RECORD_HEADER, (pos + 3, pos + 5)),
    ]
    if opened is None:
        body = data[pos + RECORD_HEADER : end]
        children.append(Field("tls.app_data", body.hex(), (pos + RECORD_HEADER, end)))
        return (Field("tls.record", f"{prefix}: Application Data Protocol", (pos, end), tuple(children)),)
    content, base, seq = opened
    # The record's bytes as sent stay `tls.app_data`, as in tshark with a key log (`-Y tls.app_data`
    # finds the same records whether or not they were opened); the plaintext's facts follow.
    children.append(Field("tls.app_data", data[pos + RECORD_HEADER : end].hex(), (pos + RECORD_HEADER, end)))
    children.append(Field("tls.record.sequence_number", seq, (pos, end)))
    if opaque:  # the true type, after the content (as Wireshark shows it)
        at = base + len(content)
        children.append(Field("tls.record.content_type", 23, (at, at + 1)))
    children.append(Field("tls.decrypted", len(content), (base, base + len(content))))
    children.append(Field("tls.app_data_proto", proto or "", (base, base + len(content))))
    return (Field("tls.record", f"{prefix}: Application Data", (pos, end), tuple(children)),)


class _Record:
    """One record's decoding: its fields, findings, what it hands on, the connection events."""

    __slots__ = (
        "children", "conn", "ctx", "data", "end", "facts", "findings", "htypes", "info", "inner",
        "keys", "pos", "protected", "state", "tried",
    )  # fmt: skip

    def __init__(
        self,
        keys: KeyLog,
        conn: Connection,
        state: Direction,
        ctx: FlowContext,
        data: bytes,
        pos: int,
        end: int,
        tried: Tried = None,
    ) -> None:
        self.keys, self.conn, self.state, self.ctx = keys, conn, state, ctx
        self.tried = tried
        self.data, self.pos, self.end = data, pos, end
        self.children: list[Field] = []
        self.findings: list[Finding] = []
        self.inner: list[InnerPayload] = []
        self.htypes: list[int] = []
        self.facts: dict[str, object] = {}
        self.info: list[str] = []
        self.protected = False
        """The record came protected: a ClientHello in it starts a renegotiation."""

    def pdu(self) -> Pdu:
        data, pos, end = self.data, self.pos, self.end
        ctype, version = data[pos], int.from_bytes(data[pos + 1 : pos + 3], "big")
        conn = self.conn
        side = conn.side(self.ctx.from_client)
        protected = (side.encrypted if side is not None else self.state.ccs) and ctype != 20
        self.protected = protected
        opened = self._open(side, ctype, version) if protected and side is not None else None
        if (opened[0] if opened is not None else ctype) == 23:
            return self._application(ctype, version, protected, opened)
        head = self._head(ctype, version, protected)
        decrypted = False
        true_type = ctype
        size = end - pos - RECORD_HEADER
        if ctype == 20:
            self.children.append(Field("tls.change_cipher_spec", None, (pos + 5, end)))
            self.info.append("Change Cipher Spec")
            self.state.ccs = True
            if side is not None:
                conn.change_cipher_spec(side)
        elif opened is not None and side is not None:
            true_type, content, base = opened
            decrypted, size = True, len(content)
            self.children += self._opened(true_type, content, base, side.seq - 1)
            self._content(true_type, content, base)
        elif protected:
            self._encrypted(ctype)
        else:
            self._content(ctype, data[pos + RECORD_HEADER : end], pos + RECORD_HEADER)
        name = nm.CONTENT_TYPES.get(true_type, str(true_type))
        label = f"{TLS_VERSIONS.get(version, hex(version))} Record Layer: {name}"
        record = TlsRecord(true_type, version, tuple(self.htypes), self.facts, decrypted, size)
        fields = (Field("tls.record", label, (pos, end), tuple(head + self.children)),)
        return Pdu(
            "tls", fields, (pos, end), ", ".join(self.info), tuple(self.findings), tuple(self.inner), record
        )

    def _head(self, ctype: int, version: int, protected: bool) -> list[Field]:
        pos = self.pos
        opaque = protected and self.conn.tls13
        return [
            Field("tls.record.opaque_type" if opaque else "tls.record.content_type", ctype, (pos, pos + 1)),
            Field("tls.record.version", version, (pos + 1, pos + 3)),
            Field("tls.record.length", self.end - pos - RECORD_HEADER, (pos + 3, pos + 5)),
        ]

    def _opened(self, true_type: int, content: bytes, base: int, seq: int) -> list[Field]:
        """The fields of a record opened with the key log, before its content's."""
        out = [Field("tls.record.sequence_number", seq, (self.pos, self.end))]
        if self.conn.tls13:  # the true type, after the content (as Wireshark shows it)
            at = base + len(content)
            out.append(Field("tls.record.content_type", true_type, (at, at + 1)))
        out.append(Field("tls.decrypted", len(content), (base, base + len(content))))
        return out

    def _application(
        self, ctype: int, version: int, protected: bool, opened: tuple[int, bytes, int] | None
    ) -> Pdu:
        """An application data record, the bulk of a connection: its plaintext handed on, its
        detail tree built only when someone looks (LazyFields)."""
        pos, end = self.pos, self.end
        side = self.conn.side(self.ctx.from_client)
        seq = side.seq - 1 if side is not None else 0
        inner: tuple[InnerPayload, ...] = ()
        proto = "http2" if self.conn.alpn == "h2" else None
        if opened is not None:
            _, content, base = opened
            if content:
                inner = (InnerPayload(content, base, protocol=proto, transport="stream"),)
            size = len(content)
        else:
            size = end - pos - RECORD_HEADER
        opaque = protected and self.conn.tls13
        tree = partial(
            _application_tree,
            self.data,
            pos,
            end,
            opaque,
            (opened[1], opened[2], seq) if opened is not None else None,
            proto,
        )

        record = TlsRecord(23, version, (), {}, opened is not None, size)
        return Pdu(
            "tls", LazyFields(tree), (pos, end), "Application Data", tuple(self.findings), inner, record
        )

    def _open(self, side: Side, ctype: int, version: int) -> tuple[int, bytes, int] | None:
        """(true content type, plaintext, where it maps in the data), or None: not opened."""
        data, pos, end = self.data, self.pos, self.end
        conn = self.conn
        if side.opener is None:
            if side.no_key and not side.reported:
                side.reported = True
                self._failed(side.no_key)
            return None
        header, fragment = data[pos : pos + RECORD_HEADER], data[pos + RECORD_HEADER : end]
        seq = side.seq
        side.seq += 1
        tried = self.tried
        try:
            if tried is None:
                plain = side.opener.open(seq, ctype, version, header, fragment)
            elif isinstance(tried, crypto.DecryptError):
                raise tried
            else:
                plain = tried
        except crypto.DecryptError as exc:
            searched = side.resume > 0
            found = self._search(side, seq, ctype, version, header, fragment) if searched else None
            if found is None:
                if not side.astray:
                    more = f", nor any of the next {MAX_SKIPPED_RECORDS}" if searched else ""
                    self._failed(f"{exc} (record {seq}{more})")
                    side.astray = searched  # reported once, not once a record
                side.resume = max(0, side.resume - 1)
                return None
            plain = found
        side.opened = side.seq - 1
        side.resume, side.astray = SEARCHES, False
        try:
            if conn.tls13:
                content, true_type = crypto.inner_plaintext(plain)
            else:
                content, true_type = plain, ctype
        except crypto.DecryptError as exc:
            self._failed(f"{exc} (record {side.seq - 1})")
            return None
        return true_type, content, pos + RECORD_HEADER + (0 if conn.tls13 else side.skip)

    def _search(
        self, side: Side, seq: int, ctype: int, version: int, header: bytes, fragment: bytes
    ) -> bytes | None:
        """After a gap: the plaintext under the first of the MAX_SKIPPED_RECORDS record numbers
        after the last one opened whose tag verifies (one `tls.decrypt_resync` note says how many
        were skipped), or None. The side's sequence number moves past the one found."""
        opener = side.opener
        assert opener is not None
        start = side.opened + 1
        for number in range(start, start + MAX_SKIPPED_RECORDS + 1):
            if number == seq:
                continue  # tried already
            try:
                plain = opener.open(number, ctype, version, header, fragment)
            except crypto.DecryptError:
                continue
            side.seq = number + 1
            skipped = number - start
            lost = f"{skipped} record{'' if skipped == 1 else 's'} lost"
            self.findings.append(
                Finding(
                    "note",
                    "tls.decrypt_resync",
                    f"{lost} (a gap in the capture): decryption resumed at record {number}",
                    (self.pos, self.end),
                )
            )
            return plain
        return None

    def _failed(self, why: str) -> None:
        self.findings.append(Finding("warn", "tls.decrypt_failed", why, (self.pos, self.end)))

    def _encrypted(self, ctype: int) -> None:
        """A protected record that was not opened (application data goes to `_application`)."""
        if ctype == 22:
            self.info.append("Encrypted Handshake Message")
        elif ctype == 21:
            self.info.append("Encrypted Alert")
        else:
            self.info.append(nm.CONTENT_TYPES.get(ctype, str(ctype)))

    def _content(self, ctype: int, content: bytes, base: int) -> None:
        """A record's content other than application data (which `_application` takes)."""
        if ctype == 22:
            self._handshake(content, base)
        elif ctype == 21 and len(content) >= 2:
            level, desc = content[0], content[1]
            self.facts["alert"] = (nm.ALERT_LEVELS.get(level, str(level)), nm.ALERTS.get(desc, str(desc)))
            self.children += [
                Field("tls.alert_message.level", level, (base, base + 1)),
                Field("tls.alert_message.desc", desc, (base + 1, base + 2)),
            ]
            self.info.append(f"Alert ({nm.ALERT_LEVELS.get(level, level)}, {nm.ALERTS.get(desc, desc)})")
        else:
            self.info.append(nm.CONTENT_TYPES.get(ctype, f"Content type {ctype}"))

    def _handshake(self, content: bytes, base: int) -> None:
        """Handshake messages of this record, with the start of one left by earlier records.

        The start of a message not yet whole is held in the direction's bytearray, to which each
        record's bytes are appended; it is parsed once it holds the whole message (4 + length
        bytes). A message sent one byte a record thus costs its length once, not once a record."""
        state = self.state
        if state.handshake_off:
            self.info.append("Handshake")
            return
        held = state.handshake
        prior = len(held)
        if prior:
            held += content
            if not self._whole(held):
                self.info.append(f"{nm.HANDSHAKE_TYPES.get(held[0], f'Unknown({held[0]})')} (fragment)")
                return
            buf = bytes(held)
            held.clear()
        else:
            buf = bytes(content)
        at = 0
        events: list[int] = []
        while len(buf) - at >= 4:
            mtype = buf[at]
            length = int.from_bytes(buf[at + 1 : at + 4], "big")
            if length > MAX_HANDSHAKE_MESSAGE:
                self._limit(length)
                return
            if at + 4 + length > len(buf):
                break
            whole = at >= prior
            start = base + at - prior if whole else None
            self._message(mtype, buf[at + 4 : at + 4 + length], start, length)
            events.append(mtype)
            at += 4 + length
        if at < len(buf):
            held += memoryview(buf)[at:]
            name = nm.HANDSHAKE_TYPES.get(buf[at], f"Unknown({buf[at]})")
            self.info.append(f"{name} (fragment)")
        side = self.conn.side(self.ctx.from_client)
        for mtype in events:  # key changes apply to the records after this one
            if side is None:
                break
            if mtype == HANDSHAKE_FINISHED:
                self.conn.finished(side)
            elif mtype == HANDSHAKE_KEY_UPDATE:
                self.conn.key_update(side)

    def _whole(self, held: bytearray) -> bool:
        """Whether the held bytes are a whole message (or declare one over the limit, which the
        caller reports): until then they are only appended to."""
        if len(held) < 4:
            return False
        length = int.from_bytes(held[1:4], "big")
        return length > MAX_HANDSHAKE_MESSAGE or len(held) >= 4 + length

    def _limit(self, length: int) -> None:
        """A message declares more than MAX_HANDSHAKE_MESSAGE: handshake parsing stops this way."""
        self.state.handshake_off = True
        self.state.handshake.clear()
        what = (
            f"a handshake message declares {length} bytes, over {MAX_HANDSHAKE_MESSAGE}:"
            " handshake no longer parsed"
        )
        self.findings.append(Finding("warn", "tls.handshake_limit", what, (self.pos, self.end)))

    def _message(self, mtype: int, body: bytes, start: int | None, length: int) -> None:
        self.htypes.append(mtype)
        name = nm.HANDSHAKE_TYPES.get(mtype, f"Unknown({mtype})")

        def sp(a: int, b: int) -> tuple[int, int]:
            return (start + 4 + a, start + 4 + b) if start is not None else (0, 0)

        span = (start, start + 4 + length) if start is not None else (self.pos, self.end)
        children = [
            Field("tls.handshake.type", mtype, sp(-4, -3)),
            Field("tls.handshake.length", length, sp(-3, 0)),
        ]
        if start is None:
            children.append(Field("tls.handshake.reassembled", f"{length} bytes", span))
        conn = self.conn
        info = name
        try:
            if mtype in (1, 2):
                children += hello(mtype, body, sp, self.facts, "tls")
                detail = self.facts.get("client_hello" if mtype == 1 else "server_hello")
                assert isinstance(detail, dict)
                if mtype == 1:
                    conn.client_hello(detail["random"], self.ctx.from_client, self.protected)
                    if detail.get("sni"):
                        info = f"{name} (SNI={detail['sni']})"
                else:
                    conn.server_hello(detail, self.keys)
            elif mtype == 11:
                children += certificates(body, sp, self.facts, self.findings, "tls", tls13=conn.tls13)
            elif mtype == HANDSHAKE_ENCRYPTED_EXTENSIONS:
                found: dict[str, object] = {}
                children += extensions(body, 0, sp, found, "tls")
                self.facts["encrypted_extensions"] = found
                alpn = found.get("alpn")
                if isinstance(alpn, list) and alpn:
                    conn.alpn = str(alpn[0])
            elif mtype == HANDSHAKE_KEY_UPDATE and body:
                children.append(Field("tls.handshake.key_update", body[0], sp(0, 1)))
        except (IndexError, ValueError, struct.error) as exc:
            self.findings.append(Finding("warn", "tls.bad_handshake", f"{name}: {exc}", span))
        self.info.append(info)
        self.children.append(Field("tls.handshake", name, span, tuple(children)))
