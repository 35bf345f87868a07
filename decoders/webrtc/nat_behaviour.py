"""NAT behaviour in RFC 4787's terms, decided from what a capture showed of one inside socket.

Pure functions over facts the observer (`nat.NatObserver`) gathered: the mappings of one inside
socket per destination (section 4.1), the inbound packets its NAT let through or dropped (section
5, filtering), and the four classic names people know (full cone, address-restricted cone,
port-restricted cone, symmetric; RFC 3489 section 5) beside them. Every verdict comes with the
sentences that justify it: a verdict nobody can check is worse than none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

ENDPOINT_INDEPENDENT = "endpoint-independent"
ADDRESS_DEPENDENT = "address-dependent"
ADDRESS_AND_PORT_DEPENDENT = "address-and-port-dependent"
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


@dataclass(frozen=True, slots=True)
class FilterFact:
    """One inbound packet from a remote the inside socket had not sent to: passed or dropped."""

    outcome: Literal["passed", "blocked"]
    scope: Literal["address", "port"]
    """"address": from an IP the socket never sent to (RFC 5780 filtering test II: change IP and
    port); "port": from an IP it sent to but another port (test III: change port)."""
    text: str


def split(endpoint: str) -> tuple[str, int]:
    """("ip", port) of "ip:port" or "[v6]:port" (as decoders.api.Endpoint prints them)."""
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), int(port) if port.isdigit() else 0


def classify_mapping(inside: str | None, mappings: Sequence[Mapping]) -> tuple[str, list[str]]:
    """RFC 4787 section 4.1 mapping behaviour of one inside socket, with its evidence.

    The same public address toward every destination is endpoint-independent; different ones
    toward different IPs only, address-dependent; different ones toward two ports of one IP,
    address-and-port-dependent. A srflx candidate counts as a mapping toward a destination of its
    own (its STUN server), which is what rtcstats' symmetric-NAT test compares."""
    if not mappings:
        return UNKNOWN, ["no mapping of this socket was observed"]
    if inside is not None and all(m.mapped == inside for m in mappings):
        first = mappings[0]
        toward = f" toward {first.destination}" if first.destination else ""
        return NO_NAT, [f"frame {first.frame}: {first.via} shows {inside}{toward} untranslated (no NAT)"]
    by_destination: dict[str, list[Mapping]] = {}
    for m in mappings:
        if m.destination is None and any(o.mapped == m.mapped and o.destination for o in mappings):
            continue  # the srflx candidate of a STUN response the capture shows too
        key = m.destination if m.destination is not None else f"{SRFLX_DESTINATION} {m.mapped}"
        by_destination.setdefault(key, []).append(m)
    if len(by_destination) < 2:
        seen = next(iter(by_destination.values()))
        return UNKNOWN, [f"{_seen(seen[0])} is the only destination: nothing to compare"]
    same: list[tuple[str, str, str, bool]] = []
    """(destination, destination, the mapping both saw, whether they share their IP)."""
    by_ip: list[str] = []
    by_port: list[str] = []
    names = list(by_destination)
    for i, d1 in enumerate(names):
        for d2 in names[i + 1 :]:
            m1, m2 = by_destination[d1], by_destination[d2]
            ip1 = None if m1[0].destination is None else split(d1)[0]
            ip2 = None if m2[0].destination is None else split(d2)[0]
            one_ip = ip1 is not None and ip1 == ip2
            shared = {m.mapped for m in m1} & {m.mapped for m in m2}
            if shared:
                same.append((d1, d2, min(shared), one_ip))
            else:
                (by_port if one_ip else by_ip).append(f"{_seen(m1[0])}, {_seen(m2[0])}")
    if by_port:
        return ADDRESS_AND_PORT_DEPENDENT, [
            *(f"{t}: the mapping changes with the destination port" for t in by_port[:MAX_PAIRS_SHOWN]),
            *(f"{t}: the mapping changes with the destination" for t in by_ip[:MAX_PAIRS_SHOWN]),
        ]
    if by_ip:
        evidence = [f"{t}: the mapping changes with the destination" for t in by_ip[:MAX_PAIRS_SHOWN]]
        same_ip = [s for s in same if s[3]]
        if same_ip:
            evidence += [
                f"{d1} and {d2} both saw {m}: one mapping for one destination IP"
                for d1, d2, m, _ in same_ip[:MAX_PAIRS_SHOWN]
            ]
        else:
            evidence.append("no two ports of one destination IP were compared")
        return ADDRESS_DEPENDENT, evidence
    return ENDPOINT_INDEPENDENT, [
        f"{d1} and {d2} both saw {m}: one mapping for every destination"
        for d1, d2, m, _ in same[:MAX_PAIRS_SHOWN]
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
    if mapping in (ADDRESS_DEPENDENT, ADDRESS_AND_PORT_DEPENDENT):
        return "symmetric"
    if mapping == ENDPOINT_INDEPENDENT:
        return CLASSIC_NAMES.get(filtering, CLASSIC_NAMES[UNKNOWN])
    return "unknown"
