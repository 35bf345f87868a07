"""Ladder (sequence) diagrams of a flow, of several flows (a WebRTC session: signaling, ICE, DTLS
and media between every endpoint involved) or of a whole capture: drawn with box characters for the
viewer, or as Mermaid `sequenceDiagram` text.

Endpoints are the participants (in order of first appearance, a flow's client before its server,
as HTTP/2 shows the client where it knows better than the flow's orientation); every decoded PDU
is an arrow from its sender to its receiver labelled with its summary, in frame order; HEADERS
arrows say the request line, the status and the gRPC status. Runs of media packets (RTP, RTCP)
between the same endpoints become one arrow with a count, as Wireshark's flow sequence does: a
ladder of 10,000 RTP arrows shows nothing.

The drawing fits the width it is given: endpoints are columns labelled A, B, C with a legend
mapping the letters to addresses, and the frame and time columns are a fixed part the viewer keeps
in place while the rest scrolls sideways (`Ladder.fixed`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from protoscope.decoders.api import Pdu
from protoscope.decoders.http2.info import arrow_info
from protoscope.decoders.http2.records import FrameRecord, MessageRecord

from ..session import Session

MAX_MESSAGES = 2000
"""Arrows drawn at most: a diagram of more is unreadable (the text says how many were left out)."""
UNSAFE = re.compile(r"[^\w .:/\[\]()=,+\-@#*×]")
MEDIA = frozenset({"rtp", "rtcp", "srtcp"})
LEFT = 19
"""Cells of the fixed part: frame (7), time (10) and their spaces."""
MIN_STEP = 16
"""Fewest cells between two endpoint columns: below it a label shows nothing; a drawing with many
endpoints is wider than the screen then, and scrolls sideways."""
LABEL_MOST = MIN_STEP - 4
"""Cells of a column's label at most (a role's name; letters are shorter)."""


class Arrow(NamedTuple):
    frame: int
    time: float
    src: str
    dst: str
    label: str
    protocol: str
    client: str | None = None
    """The endpoint the PDU shows to be the client (HTTP/2 knows), None when it does not say."""
    via: tuple[str, ...] = ()
    """Endpoints the message passed on its way (relayed media: the TURN server), marked on it."""


class Ladder(list[str]):
    """The ladder's text, one line a row, as a list; `head` lines (legend, time origin) come first,
    and in every line after them the first `fixed` cells are the frame and time columns, which a
    viewer keeps in place while it scrolls the rest sideways."""

    def __init__(self, lines: Iterable[str], head: int = 0, fixed: int = 0) -> None:
        super().__init__(lines)
        self.head = head
        self.fixed = fixed


def _label(text: str) -> str:
    """Mermaid message text: no characters that end the line or start Mermaid syntax."""
    return UNSAFE.sub("_", text)[:120] or "-"


def _media(protocol: str, summary: str) -> bool:
    return protocol in MEDIA or (protocol == "dtls" and summary == "Application Data")


def _on_stream(pdu: Pdu, stream_id: int) -> bool:
    """The PDU belongs to HTTP/2 stream `stream_id` (a header block counts where it belongs)."""
    rec = pdu.record
    if isinstance(rec, FrameRecord):
        return bool((rec.block_stream if rec.headers is not None else rec.stream_id) == stream_id)
    return isinstance(rec, MessageRecord) and rec.stream_id == stream_id


def arrow_label(pdu: Pdu) -> str:
    """An arrow's text: a header block's request line and statuses (`HEADERS[1] POST
    /demo.Directory/Get`, `HEADERS[1] 200`, `HEADERS[1] grpc-status 0 OK`), else the summary."""
    rec = pdu.record
    if isinstance(rec, FrameRecord) and rec.headers and not rec.http1:
        name = pdu.summary.split("[", 1)[0] if pdu.summary else "HEADERS"
        shown = arrow_info(rec.headers)
        return f"{name}[{rec.stream_id}]" + (f" {shown}" if shown else "")
    return str(pdu.summary or pdu.protocol)


def _client(pdu: Pdu, src: str, dst: str) -> str | None:
    from_client = getattr(pdu.record, "from_client", None)
    if isinstance(pdu.record, FrameRecord | MessageRecord) and from_client is not None:
        return src if from_client else dst
    return None


def arrows(
    session: Session, flows: Iterable[int] | None = None, stream_id: int | None = None
) -> Iterator[Arrow]:
    """Every decoded PDU of `flows` (all flows when None) in frame order; with `stream_id`, only
    that HTTP/2 stream's frames and messages (a gRPC call). A packet that carries media (RTP,
    RTCP, DTLS application data; relayed in TURN or not) counts towards one arrow per sender,
    receiver and kind, drawn where that run began; any other message ends the runs."""
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
        pdus = pd.pdus if stream_id is None else [p for p in pd.pdus if _on_stream(p, stream_id)]
        if not pdus:
            continue
        ctx = session.context(pd.index)
        src, dst = str(ctx.src), str(ctx.dst)
        media = [p for p in pdus if _media(p.protocol, p.summary)]
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
        for pdu in pdus:
            label = arrow_label(pdu)
            yield Arrow(pd.index + 1, ctx.time, src, dst, label, pdu.protocol, _client(pdu, src, dst))
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


def client_first(items: Iterable[Arrow], client: str, server: str) -> tuple[str, str]:
    """(client, server) of a flow: as the flow was oriented, unless a PDU showed the other side
    to be the client (HTTP/2 does: a capture may begin with the server's packets)."""
    for a in items:
        if a.client is not None:
            return (client, server) if a.client == client else (server, client)
    return client, server


def letters(n: int) -> list[str]:
    """Short endpoint labels: A..Z, then AA, AB, ..."""
    out = []
    for k in range(n):
        text = ""
        k += 1
        while k:
            k, r = divmod(k - 1, 26)
            text = chr(65 + r) + text
        out.append(text)
    return out


def column_labels(names: list[str], named: Mapping[str, str] | None = None) -> list[str]:
    """Each endpoint's column label: its role where `named` gives one ("A", "TURN", "B relay"; a
    party's second socket "A #2"), else a letter no role took (A..Z, AA, ...)."""
    named = named or {}
    taken = set(named.values())
    spare = (s for s in letters(len(names) + len(taken)) if s not in taken)
    out: list[str] = []
    for name in names:
        label = named.get(name, "")[:LABEL_MOST] or next(spare)
        twin = sum(1 for o in out if o == label or o.startswith(f"{label} #"))
        out.append(f"{label} #{twin + 1}" if twin else label)  # two sockets of one party
    return out


def legend(names: list[str], width: int, labels: list[str] | None = None) -> list[str]:
    """`A 127.0.0.1:40450 · B 127.0.0.1:47051`, as many to a line as fit `width`."""
    lines: list[str] = []
    line = ""
    for short, name in zip(labels or letters(len(names)), names, strict=True):
        item = f"{short} {name}"
        if line and len(line) + 3 + len(item) > width:
            lines.append(line)
            line = ""
        line = f"{line} · {item}" if line else item
    return [*lines, line] if line else lines


Origin = tuple[int, float]
"""The frame the time column counts from, and its time (epoch seconds)."""


def capture_origin(session: Session) -> Origin:
    """The capture's first packet: the packet list's times count from it, so the ladder's do."""
    ts = session.index.records.ts_ns
    if not len(ts):
        return (1, 0.0)
    first = int(ts.argmin())
    return (first + 1, int(ts[first]) / 1e9)


def origin_line(origin: Origin) -> str:
    """Where the time column starts: `t = 0 at frame 1, 2026-11-30 05:37:25.033312 UTC`."""
    frame, time = origin
    when = datetime.fromtimestamp(time, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return f"t = 0 at frame {frame}, {when} UTC"


def draw_ladder(
    items: list[Arrow],
    width: int = 100,
    order: Iterable[str] = (),
    limit: int = MAX_MESSAGES,
    more: str = "",
    origin: Origin | None = None,
    named: Mapping[str, str] | None = None,
) -> Ladder:
    """The ladder with box characters: a column per endpoint (labelled A, B, ... with a legend,
    or by the role `named` gives it), an arrow per message (`┼` where it passes an endpoint of
    its `via`), the frame and time on the left (time from `origin`, by default the first
    arrow's)."""
    if not items:
        return Ladder(["no decoded messages"])
    if origin is None:
        origin = (items[0].frame, items[0].time)
    names = participants(items[:limit], order)
    labels = column_labels(names, named)
    short = dict(zip(names, labels, strict=True))
    step = max(MIN_STEP, (width - LEFT - 2) // max(1, len(names) - 1))
    cols = {name: k * step for k, name in enumerate(names)}
    last = max(cols.values())
    head = [" "] * (last + 1 + max(len(s) for s in short.values()))
    for name, col in cols.items():
        head[col : col + len(short[name])] = short[name]
    lines = [*legend(names, max(width, 40), labels), origin_line(origin)]
    top = len(lines)
    lines.append(" " * LEFT + "".join(head).rstrip())
    start_time = origin[1]
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
            cuts = sorted(cols[end] for end in a.via if end in cols and lo < cols[end] < hi)
            row[lo + 1 : hi], cut = _arrow_body(a.label, lo, hi, cuts, cols[a.dst] > cols[a.src])
            if cut:  # cut on the arrow, whole after the last column
                row += list(f"  {a.label}")
        lines.append(f"{a.frame:>7} {a.time - start_time:>10.6f} " + "".join(row).rstrip())
    return Ladder(lines, top, LEFT)


def _arrow_body(label: str, lo: int, hi: int, cuts: list[int], rightwards: bool) -> tuple[list[str], bool]:
    """The cells between columns `lo` and `hi`: a line with its head at the receiver, `┼` where it
    passes a column of `cuts` (relayed media at the TURN server), and the label in the longest
    stretch between them, a line cell on each side of it; and whether the label had to be cut."""
    body = ["─"] * (hi - lo - 1)
    for c in cuts:
        body[c - lo - 1] = "┼"
    bounds = [lo, *cuts, hi]
    start, end = max(itertools.pairwise(bounds), key=lambda b: b[1] - b[0])
    span = end - start - 1
    text = f" {label} "
    cut = len(text) > span - 2
    if cut:
        text = text[: max(0, span - 4)] + "… "
    first = start - lo + 1 if rightwards else end - lo - 2 - len(text)  # body index of its first cell
    for k, ch in enumerate(text):
        if 0 <= first + k < len(body):
            body[first + k] = ch
    if body:
        body[-1 if rightwards else 0] = "▶" if rightwards else "◀"
    return body, cut


def draw(
    items: list[Arrow], width: int = 100, order: Iterable[str] = (), limit: int = MAX_MESSAGES, more: str = ""
) -> Ladder:
    """draw_ladder under its former name (the viewer's session ladder calls it)."""
    return draw_ladder(items, width, order, limit, more)


def text_ladder(
    session: Session, flow: int, width: int = 100, limit: int = MAX_MESSAGES, stream_id: int | None = None
) -> Ladder:
    """The ladder of one flow (with `stream_id`, of that HTTP/2 stream only: a gRPC call): its
    client's column on the left, its server's on the right."""
    f = session.index.flows[flow]
    more = f"; --export mermaid --flow {flow} has them all"
    items = list(arrows(session, [flow], stream_id))
    order = client_first(items, str(f.client), str(f.server))
    return draw_ladder(items, width, order, limit, more, capture_origin(session))


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
    items = list(arrows(session, flows))
    if flow is not None:  # the client first, as the viewer draws it
        order = client_first(items, str(ix.flows[flow].client), str(ix.flows[flow].server))
    yield from mermaid_lines(items, order)
