"""Live capture through scapy, spooled to a pcapng file that the rest of the pipeline reads.

The spool is the single source of truth: every packet scapy hands us is written and flushed
before anything else looks at it, so live and file captures go through the same readers.
"""

from __future__ import annotations

import errno
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CaptureError
from .writer import PcapNgWriter

DEFAULT_LINKTYPE = 1


@dataclass(slots=True)
class LiveStats:
    spool: Path
    packets: int = 0
    bytes: int = 0


def spool_path(requested: str | None) -> tuple[Path, bool]:
    """The spool file to write: the user's `-w` path, else a new temporary file (printed)."""
    if requested:
        return Path(requested), False
    fd, name = tempfile.mkstemp(prefix="protoscope-live-", suffix=".pcapng")
    os.close(fd)
    return Path(name), True


def _linktype(pkt: Any) -> int:
    from scapy.config import conf

    return int(conf.l2types.layer2num.get(type(pkt), DEFAULT_LINKTYPE))


def capture(
    iface: str,
    spool: Path,
    bpf: str | None = None,
    count: int = 0,
    duration: float | None = None,
    stop: threading.Event | None = None,
    on_packet: Callable[[LiveStats], None] | None = None,
) -> LiveStats:
    """Capture on `iface` into `spool` until `count` packets, `duration` seconds or `stop`."""
    try:
        from scapy.arch import get_if_list
        from scapy.sendrecv import sniff
    except ImportError as exc:  # pragma: no cover - scapy is a dependency
        raise CaptureError(f"live capture needs scapy: {exc}") from None
    if iface not in get_if_list():
        raise CaptureError(f"no such interface: {iface} (have: {', '.join(get_if_list())})")
    stats = LiveStats(spool)
    try:
        out = open(spool, "wb")
    except OSError as exc:
        raise CaptureError(f"cannot write the spool file {spool}: {exc.strerror}") from None
    try:
        writer = PcapNgWriter(out)
        writer.flush()

        def keep(pkt: Any) -> None:
            raw = bytes(pkt)
            writer.write(
                raw, int(float(pkt.time) * 1e9), _linktype(pkt), getattr(pkt, "wirelen", None) or len(raw)
            )
            writer.flush()
            stats.packets += 1
            stats.bytes += len(raw)
            if on_packet is not None:
                on_packet(stats)

        try:
            sniff(
                iface=iface,
                filter=bpf or None,
                prn=keep,
                store=False,
                count=count or 0,
                timeout=duration,
                stop_filter=(lambda _p: stop.is_set()) if stop is not None else None,
            )
        except PermissionError:
            raise CaptureError(
                f"capturing on {iface} is not permitted: run as root or grant CAP_NET_RAW to python"
            ) from None
        except OSError as exc:
            if exc.errno in (errno.EPERM, errno.EACCES):
                raise CaptureError(
                    f"capturing on {iface} is not permitted: run as root or grant CAP_NET_RAW to python"
                ) from None
            raise CaptureError(f"capture on {iface} failed: {exc}") from None
        except Exception as exc:  # scapy reports bad BPF and such as Scapy_Exception
            raise CaptureError(f"capture on {iface} failed: {type(exc).__name__}: {exc}") from None
    finally:
        out.close()
    return stats
