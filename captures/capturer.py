"""The capture process: libpcap handles to a pcapng spool, with status lines for the parent.

`python -m protoscope.captures.capturer OPTIONS_JSON SPOOL` is started by `LiveCapture` (live.py).
It runs apart from the viewer because the viewer's Python thread holds the GIL for long stretches
and the machine may have 2 cores: a capture thread behind it would fall behind the kernel's ring.

Spool writes are batched: the Enhanced Packet Blocks of the packets libpcap hands over are appended
to a buffer, which is written (one write call, whole blocks only) when it holds 1 MiB or when its
oldest packet has waited 100 ms, so a reader of the spool sees a packet within ~200 ms of its
arrival (libpcap hands a ring block over after at most 100 ms; then at most 100 ms in the buffer).

Talking to the parent:
- stdout, one JSON object a line: {"event": "started", ...} once the interfaces and the spool are
  open, or {"event": "error", "error": LINE} when they cannot be (then the process exits 2); then
  {"event": "status", ...} every STATUS_EVERY seconds, and {"event": "end", ...} last, with
  "error" set when a spool write failed. The counters: received (libpcap's ps_recv, all
  interfaces), kernel_dropped (ps_drop), if_dropped (ps_ifdrop), packets and bytes written,
  skipped (seen while paused), dropped_by_us (seen and not written: paused, or lost with a failed
  write), file (being written) and files (the ring's files on disk).
- stdin, one word a line: `pause`, `resume`, `stop`. End of input (the parent went away) stops too;
  so do SIGTERM (and SIGUSR1/SIGUSR2 pause and resume). SIGINT is ignored: Ctrl-C in a terminal
  reaches the whole process group, and it is the parent that decides to stop.
On stop the buffer is written, then an Interface Statistics Block for each interface.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import select
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

from . import libpcap
from .options import CaptureOptions
from .ringfiles import SpoolError, SpoolFiles
from .writer import (
    EPB,
    EPB_HEAD,
    EPB_OVERHEAD,
    EPB_TAIL,
    interface_description,
    interface_statistics,
    section_header,
)

FLUSH_BYTES = 1 << 20
"""Write the buffered packets once they take this many bytes..."""
FLUSH_SECONDS = 0.1
"""...or once the oldest of them has waited this long."""
BLOCK_TIMEOUT_MS = 100
"""pcap_set_timeout: libpcap hands a TPACKET_V3 ring block over when it is full or this old."""
STATUS_EVERY = 0.15
"""Seconds between two status lines to the parent."""
IDLE_WAIT = 0.05
"""Longest wait for packets or a control word before looking at the clock again."""
PKTHDR = struct.Struct("@llII")
"""struct pcap_pkthdr as the C compiler lays it out: tv_sec, tv_usec (nanoseconds when the handle's
precision is nano: Handle.tick_ns), caplen, len."""

EXIT_REFUSED = 2
EXIT_FAILED = 1


def _not_permitted(iface: str) -> str:
    return f"capturing on {iface} is not permitted: run as root or grant CAP_NET_RAW to python"


def _refusal(iface: str, exc: libpcap.PcapError) -> str:
    """One line for an interface libpcap would not open, in the words the CLI has always used."""
    if exc.code in (libpcap.PCAP_ERROR_PERM_DENIED, libpcap.PCAP_ERROR_PROMISC_PERM_DENIED):
        return _not_permitted(iface)
    if exc.code == libpcap.PCAP_ERROR_NO_SUCH_DEVICE:
        have = ", ".join(name for _, name in socket.if_nameindex())
        return f"no such interface: {iface} (have: {have}, any)"
    text = str(exc)
    if "Operation not permitted" in text or "permission" in text.lower():
        return _not_permitted(iface)
    return f"capture on {text}" if text.startswith(f"{iface}:") else text


class Capture:
    """Handles, the batch and the counters of one capture run."""

    def __init__(self, options: CaptureOptions, spool: Path) -> None:
        self.options = options
        self.files = SpoolFiles(spool, options.ring_options)
        self.handles: list[libpcap.Handle] = []
        self.batch = bytearray()
        self.batch_since: float | None = None
        self.captured = [0]
        """Bytes of packet data in the batch and written (a cell the packet callbacks add to)."""
        self.packets = 0
        self.delivered: list[int] = []
        """Packets kept, by interface (isb_usrdeliv)."""
        self.skipped = 0
        self.lost = 0
        self.paused = False
        self.stopping = False
        self.error: str | None = None
        self.spool_failed = False
        """A write to the spool failed (then nothing more is written to it)."""
        self.start_ns = time.time_ns()
        self._callbacks: list[Any] = []
        self._skip = libpcap.PCAP_HANDLER(lambda _u, _h, _d: None)

    # -- opening --------------------------------------------------------------------------------

    def open(self) -> None:
        """Open every interface, then the spool; raises SpoolError or libpcap.PcapError (one line)."""
        o = self.options
        for name in o.interfaces:
            try:
                handle = libpcap.open_live(
                    name, o.snaplen, o.promisc, o.buffer_mib << 20, BLOCK_TIMEOUT_MS, o.bpf or None
                )
            except libpcap.PcapError as exc:
                raise libpcap.PcapError(_refusal(name, exc), exc.code) from None
            handle.set_nonblock()
            self.add(handle)
        self.files.open_next(self.header())

    def add(self, handle: libpcap.Handle) -> None:
        """Take packets from `handle` too, as the next interface id."""
        self.handles.append(handle)
        self.delivered.append(0)
        self._callbacks.append(self._collector(len(self.handles) - 1))

    def header(self) -> bytes:
        """A file's first blocks: the section header and an IDB per interface, in -i order."""
        idbs = b"".join(
            interface_description(h.datalink, h.snapshot, h.device, self.options.bpf) for h in self.handles
        )
        return section_header() + idbs

    def _collector(self, iface: int) -> Any:
        """The pcap_dispatch callback for interface `iface`: the packet's EPB, appended to the batch.
        This is the per-packet path (~2 us in Python): locals only, no object kept."""
        extend = self.batch.extend
        unpack = PKTHDR.unpack
        string_at = ctypes.string_at
        head = EPB_HEAD.pack
        tails = [t.pack for t in EPB_TAIL]
        captured = self.captured
        hdr_size = PKTHDR.size
        tick = self.handles[iface].tick_ns

        def on_packet(_user: int | None, hdr: int, data: int) -> None:
            sec, fraction, caplen, wirelen = unpack(string_at(hdr, hdr_size))
            ts = sec * 1_000_000_000 + fraction * tick
            pad = -caplen & 3
            blen = EPB_OVERHEAD + caplen + pad
            extend(head(EPB, blen, iface, ts >> 32, ts & 0xFFFFFFFF, caplen, wirelen))
            extend(string_at(data, caplen))
            extend(tails[pad](blen))
            captured[0] += caplen

        return libpcap.PCAP_HANDLER(on_packet)

    # -- the loop -------------------------------------------------------------------------------

    def run(self, control: int, report: Any) -> None:
        """Capture until --count, --duration, a stop word or signal, end of `control`, or an error."""
        o = self.options
        deadline = time.monotonic() + o.duration if o.duration is not None else None
        fds = [h.selectable_fd() for h in self.handles]
        next_status = time.monotonic() + STATUS_EVERY
        words = b""
        while not self.stopping:
            now = time.monotonic()
            wait = IDLE_WAIT
            if self.batch_since is not None:
                wait = min(wait, max(0.0, self.batch_since + FLUSH_SECONDS - now))
            watched = [*fds, control] if control >= 0 else fds
            try:
                ready, _, _ = select.select(watched, [], [], wait)
            except InterruptedError:
                ready = []
            if control in ready:
                chunk = os.read(control, 4096)
                if not chunk:
                    self.stopping = True
                    control = -1
                words += chunk
                *lines, words = words.split(b"\n")
                for word in lines:
                    self.command(word.strip().decode("ascii", "replace"))
            self.take()
            now = time.monotonic()
            if self.batch and self.batch_since is None:
                self.batch_since = now
            if o.count and self.packets >= o.count:
                self.stopping = True
            if deadline is not None and now >= deadline:
                self.stopping = True
            try:
                if self._flush_due(now) or self.stopping:
                    self.flush()
                if self.files.due(now) and not self.stopping:
                    self.flush()
                    if self.files.due(now):
                        self.rotate()
            except SpoolError as exc:
                self.fail(str(exc))
            if now >= next_status and not self.stopping:
                next_status = now + STATUS_EVERY
                report(self.status("status"))
        if self.error is None and not (o.count and self.packets >= o.count):
            self.drain(fds)

    def drain(self, fds: list[int]) -> None:
        """Take the packets of the ring blocks the kernel has not handed over yet: it hands a
        block over when full or BLOCK_TIMEOUT_MS old, so a stop waits that long (and a little)."""
        end = time.monotonic() + BLOCK_TIMEOUT_MS * 1.5 / 1000
        while (left := end - time.monotonic()) > 0:
            try:
                select.select(fds, [], [], left)
            except InterruptedError:
                pass
            self.take()
        try:
            self.flush()
        except SpoolError as exc:
            self.fail(str(exc))

    def command(self, word: str) -> None:
        if word == "pause":
            self.paused = True
        elif word == "resume":
            self.paused = False
        elif word == "stop":
            self.stopping = True

    def take(self) -> None:
        """Every packet libpcap has ready, from each interface: kept, or counted as skipped."""
        count = self.options.count
        for n, (handle, callback) in enumerate(zip(self.handles, self._callbacks, strict=True)):
            if self.paused:
                self.skipped += handle.dispatch(self._skip)
                continue
            left = count - self.packets if count else -1
            if left == 0:
                return
            taken = handle.dispatch(callback, None, left)
            self.packets += taken
            self.delivered[n] += taken

    def _flush_due(self, now: float) -> bool:
        if not self.batch:
            return False
        room = self.files.room()
        limit = FLUSH_BYTES if room is None else max(1, min(FLUSH_BYTES, room))
        return len(self.batch) >= limit or (
            self.batch_since is not None and now - self.batch_since >= FLUSH_SECONDS
        )

    def flush(self) -> None:
        """Write the batch (whole blocks) to the spool; with a ring file size, the blocks that
        fill the current file go to it and the rest to the next (dumpcap's: a file reaches the
        size, by at most one packet)."""
        while self.batch:
            room = self.files.room()
            cut = len(self.batch) if room is None else _boundary(self.batch, room)
            try:
                self.files.write(self.batch if cut == len(self.batch) else self.batch[:cut])
            except SpoolError as exc:  # the blocks that reached the file whole are no longer ours
                del self.batch[: _whole(self.batch, exc.written)]
                raise
            del self.batch[:cut]
            if self.batch:
                self.rotate()
        self.batch_since = None

    def rotate(self) -> None:
        """The ring's next file: this one ends with the statistics so far (counted from the start
        of the capture, as each file's ISBs are the capture's statistics when it was closed)."""
        self.files.close(self.statistics())
        self.files.open_next(self.header())

    def fail(self, message: str) -> None:
        """A spool write failed: stop, and count the packets that did not reach the file."""
        self.error = message
        self.spool_failed = True
        self.stopping = True
        unwritten, data = _epbs(self.batch, len(self.handles))
        self.lost += sum(unwritten)
        self.packets -= sum(unwritten)
        for n, k in enumerate(unwritten):
            self.delivered[n] -= k
        self.captured[0] -= data
        self.batch.clear()

    def statistics(self) -> bytes:
        """An ISB per interface; isb_usrdeliv counts the packets written so far."""
        now = time.time_ns()
        unwritten, _data = _epbs(self.batch, len(self.handles))
        blocks = []
        for n, handle in enumerate(self.handles):
            st = handle.stats()
            blocks.append(
                interface_statistics(
                    n,
                    now,
                    starttime_ns=self.start_ns,
                    endtime_ns=now,
                    ifrecv=st.ps_recv,
                    ifdrop=st.ps_ifdrop,
                    osdrop=st.ps_drop,
                    usrdeliv=self.delivered[n] - unwritten[n],
                )
            )
        return b"".join(blocks)

    def status(self, event: str) -> dict[str, Any]:
        received = dropped = if_dropped = 0
        for handle in self.handles:
            st = handle.stats()
            received += st.ps_recv
            dropped += st.ps_drop
            if_dropped += st.ps_ifdrop
        return {
            "event": event,
            "received": received,
            "kernel_dropped": dropped,
            "if_dropped": if_dropped,
            "packets": self.packets,
            "bytes": self.captured[0],
            "skipped": self.skipped,
            "dropped_by_us": self.skipped + self.lost,
            "file": str(self.files.current) if self.files.kept else None,
            "files": [str(p) for p in self.files.kept],
            "error": self.error,
        }

    def finish(self) -> None:
        """Write what is buffered and the statistics blocks, and close everything."""
        try:
            if not self.spool_failed:  # libpcap's own failure still gets what was taken, and the ISBs
                self.flush()
                self.files.close(self.statistics())
        except SpoolError as exc:
            self.fail(str(exc))
        finally:
            self.files.close()
            for handle in self.handles:
                handle.close()


def _boundary(batch: bytearray, room: int) -> int:
    """The end of the first block in `batch` that ends at or past `room` bytes (or len(batch))."""
    pos = 0
    size = len(batch)
    while pos + 8 <= size and pos < room:
        (blen,) = struct.unpack_from("<I", batch, pos + 4)
        pos += blen
    return min(pos, size) if pos >= room else size


def _whole(batch: bytearray, written: int) -> int:
    """The end of the last block of `batch` that lies whole in its first `written` bytes."""
    pos = 0
    while pos + 8 <= written:
        (blen,) = struct.unpack_from("<I", batch, pos + 4)
        if pos + blen > written:
            break
        pos += blen
    return pos


def _epbs(batch: bytearray, interfaces: int) -> tuple[list[int], int]:
    """The EPBs in `batch` (not written yet), by interface id, and the bytes of packet data in them."""
    counts = [0] * interfaces
    data = 0
    pos = 0
    size = len(batch)
    while pos + EPB_HEAD.size <= size:
        _btype, blen, iface, _hi, _lo, caplen, _wirelen = EPB_HEAD.unpack_from(batch, pos)
        counts[iface] += 1
        data += caplen
        pos += blen
    return counts, data


def _report_to(fd: int) -> Any:
    def report(message: dict[str, Any]) -> None:
        try:
            os.write(fd, (json.dumps(message) + "\n").encode())
        except OSError as exc:  # the parent went away: nobody to report to, the capture goes on
            if exc.errno not in (errno.EPIPE, errno.EBADF):
                raise

    return report


def main(argv: list[str]) -> int:
    options = CaptureOptions.from_json(argv[0])
    capture = Capture(options, Path(argv[1]))
    report = _report_to(sys.stdout.fileno())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file-size limit is then EFBIG: one line

    def on_signal(signum: int, _frame: Any) -> None:
        if signum == signal.SIGTERM:
            capture.stopping = True
        else:
            capture.paused = signum == signal.SIGUSR1

    for signum in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, on_signal)
    try:
        capture.open()
    except (libpcap.PcapError, SpoolError) as exc:
        capture.finish()
        report({"event": "error", "error": str(exc)})
        return EXIT_REFUSED
    report({**capture.status("started"), "linktypes": [h.datalink for h in capture.handles]})
    try:
        capture.run(sys.stdin.fileno(), report)
    except libpcap.PcapError as exc:
        capture.error = str(exc)
    finally:
        capture.finish()
    report(capture.status("end"))
    return EXIT_FAILED if capture.error else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
