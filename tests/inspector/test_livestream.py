"""Reports on a growing file (`--follow`, `--live ... --format jsonl`): rows come out as they are
complete, and once the file is whole they are the file report's rows."""

from __future__ import annotations

import io
import json
import random
import threading
import time
from pathlib import Path

import pytest

from protoscope.decoders.registry import load_registry
from protoscope.inspector import livestream
from protoscope.inspector.cli import main
from protoscope.inspector.session import Session

SAMPLES = Path(__file__).resolve().parents[2] / "captures" / "samples"


def _file_rows(
    path: Path, report: str, capsys: pytest.CaptureFixture[str], *more: str
) -> list[dict[str, object]]:
    assert main([str(path), "--report", report, "--format", "jsonl", *more]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _pieces(data: bytes, k: int, seed: int) -> list[bytes]:
    cuts = sorted(random.Random(seed).sample(range(1, len(data)), k - 1))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def _grown_report(
    sample: Path, report: str, growing: Path, k: int = 7, display_filter: str | None = None
) -> list[list[dict[str, object]]]:
    """The rows each look writes while `sample` is written to `growing` in k pieces (the first
    piece holds the file header), then the rows of the last look."""
    data = sample.read_bytes()
    pieces = _pieces(data[64:], k, seed=len(data))
    growing.write_bytes(data[:64])
    out = io.StringIO()
    session = Session.open(growing, load_registry(use_plugins=False), growing=True)
    writer = livestream.RowWriter(out)
    look = livestream.LiveReport(session, livestream.StreamOptions(report, None, display_filter), writer)
    written: list[list[dict[str, object]]] = []
    seen = 0
    for n, piece in enumerate(pieces):
        with growing.open("ab") as f:
            f.write(piece)
        look.look(final=n == len(pieces) - 1)
        lines = out.getvalue().splitlines()
        written.append([json.loads(line) for line in lines[seen:]])
        seen = len(lines)
    session.close()
    return written


@pytest.mark.parametrize("report", ["packets", "calls", "findings", "streams", "sessions"])
@pytest.mark.parametrize(
    "name", ["grpc-demo.pcap", "grpc-edge.pcap", "webrtc-turn.pcap", "webrtc-direct.pcap"]
)
def test_a_growing_file_gives_the_file_reports_rows(
    name: str, report: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = SAMPLES / name
    grown = [row for look in _grown_report(sample, report, tmp_path / name) for row in look]
    whole = _file_rows(sample, report, capsys)
    key = (lambda r: json.dumps(r, sort_keys=True)) if report != "packets" else None
    assert sorted(grown, key=key) == sorted(whole, key=key) if key else grown == whole


@pytest.mark.parametrize("path", ["/demo.Directory/Get", "/demo.Directory/List"])
def test_a_filter_on_a_growing_file_knows_the_calls_of_earlier_looks(
    path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-Y grpc.path: a call's path is in its first HEADERS; its later packets, read by later looks,
    still match (the paths learnt go on from look to look)."""
    flt = f'grpc.path == "{path}"'
    sample = SAMPLES / "grpc-demo.pcap"
    grown = [row for look in _grown_report(sample, "packets", tmp_path / "g.pcap", 61, flt) for row in look]
    assert grown == _file_rows(sample, "packets", capsys, "-Y", flt)


def test_calls_come_out_as_they_end(tmp_path: Path) -> None:
    """The calls of grpc-demo end one after another: they are written by the looks that see their
    ends, not all at the end."""
    looks = _grown_report(SAMPLES / "grpc-demo.pcap", "calls", tmp_path / "g.pcap", k=10)
    early = [len(rows) for rows in looks[:-1]]
    assert sum(early) > 0, f"every call waited for the end: {[len(r) for r in looks]}"


def test_interval_writes_the_streams_so_far(tmp_path: Path) -> None:
    """--interval S: what an analysis would give if the capture ended now, every S seconds."""
    sample = SAMPLES / "webrtc-direct.pcap"
    data = sample.read_bytes()
    growing = tmp_path / "w.pcap"
    growing.write_bytes(data[: len(data) * 3 // 4])  # in the middle of the media
    out = io.StringIO()
    session = Session.open(growing, load_registry(use_plugins=False), growing=True)
    look = livestream.LiveReport(
        session, livestream.StreamOptions("streams", interval=0.01), livestream.RowWriter(out)
    )
    time.sleep(0.02)
    look.look()
    middle = [json.loads(line) for line in out.getvalue().splitlines()]
    assert middle and all(0 < row["packets"] < 50 for row in middle)  # 50 each in the whole file
    session.close()


def test_follow_on_a_file_being_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--follow F --report packets --format jsonl --duration S` while another thread appends."""
    sample = SAMPLES / "grpc-demo.pcap"
    data = sample.read_bytes()
    growing = tmp_path / "f.pcap"
    growing.write_bytes(data[:24])

    def writer() -> None:
        for piece in _pieces(data[24:], 5, seed=1):
            time.sleep(0.15)
            with growing.open("ab") as f:
                f.write(piece)

    thread = threading.Thread(target=writer)
    thread.start()
    code = main([str(growing), "--follow", "--duration", "2.5", "--report", "packets", "--format", "jsonl"])
    thread.join()
    assert code == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows == _file_rows(sample, "packets", capsys)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--follow", "--report", "calls"], "--format jsonl"),
        (["--follow", "--live", "-i", "lo"], "give one of them"),
        (["-b", "files:3"], "goes with --live"),
        (["--live", "-i", "lo", "-b", "files:3", "--report", "calls"], "no report"),
        (["--live", "-i", "lo", "-b", "files:3", "--count", "1"], "give -w"),
        (["--live", "-i", "lo", "-B", "0"], "-B must be"),
    ],
)
def test_growing_flags_that_mean_nothing_are_one_line(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = [] if "--live" in argv else [str(SAMPLES / "grpc-demo.pcap")]
    assert main([*capture, *argv]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1 and "Traceback" not in err
