"""A filter over a whole capture: `filter_rows` for the packets it matches, `packet_matcher` for a
decoding pass that runs anyway."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .columns import _context
from .grpc_paths import _GrpcPaths
from .nodes import _three
from .packet import PacketFields
from .parser import DisplayFilter, compile_filter

if TYPE_CHECKING:
    from ..session import PacketDecode, Session

CANCEL_EVERY = 4096
"""Packets of the per-packet fallback between looks at the cancel flag."""


def filter_rows(
    session: Session, text: str | DisplayFilter, cancelled: Callable[[], bool] | None = None
) -> list[int] | None:
    """Packets (0-based, ascending) the filter matches; None when cancelled. Raises FilterError.

    Columns first (frame, L2-L4, streams: numpy over the index), then packet by packet only
    where they leave the answer open; the decoding pass runs only when a decoder's field is named.
    """
    flt = text if isinstance(text, DisplayFilter) else compile_filter(text, session.registry)
    ctx = _context(session)
    n = ctx.n
    if n == 0:
        return []
    value, known = _three(flt.root, ctx)
    matched = value & known
    open_rows = ~known
    if open_rows.any():
        if flt.needs_decode:
            paths = _GrpcPaths()
            flow = ctx.ix.flow
            for pd in session.decode():
                i = pd.index
                if cancelled is not None and i % CANCEL_EVERY == 0 and cancelled():
                    return None
                grpc = paths.see(int(flow[i]), i, pd.pdus)
                if open_rows[i] and flt.root.test(PacketFields(ctx, i, pd, grpc)):
                    matched[i] = True
        else:
            for k, i in enumerate(np.flatnonzero(open_rows).tolist()):
                if cancelled is not None and k % CANCEL_EVERY == 0 and cancelled():
                    return None
                if flt.root.test(PacketFields(ctx, i)):
                    matched[i] = True
    elif cancelled is not None and cancelled():
        return None
    return np.flatnonzero(matched).tolist()


def packet_matcher(session: Session, text: str | DisplayFilter) -> PacketMatcher:
    """Whether each packet of a decoding pass that runs anyway (a report, an export, colouring)
    matches: the columns answer where they know (no per-packet work at all), the packet's fields
    elsewhere. Call it on the pass's packets in frame order (gRPC paths are learnt as it goes).
    Raises FilterError."""
    flt = text if isinstance(text, DisplayFilter) else compile_filter(text, session.registry)
    return PacketMatcher(session, flt)


class PacketMatcher:
    """`packet_matcher`'s answer, which also follows a pass over a growing capture: `grown()` works
    the columns' answers out again once the index has more packets, and the gRPC paths learnt from
    the packets before (a call's path is in its first HEADERS) go on being known."""

    def __init__(self, session: Session, flt: DisplayFilter) -> None:
        self.session = session
        self.flt = flt
        self.paths = _GrpcPaths()
        self._answer()

    def _answer(self) -> None:
        self.ctx = _context(self.session)
        self.value, self.known = _three(self.flt.root, self.ctx)

    def grown(self) -> None:
        """The index has packets it did not have when the columns were answered."""
        if len(self.session.index) != self.ctx.n:
            self._answer()

    def __call__(self, pd: PacketDecode) -> bool:
        i = pd.index
        grpc = self.paths.see(int(self.ctx.ix.flow[i]), i, pd.pdus)
        if self.known[i]:
            return bool(self.value[i])
        return self.flt.root.test(PacketFields(self.ctx, i, pd, grpc))
