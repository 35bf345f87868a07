"""The tables of the lake: their columns, types and units, and their Arrow schemas.

Each table mirrors a report (its `source`): the `captures` table `--report summary`, `packets`
`--report packets` (without the decoded PDUs), `flows` and `findings` their reports, and every
analysis its own tables (inspector/lake/analysis_tables.py). Types come from a small vocabulary
(`TYPES`) so table definitions read like documentation; `arrow_type` gives what is stored. Times
are `timestamp[ns, UTC]`, durations seconds as float64, ports uint16, addresses strings: the
conventions of Zeek's and Arkime's Parquet exports, so a join across tools needs no cast.

Names only grow: a column or table, once shipped, keeps its name and type
(tests/inspector/lake/test_schema.py holds the snapshot). The capture id is the Hive partition
column `capture`: in the paths, not in the files. pyarrow is imported only when an Arrow type is
asked for: the export builds the index before it loads pyarrow (see export.py).

`python -m protoscope.inspector.lake.schema` prints the Markdown documentation of every table of
the default registry (docs/lake-schema.md is that output).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    import pyarrow as pa

    from protoscope.decoders.registry import Registry

PARTITION = "capture"
"""The Hive partition column of every table: the capture id (inspector/lake/ids.py)."""


def partition_dir(capture: str) -> str:
    """The directory of a capture's partition in a table's directory: "capture=<id>"."""
    return f"{PARTITION}={capture}"


TYPES = (
    "string",
    "bool",
    "int32",
    "int64",
    "uint16",
    "uint32",
    "uint64",
    "float64",
    "timestamp",
    "seconds",
    "list<string>",
    "list<int64>",
    "list<float64>",
    "json",
)
"""The vocabulary of column types. "timestamp": an instant (ns since the epoch, UTC); "seconds":
a duration; "json": a string holding the JSON text of a nested value that has no table of its own."""


@dataclass(frozen=True)
class Column:
    """One column: its name, its type from `TYPES`, and what it holds (the unit, if any)."""

    name: str
    type: str
    doc: str = ""


@dataclass(frozen=True)
class Table:
    """One table: its columns as stored (without the partition column), what a row is, and the
    report it mirrors ("--report packets", "--report calls")."""

    name: str
    columns: tuple[Column, ...]
    doc: str
    source: str


def arrow_type(t: str) -> pa.DataType:
    """The Arrow type a vocabulary type is stored as; ValueError for a type not in `TYPES`."""
    import pyarrow as pa

    simple = {
        "string": pa.string(),
        "bool": pa.bool_(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "uint16": pa.uint16(),
        "uint32": pa.uint32(),
        "uint64": pa.uint64(),
        "float64": pa.float64(),
        "timestamp": pa.timestamp("ns", tz="UTC"),
        "seconds": pa.float64(),
        "list<string>": pa.list_(pa.string()),
        "list<int64>": pa.list_(pa.int64()),
        "list<float64>": pa.list_(pa.float64()),
        "json": pa.string(),
    }
    found = simple.get(t)
    if found is None:
        raise ValueError(f"unknown column type {t!r} (known: {', '.join(TYPES)})")
    return found


def arrow_schema(table: Table) -> pa.Schema:
    """The table's columns as stored (every column nullable; no `capture`)."""
    import pyarrow as pa

    return pa.schema([pa.field(c.name, arrow_type(c.type)) for c in table.columns])


def _c(name: str, type_: str, doc: str = "") -> Column:
    return Column(name, type_, doc)


CAPTURES = Table(
    "captures",
    (
        _c("path", "string", "the capture as it was given (a path, or the URI a Spark run read)"),
        _c(
            "sha256",
            "string",
            "SHA-256 of the file's bytes as stored (hex); `capture` is its first 16 digits",
        ),
        _c("file_size", "int64", "bytes of the file as stored"),
        _c("format", "string", 'pcap, pcapng, ... with " (gzip)" for a compressed file'),
        _c("packets", "int64"),
        _c("bytes", "int64", "bytes on the wire (the packets' lengths)"),
        _c("captured_bytes", "int64", "bytes captured (the packets' captured lengths)"),
        _c("first", "timestamp", "the first packet's time"),
        _c("last", "timestamp", "the last packet's time"),
        _c("duration", "seconds", "last - first"),
        _c("flows", "int64", "flows (UDP and TCP conversations)"),
        _c("linktypes", "list<int64>", "each interface's link type (LINKTYPE_*)"),
        _c("interfaces", "json", "each interface: linktype, name, snaplen"),
        _c("flow_transports", "json", 'flows per transport: {"tcp": n, "udp": m}'),
        _c("protocols", "json", 'the protocol hierarchy: "eth:ip:udp:stun" -> packets'),
        _c("findings_error", "int64", "error findings of the capture (--report findings)"),
        _c("findings_warn", "int64"),
        _c("findings_note", "int64"),
        _c("truncated", "bool", "the file ends inside a record"),
        _c("decoders", "list<string>", "the decoders that were loaded"),
        _c("protoscope_version", "string"),
        _c("exported_at", "timestamp", "when this partition was written"),
    ),
    "One row per capture: what --report summary says of it, and where it came from. A capture is "
    "in a dataset when its partition of this table exists (it is written last).",
    "--report summary",
)

PACKETS = Table(
    "packets",
    (
        _c("frame", "int64", "1-based frame number, as Wireshark numbers them"),
        _c("time", "timestamp", "capture time, exact to the nanosecond the file gives"),
        _c("len", "uint32", "length on the wire, bytes"),
        _c("caplen", "uint32", "captured length, bytes"),
        _c("flow", "int64", "the flow (flows.flow); null outside any UDP/TCP flow"),
        _c(
            "src", "string", 'source as the packets report writes it: "ip:port" in a flow, else the IP or MAC'
        ),
        _c("dst", "string", "destination, as `src`"),
        _c("src_addr", "string", "source IP address; null without an IP layer"),
        _c("dst_addr", "string", "destination IP address; null without an IP layer"),
        _c("src_port", "uint16", "null outside a flow"),
        _c("dst_port", "uint16", "null outside a flow"),
        _c("transport", "string", "tcp, udp, icmp, icmpv6, sctp ...; null without an IP layer"),
        _c("community_id", "string", 'Community ID v1 (seed 0, base64): "1:..."; null without an IP layer'),
        _c("protocols", "list<string>", "the protocol path, e.g. [eth, ip, udp, stun]"),
        _c("info", "string", "the Info column"),
        _c(
            "findings",
            "int32",
            "the packet's own findings (rows of `findings` with this frame and source decode)",
        ),
        _c("comments", "list<string>", "pcapng packet comments; null when none"),
    ),
    "One row per packet (frame), without the decoded PDUs: the packet list.",
    "--report packets",
)

FLOWS = Table(
    "flows",
    (
        _c("flow", "int64", "the flow id (the report's `id`; packets.flow)"),
        _c("transport", "string", "tcp or udp"),
        _c("client", "string", '"ip:port" of the side that opened the flow'),
        _c("server", "string", '"ip:port"'),
        _c("client_addr", "string"),
        _c("client_port", "uint16"),
        _c("server_addr", "string"),
        _c("server_port", "uint16"),
        _c(
            "community_id",
            "string",
            "Community ID v1 (seed 0, base64), as Zeek, Suricata and Arkime write it",
        ),
        _c("protocols", "list<string>", "what the flow carried, e.g. [udp, stun, dtls, rtp]"),
        _c("label", "string", 'the viewer\'s label: "gRPC/HTTP2"'),
        _c("packets", "int64"),
        _c("bytes", "int64"),
        _c("packets_c2s", "int64", "client to server"),
        _c("bytes_c2s", "int64"),
        _c("packets_s2c", "int64", "server to client"),
        _c("bytes_s2c", "int64"),
        _c("first", "timestamp"),
        _c("last", "timestamp"),
        _c("oriented_by", "string", "how the client was chosen: syn, syn-ack, port or first-packet"),
        _c("tunnelled_packets", "int64", "packets whose payload was a tunnelled packet (GTP-U)"),
    ),
    "One row per flow (UDP or TCP conversation).",
    "--report flows",
)

FINDINGS = Table(
    "findings",
    (
        _c("frame", "int64", "the packet where it shows; null for the file's and some analyses'"),
        _c("severity", "string", "note, warn or error"),
        _c("code", "string", "dotted, protocol first: stun.fingerprint_bad"),
        _c("message", "string"),
        _c("phase", "string", "the phase of a WebRTC session's finding; null otherwise"),
        _c(
            "source", "string", "\"decode\" for a packet's or the file's own, else the analysis's report name"
        ),
    ),
    "One row per finding (Wireshark's expert info) of the decoding pass and of every analysis.",
    "--report findings",
)

CORE_TABLES: tuple[Table, ...] = (CAPTURES, PACKETS, FLOWS, FINDINGS)
"""The tables every capture has, whatever analyses the registry runs."""


def analysis_tables(registry: Registry) -> dict[str, tuple[Table, ...]]:
    """Report name -> the tables of that analysis (inspector/lake/analysis_tables.py)."""
    from .analysis_tables import tables_for

    return tables_for(registry)


def all_tables(registry: Registry) -> dict[str, Table]:
    """Every table of a dataset exported with `registry`, by name: the core ones first, then each
    analysis's."""
    out = {t.name: t for t in CORE_TABLES}
    for tables in analysis_tables(registry).values():
        for table in tables:
            out.setdefault(table.name, table)
    return out


def markdown(tables: dict[str, Table], out: TextIO) -> None:
    """The documentation of `tables`: one section per table with its columns' types and units."""
    out.write("# The lake's tables\n\n")
    out.write(
        "Generated by `python -m protoscope.inspector.lake.schema` (do not edit by hand). Every table\n"
        "is stored as `DIR/<table>/capture=<id>/part-*.parquet`: `capture` is a Hive partition column\n"
        "(the first 16 hex digits of the capture file's SHA-256), in the path and not in the files.\n"
        "Types: `timestamp` is `timestamp[ns, UTC]`, `seconds` a float64 duration, `json` a string of\n"
        "JSON text. Names only grow: no column or table is ever renamed, removed or retyped.\n"
    )
    for table in tables.values():
        out.write(f"\n## {table.name}\n\n{table.doc}\n\nMirrors `{table.source}`.\n\n")
        out.write("| column | type | Arrow | meaning |\n| --- | --- | --- | --- |\n")
        for c in table.columns:
            doc = c.doc.replace("|", "\\|").replace("\n", " ")
            out.write(f"| `{c.name}` | {c.type} | `{arrow_type(c.type)}` | {doc} |\n")


EXIT_BROKEN_PIPE = 141
"""The reader went away (`... | head`): the shell's status of a process ended by SIGPIPE."""


def main() -> int:
    """`python -m protoscope.inspector.lake.schema`: the tables as Markdown on stdout. A reader
    that stops early (`| head`) ends it quietly, as it would a C tool, not with a traceback."""
    from protoscope.decoders.registry import load_registry

    try:
        markdown(all_tables(load_registry(use_plugins=False)), sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python's advice: point stdout at /dev/null, so that the flush at exit fails no more.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return 0


if __name__ == "__main__":
    sys.exit(main())
