"""What a live capture is asked to do, with tcpdump's and dumpcap's names for each option.

`CaptureOptions` travels from the command line to the capture process as JSON (to_json/from_json);
`parse_ring` reads one dumpcap `-b KEY:VALUE` ring-buffer option.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

DEFAULT_SNAPLEN = 262144
"""tcpdump's and dumpcap's default snapshot length (-s 0 means the same)."""
DEFAULT_BUFFER_MIB = 32
"""The kernel ring's size (-B): dumpcap's default is 2 MiB and tcpdump's 2 MiB too; 32 MiB holds
~150,000 200-byte packets, a second and a half at 100,000 packets/s while the capture process is
held up (a disk stall, the machine's other core busy)."""
KB = 1000
"""dumpcap's `-b filesize` unit: kilobytes of 1000 bytes (its manual page says kB)."""
UNITS = {"": KB, "k": KB, "kb": KB, "m": KB * KB, "mb": KB * KB, "g": KB * KB * KB, "gb": KB * KB * KB}
"""`-b filesize:N[unit]`: a bare number is kB, as dumpcap; kB, MB and GB are accepted too."""


@dataclass(frozen=True, slots=True)
class RingOptions:
    """dumpcap's ring buffer (-b): a new file when the current one reaches `filesize` bytes or is
    `duration` seconds old; with `files`, only the newest `files` files are kept."""

    filesize: int | None = None
    """Bytes (dumpcap's `-b filesize:` is in kB of 1000 bytes)."""
    duration: float | None = None
    files: int | None = None

    @property
    def rotates(self) -> bool:
        return self.filesize is not None or self.duration is not None


def _positive(key: str, text: str, number: float) -> None:
    if number <= 0:
        raise ValueError(f"{key}:{text}: must be more than 0")


def parse_ring(specs: str | Iterable[str], ring: RingOptions | None = None) -> RingOptions:
    """`ring` with dumpcap `-b KEY:VALUE` options applied (one, or several in order):
    filesize:N (kB as dumpcap; or NkB, NMB, NGB), duration:SECONDS, files:N. Raises ValueError
    with one line (without the `-b`, which the caller names) for anything else."""
    ring = ring or RingOptions()
    for spec in [specs] if isinstance(specs, str) else specs:
        ring = _apply(spec, ring)
    return ring


def _apply(spec: str, ring: RingOptions) -> RingOptions:
    key, sep, text = spec.partition(":")
    key, text = key.strip().lower(), text.strip()
    if not sep or not text:
        raise ValueError(f"{spec!r}: expected KEY:VALUE (filesize:kB, duration:SECONDS, files:N)")
    if key == "filesize":
        digits = text.rstrip("kKmMgGbB")
        unit = UNITS.get(text[len(digits) :].lower())
        if unit is None or not digits.isdigit():
            raise ValueError(f"filesize:{text}: expected a number of kB (as dumpcap), or N kB, MB or GB")
        _positive(key, text, int(digits))
        return replace(ring, filesize=int(digits) * unit)
    if key == "duration":
        try:
            seconds = float(text)
        except ValueError:
            raise ValueError(f"duration:{text}: expected a number of seconds") from None
        _positive(key, text, seconds)
        return replace(ring, duration=seconds)
    if key == "files":
        if not text.isdigit():
            raise ValueError(f"files:{text}: expected a number of files")
        _positive(key, text, int(text))
        return replace(ring, files=int(text))
    raise ValueError(f"{key!r} is not a ring-buffer option (filesize:kB, duration:SECONDS, files:N)")


@dataclass(frozen=True, slots=True)
class CaptureOptions:
    """A live capture: tcpdump's -i (repeatable, `any` too), -f, -s, -B, -p, -c and dumpcap's
    -a duration and -b ring buffer."""

    interfaces: tuple[str, ...]
    bpf: str | None = None
    snaplen: int = DEFAULT_SNAPLEN
    buffer_mib: int = DEFAULT_BUFFER_MIB
    promisc: bool = True
    count: int = 0
    """Stop after this many packets kept (0: no limit)."""
    duration: float | None = None
    ring: RingOptions | None = None
    """dumpcap's -b (None: one file, as RingOptions())."""

    def __post_init__(self) -> None:
        if isinstance(self.interfaces, str):
            object.__setattr__(self, "interfaces", (self.interfaces,))
        # `-i lo -i lo` would write every packet twice: the same interface is opened once.
        object.__setattr__(self, "interfaces", tuple(dict.fromkeys(self.interfaces)))
        if not self.interfaces:
            raise ValueError("a live capture needs an interface (-i)")
        if self.snaplen == 0:
            object.__setattr__(self, "snaplen", DEFAULT_SNAPLEN)
        if self.snaplen < 0 or self.buffer_mib <= 0 or self.count < 0:
            raise ValueError("-s, -B and --count must be positive")
        if self.duration is not None and self.duration <= 0:
            raise ValueError("--duration must be positive")

    @property
    def ring_options(self) -> RingOptions:
        return self.ring or RingOptions()

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> CaptureOptions:
        raw = json.loads(text)
        raw["interfaces"] = tuple(raw["interfaces"])
        raw["ring"] = RingOptions(**raw["ring"]) if raw.get("ring") else None
        return cls(**raw)
