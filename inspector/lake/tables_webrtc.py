"""The tables of `--report sessions`: a WebRTC session's row and its phases, ICE candidates and
pairs, paths, media and NAT verdicts; TURN allocations and NAT rows (the report's rows with a
`kind`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from protoscope.decoders.webrtc import sessions

from .convert import _json
from .shape import (
    FINDINGS_DOC,
    Item,
    Row,
    Shape,
    _at,
    from_caller,
    from_item,
    from_key,
)

PHASES = sessions.PHASES
"""A WebRTC session's phases in the order they are reached (decoders/webrtc/sessions.py):
`session_phases` has a row for each, reached or not, then for any other the row names."""


SESSIONS_SOURCE = "--report sessions"


def _selected(key: str) -> Callable[[Item], Any]:
    return _at("selected_pair", key)


def _relayed(item: Item) -> bool | None:
    """Whether the selected pair goes through a TURN relay: either candidate's type is relay, or
    the pair table says the pair is relayed (a relayed address without a signaled candidate).
    Null without a selected pair."""
    selected = item.get("selected_pair")
    if not isinstance(selected, dict):
        return None
    if selected.get("local_type") == "relay" or selected.get("remote_type") == "relay":
        return True
    pairs = item.get("candidate_pairs")
    for pair in pairs if type(pairs) is list else ():
        if isinstance(pair, dict) and pair.get("selected") is True:
            return pair.get("relayed") is True
    return False


SESSIONS = Shape(
    "sessions",
    SESSIONS_SOURCE,
    "One row per WebRTC (ICE) session: its phases, selected pair, DTLS and diagnosis. Its parts are "
    "in session_phases, ice_candidates, ice_pairs, session_paths, session_media and nat.",
    [
        from_key("session", "int64", "the row's `id` in --report sessions", key="id"),
        from_key("failed_phase", "string", "the earliest phase with an error finding; null when none failed"),
        from_key("ufrags", "list<string>", "ICE username fragments (ice-ufrag) of both parties"),
        from_key("flows", "list<int64>", "the flows the session used (flows.flow)"),
        from_key("ice_roles", "list<string>", "controlling / controlled roles seen"),
        from_key("data_records", "int64", "DTLS application data records"),
        from_key("data_channels", "int64", "data channels opened"),
        from_item("dtls_state", "string", "none, started or done", _at("dtls", "state")),
        from_item(
            "dtls_version",
            "uint16",
            "the ServerHello's version (dtls.handshake.version: 65277 is DTLS 1.2)",
            _at("dtls", "version"),
        ),
        from_item(
            "dtls_client",
            "string",
            '"ip:port" of the DTLS client (the ClientHello\'s sender)',
            _at("dtls", "client"),
        ),
        from_item("selected_local", "string", 'the selected pair\'s local "ip:port"', _selected("local")),
        from_item("selected_remote", "string", 'the selected pair\'s remote "ip:port"', _selected("remote")),
        from_item("selected_local_type", "string", "host, srflx, prflx or relay", _selected("local_type")),
        from_item("selected_remote_type", "string", "host, srflx, prflx or relay", _selected("remote_type")),
        from_item("selected_frame", "int64", "the frame where the pair was selected", _selected("frame")),
        from_item("selected_reason", "string", "why that pair", _selected("reason")),
        from_item(
            "relayed",
            "bool",
            "the selected pair goes through a TURN relay (either candidate is relay); "
            "null without a selected pair",
            _relayed,
        ),
        from_item(
            "nominated_local",
            "string",
            'the nominated pair\'s local "ip:port"',
            _at("nominated_pair", "local"),
        ),
        from_item(
            "nominated_remote", "string", "the nominated pair's remote", _at("nominated_pair", "remote")
        ),
        from_item(
            "diagnosis",
            "string",
            "the diagnosis in one line (diagnosis.summary)",
            _at("diagnosis", "summary"),
        ),
        from_item(
            "relay_reason", "string", "why a relay was used (diagnosis.relay)", _at("diagnosis", "relay")
        ),
        from_item(
            "consent",
            "string",
            "consent freshness lapse (RFC 7675; diagnosis.consent)",
            _at("diagnosis", "consent"),
        ),
        from_item("restarts", "int64", "ICE restarts (diagnosis.restarts)", _at("diagnosis", "restarts")),
        from_item(
            "connected_ms",
            "float64",
            "from the first candidate or check to the pair's nomination (ICE connected), ms "
            "(diagnosis.timings_ms.connected)",
            _at("diagnosis", "timings_ms", "connected"),
        ),
        from_item(
            "dtls_done_ms",
            "float64",
            "from the same start to the end of the DTLS handshake, ms",
            _at("diagnosis", "timings_ms", "dtls_done"),
        ),
        from_item(
            "first_media_ms",
            "float64",
            "from the same start to the first media packet, ms",
            _at("diagnosis", "timings_ms", "first_media"),
        ),
        from_key("findings", "int32", FINDINGS_DOC, count=True),
        from_key("diagnosis_details", "json", "the whole diagnosis object", key="diagnosis"),
        from_key(
            "dtls", "json", "the DTLS facts: client, version, srtp_profiles, fingerprints by party, alert ..."
        ),
        from_key("parties", "json", "the parties A and B: ufrags, offerer/answerer, ICE role, addresses"),
        from_key("signaling", "json", "the session descriptions seen (SDP offers and answers)"),
    ],
)

SESSION_PHASES = Shape(
    "session_phases",
    SESSIONS_SOURCE,
    "One row per phase of each WebRTC session, reached or not, in the order phases are reached: "
    + ", ".join(PHASES)
    + ".",
    [
        from_caller("session", "int64", "the session (sessions.session)"),
        from_caller(
            "phase",
            "string",
            "signaling, ice, ice_connected, nominated, dtls, dtls_done, media, datachannel, datachannel_open",
        ),
        from_key("time", "timestamp", "when it was reached; null when it was not"),
        from_key("frame", "int64", "the frame where it was reached"),
        from_caller("reached", "bool", "the session reached it (the report's `phases` names it)"),
        from_caller("failed", "bool", "it is the session's failed_phase"),
    ],
)

ICE_CANDIDATES = Shape(
    "ice_candidates",
    SESSIONS_SOURCE,
    "One row per ICE candidate of each session, signaled (SDP, trickle) or learnt on the wire.",
    [
        from_caller("session", "int64", "the session (sessions.session)"),
        from_caller("index", "int64", "0-based position in the session's `candidates`"),
        from_key("party", "string", "A (offerer) or B"),
        from_key("source", "string", "sdp, sdp-file, trickle, stun, turn or check"),
        from_key("frame", "int64", "where it was seen"),
        from_key("foundation", "string", "the candidate's foundation (null for one learnt on the wire)"),
        from_key("component", "int64", "1 RTP, 2 RTCP"),
        from_key("transport", "string", "udp or tcp"),
        from_key("priority", "int64", "RFC 8445 candidate priority"),
        from_key("type_preference", "int64", "the priority's type preference (0-126)"),
        from_key("local_preference", "int64", "the priority's local preference (0-65535)"),
        from_key("address", "string", "IP address, or an mDNS name"),
        from_key("port", "uint16", "the candidate's port"),
        from_key("type", "string", "host, srflx, prflx or relay"),
        from_key("related_address", "string", "raddr"),
        from_key("related_port", "uint16", "rport"),
        from_key("tcptype", "string", "active, passive or so (RFC 6544)"),
        from_key("generation", "int64", "the `generation` extension"),
        from_key("network_cost", "int64", "the `network-cost` extension"),
        from_key("mdns", "string", "the .local name standing for a host address"),
        from_key("resolved", "string", "the address an mDNS response gave that name"),
    ],
)

ICE_PAIRS = Shape(
    "ice_pairs",
    SESSIONS_SOURCE,
    "One row per candidate pair (per flow and direction) of each session: its checks and state.",
    [
        from_caller("session", "int64", "the session (sessions.session)"),
        from_caller("index", "int64", "0-based position in the session's `candidate_pairs`"),
        from_key("flow", "int64", "the flow its checks used"),
        from_key("local", "string", '"ip:port" of the checks\' sender'),
        from_key("remote", "string", '"ip:port" they went to'),
        from_key("local_party", "string", "A or B"),
        from_item("local_type", "string", "the local candidate's type", _at("local_candidate", "type")),
        from_item("remote_type", "string", "the remote candidate's type", _at("remote_candidate", "type")),
        from_key("state", "string", "succeeded, failed, in-progress or waiting"),
        from_key("nominated", "bool", "nominated (USE-CANDIDATE, answered)"),
        from_key("use_candidate", "bool", "a check carried USE-CANDIDATE"),
        from_key("selected", "bool", "the session's selected pair"),
        from_key("relayed", "bool", "goes through a TURN relay"),
        from_key("requests", "int64", "Binding requests sent"),
        from_key("responses", "int64", "success responses received"),
        from_key("errors", "int64", "error responses received"),
        from_key("rtt_ms", "list<float64>", "round-trip times of the first answered checks, ms"),
        from_key("priority", "uint64", "RFC 8445 pair priority (< 2^64); null without both candidates"),
        from_item("checks_sent", "int64", "checks.sent", _at("checks", "sent")),
        from_item("checks_received", "int64", "checks.received: the other way", _at("checks", "received")),
        from_item("responses_sent", "int64", "checks.responses_sent", _at("checks", "responses_sent")),
        from_item(
            "responses_received", "int64", "checks.responses_received", _at("checks", "responses_received")
        ),
        from_key("packets_after_selection", "int64", "packets on the pair once it was selected"),
        from_key("bytes_after_selection", "int64", "bytes on the pair once it was selected"),
        from_key("failure", "string", "why a failed pair failed"),
    ],
)

SESSION_PATHS = Shape(
    "session_paths",
    SESSIONS_SOURCE,
    "One row per leg (flow, direction, framing) the media of each session took: direct, or each "
    "hop through a TURN relay.",
    [
        from_caller("session", "int64", "the session (sessions.session)"),
        from_caller("index", "int64", "0-based position in the session's `paths`"),
        from_key("leg", "string", "direct, A→TURN, relay→relay, TURN→B ..."),
        from_key("flow", "int64", "the flow of the leg"),
        from_key("via", "string", "udp, tcp, channeldata or send/data indications"),
        from_key("packets", "int64", "packets on the leg"),
        from_key("bytes", "int64", "bytes on the leg (UDP payloads)"),
    ],
)

SESSION_MEDIA = Shape(
    "session_media",
    SESSIONS_SOURCE,
    "One row per RTP stream (SSRC and direction) of each session.",
    [
        from_caller("session", "int64", "the session (sessions.session)"),
        from_caller("index", "int64", "0-based position in the session's `media`"),
        from_key("ssrc", "uint32", "rtp.ssrc"),
        from_key("from_party", "string", "the sending party (the report's `from`)", key="from"),
        from_key("to_party", "string", "the receiving party (the report's `to`)", key="to"),
        from_key("from_client", "bool", "sent from the flow's client side"),
        from_key("packets", "int64", "RTP packets (on the first leg its SSRC was seen on)"),
        from_key("bytes", "int64", "bytes of those packets"),
        from_key("payload_type", "int32", "rtp.p_type"),
        from_key("legs", "int64", "legs it was seen on (3 through a relay)"),
    ],
)

NAT = Shape(
    "nat",
    SESSIONS_SOURCE,
    "One row per NAT verdict (RFC 4787 behaviour of a socket's NAT): those of each session, and "
    "those of sockets no session shows (rows of kind nat).",
    [
        from_caller("session", "int64", "the session it belongs to; null for a row of kind nat"),
        from_caller("row", "int64", "the `id` of the --report sessions row it comes from"),
        from_caller("index", "int64", "0-based position in the session's `nat` (0 for a row of kind nat)"),
        from_key("party", "string", "A or B"),
        from_key("ufrag", "string", "the ICE ufrag of the socket's party"),
        from_key("inside", "string", 'the socket inside the NAT, "ip:port"'),
        from_key("public", "list<string>", "its public (mapped) addresses"),
        from_key(
            "mapping",
            "string",
            "endpoint-independent, address-dependent, address-and-port-dependent, no-nat ...",
        ),
        from_key("filtering", "string", "as mapping"),
        from_key("nat_type", "string", "full cone, address-restricted cone, symmetric, no NAT, unknown ..."),
        from_key("port_preservation", "bool", "the NAT kept the inside port"),
        from_key("hairpinning", "bool", "a packet to the public address came back in (RFC 4787 section 6)"),
        from_item(
            "binding_lifetime_at_least",
            "seconds",
            "the binding lived at least this long, seconds",
            _at("binding_lifetime_s", "at_least"),
        ),
        from_item(
            "binding_lifetime_at_most",
            "seconds",
            "the binding was gone after this long, seconds",
            _at("binding_lifetime_s", "at_most"),
        ),
        from_key("binding_lifetime_s", "json", "{at_least, at_most}, seconds"),
        from_key("mappings", "json", "each mapping seen: destination, mapped, via, frame"),
        from_key("rfc5780", "json", "the RFC 5780 tests the capture shows"),
        from_key("evidence", "json", "why: one sentence per fact (a list)"),
        from_key("findings", "int32", FINDINGS_DOC + "; null in a session's own", count=True),
    ],
)

TURN_ALLOCATIONS = Shape(
    "turn_allocations",
    SESSIONS_SOURCE,
    "One row per TURN allocation (rows of kind turn_allocation in --report sessions).",
    [
        from_key("allocation", "int64", "the row's `id` in --report sessions", key="id"),
        from_key("flow", "int64", "the client-server flow"),
        from_key("client", "string", '"ip:port"'),
        from_key("server", "string", '"ip:port"'),
        from_key("relayed", "string", "the relayed address, XOR-RELAYED-ADDRESS"),
        from_key("mapped", "string", "the client's address as the server saw it, XOR-MAPPED-ADDRESS"),
        from_key("lifetime", "int64", "the last LIFETIME granted, seconds (0: released)"),
        from_key("released", "bool", "a Refresh with lifetime 0 ended it"),
        from_key("unauthorized_401", "int64", "401 answers before success"),
        from_key("permissions", "list<string>", "peer addresses permitted"),
        from_key("channels", "json", "channel number -> peer"),
        from_key("errors", "list<string>", 'error answers: "code reason"'),
        from_key("failed_phase", "string", "turn when an error finding says the allocation failed"),
        from_key("findings", "int32", FINDINGS_DOC, count=True),
    ],
)

SESSIONS_OTHER = Shape(
    "sessions_other",
    SESSIONS_SOURCE,
    "Rows of --report sessions of a kind no other table takes (none so far), whole as JSON.",
    [
        from_key("row", "int64", "the row's `id`", key="id"),
        from_key("kind", "string", "the row's kind"),
        from_caller("json", "json", "the whole row"),
    ],
)


def split_sessions(position: int, row: Any) -> dict[str, list[Row]]:
    if not isinstance(row, dict):
        row = {}
    kind = row.get("kind")
    if kind == "turn_allocation":
        return {"turn_allocations": [TURN_ALLOCATIONS.row(row, {})]}
    if kind == "nat":
        given = NAT.convert({"session": None, "row": row.get("id"), "index": 0})
        return {"nat": [NAT.row(row, given)]}
    if kind is not None:
        return {"sessions_other": [SESSIONS_OTHER.row(row, {"json": _json(row)})]}
    session = SESSIONS.row(row, {})
    sid = session["session"]
    return {
        "sessions": [session],
        "session_phases": _phases(sid, row),
        "ice_candidates": ICE_CANDIDATES.rows(row.get("candidates"), {"session": sid}),
        "ice_pairs": ICE_PAIRS.rows(row.get("candidate_pairs"), {"session": sid}),
        "session_paths": SESSION_PATHS.rows(row.get("paths"), {"session": sid}),
        "session_media": SESSION_MEDIA.rows(row.get("media"), {"session": sid}),
        "nat": NAT.rows(row.get("nat"), {"session": sid, "row": sid}),
    }


def _phases(session: int | None, row: Mapping[str, Any]) -> list[Row]:
    """A session's phases: every one of PHASES, reached or not, then any other its row names
    (its `phases`, its failed_phase)."""
    phases = row.get("phases")
    if not isinstance(phases, dict):
        phases = {}
    failed = row.get("failed_phase")
    names: dict[Any, None] = dict.fromkeys(PHASES)
    names.update(dict.fromkeys(k for k in phases if type(k) is str))
    if type(failed) is str:
        names[failed] = None
    return [
        SESSION_PHASES.row(
            phases.get(name),
            SESSION_PHASES.convert(
                {"session": session, "phase": name, "reached": name in phases, "failed": name == failed}
            ),
        )
        for name in names
    ]
