"""pcapng blocks, written: the section header, interfaces, packets and interface statistics.

The block builders are plain functions over bytes so that the live capture (captures/capturer.py)
can append Enhanced Packet Blocks to a batch and write it in one system call; `PcapNgWriter` wraps
them for a file written packet by packet (export). Block and option names are the pcapng draft's
(draft-ietf-opsawg-pcapng); timestamps are nanoseconds (if_tsresol 9) throughout.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

SHB = 0x0A0D0D0A
IDB = 0x00000001
ISB = 0x00000005
EPB = 0x00000006
DSB = 0x0000000A
SECRETS_TLS_KEY_LOG = 0x544C534B
"""DSB secrets type "TLSK": NSS key log lines."""
BYTE_ORDER_MAGIC = 0x1A2B3C4D

OPT_ENDOFOPT = 0
SHB_USERAPPL = 4
IF_NAME = 2
IF_TSRESOL = 9
IF_FILTER = 11
IF_FILTER_LIBPCAP = 0
"""if_filter's first byte: the filter that follows is a libpcap filter string."""
ISB_STARTTIME = 2
ISB_ENDTIME = 3
ISB_IFRECV = 4
ISB_IFDROP = 5
ISB_OSDROP = 7
ISB_USRDELIV = 8
NANOSECONDS = 9
DEFAULT_SNAPLEN = 262144

EPB_HEAD = struct.Struct("<IIIIIII")
"""block type, block length, interface id, timestamp high, timestamp low, captured, original length."""
EPB_OVERHEAD = EPB_HEAD.size + 4
"""An EPB's bytes besides its packet data and padding: the head and the trailing block length."""
EPB_TAIL = tuple(struct.Struct(f"<{pad}xI") for pad in range(4))
"""The packet data's padding (0-3 bytes) and the trailing block length, by padding."""


def _pad(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _pad(value)


def _block(btype: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", btype, length) + body + struct.pack("<I", length)


def _ticks(ts_ns: int) -> bytes:
    """A timestamp as pcapng stores it: the high 32 bits of the tick count, then the low 32."""
    return struct.pack("<II", (ts_ns >> 32) & 0xFFFFFFFF, ts_ns & 0xFFFFFFFF)


def section_header(application: str = "protoscope") -> bytes:
    """An SHB of unknown section length (-1), as a file written as it goes must declare."""
    opts = _option(SHB_USERAPPL, application.encode()) + _option(OPT_ENDOFOPT, b"")
    return _block(SHB, struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + opts)


def interface_description(
    linktype: int, snaplen: int = DEFAULT_SNAPLEN, name: str | None = None, bpf: str | None = None
) -> bytes:
    """An IDB with nanosecond timestamps, the interface's name and the capture filter, if any."""
    opts = b""
    if name:
        opts += _option(IF_NAME, name.encode())
    opts += _option(IF_TSRESOL, bytes([NANOSECONDS]))
    if bpf:
        opts += _option(IF_FILTER, bytes([IF_FILTER_LIBPCAP]) + bpf.encode())
    opts += _option(OPT_ENDOFOPT, b"")
    return _block(IDB, struct.pack("<HHI", linktype, 0, snaplen) + opts)


def decryption_secrets(data: bytes, secrets_type: int = SECRETS_TLS_KEY_LOG) -> bytes:
    """A DSB holding `data` (NSS key log text for TLSK), as `editcap --inject-secrets` writes it:
    before the packets it decrypts, so a reader has the keys when it meets them."""
    return _block(DSB, struct.pack("<II", secrets_type, len(data)) + _pad(data))


def interface_statistics(
    iface: int,
    ts_ns: int,
    *,
    starttime_ns: int,
    endtime_ns: int,
    ifrecv: int,
    ifdrop: int,
    osdrop: int,
    usrdeliv: int,
) -> bytes:
    """An ISB: isb_ifrecv is what libpcap counted (ps_recv), isb_ifdrop what the interface dropped
    (ps_ifdrop), isb_osdrop what the kernel dropped for want of buffer room (ps_drop), isb_usrdeliv
    what reached this file (the rest were seen while paused, or cut off by --count)."""
    opts = (
        _option(ISB_STARTTIME, _ticks(starttime_ns))
        + _option(ISB_ENDTIME, _ticks(endtime_ns))
        + _option(ISB_IFRECV, struct.pack("<Q", ifrecv))
        + _option(ISB_IFDROP, struct.pack("<Q", ifdrop))
        + _option(ISB_OSDROP, struct.pack("<Q", osdrop))
        + _option(ISB_USRDELIV, struct.pack("<Q", usrdeliv))
        + _option(OPT_ENDOFOPT, b"")
    )
    return _block(ISB, struct.pack("<I", iface) + _ticks(ts_ns) + opts)


def enhanced_packet(iface: int, ts_ns: int, data: bytes, wirelen: int | None = None) -> bytes:
    """One EPB (the capture's hot path builds the same bytes from EPB_HEAD and EPB_TAIL)."""
    caplen = len(data)
    pad = -caplen & 3
    blen = EPB_OVERHEAD + caplen + pad
    head = EPB_HEAD.pack(
        EPB, blen, iface, (ts_ns >> 32) & 0xFFFFFFFF, ts_ns & 0xFFFFFFFF, caplen, wirelen or caplen
    )
    return head + data + EPB_TAIL[pad].pack(blen)


class PcapNgWriter:
    """Writes packets to an open binary file as pcapng: one section, an interface per link type."""

    def __init__(self, out: BinaryIO, application: str = "protoscope") -> None:
        self._out = out
        self._ifaces: dict[int, int] = {}
        out.write(section_header(application))

    def interface(self, linktype: int, snaplen: int = DEFAULT_SNAPLEN) -> int:
        """The interface id for `linktype`, declared on first use."""
        iface = self._ifaces.get(linktype)
        if iface is None:
            iface = self._ifaces[linktype] = len(self._ifaces)
            self._out.write(interface_description(linktype, snaplen))
        return iface

    def secrets(self, data: bytes, secrets_type: int = SECRETS_TLS_KEY_LOG) -> None:
        """Write a Decryption Secrets Block (before the packets that need it)."""
        self._out.write(decryption_secrets(data, secrets_type))

    def write(self, data: bytes, ts_ns: int, linktype: int = 1, wirelen: int | None = None) -> None:
        self._out.write(enhanced_packet(self.interface(linktype), ts_ns, data, wirelen))

    def flush(self) -> None:
        self._out.flush()
