"""The WebRTC session report (`--report sessions`).

An ICE session is recognised by its ufrags: STUN Binding USERNAMEs are "receiver:sender", SDP
carries each side's ufrag. Flows that carried its connectivity checks belong to it, and the DTLS,
RTP and RTCP on them (or relayed through TURN on them) fill its later phases. TURN allocations are
tracked on their own (Allocate with the 401 nonce dance, Refresh, permissions, channels) and their
expiry reported.

Every finding names its phase, a frame and a severity (the `Analysis` contract). A row's
`failed_phase` is the earliest phase with an error finding, and only the findings of that phase are
errors: a failure that follows from it (media one way after a refused certificate) is a warning, so
the error count counts failures. Findings made when the rows are built, without a packet at hand,
name the packet where the failure shows: the last unanswered check, the refused certificate, the
stalled handshake's last record, the first media packet of a one-way call, the response that
granted an allocation's lifetime, and for a phase never reached, the session's last frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from protoscope.decoders.api import AnalysisFinding, FlowContext, Pdu, Severity
from protoscope.decoders.dtls.records import DtlsRecord
from protoscope.decoders.rtp.packets import RtcpRecord, RtpRecord
from protoscope.decoders.sdp.parse import SdpRecord
from protoscope.decoders.stun.messages import StunRecord

BINDING, ALLOCATE, REFRESH, CREATE_PERMISSION, CHANNEL_BIND, SEND, DATA = (
    0x001,
    0x003,
    0x004,
    0x008,
    0x009,
    0x006,
    0x007,
)
REQUEST, INDICATION, SUCCESS, ERROR = 0, 1, 2, 3
PERMISSION_LIFETIME = 300.0
"""RFC 8656 section 9: a permission lasts 300 s unless refreshed."""
CHANNEL_LIFETIME = 600.0
MAX_401 = 3
"""More 401 answers than this to one client's Allocate requests, without a success, is a loop."""


@dataclass(slots=True)
class Pair:
    flow: int
    local: str
    remote: str
    requests: int = 0
    responses: int = 0
    errors: int = 0
    nominated: bool = False
    rtt_ms: list[float] = field(default_factory=list)
    pending: dict[bytes, float] = field(default_factory=dict)
    last_request: int = 0
    """Frame of the last check sent on this pair."""


@dataclass(slots=True)
class IceSession:
    ufrags: set[str]
    phases: dict[str, float] = field(default_factory=dict)
    frames: dict[str, int] = field(default_factory=dict)
    pairs: dict[int, Pair] = field(default_factory=dict)
    sdp: list[dict[str, object]] = field(default_factory=list)
    roles: set[str] = field(default_factory=set)
    dtls: dict[str, object] = field(default_factory=dict)
    media: dict[tuple[int, bool], dict[str, object]] = field(default_factory=dict)
    data_records: int = 0
    findings: list[AnalysisFinding] = field(default_factory=list)
    last_frame: int = 0
    """The session's last packet: where a phase it never reached shows as missing."""
    dtls_frame: int = 0
    """The last DTLS record: where a handshake that never finished stalled."""
    certificate_frames: dict[str, int] = field(default_factory=dict)
    """Endpoint -> the frame of the certificate it sent."""

    def mark(self, phase: str, ctx: FlowContext) -> None:
        if phase not in self.phases:
            self.phases[phase] = ctx.time
            self.frames[phase] = ctx.frame

    def seen(self, ctx: FlowContext) -> None:
        self.last_frame = max(self.last_frame, ctx.frame)


@dataclass(slots=True)
class Allocation:
    flow: int
    client: str
    server: str
    first: float
    unauthorized: int = 0
    relayed: str | None = None
    lifetime: int | None = None
    expires: float | None = None
    permissions: dict[str, float] = field(default_factory=dict)
    """peer ip -> expiry time."""
    channels: dict[int, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    findings: list[AnalysisFinding] = field(default_factory=list)
    expires_frame: int | None = None
    """The response that granted the lifetime `expires` counts from."""
    pending: dict[bytes, tuple[int, object, object]] = field(default_factory=dict)
    """Requests waiting for an answer: method, peers, the USERNAME they carried (or None)."""
    released: bool = False


PHASE_ORDER = ("signaling", "turn", "ice", "dtls", "media")
"""Where a call can break, in the order it gets there: the failed phase is the earliest with an
error finding (a refused certificate also leaves media one way; the certificate is the cause)."""

SEVERITY: dict[str, Severity] = {
    # A phase that did not complete: the call (or the allocation) broke here.
    "ice.no_checks": "error",
    "ice.no_response": "error",
    "ice.not_nominated": "error",
    "dtls.incomplete": "error",
    "dtls.fingerprint_mismatch": "error",
    "media.one_way": "error",
    "turn.credentials_refused": "error",
    "turn.401_loop": "error",
    # Trouble that does not by itself stop a call: relayed data the server drops, a lapsed allocation.
    "turn.permission_expired": "warn",
    "turn.allocation_expired": "warn",
    # Normal protocol life, worth knowing: agents resolve a 487 by switching roles (RFC 8445
    # 7.3.1.1), a client answers 438 with the new nonce (RFC 8656 9.2), a capture starts late.
    "ice.role_conflict": "note",
    "turn.stale_nonce": "note",
    "turn.midway": "note",
}
"""Each finding's severity, as Wireshark's expert info grades them; `dtls.alert` goes by the alert's
level (ALERT_SEVERITY)."""

ALERT_SEVERITY: dict[str, Severity] = {"fatal": "error", "warning": "warn"}
CLOSE_NOTIFY = "close_notify"
"""A warning-level close_notify is how a DTLS connection ends normally: a note."""


def _finding(
    phase: str, code: str, message: str, frame: int | None, severity: Severity | None = None
) -> AnalysisFinding:
    return {
        "frame": frame or None,
        "severity": severity or SEVERITY[code],
        "code": code,
        "message": message,
        "phase": phase,
    }


def _failed(findings: list[AnalysisFinding]) -> str | None:
    """The row's failed phase; errors of later phases become warnings (they follow from it)."""
    phases = {f.get("phase") for f in findings if f["severity"] == "error"}
    failed = next((p for p in PHASE_ORDER if p in phases), None)
    if failed is None:
        return None
    for f in findings:
        if f["severity"] == "error" and f.get("phase") != failed:
            f["severity"] = "warn"
    return failed


def _alert_severity(alert: object) -> Severity:
    level, description = alert if isinstance(alert, tuple) and len(alert) == 2 else ("", "")
    if description == CLOSE_NOTIFY:
        return "note"
    return ALERT_SEVERITY.get(str(level), "warn")


class SessionAnalysis:
    name: ClassVar[str] = "sessions"

    def __init__(self) -> None:
        self.sessions: list[IceSession] = []
        self.by_ufrag: dict[str, IceSession] = {}
        self.by_flow: dict[int, IceSession] = {}
        self.allocations: dict[tuple[int, str], Allocation] = {}
        self.last_time = 0.0
        self.last_sdp: dict[int, tuple[bool, IceSession]] = {}
        """Signaling flow -> (direction, session) of the last SDP it carried."""

    # -- routing ------------------------------------------------------------------------------

    def _session_for(self, ufrags: set[str]) -> IceSession:
        found: list[IceSession] = []
        for u in sorted(ufrags):
            known = self.by_ufrag.get(u)
            if known is not None and known not in found:
                found.append(known)
        if not found:
            session = IceSession(set())
            self.sessions.append(session)
        else:  # the oldest survives, whatever the order of the ufrags
            found.sort(key=self.sessions.index)
            session = found[0]
        for other in found[1:]:  # two halves met (offer seen, then checks): merge
            self._merge(session, other)
        session.ufrags |= ufrags
        for u in session.ufrags:
            self.by_ufrag[u] = session
        return session

    def _merge(self, session: IceSession, other: IceSession) -> None:
        session.ufrags |= other.ufrags
        session.sdp = sorted(session.sdp + other.sdp, key=lambda sdp: int(str(sdp.get("frame", 0))))
        for phase, t in other.phases.items():
            if phase not in session.phases or t < session.phases[phase]:
                session.phases[phase] = t
                session.frames[phase] = other.frames[phase]
        for fid, pair in other.pairs.items():
            session.pairs.setdefault(fid, pair)
        session.roles |= other.roles
        for k, v in other.dtls.items():
            session.dtls.setdefault(k, v)
        for k2, m in other.media.items():
            session.media.setdefault(k2, m)
        session.data_records += other.data_records
        session.findings += other.findings
        session.last_frame = max(session.last_frame, other.last_frame)
        session.dtls_frame = max(session.dtls_frame, other.dtls_frame)
        for endpoint, frame in other.certificate_frames.items():
            session.certificate_frames.setdefault(endpoint, frame)
        for fid, owner in list(self.by_flow.items()):
            if owner is other:
                self.by_flow[fid] = session
        self.sessions.remove(other)

    def feed(self, pdu: Pdu, ctx: FlowContext) -> None:
        self.last_time = max(self.last_time, ctx.time)
        rec = pdu.record
        if isinstance(rec, SdpRecord):
            self._sdp(rec, ctx)
        elif isinstance(rec, StunRecord):
            self._stun(rec, ctx)
        elif isinstance(rec, DtlsRecord):
            self._dtls(rec, ctx)
        elif isinstance(rec, RtpRecord | RtcpRecord):
            session = self.by_flow.get(ctx.flow)
            if session is not None:
                session.seen(ctx)
                session.mark("media", ctx)
                if isinstance(rec, RtpRecord):
                    m = session.media.setdefault(
                        (rec.ssrc, ctx.from_client), {"packets": 0, "payload_type": rec.payload_type}
                    )
                    m["packets"] = int(m["packets"]) + 1  # type: ignore[call-overload]

    def _flows(self, session: IceSession) -> list[int]:
        """The flows a session used: its signaling, its checks, and what they carried."""
        flows = {int(str(sdp["flow"])) for sdp in session.sdp} | set(session.pairs)
        flows |= {fid for fid, owner in self.by_flow.items() if owner is session}
        return sorted(flows)

    def _sdp(self, rec: SdpRecord, ctx: FlowContext) -> None:
        ufrags = {u for u in [rec.ice_ufrag, *(m.ice_ufrag for m in rec.media)] if u}
        if not ufrags:
            return
        prior = self.last_sdp.get(ctx.flow)
        if (
            prior is not None
            and prior[0] != ctx.from_client
            and not any(u in self.by_ufrag for u in ufrags)
            and len({tuple(x["ufrag"]) for x in prior[1].sdp}) == 1  # type: ignore[arg-type]
        ):
            # The answer to an offer that came the other way on this signaling connection: one
            # session even if no connectivity check ever ties their ufrags together.
            ufrags = ufrags | prior[1].ufrags
        session = self._session_for(ufrags)
        self.last_sdp[ctx.flow] = (ctx.from_client, session)
        session.seen(ctx)
        session.mark("signaling", ctx)
        session.sdp.append(
            {
                "frame": ctx.frame,
                "time": ctx.time,
                "flow": ctx.flow,
                "ufrag": sorted(ufrags),
                "setup": rec.setup or next((m.setup for m in rec.media if m.setup), None),
                "fingerprint": rec.fingerprint
                or next((m.fingerprint for m in rec.media if m.fingerprint), None),
                "media": [{"kind": m.kind, "port": m.port, "ssrcs": m.ssrcs} for m in rec.media],
                "candidates": sum(len(m.candidates) for m in rec.media),
            }
        )

    def _stun(self, rec: StunRecord, ctx: FlowContext) -> None:
        if rec.method == BINDING:
            self._binding(rec, ctx)
        elif rec.method in (ALLOCATE, REFRESH, CREATE_PERMISSION, CHANNEL_BIND, SEND, DATA):
            self._turn(rec, ctx)

    def _binding(self, rec: StunRecord, ctx: FlowContext) -> None:
        a = rec.attributes
        username = a.get("username")
        session = self.by_flow.get(ctx.flow)
        if rec.cls == REQUEST and isinstance(username, str) and ":" in username:
            session = self._session_for(set(username.split(":", 1)))
            self.by_flow[ctx.flow] = session
        if session is None:
            return  # a server-reflexive check against a STUN server: no ICE session
        session.seen(ctx)
        local, remote = (str(ctx.src), str(ctx.dst)) if rec.cls == REQUEST else (str(ctx.dst), str(ctx.src))
        pair = session.pairs.setdefault(ctx.flow, Pair(ctx.flow, local, remote))
        if rec.cls == REQUEST:
            session.mark("ice", ctx)
            pair.requests += 1
            pair.last_request = ctx.frame
            pair.pending.setdefault(rec.transaction_id, ctx.time)
            if "role" in a:
                session.roles.add(str(a["role"]))
            if a.get("use_candidate"):
                pair.nominated = True
        elif rec.cls == SUCCESS:
            pair.responses += 1
            sent = pair.pending.pop(rec.transaction_id, None)
            if sent is not None:
                pair.rtt_ms.append(round((ctx.time - sent) * 1000, 3))
            session.mark("ice_connected", ctx)
            if pair.nominated:
                session.mark("nominated", ctx)
        elif rec.cls == ERROR:
            pair.errors += 1
            if a.get("error_code") == 487:
                session.findings.append(
                    _finding(
                        "ice",
                        "ice.role_conflict",
                        "487 Role Conflict: both agents claimed the same role",
                        ctx.frame,
                    )
                )

    def _turn(self, rec: StunRecord, ctx: FlowContext) -> None:
        client, server = (
            (str(ctx.src), str(ctx.dst))
            if rec.cls in (REQUEST, INDICATION) and rec.method != DATA
            else (str(ctx.dst), str(ctx.src))
        )
        key = (ctx.flow, client)
        alloc = self.allocations.get(key)
        a = rec.attributes
        if alloc is None:
            if not (rec.method == ALLOCATE and rec.cls == REQUEST):
                alloc = self.allocations[key] = Allocation(ctx.flow, client, server, ctx.time)
                alloc.findings.append(
                    _finding(
                        "turn",
                        "turn.midway",
                        "TURN traffic without its Allocate (capture started later)",
                        ctx.frame,
                    )
                )
            else:
                alloc = self.allocations[key] = Allocation(ctx.flow, client, server, ctx.time)
        if rec.cls == REQUEST:
            alloc.pending[rec.transaction_id] = (
                rec.method,
                a.get("xor_peers") or a.get("xor_peer"),
                a.get("username"),
            )
            channel, peer = a.get("channel"), a.get("xor_peer")
            if rec.method == CHANNEL_BIND and isinstance(channel, int) and isinstance(peer, tuple):
                alloc.channels[channel] = str(peer[0])
            return
        if rec.cls in (INDICATION,) and rec.method in (SEND, DATA):
            peer = a.get("xor_peer")
            if isinstance(peer, tuple):
                expiry = alloc.permissions.get(str(peer[0]))
                if expiry is not None and ctx.time > expiry:
                    alloc.findings.append(
                        _finding(
                            "turn",
                            "turn.permission_expired",
                            f"data for {peer[0]} after its permission expired",
                            ctx.frame,
                        )
                    )
            return
        method, peers, username = alloc.pending.pop(rec.transaction_id, (rec.method, None, None))
        if rec.cls == ERROR:
            code = a.get("error_code")
            alloc.errors.append(f"{code} {a.get('error_reason', '')}".strip())
            if code == 401 and method == ALLOCATE:
                alloc.unauthorized += 1
                if username is not None and not any(
                    f["code"] == "turn.credentials_refused" for f in alloc.findings
                ):
                    # The first 401 is the nonce dance (RFC 8656 9.2); one to a request that
                    # carried USERNAME and MESSAGE-INTEGRITY refuses the credentials themselves.
                    alloc.findings.append(
                        _finding(
                            "turn",
                            "turn.credentials_refused",
                            f"Allocate with username {username!r} answered 401: credentials refused",
                            ctx.frame,
                        )
                    )
                if alloc.unauthorized > MAX_401 and alloc.relayed is None:
                    alloc.findings.append(
                        _finding(
                            "turn",
                            "turn.401_loop",
                            f"{alloc.unauthorized} Allocate requests answered 401: credentials refused",
                            ctx.frame,
                        )
                    )
            elif code == 438:
                alloc.findings.append(_finding("turn", "turn.stale_nonce", "438 Stale Nonce", ctx.frame))
            return
        if rec.cls == SUCCESS:
            lifetime = a.get("lifetime")
            if method == ALLOCATE:
                relayed = a.get("xor_relayed")
                alloc.relayed = f"{relayed[0]}:{relayed[1]}" if isinstance(relayed, tuple) else alloc.relayed
            if method in (ALLOCATE, REFRESH) and isinstance(lifetime, int):
                alloc.lifetime = lifetime
                # A Refresh with lifetime 0 is the client deleting the allocation, not an expiry.
                alloc.expires = ctx.time + lifetime if lifetime else None
                alloc.expires_frame = ctx.frame
                alloc.released = lifetime == 0
            if method in (CREATE_PERMISSION, CHANNEL_BIND):
                for peer in peers if isinstance(peers, list) else [peers] if isinstance(peers, tuple) else []:
                    alloc.permissions[str(peer[0])] = ctx.time + PERMISSION_LIFETIME

    def _dtls(self, rec: DtlsRecord, ctx: FlowContext) -> None:
        session = self.by_flow.get(ctx.flow)
        if session is None:
            return
        session.seen(ctx)
        session.dtls_frame = ctx.frame
        d = session.dtls
        if 1 in rec.handshake_types:
            session.mark("dtls", ctx)
            d.setdefault("client", str(ctx.src))
        if 2 in rec.handshake_types:
            hello = rec.facts.get("server_hello")
            if isinstance(hello, dict):
                d["version"] = hello.get("version")
                d["srtp_profiles"] = hello.get("srtp_profiles")
        if "certificates" in rec.facts:
            certs = rec.facts["certificates"]
            seen = d.setdefault("fingerprints", {})
            if isinstance(certs, list) and certs and isinstance(seen, dict):
                seen[str(ctx.src)] = {k: v for k, v in certs[0].items() if k.startswith("sha-")}
                session.certificate_frames[str(ctx.src)] = ctx.frame
        if "alert" in rec.facts:
            d["alert"] = rec.facts["alert"]
            alert = rec.facts["alert"]
            session.findings.append(
                _finding("dtls", "dtls.alert", f"alert {alert}", ctx.frame, _alert_severity(alert))
            )
        if 20 in rec.content_types:  # ChangeCipherSpec from both sides ends a DTLS 1.2 handshake
            ccs = d.setdefault("change_cipher_spec_from", [])
            if isinstance(ccs, list) and str(ctx.src) not in ccs:
                ccs.append(str(ctx.src))
                if len(ccs) == 2:
                    session.mark("dtls_done", ctx)
        if 23 in rec.content_types:
            session.mark("dtls_done", ctx)
            session.data_records += 1

    # -- the report ---------------------------------------------------------------------------

    def rows(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for n, s in enumerate(self.sessions):
            findings = [AnalysisFinding(**f) for f in s.findings]  # graded below: copies
            if s.sdp and not s.pairs:
                findings.append(
                    _finding(
                        "ice",
                        "ice.no_checks",
                        "SDP was exchanged but no connectivity check was seen",
                        s.last_frame,
                    )
                )
            if s.pairs and not any(p.responses for p in s.pairs.values()):
                findings.append(
                    _finding(
                        "ice",
                        "ice.no_response",
                        "connectivity checks were sent, none was answered",
                        max(p.last_request for p in s.pairs.values()),
                    )
                )
            if "ice_connected" in s.phases and not any(p.nominated for p in s.pairs.values()):
                findings.append(
                    _finding(
                        "ice",
                        "ice.not_nominated",
                        "checks succeeded but no pair was nominated (USE-CANDIDATE)",
                        s.last_frame,
                    )
                )
            if "dtls" in s.phases and "dtls_done" not in s.phases:
                findings.append(
                    _finding(
                        "dtls",
                        "dtls.incomplete",
                        "the DTLS handshake started and never finished",
                        s.dtls_frame,
                    )
                )
            directions = {from_client for (_, from_client) in s.media}
            if len(directions) == 1:
                findings.append(
                    _finding(
                        "media", "media.one_way", "media flowed in one direction only", s.frames.get("media")
                    )
                )
            fingerprints = s.dtls.get("fingerprints")
            promised = {
                (str(x["fingerprint"]).split(" ")[0].lower(), str(x["fingerprint"]).split(" ")[-1].upper())
                for x in s.sdp
                if x.get("fingerprint")
            }
            if isinstance(fingerprints, dict) and promised:
                for endpoint, hashes in fingerprints.items():
                    if not any(isinstance(hashes, dict) and hashes.get(alg) == fp for alg, fp in promised):
                        findings.append(
                            _finding(
                                "dtls",
                                "dtls.fingerprint_mismatch",
                                f"certificate of {endpoint} is not the one SDP promised",
                                s.certificate_frames.get(endpoint),
                            )
                        )
                s.dtls["fingerprint_checked"] = True
            order = ["signaling", "ice", "ice_connected", "nominated", "dtls", "dtls_done", "media"]
            reached = [p for p in order if p in s.phases]
            failed = _failed(findings)
            out.append(
                {
                    "id": n,
                    "ufrags": sorted(s.ufrags),
                    "phases": {p: {"time": s.phases[p], "frame": s.frames[p]} for p in reached},
                    "failed_phase": failed,
                    "flows": self._flows(s),
                    "signaling": s.sdp,
                    "ice_roles": sorted(s.roles),
                    "candidate_pairs": [
                        {
                            "flow": p.flow,
                            "local": p.local,
                            "remote": p.remote,
                            "requests": p.requests,
                            "responses": p.responses,
                            "errors": p.errors,
                            "nominated": p.nominated,
                            "rtt_ms": p.rtt_ms[:20],
                            "state": "succeeded" if p.responses else "failed" if p.requests else "waiting",
                        }
                        for p in s.pairs.values()
                    ],
                    "nominated_pair": next(
                        (
                            {"local": p.local, "remote": p.remote}
                            for p in s.pairs.values()
                            if p.nominated and p.responses
                        ),
                        None,
                    ),
                    "dtls": {k: v for k, v in s.dtls.items()}
                    | {
                        "state": "done"
                        if "dtls_done" in s.phases
                        else "started"
                        if "dtls" in s.phases
                        else "none"
                    },
                    "media": [
                        {"ssrc": ssrc, "from_client": fc, **info} for (ssrc, fc), info in s.media.items()
                    ],
                    "data_records": s.data_records,
                    "findings": findings,
                }
            )
        for alloc in self.allocations.values():
            findings = [AnalysisFinding(**f) for f in alloc.findings]
            if alloc.expires is not None and self.last_time > alloc.expires:
                findings.append(
                    _finding(
                        "turn",
                        "turn.allocation_expired",
                        "the allocation expired before the capture ended",
                        alloc.expires_frame,
                    )
                )
            out.append(
                {
                    "id": len(out),
                    "kind": "turn_allocation",
                    "flow": alloc.flow,
                    "client": alloc.client,
                    "server": alloc.server,
                    "relayed": alloc.relayed,
                    "lifetime": alloc.lifetime,
                    "released": alloc.released,
                    "unauthorized_401": alloc.unauthorized,
                    "permissions": sorted(alloc.permissions),
                    "channels": {f"0x{k:04x}": v for k, v in alloc.channels.items()},
                    "errors": alloc.errors,
                    "failed_phase": _failed(findings),
                    "findings": findings,
                }
            )
        return out
