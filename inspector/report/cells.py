"""Report values as text for people: values, not key names (the text format of every report).

Times are seconds relative to the capture's first packet, as tshark's default `-t r` shows them;
nested values (a session's phases, its candidate pairs, its media) become short summaries. Text
from a capture is escaped here, at the leaves, so the only line breaks in a cell are ours.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from protoscope.decoders.dtls.names import VERSIONS

from .inert import clean

TIME_KEYS: Final = frozenset({"first", "last", "start", "end", "time"})
"""Epoch seconds in the JSON rows; shown relative to the first packet."""

DURATION_KEYS: Final = frozenset({"duration", "timeout"})
"""Seconds; shown with microseconds, as tshark shows times."""

MAX_ITEMS: Final = 12
"""Lines a list of records shows in one cell before the rest is counted (the JSON has them all)."""

SPARK_WIDTH: Final = 24
"""Characters of a per-second series' sparkline; longer series are bucketed (each bucket its max)."""

SPARKS: Final = "▁▂▃▄▅▆▇█"


class Cells:
    """Turns a report row's values into cell text, with times relative to `start`."""

    def __init__(self, start: float) -> None:
        self.start = start
        """Epoch seconds of the capture's first packet (frame 1)."""

    def show(self, key: str, value: object) -> str:
        """The cell text of `value` found under `key` (the key chooses how; unknown shapes are shown
        plainly)."""
        special = FORMATS.get(key)
        if special is not None:
            text = special(self, value)
            if text is not None:
                return text
        if key.endswith("_per_second"):
            return _sparkline(value) or self.plain(key, value)
        return self.plain(key, value)

    def time(self, value: float) -> str:
        return f"{value - self.start:.6f}"

    def plain(self, key: str, value: object) -> str:
        """Any value: scalars as themselves, lists joined, mappings and records one per line."""
        if value is None:
            return ""
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            if key in TIME_KEYS:
                return self.time(value)
            if key in DURATION_KEYS:
                return f"{value:.6f}"
            return _number(value)
        if isinstance(value, bytes | bytearray):
            return bytes(value).hex()
        if isinstance(value, Mapping):
            if len(value) == 2 and (two := pair(value)) is not None:
                return two
            return "\n".join(f"{clean(k)}: {self.inline(str(k), v)}" for k, v in value.items())
        if isinstance(value, list | tuple):
            if all(not isinstance(v, Mapping | list | tuple) for v in value):
                return ", ".join(self.plain(key, v) for v in value)
            return _lines(self._record(v) for v in value)
        return clean(value)

    def inline(self, key: str, value: object) -> str:
        """`value` on one line (inside another cell's line)."""
        return self.show(key, value).replace("\n", ", ")

    def _record(self, value: object) -> str:
        if isinstance(value, Mapping):
            return ", ".join(f"{clean(k)} {self.inline(str(k), v)}" for k, v in value.items())
        return self.inline("", value)


def _number(value: float) -> str:
    """A float with at most 6 decimals and no trailing zeros (0.305, 17.5, 3)."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _lines(items: Iterable[str]) -> str:
    """Items one per line, at most MAX_ITEMS of them, then how many more the JSON holds."""
    seq = list(items)
    shown = seq[:MAX_ITEMS]
    if len(seq) > MAX_ITEMS:
        shown.append(f"(+{len(seq) - MAX_ITEMS} more)")
    return "\n".join(shown)


def count(n: int, noun: str) -> str:
    """ "3 packets", "1 packet"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _sparkline(value: object) -> str | None:
    """A per-second series (jitter, loss) as a sparkline scaled to its maximum, and that maximum."""
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        return None
    numbers = [float(v) for v in value]
    size = -(-len(numbers) // SPARK_WIDTH)  # ceil: a bucket per character
    buckets = [max(numbers[i : i + size]) for i in range(0, len(numbers), size)]
    top = max(buckets)
    # Loss below zero (duplicates, as tshark counts) draws as the lowest bar.
    bars = "".join(
        SPARKS[max(0, round(b / top * (len(SPARKS) - 1)))] if top > 0 else SPARKS[0] for b in buckets
    )
    return f"{bars} max {_number(top)}"


# -- values that have a shape of their own ----------------------------------------------------------
# Each takes (cells, value) and returns None when the value is not the shape it knows, so a plugin's
# row that reuses a key with other content is still shown, plainly.


def ssrc_hex(value: object) -> str | None:
    """An SSRC in hex, as Wireshark's RTP streams and `rtp.ssrc == 0x...` filters write it
    (`0x7f09553e`); None for what is not one. The text reports and the viewer's tables and trees."""
    return f"0x{value:08x}" if isinstance(value, int) and not isinstance(value, bool) else None


def _ssrc(cells: Cells, value: object) -> str | None:
    return ssrc_hex(value)


def _protocols(cells: Cells, value: object) -> str | None:
    """A protocol stack as Wireshark's `frame.protocols` writes it: tcp:http2:grpc."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ":".join(clean(v) for v in value)
    return None


def pair(value: object) -> str | None:
    """An endpoint pair ({local, remote} or {client, server}) as `a ↔ b`."""
    if not isinstance(value, Mapping):
        return None
    for a, b in (("local", "remote"), ("client", "server"), ("src", "dst")):
        if a in value and b in value:
            return f"{clean(value[a])} ↔ {clean(value[b])}"
    return None


def _nominated_pair(cells: Cells, value: object) -> str | None:
    return pair(value)


def _candidate_pairs(cells: Cells, value: object) -> str | None:
    """How many pairs there are and how their checks went: `4 (3 succeeded, 1 failed)`."""
    if not isinstance(value, list) or not all(isinstance(p, Mapping) for p in value):
        return None
    if not value:
        return "0"
    states = Counter(str(p.get("state", "?")) for p in value)
    nominated = sum(1 for p in value if p.get("nominated"))
    parts = [f"{n} {clean(state)}" for state, n in states.items()]
    if nominated:
        parts.append(f"{nominated} nominated")
    return f"{len(value)} ({', '.join(parts)})"


def _phases(cells: Cells, value: object) -> str | None:
    """Each reached phase, its offset from the first packet and its frame: `ice 0.003233 #36`."""
    if not isinstance(value, Mapping):
        return None
    lines = []
    for name, at in value.items():
        if not isinstance(at, Mapping) or not isinstance(at.get("time"), int | float):
            return None
        frame = at.get("frame")
        lines.append(f"{clean(name)} {cells.time(float(at['time']))}" + (f" #{frame}" if frame else ""))
    return "\n".join(lines)


def _version(cells: Cells, value: object) -> str | None:
    """A DTLS version by its number: 0xfefd is `1.2`."""
    name = VERSIONS.get(value) if isinstance(value, int) else None
    return name.removeprefix("DTLS ") if name else None


def _dtls(cells: Cells, value: object) -> str | None:
    """A session's DTLS: state, version and SRTP profile, then the client, alert and certificates."""
    if not isinstance(value, Mapping) or "state" not in value:
        return None
    head = [cells.show("state", value.get("state"))]
    if value.get("version") is not None:
        head.append(cells.show("version", value["version"]))
    profiles = value.get("srtp_profiles")
    if profiles:
        head.append(cells.inline("srtp_profiles", profiles))
    lines = [" ".join(h for h in head if h)]
    if value.get("alert") is not None:
        lines.append(f"alert {cells.inline('alert', value['alert'])}")
    if value.get("client") is not None:
        lines.append(f"client {clean(value['client'])}")
    fingerprints = value.get("fingerprints")
    if isinstance(fingerprints, Mapping) and fingerprints:
        checked = ", checked against SDP" if value.get("fingerprint_checked") else ""
        lines.append(f"certificates from {count(len(fingerprints), 'endpoint')}{checked}")
    ccs = value.get("change_cipher_spec_from")
    if isinstance(ccs, list) and ccs:
        lines.append(f"ChangeCipherSpec from {count(len(ccs), 'endpoint')}")
    # What the analysis adds later is shown too, not hidden.
    lines += [f"{clean(k)}: {cells.inline(str(k), v)}" for k, v in value.items() if k not in DTLS_SHOWN]
    return "\n".join(lines)


DTLS_SHOWN: Final = frozenset(
    {
        "state",
        "version",
        "srtp_profiles",
        "alert",
        "client",
        "fingerprints",
        "fingerprint_checked",
        "change_cipher_spec_from",
    }
)


def _media(cells: Cells, value: object) -> str | None:
    """A session's media, one line per SSRC and direction: `0x7f09623e c→s 50 pkts PT 96`."""
    if not isinstance(value, list) or not all(isinstance(m, Mapping) and "ssrc" in m for m in value):
        return None
    lines = []
    for m in value:
        assert isinstance(m, Mapping)
        from_client = m.get("from_client")
        direction = "" if not isinstance(from_client, bool) else " c→s" if from_client else " s→c"
        packets = f" {m['packets']} pkts" if "packets" in m else ""
        pt = f" PT {m['payload_type']}" if m.get("payload_type") is not None else ""
        lines.append(f"{cells.show('ssrc', m['ssrc'])}{direction}{packets}{pt}")
    return _lines(lines)


def _signaling(cells: Cells, value: object) -> str | None:
    """The SDPs of a session, one a line: `#23 actpass audio, application (2 candidates)`."""
    if not isinstance(value, list) or not all(isinstance(s, Mapping) and "media" in s for s in value):
        return None
    lines = []
    for s in value:
        assert isinstance(s, Mapping)
        media = s.get("media")
        kinds = ", ".join(
            clean(m.get("kind")) for m in (media if isinstance(media, list) else []) if isinstance(m, Mapping)
        )
        frame = f"#{s['frame']} " if s.get("frame") else ""
        setup = f"{clean(s['setup'])} " if s.get("setup") else ""
        candidates = f" ({s['candidates']} candidates)" if s.get("candidates") is not None else ""
        lines.append(f"{frame}{setup}{kinds}{candidates}".strip())
    return _lines(lines)


def _findings(cells: Cells, value: object) -> str | None:
    """A row's findings by their codes, one a line."""
    if not isinstance(value, list) or not all(isinstance(f, Mapping) and "code" in f for f in value):
        return None
    return _lines(clean(f["code"]) for f in value)


def _channels(cells: Cells, value: object) -> str | None:
    """TURN channels: `0x4000 → 127.0.0.1`."""
    if not isinstance(value, Mapping):
        return None
    return "\n".join(f"{clean(k)} → {cells.inline(str(k), v)}" for k, v in value.items())


def _messages(cells: Cells, value: object) -> str | None:
    """A call's requests or responses: how many (each one's content is in the JSON)."""
    return str(len(value)) if isinstance(value, list) else None


def _status_details(cells: Cells, value: object) -> str | None:
    """grpc-status-details-bin: `5 no such person`, then the type of each detail."""
    if not isinstance(value, Mapping) or "code" not in value:
        return None
    lines = [f"{cells.inline('code', value['code'])} {cells.inline('message', value.get('message'))}".strip()]
    details = value.get("details")
    for d in details if isinstance(details, list) else []:
        lines.append(clean(d.get("type_url")) if isinstance(d, Mapping) else cells.inline("details", d))
    return _lines(lines)


FORMATS: Final[dict[str, Callable[[Cells, object], str | None]]] = {
    "ssrc": _ssrc,
    "protocols": _protocols,
    "nominated_pair": _nominated_pair,
    "candidate_pairs": _candidate_pairs,
    "phases": _phases,
    "version": _version,
    "dtls": _dtls,
    "media": _media,
    "signaling": _signaling,
    "findings": _findings,
    "channels": _channels,
    "requests": _messages,
    "responses": _messages,
    "status_details": _status_details,
}
"""Keys whose values have a shape of their own, and how each is shown."""
