"""One capture exported: every table of the lake from one decoding pass (`export_capture`).

The pass feeds every analysis the registry has (rows.AnalysisPass) and sees every packet: each
packet becomes a `packets` row, and the rows the analyses hand over as they finish go through
`analysis_tables.Splitter` to their tables at once. Packet rows are built a batch at a time from
the index's columns (frame, time, lengths, flow, each flow's addresses, ports and Community ID
taken by numpy indexing); only what the report computes per packet in Python (Info, the protocol
path) is computed so here. Nothing grows with the packets but what the analyses keep (and their
findings, as --report findings keeps them): the writers hold one row group per table
(ROW_GROUP_ROWS), the packets' own findings are spooled to a temporary file past 4 MB.

`findings` is written at the end, in the order of `--report findings` (`_Findings`), then `flows`
(its protocols are what the pass saw), then `captures` (what `--report summary` says, counted from
the same pass), and the staging directory is committed (writer.py, under the capture's lock). Every
text column goes through convert.py, as the analyses' tables do: a string UTF-8 cannot encode is
stored escaped, never a failed capture. A capture that cannot be read, or anything that fails on
the way, gives a "failed" result with one line and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import os
import pickle
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from protoscope.decoders.registry import Registry
from protoscope.decoders.tls.keylog import KeyLog

from ..report import rows as report_rows
from ..session import PacketDecode, Progress, Session, endpoints, open_session, packet_protocols
from . import communityid, convert, fsutil, ids
from .analysis_tables import Splitter
from .schema import CAPTURES, FINDINGS, FLOWS, PACKETS, Table, all_tables, partition_dir

if TYPE_CHECKING:
    from .writer import Staging, TableWriter

ROW_GROUP_ROWS = 65536
"""Rows buffered per table before a row group is written (as Arrow columns, see
writer.BATCH_ROWS). Defined here, not in writer.py, which imports pyarrow: see `export_capture`
for why this module does not at first. Read at each export (tests make it small)."""
PACKET_BATCH = 8192
"""Packets whose rows are kept as Python values before they become Arrow columns (the writer
gathers those into row groups): 65,536 packets' Info texts alone are ~10 MB of str objects."""
MAX_PROTOCOL_PATHS = 4096
"""Distinct protocol paths whose lists are kept and shared by the packets that have them (a
capture has a few dozen; a hostile one may have more, and those get a list each)."""
DECODE = "decode"
"""The findings table's `source` of a packet's or the file's own findings."""


@dataclass(frozen=True)
class ExportResult:
    """What became of one capture."""

    path: str
    capture: str
    """The capture id ("" when the file could not even be read)."""
    status: Literal["written", "skipped", "failed"]
    packets: int = 0
    rows: Mapping[str, int] = field(default_factory=dict)
    """Rows written per table."""
    seconds: float = 0.0
    error: str | None = None
    """One line: why it failed."""


def export_capture(
    path: str,
    output: str,
    registry: Registry,
    *,
    count: int = 0,
    source: str | None = None,
    capture: str | None = None,
    sha256: str | None = None,
    progress: Progress | None = None,
) -> ExportResult:
    """Export the capture file at `path` (local) into the dataset at `output` (a path or URI).

    `count`: only the first packets (as -c). `source`: what the captures table's `path` says
    (default `path`; a Spark task gives the URI it read). `capture`: the id when the caller knows
    it. `sha256`: the file's full SHA-256 (hex) when the caller has hashed it already (the
    runner does, to find duplicates and skip what is in the dataset): the file is then read once,
    by the decoding; the caller vouches that it is the digest of these bytes. A capture already in
    the dataset is "skipped" (before the pass, or at the commit when another export of the same
    id committed first); one that fails is "failed" with one line, and its staging directory is
    removed: this never raises for a bad capture."""
    start = time.perf_counter()
    cid = capture or ""
    staging: Staging | None = None
    try:
        digest = sha256.lower() if sha256 else ids.sha256(path)
        cid = capture or ids.id_of_digest(digest)
        if _already_there(output, cid):
            return ExportResult(path, cid, "skipped", seconds=time.perf_counter() - start)
        # pyarrow is loaded only now, with the index built: its libraries are ~60 MB resident
        # (mostly shared code pages), which then do not add to the index's transient peak while
        # it is built (~190 MB for 1M packets, ~120 MB once built).
        with _own_key_log(registry):
            session = open_session(path, registry, count)
            try:
                from .writer import Staging, use_system_allocator

                use_system_allocator()
                fs, root = fsutil.resolve(output)
                staging = Staging(fs, root, cid, ROW_GROUP_ROWS)
                tables = all_tables(registry)
                session.progress = progress
                packets = _Export(session, staging, tables, source or path, digest).run()
            finally:
                session.close()
        if not staging.commit(tables):  # another export of this id committed it meanwhile
            _abort(staging)
            return ExportResult(path, cid, "skipped", seconds=time.perf_counter() - start)
        rows = {name: w.rows for name, w in sorted(staging.writers.items())}
        return ExportResult(path, cid, "written", packets, rows, time.perf_counter() - start)
    except Exception as exc:  # MemoryError included: a capture too big fails alone
        if staging is not None:
            _abort(staging)
        return ExportResult(path, cid, "failed", seconds=time.perf_counter() - start, error=one_line(exc))
    except BaseException:
        if staging is not None:
            _abort(staging)
        raise


def _already_there(output: str, capture: str) -> bool:
    """Whether the capture is in the dataset at `output` (writer.in_dataset), for a local path
    without loading pyarrow."""
    local = fsutil.local_path(output)
    if local is not None:
        return os.path.isdir(os.path.join(local, CAPTURES.name, partition_dir(capture)))
    from .writer import in_dataset

    return in_dataset(*fsutil.resolve(output), capture)


def _abort(staging: Staging) -> None:
    try:
        staging.abort()
    except Exception:  # the file system failed too: what is left is under _staging, never read
        pass


def one_line(exc: BaseException) -> str:
    """What failed, in one line: a capture's or the OS's own message as it is, anything else
    with its exception type (the runner's and Spark's per-capture lines)."""
    from protoscope.captures.errors import CaptureError

    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        # "No such file or directory: lake/_staging/x", not "[Errno 2] ...: 'lake/_staging/x'"
        names = [str(exc.filename), *([str(exc.filename2)] if exc.filename2 is not None else [])]
        return f"{exc.strerror}: {' -> '.join(names)}"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, CaptureError | OSError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def _own_key_log(registry: Registry) -> Iterator[None]:
    """The capture's own key log for the time of its export. A pcapng's Decryption Secrets Blocks
    are added to the registry's key log (Session.learn_secrets), which every later capture of the
    same registry reads: in a worker that exports many captures, a capture's decryption (and its
    findings) would depend on the captures exported before it in that worker. --keylog's keys
    stay shared (the copy starts with them); what a capture adds goes away with its copy.

    `registry.configure` drops a third-party decoder whose `configure` fails (a timeout, an
    exception). That is right for one capture, but these two extra configures per capture would
    make one transient failure drop the decoder for every later capture of the worker, which a
    CLI run over the same captures one by one would still decode with it. So the registry's
    decoders, guests and load errors are as they were before, once the capture is done (a decoder
    that fails the restoring configure, with the options it was loaded with, is dropped as at
    start-up)."""
    options = registry.options
    decoders, guests, errors = dict(registry.decoders), set(registry.guests), len(registry.load_errors)
    shared = options.get("tls.keylog")
    own = copy.deepcopy(shared) if isinstance(shared, KeyLog) else None
    registry.configure({**options, "tls.keylog": own})
    try:
        yield
    finally:
        registry.decoders.clear()
        registry.decoders.update(decoders)
        registry.guests.clear()
        registry.guests.update(guests)
        del registry.load_errors[errors:]
        registry.configure(options)


@functools.cache
def _version() -> str:
    from ..cli import version

    return version()


class _Export:
    """The pass over one capture and the rows it gives each table."""

    def __init__(
        self, session: Session, staging: Staging, tables: Mapping[str, Table], source: str, digest: str
    ):
        self.session = session
        self.staging = staging
        self.tables = tables
        self.source = source
        self.digest = digest
        registry = session.registry
        self.findings = _Findings(staging.writer(FINDINGS))
        self.packets = _Packets(session, staging.writer(PACKETS), self.findings)
        self.counts = report_rows.SummaryCounts(session)
        self.finding_reports = {
            n for n, make in registry.analyses.items() if getattr(make, "makes_findings", True)
        }
        self.splitter = Splitter(registry)

    def run(self) -> int:
        session = self.session
        analyses = report_rows.fresh_analyses(session)
        decoding = report_rows.AnalysisPass(session, analyses, self._rows, sparse=False)
        packets = self.packets
        counts = self.counts
        for pd in decoding.packets(sparse=False):
            packets.add(pd)
            counts.packet(pd)
        decoding.finish()
        packets.close()
        self.findings.decoded(
            [_finding(None, f.severity, f.code, f.message, None, DECODE) for f in session.file_findings()]
        )
        self.findings.close()
        self._flows(decoding.flows)
        self._capture()
        return len(session.index)

    def _rows(self, name: str, rows: list[dict[str, Any]]) -> None:
        """An analysis's rows as they are ready: their findings, and their tables."""
        if name in self.finding_reports:
            found = list(report_rows.analysis_findings(name, rows, len(self.session.index)))
            self.counts.add_findings(found)
            self.findings.analysed(
                [
                    _finding(f["frame"], f["severity"], f["code"], f["message"], f.get("phase"), name)
                    for f in found
                ]
            )
        for table, table_rows in self.splitter.split(name, rows).items():
            if table_rows:
                self.staging.writer(self.tables[table]).add_rows(table_rows)

    def _flows(self, seen: report_rows.FlowProtocols) -> None:
        out = self.staging.writer(FLOWS)
        batch: list[dict[str, Any]] = []
        for flow, cid in zip(self.session.flows, self.packets.flow_ids, strict=False):
            row = report_rows.flow_row(flow, seen)
            row["flow"] = row.pop("id")
            row["first"], row["last"] = flow.first_ns, flow.last_ns
            row["client_addr"], row["client_port"] = flow.client.ip, flow.client.port
            row["server_addr"], row["server_port"] = flow.server.ip, flow.server.port
            row["community_id"] = cid
            batch.append(row)
            if len(batch) >= ROW_GROUP_ROWS:
                out.add_rows(convert.safe_strings(FLOWS, batch))
                batch = []
        out.add_rows(convert.safe_strings(FLOWS, batch))

    def _capture(self) -> None:
        s = self.counts.summary()
        rec = self.session.index.records
        n = s["packets"]
        findings = s["findings"]
        flows = dict(s["flows"])
        row = {
            "path": self.source,
            "sha256": self.digest,
            "file_size": _file_size(self.session),
            "format": s["format"],
            "packets": n,
            "bytes": s["bytes"],
            "captured_bytes": s["captured_bytes"],
            "first": int(rec.ts_ns.min()) if n else None,
            "last": int(rec.ts_ns.max()) if n else None,
            "duration": s["duration"],
            "flows": flows.pop("total"),
            "linktypes": [i["linktype"] for i in s["interfaces"]],
            "interfaces": _json(s["interfaces"]),
            "flow_transports": _json(flows),
            "protocols": _json(s["protocols"]),
            "findings_error": findings["error"],
            "findings_warn": findings["warn"],
            "findings_note": findings["note"],
            "truncated": s["truncated"],
            "decoders": s["decoders"],
            "protoscope_version": _version(),
            "exported_at": time.time_ns(),
        }
        self.staging.writer(CAPTURES).add_rows(convert.safe_strings(CAPTURES, [row]))


def _file_size(session: Session) -> int | None:
    path = session.index.capture.path
    try:
        return os.path.getsize(path)
    except (OSError, TypeError, ValueError):
        return None


_json = convert._json
_strings = convert.CONVERTERS["list<string>"]
"""A json column's text: what the JSON report writes (json_inert), null for what JSON cannot hold."""


class _Findings:
    """The `findings` table in the order of `--report findings`: frame order, at one frame the
    packet's own first, the file's after every packet's, analysis findings without a frame last
    (report.rows.merge_findings). An analysis hands its findings over with its rows, often at the
    end of the capture (a session, a STUN transaction), so the table is written at the end: the
    decoding pass's findings are spooled as the report spools them (SPOOL_BYTES in memory, the
    rest in a temporary file), the analyses' kept as a list (as the report keeps them), and the
    two merged. Text is made storable (a plugin's message may hold a lone surrogate)."""

    def __init__(self, out: TableWriter) -> None:
        self.out = out
        self._spool = tempfile.SpooledTemporaryFile(report_rows.SPOOL_BYTES)
        self._batch: list[dict[str, Any]] = []
        self._analysed: list[dict[str, Any]] = []

    def decoded(self, rows: list[dict[str, Any]]) -> None:
        """Findings of the decoding pass (a packet's, in frame order; then the file's)."""
        self._batch += rows
        if len(self._batch) >= report_rows.SPOOL_BATCH:
            self._dump()

    def analysed(self, rows: list[dict[str, Any]]) -> None:
        """An analysis's findings, as it hands them over."""
        self._analysed += rows

    def close(self) -> None:
        """Write them all, merged; the spool goes away."""
        self._dump()
        self._spool.seek(0)
        merged = report_rows.merge_findings(self._unspooled(), self._analysed, lambda f: f["frame"])
        batch: list[dict[str, Any]] = []
        for row in merged:
            batch.append(row)
            if len(batch) >= PACKET_BATCH:
                self.out.add_rows(convert.safe_strings(FINDINGS, batch))
                batch = []
        self.out.add_rows(convert.safe_strings(FINDINGS, batch))
        self._analysed = []
        self._spool.close()

    def _dump(self) -> None:
        if self._batch:
            pickle.dump(self._batch, self._spool, pickle.HIGHEST_PROTOCOL)
            self._batch = []

    def _unspooled(self) -> Iterator[dict[str, Any]]:
        while True:
            try:
                batch = pickle.load(self._spool)
            except EOFError:
                return
            yield from batch


def _finding(
    frame: int | None, severity: str, code: str, message: str, phase: str | None, source: str
) -> dict[str, Any]:
    return {
        "frame": frame,
        "severity": severity,
        "code": code,
        "message": message,
        "phase": phase,
        "source": source,
    }


class _Packets:
    """The `packets` rows, a batch at a time; the packets' own findings go to `findings` as they
    come."""

    def __init__(self, session: Session, out: TableWriter, findings: _Findings) -> None:
        self.session = session
        self.out = out
        self.findings = findings
        ix = session.index
        flows = ix.flows
        nf = len(flows)
        self.nflows = nf
        self.flow_ids = communityid.flow_ids(flows)
        # By flow id + nf * direction: the source's side ("ip:port", address, port); the last
        # element (index -1) stands for packets outside any flow.
        ends = [str(f.client) for f in flows] + [str(f.server) for f in flows] + [None]
        self.ends = np.array(convert.safe_text(ends), object)
        self.addrs = np.array([f.client.ip for f in flows] + [f.server.ip for f in flows] + [None], object)
        self.ports = np.array(
            [f.client.port for f in flows] + [f.server.port for f in flows] + [0], np.uint16
        )
        self.transports = np.array([f.transport for f in flows] + [None], object)
        self.community = np.array([*self.flow_ids, None], object)
        self._protocols: dict[tuple[int, tuple[str, ...]], list[str]] = {}
        self._index: list[int] = []
        self._info: list[str] = []
        self._names: list[list[str]] = []
        self._found: list[int] = []

    def add(self, pd: PacketDecode) -> None:
        session = self.session
        i = pd.index
        pdus = pd.pdus
        key = (int(session.index.stack[i]), tuple(dict.fromkeys(p.protocol for p in pdus)))
        names = self._protocols.get(key)
        if names is None:
            names = convert.safe_text(packet_protocols(session.index, i, pdus))
            if len(self._protocols) < MAX_PROTOCOL_PATHS:
                self._protocols[key] = names
        self._index.append(i)
        self._names.append(names)
        self._info.append(report_rows.info(session, pd))
        self._found.append(len(pd.findings))
        if pd.findings:
            self.findings.decoded(
                [_finding(i + 1, f.severity, f.code, f.message, None, DECODE) for f in pd.findings]
            )
        if len(self._index) >= min(ROW_GROUP_ROWS, PACKET_BATCH):
            self._flush()

    def close(self) -> None:
        self._flush()

    def _flush(self) -> None:
        if not self._index:
            return
        import pyarrow as pa

        ix = self.session.index
        rec = ix.records
        packets = np.asarray(self._index, np.int64)
        n = len(packets)
        fid = ix.flow[packets].astype(np.int64)
        direction = ix.direction[packets].astype(np.int64)
        outside = fid < 0
        nf = self.nflows
        src = np.where(outside, -1, fid + nf * direction)
        dst = np.where(outside, -1, fid + nf * (1 - direction))
        src_text, dst_text = self.ends[src], self.ends[dst]
        src_addr, dst_addr = self.addrs[src], self.addrs[dst]
        transport = self.transports[np.where(outside, -1, fid)]
        community = self.community[np.where(outside, -1, fid)]
        for k in np.flatnonzero(outside).tolist():
            i = int(packets[k])
            src_text[k], dst_text[k] = convert.safe_text(list(endpoints(ix, i)))
            facts = communityid.packet_facts(ix.linktype(i), ix.frame(i), int(rec.wirelen[i]))
            src_addr[k], dst_addr[k] = facts.src_addr, facts.dst_addr
            transport[k], community[k] = facts.transport, facts.community_id
        comments = rec.comments
        columns: dict[str, Any] = {
            "frame": pa.array(packets + 1, pa.int64()),
            "time": pa.array(rec.ts_ns[packets], pa.timestamp("ns", tz="UTC")),
            "len": pa.array(rec.wirelen[packets], pa.uint32()),
            "caplen": pa.array(rec.caplen[packets], pa.uint32()),
            "flow": pa.array(fid, pa.int64(), mask=outside),
            "src": src_text,
            "dst": dst_text,
            "src_addr": src_addr,
            "dst_addr": dst_addr,
            "src_port": pa.array(self.ports[src], pa.uint16(), mask=outside),
            "dst_port": pa.array(self.ports[dst], pa.uint16(), mask=outside),
            "transport": transport,
            "community_id": community,
            "protocols": self._names,
            "info": convert.safe_text(self._info),
            "findings": pa.array(np.asarray(self._found, np.int32), pa.int32()),
            "comments": [_strings(comments.get(i)) for i in self._index] if comments else None,
        }
        self.out.add_columns(columns, n)
        self._index, self._info, self._names, self._found = [], [], [], []
