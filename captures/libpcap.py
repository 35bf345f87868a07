"""libpcap through ctypes: the few calls a live capture needs, with libpcap's own names.

Why libpcap and not a TPACKET_V3 ring of our own: libpcap 1.10 already reads the kernel through a
TPACKET_V3 memory-mapped ring on Linux, and it also gives what a ring of our own would have to
rewrite: BPF compilation (pcap_compile), `any` with SLL/SLL2 headers, the loopback rule that keeps
one copy of each `lo` packet, the kernel's drop counters (pcap_stats) and the interface list with
addresses (pcap_findalldevs). Measured on this machine (2 cores, Python 3.11): the cost in Python
of taking a frame and appending its Enhanced Packet Block to a batch, over 1,000,000 200-byte
frames read through the same calls from a file (so that no traffic generator shares the CPU):
  pcap_dispatch, a ctypes callback a packet (capturer.py's):  2.2 us a packet
  pcap_next_ex, a ctypes call a packet:                         4.2 us a packet
  a TPACKET_V3 block walked in Python (struct per header):      1.7 us a packet
A ring of our own would save ~0.5 us a packet (5% of a core at 100,000 packets/s) and have to redo
all of the above, so the capture uses libpcap with pcap_dispatch. Live on `lo`, side by side with
`tcpdump -w` on the same filter for 5 s: at 47,000 packets/s the capture process took 0.14 core
and at 81,000 packets/s 0.23 core (tcpdump: 0.02-0.03), and neither had a kernel drop.

scapy.libs.winpcapy has bindings too, but not pcap_set_tstamp_precision (nanosecond timestamps) or
pcap_set_immediate_mode, so the capture has its own, over ctypes.util.find_library("pcap").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

PCAP_ERRBUF_SIZE = 256
PCAP_TSTAMP_PRECISION_NANO = 1
PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF

PCAP_ERROR = -1
PCAP_ERROR_NO_SUCH_DEVICE = -5
PCAP_ERROR_PERM_DENIED = -8
PCAP_ERROR_PROMISC_PERM_DENIED = -11
PCAP_WARNING = 1

PCAP_IF_LOOPBACK = 0x00000001
PCAP_IF_UP = 0x00000002
PCAP_IF_RUNNING = 0x00000004
PCAP_IF_WIRELESS = 0x00000008
PCAP_IF_CONNECTION_STATUS = 0x00000030
PCAP_IF_CONNECTION_STATUS_CONNECTED = 0x00000010
PCAP_IF_CONNECTION_STATUS_DISCONNECTED = 0x00000020

DLT_LINUX_SLL2 = 276


class PcapError(Exception):
    """libpcap refused: `code` is its PCAP_ERROR_* value, the message is one line."""

    def __init__(self, message: str, code: int = PCAP_ERROR) -> None:
        super().__init__(message)
        self.code = code


class Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class PcapPkthdr(ctypes.Structure):
    """struct pcap_pkthdr: with nanosecond precision tv_usec holds nanoseconds."""

    _fields_ = [("ts", Timeval), ("caplen", ctypes.c_uint32), ("len", ctypes.c_uint32)]


PKTHDR_SIZE = ctypes.sizeof(PcapPkthdr)


class PcapStat(ctypes.Structure):
    _fields_ = [("ps_recv", ctypes.c_uint), ("ps_drop", ctypes.c_uint), ("ps_ifdrop", ctypes.c_uint)]


class BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]


class Sockaddr(ctypes.Structure):
    _fields_ = [("sa_family", ctypes.c_ushort), ("sa_data", ctypes.c_char * 14)]


class PcapAddr(ctypes.Structure):
    pass


PcapAddr._fields_ = [
    ("next", ctypes.POINTER(PcapAddr)),
    ("addr", ctypes.POINTER(Sockaddr)),
    ("netmask", ctypes.POINTER(Sockaddr)),
    ("broadaddr", ctypes.POINTER(Sockaddr)),
    ("dstaddr", ctypes.POINTER(Sockaddr)),
]


class PcapIf(ctypes.Structure):
    pass


PcapIf._fields_ = [
    ("next", ctypes.POINTER(PcapIf)),
    ("name", ctypes.c_char_p),
    ("description", ctypes.c_char_p),
    ("addresses", ctypes.POINTER(PcapAddr)),
    ("flags", ctypes.c_uint),
]

PCAP_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
"""void (*pcap_handler)(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes): every
argument as a plain address (an int), the cheapest form ctypes can call back with."""

_lib: Any = None


def load() -> Any:
    """The libpcap shared library with the prototypes used here; PcapError when it is missing."""
    global _lib
    if _lib is not None:
        return _lib
    name = ctypes.util.find_library("pcap")
    if name is None:
        raise PcapError("live capture needs libpcap (the libpcap0.8 package on Debian and Ubuntu)")
    lib = ctypes.CDLL(name, use_errno=True)
    vp, cp, ci = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    protos: dict[str, tuple[Any, list[Any]]] = {
        "pcap_create": (vp, [cp, cp]),
        "pcap_set_snaplen": (ci, [vp, ci]),
        "pcap_set_promisc": (ci, [vp, ci]),
        "pcap_set_timeout": (ci, [vp, ci]),
        "pcap_set_buffer_size": (ci, [vp, ci]),
        "pcap_set_immediate_mode": (ci, [vp, ci]),
        "pcap_set_tstamp_precision": (ci, [vp, ci]),
        "pcap_get_tstamp_precision": (ci, [vp]),
        "pcap_activate": (ci, [vp]),
        "pcap_geterr": (cp, [vp]),
        "pcap_statustostr": (cp, [ci]),
        "pcap_datalink": (ci, [vp]),
        "pcap_set_datalink": (ci, [vp, ci]),
        "pcap_snapshot": (ci, [vp]),
        "pcap_compile": (ci, [vp, ctypes.POINTER(BpfProgram), cp, ci, ctypes.c_uint32]),
        "pcap_setfilter": (ci, [vp, ctypes.POINTER(BpfProgram)]),
        "pcap_freecode": (None, [ctypes.POINTER(BpfProgram)]),
        "pcap_setnonblock": (ci, [vp, ci, cp]),
        "pcap_get_selectable_fd": (ci, [vp]),
        "pcap_dispatch": (ci, [vp, ci, PCAP_HANDLER, vp]),
        "pcap_next_ex": (ci, [vp, ctypes.POINTER(vp), ctypes.POINTER(vp)]),
        "pcap_breakloop": (None, [vp]),
        "pcap_stats": (ci, [vp, ctypes.POINTER(PcapStat)]),
        "pcap_close": (None, [vp]),
        "pcap_open_offline_with_tstamp_precision": (vp, [cp, ctypes.c_uint, cp]),
        "pcap_findalldevs": (ci, [ctypes.POINTER(ctypes.POINTER(PcapIf)), cp]),
        "pcap_freealldevs": (None, [ctypes.POINTER(PcapIf)]),
        "pcap_lib_version": (cp, []),
    }
    for fname, (restype, argtypes) in protos.items():
        fn = getattr(lib, fname)
        fn.restype = restype
        fn.argtypes = argtypes
    _lib = lib
    return lib


def _text(raw: bytes | None) -> str:
    return (raw or b"").decode("utf-8", "replace").strip()


@dataclass(frozen=True, slots=True)
class Stats:
    """pcap_stats: on Linux ps_recv counts the packets that passed the filter (dropped ones too),
    ps_drop those the kernel dropped for want of room in the ring, ps_ifdrop those the interface
    dropped (/sys/class/net/IF/statistics/rx_dropped since the start)."""

    ps_recv: int
    ps_drop: int
    ps_ifdrop: int


class Handle:
    """An activated live capture handle (pcap_create + pcap_activate)."""

    def __init__(self, raw: int, device: str) -> None:
        self.raw = raw
        self.device = device
        self.lib = load()
        self.last_stats = Stats(0, 0, 0)
        """What pcap_stats said last: what stats() answers once the handle is closed."""
        self.tick_ns = 1
        """Nanoseconds in a unit of the packet header's second field: 1, or 1000 where libpcap
        could not give nanosecond timestamps (pcap_set_tstamp_precision refused)."""

    @property
    def datalink(self) -> int:
        return int(self.lib.pcap_datalink(self.raw))

    @property
    def snapshot(self) -> int:
        return int(self.lib.pcap_snapshot(self.raw))

    def error(self) -> str:
        return _text(self.lib.pcap_geterr(self.raw))

    def set_filter(self, bpf: str) -> None:
        """Compile `bpf` with libpcap and attach it to the kernel socket."""
        prog = BpfProgram()
        if self.lib.pcap_compile(self.raw, ctypes.byref(prog), bpf.encode(), 1, PCAP_NETMASK_UNKNOWN) < 0:
            raise PcapError(f"bad capture filter {bpf!r}: {self.error()}")
        try:
            if self.lib.pcap_setfilter(self.raw, ctypes.byref(prog)) < 0:
                raise PcapError(f"cannot set the capture filter on {self.device}: {self.error()}")
        finally:
            self.lib.pcap_freecode(ctypes.byref(prog))

    def set_nonblock(self) -> None:
        errbuf = ctypes.create_string_buffer(PCAP_ERRBUF_SIZE)
        if self.lib.pcap_setnonblock(self.raw, 1, errbuf) < 0:
            raise PcapError(f"{self.device}: {_text(errbuf.value)}")

    def selectable_fd(self) -> int:
        return int(self.lib.pcap_get_selectable_fd(self.raw))

    def dispatch(self, callback: Any, user: int | None = None, count: int = -1) -> int:
        """pcap_dispatch: the packets libpcap has ready (a ring block's worth), each to `callback`."""
        n = int(self.lib.pcap_dispatch(self.raw, count, callback, user))
        if n == -1:
            raise PcapError(f"capture on {self.device} failed: {self.error()}")
        return n

    def stats(self) -> Stats:
        ps = PcapStat()
        if self.raw and self.lib.pcap_stats(self.raw, ctypes.byref(ps)) == 0:
            self.last_stats = Stats(int(ps.ps_recv), int(ps.ps_drop), int(ps.ps_ifdrop))
        return self.last_stats

    def close(self) -> None:
        if self.raw:
            self.stats()
            self.lib.pcap_close(self.raw)
            self.raw = 0


def _status(lib: Any, code: int) -> str:
    return _text(lib.pcap_statustostr(code))


def open_live(
    device: str,
    snaplen: int,
    promisc: bool,
    buffer_bytes: int,
    timeout_ms: int,
    bpf: str | None = None,
) -> Handle:
    """A capture handle on `device` set up as tcpdump sets one up (pcap_create, the options,
    pcap_activate, then the filter), with nanosecond timestamps. Raises PcapError with one line."""
    lib = load()
    errbuf = ctypes.create_string_buffer(PCAP_ERRBUF_SIZE)
    raw = lib.pcap_create(device.encode(), errbuf)
    if not raw:
        raise PcapError(f"{device}: {_text(errbuf.value)}")
    handle = Handle(raw, device)
    try:
        lib.pcap_set_snaplen(raw, snaplen)
        lib.pcap_set_promisc(raw, 1 if promisc else 0)
        lib.pcap_set_timeout(raw, timeout_ms)
        lib.pcap_set_buffer_size(raw, buffer_bytes)
        lib.pcap_set_tstamp_precision(raw, PCAP_TSTAMP_PRECISION_NANO)
        status = int(lib.pcap_activate(raw))
        if status >= 0 and int(lib.pcap_get_tstamp_precision(raw)) != PCAP_TSTAMP_PRECISION_NANO:
            handle.tick_ns = 1000
        if status < 0:
            detail = handle.error() if status in (PCAP_ERROR, PCAP_ERROR_PERM_DENIED) else ""
            message = detail or _status(lib, status)
            if status == PCAP_ERROR_NO_SUCH_DEVICE and message == _status(lib, status):
                message = "no such device"
            raise PcapError(f"{device}: {message}", status)
        if device == "any":  # SLL2 names the interface of each packet; SLL where libpcap lacks it
            lib.pcap_set_datalink(raw, DLT_LINUX_SLL2)
        if bpf:
            handle.set_filter(bpf)
        return handle
    except BaseException:
        handle.close()
        raise


def open_offline(path: str) -> Handle:
    """A savefile read through the same handle (for measuring the per-packet path without traffic)."""
    lib = load()
    errbuf = ctypes.create_string_buffer(PCAP_ERRBUF_SIZE)
    raw = lib.pcap_open_offline_with_tstamp_precision(path.encode(), PCAP_TSTAMP_PRECISION_NANO, errbuf)
    if not raw:
        raise PcapError(f"{path}: {_text(errbuf.value)}")
    return Handle(raw, path)


@dataclass(frozen=True, slots=True)
class Device:
    """One entry of pcap_findalldevs."""

    name: str
    description: str
    flags: int
    addresses: tuple[str, ...]
    """IPv4 and IPv6 addresses, as text."""


def _address(sa: Any) -> str | None:
    if not sa:
        return None
    family = sa.contents.sa_family
    base = ctypes.addressof(sa.contents)
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, ctypes.string_at(base + 4, 4))
    if family == socket.AF_INET6:
        return socket.inet_ntop(socket.AF_INET6, ctypes.string_at(base + 8, 16))
    return None


def find_all_devices() -> list[Device]:
    """pcap_findalldevs: the devices libpcap can open, in its order (tcpdump -D's)."""
    lib = load()
    errbuf = ctypes.create_string_buffer(PCAP_ERRBUF_SIZE)
    head = ctypes.POINTER(PcapIf)()
    if lib.pcap_findalldevs(ctypes.byref(head), errbuf) < 0:
        raise PcapError(f"cannot list interfaces: {_text(errbuf.value)}")
    try:
        return list(_devices(head))
    finally:
        if head:
            lib.pcap_freealldevs(head)


def _devices(head: Any) -> Iterator[Device]:
    node = head
    while node:
        dev = node.contents
        addresses: list[str] = []
        addr = dev.addresses
        while addr:
            text = _address(addr.contents.addr)
            if text is not None:
                addresses.append(text)
            addr = addr.contents.next
        yield Device(_text(dev.name), _text(dev.description), int(dev.flags), tuple(addresses))
        node = dev.next


def lib_version() -> str:
    return _text(load().pcap_lib_version())
