"""The analyses' tables: how each report row becomes rows of the lake's tables.

Every analysis the registry runs gets tables (`tables_for`): the in-tree ones have tables written
here with a documented column for every scalar key of their JSON rows, and a child table for each
list worth querying on its own (a call's messages, a stream's seconds, a session's phases,
candidates, pairs, paths, media and NAT verdicts, a data channel's messages); nested values that
have no table of their own are `json` columns. A third-party analysis gets the columns its class
declares (`lake_columns`: column -> type), or the generic `row` + `json` table.

`Splitter` turns rows as the analyses hand them over (in report order, in as many batches as they
drain) into table rows: dicts of column -> value as stored (timestamps as int ns, json as text,
lists as lists). Positions that name a row on the command line (`call` as `--call N`, `stream` as
`--stream N`) count across batches. Each column converts its values with a converter chosen once
for its type (`CONVERTERS`); a value that does not fit (a str where an int is declared, an int
out of uint16's range, a NaN time, an unencodable string) is null, never an exception, and the
row's json columns keep what they hold. A guest's rows are plain data already (the registry
checks them), but may be any shape: a value that is not a list where a list is expected gives no
child rows, an item that is not a dict a row of nulls.
"""

from __future__ import annotations

import functools
import itertools
import json
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from protoscope.decoders.registry import Registry, is_ours

from ..report.inert import json_inert
from .schema import CORE_TABLES, PARTITION, TYPES, Column, Table

Convert = Callable[[Any], Any]
Row = dict[str, Any]
Item = Mapping[str, Any]
SplitRow = Callable[[int, Any], dict[str, list[Row]]]
"""How one report row (and its position in the report) becomes rows of its tables, by table name."""

INT_RANGES: dict[str, tuple[int, int]] = {
    "int32": (-(1 << 31), (1 << 31) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
    "uint16": (0, 0xFFFF),
    "uint32": (0, 0xFFFFFFFF),
    "uint64": (0, (1 << 64) - 1),
}
"""The values each integer type stores; an int outside is null."""
NS_RANGE = INT_RANGES["int64"]
"""timestamp[ns] is an int64 of nanoseconds since the epoch (1677-09-21 to 2262-04-11)."""
MAX_TABLE_NAME = 64
"""Characters of a third-party report's name its table name keeps (a path segment, an SQL name)."""
MAX_PLUGIN_COLUMNS = 1024
"""Columns a third-party analysis may declare in `lake_columns`; the rest are ignored."""
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
"""A WebRTC session's phases in the order they are reached (decoders/webrtc/sessions.py `rows`):
`session_phases` has a row for each, reached or not, then for any other the row names."""


# -- converters: one per vocabulary type, chosen once per column ----------------------------------


def _utf8(text: str) -> str:
    """`text` as Parquet can store it (UTF-8): a lone surrogate (from undecodable bytes) becomes
    its `\\udcxx` escape, as the JSON report writes it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _string(v: Any) -> str | None:
    if type(v) is str:
        return v if v.isascii() else _utf8(v)
    if isinstance(v, str):  # a StrEnum: its value, never a __str__ of its own
        return _utf8(str.__str__(v))
    return None


def _integer(lo: int, hi: int) -> Convert:
    def convert(v: Any) -> int | None:
        if type(v) is int:
            return v if lo <= v <= hi else None
        if isinstance(v, numbers.Integral) and not isinstance(v, bool):  # an IntEnum, numpy's ints
            n = int(v)
            return n if lo <= n <= hi else None
        return None

    return convert


def _float(v: Any) -> float | None:
    if type(v) is float:
        return v
    if isinstance(v, numbers.Real) and not isinstance(v, bool):
        try:
            return float(v)
        except (OverflowError, ValueError):
            return None
    return None


def _bool(v: Any) -> bool | None:
    return v if type(v) is bool else None


def _timestamp(v: Any) -> int | None:
    """ns since the epoch from a report's float epoch seconds (round(t * 1e9): float64 holds a
    2020s time to ~0.2 us), or from whole seconds given as an int."""
    if type(v) is float:
        try:
            ns = round(v * 1e9)
        except (OverflowError, ValueError):  # inf, NaN
            return None
    elif type(v) is int:
        ns = v * 1_000_000_000
    else:
        return None
    return ns if NS_RANGE[0] <= ns <= NS_RANGE[1] else None


JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False)
"""What json.dumps(value, ensure_ascii=False) does, made once: dumps with keywords builds an
encoder a call (a third of its time on small messages)."""


def _json(v: Any) -> str | None:
    """The JSON text of `v` as the report writes it (json_inert: the same value, with the
    characters a terminal would act on and lone surrogates escaped, so that it is valid UTF-8);
    null for None and for what JSON cannot hold (a NaN, a tuple key, a cycle)."""
    if v is None:
        return None
    if not v and (type(v) is dict or type(v) is list):  # empty metadata, no trailers: most calls
        return "{}" if type(v) is dict else "[]"
    try:
        text = JSON.encode(v)
    except (TypeError, ValueError, RecursionError):
        return None
    return json_inert(text)


def _list_of(convert: Convert) -> Convert:
    def converted(v: Any) -> list[Any] | None:
        if type(v) is list or type(v) is tuple:
            return [convert(x) for x in v]
        return None

    return converted


CONVERTERS: dict[str, Convert] = {
    "string": _string,
    "bool": _bool,
    **{name: _integer(lo, hi) for name, (lo, hi) in INT_RANGES.items()},
    "float64": _float,
    "seconds": _float,
    "timestamp": _timestamp,
    "list<string>": _list_of(_string),
    "list<int64>": _list_of(_integer(*INT_RANGES["int64"])),
    "list<float64>": _list_of(_float),
    "json": _json,
}
"""Vocabulary type -> what makes a report value the value stored (None when it does not fit)."""
assert set(TYPES) <= set(CONVERTERS), "a type of schema.TYPES without a converter"


def _count(convert: Convert) -> Convert:
    """A list stored as its length (a row's `findings`); anything else as the type stores it."""

    def counted(v: Any) -> Any:
        return convert(len(v) if type(v) is list else v)

    return counted


# -- table shapes: a Table and how each of its columns is read ------------------------------------


@dataclass(frozen=True)
class Col:
    """One column of an in-tree table and where its value comes from: the item's `key` (the
    column's own name by default), a function of the item (`get`), or the caller (`given`:
    positions and parent keys, converted once for all of a parent's child rows)."""

    column: Column
    key: str | None = None
    get: Callable[[Item], Any] | None = None
    given: bool = False
    count: bool = False
    """The value is a list, stored as its length."""


def from_key(name: str, type_: str, doc: str = "", key: str | None = None, count: bool = False) -> Col:
    """A column read from the key of the same name (or `key`)."""
    return Col(Column(name, type_, doc), key=key or name, count=count)


def from_item(name: str, type_: str, doc: str, get: Callable[[Item], Any]) -> Col:
    """A column derived from the item by `get`."""
    return Col(Column(name, type_, doc), get=get)


def from_caller(name: str, type_: str, doc: str = "") -> Col:
    """A column whose value the caller gives (a position, the parent row's key)."""
    return Col(Column(name, type_, doc), given=True)


class Shape:
    """A table and how a row of it is made from one item (a report row, or an element of one of
    its lists) and the values its caller gives."""

    def __init__(self, name: str, source: str, doc: str, cols: Sequence[Col]) -> None:
        self.table = Table(name, tuple(col.column for col in cols), doc, source)
        self.cols = tuple(cols)
        self.given = tuple(col.column.name for col in cols if col.given)
        self.converters = {col.column.name: CONVERTERS[col.column.type] for col in cols}
        self.row: Callable[[Any, Row], Row] = _compiled(name, [col for col in cols if not col.given])
        """A row from `item` (a non-dict is an item without keys) and the converted given values."""

    def convert(self, given: Mapping[str, Any]) -> Row:
        """The given columns' values, converted: once per parent, for all its child rows."""
        return {name: self.converters[name](given.get(name)) for name in self.given}

    def rows(self, items: Any, given: Row) -> list[Row]:
        """A row per element of `items` (none when it is not a list), `index` its position."""
        if type(items) is not list:
            return []
        row = self.row
        return [row(item, {**given, "index": k}) for k, item in enumerate(items)]


FAST: dict[str, str] = {
    **{t: f"v if type(v := {{get}}) is int and {lo} <= v <= {hi}" for t, (lo, hi) in INT_RANGES.items()},
    "string": "v if type(v := {get}) is str and v.isascii()",
    "bool": "v if type(v := {get}) is bool",
    "float64": "v if type(v := {get}) is float",
    "seconds": "v if type(v := {get}) is float",
    "timestamp": "round(v * 1e9) if type(v := {get}) is float and -9.2e9 < v < 9.2e9",
    "json": "None if (v := {get}) is None",
    "list<string>": "None if (v := {get}) is None",
    "list<int64>": "None if (v := {get}) is None",
    "list<float64>": "None if (v := {get}) is None",
}
"""Per type, the test that takes the common value as it is (an int in range, an ASCII str, a float
time well within int64 nanoseconds), written into each table's row function; anything else goes
through the type's converter."""
assert set(FAST) == set(CONVERTERS), "a type without a fast path"


def _compiled(name: str, cols: Sequence[Col]) -> Callable[[Any, Row], Row]:
    """The function that makes a row of table `name` from an item and the given values: one dict
    display, each column's common case inline (FAST), compiled once per table. A generic loop over
    (column, converter) pairs took 30 us a row on calls rows, ~3x this."""
    namespace: dict[str, Any] = {"EMPTY": {}}
    values: list[str] = []
    for k, col in enumerate(cols):
        column = col.column
        namespace[f"c{k}"] = _converter(col)
        if col.get is not None:
            namespace[f"f{k}"] = col.get
            values.append(f"{column.name!r}: c{k}(f{k}(item)),")
        elif col.count:
            values.append(f"{column.name!r}: c{k}(get({col.key!r})),")
        else:
            fast = FAST[column.type].format(get=f"get({col.key!r})")
            values.append(f"{column.name!r}: ({fast} else None if v is None else c{k}(v)),")
    source = "\n".join(
        [
            "def row(item, given):",
            "    if not isinstance(item, dict):",
            "        item = EMPTY",
            "    get = item.get",
            "    return {**given,",
            *(f"        {v}" for v in values),
            "    }",
        ]
    )
    exec(compile(source, f"<lake table {name}>", "exec"), namespace)
    row: Callable[[Any, Row], Row] = namespace["row"]
    return row


def _converter(col: Col) -> Convert:
    convert = CONVERTERS[col.column.type]
    return _count(convert) if col.count else convert


def _get(item: Any, *path: str) -> Any:
    """item[path[0]][path[1]]..., None where a step is missing or not a dict."""
    for key in path:
        if not isinstance(item, dict):
            return None
        item = item.get(key)
    return item


def _at(*path: str) -> Callable[[Item], Any]:
    return lambda item: _get(item, *path)


ENDPOINT = re.compile(r"^(?:\[(?P<v6>[^\]]*)\]|(?P<ip>[^:\[\]]*)):(?P<port>[0-9]{1,5})$")
"""An "ip:port" or "[v6]:port" endpoint as the reports write them (decoders.api.Endpoint)."""


@functools.lru_cache(maxsize=4096)
def _endpoint(text: str) -> tuple[str, int | None]:
    """(IP address, port) of an endpoint text; (the text, None) when it has no port. Cached: the
    same few endpoints come back on every row of a capture."""
    m = ENDPOINT.match(text)
    if m is None:
        return text, None
    return (m["v6"] if m["v6"] is not None else m["ip"]), int(m["port"])


def _address(value: Any) -> str | None:
    return _endpoint(value)[0] if type(value) is str else None


def _port(value: Any) -> int | None:
    return _endpoint(value)[1] if type(value) is str else None


def _address_of(key: str) -> Callable[[Item], Any]:
    return lambda item: _address(item.get(key))


def _port_of(key: str) -> Callable[[Item], Any]:
    return lambda item: _port(item.get(key))


def _messages(key: str) -> Callable[[Item], Any]:
    """A call's messages of one direction: those listed plus those left out between."""

    def total(item: Item) -> Any:
        listed, omitted = item.get(key), item.get(f"{key}_omitted")
        if type(listed) is not list:
            return None
        return len(listed) + (omitted if type(omitted) is int and omitted >= 0 else 0)

    return total


FINDINGS_DOC = "findings of the row (their text is in `findings`, with source = this report's name)"


# -- the in-tree tables ---------------------------------------------------------------------------

CALLS_SOURCE = "--report calls"
CALLS = Shape(
    "calls",
    CALLS_SOURCE,
    "One row per gRPC call (an HTTP/2 stream that carried one), in the order of --report calls.",
    [
        from_caller("call", "int64", "0-based position in --report calls (what --call N takes)"),
        from_key("flow", "int64", "the TCP flow (flows.flow)"),
        from_key("stream_id", "int64", "HTTP/2 stream identifier (http2.streamid)"),
        from_key("client", "string", '"ip:port" of the HTTP/2 client'),
        from_item("client_addr", "string", "the client's IP address", _address_of("client")),
        from_item("client_port", "uint16", "the client's port", _port_of("client")),
        from_key("server", "string", '"ip:port" of the HTTP/2 server'),
        from_item("server_addr", "string", "the server's IP address", _address_of("server")),
        from_item("server_port", "uint16", "the server's port", _port_of("server")),
        from_key("path", "string", 'the :path, "/package.Service/Method"'),
        from_key("path_from", "string", "header (:path) or value (read from an unseen HPACK entry)"),
        from_key("service", "string", "the path's service"),
        from_key("method", "string", "the path's method"),
        from_key("kind", "string", "unary, client_streaming, server_streaming or bidi"),
        from_key("kind_from", "string", "schema or observed"),
        from_key("status", "int32", "grpc-status (0 OK); null when none came"),
        from_key("status_name", "string", "the status code's name: OK, UNAVAILABLE, DEADLINE_EXCEEDED ..."),
        from_key("status_from", "string", "trailers or inferred"),
        from_key("grpc_message", "string", "grpc-message (percent-decoded)"),
        from_key("status_details", "json", "grpc-status-details-bin decoded (google.rpc.Status)"),
        from_key(
            "ended_by", "string", "trailers, trailers-only, rst_stream, goaway, calls_limit; null while open"
        ),
        from_key("rst_stream_error", "string", "the RST_STREAM error code's name"),
        from_key("timeout", "seconds", "grpc-timeout, seconds"),
        from_key("unknown_headers", "int64", "headers from HPACK entries the capture did not show"),
        from_key("request_metadata", "json", "the request's custom metadata: name -> value (-bin as hex)"),
        from_key("response_metadata", "json", "the response headers' custom metadata"),
        from_key("trailers", "json", "the trailers' custom metadata"),
        from_item(
            "requests",
            "int64",
            "request messages (listed in grpc_messages, plus requests_omitted)",
            _messages("requests"),
        ),
        from_item(
            "responses",
            "int64",
            "response messages (listed in grpc_messages, plus responses_omitted)",
            _messages("responses"),
        ),
        from_key(
            "requests_omitted", "int64", "request messages counted but not listed (grpc.messages_limit)"
        ),
        from_key("responses_omitted", "int64", "response messages counted but not listed"),
        from_key("start", "timestamp", "the request headers' time"),
        from_key("end", "timestamp", "when the call ended; null while open"),
        from_key("duration", "seconds", "end - start, seconds"),
        from_key("findings", "int32", FINDINGS_DOC, count=True),
        from_key("grpcurl", "string", "a grpcurl command that makes the same call"),
    ],
)

GRPC_MESSAGES = Shape(
    "grpc_messages",
    CALLS_SOURCE,
    "One row per gRPC message a call lists (its `requests` then its `responses`).",
    [
        from_caller("call", "int64", "the call (calls.call)"),
        from_caller("flow", "int64", "the call's flow"),
        from_caller("stream_id", "int64", "the call's HTTP/2 stream"),
        from_caller("path", "string", "the call's path"),
        from_caller("direction", "string", "request or response"),
        from_caller(
            "index",
            "int64",
            "0-based position in the call's list of that direction (messages left out between the "
            "first and the last kept are not counted)",
        ),
        from_key("frame", "int64", "the frame that completed the message"),
        from_key("time", "timestamp", "that frame's time"),
        from_key("compressed", "bool", "the gRPC compressed flag"),
        from_key("size", "int64", "bytes of the message as sent (grpc.message_length)"),
        from_key("uncompressed_size", "int64", "bytes once inflated; null when it could not be"),
        from_key("type", "string", "the protobuf message type a schema gave; null without one"),
        from_key("message", "json", "the decoded content (field numbers or names -> values)"),
    ],
)

STREAMS_SOURCE = "--report streams"
STREAMS = Shape(
    "streams",
    STREAMS_SOURCE,
    "One row per RTP stream (SSRC and direction), like tshark -z rtp,streams.",
    [
        from_caller("stream", "int64", "0-based position in --report streams (what --stream N takes)"),
        from_key("ssrc", "uint32", "rtp.ssrc"),
        from_key("payload_type", "int32", "the first packet's payload type (rtp.p_type)"),
        from_key("payload_types", "list<int64>", "every payload type the stream carried"),
        from_key("src", "string", '"ip:port" of the sender'),
        from_item("src_addr", "string", "the sender's IP address", _address_of("src")),
        from_item("src_port", "uint16", "the sender's port", _port_of("src")),
        from_key("dst", "string", '"ip:port" of the receiver'),
        from_item("dst_addr", "string", "the receiver's IP address", _address_of("dst")),
        from_item("dst_port", "uint16", "the receiver's port", _port_of("dst")),
        from_key("packets", "int64", "RTP packets seen"),
        from_key("expected", "int64", "packets the sequence numbers span (RFC 3550 A.3)"),
        from_key("lost", "int64", "expected - packets: negative with duplicates, as tshark counts"),
        from_key("duplicates", "int64", "packets whose sequence number was seen before"),
        from_key("out_of_order", "int64", "packets older than the highest sequence number seen"),
        from_key("sequence_wraps", "int64", "times the 16-bit sequence number wrapped (RFC 3550 A.1)"),
        from_key("max_delta_ms", "float64", "largest gap between packets, ms"),
        from_key("max_jitter_ms", "float64", "RFC 3550 jitter, largest, ms"),
        from_key("mean_jitter_ms", "float64", "RFC 3550 jitter, mean, ms"),
        from_key("clock_rate", "int64", "RTP clock rate, Hz; null when unknown"),
        from_key("first", "timestamp", "the first packet's time"),
        from_key("last", "timestamp", "the last packet's time"),
        from_key("reported_lost", "int64", "cumulative loss the receiver's last RTCP report block said"),
        from_key("reported_fraction_lost", "float64", "fraction lost in that block (0-1)"),
        from_key("reported_jitter_ms", "float64", "jitter in that block, ms"),
        from_key("rtt_ms", "float64", "round-trip time from RTCP LSR/DLSR, ms"),
        from_key("codec", "string", "encoding name (signaling's rtpmap, else the static payload type's)"),
        from_key("keyframes", "int64", "video keyframes seen in payloads in the clear"),
        from_key("frame_rate", "float64", "video frames per second"),
        from_key("rtx_repaired", "int64", "RTX (RFC 4588): distinct packets repaired"),
    ],
)

STREAM_SECONDS = Shape(
    "stream_seconds",
    STREAMS_SOURCE,
    "One row per second of each RTP stream: its jitter and loss over time (the sparklines).",
    [
        from_caller("stream", "int64", "the stream (streams.stream)"),
        from_caller("ssrc", "uint32", "the stream's SSRC"),
        from_caller("second", "int64", "0-based second since the stream's first packet"),
        from_caller("jitter_ms", "float64", "largest jitter in that second, ms (jitter_ms_per_second)"),
        from_caller("lost", "int64", "packets lost in that second (lost_per_second)"),
    ],
)

SESSIONS_SOURCE = "--report sessions"


def _selected(key: str) -> Callable[[Item], Any]:
    return _at("selected_pair", key)


def _relayed(item: Item) -> bool | None:
    """Whether the selected pair goes through a TURN relay: either candidate's type is relay, or
    the pair table says the pair is relayed (a relayed address without a signaled candidate).
    Null without a selected pair."""
    selected = item.get("selected_pair")
    if not isinstance(selected, dict):
        return None
    if selected.get("local_type") == "relay" or selected.get("remote_type") == "relay":
        return True
    pairs = item.get("candidate_pairs")
    for pair in pairs if type(pairs) is list else ():
        if isinstance(pair, dict) and pair.get("selected") is True:
            return pair.get("relayed") is True
    return False


SESSIONS = Shape(
    "sessions",
    SESSIONS_SOURCE,
    "One row per WebRTC (ICE) session: its phases, selected pair, DTLS and diagnosis. Its parts are "
    "in session_phases, ice_candidates, ice_pairs, session_paths, session_media and nat.",
    [
        from_key("session", "int64", "the row's `id` in --report sessions", key="id"),
        from_key("failed_phase", "string", "the earliest phase with an error finding; null when none failed"),
        from_key("ufrags", "list<string>", "ICE username fragments (ice-ufrag) of both parties"),
        from_key("flows", "list<int64>", "the flows the session used (flows.flow)"),
        from_key("ice_roles", "list<string>", "controlling / controlled roles seen"),
        from_key("data_records", "int64", "DTLS application data records"),
        from_key("data_channels", "int64", "data channels opened"),
        from_item("dtls_state", "string", "none, started or done", _at("dtls", "state")),
        from_item(
            "dtls_version",
            "uint16",
            "the ServerHello's version (dtls.handshake.version: 65277 is DTLS 1.2)",
            _at("dtls", "version"),
        ),
        from_item(
            "dtls_client",
            "string",
            '"ip:port" of the DTLS client (the ClientHello\'s sender)',
            _at("dtls", "client"),
        ),
        from_item("selected_local", "string", 'the selected pair\'s local "ip:port"', _selected("local")),
        from_item("selected_remote", "string", 'the selected pair\'s remote "ip:port"', _selected("remote")),
        from_item("selected_local_type", "string", "host, srflx, prflx or relay", _selected("local_type")),
        from_item("selected_remote_type", "string", "host, srflx, prflx or relay", _selected("remote_type")),
        from_item("selected_frame", "int64", "the frame where the pair was selected", _selected("frame")),
        from_item("selected_reason", "string", "why that pair", _selected("reason")),
        from_item(
            "relayed",
            "bool",
            "the selected pair goes through a TURN relay (either candidate is relay); "
            "null without a selected pair",
            _relayed,
        ),
        from_item(
            "nominated_local",
            "string",
            'the nominated pair\'s local "ip:port"',
            _at("nominated_pair", "local"),
        ),
        from_item(
            "nominated_remote", "string", "the nominated pair's remote", _at("nominated_pair", "remote")
        ),
        from_item(
            "diagnosis",
            "string",
            "the diagnosis in one line (diagnosis.summary)",
            _at("diagnosis", "summary"),
        ),
        from_item(
            "relay_reason", "string", "why a relay was used (diagnosis.relay)", _at("diagnosis", "relay")
        ),
        from_item(
            "consent",
            "string",
            "consent freshness lapse (RFC 7675; diagnosis.consent)",
            _at("diagnosis", "consent"),
        ),
        from_item("restarts", "int64", "ICE restarts (diagnosis.restarts)", _at("diagnosis", "restarts")),
        from_item(
            "connected_ms",
            "float64",
            "from the first candidate or check to the pair's nomination (ICE connected), ms "
            "(diagnosis.timings_ms.connected)",
            _at("diagnosis", "timings_ms", "connected"),
        ),
        from_item(
            "dtls_done_ms",
            "float64",
            "from the same start to the end of the DTLS handshake, ms",
            _at("diagnosis", "timings_ms", "dtls_done"),
        ),
        from_item(
            "first_media_ms",
            "float64",
            "from the same start to the first media packet, ms",
            _at("diagnosis", "timings_ms", "first_media"),
        ),
        from_key("findings", "int32", FINDINGS_DOC, count=True),
        from_key("diagnosis_details", "json", "the whole diagnosis object", key="diagnosis"),
        from_key(
            "dtls", "json", "the DTLS facts: client, version, srtp_profiles, fingerprints by party, alert ..."
        ),
        from_key("parties", "json", "the parties A and B: ufrags, offerer/answerer, ICE role, addresses"),
        from_key("signaling", "json", "the session descriptions seen (SDP offers and answers)"),
    ],
)

SESSION_PHASES = Shape(
    "session_phases",
    SESSIONS_SOURCE,
    "One row per phase of each WebRTC session, reached or not, in the order phases are reached: "
    + ", ".join(PHASES)
    + ".",
    [
        from_caller("session", "int64", "the session (sessions.session)"),
        from_caller(
            "phase",
            "string",
            "signaling, ice, ice_connected, nominated, dtls, dtls_done, media, datachannel, datachannel_open",
        ),
        from_key("time", "timestamp", "when it was reached; null when it was not"),
        from_key("frame", "int64", "the frame where it was reached"),
        from_caller("reached", "bool", "the session reached it (the report's `phases` names it)"),
        from_caller("failed", "bool", "it is the session's failed_phase"),
    ],
)

ICE_CANDIDATES = Shape(
    "ice_candidates",
    SESSIONS_SOURCE,
    "One row per ICE candidate of each session, signaled (SDP, trickle) or learnt on the wire.",
    [
        from_caller("session", "int64", "the session (sessions.session)"),
        from_caller("index", "int64", "0-based position in the session's `candidates`"),
        from_key("party", "string", "A (offerer) or B"),
        from_key("source", "string", "sdp, sdp-file, trickle, stun, turn or check"),
        from_key("frame", "int64", "where it was seen"),
        from_key("foundation", "string", "the candidate's foundation (null for one learnt on the wire)"),
        from_key("component", "int64", "1 RTP, 2 RTCP"),
        from_key("transport", "string", "udp or tcp"),
        from_key("priority", "int64", "RFC 8445 candidate priority"),
        from_key("type_preference", "int64", "the priority's type preference (0-126)"),
        from_key("local_preference", "int64", "the priority's local preference (0-65535)"),
        from_key("address", "string", "IP address, or an mDNS name"),
        from_key("port", "uint16", "the candidate's port"),
        from_key("type", "string", "host, srflx, prflx or relay"),
        from_key("related_address", "string", "raddr"),
        from_key("related_port", "uint16", "rport"),
        from_key("tcptype", "string", "active, passive or so (RFC 6544)"),
        from_key("generation", "int64", "the `generation` extension"),
        from_key("network_cost", "int64", "the `network-cost` extension"),
        from_key("mdns", "string", "the .local name standing for a host address"),
        from_key("resolved", "string", "the address an mDNS response gave that name"),
    ],
)

ICE_PAIRS = Shape(
    "ice_pairs",
    SESSIONS_SOURCE,
    "One row per candidate pair (per flow and direction) of each session: its checks and state.",
    [
        from_caller("session", "int64", "the session (sessions.session)"),
        from_caller("index", "int64", "0-based position in the session's `candidate_pairs`"),
        from_key("flow", "int64", "the flow its checks used"),
        from_key("local", "string", '"ip:port" of the checks\' sender'),
        from_key("remote", "string", '"ip:port" they went to'),
        from_key("local_party", "string", "A or B"),
        from_item("local_type", "string", "the local candidate's type", _at("local_candidate", "type")),
        from_item("remote_type", "string", "the remote candidate's type", _at("remote_candidate", "type")),
        from_key("state", "string", "succeeded, failed, in-progress or waiting"),
        from_key("nominated", "bool", "nominated (USE-CANDIDATE, answered)"),
        from_key("use_candidate", "bool", "a check carried USE-CANDIDATE"),
        from_key("selected", "bool", "the session's selected pair"),
        from_key("relayed", "bool", "goes through a TURN relay"),
        from_key("requests", "int64", "Binding requests sent"),
        from_key("responses", "int64", "success responses received"),
        from_key("errors", "int64", "error responses received"),
        from_key("rtt_ms", "list<float64>", "round-trip times of the first answered checks, ms"),
        from_key("priority", "uint64", "RFC 8445 pair priority (< 2^64); null without both candidates"),
        from_item("checks_sent", "int64", "checks.sent", _at("checks", "sent")),
        from_item("checks_received", "int64", "checks.received: the other way", _at("checks", "received")),
        from_item("responses_sent", "int64", "checks.responses_sent", _at("checks", "responses_sent")),
        from_item(
            "responses_received", "int64", "checks.responses_received", _at("checks", "responses_received")
        ),
        from_key("packets_after_selection", "int64", "packets on the pair once it was selected"),
        from_key("bytes_after_selection", "int64", "bytes on the pair once it was selected"),
        from_key("failure", "string", "why a failed pair failed"),
    ],
)

SESSION_PATHS = Shape(
    "session_paths",
    SESSIONS_SOURCE,
    "One row per leg (flow, direction, framing) the media of each session took: direct, or each "
    "hop through a TURN relay.",
    [
        from_caller("session", "int64", "the session (sessions.session)"),
        from_caller("index", "int64", "0-based position in the session's `paths`"),
        from_key("leg", "string", "direct, A→TURN, relay→relay, TURN→B ..."),
        from_key("flow", "int64", "the flow of the leg"),
        from_key("via", "string", "udp, tcp, channeldata or send/data indications"),
        from_key("packets", "int64", "packets on the leg"),
        from_key("bytes", "int64", "bytes on the leg (UDP payloads)"),
    ],
)

SESSION_MEDIA = Shape(
    "session_media",
    SESSIONS_SOURCE,
    "One row per RTP stream (SSRC and direction) of each session.",
    [
        from_caller("session", "int64", "the session (sessions.session)"),
        from_caller("index", "int64", "0-based position in the session's `media`"),
        from_key("ssrc", "uint32", "rtp.ssrc"),
        from_key("from_party", "string", "the sending party (the report's `from`)", key="from"),
        from_key("to_party", "string", "the receiving party (the report's `to`)", key="to"),
        from_key("from_client", "bool", "sent from the flow's client side"),
        from_key("packets", "int64", "RTP packets (on the first leg its SSRC was seen on)"),
        from_key("bytes", "int64", "bytes of those packets"),
        from_key("payload_type", "int32", "rtp.p_type"),
        from_key("legs", "int64", "legs it was seen on (3 through a relay)"),
    ],
)

NAT = Shape(
    "nat",
    SESSIONS_SOURCE,
    "One row per NAT verdict (RFC 4787 behaviour of a socket's NAT): those of each session, and "
    "those of sockets no session shows (rows of kind nat).",
    [
        from_caller("session", "int64", "the session it belongs to; null for a row of kind nat"),
        from_caller("row", "int64", "the `id` of the --report sessions row it comes from"),
        from_caller("index", "int64", "0-based position in the session's `nat` (0 for a row of kind nat)"),
        from_key("party", "string", "A or B"),
        from_key("ufrag", "string", "the ICE ufrag of the socket's party"),
        from_key("inside", "string", 'the socket inside the NAT, "ip:port"'),
        from_key("public", "list<string>", "its public (mapped) addresses"),
        from_key(
            "mapping",
            "string",
            "endpoint-independent, address-dependent, address-and-port-dependent, no-nat ...",
        ),
        from_key("filtering", "string", "as mapping"),
        from_key("nat_type", "string", "full cone, address-restricted cone, symmetric, no NAT, unknown ..."),
        from_key("port_preservation", "bool", "the NAT kept the inside port"),
        from_key("hairpinning", "bool", "a packet to the public address came back in (RFC 4787 section 6)"),
        from_item(
            "binding_lifetime_at_least",
            "seconds",
            "the binding lived at least this long, seconds",
            _at("binding_lifetime_s", "at_least"),
        ),
        from_item(
            "binding_lifetime_at_most",
            "seconds",
            "the binding was gone after this long, seconds",
            _at("binding_lifetime_s", "at_most"),
        ),
        from_key("binding_lifetime_s", "json", "{at_least, at_most}, seconds"),
        from_key("mappings", "json", "each mapping seen: destination, mapped, via, frame"),
        from_key("rfc5780", "json", "the RFC 5780 tests the capture shows"),
        from_key("evidence", "json", "why: one sentence per fact (a list)"),
        from_key("findings", "int32", FINDINGS_DOC + "; null in a session's own", count=True),
    ],
)

TURN_ALLOCATIONS = Shape(
    "turn_allocations",
    SESSIONS_SOURCE,
    "One row per TURN allocation (rows of kind turn_allocation in --report sessions).",
    [
        from_key("allocation", "int64", "the row's `id` in --report sessions", key="id"),
        from_key("flow", "int64", "the client-server flow"),
        from_key("client", "string", '"ip:port"'),
        from_key("server", "string", '"ip:port"'),
        from_key("relayed", "string", "the relayed address, XOR-RELAYED-ADDRESS"),
        from_key("mapped", "string", "the client's address as the server saw it, XOR-MAPPED-ADDRESS"),
        from_key("lifetime", "int64", "the last LIFETIME granted, seconds (0: released)"),
        from_key("released", "bool", "a Refresh with lifetime 0 ended it"),
        from_key("unauthorized_401", "int64", "401 answers before success"),
        from_key("permissions", "list<string>", "peer addresses permitted"),
        from_key("channels", "json", "channel number -> peer"),
        from_key("errors", "list<string>", 'error answers: "code reason"'),
        from_key("failed_phase", "string", "turn when an error finding says the allocation failed"),
        from_key("findings", "int32", FINDINGS_DOC, count=True),
    ],
)

SESSIONS_OTHER = Shape(
    "sessions_other",
    SESSIONS_SOURCE,
    "Rows of --report sessions of a kind no other table takes (none so far), whole as JSON.",
    [
        from_key("row", "int64", "the row's `id`", key="id"),
        from_key("kind", "string", "the row's kind"),
        from_caller("json", "json", "the whole row"),
    ],
)

DATACHANNELS_SOURCE = "--report datachannels"
DATACHANNELS = Shape(
    "datachannels",
    DATACHANNELS_SOURCE,
    "One row per WebRTC data channel (an SCTP stream opened by DCEP or pre-negotiated).",
    [
        from_caller("datachannel", "int64", "0-based position in --report datachannels"),
        from_key("flow", "int64", "the flow of the SCTP association (flows.flow)"),
        from_key("stream_id", "uint16", "SCTP stream identifier (sctp.data_sid)"),
        from_key("label", "string", "DCEP label"),
        from_key("protocol", "string", "DCEP protocol"),
        from_key("negotiated", "string", "dcep or pre-negotiated"),
        from_key("channel_type", "string", "DATA_CHANNEL_RELIABLE, ..._PARTIAL_RELIABLE_REXMIT ..."),
        from_key("ordered", "bool", "ordered delivery (DCEP channel type)"),
        from_key("reliability", "string", "reliable, or the partial-reliability limit"),
        from_key("priority", "int64", "DCEP priority"),
        from_item("opened_frame", "int64", "the OPEN (or first message)", _at("opened", "frame")),
        from_item("opened_time", "timestamp", "when it opened", _at("opened", "time")),
        from_item("opened_direction", "string", "c2s or s2c", _at("opened", "direction")),
        from_item("acked_frame", "int64", "the DATA_CHANNEL_ACK", _at("acked", "frame")),
        from_item("acked_time", "timestamp", "when the ACK came", _at("acked", "time")),
        from_item("closed_frame", "int64", "the stream reset or ABORT", _at("closed", "frame")),
        from_item("closed_time", "timestamp", "when it closed", _at("closed", "time")),
        from_item("closed_by", "string", "reset or abort", _at("closed", "by")),
        from_key(
            "messages_listed",
            "int64",
            "messages listed (in datachannel_messages)",
            key="messages",
            count=True,
        ),
        from_key("messages_c2s", "int64", "messages from the flow's client"),
        from_key("messages_s2c", "int64", "messages from the flow's server"),
        from_key("bytes_c2s", "int64", "message bytes from the flow's client"),
        from_key("bytes_s2c", "int64", "message bytes from the flow's server"),
        from_key("findings", "int32", FINDINGS_DOC, count=True),
        from_key("opened", "json", "{frame, time, direction} of the OPEN"),
        from_key("acked", "json", "{frame, time, direction} of the ACK"),
        from_key("closed", "json", "{frame, time, by}"),
    ],
)

DATACHANNEL_MESSAGES = Shape(
    "datachannel_messages",
    DATACHANNELS_SOURCE,
    "One row per message a data channel lists.",
    [
        from_caller("datachannel", "int64", "the channel (datachannels.datachannel)"),
        from_caller("flow", "int64", "the channel's flow"),
        from_caller("stream_id", "uint16", "the channel's SCTP stream"),
        from_caller("index", "int64", "0-based position in the channel's `messages`"),
        from_key("frame", "int64", "the frame that completed it"),
        from_key("time", "timestamp", "that frame's time"),
        from_key("direction", "string", "c2s or s2c"),
        from_key("ppid", "uint32", "SCTP payload protocol identifier (51 text, 53 binary ...)"),
        from_key("ordered", "bool", "sent for ordered delivery (the U bit clear)"),
        from_key("size", "int64", "bytes"),
        from_key("text", "string", "the message as text (text PPIDs), up to MAX_SHOWN bytes"),
        from_key("hex", "string", "the message in hex (binary PPIDs), up to MAX_SHOWN bytes"),
        from_key("truncated", "bool", "longer than what text/hex show; null when not"),
        from_key("frames", "list<int64>", "the frames that carried its chunks"),
        from_key("dtls_side", "string", "client or server: the DTLS side that sent it"),
    ],
)

STUN_SOURCE = "--report stun_transactions"
STUN_TRANSACTIONS = Shape(
    "stun_transactions",
    STUN_SOURCE,
    "One row per STUN request (transaction id and leg) and what answered it.",
    [
        from_caller("transaction", "int64", "0-based position in --report stun_transactions"),
        from_key("flow", "int64", "the flow of this leg (flows.flow)"),
        from_key("transaction_id", "string", "stun.id, 24 hex digits"),
        from_key("method", "string", "Binding, Allocate, Refresh, CreatePermission, ChannelBind ..."),
        from_key("method_code", "int32", "stun.type's method"),
        from_key("client", "string", '"ip:port" of the requester on this leg'),
        from_key("server", "string", '"ip:port" of the responder'),
        from_key("relayed", "bool", "carried inside TURN (ChannelData, Send/Data)"),
        from_key("request_frame", "int64", "the first copy of the request"),
        from_key("request_time", "timestamp", "the first copy's time"),
        from_key("requests", "int64", "copies of the request (retransmissions included)"),
        from_key("response_frame", "int64", "the first response"),
        from_key("response_time", "timestamp", "the first response's time"),
        from_key("response_from", "string", '"ip:port" the response came from'),
        from_key("response_class", "string", "success or error; null when unanswered"),
        from_key("error_code", "int32", "ERROR-CODE"),
        from_key("error_reason", "string", "ERROR-CODE's reason phrase"),
        from_key("rtt_ms", "float64", "first request to first response, ms"),
        from_key("username", "string", "USERNAME"),
        from_key("use_candidate", "bool", "USE-CANDIDATE"),
        from_key("ice_role", "string", "controlling or controlled"),
        from_key("priority", "int64", "PRIORITY"),
        from_key("mapped_address", "string", "XOR-MAPPED-ADDRESS of a success"),
        from_key("relayed_address", "string", "XOR-RELAYED-ADDRESS"),
        from_key("lifetime", "int64", "LIFETIME granted, seconds"),
        from_key("requested_lifetime", "int64", "LIFETIME asked for, seconds"),
        from_key("findings", "int32", FINDINGS_DOC, count=True),
    ],
)

IN_TREE: dict[str, tuple[Shape, ...]] = {
    "calls": (CALLS, GRPC_MESSAGES),
    "streams": (STREAMS, STREAM_SECONDS),
    "sessions": (
        SESSIONS,
        SESSION_PHASES,
        ICE_CANDIDATES,
        ICE_PAIRS,
        SESSION_PATHS,
        SESSION_MEDIA,
        NAT,
        TURN_ALLOCATIONS,
        SESSIONS_OTHER,
    ),
    "datachannels": (DATACHANNELS, DATACHANNEL_MESSAGES),
    "stun_transactions": (STUN_TRANSACTIONS,),
}
"""Report name -> its tables, for the in-tree analysis of that name."""
RESERVED = {t.name for t in CORE_TABLES} | {s.table.name for shapes in IN_TREE.values() for s in shapes}
"""Table names a third-party analysis's table never takes (it gets `plugin_<name>`)."""


# -- third-party analyses ---------------------------------------------------------------------------


def _table_name(report: str, taken: set[str]) -> str:
    """A table name for a third-party report: lower case letters, digits and '_' (a path segment
    and an SQL name as it is), not one of ours, not starting with '_' (hidden from readers)."""
    name = re.sub(r"[^a-z0-9_]", "_", report.lower())[:MAX_TABLE_NAME] or "plugin"
    if name in RESERVED or name.startswith("_") or name[0].isdigit():
        name = f"plugin_{name}"
    base, n = name, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _declared(make: object) -> list[tuple[str, str]] | None:
    """The (column, type) pairs an analysis class declares in `lake_columns`, or None when it
    declares none (or nothing usable). A type outside the vocabulary is stored as json; `capture`
    (the partition column) and `row` (always the position) are not taken from it."""
    try:
        declared = getattr(make, "lake_columns", None)
        if not isinstance(declared, Mapping):
            return None
        items = list(itertools.islice(declared.items(), MAX_PLUGIN_COLUMNS))
    except Exception:  # a guest's mapping that fails to read: as if it declared nothing
        return None
    out: list[tuple[str, str]] = []
    seen = {"row", PARTITION}
    for name, type_ in items:
        if type(name) is not str or not name or name in seen:
            continue
        seen.add(name)
        out.append((name, type_ if type(type_) is str and type_ in TYPES else "json"))
    return out or None


def _plugin_shape(report: str, make: object, taken: set[str]) -> Shape:
    name = _table_name(report, taken)
    source = f"--report {report}"
    position = from_caller("row", "int64", f"0-based position in --report {report}")
    declared = _declared(make)
    if declared is None:
        doc = f"One row per row of --report {report} (a plugin's analysis), whole as JSON."
        return Shape(name, source, doc, [position, from_caller("json", "json", "the whole report row")])
    cols = [
        Col(
            Column(column, type_, f"the row's `{column}`"),
            key=column,
            count=column == "findings" and type_ in INT_RANGES,
        )
        for column, type_ in declared
    ]
    doc = f"One row per row of --report {report} (a plugin's analysis): the columns it declares."
    return Shape(name, source, doc, [position, *cols])


# -- the public API -------------------------------------------------------------------------------


def _shapes(registry: Registry) -> dict[str, tuple[Shape, ...]]:
    """Report name -> the shapes of its tables, for every analysis the registry has."""
    out: dict[str, tuple[Shape, ...]] = {}
    taken: set[str] = set()
    for report in sorted(registry.analyses):
        make = registry.analyses[report]
        ours = IN_TREE.get(report) if is_ours(make) else None
        out[report] = ours if ours is not None else (_plugin_shape(report, make, taken),)
    return out


def tables_for(registry: Registry) -> dict[str, tuple[Table, ...]]:
    """Report name -> its tables, for every analysis the registry has (in-tree ones by their
    definitions here, third-party ones by `lake_columns` or as `row` + `json`)."""
    return {report: tuple(s.table for s in shapes) for report, shapes in _shapes(registry).items()}


class Splitter:
    """Report rows -> table rows, for one capture's export: one per export, as it keeps each
    report's row count (positions go on across the batches an analysis drains)."""

    def __init__(self, registry: Registry) -> None:
        self._shapes = _shapes(registry)
        self._split: dict[str, SplitRow] = {}
        for report, shapes in self._shapes.items():
            ours = shapes is IN_TREE.get(report)
            self._split[report] = IN_TREE_SPLITS[report] if ours else _split_plugin_rows(shapes[0])
        self._counts: dict[str, int] = {}

    def split(self, report: str, rows: Sequence[dict[str, Any]]) -> dict[str, list[Row]]:
        """Rows of `report` in report order (called again as more come) -> table name -> rows.
        Every table of the report is a key (an empty list when these rows give it none); a
        report the registry has no analysis for gives {}."""
        split = self._split.get(report)
        if split is None:
            return {}
        out: dict[str, list[Row]] = {s.table.name: [] for s in self._shapes[report]}
        first = self._counts.get(report, 0)
        self._counts[report] = first + len(rows)
        for k, row in enumerate(rows):
            for table, table_rows in split(first + k, row).items():
                out[table].extend(table_rows)
        return out


# Each report: (position, row) -> table name -> rows. A row is a dict (a non-dict is as {}).


def _split_plugin_rows(shape: Shape) -> SplitRow:
    name = shape.table.name
    whole = "json" in shape.given

    def rows(position: int, row: Any) -> dict[str, list[Row]]:
        given: Row = {"row": position}
        if whole:
            given["json"] = _json(row)
        return {name: [shape.row(row, given)]}

    return rows


def _split_calls(position: int, row: Any) -> dict[str, list[Row]]:
    call = CALLS.row(row, {"call": position})
    messages: list[Row] = []
    if isinstance(row, dict):
        parent = {
            "call": position,
            "flow": call["flow"],
            "stream_id": call["stream_id"],
            "path": call["path"],
        }
        for key, direction in (("requests", "request"), ("responses", "response")):
            messages += GRPC_MESSAGES.rows(row.get(key), {**parent, "direction": direction})
    return {"calls": [call], "grpc_messages": messages}


def _split_streams(position: int, row: Any) -> dict[str, list[Row]]:
    stream = STREAMS.row(row, {"stream": position})
    seconds: list[Row] = []
    if isinstance(row, dict):
        jitter, lost = row.get("jitter_ms_per_second"), row.get("lost_per_second")
        jitter = jitter if type(jitter) is list else []
        lost = lost if type(lost) is list else []
        to_float, to_int = CONVERTERS["float64"], CONVERTERS["int64"]
        ssrc = stream["ssrc"]
        for second in range(max(len(jitter), len(lost))):
            seconds.append(
                {
                    "stream": position,
                    "ssrc": ssrc,
                    "second": second,
                    "jitter_ms": to_float(jitter[second]) if second < len(jitter) else None,
                    "lost": to_int(lost[second]) if second < len(lost) else None,
                }
            )
    return {"streams": [stream], "stream_seconds": seconds}


def _split_sessions(position: int, row: Any) -> dict[str, list[Row]]:
    if not isinstance(row, dict):
        row = {}
    kind = row.get("kind")
    if kind == "turn_allocation":
        return {"turn_allocations": [TURN_ALLOCATIONS.row(row, {})]}
    if kind == "nat":
        given = NAT.convert({"session": None, "row": row.get("id"), "index": 0})
        return {"nat": [NAT.row(row, given)]}
    if kind is not None:
        return {"sessions_other": [SESSIONS_OTHER.row(row, {"json": _json(row)})]}
    session = SESSIONS.row(row, {})
    sid = session["session"]
    return {
        "sessions": [session],
        "session_phases": _phases(sid, row),
        "ice_candidates": ICE_CANDIDATES.rows(row.get("candidates"), {"session": sid}),
        "ice_pairs": ICE_PAIRS.rows(row.get("candidate_pairs"), {"session": sid}),
        "session_paths": SESSION_PATHS.rows(row.get("paths"), {"session": sid}),
        "session_media": SESSION_MEDIA.rows(row.get("media"), {"session": sid}),
        "nat": NAT.rows(row.get("nat"), {"session": sid, "row": sid}),
    }


def _split_datachannels(position: int, row: Any) -> dict[str, list[Row]]:
    channel = DATACHANNELS.row(row, {"datachannel": position})
    messages: list[Row] = []
    if isinstance(row, dict):
        parent = {"datachannel": position, "flow": channel["flow"], "stream_id": channel["stream_id"]}
        messages = DATACHANNEL_MESSAGES.rows(row.get("messages"), parent)
    return {"datachannels": [channel], "datachannel_messages": messages}


def _split_stun_transactions(position: int, row: Any) -> dict[str, list[Row]]:
    return {"stun_transactions": [STUN_TRANSACTIONS.row(row, {"transaction": position})]}


IN_TREE_SPLITS: dict[str, SplitRow] = {
    "calls": _split_calls,
    "streams": _split_streams,
    "sessions": _split_sessions,
    "datachannels": _split_datachannels,
    "stun_transactions": _split_stun_transactions,
}
"""Report name -> how one row of the in-tree analysis of that name becomes table rows."""
assert set(IN_TREE_SPLITS) == set(IN_TREE)


def _phases(session: int | None, row: Mapping[str, Any]) -> list[Row]:
    """A session's phases: every one of PHASES, reached or not, then any other its row names
    (its `phases`, its failed_phase)."""
    phases = row.get("phases")
    if not isinstance(phases, dict):
        phases = {}
    failed = row.get("failed_phase")
    names: dict[Any, None] = dict.fromkeys(PHASES)
    names.update(dict.fromkeys(k for k in phases if type(k) is str))
    if type(failed) is str:
        names[failed] = None
    return [
        SESSION_PHASES.row(
            phases.get(name),
            SESSION_PHASES.convert(
                {"session": session, "phase": name, "reached": name in phases, "failed": name == failed}
            ),
        )
        for name in names
    ]
