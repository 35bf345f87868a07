"""Without the `lake` and `spark` extras (pyarrow, duckdb, communityid, pyspark) the reports and
the viewer's code paths work, and the lake's commands say in one line what to install.

Each run is a subprocess whose imports of those packages fail (a meta path finder raises
ModuleNotFoundError for them, as an environment without them does), since this test process has
them loaded already. Also: the README shows every named query as it ships."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from protoscope.inspector.lake import query
from tests.conftest import ROOT, SAMPLES

EXTRAS = ("pyarrow", "duckdb", "communityid", "pyspark")
RUN_WITHOUT_EXTRAS = """
import contextlib, io, json, sys

BLOCKED = set(sys.argv[1].split(","))

class WithoutExtras:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, WithoutExtras())
from protoscope.inspector.cli import main

results = []
for argv in json.loads(sys.argv[2]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    results.append([code, out.getvalue(), err.getvalue()])
loaded = sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
print(json.dumps({"results": results, "loaded": loaded}))
"""


def without_extras(*commands: list[str]) -> list[tuple[int, str, str]]:
    """Each of `commands` (the CLI's argv) run by cli.main in one process without the extras."""
    done = subprocess.run(
        [sys.executable, "-c", RUN_WITHOUT_EXTRAS, ",".join(EXTRAS), json.dumps(commands)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer: dict[str, Any] = json.loads(done.stdout)
    assert answer["loaded"] == []
    return [(code, out, err) for code, out, err in answer["results"]]


def test_reports_work_and_the_lake_names_its_extra(tmp_path: Path) -> None:
    grpc, webrtc = str(SAMPLES / "grpc-edge.pcap"), str(SAMPLES / "webrtc-no-answer.pcap")
    lake = str(tmp_path / "lake")
    (tmp_path / "lake").mkdir()
    summary, calls, sessions, export, spark, ask, listed = without_extras(
        [grpc, "--report", "summary", "--format", "json", "--no-plugins"],
        [grpc, "--report", "calls", "--format", "json", "--no-plugins"],
        [webrtc, "--report", "sessions", "--format", "json", "--no-plugins"],
        [grpc, "--export", "parquet", "--output", lake, "--no-plugins"],
        [grpc, "--export", "parquet", "--engine", "spark", "--output", lake, "--no-plugins"],
        ["query", lake, "SELECT 1"],
        ["query", "--list"],
    )
    for code, out, err in (summary, calls, sessions):
        assert code == 0, err
        assert json.loads(out)
    assert json.loads(calls[1]) and json.loads(sessions[1])[0]["failed_phase"]
    assert export == (
        2,
        "",
        "protoscope: --export parquet needs pyarrow: pip install 'protoscope[lake]'"
        " (in a checkout: pip install -e '.[lake]')\n",
    )
    assert spark == export  # pyarrow first: the spark extra brings the lake's
    hint = (
        "protoscope: protoscope query needs duckdb: pip install 'protoscope[lake]'"
        " (in a checkout: pip install -e '.[lake]')\n"
    )
    assert ask == (2, "", hint)
    assert listed[0] == 0 and listed[2] == "" and "slow-calls" in listed[1]  # the list needs no duckdb
    assert list((tmp_path / "lake").iterdir()) == []


def test_readme_shows_every_named_query_as_shipped() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for named in query.named_queries().values():
        assert f"```sql\n{named.sql.strip()}\n```" in readme, (
            f"README.md lacks queries/{named.name}.sql as shipped"
        )
