"""Ladder (sequence) diagrams of a flow or a whole capture, as Mermaid `sequenceDiagram` text.

Endpoints are the participants; every decoded PDU is an arrow from its sender to its receiver,
labelled with its summary, in frame order (packets without a decoded PDU are left out).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..session import Session

MAX_MESSAGES = 2000
"""Arrows drawn at most: a diagram of more is unreadable (the text says how many were left out)."""
UNSAFE = re.compile(r"[^\w .:/\[\]()=,+\-@#*]")


def _label(text: str) -> str:
    """Mermaid message text: no characters that end the line or start Mermaid syntax."""
    return UNSAFE.sub("_", text)[:120] or "-"


def messages(session: Session, flow: int) -> Iterator[tuple[int, float, bool, str]]:
    """(frame, time, from client, label) of every decoded PDU of one flow, in frame order."""
    ix = session.index
    packets = [int(i) for i in (ix.flow == flow).nonzero()[0]]
    for pd in session.decode(packets=packets):
        if pd.pdus:
            c2s = int(ix.direction[pd.index]) == 0
            for pdu in pd.pdus:
                yield pd.index + 1, ix.time(pd.index), c2s, pdu.summary or pdu.protocol


def text_ladder(session: Session, flow: int, width: int = 100, limit: int = MAX_MESSAGES) -> list[str]:
    """A ladder drawn with box characters: the client on the left, the server on the right."""
    f = session.index.flows[flow]
    inner = max(20, width - 24)
    lines = [f"{'':>7} {'':>10} {f.client!s:<{inner // 2}}{f.server!s:>{inner - inner // 2}}"]
    start: float | None = None
    for n, (frame, time, c2s, label) in enumerate(messages(session, flow)):
        if n >= limit:
            lines.append(f"… more than {limit} messages; --export mermaid --flow {flow} has them all")
            break
        start = time if start is None else start
        text = f" {label} "[: inner - 4]
        arrow = ("─" + text).ljust(inner - 2, "─") + "▶" if c2s else "◀" + (text + "─").rjust(inner - 2, "─")
        lines.append(f"{frame:>7} {time - start:>10.6f} │{arrow}│")
    return lines


def mermaid(session: Session, flow: int | None = None) -> Iterator[str]:
    ix = session.index
    if flow is not None and not 0 <= flow < len(ix.flows):
        raise ValueError(f"no flow {flow} (the capture has {len(ix.flows)})")
    participants: dict[str, str] = {}
    lines: list[str] = []
    drawn = skipped = 0
    for pd in session.decode():
        fid = int(ix.flow[pd.index])
        if not pd.pdus or fid < 0 or (flow is not None and fid != flow):
            continue
        ctx = session.context(pd.index)
        for end in (ix.flows[fid].client, ix.flows[fid].server):  # clients on the left
            participants.setdefault(str(end), f"P{len(participants)}")
        for pdu in pd.pdus:
            if drawn >= MAX_MESSAGES:
                skipped += 1
                continue
            label = _label(f"{pd.index + 1}: {pdu.summary or pdu.protocol}")
            lines.append(f"    {participants[str(ctx.src)]}->>{participants[str(ctx.dst)]}: {label}")
            drawn += 1
    yield "sequenceDiagram"
    for endpoint, alias in participants.items():
        yield f"    participant {alias} as {_label(endpoint)}"
    yield from lines
    if skipped:
        yield f"    Note over {next(iter(participants.values()))}: {skipped} more messages not drawn"
