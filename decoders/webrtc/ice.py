"""ICE as webrtc-internals shows it: the two parties, their candidates and the pair table.

The sessions analysis (sessions.py) gathers evidence while packets pass and this module turns it
into the row's `parties`, `candidates` and `candidate_pairs` when the rows are built, so the
per-packet work stays a few dict lookups and two halves of a session merge by uniting sets.

Parties. An agent's ufrag names it (RFC 8445 section 5.3); a check's USERNAME is "RFRAG:LFRAG"
(section 7.2.2), so its two ufrags belong to different agents, and an SDP answer's ufrag is not its
offer's. A ufrag that replaces another on the same signaling direction, or on the socket that sent
the checks, is the same agent after an ICE restart (section 9). The parties are the two colours of
that graph: A is the offerer's (or, without signaling, the first check's sender), B the other.

Pairs. A check is counted once, on the first leg it was seen on: a relayed check travels
client→TURN (ChannelData or Send), relay→peer (plain UDP) and TURN→client (ChannelData or Data),
and the copies on the later legs carry the same transaction id. Its endpoints are the relayed ones
(the allocation's XOR-RELAYED-ADDRESS and the channel's or indication's XOR-PEER-ADDRESS), so the
pair of a relayed call is relay candidate ↔ peer candidate, as the agents themselves see it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from protoscope.decoders.webrtc.candidates import Candidate, endpoint_text, pair_priority

MAX_CANDIDATES = 256
"""Candidates kept per session: a browser gathers a dozen per ICE generation (host, srflx and
relay per interface and component); a hostile SDP or trickle stream could send thousands."""
MAX_ADDRESSES = 32
"""Addresses kept per ufrag (the sockets that sent its checks and the endpoints they stood for)."""
MAX_EDGES = 256
"""Ufrag relations (same agent / other agent) kept per session."""
CHECK_TIMEOUT = 7.9
"""Seconds a check may wait for its response before the pair counts as failed rather than in
progress: RFC 8445 section 14.3 with RFC 8489's default RTO of 500 ms and Rc = 7 (the last
retransmission plus Rm*RTO, 39.5 s) is longer than WebRTC agents wait; libwebrtc gives up on a
pair after about 8 s without a response."""
PARTY_NAMES = ("A", "B")


@dataclass(slots=True)
class Pair:
    """One candidate pair as the local agent (the sender of its checks) sees it."""

    flow: int
    """The flow of the first leg its checks were seen on."""
    local: str
    remote: str
    via: str = "udp"
    """How the first leg carried its checks: "udp", "channeldata", "send-indication" or
    "data-indication"."""
    sender_ufrag: str | None = None
    requests: int = 0
    responses: int = 0
    errors: int = 0
    nominated: bool = False
    rtt_ms: list[float] = field(default_factory=list)
    pending: dict[bytes, float] = field(default_factory=dict)
    last_request: int = 0
    """Frame of the last check sent on this pair."""
    last_request_time: float = 0.0
    first_frame: int = 0
    priority_attribute: int | None = None
    """The PRIORITY of its checks: the priority of a peer-reflexive candidate the check makes."""
    error: str | None = None
    """The first error response ("487 Role Conflict")."""
    error_frame: int = 0
    icmp: str | None = None
    """An ICMP error that quoted one of its checks."""
    icmp_frame: int = 0
    nominated_frame: int = 0
    """The success response to its first check with USE-CANDIDATE."""
    last_nominated_frame: int = 0
    """The success response to its latest one: an agent that renominates (libwebrtc's
    renomination, an ICE-lite peer following the latest) uses the pair it nominated last."""
    last_success_time: float | None = None
    last_success_frame: int = 0
    consent_gap: tuple[float, int] = (0.0, 0)
    """The longest time between two success responses, and the frame of the one that ended it
    (RFC 7675 consent: more than 30 s is consent lost)."""


@dataclass(slots=True)
class Seen:
    """A candidate and where it came from."""

    candidate: Candidate
    source: str
    """"sdp", "sdp-file", "trickle", "stun", "turn" or "check"."""
    frame: int
    time: float
    ufrag: str | None = None
    """The ufrag of the agent that sent it (signaling) or whose check revealed it."""
    socket: str | None = None
    """For candidates learnt on the wire: the socket they were learnt on (its party's)."""


@dataclass(slots=True)
class Evidence:
    """What the packets say about which ufrag is whose: merged by union when sessions merge."""

    first: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Ufrag -> (frame, order) where it was first seen (a check's sender before its receiver)."""
    other: set[tuple[str, str]] = field(default_factory=set)
    """Ufrags of different agents (a check's two, an offer's and its answer's)."""
    same: set[tuple[str, str]] = field(default_factory=set)
    """Ufrags of one agent (an ICE restart)."""
    offered: list[str] = field(default_factory=list)
    """The SDPs' own ufrags in the order they were seen (the first is the offerer's)."""
    roles: dict[str, str] = field(default_factory=dict)
    """Ufrag -> the ICE role its checks claimed last ("controlling" / "controlled")."""
    addresses: dict[str, dict[str, None]] = field(default_factory=dict)
    """Ufrag -> the endpoints its checks came from (sockets and the relayed endpoints they stood
    for), in order."""
    sockets: dict[str, str] = field(default_factory=dict)
    """Socket -> the ufrag of the last check it sent (a new one there is a restart)."""

    def saw(self, ufrag: str, frame: int, order: int) -> None:
        if ufrag not in self.first and len(self.first) < MAX_EDGES:
            self.first[ufrag] = (frame, order)

    def relate(self, a: str, b: str, same: bool) -> None:
        edges = self.same if same else self.other
        if a != b and len(edges) < MAX_EDGES:
            edges.add((a, b) if a < b else (b, a))

    def address(self, ufrag: str, endpoint: str) -> None:
        kept = self.addresses.get(ufrag)
        if kept is None:
            if len(self.addresses) >= MAX_EDGES:
                return
            kept = self.addresses[ufrag] = {}
        if len(kept) < MAX_ADDRESSES:
            kept.setdefault(endpoint, None)

    def merge(self, other: Evidence) -> None:
        for u, at in other.first.items():
            if u not in self.first or at < self.first[u]:
                self.first[u] = at
        self.other |= other.other
        self.same |= other.same
        self.offered += [u for u in other.offered if u not in self.offered]
        for u, role in other.roles.items():
            self.roles.setdefault(u, role)
        for u, eps in other.addresses.items():
            for ep in eps:
                self.address(u, ep)
        for s, u in other.sockets.items():
            self.sockets.setdefault(s, u)


def party_of_ufrags(evidence: Evidence, ufrags: Iterable[str]) -> dict[str, str]:
    """Ufrag -> "A" or "B": the two colours of the same/other graph, A holding the offerer's ufrag
    (or the earliest seen). A ufrag tied to neither colour stays out (it has no party)."""
    known = sorted(set(ufrags) & set(evidence.first), key=lambda u: (evidence.first[u], u))
    if not known:
        return {}
    links: dict[str, list[tuple[str, int]]] = {u: [] for u in known}
    for edges, flip in ((evidence.same, 0), (evidence.other, 1)):
        for a, b in sorted(edges):
            if a in links and b in links:
                links[a].append((b, flip))
                links[b].append((a, flip))
    start = next((u for u in evidence.offered if u in links), known[0])
    colour: dict[str, int] = {}
    for root in [start, *known]:
        if root in colour:
            continue
        used = set(colour.values())
        if len(used) == 2:  # an unrelated ufrag once both parties are known: no party
            continue
        colour[root] = 0 if not used else 1 - used.pop()
        todo = [root]
        while todo:
            u = todo.pop()
            for v, flip in links[u]:
                if v not in colour:  # the first colour wins when the evidence disagrees
                    colour[v] = colour[u] ^ flip
                    todo.append(v)
    return {u: PARTY_NAMES[c] for u, c in colour.items()}


def restarts(evidence: Evidence, party: Mapping[str, str]) -> list[tuple[str, str, int]]:
    """(party, new ufrag, frame) for every ufrag after a party's first: its ICE restarts."""
    out: list[tuple[str, str, int]] = []
    for name in PARTY_NAMES:
        mine = sorted((evidence.first[u], u) for u, p in party.items() if p == name)
        out += [(name, u, at[0]) for at, u in mine[1:]]
    return out


def party_rows(evidence: Evidence, party: Mapping[str, str], offered: bool) -> list[dict[str, object]]:
    """The row's `parties`: name, latest ufrag, offerer/answerer, ICE role, addresses."""
    rows: list[dict[str, object]] = []
    for name in PARTY_NAMES:
        mine = sorted((evidence.first[u], u) for u, p in party.items() if p == name)
        if not mine:
            continue
        ufrags = [u for _, u in mine]
        addresses: dict[str, None] = {}
        for u in ufrags:
            for ep in evidence.addresses.get(u, {}):
                addresses.setdefault(ep, None)
        role = next((evidence.roles[u] for u in reversed(ufrags) if u in evidence.roles), None)
        rows.append(
            {
                "name": name,
                "ufrag": ufrags[-1],
                "ufrags": ufrags,
                "role": ("offerer" if name == "A" else "answerer") if offered else None,
                "ice_role": role,
                "addresses": list(addresses)[:MAX_ADDRESSES],
            }
        )
    return rows


def candidate_rows(
    seen: Iterable[Seen], owner: Mapping[str, str], resolved: Mapping[str, str]
) -> list[dict[str, object]]:
    """The row's `candidates`: each candidate's fields with its party, source and frame, and
    the address an mDNS response gave its `.local` name."""
    rows: list[dict[str, object]] = []
    for s in seen:
        c = s.candidate
        party = owner.get(s.ufrag or "") or owner.get(s.socket or "")
        row: dict[str, object] = {"party": party, "source": s.source, "frame": s.frame}
        row |= c.row()
        row["resolved"] = resolved.get(c.address.lower()) if c.mdns else None
        rows.append(row)
    return rows


def is_relayed(pair: Pair, relays: Mapping[str, object]) -> bool:
    return pair.via != "udp" or pair.local in relays or pair.remote in relays


def state(pair: Pair, end: float, settled: float | None = None) -> str:
    """What the capture shows of the pair: "succeeded" (a success response), "failed" (an
    error response, an ICMP error, no response within CHECK_TIMEOUT, or none before another
    pair was nominated at `settled`), "in-progress" (checks still unanswered when the capture
    ended), "waiting" (no check sent)."""
    if pair.responses:
        return "succeeded"
    if pair.error or pair.icmp:
        return "failed"
    if not pair.requests:
        return "waiting"
    if settled is not None and settled > pair.last_request_time:
        return "failed"
    return "in-progress" if end - pair.last_request_time < CHECK_TIMEOUT else "failed"


def failure(pair: Pair) -> str | None:
    """Why a pair that never succeeded failed, in the words of what the capture holds."""
    if pair.responses:
        return None
    if pair.icmp:
        return pair.icmp
    if pair.error:
        return pair.error
    if pair.requests:
        return f"no response to {pair.requests} check{'s' if pair.requests != 1 else ''}"
    return None


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """("ip", port) of "ip:port" / "[v6]:port" (port 0 when it has none)."""
    host, _, port = endpoint.rpartition(":")
    if not host:
        return endpoint, 0
    return host.strip("[]"), int(port) if port.isdigit() else 0


def learnt_row(
    party: str | None,
    source: str,
    frame: int,
    kind: str,
    endpoint: str,
    related: str | None,
    priority: int | None = None,
) -> dict[str, object]:
    """A candidate the packets revealed (no agent described it): the keys of a signaled one,
    None where only the agent knows (foundation, preferences)."""
    address, port = split_endpoint(endpoint)
    raddr, rport = split_endpoint(related) if related else (None, None)
    return {
        "party": party,
        "source": source,
        "frame": frame,
        "foundation": None,
        "component": 1,
        "transport": "udp",
        "priority": priority,
        "type_preference": None if priority is None else priority >> 24,
        "local_preference": None if priority is None else (priority >> 8) & 0xFFFF,
        "address": address,
        "port": port,
        "type": kind,
        "related_address": raddr,
        "related_port": rport,
        "tcptype": None,
        "generation": None,
        "network_cost": None,
        "mdns": None,
        "resolved": None,
    }


@dataclass(frozen=True, slots=True)
class Wire:
    """What the whole capture learnt outside any one session, for its rows."""

    relays: Mapping[str, tuple[str, str | None, int]]
    """Relayed address -> (client socket, mapped address, frame of the Allocate success)."""
    clients: Mapping[str, list[str]]
    """Client socket -> its relayed addresses (rows look allocations up by socket: a capture
    at a TURN server holds thousands, a session a handful of sockets)."""
    reflexive: Mapping[str, list[tuple[str, str, int, float]]]
    """Socket -> (mapped, STUN server, frame, time) of Binding responses to it."""
    mdns: Mapping[str, str]
    end: float


def wire_candidates(
    owner: Mapping[str, str], signaled: list[dict[str, object]], pairs: Iterable[Pair], wire: Wire
) -> list[dict[str, object]]:
    """Candidates learnt on the wire, for endpoints no agent signaled: server-reflexive from a
    STUN server's answer to a party's socket, relayed from an Allocate success on it, and
    peer-reflexive from a check whose source the sender never signaled (RFC 8445 7.2.5.3.1:
    its priority is the check's PRIORITY)."""
    known = {(r["party"], _endpoint_of(r)) for r in signaled}
    known |= {(r["party"], _endpoint_of(r | {"address": r["resolved"]})) for r in signaled if r["resolved"]}
    out: list[dict[str, object]] = []

    def add(row: dict[str, object], endpoint: str) -> None:
        if (row["party"], endpoint) not in known and len(signaled) + len(out) < MAX_CANDIDATES:
            known.add((row["party"], endpoint))
            out.append(row)

    for socket, party in owner.items():
        for reflexive, _, frame, _ in wire.reflexive.get(socket, []):
            if reflexive != socket:
                add(learnt_row(party, "stun", frame, "srflx", reflexive, socket), reflexive)
    for ep, holder in list(owner.items()):
        for relayed in wire.clients.get(ep, ()):
            _, mapped, frame = wire.relays[relayed]
            add(learnt_row(holder, "turn", frame, "relay", relayed, mapped), relayed)
    signaled_by = {r["party"] for r in signaled if r["source"] in ("sdp", "sdp-file", "trickle")}
    for pair in pairs:
        name = owner.get(pair.local)
        if name in signaled_by and pair.local not in wire.relays:
            add(
                learnt_row(
                    name, "check", pair.first_frame, "prflx", pair.local, None, pair.priority_attribute
                ),
                pair.local,
            )
    return out


def endpoint(address: str, port: object) -> str:
    """ "ip:port" / "[v6]:port", as decoders.api.Endpoint prints (candidates.py normalises)."""
    return endpoint_text(address, int(str(port))) if str(port).isdigit() else f"{address}:{port}"


def _endpoint_of(row: Mapping[str, object]) -> str:
    return endpoint(str(row["address"]), row["port"])


@dataclass(slots=True)
class Table:
    """The pair table of a session and the pair its agents selected."""

    rows: list[dict[str, object]]
    selected: dict[str, object] | None
    selected_pair: Pair | None
    by_pair: dict[int, dict[str, object]]
    """id(pair) -> its row."""


def pair_table(
    pairs: list[Pair],
    owner: Mapping[str, str],
    candidates: list[dict[str, object]],
    roles: Mapping[str, str | None],
    wire: Wire,
    after: tuple[int, int],
    settled: float | None = None,
) -> Table:
    """Each pair with its candidates, RFC 8445 priority, state, checks each way and failure;
    then the selected pair: a nominated one that was answered (USE-CANDIDATE, section 8.1.1),
    the controlling agent's first, the one nominated last (an agent that renominates moves its
    traffic there), then the highest priority."""
    by_endpoint: dict[tuple[str | None, str], dict[str, object]] = {}
    for cand in candidates:
        party = cand["party"] if isinstance(cand["party"], str) else None
        by_endpoint.setdefault((party, _endpoint_of(cand)), cand)
    reverse = {(p.local, p.remote): p for p in pairs}
    rows: list[dict[str, object]] = []
    by_pair: dict[int, dict[str, object]] = {}
    scored: list[tuple[Pair, int | None, str | None]] = []
    for p in pairs:
        local_party = owner.get(p.sender_ufrag or "") or owner.get(p.local)
        remote_party = next((n for n in PARTY_NAMES if n != local_party), None) if local_party else None
        local = by_endpoint.get((local_party, p.local))
        remote = by_endpoint.get((remote_party, p.remote))
        prio = _priority(local, remote, roles.get(local_party or ""), roles.get(remote_party or ""))
        back = reverse.get((p.remote, p.local))
        relayed = (
            is_relayed(p, wire.relays)
            or (local is not None and local["type"] == "relay")
            or (remote is not None and remote["type"] == "relay")
        )
        row: dict[str, object] = {
            "flow": p.flow,
            "local": p.local,
            "remote": p.remote,
            "requests": p.requests,
            "responses": p.responses,
            "errors": p.errors,
            # RFC 8445 section 8.1.1: nominated once a check with USE-CANDIDATE succeeded (an
            # aggressive agent sends it on every check: the unanswered ones nominated nothing)
            "nominated": p.nominated and bool(p.nominated_frame),
            "use_candidate": p.nominated,
            "rtt_ms": list(p.rtt_ms),
            "state": (shown := state(p, wire.end, settled)),
            "local_party": local_party,
            "local_candidate": None if local is None else {"type": local["type"], "endpoint": p.local},
            "remote_candidate": None if remote is None else {"type": remote["type"], "endpoint": p.remote},
            "priority": prio,
            "checks": {
                "sent": p.requests,
                "received": 0 if back is None else back.requests,
                "responses_sent": 0 if back is None else back.responses,
                "responses_received": p.responses,
            },
            "selected": False,
            "packets_after_selection": 0,
            "bytes_after_selection": 0,
            "failure": failure(p) if shown == "failed" else None,
            "relayed": relayed,
        }
        rows.append(row)
        by_pair[id(p)] = row
        scored.append((p, prio, roles.get(local_party or "")))
    chosen = [x for x in scored if x[0].nominated and x[0].nominated_frame]
    if not chosen:
        return Table(rows, None, None, by_pair)
    chosen.sort(key=lambda x: (x[2] != "controlling", -x[0].last_nominated_frame, -(x[1] or -1)))
    best, prio, role = chosen[0]
    chosen_row = by_pair[id(best)]
    chosen_row["selected"] = True
    chosen_row["packets_after_selection"], chosen_row["bytes_after_selection"] = after
    local_c, remote_c = chosen_row["local_candidate"], chosen_row["remote_candidate"]
    succeeded = [x for x in scored if x[0].responses and x[2] == role]
    top = max((x[1] for x in succeeded if x[1] is not None), default=None)
    who = chosen_row["local_party"] or best.local
    reason = f"nominated with USE-CANDIDATE by {who}"
    reason += f" ({role})" if role else ""
    if len(chosen) > 1:
        reason += f"; the last of {len(chosen)} nominated pairs"
    if prio is not None and top is not None:
        reason += (
            "; the highest-priority pair that succeeded"
            if prio >= top
            else "; not the highest-priority pair that succeeded"
        )
    selected: dict[str, object] = {
        "local": best.local,
        "remote": best.remote,
        "local_type": local_c["type"] if isinstance(local_c, dict) else None,
        "remote_type": remote_c["type"] if isinstance(remote_c, dict) else None,
        "frame": best.nominated_frame,
        "reason": reason,
    }
    return Table(rows, selected, best, by_pair)


def _priority(
    local: Mapping[str, object] | None,
    remote: Mapping[str, object] | None,
    local_role: str | None,
    remote_role: str | None,
) -> int | None:
    """RFC 8445 section 6.1.2.3 with G the controlling agent's candidate: None unless both
    candidates' priorities and which side controls are known."""
    if local is None or remote is None:
        return None
    lp, rp = local.get("priority"), remote.get("priority")
    if not isinstance(lp, int) or not isinstance(rp, int):
        return None
    if local_role == "controlling" or remote_role == "controlled":
        return pair_priority(lp, rp)
    if local_role == "controlled" or remote_role == "controlling":
        return pair_priority(rp, lp)
    return None


@dataclass(slots=True)
class RelayLeg:
    """The TURN framing around the PDUs that follow it in the same packet: ChannelData or a
    Send/Data indication, with the endpoints the relayed bytes travel between (relayed address
    and peer) and the outer message's size."""

    frame: int
    flow: int
    via: str
    src: str | None
    dst: str | None
    size: int
    from_server: bool


@dataclass(slots=True)
class Path:
    """One leg (flow, direction, framing) of a session: packets counted once per frame."""

    src: str
    dst: str
    """The packet's own endpoints (a TURN leg's are the client's and the server's)."""
    packets: int = 0
    bytes: int = 0
    last_frame: int = 0
    last_time: float = 0.0
    copy: bool = False
    """Sent by a TURN server (TURN→client, relay→peer): a copy of what a party sent first."""


@dataclass(slots=True)
class MediaStream:
    """One RTP SSRC of a session, counted on the first leg it was seen on (the sender's)."""

    leg: tuple[int, bool]
    src: str
    dst: str
    payload_type: int
    packets: int = 0
    bytes: int = 0
    legs: set[tuple[int, bool]] = field(default_factory=set)
