"""The record table every capture format reader produces: one numpy column per record field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from protoscope.decoders.api import Finding

from .columns import ByteColumns

MAX_PACKET_LEN = 262_144
"""Largest record we accept, as Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD; longer means corrupt."""

TIME_MAX_NS = (1 << 63) - 1
"""Latest capture time a record can have (the year 2262): times past either end of int64
nanoseconds (a corrupt NetXRay tick count, pcapng if_tsoffset or if_tsresol) are held at
+-TIME_MAX_NS, and `check_times` says so."""

MAX_EMPTY_RUN = 1_024
"""Records in a row with no bytes (captured and wire length both 0) that are still taken as
packets. No capture tool writes such a record (a packet has bytes on the wire): a few are damage
that Wireshark shows as empty frames, and are kept as frames; a longer run is a file of zeros
(preallocated, or damaged): 16 bytes a record in pcap, so 256 MB of zeros would be 16M empty
frames. Reading stops at the first record of such a run, with one finding (capture.empty_records)."""

ZERO_CHECK_CHUNK = 16 << 20
"""Bytes checked at a time for being all zeros (the pages are let go of behind the check)."""

OFFSET_CHUNK = 65_536
"""Offsets found by a scan loop are moved from a list into numpy in chunks of this many, so that
the transient Python ints never cost more than a chunk's worth of memory."""


@dataclass(frozen=True, slots=True)
class Interface:
    """A capture interface: pcap has one, pcapng one per Interface Description Block."""

    linktype: int
    name: str = ""
    snaplen: int = 0


@dataclass(slots=True)
class RecordTable:
    """Packet records of a capture, in file order, as columns."""

    format: str
    data_off: npt.NDArray[np.int64]
    """Offset of each packet's first byte in the capture buffer."""
    caplen: npt.NDArray[np.uint32]
    wirelen: npt.NDArray[np.uint32]
    ts_ns: npt.NDArray[np.int64]
    """Capture time, nanoseconds since the epoch."""
    iface: npt.NDArray[np.uint16]
    interfaces: list[Interface]
    comments: dict[int, list[str]] = field(default_factory=dict)
    """0-based record number -> packet comments (pcapng opt_comment)."""
    findings: list[tuple[int, Finding]] = field(default_factory=list)
    """(0-based record number, finding) for damage found while reading the file."""
    secrets: list[tuple[int, bytes]] = field(default_factory=list)
    """(secrets type, data) of each pcapng Decryption Secrets Block, in file order: keys the
    capture carries for its own decryption (0x544c534b "TLSK": NSS key log text)."""

    def __len__(self) -> int:
        return len(self.data_off)


class RecordReader(Protocol):
    """A format's reader of a capture that may still be written (a live spool, or a file that
    tcpdump or dumpcap is writing): it remembers where it stopped, and each read indexes the
    whole records found from there."""

    count: int
    """Records read so far."""

    def read(self, buf: Any, cols: ByteColumns, final: bool = True) -> RecordTable:
        """The records of `buf` after those read before, with findings and comments numbered
        from the first record of the capture. `final`: `buf` is the whole capture, so a record cut
        short at its end is a finding (else it is left for the next read, with no finding)."""
        ...


class OffsetCollector:
    """Accumulates ints from a tight scan loop into an int64 array, a chunk at a time."""

    __slots__ = ("_chunks", "_taken", "items")

    def __init__(self) -> None:
        self.items: list[int] = []
        self._chunks: list[npt.NDArray[np.int64]] = []
        self._taken = 0

    def take_new(self) -> npt.NDArray[np.int64]:
        """The offsets collected since the last call."""
        self.spill()
        new = self._chunks[self._taken :]
        self._taken = len(self._chunks)
        if not new:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate(new) if len(new) > 1 else new[0]

    def extend(self, offsets: npt.NDArray[np.int64]) -> None:
        self.spill()
        self._chunks.append(offsets)

    def spill(self) -> None:
        if self.items:
            self._chunks.append(np.array(self.items, dtype=np.int64))
            self.items.clear()

    def array(self) -> npt.NDArray[np.int64]:
        self.spill()
        if not self._chunks:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate(self._chunks) if len(self._chunks) > 1 else self._chunks[0]


def truncated(frame: int, have: int, want: int) -> tuple[int, Finding]:
    """The finding for a file that ends inside record `frame` (0-based)."""
    return (
        frame,
        Finding(
            "error",
            "capture.truncated",
            f"the file ends inside record {frame + 1}: {have} of {want} bytes present; "
            f"the {frame} complete records before it were read",
        ),
    )


def empty_run_start(empty: npt.NDArray[np.bool_], carried: int) -> tuple[int | None, int]:
    """Where in `empty` (a batch of records, True for no bytes) the first run of more than
    MAX_EMPTY_RUN empty records starts (negative: that many records before the batch, where
    `carried` empty records ended the previous batch), or None; and the run at the batch's end,
    to carry into the next one."""
    n = len(empty)
    if n == 0:
        return None, carried
    at = np.arange(n, dtype=np.int64)
    last_full = np.maximum.accumulate(np.where(empty, -1, at))
    run = np.where(empty, at - last_full, 0)
    run[last_full < 0] += carried  # the run the batch starts with goes on from the last batch
    over = np.flatnonzero(run > MAX_EMPTY_RUN)
    if len(over):
        i = int(over[0])
        return i - int(run[i]) + 1, 0
    return None, int(run[-1])


def zeros_to_end(buf: Any, start: int) -> bool:
    """Whether every byte of `buf` from `start` on is 0 (a mapped file's pages are let go of as the
    check passes them)."""
    cols = ByteColumns(buf)
    released = start
    for a in range(start, cols.size, ZERO_CHECK_CHUNK):
        b = min(cols.size, a + ZERO_CHECK_CHUNK)
        if cols.u8[a:b].any():
            return False
        released = cols.release(released, b)
    return True


def empty_records(record: int, offset: int, buf: Any) -> tuple[int, Finding]:
    """The finding for a run of more than MAX_EMPTY_RUN empty records from `record` (0-based),
    whose header is at `offset` in `buf`; the table ends before it."""
    rest = len(buf) - offset
    what = "all zeros" if zeros_to_end(buf, offset) else "not all zeros: the file is damaged from there"
    return (
        record,
        Finding(
            "error",
            "capture.empty_records",
            f"from record {record + 1} (byte {offset}) on, more than {MAX_EMPTY_RUN} records in a row "
            f"have no bytes (MAX_EMPTY_RUN): zeros, not packets; the last {rest} bytes are not read "
            f"({what})",
        ),
    )


def empty_table(fmt: str, interfaces: list[Interface]) -> RecordTable:
    z64 = np.zeros(0, np.int64)
    z32 = np.zeros(0, np.uint32)
    return RecordTable(fmt, z64, z32, z32.copy(), z64.copy(), np.zeros(0, np.uint16), interfaces)


def keep_first(table: RecordTable, count: int) -> None:
    """Drop every record from `count` on (used when a later record is corrupt)."""
    table.data_off = table.data_off[:count]
    table.caplen = table.caplen[:count]
    table.wirelen = table.wirelen[:count]
    table.ts_ns = table.ts_ns[:count]
    table.iface = table.iface[:count]


def check_lengths(table: RecordTable, buf_size: int, first: int = 0, final: bool = True) -> bool:
    """Cut the table at the first record with an absurd length or one that runs past the end;
    return whether it was cut at damage (an absurd length: nothing after it can be read).

    `first`: the number of the table's first record in the capture (a growing capture is read a
    part at a time). `final`: the end of the buffer is the end of the capture; otherwise a record
    that runs past it is still being written, and is cut off without a finding (the next read
    has it)."""
    damaged = False
    over = np.flatnonzero(table.caplen > MAX_PACKET_LEN)
    if len(over):
        i = int(over[0])
        table.findings.append(
            (
                first + i,
                Finding(
                    "error",
                    "capture.bad_record_length",
                    f"record {first + i + 1} declares {int(table.caplen[i])} captured bytes (more than "
                    f"{MAX_PACKET_LEN}); the file is corrupt from there and the rest is not read",
                ),
            )
        )
        keep_first(table, i)
        damaged = True
    if len(table):
        end = table.data_off + table.caplen.astype(np.int64)
        past = np.flatnonzero(end > buf_size)
        if len(past):
            i = int(past[0])
            if final:
                have = buf_size - int(table.data_off[i])
                table.findings.append(truncated(first + i, have, int(table.caplen[i])))
            keep_first(table, i)
    return damaged


def trailing_empty(table: RecordTable) -> int:
    """Where the run of empty records (captured and wire length both 0) that ends the table
    starts (len(table) when the last record has bytes). A growing capture leaves such a run for
    its next read: whether it is a few damaged records or the start of a file of zeros (see
    MAX_EMPTY_RUN) is only known once what follows it is there."""
    empty = (table.caplen == 0) & (table.wirelen == 0)
    full = np.flatnonzero(~empty)
    return int(full[-1]) + 1 if len(full) else 0


def saturate_ns(value: int) -> int:
    """A time in nanoseconds held within what the table's int64 column can hold."""
    return max(-TIME_MAX_NS, min(TIME_MAX_NS, value))


def check_times(table: RecordTable, first: int = 0) -> bool:
    """A finding on the first record whose time was held at the end of the int64 range; whether
    there was one (`first`: the number of the table's first record in the capture)."""
    ts = table.ts_ns
    held = np.flatnonzero((ts >= TIME_MAX_NS) | (ts <= -TIME_MAX_NS))
    if not len(held):
        return False
    i = int(held[0])
    table.findings.append(
        (
            first + i,
            Finding(
                "warn",
                "capture.bad_timestamp",
                f"record {first + i + 1}'s time is out of range (before 1678 or after 2262); it is shown "
                "as the earliest or latest time there is",
            ),
        )
    )
    return True


def as_u16(values: Any) -> npt.NDArray[np.uint16]:
    return np.asarray(values, dtype=np.uint16)
