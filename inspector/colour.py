"""Packet colouring rules, Wireshark's View > Colouring Rules: the first rule a packet matches
gives its row a style.

The user's rules (from the config file, display filters) are tried first, then the defaults below.
The result of the decoding pass is one uint8 per packet (0: no rule, k: rule k-1 of `rules`), never
a Python object a packet, so a million packets cost a megabyte.

The default rules carry their display-filter text (what the user reads in the help and could copy
into a rule of their own) but are evaluated natively over what the pass already holds (findings,
PDU records, the index's transport, flags and flows): building every packet's field map to run
filters would cost more than the pass itself. User rules do go through the display-filter engine,
on the packets the pass decodes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from protoscope.decoders.dtls.records import DtlsRecord
from protoscope.decoders.http2.records import FrameRecord
from protoscope.decoders.registry import Registry
from protoscope.decoders.rtp.packets import RtpRecord
from protoscope.decoders.stun.messages import StunRecord

from .config import ColourRule
from .filter import FilterError, Predicate, compile_filter, packet_fields
from .session import PacketDecode, Session

MAX_RULES = 255
"""Rules a uint8 column can name (0 is "none")."""
TCP_RST = 0x04
ALERT = 21
"""TLS/DTLS ContentType alert (RFC 6347 section 4.1)."""
STUN_CLASS_ERROR = 0x0110
"""The class bits of a STUN message type (RFC 5389 section 6): both set is an error response."""

ERRORS = ColourRule("Errors", '_ws.expert.severity == "error"', "#f78787 on #12272e")
"""Wireshark's "Checksum Errors"/"Bad TCP" colours, for any error finding."""
TCP_PROBLEMS = ColourRule("TCP problems", "tcp.analysis.flags || tcp.flags.reset == 1", "#fffc9c on #a40000")
"""Wireshark's "TCP RST" colours: resets, and our tcp.* findings (a gap in the stream)."""
GRPC_ERROR = ColourRule("gRPC error status", "grpc.status != 0", "black on #ffc0cb")
STUN_ERROR = ColourRule("STUN error response", "(stun.type & 0x0110) == 0x0110", "black on #ffd79b")
DTLS_ALERT = ColourRule("DTLS alert", "dtls.alert_message.level", "black on #ffb3b3")
RTP_LOSS = ColourRule("RTP loss", "rtp.seq_gap", "black on #fff3a0")
"""A packet whose RTP sequence number is not its SSRC's previous one plus one (RFC 3550 A.1)."""

# Wireshark's rules for ordinary traffic, after the problem rules and in Wireshark's order
# (its default colorfilters: HTTP, TCP SYN/FIN, TCP, UDP), in its colours (dark text on light).
HTTP = ColourRule("HTTP", "http || tcp.port == 80 || http2", "#12272e on #e4ffc7")
TCP_SYN_FIN = ColourRule("TCP SYN/FIN", "tcp.flags & 0x02 || tcp.flags.fin == 1", "#12272e on #a0a0a0")
TCP = ColourRule("TCP", "tcp", "#12272e on #e7e6ff")
UDP = ColourRule("UDP", "udp", "#12272e on #daeeff")

DEFAULT_RULES: tuple[ColourRule, ...] = (
    ERRORS,
    TCP_PROBLEMS,
    GRPC_ERROR,
    STUN_ERROR,
    DTLS_ALERT,
    RTP_LOSS,
    HTTP,
    TCP_SYN_FIN,
    TCP,
    UDP,
)
TCP_FIN = 0x01
TCP_SYN = 0x02
IPPROTO_TCP = 6
IPPROTO_UDP = 17
HTTP_PROTOCOLS = frozenset({"http", "http2", "grpc"})
"""PDU protocols Wireshark's HTTP rule covers (gRPC rides on HTTP/2)."""


def _grpc_error(rec: FrameRecord) -> bool:
    if rec.headers is None:
        return False
    for h in rec.headers:
        if h.name == "grpc-status":
            return bool(h.value.strip() != "0")
    return False


def _stun_error(rec: StunRecord) -> bool:
    return bool(rec.type & STUN_CLASS_ERROR == STUN_CLASS_ERROR)


def _dtls_alert(rec: DtlsRecord) -> bool:
    """An alert record (content type 21), encrypted or not, as Wireshark's dtls.alert_message."""
    return bool(ALERT in rec.content_types)


RECORD_TESTS: dict[type, tuple[str, Callable[[Any], bool]]] = {
    FrameRecord: (GRPC_ERROR.name, _grpc_error),
    StunRecord: (STUN_ERROR.name, _stun_error),
    DtlsRecord: (DTLS_ALERT.name, _dtls_alert),
}
"""Default rules decided by one PDU's record, by the record's type (one dict lookup a PDU)."""


@dataclass(frozen=True, slots=True)
class _UserRule:
    code: int
    matches: Predicate


class Colouring:
    """The rules of one decoding pass and the per-packet state some of them need (RTP sequence)."""

    def __init__(self, user_rules: Sequence[ColourRule] = (), registry: Registry | None = None) -> None:
        self.problems: list[str] = []
        """User rules whose filter does not parse (they are left out)."""
        self.rules: list[ColourRule] = []
        user: list[_UserRule] = []
        for rule in user_rules[: MAX_RULES - len(DEFAULT_RULES)]:
            try:
                matches = compile_filter(rule.filter, registry)
            except FilterError as exc:
                self.problems.append(f"colour rule {rule.name!r}: {exc}")
                continue
            self.rules.append(rule)
            user.append(_UserRule(len(self.rules), matches))
        self._user = user
        self.rules.extend(DEFAULT_RULES)
        self.code = {rule.name: k + 1 for k, rule in enumerate(self.rules) if k >= len(user)}
        """Default rule name -> its code in the colour column."""
        self._records = {kind: (self.code[name], test) for kind, (name, test) in RECORD_TESTS.items()}
        self._rtp_loss = self.code[RTP_LOSS.name]
        self._http = self.code[HTTP.name]
        self._rtp_next: dict[tuple[int, int], int] = {}
        """(flow, SSRC) -> the sequence number expected next."""

    def styles(self) -> list[str]:
        """Style of each code: index 0 is "no rule"."""
        return ["", *(rule.style for rule in self.rules)]

    def packet(self, session: Session, pd: PacketDecode, flow: int) -> int:
        """The code of the first rule the decoded packet `pd` matches (0: none); findings and TCP
        flags are applied after the pass (`finish`), where they are all known."""
        best = 0
        if self._user:
            fields = packet_fields(session, pd)
            for rule in self._user:
                if rule.matches(fields):
                    return rule.code
        for pdu in pd.pdus:
            if pdu.protocol in HTTP_PROTOCOLS:
                best = _better(best, self._http)
            rec = pdu.record
            kind = type(rec)
            if isinstance(rec, RtpRecord):
                key = (flow, rec.ssrc)
                expected = self._rtp_next.get(key)
                self._rtp_next[key] = (rec.seq + 1) & 0xFFFF
                if expected is not None and rec.seq != expected:
                    best = _better(best, self._rtp_loss)
                continue
            test = self._records.get(kind)
            if test is not None and test[1](rec):
                best = _better(best, test[0])
        return best

    def finish(
        self,
        colours: npt.NDArray[np.uint8],
        tcp_flags: npt.NDArray[np.uint8],
        findings: Iterable[tuple[int, str, str]],
        transport: npt.NDArray[np.uint8] | None = None,
        port80: npt.NDArray[np.bool_] | None = None,
    ) -> None:
        """Apply the rules that need the whole pass: `findings` as (0-based packet, severity,
        code), TCP resets from the index's flags column, and, on the packets no rule coloured,
        the ordinary traffic rules from `transport` (the index's IP protocol column) and
        `port80` (packets of a TCP conversation on port 80), a few array operations."""
        errors, tcp = self.code[ERRORS.name], self.code[TCP_PROBLEMS.name]
        for i, severity, code in findings:
            if i < 0:
                continue
            if severity == "error":
                colours[i] = _better(int(colours[i]), errors)
            elif code.startswith("tcp."):
                colours[i] = _better(int(colours[i]), tcp)
        reset = (tcp_flags & TCP_RST) != 0
        reset &= (colours == 0) | (colours > tcp)
        colours[reset] = tcp
        if transport is None:
            return
        # The last four rules: a packet one of them colours has no colour yet (nothing earlier).
        is_tcp = transport == IPPROTO_TCP
        if port80 is not None:
            colours[(colours == 0) & is_tcp & port80] = self._http
        syn_fin = is_tcp & ((tcp_flags & (TCP_SYN | TCP_FIN)) != 0)
        colours[(colours == 0) & syn_fin] = self.code[TCP_SYN_FIN.name]
        colours[(colours == 0) & is_tcp] = self.code[TCP.name]
        colours[(colours == 0) & (transport == IPPROTO_UDP)] = self.code[UDP.name]


def _better(current: int, code: int) -> int:
    """The earlier rule of the two (0 is none)."""
    return code if current == 0 or code < current else current
