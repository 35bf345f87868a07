"""The example out-of-tree plugin, loaded by file and pip-installed into a temporary venv."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import threading
import venv
from pathlib import Path

from protoscope.decoders.registry import load_registry
from protoscope.inspector.cli import main
from protoscope.inspector.session import Session
from tests import pcapgen
from tests.conftest import ROOT

PLUGIN_DIR = ROOT / "examples" / "protoscope-resp"


def _resp_capture(tmp_path: Path) -> Path:
    return pcapgen.write(tmp_path / "redis.pcap", pcapgen.tcp_conversation(pcapgen.RESP_SEGMENTS))


def _pdus(jsonl: str) -> list[tuple[int, str]]:
    out = []
    for line in jsonl.splitlines():
        pkt = json.loads(line)
        out.extend((pkt["frame"], pdu["summary"]) for pdu in pkt["pdus"])
    return out


EXPECTED = [
    (4, "Request: SET key value"),
    (5, "Reply: 'OK'"),
    (6, "Request: GET key"),
    (8, "Reply: 'value'"),  # completed by the second segment of the split reply
]


def test_plugin_file_decodes(tmp_path: Path, capsys: object) -> None:
    cap = _resp_capture(tmp_path)
    code = main(
        [
            str(cap),
            "--report",
            "packets",
            "--format",
            "jsonl",
            "--plugin",
            str(PLUGIN_DIR / "protoscope_resp.py"),
        ]
    )
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert code == 0
    assert _pdus(out) == EXPECTED


def test_plugin_decodes_alike_in_a_worker_thread(tmp_path: Path) -> None:
    """The viewer decodes in thread workers, where the guard is a watchdog thread rather than a
    timer: a plugin that behaves decodes there as in the main thread, unaltered by the checks."""
    cap = _resp_capture(tmp_path)
    session = Session.open(cap, load_registry([str(PLUGIN_DIR / "protoscope_resp.py")], use_plugins=False))
    assert session.registry.guests == {"resp"}

    def decoded() -> list[tuple[int, str]]:
        return [(pd.index + 1, p.summary) for pd in session.decode() for p in pd.pdus]

    in_worker: list[tuple[int, str]] = []
    worker = threading.Thread(target=lambda: in_worker.extend(decoded()))
    worker.start()
    worker.join(60)
    try:
        assert decoded() == in_worker == EXPECTED
    finally:
        session.close()


def test_pip_installed_plugin_is_found_by_entry_point(tmp_path: Path) -> None:
    cap = _resp_capture(tmp_path)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site_dir = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The temporary venv sees this environment's packages (protoscope and its dependencies) through
    # a .pth line, so the test installs only the plugin, offline.
    Path(site_dir, "parent_env.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n"
    )
    # This environment's pip installs into the new venv; the build backend (setuptools) comes from
    # this environment too, so nothing is downloaded.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(PLUGIN_DIR),
        ],
        check=True,
        capture_output=True,
    )
    run = subprocess.run(
        [str(py), "-m", "protoscope.inspector.cli", str(cap), "--report", "packets", "--format", "jsonl"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert _pdus(run.stdout) == EXPECTED
    # --no-plugins leaves third-party decoders out.
    bare = subprocess.run(
        [
            str(py),
            "-m",
            "protoscope.inspector.cli",
            str(cap),
            "--report",
            "packets",
            "--format",
            "jsonl",
            "--no-plugins",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bare.returncode == 0, bare.stderr
    assert _pdus(bare.stdout) == []
