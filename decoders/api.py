"""The plugin contract: the types every decoder and the capture layers share.

Decoders are pure: bytes, explicit state and a `FlowContext` in; a `DecodeResult` out. They do no
I/O, read no clock and import neither scapy nor textual. Problems in the bytes are `Finding`s,
never exceptions; a decoder that raises anyway is caught by the registry and the exception becomes
an error finding on that packet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING,
    ClassVar,
    Literal,
    NotRequired,
    Protocol,
    TypedDict,
    overload,
    runtime_checkable,
)

if TYPE_CHECKING:  # numpy is only named in annotations here: a plugin need not load it
    import numpy as np
    import numpy.typing as npt

Severity = Literal["note", "warn", "error"]
Transport = Literal["datagram", "stream", "both"]
""""both": the decoder takes UDP datagrams and reassembled TCP bytes (it reads `ctx.transport`)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """Wireshark's "expert info": something noteworthy or wrong in the bytes."""

    severity: Severity
    code: str
    """Dotted code, protocol first: "stun.fingerprint_bad", "tcp.gap"."""
    message: str
    span: tuple[int, int] | None = None
    """(start, end) byte offsets into the PDU's data, when the problem has a place."""


@dataclass(frozen=True, slots=True)
class Field:
    """One node of the detail tree; `span` maps it to bytes for the hex view."""

    name: str
    """Wireshark display-filter name where one exists: "stun.att.username"."""
    value: object
    span: tuple[int, int]
    children: tuple[Field, ...] = ()


class LazyFields(Sequence[Field]):
    """A detail tree built on first use. Bulk passes (reports, the packet list) never look at
    most trees; building them all cost more than half of a gRPC capture's decoding time."""

    __slots__ = ("_build", "_items")

    def __init__(self, build: Callable[[], Sequence[Field]]) -> None:
        self._build: Callable[[], Sequence[Field]] | None = build
        self._items: tuple[Field, ...] | None = None

    def _get(self) -> tuple[Field, ...]:
        if self._items is None:
            assert self._build is not None
            self._items = tuple(self._build())
            self._build = None
        return self._items

    @overload
    def __getitem__(self, i: int) -> Field: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[Field]: ...
    def __getitem__(self, i: int | slice) -> Field | Sequence[Field]:
        return self._get()[i]

    def __len__(self) -> int:
        return len(self._get())

    def __iter__(self) -> Iterator[Field]:
        return iter(self._get())

    def __repr__(self) -> str:
        return f"LazyFields({list(self._get())!r})"


@dataclass(frozen=True, slots=True)
class InnerPayload:
    """Bytes a PDU carries for another protocol (TURN Data, gRPC messages, ...).

    The registry dispatches them again; `protocol` names the decoder when the carrier knows it,
    else the registry's heuristics decide.
    """

    data: bytes
    offset: int
    """Where `data` starts within the carrier's data."""
    protocol: str | None = None
    transport: Transport = "datagram"


@dataclass(frozen=True, slots=True)
class Expect:
    """A conversation signaling announced (an SDP m-line, a TURN channel): the registry chooses
    `protocol` for it, and its decoder gets `hints` (e.g. {"rtp.clock.111": "48000"})."""

    transport: Literal["udp", "tcp"]
    ip: str
    port: int
    protocol: str
    hints: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Pdu:
    """One decoded protocol data unit."""

    protocol: str
    fields: Sequence[Field]
    """The detail tree: a tuple, or LazyFields built when first read."""
    span: tuple[int, int]
    """(start, end) offsets within the data the decoder was given."""
    summary: str = ""
    """One line for the packet list's Info column."""
    findings: tuple[Finding, ...] = ()
    inner: tuple[InnerPayload, ...] = ()
    record: object = None
    """Typed facts for analyses (an HTTP/2 frame's stream and headers, a gRPC message); not shown."""
    expect: tuple[Expect, ...] = ()
    """Conversations this PDU announces (SDP media): later flows to them are decoded accordingly."""


@dataclass(frozen=True, slots=True)
class DecodeResult:
    """What one call of `Decoder.decode` returns.

    Stream decoders report how many bytes they `consumed` (whole PDUs only) and, when the data ends
    inside a PDU, how many more bytes they `need` before they can go on (0 if unknown).
    """

    pdus: tuple[Pdu, ...] = ()
    consumed: int = 0
    need: int = 0
    findings: tuple[Finding, ...] = ()
    inner: tuple[InnerPayload, ...] = ()
    """Payloads handed on without a PDU of their own (RFC 7983 demultiplexing on a STUN flow)."""
    skip: int = 0
    """Stream decoders: bytes after `consumed` that no one reads (a large HTTP body of a type nothing
    decodes). The session drops them as they come without calling `decode`, and does not even read
    the segments that lie wholly inside them."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An IP address and port, printed as "ip:port" ("[v6]:port")."""

    ip: str
    port: int

    def __str__(self) -> str:
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


@dataclass(frozen=True, slots=True)
class FlowContext:
    """What a decoder may know about where its bytes come from."""

    flow: int
    transport: Literal["tcp", "udp"]
    src: Endpoint
    dst: Endpoint
    from_client: bool
    """True when the bytes travel from the flow's client to its server."""
    frame: int
    """1-based frame number of the packet that completed these bytes."""
    time: float
    """Capture timestamp, epoch seconds."""
    hints: Mapping[str, str] = field(default_factory=dict)
    """Facts learned elsewhere in the capture (an SDP payload map, a TURN channel, ...)."""
    capture: dict[str, object] = field(default_factory=dict)
    """Scratch space of the whole capture for this pass: facts one flow teaches others (ICE
    passwords from SDP, for STUN integrity checks)."""
    shared: dict[str, object] = field(default_factory=dict)
    """Scratch space of this flow for this decoding pass, seen by both directions' decode calls
    (e.g. HTTP/2 keeps each stream's request headers here to decode the responses). Keep
    connection state here or in `new_state()` objects, never on the decoder instance: the viewer
    decodes one flow again while a full pass runs."""


@runtime_checkable
class Decoder(Protocol):
    """A protocol decoder plugin; registered under the `protoscope.decoders` entry point group."""

    name: ClassVar[str]
    transport: ClassVar[Transport]
    ports: ClassVar[frozenset[tuple[str, int]]]
    """(transport, port) pairs, e.g. ("udp", 3478), that select this decoder by port."""

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        """Cheap and strict: True only when `data` surely starts this protocol."""
        ...

    def new_state(self) -> object:
        """Fresh per-direction state for a flow."""
        ...

    def decode(self, data: bytes, state: object, ctx: FlowContext) -> DecodeResult:
        """Decode `data`; stream decoders get reassembled bytes from the last unconsumed byte."""
        ...


SNIFF_SEGMENTS = 8
"""How often a TCP flow is offered to the heuristics: on its first 8 segments that bring new bytes (in
either direction), and on 8 more after a hole in its stream (the bytes after a hole are a fresh start).
A flow no decoder took by then is left undecoded for good: its later segments are not read, only their
headers are counted for `tcp.gap`, so it costs what reading its headers costs."""
SNIFF_DATAGRAMS = 32
"""How many datagrams of a UDP flow are offered to the heuristics before the flow is left undecoded."""
SNIFF_BYTES = 32 * 1024
"""Bytes of a TCP direction `sniff` is given at most: the start of its unconsumed stream. Enough for
an HTTP/2 frame of the default maximum size and the next frame's header, wherever in the first 4 KiB
the first whole frame starts. A datagram is given whole."""


Options = Mapping[str, object]
"""Settings from the command line for decoders that define `configure(options)`: e.g.
"protobuf.schemas" (a SchemaSet), "stun.ice_pwd" (list of passwords)."""


@runtime_checkable
class Analysis(Protocol):
    """Builds a report (gRPC calls, RTP streams, ...) from the PDUs of a decoding pass.

    Registered under the `protoscope.analyses` entry point group; `name` is the `--report` name.

    Findings: what an analysis finds (a call that failed, a phase never reached) goes in the
    `findings` list of the row it concerns, one `AnalysisFinding` dict each: `frame` (1-based, the
    packet where the problem shows, or None), `severity` ("note", "warn", "error", as Wireshark's
    expert info), `code` (dotted, protocol first: "ice.no_response"), `message`, and `phase` when
    the row has phases. Nothing else is needed: every row's findings are shown wherever findings
    are (`--report findings`, the summary's counts, the viewer's status line and Findings tab), in
    frame order among the packets' own, with the report's name. A malformed one becomes an
    `analysis.bad_finding` error finding. An analysis that never makes findings may say so with a
    class attribute `makes_findings = False`: the summary and findings reports then do not feed it.
    """

    name: ClassVar[str]

    def feed(self, pdu: Pdu, ctx: FlowContext) -> None:
        """Called for every PDU in frame order."""
        ...

    def rows(self) -> list[dict[str, object]]:
        """The report: JSON-ready objects."""
        ...


@dataclass(frozen=True, slots=True)
class RtpColumns:
    """RTP packets handed over in bulk: the columns of their fixed headers, one element per packet,
    in frame order, without a Pdu each. An analysis that defines `feed_rtp(columns)` gets the RTP
    packets of plain RTP flows this way (the session reads their headers with numpy over the index,
    checked against the RTP decoder on the first packets of every flow) and everything else through
    `feed` as usual. A million Pdu objects cost ~15 s; these columns ~0.1 s."""

    time: npt.NDArray[np.float64]
    """float64 seconds, as FlowContext.time."""
    endpoints: npt.NDArray[np.int32]
    """int32 index into `pairs`: the packet's (source, destination)."""
    pairs: Sequence[tuple[str, str]]
    ssrc: npt.NDArray[np.uint32]
    """uint32."""
    seq: npt.NDArray[np.uint16]
    """uint16."""
    timestamp: npt.NDArray[np.uint32]
    """uint32."""
    payload_type: npt.NDArray[np.uint8]
    """uint8."""
    marker: npt.NDArray[np.bool_]
    clock: npt.NDArray[np.int64]
    """int64 clock rate of the packet's payload type (signaling hints, else the static type); 0
    when unknown and for telephone-event."""

    def __len__(self) -> int:
        return len(self.time)


class AnalysisFinding(TypedDict):
    """One finding of an analysis: an item of the `findings` list of one of its rows (see
    `Analysis`). JSON-ready, as the rest of the row."""

    frame: int | None
    """1-based frame number of the packet where it shows; None when no packet does."""
    severity: Severity
    code: str
    message: str
    phase: NotRequired[str]
    """The phase of the row it concerns ("ice", "dtls", ...), for rows that have phases."""
