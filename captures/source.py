"""Opening a capture file: checks, a private copy, gzip, mmap, and the format chosen by its magic number.

The index reads a capture through a memory map, and a mapped page whose file was truncated under us
is a SIGBUS: the process dies with no message, and Python cannot catch it (the faulting load in
numpy's C code would fault again). So a file that is not ours is never mapped: it is read with
plain reads (which a truncation only cuts short) into an anonymous temporary file of our own, and
that copy is mapped. Measured on this machine (bench/out/udp-1m.pcap: 1M packets, 230 MB, in the
page cache): the copy takes 0.07-0.15 s, and index and flows went from 0.83 to 0.96 s of CPU (median
of 7) with the same resident memory (181-183 MiB: the copy's pages are let go of as the file's
were). Checking the size before each pass would leave a window between the check and the read; a
SIGBUS handler that maps zeros over the lost pages would cost nothing but needs C, and the pages
would then read as zeros. The same read serves pipes, FIFOs and standard input, which cannot be
mapped or read twice (tshark spools them too). The copy needs room in the temporary directory
(TMPDIR); without it the file is read in place, with a finding that says so.

A capture that is still being written (`growing`: our live spool, or a file that `tcpdump -w` or
dumpcap writes) cannot be copied once, so it is mapped in place and mapped again each time it has
grown; each read indexes only the records it gained (`CaptureFile.grow`). Such writers only ever
append. A writer that truncates a file we follow (tcpdump -C/-W reusing a ring file's name) is
seen at the next read (capture.changed, and nothing more is read), but a page it cut away under a
read in progress would still end the process (SIGBUS): following a file is for files that grow.
"""

from __future__ import annotations

import io
import mmap
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from protoscope.decoders.api import Finding

from . import pcap, pcapng
from .columns import ByteColumns
from .errors import CaptureError
from .growing import GrowingColumns
from .netxray import MAGIC as NETXRAY_MAGIC
from .netxray import scan_netxray
from .pcap import PcapReader
from .pcapng import PcapngReader
from .records import RecordReader, RecordTable, empty_table

GZIP_MAGIC = b"\x1f\x8b"
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
COPY_CHUNK = 1 << 18
"""Bytes read (or inflated) at a time into the private copy where the kernel cannot copy (a pipe,
gzip): 256 KiB copied 230 MB in 0.14 s here, 1 MiB in 0.22 s (it no longer fits the CPU cache)."""
STDIN = "-"
"""The path that names standard input (as for tshark -r -)."""


RECORD_COLUMNS = ("data_off", "caplen", "wirelen", "ts_ns", "iface")
"""The per-record columns of a RecordTable."""


class _WholeFile:
    """A format that is read whole, once, at the end (NetXRay: no tool writes it while capturing,
    so a growing one is a file being copied)."""

    __slots__ = ("_done", "count")

    def __init__(self) -> None:
        self.count = 0
        self._done = False

    def read(self, buf: Any, cols: ByteColumns, final: bool = True) -> RecordTable:
        if self._done or not final:
            return empty_table("netxray", [])
        self._done = True
        table = scan_netxray(buf)
        self.count = len(table)
        return table


@dataclass(slots=True)
class _Growth:
    """What reading a capture that is still being written keeps between two reads."""

    source: io.BufferedReader
    """The file, kept open: its size says when it grew, and it is mapped again then."""
    reader: RecordReader | None = None
    """None until the file holds enough of its start to tell its format."""
    records: GrowingColumns = field(default_factory=GrowingColumns)
    ended: bool = False


@dataclass(slots=True)
class CaptureFile:
    """A capture's bytes (memory-mapped) and its record table."""

    path: Path
    buffer: Any
    """The capture's bytes. A growing capture's is a new map after each read that found the file
    grown: take it from here each time, never keep it across `grow`."""
    records: RecordTable
    compressed: bool
    _mm: mmap.mmap | None
    _spool: Any
    _growth: _Growth | None = None

    @property
    def growing(self) -> bool:
        """Whether the file may still gain records (`grow` reads them)."""
        return self._growth is not None and not self._growth.ended

    def grow(self, final: bool = False) -> RecordTable | None:
        """Read the records the file gained since the last read and append them to `records`;
        return a table of those alone (findings numbered in the whole capture), or None when the
        capture does not grow. `final`: the file is complete (the writer stopped): a record cut
        short at its end is a finding now, and nothing is read after this. Raises CaptureError
        when the file's first bytes, once there, are not a capture's."""
        g = self._growth
        if g is None or g.ended:
            return None
        size = os.fstat(g.source.fileno()).st_size
        if size < len(self.buffer):
            return self._shrunk(g, size)
        if size > len(self.buffer):
            self._map(g)
        if g.reader is None:
            g.reader = self._reader()
        if g.reader is None:
            chunk = empty_table(self.records.format, [])
            if final and len(self.buffer):
                why = f"the file ends inside its header ({len(self.buffer)} bytes): it holds no packets"
                chunk.findings.append((0, Finding("error", "capture.truncated", why)))
        else:
            chunk = g.reader.read(self.buffer, ByteColumns(self.buffer), final)
        self._append(g, chunk)
        if final:
            g.ended = True
        return chunk

    def _map(self, g: _Growth) -> None:
        """Map the file again, as long as it is now. The old map is not closed: it goes when the
        last reader lets go of it (another thread may be reading a frame from it right now)."""
        mm = mmap.mmap(g.source.fileno(), 0, access=mmap.ACCESS_READ)
        self._mm = self.buffer = mm

    def _reader(self) -> RecordReader | None:
        """The reader of the file's format, once enough of its start is there to tell it."""
        buf = self.buffer
        magic = bytes(buf[:4])
        if len(magic) < 4:
            return None
        if magic in pcap.MAGICS:
            return PcapReader(buf) if len(buf) >= pcap.FILE_HEADER_LEN else None
        if magic == PCAPNG_MAGIC:
            return PcapngReader()
        if magic == NETXRAY_MAGIC:
            return _WholeFile()
        if magic[:2] == GZIP_MAGIC:
            raise CaptureError(f"{self.path}: a gzip capture cannot be read while it is written")
        raise _not_a_capture(self.path, magic)

    def _shrunk(self, g: _Growth, size: int) -> RecordTable:
        """The file was cut while we follow it: the records read are kept, nothing more is read,
        and the map goes down to the file's length (a read past it would be a SIGBUS)."""
        g.ended = True
        why = (
            f"the file shrank while it was followed ({len(self.buffer)} bytes read, {size} now): the "
            "records read before are shown, and nothing after"
        )
        if size:
            self._map(g)
        else:
            self._mm, self.buffer = None, b""
        chunk = empty_table(self.records.format, self.records.interfaces)
        chunk.findings.append((len(self.records), Finding("error", "capture.changed", why)))
        self._append(g, chunk)
        return chunk

    def _append(self, g: _Growth, chunk: RecordTable) -> None:
        """`chunk`'s records after those of `records` (whose columns become longer views)."""
        g.records.append({name: getattr(chunk, name) for name in RECORD_COLUMNS})
        rec = self.records
        for name in RECORD_COLUMNS:
            setattr(rec, name, g.records.view(name))
        rec.format = chunk.format
        if chunk.interfaces:
            rec.interfaces = chunk.interfaces
        rec.comments.update(chunk.comments)
        rec.findings += chunk.findings
        rec.secrets += [block for block in chunk.secrets if block not in rec.secrets]

    def release_pages(self) -> None:
        """Drop the file's pages from our resident set after a full pass (they stay in the OS page
        cache; frames are read again on demand). Indexing 1M packets touches the whole file: 230
        MB of RSS without this."""
        if self._mm is not None and hasattr(self._mm, "madvise"):
            self._mm.madvise(mmap.MADV_DONTNEED)

    def close(self) -> None:
        if self._mm is not None:
            _close_map(self._mm)
            self._mm = None
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        if self._growth is not None:
            self._growth.source.close()
            self._growth.ended = True


def _close_map(mm: mmap.mmap) -> None:
    try:
        mm.close()
    except BufferError:
        pass  # numpy views of it are still alive; the map goes when they do


def _known_magic(head: bytes) -> bool:
    return head[:2] == GZIP_MAGIC or head in pcap.MAGICS or head in (PCAPNG_MAGIC, NETXRAY_MAGIC)


def _not_a_capture(name: object, magic: bytes) -> CaptureError:
    return CaptureError(
        f"{name}: not a capture file (starts with {magic.hex()}; expected pcap, pcapng, NetXRay or gzip)"
    )


def _copy(src: io.BufferedReader, head: bytes, spool: IO[bytes], regular: bool) -> int:
    """Copy `head` and the rest of `src` into `spool`; return the bytes copied. A regular file is
    copied by the kernel (sendfile: 0.07-0.14 s for 230 MB here, against 0.11-0.22 s through a
    buffer), from the offset after `head` whatever `src` has buffered."""
    spool.write(head)
    done = len(head)
    if regular:
        spool.flush()
        while n := os.sendfile(spool.fileno(), src.fileno(), done, 1 << 30):
            done += n
        return done
    chunk = bytearray(COPY_CHUNK)
    view = memoryview(chunk)
    while n := src.readinto(chunk):
        spool.write(view[:n])
        done += n
    return done


def _inflate(src: io.BufferedReader, head: bytes, spool: IO[bytes]) -> list[Finding]:
    """Inflate the gzip stream `head` + `src` into `spool`, keeping every byte inflated before a
    cut or damage (as zcat does); concatenated members are one stream, as for gzip -d."""
    import zlib  # here, not at the top: only gzip captures need it (start-up time)

    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    pending, read, written = head, len(head), 0
    while True:
        if not pending:
            pending = src.read(COPY_CHUNK)
            read += len(pending)
            if not pending:
                break
        data = pending
        while True:  # output is bounded per call: a megabyte of zeros inflates to a gigabyte
            before = inflater.copy()
            try:
                out = inflater.decompress(data, COPY_CHUNK)
            except zlib.error as exc:
                written += _salvage(before, data, spool)
                why = f"the gzip stream is damaged ({exc}): the {written} bytes inflated before it are read"
                return [Finding("error", "capture.gzip_damaged", why)]
            spool.write(out)
            written += len(out)
            data = inflater.unconsumed_tail
            if inflater.eof or (not data and len(out) < COPY_CHUNK):
                break
        if not inflater.eof:
            pending = b""
            continue
        pending = inflater.unused_data
        while len(pending) < len(GZIP_MAGIC) and (more := src.read(COPY_CHUNK)):
            read += len(more)
            pending += more
        if not pending:
            return []
        if pending[:2] != GZIP_MAGIC:
            if pending.count(0) == len(pending):  # zeros are padding (gzip -d skips them too)
                return []
            at = read - len(pending)
            why = f"the bytes from compressed byte {at} on are not gzip data; they are ignored"
            return [Finding("warn", "capture.gzip_trailing", why)]
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # the next member
    tail = inflater.flush()  # what the last input gives without the stream's end
    spool.write(tail)
    written += len(tail)
    why = (
        f"the gzip stream is cut short after {read} compressed bytes: the {written} bytes inflated "
        "before the cut are read"
    )
    return [Finding("error", "capture.gzip_truncated", why)]


def _salvage(inflater: Any, data: bytes, spool: IO[bytes]) -> int:
    """Inflate `data` a byte at a time up to where it fails, into `spool`; return the bytes written.
    zlib drops the whole output of a call that fails (a bad CRC at the end of a member fails the
    call that inflated the member's last COPY_CHUNK bytes): given one input byte a call, only that
    byte's output is lost, as with zcat. Slow (1.3 s a MB here), but only once, on at most
    COPY_CHUNK bytes, after damage."""
    import zlib

    written = 0
    for i in range(len(data)):
        try:
            out = inflater.decompress(data[i : i + 1])
        except zlib.error:
            break
        spool.write(out)
        written += len(out)
    return written


def _changed(before: os.stat_result, after: os.stat_result, read: int | None) -> Finding | None:
    """A finding when a regular file shrank or was rewritten while it was read (`read`: the bytes
    copied, None when inflated). Growing is not a change: a file still being written ends in a cut
    record, and that has its own finding."""
    if (read is not None and read < before.st_size) or after.st_size < before.st_size:
        return Finding(
            "error",
            "capture.changed",
            f"the file shrank while it was read ({before.st_size} bytes when opened, {after.st_size} "
            "after): the records in what was read are shown",
        )
    if after.st_mtime_ns != before.st_mtime_ns and after.st_size == before.st_size:
        return Finding(
            "error",
            "capture.changed",
            "the file was rewritten while it was read: what was read may mix old and new records",
        )
    return None


def _open_source(path: str | os.PathLike[str]) -> tuple[Path, io.BufferedReader]:
    if str(path) == STDIN:
        return Path(STDIN), open(0, "rb", closefd=False)
    p = Path(path)
    if not p.exists():
        raise CaptureError(f"{p}: no such file")
    if p.is_dir():
        raise CaptureError(f"{p}: is a directory, not a capture file")
    try:
        return p, open(p, "rb")
    except OSError as exc:
        raise CaptureError(f"{p}: cannot open: {exc.strerror}") from None


def _private_copy(p: Path, src: io.BufferedReader) -> tuple[IO[bytes] | None, list[Finding], bool]:
    """The capture's bytes in a temporary file of our own (None: map `src` itself), the findings
    of reading it, and whether it was gzip."""
    try:
        before = os.fstat(src.fileno())
        head = src.read(4)
    except OSError as exc:
        raise CaptureError(f"{p}: cannot read: {exc.strerror}") from None
    if not head:
        raise CaptureError(f"{p}: empty file (0 bytes), not a capture")
    if not _known_magic(head):
        raise _not_a_capture(p, head)
    compressed = head[:2] == GZIP_MAGIC
    regular = stat.S_ISREG(before.st_mode)
    problems: list[Finding] = []
    spool = None
    try:
        spool = tempfile.TemporaryFile(prefix="protoscope-")
        if compressed:
            problems += _inflate(src, head, spool)
            read = None
        else:
            read = _copy(src, head, spool, regular)
        spool.flush()
    except OSError as exc:  # no room in TMPDIR, or no TMPDIR we may write to
        if spool is not None:
            spool.close()
        where = tempfile.gettempdir()
        if not regular or compressed:
            raise CaptureError(f"{p}: cannot read it into {where}: {exc.strerror}") from None
        note = (
            f"no private copy could be made in {where} ({exc.strerror}): the file is read in place, "
            "and a change to it while it is read would end the run"
        )
        return None, [Finding("note", "capture.read_in_place", note)], False
    if regular:
        changed = _changed(before, os.fstat(src.fileno()), read)
        if changed is not None:
            problems.append(changed)
    return spool, problems, compressed


def open_capture(path: str | os.PathLike[str], growing: bool = False) -> CaptureFile:
    """Open and index a capture; raise CaptureError when it is not a readable capture at all.
    `path` may be STDIN, a pipe or a FIFO: those are read once, into the private copy.
    `growing`: the file may still be written (our live spool, or a file tcpdump or dumpcap
    writes): it is mapped in place and `CaptureFile.grow` reads what it gains; a last record cut
    short is left for that read, without a finding, and the file may even be empty yet. Only a
    regular file that is not gzip grows; any other capture is read once, as without `growing`."""
    p, src = _open_source(path)
    if growing and _can_grow(src):
        return _open_growing(p, src)
    with src:
        spool, problems, compressed = _private_copy(p, src)
        target = src if spool is None else spool
        try:
            if os.fstat(target.fileno()).st_size == 0:
                raise CaptureError(f"{p}: empty after decompression, not a capture")
            mm = mmap.mmap(target.fileno(), 0, access=mmap.ACCESS_READ)  # it keeps its own descriptor
        except BaseException:
            if spool is not None:
                spool.close()
            raise
    try:
        records = scan(mm, p)
    except CaptureError:
        _close_map(mm)
        if spool is not None:
            spool.close()
        raise
    records.findings += [(len(records), f) for f in problems]
    return CaptureFile(p, mm, records, compressed, mm, spool)


def _can_grow(src: io.BufferedReader) -> bool:
    """A regular file whose first bytes (if any yet) are not gzip's: it can be mapped in place."""
    try:
        regular = stat.S_ISREG(os.fstat(src.fileno()).st_mode)
        return regular and os.pread(src.fileno(), len(GZIP_MAGIC), 0) != GZIP_MAGIC
    except OSError:
        return False


def _open_growing(p: Path, src: io.BufferedReader) -> CaptureFile:
    capture = CaptureFile(p, b"", empty_table("pcap", []), False, None, None, _Growth(src))
    try:
        capture.grow()
    except BaseException:
        capture.close()
        raise
    return capture


def scan(buf: Any, name: Path | str = "capture") -> RecordTable:
    """Choose the reader by magic number and index `buf`."""
    magic = bytes(buf[:4])
    if magic in pcap.MAGICS:
        return pcap.scan_pcap(buf, ByteColumns(buf))
    if magic == PCAPNG_MAGIC:
        return pcapng.scan_pcapng(buf, ByteColumns(buf))
    if magic == NETXRAY_MAGIC:
        return scan_netxray(buf)
    raise _not_a_capture(name, magic)


PREVIEW_BYTES = 1 << 20
"""How much of a file the quick preview reads (a few thousand packets)."""


def open_preview(path: str | os.PathLike[str], size: int = PREVIEW_BYTES) -> CaptureFile | None:
    """The first `size` bytes of an uncompressed capture as a capture of its own (the records that
    fit; a cut last record is simply left out), so a viewer can show rows at once while the whole
    file is indexed. None for gzip, unreadable files and what cannot be read twice (a pipe, a FIFO,
    standard input: the preview would take bytes the full read needs)."""
    p = Path(path)
    try:
        if str(path) == STDIN or not stat.S_ISREG(os.stat(p).st_mode):
            return None
        with open(p, "rb") as fh:
            head = fh.read(size)
    except OSError:
        return None
    if len(head) < 4 or head[:2] == GZIP_MAGIC:
        return None
    try:
        records = scan(head, p)
    except CaptureError:
        return None
    records.findings = [(i, f) for i, f in records.findings if f.code != "capture.truncated"]
    return CaptureFile(p, head, records, False, None, None)
