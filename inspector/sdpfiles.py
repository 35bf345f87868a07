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
from protoscope.decoders.sdp.parse import looks_like_sdp

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


UTF8_BOM = b"\xef\xbb\xbf"
"""What editors on Windows put before a UTF-8 text: not part of the SDP or JSON."""
MAX_FILE_SDPS = 64
"""SDPs taken from one JSON file (an offer and its answer, a few renegotiations); more are ignored."""
MAX_JSON_NODES = 100_000
"""JSON values looked at in one file for SDPs."""


def messages_of(path: str, data: bytes) -> list[SignalingMessage]:
    """What one file holds for the "sdp" decoder: every SDP (plain, or each one of a JSON message
    or list of messages, in document order) and its trickled candidates (a JSON message's, or an
    SDP fragment); SdpFileError when neither. A UTF-8 byte order mark is skipped."""
    if b"\x00" in data:
        raise SdpFileError(f"--sdp file {path} is binary, not SDP or JSON signaling")
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    sdp = find_sdp(data)
    if sdp is data:
        return [SignalingMessage(path, bytes(data), _setup_role(bytes(data)))]
    sdps = _json_sdps(data) if sdp is not None else []
    trickle = find_trickle(data)
    if not sdps and trickle is None:
        raise SdpFileError(
            f"--sdp file {path} holds neither SDP (v=0 ...), nor JSON signaling with one, nor trickled "
            "ICE candidates"
        )
    out = [SignalingMessage(path, text.encode(), role) for text, role in sdps]
    if trickle is not None:
        out.append(SignalingMessage(path, bytes(trickle), None))
    return out


def _json_sdps(data: bytes) -> list[tuple[str, Role | None]]:
    """Every SDP string of a JSON document in document order, each with its role: the "type" of the
    object that holds it (RTCSessionDescriptionInit), else its a=setup."""
    try:
        doc = json.loads(data.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return []
    out: list[tuple[str, Role | None]] = []
    stack: list[tuple[object, str | None]] = [(doc, None)]
    seen = 0
    while stack and seen < MAX_JSON_NODES and len(out) < MAX_FILE_SDPS:
        item, kind = stack.pop()
        seen += 1
        if isinstance(item, dict):
            mine = item.get("type")
            mine = mine.lower() if isinstance(mine, str) else None
            stack.extend((v, mine) for v in reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend((v, None) for v in reversed(item))
        elif isinstance(item, str) and looks_like_sdp(item):
            role = _type_role(kind) or _setup_role(item.encode())
            out.append((item, role))
    return out


def _type_role(kind: str | None) -> Role | None:
    """A JSON message's "type": offer, or answer (a provisional answer is one too)."""
    if kind == "offer":
        return "offer"
    if kind in ("answer", "pranswer"):
        return "answer"
    return None


def _setup_role(sdp: bytes) -> Role | None:
    """The SDP's a=setup (RFC 5763 section 5: the offerer says actpass, the answerer active or
    passive); None when it has none or says something else."""
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
