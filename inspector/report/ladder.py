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
