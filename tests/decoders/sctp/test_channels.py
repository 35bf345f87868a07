"""The data channels report over aiortc's packets: one row per channel with what the applications
did (labels, reliability, every message each way), and the findings of a channel that never
opened, a reset stream and an ABORT."""

from __future__ import annotations

import copy
import struct
from typing import Any

from protoscope.decoders.api import Analysis
from protoscope.decoders.sctp.channels import MAX_SHOWN, DataChannelAnalysis
from tests.decoders.sctp.vectors import (
    Run,
    chunk,
    ctx,
    data_chunk,
    dcep_open,
    from_client,
    packet,
    packets,
    param,
    vectors,
)


def feed(items: list[tuple[bytes, bool]], analysis: DataChannelAnalysis | None = None) -> DataChannelAnalysis:
    analysis = analysis or DataChannelAnalysis()
    run = Run()
    for data, client in items:
        result = run.decode(data, client)
        for pdu in result.pdus:
            analysis.feed(pdu, ctx(run.frame, client, run.shared))
    return analysis


def aiortc_items(dropped: bool = True) -> list[tuple[bytes, bool]]:
    return [(bytes.fromhex(p["hex"]), from_client(p)) for p in packets(dropped)]


def test_a_row_per_channel_as_the_applications_made_them() -> None:
    analysis = feed(aiortc_items())
    assert isinstance(analysis, Analysis)
    rows = analysis.rows()
    by_label = {r["label"] if r["negotiated"] == "dcep" else "pre": r for r in rows}
    assert len(rows) == 4
    for spec in vectors()["channels"]:
        row = by_label[spec["label"]]
        assert row["stream_id"] == spec["id"] and row["flow"] == 1
        assert row["ordered"] == spec["ordered"]
        if spec["negotiated"]:
            assert (
                row["negotiated"] == "pre-negotiated" and row["label"] is None and row["reliability"] is None
            )
        else:
            assert row["negotiated"] == "dcep" and row["protocol"] == spec["protocol"]
            assert row["opened"]["direction"] == "s2c" and row["acked"]["direction"] == "c2s"
            assert row["acked"]["frame"] > row["opened"]["frame"]
        want_rel = (
            f"max_retransmits={spec['maxRetransmits']}"
            if spec["maxRetransmits"] is not None
            else f"max_lifetime_ms={spec['maxPacketLifeTime']}"
            if spec["maxPacketLifeTime"] is not None
            else "reliable"
        )
        if not spec["negotiated"]:
            assert row["reliability"] == want_rel
        sent = spec["messages"]
        for way, side in (("s2c", "caller"), ("c2s", "callee")):
            want = [(m["type"], m["value"]) for m in sent if m["from"] == side]
            shown = [(t, v[: 2 * MAX_SHOWN] if t == "binary" else v) for t, v in want]  # texts are short
            got = [
                ("text" if "text" in m else "binary", m["text"] if "text" in m else m["hex"])
                for m in row["messages"]
                if m["direction"] == way
            ]
            assert got == shown, (spec["label"], way)
            assert row[f"messages_{way}"] == len(want)
            assert row[f"bytes_{way}"] == sum(
                len(v.encode()) if t == "text" else len(v) // 2 for t, v in want
            )
        for m in row["messages"]:
            assert m["dtls_side"] == ("server" if m["direction"] == "s2c" else "client")
            assert m["frame"] == m["frames"][-1] or m["frame"] in m["frames"]
    big = next(m for m in by_label["chat"]["messages"] if m["size"] == 5000)
    assert len(big["frames"]) == 5 and big["truncated"] is True


def test_findings_reset_and_abort() -> None:
    rows = feed(aiortc_items()).rows()
    codes = {r["label"] or "pre": [(f["code"], f["severity"]) for f in r["findings"]] for r in rows}
    assert codes["timed"] == [("datachannel.reset", "note")]  # closed before the ABORT
    for label in ("chat", "game", "pre"):
        assert codes[label] == [("sctp.abort", "warn")]  # aiortc ends associations with ABORT
    timed = next(r for r in rows if r["label"] == "timed")
    assert timed["closed"]["by"] == "reset"
    abort_frame = next(n for n, p in enumerate(packets(), 1) if p["chunk"]["type"] == 6)
    assert all(f["frame"] == abort_frame for r in rows for f in r["findings"] if f["code"] == "sctp.abort")


def test_open_without_ack() -> None:
    """The capture ends before the ACKs: the channels that DCEP opens did not open."""
    items = aiortc_items()[:11]  # INIT ... the three OPENs
    rows = feed(items).rows()
    assert [(r["label"], [f["code"] for f in r["findings"]]) for r in rows] == [
        ("chat", ["datachannel.open_unacked"]),
        ("game", ["datachannel.open_unacked"]),
        ("timed", ["datachannel.open_unacked"]),
    ]
    assert all(
        r["findings"][0]["severity"] == "error" and r["findings"][0]["frame"] == r["opened"]["frame"]
        for r in rows
    )


def test_stream_reused_after_reset_and_user_abort() -> None:
    reset = chunk(130, 0, param(13, struct.pack("!IIIH", 1, 0, 1, 0)))
    items = [
        (packet(data_chunk(1, 0, 0, 50, dcep_open("one"))), True),
        (packet(data_chunk(1, 0, 0, 50, b"\x02")), False),
        (packet(reset), True),
        (packet(reset), False),
        (packet(data_chunk(2, 0, 0, 50, dcep_open("two"))), True),
        (packet(data_chunk(2, 0, 0, 50, b"\x02")), False),
        (packet(chunk(6, 0, param(12, b"hang up"))), True),
    ]
    rows = feed(items).rows()
    assert [(r["label"], r["stream_id"]) for r in rows] == [("one", 0), ("two", 0)]
    assert [f["code"] for f in rows[0]["findings"]] == ["datachannel.reset"]
    (abort,) = rows[1]["findings"]
    assert (abort["code"], abort["severity"]) == ("sctp.abort", "note") and "hang up" in abort["message"]


def test_snapshot_changes_nothing_and_shares_nothing() -> None:
    items = aiortc_items()
    asked, run = DataChannelAnalysis(), Run()
    for n, (data, client) in enumerate(items):
        for pdu in run.decode(data, client).pdus:
            asked.feed(pdu, ctx(run.frame, client, run.shared))
        if n % 10 == 0:
            snap = asked.snapshot()
            kept = copy.deepcopy(snap)
            for row in snap:  # a reader that changes what it was given changes nothing
                row["messages"].clear()  # type: ignore[attr-defined]
                row["findings"].append({})  # type: ignore[attr-defined]
            assert asked.snapshot() == kept
    assert asked.rows() == feed(items).rows()


def test_channel_flood_stays_bounded(monkeypatch: Any) -> None:
    from protoscope.decoders.sctp import channels

    monkeypatch.setattr(channels, "MAX_CHANNELS", 10)
    monkeypatch.setattr(channels, "MAX_MESSAGES", 5)
    items = [(packet(data_chunk(n, n, 0, 50, dcep_open(f"c{n}"))), True) for n in range(30)]
    items += [(packet(data_chunk(100 + n, 0, n, 51, b"x")), True) for n in range(20)]
    rows = feed(items).rows()
    assert len(rows) == 10
    assert rows[-1]["findings"][-1]["code"] == "datachannel.channels_limit"
    assert len(rows[0]["messages"]) == 5 and rows[0]["messages_c2s"] == 20


def test_other_applications_make_no_channel() -> None:
    """SCTP user messages of other PPIDs (46: Diameter) are not data channels."""
    rows = feed([(packet(data_chunk(1, 0, 0, 46, b"\x01\x00\x00\x14")), True)]).rows()
    assert rows == []


def dc_messages(count: int, payload: bytes, per_stream: int, ppid: int = 53) -> list[tuple[bytes, bool]]:
    """Pre-negotiated channel messages as /tmp/review's craft.py `dcmsgs` makes them: `count`
    whole messages, `per_stream` on each stream id, 70 a packet."""
    items = []
    for first in range(1, count + 1, 70):
        tsns = range(first, min(count + 1, first + 70))
        items.append((packet(*[data_chunk(t, t // per_stream, 0, ppid, payload) for t in tsns]), True))
    return items


def test_messages_listed_over_all_channels_are_bounded(monkeypatch: Any) -> None:
    """The review's dcmsgs (1.4 M one-byte messages, 1,000 a stream, held 1.18 GB): past the
    budget over all channels messages are counted, not listed, with one finding."""
    from protoscope.decoders.sctp import channels

    monkeypatch.setattr(channels, "MAX_LISTED_MESSAGES", 250)
    analysis = feed(dc_messages(1000, b"x", 100))
    rows = analysis.rows()
    assert len(rows) == 11  # stream ids 0-10 (TSNs 1-1000 at 100 a stream)
    assert sum(len(r["messages"]) for r in rows) == analysis.listed == 250
    assert sum(int(r["messages_c2s"]) for r in rows) == 1000
    assert sum(int(r["bytes_c2s"]) for r in rows) == 1000
    limits = [
        (r["stream_id"], f) for r in rows for f in r["findings"] if f["code"] == "datachannel.messages_limit"
    ]
    assert len(limits) == 1 and limits[0][0] == 2  # TSN 251 on stream 2 was the first left out
    assert [len(r["messages"]) for r in rows[:4]] == [99, 100, 51, 0]


def test_text_and_hex_shown_over_all_channels_are_bounded() -> None:
    """4 KiB binary messages at the real MAX_LISTED_SHOWN: each shows 8,192 hex characters, so the
    4,097th is the first not listed."""
    from protoscope.decoders.sctp import channels

    per = 2 * MAX_SHOWN
    count = channels.MAX_LISTED_SHOWN // per + 10
    analysis = feed(dc_messages(count, bytes(MAX_SHOWN), 1000))
    rows = analysis.rows()
    listed = [m for r in rows for m in r["messages"]]
    assert len(listed) == channels.MAX_LISTED_SHOWN // per
    assert sum(len(str(m["hex"])) for m in listed) == analysis.shown <= channels.MAX_LISTED_SHOWN
    assert sum(int(r["messages_c2s"]) for r in rows) == count
    codes = [f["code"] for r in rows for f in r["findings"]]
    assert codes == ["datachannel.messages_limit"]


def test_reset_flood_visits_each_channel_once_a_direction() -> None:
    """RE-CONFIG floods after many channels: a reset visits only the channels that direction has
    not reset yet (the stream ids it lists, or all of them), so a repeat costs nothing."""
    every = chunk(130, 0, param(13, struct.pack("!III", 1, 0, 1)))  # no stream listed: all
    absent = chunk(130, 0, param(13, struct.pack("!IIIH", 2, 0, 1, 65000)))
    analysis = feed(dc_messages(300, b"x", 1))
    assert len(analysis.current[1]) == len(analysis.unreset[(1, True)]) == 300
    feed([(packet(every), True)] * 200 + [(packet(absent), True)] * 200, analysis)
    assert not analysis.unreset[(1, True)] and len(analysis.unreset[(1, False)]) == 300
    feed([(packet(every), False)], analysis)
    assert not analysis.current[1] and not analysis.unreset[(1, False)]
    rows = analysis.rows()
    assert all([f["code"] for f in r["findings"]] == ["datachannel.reset"] for r in rows)
    assert all(r["closed"]["by"] == "reset" for r in rows) and len(rows) == 300
