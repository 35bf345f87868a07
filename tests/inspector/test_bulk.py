"""The bulk RTP path of `--report streams` gives the rows the plain pass gives (every PDU through
`feed`), mean jitter included, on our WebRTC and SRTP samples and on every public capture with RTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from protoscope.decoders.api import Endpoint
from protoscope.decoders.registry import load_registry
from protoscope.decoders.rtp.packets import RtpRecord
from protoscope.inspector.bulk import bulk_payloads, plan_rtp, rows_with_bulk_rtp
from protoscope.inspector.report.rows import analysis_rows
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES, public_capture
from tests.decoders.rtp.test_streams_oracle import rtp_captures

FLOATS = ("max_delta_ms", "max_jitter_ms", "mean_jitter_ms", "jitter_ms_per_second")


def plain_rows(session: Session) -> list[dict[str, Any]]:
    analysis = session.registry.analysis("streams")
    for pd in session.decode():
        ctx = session.context(pd.index)
        for pdu in pd.pdus:
            analysis.feed(pdu, ctx)
    return analysis.rows()


def same(bulk: list[dict[str, Any]], plain: list[dict[str, Any]]) -> None:
    assert [(r["ssrc"], r["src"], r["dst"]) for r in bulk] == [(r["ssrc"], r["src"], r["dst"]) for r in plain]
    for b, p in zip(bulk, plain, strict=True):
        for k, v in p.items():
            assert b[k] == (pytest.approx(v, abs=0.0011) if k in FLOATS else v), (b["ssrc"], k)


SRTCP_SAMPLE = Path(__file__).resolve().parent.parent / "decoders" / "rtp" / "samples" / "srtcp-libsrtp.pcap"
CAPTURES = [
    SAMPLES / "webrtc-direct.pcap",
    SAMPLES / "webrtc-turn.pcap",
    SRTCP_SAMPLE,
    *sorted(rtp_captures()),
]


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda c: Path(str(c)).name)
def test_bulk_rows_equal_the_plain_pass(capture: Path | str) -> None:
    path = capture if isinstance(capture, Path) else public_capture(capture)
    session = Session.open(path, load_registry())
    try:
        bulk = list(analysis_rows(session, "streams"))
        same(bulk, plain_rows(session))
    finally:
        session.close()


def test_bulk_path_is_taken_and_checked_on_the_direct_call() -> None:
    """webrtc-direct has RTP flows of more than HELD_PER_FLOW packets, muxed with STUN and DTLS:
    the plan finds them, and every held packet decoded as the plan read it."""
    session = Session.open(SAMPLES / "webrtc-direct.pcap", load_registry())
    try:
        plan = plan_rtp(session)
        assert plan is not None and len(plan.packets) >= 100 and (~plan.held).any()
        rows = rows_with_bulk_rtp(session, session.registry.analysis("streams"), plan)
        assert rows is not None and len(list(rows)) >= 2
    finally:
        session.close()


def test_a_flow_that_does_not_decode_as_rtp_falls_back_to_the_plain_pass(tmp_path: Path) -> None:
    """Datagrams that look like RTP on port 53 (the RTP heuristic never takes ports below 1024):
    the held packets decode to nothing, so the bulk path declines and the plain pass answers."""
    from tests.pcapgen import udp_packets, write

    payloads = [bytes([0x80, 0x00]) + n.to_bytes(2, "big") + bytes(8) + b"x" * 20 for n in range(100)]
    path = write(tmp_path / "dns-like.pcap", udp_packets(payloads, sport=53, dport=53))
    session = Session.open(path, load_registry())
    try:
        plan = plan_rtp(session)
        assert plan is not None and len(plan.packets) == 100
        assert rows_with_bulk_rtp(session, session.registry.analysis("streams"), plan) is None
        assert list(analysis_rows(session, "streams")) == plain_rows(session) == []
    finally:
        session.close()


# -- SRTP decrypted in bulk ---------------------------------------------------------------------


def keyed_registry(keylog: Path | None = None, srtp_keys: list[Any] | None = None) -> Any:
    """The registry as --keylog and --srtp-key configure it."""
    from protoscope.decoders.tls.keylog import KeyLog

    registry = load_registry(use_plugins=False)
    options: dict[str, object] = {}
    if keylog is not None:
        log = KeyLog()
        log.add_text(keylog.read_text(), keylog.name)
        options["tls.keylog"] = log
    if srtp_keys:
        options["srtp.keys"] = srtp_keys
    registry.configure(options)
    return registry


def one_by_one(session: Session, packets: set[int]) -> dict[int, tuple[bytes | None, list[Any]]]:
    """Each of `packets` decoded by the plain pass: its RTP payload and findings."""
    out: dict[int, tuple[bytes | None, list[Any]]] = {}
    for pd in session.decode():
        if pd.index in packets:
            rec = pd.pdus[0].record if pd.pdus else None
            payload = rec.payload if isinstance(rec, RtpRecord) else None
            out[pd.index] = (payload, list(pd.findings))  # the PDUs' findings among them
    return out


def assert_bulk_equals_one_by_one(session: Session) -> tuple[dict[int, bytes], dict[int, tuple[Any, ...]]]:
    """Every later candidate's payload and findings, bulk against the decoder one packet at a time."""
    plan = plan_rtp(session)
    assert plan is not None and (~plan.held).any()
    later = {int(i) for i in plan.packets[~plan.held]}
    payloads, findings = bulk_payloads(session, plan)
    reference = one_by_one(session, later)
    assert set(reference) == later
    for i in sorted(later):
        payload, found = reference[i]
        assert payloads.get(i) == payload, f"frame {i + 1}"
        assert sorted(map(repr, findings.get(i, ()))) == sorted(map(repr, found)), f"frame {i + 1}"
    return payloads, findings


@pytest.mark.parametrize("name", ["webrtc-srtp80", "webrtc-srtp32", "webrtc-datachannels", "sdes-srtp"])
def test_srtp_in_bulk_equals_the_decoder_on_the_samples(name: str) -> None:
    keylog = SAMPLES / f"{name}.keys"
    session = Session.open(SAMPLES / f"{name}.pcap", keyed_registry(keylog if keylog.exists() else None))
    try:
        payloads, findings = assert_bulk_equals_one_by_one(session)
        assert len(payloads) >= 20 and not findings  # decrypted, every one authenticated
    finally:
        session.close()


SENDER, RECEIVER = ("127.0.0.1", 40000), ("127.0.0.2", 40010)
SSRC_A, SSRC_B = 0x1234ABCD, 0x0BADCAFE


def hostile_call(name: str) -> tuple[list[bytes], Any]:
    """One direction of SRTP from libsrtp (pylibsrtp), keyed by --srtp-key for its sender: SSRC A's
    numbering wraps (the rollover counter goes to 1), SSRC B starts after the held packets, one
    packet is sent twice (a replay), one has a wrong tag, one is cut short, one carries a padding
    count of 0; payloads with CSRCs, a header extension and padding."""
    import random
    import struct

    import pylibsrtp

    from protoscope.decoders.rtp.srtp import PROFILES, MasterKey
    from protoscope.decoders.rtp.srtp_keys import SrtpKeyOption
    from tests.decoders.rtp.test_srtp import ORACLE

    profile = PROFILES[name]
    blob = random.Random(7).randbytes(profile.master_len)
    key = MasterKey(profile, blob[: profile.key_len], blob[profile.key_len :], source="--srtp-key")
    tx = pylibsrtp.Session(pylibsrtp.Policy(blob, pylibsrtp.Policy.SSRC_ANY_OUTBOUND, 0, ORACLE[name]))
    rng = random.Random(3)

    def packet(ssrc: int, seq: int, first: int = 0x80, tail: bytes = b"") -> bytes:
        payload = bytes([0x90, 0x80, seq & 0x7F, 0x10]) + rng.randbytes(rng.randint(16, 900)) + tail
        csrcs = b"".join(struct.pack(">I", 0x1000 + k) for k in range(first & 0x0F))
        ext = b"\xbe\xde\x00\x01\x10\xab\x00\x00" if first & 0x10 else b""
        header = struct.pack(">BBHII", first, 96, seq & 0xFFFF, seq * 960 & 0xFFFFFFFF, ssrc)
        return bytes(tx.protect(header + csrcs + ext + payload))

    wire: list[bytes] = []
    for k in range(400):
        seq = 65400 + k
        first = (0x80, 0x82, 0x90, 0xA0)[k % 4]
        wire.append(packet(SSRC_A, seq, first, b"\0\0\x03" if first == 0xA0 else b""))
        if k >= 150 and k % 3 == 0:
            wire.append(packet(SSRC_B, 1000 + k, 0x90))
    wire.insert(300, wire[200])  # a replay
    bad = bytearray(wire[250])
    bad[-1] ^= 1
    wire[250] = bytes(bad)  # a wrong tag
    wire.insert(260, wire[259][:20])  # cut short: no room for the tag
    wire.insert(270, packet(SSRC_A, 65400 + 400, 0xA0, b"\0"))  # a padding count of 0
    option = SrtpKeyOption(key, sender=Endpoint(*SENDER))
    return wire, option


@pytest.mark.parametrize(
    ("name", "chunk"),
    [
        ("SRTP_AES128_CM_HMAC_SHA1_80", None),
        ("SRTP_AES128_CM_HMAC_SHA1_80", 3000),
        ("SRTP_AES128_CM_HMAC_SHA1_32", None),
        ("SRTP_AEAD_AES_128_GCM", None),
    ],
)
def test_srtp_in_bulk_equals_the_decoder_on_a_hostile_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, chunk: int | None
) -> None:
    """`chunk`: bytes unprotect_run takes at a time (a few packets: chunk ends everywhere)."""
    from protoscope.decoders.rtp import srtp
    from tests.pcapgen import udp_packets, write

    if chunk is not None:
        monkeypatch.setattr(srtp, "RUN_BYTES", chunk)

    wire, option = hostile_call(name)
    path = write(tmp_path / "hostile-srtp.pcap", udp_packets(wire, sport=SENDER[1], dport=RECEIVER[1]))
    session = Session.open(path, keyed_registry(srtp_keys=[option]))
    try:
        payloads, findings = assert_bulk_equals_one_by_one(session)
        codes = sorted(f.code for found in findings.values() for f in found)
        assert codes.count("srtp.replay") == 1 and codes.count("srtp.auth_failed") == 2
        assert codes.count("rtp.padding_bad") == 1 and len(codes) == 4
        assert len(payloads) >= len(wire) - 64 - 3
        rows = list(analysis_rows(session, "streams"))
        wraps = {r["ssrc"]: r["sequence_wraps"] for r in rows}
        assert wraps[SSRC_A] == 1 and SSRC_B in wraps
    finally:
        session.close()


@pytest.mark.parametrize("name", ["webrtc-srtp80", "webrtc-srtp32", "webrtc-datachannels"])
def test_streams_of_decrypted_calls_equal_the_plain_pass(name: str) -> None:
    """With the key log, the bulk path's rows (keyframes from payloads decrypted in bulk) are the
    plain pass's; video streams count their keyframes, H.264's and VP8's."""
    session = Session.open(SAMPLES / f"{name}.pcap", keyed_registry(SAMPLES / f"{name}.keys"))
    try:
        plan = plan_rtp(session)
        assert plan is not None and (~plan.held).any()
        bulk = list(analysis_rows(session, "streams"))
        same(bulk, plain_rows(session))
        video = [r for r in bulk if str(r["codec"]).lower() in ("h264", "vp8")]
        assert video and all(isinstance(r["keyframes"], int) and r["keyframes"] >= 1 for r in video)
        assert all(r["frame_rate"] for r in video)
    finally:
        session.close()


def test_a_key_that_never_applies_costs_the_bulk_path_little(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong --srtp-key: the later packets of its SSRC are tried one by one BULK_FAILURES times
    (each the decoder's srtp.auth_failed), then left unread (a stream the report cannot count
    keyframes of), rather than decoded one by one to the end."""
    from protoscope.decoders.rtp import srtp_flow
    from tests.pcapgen import udp_packets, write

    monkeypatch.setattr(srtp_flow, "BULK_FAILURES", 5)
    wire, option = hostile_call("SRTP_AES128_CM_HMAC_SHA1_80")
    wrong = type(option)(type(option.key)(option.key.profile, bytes(16), bytes(14)), sender=option.sender)
    path = write(tmp_path / "wrong-key.pcap", udp_packets(wire, sport=SENDER[1], dport=RECEIVER[1]))
    session = Session.open(path, keyed_registry(srtp_keys=[wrong]))
    try:
        plan = plan_rtp(session)
        assert plan is not None
        payloads, findings = bulk_payloads(session, plan)
        assert not payloads and len(findings) == 2 * 5  # SSRC A's and B's first five
        assert all(f.code == "srtp.auth_failed" for found in findings.values() for f in found)
    finally:
        session.close()
