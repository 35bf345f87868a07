"""export_capture: every core table equals the JSON report it mirrors, on every sample and public
capture; the commit protocol (nothing partial, resumable, leftovers deleted); bounded row groups."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from protoscope.inspector.lake import export, writer
from protoscope.inspector.lake.ids import capture_id, sha256
from protoscope.inspector.report.output import write
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES, public_captures, require_public
from tests.hostile import INPUTS, Input

from .conftest import Exported, default_registry, read_table, reporting

CORPUS = sorted(p for p in SAMPLES.iterdir() if ".pcap" in p.name) + public_captures()
"""The sample captures and the public corpus (the latter: see test_public_corpus_is_there)."""
CORE = ("captures", "packets", "flows", "findings")


def test_public_corpus_is_there() -> None:
    require_public()  # fails under CI=true when the corpus is missing: CORPUS would miss it silently


def report(session: Session, name: str) -> Any:
    out = io.StringIO()
    write(session, name, "json", out)
    return json.loads(out.getvalue())


def ns(t: float | None) -> int | None:
    return None if t is None else round(t * 1e9)


def near(a: int | None, b: int | None) -> bool:
    """Two times in ns that a report's float (~0.2 us precise) and an exact ns may give."""
    return a == b or (a is not None and b is not None and abs(a - b) <= 1000)


def check_packets(session: Session, table: list[dict[str, Any]]) -> None:
    rows = report(session, "packets")
    assert len(table) == len(rows)
    ts = session.index.records.ts_ns
    for got, want in zip(table, rows, strict=True):
        frame = want["frame"]
        assert got["frame"] == frame
        assert _ns(got["time"]) == int(ts[frame - 1])
        assert _ns(got["time"]) / 1e9 == want["time"]
        for key in ("len", "caplen", "flow", "src", "dst", "protocols", "info"):
            assert got[key] == want[key], (frame, key)
        assert got["findings"] == len(want["findings"])
        assert got["comments"] == want.get("comments")
        if want["flow"] is None:
            assert got["src_port"] is None and got["dst_port"] is None
        else:
            for side in ("src", "dst"):
                addr, port = want[side].rsplit(":", 1)
                assert (got[f"{side}_addr"], got[f"{side}_port"]) == (addr.strip("[]"), int(port))
            assert got["community_id"].startswith("1:")


def _ns(value: Any) -> int:
    """A timestamp read back (conftest.read_table gives int ns)."""
    assert isinstance(value, int)
    return value


def check_flows(session: Session, table: list[dict[str, Any]]) -> None:
    rows = report(session, "flows")
    assert len(table) == len(rows)
    for got, want in zip(table, rows, strict=True):
        assert got["flow"] == want["id"]
        for key, value in want.items():
            if key == "id":
                continue
            if key in ("first", "last"):
                assert near(_ns(got[key]), ns(value)), key
            else:
                assert got[key] == value, (want["id"], key)
        flow = session.flows[want["id"]]
        assert (got["client_addr"], got["client_port"]) == (flow.client.ip, flow.client.port)
        assert (got["server_addr"], got["server_port"]) == (flow.server.ip, flow.server.port)


def check_findings(session: Session, table: list[dict[str, Any]]) -> None:
    rows = report(session, "findings")

    def key(f: dict[str, Any]) -> tuple[Any, ...]:
        source = f.get("analysis") or f.get("source") or export.DECODE
        frame = f["frame"]
        return (frame is None, frame or 0, f["severity"], f["code"], f["message"], f.get("phase"), source)

    assert list(map(key, table)) == list(map(key, rows))  # in the report's order


def check_captures(session: Session, path: Path, table: list[dict[str, Any]]) -> None:
    (got,) = table
    want = report(session, "summary")
    assert got["capture"] == capture_id(path)
    assert got["sha256"] == sha256(path) and got["file_size"] == os.path.getsize(path)
    assert got["path"] == str(path)
    for key in ("format", "packets", "bytes", "captured_bytes", "duration", "truncated", "decoders"):
        assert got[key] == want[key], key
    assert near(None if got["first"] is None else _ns(got["first"]), ns(want["first"]))
    assert near(None if got["last"] is None else _ns(got["last"]), ns(want["last"]))
    flows = dict(want["flows"])
    assert got["flows"] == flows.pop("total")
    assert json.loads(got["flow_transports"]) == flows
    assert json.loads(got["protocols"]) == want["protocols"]
    assert json.loads(got["interfaces"]) == want["interfaces"]
    assert got["linktypes"] == [i["linktype"] for i in want["interfaces"]]
    for severity in ("error", "warn", "note"):
        assert got[f"findings_{severity}"] == want["findings"][severity]
    assert got["protoscope_version"]


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_core_tables_equal_the_reports(path: Path, corpus_lake: Callable[[Path], Exported]) -> None:
    lake = corpus_lake(path)
    assert lake.result.status == "written", lake.result.error
    tables = {name: lake.table(name) for name in CORE}
    assert {name: lake.result.rows[name] for name in CORE} == {name: len(tables[name]) for name in CORE}
    assert lake.result.packets == len(tables["packets"])
    with reporting(path) as session:
        check_packets(session, tables["packets"])
        check_flows(session, tables["flows"])
        check_findings(session, tables["findings"])
        check_captures(session, path, tables["captures"])
    assert {row["capture"] for name in CORE for row in tables[name]} <= {lake.result.capture}
    assert not list((lake.dir / writer.STAGING).iterdir())


def test_every_table_is_written_even_empty(export_dir: Callable[..., Exported]) -> None:
    lake = export_dir(SAMPLES / "grpc-demo.pcap")
    assert lake.result.rows["findings"] == 0
    part = lake.dir / "findings" / f"capture={lake.result.capture}" / writer.PART
    assert pq.read_schema(part).names == [c.name for c in export.FINDINGS.columns]
    assert pq.ParquetFile(part).metadata.num_rows == 0


def test_resume_skips_a_capture_already_there(export_dir: Callable[..., Exported]) -> None:
    path = SAMPLES / "loopback-basic.pcap"
    lake = export_dir(path)
    again = export.export_capture(str(path), str(lake.dir), default_registry())
    assert again.status == "skipped" and again.capture == lake.result.capture
    assert len(read_table(lake.dir, "captures")) == 1


def test_source_and_capture_given_by_the_caller(export_dir: Callable[..., Exported]) -> None:
    lake = export_dir(
        SAMPLES / "loopback-basic.pcap", source="hdfs://nn/caps/a.pcap", capture="00ff00ff00ff00ff"
    )
    (row,) = lake.table("captures")
    assert row["path"] == "hdfs://nn/caps/a.pcap" and row["capture"] == "00ff00ff00ff00ff"


def test_count_limits_the_packets(export_dir: Callable[..., Exported]) -> None:
    lake = export_dir(SAMPLES / "webrtc-turn.pcap", count=10)
    assert [r["frame"] for r in lake.table("packets")] == list(range(1, 11))
    assert lake.table("captures")[0]["packets"] == 10


def test_a_bad_capture_fails_and_leaves_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\xd4\xc3\xb2\xa1" + b"\x00" * 3)
    out = tmp_path / "lake"
    result = export.export_capture(str(bad), str(out), default_registry())
    assert result.status == "failed" and result.error and "\n" not in result.error
    assert _tables(out) == []
    missing = export.export_capture(str(tmp_path / "nothing.pcap"), str(out), default_registry())
    assert missing.status == "failed" and missing.error


def _tables(root: Path) -> list[str]:
    """What a dataset holds outside _staging, and what _staging holds."""
    if not root.exists():
        return []
    found = [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]
    return sorted(found)


def test_a_failure_after_some_tables_leaves_no_partition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(export._Export, "_capture", broken)  # after packets, findings and flows
    out = tmp_path / "lake"
    result = export.export_capture(str(SAMPLES / "webrtc-turn.pcap"), str(out), default_registry())
    assert result.status == "failed" and result.error == "RuntimeError: disk on fire"
    assert _tables(out) == []


def test_a_failure_between_two_moves_takes_back_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    moves: list[str] = []
    real = writer._move_dir

    def second_fails(fs: Any, source: str, target: str) -> None:
        moves.append(target)
        if len(moves) == 2:
            raise OSError("connection reset")
        real(fs, source, target)

    monkeypatch.setattr(writer, "_move_dir", second_fails)
    out = tmp_path / "lake"
    result = export.export_capture(str(SAMPLES / "loopback-basic.pcap"), str(out), default_registry())
    assert result.status == "failed" and result.error == "connection reset"
    assert len(moves) == 2 and _tables(out) == []


def test_leftovers_of_a_crash_are_deleted(tmp_path: Path) -> None:
    path = SAMPLES / "loopback-basic.pcap"
    out = tmp_path / "lake"
    stale = out / "packets" / f"capture={capture_id(path)}"
    stale.mkdir(parents=True)
    (stale / "part-7.parquet").write_bytes(b"half a file")
    result = export.export_capture(str(path), str(out), default_registry())
    assert result.status == "written"
    assert [p.name for p in stale.iterdir()] == [writer.PART]


def test_row_groups_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = SAMPLES / "webrtc-turn.pcap"
    whole = export.export_capture(str(path), str(tmp_path / "whole"), default_registry())
    monkeypatch.setattr(export, "ROW_GROUP_ROWS", 64)
    small = export.export_capture(str(path), str(tmp_path / "small"), default_registry())
    assert small.status == whole.status == "written" and small.packets > 64 * 3
    part = tmp_path / "small" / "packets" / f"capture={small.capture}" / writer.PART
    meta = pq.ParquetFile(part).metadata
    assert meta.num_row_groups == -(-small.packets // 64)
    assert max(meta.row_group(k).num_rows for k in range(meta.num_row_groups)) == 64
    for name in CORE:
        a = [{k: v for k, v in r.items() if k != "exported_at"} for r in read_table(tmp_path / "whole", name)]
        b = [{k: v for k, v in r.items() if k != "exported_at"} for r in read_table(tmp_path / "small", name)]
        assert a == b, name


@pytest.mark.parametrize("crafted", INPUTS, ids=lambda i: i.name)
def test_hostile_inputs_export_whole(
    crafted: Input, tmp_path: Path, export_dir: Callable[..., Exported]
) -> None:
    """The crafted inputs of issue 12 at their test scale: exported (never "failed"), their
    findings and packets as the reports give them."""
    path = crafted.make(tmp_path / f"{crafted.name}.pcap", crafted.small)
    lake = export_dir(path)
    assert lake.result.status == "written", lake.result.error
    session = Session.open(path, default_registry())
    try:
        check_findings(session, lake.table("findings"))
        assert lake.result.packets == len(session.index)
    finally:
        session.close()


def test_a_gzip_capture_is_named_by_its_compressed_bytes(
    tmp_path: Path, export_dir: Callable[..., Exported]
) -> None:
    import gzip

    path = tmp_path / "loopback.pcap.gz"
    path.write_bytes(gzip.compress((SAMPLES / "loopback-basic.pcap").read_bytes()))
    lake = export_dir(path)
    (row,) = lake.table("captures")
    assert row["capture"] == capture_id(path) != capture_id(SAMPLES / "loopback-basic.pcap")
    assert row["format"].endswith(" (gzip)") and row["file_size"] == path.stat().st_size
    assert len(lake.table("packets")) == row["packets"] > 0


# -- two exports of one capture id ------------------------------------------------------------------


def _complete(root: Path, capture: str) -> list[str]:
    """The tables that have a partition of `capture` (each with its one file)."""
    names = []
    for table in sorted(p for p in root.iterdir() if not p.name.startswith("_")):
        part = table / f"capture={capture}" / writer.PART
        if part.is_file():
            names.append(table.name)
    return names


def test_an_export_committing_after_another_of_its_id_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Export A has written its staging when export B of the same id commits (a Spark task's
    retry, two overlapping runs): A's commit finds the capture there under the lock, deletes
    nothing, and is "skipped"."""
    path = SAMPLES / "loopback-basic.pcap"
    out = tmp_path / "lake"
    real = writer.Staging.commit
    inner: list[export.ExportResult] = []
    started: list[bool] = []

    def b_commits_first(self: writer.Staging, tables: Any) -> bool:
        if not started:
            started.append(True)
            inner.append(export.export_capture(str(path), str(out), default_registry()))
        return real(self, tables)

    monkeypatch.setattr(writer.Staging, "commit", b_commits_first)
    a = export.export_capture(str(path), str(out), default_registry())
    assert inner[0].status == "written" and a.status == "skipped"
    tables = _complete(out, a.capture)
    assert set(inner[0].rows) == set(tables) and "captures" in tables
    assert len(read_table(out, "captures")) == 1
    assert not list((out / writer.STAGING).iterdir())  # A's staging removed, both locks released


def test_an_export_never_moves_or_deletes_while_another_holds_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B runs while A is between two moves (A holds the lock): B waits for the lock, gives up
    after LOCK_WAIT with a one-line failure, and has deleted none of A's partitions."""
    path = SAMPLES / "loopback-basic.pcap"
    out = tmp_path / "lake"
    real = writer._move_dir
    inner: list[export.ExportResult] = []
    started: list[bool] = []

    def b_between_moves(fs: Any, source: str, target: str) -> None:
        real(fs, source, target)
        if not started:
            started.append(True)
            inner.append(export.export_capture(str(path), str(out), default_registry()))
            assert Path(target, writer.PART).is_file()  # A's first moved partition is intact

    monkeypatch.setattr(writer, "LOCK_WAIT", 0.2)
    monkeypatch.setattr(writer, "_move_dir", b_between_moves)
    a = export.export_capture(str(path), str(out), default_registry())
    (b,) = inner
    assert a.status == "written" and b.status == "failed"
    assert (
        b.error
        == f"capture {a.capture} is being committed by another export ({out}/_staging/{a.capture}.lock)"
    )
    assert _complete(out, a.capture) == sorted(a.rows)
    assert not list((out / writer.STAGING).iterdir())


def test_a_stale_lock_is_taken_over(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a pid that was this host's and is gone
    path = SAMPLES / "loopback-basic.pcap"
    out = tmp_path / "lake"
    (out / writer.STAGING).mkdir(parents=True)
    lock = out / writer.STAGING / f"{capture_id(path)}{writer.LOCK_SUFFIX}"
    lock.write_text(f"{socket.gethostname()} {child.pid}\n")
    result = export.export_capture(str(path), str(out), default_registry())
    assert result.status == "written" and not lock.exists()


def test_a_live_lock_of_another_host_is_waited_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "LOCK_WAIT", 0.1)
    path = SAMPLES / "loopback-basic.pcap"
    out = tmp_path / "lake"
    (out / writer.STAGING).mkdir(parents=True)
    lock = out / writer.STAGING / f"{capture_id(path)}{writer.LOCK_SUFFIX}"
    lock.write_text("another-host 1\n")
    result = export.export_capture(str(path), str(out), default_registry())
    assert result.status == "failed" and "being committed by another export" in (result.error or "")
    assert lock.read_text() == "another-host 1\n" and _tables(out) == [f"_staging/{lock.name}"]


def test_leftovers_are_never_cleared_from_a_committed_capture(export_dir: Callable[..., Exported]) -> None:
    import pyarrow.fs as pafs

    lake = export_dir(SAMPLES / "loopback-basic.pcap")
    before = _tables(lake.dir)
    writer.clear_leftovers(pafs.LocalFileSystem(), str(lake.dir), lake.result.capture)
    assert _tables(lake.dir) == before


def test_the_callers_digest_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = SAMPLES / "loopback-basic.pcap"
    digest = sha256(path)

    def no_second_read(_: object) -> str:
        raise AssertionError("the file was hashed again")

    monkeypatch.setattr(export.ids, "sha256", no_second_read)
    result = export.export_capture(str(path), str(tmp_path / "lake"), default_registry(), sha256=digest)
    assert result.status == "written" and result.capture == digest[:16]
    (row,) = read_table(tmp_path / "lake", "captures")
    assert row["sha256"] == digest


def test_one_line() -> None:
    assert export.one_line(RuntimeError("a\nb")) == "RuntimeError: a"
    assert export.one_line(OSError("no such file")) == "no such file"
    assert export.one_line(KeyError()) == "KeyError"


# -- text pyarrow cannot encode ---------------------------------------------------------------------


class LoneSurrogate:
    """A third-party analysis whose row and finding hold a lone surrogate (undecodable bytes
    decoded with surrogateescape, say)."""

    name = "odd"

    def feed(self, pdu: Any, ctx: Any) -> None:
        pass

    def rows(self) -> list[dict[str, Any]]:
        finding = {"frame": 1, "severity": "warn", "code": "odd.text", "message": "bad \ud800 text"}
        return [{"label": "x\udcff", "findings": [finding]}]


def test_a_lone_surrogate_is_stored_escaped(tmp_path: Path) -> None:
    from protoscope.decoders.registry import load_registry

    registry = load_registry(use_plugins=False)
    registry.analyses["odd"] = LoneSurrogate  # type: ignore[assignment]
    path = SAMPLES / "loopback-basic.pcap"
    result = export.export_capture(str(path), str(tmp_path / "lake"), registry)
    assert result.status == "written", result.error
    (found,) = [f for f in read_table(tmp_path / "lake", "findings") if f["code"] == "odd.text"]
    session = Session.open(path, registry)
    try:
        (want,) = [f for f in report(session, "findings") if f["code"] == "odd.text"]
        text = io.StringIO()
        write(session, "findings", "text", text)
    finally:
        session.close()
    assert found["message"] == "bad \\ud800 text" and found["source"] == "odd"
    assert want["message"] == "bad \ud800 text" and found["message"] in text.getvalue()
    (row,) = read_table(tmp_path / "lake", "odd")
    assert json.loads(row["json"])["label"] == "x\udcff"


def test_core_strings_are_converted(
    monkeypatch: pytest.MonkeyPatch, export_dir: Callable[..., Exported]
) -> None:
    """A packet's Info and a decoder's finding with a lone surrogate (a guest decoder's text):
    stored escaped, the capture written."""
    real_info = export.report_rows.info
    monkeypatch.setattr(export.report_rows, "info", lambda s, pd: real_info(s, pd) + "\udc80")
    lake = export_dir(SAMPLES / "loopback-basic.pcap")
    assert lake.result.status == "written", lake.result.error
    assert all(p["info"].endswith("\\udc80") for p in lake.table("packets"))


# -- the capture's own key log ----------------------------------------------------------------------


def test_a_guest_whose_configure_fails_once_is_kept_for_later_captures(tmp_path: Path) -> None:
    """The export configures the registry twice per capture (its own key log, then back): a guest
    decoder whose `configure` failed in between is dropped for that capture only."""
    from protoscope.decoders.registry import load_registry
    from tests.inspector.plugins.misbehave import Misbehave

    class FailsOnce(Misbehave):
        calls = 0

        def configure(self, options: object) -> None:
            FailsOnce.calls += 1
            if FailsOnce.calls == 2:  # the export's first configure (the first is the add below)
                raise ValueError("not now")

    registry = load_registry(use_plugins=False)
    registry.add(FailsOnce(), guest=True)
    registry.configure(registry.options)
    errors = list(registry.load_errors)
    for k, sample in enumerate(("loopback-basic.pcap", "webrtc-turn.pcap")):
        result = export.export_capture(str(SAMPLES / sample), str(tmp_path / f"lake{k}"), registry)
        assert result.status == "written", result.error
        assert "misbehave" in registry.decoders and "misbehave" in registry.guests
        assert registry.load_errors == errors
    assert FailsOnce.calls == 5


def test_the_lock_on_a_file_system_without_exclusive_create(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system other than the local one (here the local disk seen through a
    SubTreeFileSystem, as an object store would be): best effort, but a second taker waits."""
    import pyarrow.fs as pafs

    monkeypatch.setattr(writer, "LOCK_WAIT", 0.1)
    fs = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    with writer.capture_lock(fs, "lake", "00ff00ff00ff00ff"):
        assert (tmp_path / "lake" / "_staging" / "00ff00ff00ff00ff.lock").is_file()
        with pytest.raises(writer.LockTimeout), writer.capture_lock(fs, "lake", "00ff00ff00ff00ff"):
            pass
    assert not list((tmp_path / "lake" / "_staging").iterdir())
    with writer.capture_lock(fs, "lake", "00ff00ff00ff00ff"):
        pass
