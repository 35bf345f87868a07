"""What the SCTP decoder hands to analyses (`Pdu.record`): a packet's facts, and user messages
reassembled from DATA or I-DATA chunks, with DCEP (RFC 8832) read from those that carry it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SctpRecord:
    """One SCTP packet (RFC 9260 section 3): what the data channels and sessions reports need."""

    src_port: int
    dst_port: int
    verification_tag: int
    checksum_ok: bool
    """False: the CRC32c did not verify (nothing was reassembled from this packet)."""
    chunk_types: tuple[int, ...]
    abort_causes: tuple[str, ...] | None = None
    """The causes of an ABORT chunk in this packet (empty tuple: an ABORT without causes); None
    when the packet has no ABORT."""
    reset_streams: tuple[int, ...] | None = None
    """Streams this packet's sender resets (RE-CONFIG Outgoing SSN Reset Request, RFC 6525
    section 4.1; empty: all its streams): how a data channel is closed (RFC 8831 section 6.7).
    None when the packet has no such request."""
    retransmitted_tsns: tuple[int, ...] = ()
    """TSNs of DATA/I-DATA chunks this direction had sent before."""


@dataclass(frozen=True, slots=True)
class DcepMessage:
    """A DATA_CHANNEL_OPEN or DATA_CHANNEL_ACK (RFC 8832 section 5)."""

    message_type: int
    channel_type: int | None = None
    priority: int | None = None
    reliability: int | None = None
    label: str = ""
    protocol: str = ""

    @property
    def ordered(self) -> bool:
        return not (self.channel_type or 0) & 0x80

    @property
    def reliability_text(self) -> str:
        """ "reliable", "max_retransmits=N" or "max_lifetime_ms=N", as the channel type says."""
        kind = (self.channel_type or 0) & 0x7F
        if kind == 0x01:
            return f"max_retransmits={self.reliability}"
        if kind == 0x02:
            return f"max_lifetime_ms={self.reliability}"
        return "reliable"


@dataclass(frozen=True, slots=True)
class UserMessage:
    """A whole SCTP user message (RFC 9260 section 6.9), put together from its fragments."""

    stream_id: int
    ppid: int
    data: bytes
    """The message as the application sent it: the one byte of an empty-message PPID (56, 57) is
    not part of it."""
    ordered: bool
    sequence: int | None
    """The SSN (DATA) or MID (I-DATA); None for unordered DATA, where the SSN means nothing."""
    first_tsn: int
    last_tsn: int
    frames: tuple[int, ...]
    """The frames its fragments came in, in TSN (or FSN) order; each frame once."""
    from_client: bool
    time: float
    """When it was complete: the capture time of its last fragment to arrive."""
    dcep: DcepMessage | None = None
    """Its DCEP message, when its PPID is 50 and it parses."""
