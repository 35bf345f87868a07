"""User messages put together from DATA and I-DATA fragments (RFC 9260 section 6.9, RFC 8260
section 2.1), and retransmissions found by TSN, for one direction of an association.

DATA: the fragments of a message have consecutive TSNs, the first with the B bit, the last with
the E bit (ordered and unordered alike). Each fragment kept knows the TSN of its message's first
fragment once a run of consecutive TSNs reaches back to one; a fragment that arrives fills in the
fragments after it, and each fragment learns its head once, so a message of n fragments costs O(n)
whatever order they come in. I-DATA: fragments are grouped by (stream, U bit, MID) and ordered by
FSN; the first (B) carries the PPID and FSN 0 implicitly.

A message is handed on when it is whole, in the order the capture completes it: the decoder shows
what the wire carried, and ordered delivery by SSN is the receiver's business (its SSN is kept).

Memory is bounded per direction by named limits (like decoders/dtls/records.py): fragments (DATA
and I-DATA alike) and bytes held (each fragment charged PIECE_OVERHEAD on top of its payload), the
size of one message, I-DATA messages in progress, and the TSNs remembered for retransmissions. A
limit hit drops the oldest (or gives up the message) and is reported once. An empty fragment is not
held (RFC 9260 section 6.2: a DATA chunk without user data is an error the receiver aborts on).

FORWARD-TSN and I-FORWARD-TSN cost O(1) a chunk plus what they drop: a sender repeats one until it
is acknowledged, so one that does not advance the cumulative TSN already seen is ignored, and the
held fragments are dropped from the oldest while they are at or below it.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from protoscope.decoders.api import Finding

from .wire import DataFacts

MAX_MESSAGE = 4 << 20
"""Largest user message reassembled (bytes). WebRTC stacks announce a max-message-size of 64 KiB
(RFC 8841's default) to 256 KiB (Chrome, aiortc); an attacker's fragments never end. Past it the
message is given up (`sctp.reassembly_limit`) when its last fragment comes; until then its
fragments count against MAX_PENDING_BYTES like any others."""
MAX_PENDING_BYTES = 8 << 20
"""User data held per direction in fragments of messages not yet whole: two of the largest
messages. Past it the oldest fragments are dropped."""
MAX_PENDING_FRAGMENTS = 16384
"""Fragments held per direction, DATA and I-DATA pieces together: MAX_PENDING_BYTES in aiortc's
1172-byte chunks is ~7,200; an attacker's 1-byte fragments would cost an entry (~200 bytes) each.
Past it the oldest DATA fragment, then the oldest I-DATA message, is dropped."""
PIECE_OVERHEAD = 256
"""Bytes charged against MAX_PENDING_BYTES for each fragment held, on top of its payload: what
holding one costs (its entry, its object); tiny fragments are not free."""
MAX_I_DATA_MESSAGES = 1024
"""I-DATA messages in progress per direction (interleaving lets every stream have one or more)."""
MAX_TSN_HISTORY = 16384
"""TSNs remembered per direction to tell a retransmission (with the frame of the first
transmission each; 8 bytes a TSN): a sender retransmits what is outstanding, a few hundred chunks
of a congestion window, within its RTO (60 s at most). An older TSN sent again is not recognised."""

TSN_MOD = 1 << 32
HALF = 1 << 31


def tsn_le(a: int, b: int) -> bool:
    """a <= b in serial number arithmetic (RFC 1982), as TSNs wrap."""
    return a == b or (b - a) % TSN_MOD < HALF


@dataclass(slots=True)
class Fragment:
    flags: int
    sid: int
    ssn: int
    ppid: int
    data: bytes
    frame: int
    head: int | None = None
    """TSN of the first fragment of its message, once known."""


@dataclass(frozen=True, slots=True)
class Assembled:
    """A whole message, before the decoder reads its PPID."""

    sid: int
    ppid: int
    data: bytes
    unordered: bool
    sequence: int
    first_tsn: int
    last_tsn: int
    frames: tuple[int, ...]
    i_data: bool = False


@dataclass(slots=True)
class IMessage:
    """An I-DATA message being reassembled: its fragments by FSN."""

    ppid: int | None = None
    first_tsn: int | None = None
    last_fsn: int | None = None
    pieces: dict[int, tuple[bytes, int, int]] = field(default_factory=dict)
    """FSN -> (bytes, frame, TSN)."""
    size: int = 0
    given_up: bool = False


@dataclass(slots=True)
class Direction:
    """One direction of an association: what its sender has sent."""

    fragments: dict[int, Fragment] = field(default_factory=dict)
    """TSN -> a DATA fragment of a message not yet whole; oldest first (dropped first)."""
    pending_bytes: int = 0
    """Payload bytes held plus PIECE_OVERHEAD a fragment, DATA and I-DATA."""
    pending_pieces: int = 0
    """I-DATA pieces held, over all the messages in progress."""
    i_messages: dict[tuple[int, bool, int], IMessage] = field(default_factory=dict)
    """(stream, unordered, MID) -> an I-DATA message in progress; oldest first."""
    seen_tsns: array[int] | None = None
    seen_frames: array[int] | None = None
    """The TSNs seen, and the frame each was first seen in: rings of MAX_TSN_HISTORY slots indexed
    by TSN (a sender's TSNs grow by one, so a ring keeps the last MAX_TSN_HISTORY of them), 128
    KiB for a direction that carries data (a dict took ~100 bytes a TSN); made at its first."""
    forward_cumulative: int | None = None
    """The highest New Cumulative TSN of a FORWARD-TSN or I-FORWARD-TSN seen."""
    limits_hit: set[str] = field(default_factory=set)

    # -- bookkeeping -----------------------------------------------------------------------

    def limit(self, name: str, message: str, findings: list[Finding]) -> None:
        """A `sctp.reassembly_limit` finding, once per limit and direction."""
        if name not in self.limits_hit:
            self.limits_hit.add(name)
            findings.append(Finding("warn", "sctp.reassembly_limit", f"{name}: {message}"))

    def retransmission(self, tsn: int, frame: int) -> int | None:
        """The frame where `tsn` was first seen, or None (and it is remembered) when it is new."""
        if self.seen_tsns is None or self.seen_frames is None:
            self.seen_tsns = array("I", bytes(4 * MAX_TSN_HISTORY))
            self.seen_frames = array("I", bytes(4 * MAX_TSN_HISTORY))
        slot = tsn % MAX_TSN_HISTORY
        first = self.seen_frames[slot]
        if first and self.seen_tsns[slot] == tsn:
            return first
        self.seen_tsns[slot] = tsn
        self.seen_frames[slot] = frame & 0xFFFFFFFF
        return None

    def _drop(self, tsn: int) -> None:
        fragment = self.fragments.pop(tsn)
        self.pending_bytes -= len(fragment.data) + PIECE_OVERHEAD

    # -- DATA ------------------------------------------------------------------------------

    def add_data(self, d: DataFacts, payload: bytes, frame: int, findings: list[Finding]) -> Assembled | None:
        """Adds a DATA fragment (not a retransmission); returns the message it completes."""
        tsn = d.tsn
        if d.begin and d.end:  # the common case: a message in one chunk
            return Assembled(d.sid, d.ppid or 0, payload, d.unordered, d.sequence, tsn, tsn, (frame,))
        if not payload:
            return None  # nothing to reassemble (and an attacker's empty fragments cost nothing)
        prev = self.fragments.get((tsn - 1) % TSN_MOD)
        frag = Fragment(d.flags, d.sid, d.sequence, d.ppid or 0, payload, frame)
        if d.begin:
            frag.head = tsn
        elif prev is not None and prev.head is not None and not prev.flags & 0x01 and _same(prev, frag):
            frag.head = prev.head
        self._make_room(len(payload), findings)
        self.fragments[tsn] = frag
        self.pending_bytes += len(payload) + PIECE_OVERHEAD
        if frag.head is None:
            return None
        # Fill in the heads of the fragments after this one, up to an E (a whole message) or a
        # gap; each fragment is filled in once.
        last, at = frag, tsn
        while not last.flags & 0x01:
            nxt = self.fragments.get((at + 1) % TSN_MOD)
            if nxt is None or nxt.head is not None or nxt.flags & 0x02 or not _same(frag, nxt):
                return None
            nxt.head = frag.head
            last, at = nxt, (at + 1) % TSN_MOD
        return self._complete(frag.head, at, findings)

    def _complete(self, head: int, tail: int, findings: list[Finding]) -> Assembled | None:
        count = (tail - head) % TSN_MOD + 1
        parts: list[Fragment] = []
        for k in range(count):
            tsn = (head + k) % TSN_MOD
            frag = self.fragments.get(tsn)
            if frag is not None:
                parts.append(frag)
                self._drop(tsn)
        if len(parts) != count:  # a fragment was dropped under a limit meanwhile
            return None
        size = sum(len(p.data) for p in parts)
        if size > MAX_MESSAGE:
            self.limit(
                "MAX_MESSAGE", f"a message of {size} bytes, over {MAX_MESSAGE}: not reassembled", findings
            )
            return None
        first = parts[0]
        frames = tuple(dict.fromkeys(p.frame for p in parts))
        data = b"".join(p.data for p in parts)
        return Assembled(first.sid, first.ppid, data, bool(first.flags & 0x04), first.ssn, head, tail, frames)

    def _make_room(
        self, incoming: int, findings: list[Finding], keep: tuple[int, bool, int] | None = None
    ) -> None:
        """Drops the oldest fragments (DATA first, then I-DATA messages other than `keep`) until
        one more fragment of `incoming` bytes fits within the limits."""
        while len(self.fragments) + self.pending_pieces >= MAX_PENDING_FRAGMENTS:
            if not self._drop_oldest(keep):  # `keep` alone: add_i_data bounds its pieces
                break
            self.limit(
                "MAX_PENDING_FRAGMENTS",
                f"over {MAX_PENDING_FRAGMENTS} fragments held: the oldest are dropped",
                findings,
            )
        while self.pending_bytes + incoming + PIECE_OVERHEAD > MAX_PENDING_BYTES:
            if not self._drop_oldest(keep):  # this message alone: MAX_MESSAGE bounds it
                break
            self.limit(
                "MAX_PENDING_BYTES",
                f"over {MAX_PENDING_BYTES} bytes of fragments held: the oldest are dropped",
                findings,
            )

    def _drop_oldest(self, keep: tuple[int, bool, int] | None) -> bool:
        """Drops the oldest DATA fragment, or else the oldest I-DATA message other than `keep`
        (O(1): `keep`, when it is there, is one of the first two). False when nothing could go."""
        if self.fragments:
            self._drop(next(iter(self.fragments)))
            return True
        other = next((k for k in self.i_messages if k != keep), None)
        if other is None:
            return False
        self._drop_i(other)
        return True

    # -- I-DATA ----------------------------------------------------------------------------

    def add_i_data(
        self, d: DataFacts, payload: bytes, frame: int, findings: list[Finding]
    ) -> Assembled | None:
        key = (d.sid, d.unordered, d.sequence)
        if d.begin and d.end:
            if key in self.i_messages:  # a message in one chunk ends what was held under its MID
                self._drop_i(key)
            return Assembled(
                d.sid, d.ppid or 0, payload, d.unordered, d.sequence, d.tsn, d.tsn, (frame,), True
            )
        if not payload:
            return None  # nothing to reassemble (and an attacker's empty pieces cost nothing)
        msg = self.i_messages.get(key)
        if msg is None:
            while len(self.i_messages) >= MAX_I_DATA_MESSAGES:
                self._drop_i(next(iter(self.i_messages)))
                self.limit(
                    "MAX_I_DATA_MESSAGES",
                    f"over {MAX_I_DATA_MESSAGES} I-DATA messages in progress: the oldest are dropped",
                    findings,
                )
            msg = self.i_messages[key] = IMessage()
        if msg.given_up or d.fsn in msg.pieces:
            return None
        if msg.size + len(payload) > MAX_MESSAGE:
            self.limit(
                "MAX_MESSAGE", f"an I-DATA message over {MAX_MESSAGE} bytes: not reassembled", findings
            )
            self._release(msg)
            msg.pieces, msg.size, msg.given_up = {}, 0, True
            return None
        self._make_room(len(payload), findings, key)
        if d.begin:
            msg.ppid, msg.first_tsn = d.ppid, d.tsn
        if d.end:
            msg.last_fsn = d.fsn
        msg.pieces[d.fsn] = (payload, frame, d.tsn)
        msg.size += len(payload)
        self.pending_bytes += len(payload) + PIECE_OVERHEAD
        self.pending_pieces += 1
        if len(msg.pieces) > MAX_PENDING_FRAGMENTS:
            self._drop_i(key)
            self.limit("MAX_PENDING_FRAGMENTS", "an I-DATA message in too many fragments", findings)
            return None
        if msg.ppid is None or msg.last_fsn is None or len(msg.pieces) != msg.last_fsn + 1:
            return None
        if any(fsn not in msg.pieces for fsn in range(msg.last_fsn + 1)):
            return None
        del self.i_messages[key]
        self._release(msg)
        pieces = [msg.pieces[fsn] for fsn in range(msg.last_fsn + 1)]
        frames = tuple(dict.fromkeys(p[1] for p in pieces))
        return Assembled(
            d.sid,
            msg.ppid,
            b"".join(p[0] for p in pieces),
            d.unordered,
            d.sequence,
            msg.first_tsn if msg.first_tsn is not None else d.tsn,
            pieces[-1][2],
            frames,
            True,
        )

    def _drop_i(self, key: tuple[int, bool, int]) -> None:
        self._release(self.i_messages.pop(key))

    def _release(self, msg: IMessage) -> None:
        """Takes what `msg` holds off the books (it is dropped, given up or complete)."""
        self.pending_bytes -= msg.size + PIECE_OVERHEAD * len(msg.pieces)
        self.pending_pieces -= len(msg.pieces)

    # -- FORWARD-TSN and I-FORWARD-TSN -----------------------------------------------------

    def forward(self, new_cumulative: int, streams: list[tuple[int, bool, int]], i_forward: bool) -> int:
        """The sender abandoned everything up to `new_cumulative` (RFC 3758 section 3.5, RFC 8260
        section 2.3): the fragments held of those messages go. Returns how many were dropped.

        One that does not advance the cumulative TSN already seen is a repeat and changes nothing.
        DATA fragments go from the oldest while they are at or below it (a fragment that came out
        of order behind a newer one stays until a limit drops it): O(1) plus what is dropped."""
        last = self.forward_cumulative
        if last is not None and tsn_le(new_cumulative, last):
            return 0
        self.forward_cumulative = new_cumulative
        dropped = 0
        if not i_forward:
            while self.fragments:
                oldest = next(iter(self.fragments))
                if not tsn_le(oldest, new_cumulative):
                    break
                self._drop(oldest)
                dropped += 1
            return dropped
        # One pass over the messages held, whatever the number of entries (a chunk may list 8,000).
        upto: dict[tuple[int, bool], int] = {}
        for sid, unordered, mid in streams:
            prior = upto.get((sid, unordered))
            upto[(sid, unordered)] = mid if prior is None or tsn_le(prior, mid) else prior
        for key in [k for k in self.i_messages if (k[0], k[1]) in upto and tsn_le(k[2], upto[(k[0], k[1])])]:
            self._drop_i(key)
            dropped += 1
        return dropped


def _same(a: Fragment, b: Fragment) -> bool:
    """Fragments of one message share the stream, the U bit and (ordered) the SSN."""
    unordered = bool(a.flags & 0x04)
    return a.sid == b.sid and unordered == bool(b.flags & 0x04) and (unordered or a.ssn == b.ssn)
