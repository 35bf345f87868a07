"""--sdp FILE: signaling from outside the capture. A capture stripped of its signaling, given the
offer and the answer as files, reports its WebRTC session as the whole capture does (ufrags, SSRCs,
fingerprints checked, STUN integrity, findings), the signaling's own frames aside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import TCP
from scapy.utils import rdpcap, wrpcap

from protoscope.decoders.registry import load_registry
from protoscope.decoders.sdp import SdpRecord, TrickleRecord
from protoscope.inspector.cli import main
from protoscope.inspector.report.rows import AnalysisPass
from protoscope.inspector.sdpfiles import (
    SIGNALING_OPTION,
    SdpFileError,
    SignalingMessage,
    load_sdp_files,
)
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES

DIRECT = SAMPLES / "webrtc-direct.pcap"
TRUTH = json.loads((SAMPLES / "webrtc-direct.truth.json").read_text())


def stripped(tmp_path: Path) -> Path:
    """webrtc-direct.pcap without its signaling (the WebSocket over TCP): STUN, DTLS, SRTP only."""
    out = tmp_path / "media-only.pcap"
    wrpcap(str(out), [p for p in rdpcap(str(DIRECT)) if TCP not in p])
    return out


def signaling_files(tmp_path: Path) -> list[str]:
    """The offer as plain SDP, the answer as the JSON message the sample's signaling sent."""
    offer = tmp_path / "offer.sdp"
    offer.write_text(TRUTH["offer"])
    answer = tmp_path / "answer.json"
    answer.write_text(json.dumps({"type": "answer", "sdp": TRUTH["answer"]}))
    return ["--sdp", str(offer), "--sdp", str(answer)]


def report(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    assert main([*args, "--report", "sessions", "--format", "json"]) == 0
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return rows


FRAME_KEYS = frozenset({"frame", "flow", "flows", "source", "signaling", "timings_ms", "evidence"})
"""What differs by construction: frame and flow numbers (the stripped capture has fewer), which
signaling message (four WebSocket messages in the capture, two files here) and when the first
candidate was learnt (the signaling's own time)."""


def normal(value: object) -> object:
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items() if k not in FRAME_KEYS}
    if isinstance(value, list):
        return [normal(v) for v in value]
    return value


def test_sdp_files_give_the_in_capture_signaling_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = report(capsys, str(DIRECT))
    media_only = stripped(tmp_path)
    without = report(capsys, str(media_only))
    given = report(capsys, str(media_only), *signaling_files(tmp_path))
    assert len(whole) == len(given) == 1
    (w,), (g,), (n,) = whole, given, without
    assert g["ufrags"] == w["ufrags"] == ["ONB5", "z3Y0"]
    assert not n["signaling"] and n["dtls"].get("fingerprint_checked") is None
    # What the files teach: each side's ufrag, SSRCs and fingerprint, checked against DTLS.
    offer, answer = g["signaling"]
    assert offer["ufrag"] == ["ONB5"] and offer["setup"] == "actpass"
    assert "z3Y0" in answer["ufrag"] and answer["setup"] == "active"
    assert {s for x in g["signaling"] for m in x["media"] for s in m["ssrcs"]} == {
        s for x in w["signaling"] for m in x["media"] for s in m["ssrcs"]
    }
    assert {x["fingerprint"] for x in g["signaling"]} == {x["fingerprint"] for x in w["signaling"]}
    assert g["dtls"]["fingerprint_checked"] is True
    assert g["phases"]["signaling"]["frame"] == 0
    first = min(p["time"] for name, p in g["phases"].items() if name != "signaling")
    assert g["phases"]["signaling"]["time"] == first  # the capture's first packet's time
    # The rest is the whole capture's report.
    w["phases"].pop("signaling")
    g["phases"].pop("signaling")
    assert normal(g) == normal(w)


def test_sdp_files_teach_stun_integrity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    media_only = stripped(tmp_path)

    def statuses(*extra: str) -> set[str]:
        assert main([str(media_only), "--report", "packets", "--format", "json", *extra]) == 0
        packets = json.loads(capsys.readouterr().out)
        return {
            str(pdu["fields"]["stun.att.hmac.status"])
            for p in packets
            for pdu in p["pdus"]
            if "stun.att.hmac.status" in pdu["fields"]
        }

    assert statuses() == {"unchecked"}
    assert statuses(*signaling_files(tmp_path)) == {"ok"}
    # The offer alone: the offerer's password checks the checks sent to it (and their answers);
    # the answerer's checks are unchecked, never "bad" against the offerer's password.
    assert statuses(*signaling_files(tmp_path)[:2]) == {"ok", "unchecked"}


@pytest.mark.parametrize("side", ["offer", "answer"])
def test_one_side_sdp_makes_no_false_failure(
    side: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With one party's SDP only, the other's certificate has no promise to break: the session is
    not failed in dtls, and no check is called forged."""
    given = tmp_path / f"{side}.sdp"
    given.write_text(TRUTH[side])
    assert (
        main([str(stripped(tmp_path)), "--sdp", str(given), "--report", "findings", "--format", "json"]) == 0
    )
    codes = {f["code"] for f in json.loads(capsys.readouterr().out)}
    assert not codes & {"stun.integrity_bad", "dtls.fingerprint_mismatch"}, codes
    (row,) = report(capsys, str(stripped(tmp_path)), "--sdp", str(given))
    assert row["failed_phase"] is None and row["dtls"]["fingerprint_checked"] is True


def test_answer_file_first_still_makes_the_offerer_a(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = signaling_files(tmp_path)
    (row,) = report(capsys, str(stripped(tmp_path)), *files[2:], *files[:2])  # answer, then offer
    roles = {p["name"]: (p["role"], p["ufrag"]) for p in row["parties"]}
    ufrag = {side: TRUTH[side].split("a=ice-ufrag:")[1].split("\r\n")[0] for side in ("offer", "answer")}
    assert roles == {"A": ("offerer", ufrag["offer"]), "B": ("answerer", ufrag["answer"])}


def test_sdp_files_reach_a_growing_pass(tmp_path: Path) -> None:
    """The viewer's and live captures' pass (AnalysisPass.more): the files' PDUs come first, once,
    at frame 0 of no flow, the offer "from the client" and the answer back."""
    registry = load_registry()
    paths = [str(tmp_path / "offer.sdp"), str(tmp_path / "answer.sdp")]
    Path(paths[0]).write_text(TRUTH["offer"])
    Path(paths[1]).write_text(TRUTH["answer"])
    registry.options = {**registry.options, SIGNALING_OPTION: load_sdp_files(paths)}
    fed: list[tuple[object, int, int, bool]] = []

    class Recorder:
        name = "recorder"

        def feed(self, pdu: Any, ctx: Any) -> None:
            fed.append((pdu.record, ctx.frame, ctx.flow, ctx.from_client))

        def rows(self) -> list[dict[str, object]]:
            return []

    session = Session.open(stripped(tmp_path), registry)
    try:
        decoding = AnalysisPass(session, {"recorder": Recorder()}, lambda _, rows: None)
        list(decoding.more(upto=0))  # no packet decoded yet: the files are learnt all the same
        assert len(fed) == 2
        list(decoding.more(upto=3))
        list(decoding.more(final=True))
    finally:
        session.close()
    first = fed[:2]
    assert [(frame, flow, from_client) for _, frame, flow, from_client in first] == [
        (0, -1, True),
        (0, -1, False),
    ]
    assert all(isinstance(rec, SdpRecord) for rec, *_ in first)
    assert not any(frame == 0 for _, frame, *_ in fed[2:])


def test_roles_and_trickle_files(tmp_path: Path) -> None:
    plain = tmp_path / "a.sdp"
    plain.write_text(TRUTH["offer"].replace("a=setup:actpass", "a=setup:foo"))
    second = tmp_path / "b.sdp"
    second.write_text(TRUTH["answer"].replace("a=setup:active", "a=setup:foo"))
    trickle = tmp_path / "c.json"
    trickle.write_text(json.dumps({"candidate": "candidate:1 1 udp 1 10.0.0.1 9 typ host", "sdpMid": "0"}))
    answer_first = tmp_path / "d.sdp"
    answer_first.write_text(TRUTH["answer"])
    got = load_sdp_files([str(plain), str(second), str(trickle)])
    assert [m.role for m in got] == ["offer", "answer", None]
    assert load_sdp_files([str(answer_first)])[0].role == "answer"  # a=setup:active
    registry = load_registry()
    decoder = registry.decoders["sdp"]
    from protoscope.inspector.sdpfiles import decode_signaling

    capture: dict[str, object] = {}
    decoded = decode_signaling(got, decoder, capture, 5.0)
    assert [type(p.record) for p, _ in decoded] == [SdpRecord, SdpRecord, TrickleRecord]
    assert all(ctx.frame == 0 and ctx.flow == -1 and ctx.time == 5.0 for _, ctx in decoded)
    assert len(capture["ice.passwords"]) == 2  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (None, "cannot read"),
        (b"hello world\n", "neither SDP"),
        (b'{"type": "bye"}', "neither SDP"),
        (b"\x00\x01v=0", "binary"),
    ],
)
def test_bad_sdp_files_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, why: str
) -> None:
    path = tmp_path / "bad.sdp"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SdpFileError, match=why):
        load_sdp_files([str(path)])
    assert main([str(DIRECT), "--report", "summary", "--sdp", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and why in err and "Traceback" not in err


def test_signaling_message_is_plain_data() -> None:
    msg = SignalingMessage("x", b"v=0", "offer")
    assert msg.role == "offer" and msg.data == b"v=0"


def test_a_json_file_with_offer_and_answer_gives_both_in_order(tmp_path: Path) -> None:
    """[offer, answer] in one JSON file (a saved signaling log): both SDPs, in document order, each
    with its "type" as its role (review: only the answer was kept)."""
    both = tmp_path / "both.json"
    both.write_text(
        json.dumps([{"type": "offer", "sdp": TRUTH["offer"]}, {"type": "answer", "sdp": TRUTH["answer"]}])
    )
    got = load_sdp_files([str(both)])
    assert [(m.role, m.data.decode()) for m in got] == [
        ("offer", TRUTH["offer"]),
        ("answer", TRUTH["answer"]),
    ]
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(
        json.dumps({"log": [{"data": {"type": "answer", "sdp": TRUTH["answer"]}}, TRUTH["offer"]]})
    )
    assert [m.role for m in load_sdp_files([str(wrapped)])] == ["offer", "answer"]  # offers first


def test_a_file_with_offer_and_answer_reports_the_session(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    both = tmp_path / "both.json"
    both.write_text(
        json.dumps([{"type": "offer", "sdp": TRUTH["offer"]}, {"type": "answer", "sdp": TRUTH["answer"]}])
    )
    (row,) = report(capsys, str(stripped(tmp_path)), "--sdp", str(both))
    assert row["ufrags"] == ["ONB5", "z3Y0"] and len(row["signaling"]) == 2


@pytest.mark.parametrize("kind", ["sdp", "json"])
def test_a_utf8_byte_order_mark_is_skipped(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"bom.{kind}"
    text = TRUTH["offer"] if kind == "sdp" else json.dumps({"type": "offer", "sdp": TRUTH["offer"]})
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    (msg,) = load_sdp_files([str(path)])
    assert msg.role == "offer" and msg.data == TRUTH["offer"].encode()
