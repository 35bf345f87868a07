"""The `nat` rows of the sessions report: NatObserver's facts grouped per inside socket and judged.

A socket's facts may have been gathered under several names: its inside address (a capture inside
the NAT), and each public address it was seen with (a capture outside, where a srflx candidate's
related address, or the srflx candidates of the check's sender on that public IP, tell which
inside socket it is). They are joined here, when every candidate is known, then judged with
nat_behaviour's RFC 4787 rules. Filtering and hairpinning count only what the capture shows
arriving: a response seen leaving a server toward a NAT's public side says nothing about whether
the NAT let it in. A behaviour one socket's traffic leaves unknown is taken from the other
sockets of its host behind the same NAT, when they agree (RFC 4787's behaviours are the NAT's).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from protoscope.decoders.api import Endpoint

from .nat import MAX_EVIDENCE, MAX_MAPPINGS, NatFacts, SocketFacts, StunRequest
from .nat_behaviour import (
    NO_NAT,
    UNKNOWN,
    FilterFact,
    Mapping,
    classify_filtering,
    classify_mapping,
    nat_type,
    split,
)

TEST_NAMES = {
    (True, True): "filtering test II (change IP and port)",
    (False, True): "filtering test III (change port)",
    (True, False): "filtering test (change IP)",
}
"""RFC 5780 section 4.4's tests, by the CHANGE-REQUEST flags (change IP, change port)."""


@dataclass(slots=True)
class _Group:
    inside: str | None
    sockets: list[SocketFacts] = field(default_factory=list)

    def mappings(self) -> list[Mapping]:
        """The group's mappings, the first MAX_MAPPINGS by frame: each socket keeps that many, but
        a socket known under many public addresses (aliases) merges theirs here."""
        found = [m for s in self.sockets for m in s.mappings.values()]
        return sorted(found, key=lambda m: m.frame)[:MAX_MAPPINGS]

    def capped(self) -> bool:
        return sum(len(s.mappings) for s in self.sockets) > MAX_MAPPINGS

    def ufrag(self) -> str | None:
        return next((s.ufrag for s in self.sockets if s.ufrag), None)


def build_rows(facts: NatFacts) -> list[dict[str, object]]:
    groups: dict[str, _Group] = {}
    for sock in facts.sockets.values():
        inside = _inside_of(sock, facts)
        group = groups.setdefault(inside or sock.key, _Group(inside))
        group.sockets.append(sock)
    judged = [(_first_frame(group), _row(group, facts)) for group in groups.values()]
    rows = [row for _, row in sorted(judged, key=lambda item: item[0])]
    _share_behaviour(rows)
    return rows


def _nat_of(row: dict[str, object]) -> tuple[str, frozenset[str]] | None:
    """(inside IP, public IPs) of a row behind a NAT, or None."""
    inside, public = row["inside"], row["public"]
    if not isinstance(inside, str) or not isinstance(public, list) or not public or row["mapping"] == NO_NAT:
        return None
    return split(inside)[0], frozenset(split(p)[0] for p in public)


def _share_behaviour(rows: list[dict[str, object]]) -> None:
    """RFC 4787's behaviours belong to the NAT, not to one socket: a socket whose own traffic
    leaves its mapping or filtering unknown takes the one its host's other sockets showed behind
    the same NAT (one inside IP, a public IP in common), when they agree. RFC 5780 tools probe
    from a fresh socket per test, and a browser's TURN socket is seldom probed at all."""
    own = [(row, _nat_of(row), {key: str(row[key]) for key in ("mapping", "filtering")}) for row in rows]
    for row, nat, seen in own:
        if nat is None:
            continue
        siblings = [
            (r, s) for r, n, s in own if r is not row and n is not None and n[0] == nat[0] and n[1] & nat[1]
        ]
        evidence = row["evidence"]
        assert isinstance(evidence, list)
        for key in ("mapping", "filtering"):
            known = {s[key] for _, s in siblings if s[key] != UNKNOWN}
            if seen[key] != UNKNOWN or len(known) != 1:
                continue
            row[key] = behaviour = known.pop()
            donors = ", ".join(str(r["inside"]) for r, s in siblings if s[key] == behaviour)
            evidence.append(f"{key}: {behaviour}, as {donors} showed behind the same NAT")
        row["nat_type"] = nat_type(str(row["mapping"]), str(row["filtering"]))
        del evidence[MAX_EVIDENCE:]


def _first_frame(group: _Group) -> int:
    return min((m.frame for s in group.sockets for m in s.mappings.values()), default=0)


def _inside_of(sock: SocketFacts, facts: NatFacts) -> str | None:
    """The inside socket of facts gathered under `sock.key`, as far as the capture tells."""
    if sock.inside is not None:
        return sock.inside
    if sock.key in facts.aliases:
        return facts.aliases[sock.key]
    if sock.key in facts.hosts or _loopback(sock.key):
        return sock.key  # a host candidate, or loopback, that is its own mapping: no NAT
    if sock.ufrag:
        ip = split(sock.key)[0]
        related = {rel for pub, rel in facts.srflx.get(sock.ufrag, []) if split(pub)[0] == ip}
        if len(related) == 1:
            return related.pop()  # a peer-reflexive mapping of the sender's only socket behind that IP
    return None


def _loopback(endpoint: str) -> bool:
    """Loopback traffic never crosses a NAT: its own mapping is its inside address."""
    try:
        return ipaddress.ip_address(split(endpoint)[0]).is_loopback
    except ValueError:
        return False


def _row(group: _Group, facts: NatFacts) -> dict[str, object]:
    inside = group.inside
    mappings = group.mappings()
    publics = list(dict.fromkeys(m.mapped for m in mappings))
    members = {*publics, *(s.key for s in group.sockets)} | ({inside} if inside else set())
    mapping, mapping_evidence = classify_mapping(inside, mappings)
    if group.capped():
        mapping_evidence.append(f"more than {MAX_MAPPINGS} mappings (MAX_MAPPINGS): the first are judged")
    nat = inside is not None and mapping != NO_NAT
    # Inside the NAT, or with none (loopback, a host candidate): what arrives there got through.
    at_socket = any(s.seen_inside for s in group.sockets) or mapping == NO_NAT
    tests: dict[str, str] = {}
    filter_facts = _probe_facts(group, facts, members, at_socket, tests)
    if nat:
        filter_facts += _inbound_facts(group, facts, publics, at_socket)
    filtering, filtering_evidence = classify_filtering(filter_facts)
    if mapping == NO_NAT:
        filtering, filtering_evidence = NO_NAT, []  # no NAT, no filter (its probes stay in `rfc5780`)
    _mapping_tests(mappings, facts, tests)
    hairpinning, hairpin_evidence = _hairpinning(group, facts, publics) if nat else (None, [])
    preserved, port_evidence = _port_preservation(inside, mappings) if nat else (None, [])
    lifetime, lifetime_evidence = _lifetime(group)
    kind = nat_type(mapping, filtering)
    if inside is None and mapping != NO_NAT:
        # Seen only from outside, with no candidate naming its inside address: one public address
        # toward every destination is a cone NAT's, or no NAT's at all.
        kind = "unknown"
        mapping_evidence.append("the inside address is unknown: a cone NAT, or none")
    evidence = [
        *(f"mapping: {e}" for e in mapping_evidence),
        *(f"filtering: {e}" for e in filtering_evidence),
        *port_evidence,
        *hairpin_evidence,
        *lifetime_evidence,
    ]
    return {
        "party": None,
        "ufrag": group.ufrag(),
        "inside": inside,
        "public": [p for p in publics if p != inside],
        "mappings": [
            {"destination": m.destination, "mapped": m.mapped, "via": m.via, "frame": m.frame}
            for m in mappings
        ],
        "mapping": mapping,
        "filtering": filtering,
        "nat_type": kind,
        "port_preservation": preserved,
        "hairpinning": hairpinning,
        "binding_lifetime_s": lifetime,
        "rfc5780": tests or None,
        "evidence": evidence[:MAX_EVIDENCE],
    }


def _probe_facts(
    group: _Group, facts: NatFacts, members: set[str], at_socket: bool, tests: dict[str, str]
) -> list[FilterFact]:
    """RFC 5780 section 4.4: CHANGE-REQUEST probes from this socket, answered or not. Only a
    capture at the socket shows whether an answer got in."""
    found: list[FilterFact] = []
    for req in facts.probes:
        if req.src not in members:
            continue
        if req.padding:
            answer = req.answered
            tests["padding"] = (
                f"{req.padding} bytes of PADDING answered (frame {answer.frame})"
                if answer is not None
                else f"{req.padding} bytes of PADDING not answered (frame {req.frame})"
            )
        if req.change is None or not any(req.change):
            continue
        name = TEST_NAMES[req.change]
        scope = "port" if req.change == (False, True) else "address"
        result, fact = _probe_result(req, at_socket and req.src == group.inside, scope)
        if name not in tests or fact is not None:
            tests[name] = result
        if fact is not None:
            found.append(fact)
    return found


def _probe_result(req: StunRequest, at_socket: bool, scope: str) -> tuple[str, FilterFact | None]:
    answer = req.answered
    sent = f"frame {req.frame}: request to {req.dst}"
    if answer is None:
        if not at_socket:
            return f"{sent}: no response seen", None
        return f"{sent}: no response reached {req.src}", FilterFact("blocked", scope, f"{sent}: no response")  # type: ignore[arg-type]
    if not answer.success:
        return f"{sent}: error response (frame {answer.frame})", None
    if answer.src == req.dst:
        return f"{sent}: answered from the same address (the server did not change it)", None
    text = f"{sent}: answered from {answer.src} (frame {answer.frame})"
    if not at_socket or answer.dst != req.src:
        return f"{text}; the capture does not show it reach the inside socket", None
    return text, FilterFact("passed", scope, f"{text}, which reached {req.src}")  # type: ignore[arg-type]


def _inbound_facts(group: _Group, facts: NatFacts, publics: list[str], at_socket: bool) -> list[FilterFact]:
    """Unsolicited ICE checks: seen inside, the NAT let them in; seen outside, an answer says so.
    (Outside, a check sent to the inside address itself never crossed the NAT's filter.)"""
    found: list[FilterFact] = []
    untranslated = {s.inside for s in facts.sockets.values() if s.seen_inside}
    lan = _lan_sources(group, facts)
    for check in facts.inbound.values():
        if check.receiver == group.inside and not at_socket:
            continue
        if check.remote in untranslated:
            continue  # seen inside the sender's NAT: the receiver's NAT saw another source
        if check.receiver == group.inside and _on_inside_network(check.remote, group.inside, lan):
            continue  # from the inside network: it never crossed the NAT's filter
        inside = check.receiver == group.inside
        if not inside and check.receiver not in publics:
            continue
        scope = "port" if check.known_ip else "address"
        had = "STUN only to other ports of its IP" if check.known_ip else "no STUN to that IP"
        text = f"frame {check.frame}: a check from {check.remote} to {check.receiver}"
        text += f", which had sent {had},"
        if inside:
            found.append(FilterFact("passed", scope, f"{text} reached it inside"))  # type: ignore[arg-type]
        elif check.answered is not None:
            found.append(FilterFact("passed", scope, f"{text} was answered (frame {check.answered})"))  # type: ignore[arg-type]
        else:
            found.append(FilterFact("blocked", scope, f"{text} got no answer"))  # type: ignore[arg-type]
    return found


def _lan_sources(group: _Group, facts: NatFacts) -> tuple[set[str], set[str]]:
    """(endpoints, IPs) known to be on the inside network of `group`'s NAT: the destinations its
    socket reached untranslated, the inside addresses of sockets the capture saw behind a NAT, and
    private host candidates (their packets reach a socket beside them without crossing it)."""
    reached = {
        m.destination
        for s in group.sockets
        for m in s.mappings.values()
        if m.destination is not None and m.mapped == group.inside
    }
    ips = {split(s.inside)[0] for s in facts.sockets.values() if s.seen_inside and s.inside}
    ips |= {split(h)[0] for h in facts.hosts if not _is_global(h)}
    return reached, ips


def _is_global(endpoint: str) -> bool:
    try:
        return ipaddress.ip_address(split(endpoint)[0]).is_global
    except ValueError:
        return False


def _on_inside_network(remote: str, inside: str | None, lan: tuple[set[str], set[str]]) -> bool:
    """Whether a packet from `remote` to the inside socket `inside` came from the inside network,
    not through the NAT: a destination it reached untranslated, another inside address of this
    capture, or a non-global address in the inside address's own subnet (/24, /64)."""
    reached, ips = lan
    ip = split(remote)[0]
    if remote in reached or ip in ips:
        return True
    if inside is None:
        return False
    try:
        source, own = ipaddress.ip_address(ip), ipaddress.ip_address(split(inside)[0])
    except ValueError:
        return False
    if source.version != own.version or source.is_global or own.is_global:
        return False
    prefix = 24 if own.version == 4 else 64
    return source in ipaddress.ip_network(f"{own}/{prefix}", strict=False)


def _mapping_tests(mappings: list[Mapping], facts: NatFacts, tests: dict[str, str]) -> None:
    """RFC 5780 section 4.3: test I's binding to the server, test II's to its OTHER-ADDRESS's IP
    on the primary port, test III's to the OTHER-ADDRESS."""
    for first in mappings:
        other = facts.other.get(first.destination or "")
        if other is None:
            continue
        tests.setdefault("other_address", other)
        tests.setdefault("mapping test I", f"{first.mapped} toward {first.destination} (frame {first.frame})")
        ip, _ = split(other)
        port = split(first.destination or "")[1]
        alternate = str(Endpoint(ip, port))
        for name, dest in (("mapping test II", alternate), ("mapping test III", other)):
            seen = next((m for m in mappings if m.destination == dest), None)
            if seen is None or name in tests:
                continue
            same = "the same mapping" if seen.mapped == first.mapped else "another mapping"
            tests[name] = f"{seen.mapped} toward {dest} (frame {seen.frame}): {same}"
        return


def _hairpinning(group: _Group, facts: NatFacts, publics: list[str]) -> tuple[bool | None, list[str]]:
    """RFC 4787 section 6 / RFC 5780 section 4.5: a request to this socket's public address that
    came back in to it."""
    inside = group.inside
    for first, second in facts.seen_twice:
        if first.dst in publics and first.dst != inside and second.dst == inside:
            return True, [
                f"hairpinning: frame {first.frame}: a request to the public {first.dst} reached "
                f"{inside} (frame {second.frame})"
            ]
    for req in facts.to_public:
        if req.dst not in publics or req.dst == inside:
            continue
        answer = req.answered
        if answer is not None and answer.src == req.dst:
            return True, [
                f"hairpinning: frame {req.frame}: a request to the public {req.dst} was answered from it"
            ]
        return False, [
            f"hairpinning: frame {req.frame}: a request to the public {req.dst} never reached {inside}"
        ]
    return None, []


def _port_preservation(inside: str | None, mappings: list[Mapping]) -> tuple[bool | None, list[str]]:
    """RFC 4787 section 4.2.1: does the NAT keep the inside port?"""
    if inside is None:
        return None, []
    port = split(inside)[1]
    for m in mappings:
        if m.mapped != inside and split(m.mapped)[1] != port:
            return False, [f"port preservation: no, {inside} became {m.mapped} (frame {m.frame})"]
    return True, [f"port preservation: yes, {inside} kept port {port}"]


def _lifetime(group: _Group) -> tuple[dict[str, float | None] | None, list[str]]:
    least = max((s.at_least for s in group.sockets if s.at_least), default=None, key=lambda b: b[0])
    most = min((s.at_most for s in group.sockets if s.at_most), default=None, key=lambda b: b[0])
    if least is None and most is None:
        return None, []
    evidence = [f"binding lifetime: {b[1]}" for b in (least, most) if b is not None]
    bounds = {
        "at_least": round(least[0], 3) if least else None,
        "at_most": round(most[0], 3) if most else None,
    }
    return bounds, evidence
