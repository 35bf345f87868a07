"""The decoding pass taken a piece at a time (`Session.decoding`, `AnalysisPass.more`) gives what
one pass over the whole capture gives: per packet (late decodes merged into their packet) and in
every analysis's rows, on every sample and public capture, cut at seeded random points."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protoscope.decoders.api import Finding, FlowContext, Pdu
from protoscope.decoders.grpc.calls import CallAnalysis
from protoscope.decoders.registry import load_registry
from protoscope.inspector.report.rows import AnalysisPass, fresh_analyses
from protoscope.inspector.session import PacketDecode, Session, flatten
from tests import pcapgen
from tests.conftest import SAMPLES, public_capture, public_captures

SAMPLE_NAMES = sorted(p.name for p in SAMPLES.glob("*.pcap"))
PUBLIC_NAMES = [p.name for p in public_captures()] or ["no-corpus"]
"""A missing corpus is one test that fails under CI=true (and skips elsewhere)."""
CAPTURES = [*(("samples", n) for n in SAMPLE_NAMES), *(("public", n) for n in PUBLIC_NAMES)]
CHUNKS = 5
"""Pieces each capture is decoded in (CHUNKS - 1 random cuts, then the final call)."""
SLOW = 50_000
"""Captures with more packets than this are left out (they take over 5 s to decode)."""

Packet = tuple[list[tuple[str, str, str]], Counter[tuple[str, str, str]]]
"""A packet's PDUs (protocol, summary, flattened fields) and its findings as a multiset."""


def _path(where: str, name: str) -> Path:
    return SAMPLES / name if where == "samples" else public_capture(name)


def _open(where: str, name: str) -> Session:
    session = Session.open(_path(where, name), load_registry())
    if len(session.index) > SLOW:
        session.close()
        pytest.skip(f"{name}: more than {SLOW} packets")
    return session


def _cuts(n: int, seed: str) -> list[int]:
    rng = random.Random(seed)
    return sorted(rng.randrange(0, n + 1) for _ in range(CHUNKS - 1)) if n else []


def _merged(decodes: Iterator[PacketDecode]) -> dict[int, Packet]:
    """Each packet's PDUs and findings, a late decode's added to its packet's."""
    out: dict[int, Packet] = {}
    for pd in decodes:
        pdus, findings = out.setdefault(pd.index, ([], Counter()))
        pdus += [(p.protocol, p.summary, repr(sorted(flatten(p.fields).items()))) for p in pd.pdus]
        findings.update((f.severity, f.code, f.message) for f in pd.findings)
    return out


def _chunked(session: Session, cuts: list[int], sparse: bool) -> Iterator[PacketDecode]:
    decoding = session.decoding(sparse=sparse)
    seen: list[PacketDecode] = []
    for cut in cuts:
        for pd in decoding.more(upto=cut):
            assert not pd.late and pd.index < cut
            seen.append(pd)
    before = {pd.index for pd in seen}
    for pd in decoding.more(final=True):
        if pd.late:
            assert pd.index in before or sparse  # a sparse pass may not have visited it
        seen.append(pd)
    assert list(decoding.more(final=True)) == []  # nothing after the final call
    return iter(seen)


def _non_empty(packets: dict[int, Packet]) -> dict[int, Packet]:
    return {i: p for i, p in packets.items() if p[0] or p[1]}


@pytest.mark.parametrize(("where", "name"), CAPTURES)
def test_pieces_decode_as_one_pass(where: str, name: str) -> None:
    session = _open(where, name)
    n = len(session.index)
    cuts = _cuts(n, name)
    whole = _merged(session.decode())
    pieces = _merged(_chunked(session, cuts, sparse=False))
    assert sorted(pieces) == list(range(n))
    assert pieces == whole
    # A sparse pass leaves out different packets when it knows the future: those with something
    # to show are the same.
    assert _non_empty(_merged(_chunked(session, cuts, sparse=True))) == _non_empty(whole)
    session.close()


def _canonical(name: str, rows: list[dict[str, Any]]) -> list[str]:
    """Rows as JSON; calls in no particular order (a piece's end drains the calls that ended in
    it, so they reach on_rows in another order than from one pass)."""
    texts = [json.dumps(row, sort_keys=True, default=str) for row in rows]
    return sorted(texts) if name == "calls" else texts


def _file_rows(session: Session) -> dict[str, list[str]]:
    got: dict[str, list[dict[str, Any]]] = {}
    decoding = AnalysisPass(session, fresh_analyses(session), lambda n, r: got.setdefault(n, []).extend(r))
    for _ in decoding.packets():
        pass
    decoding.finish()
    return {name: _canonical(name, rows) for name, rows in got.items()}


def _piece_rows(session: Session, cuts: list[int], snapshots: bool) -> dict[str, list[str]]:
    got: dict[str, list[dict[str, Any]]] = {}
    decoding = AnalysisPass(session, fresh_analyses(session), lambda n, r: got.setdefault(n, []).extend(r))
    for cut in cuts:
        for _ in decoding.more(upto=cut):
            pass
        if snapshots:
            decoding.snapshot()
    for _ in decoding.more(final=True):
        pass
    decoding.finish()
    return {name: _canonical(name, rows) for name, rows in got.items()}


@pytest.mark.parametrize(("where", "name"), CAPTURES)
def test_pieces_feed_the_analyses_as_one_pass(where: str, name: str) -> None:
    session = _open(where, name)
    cuts = _cuts(len(session.index), name)
    whole = _file_rows(session)
    assert _piece_rows(session, cuts, snapshots=False) == whole
    # Snapshots between the pieces change nothing the analyses give.
    assert _piece_rows(session, cuts, snapshots=True) == whole
    session.close()


@pytest.mark.parametrize(("where", "name"), CAPTURES)
def test_snapshot_at_the_end_is_what_finish_gives(where: str, name: str) -> None:
    """After every packet, a snapshot shows what the final call and finish() then hand over, but
    what the end of the capture adds: the flush of reassembly at each flow's end (late decodes)."""
    session = _open(where, name)
    got: dict[str, list[dict[str, Any]]] = {}
    decoding = AnalysisPass(session, fresh_analyses(session), lambda n, r: got.setdefault(n, []).extend(r))
    for cut in [*_cuts(len(session.index), name), len(session.index)]:
        for _ in decoding.more(upto=cut):
            pass
    snapshot = decoding.snapshot()
    got.clear()
    late = [pd for pd in decoding.more(final=True) if pd.late and pd.pdus]
    decoding.finish()
    if late:
        pytest.skip(f"{name}: the end of the capture decoded more ({len(late)} late decodes)")
    assert set(snapshot) == set(decoding.analyses)
    for analysis in decoding.analyses:
        assert _canonical(analysis, snapshot[analysis]) == _canonical(analysis, got.get(analysis, []))
    session.close()


def test_a_call_reaches_on_rows_in_the_piece_it_ended_in() -> None:
    """A gRPC call is handed over by the more() of the piece where it ended, and a snapshot shows
    only the calls still open."""
    session = Session.open(SAMPLES / "grpc-demo.pcap", load_registry())
    ix = session.index
    times = ix.records.ts_ns
    assert bool((times[1:] >= times[:-1]).all())  # so a call that ended before a cut's time ended before it
    whole = [row for row in _rows_of(session, "calls") if row["end"] is not None]
    analysis = CallAnalysis()
    handed: list[dict[str, Any]] = []
    decoding = AnalysisPass(session, {"calls": analysis}, lambda _, rows: handed.extend(rows))
    n = len(ix)
    for cut in range(n // 7, n, n // 7):
        for _ in decoding.more(upto=cut):
            pass
        ended = [row for row in whole if row["end"] < ix.time(cut)]
        assert sorted(_key(r) for r in handed) == sorted(_key(r) for r in ended)
        assert all(not call.done for call in analysis.order)
        assert {_key(r) for r in decoding.snapshot()["calls"]}.isdisjoint(_key(r) for r in handed)
    assert len(whole) > 5
    session.close()


def _rows_of(session: Session, name: str) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    decoding = AnalysisPass(session, {name: session.registry.analysis(name)}, lambda _, r: got.extend(r))
    for _ in decoding.packets():
        pass
    decoding.finish()
    return got


def _key(row: dict[str, Any]) -> tuple[int, int, float]:
    return (int(row["flow"]), int(row["stream_id"]), float(row["start"]))


def _holed_capture(path: Path) -> Path:
    """Flows that end with bytes waiting behind a hole, one after the other, so that a pass taken
    a packet at a time meets each flow's last packet before the capture ends:
    - HTTP requests after a lost one, held until the flow's end, where they are decoded;
    - a last packet that fills one hole while the bytes behind another still wait;
    - a flow no decoder takes (its gaps are worked out from the headers when the pass may look
      ahead), then one more flow so the others' ends are not the capture's."""
    requests = [(True, f"GET /{k} HTTP/1.1\r\nHost: x\r\n\r\n".encode()) for k in range(5)]
    first = pcapgen.tcp_conversation(requests, client=("127.0.0.1", 40001), server=("127.0.0.1", 80))
    del first[4]  # GET /1: the requests after it wait behind the hole
    second = pcapgen.tcp_conversation(requests, client=("127.0.0.1", 40002), server=("127.0.0.1", 80))
    # GET /0, GET /4 (waits), GET /1, GET /2 (fills the hole GET /1 left, GET /3 is still missing)
    second = [*second[:4], second[7], second[4], second[5]]
    junk = [(True, b"\xfe\xed" * 150) for _ in range(40)]
    third = pcapgen.tcp_conversation(junk, client=("127.0.0.1", 40003), server=("127.0.0.1", 9))
    third = [*third[:30], *third[31:38], third[39], third[38]]
    fourth = pcapgen.tcp_conversation(requests[:1], client=("127.0.0.1", 40004), server=("127.0.0.1", 80))
    packets = [*first, *second, *third, *fourth]
    for n, p in enumerate(packets):
        p.time = 1_700_000_000 + n / 1000
    return pcapgen.write(path, packets)


@pytest.mark.parametrize("sparse", [False, True])
def test_flows_that_ended_in_an_earlier_piece_are_flushed_late(tmp_path: Path, sparse: bool) -> None:
    session = Session.open(_holed_capture(tmp_path / "holes.pcap"), load_registry())
    n = len(session.index)
    whole = _merged(session.decode(sparse=sparse))
    decoding = session.decoding(sparse=sparse)
    pieces: list[PacketDecode] = []
    for cut in range(1, n + 1):  # a packet at a time
        pieces += decoding.more(upto=cut)
    late = list(decoding.more(final=True))
    assert late and all(pd.late for pd in late)
    assert [pd.index for pd in late] == sorted(pd.index for pd in late)
    codes = Counter(f.code for pd in late for f in pd.findings)
    assert codes["tcp.gap"] == 3  # one in each flow that ended with a hole
    assert [p.summary for pd in late for p in pd.pdus] == [
        "GET /2 HTTP/1.1",
        "GET /3 HTTP/1.1",
        "GET /4 HTTP/1.1",
        "GET /4 HTTP/1.1",
    ]
    merged = _merged(iter([*pieces, *late]))
    assert _non_empty(merged) == _non_empty(whole)
    # A flow's last packet decodes its own bytes before the flush: GET /2 in the second flow.
    summaries = [p[1] for packet in whole.values() for p in packet[0]]
    assert summaries.count("GET /2 HTTP/1.1") == 2
    session.close()


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_a_file_read_as_it_grows_decodes_as_the_whole_file(tmp_path: Path, name: str) -> None:
    """The live case: the index grows (`PacketIndex.extend`) between the pieces, which end
    anywhere in the file's bytes, even inside a record; the last piece is final."""
    data = (SAMPLES / name).read_bytes()
    rng = random.Random(name)
    cuts = sorted(rng.randrange(24, len(data)) for _ in range(CHUNKS))
    path = tmp_path / name
    path.write_bytes(data[:24])  # the pcap file header
    session = Session.open(path, load_registry(), growing=True)
    decoding = session.decoding()
    got: list[PacketDecode] = []
    at = 24
    for cut in [*cuts, len(data)]:
        with open(path, "ab") as out:
            out.write(data[at:cut])
        at = cut
        session.index.extend()
        got += decoding.more()
    session.index.finish()
    got += decoding.more(final=True)
    whole = Session.open(SAMPLES / name, load_registry())
    assert len(session.index) == len(whole.index)
    assert _merged(iter(got)) == _merged(whole.decode())
    whole.close()
    session.close()


class _Counting:
    """A third-party analysis without `snapshot()`: counts PDUs by protocol."""

    name = "counting"

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def feed(self, pdu: Pdu, ctx: FlowContext) -> None:
        self.counts[pdu.protocol] += 1

    def rows(self) -> list[dict[str, object]]:
        return [{"protocol": k, "pdus": v} for k, v in sorted(self.counts.items())]


class _Locked(_Counting):
    """One that cannot be copied (it holds a lock)."""

    name = "locked"

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()


def test_an_analysis_without_snapshot_is_copied_or_left_out() -> None:
    session = Session.open(SAMPLES / "webrtc-direct.pcap", load_registry())
    counting, locked = _Counting(), _Locked()
    got: dict[str, list[dict[str, Any]]] = {}
    decoding = AnalysisPass(
        session, {"counting": counting, "locked": locked}, lambda n, r: got.setdefault(n, []).extend(r)
    )
    for _ in decoding.more(upto=len(session.index) // 2):
        pass
    before = dict(counting.counts)
    snapshot = decoding.snapshot()
    assert snapshot == {"counting": counting.rows()}  # the locked one is left out
    assert counting.counts == before and snapshot["counting"]
    for _ in decoding.more(final=True):
        pass
    decoding.finish()
    assert got["counting"] == got["locked"] != snapshot["counting"]
    session.close()


def test_findings_the_index_gains_for_packets_decoded_before_come_late() -> None:
    """A growing index gives some findings only when it is finished (counts past a limit, at the
    last packet they concern): a packet decoded before gets them as a late decode."""
    session = Session.open(SAMPLES / "loopback-basic.pcap", load_registry())
    n = len(session.index)
    decoding = session.decoding()
    assert all(not pd.late for pd in decoding.more(upto=n - 2))
    session.index.findings.append((3, Finding("warn", "test.earlier", "for a packet decoded before")))
    session.index.findings.append((n - 1, Finding("warn", "test.later", "for a packet not decoded yet")))
    got = list(decoding.more(final=True))
    assert [(pd.index, pd.late, [f.code for f in pd.findings]) for pd in got if pd.findings] == [
        (n - 1, False, ["test.later"]),
        (3, True, ["test.earlier"]),
    ]
    session.close()
