"""--sdp FILE: signaling given from outside the capture (an offer, an answer, a JSON signaling
message, a trickle message), for captures taken without their signaling (media only, or signaling
over TLS nobody can open).

Each file is read and checked when the arguments are (unreadable, or neither SDP nor JSON
signaling: one line, exit 2), then decoded by the "sdp" decoder at the start of every decoding
pass, before the capture's first packet: frame 0, no flow (-1), the time of the first packet. What
it teaches (ICE passwords for STUN MESSAGE-INTEGRITY, RTP/RTCP expectations with their clock rates,
SDES keys) is learnt as in-capture signaling's is, and its PDUs reach the analyses (the sessions
report's offer/answer, ufrags, SSRCs, fingerprints) in every mode.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from protoscope.decoders.api import Decoder, Endpoint, FlowContext, Pdu
from protoscope.decoders.sdp import find_sdp, find_trickle

SIGNALING_OPTION = "sdp.signaling"
"""The registry option that carries the --sdp messages (a tuple of SignalingMessage) to sessions."""
MAX_SDP_FILE = 1 << 20
"""Largest --sdp file read (an SDP is a few KB; a signaling message with candidates, tens)."""
NOWHERE = Endpoint("0.0.0.0", 0)
"""The endpoints of signaling that came from no packet."""

Role = Literal["offer", "answer"]


class SdpFileError(Exception):
    """An --sdp file that cannot be used; the message is one line for stderr."""


@dataclass(frozen=True, slots=True)
class SignalingMessage:
    """One --sdp file's message, as the "sdp" decoder reads it."""

    path: str
    data: bytes
    """The SDP (taken out of its JSON wrapper), or the trickle message / SDP fragment."""
    role: Role | None
    """An offer or an answer (JSON "type", else a=setup: RFC 5763's offerer says actpass); None
    for trickled candidates."""


def load_sdp_files(paths: Sequence[str]) -> tuple[SignalingMessage, ...]:
    """Every --sdp file, read and checked, offers first; SdpFileError for the first that is
    unreadable or holds neither SDP nor trickled candidates. An SDP whose role is not written
    (plain SDP without a=setup) is the answer when the SDP before it is an offer, else an offer."""
    out: list[SignalingMessage] = []
    for path in paths:
        out += messages_of(path, _read(path))
    previous: Role | None = None
    for k, msg in enumerate(out):
        if not looks_sdp(msg.data):
            continue
        if msg.role is None:
            out[k] = msg = SignalingMessage(msg.path, msg.data, "answer" if previous == "offer" else "offer")
        previous = msg.role
    # Offers first, as they went on the wire (the offerer is party A), whatever the files' order;
    # trickled candidates stay with the description before them; otherwise the order given.
    side: list[bool] = []
    answer = False
    for msg in out:
        answer = msg.role == "answer" if msg.role is not None else answer
        side.append(answer)
    order = sorted(range(len(out)), key=lambda k: side[k])
    return tuple(out[k] for k in order)


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SDP_FILE + 1)
    except OSError as exc:
        raise SdpFileError(f"cannot read --sdp file {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_SDP_FILE:
        raise SdpFileError(f"--sdp file {path} is larger than {MAX_SDP_FILE} bytes: not signaling")
    return data


def looks_sdp(data: bytes) -> bool:
    return data.lstrip().startswith(b"v=0")


def messages_of(path: str, data: bytes) -> list[SignalingMessage]:
    """What one file holds for the "sdp" decoder: its SDP (plain, or in a JSON message) and its
    trickled candidates (a JSON message's, or an SDP fragment); SdpFileError when neither."""
    if b"\x00" in data:
        raise SdpFileError(f"--sdp file {path} is binary, not SDP or JSON signaling")
    sdp = find_sdp(data)
    trickle = find_trickle(data) if sdp is not data else None
    if sdp is None and trickle is None:
        raise SdpFileError(
            f"--sdp file {path} holds neither SDP (v=0 ...), nor JSON signaling with one, nor trickled "
            "ICE candidates"
        )
    out: list[SignalingMessage] = []
    if sdp is not None:
        out.append(SignalingMessage(path, bytes(sdp), _role(data, bytes(sdp))))
    if trickle is not None:
        out.append(SignalingMessage(path, bytes(trickle), None))
    return out


def _role(whole: bytes, sdp: bytes) -> Role | None:
    """Offer or answer: the JSON message's "type" (RTCSessionDescriptionInit), else the SDP's
    a=setup (RFC 5763 section 5: the offerer says actpass, the answerer active or passive)."""
    if whole is not sdp:
        try:
            doc = json.loads(whole.decode("utf-8", "replace"))
        except (ValueError, RecursionError):
            doc = None
        kind = _json_type(doc)
        if kind == "offer":
            return "offer"
        if kind in ("answer", "pranswer"):
            return "answer"
    setups = {
        line.strip()[len("a=setup:") :].lower()
        for line in sdp.decode("utf-8", "replace").splitlines()
        if line.strip().startswith("a=setup:")
    }
    if setups == {"actpass"}:
        return "offer"
    if setups and setups <= {"active", "passive"}:
        return "answer"
    return None


def _json_type(doc: object) -> str | None:
    """The "type" of the JSON object that holds the SDP (at the top, or one level down in a
    wrapper such as {"data": {"type": "offer", "sdp": ...}})."""
    items = [doc, *(doc.values() if isinstance(doc, dict) else ())]
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("sdp"), str):
            kind = item.get("type")
            return kind.lower() if isinstance(kind, str) else None
    return None


def signaling_context(msg: SignalingMessage, capture: dict[str, object], time: float) -> FlowContext:
    """The context an --sdp message is decoded and fed in: frame 0 of no flow, at `time`. An offer
    travels "from the client" and an answer back, so that the sessions analysis pairs them as it
    pairs an offer and its answer on one signaling connection."""
    return FlowContext(
        flow=-1,
        transport="udp",
        src=NOWHERE,
        dst=NOWHERE,
        from_client=msg.role != "answer",
        frame=0,
        time=time,
        capture=capture,
    )


def decode_signaling(
    messages: Sequence[SignalingMessage], decoder: Decoder, capture: dict[str, object], time: float
) -> list[tuple[Pdu, FlowContext]]:
    """The PDUs of the --sdp messages, each with the context it was decoded in; `capture` (the
    pass's FlowContext.capture) learns their ICE passwords. A decoder that fails on a message
    gives nothing for it (the message was checked when read)."""
    out: list[tuple[Pdu, FlowContext]] = []
    for msg in messages:
        ctx = signaling_context(msg, capture, time)
        try:
            result = decoder.decode(msg.data, decoder.new_state(), ctx)
        except Exception:
            continue
        out += [(pdu, ctx) for pdu in getattr(result, "pdus", ())]
    return out
