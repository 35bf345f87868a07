"""DTLS replay detection (RFC 6347 section 4.1.2.6, RFC 9147 section 4.5.1): a sliding window of
the record numbers opened lately, as SRTP's replay list keeps (decoders/rtp/srtp.py ReplayList).

One window per sender over the 64-bit record number (epoch << 48 | sequence number): a record of a
new epoch moves the window past all of the old epoch's, whose late records are then older than the
window (unknown, not a replay), as a receiver that keeps only the current epoch's window sees them.
Two integers a side, whatever the number of records."""

from __future__ import annotations

from typing import Literal

WINDOW = 64
"""Record numbers remembered behind the highest one: RFC 6347 section 4.1.2.6's preferred size."""
_MASK = (1 << WINDOW) - 1


class ReplayWindow:
    """The highest record number opened and a bitmask of the WINDOW numbers up to it (bit k: the
    number `top - k` was opened)."""

    __slots__ = ("bits", "top")

    def __init__(self) -> None:
        self.top = -1
        self.bits = 0

    def check(self, number: int) -> Literal["new", "replay", "old"]:
        """ "new": not opened before; "replay": opened before; "old": behind the window (the
        receiver would discard it; whether it is a replay is not known)."""
        if number > self.top:
            return "new"
        back = self.top - number
        if back >= WINDOW:
            return "old"
        return "replay" if self.bits >> back & 1 else "new"

    def add(self, number: int) -> None:
        """Remember a record number that opened (its tag verified)."""
        if number > self.top:
            shift = number - self.top
            self.bits = ((self.bits << shift) | 1) & _MASK if shift < WINDOW else 1
            self.top = number
        elif self.top - number < WINDOW:
            self.bits |= 1 << (self.top - number)
