"""The WebRTC session report (`--report sessions`).

An ICE session is recognised by its ufrags: STUN Binding USERNAMEs are "receiver:sender", SDP
carries each side's ufrag. Flows that carried its connectivity checks belong to it, and the DTLS,
RTP and RTCP on them (or relayed through TURN on them) fill its later phases, and so do the SCTP
data channels in its DTLS (`datachannel`: from the first DATA_CHANNEL_OPEN, or the first message
of a pre-negotiated stream, to `datachannel_open`). TURN allocations are
tracked on their own (Allocate with the 401 nonce dance, Refresh, permissions, channels) and their
expiry reported.

Every finding names its phase, a frame and a severity (the `Analysis` contract). A row's
`failed_phase` is the earliest phase with an error finding, and only the findings of that phase are
errors: a failure that follows from it (media one way after a refused certificate) is a warning, so
the error count counts failures. Findings made when the rows are built, without a packet at hand,
name the packet where the failure shows: the last unanswered check, the refused certificate, the
stalled handshake's last record, the first media packet of a one-way call, the response that
granted an allocation's lifetime, and for a phase never reached, the session's last frame.

Work and memory follow the sessions, not the packets: sessions are found by ufrag through an index
and merged by union-find (a merged session points to the one that absorbed it), so a check costs
the same whatever came before it, even when ufrags chain (`u2:u1`, `u3:u2`, ...: 60,000 such checks
took 156 s when every check re-indexed and scanned its session). Everything kept per session, pair
and allocation has a named limit; hitting one makes a warning on the row (`*_limit` codes).

Relayed calls (issue 16): a ChannelData message or a Send/Data indication is fed before the PDUs it
carries, in the same frame, so those PDUs are read between the relayed address and the peer (the
`RelayLeg`), not between the client and the TURN server. A check is counted once, on the first leg
it was seen on (its transaction id names its copies on the other legs), and an RTP stream on the
first leg its SSRC was seen on. What the rows say of parties, candidates, pairs, NATs and why the
call went as it did is built from what is gathered here by ice.py and diagnosis.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from protoscope.decoders.api import AnalysisFinding, Endpoint, FlowContext, Pdu, Severity
from protoscope.decoders.dtls.records import DtlsRecord
from protoscope.decoders.icmp.message import IcmpError
from protoscope.decoders.mdns.message import MdnsAnswers
from protoscope.decoders.rtp.packets import RtcpRecord, RtpRecord
from protoscope.decoders.sctp import names as sctp_names
from protoscope.decoders.sctp.records import SctpRecord, UserMessage
from protoscope.decoders.sdp.parse import SdpRecord
from protoscope.decoders.sdp.trickle import TrickleRecord
from protoscope.decoders.stun.messages import StunRecord
from protoscope.decoders.webrtc import diagnosis, ice
from protoscope.decoders.webrtc.candidates import parse_candidate
from protoscope.decoders.webrtc.ice import (
    MAX_ADDRESSES,
    MAX_CANDIDATES,
    Evidence,
    MediaStream,
    Pair,
    Path,
    RelayLeg,
    Seen,
)
from protoscope.decoders.webrtc.nat import NatObserver

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

MAX_SESSIONS = 10_000
"""ICE sessions followed; checks and SDP with ufrags of none of them are not followed past it. A
long capture at a TURN server or an SFU may hold thousands of calls; a session costs a few KB."""
MAX_UFRAGS = 64
"""Ufrags one session learns from checks and SDP (merged halves keep theirs): a call has two, plus
two per ICE restart. A chain `u2:u1`, `u3:u2`, ... would otherwise make one session of them all."""
MAX_PAIRS = 100
"""Candidate pairs (flows) of one session: RFC 8445 section 6.1.2.5's default limit on a
checklist. Checks on further flows count towards the session's phases, not a pair of their own."""
MAX_PENDING_CHECKS = 1000
"""Checks of one pair awaiting a response, for round-trip times: the oldest is forgotten first (an
hour of unanswered consent checks, one every 5 s, is 720)."""
RTT_KEPT = 20
"""Round-trip times kept per pair: the row shows this many, the first."""
MAX_MEDIA_STREAMS = 256
"""RTP streams (SSRC and direction) of one session: simulcast, RTX and FEC make a dozen; an SSRC
per packet would otherwise make a dict entry per packet."""
MAX_SDP = 100
"""Session descriptions kept per session: the offer, the answer, and every renegotiation."""
MAX_FINDINGS = 100
"""Findings kept per row (a 401 loop or relayed data after its permission expired makes one per
packet): the first ones, then one `webrtc.findings_limit`."""
MAX_ALLOCATIONS = 10_000
"""TURN allocations followed (one per client and flow)."""
MAX_TURN_PENDING = 1000
"""Requests of one allocation awaiting an answer; the oldest is forgotten first."""
MAX_PERMISSIONS = 1000
"""Peers one allocation holds permissions for: each a CreatePermission or ChannelBind answered."""
MAX_CHANNELS = 4096
"""Channels of one allocation: the numbers RFC 8656 section 12 allows (0x4000 through 0x4FFF)."""
MAX_TURN_ERRORS = 100
"""Error answers listed per allocation (the first ones)."""
MAX_PATHS = 64
"""Legs (flow, direction, framing) of one session: a relayed call has six, a restart a few more."""
MAX_TRANSACTIONS = 1 << 16
"""Check transaction ids remembered (all sessions), the oldest forgotten first: a check's copies
on its other legs come within milliseconds, and ICMP errors quote checks as fast."""
MAX_SERVER_TRANSACTIONS = 4096
"""Binding requests to STUN servers (no USERNAME) awaiting their response, all sessions."""
MAX_REFLEXIVE_SOCKETS = 10_000
"""Sockets whose server-reflexive addresses are kept, and MAX_REFLEXIVE per socket."""
MAX_REFLEXIVE = 8
MAX_MDNS_NAMES = 4096
"""mDNS names resolved by responses in the capture, kept for candidates that name them."""
MAX_DATA_CHANNELS = 1024
"""Data channels (SCTP streams of its flows) one session follows for its `datachannel` phase: a
browser opens a handful; an OPEN per stream id would otherwise make an entry each."""


@dataclass(slots=True)
class Transaction:
    """A check's transaction id, to count it once whatever the legs it travels on."""

    session: IceSession
    pair: tuple[int, str, str]
    request_leg: tuple[int, bool]
    response_leg: tuple[int, bool] | None = None
    nominating: bool = False
    """The check carried USE-CANDIDATE."""


@dataclass(slots=True)
class IceSession:
    ufrags: set[str]
    seq: int = 0
    """Creation order: when halves merge, the older one survives."""
    merged_into: IceSession | None = None
    """The session that absorbed this one (union-find: follow to the live one)."""
    limits: set[str] = field(default_factory=set)
    """The limits this session hit (each makes one finding)."""
    phases: dict[str, float] = field(default_factory=dict)
    frames: dict[str, int] = field(default_factory=dict)
    pairs: dict[tuple[int, str, str], Pair] = field(default_factory=dict)
    """(flow of the first leg, local, remote) -> the pair: relayed pairs by relayed endpoints."""
    sdp: list[dict[str, object]] = field(default_factory=list)
    roles: set[str] = field(default_factory=set)
    dtls: dict[str, object] = field(default_factory=dict)
    media: dict[int, MediaStream] = field(default_factory=dict)
    """SSRC -> its stream (MAX_MEDIA_STREAMS of them)."""
    evidence: Evidence = field(default_factory=Evidence)
    candidates: list[Seen] = field(default_factory=list)
    """Candidates from signaling (MAX_CANDIDATES); those learnt on the wire come with the rows."""
    candidate_keys: set[tuple[str | None, str, str, int]] = field(default_factory=set)
    """(ufrag, endpoint, type, component) of the kept candidates: an SDP seen twice adds none."""
    paths: dict[tuple[int, bool, str], Path] = field(default_factory=dict)
    """(flow, from client, framing) -> its leg (MAX_PATHS)."""
    promised_by: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    """(hash function, fingerprint) of every a=fingerprint the session's SDP carried, by the
    ufrag of the SDP that carried them: a certificate is checked against its sender's own SDP
    (with one side's SDP only, the other's certificate is not "mismatched")."""
    selected_at: tuple[float, int] | None = None
    """When a nominated pair was first answered: traffic after it is the selected pair's."""
    after: list[int] = field(default_factory=lambda: [0, 0])
    """Packets and bytes on first legs after `selected_at`."""
    ended: float | None = None
    """A DTLS close_notify or fatal alert: the call is over, consent is not judged after it."""
    icmp: list[tuple[str, int]] = field(default_factory=list)
    """ICMP errors that quoted the session's checks but no pair's (message, frame)."""
    data_records: int = 0
    findings: list[AnalysisFinding] = field(default_factory=list)
    last_frame: int = 0
    """The session's last packet: where a phase it never reached shows as missing."""
    dtls_frame: int = 0
    """The last DTLS record: where a handshake that never finished stalled."""
    certificate_frames: dict[str, int] = field(default_factory=dict)
    """Endpoint -> the frame of the certificate it sent."""
    channels: dict[tuple[int, int], tuple[int, str] | None] = field(default_factory=dict)
    """(flow, SCTP stream) of each data channel in use -> (frame, label) of its
    DATA_CHANNEL_OPEN while no ACK answered it, else None (MAX_DATA_CHANNELS of them)."""
    data_channels: int = 0
    """Data channels seen: opened by DCEP, or pre-negotiated streams that carried messages."""

    def mark(self, phase: str, ctx: FlowContext) -> None:
        if phase not in self.phases:
            self.phases[phase] = ctx.time
            self.frames[phase] = ctx.frame

    def seen(self, ctx: FlowContext) -> None:
        self.last_frame = max(self.last_frame, ctx.frame)

    def add_candidate(self, seen: Seen) -> None:
        """Keep a signaled candidate once (an offer relayed on two signaling flows, or repeated
        in every BUNDLEd m-line, says it again), up to MAX_CANDIDATES."""
        c = seen.candidate
        key = (seen.ufrag, c.endpoint, c.type, c.component)
        if key in self.candidate_keys:
            return
        if len(self.candidates) >= MAX_CANDIDATES:
            self.limit(
                "ice.candidates_limit",
                "ice",
                f"more than {MAX_CANDIDATES} candidates (MAX_CANDIDATES): the later ones are not listed",
                seen.frame,
            )
            return
        self.candidate_keys.add(key)
        self.candidates.append(seen)

    def promised(self) -> set[tuple[str, str]]:
        """Every (hash function, fingerprint) the session's SDPs promised, whoever sent them."""
        return {x for kept in self.promised_by.values() for x in kept}

    def limit(self, code: str, phase: str, message: str, frame: int) -> None:
        """A limit this session hit: a warning, once per limit."""
        if code not in self.limits:
            self.limits.add(code)
            _add(self.findings, _finding(phase, code, message, frame, "warn"))


@dataclass(slots=True)
class Allocation:
    flow: int
    client: str
    server: str
    first: float
    unauthorized: int = 0
    relayed: str | None = None
    mapped: str | None = None
    """The XOR-MAPPED-ADDRESS of the Allocate success: the client's server-reflexive address."""
    relayed_frame: int = 0
    lifetime: int | None = None
    expires: float | None = None
    permissions: dict[str, float] = field(default_factory=dict)
    """peer ip -> expiry time."""
    channels: dict[int, str] = field(default_factory=dict)
    """Channel number -> peer "ip:port" (ChannelBind's XOR-PEER-ADDRESS)."""
    errors: list[str] = field(default_factory=list)
    findings: list[AnalysisFinding] = field(default_factory=list)
    expires_frame: int | None = None
    """The response that granted the lifetime `expires` counts from."""
    pending: dict[bytes, tuple[int, object, object]] = field(default_factory=dict)
    """Requests waiting for an answer: method, peers, the USERNAME they carried (or None)."""
    released: bool = False
    limits: set[str] = field(default_factory=set)

    def limit(self, code: str, message: str, frame: int) -> None:
        if code not in self.limits:
            self.limits.add(code)
            _add(self.findings, _finding("turn", code, message, frame, "warn"))


PHASES = (
    "signaling",
    "ice",
    "ice_connected",
    "nominated",
    "dtls",
    "dtls_done",
    "media",
    "datachannel",
    "datachannel_open",
)
"""The phases a session row's `phases` names, in the order a call reaches them (a row lists those
reached in this order; the lake's `session_phases` has a row for each)."""
PHASE_ORDER = ("signaling", "turn", "ice", "dtls", "media", "datachannel")
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
    "datachannel.open_unacked": "error",
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
    # Issue 16: what the pair table and the NAT verdicts say (decoders/webrtc/diagnosis.py).
    **diagnosis.FINDING_SEVERITY,
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


def _add(findings: list[AnalysisFinding], finding: AnalysisFinding) -> None:
    """Keep a row's finding, up to MAX_FINDINGS, then one that says the rest were dropped."""
    if len(findings) < MAX_FINDINGS:
        findings.append(finding)
    elif len(findings) == MAX_FINDINGS:
        message = f"more than {MAX_FINDINGS} findings on this row (MAX_FINDINGS): the rest are not kept"
        findings.append(
            _finding(finding.get("phase", ""), "webrtc.findings_limit", message, finding["frame"], "warn")
        )


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
        """Every session made, in creation order (merged ones too: rows skip them)."""
        self.live = 0
        self.by_ufrag: dict[str, IceSession] = {}
        """Ufrag -> a session that had it (follow `merged_into` to the live one: `_find`)."""
        self.by_flow: dict[int, IceSession] = {}
        self.allocations: dict[tuple[int, str], Allocation] = {}
        self.last_time = 0.0
        self.last_sdp: dict[int, tuple[bool, IceSession]] = {}
        """Signaling flow -> (direction, session) of the last SDP it carried."""
        self.sessions_limit: int | None = None
        """The frame where MAX_SESSIONS first left a session unfollowed."""
        self.allocations_limit: int | None = None
        self.alloc_by_flow: dict[int, Allocation] = {}
        self.relays: dict[str, Allocation] = {}
        """Relayed address -> its allocation (what sends from it is a TURN server's copy)."""
        self.relay: RelayLeg | None = None
        """The TURN framing of the packet being fed (its inner PDUs follow it)."""
        self.transactions: dict[bytes, Transaction] = {}
        """Check transaction id -> where it was counted (MAX_TRANSACTIONS, oldest first out)."""
        self.server_requests: dict[bytes, tuple[str, str]] = {}
        """Binding requests without USERNAME (to a STUN server): id -> (socket, server)."""
        self.reflexive: dict[str, list[tuple[str, str, int, float]]] = {}
        """Socket -> (mapped, server, frame, time) of the STUN servers' Binding responses."""
        self.mdns: dict[str, str] = {}
        """mDNS name (lower case) -> the address a response in the capture gave it."""
        self.sdp_ufrags: dict[tuple[int, bool], str] = {}
        """(signaling flow, direction) -> the own ufrag of the last SDP sent that way."""
        self.pair_ends: dict[tuple[str, str], tuple[IceSession, tuple[int, str, str]]] = {}
        """(source, destination) of a pair's first check on the wire -> the pair (for ICMP)."""
        self.nat = NatObserver()

    # -- routing ------------------------------------------------------------------------------

    @staticmethod
    def _find(session: IceSession) -> IceSession:
        """The live session `session` was merged into (itself when it was not), with path halving."""
        while session.merged_into is not None:
            above = session.merged_into
            if above.merged_into is not None:
                session.merged_into = above.merged_into
            session = above
        return session

    def _session_for(self, ufrags: set[str], ctx: FlowContext) -> IceSession | None:
        """The session these ufrags belong to: a new one, or the oldest of those that know one of
        them, the others merged into it. None past MAX_SESSIONS."""
        found: list[IceSession] = []
        for u in sorted(ufrags):
            known = self.by_ufrag.get(u)
            if known is not None:
                known = self._find(known)
                if known not in found:
                    found.append(known)
        if not found:
            if self.live >= MAX_SESSIONS:
                if self.sessions_limit is None:
                    self.sessions_limit = ctx.frame
                return None
            session = IceSession(set(), seq=len(self.sessions))
            self.sessions.append(session)
            self.live += 1
        else:  # the oldest survives, whatever the order of the ufrags
            found.sort(key=lambda x: x.seq)
            session = found[0]
        for other in found[1:]:  # two halves met (offer seen, then checks): merge
            self._merge(session, other)
        for u in sorted(ufrags - session.ufrags):
            if len(session.ufrags) >= MAX_UFRAGS:
                session.limit(
                    "ice.ufrags_limit",
                    "ice",
                    f"more than {MAX_UFRAGS} ufrags (MAX_UFRAGS): checks with new ones start other sessions",
                    ctx.frame,
                )
                break
            session.ufrags.add(u)
            self.by_ufrag[u] = session
        return session

    def _merge(self, session: IceSession, other: IceSession) -> None:
        """`other` joins `session` (every index that names it now leads here through `_find`).
        What each keeps is bounded, so a merge costs at most the limits, not the capture."""
        if len(other.ufrags) > len(session.ufrags):  # the smaller set goes into the larger one
            session.ufrags, other.ufrags = other.ufrags, session.ufrags
        session.ufrags |= other.ufrags
        session.sdp = sorted(session.sdp + other.sdp, key=lambda sdp: int(str(sdp.get("frame", 0))))[:MAX_SDP]
        for phase, t in other.phases.items():
            if phase not in session.phases or t < session.phases[phase]:
                session.phases[phase] = t
                session.frames[phase] = other.frames[phase]
        for pair_key, pair in other.pairs.items():
            if pair_key in session.pairs or len(session.pairs) < MAX_PAIRS:
                session.pairs.setdefault(pair_key, pair)
        session.roles |= other.roles
        for k, v in other.dtls.items():
            session.dtls.setdefault(k, v)
        for ssrc, m in other.media.items():
            if ssrc in session.media or len(session.media) < MAX_MEDIA_STREAMS:
                session.media.setdefault(ssrc, m)
        session.evidence.merge(other.evidence)
        for seen in other.candidates:
            session.add_candidate(seen)
        for leg, path in other.paths.items():
            if leg in session.paths or len(session.paths) < MAX_PATHS:
                session.paths.setdefault(leg, path)
        for u, kept in other.promised_by.items():
            session.promised_by.setdefault(u, set()).update(kept)
        if other.selected_at is not None and (
            session.selected_at is None or other.selected_at < session.selected_at
        ):
            session.selected_at = other.selected_at
        session.after = [a + b for a, b in zip(session.after, other.after, strict=True)]
        if other.ended is not None:
            session.ended = min(other.ended, session.ended or other.ended)
        session.icmp = (session.icmp + other.icmp)[:MAX_FINDINGS]
        session.data_records += other.data_records
        for key, pending in other.channels.items():
            if key in session.channels or len(session.channels) < MAX_DATA_CHANNELS:
                session.channels.setdefault(key, pending)
        session.data_channels += other.data_channels
        for f in other.findings:
            _add(session.findings, f)
        session.limits |= other.limits
        session.last_frame = max(session.last_frame, other.last_frame)
        session.dtls_frame = max(session.dtls_frame, other.dtls_frame)
        for endpoint, frame in other.certificate_frames.items():
            session.certificate_frames.setdefault(endpoint, frame)
        other.merged_into = session
        other.ufrags = set()
        other.sdp, other.pairs, other.media, other.findings = [], {}, {}, []
        other.channels, other.candidates, other.paths, other.evidence = {}, [], {}, Evidence()
        self.live -= 1

    def feed(self, pdu: Pdu, ctx: FlowContext) -> None:
        self.last_time = max(self.last_time, ctx.time)
        rec = pdu.record
        if isinstance(rec, RtpRecord | RtcpRecord):  # the most frequent first: a lookup or two each
            session = self._flow_session(ctx.flow)
            if session is not None:
                self._media(session, rec, ctx, pdu.span[1] - pdu.span[0])
        elif isinstance(rec, StunRecord):
            self._stun(rec, ctx, pdu.span[1] - pdu.span[0])
        elif isinstance(rec, tuple) and rec[:1] == ("channel",) and len(rec) == 3:
            self._channel_data(rec[1], ctx, pdu.span[1] - pdu.span[0])
        elif isinstance(rec, SdpRecord):
            self._sdp(rec, ctx)
        elif isinstance(rec, DtlsRecord):
            self._dtls(rec, ctx, pdu.span[1] - pdu.span[0])
        elif isinstance(rec, UserMessage):
            self._datachannel(rec, ctx)
        elif isinstance(rec, SctpRecord):
            self._sctp(rec, ctx)
        elif isinstance(rec, TrickleRecord):
            self._trickle(rec, ctx)
        elif isinstance(rec, IcmpError):
            self._icmp(rec, ctx)
        elif isinstance(rec, MdnsAnswers):
            for name, ip in rec.answers[:MAX_MDNS_NAMES]:
                key = name.lower().rstrip(".")
                if key in self.mdns or len(self.mdns) < MAX_MDNS_NAMES:
                    self.mdns[key] = ip

    # -- legs: what TURN relays, and where a packet was first seen -------------------------------

    def _relayed(self, ctx: FlowContext) -> RelayLeg | None:
        """The TURN framing around this PDU, when it came inside ChannelData or an indication."""
        relay = self.relay
        if relay is not None and relay.frame == ctx.frame and relay.flow == ctx.flow:
            return relay
        return None

    def _ends(self, ctx: FlowContext) -> tuple[str, str, RelayLeg | None]:
        """The endpoints the PDU travels between as its sender and receiver see them: for relayed
        bytes the relayed address and the peer, else the packet's own."""
        relay = self._relayed(ctx)
        if relay is not None and relay.src is not None and relay.dst is not None:
            return relay.src, relay.dst, relay
        return str(ctx.src), str(ctx.dst), relay

    def _channel_data(self, channel: object, ctx: FlowContext, size: int) -> None:
        alloc = self.alloc_by_flow.get(ctx.flow)
        peer = alloc.channels.get(channel) if alloc is not None and isinstance(channel, int) else None
        if alloc is None:
            self.relay = RelayLeg(ctx.frame, ctx.flow, "channeldata", None, None, size, not ctx.from_client)
            return
        toward = str(ctx.src) == alloc.client
        src, dst = (alloc.relayed, peer) if toward else (peer, alloc.relayed)
        self.relay = RelayLeg(ctx.frame, ctx.flow, "channeldata", src, dst, size, not toward)

    def _leg(self, session: IceSession, ctx: FlowContext, size: int) -> Path | None:
        """Count the packet on its leg (once per frame, whatever PDUs it holds) and, when it is a
        first leg after the selection, for the selected pair."""
        relay = self._relayed(ctx)
        via = relay.via if relay is not None else "udp"
        key = (ctx.flow, ctx.from_client, via)
        path = session.paths.get(key)
        if path is None:
            if len(session.paths) >= MAX_PATHS:
                return None
            copy = relay.from_server if relay is not None else str(ctx.src) in self.relays
            path = session.paths[key] = Path(str(ctx.src), str(ctx.dst), copy=copy)
        if path.last_frame != ctx.frame:
            path.last_frame, path.last_time = ctx.frame, ctx.time
            path.packets += 1
            size = relay.size if relay is not None else size
            path.bytes += size
            if not path.copy and session.selected_at is not None:
                session.after[0] += 1
                session.after[1] += size
        elif relay is None:  # another record of the same datagram
            path.bytes += size
            if not path.copy and session.selected_at is not None:
                session.after[1] += size
        return path

    def _media(self, session: IceSession, rec: RtpRecord | RtcpRecord, ctx: FlowContext, size: int) -> None:
        session.seen(ctx)
        session.mark("media", ctx)
        self._leg(session, ctx, size)
        if not isinstance(rec, RtpRecord):
            return
        leg = (ctx.flow, ctx.from_client)
        m = session.media.get(rec.ssrc)
        if m is None:
            if len(session.media) >= MAX_MEDIA_STREAMS:
                session.limit(
                    "media.streams_limit",
                    "media",
                    f"more than {MAX_MEDIA_STREAMS} RTP streams (MAX_MEDIA_STREAMS): "
                    "the SSRCs past it are not counted",
                    ctx.frame,
                )
                return
            src, dst, _ = self._ends(ctx)
            m = session.media[rec.ssrc] = MediaStream(leg, src, dst, rec.payload_type)
        if m.leg == leg:
            m.packets += 1
            m.bytes += size
        elif leg not in m.legs and len(m.legs) < MAX_PATHS:
            m.legs.add(leg)

    def _flow_session(self, fid: int) -> IceSession | None:
        session = self.by_flow.get(fid)
        return None if session is None else self._find(session)

    # -- signaling ------------------------------------------------------------------------------

    def _sdp(self, rec: SdpRecord, ctx: FlowContext) -> None:
        ufrags = {u for u in [rec.ice_ufrag, *(m.ice_ufrag for m in rec.media)] if u}
        if not ufrags:
            return
        own = sorted(ufrags)
        prior = self.last_sdp.get(ctx.flow)
        if prior is not None:
            prior = (prior[0], self._find(prior[1]))
        if (
            prior is not None
            and prior[0] != ctx.from_client
            and not any(u in self.by_ufrag for u in ufrags)
            and len({tuple(x["ufrag"]) for x in prior[1].sdp}) == 1  # type: ignore[arg-type]
        ):
            # The answer to an offer that came the other way on this signaling connection: one
            # session even if no connectivity check ever ties their ufrags together.
            ufrags = ufrags | prior[1].ufrags
        session = self._session_for(ufrags, ctx)
        if session is None:
            return
        self.last_sdp[ctx.flow] = (ctx.from_client, session)
        session.seen(ctx)
        session.mark("signaling", ctx)
        self._own_ufrags(session, own, ctx)
        source = "sdp-file" if ctx.flow < 0 else "sdp"
        for m in rec.media:
            for text in m.candidates[:MAX_CANDIDATES]:
                self._candidate(session, text, m.ice_ufrag or rec.ice_ufrag, source, ctx)
        for value in [
            *rec.fingerprints,
            rec.fingerprint,
            *(m.fingerprint for m in rec.media),
        ]:
            if isinstance(value, str) and " " in value and len(session.promised()) < MAX_SDP:
                promise = (value.split(" ")[0].lower(), value.split(" ")[-1].upper())
                for u in own:
                    session.promised_by.setdefault(u, set()).add(promise)
        if len(session.sdp) >= MAX_SDP:
            session.limit(
                "sdp.descriptions_limit",
                "signaling",
                f"more than {MAX_SDP} session descriptions (MAX_SDP): the later ones are not listed",
                ctx.frame,
            )
            return
        session.sdp.append(
            {
                "frame": ctx.frame,
                "time": ctx.time,
                "flow": ctx.flow,
                "ufrag": own,  # this description's own: an answer names the answerer's alone
                "setup": rec.setup or next((m.setup for m in rec.media if m.setup), None),
                "fingerprint": rec.fingerprint
                or next((m.fingerprint for m in rec.media if m.fingerprint), None),
                "media": [{"kind": m.kind, "port": m.port, "ssrcs": m.ssrcs} for m in rec.media],
                "candidates": sum(len(m.candidates) for m in rec.media),
            }
        )

    def _own_ufrags(self, session: IceSession, own: list[str], ctx: FlowContext) -> None:
        """An SDP's (or trickle message's) own ufrags: the first SDP's is the offerer's; one that
        replaces the ufrag of an earlier description sent the same way is that agent's restart,
        and one sent the other way is the other agent's."""
        ev = session.evidence
        for u in own:
            ev.saw(u, ctx.frame, 0)
            if u not in ev.offered and len(ev.offered) < MAX_UFRAGS:
                ev.offered.append(u)
        sent = self.sdp_ufrags.get((ctx.flow, ctx.from_client))
        back = self.sdp_ufrags.get((ctx.flow, not ctx.from_client))
        for u in own:
            if sent is not None:
                ev.relate(u, sent, same=True)
            if back is not None:
                ev.relate(u, back, same=False)
        if len(self.sdp_ufrags) < MAX_SESSIONS or (ctx.flow, ctx.from_client) in self.sdp_ufrags:
            self.sdp_ufrags[(ctx.flow, ctx.from_client)] = own[0]

    def _candidate(
        self, session: IceSession, text: str, ufrag: str | None, source: str, ctx: FlowContext
    ) -> None:
        cand = parse_candidate(text if text.startswith(("candidate:", "a=")) else f"candidate:{text}")
        if cand is None:
            return
        session.add_candidate(Seen(cand, source, ctx.frame, ctx.time, ufrag))
        self.nat.candidate(cand, ufrag, ctx.frame, ctx.time)

    def _trickle(self, rec: TrickleRecord, ctx: FlowContext) -> None:
        """A trickled candidate (RFC 8838): the session of its ufrag, else of the last SDP on its
        signaling connection, and the party that sent SDP the same way."""
        ufrag = rec.ufrag
        session: IceSession | None = None
        if isinstance(ufrag, str) and ufrag in self.by_ufrag:
            session = self._find(self.by_ufrag[ufrag])
        else:
            prior = self.last_sdp.get(ctx.flow)
            session = None if prior is None else self._find(prior[1])
            ufrag = self.sdp_ufrags.get((ctx.flow, ctx.from_client))
        if session is None:
            if not isinstance(ufrag, str):
                return
            session = self._session_for({ufrag}, ctx)
            if session is None:
                return
        session.seen(ctx)
        if isinstance(ufrag, str):
            self._own_ufrags(session, [ufrag], ctx)
        for text in rec.candidates[:MAX_CANDIDATES]:
            self._candidate(session, text, ufrag, "sdp-file" if ctx.flow < 0 else "trickle", ctx)

    # -- STUN: checks, STUN servers, TURN -------------------------------------------------------

    def _stun(self, rec: StunRecord, ctx: FlowContext, size: int) -> None:
        relay = self._relayed(ctx)
        if relay is None:  # what a TURN server relays says nothing of a NAT
            self.nat.stun(rec, ctx)
        if rec.method == BINDING:
            self._binding(rec, ctx, size)
        elif rec.method in (ALLOCATE, REFRESH, CREATE_PERMISSION, CHANNEL_BIND, SEND, DATA):
            self._turn(rec, ctx, size)

    def _remember(self, txid: bytes, tx: Transaction) -> None:
        if len(self.transactions) >= MAX_TRANSACTIONS:
            del self.transactions[next(iter(self.transactions))]
        self.transactions[txid] = tx

    def _binding(self, rec: StunRecord, ctx: FlowContext, size: int) -> None:
        a = rec.attributes
        username = a.get("username")
        src, dst, relay = self._ends(ctx)
        leg = (ctx.flow, ctx.from_client)
        tx = self.transactions.get(rec.transaction_id)
        if rec.cls == REQUEST and not (isinstance(username, str) and ":" in username):
            if relay is None:  # no USERNAME: not a check (RFC 8445 7.2.2) but a STUN server's
                if len(self.server_requests) >= MAX_SERVER_TRANSACTIONS:
                    del self.server_requests[next(iter(self.server_requests))]
                self.server_requests[rec.transaction_id] = (str(ctx.src), str(ctx.dst))
            return
        if rec.cls != REQUEST and tx is None and rec.transaction_id in self.server_requests:
            socket, server = self.server_requests.pop(rec.transaction_id)
            mapped = a.get("xor_mapped") or a.get("mapped")
            if rec.cls == SUCCESS and isinstance(mapped, tuple):
                self._reflexive(socket, _address(mapped), server, ctx)
            return
        session: IceSession | None
        if tx is not None:
            session = self._find(tx.session)
            if rec.cls == REQUEST:
                copy = tx.request_leg != leg
            else:
                copy = tx.response_leg is not None and tx.response_leg != leg
                if tx.response_leg is None:
                    tx.response_leg = leg
            self.by_flow[ctx.flow] = session
            session.seen(ctx)
            self._leg(session, ctx, size)
            if copy:  # the same check (or answer) on a later leg: counted where first seen
                return
            pair = session.pairs.get(tx.pair)
        else:
            if rec.cls == REQUEST:
                assert isinstance(username, str)
                session = self._session_for(self._restarted(set(username.split(":", 1)), ctx), ctx)
                if session is None:
                    return  # past MAX_SESSIONS
                self.by_flow[ctx.flow] = session
            else:
                session = self._flow_session(ctx.flow)
                if session is None:
                    return  # an answer to nothing we followed
            session.seen(ctx)
            self._leg(session, ctx, size)
            local, remote = (src, dst) if rec.cls == REQUEST else (dst, src)
            key = (ctx.flow, local, remote)
            pair = session.pairs.get(key)
            if pair is None:
                if len(session.pairs) >= MAX_PAIRS:
                    session.limit(
                        "ice.pairs_limit",
                        "ice",
                        f"checks on more than {MAX_PAIRS} flows (MAX_PAIRS): "
                        "those past it have no pair of their own",
                        ctx.frame,
                    )
                    if rec.cls in (REQUEST, SUCCESS):
                        session.mark("ice" if rec.cls == REQUEST else "ice_connected", ctx)
                    return
                via = relay.via if relay is not None else "udp"
                pair = session.pairs[key] = Pair(ctx.flow, local, remote, via, first_frame=ctx.frame)
                if len(self.pair_ends) < MAX_TRANSACTIONS:
                    self.pair_ends.setdefault((str(ctx.src), str(ctx.dst)), (session, key))
            if rec.cls == REQUEST:
                nominating = bool(a.get("use_candidate"))
                self._remember(rec.transaction_id, Transaction(session, key, leg, nominating=nominating))
        if pair is None:
            return
        if rec.cls == REQUEST:
            self._check(session, pair, rec, ctx, relay)
        elif rec.cls == SUCCESS:
            pair.responses += 1
            sent = pair.pending.pop(rec.transaction_id, None)
            if sent is not None and len(pair.rtt_ms) < RTT_KEPT:
                pair.rtt_ms.append(round((ctx.time - sent) * 1000, 3))
            if pair.last_success_time is not None:
                gap = ctx.time - pair.last_success_time
                if gap > pair.consent_gap[0]:
                    pair.consent_gap = (gap, ctx.frame)
            pair.last_success_time, pair.last_success_frame = ctx.time, ctx.frame
            session.mark("ice_connected", ctx)
            if pair.nominated:
                session.mark("nominated", ctx)
                pair.nominated_frame = pair.nominated_frame or ctx.frame
                if tx is None or tx.nominating:  # the latest nomination wins (renomination)
                    pair.last_nominated_frame = ctx.frame
                if session.selected_at is None:
                    session.selected_at = (ctx.time, ctx.frame)
        elif rec.cls == ERROR:
            pair.errors += 1
            code = a.get("error_code")
            if pair.error is None:
                pair.error = f"{code} {a.get('error_reason', '')}".strip()
                pair.error_frame = ctx.frame
            if code == 487:
                _add(
                    session.findings,
                    _finding(
                        "ice",
                        "ice.role_conflict",
                        "487 Role Conflict: both agents claimed the same role",
                        ctx.frame,
                    ),
                )

    def _restarted(self, ufrags: set[str], ctx: FlowContext) -> set[str]:
        """A check whose ufrags are all new, on the 5-tuple of a session's checks, is that
        session's ICE restart (RFC 8445 section 9: both agents take new ufrags, the candidates
        may stay): it joins the session, if the session has room for them."""
        if any(u in self.by_ufrag for u in ufrags):
            return ufrags
        current = self._flow_session(ctx.flow)
        if current is None or not current.ufrags or len(current.ufrags) + len(ufrags) > MAX_UFRAGS:
            return ufrags
        return ufrags | {min(current.ufrags)}

    def _check(
        self, session: IceSession, pair: Pair, rec: StunRecord, ctx: FlowContext, relay: RelayLeg | None
    ) -> None:
        """A connectivity check on its first leg: the pair's counts, and whose ufrag and socket
        it shows (USERNAME is "RFRAG:LFRAG": the sender's own ufrag is the second)."""
        a = rec.attributes
        receiver, sender = str(a["username"]).split(":", 1)
        session.mark("ice", ctx)
        pair.requests += 1
        pair.last_request, pair.last_request_time = ctx.frame, ctx.time
        pair.sender_ufrag = pair.sender_ufrag or sender
        if isinstance(a.get("priority"), int):
            pair.priority_attribute = int(str(a["priority"]))
        if rec.transaction_id not in pair.pending:
            if len(pair.pending) >= MAX_PENDING_CHECKS:
                del pair.pending[next(iter(pair.pending))]  # the oldest: its answer gets no RTT
                session.limit(
                    "ice.transactions_limit",
                    "ice",
                    f"more than {MAX_PENDING_CHECKS} unanswered checks on one pair (MAX_PENDING_CHECKS): "
                    "the oldest are forgotten (a late answer to one has no round-trip time)",
                    ctx.frame,
                )
            pair.pending[rec.transaction_id] = ctx.time
        if "role" in a:
            session.roles.add(str(a["role"]))
            session.evidence.roles[sender] = str(a["role"])
        if a.get("use_candidate"):
            pair.nominated = True
        ev = session.evidence
        ev.saw(sender, ctx.frame, 0)
        ev.saw(receiver, ctx.frame, 1)
        ev.relate(sender, receiver, same=False)
        ev.address(sender, pair.local)
        # The socket that sent it is the sender's too, unless a TURN server sent this copy.
        if relay is None or not relay.from_server:
            socket = str(ctx.src)
            ev.address(sender, socket)
            before = ev.sockets.get(socket)
            if before is not None and before != sender:
                ev.relate(before, sender, same=True)
            if before != sender and (before is not None or len(ev.sockets) < MAX_ADDRESSES):
                ev.sockets[socket] = sender

    def _reflexive(self, socket: str, mapped: str, server: str, ctx: FlowContext) -> None:
        kept = self.reflexive.get(socket)
        if kept is None:
            if len(self.reflexive) >= MAX_REFLEXIVE_SOCKETS:
                return
            kept = self.reflexive[socket] = []
        if len(kept) < MAX_REFLEXIVE and all(k[0] != mapped or k[1] != server for k in kept):
            kept.append((mapped, server, ctx.frame, ctx.time))

    def _icmp(self, rec: IcmpError, ctx: FlowContext) -> None:
        """An ICMP error quoting a check: the transaction id in the quoted payload (bytes 8 to 20
        of the STUN header) names it; else the quoted datagram's endpoints name the pair."""
        payload = rec.quoted_payload
        txid = bytes(payload[8:20]) if len(payload) >= 20 else b""
        what = diagnosis.icmp_text(rec)
        tx = self.transactions.get(txid) if txid else None
        if tx is not None:
            session = self._find(tx.session)
            pair = session.pairs.get(tx.pair)
        else:
            src, dst = rec.quoted_src, rec.quoted_dst
            found = self._pair_by_ends(src, dst)
            if found is None:
                return
            session, pair = found
        session.seen(ctx)
        if pair is None:
            if len(session.icmp) < MAX_FINDINGS:
                session.icmp.append((what, ctx.frame))
            return
        if pair.icmp is None:
            pair.icmp, pair.icmp_frame = what, ctx.frame

    def _pair_by_ends(self, src: str, dst: str) -> tuple[IceSession, Pair | None] | None:
        """The pair whose checks went from `src` to `dst`."""
        found = self.pair_ends.get((src, dst))
        if found is None:
            return None
        session = self._find(found[0])
        return session, session.pairs.get(found[1])

    def _turn(self, rec: StunRecord, ctx: FlowContext, size: int) -> None:
        client, server = (
            (str(ctx.src), str(ctx.dst))
            if rec.cls in (REQUEST, INDICATION) and rec.method != DATA
            else (str(ctx.dst), str(ctx.src))
        )
        key = (ctx.flow, client)
        alloc = self.allocations.get(key)
        a = rec.attributes
        if alloc is None:
            if len(self.allocations) >= MAX_ALLOCATIONS:
                if self.allocations_limit is None:
                    self.allocations_limit = ctx.frame
                return
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
            self.alloc_by_flow.setdefault(ctx.flow, alloc)
        if rec.cls == REQUEST:
            if rec.transaction_id not in alloc.pending and len(alloc.pending) >= MAX_TURN_PENDING:
                del alloc.pending[next(iter(alloc.pending))]  # the oldest: its answer is read alone
                alloc.limit(
                    "turn.transactions_limit",
                    f"more than {MAX_TURN_PENDING} requests awaiting an answer (MAX_TURN_PENDING): "
                    "the oldest are forgotten",
                    ctx.frame,
                )
            alloc.pending[rec.transaction_id] = (
                rec.method,
                a.get("xor_peers") or a.get("xor_peer"),
                a.get("username"),
            )
            channel, peer = a.get("channel"), a.get("xor_peer")
            if rec.method == CHANNEL_BIND and isinstance(channel, int) and isinstance(peer, tuple):
                if channel in alloc.channels or len(alloc.channels) < MAX_CHANNELS:
                    alloc.channels[channel] = _address(peer)
                else:
                    alloc.limit(
                        "turn.channels_limit",
                        f"more than {MAX_CHANNELS} channels (MAX_CHANNELS): the later ones are not listed",
                        ctx.frame,
                    )
            return
        if rec.cls in (INDICATION,) and rec.method in (SEND, DATA):
            peer = a.get("xor_peer")
            ep = _address(peer) if isinstance(peer, tuple) else None
            toward = rec.method == SEND
            self.relay = RelayLeg(
                ctx.frame,
                ctx.flow,
                "send-indication" if toward else "data-indication",
                alloc.relayed if toward else ep,
                ep if toward else alloc.relayed,
                size,
                not toward,
            )
            if isinstance(peer, tuple):
                expiry = alloc.permissions.get(str(peer[0]))
                if expiry is not None and ctx.time > expiry:
                    _add(
                        alloc.findings,
                        _finding(
                            "turn",
                            "turn.permission_expired",
                            f"data for {peer[0]} after its permission expired",
                            ctx.frame,
                        ),
                    )
            return
        method, peers, username = alloc.pending.pop(rec.transaction_id, (rec.method, None, None))
        if rec.cls == ERROR:
            code = a.get("error_code")
            if len(alloc.errors) < MAX_TURN_ERRORS:
                alloc.errors.append(f"{code} {a.get('error_reason', '')}".strip())
            else:
                alloc.limit(
                    "turn.errors_limit",
                    f"more than {MAX_TURN_ERRORS} error answers (MAX_TURN_ERRORS): "
                    "the later ones are not listed",
                    ctx.frame,
                )
            if code == 401 and method == ALLOCATE:
                alloc.unauthorized += 1
                if username is not None and not any(
                    f["code"] == "turn.credentials_refused" for f in alloc.findings
                ):
                    # The first 401 is the nonce dance (RFC 8656 9.2); one to a request that
                    # carried USERNAME and MESSAGE-INTEGRITY refuses the credentials themselves.
                    _add(
                        alloc.findings,
                        _finding(
                            "turn",
                            "turn.credentials_refused",
                            f"Allocate with username {username!r} answered 401: credentials refused",
                            ctx.frame,
                        ),
                    )
                if alloc.unauthorized > MAX_401 and alloc.relayed is None:
                    _add(
                        alloc.findings,
                        _finding(
                            "turn",
                            "turn.401_loop",
                            f"{alloc.unauthorized} Allocate requests answered 401: credentials refused",
                            ctx.frame,
                        ),
                    )
            elif code == 438:
                _add(alloc.findings, _finding("turn", "turn.stale_nonce", "438 Stale Nonce", ctx.frame))
            return
        if rec.cls == SUCCESS:
            lifetime = a.get("lifetime")
            if method == ALLOCATE:
                relayed, mapped = a.get("xor_relayed"), a.get("xor_mapped")
                if isinstance(relayed, tuple):
                    alloc.relayed = _address(relayed)
                    alloc.relayed_frame = ctx.frame
                    if len(self.relays) < MAX_ALLOCATIONS:
                        self.relays.setdefault(alloc.relayed, alloc)
                if isinstance(mapped, tuple):
                    alloc.mapped = _address(mapped)
            if method in (ALLOCATE, REFRESH) and isinstance(lifetime, int):
                alloc.lifetime = lifetime
                # A Refresh with lifetime 0 is the client deleting the allocation, not an expiry.
                alloc.expires = ctx.time + lifetime if lifetime else None
                alloc.expires_frame = ctx.frame
                alloc.released = lifetime == 0
            if method in (CREATE_PERMISSION, CHANNEL_BIND):
                for peer in peers if isinstance(peers, list) else [peers] if isinstance(peers, tuple) else []:
                    ip = str(peer[0])
                    if ip in alloc.permissions or len(alloc.permissions) < MAX_PERMISSIONS:
                        alloc.permissions[ip] = ctx.time + PERMISSION_LIFETIME
                    else:
                        alloc.limit(
                            "turn.permissions_limit",
                            f"permissions for more than {MAX_PERMISSIONS} peers (MAX_PERMISSIONS): "
                            "the later ones are not followed",
                            ctx.frame,
                        )

    def _dtls(self, rec: DtlsRecord, ctx: FlowContext, size: int) -> None:
        session = self._flow_session(ctx.flow)
        if session is None:
            return
        session.seen(ctx)
        self._leg(session, ctx, size)
        sender = self._ends(ctx)[0]  # through TURN: the relayed address, never the server's
        session.dtls_frame = ctx.frame
        d = session.dtls
        if 1 in rec.handshake_types:
            session.mark("dtls", ctx)
            d.setdefault("client", sender)
        if 2 in rec.handshake_types:
            hello = rec.facts.get("server_hello")
            if isinstance(hello, dict):
                d["version"] = hello.get("version")
                d["srtp_profiles"] = hello.get("srtp_profiles")
        if "certificates" in rec.facts:
            certs = rec.facts["certificates"]
            seen = d.setdefault("fingerprints", {})
            if isinstance(certs, list) and certs and isinstance(seen, dict):
                seen.setdefault(sender, {k: v for k, v in certs[0].items() if k.startswith("sha-")})
                session.certificate_frames.setdefault(sender, ctx.frame)
        if "alert" in rec.facts:
            d["alert"] = rec.facts["alert"]
            alert = rec.facts["alert"]
            if _alert_severity(alert) != "warn" and session.ended is None:
                session.ended = ctx.time  # close_notify or fatal: the call is over
            _add(
                session.findings,
                _finding("dtls", "dtls.alert", f"alert {alert}", ctx.frame, _alert_severity(alert)),
            )
        if 20 in rec.content_types:  # ChangeCipherSpec from both sides ends a DTLS 1.2 handshake
            ccs = d.setdefault("change_cipher_spec_from", [])
            if isinstance(ccs, list) and sender not in ccs:
                ccs.append(sender)
                if len(ccs) == 2:
                    session.mark("dtls_done", ctx)
        if 23 in rec.content_types:
            session.mark("dtls_done", ctx)
            session.data_records += 1

    def _datachannel(self, msg: UserMessage, ctx: FlowContext) -> None:
        """The `datachannel` phase: from the first DATA_CHANNEL_OPEN to its ACK
        (`datachannel_open`), or at once on the first message of a pre-negotiated stream."""
        session = self._flow_session(ctx.flow)
        if session is None or msg.ppid not in sctp_names.WEBRTC_PPIDS:
            return
        session.seen(ctx)
        key = (ctx.flow, msg.stream_id)
        dcep = msg.dcep
        if dcep is not None and dcep.message_type == sctp_names.DATA_CHANNEL_ACK:
            if session.channels.get(key) is not None:
                session.channels[key] = None
                session.mark("datachannel_open", ctx)
            return
        opening = dcep is not None and dcep.message_type == sctp_names.DATA_CHANNEL_OPEN
        if msg.ppid == sctp_names.PPID_DCEP and not opening:
            return
        if key in session.channels and not opening:
            return
        if key not in session.channels and len(session.channels) >= MAX_DATA_CHANNELS:
            session.limit(
                "datachannel.channels_limit",
                "datachannel",
                f"more than {MAX_DATA_CHANNELS} data channels (MAX_DATA_CHANNELS): "
                "the later ones are not followed",
                ctx.frame,
            )
            return
        session.data_channels += 1
        session.mark("datachannel", ctx)
        if opening and dcep is not None:
            session.channels[key] = (ctx.frame, dcep.label)
        else:  # a pre-negotiated channel (RFC 8832 section 1): open from its first message
            session.channels[key] = None
            session.mark("datachannel_open", ctx)

    def _sctp(self, rec: SctpRecord, ctx: FlowContext) -> None:
        """A reset stream closes its channel (RFC 8831 section 6.7): an OPEN still unanswered is
        no longer waited for. What an ABORT or a reset says is the datachannels report's finding,
        per channel; the session keeps the phase and an OPEN never acknowledged."""
        session = self._flow_session(ctx.flow)
        if session is None or not rec.checksum_ok:
            return
        session.seen(ctx)
        if rec.reset_streams is not None:
            for key in [k for k in session.channels if k[0] == ctx.flow]:
                if not rec.reset_streams or key[1] in rec.reset_streams:
                    del session.channels[key]

    # -- the report ---------------------------------------------------------------------------

    def rows(self) -> list[dict[str, object]]:
        """A row per ICE session, then one per TURN allocation. The analysis is left as it was
        (rows share nothing it goes on changing), so `snapshot()` is this."""
        out: list[dict[str, object]] = []
        live = [s for s in self.sessions if s.merged_into is None]
        flows: dict[int, set[int]] = {id(s): set() for s in live}
        wire, turn_flows = self._wire()
        # The flows a session's checks, and what they carried, used:
        for fid, flow_owner in self.by_flow.items():
            flows[id(self._find(flow_owner))].add(fid)
        claimed: set[tuple[object, ...]] = set()
        for n, s in enumerate(live):
            findings = [AnalysisFinding(**f) for f in s.findings]  # graded below: copies
            if s is live[-1] and self.sessions_limit is not None:
                message = (
                    f"more than {MAX_SESSIONS} ICE sessions (MAX_SESSIONS): the later ones are not followed"
                )
                findings.append(_finding("ice", "ice.sessions_limit", message, self.sessions_limit, "warn"))
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
            keys = diagnosis.session_keys(s, wire, turn_flows, self.nat)
            claimed.update(diagnosis.nat_key(r) for r in keys["nat"])  # type: ignore[attr-defined]
            owner: dict[str, str] = keys.pop("_owner")  # type: ignore[assignment]
            ice_findings: list[AnalysisFinding] = keys.pop("_findings")  # type: ignore[assignment]
            directions = {owner.get(m.src, m.src) for m in s.media.values()}
            if len(directions) == 1:
                findings.append(
                    _finding(
                        "media", "media.one_way", "media flowed in one direction only", s.frames.get("media")
                    )
                )
            fingerprints = s.dtls.get("fingerprints")
            dtls = {k: _copied(v) for k, v in s.dtls.items()}
            ufrags_of = {
                str(p["name"]): p.get("ufrags") or [p.get("ufrag")]
                for p in keys["parties"]  # type: ignore[attr-defined]
            }
            promised_any = s.promised()
            if isinstance(fingerprints, dict) and promised_any:
                for endpoint, hashes in fingerprints.items():
                    party = owner.get(endpoint)
                    # the sender's own SDP's promises; a party whose SDP is not in the capture
                    # promised nothing to check against; a sender of no known party: any SDP's
                    promised = (
                        {x for u in ufrags_of.get(party) or () for x in s.promised_by.get(str(u), ())}
                        if party in ufrags_of
                        else promised_any
                    )
                    if not promised:
                        continue
                    dtls["fingerprint_checked"] = True
                    if not any(isinstance(hashes, dict) and hashes.get(alg) == fp for alg, fp in promised):
                        who = f" ({owner[endpoint]})" if endpoint in owner else ""
                        findings.append(
                            _finding(
                                "dtls",
                                "dtls.fingerprint_mismatch",
                                f"certificate of {endpoint}{who} is not the one SDP promised",
                                s.certificate_frames.get(endpoint),
                            )
                        )
            if isinstance(fingerprints, dict):  # by party: never the TURN server's address
                dtls["fingerprints"] = {owner.get(ep, ep): dict(h) for ep, h in fingerprints.items()}
            for flow_stream, pending in s.channels.items():
                if pending is not None:
                    findings.append(
                        _finding(
                            "datachannel",
                            "datachannel.open_unacked",
                            f"DATA_CHANNEL_OPEN for {pending[1]!r} on stream {flow_stream[1]} "
                            "was never acknowledged",
                            pending[0],
                        )
                    )
            for f in ice_findings:  # within MAX_FINDINGS, as the row's own are
                _add(findings, f)
            reached = [p for p in PHASES if p in s.phases]
            failed = _failed(findings)
            if failed is not None:
                keys["diagnosis"]["summary"] = diagnosis.failed_summary(failed, findings)  # type: ignore[index]
            out.append(
                {
                    "id": n,
                    "ufrags": sorted(s.ufrags),
                    "phases": {p: {"time": s.phases[p], "frame": s.frames[p]} for p in reached},
                    "failed_phase": failed,
                    "flows": sorted(
                        {int(str(sdp["flow"])) for sdp in s.sdp if int(str(sdp["flow"])) >= 0}
                        | {key[0] for key in s.pairs}
                        | flows[id(s)]
                    ),
                    "signaling": list(s.sdp),
                    "ice_roles": sorted(s.roles),
                    "dtls": dtls
                    | {
                        "state": "done"
                        if "dtls_done" in s.phases
                        else "started"
                        if "dtls" in s.phases
                        else "none"
                    },
                    "data_records": s.data_records,
                    "data_channels": s.data_channels,
                    **keys,
                    "findings": findings,
                }
            )
        allocations = list(self.allocations.values())
        for alloc in allocations:
            findings = [AnalysisFinding(**f) for f in alloc.findings]
            if alloc is allocations[-1] and self.allocations_limit is not None:
                message = (
                    f"more than {MAX_ALLOCATIONS} TURN allocations (MAX_ALLOCATIONS): "
                    "the later ones are not followed"
                )
                findings.append(
                    _finding("turn", "turn.allocations_limit", message, self.allocations_limit, "warn")
                )
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
                    "mapped": alloc.mapped,
                    "channels": {f"0x{k:04x}": v for k, v in alloc.channels.items()},
                    "errors": list(alloc.errors),
                    "failed_phase": _failed(findings),
                    "findings": findings,
                }
            )
        out.extend(self._nat_rows(len(out), claimed))
        return out

    def _nat_rows(self, first_id: int, claimed: set[tuple[object, ...]]) -> list[dict[str, object]]:
        """A row (`kind: nat`) per NAT verdict no session shows: a socket that only asked STUN
        servers (RFC 5780 discovery, a client's keepalives), judged all the same. The observer's
        limit warnings go on the first of them (or on a row of their own)."""
        rows: list[dict[str, object]] = []
        for verdict in self.nat.verdicts():
            if diagnosis.nat_key(verdict) in claimed:
                continue
            if verdict.get("inside") is None and verdict.get("nat_type") == "unknown":
                continue  # seen from outside with nothing to judge
            findings: list[AnalysisFinding] = []
            if verdict.get("nat_type") == "symmetric":
                evidence = verdict.get("evidence")
                text = "; ".join(str(e) for e in evidence[:2]) if isinstance(evidence, list) else ""
                mappings = verdict.get("mappings")
                frames = [
                    int(m["frame"])
                    for m in (mappings if isinstance(mappings, list) else [])
                    if isinstance(m, dict) and isinstance(m.get("frame"), int)
                ]
                who = verdict.get("inside") or "a socket"
                message = f"{who} is behind a symmetric NAT: {text}".rstrip(": ")
                findings.append(_finding("ice", "nat.symmetric", message, max(frames, default=None)))
            rows.append({"id": first_id + len(rows), "kind": "nat", **verdict, "findings": findings})
        limits = self.nat.findings()
        if limits:
            if not rows:
                rows.append({"id": first_id, "kind": "nat", "findings": []})
            rows[0]["findings"] = [*rows[0]["findings"], *limits]  # type: ignore[misc]
        return rows

    def _wire(self) -> tuple[ice.Wire, dict[int, str]]:
        """What every session row reads of the whole capture (built once per `rows()`): the
        allocations by relayed address and by client, STUN servers' answers, mDNS names; and
        each allocation's flow -> its client."""
        relays = {relayed: (a.client, a.mapped, a.relayed_frame) for relayed, a in self.relays.items()}
        clients: dict[str, list[str]] = {}
        for relayed, a in self.relays.items():
            clients.setdefault(a.client, []).append(relayed)
        wire = ice.Wire(relays, clients, self.reflexive, self.mdns, self.last_time)
        return wire, {a.flow: a.client for a in self.allocations.values()}

    def snapshot(self) -> list[dict[str, object]]:
        """The rows as if the capture ended now (`Analysis`): `rows()` changes nothing."""
        return self.rows()


def _address(address: tuple[object, ...]) -> str:
    """ "ip:port" of a STUN address attribute's (ip, port) (XOR-MAPPED, XOR-PEER, XOR-RELAYED)."""
    return str(Endpoint(str(address[0]), int(str(address[1]))))


def _copied(value: object) -> object:
    """A row's copy of a value the analysis may still change in place (a dict of fingerprints
    that grows, the list of endpoints that sent ChangeCipherSpec)."""
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value
