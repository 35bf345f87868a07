"""libpcap files: micro- and nanosecond, both byte orders, and Kuznetzov's "modified" variant.

Hand-written rather than scapy's RawPcapReader: scapy builds a Python tuple per record (1.7 s for
1M records here) while this scan only steps from length to length and leaves the fields to numpy.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from .columns import ByteColumns
from .errors import CaptureError
from .records import OFFSET_CHUNK, Interface, OffsetCollector, RecordTable, check_lengths, truncated

MAGICS: dict[bytes, tuple[str, int, int]] = {
    # magic as stored -> (byte order, nanoseconds per fraction unit, record header length)
    bytes.fromhex("d4c3b2a1"): ("<", 1000, 16),
    bytes.fromhex("a1b2c3d4"): (">", 1000, 16),
    bytes.fromhex("4d3cb2a1"): ("<", 1, 16),
    bytes.fromhex("a1b23c4d"): (">", 1, 16),
    bytes.fromhex("34cdb2a1"): ("<", 1000, 24),
    bytes.fromhex("a1b2cd34"): (">", 1000, 24),
}
FILE_HEADER_LEN = 24


def scan_pcap(buf: Any, cols: ByteColumns) -> RecordTable:
    """Index every complete record of a pcap file held in `buf`."""
    order, frac_ns, rec_len = MAGICS[bytes(buf[:4])]
    if len(buf) < FILE_HEADER_LEN:
        raise CaptureError(f"pcap file header is cut short ({len(buf)} of {FILE_HEADER_LEN} bytes)")
    _major, _minor, _zone, _sigfigs, snaplen, network = struct.unpack_from(order + "HHiIII", buf, 4)
    interfaces = [Interface(linktype=network & 0xFFFF, snaplen=snaplen)]

    size = len(buf)
    caplen_at = struct.Struct(order + "I").unpack_from
    found = OffsetCollector()
    append = found.items.append
    pos = FILE_HEADER_LEN
    last = size - rec_len
    # The hot loop: one unpack and one append per record; a counted inner loop is cheaper than
    # checking the list's length on every record (measured: 0.25 s against 0.29 s for 1M).
    while pos <= last:
        for _ in range(OFFSET_CHUNK):
            if pos > last:
                break
            append(pos)
            pos += rec_len + caplen_at(buf, pos + 8)[0]
        found.spill()
    hdr = found.array()
    u32 = order + "u4"
    table = RecordTable(
        format="pcap" if frac_ns == 1000 else "pcap-ns",
        data_off=hdr + rec_len,
        caplen=cols.read(hdr + 8, u32),
        wirelen=cols.read(hdr + 12, u32),
        ts_ns=cols.read(hdr, u32).astype(np.int64) * 1_000_000_000
        + cols.read(hdr + 4, u32).astype(np.int64) * frac_ns,
        iface=np.zeros(len(hdr), np.uint16),
        interfaces=interfaces,
    )
    if pos < size:  # a partial record header at the very end
        table.findings.append(truncated(len(hdr), size - pos, rec_len))
    check_lengths(table, size)
    return table
