"""lake/query.py: DuckDB views over a dataset, the named queries, and the three output formats.

The datasets here are written in the test with pyarrow in the contract's layout, so the query
layer is checked apart from the export (test_cli_lake.py runs both on the samples)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protoscope.inspector.lake import output, query

NAMED = ("error-statuses", "failed-sessions", "lossy-streams", "relayed-sessions", "slow-calls")
DIGITS_ID = "0123456789012345"
"""A capture id of digits alone: left to DuckDB's inference it would read as a BIGINT."""
HEX_ID = "abcdef0123456789"


class Terminal(io.StringIO):
    """A terminal `width` columns wide (as cli's _Held tells the text writer)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.terminal_width = width

    def isatty(self) -> bool:
        return True


def put(folder: Path, table: str, capture: str, data: dict[str, pa.Array | list[object]]) -> None:
    part = folder / table / f"capture={capture}"
    part.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(data), part / "part-0.parquet")


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    folder = tmp_path / "lake"
    for cid, path, extra in ((DIGITS_ID, "/caps/a.pcap", False), (HEX_ID, "/caps/b.pcap", True)):
        put(folder, "captures", cid, {"path": [path], "packets": pa.array([10], pa.int64())})
        calls: dict[str, pa.Array | list[object]] = {
            "call": pa.array([0, 1], pa.int64()),
            "path": ["/demo.Directory/Get", "/demo.Directory/List"],
            "status": pa.array([0, 5], pa.int32()),
            "status_name": ["OK", "NOT_FOUND"],
            "start": pa.array([1_700_000_000_123_456_789, None], pa.timestamp("ns", tz="UTC")),
            "duration": [0.25, float("nan")],
        }
        if extra:  # a capture exported by a newer protoscope: a column the other lacks
            calls["grpc_message"] = ["", "no such person"]
        put(folder, "calls", cid, calls)
    (folder / "_staging" / "x.1.y" / "calls").mkdir(parents=True)  # work in progress: not a table
    (folder / "empty" / f"capture={HEX_ID}").mkdir(parents=True)  # no files: not a table
    return folder


def run(folder: Path | str, sql: str, fmt: str = "json") -> str:
    out = io.StringIO()
    query.run(str(folder), sql, fmt, out)
    return out.getvalue()


def test_a_view_per_table_with_capture_as_text_and_grown_columns(lake: Path) -> None:
    assert query.tables_in(str(lake)) == ["calls", "captures"]
    rows = json.loads(run(lake, "SELECT capture, call, grpc_message FROM calls ORDER BY capture, call"))
    assert rows == [
        {"capture": DIGITS_ID, "call": 0, "grpc_message": None},
        {"capture": DIGITS_ID, "call": 1, "grpc_message": None},
        {"capture": HEX_ID, "call": 0, "grpc_message": ""},
        {"capture": HEX_ID, "call": 1, "grpc_message": "no such person"},
    ]
    joined = json.loads(
        run(
            lake,
            "SELECT k.path, count(*) AS n FROM calls c JOIN captures k USING (capture) GROUP BY 1 ORDER BY 1",
        )
    )
    assert joined == [{"path": "/caps/a.pcap", "n": 2}, {"path": "/caps/b.pcap", "n": 2}]


def test_json_values(lake: Path) -> None:
    sql = (
        "SELECT start, duration, sum(call) OVER () AS total, [1, 2] AS l, {'a': start} AS s, "
        "'\\x01'::BLOB AS b, 1.50::DECIMAL(4, 2) AS d, epoch_ns(start) AS ns "
        "FROM calls WHERE capture = '0123456789012345' ORDER BY call"
    )
    first, second = json.loads(run(lake, sql))
    # nanoseconds kept (a Python datetime would have dropped them), UTC with a Z
    assert first["start"] == "2023-11-14T22:13:20.123456789Z" and first["ns"] == 1_700_000_000_123_456_789
    assert first["s"] == {"a": "2023-11-14T22:13:20.123456789Z"}
    assert first["total"] == 1 and isinstance(first["total"], int)  # DuckDB's HUGEINT sum
    assert first["l"] == [1, 2] and first["b"] == "01" and first["d"] == 1.5
    assert second["start"] is None and second["duration"] is None  # NaN: null in JSON


def test_values_python_cannot_hold_are_text(lake: Path) -> None:
    sql = "SELECT '-infinity'::DATE AS d, 'infinity'::TIMESTAMP AS t, interval 3 second AS i"
    (row,) = json.loads(run(lake, sql))
    assert isinstance(row["d"], str) and row["t"] == str(2**63 - 1) and row["i"] == "P0M0DT3.0S"


def test_csv_has_a_header_and_one_line_a_row(lake: Path) -> None:
    text = run(lake, "SELECT call, status_name, start, [1, 2] AS l FROM calls ORDER BY capture, call", "csv")
    lines = text.splitlines()
    assert lines[0] == "call,status_name,start,l"
    assert lines[1] == '0,OK,2023-11-14T22:13:20.123456789Z,"[1, 2]"'
    assert lines[2] == '1,NOT_FOUND,,"[1, 2]"'
    assert len(lines) == 5


def test_text_is_a_table_and_fits_a_terminal(lake: Path) -> None:
    text = run(lake, "SELECT * FROM calls ORDER BY capture, call", "text")
    assert text.splitlines()[0] == "4 rows"
    assert "/demo.Directory/List" in text and "NOT_FOUND" in text
    wide = "SELECT *, path AS again, status_name AS more, start AS later FROM calls ORDER BY capture, call"
    out = Terminal(80)
    query.run(str(lake), wide, "text", out)
    lines = re.sub("\x1b\\[[0-9;]*m", "", out.getvalue()).splitlines()  # the terminal's styles
    assert max(len(line) for line in lines) <= 80
    assert any(line.startswith("4 rows, columns 1/") for line in lines)  # blocks, first column repeated


def test_text_of_a_capture_string_is_inert(tmp_path: Path) -> None:
    put(tmp_path, "captures", HEX_ID, {"path": ["/a.pcap"]})
    put(tmp_path, "calls", HEX_ID, {"path": ["/x\x1b[2J\u202e"]})
    text = run(tmp_path, "SELECT path FROM calls", "text")
    assert "\x1b" not in text and "\u202e" not in text and "\\x1b[2J\\u202e" in text
    data = run(tmp_path, "SELECT path FROM calls", "json")
    assert "\u202e" not in data and json.loads(data) == [{"path": "/x\x1b[2J\u202e"}]


def test_errors_are_one_line(lake: Path, tmp_path: Path) -> None:
    with pytest.raises(
        query.QueryError, match=r"^Catalog Error: Table with name nope does not exist!"
    ) as err:
        run(lake, "SELECT * FROM nope")
    assert "\n" not in str(err.value)
    with pytest.raises(query.QueryError, match=r"^Parser Error") as err:
        run(lake, "SELEC 1")
    assert "\n" not in str(err.value)
    with pytest.raises(query.QueryError, match="no dataset directory"):
        run(tmp_path / "missing", "SELECT 1")
    (tmp_path / "bare").mkdir()
    with pytest.raises(query.QueryError, match="no tables in"):
        run(tmp_path / "bare", "SELECT 1")
    with pytest.raises(query.QueryError, match="reads a local directory"):
        run("s3://bucket/lake", "SELECT 1")
    assert run(f"file://{lake}", "SELECT count(*) AS n FROM captures") == '[\n{"n": 2}\n]\n'


def test_partitions_of_uncommitted_captures_are_not_read(lake: Path) -> None:
    # What an export that died between two moves leaves: partitions of an id with no `captures`
    # partition (a calls row much slower than the others, and a table of its own).
    crashed = "feedfacefeedface"
    put(
        lake,
        "calls",
        crashed,
        {
            "call": pa.array([0], pa.int64()),
            "path": ["/demo.Directory/Get"],
            "status": pa.array([13], pa.int32()),
            "status_name": ["INTERNAL"],
            "duration": [99.0],
        },
    )
    put(lake, "orphan", crashed, {"x": [1]})
    assert query.tables_in(str(lake)) == ["calls", "captures"]
    rows = json.loads(run(lake, "SELECT capture, count(*) AS n FROM calls GROUP BY 1 ORDER BY 1"))
    assert rows == [{"capture": DIGITS_ID, "n": 2}, {"capture": HEX_ID, "n": 2}]
    # slow-calls' p95 over every call of the dataset: the crashed 99 s call is not one of them
    sql = "SELECT quantile_cont(duration, 0.95) AS p95, max(duration) AS slowest FROM calls"
    sql += " WHERE NOT isnan(duration)"
    assert json.loads(run(lake, sql)) == [{"p95": 0.25, "slowest": 0.25}]
    errors = json.loads(run(lake, query.named_query("error-statuses").sql))
    assert [(r["status_name"], r["calls"]) for r in errors] == [("NOT_FOUND", 2)]


def test_text_shows_the_first_rows_and_counts_the_rest(lake: Path) -> None:
    out = io.StringIO()
    con = query.connect(str(lake))
    try:
        shown = output.write_text(query.execute(con, "SELECT range AS n FROM range(25)"), out, limit=10)
    finally:
        con.close()
    lines = out.getvalue().splitlines()
    assert shown == 25
    assert lines[0] == "25 rows, the first 10"
    assert lines[-1] == "... 15 more rows: use --format csv or json"
    assert sum(1 for line in lines if line.strip(" │|").strip().isdigit()) == 10
    csv_text = run(lake, "SELECT range AS n FROM range(200000)", "csv")  # every row, in batches
    assert csv_text.count("\n") == 200_001


def test_a_statement_without_a_result(lake: Path) -> None:
    assert run(lake, "CREATE TABLE t (a INT)", "json") == "[]\n"
    assert run(lake, "CREATE TABLE t (a INT)", "text").startswith("0 rows\n")  # DuckDB 1.x: "(no result)"
    assert run(lake, "CREATE TABLE t (a INT); SELECT 7 AS seven", "csv") == "seven\n7\n"  # the last one's


def test_a_dataset_path_with_glob_characters(tmp_path: Path) -> None:
    folder = tmp_path / "odd [1]*"
    put(folder, "captures", HEX_ID, {"path": ["/a.pcap"]})
    assert json.loads(run(folder, "SELECT path, capture FROM captures")) == [
        {"path": "/a.pcap", "capture": HEX_ID}
    ]


def test_named_queries_ship_with_descriptions() -> None:
    queries = query.named_queries()
    assert tuple(queries) == NAMED
    for named in queries.values():
        assert named.description and named.sql.lstrip().startswith("-- ")
        assert "captures" in named.sql  # each names the capture's path
    lines = query.describe(list(queries.values()))
    assert lines[0].startswith("error-statuses    gRPC calls")
    with pytest.raises(query.QueryError, match="no query named 'nope' \\(known: error-statuses"):
        query.named_query("nope")


@given(st.lists(st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1)), max_size=20))
def test_any_timestamp_converts(values: list[int | None]) -> None:
    for unit in ("s", "ms", "us", "ns"):
        array = pa.array(values, pa.int64()).cast(pa.timestamp(unit, tz="UTC"))
        converted = output.python_values(array)
        assert len(converted) == len(values)
        assert all((c is None) == (v is None) for c, v in zip(converted, values, strict=True))


@given(st.lists(st.one_of(st.none(), st.text()), max_size=10))
def test_any_text_round_trips_through_json(values: list[str | None]) -> None:
    reader = pa.RecordBatchReader.from_batches(
        pa.schema([("t", pa.string())]), [pa.record_batch([pa.array(values, pa.string())], names=["t"])]
    )
    out = io.StringIO()
    output.write_json(reader, out)
    assert [row["t"] for row in json.loads(out.getvalue())] == values
