"""A relayed WebRTC call's session row with every key of issue 16, made by hand as the sessions
analysis gives one: peer A behind a port-restricted cone NAT, peer B behind a symmetric NAT, so
every direct pair failed and the call went A → TURN → B. The text report and the viewer's NAT/ICE
panel are tested on it without a capture (the NAT lab's captures test the analysis)."""

from __future__ import annotations

import copy
from typing import Any

T0 = 1_700_000_000.0
"""Epoch seconds of the capture's first packet."""

STUN = "198.51.100.1:3478"
TURN = "198.51.100.2:3478"
A_HOST, A_SRFLX, A_RELAY = "10.0.1.2:50000", "203.0.113.10:50000", "198.51.100.2:49152"
B_HOST, B_SRFLX, B_RELAY = "10.0.2.2:40000", "203.0.113.20:40001", "198.51.100.2:49153"
B_PRFLX = "203.0.113.20:40017"


def _candidate(
    party: str,
    kind: str,
    endpoint: str,
    priority: int,
    source: str,
    frame: int,
    related: str | None = None,
) -> dict[str, Any]:
    address, port = endpoint.rsplit(":", 1)
    raddr, rport = related.rsplit(":", 1) if related else (None, None)
    return {
        "party": party,
        "source": source,
        "frame": frame,
        "foundation": f"{kind[0]}{party}1",
        "component": 1,
        "transport": "udp",
        "priority": priority,
        "type_preference": priority >> 24,
        "local_preference": (priority >> 8) & 0xFFFF,
        "address": address,
        "port": int(port),
        "type": kind,
        "related_address": raddr,
        "related_port": int(rport) if rport else None,
        "tcptype": None,
        "generation": 0,
        "network_cost": 999 if kind == "host" else None,
        "mdns": None,
        "resolved": None,
    }


def _pair(
    local: tuple[str, str, str],
    remote: tuple[str, str, str],
    priority: int,
    state: str,
    checks: tuple[int, int, int, int],
    failure: str | None = None,
    selected: bool = False,
    flow: int = 3,
) -> dict[str, Any]:
    sent, received, responses_sent, responses_received = checks
    return {
        "flow": flow,
        "local": local[2],
        "remote": remote[2],
        "requests": sent,
        "responses": responses_received,
        "errors": 0,
        "nominated": selected,
        "rtt_ms": [0.812, 1.204] if responses_received else [],
        "state": state,
        "local_party": local[0],
        "local_candidate": {"type": local[1], "endpoint": local[2]},
        "remote_candidate": {"type": remote[1], "endpoint": remote[2]},
        "priority": priority,
        "checks": {
            "sent": sent,
            "received": received,
            "responses_sent": responses_sent,
            "responses_received": responses_received,
        },
        "selected": selected,
        "packets_after_selection": 402 if selected else 0,
        "bytes_after_selection": 81_604 if selected else 0,
        "failure": failure,
        "relayed": "relay" in (local[1], remote[1]),
    }


def relayed_session() -> dict[str, Any]:
    """The session row (a fresh copy each call: tests may change it)."""
    return copy.deepcopy(_ROW)


def turn_allocation() -> dict[str, Any]:
    """Peer B's TURN allocation, as the sessions report gives it after the session."""
    return copy.deepcopy(_ALLOCATION)


_ROW: dict[str, Any] = {
    "id": 0,
    "ufrags": ["HeEa", "Ppdl"],
    "phases": {
        "signaling": {"time": T0 + 0.003856, "frame": 23},
        "ice": {"time": T0 + 0.007089, "frame": 36},
        "ice_connected": {"time": T0 + 0.912207, "frame": 88},
        "nominated": {"time": T0 + 0.912207, "frame": 88},
        "dtls": {"time": T0 + 0.92, "frame": 90},
        "dtls_done": {"time": T0 + 0.95, "frame": 97},
        "media": {"time": T0 + 0.97, "frame": 132},
    },
    "failed_phase": None,
    "flows": [0, 1, 2, 3, 4, 5, 6],
    "signaling": [
        {
            "frame": 23,
            "time": T0 + 0.003856,
            "flow": 0,
            "ufrag": ["HeEa"],
            "setup": "actpass",
            "media": [{"kind": "audio", "port": 50000, "ssrcs": [0x7F09553E]}],
            "candidates": 3,
        },
        {
            "frame": 30,
            "time": T0 + 0.006,
            "flow": 0,
            "ufrag": ["Ppdl"],
            "setup": "active",
            "media": [{"kind": "audio", "port": 40000, "ssrcs": [0x89D579E7]}],
            "candidates": 3,
        },
    ],
    "ice_roles": ["controlling", "controlled"],
    "parties": [
        {
            "name": "A",
            "ufrag": "HeEa",
            "role": "offerer",
            "ice_role": "controlling",
            "addresses": [A_HOST, A_SRFLX, A_RELAY],
        },
        {
            "name": "B",
            "ufrag": "Ppdl",
            "role": "answerer",
            "ice_role": "controlled",
            "addresses": [B_HOST, B_SRFLX, B_PRFLX, B_RELAY],
        },
    ],
    "candidates": [
        _candidate("A", "host", A_HOST, 2122260223, "sdp", 23),
        _candidate("A", "srflx", A_SRFLX, 1686052607, "sdp", 23, A_HOST),
        _candidate("A", "relay", A_RELAY, 41885439, "sdp", 23, A_SRFLX),
        _candidate("B", "host", B_HOST, 2122260223, "sdp", 30),
        _candidate("B", "srflx", B_SRFLX, 1686052607, "stun", 12, B_HOST),
        _candidate("B", "relay", B_RELAY, 41885439, "turn", 16, B_SRFLX),
        _candidate("B", "prflx", B_PRFLX, 1853824767, "check", 41, None),
    ],
    "candidate_pairs": [
        _pair(
            ("A", "relay", A_RELAY),
            ("B", "relay", B_RELAY),
            179897665993982590,
            "succeeded",
            (5, 4, 4, 5),
            selected=True,
            flow=5,
        ),
        _pair(
            ("A", "host", A_HOST),
            ("B", "srflx", B_SRFLX),
            7241540810645962751,
            "failed",
            (12, 0, 0, 0),
            failure="no response to 12 checks",
            flow=3,
        ),
        _pair(
            ("A", "srflx", A_SRFLX),
            ("B", "srflx", B_SRFLX),
            7241540810645962750,
            "failed",
            (12, 0, 0, 0),
            failure="ICMP port unreachable from 203.0.113.20",
            flow=4,
        ),
        _pair(
            ("A", "srflx", A_SRFLX),
            ("B", "prflx", B_PRFLX),
            7241540810645962749,
            "in-progress",
            (0, 6, 0, 0),
            flow=6,
        ),
    ],
    "nominated_pair": {"local": A_RELAY, "remote": B_RELAY},
    "selected_pair": {
        "local": A_RELAY,
        "remote": B_RELAY,
        "local_type": "relay",
        "remote_type": "relay",
        "frame": 88,
        "reason": "nominated by A (controlling); the only pair whose checks succeeded",
    },
    "paths": [
        {"leg": "A→TURN", "flow": 2, "via": "channeldata", "packets": 210, "bytes": 42_800},
        {"leg": "relay→relay", "flow": 5, "via": "udp", "packets": 402, "bytes": 81_604},
        {"leg": "TURN→B", "flow": 6, "via": "data-indication", "packets": 192, "bytes": 38_804},
    ],
    "media": [
        {
            "ssrc": 0x7F09553E,
            "from": "A",
            "to": "B",
            "packets": 200,
            "bytes": 32_000,
            "payload_type": 111,
            "legs": 3,
        },
        {
            "ssrc": 0x89D579E7,
            "from": "B",
            "to": "A",
            "packets": 190,
            "bytes": 30_400,
            "payload_type": 111,
            "legs": 3,
        },
    ],
    "nat": [
        {
            "party": "A",
            "inside": A_HOST,
            "public": [A_SRFLX],
            "mappings": [
                {"destination": STUN, "mapped": A_SRFLX, "via": "stun", "frame": 10},
                {"destination": TURN, "mapped": A_SRFLX, "via": "turn", "frame": 14},
            ],
            "mapping": "endpoint-independent",
            "filtering": "address-and-port-dependent",
            "nat_type": "port-restricted cone",
            "port_preservation": True,
            "hairpinning": None,
            "binding_lifetime_s": {"at_least": 30.0, "at_most": None},
            "rfc5780": None,
            "evidence": [
                f"{A_HOST} mapped to {A_SRFLX} toward {STUN} (frame 10) and {TURN} (frame 14)",
                f"checks from {B_SRFLX}, to which A never sent, went unanswered",
            ],
        },
        {
            "party": "B",
            "inside": B_HOST,
            "public": [B_SRFLX, B_PRFLX],
            "mappings": [
                {"destination": STUN, "mapped": B_SRFLX, "via": "stun", "frame": 12},
                {"destination": A_SRFLX, "mapped": B_PRFLX, "via": "check", "frame": 41},
            ],
            "mapping": "address-and-port-dependent",
            "filtering": "unknown",
            "nat_type": "symmetric",
            "port_preservation": False,
            "hairpinning": None,
            "binding_lifetime_s": None,
            "rfc5780": {"mapping test II": "different mapped address"},
            "evidence": [
                f"srflx port 40001 toward the STUN server {STUN}, 40017 toward peer A {A_SRFLX}",
            ],
        },
    ],
    "diagnosis": {
        "summary": "relayed: B behind a symmetric NAT, direct pairs failed",
        "selected": "relay ↔ relay: nominated by A; the only pair whose checks succeeded",
        "relay": (
            "peer B is behind a symmetric NAT: srflx port 40001 toward the STUN server, 40017 "
            "toward peer A; direct pairs failed"
        ),
        "restarts": 0,
        "consent": None,
        "timings_ms": {"connected": 908.351, "dtls_done": 946.144, "first_media": 966.144},
    },
    "dtls": {
        "client": A_RELAY,
        "version": 65277,
        "srtp_profiles": ["SRTP_AEAD_AES_128_GCM"],
        "state": "done",
    },
    "findings": [
        {
            "frame": 41,
            "severity": "warn",
            "code": "nat.symmetric",
            "phase": "ice",
            "message": (
                "peer B is behind a symmetric NAT: srflx port 40001 toward the STUN server, "
                "40017 toward peer A"
            ),
        },
        {
            "frame": 88,
            "severity": "note",
            "code": "ice.relay_only",
            "phase": "ice",
            "message": "the call went through TURN: every direct pair failed",
        },
        {
            "frame": 60,
            "severity": "warn",
            "code": "ice.check_failed",
            "phase": "ice",
            "message": (
                "ICMP port unreachable from 203.0.113.20 for a check on "
                "203.0.113.10:50000 ↔ 203.0.113.20:40001"
            ),
        },
    ],
}

_ALLOCATION: dict[str, Any] = {
    "kind": "turn_allocation",
    "id": 1,
    "client": B_SRFLX,
    "server": TURN,
    "relayed": B_RELAY,
    "mapped": B_SRFLX,
    "failed_phase": None,
    "findings": [],
    "unauthorized_401": 1,
    "errors": ["401 Unauthorized"],
    "lifetime": 600,
    "released": False,
    "permissions": ["198.51.100.2"],
    "channels": {"0x4000": A_RELAY},
    "flow": 6,
}
