"""Which tables a report's rows make: one per row kind, known columns first, nothing dropped."""

from __future__ import annotations

from protoscope.decoders.registry import load_registry
from protoscope.inspector.report.cells import Cells
from protoscope.inspector.report.rows import analysis_rows
from protoscope.inspector.report.tables import kind_of, text_tables
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES

cells = Cells(0.0)


def _rows(capture: str, report: str) -> list[dict[str, object]]:
    session = Session.open(SAMPLES / capture, load_registry())
    try:
        return list(analysis_rows(session, report))
    finally:
        session.close()


def test_sessions_and_turn_allocations_are_tables_of_their_own() -> None:
    rows = _rows("webrtc-turn-refused.pcap", "sessions")
    tables = text_tables("sessions", rows, cells)
    assert [t.title for t in tables] == ["Sessions (1)", "TURN allocations (1)"]
    session, turn = tables
    assert session.headers[:4] == ["id", "failed_phase", "phases", "nominated_pair"]
    assert "kind" not in turn.headers and turn.headers[:4] == ["id", "client", "server", "relayed"]
    # Every key of the rows is a column of its table: nothing is hidden.
    assert set(session.headers) == set(rows[0])
    assert set(turn.headers) == set(rows[1]) - {"kind"}
    assert session.cells[0][session.headers.index("failed_phase")] == "ice"
    assert session.cells[0][session.headers.index("nominated_pair")] == ""
    assert turn.cells[0][turn.headers.index("findings")] == "turn.credentials_refused"


def test_a_calls_kind_is_a_column_not_a_table() -> None:
    rows = _rows("grpc-demo.pcap", "calls")
    assert len({r["kind"] for r in rows}) > 1  # unary, server_streaming, ...
    assert {kind_of("calls", r) for r in rows} == {"calls"}
    (table,) = text_tables("calls", rows, cells)
    assert table.headers[:5] == ["path", "status", "duration", "requests", "responses"]
    # status stands for status_name, path for service and method; every other key follows.
    assert not {"status_name", "service", "method"} & set(table.headers)
    assert set(table.headers) == set(rows[0]) - {"status_name", "service", "method", "grpcurl"}
    statuses = [r[table.headers.index("status")] for r in table.cells]
    assert "NOT_FOUND (5)" in statuses and "OK (0)" in statuses


def test_rows_of_different_shapes_never_miss_a_key() -> None:
    rows: list[dict[str, object]] = [
        {"id": 0, "a": 1},
        {"id": 1, "b": {"x": [1, 2]}},
        {"id": 2, "kind": "other", "c": None},
    ]
    plain, other = text_tables("plugin", rows, cells)
    assert plain.title == "Plugin (2)" and plain.headers == ["id", "a", "b"]
    assert plain.cells == [["0", "1", ""], ["1", "", "x: 1, 2"]]
    assert other.title == "Plugin: other (1)" and other.headers == ["id", "c"]
    assert plain.numeric == [True, True, False]


def test_an_open_call_says_so() -> None:
    rows: list[dict[str, object]] = [{"path": None, "status": None, "status_name": None, "end": None}]
    (table,) = text_tables("calls", rows, cells)
    row = dict(zip(table.headers, table.cells[0], strict=True))
    assert row["status"] == "open" and row["path"] == "(unknown: headers before the capture)"
