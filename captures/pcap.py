"""libpcap files: micro- and nanosecond, both byte orders, and Kuznetzov's "modified" variant.

Hand-written rather than scapy's RawPcapReader: scapy builds a Python tuple per record (1.7 s for
1M records here) while this scan only steps from length to length and leaves the fields to numpy.
"""

from __future__ import annotations

import struct
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from .columns import ByteColumns, Window, gather
from .errors import CaptureError
from .records import (
    Interface,
    OffsetCollector,
    RecordTable,
    check_lengths,
    empty_records,
    empty_run_start,
    empty_table,
    keep_first,
    trailing_empty,
    truncated,
)

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
SPECULATE = 1 << 16
"""Most records checked at once when guessing that the next records have the current one's length."""
PLAIN_STRETCH = 512
"""Records stepped one by one after a guess that paid off poorly (mixed lengths)."""
MIN_GAIN = 64
RECORD_FIELDS = 16
"""ts_sec, ts_frac, caplen, wirelen: the part of a record header every format variant shares."""
RELEASE_STEP = 16 << 20
"""Bytes walked between two releases of the mapped pages behind the walk."""


_walk: ModuleType | None
try:
    from . import _walk
except ImportError:  # built by setup.py when a C compiler is at hand (captures/_walk.c)
    _walk = None


class _Headers:
    """The first 16 bytes of the records walked past, batch by batch, watched for a long run of
    empty records (see MAX_EMPTY_RUN): the walk stops in the batch where one starts, so a file of
    zeros costs one batch of memory, not a row per 16 bytes."""

    __slots__ = ("batches", "carried", "count", "empty_from")

    def __init__(self) -> None:
        self.batches: list[npt.NDArray[np.uint8]] = []
        self.count = 0
        self.carried = 0
        self.empty_from: int | None = None
        """The record where a long run of empty records starts, once one is seen."""

    def take(self, cols: ByteColumns, offsets: npt.NDArray[np.int64]) -> bool:
        """Gather the headers at `offsets`; False once a long empty run is found."""
        rows = gather(cols, offsets, RECORD_FIELDS)
        self.batches.append(rows)
        empty = np.count_nonzero(rows[:, 8:16], axis=1) == 0  # caplen and wirelen both 0
        start, self.carried = empty_run_start(empty, self.carried)
        if start is not None and self.empty_from is None:
            self.empty_from = self.count + start
        self.count += len(rows)
        return self.empty_from is None


def _record_offsets(
    buf: Any, cols: ByteColumns, order: str, rec_len: int, start: int = FILE_HEADER_LEN
) -> tuple[OffsetCollector, _Headers, int]:
    """Offsets of every whole record header from `start` on, the first 16 bytes of each
    (timestamps and lengths, read while their pages are in: the walk lets go of pages behind it),
    and where it stopped.

    Records must be walked one after another, since each one's length says where the next
    starts. A Python loop costs ~0.25 s per million records. Captures of media are mostly runs of
    records of one length, so the scan guesses that the next SPECULATE records have the current
    record's length and checks all those guesses with one numpy gather: if the records before
    guess k all have that length, guess k is exactly where record k starts (by induction), so
    the agreeing prefix is taken as is. Where lengths vary, it falls back to the plain loop.
    """
    size = len(buf)
    last = size - rec_len
    caplen_at = struct.Struct(order + "I").unpack_from
    u32 = order + "u4"
    found = OffsetCollector()
    append = found.items.append
    pos = start
    misses = 0
    want = MIN_GAIN
    released = start
    headers = _Headers()
    going = True
    while _walk is not None and going and pos <= last:  # the same steps in C, RELEASE_STEP bytes at a time
        if pos >= released + RELEASE_STEP:
            going = headers.take(cols, found.take_new())
            released = cols.release(released, pos)
        raw, pos = _walk.pcap_offsets(buf, pos, released + RELEASE_STEP, rec_len, order == ">")
        found.extend(np.frombuffer(raw, np.int64))
    while going and pos <= last:
        if pos >= released + RELEASE_STEP:  # read the headers walked past, then let go of them
            going = headers.take(cols, found.take_new())
            released = cols.release(released, pos)
            if not going:
                break
        stride = rec_len + caplen_at(buf, pos + 8)[0]
        count = min(want, (last - pos) // stride + 1)
        taken = 0
        if count >= MIN_GAIN:
            guesses = np.arange(pos, pos + stride * count, stride, dtype=np.int64)
            wrong = np.flatnonzero(cols.read(guesses + 8, u32) != stride - rec_len)
            taken = int(wrong[0]) if len(wrong) else count
            found.extend(guesses[:taken])
            pos += stride * taken
            # Guess about twice the last run: a STUN check every 1,000 RTP packets costs one
            # gather of ~2,000 per run instead of one of SPECULATE.
            want = min(SPECULATE, max(MIN_GAIN, 2 * taken))
        misses = 0 if taken >= MIN_GAIN else misses + 1
        if misses < 3:
            # The record that broke the run (a STUN check among RTP) is stepped over by hand,
            # so the next guess starts from the run's length again.
            if pos <= last:
                append(pos)
                pos += rec_len + caplen_at(buf, pos + 8)[0]
        else:
            for _ in range(PLAIN_STRETCH):
                if pos > last:
                    break
                append(pos)
                pos += rec_len + caplen_at(buf, pos + 8)[0]
            found.spill()
    if going:
        headers.take(cols, found.take_new())
    cols.release(released, size)
    return found, headers, pos


class PcapReader:
    """Reads the records of a pcap file, from where the last read stopped (a RecordReader)."""

    __slots__ = ("count", "format", "frac_ns", "interfaces", "order", "pos", "rec_len", "stopped")

    def __init__(self, buf: Any) -> None:
        """`buf` holds at least the file header (FILE_HEADER_LEN bytes)."""
        self.order, self.frac_ns, self.rec_len = MAGICS[bytes(buf[:4])]
        _major, _minor, _zone, _sigfigs, snaplen, network = struct.unpack_from(self.order + "HHiIII", buf, 4)
        self.interfaces = [Interface(linktype=network & 0xFFFF, snaplen=snaplen)]
        self.format = "pcap" if self.frac_ns == 1000 else "pcap-ns"
        self.pos = FILE_HEADER_LEN
        """Where the next record header starts."""
        self.count = 0
        self.stopped = False
        """Damage was found: nothing after it is read."""

    def read(self, buf: Any, cols: ByteColumns, final: bool = True) -> RecordTable:
        """The whole records from `self.pos` on (see RecordReader.read)."""
        first, size, rec_len = self.count, len(buf), self.rec_len
        if self.stopped or (self.pos + rec_len > size and not final):
            return empty_table(self.format, self.interfaces)
        found, headers, pos = _record_offsets(buf, cols, self.order, rec_len, self.pos)
        walked = hdr = found.array()
        rows = np.concatenate(headers.batches) if len(headers.batches) > 1 else headers.batches[0]
        cut = headers.empty_from
        if cut is not None:
            hdr, rows = hdr[:cut], rows[:cut]
        u32 = self.order + "u4"
        win = Window(cols, hdr, RECORD_FIELDS, data=rows)
        every = slice(None)
        table = RecordTable(
            format=self.format,
            data_off=hdr + rec_len,
            caplen=win.read(every, 8, u32),
            wirelen=win.read(every, 12, u32),
            ts_ns=win.read(every, 0, u32).astype(np.int64) * 1_000_000_000
            + win.read(every, 4, u32).astype(np.int64) * self.frac_ns,
            iface=np.zeros(len(hdr), np.uint16),
            interfaces=self.interfaces,
        )
        if cut is not None:
            table.findings.append(empty_records(first + cut, int(walked[cut]), buf))
            self.stopped = True
        elif pos < size and final:  # a partial record header at the very end
            table.findings.append(truncated(first + len(hdr), size - pos, rec_len))
        walked_whole = len(table)
        if check_lengths(table, size, first, final):
            self.stopped = True
        elif len(table) < walked_whole:  # the last record's bytes are not all there yet
            pos = int(hdr[len(table)])
        if not final and not self.stopped:
            held = trailing_empty(table)
            if held < len(table):
                pos = int(hdr[held])
                keep_first(table, held)
        self.pos = pos
        self.count += len(table)
        return table


def scan_pcap(buf: Any, cols: ByteColumns) -> RecordTable:
    """Index every complete record of a pcap file held in `buf`."""
    if len(buf) < FILE_HEADER_LEN:
        raise CaptureError(f"pcap file header is cut short ({len(buf)} of {FILE_HEADER_LEN} bytes)")
    return PcapReader(buf).read(buf, cols)
