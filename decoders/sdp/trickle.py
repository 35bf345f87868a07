"""Trickle ICE in signaling (RFC 8838): candidates sent one by one after the offer or the answer.

Two shapes reach us. Browser signaling sends each `RTCIceCandidate` as JSON, `{"candidate":
"candidate:...", "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "..."}`, often wrapped
(`{"type": "candidate", "candidate": {...}}`, a list of them), and ends gathering with a null or
empty candidate. WHIP/WHEP (RFC 9725) PATCH an SDP fragment (RFC 8840,
`application/trickle-ice-sdpfrag`): `a=ice-ufrag`, `m=`, `a=mid`, `a=candidate:` and
`a=end-of-candidates` lines without `v=0`. Both become `TrickleRecord`s, which the sessions
analysis adds to a peer's candidates as the SDP's own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from protoscope.decoders.api import Field, Finding

MAX_TRICKLE_CANDIDATES = 1024
"""Candidates kept from one message; a message with more (an ICE agent gathers a few dozen) is
cut there with a `sdp.candidates_limit` finding."""
MAX_JSON_NODES = 100_000
"""JSON values looked at in one message for candidates: a huge document stops the walk there."""
MAX_JSON_DEPTH = 32
"""How deep in a JSON document candidates are looked for (signaling wraps them two or three deep)."""

END_OF_CANDIDATES = ("", "end-of-candidates", "a=end-of-candidates")
"""What a JSON `candidate` member says when gathering ended (besides null): W3C webrtc-pc's empty
candidate, and RFC 8840's attribute as some servers forward it."""
CANDIDATE_KEYS = frozenset({"sdpMid", "sdpMLineIndex", "usernameFragment"})
"""The other members of an RTCIceCandidateInit: with one of them, a null candidate is a
trickle message rather than any JSON's null."""
CANDIDATE_TYPES = frozenset({"candidate", "ice-candidate", "icecandidate", "ice_candidate", "ice", "trickle"})
"""Signaling `type` values of a candidate message (apprtc's "candidate", others'): a null
candidate in such a message is the end of candidates."""


@dataclass(slots=True)
class TrickleRecord:
    """Candidates one signaling message trickled for one media section (a Pdu.record of "sdp")."""

    candidates: list[str] = field(default_factory=list)
    """Candidate attribute values as sent, without "a=": "candidate:1 1 udp 2130706431 ..."."""
    ufrag: str | None = None
    """The ICE username fragment they belong to (usernameFragment, a fragment's a=ice-ufrag): it
    tells an ICE restart's candidates from the old ones."""
    mid: str | None = None
    """sdpMid / the fragment's a=mid: which media section (with BUNDLE, all of them)."""
    mline_index: int | None = None
    """sdpMLineIndex: the media section by position, when no mid is given."""
    end_of_candidates: bool = False
    """The sender gathered all it will (null or "" candidate, a=end-of-candidates)."""
    passwords: list[str] = field(default_factory=list)
    """a=ice-pwd of a fragment (an ICE restart sends new credentials this way)."""

    def key(self) -> tuple[str | None, str | None, int | None]:
        return (self.ufrag, self.mid, self.mline_index)


@dataclass(slots=True)
class Trickle:
    """What one message holds: its records, detail-tree fields and problems."""

    records: list[TrickleRecord] = field(default_factory=list)
    fields: list[Field] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    count: int = 0
    """Candidates kept (at most MAX_TRICKLE_CANDIDATES)."""

    def full(self) -> bool:
        """No room for another record: MAX_TRICKLE_CANDIDATES candidates kept, or as many records
        (a flood of end-of-candidates or empty sections). Checked before a record is built, so
        that a huge message costs no more than its first records."""
        return self.count >= MAX_TRICKLE_CANDIDATES or len(self.records) >= MAX_TRICKLE_CANDIDATES

    def limit(self) -> None:
        """Note, once, that the message held more than was kept."""
        if not any(f.code == "sdp.candidates_limit" for f in self.findings):
            what = (
                f"more than {MAX_TRICKLE_CANDIDATES} candidates or records (MAX_TRICKLE_CANDIDATES): "
                "rest dropped"
            )
            self.findings.append(Finding("warn", "sdp.candidates_limit", what))

    def add(self, rec: TrickleRecord) -> None:
        """Append `rec`, joined to the last record when it continues it (same ufrag, mid and
        index, and that one did not end gathering): a list of twenty candidates is one record.
        Candidates beyond MAX_TRICKLE_CANDIDATES are cut from `rec` (its list is what was kept)."""
        room = MAX_TRICKLE_CANDIDATES - self.count
        if len(rec.candidates) > room:
            self.limit()
            del rec.candidates[room:]
        self.count += len(rec.candidates)
        last = self.records[-1] if self.records else None
        if last is not None and not last.end_of_candidates and last.key() == rec.key():
            last.candidates += rec.candidates
            last.end_of_candidates = rec.end_of_candidates
            last.passwords += rec.passwords
            return
        self.records.append(rec)


def candidate_value(text: str) -> str | None:
    """A candidate attribute's value ("candidate:...") from what a message carries ("a=candidate:..."
    or "candidate:..."); None for anything else."""
    text = text.strip()
    if text.startswith("a="):
        text = text[2:]
    return text if text.startswith("candidate:") and len(text) > len("candidate:") else None


def looks_like_sdpfrag(text: str) -> bool:
    """An RFC 8840 SDP fragment: SDP lines (`x=`) without `v=0`, with a candidate, an
    end-of-candidates or an ICE credential among them."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0].startswith("v="):
        return False
    if not all(len(line) >= 2 and line[1] == "=" and line[0].isalpha() for line in lines):
        return False
    return any(line.startswith(("a=candidate:", "a=end-of-candidates", "a=ice-ufrag:")) for line in lines)


def has_trickle(body: bytes) -> bool:
    """`body` (an HTTP body, a WebSocket text message) trickles candidates: an SDP fragment, or JSON
    with an RTCIceCandidateInit somewhere. It stops at the first candidate object and builds no
    field: the "sdp" decoder parses the body for good once this says yes."""
    if b"candidate" not in body:
        return False
    text = body.decode("utf-8", "replace")
    if looks_like_sdpfrag(text):
        return True  # it has a candidate, an end-of-candidates or a ufrag: _sdpfrag makes a record
    doc = _json(text)
    return doc is not None and any(_from_json(node, kind) is not None for node, kind in _dicts(doc))


def _json(text: str) -> object | None:
    """The JSON document `text` holds, or None (not JSON, or nested past the parser's recursion)."""
    if not text.lstrip().startswith(("{", "[")):
        return None
    try:
        doc: object = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return doc


def parse_trickle(data: bytes) -> Trickle:
    """The trickled candidates of a message: an SDP fragment or JSON. Never raises: what it does
    not understand is not a candidate. Linear in the message: the walk stops once the message is
    full (Trickle.full) and spans are looked for forward only (_Spans)."""
    out = Trickle()
    text = data.decode("utf-8", "replace")
    if looks_like_sdpfrag(text):
        _sdpfrag(text, out)
        return out
    doc = _json(text)
    if doc is None:
        return out
    spans = _Spans(data)
    for node, parent_type in _dicts(doc):
        rec = _from_json(node, parent_type)
        if rec is None:
            continue
        if out.full():
            out.limit()
            break
        out.add(rec)
        spans.begin()
        for cand in rec.candidates:
            out.fields.append(Field("sdp.candidate", cand, spans.find(cand)))
        if rec.end_of_candidates:
            out.fields.append(Field("sdp.end_of_candidates", True, (0, len(data))))
        if rec.mid is not None:
            out.fields.append(Field("sdp.mid", rec.mid, spans.find(rec.mid, quoted=True)))
        if rec.mline_index is not None:
            out.fields.append(Field("sdp.mline_index", rec.mline_index, (0, len(data))))
        if rec.ufrag is not None:
            out.fields.append(Field("sdp.ice_ufrag", rec.ufrag, spans.find(rec.ufrag, quoted=True)))
    return out


MAX_SPAN_MISSES = 8
"""Strings of one message not found as written (JSON escapes such as \\u0041 change the bytes):
each costs a scan to the message's end, so after this many no more are looked for."""


class _Spans:
    """Where the strings of a JSON message lie in its bytes. Records come in document order, so
    each record's strings are looked for from the end of the previous record's, its candidates one
    after the other; sdpMid and usernameFragment as JSON strings (quoted), so that the "0" of a
    candidate's address is not taken for mid "0". Every search starts at or after the last record's
    end, which keeps a message linear (hits), and MAX_SPAN_MISSES bounds the scans that find
    nothing; a string not found spans the whole message."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.start = 0
        """Where the current record's strings are looked for from."""
        self.at = 0
        """Where its next candidate is looked for from."""
        self.end = 0
        """The end of the furthest string found so far."""
        self.misses = 0

    def begin(self) -> None:
        """A new record: its strings lie after the previous record's."""
        self.start = self.at = self.end

    def find(self, text: str, quoted: bool = False) -> tuple[int, int]:
        whole = (0, len(self.data))
        if not text or self.misses >= MAX_SPAN_MISSES:
            return whole
        needle = b'"' + text.encode() + b'"' if quoted else text.encode()
        at = self.data.find(needle, self.start if quoted else self.at)
        if at < 0:
            self.misses += 1
            return whole
        stop = at + len(needle)
        self.end = max(self.end, stop)
        if quoted:
            return (at + 1, stop - 1)
        self.at = stop
        return (at, stop)


def _dicts(doc: object) -> Iterator[tuple[dict[str, object], str | None]]:
    """The JSON objects of `doc` in document order (depth first), each with the `type` of the object
    that holds it (a wrapper's "candidate"), within MAX_JSON_NODES and MAX_JSON_DEPTH."""
    stack: list[tuple[object, str | None, int]] = [(doc, None, 0)]
    seen = 0
    while stack and seen < MAX_JSON_NODES:
        item, parent_type, depth = stack.pop()
        seen += 1
        if depth > MAX_JSON_DEPTH:
            continue
        if isinstance(item, dict):
            yield item, parent_type
            kind = item.get("type")
            mine = kind.lower() if isinstance(kind, str) else parent_type
            stack.extend((v, mine, depth + 1) for v in reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend((v, parent_type, depth + 1) for v in reversed(item))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _from_json(node: dict[str, object], parent_type: str | None) -> TrickleRecord | None:
    """The record of one JSON object when it is an RTCIceCandidateInit (or apprtc's
    {"type": "candidate", "label", "id", "candidate"}, or {"candidates": [...]}); else None."""
    kind = node.get("type")
    kind = kind.lower() if isinstance(kind, str) else parent_type
    mid = _text(node.get("sdpMid"))
    index = node.get("sdpMLineIndex")
    mline = index if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < 1 << 16 else None
    if kind == "candidate":  # apprtc: "id" is the mid, "label" the m-line index
        if mid is None:
            mid = _text(node.get("id"))
        label = node.get("label")
        if mline is None and isinstance(label, int) and not isinstance(label, bool) and 0 <= label < 1 << 16:
            mline = label
    ufrag = _text(node.get("usernameFragment"))
    if "candidate" in node:
        value = node["candidate"]
        if isinstance(value, str):
            cand = candidate_value(value)
            if cand is not None:
                return TrickleRecord([cand], ufrag, mid, mline)
            if value.strip() in END_OF_CANDIDATES:
                return TrickleRecord([], ufrag, mid, mline, end_of_candidates=True)
            return None
        if value is None and (CANDIDATE_KEYS & node.keys() or len(node) == 1 or kind in CANDIDATE_TYPES):
            return TrickleRecord([], ufrag, mid, mline, end_of_candidates=True)
        return None
    listed = node.get("candidates")
    if isinstance(listed, list) and listed and all(isinstance(c, str) for c in listed):
        cands = [c for c in (candidate_value(str(c)) for c in listed) if c is not None]
        if cands:
            return TrickleRecord(cands, ufrag, mid, mline)
    return None


def _sdpfrag(text: str, out: Trickle) -> None:
    """RFC 8840 section 4.4: session-level ICE attributes, then one m= section per media with its
    a=mid, candidates and a=end-of-candidates (a session-level a=end-of-candidates ends them all).
    Read up to MAX_TRICKLE_CANDIDATES candidates or media sections, then cut (sdp.candidates_limit)."""
    session_ufrag: str | None = None
    session_pwd: str | None = None
    sections: list[TrickleRecord] = []
    current: TrickleRecord | None = None
    own_ufrag: dict[int, bool] = {}
    end_all = False
    kept = 0  # candidates so far: the fragment is read no further than MAX_TRICKLE_CANDIDATES
    pos = 0
    for raw in text.splitlines(keepends=True):
        line = raw.rstrip("\r\n")
        span = (pos, pos + len(line.encode("utf-8", "replace")))
        pos += len(raw.encode("utf-8", "replace"))
        line = line.strip()
        if line.startswith("m="):
            if len(sections) >= MAX_TRICKLE_CANDIDATES:
                out.limit()
                break
            current = TrickleRecord()
            sections.append(current)
            out.fields.append(Field("sdp.media", line[2:], span))
            continue
        if not line.startswith("a="):
            continue
        attr, _, arg = line[2:].partition(":")
        target = current
        if attr == "candidate":
            if kept >= MAX_TRICKLE_CANDIDATES:
                out.limit()
                break
            kept += 1
            if target is None:
                target = current = TrickleRecord()
                sections.append(current)
            target.candidates.append(line[2:])
            out.fields.append(Field("sdp.candidate", line[2:], span))
        elif attr == "end-of-candidates":
            out.fields.append(Field("sdp.end_of_candidates", True, span))
            if target is None:
                end_all = True
            else:
                target.end_of_candidates = True
        elif attr == "ice-ufrag":
            out.fields.append(Field("sdp.ice_ufrag", arg, span))
            if target is None:
                session_ufrag = arg
            else:
                target.ufrag = arg
                own_ufrag[id(target)] = True
        elif attr == "ice-pwd":
            if target is None:
                session_pwd = arg
            else:
                target.passwords.append(arg)
        elif attr == "mid" and target is not None:
            target.mid = arg
            out.fields.append(Field("sdp.mid", arg, span))
    if not sections and (end_all or session_ufrag is not None):
        sections.append(TrickleRecord())  # credentials or the end, with no media section
    for rec in sections:
        if not own_ufrag.get(id(rec)):
            rec.ufrag = session_ufrag
        if session_pwd is not None:
            rec.passwords.insert(0, session_pwd)
        rec.end_of_candidates = rec.end_of_candidates or end_all
        out.add(rec)
