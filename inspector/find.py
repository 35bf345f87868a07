"""Find a packet, as Wireshark's Edit ▸ Find Packet does: by bytes, by text, or by display filter.

Wireshark searches one of three places; so does this, each chosen for its kind:

- "string" and "hex" search the *packet bytes* (the frames as captured). They run over the
  memory-mapped capture a few thousand packets at a time, so a million packets cost no Python
  object each: one `bytes.find` over a chunk's bytes maps its hits back to packets through the
  record offsets (230 MB, 1M packets, searched end to end in 0.3 s).
- "regex" searches the *packet list and details*: the packet's row (Info included) and every
  field the decoders gave, one "name: value" line each (the text a user sees, not the bytes).
- "filter" finds the packets a display filter matches, as the filter bar does.

Regex and filter results need a decoding pass. A filter's is made at once; a regex's is walked
only as far as the next match when the packets are shown in frame order, and kept (with the
rest of the pass) while the capture does not grow, so the next "find next" goes on from there
and "find previous" over what was walked is instant.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from protoscope.decoders.registry import Registry

from .filter import DisplayFilter, FilterError, compile_filter, filter_rows
from .model import CaptureModel
from .session import PacketDecode

FindKind = Literal["string", "hex", "regex", "filter"]
KINDS: tuple[FindKind, ...] = ("string", "hex", "regex", "filter")
WHERE: dict[FindKind, str] = {
    "string": "packet bytes (UTF-8 text)",
    "hex": "packet bytes",
    "regex": "Info column and packet details",
    "filter": "display filter",
}
"""What each kind of query searches, in Wireshark's words (the find dialog shows it)."""
CHUNK_PACKETS = 4096
"""Packets whose bytes are searched at once (cancellation is checked between chunks)."""
DENSE = 4
"""Candidates are searched as one byte range when the range holds at most this many packets per
candidate; sparser ones (a narrow display filter) are searched packet by packet."""
RELEASE_AFTER_CHUNKS = 16
"""A bytes search that read this many chunks (64k packets) lets go of the file pages it read, as
a decoding pass does: a search through a 1M-packet capture would otherwise keep 230 MB resident."""
MAX_QUERY = 4096
"""Longest find text accepted (as the display filter's own limit)."""

Cancelled = Callable[[], bool]
Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class FindQuery:
    """What to look for: `text` read as `kind`; `case` makes string and regex case-sensitive."""

    kind: FindKind
    text: str
    case: bool = False


class Found(NamedTuple):
    """The packet found (0-based index) and whether the search went past the end (or, backwards,
    the start) of the list and came round again, which Wireshark reports in its status bar."""

    packet: int
    wrapped: bool


def parse_hex(text: str) -> bytes:
    """Hex bytes as Wireshark's find accepts them: "0a:0b 0c", "0a0b0c", "0a-0b", "0x0a 0x0b"."""
    tokens = [t[2:] if t[:2].lower() == "0x" else t for t in re.split(r"[\s:.,\-]+", text.strip())]
    digits = "".join(tokens)
    if not digits:
        raise ValueError("no hex bytes given (e.g. 0a:0b:0c or 0a0b0c)")
    bad = re.search(r"[^0-9a-fA-F]", digits)
    if bad is not None:
        raise ValueError(f"{bad.group()!r} is not a hex digit (e.g. 0a:0b:0c or 0a0b0c)")
    if len(digits) % 2:
        raise ValueError(f"odd number of hex digits ({len(digits)}): each byte takes two")
    return bytes.fromhex(digits)


def check_query(query: FindQuery, registry: Registry | None = None) -> str | None:
    """Why `query` cannot be searched for (one line for the dialog), or None when it can; a
    filter's fields are checked against `registry`'s decoders (the in-tree ones without it)."""
    try:
        _compile(query, registry)
    except ValueError as exc:
        return str(exc)
    return None


def find_next(
    model: CaptureModel,
    query: FindQuery,
    start: int,
    rows: Sequence[int] | None,
    backwards: bool = False,
    cancelled: Cancelled | None = None,
) -> Found | None:
    """The next packet after `start` (0-based; -1 to begin at the top) in display order that
    matches `query`, or None when none does or the search was cancelled. `rows` is the displayed
    packets in display order (None: every packet in frame order). Like Wireshark it wraps round
    and may come back to `start` itself; `Found.wrapped` says it did. Raises ValueError for a
    query `check_query` rejects."""
    compiled = _compile(query, model.session.registry)
    order = np.arange(len(model), dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
    if not len(order):
        return None
    at = _position(order, start)
    if backwards:
        before = order[:at][::-1] if at >= 0 else order[::-1]
        after = order[at:][::-1] if at >= 0 else order[:0]
    else:
        before = order[at + 1 :]
        after = order[: at + 1] if at >= 0 else order[:0]
    search: Callable[[npt.NDArray[np.int64]], int | None]
    if isinstance(compiled, Needle):
        needle = compiled
        search = lambda c: _first_in_bytes(model, needle, c)  # noqa: E731
    else:
        scan = _scan(model, query, compiled, cancelled)
        if scan is None:
            return None
        mask = scan.mask
        if not scan.done and not backwards and _ascending(order):
            # frame order: the pass need only go as far as the next match (the rest is kept for n)
            hit = _first_in_mask(mask, before)
            if hit is not None:
                return Found(hit, False)
            shown = None if rows is None else np.isin(np.arange(len(model)), order)
            if not scan.advance(model, lambda i: i > start and (shown is None or bool(shown[i])), cancelled):
                return None
            hit = _first_in_mask(mask, before)
            if hit is not None:
                return Found(hit, False)
        if not scan.advance(model, None, cancelled):
            return None
        search = lambda c: _first_in_mask(mask, c)  # noqa: E731
    searched = 0
    try:
        for wrapped, candidates in ((False, before), (True, after)):
            for lo in range(0, len(candidates), CHUNK_PACKETS):
                if cancelled is not None and cancelled():
                    return None
                hit = search(candidates[lo : lo + CHUNK_PACKETS])
                searched += 1
                if hit is not None:
                    return Found(hit, wrapped)
        return None
    finally:
        if isinstance(compiled, Needle) and searched >= RELEASE_AFTER_CHUNKS:
            model.index.capture.release_pages()


def _ascending(order: npt.NDArray[np.int64]) -> bool:
    return bool(np.all(order[1:] >= order[:-1]))


def _position(order: npt.NDArray[np.int64], start: int) -> int:
    """Where `start` is in the display order; a packet not shown counts from the nearest shown
    one before it in frame order (-1: before them all)."""
    where = np.flatnonzero(order == start)
    if len(where):
        return int(where[0])
    earlier = np.flatnonzero(order < start)
    if not len(earlier) or not _ascending(order):
        return -1
    return int(earlier[-1])


@dataclass(frozen=True, slots=True)
class Needle:
    """Bytes to find in frames. `bytes.find` (CPython's two-way search) runs at memory speed where
    a `re` literal crawls (measured over a 230 MB capture: 0.3 s against 3.6 s); without `case`, both the
    needle and the bytes searched are ASCII-lowercased, as `re.IGNORECASE` does for bytes."""

    needle: bytes
    case: bool

    def fold(self, data: bytes) -> bytes:
        """`data` as searched: lowercased without `case` (a mapped file's slice is bytes already)."""
        data = bytes(data)
        return data if self.case else data.lower()

    def find(self, data: bytes, pos: int) -> int:
        return data.find(self.needle, pos)


PacketTest = Callable[[CaptureModel, PacketDecode], bool]
"""Whether a decoded packet matches."""


def _compile(query: FindQuery, registry: Registry | None) -> Needle | PacketTest | DisplayFilter:
    """A bytes pattern for the kinds that search packet bytes, a test of decoded packets for a
    regex, the parsed filter for a filter."""
    text = query.text
    if not text.strip():
        raise ValueError(f"nothing to find: type a {query.kind}")
    if len(text) > MAX_QUERY:
        raise ValueError(f"find text longer than {MAX_QUERY} characters")
    flags = 0 if query.case else re.IGNORECASE
    if query.kind == "string":
        raw = text.encode("utf-8")
        return Needle(raw if query.case else raw.lower(), query.case)
    if query.kind == "hex":
        return Needle(parse_hex(text), True)
    if query.kind == "regex":
        try:
            regex = re.compile(text, flags | re.MULTILINE)  # ^ and $ anchor at each field's line
        except re.error as exc:
            raise ValueError(f"bad regular expression: {exc}") from None
        return lambda model, pd: _matches_text(regex, model, pd)
    if query.kind == "filter":
        try:
            return compile_filter(text, registry)
        except FilterError as exc:
            raise ValueError(f"bad display filter: {exc}") from None
    raise ValueError(f"unknown kind of find {query.kind!r} (one of {', '.join(KINDS)})")


# -- packet bytes ----------------------------------------------------------------------------


def _first_in_bytes(model: CaptureModel, needle: Needle, candidates: npt.NDArray[np.int64]) -> int | None:
    """The first of `candidates` (in their order) whose frame bytes hold `needle`."""
    if not len(candidates):
        return None
    lo, hi = int(candidates.min()), int(candidates.max()) + 1
    if hi - lo <= DENSE * len(candidates):
        hits = _byte_hits(model, needle, lo, hi)
        chosen = candidates[np.isin(candidates, hits)]
        return int(chosen[0]) if len(chosen) else None
    rec = model.index.records
    buffer = model.index.capture.buffer
    for i in candidates.tolist():
        start = int(rec.data_off[i])
        if needle.find(needle.fold(buffer[start : start + int(rec.caplen[i])]), 0) >= 0:
            return int(i)
    return None


def _byte_hits(model: CaptureModel, needle: Needle, lo: int, hi: int) -> npt.NDArray[np.int64]:
    """Packets lo..hi-1 whose frame bytes hold `needle`: one search over the bytes from the first
    frame's start to the last one's end; a hit that runs past its frame (into the next record's
    header) is tried again one byte on, and after a hit the search moves on to the next packet."""
    rec = model.index.records
    base = int(rec.data_off[lo])
    offsets = rec.data_off[lo:hi] - base
    ends = offsets + rec.caplen[lo:hi].astype(np.int64)
    chunk = needle.fold(model.index.capture.buffer[base : base + int(ends[-1])])
    pos, size = 0, len(needle.needle)
    found: list[int] = []
    while True:
        at = needle.find(chunk, pos)
        if at < 0:
            break
        k = int(np.searchsorted(offsets, at, "right")) - 1
        if k >= 0 and at + size <= int(ends[k]):
            found.append(lo + k)
            if k + 1 >= len(offsets):
                break
            pos = int(offsets[k + 1])
        else:
            pos = at + 1
    return np.asarray(found, dtype=np.int64)


# -- decoded packets -------------------------------------------------------------------------


def _first_in_mask(mask: Mask, candidates: npt.NDArray[np.int64]) -> int | None:
    hits = np.flatnonzero(mask[candidates])
    return int(candidates[hits[0]]) if len(hits) else None


@dataclass(slots=True, eq=False)
class _Scan:
    """What a regex or filter query matched so far: `mask` is decided for packets [0, upto);
    `packets` is the rest of the decoding pass (None once it is over). A "find next" in frame order
    takes the pass only as far as the next match, and the next "find next" goes on from there."""

    mask: Mask
    test: PacketTest
    packets: Iterator[PacketDecode] | None
    upto: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    """One worker at a time walks the pass (a cancelled search may still be finishing a step)."""

    @property
    def done(self) -> bool:
        return self.packets is None

    def advance(
        self, model: CaptureModel, until: Callable[[int], bool] | None, cancelled: Cancelled | None
    ) -> bool:
        """Go on with the pass until a match `until` accepts (None: to the end). False when
        cancelled (the pass stays where it is, to be taken up again)."""
        with self.lock:
            if self.packets is None:
                return True
            for pd in self.packets:
                i = pd.index
                matched = self.test(model, pd)
                self.mask[i] = matched
                self.upto = i + 1
                if matched and until is not None and until(i):
                    return True
                if cancelled is not None and i % CHUNK_PACKETS == 0 and cancelled():
                    return False
            self.packets = None
            self.upto = len(self.mask)
            return True


_SCANS: weakref.WeakKeyDictionary[CaptureModel, dict[tuple[FindQuery, int], _Scan]] = (
    weakref.WeakKeyDictionary()
)
"""The scans of regex and filter queries, per model and capture length (a live capture that grew
is searched again)."""
MAX_CACHED = 8
"""Queries remembered per model."""
_SCANS_LOCK = threading.Lock()


def _scan(
    model: CaptureModel, query: FindQuery, test: PacketTest | DisplayFilter, cancelled: Cancelled | None
) -> _Scan | None:
    """The scan of `query`, made on first use: a filter's at once as the filter bar finds its rows
    (columns first, a decoding pass only when a decoder's field is named); a regex's as a
    decoding pass to walk. None when the filter's rows were cancelled."""
    key = (query, len(model))
    with _SCANS_LOCK:
        scan = _SCANS.setdefault(model, {}).get(key)
    if scan is not None:
        return scan
    mask = np.zeros(len(model), dtype=np.bool_)
    if isinstance(test, DisplayFilter):
        rows = filter_rows(model.session, test, cancelled)
        if rows is None:
            return None
        mask[np.asarray(rows, dtype=np.int64)] = True
        scan = _Scan(mask, _never, None, len(mask))
    else:
        scan = _Scan(mask, test, model.session.decode())
    with _SCANS_LOCK:
        cache = _SCANS.setdefault(model, {})
        if len(cache) >= MAX_CACHED:
            cache.pop(next(iter(cache)))
        return cache.setdefault(key, scan)


def _never(model: CaptureModel, pd: PacketDecode) -> bool:
    return False


def _matches_text(regex: re.Pattern[str], model: CaptureModel, pd: PacketDecode) -> bool:
    """Whether `regex` is found in a packet's packet-list row (addresses, ports, protocol, and
    Info, which names the TCP flags and numbers) or in one "name: value" line per field the
    decoders gave (the detail tree above L4). The row is tried first: a match there costs no
    detail tree. The L2-L4 header fields are left to the row: dissecting every packet again for
    them cost more than all the rest (1.5 ms a packet through the filter's field map)."""
    row = model.row(pd.index)
    if regex.search(f"{row.src} {row.dst} {row.protocol} {row.info}") is not None:
        return True
    lines: list[str] = []
    stack = [f for pdu in reversed(pd.pdus) for f in reversed(pdu.fields)]
    while stack:
        f = stack.pop()
        if f.value is not True and f.value is not None:
            lines.append(f"{f.name}: {_shown(f.value)}")
        stack.extend(reversed(f.children))
    return bool(lines) and regex.search("\n".join(lines)) is not None


def _shown(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        return f"{raw.hex(':')} {raw.decode('latin-1')}"
    return str(value)
