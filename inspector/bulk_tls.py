"""The bulk path of `--report calls` for gRPC over TLS: records opened here, their plaintext fed to
the calls extension (decoders/grpc/_bulk.c) as h2c payloads are.

Per TLS record, the normal pass builds a PDU, a detail tree, an inner payload and a reassembly
step in the session, then runs the Python HTTP/2 decoder on the plaintext: on bench/bench_decrypt.py
(200,000 packets) that is ~20 s where tshark takes ~7. Here a connection is followed only as far
as the calls need: the handshake through the TLS package's own pieces (`handshake.hello`,
`handshake.extensions`, `connection.Connection` and its key schedule, the record openers of
`crypto`), then application data records opened one after the other, every tag verified.

Which connections: the in-order TCP flows of `bulk_calls.clean_flows` whose first payload is the
client's ClientHello, which the registry hands to our TLS decoder, and whose random has a key in
the key log that decoder was configured with (`--keylog`'s). Key changes are followed as the TLS
decoder follows them (ChangeCipherSpec, Finished, KeyUpdate). A connection leaves the bulk path
(to the normal pass, which then decodes it whole and says what was wrong) at the first thing the
normal pass would treat with more care than this module does: bytes that are not a record, a tag
that fails, a record with no key to open it, a HelloRetryRequest, a second ClientHello, a
handshake message that does not parse or is over the TLS decoder's limit, application data
before the keys, ALPN other than h2, a server whose first plaintext is not where an HTTP/2 frame
starts. The plaintext of the records a packet completes is attributed to that packet (as the
session does: a record spanning segments is decoded when its last byte arrives), so the
extension's rows equal the normal pass's row for row (tests/inspector/test_bulk_tls.py compares
them).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from protoscope.decoders.http2.decoder import find_http2_start
from protoscope.decoders.http2.frames import find_tls_records
from protoscope.decoders.tls import crypto
from protoscope.decoders.tls.connection import Connection, Side
from protoscope.decoders.tls.decoder import MAX_HANDSHAKE_MESSAGE, MAX_RECORD, TlsDecoder
from protoscope.decoders.tls.handshake import extensions, hello
from protoscope.decoders.tls.keylog import KeyLog

from . import bulk_calls
from .session import Session

RECORD_HEADER = 5
CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA = 20, 21, 22, 23
CLIENT_HELLO, SERVER_HELLO, NEW_SESSION_TICKET, ENCRYPTED_EXTENSIONS = 1, 2, 4, 8
FINISHED, KEY_UPDATE = 20, 24
HTTP2_FRAME_HEADER = 9
MAX_HELD = 256 << 20
"""Plaintext bytes kept from the check run for the run that writes rows; past this, the records
are opened a second time instead (memory stays bounded on any capture)."""


def _no_span(a: int, b: int) -> tuple[int, int]:
    return (0, 0)


class Leave(Exception):
    """The connection goes to the normal pass; the message says why (tests read it)."""


@dataclass(slots=True)
class TlsPlan:
    flows: npt.NDArray[np.bool_]
    """Per flow: its connection is opened here."""
    packets: npt.NDArray[np.int64]
    """Packets with payload of those flows, in frame order."""


def client_hello_random(payload: bytes) -> bytes | None:
    """The random of a ClientHello that starts a record at the payload's start, else None."""
    if len(payload) < 43 or payload[0] != HANDSHAKE or payload[1] != 3 or payload[5] != CLIENT_HELLO:
        return None
    return bytes(payload[11:43])


def has_key(keys: KeyLog, random: bytes) -> bool:
    return (
        keys.get("CLIENT_RANDOM", random) is not None
        or keys.get("CLIENT_HANDSHAKE_TRAFFIC_SECRET", random) is not None
    )


def plan_tls(session: Session, clean: bulk_calls.CleanFlows) -> TlsPlan | None:
    """The TLS connections this module may open; None when there are none."""
    tls = session.registry.decoders.get("tls")
    if not isinstance(tls, TlsDecoder) or not tls.keys:
        return None
    keys = tls.keys
    ix = session.index
    ok, data = clean.ok.copy(), clean.data
    flow = ix.flow[data]
    for j in clean.first.tolist():
        fid = int(flow[j])
        if not ok[fid]:
            continue
        i = int(data[j])
        payload = ix.payload(i)
        random = client_hello_random(payload)
        if ix.direction[i] != 0 or random is None or not has_key(keys, random):
            ok[fid] = False
            continue
        chosen, _ = session.registry.choose(payload, session.context(i))
        ok[fid] = chosen is tls
    if not ok.any():
        return None
    return TlsPlan(ok, data[ok[flow]])


@dataclass(slots=True)
class Followed:
    """One TCP connection followed as the TLS decoder follows it, for its plaintext only."""

    keys: KeyLog
    conn: Connection = field(default_factory=Connection)
    held: list[bytes] = field(default_factory=lambda: [b"", b""])
    """Per direction (0: the client), the start of a record not yet whole."""
    handshake: list[bytes] = field(default_factory=lambda: [b"", b""])
    """Per direction, the start of a handshake message not yet whole."""
    sides: list[Side | None] = field(default_factory=lambda: [None, None])
    started: list[bool] = field(default_factory=lambda: [False, False])
    """Per direction: the first plaintext was checked (`_start`)."""
    server_first: bytes = b""
    """The server's plaintext while it is shorter than a frame header."""
    tls13: bool = False
    """The ServerHello chose TLS 1.3 (`Connection.tls13`, read once per record here)."""

    def feed(self, d: int, payload: bytes) -> bytes:
        """The plaintext of the application data records this segment completes (Leave when the
        connection must go to the normal pass). Application data under known keys, the bulk of a
        connection, is opened here inline; any other record goes to `_record`."""
        held = self.held[d]
        data = held + payload if held else payload
        n = len(data)
        pos = 0
        out: list[bytes] = []
        side = self.sides[d]
        opener = side.opener if side is not None and side.encrypted else None
        while n - pos >= RECORD_HEADER:
            ctype = data[pos]
            length = (data[pos + 3] << 8) | data[pos + 4]
            if not 20 <= ctype <= 24 or data[pos + 1] != 3 or data[pos + 2] > 4 or length > MAX_RECORD:
                raise Leave("not a record")
            end = pos + RECORD_HEADER + length
            if end > n:
                break
            if ctype == APPLICATION_DATA and opener is not None and side is not None:
                seq = side.seq
                version = (data[pos + 1] << 8) | data[pos + 2]
                try:
                    plain = opener.open(
                        seq, ctype, version, data[pos : pos + RECORD_HEADER], data[pos + 5 : end]
                    )
                except crypto.DecryptError as exc:
                    raise Leave(f"record {seq}: {exc}") from None
                side.seq = seq + 1
                if not self.tls13:
                    content = plain
                elif plain and plain[-1] == APPLICATION_DATA:
                    content = plain[:-1]
                else:  # a handshake message or an alert, or padding after the content type
                    content = self._inner(d, plain)
                    side = self.sides[d]
                    opener = side.opener if side is not None and side.encrypted else None
            else:
                content = self._record(d, ctype, data, pos, end)
                side = self.sides[d]
                opener = side.opener if side is not None and side.encrypted else None
            if content:
                if not self.started[d]:
                    self._start(d, content)
                out.append(content)
            pos = end
        self.held[d] = data[pos:] if pos < n else b""
        return out[0] if len(out) == 1 else b"".join(out)

    def _inner(self, d: int, plain: bytes) -> bytes:
        """A TLS 1.3 record's plaintext: its true content type after the content, then padding."""
        try:
            content, true_type = crypto.inner_plaintext(plain)
        except crypto.DecryptError as exc:
            raise Leave(str(exc)) from None
        return self._content(d, true_type, content)

    def _record(self, d: int, ctype: int, data: bytes, pos: int, end: int) -> bytes:
        """Any other record, as decoders/tls/decoder.py's _Record changes the connection."""
        conn = self.conn
        side = conn.side(d == 0)
        fragment = data[pos + RECORD_HEADER : end]
        if side is None:
            if ctype != HANDSHAKE or d != 0:
                raise Leave("a record before the client's ClientHello")
            return self._content(d, ctype, fragment)
        if ctype == CHANGE_CIPHER_SPEC:
            conn.change_cipher_spec(side)
            return b""
        if not side.encrypted:
            if ctype == APPLICATION_DATA:
                raise Leave("application data before the keys")
            return self._content(d, ctype, fragment)
        if side.opener is None:
            raise Leave("a protected record without a key")
        version = (data[pos + 1] << 8) | data[pos + 2]
        try:
            plain = side.opener.open(side.seq, ctype, version, data[pos : pos + RECORD_HEADER], fragment)
        except crypto.DecryptError as exc:
            raise Leave(f"record {side.seq}: {exc}") from None
        side.seq += 1
        return self._inner(d, plain) if self.tls13 else self._content(d, ctype, plain)

    def _content(self, d: int, ctype: int, content: bytes) -> bytes:
        """What a record holds: application data is returned, handshake messages followed."""
        if ctype == APPLICATION_DATA:
            return content
        if ctype == HANDSHAKE:
            self._handshake(d, content)
        elif ctype != ALERT:
            raise Leave(f"content type {ctype}")
        return b""

    def _handshake(self, d: int, content: bytes) -> None:
        held = self.handshake[d]
        buf = held + content if held else bytes(content)
        at = 0
        events: list[int] = []
        while len(buf) - at >= 4:
            mtype = buf[at]
            length = int.from_bytes(buf[at + 1 : at + 4], "big")
            if length > MAX_HANDSHAKE_MESSAGE:
                raise Leave("a handshake message over the TLS decoder's limit")
            if at + 4 + length > len(buf):
                break
            self._message(d, mtype, buf[at + 4 : at + 4 + length])
            events.append(mtype)
            at += 4 + length
        self.handshake[d] = buf[at:]
        conn = self.conn
        side = conn.side(d == 0)
        for mtype in events:  # key changes apply to the records after this one
            if side is None:
                break
            if mtype == FINISHED:
                conn.finished(side)
                if side.opener is None:
                    raise Leave("no application traffic secret")
            elif mtype == KEY_UPDATE:
                conn.key_update(side)

    def _message(self, d: int, mtype: int, body: bytes) -> None:
        conn = self.conn
        facts: dict[str, object] = {}
        try:
            if mtype == CLIENT_HELLO:
                if d != 0 or conn.client_random is not None:
                    raise Leave("a ClientHello from the server or a second one")
                hello(mtype, body, _no_span, facts, "tls")
                detail = facts["client_hello"]
                assert isinstance(detail, dict)
                conn.client_hello(detail["random"], True)
                self.sides = [conn.client, conn.server]
            elif mtype == SERVER_HELLO:
                if d != 1 or conn.suite_id is not None or conn.client_random is None:
                    raise Leave("a ServerHello out of place")
                hello(mtype, body, _no_span, facts, "tls")
                detail = facts["server_hello"]
                assert isinstance(detail, dict)
                if detail.get("hello_retry_request"):
                    raise Leave("HelloRetryRequest")
                conn.server_hello(detail, self.keys)
                self.tls13 = conn.tls13
                if conn.tls13:
                    if conn.client.opener is None or conn.server.opener is None:
                        raise Leave("no handshake traffic secrets")
                elif conn.client.pending is None or conn.server.pending is None:
                    raise Leave("no key for this connection")
            elif mtype == ENCRYPTED_EXTENSIONS:
                extensions(body, 0, _no_span, facts, "tls")
                alpn = facts.get("alpn")
                if isinstance(alpn, list) and alpn:
                    conn.alpn = str(alpn[0])
        except (IndexError, ValueError, KeyError, struct.error) as exc:
            raise Leave(f"handshake message {mtype}: {exc}") from None

    def _start(self, d: int, content: bytes) -> None:
        """What the extension assumes of the first plaintext each way, checked: ALPN chose h2 (no
        later handshake can change it here), the client starts with the preface (the extension
        checks that), the server with a frame at its first byte. The HTTP/2 decoder looks for
        that frame once it has a frame header's worth (it waits on fewer bytes), in the bytes of
        all the records so far."""
        if self.conn.alpn != "h2":  # the TLS decoder hands plaintext to HTTP/2 only then
            raise Leave(f"ALPN {self.conn.alpn!r}, not h2")
        if d == 0:
            self.started[d] = True
            return
        first = self.server_first = self.server_first + content
        if len(first) < HTTP2_FRAME_HEADER:
            if find_tls_records(first) is not None:
                raise Leave("the server's first plaintext holds TLS records")
            return
        if find_http2_start(first) != 0:
            raise Leave("the server's first plaintext is not where a frame starts")
        self.started[d] = True
        self.server_first = b""


@dataclass(slots=True)
class Chunk:
    """Plaintext of up to bulk_calls.CHUNK packets, as the extension's `feed` takes it."""

    buffer: bytes
    starts: npt.NDArray[np.int64]
    lengths: npt.NDArray[np.uint32]
    packets: npt.NDArray[np.int64]
    flows: npt.NDArray[np.int32]
    directions: npt.NDArray[np.uint8]
    ts_ns: npt.NDArray[np.int64]

    def only(self, flows: npt.NDArray[np.bool_]) -> Chunk:
        keep = flows[self.flows]
        return Chunk(
            self.buffer,
            self.starts[keep],
            self.lengths[keep],
            self.packets[keep],
            self.flows[keep],
            self.directions[keep],
            self.ts_ns[keep],
        )


def chunks(
    session: Session, plan: TlsPlan, flows: npt.NDArray[np.bool_], left: dict[int, str]
) -> Iterator[Chunk]:
    """The plaintext of `flows`' connections in frame order; the connections that must go to the
    normal pass are added to `left` ({flow: why}) and their plaintext stops there."""
    ix = session.index
    rec = ix.capture.records
    tls = session.registry.decoders.get("tls")
    assert isinstance(tls, TlsDecoder)
    keys = tls.keys
    buf = ix.capture.buffer
    conns: dict[int, Followed] = {}
    packets = plan.packets[flows[ix.flow[plan.packets]]]
    for a in range(0, len(packets), bulk_calls.CHUNK):
        p = packets[a : a + bulk_calls.CHUNK]
        starts = (rec.data_off[p].astype(np.int64) + ix.payload_off[p]).tolist()
        lengths = ix.payload_len[p].astype(np.int64).tolist()
        fl = ix.flow[p].tolist()
        dr = ix.direction[p].tolist()
        parts: list[bytes] = []
        sizes: list[int] = []
        kept: list[int] = []
        for k, fid in enumerate(fl):
            conn = conns.get(fid)
            if conn is None:
                if fid in left:
                    continue
                conn = conns[fid] = Followed(keys)
            s = starts[k]
            try:
                plain = conn.feed(dr[k], buf[s : s + lengths[k]])
            except Leave as exc:
                left[fid] = str(exc)
                del conns[fid]
                continue
            except Exception as exc:  # whatever surprises us here, the normal pass decodes it
                left[fid] = f"unexpected {type(exc).__name__}: {exc}"
                del conns[fid]
                continue
            if plain:
                parts.append(plain)
                sizes.append(len(plain))
                kept.append(k)
        at = np.array(kept, np.int64)
        size = np.array(sizes, np.int64)
        q = p[at]
        yield Chunk(
            b"".join(parts),
            np.cumsum(size) - size,
            size.astype(np.uint32),
            q.astype(np.int64),
            ix.flow[q].astype(np.int32),
            ix.direction[q].astype(np.uint8),
            rec.ts_ns[q].astype(np.int64),
        )
        ix.capture.release_pages()


def _feed(dec: Any, chunk: Chunk) -> list[Any]:
    result: list[Any] = dec.feed(
        chunk.buffer, chunk.starts, chunk.lengths, chunk.packets, chunk.flows, chunk.directions, chunk.ts_ns
    )
    return result


def _decoder(session: Session, emit: bool) -> Any:
    from .report.rows import DRAIN_EVERY

    assert bulk_calls._bulk is not None
    ix = session.index
    # The connections taken start with the ClientHello on the flow's client side: the flow's client
    # is the TLS client and so the calls' client.
    clients = [json.dumps(str(f.client), ensure_ascii=False) for f in ix.flows]
    return bulk_calls._bulk.Decoder(len(ix.flows), emit, DRAIN_EVERY, clients)


def check(
    session: Session, plan: TlsPlan
) -> tuple[npt.NDArray[np.bool_], dict[int, str], list[Chunk] | None]:
    """The first run: (the flows whose rows the extension writes, {flow: why} of those left to the
    normal pass, the plaintext kept for the second run or None when it was too much to keep)."""
    left: dict[int, str] = {}
    dec = _decoder(session, emit=False)
    kept: list[Chunk] | None = []
    held = 0
    for chunk in chunks(session, plan, plan.flows, left):
        _feed(dec, chunk)
        held += len(chunk.buffer)
        if kept is not None:
            if held > MAX_HELD:
                kept = None
            else:
                kept.append(chunk)
    dec.finish(len(session.index))
    for fid, where in dec.bailed().items():
        left.setdefault(int(fid), f"the extension: {where}")
    flows = plan.flows.copy()
    flows[list(left)] = False
    return flows, left, kept


def rows(
    session: Session, plan: TlsPlan, flows: npt.NDArray[np.bool_], kept: list[Chunk] | None
) -> Iterator[Any]:
    """The second run: the extension's rows of `flows` (those `check` kept)."""
    dec = _decoder(session, emit=True)
    source = (c.only(flows) for c in kept) if kept is not None else chunks(session, plan, flows, {})
    for chunk in source:
        yield from _feed(dec, chunk)
    yield from dec.finish(len(session.index))
    if dec.bailed():
        raise RuntimeError(f"the calls extension bailed on TLS connections it had checked: {dec.bailed()}")
