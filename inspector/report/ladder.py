"""Ladder (sequence) diagrams of a flow, of several flows (a WebRTC session: signaling, ICE, DTLS
and media between every endpoint involved) or of a whole capture: drawn with box characters for the
viewer, or as Mermaid `sequenceDiagram` text.

Endpoints are the participants (in order of first appearance, a flow's client before its server);
every decoded PDU is an arrow from its sender to its receiver labelled with its summary, in frame
order. Runs of media packets (RTP, RTCP) between the same endpoints become one arrow with a count,
as Wireshark's flow sequence does: a ladder of 10,000 RTP arrows shows nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from ..session import Session

MAX_MESSAGES = 2000
"""Arrows drawn at most: a diagram of more is unreadable (the text says how many were left out)."""
UNSAFE = re.compile(r"[^\w .:/\[\]()=,+\-@#*×]")
MEDIA = frozenset({"rtp", "rtcp", "srtcp"})
LEFT = 19
"""Cells before the first column: frame and time."""


class Arrow(NamedTuple):
    frame: int
    time: float
    src: str
    dst: str
    label: str
    protocol: str


def _label(text: str) -> str:
    """Mermaid message text: no characters that end the line or start Mermaid syntax."""
    return UNSAFE.sub("_", text)[:120] or "-"


def _media(protocol: str, summary: str) -> bool:
    return protocol in MEDIA or (protocol == "dtls" and summary == "Application Data")


def arrows(session: Session, flows: Iterable[int] | None = None) -> Iterator[Arrow]:
    """Every decoded PDU of `flows` (all flows when None) in frame order. A packet that carries
    media (RTP, RTCP, DTLS application data; relayed in TURN or not) counts towards one arrow per
    sender, receiver and kind, drawn where that run began; any other message ends the runs."""
    ix = session.index
    if flows is None:
        packets = None
    else:
        chosen = sorted(set(flows))
        packets = sorted(int(i) for fid in chosen for i in (ix.flow == fid).nonzero()[0])
    pending: list[list[Any]] = []  # [arrow, count] in frame order, runs still counting
    runs: dict[tuple[str, str, str, str], list[Any]] = {}
    for pd in session.decode(packets=packets):
        if not pd.pdus or int(ix.flow[pd.index]) < 0:
            continue
        ctx = session.context(pd.index)
        src, dst = str(ctx.src), str(ctx.dst)
        media = [p for p in pd.pdus if _media(p.protocol, p.summary)]
        if media:
            inner = media[-1]
            key = (src, dst, inner.protocol, inner.summary if inner.protocol == "dtls" else "")
            run = runs.get(key)
            if run is None:
                run = runs[key] = [Arrow(pd.index + 1, ctx.time, src, dst, inner.summary, inner.protocol), 0]
                pending.append(run)
            run[1] += 1
            continue
        runs.clear()
        yield from (_counted(a, n) for a, n in pending)
        pending.clear()
        for pdu in pd.pdus:
            yield Arrow(pd.index + 1, ctx.time, src, dst, pdu.summary or pdu.protocol, pdu.protocol)
    yield from (_counted(a, n) for a, n in pending)


def _counted(arrow: Arrow, count: int) -> Arrow:
    if count == 1:
        return arrow
    kind = arrow.protocol.upper() + (f" {arrow.label}" if arrow.protocol == "dtls" else "")
    return arrow._replace(label=f"{kind} ×{count} from frame {arrow.frame}")


def participants(items: Iterable[Arrow], order: Iterable[str] = ()) -> list[str]:
    """`order` first (a flow's client, then its server), then endpoints as they first appear."""
    out: dict[str, None] = dict.fromkeys(order)
    for a in items:
        out.setdefault(a.src)
        out.setdefault(a.dst)
    return list(out)


def draw(
    items: list[Arrow], width: int = 100, order: Iterable[str] = (), limit: int = MAX_MESSAGES, more: str = ""
) -> list[str]:
    """The ladder with box characters: a column per endpoint, an arrow per message."""
    names = participants(items[:limit], order)
    if not items:
        return ["no decoded messages"]
    inner = max(24 * max(1, len(names) - 1), width - LEFT - 2)
    step = inner // max(1, len(names) - 1)
    cols = {name: LEFT + k * step for k, name in enumerate(names)}
    last = max(cols.values())
    head = [" "] * (last + 1)
    for name in names:  # each name centred on its column, kept inside the drawing
        text = name[: step - 1] if len(names) > 1 else name
        start = min(max(0, cols[name] - len(text) // 2), last + 1 - len(text))
        head[start : start + len(text)] = text
    lines = ["".join(head).rstrip()]
    start_time = items[0].time
    bars = [" "] * (last + 1)
    for c in cols.values():
        bars[c] = "│"
    for n, a in enumerate(items):
        if n >= limit:
            lines.append(f"… more than {limit} messages{more}")
            break
        row = list(bars)
        lo, hi = sorted((cols[a.src], cols[a.dst]))
        if lo == hi:  # a message to itself (hairpin): the label beside the column
            row += list(f" ↺ {a.label}")
        else:
            span = hi - lo - 1
            text = f" {a.label} "[: max(0, span - 2)]
            if cols[a.dst] > cols[a.src]:
                body = ("─" + text).ljust(span - 1, "─") + "▶"
            else:
                body = "◀" + (text + "─").rjust(span - 1, "─")
            row[lo + 1 : hi] = body
        lines.append(f"{a.frame:>7} {a.time - start_time:>10.6f} " + "".join(row)[LEFT:].rstrip())
    return lines


def text_ladder(session: Session, flow: int, width: int = 100, limit: int = MAX_MESSAGES) -> list[str]:
    """The ladder of one flow: its client's column on the left, its server's on the right."""
    f = session.index.flows[flow]
    more = f"; --export mermaid --flow {flow} has them all"
    return draw(list(arrows(session, [flow])), width, (str(f.client), str(f.server)), limit, more)


def mermaid_lines(
    items: Iterable[Arrow], order: Iterable[str] = (), limit: int = MAX_MESSAGES
) -> Iterator[str]:
    names = {name: f"P{k}" for k, name in enumerate(order)}
    lines: list[str] = []
    drawn = skipped = 0
    for a in items:
        for end in (a.src, a.dst):
            names.setdefault(end, f"P{len(names)}")
        if drawn >= limit:
            skipped += 1
            continue
        lines.append(f"    {names[a.src]}->>{names[a.dst]}: {_label(f'{a.frame}: {a.label}')}")
        drawn += 1
    yield "sequenceDiagram"
    for endpoint, alias in names.items():
        yield f"    participant {alias} as {_label(endpoint)}"
    yield from lines
    if skipped:
        yield f"    Note over {next(iter(names.values()))}: {skipped} more messages not drawn"


def mermaid(session: Session, flow: int | None = None, flows: Iterable[int] | None = None) -> Iterator[str]:
    """Mermaid of one flow (client, then server), of several (a session's), or of the capture."""
    ix = session.index
    order: tuple[str, ...] = ()
    if flow is not None:
        if not 0 <= flow < len(ix.flows):
            raise ValueError(f"no flow {flow} (the capture has {len(ix.flows)})")
        flows = [flow]
        order = (str(ix.flows[flow].client), str(ix.flows[flow].server))
    yield from mermaid_lines(arrows(session, flows), order)
