"""The ladder of a WebRTC session, drawn with what the sessions report knows about its endpoints.

A session's ladder (report/ladder.py) draws every endpoint of its flows as a lettered column. For
a call through NATs and TURN, what matters is who each endpoint is: a peer's own socket, the STUN
server it asked for its mapping, the TURN server, a relayed address. So here the columns are
named by role ("A", "TURN", "B relay", "STUN"), the flows where a peer learnt its server-reflexive
or relayed candidate (a Binding to a STUN server and its XOR-MAPPED-ADDRESS answer, an Allocate)
are drawn too, a TURN wrapper (ChannelData, Send and Data indications) is one arrow with what it
carries instead of two, and relayed media is one path: a run of RTP from A through TURN to B is a
single arrow from A's column to B's, marked where it passes the TURN server, not three runs (A to
TURN, relay to relay, TURN to B) that count the same packets three times.

Roles come from the session row's `parties`, `candidates` and `nat` mappings (issue 16) and from
the TURN allocation rows of the same report; a row without them (an older analysis) still gets
the TURN server and relays named from its allocations.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final

from ..session import Session
from .ladder import MEDIA, Arrow, Ladder, arrows, capture_origin, draw_ladder, participants
from .sessionblock import maps

Row = Mapping[str, object]

WRAPPER: Final = re.compile(r"^(ChannelData|Send Indication|Data Indication)\b")
"""Arrow labels of TURN's wrappers (RFC 8656 sections 11 and 12): the arrow of what they carry,
drawn for the same frame, says more."""

REFLEXIVE: Final = frozenset({"srflx", "prflx", "relay"})
"""Candidate types whose address is not the party's own socket: named "A srflx" and so on."""
SERVERS: Final = frozenset({"TURN", "STUN"})

MAX_ROLES: Final = 256
"""Endpoints named at most (a hostile row may list thousands of candidates)."""


def _ints(value: object) -> list[int]:
    """The integers of a list value (a bool is no number here)."""
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, int) and not isinstance(v, bool)]


def _strs(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _endpoint(address: object, port: object) -> str | None:
    if not isinstance(address, str) or not isinstance(port, int):
        return None
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def endpoint_roles(row: Row, allocations: Iterable[Row] = ()) -> dict[str, str]:
    """Endpoint ("ip:port") -> its role's name: a party's own socket by the party's name ("A"),
    its reflexive and relayed addresses ("A srflx", "A prflx", "A relay"), the TURN server
    ("TURN"; a TURN server that also answered Bindings stays TURN), a STUN server ("STUN"). The
    TURN allocations whose client is one of the session's endpoints name their server and relay."""
    roles: dict[str, str] = {}

    def name(endpoint: object, role: str) -> None:
        if isinstance(endpoint, str) and endpoint and len(roles) < MAX_ROLES:
            roles.setdefault(endpoint, role)

    owner: dict[str, str] = {}
    for c in maps(row.get("candidates")):
        party, kind = c.get("party"), c.get("type")
        if isinstance(party, str) and kind in REFLEXIVE:
            name(_endpoint(c.get("address"), c.get("port")), f"{party} {kind}")
    for party in maps(row.get("parties")):
        party_name = party.get("name")
        if isinstance(party_name, str):
            for address in _strs(party.get("addresses")):
                owner.setdefault(address, party_name)
    servers = [(m, nat) for nat in maps(row.get("nat")) for m in maps(nat.get("mappings"))]
    for m, _ in sorted(servers, key=lambda s: s[0].get("via") != "turn"):  # TURN before STUN
        if m.get("via") in ("stun", "turn"):
            name(m.get("destination"), "TURN" if m.get("via") == "turn" else "STUN")
    for allocation in allocations:
        name(allocation.get("server"), "TURN")
    for nat in maps(row.get("nat")):
        party_name = nat.get("party")
        if isinstance(party_name, str):
            inside = nat.get("inside")
            if isinstance(inside, str):
                owner.setdefault(inside, party_name)
            for public in _strs(nat.get("public")):
                name(public, f"{party_name} srflx")
    for allocation in allocations:
        client = allocation.get("client")
        who = owner.get(client) if isinstance(client, str) else None
        if who is None and isinstance(client, str):
            who = _owner(roles.get(client))
        name(allocation.get("relayed"), f"{who} relay" if who else "relay")
    for address, party_name in owner.items():
        name(address, party_name)
    return roles


def session_flows(
    row: Row, flow_of_frame: Callable[[int], int], allocations: Iterable[Row] = ()
) -> list[int]:
    """The session's flows, and those where its peers learnt their candidates: the frames of its
    STUN and TURN mappings and candidates (a Binding to a STUN server is no flow of the call), and
    its TURN allocations' flows."""
    flows = set(_ints(row.get("flows")))
    frames: set[int] = set()
    for nat in maps(row.get("nat")):
        frames |= set(_ints([m.get("frame") for m in maps(nat.get("mappings"))]))
    frames |= set(
        _ints([c.get("frame") for c in maps(row.get("candidates")) if c.get("source") in ("stun", "turn")])
    )
    flows |= {flow_of_frame(frame) for frame in frames if frame > 0}
    flows |= set(_ints([a.get("flow") for a in allocations]))
    return sorted(f for f in flows if f >= 0)


def unwrap(items: Sequence[Arrow]) -> list[Arrow]:
    """A TURN wrapper's arrow left out where the same frame has the arrow of what it carries,
    which says how it went (`Binding Request user: HeEa:Ppdl [ChannelData]`)."""
    out: list[Arrow] = []
    how: tuple[int, str] | None = None
    for n, a in enumerate(items):
        wrapper = WRAPPER.match(a.label)
        if wrapper is not None:
            nxt = items[n + 1] if n + 1 < len(items) else None
            if nxt is not None and nxt.frame == a.frame and not WRAPPER.match(nxt.label):
                how = (a.frame, wrapper.group(1))
                continue
        elif how is not None and how[0] == a.frame:
            a = a._replace(label=f"{a.label} [{how[1]}]")
        how = None
        out.append(a)
    return out


def _media(a: Arrow) -> bool:
    return a.protocol in MEDIA or (a.protocol == "dtls" and "Application Data" in a.label)


def _owner(role: str | None) -> str | None:
    """The party an endpoint's role belongs to ("A" of "A relay", "A srflx"); None for servers."""
    if role is None or role in SERVERS:
        return None
    party, _, kind = role.rpartition(" ")
    return party if kind in REFLEXIVE else role


def _relay(role: str) -> bool:
    return role.endswith(" relay") or role == "relay"


class Relayed:
    """Relayed media folded into one path per direction (see the module's docstring)."""

    def __init__(self, roles: Mapping[str, str]) -> None:
        self.roles = roles
        self.parties = sorted({o for r in roles.values() if (o := _owner(r)) is not None})
        self.home: dict[str, str] = {}
        """A party's endpoint that talks to TURN (its column the folded arrows end at)."""

    def _leg(self, a: Arrow) -> tuple[str, str, str] | None:
        """(leg kind, from party, to party) of a media arrow through TURN, or None."""
        src, dst = self.roles.get(a.src), self.roles.get(a.dst)
        if src is None or dst is None:
            return None
        src_party, dst_party = _owner(src), _owner(dst)
        # a peer's socket to its TURN server, or to the other peer's relay: where a path begins
        if src_party is not None and not _relay(src) and (dst == "TURN" or _relay(dst)):
            self.home.setdefault(src_party, a.src)
            return ("first", src_party, dst_party if _relay(dst) and dst_party else self._other(src_party))
        # from a TURN server or a relay to a peer's socket: where it ends
        if dst_party is not None and not _relay(dst) and (src == "TURN" or _relay(src)):
            self.home.setdefault(dst_party, a.dst)
            return ("last", src_party if _relay(src) and src_party else self._other(dst_party), dst_party)
        if _relay(src) and _relay(dst):
            return ("middle", src_party or "", dst_party or "")
        return None

    def _other(self, party: str) -> str:
        others = [p for p in self.parties if p != party]
        return others[0] if len(others) == 1 else "?"

    def fold(self, items: Sequence[Arrow]) -> list[Arrow]:
        """Each direction's media through TURN as the arrows of its first leg, drawn to the other
        party's column with the TURN server on the way; its other legs' runs are left out."""
        legs = [self._leg(a) if _media(a) else None for a in items]
        directions = {(leg[1], leg[2]) for leg in legs if leg is not None and leg[0] == "first"}
        turn = next((e for e, r in self.roles.items() if r == "TURN"), None)
        out: list[Arrow] = []
        for a, leg in zip(items, legs, strict=True):
            if leg is None:
                out.append(a)
                continue
            kind, src, dst = leg
            if kind != "first":
                if (src, dst) not in directions:
                    out.append(a)  # its first leg is not in the capture: drawn as it is
                continue
            end = self.home.get(dst)
            if end is None or (turn is None and not _relay(self.roles.get(a.dst, ""))):
                out.append(a)
                continue
            via = tuple(dict.fromkeys(e for e in (turn, a.dst if a.dst != turn else None) if e))
            out.append(a._replace(dst=end, label=f"{a.label} via TURN", via=via))
        return out


def session_arrows(items: Sequence[Arrow], roles: Mapping[str, str]) -> list[Arrow]:
    """A session's arrows as its ladder draws them: TURN wrappers folded into what they carry,
    relayed media as one path."""
    unwrapped = unwrap(items)
    relayed = Relayed(roles)
    for a in unwrapped:  # learn each party's TURN-facing socket before folding
        if _media(a):
            relayed._leg(a)
    return relayed.fold(unwrapped)


def own_allocations(row: Row, rows: Iterable[Row]) -> list[Row]:
    """The TURN allocations of the report's `rows` that belong to the session `row`: on one of its
    flows, or made by one of its parties' sockets."""
    flows = row.get("flows")
    mine = set(flows) if isinstance(flows, list) else set()
    addresses = {a for p in maps(row.get("parties")) for a in _strs(p.get("addresses"))}
    return [
        r
        for r in rows
        if r.get("kind") == "turn_allocation" and (r.get("flow") in mine or r.get("client") in addresses)
    ]


def session_ladder(session: Session, row: Row, rows: Iterable[Row], width: int) -> tuple[Ladder, list[int]]:
    """The ladder of the session `row` (one of the sessions report's `rows`) and the flows it
    draws: its columns named by role, its peers' STUN and TURN exchanges included, TURN's
    wrappers folded and relayed media drawn as one path."""
    allocations = own_allocations(row, rows)
    flow = session.index.flow
    flows = session_flows(row, lambda frame: int(flow[frame - 1]) if frame <= len(flow) else -1, allocations)
    roles = endpoint_roles(row, allocations)
    items = session_arrows(list(arrows(session, flows)), roles)
    order = column_order(participants(items), roles)
    return draw_ladder(items, width, order, origin=capture_origin(session), named=roles), flows


def column_order(names: Sequence[str], roles: Mapping[str, str]) -> list[str]:
    """Columns left to right as a relayed call goes: the first party's sockets, the servers, the
    relays, the other parties' sockets, so A → TURN → B reads left to right and crosses the TURN
    server's column, on the first screen at 80 columns; then endpoints of no role (signaling),
    each rank in the order its endpoints appeared."""
    parties = sorted({o for r in roles.values() if (o := _owner(r)) is not None})
    first = parties[0] if parties else None

    def rank(name: str) -> int:
        role = roles.get(name)
        if role is None:
            return 6
        if role in SERVERS:
            return 2
        if _relay(role):
            return 3 if _owner(role) == first else 4
        return 1 if _owner(role) == first else 5

    return sorted(names, key=rank)  # stable: first appearance within a rank
