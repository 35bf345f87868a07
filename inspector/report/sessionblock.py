"""A WebRTC session as a block of text: what webrtc-internals shows, in 80 columns.

One wide table of sessions (every key a column) cannot be read on a terminal once a session
carries its candidates, pairs and NAT verdicts. So each session is a block: a few summary lines
(the diagnosis first, then the phases, the selected pair with its candidate types, why a relay
was needed), then narrow tables, each about one thing: the candidates of each party (RFC 8839:
type, address, related address, the priority's parts), the candidate pairs (RFC 8445: state,
checks each way, RTT, why a pair failed), the NAT behind each party (RFC 4787's mapping and
filtering behaviours beside the classic type names, with the evidence), the paths the call took
(client to TURN, relay to relay, TURN to client) and the media per SSRC by party. Whatever else
the row holds follows in a last key/value table, so nothing the JSON has is hidden.

The text report (report/text.py) draws the parts; the viewer's NAT/ICE panel draws the same
parts. This module only turns a row into text: capture text is escaped at the leaves (`clean`),
and a value of an unexpected shape is shown plainly or left out, never an exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from .cells import Cells, count, ssrc_hex
from .inert import clean
from .tables import TextTable

Row = Mapping[str, object]

SHOWN: Final = frozenset(
    {
        "id",
        "kind",
        "failed_phase",
        "phases",
        "parties",
        "candidates",
        "candidate_pairs",
        "selected_pair",
        "nominated_pair",
        "paths",
        "media",
        "nat",
        "diagnosis",
        "findings",
    }
)
"""Keys the summary lines and the block's own tables show; every other key of the row goes to
the block's last table ("Session N: other")."""

MAX_TABLE_ROWS: Final = 64
"""Rows of one sub-table at most (candidates, pairs, mappings); the rest is counted in its title
(a hostile capture can make thousands; the JSON report has them all)."""

MAX_LINES: Final = 12
"""Lines of evidence, mappings or findings one cell or summary shows before the rest is counted."""

NAT_TYPES: Final = {
    "full cone": "endpoint-independent mapping and filtering",
    "address-restricted cone": "endpoint-independent mapping, address-dependent filtering",
    "port-restricted cone": "endpoint-independent mapping, address-and-port-dependent filtering",
    "symmetric": "address-and-port-dependent mapping",
    "no NAT": "the inside address is the public one",
}
"""The classic NAT type names (RFC 3489) and the RFC 4787 behaviours each stands for, for the
reader who knows one set of names and not the other."""

STATE_ORDER: Final = {"succeeded": 0, "in-progress": 1, "waiting": 2, "failed": 3}
"""Pairs are listed selected first, then by how far their checks got (webrtc-internals' order
puts the working pair where the eye lands)."""


@dataclass(frozen=True, slots=True)
class Lines:
    """Summary lines: each a paragraph the writer wraps to the terminal (continuation lines
    indented), never cuts."""

    lines: list[str]


Part = Lines | TextTable
"""What a session block is made of, in order."""

KEY_VALUE: Final = ["what", "value"]
"""The headers of a key/value table (a NAT verdict, the row's other keys): drawn without them."""


def _text(value: object) -> str:
    return "" if value is None else clean(value)


def maps(value: object) -> list[Mapping[str, object]]:
    """The mappings of a list value (anything else in it, or a value that is no list, ignored)."""
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _capped(items: list[str], most: int = MAX_LINES) -> list[str]:
    return items if len(items) <= most else [*items[:most], f"(+{len(items) - most} more)"]


def _table(title: str, headers: list[str], cells: list[list[str]], numeric: Iterable[int] = ()) -> TextTable:
    """A sub-table; a column empty in every row is left out (an old row's media has no bytes)."""
    right = set(numeric)
    shown = cells[:MAX_TABLE_ROWS]
    if len(cells) > MAX_TABLE_ROWS:
        title = f"{title}, the first {MAX_TABLE_ROWS} shown"
    kept = [i for i in range(len(headers)) if i == 0 or any(row[i] for row in shown)]
    return TextTable(
        title=title,
        headers=[headers[i] for i in kept],
        cells=[[row[i] for i in kept] for row in shown],
        numeric=[i in right for i in kept],
        keys=[headers[i].split(" ")[0] for i in kept],
    )


# -- the summary lines ------------------------------------------------------------------------------


def session_title(row: Row) -> str:
    """`Session 0: relayed: B behind a symmetric NAT, direct pairs failed`: the diagnosis, else
    where the session failed, else OK."""
    head = f"Session {_text(row.get('id'))}"
    failed = row.get("failed_phase")
    diagnosis = row.get("diagnosis")
    summary = diagnosis.get("summary") if isinstance(diagnosis, Mapping) else None
    state = f"FAILED in {_text(failed)}" if failed else "OK"
    if summary:
        text = _text(summary)
        if failed and text.lower().startswith(f"failed in {_text(failed)}".lower()):
            return f"{head}: FAILED{text[len('failed') :]}"  # the summary says where already
        return f"{head}: {state}, {text}" if failed else f"{head}: {text}"
    return f"{head}: {state}"


def _party_line(row: Row) -> str | None:
    parties = maps(row.get("parties"))
    if not parties:
        return None
    shown = []
    for p in parties:
        about = [_text(p[k]) for k in ("role", "ice_role") if p.get(k)]
        if p.get("ufrag"):
            about.append(f"ufrag {_text(p['ufrag'])}")
        shown.append(f"{_text(p.get('name'))} " + (", ".join(about) if about else "(unknown role)"))
    return "parties: " + " · ".join(shown)


def _phase_line(row: Row, cells: Cells) -> str | None:
    phases = row.get("phases")
    if not isinstance(phases, Mapping) or not phases:
        return None
    parts = []
    for name, at in phases.items():
        if not isinstance(at, Mapping) or not isinstance(at.get("time"), int | float):
            continue
        frame = _int(at.get("frame"))
        parts.append(f"{clean(name)} {cells.time(float(at['time']))}" + (f" #{frame}" if frame else ""))
    return "phases: " + " → ".join(parts) if parts else None


def _candidate_name(party: object, kind: object, endpoint: object) -> str:
    """`A relay 198.51.100.2:49152`: who, which type, where (each part only when known)."""
    return " ".join(_text(p) for p in (party, kind, endpoint) if p)


def _party_of(row: Row, endpoint: object) -> str | None:
    """The party whose addresses or candidates hold `endpoint` (a pair's remote side names no
    party)."""
    for p in maps(row.get("parties")):
        addresses = p.get("addresses")
        if isinstance(addresses, list) and endpoint in addresses:
            name = p.get("name")
            return str(name) if name is not None else None
    for c in maps(row.get("candidates")):
        if c.get("party") is not None and _endpoint(c.get("address"), c.get("port")) == endpoint:
            return str(c["party"])
    return None


def _selected_lines(row: Row) -> list[str]:
    selected = row.get("selected_pair")
    if isinstance(selected, Mapping) and selected.get("local") is not None:
        local = _candidate_name(
            _party_of(row, selected.get("local")), selected.get("local_type"), selected["local"]
        )
        remote = _candidate_name(
            _party_of(row, selected.get("remote")), selected.get("remote_type"), selected.get("remote")
        )
        frame = _int(selected.get("frame"))
        lines = [f"selected pair: {local} ↔ {remote}" + (f" (frame {frame})" if frame else "")]
        diagnosis = row.get("diagnosis")
        why = diagnosis.get("selected") if isinstance(diagnosis, Mapping) else None
        why = why or selected.get("reason")
        if why:
            lines.append(f"  why: {_text(why)}")
        return lines
    nominated = row.get("nominated_pair")
    if isinstance(nominated, Mapping) and nominated.get("local") is not None:
        return [f"nominated pair: {_text(nominated.get('local'))} ↔ {_text(nominated.get('remote'))}"]
    return ["no pair selected"]


def _ms(value: object) -> str | None:
    return f"{value:.3f} ms" if isinstance(value, int | float) and not isinstance(value, bool) else None


def _diagnosis_lines(row: Row) -> list[str]:
    diagnosis = row.get("diagnosis")
    if not isinstance(diagnosis, Mapping):
        return []
    lines = []
    if diagnosis.get("relay"):
        lines.append(f"why relayed: {_text(diagnosis['relay'])}")
    timings = diagnosis.get("timings_ms")
    if isinstance(timings, Mapping):
        names = {"connected": "connected", "dtls_done": "DTLS done", "first_media": "first media"}
        shown = [f"{label} {ms}" for key, label in names.items() if (ms := _ms(timings.get(key)))]
        if shown:
            lines.append("from the first candidate: " + " · ".join(shown))
    if diagnosis.get("consent"):
        lines.append(f"consent: {_text(diagnosis['consent'])}")
    restarts = _int(diagnosis.get("restarts"))
    if restarts:
        lines.append(f"ICE restarts: {restarts}")
    return lines


def finding_line(f: Mapping[str, object]) -> str:
    """One finding as a block lists it: severity, code, frame, message."""
    frame = _int(f.get("frame"))
    where = f" (frame {frame})" if frame else ""
    return f"  {_text(f.get('severity'))} {_text(f.get('code'))}{where}: {_text(f.get('message'))}"


def finding_lines(row: Row) -> Lines | None:
    """The session's findings, one a line with its frame (the Findings tab and report have them
    with every other finding; here they are read with the tables they explain)."""
    lines = [finding_line(f) for f in maps(row.get("findings"))]
    return (
        Lines([f"Findings of session {_text(row.get('id'))} ({len(lines)})", *_capped(lines)])
        if lines
        else None
    )


def summary_lines(row: Row, cells: Cells) -> Lines:
    """The block's head: its title line, then the parties, the phases, the selected pair and why,
    why a relay was needed, the timings (its findings come after its tables: `finding_lines`)."""
    lines = [session_title(row)]
    lines += [line for line in (_party_line(row), _phase_line(row, cells)) if line]
    lines += _selected_lines(row)
    lines += _diagnosis_lines(row)
    return Lines([lines[0], *(f"  {line}" for line in lines[1:])])


# -- candidates -------------------------------------------------------------------------------------


def priority_parts(candidate: Mapping[str, object]) -> str:
    """A candidate priority's parts (RFC 8445 section 5.1.2.1) as `126/65535/1`: type preference,
    local preference, component (256 less the low byte)."""
    priority = _int(candidate.get("priority"))
    if priority is None:
        return ""
    return f"{priority >> 24}/{(priority >> 8) & 0xFFFF}/{256 - (priority & 0xFF)}"


def _endpoint(address: object, port: object) -> str:
    if address is None:
        return ""
    text = _text(address)
    if port is None:
        return text
    return f"[{text}]:{_text(port)}" if ":" in text else f"{text}:{_text(port)}"


def _candidate_type(c: Mapping[str, object]) -> str:
    """`srflx`; a TCP candidate adds its transport and tcptype (`host tcp passive`)."""
    kind = _text(c.get("type")) or "?"
    transport = c.get("transport")
    if isinstance(transport, str) and transport.lower() != "udp":
        kind += f" {_text(transport)}" + (f" {_text(c['tcptype'])}" if c.get("tcptype") else "")
    return kind


def _candidate_address(c: Mapping[str, object]) -> str:
    """The candidate's endpoint; an mDNS name with what an mDNS answer resolved it to."""
    text = _endpoint(c.get("address"), c.get("port"))
    if c.get("resolved"):
        text += f"\n= {_text(c['resolved'])}"
    return text


def _seen(c: Mapping[str, object]) -> str:
    frame = _int(c.get("frame"))
    return f"{_text(c.get('source'))}" + (f" #{frame}" if frame else "")


def candidate_tables(row: Row) -> list[TextTable]:
    """A table of candidates per party, in the order parties are named (A, B, then unknown)."""
    candidates = maps(row.get("candidates"))
    by_party: dict[str, list[Mapping[str, object]]] = {}
    for c in candidates:
        by_party.setdefault(_text(c.get("party")) or "?", []).append(c)
    tables = []
    for party, members in by_party.items():
        who = "an unknown party" if party == "?" else party
        cells = [
            [
                _candidate_type(c),
                _candidate_address(c),
                _endpoint(c.get("related_address"), c.get("related_port")),
                priority_parts(c),
                _seen(c),
            ]
            for c in members
        ]
        tables.append(
            _table(
                f"Candidates of {who} ({len(members)})",
                ["type", "address", "related", "prio t/l/c", "seen"],
                cells,
            )
        )
    return tables


# -- candidate pairs --------------------------------------------------------------------------------


def _side(row: Row, pair: Mapping[str, object], side: str) -> str:
    """One side of a pair: `A relay 198.51.100.2:49152` (party, candidate type, endpoint)."""
    candidate = pair.get(f"{side}_candidate")
    endpoint = candidate.get("endpoint") if isinstance(candidate, Mapping) else None
    endpoint = endpoint or pair.get(side)
    kind = candidate.get("type") if isinstance(candidate, Mapping) else None
    party = pair.get("local_party") if side == "local" else None
    party = party or _party_of(row, endpoint)
    return _candidate_name(party, kind, endpoint)


def _pair_state(pair: Mapping[str, object]) -> str:
    """The state the capture shows, then selected or nominated and the traffic after selection,
    or why the pair failed."""
    lines = [_text(pair.get("state")) or "?"]
    if pair.get("selected"):
        lines.append("selected")
        packets, size = _int(pair.get("packets_after_selection")), _int(pair.get("bytes_after_selection"))
        if packets is not None:
            lines.append(f"then {packets} pkts" + (f", {size} B" if size is not None else ""))
    elif pair.get("nominated"):
        lines.append("nominated")
    if pair.get("failure"):
        lines.append(_text(pair["failure"]))
    return "\n".join(lines)


def _checks(pair: Mapping[str, object]) -> str:
    """Checks each way and their answers, from the local side (RFC 8445 section 7.2)."""
    checks = pair.get("checks")
    lines = []
    if isinstance(checks, Mapping):
        lines.append(f"sent {_text(checks.get('sent'))}, answered {_text(checks.get('responses_received'))}")
        lines.append(f"recv {_text(checks.get('received'))}, answered {_text(checks.get('responses_sent'))}")
    elif pair.get("requests") is not None or pair.get("responses") is not None:
        lines.append(f"sent {_text(pair.get('requests'))}, answered {_text(pair.get('responses'))}")
    rtt = _rtt(pair)
    return "\n".join([*lines, rtt] if rtt else lines)


def _rtt(pair: Mapping[str, object]) -> str | None:
    """`RTT 0.812 ms`, or its range over the pair's answered checks."""
    rtt = pair.get("rtt_ms")
    values = [v for v in rtt if isinstance(v, int | float)] if isinstance(rtt, list) else []
    if isinstance(rtt, int | float):
        values = [rtt]
    if not values:
        return None
    low, high = min(values), max(values)
    return f"RTT {low:.3f} ms" if low == high else f"RTT {low:.3f}–{high:.3f} ms"


def _pair_order(indexed: tuple[int, Mapping[str, object]]) -> tuple[int, int, int]:
    n, pair = indexed
    return (0 if pair.get("selected") else 1, STATE_ORDER.get(str(pair.get("state")), 4), n)


def pair_table(row: Row) -> TextTable | None:
    """The candidate pairs, the selected one first: both sides with their candidate types and
    the pair priority (RFC 8445 section 6.1.2.3); the state the capture shows, the traffic after
    selection or why the pair failed; checks each way with their answers, and the RTT."""
    pairs = maps(row.get("candidate_pairs"))
    if not pairs:
        return None
    cells = []
    for _, pair in sorted(enumerate(pairs), key=_pair_order):
        priority = _int(pair.get("priority"))
        sides = [_side(row, pair, "local"), _side(row, pair, "remote")]
        if pair.get("relayed"):
            sides.append("through TURN")
        if priority is not None:
            sides.append(f"prio {priority}")
        cells.append(["\n".join(sides), _pair_state(pair), _checks(pair)])
    return _table(f"Candidate pairs ({len(pairs)})", ["local / remote", "state", "checks"], cells)


# -- NAT verdicts -----------------------------------------------------------------------------------


def nat_type_line(nat: Mapping[str, object]) -> str:
    """`symmetric (address-and-port-dependent mapping, unknown filtering)`: the classic name beside
    RFC 4787's behaviours as the capture showed them."""
    name = _text(nat.get("nat_type")) or "unknown"
    mapping, filtering = nat.get("mapping"), nat.get("filtering")
    rfc = []
    if mapping and mapping != "unknown":
        rfc.append(f"{_text(mapping)} mapping")
    if filtering and filtering != "unknown":
        rfc.append(f"{_text(filtering)} filtering")
    elif rfc:
        rfc.append("filtering not seen")
    if name == "no NAT" or mapping == "no-nat":
        rfc = [NAT_TYPES["no NAT"]]
    elif not rfc and name in NAT_TYPES:
        rfc.append(NAT_TYPES[name])
    return f"{name} ({', '.join(rfc)})" if rfc else name


def _yes_no(value: object) -> str:
    return "yes" if value is True else "no" if value is False else "not seen"


def _lifetime(value: object) -> str:
    if not isinstance(value, Mapping):
        return "not seen"
    low, high = value.get("at_least"), value.get("at_most")
    low = low if isinstance(low, int | float) else None
    high = high if isinstance(high, int | float) else None
    if low is not None and high is not None:
        return f"{low:g} s to {high:g} s"
    if low is not None:
        return f"at least {low:g} s"
    return f"at most {high:g} s" if high is not None else "not seen"


def _mapping_line(m: Mapping[str, object]) -> str:
    """`→ 203.0.113.1:3478 as 198.51.100.1:17219 (stun, #2)`: toward which destination the inside
    socket was mapped to which public one, and how the capture showed it; a mapping a candidate
    announced (no destination) reads `as 198.51.100.1:17219 (candidate, #36)`."""
    frame = _int(m.get("frame"))
    how = ", ".join(p for p in (_text(m.get("via")), f"#{frame}" if frame else "") if p)
    toward = f"→ {_text(m['destination'])} " if m.get("destination") else ""
    return f"{toward}as {_text(m.get('mapped'))}" + (f" ({how})" if how else "")


def nat_tables(row: Row) -> list[TextTable]:
    """The NAT behind each party: its type in both vocabularies, where it maps the inside socket
    toward each destination, and the evidence the verdict rests on."""
    tables = []
    for nat in maps(row.get("nat")):
        if nat.get("inside") is None and nat.get("nat_type") == "unknown":
            continue  # a socket seen only from outside with nothing to judge (a TURN client's): noise
        inside = _text(nat.get("inside"))
        party = _text(nat.get("party"))
        whose = f"behind {party}" if party else f"of {inside}" if inside else "behind an unknown party"
        public = nat.get("public")
        rfc5780 = nat.get("rfc5780")
        evidence = nat.get("evidence")
        behaviour = (
            f"port preservation {_yes_no(nat.get('port_preservation'))}; "
            f"hairpinning {_yes_no(nat.get('hairpinning'))}; "
            f"binding lifetime {_lifetime(nat.get('binding_lifetime_s'))}"
        )
        items = [
            ["type", nat_type_line(nat)],
            ["inside", _text(nat.get("inside")) or "not seen"],
            [
                "public",
                ", ".join(_text(p) for p in public) if isinstance(public, list) and public else "none seen",
            ],
            ["mappings", "\n".join(_capped([_mapping_line(m) for m in maps(nat.get("mappings"))]))],
            ["also", behaviour],
        ]
        if isinstance(rfc5780, Mapping) and rfc5780:
            items.append(
                ["RFC 5780", "\n".join(_capped([f"{clean(k)}: {_text(v)}" for k, v in rfc5780.items()]))]
            )
        if isinstance(evidence, list) and evidence:
            items.append(["evidence", "\n".join(_capped([_text(e) for e in evidence]))])
        tables.append(_table(f"NAT {whose}: {_text(nat.get('nat_type')) or 'unknown'}", KEY_VALUE, items))
    return tables


# -- paths and media --------------------------------------------------------------------------------


def path_table(row: Row) -> TextTable | None:
    """The legs the call's packets took: a relayed call's client to TURN, relay to relay (or to
    the peer), TURN to client; a direct call's one leg."""
    paths = maps(row.get("paths"))
    if not paths:
        return None
    cells = [
        [
            _text(p.get("leg")),
            _text(p.get("via")),
            _text(p.get("flow")),
            _text(p.get("packets")),
            _text(p.get("bytes")),
        ]
        for p in paths
    ]
    return _table(
        f"Paths ({len(paths)})", ["leg", "via", "flow", "packets", "bytes"], cells, numeric=(2, 3, 4)
    )


def media_table(row: Row) -> TextTable | None:
    """Media per SSRC, counted once per session, from one party to the other (an old row's
    direction is client to server)."""
    media = maps(row.get("media"))
    if not media:
        return None
    out = []
    for m in media:
        if "from" in m or "to" in m:
            direction = f"{_text(m.get('from')) or '?'} → {_text(m.get('to')) or '?'}"
        else:
            from_client = m.get("from_client")
            direction = "" if not isinstance(from_client, bool) else "c → s" if from_client else "s → c"
        out.append(
            [
                ssrc_hex(m.get("ssrc")) or _text(m.get("ssrc")),
                direction,
                _text(m.get("payload_type")),
                _text(m.get("packets")),
                _text(m.get("bytes")),
                _text(m.get("legs")),
            ]
        )
    return _table(
        f"Media ({count(len(media), 'stream')})",
        ["ssrc", "from → to", "PT", "packets", "bytes", "legs"],
        out,
        (2, 3, 4, 5),
    )


def other_table(row: Row, cells: Cells) -> TextTable | None:
    """Every key the block's other parts do not show (DTLS, signaling, ufrags, flows, a plugin's
    additions), as key and value."""
    items = [[clean(k), cells.show(str(k), v)] for k, v in row.items() if k not in SHOWN]
    if not items:
        return None
    return _table(f"Session {_text(row.get('id'))}: more", KEY_VALUE, items)


def session_block(row: Row, cells: Cells) -> list[Part]:
    """Every part of a session's block, in reading order."""
    parts: list[Part | None] = [
        summary_lines(row, cells),
        *candidate_tables(row),
        pair_table(row),
        *nat_tables(row),
        path_table(row),
        media_table(row),
        finding_lines(row),
        other_table(row, cells),
    ]
    return [p for p in parts if p is not None]


def is_session(row: Row) -> bool:
    """A WebRTC session's row (a TURN allocation's, or a plugin's kind, is a table row instead)."""
    return row.get("kind") is None
