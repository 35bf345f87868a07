"""Windows Sniffer / NetXRay 2.x files (magic "XCP\\0"), as Wireshark's wiretap reads them.

Only version 2.x with Ethernet is read: that is what the public corpus holds. Records are few in
such files, so a plain struct loop is fast enough.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from .errors import CaptureError
from .records import (
    MAX_EMPTY_RUN,
    Interface,
    RecordTable,
    check_lengths,
    check_times,
    empty_records,
    saturate_ns,
    truncated,
)

MAGIC = b"XCP\x00"
HEADER_LEN = 128
RECORD_HEADER_LEN = 40
TICKS_PER_SECOND = {0: 1_000_000, 1: 1_193_182, 2: 1_193_180}
"""Indexed by the header's time-unit byte (Wireshark's TpS table)."""
NETWORK_LINKTYPES = {0: 1}
"""NetXRay network type -> pcap link type; 0 is Ethernet."""


def scan_netxray(buf: Any) -> RecordTable:
    if len(buf) < HEADER_LEN:
        raise CaptureError(f"NetXRay header is cut short ({len(buf)} of {HEADER_LEN} bytes)")
    version = bytes(buf[4:12]).rstrip(b"\x00").decode("ascii", "replace")
    if not version.startswith("002."):
        raise CaptureError(f"NetXRay version {version!r} is not supported (only 2.x)")
    start_time, nframes, _x, start_offset, end_offset = struct.unpack_from("<IIIII", buf, 12)
    network, timeunit = buf[0x30], buf[0x34]
    if network not in NETWORK_LINKTYPES or timeunit not in TICKS_PER_SECOND:
        raise CaptureError(f"NetXRay network type {network} / time unit {timeunit} is not supported")
    ticks = TICKS_PER_SECOND[timeunit]
    end = min(end_offset, len(buf)) if end_offset else len(buf)
    offs: list[int] = []
    caps: list[int] = []
    wires: list[int] = []
    stamps: list[int] = []
    findings = []
    pos = start_offset
    empty_run = 0
    while pos < end and len(offs) < nframes:
        if pos + RECORD_HEADER_LEN > end:
            findings.append(truncated(len(offs), end - pos, RECORD_HEADER_LEN))
            break
        lo, hi, orig, incl = struct.unpack_from("<IIHH", buf, pos)
        empty_run = empty_run + 1 if orig == incl == 0 else 0
        if empty_run > MAX_EMPTY_RUN:  # zeros, not packets: stop before the run's first record
            first = len(offs) - MAX_EMPTY_RUN
            del offs[first:], caps[first:], wires[first:], stamps[first:]
            findings.append(empty_records(first, pos - MAX_EMPTY_RUN * RECORD_HEADER_LEN, buf))
            break
        t = (hi << 32) | lo
        offs.append(pos + RECORD_HEADER_LEN)
        caps.append(incl)
        wires.append(orig)
        stamps.append(saturate_ns(start_time * 1_000_000_000 + t * 1_000_000_000 // ticks))
        pos += RECORD_HEADER_LEN + incl
    table = RecordTable(
        format="netxray",
        data_off=np.array(offs, np.int64),
        caplen=np.array(caps, np.uint32),
        wirelen=np.array(wires, np.uint32),
        ts_ns=np.array(stamps, np.int64),
        iface=np.zeros(len(offs), np.uint16),
        interfaces=[Interface(linktype=NETWORK_LINKTYPES[network])],
        findings=findings,
    )
    check_lengths(table, end)
    check_times(table)
    return table
