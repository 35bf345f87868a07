"""WebRTC user messages (RFC 8831) and the Data Channel Establishment Protocol (RFC 8832).

A whole SCTP user message becomes a PDU of its own: DCEP (PPID 50) as Wireshark's "rtcdc"
protocol with its field names, WebRTC strings and binaries (PPIDs 51-57) as "datachannel", and
any other PPID as an "sctp" user message. The detail tree shows the text (UTF-8) or the bytes.
"""

from __future__ import annotations

import dataclasses

from protoscope.decoders.api import Field, Finding, Pdu

from . import names as nm
from .records import DcepMessage, UserMessage

OPEN_HEADER = 12
SHOWN_BYTES = 4096
"""Bytes of a message the detail tree shows (as text or hex); the record keeps them all."""


def parse_dcep(data: bytes, base: int | None) -> tuple[DcepMessage | None, list[Field], list[Finding]]:
    """A DCEP message; `base` is where it starts in the packet when it lies in one chunk there
    (its fields then have spans), else None."""

    def sp(a: int, b: int) -> tuple[int, int]:
        return (base + a, base + b) if base is not None else (0, 0)

    findings: list[Finding] = []
    if not data:
        return None, [], [Finding("warn", "rtcdc.truncated", "an empty DCEP message")]
    mtype = data[0]
    fields = [Field("rtcdc.message_type", mtype, sp(0, 1))]
    if mtype == nm.DATA_CHANNEL_ACK:
        if len(data) != 1:
            findings.append(
                Finding("note", "rtcdc.message_too_long", f"DATA_CHANNEL_ACK of {len(data)} bytes")
            )
        return DcepMessage(mtype), fields, findings
    if mtype != nm.DATA_CHANNEL_OPEN:
        findings.append(Finding("warn", "rtcdc.message_type.unknown", f"DCEP message type {mtype}"))
        return None, fields, findings
    if len(data) < OPEN_HEADER:
        findings.append(
            Finding(
                "warn", "rtcdc.truncated", f"DATA_CHANNEL_OPEN of {len(data)} bytes, 12 at least expected"
            )
        )
        return None, fields, findings
    ctype = data[1]
    priority = int.from_bytes(data[2:4], "big")
    reliability = int.from_bytes(data[4:8], "big")
    label_len = int.from_bytes(data[8:10], "big")
    proto_len = int.from_bytes(data[10:12], "big")
    label_end = OPEN_HEADER + label_len
    proto_end = label_end + proto_len
    label = data[OPEN_HEADER:label_end].decode("utf-8", "replace")
    protocol = data[label_end:proto_end].decode("utf-8", "replace")
    fields += [
        Field("rtcdc.channel_type", ctype, sp(1, 2)),
        Field("rtcdc.priority", priority, sp(2, 4)),
        Field("rtcdc.reliability_parameter", reliability, sp(4, 8)),
        Field("rtcdc.label_length", label_len, sp(8, 10)),
        Field("rtcdc.protocol_length", proto_len, sp(10, 12)),
        Field("rtcdc.label", label, sp(OPEN_HEADER, min(label_end, len(data)))),
        Field("rtcdc.protocol", protocol, sp(min(label_end, len(data)), min(proto_end, len(data)))),
    ]
    if ctype not in nm.CHANNEL_TYPES:
        findings.append(Finding("warn", "rtcdc.channel_type.unknown", f"channel type 0x{ctype:02x}"))
    if ctype & 0x7F == nm.RELIABLE and reliability:
        findings.append(
            Finding(
                "note",
                "rtcdc.reliability_parameter.non_zero",
                f"reliability parameter {reliability} on a reliable channel",
            )
        )
    if proto_end != len(data):
        findings.append(
            Finding(
                "warn",
                "rtcdc.inconsistent_label_and_parameter_length",
                f"label and protocol lengths add up to {proto_end} bytes, the message has {len(data)}",
            )
        )
        if proto_end > len(data):
            return None, fields, findings
    return DcepMessage(mtype, ctype, priority, reliability, label, protocol), fields, findings


def message_pdu(
    msg: UserMessage,
    span: tuple[int, int] | None,
    findings: list[Finding],
    labels: dict[int, str] | None = None,
) -> Pdu:
    """The PDU of a whole user message. `span`: its bytes in this packet when it lies in one chunk
    here; None when it was put together from several (its fields then have no span). `labels`:
    the association's channel labels by stream id, learnt from DATA_CHANNEL_OPENs (both
    directions: FlowContext.shared), for a message's `datachannel.label`. Stream ids are 16 bits:
    it holds at most 65,536."""
    at = span if span is not None else (0, 0)
    base = span[0] if span is not None else None
    if msg.ppid == nm.PPID_DCEP:
        dcep, fields, more = parse_dcep(msg.data, base)
        findings = findings + more
        what = nm.DCEP_TYPES.get(dcep.message_type, "DCEP") if dcep else "DCEP (malformed)"
        if dcep is not None and dcep.message_type == nm.DATA_CHANNEL_OPEN:
            if labels is not None:
                labels[msg.stream_id] = dcep.label
            order = "ordered" if dcep.ordered else "unordered"
            what += f" (label={dcep.label!r}, {dcep.reliability_text}, {order})"
        tree = [Field("rtcdc.stream_id", msg.stream_id, at), *fields, _frames(msg, at)]
        record = dataclasses.replace(msg, dcep=dcep)
        return Pdu("rtcdc", tuple(tree), at, what, tuple(findings), record=record)
    protocol = "datachannel" if msg.ppid in nm.WEBRTC_PPIDS else "sctp"
    p = "datachannel." if protocol == "datachannel" else "sctp.message_"
    tree = [Field(p + "stream_id", msg.stream_id, at)]
    label = labels.get(msg.stream_id) if labels is not None and protocol == "datachannel" else None
    if label is not None:
        tree.append(Field("datachannel.label", label, at))
    tree += [
        Field(p + "ppid", msg.ppid, at),
        Field(p + "ordered", msg.ordered, at),
        Field(p + "size", len(msg.data), at),
        _frames(msg, at, p),
    ]
    if msg.ppid in nm.EMPTY_PPIDS:
        shown = "empty string" if msg.ppid == nm.PPID_STRING_EMPTY else "empty binary"
    elif msg.ppid in nm.TEXT_PPIDS:
        text = msg.data[:SHOWN_BYTES].decode("utf-8", "replace")
        tree.append(Field(p + "text", text, at))
        shown = repr(text[:60])
        try:
            msg.data.decode("utf-8")
        except UnicodeDecodeError:
            findings = [
                *findings,
                Finding("warn", "datachannel.bad_utf8", "a string message that is not UTF-8"),
            ]
    else:
        tree.append(Field(p + "data", msg.data[:SHOWN_BYTES].hex(), at))
        shown = f"{len(msg.data)} bytes"
    kind = nm.PPID_NAMES.get(msg.ppid, f"PPID {msg.ppid}")
    summary = f"{kind} on stream {msg.stream_id}: {shown}"
    return Pdu(protocol, tuple(tree), at, summary, tuple(findings), record=msg)


def _frames(msg: UserMessage, at: tuple[int, int], prefix: str = "rtcdc.") -> Field:
    return Field(prefix + "frames", list(msg.frames), at)
