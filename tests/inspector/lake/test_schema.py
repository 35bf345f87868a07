"""The lake's schema: names only grow, and docs/lake-schema.md is what the schema module prints.

schema_snapshot.json holds every table's columns and types as shipped. A table or column missing
now, or with another type, fails: names only grow (readers' queries, Spark jobs and dashboards
name them). A new table or column fails too until it is recorded: run

    PROTOSCOPE_UPDATE_SCHEMA=1 .venv/bin/pytest tests/inspector/lake/test_schema.py

which adds the new entries to the snapshot (keeping every old one) and rewrites docs/lake-schema.md.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pyarrow as pa
import pytest

from protoscope.inspector.lake import schema
from tests.conftest import ROOT

from .conftest import default_registry

SNAPSHOT = Path(__file__).with_name("schema_snapshot.json")
DOCS = ROOT / "docs" / "lake-schema.md"
UPDATE = os.environ.get("PROTOSCOPE_UPDATE_SCHEMA") == "1"


def current() -> dict[str, dict[str, str]]:
    tables = schema.all_tables(default_registry())
    return {name: {c.name: c.type for c in table.columns} for name, table in tables.items()}


def test_names_only_grow() -> None:
    now = current()
    old: dict[str, dict[str, str]] = json.loads(SNAPSHOT.read_text()) if SNAPSHOT.exists() else {}
    problems = []
    for table, columns in old.items():
        if table not in now:
            problems.append(f"table {table} is gone")
            continue
        for column, type_ in columns.items():
            if column not in now[table]:
                problems.append(f"{table}.{column} is gone")
            elif now[table][column] != type_:
                problems.append(f"{table}.{column} was {type_}, is {now[table][column]}")
    assert not problems, "names only grow (add a column instead): " + "; ".join(problems)
    merged = {t: {**old.get(t, {}), **cols} for t, cols in now.items()}
    if UPDATE:
        SNAPSHOT.write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n")
        return
    new = sorted(f"{t}.{c}" for t, cols in now.items() for c in cols if c not in old.get(t, {}))
    assert not new, f"new columns not in {SNAPSHOT.name} (PROTOSCOPE_UPDATE_SCHEMA=1 adds them): {new}"


def test_docs_are_what_the_module_prints() -> None:
    out = io.StringIO()
    schema.markdown(schema.all_tables(default_registry()), out)
    if UPDATE:
        DOCS.parent.mkdir(exist_ok=True)
        DOCS.write_text(out.getvalue())
    assert DOCS.read_text() == out.getvalue(), "regenerate: python -m protoscope.inspector.lake.schema"


def test_every_type_of_the_vocabulary_has_an_arrow_type() -> None:
    for t in schema.TYPES:
        assert isinstance(schema.arrow_type(t), pa.DataType)
    assert schema.arrow_type("timestamp") == pa.timestamp("ns", tz="UTC")
    assert schema.arrow_type("seconds") == pa.float64()
    with pytest.raises(ValueError, match="unknown column type"):
        schema.arrow_type("decimal")


def test_core_tables_follow_the_conventions() -> None:
    for table in schema.CORE_TABLES:
        names = [c.name for c in table.columns]
        assert len(names) == len(set(names)), table.name
        assert schema.PARTITION not in names  # the partition is in the path only
        for c in table.columns:
            if c.name.endswith("_port"):
                assert c.type == "uint16", c.name
            if c.name in ("time", "first", "last"):
                assert c.type == "timestamp", c.name
