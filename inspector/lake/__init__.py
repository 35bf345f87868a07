"""The data lake: every report and analysis of a capture as a Parquet table (issue 17).

One dataset is a directory (or an object-store URI) of `<table>/capture=<id>/part-0.parquet` files,
Hive-partitioned by capture id, read by DuckDB (`protoscope query`), Spark, pyarrow or any Parquet
reader. `schema` documents the tables, `export` writes one capture, `runner` many, `spark` many on a
cluster. pyarrow and duckdb are the `lake` extra: nothing outside this package imports them at
module level, so the viewer and the reports work without them.
"""
