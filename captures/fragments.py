"""IPv4 and IPv6 fragment reassembly, with named limits so hostile captures stay bounded."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from protoscope.decoders.api import Finding

from .net import Fragment

MAX_DATAGRAM = 65_535 + 40
"""Largest reassembled IP payload (an IPv6 payload length plus headers)."""
MAX_PENDING = 4_096
"""Datagrams awaiting fragments at once; the oldest is dropped (with a finding) past this."""


@dataclass(slots=True)
class _Pending:
    pieces: dict[int, bytes] = field(default_factory=dict)
    total: int | None = None
    frames: list[int] = field(default_factory=list)


class Reassembler:
    """Collects fragments by (version, src, dst, id, proto); returns whole payloads."""

    def __init__(self) -> None:
        self._pending: OrderedDict[tuple[object, ...], _Pending] = OrderedDict()
        self.findings: list[tuple[int, Finding]] = []

    def add(self, frame: int, frag: Fragment, data: bytes) -> bytes | None:
        """Add one fragment seen in `frame`; return the reassembled payload when it completes."""
        p = self._pending.get(frag.key)
        if p is None:
            if len(self._pending) >= MAX_PENDING:
                _, old = self._pending.popitem(last=False)
                self.findings.append(
                    (old.frames[0], Finding("warn", "ip.reassembly_dropped", "fragments never completed"))
                )
            p = self._pending[frag.key] = _Pending()
        p.frames.append(frame)
        piece = data[frag.start : frag.end]
        end = frag.offset + len(piece)
        if end > MAX_DATAGRAM:
            del self._pending[frag.key]
            self.findings.append(
                (frame, Finding("error", "ip.reassembly_too_big", f"fragments reach {end} bytes"))
            )
            return None
        if frag.offset in p.pieces and p.pieces[frag.offset] != piece:
            self.findings.append(
                (
                    frame,
                    Finding(
                        "warn",
                        "ip.fragment_overlap",
                        f"fragment at {frag.offset} differs from an earlier copy",
                    ),
                )
            )
        p.pieces.setdefault(frag.offset, piece)
        if not frag.more:
            p.total = end
        if p.total is None:
            return None
        out = bytearray()
        for off in sorted(p.pieces):
            chunk = p.pieces[off]
            if off > len(out):
                return None  # a hole remains
            out += chunk[len(out) - off :]
        if len(out) < p.total:
            return None
        del self._pending[frag.key]
        return bytes(out[: p.total])
