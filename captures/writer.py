"""A pcapng writer: one section, an interface per link type, nanosecond timestamps.

Used to spool live captures (each packet is flushed as it is written, so nothing captured is lost
if protoscope stops) and to export packets.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

SHB = 0x0A0D0D0A
IDB = 0x00000001
EPB = 0x00000006
IF_TSRESOL = 9
NANOSECONDS = 9


def _pad(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _pad(value)


class PcapNgWriter:
    """Writes packets to an open binary file as pcapng."""

    def __init__(self, out: BinaryIO, application: str = "protoscope") -> None:
        self._out = out
        self._ifaces: dict[int, int] = {}
        opts = _option(4, application.encode()) + _option(0, b"")  # shb_userappl
        body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + opts
        self._block(SHB, body)

    def _block(self, btype: int, body: bytes) -> None:
        length = 12 + len(body)
        self._out.write(struct.pack("<II", btype, length) + body + struct.pack("<I", length))

    def interface(self, linktype: int, snaplen: int = 262144) -> int:
        """The interface id for `linktype`, declared on first use."""
        iface = self._ifaces.get(linktype)
        if iface is None:
            iface = self._ifaces[linktype] = len(self._ifaces)
            opts = _option(IF_TSRESOL, bytes([NANOSECONDS])) + _option(0, b"")
            self._block(IDB, struct.pack("<HHI", linktype, 0, snaplen) + opts)
        return iface

    def write(self, data: bytes, ts_ns: int, linktype: int = 1, wirelen: int | None = None) -> None:
        iface = self.interface(linktype)
        body = struct.pack(
            "<IIIII", iface, (ts_ns >> 32) & 0xFFFFFFFF, ts_ns & 0xFFFFFFFF, len(data), wirelen or len(data)
        )
        self._block(EPB, body + _pad(data))

    def flush(self) -> None:
        self._out.flush()
