"""DTLS against tshark on every DTLS capture of the corpus: per packet, the same record content
types and handshake message types (tshark gets the MANIFEST's heuristics). DTLS 1.3 unified-header
records are data to tshark 4.0, so there only the plaintext records are compared."""

from __future__ import annotations

from pathlib import Path

import pytest

from protoscope.decoders.dtls.records import DtlsRecord
from protoscope.decoders.registry import load_registry
from protoscope.inspector.session import Session
from tests.conftest import manifest_captures, public_capture, tshark

SEP = "\x1f"


CAPTURES = manifest_captures(r"\bdtls\b")


def tshark_view(path: Path, args: list[str]) -> dict[int, tuple[list[int], list[int]]]:
    out = tshark(
        "-r",
        str(path),
        *args,
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        f"aggregator={SEP}",
        "-e",
        "frame.number",
        "-e",
        "dtls.record.content_type",
        "-e",
        "dtls.handshake.type",
    )
    view = {}
    for line in out.splitlines():
        frame, ctypes, htypes = line.split("\t")
        if ctypes:
            view[int(frame)] = (
                [int(c) for c in ctypes.split(SEP)],
                [int(h) for h in htypes.split(SEP)] if htypes else [],
            )
    return view


def our_view(path: Path) -> dict[int, tuple[list[int], list[int]]]:
    session = Session.open(path, load_registry())
    view = {}
    try:
        for pd in session.decode():
            records = [p.record for p in pd.pdus if isinstance(p.record, DtlsRecord)]
            if records:
                view[pd.index + 1] = (
                    [c for r in records for c in r.content_types],
                    [h for r in records for h in r.handshake_types],
                )
    finally:
        session.close()
    return view


@pytest.mark.parametrize("name", sorted(CAPTURES) or ["no-corpus"])
def test_dtls_equals_tshark(name: str) -> None:
    path = public_capture(name)
    theirs, ours = tshark_view(path, CAPTURES[name]), our_view(path)
    assert theirs
    for frame, want in theirs.items():
        assert ours.get(frame) == want, f"packet {frame}"
