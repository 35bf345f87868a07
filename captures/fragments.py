"""IPv4 and IPv6 fragment reassembly, with named limits so hostile captures stay bounded.

A datagram awaiting fragments is a buffer of its bytes and a map of which 8-byte units have arrived
(fragment offsets count in units of 8 bytes, in both IP versions), so a fragment costs the bytes it
brings: no sort of the pieces before it, no walk over them. The first copy of a byte wins, as for
TCP (captures/reassembly.py); a later fragment that brings different bytes for it is a finding.
Findings of one kind past FINDINGS_PER_CODE are counted, and the count is one finding at the end.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from protoscope.decoders.api import Finding, Severity

from .net import Fragment

MAX_DATAGRAM = 65_535 + 40
"""Largest reassembled IP payload (an IPv6 payload length plus headers)."""
MAX_PENDING = 4_096
"""Datagrams awaiting fragments at once; past this the oldest is given up (ip.reassembly_dropped)."""
MAX_PENDING_BYTES = 32 << 20
"""Bytes held by all datagrams awaiting fragments (each holds up to MAX_DATAGRAM and its map): 4,096
of them at 64 KiB would be 300 MB. Past this the oldest is given up (ip.reassembly_dropped). Linux
holds 4 MB; a capture of many hosts may see more datagrams under way at once, so eight times that."""
MAX_FRAGMENTS = 8_192
"""Fragments one datagram may take (ip.fragments_limit): 65,535 bytes in fragments of 8 bytes, the
smallest there are, make 8,192. More means copies or overlaps sent on purpose; the datagram is
given up, and its next fragment starts a new one."""
FINDINGS_PER_CODE = 100
"""Findings of one code given one by one; past this they are only counted (a crafted capture can
hit a limit on every packet: a finding each would cost more memory than the packet's columns)."""
UNIT = 8
"""Bytes per unit of the fragment offset field."""


@dataclass(slots=True)
class _Pending:
    first_frame: int
    data: bytearray = field(default_factory=bytearray)
    have: bytearray = field(default_factory=bytearray)
    """One byte per UNIT of `data`: 1 once a fragment brought it."""
    total: int | None = None
    """The datagram's length, once its last fragment (More Fragments clear) is seen."""
    fragments: int = 0
    overlapped: bool = False
    arrived: int = 0
    """Units marked in `have`: the map is searched for a hole only once they could cover the datagram."""


class Reassembler:
    """Collects fragments by (version, src, dst, id, proto); returns whole payloads."""

    def __init__(self) -> None:
        self._pending: OrderedDict[tuple[object, ...], _Pending] = OrderedDict()
        self._bytes = 0
        self._counts: dict[str, tuple[int, int]] = {}
        """Code -> (findings of it so far, last frame)."""
        self.findings: list[tuple[int, Finding]] = []

    def add(self, frame: int, frag: Fragment, data: bytes) -> bytes | None:
        """Add one fragment seen in `frame`; return the reassembled payload when it completes."""
        piece = data[frag.start : frag.end]
        start, end = frag.offset, frag.offset + len(piece)
        p = self._pending.get(frag.key)
        if end > MAX_DATAGRAM:
            if p is not None:
                self._drop(frag.key)
            self._say(
                frame,
                "error",
                "ip.reassembly_too_big",
                f"fragments reach {end} bytes, more than a datagram has (MAX_DATAGRAM = {MAX_DATAGRAM})",
            )
            return None
        if p is None:
            p = self._pending[frag.key] = _Pending(frame)
        p.fragments += 1
        if p.fragments > MAX_FRAGMENTS:
            self._drop(frag.key)
            self._say(
                frame,
                "warn",
                "ip.fragments_limit",
                f"a datagram takes more than {MAX_FRAGMENTS} fragments (MAX_FRAGMENTS; its first was "
                f"frame {p.first_frame + 1}): it is given up",
            )
            return None
        if end > len(p.data):
            grown = end - len(p.data) + (-(-end // UNIT) - len(p.have))
            p.data += bytes(end - len(p.data))
            p.have += bytes(-(-end // UNIT) - len(p.have))
            self._bytes += grown
        self._make_room(frame)
        self._place(frame, p, piece, start, end, frag.more)
        if not frag.more and p.total is None:
            p.total = end
        if p.total is None:
            return None  # the end is not known yet
        units = -(-p.total // UNIT)
        if p.arrived < units or p.have.find(0, 0, units) != -1:
            return None  # a hole remains
        self._drop(frag.key)
        return bytes(p.data[: p.total])

    def close(self) -> None:
        """The capture ended: one finding for each code that was only counted past FINDINGS_PER_CODE."""
        for code, (count, frame) in self._counts.items():
            if count > FINDINGS_PER_CODE:
                more = count - FINDINGS_PER_CODE
                self.findings.append(
                    (
                        frame,
                        Finding(
                            "warn",
                            code,
                            f"{more} more {code} findings, one per packet like those before, were only "
                            f"counted (FINDINGS_PER_CODE = {FINDINGS_PER_CODE}); this is the last of them",
                        ),
                    )
                )
        self._counts.clear()

    def _place(self, frame: int, p: _Pending, piece: bytes, start: int, end: int, more: bool) -> None:
        """Copy the units of `piece` that have not arrived yet, run by run of the map; compare the
        ones that have. A unit is marked when whole: only a last fragment may end inside one."""
        lo, hi = start // UNIT, -(-end // UNIT)
        whole = hi if not more else end // UNIT
        if p.have.find(1, lo, hi) < 0:  # nothing of it has arrived: the usual case, one copy
            p.data[start:end] = piece
            if whole > lo:
                p.have[lo:whole] = b"\x01" * (whole - lo)
                p.arrived += whole - lo
            return
        u = lo
        while u < hi:
            arrived = p.have[u]
            v = p.have.find(1 - arrived, u, hi)
            v = hi if v < 0 else v
            a, b = max(u * UNIT, start), min(v * UNIT, end)
            if arrived:
                if not p.overlapped and p.data[a:b] != piece[a - start : b - start]:
                    p.overlapped = True
                    self._say(
                        frame,
                        "warn",
                        "ip.fragment_overlap",
                        f"the fragment at {start} brings other bytes than an earlier one at {a}-{b}; "
                        "the first copy is kept",
                    )
            else:
                p.data[a:b] = piece[a - start : b - start]
                if min(v, whole) > u:
                    p.have[u : min(v, whole)] = b"\x01" * (min(v, whole) - u)
                    p.arrived += min(v, whole) - u
            u = v

    def _make_room(self, frame: int) -> None:
        """Give up the oldest datagrams while past MAX_PENDING or MAX_PENDING_BYTES (never the
        newest: one datagram is far below both)."""
        while len(self._pending) > 1 and (
            len(self._pending) > MAX_PENDING or self._bytes > MAX_PENDING_BYTES
        ):
            key = next(iter(self._pending))
            old = self._pending[key]
            self._drop(key)
            self._say(
                frame,
                "warn",
                "ip.reassembly_dropped",
                f"more datagrams await fragments than MAX_PENDING ({MAX_PENDING}) or MAX_PENDING_BYTES "
                f"({MAX_PENDING_BYTES}) allow: the oldest, first seen in frame {old.first_frame + 1}, "
                "is given up",
            )

    def _drop(self, key: tuple[object, ...]) -> None:
        p = self._pending.pop(key)
        self._bytes -= len(p.data) + len(p.have)

    def _say(self, frame: int, severity: Severity, code: str, message: str) -> None:
        count = self._counts.get(code, (0, 0))[0] + 1
        self._counts[code] = (count, frame)
        if count <= FINDINGS_PER_CODE:
            self.findings.append((frame, Finding(severity, code, message)))
