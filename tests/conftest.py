"""Shared fixtures: the public capture corpus and the tshark oracle."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = ROOT.parent / "shared" / "captures" / "public"
SAMPLES = ROOT / "captures" / "samples"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Tests of Ctrl-C (a guest decoder's call interrupted, the lake's runner stopped) need Python's
    SIGINT handler. A test run started in the background of a non-interactive shell inherits SIGINT
    ignored, and Python then installs none: put it back for the run."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def public_captures() -> list[Path]:
    """Every capture of the public corpus (empty when the corpus is not beside the repo)."""
    if not PUBLIC.is_dir():
        return []
    return sorted(p for p in PUBLIC.iterdir() if p.suffix != ".md")


def require_tool(name: str) -> str:
    """Path of a system tool; missing fails under CI=true and skips elsewhere."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (.ci/run installs it with apt-get)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def require_public() -> None:
    if not public_captures():
        message = f"the public capture corpus is missing at {PUBLIC}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def public_capture(name: str) -> Path:
    """The public capture called `name` (fails under CI=true, skips elsewhere, when absent)."""
    require_public()
    return next(p for p in public_captures() if p.name == name)


def tshark(*args: str) -> str:
    """Run tshark and return its standard output."""
    exe = require_tool("tshark")
    result = subprocess.run(
        [exe, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "LC_ALL": "C"},
    )
    if result.returncode != 0:
        raise AssertionError(f"tshark {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


@pytest.fixture(scope="session")
def public() -> list[Path]:
    require_public()
    return public_captures()


def manifest_captures(protocols: str) -> dict[str, list[str]]:
    """Captures whose MANIFEST row lists a protocol matching the regex `protocols`, each with the
    tshark arguments its hint column gives (decode-as rules and heuristics, for tshark only)."""
    import re

    path = PUBLIC / "MANIFEST.md"
    if not path.exists():
        return {}
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        cells = line.split("|")
        if len(cells) < 9 or not cells[1].strip().startswith("`"):
            continue
        if re.search(protocols, cells[6]):
            args = re.findall(r"(-d [^`\s]+|--enable-heuristic [^`\s]+)", cells[7])
            out[cells[1].strip().strip("`")] = [a for arg in args for a in arg.split(" ", 1)]
    return out


def require_root() -> None:
    """Live capture needs root (CAP_NET_RAW): missing fails under CI=true and skips elsewhere."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("live capture tests run as root in CI")
        pytest.skip("live capture needs root")


@pytest.fixture
def echo_server() -> Iterator[int]:
    """A grpcio server on 127.0.0.1 whose demo.Echo/Say returns the request's bytes; its port."""
    import grpc

    handler = grpc.method_handlers_generic_handler(
        "demo.Echo", {"Say": grpc.unary_unary_rpc_method_handler(lambda request, _context: request)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port
    finally:
        server.stop(None)
