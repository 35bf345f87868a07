"""`protoscope query`'s result written out: an aligned text table, CSV or JSON.

Values from Arrow, the way DuckDB hands them over: timestamps as ISO 8601 in UTC with a `Z` and
the digits they hold (nanoseconds for packet times: a Python datetime would drop them), 64-bit
integers exact, DECIMAL and HUGEINT (DuckDB's `sum` of integers) as numbers, BLOBs in hex, lists
and structs as JSON arrays and objects. CSV and JSON are written a batch of rows at a time as
DuckDB produces them (memory stays flat whatever the result's size); text shows TEXT_ROWS rows.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final, TextIO

import pyarrow as pa

from ..report.inert import clean, json_inert

FORMATS: Final = ("text", "csv", "json")
TEXT_ROWS: Final = 10_000
"""Rows the text table shows: its column widths come from every row shown, so they are held in
memory, and a longer table is read by nobody on a terminal (CSV and JSON write them all)."""


def write(reader: pa.RecordBatchReader, fmt: str, out: TextIO) -> int:
    """`reader`'s rows written to `out` in `fmt` (FORMATS); the number of rows."""
    if fmt == "csv":
        return write_csv(reader, out)
    if fmt == "json":
        return write_json(reader, out)
    return write_text(reader, out)


def rows(reader: pa.RecordBatchReader) -> Iterator[list[object]]:
    """Every row of `reader` as plain Python values (see python_values), a batch at a time."""
    for batch in reader:
        yield from _batch_rows(batch)


def _batch_rows(batch: pa.RecordBatch) -> Iterator[list[object]]:
    columns = [python_values(column) for column in batch.columns]
    yield from (list(row) for row in zip(*columns, strict=True))


def python_values(array: pa.Array) -> list[object]:
    """An Arrow column as JSON-ready Python values (the module's docstring says which)."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        return python_values(array.dictionary_decode())
    if pa.types.is_timestamp(kind):
        return _timestamps(array)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        values = python_values(array.flatten())
        lengths = array.value_lengths().to_pylist()
        out: list[object] = []
        at = 0
        for valid, length in zip(array.is_valid().to_pylist(), lengths, strict=True):
            out.append(values[at : at + length] if valid else None)
            at += length if valid else 0
        return out
    if pa.types.is_struct(kind):
        names = [kind.field(i).name for i in range(kind.num_fields)]
        children = [python_values(child) for child in array.flatten()]
        valid = array.is_valid().to_pylist()
        return [
            dict(zip(names, (child[i] for child in children), strict=True)) if valid[i] else None
            for i in range(len(array))
        ]
    try:
        return [_plain(v) for v in array.to_pylist()]
    except (ValueError, OverflowError, pa.ArrowException):
        return _as_text(array)


def _as_text(array: pa.Array) -> list[object]:
    """Values Python cannot hold (a date of -infinity, a year past 9999) as Arrow's text of them,
    or each one's raw number; never an exception."""
    try:
        return list(array.cast(pa.string()).to_pylist())
    except (ValueError, OverflowError, pa.ArrowException):
        pass
    out: list[object] = []
    for scalar in array:
        try:
            out.append(str(scalar.as_py()) if scalar.is_valid else None)
        except (ValueError, OverflowError, pa.ArrowException):
            raw = getattr(scalar, "value", None) if pa.types.is_timestamp(scalar.type) else None
            out.append(str(raw) if raw is not None else None)
    return out


def _timestamps(array: pa.Array) -> list[object]:
    unit = array.type.unit
    digits = {"s": 0, "ms": 3, "us": 6, "ns": 9}[unit]
    per_second = 10**digits
    zone = "Z" if array.type.tz is not None else ""
    out: list[object] = []
    for value in array.cast(pa.int64()).to_pylist():
        if value is None:
            out.append(None)
            continue
        seconds, fraction = divmod(value, per_second)
        try:
            text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        except (OverflowError, OSError, ValueError):
            out.append(str(value))
            continue
        out.append(f"{text}.{fraction:0{digits}d}{zone}" if digits else f"{text}{zone}")
    return out


def _plain(value: object) -> object:
    """A value of to_pylist as JSON holds it."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "isoformat"):  # date, time
        return value.isoformat()
    if isinstance(value, tuple):  # an interval (months, days, nanoseconds)
        return "P{}M{}DT{}S".format(*value[:2], value[2] / 1e9) if len(value) == 3 else list(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def write_csv(reader: pa.RecordBatchReader, out: TextIO) -> int:
    """A header, then one line a row (RFC 4180 quoting); lists and structs as JSON. On a terminal
    a capture's text is made inert (inert.clean) first; piped, it is written as it is."""
    inert = out.isatty()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([clean(n) if inert else n for n in reader.schema.names])
    n = 0
    for row in rows(reader):
        cells = [_csv_cell(v) for v in row]
        writer.writerow([clean(c) if inert else c for c in cells])
        n += 1
    return n


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        return _json_number(value)
    return str(value)


def _json_number(value: float) -> str:
    return repr(value) if math.isfinite(value) else ("NaN" if value != value else "Infinity")


def write_json(reader: pa.RecordBatchReader, out: TextIO) -> int:
    """A JSON array of objects, one a row, keys the result's column names (a name given twice
    keeps its last value, as a JSON object must); NaN and infinities as null."""
    names = reader.schema.names
    out.write("[")
    n = 0
    for row in rows(reader):
        record = {name: _json_safe(value) for name, value in zip(names, row, strict=True)}
        out.write(("," if n else "") + "\n" + json_inert(json.dumps(record, ensure_ascii=False)))
        n += 1
    out.write("\n]\n" if n else "]\n")
    return n


def _json_safe(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def write_text(reader: pa.RecordBatchReader, out: TextIO, limit: int = TEXT_ROWS) -> int:
    """An aligned table as the text reports draw theirs (text.print_table), of the first `limit`
    rows: its columns are laid out from every row it shows, so those are held; the rest are only
    counted, on a last line that names the formats that write them all. Numbers right-aligned;
    floats to 6 significant digits (CSV and JSON keep every digit)."""
    from ..report import text
    from ..report.tables import TextTable

    schema = reader.schema
    headers = [clean(name) for name in schema.names]
    if not headers:
        out.write("(no result)\n")
        return 0
    numeric = [_is_number(field.type) for field in schema]
    cells: list[list[str]] = []
    more = 0
    batches = iter(reader)
    for batch in batches:
        room = limit - len(cells)
        if room <= 0:
            more += batch.num_rows
            continue
        shown = batch.slice(0, room)
        more += batch.num_rows - shown.num_rows
        cells.extend([_text_cell(v) for v in row] for row in _batch_rows(shown))
    total = len(cells) + more
    title = f"{total:,} row{'' if total == 1 else 's'}" + (f", the first {len(cells):,}" if more else "")
    table = TextTable(title, headers, cells, numeric, list(schema.names))
    text.print_table(table, out, text.terminal_width(out))
    if more:
        out.write(f"... {more:,} more row{'' if more == 1 else 's'}: use --format csv or json\n")
    return total


def _is_number(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind))


def _text_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return _json_number(value)
        return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.0f}"
    if isinstance(value, list):
        return clean(", ".join(_text_cell(v) if not isinstance(v, str) else v for v in value))
    if isinstance(value, dict):
        return clean(json.dumps(value, ensure_ascii=False))
    return clean(value)
