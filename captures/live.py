"""Live capture through scapy, spooled to a pcapng file that the rest of the pipeline reads.

The spool is the single source of truth: every packet scapy hands us is written and flushed
before anything else looks at it, so live and file captures go through the same readers.
`LiveCapture` runs in the background (scapy's AsyncSniffer) so a viewer can show what arrives;
the headless `capture()` waits for it.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import struct
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CaptureError
from .writer import PcapNgWriter

DEFAULT_LINKTYPE = 1
SOL_PACKET = 263
PACKET_STATISTICS = 6
"""getsockopt(SOL_PACKET, PACKET_STATISTICS): struct tpacket_stats {tp_packets, tp_drops}, reset on
each read (linux/if_packet.h). scapy does not expose it; it is how tcpdump counts kernel drops."""
STATS_EVERY = 64
"""Packets between two reads of the kernel's drop counter."""


@dataclass(slots=True)
class LiveStats:
    spool: Path
    packets: int = 0
    """Packets written to the spool."""
    bytes: int = 0
    dropped: int | None = None
    """Packets the kernel dropped because we read too slowly (None where it cannot tell)."""
    skipped: int = 0
    """Packets that arrived while the capture was paused (seen, not kept)."""


_TEMPORARY: set[Path] = set()
"""Temporary spools `spool_path` made in this process: a capture that fails to start removes its
own (a user's `-w` file is never removed)."""


def spool_path(requested: str | None) -> tuple[Path, bool]:
    """The spool file to write: the user's `-w` path, else a new temporary file (printed)."""
    if requested:
        return Path(requested), False
    fd, name = tempfile.mkstemp(prefix="protoscope-live-", suffix=".pcapng")
    os.close(fd)
    _TEMPORARY.add(Path(name))
    return Path(name), True


def _linktype(pkt: Any) -> int:
    from scapy.config import conf

    return int(conf.l2types.layer2num.get(type(pkt), DEFAULT_LINKTYPE))


def _not_permitted(iface: str) -> CaptureError:
    return CaptureError(f"capturing on {iface} is not permitted: run as root or grant CAP_NET_RAW to python")


ARPHRD_LOOPBACK = 772


def _socket_filter(iface: str, bpf: str | None) -> str | None:
    """The BPF for the socket. On a Linux loopback device a packet socket sees every packet twice
    (going out and coming in); libpcap drops the outgoing copy there (pcap-linux.c), and so do we
    with the `inbound` qualifier, so that `lo` captures match tcpdump's."""
    try:
        hatype = int(Path(f"/sys/class/net/{iface}/type").read_text())
    except (OSError, ValueError):
        return bpf or None
    if hatype != ARPHRD_LOOPBACK:
        return bpf or None
    return f"inbound and ({bpf})" if bpf else "inbound"


@contextmanager
def _quiet_scapy() -> Iterator[None]:
    """scapy warns that it cannot guess the link layer of `lo`; we write its frames as Ethernet,
    which they are, so the warning would only alarm."""
    log = logging.getLogger("scapy.runtime")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


class LiveCapture:
    """Capture on `iface` into `spool` in a background thread until `count` packets, `duration`
    seconds or stop(); pause() keeps the socket open but stops keeping packets."""

    def __init__(
        self,
        iface: str,
        spool: Path,
        bpf: str | None = None,
        count: int = 0,
        duration: float | None = None,
    ) -> None:
        self.iface = iface
        self.stats = LiveStats(spool)
        self.error: CaptureError | None = None
        self._bpf = bpf
        self._count = count
        self._duration = duration
        self._paused = threading.Event()
        self._socket: Any = None
        self._sniffer: Any = None
        self._out: Any = None
        self._writer: PcapNgWriter | None = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    @property
    def running(self) -> bool:
        return self._sniffer is not None and bool(self._sniffer.running)

    def pause(self) -> None:
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def start(self) -> None:
        """Open the interface and the spool; raise CaptureError (one line) when either fails.
        A start that fails closes what it opened and removes a temporary spool (nothing was
        captured into it)."""
        try:
            self._start()
        except BaseException:
            self._abandon()
            raise

    def _close_spool(self) -> None:
        with self._lock:
            if self._out is not None:
                self._out.close()
                self._out = None
                self._writer = None

    def _abandon(self) -> None:
        if self._socket is not None:
            try:
                self._socket.close()
            except Exception:  # already closed or half open: nothing more to release
                pass
            self._socket = None
        self._close_spool()
        spool = self.stats.spool
        if spool in _TEMPORARY:
            _TEMPORARY.discard(spool)
            spool.unlink(missing_ok=True)

    def _start(self) -> None:
        try:
            from scapy.arch import get_if_list
            from scapy.config import conf
            from scapy.sendrecv import AsyncSniffer
        except ImportError as exc:  # pragma: no cover - scapy is a dependency
            raise CaptureError(f"live capture needs scapy: {exc}") from None
        if self.iface not in get_if_list():
            have = ", ".join(get_if_list())
            raise CaptureError(f"no such interface: {self.iface} (have: {have})")
        try:
            with _quiet_scapy():
                self._socket = conf.L2listen(iface=self.iface, filter=_socket_filter(self.iface, self._bpf))
        except PermissionError:
            raise _not_permitted(self.iface) from None
        except OSError as exc:
            if exc.errno in (errno.EPERM, errno.EACCES):
                raise _not_permitted(self.iface) from None
            raise CaptureError(f"capture on {self.iface} failed: {exc}") from None
        except Exception as exc:  # scapy reports a bad BPF and such as Scapy_Exception
            raise CaptureError(f"capture on {self.iface} failed: {type(exc).__name__}: {exc}") from None
        try:
            self._out = open(self.stats.spool, "wb")
        except OSError as exc:
            raise CaptureError(f"cannot write the spool file {self.stats.spool}: {exc.strerror}") from None
        self._writer = PcapNgWriter(self._out)
        self._writer.flush()
        self._read_drops()  # the counter starts from zero now
        self.stats.dropped = 0 if self._kernel_socket() is not None else None
        # --count counts the packets kept, so packets seen while paused do not use it up.
        self._sniffer = AsyncSniffer(
            opened_socket=self._socket,
            prn=self._keep,
            store=False,
            stop_filter=(lambda _pkt: self.stats.packets >= self._count) if self._count else None,
        )
        self._sniffer.start()
        if self._duration is not None:  # AsyncSniffer refuses a timeout of its own
            self._timer = threading.Timer(self._duration, self._time_up)
            self._timer.daemon = True
            self._timer.start()

    def _time_up(self) -> None:
        sniffer = self._sniffer
        if sniffer is not None:
            try:
                sniffer.stop(join=False)
            except Exception:  # already stopped by its count: nothing left to do
                pass

    def _keep(self, pkt: Any) -> None:
        stats = self.stats
        if self._paused.is_set():
            stats.skipped += 1
            return
        raw = bytes(pkt)
        wirelen = getattr(pkt, "wirelen", None) or len(raw)
        with self._lock:
            if self._writer is None:
                return
            self._writer.write(raw, int(float(pkt.time) * 1e9), _linktype(pkt), wirelen)
            self._writer.flush()
        stats.packets += 1
        stats.bytes += len(raw)
        if stats.packets % STATS_EVERY == 0:
            self._read_drops()

    def _kernel_socket(self) -> socket.socket | None:
        ins = getattr(self._socket, "ins", None)
        return ins if sys.platform == "linux" and isinstance(ins, socket.socket) else None

    def _read_drops(self) -> None:
        sock = self._kernel_socket()
        if sock is None:
            return
        try:
            _packets, drops = struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        except OSError:
            return
        self.stats.dropped = (self.stats.dropped or 0) + drops

    def wait(self) -> None:
        """Block until the capture ends by itself (count or duration); Ctrl-C stops it."""
        if self._sniffer is None:
            return
        try:
            while self._sniffer.thread is not None and self._sniffer.thread.is_alive():
                self._sniffer.thread.join(0.2)
        except KeyboardInterrupt:
            pass
        self.stop()

    def stop(self) -> None:
        """Stop capturing and close the spool; the error of the capture thread, if any, is kept in
        `error` (a CaptureError, never a traceback)."""
        if self._timer is not None:
            self._timer.cancel()
        sniffer = self._sniffer
        if sniffer is not None:
            try:
                if sniffer.running:
                    sniffer.stop(join=True)
                else:
                    sniffer.join()
            except Exception as exc:  # the thread's own failure, raised again by join
                self.error = CaptureError(f"capture on {self.iface} failed: {type(exc).__name__}: {exc}")
        if self._socket is not None:
            self._read_drops()
            self._socket.close()
            self._socket = None
        self._close_spool()
