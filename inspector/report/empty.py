"""Why a report has no rows, said the same way by the viewer's empty views and the text reports."""

from __future__ import annotations

from collections.abc import Iterable

EMPTY_REASONS: dict[str, tuple[str, frozenset[str]]] = {
    "calls": ("no gRPC calls", frozenset({"http2", "grpc"})),
    "streams": ("no RTP streams", frozenset({"rtp", "rtcp"})),
    "sessions": ("no WebRTC sessions", frozenset({"stun", "dtls"})),
    "datachannels": ("no data channels", frozenset({"sctp", "rtcdc", "datachannel"})),
}
"""Per report: what its emptiness is called and the protocols whose absence explains it."""

NEEDED = {
    "calls": "HTTP/2 connection",
    "streams": "RTP packet",
    "sessions": "STUN or DTLS packet",
    "datachannels": "SCTP association",
}
ENCRYPTED = {"calls": "tls", "datachannels": "dtls"}
"""What a report's protocols travel inside when encrypted: seen without them, the keys are missing."""


def empty_reason(name: str, protocols: Iterable[str]) -> str:
    """Why a report has no rows, from the protocols the capture carried ("no gRPC calls: no HTTP/2
    connection in this capture"); a report this table does not know gets a plain sentence."""
    what, needs = EMPTY_REASONS.get(name, (f"no {name}", frozenset()))
    seen = {p.lower() for p in protocols}
    if name == "findings":
        return "no findings: every packet decoded without a problem"
    if not needs:
        return f"{what}: the {name} analysis found nothing in this capture"
    if seen & needs:
        found = ", ".join(sorted(p.upper() for p in seen & needs))
        return f"{what}: {found} seen, but nothing the analysis could follow to the end"
    carrier = ENCRYPTED.get(name)
    if carrier in seen:
        return f"{what}: {carrier.upper()} seen, not decrypted (give its key log: --keylog FILE)"
    return f"{what}: no {NEEDED[name]} in this capture"
