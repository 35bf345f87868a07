"""The plugin contract: the types every decoder and the capture layers share.

Decoders are pure: bytes, explicit state and a `FlowContext` in; a `DecodeResult` out. They do no
I/O, read no clock and import neither scapy nor textual. Problems in the bytes are `Finding`s,
never exceptions; a decoder that raises anyway is caught by the session and the exception becomes
an error finding on that packet.

Third-party decoders are guests (see decoders/registry.py): what they return is checked against
this contract (`checked_result`; a bad result is a `decoder.bad_result` finding and the decoder is
dropped for the flow), each call has a time budget (`decoder.timeout`), and whatever they raise,
SystemExit and KeyboardInterrupt included, is contained.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING,
    Any,
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


FieldType = Literal[
    "uint", "int", "bool", "string", "bytes", "ipv4", "ipv6", "ether", "float", "time", "protocol", "none"
]
"""What a field's value is, in the words of Wireshark's `tshark -G fields` (FT_UINT*, FT_STRING, ...):
the display filter reads a literal by it (`0a:0b` as bytes, `10.0.0.0/8` as a network)."""


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """A field a decoder may emit, declared the way a Wireshark dissector registers it in its
    `hf_register_info` table. The display filter refuses names no one declared (with the closest
    ones as a hint), the detail tree names enum values and flag bits by it, and `--list-fields`
    prints it like `tshark -G fields`."""

    abbrev: str
    """The display-filter name: "http2.type"."""
    name: str
    """The label of the detail tree: "Type"."""
    type: FieldType = "uint"
    description: str = ""
    strings: Mapping[int, str] | None = None
    """Value names (Wireshark's value_string): {1: "HEADERS"} shows 1 as "HEADERS (1)"."""
    bits: Mapping[int, str] | None = None
    """Flag bit names (a bitmask's true_false strings): {0x1: "END_STREAM"} shows 0x05 as
    "0x05 END_STREAM, ..."."""
    base: Literal["dec", "hex"] = "dec"
    """How an integer is shown: "hex" for identifiers such as an SSRC (0x1234abcd)."""
    digits: int = 0
    """Hex digits a "hex" value is padded to, as the field's width gives them in Wireshark (8 for
    a 32-bit SSRC: 0x0000abcd); 0: the widest named value or the value itself decides."""


def declared_fields(decoder: object) -> tuple[FieldInfo, ...]:
    """The fields a decoder declares in its optional class attribute `fields` (a tuple of
    FieldInfo, see `Decoder`); () when it declares none or the attribute is not such a tuple."""
    try:  # a third-party decoder's attribute may be a property that raises
        found = getattr(decoder, "fields", ())
    except Exception:
        return ()
    if not isinstance(found, tuple | list):
        return ()
    return tuple(f for f in found if isinstance(f, FieldInfo))


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
    """A protocol decoder plugin; registered under the `protoscope.decoders` entry point group.

    Optional: a class attribute `fields: ClassVar[tuple[FieldInfo, ...]]` declares every field
    name the decoder emits (as a Wireshark dissector's hf_register_info does). The display filter
    knows only declared fields (and protocol names); undeclared ones are refused as unknown. It is
    not a member of this Protocol, because a Protocol member cannot be optional: read it with
    `declared_fields(decoder)`.
    """

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
        """Decode `data`; stream decoders get reassembled bytes from the last unconsumed byte.
        A stream decoder that stops before the end of its data (one PDU a call) may be called
        again with only the next part of the rest, at least what it `need`s: to it, as if the data
        ended with a TCP segment (inspector/session.py's STREAM_WINDOW)."""
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

    Optional methods. `drain() -> list[dict]`: the rows that are finished (a call that ended), then
    forgotten, so a long capture holds only what is open; `rows()` then gives the rest.
    `snapshot() -> list[dict]`: the rows `rows()` would give if the capture ended now, computed
    without changing the analysis: a live capture asks for it about once a second while packets
    still come, and what the analysis gives in the end must not depend on how often it was asked.
    Its rows must share no list or dict that the analysis goes on changing. An
    analysis without it is deep-copied for a snapshot and the copy's `rows()` taken.

    Data lake (`--export parquet`, inspector/lake): the rows become a table named after the
    report, with a `row` column (the row's position in the report). An analysis may declare its
    columns with a class attribute `lake_columns: ClassVar[Mapping[str, str]]`, column name ->
    type ("string", "bool", "int32", "int64", "uint16", "uint32", "uint64", "float64",
    "timestamp" for epoch seconds, "seconds" for a duration, "list<string>", "list<int64>",
    "json" for anything nested): each is a typed column, a key missing from a row is null and a
    value that does not fit its type is null. Without it the table has `row` and `json` (the
    whole row as JSON text), which DuckDB reads with its JSON functions.
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
    in frame order, without a Pdu each. An analysis that defines `feed_rtp(columns)` gets the later
    RTP packets of long RTP flows this way (the session reads their headers with numpy over the
    index, checked against the RTP decoder on the first packets of every flow; SRTP among them is
    authenticated and decrypted in bulk with the keys those first packets pinned, and the optional
    payload columns say what the payloads gave) and everything else through `feed` as usual. A
    million Pdu objects cost ~15 s; these columns ~0.1 s (~1.7 s with SRTP decryption)."""

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
    encodings: Mapping[tuple[str, str, int], str] = field(default_factory=dict)
    """(source, destination, payload type) -> the encoding signaling named for it ("opus",
    "VP8"): the codec of a dynamic payload type."""
    payload_read: npt.NDArray[np.bool_] | None = None
    """Per packet: its payload was read as the RTP decoder reads it one by one (plain RTP, SRTP
    authenticated and decrypted, SRTP nobody could decrypt), so the codec columns below hold for
    it. None, or False on a packet: not read, its stream's codec counts are unknown."""
    clear: npt.NDArray[np.bool_] | None = None
    """Per packet: its payload is in the clear (RtpRecord.payload would not be None)."""
    keyframe: npt.NDArray[np.bool_] | None = None
    """Per packet: its payload in the clear starts a keyframe (codecs.CodecFacts.keyframe)."""
    frame_start: npt.NDArray[np.bool_] | None = None
    """Per packet: its payload in the clear starts a video frame (CodecFacts.frame_start)."""
    original_seq: npt.NDArray[np.int32] | None = None
    """Per packet: RTX's original sequence number (RFC 4588), -1 for none."""
    findings: Mapping[int, tuple[Finding, ...]] = field(default_factory=dict)
    """Per packet (by its position in the columns), the findings decoding it one by one gives
    beyond its header (srtp.auth_failed, srtp.replay): packets without any are absent."""

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


# -- the contract checked: what a third-party decoder returns --------------------------------------

MAX_RESULT_FIELDS = 1 << 16
"""Detail-tree nodes (fields of all its PDUs together) one call of a third-party decoder may return."""
MAX_FIELD_DEPTH = 64
"""How deeply a third-party decoder's detail tree may nest."""
MAX_VALUE_DEPTH = 16
"""How deeply a field's value may nest lists, tuples and dicts."""
MAX_STREAM_OFFSET = 1 << 48
"""The largest `need` or `skip` a third-party decoder may ask for (256 TiB: more than any capture)."""
SEVERITIES: tuple[Severity, ...] = ("note", "warn", "error")


class ContractError(Exception):
    """A decoder's result breaks the plugin contract; the message says where, in the result's terms
    (`pdus[0].span`)."""


def checked_result(result: object, size: int) -> DecodeResult:
    """`result` of a call given `size` bytes, as the session may keep it, or ContractError.

    The session checks what third-party decoders return (ours are trusted): every type the
    dataclasses above name, spans within the `size` bytes given, `consumed` within them, `need`
    and `skip` not negative. What a report would otherwise run later is settled here, while the
    decoder's time budget runs: LazyFields are built, lists become tuples, and a field value that
    is not plain data (None, bool, int, float, str, bytes, and lists, tuples and dicts of them)
    becomes its `str()`. A result that needs none of this is returned as it is (~3 us a PDU)."""
    if type(result) is not DecodeResult:
        raise ContractError(f"returned a {type(result).__name__}, not a DecodeResult")
    check = _Check(size)
    part = "pdus"
    try:
        pdus = check.items(result.pdus, check.pdu)
        part = "findings"
        findings = check.items(result.findings, check.finding)
        part = "inner"
        inner = check.items(result.inner, check.inner)
        part = "consumed"
        consumed = check.integer(result.consumed, size)
        part = "need"
        need = check.integer(result.need, MAX_STREAM_OFFSET)
        part = "skip"
        skip = check.integer(result.skip, MAX_STREAM_OFFSET)
    except _Bad as exc:
        exc.path.append(part)
        raise ContractError(f"{''.join(reversed(exc.path))} {exc.problem}") from None
    if (
        pdus is result.pdus
        and findings is result.findings
        and inner is result.inner
        and consumed is result.consumed
        and need is result.need
        and skip is result.skip
    ):
        return result
    return DecodeResult(pdus, consumed, need, findings, inner, skip)


def checked_value(value: object) -> object:
    """`value` as plain data, as `checked_result` makes field values (what an analysis's rows hold
    too), or ContractError when it nests deeper than MAX_VALUE_DEPTH."""
    try:
        return _Check(0).value(value, 0)
    except _Bad as exc:
        raise ContractError(exc.problem) from None


class _Bad(Exception):
    """A problem found deep in a result; `path` is filled in (innermost first) on the way out."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path: list[str] = []


def _kind(value: object) -> str:
    return type(value).__name__


class _Check:
    """The checks of one result's parts: each returns its part itself when it is fine as it is."""

    __slots__ = ("fields", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.fields = 0

    def items(self, value: Any, check: Callable[[Any], object]) -> Any:
        if type(value) is tuple and not value:  # most parts of most results
            return value
        if type(value) is not tuple:
            if isinstance(value, LazyFields):
                value = value._get()
            elif type(value) is list:
                value = tuple(value)
            else:
                raise _Bad(f"is a {_kind(value)}, not a tuple")
        out: list[object] | None = None
        for k, item in enumerate(value):
            try:
                new = check(item)
            except _Bad as exc:
                exc.path.append(f"[{k}]")
                raise
            if out is None and new is not item:
                out = list(value[:k])
            if out is not None:
                out.append(new)
        return value if out is None else tuple(out)

    def integer(self, value: Any, top: int) -> int:
        if type(value) is not int:
            if isinstance(value, bool):
                raise _Bad("is a bool, not an int")
            try:
                value = operator.index(value)
            except TypeError:
                raise _Bad(f"is a {_kind(value)}, not an int") from None
        if not 0 <= value <= top:
            raise _Bad(f"is {value}: it must be within 0..{top}")
        return value  # type: ignore[no-any-return]

    def text(self, value: Any) -> str:
        if not isinstance(value, str):
            raise _Bad(f"is a {_kind(value)}, not a str")
        return value

    def span(self, value: Any) -> tuple[int, int]:
        if type(value) is tuple and len(value) == 2:
            start, end = value
            if type(start) is int and type(end) is int and 0 <= start <= end <= self.size:
                return value
        if type(value) not in (tuple, list) or len(value) != 2:
            raise _Bad("is not a (start, end) pair")
        bounds = []
        for k in (0, 1):
            try:
                bounds.append(self.integer(value[k], self.size))
            except _Bad as exc:
                exc.path.append(f"[{k}]")
                raise
        start, end = bounds
        if start > end:
            raise _Bad(f"({start}, {end}) ends before it starts")
        return (start, end)

    def pdu(self, pdu: Any) -> Pdu:
        if type(pdu) is not Pdu:
            raise _Bad(f"is a {_kind(pdu)}, not a Pdu")
        part = ".protocol"
        try:
            protocol = self.text(pdu.protocol)
            part = ".fields"
            fields = self.items(pdu.fields, self.field)
            part = ".span"
            span = self.span(pdu.span)
            part = ".summary"
            summary = self.text(pdu.summary)
            part = ".findings"
            findings = self.items(pdu.findings, self.finding)
            part = ".inner"
            inner = self.items(pdu.inner, self.inner)
            part = ".expect"
            expect = self.items(pdu.expect, self.expect)
        except _Bad as exc:
            exc.path.append(part)
            raise
        if (
            fields is pdu.fields
            and span is pdu.span
            and findings is pdu.findings
            and inner is pdu.inner
            and expect is pdu.expect
        ):
            return pdu
        return Pdu(protocol, fields, span, summary, findings, inner, pdu.record, expect)

    def field(self, f: Any, depth: int = 0) -> Field:
        if type(f) is not Field:
            raise _Bad(f"is a {_kind(f)}, not a Field")
        self.fields += 1
        if self.fields > MAX_RESULT_FIELDS:
            raise _Bad(f"makes more than {MAX_RESULT_FIELDS} fields")
        if depth > MAX_FIELD_DEPTH:
            raise _Bad(f"nests fields deeper than {MAX_FIELD_DEPTH}")
        part = ".name"
        try:
            self.text(f.name)
            part = ".value"
            value = self.value(f.value, 0)
            part = ".span"
            span = self.span(f.span)
            part = ".children"
            children = self.items(f.children, lambda c: self.field(c, depth + 1))
        except _Bad as exc:
            exc.path.append(part)
            raise
        if value is f.value and span is f.span and children is f.children:
            return f
        return Field(f.name, value, span, children)

    def value(self, value: Any, depth: int) -> object:
        kind = type(value)
        if value is None or kind is str or kind is int or kind is bytes or kind is bool or kind is float:
            return value
        if depth >= MAX_VALUE_DEPTH:
            raise _Bad(f"nests deeper than {MAX_VALUE_DEPTH}")
        if kind is list or kind is tuple:
            items = [self.value(v, depth + 1) for v in value]
            if all(a is b for a, b in zip(items, value, strict=True)):
                return value
            return kind(items)
        if kind is dict:
            pairs = [(self.key(k), self.value(v, depth + 1)) for k, v in value.items()]
            if all(a is k and b is v for (a, b), (k, v) in zip(pairs, value.items(), strict=True)):
                return value
            return dict(pairs)
        if isinstance(value, bytearray | memoryview):
            return bytes(value)
        if isinstance(value, bool | int | float | str | bytes):
            return value  # an IntEnum, a str subclass: our decoders use them too
        return str(value)

    def key(self, key: Any) -> object:
        """A dict key as JSON takes it: str, int, float, bool or None; anything else as its str()."""
        kind = type(key)
        if key is None or kind is str or kind is int or kind is float or kind is bool:
            return key
        return str(key)

    def finding(self, f: Any) -> Finding:
        if type(f) is not Finding:
            raise _Bad(f"is a {_kind(f)}, not a Finding")
        if f.severity not in SEVERITIES:
            raise _Bad(f"has severity {f.severity!r}, not one of {', '.join(SEVERITIES)}")
        part = ".code"
        try:
            self.text(f.code)
            part = ".message"
            self.text(f.message)
            part = ".span"
            span = f.span if f.span is None else self.span(f.span)
        except _Bad as exc:
            exc.path.append(part)
            raise
        return f if span is f.span else Finding(f.severity, f.code, f.message, span)

    def inner(self, item: Any) -> InnerPayload:
        if type(item) is not InnerPayload:
            raise _Bad(f"is a {_kind(item)}, not an InnerPayload")
        part = ".data"
        try:
            data = item.data
            if type(data) is not bytes:
                if not isinstance(data, bytes | bytearray | memoryview):
                    raise _Bad(f"is a {_kind(data)}, not bytes")
                data = bytes(data)
            part = ".offset"
            offset = self.integer(item.offset, self.size)
            part = ".protocol"
            if item.protocol is not None:
                self.text(item.protocol)
            part = ".transport"
            if item.transport not in ("datagram", "stream", "both"):
                raise _Bad(f"is {item.transport!r}, not datagram, stream or both")
        except _Bad as exc:
            exc.path.append(part)
            raise
        if data is item.data and offset is item.offset:
            return item
        return InnerPayload(data, offset, item.protocol, item.transport)

    def expect(self, e: Any) -> Expect:
        if type(e) is not Expect:
            raise _Bad(f"is a {_kind(e)}, not an Expect")
        part = ".transport"
        try:
            if e.transport not in ("udp", "tcp"):
                raise _Bad(f"is {e.transport!r}, not udp or tcp")
            part = ".ip"
            self.text(e.ip)
            part = ".protocol"
            self.text(e.protocol)
            part = ".port"
            port = self.integer(e.port, 65535)
            part = ".hints"
            if not isinstance(e.hints, Mapping):
                raise _Bad(f"is a {_kind(e.hints)}, not a mapping")
            hints = dict(e.hints)
            for k, v in hints.items():
                self.text(k)
                self.text(v)
        except _Bad as exc:
            exc.path.append(part)
            raise
        # a copy of the hints: the decoder keeps no handle on what the registry holds
        return Expect(e.transport, e.ip, port, e.protocol, hints)
