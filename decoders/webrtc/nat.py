"""The NAT in front of each socket, from the STUN messages and ICE candidates a capture holds.

A NAT is seen through what crosses it. A Binding (or Allocate) success names the address the
server saw (XOR-MAPPED-ADDRESS): when the request left from another address, the capture was taken
inside the NAT and that pair is one mapping (RFC 4787 section 4.1) of the inside socket toward the
request's destination. When the request left from the mapped address itself, the capture point is
outside the NAT (or there is none): the inside socket is then known only from a srflx candidate
whose related address is that public address, or from the srflx candidates of the check's sender
on the same public IP (a peer-reflexive address: the sender's NAT gave its check a mapping of its
own). Inbound packets from remotes a socket never sent to, and RFC 5780's CHANGE-REQUEST probes,
show its filtering; a request to a socket's own public address that reaches it shows hairpinning;
the same mapping kept, or a new one made, across a gap bounds the binding lifetime.

`NatObserver` gathers these facts as the messages come (everything it keeps has a named limit, and
the first limit hit makes one warning) and `verdicts()` groups them per inside socket and decides
(nat_behaviour.py) in RFC 4787's terms and the classic names, each with its evidence.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from protoscope.decoders.api import AnalysisFinding, Endpoint, FlowContext
from protoscope.decoders.stun.messages import StunRecord

from .candidates import Candidate
from .nat_behaviour import (
    Mapping,
    split,
)

BINDING, ALLOCATE = 0x001, 0x003
TURN_METHODS = frozenset({0x003, 0x004, 0x006, 0x007, 0x008, 0x009})
"""Allocate, Refresh, Send, Data, CreatePermission, ChannelBind (RFC 8656): a flow that carries
one is a client's leg to its TURN server, and the checks on it are relayed."""
REQUEST, INDICATION, SUCCESS, ERROR = 0, 1, 2, 3

MAX_ENDPOINTS = 1000
"""Sockets followed (inside sockets, or public addresses whose inside is not known yet), and
endpoints whose destinations are remembered: a call has a handful; a capture at a STUN server
thousands of clients."""
MAX_MAPPINGS = 64
"""Distinct (destination, mapped address) pairs kept per socket, and destinations remembered per
endpoint: ICE pairs a socket with every remote candidate (a dozen); a symmetric NAT makes one
mapping per destination."""
MAX_PENDING = 10_000
"""Requests remembered by transaction id (oldest forgotten first; a warning when one was still
unanswered): a check every 20 ms for 200 s. Answered ones stay to tell retransmitted responses."""
MAX_PROBES = 256
"""RFC 5780 probes, unsolicited inbound checks, requests to a public mapping, and requests seen
on both sides of a NAT, each kept up to this many (the first ones: they decide)."""
MAX_CANDIDATES = 1000
"""Candidates learnt from signaling that are kept (host addresses, srflx related addresses)."""
MAX_EVIDENCE = 16
"""Sentences of evidence per verdict row."""
MIN_LIFETIME_GAP_S = 1.0
"""Gaps shorter than this between two bindings of one destination bound no lifetime worth telling
(a request and its retransmission, a test and the next)."""
UNSPECIFIED = {"0.0.0.0", "::"}
"""A related address browsers put in a srflx candidate to hide the host's address (RFC 8839
section 5.1 allows it): it names no inside socket."""


@dataclass(slots=True)
class StunRequest:
    """A request as the capture showed it, and what answered it."""

    src: str
    dst: str
    frame: int
    time: float
    method: int
    ufrag: str | None
    """The sender's ufrag (the second half of an ICE check's USERNAME)."""
    check: bool
    change: tuple[bool, bool] | None
    """CHANGE-REQUEST (change IP, change port), when present."""
    response_port: int | None
    padding: int | None
    answered: StunAnswer | None = None


@dataclass(frozen=True, slots=True)
class StunAnswer:
    """The first response to a request: where it came from and went to (an RFC 5780 probe's
    comes from another address, a RESPONSE-PORT one goes to another port)."""

    src: str
    dst: str
    frame: int
    success: bool


@dataclass(slots=True)
class InboundCheck:
    """An ICE check that reached `receiver` from a remote it had not sent to."""

    receiver: str
    remote: str
    frame: int
    known_ip: bool
    """The receiver had sent to another port of the remote's IP."""
    answered: int | None = None
    """The frame of the receiver's response."""


@dataclass(slots=True)
class SocketFacts:
    """The facts of one inside socket (or of one public address whose inside is unknown)."""

    key: str
    inside: str | None
    ufrag: str | None = None
    mappings: dict[tuple[str | None, str, str], Mapping] = field(default_factory=dict)
    last: dict[str, Mapping] = field(default_factory=dict)
    """Destination -> its latest mapping (for the binding lifetime)."""
    at_least: tuple[float, str] | None = None
    at_most: tuple[float, str] | None = None
    seen_inside: bool = False
    """The capture showed this socket's own packets (a request from the inside address that the
    server saw translated): it was taken inside the NAT, where what arrives got through."""


@dataclass(slots=True)
class NatFacts:
    """What the capture showed, as `NatObserver` gathered it; nat_rows.py judges it."""

    sockets: dict[str, SocketFacts] = field(default_factory=dict)
    pending: dict[bytes, StunRequest] = field(default_factory=dict)
    sent: dict[str, dict[str, float]] = field(default_factory=dict)
    """Endpoint -> destination -> the first time it sent there (a request, response or
    indication): what opened its NAT's filter."""
    public: dict[str, str] = field(default_factory=dict)
    """Mapped address -> the key of the socket it maps."""
    probes: list[StunRequest] = field(default_factory=list)
    inbound: dict[bytes, InboundCheck] = field(default_factory=dict)
    to_public: list[StunRequest] = field(default_factory=list)
    seen_twice: list[tuple[StunRequest, StunRequest]] = field(default_factory=list)
    """Requests seen twice with one transaction id and other addresses: the same request
    inside and outside a NAT (translated), or sent to a public address and delivered inside
    (hairpinned)."""
    other: dict[str, str] = field(default_factory=dict)
    """Server address -> its OTHER-ADDRESS (RFC 5780 section 7.4)."""
    aliases: dict[str, str] = field(default_factory=dict)
    """Public address (a srflx candidate) -> its related address (the inside socket)."""
    hosts: set[str] = field(default_factory=set)
    srflx: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """Ufrag -> its srflx candidates' (public, related) endpoints."""
    relayed: set[str] = field(default_factory=set)
    """Relayed addresses of TURN allocations: a check relayed through TURN is answered with
    one, which is the TURN server's mapping, not a NAT's."""
    turn_flows: set[int] = field(default_factory=set)


class NatObserver:
    """Collects NAT facts from STUN messages and candidates; `verdicts()` judges them."""

    def __init__(self) -> None:
        self.facts = NatFacts()
        self._limits: set[str] = set()
        self._findings: list[AnalysisFinding] = []
        self._rows: list[dict[str, object]] | None = None
        """The verdicts judged since the last fact came (a report asks once per session)."""
        self._index: dict[str, list[dict[str, object]]] = {}

    # -- facts in ----------------------------------------------------------------------------------

    def stun(self, rec: StunRecord, ctx: FlowContext) -> None:
        """Every STUN message: Binding (ICE checks included), Allocate, Refresh, RFC 5780 probes."""
        if ctx.transport != "udp":
            return  # TCP NAT bindings follow connections, not RFC 4787's UDP rules
        self._rows = None
        src, dst = str(ctx.src), str(ctx.dst)
        if rec.method in TURN_METHODS and ctx.flow not in self.facts.turn_flows:
            self._remember(self.facts.turn_flows, ctx.flow, ctx.frame)
        if rec.cls == REQUEST:
            self._request(rec, src, dst, ctx)
        elif rec.cls in (SUCCESS, ERROR):
            self._response(rec, src, dst, ctx)
        else:
            self._sent_to(src, dst, ctx)

    def candidate(self, cand: Candidate, ufrag: str | None, frame: int, time: float) -> None:
        """A candidate from SDP or trickle: a srflx one is a mapping, its related address the inside
        socket (RFC 8839 section 5.1); host ones tell a socket without NAT."""
        if cand.transport != "udp" or cand.mdns:
            return
        self._rows = None
        public = _endpoint(cand.address, cand.port)
        if public is None:
            return
        if cand.type == "host":
            if len(self.facts.hosts) < MAX_CANDIDATES:
                self.facts.hosts.add(public)
            else:
                self._limit("nat.candidates_limit", f"more than {MAX_CANDIDATES} candidates", frame)
            return
        if cand.type != "srflx":
            return
        related = None
        if cand.related_address and cand.related_address not in UNSPECIFIED and cand.related_port:
            related = _endpoint(cand.related_address, cand.related_port)
        if len(self.facts.aliases) >= MAX_CANDIDATES:
            self._limit("nat.candidates_limit", f"more than {MAX_CANDIDATES} candidates", frame)
            return
        if related is not None:
            self.facts.aliases.setdefault(public, related)
            known = self.facts.srflx.setdefault(ufrag, []) if ufrag else []
            if (public, related) not in known:
                known.append((public, related))
        self._observe(related, None, public, "candidate", frame, time, ufrag, cand.generation)

    # -- requests and responses ---------------------------------------------------------------------

    def _request(self, rec: StunRecord, src: str, dst: str, ctx: FlowContext) -> None:
        a = rec.attributes
        txid = rec.transaction_id
        username = a.get("username")
        check = isinstance(username, str) and rec.method == BINDING
        if check and ctx.flow in self.facts.turn_flows:
            return  # a check relayed through TURN: its addresses are the TURN leg's
        ufrag = (username.partition(":")[2] or None) if isinstance(username, str) else None
        change = a.get("change_request")
        port = a.get("response_port")
        padding = a.get("padding")
        req = StunRequest(
            src,
            dst,
            ctx.frame,
            ctx.time,
            rec.method,
            ufrag if check else None,
            check,
            (bool(change.get("change_ip")), bool(change.get("change_port")))
            if isinstance(change, dict)
            else None,
            port if isinstance(port, int) else None,
            padding if isinstance(padding, int) else None,
        )
        earlier = self.facts.pending.get(txid)
        if earlier is not None:
            if earlier.dst == dst and earlier.src != src:
                # One request seen on both sides of a NAT: the translation itself.
                via = "turn" if rec.method == ALLOCATE else "check" if check else "stun"
                self._observe(earlier.src, dst, src, via, ctx.frame, ctx.time, req.ufrag)
            elif earlier.src != src or earlier.dst != dst:
                self._keep_pair(earlier, req, ctx.frame)
            return  # a retransmission, or the same request on the other side of a NAT
        if check:
            self._inbound_check(txid, src, dst, ctx)
            if self._translated(src, req.ufrag):
                # Seen outside the sender's NAT, a check's source is its mapping toward the
                # destination, answered or not (a symmetric NAT's fresh one is a peer-reflexive
                # address: RFC 8445 section 7.2.5.3.1).
                self._observe(None, dst, src, "check", ctx.frame, ctx.time, req.ufrag)
        self._sent_to(src, dst, ctx)
        if len(self.facts.pending) >= MAX_PENDING:
            evicted = self.facts.pending.pop(next(iter(self.facts.pending)))
            if evicted.answered is None:  # an answered one was kept only to tell retransmissions
                self._limit(
                    "nat.pending_limit",
                    f"more than {MAX_PENDING} STUN requests awaiting a response (MAX_PENDING): the "
                    "oldest are forgotten",
                    ctx.frame,
                )
        self.facts.pending[txid] = req
        if (req.change is not None and any(req.change)) or req.response_port is not None or req.padding:
            self._keep(self.facts.probes, req, "nat.probes_limit", ctx.frame)
        owner = self.facts.public.get(dst)
        if owner is not None and owner != dst and self._same_nat(src, dst, owner):
            self._keep(self.facts.to_public, req, "nat.probes_limit", ctx.frame)

    def _translated(self, src: str, ufrag: str | None) -> bool:
        """Whether a check's source is a public address of its sender's NAT: a srflx candidate of
        the sender, or another port on a srflx candidate's IP (never a host candidate)."""
        if src in self.facts.aliases:
            return True
        if not ufrag or src in self.facts.hosts:
            return False
        ip = split(src)[0]
        return any(split(public)[0] == ip for public, _ in self.facts.srflx.get(ufrag, ()))

    def _same_nat(self, src: str, dst: str, owner: str) -> bool:
        """Whether a request to the public address `dst` (of socket `owner`) comes from behind the
        same NAT: from the owner's host, or from a socket whose mappings share `dst`'s IP. Only
        then is it a hairpinning test (RFC 4787 section 6)."""
        sock = self.facts.sockets.get(owner)
        ip = split(src)[0]
        if sock is not None and sock.inside is not None and split(sock.inside)[0] == ip:
            return True
        sender = self.facts.sockets.get(src)
        public_ip = split(dst)[0]
        return sender is not None and any(split(m.mapped)[0] == public_ip for m in sender.mappings.values())

    def _response(self, rec: StunRecord, src: str, dst: str, ctx: FlowContext) -> None:
        txid = rec.transaction_id
        req = self.facts.pending.get(txid)
        if req is None:
            # The capture began after the request: the response still names its mapping.
            req = StunRequest(dst, src, ctx.frame, ctx.time, rec.method, None, False, None, None, None)
        elif req.answered is None:
            req.answered = StunAnswer(src, dst, ctx.frame, rec.cls == SUCCESS)
        inbound = self.facts.inbound.get(txid)
        if inbound is not None and src == inbound.receiver and inbound.answered is None:
            inbound.answered = ctx.frame
        self._sent_to(src, dst, ctx)
        if rec.cls != SUCCESS:
            return
        a = rec.attributes
        other = a.get("other_address") or a.get("changed_address")
        if isinstance(other, tuple) and len(self.facts.other) < MAX_ENDPOINTS:
            self.facts.other.setdefault(req.dst, _format(other))
        relayed = a.get("xor_relayed")
        if rec.method == ALLOCATE and isinstance(relayed, tuple):
            self._remember(self.facts.relayed, _format(relayed), ctx.frame)
        got = a.get("xor_mapped") or a.get("mapped")
        if not isinstance(got, tuple):
            return
        mapped = _format(got)
        if mapped in self.facts.relayed or (req.check and ctx.flow in self.facts.turn_flows):
            return
        via = "turn" if req.method == ALLOCATE else "check" if req.check else "stun"
        inside = req.src if req.src != mapped else None
        self._observe(inside, req.dst, mapped, via, ctx.frame, ctx.time, req.ufrag)
        if req.response_port is not None and dst != req.src:
            self._lifetime_test(req, dst, ctx)

    def _inbound_check(self, txid: bytes, src: str, dst: str, ctx: FlowContext) -> None:
        """An ICE check to `dst` from a remote it never sent to: a test of its NAT's filter."""
        sent = self.facts.sent.get(dst, {})
        if src in sent:
            return
        if len(self.facts.inbound) >= MAX_PROBES:
            self._limit("nat.probes_limit", f"more than {MAX_PROBES} probes (MAX_PROBES)", ctx.frame)
            return
        ip = split(src)[0]
        known_ip = any(split(d)[0] == ip for d in sent)
        self.facts.inbound[txid] = InboundCheck(dst, src, ctx.frame, known_ip)

    def _lifetime_test(self, req: StunRequest, dst: str, ctx: FlowContext) -> None:
        """RFC 5780 section 4.6: a response sent to RESPONSE-PORT, the port of an earlier binding
        of another socket, reached that socket: its binding outlived the idle time since."""
        key = dst if dst in self.facts.sockets else self.facts.public.get(dst)
        sock = self.facts.sockets.get(key) if key is not None else None
        if sock is None:
            return
        last = sock.last.get(req.dst)
        if last is None or last.time > req.time:
            return
        idle = req.time - last.time
        text = (
            f"frame {ctx.frame}: RFC 5780 lifetime test: a response to port {req.response_port} "
            f"reached {dst} {idle:.1f} s after its binding toward {req.dst} (frame {last.frame})"
        )
        if sock.at_least is None or idle > sock.at_least[0]:
            sock.at_least = (idle, text)

    # -- bookkeeping ---------------------------------------------------------------------------------

    def _observe(
        self,
        inside: str | None,
        destination: str | None,
        mapped: str,
        via: str,
        frame: int,
        time: float,
        ufrag: str | None,
        generation: int | None = None,
    ) -> None:
        key = inside if inside is not None else mapped
        sock = self.facts.sockets.get(key)
        if sock is None:
            if len(self.facts.sockets) >= MAX_ENDPOINTS:
                self._limit(
                    "nat.endpoints_limit",
                    f"more than {MAX_ENDPOINTS} sockets behind NATs (MAX_ENDPOINTS): the rest are not judged",
                    frame,
                )
                return
            sock = self.facts.sockets[key] = SocketFacts(key, inside)
        if ufrag and sock.ufrag is None:
            sock.ufrag = ufrag
        if inside is not None and via != "candidate" and mapped != inside:
            sock.seen_inside = True
        if mapped not in self.facts.public:
            if len(self.facts.public) < MAX_ENDPOINTS * MAX_MAPPINGS:
                self.facts.public[mapped] = key
            else:
                self._limit(
                    "nat.endpoints_limit", f"more than {MAX_ENDPOINTS} sockets (MAX_ENDPOINTS)", frame
                )
        seen = Mapping(destination, mapped, via, frame, time, ufrag, generation)
        ident = (destination, mapped, via)
        if ident not in sock.mappings:
            if len(sock.mappings) >= MAX_MAPPINGS:
                self._limit(
                    "nat.mappings_limit",
                    f"a socket with more than {MAX_MAPPINGS} mappings (MAX_MAPPINGS): the rest are not kept",
                    frame,
                )
            else:
                sock.mappings[ident] = seen
        if destination is None:
            return
        last = sock.last.get(destination)
        if last is not None and time - last.time >= MIN_LIFETIME_GAP_S:
            gap = time - last.time
            if last.mapped == mapped:
                if sock.at_least is None or gap > sock.at_least[0]:
                    text = (
                        f"frames {last.frame} and {frame}: {mapped} toward {destination} kept across "
                        f"{gap:.1f} s between STUN messages (other traffic may have refreshed it)"
                    )
                    sock.at_least = (gap, text)
            elif sock.at_most is None or gap < sock.at_most[0]:
                text = (
                    f"frame {frame}: toward {destination} the mapping {last.mapped} (frame {last.frame}) "
                    f"became {mapped} after {gap:.1f} s: the binding had expired"
                )
                sock.at_most = (gap, text)
        if last is not None or len(sock.last) < MAX_MAPPINGS:
            sock.last[destination] = seen

    def _sent_to(self, src: str, dst: str, ctx: FlowContext) -> None:
        sent = self.facts.sent.get(src)
        if sent is None:
            if len(self.facts.sent) >= MAX_ENDPOINTS:
                self._limit(
                    "nat.endpoints_limit",
                    f"more than {MAX_ENDPOINTS} endpoints (MAX_ENDPOINTS): what the rest sent to is not kept",
                    ctx.frame,
                )
                return
            sent = self.facts.sent[src] = {}
        if dst not in sent and len(sent) < MAX_MAPPINGS:
            sent[dst] = ctx.time

    def _keep(self, where: list[StunRequest], req: StunRequest, code: str, frame: int) -> None:
        if len(where) < MAX_PROBES:
            where.append(req)
        else:
            self._limit(code, f"more than {MAX_PROBES} probes (MAX_PROBES): the rest are not judged", frame)

    def _keep_pair(self, first: StunRequest, second: StunRequest, frame: int) -> None:
        if len(self.facts.seen_twice) < MAX_PROBES:
            self.facts.seen_twice.append((first, second))
        else:
            self._limit("nat.probes_limit", f"more than {MAX_PROBES} probes (MAX_PROBES)", frame)

    def _remember(self, where: set[int] | set[str], item: int | str, frame: int) -> None:
        """Adds a TURN flow or relayed address, up to MAX_ENDPOINTS of each."""
        if len(where) < MAX_ENDPOINTS:
            where.add(item)  # type: ignore[arg-type]
        else:
            self._limit(
                "nat.turn_limit", f"more than {MAX_ENDPOINTS} TURN allocations (MAX_ENDPOINTS)", frame
            )

    def _limit(self, code: str, message: str, frame: int) -> None:
        """A limit hit: one warning per limit."""
        if code not in self._limits:
            self._limits.add(code)
            self._findings.append(
                {"frame": frame, "severity": "warn", "code": code, "message": message, "phase": "ice"}
            )

    # -- verdicts out --------------------------------------------------------------------------------

    def findings(self) -> list[AnalysisFinding]:
        """The warnings of limits hit (one per limit)."""
        return list(self._findings)

    def verdicts(self) -> list[dict[str, object]]:
        """One row per inside socket (or public address whose inside is unknown), the contract's
        `nat` rows, in the order the sockets were first seen. Judged once per batch of facts.

        Beside the contract's keys a row has `ufrag` (the ICE ufrag its checks were sent with, or
        None), and `rfc5780` holds the tests the capture shows, each a sentence: "other_address",
        "mapping test I" to "III", "filtering test II (change IP and port)", "filtering test III
        (change port)", "padding". A mapping's `destination` is None for a srflx candidate."""
        from .nat_rows import build_rows

        if self._rows is None:
            self._rows = build_rows(self.facts)
            self._index = {}
            for row in self._rows:
                public = row["public"]
                names = [row["inside"], *public] if isinstance(public, list) else [row["inside"]]
                for name in dict.fromkeys(names):
                    if isinstance(name, str):
                        self._index.setdefault(name, []).append(row)
        return self._rows

    def verdict_for(self, endpoints: Iterable[str]) -> list[dict[str, object]]:
        """The rows whose inside or public endpoints are among `endpoints` (a session's), in
        `verdicts()` order."""
        self.verdicts()
        found = {id(row): row for ep in endpoints for row in self._index.get(ep, ())}
        return [row for row in self._rows or () if id(row) in found]


def _format(address: tuple[object, ...]) -> str:
    """ "ip:port" of a STUN address attribute (ip, port), as `Endpoint` prints the capture's."""
    ip, port = str(address[0]), address[1]
    try:
        ip = str(ipaddress.ip_address(ip))
    except ValueError:
        pass
    return str(Endpoint(ip, port if isinstance(port, int) else 0))


def _endpoint(address: str, port: int) -> str | None:
    """ "ip:port" of a candidate's address, written as the capture's endpoints are (IPv6
    compressed), or None when the address is no IP."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return None
    return str(Endpoint(str(ip), port))
