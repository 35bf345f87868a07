"""The STUN transactions report (`--report stun_transactions`): one row per request and leg.

A request (RFC 8489 section 6) is followed from its first copy to its first answer: its
retransmissions are counted, the round-trip time runs from the first copy to the first success or
error response, and what the request and the answer said of the call (USERNAME, USE-CANDIDATE,
ICE-CONTROLLING/CONTROLLED, PRIORITY, XOR-MAPPED-ADDRESS, XOR-RELAYED-ADDRESS, LIFETIME, ERROR-CODE)
goes in its row. Indications have none: nothing answers them.

A transaction is named by its id, whether TURN relayed it, and its requester's "ip:port": a
server sends a response to the source transport address of its request (RFC 8489), so an RFC 5780
test answered from the server's other address (a flow of its own) still finds its request, and
the copies of one ICE check on the legs of a relayed call (inside ChannelData or a Send/Data
indication between the client and the TURN server, then in the clear between the relayed address
and the peer) are a row each, as they travel. What TURN carries is fed right after its carrier,
in the same packet (inspector/session.py dispatches inner payloads so): the STUN PDU that follows
ChannelData or a Send/Data indication, with the size of the bytes it carried, is relayed.

Rows come out in the order transactions finish: when answered, when given up (GIVE_UP_AFTER
without an answer, or MAX_OPEN_TRANSACTIONS pushed them out), or when the capture ends. Answered
and given-up ones are handed over by `drain()` and forgotten, so a long capture holds only the
open ones; a later copy of a finished request or a second response is not a new transaction
(FINISHED_KEPT ids remember them). A response with no request in the capture makes no row: the
capture may have started after it.

Findings: the STUN decoder already marks retransmissions (`stun.retransmission`) and the WebRTC
sessions report unanswered ICE checks (`ice.no_response`), so the one finding here is
`stun.no_response` for other requests (a STUN server's Binding, TURN's methods) that nothing
answered while the capture went on for ANSWER_WAIT after them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import ClassVar

from protoscope.decoders.api import AnalysisFinding, Endpoint, FlowContext, Pdu

from . import attributes as at
from .messages import StunRecord

REQUEST, INDICATION, SUCCESS, ERROR = 0, 1, 2, 3
"""RFC 8489 section 5: the message classes."""
BINDING, SEND, DATA, GOOG_PING = 0x001, 0x006, 0x007, 0x080
GIVE_UP_AFTER = 39.5
"""Seconds after its first copy that an unanswered request is given up: RFC 8489 section 6.2.1's
transaction timeout with the default RTO (Rc = 7 copies over UDP, Ti over TCP: 39.5 s both)."""
ANSWER_WAIT = 5.0
"""Seconds the capture must go on after a request's first copy before no answer counts as none
(`stun.no_response`): by then a client on RFC 8489's default timers has sent it four times
(0, 0.5, 1.5, 3.5 s) and a server that answers at all has. A request near the capture's end
is left without a finding: the capture may just have stopped."""
MAX_OPEN_TRANSACTIONS = 10_000
"""Unanswered transactions followed at once; another gives up the oldest (its row comes out as
unanswered, with one `stun.transactions_limit` warning for the report). A hostile capture of
requests nobody answers costs this many, whatever its length: 250 new requests a second for
GIVE_UP_AFTER."""
FINISHED_KEPT = 10_000
"""Ids of finished transactions remembered (oldest forgotten first), so that a retransmission that
crossed the answer, or the answer to each copy (servers answer every copy they get), is not
taken for a new request."""
MAX_NO_RESPONSE_FINDINGS = 100
"""`stun.no_response` findings of one capture: past them, unanswered rows say so by their empty
response columns alone (a scan of dead servers would otherwise bury every other finding)."""

Key = tuple[bool, bytes, str]
"""(relayed, transaction id, requester "ip:port")."""


@dataclass(slots=True)
class Transaction:
    """One request on one leg, and what answered it."""

    flow: int
    transaction_id: bytes
    method: int
    client: str
    """The requester, as the request's packet gives it."""
    server: str
    relayed: bool
    request_frame: int
    request_time: float
    username: str | None
    use_candidate: bool
    ice_role: str | None
    priority: int | None
    requested_lifetime: int | None
    requests: int = 1
    last_request_frame: int = 0
    response_frame: int | None = None
    response_time: float | None = None
    response_from: str | None = None
    response_class: str | None = None
    error_code: int | None = None
    error_reason: str | None = None
    mapped_address: str | None = None
    relayed_address: str | None = None
    lifetime: int | None = None
    findings: tuple[AnalysisFinding, ...] = ()
    """Set when it finishes (an open one's are worked out for each `rows()`)."""

    @property
    def check(self) -> bool:
        """An ICE connectivity check (RFC 8445 section 7.2.2: a Binding with USERNAME
        "receiver:sender"), or libwebrtc's GOOG-PING: the sessions report judges those."""
        if self.method == GOOG_PING:
            return True
        return self.method == BINDING and self.username is not None and ":" in self.username


ROW_KEYS: tuple[str, ...] = (
    "flow",
    "transaction_id",
    "method",
    "method_code",
    "client",
    "server",
    "relayed",
    "request_frame",
    "request_time",
    "requests",
    "response_frame",
    "response_time",
    "response_from",
    "response_class",
    "error_code",
    "error_reason",
    "rtt_ms",
    "username",
    "use_candidate",
    "ice_role",
    "priority",
    "mapped_address",
    "relayed_address",
    "lifetime",
    "requested_lifetime",
    "findings",
)
"""The keys of every row, in order (the lake's stun_transactions table, inspector/lake/analysis_tables.py,
has a column for each)."""


class StunTransactionAnalysis:
    """Analysis plugin: `--report stun_transactions`."""

    name: ClassVar[str] = "stun_transactions"
    makes_findings: ClassVar[bool] = True

    def __init__(self) -> None:
        self.open: OrderedDict[Key, Transaction] = OrderedDict()
        """Unanswered transactions, in the order of their first copy. Ordered dicts, because the
        oldest leaves first: a plain dict finds its first key by skipping the slots of those
        deleted before it (5 us a request in a long capture)."""
        self.done: list[Transaction] = []
        """Finished since the last drain, in the order they finished."""
        self.finished: OrderedDict[Key, None] = OrderedDict()
        """Keys of the last FINISHED_KEPT finished transactions, oldest first."""
        self.now = float("-inf")
        """The latest packet time fed: what GIVE_UP_AFTER and ANSWER_WAIT count to."""
        self.no_response_findings = 0
        self.limit_noted = False
        """MAX_OPEN_TRANSACTIONS gave a transaction up (its row has the one warning)."""
        self.carrier: tuple[int, int, int] | None = None
        """(frame, flow, size) of the ChannelData or Send/Data indication just fed: the next PDU,
        if it is STUN of that size in the same packet, is what it relayed."""

    # -- feeding ---------------------------------------------------------------------------------

    def feed(self, pdu: Pdu, ctx: FlowContext) -> None:
        if ctx.time > self.now:  # every PDU's time counts: RTP goes on after the STUN stops
            self.now = ctx.time
            if self.open:
                self._give_up_expired()
        rec = pdu.record
        if self.carrier is None and not isinstance(rec, StunRecord | tuple):
            return  # most PDUs (RTP, DTLS): nothing here
        size = _size(pdu)
        carrier, self.carrier = self.carrier, None
        relayed = carrier is not None and carrier == (ctx.frame, ctx.flow, size)
        if isinstance(rec, tuple):
            if len(rec) == 3 and rec[0] == "channel" and isinstance(rec[2], int):
                # The bytes ChannelData carried: its length, unless the datagram was cut short.
                self.carrier = (ctx.frame, ctx.flow, min(rec[2], size - 4))
            return
        if not isinstance(rec, StunRecord):
            return
        if rec.cls == REQUEST:
            self._request(rec, ctx, relayed)
        elif rec.cls in (SUCCESS, ERROR):
            self._response(rec, ctx, relayed)
        elif rec.method in (SEND, DATA) and isinstance(rec.data, bytes | bytearray):
            self.carrier = (ctx.frame, ctx.flow, len(rec.data))

    def _request(self, rec: StunRecord, ctx: FlowContext, relayed: bool) -> None:
        client = str(ctx.src)
        key = (relayed, bytes(rec.transaction_id), client)
        tx = self.open.get(key)
        if tx is not None:
            tx.requests += 1
            tx.last_request_frame = ctx.frame
            return
        if key in self.finished:
            return  # a copy that crossed the answer, or came after the request was given up
        if len(self.open) >= MAX_OPEN_TRANSACTIONS:
            oldest, given_up = self.open.popitem(last=False)
            self._finish(oldest, given_up, limit_frame=ctx.frame)
        a = rec.attributes
        username, role = a.get("username"), a.get("role")
        self.open[key] = Transaction(
            flow=ctx.flow,
            transaction_id=key[1],
            method=rec.method,
            client=client,
            server=str(ctx.dst),
            relayed=relayed,
            request_frame=ctx.frame,
            request_time=ctx.time,
            username=username if isinstance(username, str) else None,
            use_candidate=a.get("use_candidate") is True,
            ice_role=role if role in ("controlling", "controlled") else None,
            priority=_int(a.get("priority")),
            requested_lifetime=_int(a.get("lifetime")),
            last_request_frame=ctx.frame,
        )

    def _response(self, rec: StunRecord, ctx: FlowContext, relayed: bool) -> None:
        key = (relayed, bytes(rec.transaction_id), str(ctx.dst))
        tx = self.open.pop(key, None)
        if tx is None:
            return  # its request came before the capture, or this is a later copy of the answer
        a = rec.attributes
        tx.response_frame, tx.response_time = ctx.frame, ctx.time
        tx.response_from = str(ctx.src)
        if rec.cls == SUCCESS:
            tx.response_class = "success"
            tx.mapped_address = _address(a.get("xor_mapped")) or _address(a.get("mapped"))
            tx.relayed_address = _address(a.get("xor_relayed"))
            tx.lifetime = _int(a.get("lifetime"))
        else:
            tx.response_class = "error"
            tx.error_code = _int(a.get("error_code"))
            reason = a.get("error_reason")
            tx.error_reason = (reason if isinstance(reason, str) else "") or at.ERROR_REASONS.get(
                tx.error_code or 0
            )
        self._finish(key, tx)

    def _give_up_expired(self) -> None:
        """Give up the requests unanswered for GIVE_UP_AFTER (the oldest come first)."""
        while self.open:
            key, tx = next(iter(self.open.items()))
            if self.now - tx.request_time < GIVE_UP_AFTER:
                return
            self.open.popitem(last=False)
            self._finish(key, tx)

    def _finish(self, key: Key, tx: Transaction, limit_frame: int | None = None) -> None:
        """`tx` is done: its row waits for the next drain. `limit_frame`: the request whose
        arrival gave it up (MAX_OPEN_TRANSACTIONS)."""
        findings, self.no_response_findings = self._findings(tx, self.no_response_findings)
        if limit_frame is not None and not self.limit_noted:
            self.limit_noted = True
            findings += (
                AnalysisFinding(
                    frame=limit_frame,
                    severity="warn",
                    code="stun.transactions_limit",
                    message=f"more than {MAX_OPEN_TRANSACTIONS} requests unanswered at once "
                    "(MAX_OPEN_TRANSACTIONS): the oldest are given up",
                ),
            )
        tx.findings = findings
        self.done.append(tx)
        if len(self.finished) >= FINISHED_KEPT:
            self.finished.popitem(last=False)
        self.finished[key] = None

    def _findings(self, tx: Transaction, made: int) -> tuple[tuple[AnalysisFinding, ...], int]:
        """The findings of `tx` if it finished now, and the count of `stun.no_response` then."""
        if tx.response_frame is not None or tx.check or self.now - tx.request_time < ANSWER_WAIT:
            return (), made
        if made >= MAX_NO_RESPONSE_FINDINGS:
            return (), made
        method = at.METHODS.get(tx.method, f"method 0x{tx.method:03x}")
        copies = "once" if tx.requests == 1 else f"{tx.requests} times"
        note = AnalysisFinding(
            frame=tx.last_request_frame,
            severity="note",
            code="stun.no_response",
            message=f"{method} request to {tx.server} (sent {copies}) was never answered",
        )
        return (note,), made + 1

    # -- the report ------------------------------------------------------------------------------

    def drain(self) -> list[dict[str, object]]:
        """Rows of the transactions answered or given up since the last drain, then forgotten."""
        done, self.done = self.done, []
        return [_row(tx, tx.findings) for tx in done]

    def rows(self) -> list[dict[str, object]]:
        """Rows not drained yet: the finished ones, then the open ones (unanswered) as if the
        capture ended now, in the order of their first copy. Changes nothing."""
        out = [_row(tx, tx.findings) for tx in self.done]
        made = self.no_response_findings
        for tx in self.open.values():
            findings, made = self._findings(tx, made)
            out.append(_row(tx, findings))
        return out

    def snapshot(self) -> list[dict[str, object]]:
        """The rows as if the capture ended now (`Analysis`): `rows()` changes nothing and builds
        every row afresh."""
        return self.rows()


def _row(tx: Transaction, findings: tuple[AnalysisFinding, ...]) -> dict[str, object]:
    rtt = None if tx.response_time is None else round((tx.response_time - tx.request_time) * 1000, 3)
    return {
        "flow": tx.flow,
        "transaction_id": tx.transaction_id.hex(),
        "method": at.METHODS.get(tx.method, f"0x{tx.method:03x}"),
        "method_code": tx.method,
        "client": tx.client,
        "server": tx.server,
        "relayed": tx.relayed,
        "request_frame": tx.request_frame,
        "request_time": tx.request_time,
        "requests": tx.requests,
        "response_frame": tx.response_frame,
        "response_time": tx.response_time,
        "response_from": tx.response_from,
        "response_class": tx.response_class,
        "error_code": tx.error_code,
        "error_reason": tx.error_reason,
        "rtt_ms": rtt,
        "username": tx.username,
        "use_candidate": tx.use_candidate,
        "ice_role": tx.ice_role,
        "priority": tx.priority,
        "mapped_address": tx.mapped_address,
        "relayed_address": tx.relayed_address,
        "lifetime": tx.lifetime,
        "requested_lifetime": tx.requested_lifetime,
        "findings": [dict(f) for f in findings],
    }


def _size(pdu: Pdu) -> int:
    """The bytes a PDU spans (0 for a span that is not a pair of ints)."""
    try:
        start, end = pdu.span
    except (TypeError, ValueError):
        return 0
    return end - start if isinstance(start, int) and isinstance(end, int) else 0


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _address(value: object) -> str | None:
    """ "ip:port" of an address attribute's (ip, port), None when it is not one."""
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], str)
        and _int(value[1]) is not None
    ):
        return str(Endpoint(value[0], value[1]))
    return None
