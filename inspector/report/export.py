"""Exporting packets (a flow, or what a display filter keeps) to a pcapng file."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from protoscope.captures.writer import PcapNgWriter

from ..session import Session


def flow_packets(session: Session, flow: int) -> list[int]:
    return np.flatnonzero(session.index.flow == flow).tolist()


def write_pcapng(session: Session, packets: Iterable[int], path: str | Path, secrets: str = "") -> int:
    """Write the given packets (0-based, ascending) with their original bytes, times and link
    types; returns how many were written. `secrets` (NSS key log text) goes first, in a Decryption
    Secrets Block, so that the file decrypts on its own (in protoscope, tshark and Wireshark)."""
    ix = session.index
    rec = ix.records
    count = 0
    with open(path, "wb") as out:
        writer = PcapNgWriter(out)
        if secrets:
            writer.secrets(secrets.encode())
        for i in packets:
            writer.write(ix.frame(i), int(rec.ts_ns[i]), ix.linktype(i), int(rec.wirelen[i]))
            count += 1
    return count
