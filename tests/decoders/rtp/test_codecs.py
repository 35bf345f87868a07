"""Codec facts (codecs.py) from real payloads: VP8 and H.264 as aiortc packetizes what libvpx and
libx264 encode, Opus of a SIP call, VP9 descriptors of pion's tests, RTX as aiortc wraps it;
fields against tshark's vp8, h264 and opus dissectors; truncation at every byte; random bytes."""

from __future__ import annotations

import fractions
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtp import RtpPacket, wrap_rtx
from av import VideoFrame
from hypothesis import given
from hypothesis import strategies as st

from protoscope.decoders.api import Field
from protoscope.decoders.rtp.codecs import CODEC_FIELDS, READERS, codec_fields, encoding_name
from protoscope.decoders.rtp.packets import RTP_HEADER, parse_rtp
from protoscope.inspector.session import flatten
from tests.conftest import public_capture, tshark
from tests.pcapgen import udp_packets, write

PORT = 40022
KEYFRAMES = (0, 3)
"""Frames the encoders are told to make keyframes of, of four."""


def _frames(n: int) -> Iterator[VideoFrame]:
    for i in range(n):
        img = np.random.default_rng(i).integers(0, 255, (120, 160, 3), dtype=np.uint8)
        frame = VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts, frame.time_base = i * 3000, fractions.Fraction(1, 90000)
        yield frame


def encoded(encoding: str) -> list[tuple[int, bool, bytes]]:
    """(RTP timestamp, marker, payload) of four frames aiortc encodes and packetizes."""
    encoder = Vp8Encoder() if encoding == "vp8" else H264Encoder()
    out: list[tuple[int, bool, bytes]] = []
    for i, frame in enumerate(_frames(4)):
        payloads, ts = encoder.encode(frame, force_keyframe=i in KEYFRAMES)
        out += [(ts, k == len(payloads) - 1, p) for k, p in enumerate(payloads)]
    return out


def rtp(seq: int, ts: int, marker: bool, payload: bytes, pt: int = 96) -> bytes:
    return struct.pack(">BBHII", 0x80, (0x80 if marker else 0) | pt, seq, ts, 0xABCD) + payload


def _flat(fields: list[Field]) -> dict[str, list[object]]:
    out: dict[str, list[object]] = {}
    for name, value in flatten(fields).items():
        values = value if isinstance(value, list) else [value]
        out[name] = [int(v) if isinstance(v, bool) else v for v in values]
    return out


def _theirs(path: Path, names: tuple[str, ...], *args: str) -> dict[int, dict[str, list[object]]]:
    columns = [a for name in names for a in ("-e", name)]
    out = tshark("-r", str(path), *args, "-T", "fields", "-E", "occurrence=a", "-e", "frame.number", *columns)
    rows: dict[int, dict[str, list[object]]] = {}
    for line in out.splitlines():
        frame, *values = line.split("\t")
        rows[int(frame)] = {
            n: [int(x, 0) for x in v.split(",")] if v else [] for n, v in zip(names, values, strict=True)
        }
    return rows


VP8_NAMES = ("vp8.pld.x", "vp8.pld.n", "vp8.pld.s", "vp8.pld.partid", "vp8.pld.i", "vp8.pld.pictureid",
             "vp8.hdr.frametype", "vp8.hdr.show", "vp8.keyframe.width", "vp8.keyframe.height")  # fmt: skip
H264_NAMES = ("h264.f", "h264.nal_nri", "h264.nal_unit_hdr", "h264.nalu_size", "h264.start.bit",
              "h264.end.bit", "h264.nal_unit_type")  # fmt: skip


@pytest.mark.parametrize(("encoding", "names"), [("vp8", VP8_NAMES), ("h264", H264_NAMES)])
def test_video_equals_tshark(tmp_path: Path, encoding: str, names: tuple[str, ...]) -> None:
    packets = encoded(encoding)
    raw = [rtp(seq, ts, mark, p) for seq, (ts, mark, p) in enumerate(packets)]
    path = write(tmp_path / f"{encoding}.pcap", udp_packets(raw, 40020, PORT))
    theirs = _theirs(path, names, "-d", f"udp.port=={PORT},rtp", "-d", f"rtp.pt==96,{encoding}")
    keyframe_stamps: set[int] = set()
    for frame, data in enumerate(raw, 1):
        fields, facts = codec_fields(encoding.upper(), data[RTP_HEADER:], RTP_HEADER)
        assert facts is not None and not facts.truncated
        ours = _flat(fields)
        for name in names:
            assert ours.get(name, []) == theirs[frame][name], (frame, name)
        for f in fields:
            assert RTP_HEADER <= f.span[0] <= f.span[1] <= len(data)
        if facts.keyframe:
            keyframe_stamps.add(packets[frame - 1][0])
    stamps = sorted({ts for ts, _, _ in packets})
    assert keyframe_stamps == {stamps[k] for k in KEYFRAMES}


def test_vp8_picture_ids_and_size() -> None:
    packets = encoded("vp8")
    facts = [codec_fields("vp8", p, 0)[1] for _, _, p in packets]
    starts = [f for f in facts if f is not None and f.frame_start]
    assert len(starts) == 4
    ids = [f.picture_id for f in starts]
    assert all(isinstance(i, int) for i in ids) and ids == [ids[0] + k for k in range(4)]
    assert (starts[0].width, starts[0].height) == (160, 120) and starts[1].width is None


def test_h264_sps_pps_and_idr() -> None:
    """aiortc sends SPS, PPS (and SEI) in a STAP-A before each IDR, then the IDR in FU-As."""
    packets = encoded("h264")
    facts = [codec_fields("H264", p, 0)[1] for _, _, p in packets]
    stap = facts[0]
    assert stap is not None and stap.nal_types[:2] == (7, 8) and not stap.keyframe
    idr = facts[1]
    assert idr is not None and idr.nal_types == (5,) and idr.keyframe and idr.frame_start


OPUS = "wswiki--sip-rtp-opus.pcap"


def test_opus_toc_equals_tshark() -> None:
    """The TOC of every Opus packet of a SIP call (PT 99 by its SDP), as tshark reads it; config
    15 is Hybrid fullband 20 ms (RFC 6716 table 2)."""
    path = public_capture(OPUS)
    names = ("opus.TOC.config", "opus.TOC.s", "opus.TOC.c")
    theirs = _theirs(path, names, "-Y", "opus")
    raw = _udp_payloads(path)
    assert len(theirs) > 400
    for frame, want in theirs.items():
        fields, facts = codec_fields("opus", raw[frame][RTP_HEADER:], RTP_HEADER)
        ours = _flat(fields)
        assert [ours.get(n) for n in names] == [want[n] for n in names], frame
        assert facts is not None
        assert (facts.mode, facts.bandwidth, facts.frame_ms, facts.frames) == ("Hybrid", "FB", 20.0, 1)


def _udp_payloads(path: Path) -> dict[int, bytes]:
    out = tshark("-r", str(path), "-T", "fields", "-e", "frame.number", "-e", "udp.payload", "-Y", "udp")
    rows = (line.split("\t") for line in out.splitlines())
    return {int(frame): bytes.fromhex(hexa) for frame, hexa in rows if hexa}


def test_opus_configs() -> None:
    """RFC 6716 table 2, one config of each row."""
    cases = {
        0: ("SILK", "NB", 10.0),
        7: ("SILK", "MB", 60.0),
        9: ("SILK", "WB", 20.0),
        12: ("Hybrid", "SWB", 10.0),
        15: ("Hybrid", "FB", 20.0),
        16: ("CELT", "NB", 2.5),
        22: ("CELT", "WB", 10.0),
        27: ("CELT", "SWB", 20.0),
        31: ("CELT", "FB", 20.0),
    }
    for config, want in cases.items():
        _, facts = codec_fields("opus", bytes([config << 3 | 0x04 | 3, 0x85]), 0)
        assert facts is not None and (facts.mode, facts.bandwidth, facts.frame_ms) == want
        assert facts.stereo and facts.frame_count_code == 3 and facts.frames == 5


# pion/rtp codecs/vp9_packet_test.go: descriptors its payloader writes and its parser reads.
VP9_KEY = bytes.fromhex("8fa1f418078003240114018249834200")
VP9_DELTA = bytes.fromhex("cda1f4860040")
VP9_LAYERED = bytes.fromhex("a0022301aa")


def test_vp9_descriptors() -> None:
    _, key = codec_fields("VP9", VP9_KEY, 0)
    assert key is not None and key.keyframe and key.frame_start and key.picture_id == 0x21F4
    _, delta = codec_fields("VP9", VP9_DELTA, 0)
    assert delta is not None and not delta.keyframe and delta.picture_id == 0x21F4
    fields, layered = codec_fields("VP9", VP9_LAYERED, 0)
    flat = flatten(fields)
    assert layered is not None and layered.picture_id == 2 and not layered.frame_start
    assert (flat["vp9.pld.tid"], flat["vp9.pld.sid"], flat["vp9.pld.d"]) == (1, 1, True)


def test_rtx_original_sequence_number() -> None:
    original = RtpPacket(payload_type=96, sequence_number=4242, timestamp=9, ssrc=1, payload=b"media")
    wrapped = wrap_rtx(original, payload_type=97, sequence_number=7, ssrc=2)
    fields, facts = codec_fields("rtx", wrapped.payload, RTP_HEADER)
    assert facts is not None and facts.original_seq == 4242
    assert flatten(fields)["rtx.osn"] == 4242 and fields[0].span == (RTP_HEADER, RTP_HEADER + 2)


def test_encoding_names() -> None:
    assert encoding_name(0, {}) == "PCMU" and encoding_name(8, {}) == "PCMA"
    assert encoding_name(96, {"rtp.encoding.96": "VP8"}) == "VP8" and encoding_name(96, {}) == ""
    assert codec_fields("PCMU", b"\xff", 0) == ([], None)


def test_every_field_is_declared() -> None:
    declared = {f.abbrev for f in CODEC_FIELDS}
    samples = [p for _, _, p in encoded("vp8")[:3]] + [p for _, _, p in encoded("h264")[:3]]
    samples += [VP9_KEY, VP9_LAYERED, b"\x7b\x85", b"\x00\x10"]
    for name in READERS:
        for sample in samples:
            fields, _ = codec_fields(name, sample, 0)
            assert set(flatten(fields)) <= declared


@pytest.mark.parametrize("encoding", ["vp8", "h264"])
def test_truncation_at_every_byte(encoding: str) -> None:
    for _, _, payload in encoded(encoding)[:2]:
        for cut in range(min(len(payload), 64)):
            fields, facts = codec_fields(encoding, payload[:cut], 0)
            assert facts is not None
            assert all(f.span[1] <= cut for f in fields)
    for cut in range(len(VP9_KEY)):
        codec_fields("vp9", VP9_KEY[:cut], 0)


@given(st.sampled_from(sorted(READERS)), st.binary(max_size=64), st.integers(0, 100))
def test_random_payloads_never_raise(encoding: str, payload: bytes, offset: int) -> None:
    fields, facts = codec_fields(encoding, payload, offset)
    assert facts is not None
    assert all(offset <= f.span[0] <= f.span[1] <= offset + len(payload) for f in fields)


def test_parse_rtp_keeps_payload_out_of_the_record() -> None:
    """The record's payload stays None from parse_rtp: the decoder sets it (plain or decrypted)."""
    rec, _, _ = parse_rtp(rtp(1, 2, True, b"\x01\x02"))
    assert rec is not None and rec.payload is None and rec.payload_len == 2


def test_the_decoder_reads_codecs_of_plain_rtp_and_of_decrypted_srtp() -> None:
    """RtpDecoder: plain RTP whose payload type signaling named gets the codec's fields after its
    payload and its payload in the record (for the streams report's keyframes); SRTP decrypted with
    the key log gets the codec's fields from the plaintext, at the ciphertext's offsets."""
    from protoscope.decoders.api import Endpoint, FlowContext
    from protoscope.decoders.registry import load_registry
    from protoscope.decoders.rtp import RtpDecoder
    from protoscope.decoders.tls.keylog import KeyLog
    from protoscope.inspector.session import Session
    from tests.conftest import SAMPLES

    packet = rtp(7, 960, True, b"\x78\x01\x02", pt=111)  # Opus TOC config 15 (Hybrid FB 20 ms)
    ends = Endpoint("10.0.0.1", 40000), Endpoint("10.0.0.2", 40002)
    ctx = FlowContext(1, "udp", *ends, True, 1, 0.0, hints={"rtp.encoding.111": "opus"})
    pdu = RtpDecoder().decode(packet, RtpDecoder().new_state(), ctx).pdus[0]
    fields = {f.name: f for f in pdu.fields}
    assert fields["opus.mode"].value == "Hybrid" and fields["opus.TOC.config"].span == (12, 13)
    assert pdu.record.payload == b"\x78\x01\x02"  # type: ignore[union-attr]
    keylog = KeyLog()
    keylog.add_text((SAMPLES / "webrtc-datachannels.keys").read_text(), "keys")
    registry = load_registry(use_plugins=False)
    registry.configure({"tls.keylog": keylog})
    session = Session.open(SAMPLES / "webrtc-datachannels.pcap", registry)
    try:
        seen: set[str] = set()
        for pd in session.decode():
            for p in pd.pdus:
                if p.protocol == "rtp" and "SRTP decrypted" in p.summary:
                    seen |= {name.split(".")[0] for name in flatten(p.fields)}
        assert {"vp8", "opus", "srtp"} <= seen
    finally:
        session.close()
