"""Why a WebRTC session went the way it did: the row keys of issue 16 and their findings.

From what the sessions analysis gathered (sessions.py) and the pair table (ice.py): the legs of the
call (`paths`), media per SSRC named by party, the NAT verdicts of the parties' endpoints
(nat.py's NatObserver), and the `diagnosis`: why each pair failed, why the selected pair was
selected, why a relay was needed, ICE restarts, consent freshness (RFC 7675) and the time from the
first candidate to connected, DTLS done and first media. Each conclusion that matters is also a
finding with the evidence in its message, so `--report findings` tells the story too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from protoscope.decoders.api import AnalysisFinding, Severity
from protoscope.decoders.icmp.message import IcmpError
from protoscope.decoders.webrtc import ice
from protoscope.decoders.webrtc.nat import NatObserver

if TYPE_CHECKING:
    from protoscope.decoders.webrtc.sessions import IceSession

CONSENT_TIMEOUT = 30.0
"""RFC 7675 section 5.1: consent expires 30 s after the last response to a consent check. The
finding needs packets on the selected pair's flow past that (checks still sent, or media): an
agent whose consent lapsed stops sending, so a pair that falls silent is a call that ended or
moved, which the capture cannot tell from a lost consent."""
SUMMARY_WIDTH = 78
"""The one-line summary fits an 80-column terminal with its indent."""

FINDING_SEVERITY: dict[str, Severity] = {
    "nat.symmetric": "warn",
    "ice.relay_only": "note",
    "ice.consent_lost": "error",
    "ice.restart": "note",
    "ice.check_failed": "warn",
}
"""The findings this module makes (sessions.SEVERITY holds them too)."""


def icmp_text(rec: IcmpError) -> str:
    """ "ICMP port unreachable from 10.0.0.1": what the error said and who said it."""
    description = rec.description or "error"
    detail = description.split("(", 1)[1].rstrip(")") if "(" in description else description
    return f"ICMP {detail[:60].lower()} from {rec.reporter}"


def _finding(phase: str, code: str, message: str, frame: int | None) -> AnalysisFinding:
    return {
        "frame": frame or None,
        "severity": FINDING_SEVERITY[code],
        "code": code,
        "message": message,
        "phase": phase,
    }


def owners(
    parties: list[dict[str, object]],
    signaled: list[dict[str, object]],
    wire: ice.Wire,
    pairs: Iterable[ice.Pair] = (),
    party: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Endpoint -> party name: the sockets and relayed endpoints of a party's checks, the
    endpoints of its signaled candidates, the allocations its sockets or candidates hold, and
    the remote endpoint of its checks (the other party's, even an ICE-lite agent that sends
    none)."""
    owner: dict[str, str] = {}
    for p in parties:
        for ep in p["addresses"]:  # type: ignore[attr-defined]
            owner.setdefault(str(ep), str(p["name"]))
    for row in signaled:
        if isinstance(row["party"], str):
            owner.setdefault(ice._endpoint_of(row), row["party"])
    for pair in pairs:
        mine = (party or {}).get(pair.sender_ufrag or "") or owner.get(pair.local)
        if mine in ice.PARTY_NAMES:
            owner.setdefault(pair.remote, ice.PARTY_NAMES[1 - ice.PARTY_NAMES.index(mine)])
    for ep, name in list(owner.items()):  # a party's socket holds its relay, and the reverse
        for relayed in wire.clients.get(ep, ()):
            owner.setdefault(relayed, name)
        allocation = wire.relays.get(ep)
        if allocation is not None:
            owner.setdefault(allocation[0], name)
    return owner


def path_rows(
    session: IceSession,
    owner: Mapping[str, str],
    turn_flows: Mapping[int, str],
    relay: Mapping[str, object],
) -> list[dict[str, object]]:
    """The row's `paths`: each leg named by who sent on it."""
    rows: list[dict[str, object]] = []
    for (flow, _, via), path in session.paths.items():
        client = turn_flows.get(flow)
        if client is not None:
            party = owner.get(client, client)
            leg = f"{party}→TURN" if path.src == client else f"TURN→{party}"
        elif path.src in relay and path.dst in relay:
            leg = "relay→relay"
        elif path.src in relay:
            leg = f"TURN→{owner.get(path.dst, path.dst)}"
        elif path.dst in relay:
            leg = f"{owner.get(path.src, path.src)}→TURN"
        else:
            leg = "direct"
        rows.append({"leg": leg, "flow": flow, "via": via, "packets": path.packets, "bytes": path.bytes})
    return rows


def media_rows(session: IceSession, owner: Mapping[str, str]) -> list[dict[str, object]]:
    """The row's `media`: one entry per SSRC, counted on the leg it was first seen on."""
    return [
        {
            "ssrc": ssrc,
            "from": owner.get(m.src),
            "to": owner.get(m.dst),
            "from_client": m.leg[1],
            "packets": m.packets,
            "bytes": m.bytes,
            "payload_type": m.payload_type,
            "legs": 1 + len(m.legs),
        }
        for ssrc, m in session.media.items()
    ]


def nat_rows(nat: NatObserver, endpoints: Iterable[str], owner: Mapping[str, str]) -> list[dict[str, object]]:
    """The NatObserver's verdicts on these endpoints, each with the party it concerns."""
    rows: list[dict[str, object]] = []
    for verdict in nat.verdict_for(sorted(set(endpoints))):
        row = dict(verdict)
        public = row.get("public")
        seen = [row.get("inside"), *(public if isinstance(public, list) else [])]
        row["party"] = next((owner[str(ep)] for ep in seen if str(ep) in owner), None)
        rows.append(row)
    return rows


def nat_key(row: Mapping[str, object]) -> tuple[object, ...]:
    """What names a NAT verdict row (its inside socket and public addresses), to tell the rows a
    session shows from those of sockets no session claims."""
    public = row.get("public")
    return (row.get("inside"), *(public if isinstance(public, list) else ()))


def _symmetric(row: Mapping[str, object]) -> bool:
    return row.get("nat_type") == "symmetric" or row.get("mapping") == "address-and-port-dependent"


def _behind_symmetric(nats: list[dict[str, object]]) -> list[dict[str, object]]:
    """One symmetric verdict per party (or inside socket when the party is unknown): the one
    with the most mappings, whose evidence compares destinations."""
    best: dict[str, dict[str, object]] = {}
    for row in nats:
        if not _symmetric(row):
            continue
        who = str(row.get("party") or row.get("inside") or "a peer")
        mappings = row.get("mappings")
        count = len(mappings) if isinstance(mappings, list) else 0
        kept = best.get(who)
        kept_mappings = kept.get("mappings") if kept is not None else None
        if kept is None or count > (len(kept_mappings) if isinstance(kept_mappings, list) else 0):
            best[who] = row
    return list(best.values())


def _relay_reason(
    pairs: list[dict[str, object]], nats: list[dict[str, object]], candidates: list[dict[str, object]]
) -> tuple[str, str]:
    """(why a relay was needed, its short form for the summary), with the evidence."""
    parts: list[str] = []
    short: list[str] = []
    behind: list[str] = []
    for row in _behind_symmetric(nats):
        who = row.get("party") or row.get("inside") or "a peer"
        evidence = row.get("evidence")
        first = (
            _plain(evidence[0])
            if isinstance(evidence, list) and evidence
            else "mappings differ per destination"
        )
        parts.append(f"peer {who} is behind a symmetric NAT: {first}")
        behind.append(str(who))
    if behind:
        short.append(
            f"{behind[0]} behind a symmetric NAT"
            if len(behind) == 1
            else f"{', '.join(behind[:-1])} and {behind[-1]} behind symmetric NATs"
        )
    direct = [p for p in pairs if not p["relayed"]]
    if direct and not any(p["state"] == "succeeded" for p in direct):
        failures = sorted({str(p["failure"]) for p in direct if p["failure"]})
        parts.append("direct pairs failed" + (f" ({'; '.join(failures[:2])})" if failures else ""))
        short.append("direct pairs failed")
    elif not direct:
        signaled = [c for c in candidates if c["source"] in ("sdp", "sdp-file", "trickle")]
        if signaled and all(c["type"] == "relay" for c in signaled):
            parts.append("only relay candidates were offered (a relay-only ICE transport policy)")
            short.append("only relay candidates offered")
        else:
            parts.append("no direct pair was checked")
            short.append("no direct pair checked")
    else:
        parts.append("a direct pair worked too, yet the controlling agent nominated the relay")
        short.append("relay nominated over a direct pair")
    return "; ".join(parts), ", ".join(short)


def _ms(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start) * 1000, 1)


def diagnose(
    session: IceSession,
    table: ice.Table,
    candidates: list[dict[str, object]],
    nats: list[dict[str, object]],
    restarts: list[tuple[str, str, int]],
) -> tuple[dict[str, object], list[AnalysisFinding]]:
    """The row's `diagnosis` and the findings that carry its evidence."""
    findings: list[AnalysisFinding] = []
    for row in _behind_symmetric(nats):
        who = row.get("party") or row.get("inside") or "a peer"
        evidence = row.get("evidence")
        mappings = row.get("mappings")
        frames = (
            [int(m["frame"]) for m in mappings if isinstance(m, Mapping) and isinstance(m.get("frame"), int)]
            if isinstance(mappings, list)
            else []
        )
        text = "; ".join(_plain(e) for e in evidence[:2]) if isinstance(evidence, list) else ""
        findings.append(
            _finding(
                "ice",
                "nat.symmetric",
                f"{who} is behind a symmetric NAT: {text}".rstrip(": "),
                max(frames, default=None),
            )
        )
    for p, row in ((p, table.by_pair[id(p)]) for p in session.pairs.values()):
        if row["state"] == "failed" and (p.icmp or p.error):
            frame = p.icmp_frame if p.icmp else p.error_frame
            findings.append(
                _finding(
                    "ice", "ice.check_failed", f"check {p.local} → {p.remote} failed: {row['failure']}", frame
                )
            )
    for what, frame in session.icmp:
        findings.append(_finding("ice", "ice.check_failed", f"a check failed: {what}", frame))
    for party, ufrag, frame in restarts:
        findings.append(_finding("ice", "ice.restart", f"{party} restarted ICE (new ufrag {ufrag!r})", frame))
    best = table.selected_pair
    relay: str | None = None
    short = ""
    if best is not None and table.by_pair[id(best)]["relayed"]:
        relay, short = _relay_reason(table.rows, nats, candidates)
        findings.append(
            _finding(
                "ice", "ice.relay_only", f"the call went through a TURN relay: {relay}", best.nominated_frame
            )
        )
    consent: str | None = None
    if best is not None and best.last_success_time is not None:
        # Judged while the selected pair is in use (its flow carries checks or traffic): a call
        # that moved elsewhere or ended leaves its pair silent, not without consent.
        end = max(
            (p.last_time for (flow, _, _), p in session.paths.items() if flow == best.flow), default=0.0
        )
        stop = end if session.ended is None else min(end, session.ended)
        gap, gap_frame = best.consent_gap
        if gap > CONSENT_TIMEOUT:
            consent = f"no consent response for {gap:.1f} s before frame {gap_frame}"
            frame = gap_frame
        elif (
            stop - best.last_success_time > CONSENT_TIMEOUT
            and best.last_request_time - best.last_success_time > CONSENT_TIMEOUT
        ):
            # checks went on unanswered past the timeout: an agent that sends no consent checks
            # of its own (its peer's keep the pair alive) has lost nothing the capture shows
            silent = stop - best.last_success_time
            consent = f"no consent response for {silent:.1f} s after frame {best.last_success_frame}"
            frame = best.last_success_frame
        if consent is not None:
            consent += f" on the selected pair (RFC 7675: it expires after {CONSENT_TIMEOUT:.0f} s)"
            findings.append(_finding("ice", "ice.consent_lost", consent, frame))
    times = [c.time for c in session.candidates]
    if "ice" in session.phases:
        times.append(session.phases["ice"])
    start = min(times, default=None)
    connected = session.phases.get("nominated", session.phases.get("ice_connected"))
    timings = {
        "connected": _ms(start, connected),
        "dtls_done": _ms(start, session.phases.get("dtls_done")),
        "first_media": _ms(start, session.phases.get("media")),
    }
    if best is not None and relay is not None:
        summary = f"relayed: {short}"
    elif table.selected is not None:
        local, remote = table.selected["local_type"], table.selected["remote_type"]
        summary = f"direct: {local}↔{remote} pair" if local and remote else "direct pair"
    elif session.pairs:
        summary = "no pair was selected"
    else:
        summary = "no connectivity checks"
    return (
        {
            "summary": _fit(summary),
            "selected": None if table.selected is None else str(table.selected["reason"]),
            "relay": relay,
            "restarts": len(restarts),
            "consent": consent,
            "timings_ms": timings,
        },
        findings,
    )


def _plain(evidence: object) -> str:
    """A NAT verdict's evidence line without its "mapping: "/"filtering: " label, to follow a
    sentence that already says what it is evidence of."""
    text = str(evidence)
    for label in ("mapping: ", "filtering: "):
        if text.startswith(label):
            return text[len(label) :]
    return text


def _fit(summary: str) -> str:
    """At most SUMMARY_WIDTH characters: whole phrases (", "-separated) while they fit, else cut
    at a word (reports show no "…")."""
    if len(summary) <= SUMMARY_WIDTH:
        return summary
    phrases = summary.split(", ")
    while len(phrases) > 1:
        phrases.pop()
        if len(", ".join(phrases)) <= SUMMARY_WIDTH:
            return ", ".join(phrases)
    head = summary[: SUMMARY_WIDTH + 1].rsplit(" ", 1)[0].rstrip(",;:(")
    return head if " " in summary[:SUMMARY_WIDTH] else summary[:SUMMARY_WIDTH]


SHORT = {
    "ice.no_checks": "no connectivity check was seen",
    "ice.no_response": "no check was answered",
    "ice.not_nominated": "no pair was nominated",
    "ice.consent_lost": "consent lost on the selected pair",
    "dtls.incomplete": "the DTLS handshake never finished",
    "dtls.fingerprint_mismatch": "a certificate is not the one SDP promised",
    "media.one_way": "media flowed one way",
    "datachannel.open_unacked": "a data channel was never acknowledged",
}
"""What a failure says in the one-line summary when its message is too long for it."""


def failed_summary(phase: str, findings: Iterable[AnalysisFinding]) -> str:
    """The summary of a session that failed: the phase and its first error, in full when it
    fits, else in a few words."""
    first = next((f for f in findings if f["severity"] == "error" and f.get("phase") == phase), None)
    if first is None:
        return _fit(f"failed in {phase}")
    whole = f"failed in {phase}: {first['message']}"
    if len(whole) <= SUMMARY_WIDTH:
        return whole
    return _fit(f"failed in {phase}: {SHORT.get(first['code'], first['code'])}")


def session_keys(
    s: IceSession, wire: ice.Wire, turn_flows: Mapping[int, str], nat: NatObserver
) -> dict[str, object]:
    """The session row's issue-16 keys: parties, candidates, pair table, selected and nominated
    pair, paths, media, NAT verdicts and diagnosis; with the findings they make (`_findings`)
    and the endpoint -> party map (`_owner`) the rest of the row uses."""
    ev = s.evidence
    party = ice.party_of_ufrags(ev, s.ufrags)
    parties = ice.party_rows(ev, party, offered=bool(ev.offered))
    signaled = ice.candidate_rows(s.candidates, party, wire.mdns)
    pairs = list(s.pairs.values())
    owner = owners(parties, signaled, wire, pairs, party)
    candidates = signaled + ice.wire_candidates(owner, signaled, pairs, wire)
    roles = {str(p["name"]): p["ice_role"] if isinstance(p["ice_role"], str) else None for p in parties}
    settled = None if s.selected_at is None else s.selected_at[0]
    table = ice.pair_table(pairs, owner, candidates, roles, wire, (s.after[0], s.after[1]), settled)
    nominated = (
        None
        if table.selected is None
        else {"local": table.selected["local"], "remote": table.selected["remote"]}
    )
    endpoints = set(owner) | {
        ice.endpoint(str(row["related_address"]), int(str(row["related_port"])))
        for row in candidates
        if row.get("related_address") is not None and isinstance(row.get("related_port"), int)
    }
    nats = nat_rows(nat, endpoints, owner)
    diag, found = diagnose(s, table, candidates, nats, ice.restarts(ev, party))
    return {
        "parties": parties,
        "candidates": candidates,
        "candidate_pairs": table.rows,
        "nominated_pair": nominated,
        "selected_pair": table.selected,
        "paths": path_rows(s, owner, turn_flows, wire.relays),
        "media": media_rows(s, owner),
        "nat": nats,
        "diagnosis": diag,
        "_owner": owner,
        "_findings": found,
    }
