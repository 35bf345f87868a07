"""NAT behaviour in RFC 4787's terms, decided from what a capture showed of one inside socket.

Pure functions over facts the observer (`nat.NatObserver`) gathered: the mappings of one inside
socket per destination (section 4.1), the inbound packets its NAT let through or dropped (section
5, filtering), and the four classic names people know (full cone, address-restricted cone,
port-restricted cone, symmetric; RFC 3489 section 5) beside them. Every verdict comes with the
sentences that justify it: a verdict nobody can check is worse than none.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

ENDPOINT_INDEPENDENT = "endpoint-independent"
ADDRESS_DEPENDENT = "address-dependent"
ADDRESS_AND_PORT_DEPENDENT = "address-and-port-dependent"
DESTINATION_DEPENDENT = "destination-dependent"
"""The mapping changes with the destination, but no two ports of one destination IP were compared:
RFC 4787 cannot tell address-dependent from address-and-port-dependent (both are symmetric)."""
NO_NAT = "no-nat"
UNKNOWN = "unknown"

CLASSIC_NAMES = {
    ENDPOINT_INDEPENDENT: "full cone",
    ADDRESS_DEPENDENT: "address-restricted cone",
    ADDRESS_AND_PORT_DEPENDENT: "port-restricted cone",
    UNKNOWN: "cone (filtering unknown)",
}
"""RFC 3489's names of an endpoint-independent mapping, by the filtering behind it."""
MAX_PAIRS_SHOWN = 3
"""Sentences of evidence per kind of comparison (the first ones): a socket that talked to 60
destinations would otherwise list 1,770 pairs."""
MAX_COMPARED = 64
"""Destinations of one socket compared pairwise (the first ones by frame): 2,016 comparisons at
most, however many aliases a socket's facts were merged from."""
SRFLX_DESTINATION = "the STUN server of a srflx candidate"
"""What a srflx candidate's mapping was toward: signaling does not say which server."""


@dataclass(frozen=True, slots=True)
class Mapping:
    """One mapping of an inside socket, seen once (the first time)."""

    destination: str | None
    """"ip:port" the socket sent to; None for a srflx candidate (signaling names no server)."""
    mapped: str
    """The public "ip:port" the destination saw (XOR-MAPPED-ADDRESS, or a check's source)."""
    via: str
    """"stun", "turn", "check" or "candidate"."""
    frame: int
    time: float
    ufrag: str | None = None
    """A srflx candidate's ICE ufrag (its ICE generation's credentials), if signaling gave one."""
    generation: int | None = None
    """A srflx candidate's "generation" extension attribute: a restart gathers anew."""


@dataclass(frozen=True, slots=True)
class FilterFact:
    """One inbound packet from a remote the inside socket had not sent to: passed or dropped."""

    outcome: Literal["passed", "blocked"]
    scope: Literal["address", "port"]
    """"address": from an IP the socket never sent to (RFC 5780 filtering test II: change IP and
    port); "port": from an IP it sent to but another port (test III: change port)."""
    text: str


def split(endpoint: str) -> tuple[str, int]:
    """("ip", port) of "ip:port" or "[v6]:port" (as decoders.api.Endpoint prints them), the IP
    normalised by `ipaddress` (IPv6 compressed, lower case) so that two spellings compare equal."""
    host, _, port = endpoint.rpartition(":")
    host = host.strip("[]")
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        pass
    return host, int(port) if port.isdigit() else 0


def _generation(m: Mapping) -> tuple[str | None, int | None]:
    return m.ufrag, m.generation


def _one_generation(candidate: Sequence[Mapping], seen: Sequence[Mapping]) -> bool:
    """Whether a srflx candidate's mapping may be compared with a destination's: the destination's
    were seen with no ufrag (a STUN server) or with the candidate's (checks of its generation)."""
    ufrag = candidate[0].ufrag
    return ufrag is None or any(m.ufrag is None or m.ufrag == ufrag for m in seen)


def classify_mapping(inside: str | None, mappings: Sequence[Mapping]) -> tuple[str, list[str]]:
    """RFC 4787 section 4.1 mapping behaviour of one inside socket, with its evidence.

    The same public address toward every destination is endpoint-independent; different ones
    toward two ports of one IP, address-and-port-dependent; different ones toward different IPs
    while two ports of one IP shared one, address-dependent; different ones toward different IPs
    with no two ports of one IP compared, destination-dependent (RFC 4787 cannot tell which).

    A destination the socket reached untranslated (its mapping is the inside address) is on this
    side of the NAT (a LAN peer): it is no mapping of the NAT and is left out. A srflx candidate
    counts as a mapping toward a destination of its own (its STUN server), which is what rtcstats'
    symmetric-NAT test compares; two candidates are compared only within one ICE generation (same
    ufrag and generation), since a restart gathers afresh and may get new mappings."""
    if not mappings:
        return UNKNOWN, ["no mapping of this socket was observed"]
    if inside is not None and all(m.mapped == inside for m in mappings):
        first = mappings[0]
        toward = f" toward {first.destination}" if first.destination else ""
        return NO_NAT, [f"frame {first.frame}: {first.via} shows {inside}{toward} untranslated (no NAT)"]
    evidence: list[str] = []
    lan = [m for m in mappings if inside is not None and m.mapped == inside]
    if lan:
        evidence.append(f"{_seen(lan[0])}: reached untranslated, on this side of the NAT (not compared)")
    translated = [m for m in mappings if inside is None or m.mapped != inside]
    real = {m.mapped for m in translated if m.destination}
    by_destination: dict[str, list[Mapping]] = {}
    capped = False
    for m in translated:
        if m.destination is None and m.mapped in real:
            continue  # the srflx candidate of a STUN response the capture shows too
        key = m.destination if m.destination is not None else f"{SRFLX_DESTINATION} {m.mapped}"
        if key not in by_destination and len(by_destination) >= MAX_COMPARED:
            capped = True
            continue
        by_destination.setdefault(key, []).append(m)
    if capped:
        evidence.append(f"more than {MAX_COMPARED} destinations (MAX_COMPARED): the first are compared")
    if len(by_destination) < 2:
        seen = next(iter(by_destination.values()))
        return UNKNOWN, [*evidence, f"{_seen(seen[0])} is the only destination: nothing to compare"]
    same: list[tuple[str, str, str, bool]] = []
    """(destination, destination, the mapping both saw, whether they share their IP)."""
    same_ip = 0
    by_ip: list[str] = []
    by_port: list[str] = []
    candidates_only = real_differs = restarts = False
    names = list(by_destination)
    mapped_of = {d: {m.mapped for m in by_destination[d]} for d in names}
    ip_of = {d: None if by_destination[d][0].destination is None else split(d)[0] for d in names}
    for i, d1 in enumerate(names):
        for d2 in names[i + 1 :]:
            m1, m2 = by_destination[d1], by_destination[d2]
            ip1, ip2 = ip_of[d1], ip_of[d2]
            if ip1 is None and ip2 is None:
                if _generation(m1[0]) != _generation(m2[0]):
                    restarts = True
                    continue  # srflx candidates of two ICE generations: a restart, not a NAT trait
            elif not _one_generation(m1 if ip1 is None else m2, m2 if ip1 is None else m1):
                restarts = True
                continue  # a srflx candidate and the checks of another ufrag (after a restart)
            one_ip = ip1 is not None and ip1 == ip2
            shared = mapped_of[d1] & mapped_of[d2]
            if shared:
                same_ip += one_ip
                if len(same) < MAX_PAIRS_SHOWN or (one_ip and same_ip <= MAX_PAIRS_SHOWN):
                    same.append((d1, d2, min(shared), one_ip))
                continue
            if ip1 is None and ip2 is None:
                candidates_only = True
            else:
                real_differs = True
            if one_ip:
                if len(by_port) < MAX_PAIRS_SHOWN:
                    by_port.append(f"{_seen(m1[0])}, {_seen(m2[0])}")
            else:
                if len(by_ip) < MAX_PAIRS_SHOWN:
                    by_ip.append(f"{_seen(m1[0])}, {_seen(m2[0])}")
    if restarts:
        evidence.append("srflx candidates of another ICE generation (a restart) are not compared")
    if candidates_only and not real_differs:
        evidence.append("this rests on srflx candidates only (signaling; no STUN exchange seen)")
    if by_port:
        return ADDRESS_AND_PORT_DEPENDENT, [
            *evidence,
            *(f"{t}: the mapping changes with the destination port" for t in by_port),
            *(f"{t}: the mapping changes with the destination" for t in by_ip),
        ]
    if by_ip:
        evidence += [f"{t}: the mapping changes with the destination" for t in by_ip]
        ips = [s for s in same if s[3]]
        if ips:
            evidence += [
                f"{d1} and {d2} both saw {m}: one mapping for one destination IP"
                for d1, d2, m, _ in ips[:MAX_PAIRS_SHOWN]
            ]
            return ADDRESS_DEPENDENT, evidence
        evidence.append(
            "no two ports of one destination IP were compared: address- or address-and-port-dependent"
        )
        return DESTINATION_DEPENDENT, evidence
    if not same:
        return UNKNOWN, [*evidence, "no two destinations of one ICE generation to compare"]
    return ENDPOINT_INDEPENDENT, [
        *evidence,
        *(
            f"{d1} and {d2} both saw {m}: one mapping for every destination"
            for d1, d2, m, _ in same[:MAX_PAIRS_SHOWN]
        ),
    ]


def _seen(m: Mapping) -> str:
    toward = m.destination or SRFLX_DESTINATION
    return f"{m.mapped} toward {toward} ({m.via}, frame {m.frame})"


def classify_filtering(facts: Sequence[FilterFact]) -> tuple[str, list[str]]:
    """RFC 4787 section 5 filtering behaviour from inbound packets (RFC 5780 section 4.4's tests
    II and III, or unsolicited ICE checks), with its evidence.

    A packet from an IP the socket never sent to that got through means endpoint-independent; one
    from a known IP's other port that got through while the unknown IP was dropped,
    address-dependent; both dropped, address-and-port-dependent. A packet that got through outweighs
    one that did not (a loss, or an agent not yet listening, also drops one)."""
    passed = {f.scope for f in facts if f.outcome == "passed"}
    blocked = {f.scope for f in facts if f.outcome == "blocked"}
    evidence = [f.text for f in facts][: 2 * MAX_PAIRS_SHOWN]
    if "address" in passed:
        return ENDPOINT_INDEPENDENT, evidence
    if "port" in passed and "address" in blocked:
        return ADDRESS_DEPENDENT, evidence
    if "port" in blocked and "port" not in passed:
        return ADDRESS_AND_PORT_DEPENDENT, evidence
    if not facts:
        evidence = ["no inbound packet from a remote this socket had not sent to"]
    elif "address" in blocked:
        evidence.append("not endpoint-independent; nothing shows address- from address-and-port-dependent")
    return UNKNOWN, evidence


def nat_type(mapping: str, filtering: str) -> str:
    """The classic name (RFC 3489 section 5) of a mapping and filtering behaviour."""
    if mapping == NO_NAT:
        return "no NAT"
    if mapping in (ADDRESS_DEPENDENT, ADDRESS_AND_PORT_DEPENDENT, DESTINATION_DEPENDENT):
        return "symmetric"
    if mapping == ENDPOINT_INDEPENDENT:
        return CLASSIC_NAMES.get(filtering, CLASSIC_NAMES[UNKNOWN])
    return "unknown"
