"""gRPC over TLS, decrypted: captures/samples/grpc-tls.pcap (grpcio server, Python ssl + h2 client,
TLS 1.3 and TLS 1.2 ChaCha20 with ALPN h2 on port 50443, made by captures/samples/make_grpc.py)
gives the calls table of its truth with the key log, and none without; TLS flows are the TLS
decoder's (tls-loopback.pcap too), never HTTP/2's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from protoscope.inspector.session import Session
from tests.conftest import SAMPLES

from .common import keylog, registry, truth

GRPC_TLS = SAMPLES / "grpc-tls.pcap"
GRPC_KEYS = SAMPLES / "grpc-tls.keys"


def require_sample() -> None:
    if not GRPC_TLS.exists():  # made by another part of the work on issue 15
        if os.environ.get("CI") == "true":
            pytest.fail(f"{GRPC_TLS.name} is missing: python captures/samples/make_grpc.py makes it")
        pytest.skip(f"{GRPC_TLS.name} not made yet")


def calls(path: Path, keys: Path | None) -> tuple[list[dict[str, object]], set[str]]:
    """The calls report's rows, and the protocols of the flows' first PDUs."""
    reg = registry(keylog(path=keys) if keys else None)
    analysis = reg.analysis("calls")
    session = Session.open(path, reg)
    first: set[str] = set()
    try:
        for pd in session.decode():
            if pd.pdus and pd.depths and pd.depths[0] == 0:
                first.add(pd.pdus[0].protocol)
            for pdu in pd.pdus:
                assert pd.context is not None
                analysis.feed(pdu, pd.context)
    finally:
        session.close()
    return analysis.rows(), first


def test_grpc_over_tls_gives_the_calls_of_the_truth() -> None:
    require_sample()
    rows, first = calls(GRPC_TLS, GRPC_KEYS)
    want = truth("grpc-tls")["calls"]
    assert [(r["path"], r["status"]) for r in rows] == [(c["path"], c["status"]) for c in want]
    for row, call in zip(rows, want, strict=True):
        meta = row["request_metadata"]
        assert isinstance(meta, dict)
        for key, value in call["request_metadata"].items():
            assert meta.get(key) == value
    assert first == {"tls"}


def test_grpc_over_tls_without_keys_gives_no_calls() -> None:
    require_sample()
    rows, first = calls(GRPC_TLS, None)
    assert rows == [] and first == {"tls"}


def test_tls_flows_are_taken_by_tls_not_http2() -> None:
    rows, first = calls(SAMPLES / "tls-loopback.pcap", None)
    assert rows == [] and first == {"tls"}
