"""The application data fast path (decoder._application_fast) gives what the general path gives:
the same PDUs (summary, span, findings, plaintext handed on, typed record, detail tree) for every
record of the TLS samples, with keys, with wrong keys and without keys."""

from __future__ import annotations

from typing import Any

import pytest

from protoscope.decoders.api import Field, Pdu
from protoscope.decoders.tls import decoder as tls_decoder
from tests.conftest import SAMPLES

from .common import TLS, TLS_KEYS, decode, flipped, keylog

GRPC, GRPC_KEYS = SAMPLES / "grpc-tls.pcap", SAMPLES / "grpc-tls.keys"


def tree(fields: Any) -> list[tuple[str, object, tuple[int, int], list[Any]]]:
    return [(f.name, f.value, f.span, tree(f.children)) for f in fields if isinstance(f, Field)]


def view(pdu: Pdu) -> tuple[object, ...]:
    return (pdu.summary, pdu.span, pdu.findings, pdu.inner, pdu.record, tree(pdu.fields))


@pytest.mark.parametrize(
    "path,keys",
    [(TLS, TLS_KEYS), (GRPC, GRPC_KEYS), (TLS, None), (GRPC, "wrong")],
    ids=["tls-keys", "grpc-tls", "no-keys", "wrong-keys"],
)
def test_the_fast_path_equals_the_general_path(path: Any, keys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def log() -> Any:
        if keys is None:
            return None
        return keylog(flipped(GRPC_KEYS)) if keys == "wrong" else keylog(path=keys)

    fast = decode(path, log())
    taken = []
    real = tls_decoder._application_fast

    def counting(*args: Any) -> Any:
        out = real(*args)
        taken.append(isinstance(out, Pdu))
        return out

    monkeypatch.setattr(tls_decoder, "_application_fast", counting)
    assert [view(s.pdu) for s in decode(path, log())] == [view(s.pdu) for s in fast]
    assert any(taken) is (keys != "wrong")  # it takes what opens (or cannot be opened), not failures
    monkeypatch.setattr(tls_decoder, "_application_fast", lambda *args: None)
    general = decode(path, log())
    assert [(s.frame, view(s.pdu)) for s in general] == [(s.frame, view(s.pdu)) for s in fast]
