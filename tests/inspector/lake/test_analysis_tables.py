"""The analyses' tables: every row of every analysis report lands in its tables with equal values
(on every sample and public capture), conversions, hostile rows (nulls, never an exception),
plugin analyses with and without `lake_columns`, and Parquet read back against the JSON report."""

from __future__ import annotations

import enum
import functools
import io
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protoscope.decoders.registry import Registry, load_registry
from protoscope.decoders.tls.keylog import KeyLog
from protoscope.inspector.lake import analysis_tables as at
from protoscope.inspector.lake.schema import CORE_TABLES, arrow_schema
from protoscope.inspector.report.output import write
from protoscope.inspector.report.rows import AnalysisPass, fresh_analyses
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES, public_captures

from .conftest import Exported, lake_registry, reporting

CORPUS = sorted(p for p in SAMPLES.iterdir() if ".pcap" in p.name) + public_captures()


# -- registries and rows ------------------------------------------------------------------------


def keys_of(capture: Path) -> Path | None:
    """The key log beside a sample (`webrtc-datachannels.keys`), as --keylog would be given."""
    keys = capture.with_name(capture.name.split(".")[0] + ".keys")
    return keys if keys.is_file() else None


def registry_for(capture: Path | None = None) -> Registry:
    """The in-tree registry, with the STUN transactions analysis (until its entry point is
    installed) and the capture's key log."""
    registry = load_registry(use_plugins=False)
    if "stun_transactions" not in registry.analyses:
        from protoscope.decoders.stun.transactions import StunTransactionAnalysis

        registry.analyses["stun_transactions"] = StunTransactionAnalysis
    keys = keys_of(capture) if capture is not None else None
    if keys is not None:
        keylog = KeyLog()
        keylog.add_text(keys.read_text(), str(keys))
        registry.configure({**registry.options, "tls.keylog": keylog})
    return registry


def analysis_rows(capture: Path, registry: Registry) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """One decoding pass over every analysis: (report -> its rows in order, report -> the
    batches they came in)."""
    session = Session.open(capture, registry)
    batches: dict[str, list[Any]] = {}
    decoding = AnalysisPass(
        session, fresh_analyses(session), lambda name, rows: batches.setdefault(name, []).append(rows)
    )
    for _ in decoding.packets():
        pass
    decoding.finish()
    return {name: [r for batch in b for r in batch] for name, b in batches.items()}, batches


@functools.cache
def registry_default() -> Registry:
    return registry_for()


# -- what a column should hold, written apart from the module's converters ----------------------


def stored(type_: str, value: Any) -> Any:
    """What a column of `type_` holds for a report value that fits it."""
    if value is None:
        return None
    if type_ == "timestamp":
        return round(value * 1e9) if isinstance(value, float) else value * 10**9
    if type_ in ("float64", "seconds"):
        return float(value)
    return value


def read(type_: str, value: Any) -> Any:
    """A stored value as the report's JSON would give it back (json columns parsed)."""
    return json.loads(value) if type_ == "json" and value is not None else value


def same(type_: str, got: Any, value: Any) -> bool:
    if type_ == "json":
        return bool(read(type_, got) == json.loads(json.dumps(value)))
    return bool(got == stored(type_, value))


def selected(key: str, row: Mapping[str, Any]) -> Any:
    return (row["selected_pair"] or {}).get(key)


DERIVED: dict[str, dict[str, Callable[[Mapping[str, Any]], Any]]] = {
    "calls": {
        "client_addr": lambda r: r["client"].rpartition(":")[0].strip("[]") if r["client"] else None,
        "client_port": lambda r: int(r["client"].rpartition(":")[2]) if r["client"] else None,
        "server_addr": lambda r: r["server"].rpartition(":")[0].strip("[]") if r["server"] else None,
        "server_port": lambda r: int(r["server"].rpartition(":")[2]) if r["server"] else None,
        "requests": lambda r: len(r["requests"]) + r["requests_omitted"],
        "responses": lambda r: len(r["responses"]) + r["responses_omitted"],
    },
    "streams": {
        "src_addr": lambda r: r["src"].rpartition(":")[0].strip("[]"),
        "src_port": lambda r: int(r["src"].rpartition(":")[2]),
        "dst_addr": lambda r: r["dst"].rpartition(":")[0].strip("[]"),
        "dst_port": lambda r: int(r["dst"].rpartition(":")[2]),
    },
    "sessions": {
        "dtls_state": lambda r: r["dtls"]["state"],
        "dtls_version": lambda r: r["dtls"].get("version"),
        "dtls_client": lambda r: r["dtls"].get("client"),
        **{
            f"selected_{k}": functools.partial(selected, k)
            for k in ("local", "remote", "local_type", "remote_type", "frame", "reason")
        },
        "relayed": lambda r: (
            None
            if r["selected_pair"] is None
            else "relay" in (r["selected_pair"]["local_type"], r["selected_pair"]["remote_type"])
            or any(p["selected"] and p["relayed"] for p in r["candidate_pairs"])
        ),
        "nominated_local": lambda r: (r["nominated_pair"] or {}).get("local"),
        "nominated_remote": lambda r: (r["nominated_pair"] or {}).get("remote"),
        "diagnosis": lambda r: r["diagnosis"]["summary"],
        "relay_reason": lambda r: r["diagnosis"]["relay"],
        "consent": lambda r: r["diagnosis"]["consent"],
        "restarts": lambda r: r["diagnosis"]["restarts"],
        "connected_ms": lambda r: r["diagnosis"]["timings_ms"]["connected"],
        "dtls_done_ms": lambda r: r["diagnosis"]["timings_ms"]["dtls_done"],
        "first_media_ms": lambda r: r["diagnosis"]["timings_ms"]["first_media"],
    },
    "ice_pairs": {
        "local_type": lambda p: (p["local_candidate"] or {}).get("type"),
        "remote_type": lambda p: (p["remote_candidate"] or {}).get("type"),
        "checks_sent": lambda p: p["checks"]["sent"],
        "checks_received": lambda p: p["checks"]["received"],
        "responses_sent": lambda p: p["checks"]["responses_sent"],
        "responses_received": lambda p: p["checks"]["responses_received"],
    },
    "nat": {
        "binding_lifetime_at_least": lambda n: (n.get("binding_lifetime_s") or {}).get("at_least"),
        "binding_lifetime_at_most": lambda n: (n.get("binding_lifetime_s") or {}).get("at_most"),
    },
    "datachannels": {
        "opened_frame": lambda r: (r["opened"] or {}).get("frame"),
        "opened_time": lambda r: (r["opened"] or {}).get("time"),
        "opened_direction": lambda r: (r["opened"] or {}).get("direction"),
        "acked_frame": lambda r: (r["acked"] or {}).get("frame"),
        "acked_time": lambda r: (r["acked"] or {}).get("time"),
        "closed_frame": lambda r: (r["closed"] or {}).get("frame"),
        "closed_time": lambda r: (r["closed"] or {}).get("time"),
        "closed_by": lambda r: (r["closed"] or {}).get("by"),
    },
}
"""Each derived column's value from the report row, as a reader would work it out."""

CHILDREN: dict[str, set[str]] = {
    "calls": {"requests", "responses"},
    "streams": {"jitter_ms_per_second", "lost_per_second"},
    "sessions": {
        "phases",
        "candidates",
        "candidate_pairs",
        "paths",
        "media",
        "nat",
        "selected_pair",
        "nominated_pair",
    },
    "ice_pairs": {"local_candidate", "remote_candidate", "checks"},
    "turn_allocations": {"kind"},
    "nat": {"kind", "id"},
}
"""Keys of a report row (or list item) that a child table or derived columns take, not a column."""


def check_item(shape: at.Shape, out: Mapping[str, Any], item: Mapping[str, Any], where: str) -> None:
    """Every column of `out` against the report's `item`, and every key of `item` taken."""
    name = shape.table.name
    derived = DERIVED.get(name, {})
    taken = set(CHILDREN.get(name, ()))
    for col in shape.cols:
        column = col.column
        if col.given:
            continue
        if col.get is not None:
            want = derived[column.name](item)
            assert same(column.type, out[column.name], want), (where, column.name, out[column.name], want)
            continue
        assert col.key is not None
        taken.add(col.key)
        value = item.get(col.key)
        if col.count:
            want = len(value) if isinstance(value, list) else value
            assert out[column.name] == want, (where, column.name)
        else:
            assert same(column.type, out[column.name], value), (where, column.name, out[column.name], value)
    missing = set(item) - taken
    assert not missing, f"{where}: keys of the report no column of {name} takes: {sorted(missing)}"


def check_report(report: str, rows: list[Any], tables: Mapping[str, list[dict[str, Any]]]) -> None:
    """Every row of `report` against the table rows split from it."""
    shapes = {s.table.name: s for s in at.IN_TREE[report]}
    cursor = {name: 0 for name in shapes}

    def take(name: str, n: int = 1) -> list[dict[str, Any]]:
        got = tables[name][cursor[name] : cursor[name] + n]
        cursor[name] += n
        assert len(got) == n, f"{name}: fewer rows than the report gives"
        return got

    for k, row in enumerate(rows):
        where = f"{report}[{k}]"
        if report == "calls":
            (call,) = take("calls")
            assert call["call"] == k
            check_item(shapes["calls"], call, row, where)
            for key, direction in (("requests", "request"), ("responses", "response")):
                for j, (out, item) in enumerate(
                    zip(take("grpc_messages", len(row[key])), row[key], strict=True)
                ):
                    assert (out["call"], out["direction"], out["index"]) == (k, direction, j)
                    assert (out["flow"], out["stream_id"], out["path"]) == (
                        row["flow"],
                        row["stream_id"],
                        row["path"],
                    )
                    check_item(shapes["grpc_messages"], out, item, f"{where}.{key}[{j}]")
        elif report == "streams":
            (stream,) = take("streams")
            assert stream["stream"] == k
            check_item(shapes["streams"], stream, row, where)
            seconds = take("stream_seconds", len(row["jitter_ms_per_second"]))
            assert len(row["lost_per_second"]) == len(seconds)
            for j, out in enumerate(seconds):
                assert out == {
                    "stream": k,
                    "ssrc": row["ssrc"],
                    "second": j,
                    "jitter_ms": float(row["jitter_ms_per_second"][j]),
                    "lost": row["lost_per_second"][j],
                }
        elif report == "sessions":
            kind = row.get("kind")
            if kind == "turn_allocation":
                check_item(shapes["turn_allocations"], take("turn_allocations")[0], row, where)
            elif kind == "nat":
                (out,) = take("nat")
                assert (out["session"], out["row"], out["index"]) == (None, row["id"], 0)
                check_item(shapes["nat"], out, row, where)
            else:
                assert kind is None, f"{where}: a kind of session row no table takes: {kind}"
                (out,) = take("sessions")
                check_item(shapes["sessions"], out, row, where)
                check_phases(row, take("session_phases", len(phases_of(row))))
                for key, name in (
                    ("candidates", "ice_candidates"),
                    ("candidate_pairs", "ice_pairs"),
                    ("paths", "session_paths"),
                    ("media", "session_media"),
                    ("nat", "nat"),
                ):
                    for j, (child, item) in enumerate(zip(take(name, len(row[key])), row[key], strict=True)):
                        assert (child["session"], child["index"]) == (row["id"], j)
                        check_item(shapes[name], child, item, f"{where}.{key}[{j}]")
        elif report == "datachannels":
            (channel,) = take("datachannels")
            assert channel["datachannel"] == k
            check_item(shapes["datachannels"], channel, row, where)
            for j, (out, item) in enumerate(
                zip(take("datachannel_messages", len(row["messages"])), row["messages"], strict=True)
            ):
                assert (out["datachannel"], out["index"], out["stream_id"]) == (k, j, row["stream_id"])
                check_item(shapes["datachannel_messages"], out, item, f"{where}.messages[{j}]")
        else:
            (out,) = take(report)
            assert out["transaction"] == k
            check_item(shapes[report], out, row, where)
    for name, n in cursor.items():
        assert n == len(tables[name]), f"{name}: more rows than the report gives"


def phases_of(row: Mapping[str, Any]) -> list[str]:
    names = dict.fromkeys([*at.PHASES, *row["phases"]])
    if row["failed_phase"] is not None:
        names[row["failed_phase"]] = None
    return list(names)


def check_phases(row: Mapping[str, Any], out: list[dict[str, Any]]) -> None:
    for phase, got in zip(phases_of(row), out, strict=True):
        reached = row["phases"].get(phase)
        assert got == {
            "session": row["id"],
            "phase": phase,
            "time": None if reached is None else round(reached["time"] * 1e9),
            "frame": None if reached is None else reached["frame"],
            "reached": reached is not None,
            "failed": phase == row["failed_phase"],
        }


def split_all(registry: Registry, batches: Mapping[str, list[Any]]) -> dict[str, list[dict[str, Any]]]:
    """The batches through one Splitter as an export feeds it; every table checked by Arrow."""
    splitter = at.Splitter(registry)
    tables = {t.name: t for ts in at.tables_for(registry).values() for t in ts}
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in tables}
    for report, report_batches in batches.items():
        for batch in report_batches:
            for name, rows in splitter.split(report, batch).items():
                out[name] += rows
    for name, rows in out.items():
        pa.RecordBatch.from_pylist(rows, schema=arrow_schema(tables[name]))  # every value fits its type
    return out


# -- every capture: every row in its tables --------------------------------------------------------


@pytest.mark.parametrize("capture", CORPUS, ids=lambda p: p.name)
def test_every_row_lands_in_its_tables(capture: Path) -> None:
    registry = registry_for(capture) if keys_of(capture) else registry_default()
    rows, batches = analysis_rows(capture, registry)
    tables = split_all(registry, batches)
    for report in at.IN_TREE:
        check_report(report, rows.get(report, []), tables)


def test_the_samples_fill_every_table() -> None:
    """The corpus test above means something: together the samples give rows to every table."""
    filled: set[str] = set()
    for name in ("grpc-demo", "webrtc-turn", "webrtc-datachannels", "webrtc-srtp80"):
        capture = SAMPLES / f"{name}.pcap"
        registry = registry_for(capture)
        filled |= {t for t, rows in split_all(registry, analysis_rows(capture, registry)[1]).items() if rows}
    assert filled == {s.table.name for shapes in at.IN_TREE.values() for s in shapes} - {"sessions_other"}


def test_stun_transactions_has_a_column_per_key() -> None:
    """The table is written here, with docs; the analysis says which keys its rows have."""
    from protoscope.decoders.stun.transactions import ROW_KEYS

    columns = {c.name: c.type for c in at.STUN_TRANSACTIONS.table.columns}
    assert columns.pop("findings") == "int32"  # a count, as in every table (the findings table has them)
    assert columns.pop("transaction") == "int64"
    assert set(columns) == set(ROW_KEYS) - {"findings"}


# -- conversions ----------------------------------------------------------------------------------


class Colour(enum.IntEnum):
    RED = 1


class Name(enum.StrEnum):
    ADA = "ada"


@pytest.mark.parametrize(
    ("type_", "value", "want"),
    [
        ("timestamp", 1795498645.033688, round(1795498645.033688 * 1e9)),
        ("timestamp", 1700000000, 1700000000 * 10**9),
        ("timestamp", math.nan, None),
        ("timestamp", math.inf, None),
        ("timestamp", 1e300, None),
        ("timestamp", "1700000000", None),
        ("timestamp", True, None),
        ("int64", 1 << 63, None),
        ("int64", -(1 << 63), -(1 << 63)),
        ("int64", True, None),
        ("int64", "12", None),
        ("int64", 12.0, None),
        ("int64", Colour.RED, 1),
        ("int32", 1 << 31, None),
        ("uint16", 65535, 65535),
        ("uint16", 65536, None),
        ("uint16", -1, None),
        ("uint32", 0xFFFFFFFF, 0xFFFFFFFF),
        ("uint64", (1 << 64) - 1, (1 << 64) - 1),
        ("uint64", 1 << 64, None),
        ("float64", 3, 3.0),
        ("float64", 1 << 2000, None),
        ("float64", False, None),
        ("seconds", 0.25, 0.25),
        ("bool", 1, None),
        ("bool", False, False),
        ("string", 5, None),
        ("string", "h\u00e9llo", "h\u00e9llo"),
        ("string", Name.ADA, "ada"),
        ("string", "a\udc80b", "a\\udc80b"),
        ("list<string>", ["a", 1, None], ["a", None, None]),
        ("list<string>", "ab", None),
        ("list<int64>", (1, 1 << 70, "x"), [1, None, None]),
        ("json", None, None),
        ("json", {"b": [1, 2.5, None], "a": "\u65e5"}, '{"b": [1, 2.5, null], "a": "\u65e5"}'),
        ("json", {1: "x"}, '{"1": "x"}'),
        ("json", {(1, 2): "x"}, None),
        ("json", [math.nan], None),
        ("json", "a\udc80", '"a\\udc80"'),
        ("json", "\x1b[2J", '"\\u001b[2J"'),
    ],
)
def test_conversions(type_: str, value: Any, want: Any) -> None:
    got = at.CONVERTERS[type_](value)
    assert got == want and type(got) is type(want)
    shape = at.Shape("t", "--report t", "", [at.from_key("c", type_)])
    assert shape.row({"c": value}, {}) == {"c": want}  # the compiled fast path agrees
    pa.RecordBatch.from_pylist([{"c": got}], schema=arrow_schema(shape.table))


def test_json_columns_read_back_as_the_report() -> None:
    row = {
        "request_metadata": {"x-request-id": "req-1", "trace-bin": "010203ff"},
        "trailers": {"k": ["a", "b"]},
    }
    call = at.CALLS.row(row, {"call": 0})
    assert json.loads(call["request_metadata"]) == row["request_metadata"]
    assert json.loads(call["trailers"]) == row["trailers"]
    assert call["response_metadata"] is None


def test_endpoints() -> None:
    assert at._endpoint("10.0.0.1:5060") == ("10.0.0.1", 5060)
    assert at._endpoint("[2001:db8::1]:443") == ("2001:db8::1", 443)
    assert at._endpoint("2001:db8::1") == ("2001:db8::1", None)
    assert at._endpoint("host") == ("host", None)
    row = at.STREAMS.row({"src": "[::1]:70000", "dst": 5}, {"stream": 0})
    assert (row["src_addr"], row["src_port"], row["dst_addr"], row["dst_port"]) == ("::1", None, None, None)


def test_positions_go_on_across_batches() -> None:
    splitter = at.Splitter(registry_default())
    first = splitter.split("calls", [{"flow": 0}, {"flow": 1}])
    second = splitter.split("calls", [{"flow": 2, "requests": [{"frame": 9}]}])
    assert [c["call"] for c in first["calls"] + second["calls"]] == [0, 1, 2]
    assert second["grpc_messages"] == [
        {
            "call": 2,
            "flow": 2,
            "stream_id": None,
            "path": None,
            "direction": "request",
            "index": 0,
            "frame": 9,
            "time": None,
            "compressed": None,
            "size": None,
            "uncompressed_size": None,
            "type": None,
            "message": None,
        }
    ]
    assert splitter.split("no-such-report", [{}]) == {}


def test_a_session_row_of_another_kind() -> None:
    out = at.Splitter(registry_default()).split("sessions", [{"id": 7, "kind": "sfu", "x": [1]}])
    assert out["sessions_other"] == [{"row": 7, "kind": "sfu", "json": '{"id": 7, "kind": "sfu", "x": [1]}'}]
    assert not out["sessions"]


# -- hostile rows ---------------------------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 70), max_value=1 << 70)
    | st.floats()
    | st.text(st.characters(blacklist_categories=()), max_size=8)
)
VALUES = st.recursive(
    SCALARS | st.sampled_from([Colour.RED, Name.ADA]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6) | st.integers(), inner, max_size=4)
    ),
    max_leaves=8,
)


def keys(report: str) -> list[str]:
    """Every key the report's tables read, at any depth (so that hostile rows hit them)."""
    out = {"kind", "turn_allocation", "nat", "requests", "responses", "messages", "phases", "candidates"}
    out |= set(CHILDREN.get(report, ())) | {k for ks in CHILDREN.values() for k in ks}
    for shape in at.IN_TREE.get(report, ()):
        out |= {col.key for col in shape.cols if col.key is not None}
        out |= {col.column.name for col in shape.cols}
    return sorted(out | set(at.PHASES) | {"time", "frame", "summary", "timings_ms", "local_type", "state"})


def hostile_rows(report: str) -> st.SearchStrategy[list[Any]]:
    names = st.sampled_from(keys(report))
    kinds = st.sampled_from([None, "turn_allocation", "nat", "other"])
    row = st.dictionaries(names | st.text(max_size=4), VALUES, max_size=12)
    with_kind = st.tuples(row, kinds).map(lambda rk: rk[0] if rk[1] is None else {**rk[0], "kind": rk[1]})
    nested = st.dictionaries(names, st.lists(row | VALUES, max_size=3) | row, max_size=6)
    return st.lists(with_kind | nested | VALUES, max_size=5)


@pytest.mark.parametrize("report", [*at.IN_TREE, "latency", "flows"])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_hostile_rows_become_nulls(report: str, data: st.DataObject) -> None:
    registry = plugin_registry() if report in ("latency", "flows") else registry_default()
    tables = {t.name: t for ts in at.tables_for(registry).values() for t in ts}
    splitter = at.Splitter(registry)
    for _ in range(2):  # positions go on: a second batch
        out = splitter.split(report, data.draw(hostile_rows(report)))
        for name, table_rows in out.items():
            for row in table_rows:
                assert set(row) == {c.name for c in tables[name].columns}
            pa.RecordBatch.from_pylist(table_rows, schema=arrow_schema(tables[name]))


def test_hostile_values_in_real_keys() -> None:
    row = {
        "id": "7",
        "flow": 1 << 64,
        "ufrags": "ab",
        "flows": [1, "2", None, 1 << 80],
        "phases": {"ice": {"time": "soon", "frame": -1}, 3: {}, "dtls": [1]},
        "failed_phase": ["ice"],
        "selected_pair": {"local_type": "relay", "frame": 2.5},
        "diagnosis": {"timings_ms": {"connected": "1"}, "summary": 4},
        "candidates": [1, None, {"port": 70000, "priority": 1 << 64}],
        "candidate_pairs": {"a": 1},
        "findings": "none",
    }
    out = at.Splitter(registry_default()).split("sessions", [row])
    (session,) = out["sessions"]
    assert (
        session["session"] is None and session["ufrags"] is None and session["flows"] == [1, None, None, None]
    )
    assert session["relayed"] is True and session["selected_frame"] is None and session["diagnosis"] is None
    assert session["findings"] is None and session["connected_ms"] is None
    assert [c["port"] for c in out["ice_candidates"]] == [None, None, None]
    assert out["ice_pairs"] == []
    phases = {p["phase"]: p for p in out["session_phases"]}
    assert phases["ice"]["time"] is None and phases["ice"]["reached"] and phases["dtls"]["frame"] is None


# -- plugin analyses -------------------------------------------------------------------------------


class Declared:
    name: ClassVar[str] = "latency"
    lake_columns: ClassVar[Mapping[object, object]] = {
        "host": "string",
        "at": "timestamp",
        "ms": "float64",
        "port": "uint16",
        "extra": "no-such-type",
        "capture": "string",
        "row": "string",
        "findings": "int32",
        7: "string",
    }


class Undeclared:
    name: ClassVar[str] = "flows"


class BadDeclaration:
    name: ClassVar[str] = "bad"

    @property
    def lake_columns(self) -> Mapping[str, str]:
        raise RuntimeError("no")


def plugin_registry() -> Registry:
    registry = Registry()
    for name, make in (
        ("latency", Declared),
        ("flows", Undeclared),
        ("My-Report", Undeclared),
        ("calls", Undeclared),
    ):
        registry.analyses[name] = make  # type: ignore[assignment]
    registry.analyses["bad"] = BadDeclaration  # type: ignore[assignment]
    return registry


def test_plugin_tables() -> None:
    registry = plugin_registry()
    tables = at.tables_for(registry)
    assert {r: [t.name for t in ts] for r, ts in tables.items()} == {
        "My-Report": ["my_report"],
        "bad": ["bad"],
        "calls": ["plugin_calls"],  # a guest that took an in-tree name: not our calls table
        "flows": ["plugin_flows"],
        "latency": ["latency"],
    }
    (latency,) = tables["latency"]
    assert [(c.name, c.type) for c in latency.columns] == [
        ("row", "int64"),
        ("host", "string"),
        ("at", "timestamp"),
        ("ms", "float64"),
        ("port", "uint16"),
        ("extra", "json"),
        ("findings", "int32"),
    ]
    assert [(c.name, c.type) for c in tables["flows"][0].columns] == [("row", "int64"), ("json", "json")]
    assert [c.name for c in tables["bad"][0].columns] == ["row", "json"]
    core = {t.name for t in CORE_TABLES}
    assert not core & {t.name for ts in tables.values() for t in ts}


def test_plugin_rows() -> None:
    registry = plugin_registry()
    splitter = at.Splitter(registry)
    rows: list[Any] = [
        {
            "host": "a",
            "at": 1.5,
            "ms": 2,
            "port": 80,
            "extra": {"k": [1]},
            "findings": [{"code": "x"}],
            "row": "r",
        },
        {"host": 3, "port": 1 << 20, "findings": 4},
        {"findings": [{"frame": None, "severity": "error", "code": "analysis.timeout", "message": "m"}]},
    ]
    assert splitter.split("latency", rows)["latency"] == [
        {
            "row": 0,
            "host": "a",
            "at": 1_500_000_000,
            "ms": 2.0,
            "port": 80,
            "extra": '{"k": [1]}',
            "findings": 1,
        },
        {"row": 1, "host": None, "at": None, "ms": None, "port": None, "extra": None, "findings": 4},
        {"row": 2, "host": None, "at": None, "ms": None, "port": None, "extra": None, "findings": 1},
    ]
    odd: list[Any] = [{"a": 1}, [2]]
    assert splitter.split("flows", odd)["plugin_flows"] == [
        {"row": 0, "json": '{"a": 1}'},
        {"row": 1, "json": "[2]"},
    ]
    assert splitter.split("My-Report", [{"b": None}])["my_report"] == [{"row": 0, "json": '{"b": null}'}]


# -- Parquet read back against the JSON report ------------------------------------------------------


def json_report(session: Session, name: str) -> list[Any]:
    out = io.StringIO()
    write(session, name, "json", out)
    rows: list[Any] = json.loads(out.getvalue())
    return rows


@pytest.mark.parametrize("capture", CORPUS, ids=lambda p: p.name)
def test_parquet_equals_the_json_report(capture: Path, corpus_lake: Callable[[Path], Exported]) -> None:
    """Every analysis table of every sample and public capture, read back, is the JSON report
    split by the module (whose values check_report checks apart from its converters). The
    export is the one test_export's core comparison reads (conftest.corpus_lake)."""
    name = capture.name.split(".")[0]
    registry = lake_registry(capture)
    lake = corpus_lake(capture)
    assert lake.result.status == "written", lake.result.error
    tables = at.tables_for(registry)
    with reporting(capture) as session:
        for report in tables:
            rows = json_report(session, report)
            want = split_all(registry, {report: [rows]})
            if report in at.IN_TREE:
                check_report(report, rows, want)
            for table in tables[report]:
                got = [{k: v for k, v in r.items() if k != "capture"} for r in lake.table(table.name)]
                assert got == want[table.name], table.name
    calls = lake.table("calls")
    if name == "grpc-demo":
        assert (
            calls and {c["status_name"] for c in calls} >= {"OK"} and all(c["duration"] >= 0 for c in calls)
        )
    if name == "webrtc-turn":
        assert [s["relayed"] for s in lake.table("sessions")] == [True]


def test_one_phase_order_and_one_set_of_converters() -> None:
    """The lake takes the phase order from the sessions analysis, and the converters (also the
    core tables') from convert.py: no copies that could drift apart."""
    from protoscope.decoders.webrtc import sessions
    from protoscope.inspector.lake import convert, export, writer

    assert at.PHASES is sessions.PHASES
    assert at.CONVERTERS is convert.CONVERTERS and export._json is convert._json
    assert writer.ROW_GROUP_ROWS == export.ROW_GROUP_ROWS and not hasattr(writer, "PHASES")
    assert [s.table.name for s in at.IN_TREE["sessions"]][:2] == ["sessions", "session_phases"]
