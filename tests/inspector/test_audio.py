"""`--export audio --stream N` (inspector/audio.py) on real captures: the file a stream makes, the
stream numbering of `--report streams`, and one clear error for a stream that is missing, not
audio, or encrypted without a key."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest

from protoscope.decoders.registry import load_registry
from protoscope.decoders.rtp.audio import JITTER_SECONDS, ogg_opus, wav
from protoscope.inspector.audio import ExportError, export_audio
from protoscope.inspector.report.rows import analysis_rows
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES, public_capture
from tests.decoders.rtp.test_audio import chunks, ogg_pages, rtp_packets
from tests.hostile import Pcap


def _export(name: str, stream: int, out: Path, encoding: str | None = None) -> bytes:
    return _export_path(public_capture(name), stream, out, encoding)


def _export_path(path: Path, stream: int, out: Path, encoding: str | None = None) -> bytes:
    session = Session.open(path, load_registry())
    try:
        export_audio(session, stream, out, encoding)
    finally:
        session.close()
    return out.read_bytes()


def test_pcma_stream_is_tsharks_payloads(tmp_path: Path) -> None:
    got = _export("wswiki--sip-rtp-g711.pcap", 1, tmp_path / "b.wav")
    want = wav("PCMA", rtp_packets("wswiki--sip-rtp-g711.pcap", ssrc=0x343FFA34))
    assert got == want


def _jumping_capture(path: Path, payloads: list[bytes], pt: int, clock: int) -> Path:
    """RTP whose timestamp jumps a minute at every packet, the packets 100 us apart on the wire
    (/tmp/review's craft_rtp.py: 1,000 such PCMU packets, 230 KB, made a 480 MB WAV)."""
    with Pcap(path) as p:
        for k, payload in enumerate(payloads):
            p.udp(struct.pack("!BBHII", 0x80, pt, k, k * 60 * clock % 2**32, 0x1234) + payload)
    return path


def test_timestamp_jumps_are_filled_no_longer_than_the_capture_lasted(tmp_path: Path) -> None:
    path = _jumping_capture(tmp_path / "gap.pcap", [b"\x7f" * 160] * 200, 0, 8000)
    session = Session.open(path, load_registry())
    try:
        done = export_audio(session, 0, tmp_path / "gap.wav")
    finally:
        session.close()
    data = chunks((tmp_path / "gap.wav").read_bytes())[b"data"]
    assert data.count(b"\x7f") == 200 * 160
    assert len(data) - 200 * 160 <= (199 * 0.0001 + JITTER_SECONDS) * 8000
    assert done.note and done.note.startswith("199 RTP timestamp gaps filled short")
    session = Session.open(public_capture("wswiki--sip-rtp-g711.pcap"), load_registry())
    try:
        assert export_audio(session, 1, tmp_path / "b.wav").note is None
    finally:
        session.close()


def test_an_opus_payload_no_ogg_page_holds_is_an_export_error(tmp_path: Path) -> None:
    path = _jumping_capture(tmp_path / "big.pcap", [b"\x78" + bytes(65100)], 111, 48000)
    with pytest.raises(ExportError, match="does not fit one Ogg page"):
        _export_path(path, 0, tmp_path / "big.opus", "opus")
    assert not (tmp_path / "big.opus").exists()


def test_stream_numbers_follow_the_streams_report(tmp_path: Path) -> None:
    name = "wswiki--sip-rtp-g711.pcap"
    session = Session.open(public_capture(name), load_registry())
    try:
        rows = list(analysis_rows(session, "streams"))
    finally:
        session.close()
    for n, row in enumerate(rows):
        session = Session.open(public_capture(name), load_registry())
        try:
            done = export_audio(session, n, tmp_path / f"{n}.wav")
        finally:
            session.close()
        assert done.ssrc == row["ssrc"] and done.packets == row["packets"]
        tag = struct.unpack_from("<H", (tmp_path / f"{n}.wav").read_bytes(), 20)[0]
        assert tag == {0: 7, 8: 6}[int(str(row["payload_type"]))]


def test_opus_by_sdp_and_by_name(tmp_path: Path) -> None:
    got = _export("wswiki--sip-rtp-opus.pcap", 0, tmp_path / "a.opus")
    assert got == ogg_opus(rtp_packets("wswiki--sip-rtp-opus.pcap"))
    # No signaling: PT 99 is named on the command line.
    with pytest.raises(ExportError, match="not audio"):
        _export("wswiki--rtp-opus-only.pcap", 0, tmp_path / "b.opus")
    got = _export("wswiki--rtp-opus-only.pcap", 0, tmp_path / "b.opus", "opus")
    assert got[:4] == b"OggS" and b"OpusHead" in got[:100]


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"no stream 5 \(the capture has 2 RTP streams"):
        _export("wswiki--sip-rtp-g711.pcap", 5, tmp_path / "x.wav")
    with pytest.raises(ExportError, match=r"not audio this export writes: (PT 96|H265)"):
        _export("wswiki--1920x1080_H.265.pcapng", 0, tmp_path / "x.wav")
    with pytest.raises(ExportError, match="cannot write"):
        _export("sipp--g711a.pcap", 0, tmp_path / "missing" / "x.wav")
    assert not (tmp_path / "x.wav").exists()


def test_encrypted_stream_without_key(tmp_path: Path) -> None:
    """Google Meet's SRTP (DTLS-SRTP negotiated on the flow): nothing written from ciphertext."""
    name = "ndpi--stun_google_meet.pcapng"
    session = Session.open(public_capture(name), load_registry())
    try:
        rows = list(analysis_rows(session, "streams"))
    finally:
        session.close()
    n = next(k for k, row in enumerate(rows) if row["payload_type"] == 111)
    with pytest.raises(ExportError, match="encrypted and no key decrypts it"):
        _export(name, n, tmp_path / "meet.opus", "opus")
    assert not (tmp_path / "meet.opus").exists()


SDES_SAMPLE = SAMPLES / "sdes-srtp.pcap"


def test_srtp_decrypted_by_sdes_keys(tmp_path: Path) -> None:
    """ffmpeg's SRTP (keys in the SDP's a=crypto, decrypted by the RTP decoder): the PCMU WAV and
    the Ogg Opus hold the plaintext payloads the sender gave, packet for packet (truth file)."""
    truth = json.loads(SDES_SAMPLE.with_suffix(".truth.json").read_text())
    session = Session.open(SDES_SAMPLE, load_registry())
    try:
        pcmu = export_audio(session, 0, tmp_path / "a.wav")
        opus = export_audio(session, 1, tmp_path / "b.opus")
    finally:
        session.close()
    assert (pcmu.encoding, pcmu.packets, opus.encoding.lower(), opus.packets) == ("PCMU", 100, "opus", 101)
    wav_data = (tmp_path / "a.wav").read_bytes()
    samples = wav_data[wav_data.index(b"data") + 8 :]
    want = [p["payload_sha256"] for p in truth["streams"][0]["rtp"]]
    assert [hashlib.sha256(samples[160 * k : 160 * (k + 1)]).hexdigest() for k in range(len(want))] == want
    pages = ogg_pages((tmp_path / "b.opus").read_bytes())[2:]
    got = [hashlib.sha256(p[3][0]).hexdigest() for p in pages]
    assert got == [p["payload_sha256"] for p in truth["streams"][1]["rtp"]]
