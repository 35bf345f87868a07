"""TLS and DTLS against tshark with the same key log (computed at test time): per frame, the same
values of the record and handshake fields, decrypted records included (TLS 1.3's true content
types, EncryptedExtensions' ALPN, the handshake messages after ChangeCipherSpec, KeyUpdates)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from protoscope.decoders.api import Field
from tests.conftest import tshark

from .common import DTLS, DTLS_KEYS, TLS, TLS_KEYS, decode, keylog, truth

SEP = "\x1f"
TLS_FIELDS = [
    "tls.record.content_type",
    "tls.record.opaque_type",
    "tls.record.version",
    "tls.record.length",
    "tls.handshake.type",
    "tls.handshake.extensions_server_name",
    "tls.handshake.extensions_alpn_str",
    "tls.handshake.ciphersuite",
    "tls.handshake.extensions.supported_version",
    "tls.alert_message.level",
    "tls.alert_message.desc",
]
DTLS_FIELDS = [
    "dtls.record.content_type",
    "dtls.record.epoch",
    "dtls.record.sequence_number",
    "dtls.record.length",
    "dtls.handshake.type",
    "dtls.handshake.message_seq",
    "dtls.alert_message.level",
    "dtls.alert_message.desc",
]


def theirs(path: Path, keys: Path, names: list[str], decode_as: list[str]) -> dict[int, dict[str, list[str]]]:
    args = ["-r", str(path), "-o", f"tls.keylog_file:{keys}", "-T", "fields"]
    for rule in decode_as:
        args += ["-d", rule]
    args += ["-E", "occurrence=a", "-E", f"aggregator={SEP}", "-e", "frame.number"]
    for name in names:
        args += ["-e", name]
    view: dict[int, dict[str, list[str]]] = {}
    for line in tshark(*args).splitlines():
        frame, *values = line.split("\t")
        got = {n: v.split(SEP) for n, v in zip(names, values, strict=True) if v}
        if got:
            view[int(frame)] = got
    return view


def walk(fields: Iterable[Field]) -> Iterable[Field]:
    for f in fields:
        yield f
        yield from walk(f.children)


def shown(name: str, value: object) -> str:
    """A value as tshark prints it: versions and suites in hex, the rest as they are."""
    if isinstance(value, int) and (name.endswith(("version", "ciphersuite", "supported_version"))):
        return f"0x{value:04x}"
    return str(value)


def ours(path: Path, keys: Path, names: list[str], protocol: str) -> dict[int, dict[str, list[str]]]:
    view: dict[int, dict[str, list[str]]] = {}
    for s in decode(path, keylog(path=keys), protocol):
        got = view.setdefault(s.frame, {})
        for f in walk(s.pdu.fields):
            if f.name in names:
                got.setdefault(f.name, []).append(shown(f.name, f.value))
    return {k: v for k, v in view.items() if v}


def test_tls_equals_tshark() -> None:
    rules = [f"tcp.port=={c['port']},tls" for c in truth("tls-keys")["connections"]]
    want, got = theirs(TLS, TLS_KEYS, TLS_FIELDS, rules), ours(TLS, TLS_KEYS, TLS_FIELDS, "tls")
    assert len(want) > 70
    for frame in sorted(set(want) | set(got)):
        assert got.get(frame) == want.get(frame), f"frame {frame}"


@pytest.mark.parametrize("name", DTLS_FIELDS)
def test_dtls_equals_tshark(name: str) -> None:
    rules = [f"udp.port=={c['port']},dtls" for c in truth("dtls-keys")["connections"]]
    want, got = theirs(DTLS, DTLS_KEYS, [name], rules), ours(DTLS, DTLS_KEYS, [name], "dtls")
    assert want
    for frame in sorted(set(want) | set(got)):
        assert got.get(frame) == want.get(frame), f"frame {frame}"
