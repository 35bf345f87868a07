"""Audio files from RTP payloads (audio.py): WAV of G.711 whose samples are tshark's RTP payload
bytes, Ogg Opus read back by a page parser written here (CRC computed bit by bit, not by table)
and decoded by libavcodec through PyAV; gaps, reordering, duplicates and sequence wraps; hostile
timestamps; random packets."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protoscope.decoders.rtp.audio import (
    JITTER_SECONDS,
    MAX_GAP_SECONDS,
    MAX_SILENCE_BYTES,
    MAX_SILENCE_SECONDS,
    OPUS_FILL_MS,
    AudioError,
    AudioPacket,
    audio_file,
    in_order,
    ogg_opus,
    ogg_opus_file,
    opus_samples,
    render,
    wav,
    wav_file,
)
from tests.conftest import public_capture, tshark


def rtp_packets(name: str, *args: str, ssrc: int | None = None) -> list[AudioPacket]:
    """tshark's view of a capture's RTP: sequence number, timestamp and payload bytes."""
    out = tshark(
        "-r", str(public_capture(name)), *args, "-Y", "rtp" if ssrc is None else f"rtp.ssrc == {ssrc}",
        "-T", "fields", "-e", "rtp.seq", "-e", "rtp.timestamp", "-e", "rtp.payload",
    )  # fmt: skip
    rows = (line.split("\t") for line in out.splitlines())
    return [
        AudioPacket(int(seq), int(ts), bytes.fromhex(payload.replace(":", "")))
        for seq, ts, payload in rows
        if seq  # SIP's SDP names RTP too (rtp.setup), without an RTP header
    ]


def chunks(data: bytes) -> dict[bytes, bytes]:
    """A RIFF WAVE file's chunks by id."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack_from("<I", data, 4)[0] == len(data) - 8
    out: dict[bytes, bytes] = {}
    pos = 12
    while pos < len(data):
        cid, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        out[cid] = data[pos + 8 : pos + 8 + size]
        pos += 8 + size + size % 2
    return out


def test_g711a_wav_equals_tshark_payloads() -> None:
    """sipp's PCMA stream (236 packets of 240 bytes, none lost): the data chunk is the payloads."""
    packets = rtp_packets("sipp--g711a.pcap", "--enable-heuristic", "rtp_udp")
    data = wav("PCMA", packets)
    c = chunks(data)
    tag, channels, rate, byte_rate, align, bits, extra = struct.unpack("<HHIIHHH", c[b"fmt "])
    assert (tag, channels, rate, byte_rate, align, bits, extra) == (6, 1, 8000, 8000, 1, 8, 0)
    assert c[b"data"] == b"".join(p.payload for p in packets) and len(c[b"data"]) == 236 * 240
    assert struct.unpack("<I", c[b"fact"])[0] == 236 * 240
    with av.open(io.BytesIO(data), format="wav") as container:
        decoded = sum(frame.samples for frame in container.decode(audio=0))
    assert decoded == 236 * 240


@pytest.mark.parametrize(("ssrc", "encoding", "tag"), [(0x343DA99B, "PCMU", 7), (0x343FFA34, "PCMA", 6)])
def test_sip_call_streams(ssrc: int, encoding: str, tag: int) -> None:
    packets = rtp_packets("wswiki--sip-rtp-g711.pcap", ssrc=ssrc)
    c = chunks(wav(encoding, packets))
    assert struct.unpack_from("<H", c[b"fmt "])[0] == tag
    assert c[b"data"] == b"".join(p.payload for p in packets)


def test_gaps_are_silence_and_order_is_restored() -> None:
    real = rtp_packets("sipp--g711a.pcap", "--enable-heuristic", "rtp_udp")[:10]
    shuffled = [real[0], real[2], real[1], real[1], *real[5:]]  # 3 and 4 lost, 1 late and twice
    data = chunks(wav("PCMA", shuffled))[b"data"]
    want = b"".join(p.payload for p in real[:3]) + b"\xd5" * 480 + b"".join(p.payload for p in real[5:])
    assert data == want
    mulaw = chunks(wav("PCMU", [AudioPacket(1, 0, b"\x01" * 160), AudioPacket(3, 320, b"\x02" * 160)]))
    assert mulaw[b"data"] == b"\x01" * 160 + b"\xff" * 160 + b"\x02" * 160


def test_sequence_and_timestamp_wraps() -> None:
    packets = [
        AudioPacket((65534 + k) % 65536, (2**32 - 160 + 160 * k) % 2**32, bytes([k]) * 160) for k in range(4)
    ]
    assert [p.payload[0] for p in in_order(reversed(packets))] == [0, 1, 2, 3]
    assert chunks(wav("PCMU", packets))[b"data"] == b"".join(bytes([k]) * 160 for k in range(4))


def test_hostile_timestamp_jump_is_bounded() -> None:
    packets = [AudioPacket(1, 0, b"\x00" * 160), AudioPacket(2, 2**31, b"\x00" * 160)]
    made = wav_file("PCMU", packets)
    assert len(chunks(made.data)[b"data"]) == 320 + MAX_GAP_SECONDS * 8000
    assert made.note and made.note.startswith("1 RTP timestamp gaps filled short")


def _jumping(n: int, clock: int, payload: bytes, arrival_step: float | None) -> list[AudioPacket]:
    """n packets whose RTP timestamp jumps a minute at every packet (/tmp/review's craft_rtp.py)."""
    return [
        AudioPacket(k, k * 60 * clock % 2**32, payload, None if arrival_step is None else k * arrival_step)
        for k in range(n)
    ]


def test_silence_of_a_file_is_bounded_not_only_a_gap() -> None:
    """1,000 packets each a minute after the last made a 480 MB WAV: with no capture times, a
    file gets MAX_SILENCE_SECONDS of silence in all, and the note says so."""
    made = wav_file("PCMU", _jumping(1000, 8000, b"\x7f" * 160, None))
    data = chunks(made.data)[b"data"]
    assert len(data) == 1000 * 160 + MAX_SILENCE_SECONDS * 8000
    assert data.count(b"\x7f") == 1000 * 160
    assert made.note and made.note.startswith("989 RTP timestamp gaps filled short")  # 10 filled whole


def test_capture_times_bound_each_gap_and_the_file() -> None:
    """Packets 20 ms apart on the wire: a gap gets the wire time plus the jitter slack, and the
    file no more than the stream lasted plus that slack (the 999 gaps would give 999 s)."""
    made = wav_file("PCMU", _jumping(1000, 8000, b"\x7f" * 160, 0.02))
    data = chunks(made.data)[b"data"]
    assert len(data) - 1000 * 160 == int((999 * 0.02 + JITTER_SECONDS) * 8000)
    assert made.note
    two = _jumping(2, 8000, b"\x7f" * 160, 0.5)
    assert len(chunks(wav("PCMU", two))[b"data"]) == 320 + int((0.5 + JITTER_SECONDS) * 8000)


def test_honest_gaps_are_filled_whole_without_a_note() -> None:
    """A 3 s pause (silence suppression) that also took 3 s on the wire is filled as it was, and
    a late packet (arrived after its successor) is still placed by its timestamp."""
    packets = [
        AudioPacket(1, 0, b"\x01" * 160, 10.0),
        AudioPacket(2, 160, b"\x02" * 160, 10.05),
        AudioPacket(3, 320, b"\x03" * 160, 10.01),
        AudioPacket(4, 320 + 24000, b"\x04" * 160, 13.03),
    ]
    made = wav_file("PCMU", packets)
    want = b"\x01" * 160 + b"\x02" * 160 + b"\x03" * 160 + b"\xff" * (24000 - 160) + b"\x04" * 160
    assert chunks(made.data)[b"data"] == want and made.note is None
    assert render("PCMU", packets) == made


def test_signaled_rate_bounds_the_silence_bytes() -> None:
    """The clock and channels are SDP's word: silence is bounded in bytes too, and a rate no WAV
    holds is an error, not a struct overflow."""
    made = wav_file("L16", _jumping(100, 384_000, b"\0" * 64, None), clock=384_000, channels=32)
    assert len(chunks(made.data)[b"data"]) <= 100 * 64 + MAX_SILENCE_BYTES
    with pytest.raises(AudioError, match="not audio this export writes"):
        wav("L16", [AudioPacket(1, 0, b"\0\0")], clock=10**10)
    with pytest.raises(AudioError):
        wav("L16", [AudioPacket(1, 0, b"\0\0")], channels=70000)


def test_l16_is_swapped_to_little_endian() -> None:
    """RFC 3551 L16: big-endian samples (here PT 10's 2 channels), WAV wants little endian."""
    samples = [1, -2, 300, -400]
    payload = struct.pack(">4h", *samples)
    data = wav("L16", [AudioPacket(1, 0, payload), AudioPacket(2, 2, payload)], clock=44100, channels=2)
    c = chunks(data)
    assert struct.unpack("<HHIIHH", c[b"fmt "]) == (1, 2, 44100, 44100 * 4, 4, 16)
    assert list(struct.unpack("<8h", c[b"data"])) == samples + samples
    import wave

    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getnframes()) == (2, 44100, 4)


def test_g722_keeps_codewords_at_16_khz() -> None:
    c = chunks(wav("G722", [AudioPacket(1, 0, b"\x12" * 160), AudioPacket(2, 320, b"\x34" * 160)]))
    assert struct.unpack_from("<HHI", c[b"fmt "]) == (0x028F, 1, 16000)
    assert c[b"data"] == b"\x12" * 160 + b"\x00" * 160 + b"\x34" * 160
    assert struct.unpack("<I", c[b"fact"])[0] == 960


def g722_bytes(seconds: float) -> bytes:
    """A 440 Hz tone as libavcodec's G.722 encoder writes it (16 kHz in, 4 bits a sample out)."""
    encoder = av.CodecContext.create("g722", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 16000, "mono", "s16"
    n = int(16000 * seconds)
    pcm = (8000 * np.sin(2 * np.pi * 440 * np.arange(n) / 16000)).astype(np.int16)
    out = b""
    for k in range(0, n, 320):
        frame = av.AudioFrame.from_ndarray(pcm[k : k + 320].reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts = 16000, k
        out += b"".join(bytes(p) for p in encoder.encode(frame))
    return out + b"".join(bytes(p) for p in encoder.encode(None))


def test_g722_wav_is_read_by_libavformat() -> None:
    """Tag 0x028F is what libavformat maps to its G.722 decoder: the WAV decodes to the samples
    that decoder makes of the payloads themselves (20 ms RTP packets, an 8 kHz RTP clock)."""
    data = g722_bytes(0.5)
    packets = [AudioPacket(k, 160 * k, data[160 * k : 160 * (k + 1)]) for k in range(len(data) // 160)]
    with av.open(io.BytesIO(wav("G722", packets)), format="wav") as container:
        assert container.streams.audio[0].codec_context.name == "g722"
        got = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    decoder = av.CodecContext.create("g722", "r")
    decoder.sample_rate, decoder.layout = 16000, "mono"
    raw = av.Packet(b"".join(p.payload for p in packets))
    want = np.concatenate([f.to_ndarray().reshape(-1) for f in decoder.decode(raw)])
    assert len(got) == len(want) == 320 * len(packets) and (got == want).all()


def ogg_crc(page: bytes) -> int:
    """RFC 3533's CRC-32 bit by bit (the module uses a table)."""
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


def ogg_pages(data: bytes) -> list[tuple[int, int, int, list[bytes]]]:
    """(header type, granule position, page sequence, packets) of every page, CRCs checked."""
    out: list[tuple[int, int, int, list[bytes]]] = []
    pos = 0
    partial = b""
    while pos < len(data):
        assert data[pos : pos + 4] == b"OggS" and data[pos + 4] == 0
        flags, granule, serial, seq, crc, n = struct.unpack_from("<BqIIIB", data, pos + 5)
        del serial
        lacing = data[pos + 27 : pos + 27 + n]
        size = 27 + n + sum(lacing)
        page = data[pos : pos + size]
        assert ogg_crc(page[:22] + b"\0\0\0\0" + page[26:]) == crc
        packets: list[bytes] = []
        body = pos + 27 + n
        for value in lacing:
            partial += data[body : body + value]
            body += value
            if value < 255:
                packets.append(partial)
                partial = b""
        out.append((flags, granule, seq, packets))
        pos += size
    return out


def test_opus_ogg_reads_back() -> None:
    """The SIP call's Opus stream: OpusHead, OpusTags, then one page per RTP payload with its
    bytes unchanged and granule positions from the RTP timestamps; libavformat's Ogg demuxer and
    libopus (through PyAV) decode it all."""
    packets = rtp_packets("wswiki--sip-rtp-opus.pcap")
    data = ogg_opus(packets)
    pages = ogg_pages(data)
    head, tags = pages[0][3][0], pages[1][3][0]
    assert pages[0][0] == 0x02 and pages[-1][0] == 0x04 and [p[2] for p in pages] == list(range(len(pages)))
    magic, version, channels, pre_skip, rate, gain, family = struct.unpack("<8sBBHIhB", head)
    assert (magic, version, channels, pre_skip, rate, gain, family) == (b"OpusHead", 1, 1, 0, 48000, 0, 0)
    assert tags.startswith(b"OpusTags")
    audio = pages[2:]
    assert [p[3][0] for p in audio] == [p.payload for p in packets]
    first = packets[0].timestamp
    assert [p[1] for p in audio] == [p.timestamp - first + opus_samples(p.payload) for p in packets]
    with av.open(io.BytesIO(data), format="ogg") as container:
        decoded = sum(frame.samples for frame in container.decode(audio=0))
    assert decoded == audio[-1][1]


def test_opus_gap_is_filled_with_empty_frames() -> None:
    """3 lost 20 ms packets: one code 3 packet of 3 zero-length frames (RFC 6716 section 3.2.5),
    which libopus conceals."""
    packets = rtp_packets("wswiki--sip-rtp-opus.pcap")[:10]
    pages = ogg_pages(ogg_opus([*packets[:3], *packets[6:]]))[2:]
    fill = [p for p in pages if p[3][0] not in {q.payload for q in packets}]
    assert [p[3][0] for p in fill] == [bytes([packets[2].payload[0] & 0xFC | 3, 3])]
    assert [p[1] for p in pages] == [960 * (k + 1) for k in range(3)] + [960 * (k + 1) for k in range(5, 10)]
    data = ogg_opus([*packets[:3], *packets[6:]])
    with av.open(io.BytesIO(data), format="ogg") as container:  # libopus conceals the gap
        assert sum(frame.samples for frame in container.decode(audio=0)) == 960 * 10


def test_hostile_opus_gaps_fill_120_ms_pages_up_to_the_file_limit() -> None:
    """300 CELT 2.5 ms packets a minute apart (/tmp/review's opus-gap.pcap) made 7.2 million
    TOC-only pages (208 MB): now 120 ms code 3 packets, MAX_SILENCE_SECONDS in all."""
    made = ogg_opus_file(_jumping(300, 48000, b"\x80" + b"\0" * 40, None))
    pages = ogg_pages(made.data)[2:]
    fill = [p[3][0] for p in pages if p[3][0][:1] != b"\x80"]
    assert {f[0] for f in fill} == {0x83} and all(len(f) == 2 and 0 < f[1] <= 48 for f in fill)
    assert sum(opus_samples(f) for f in fill) == MAX_SILENCE_SECONDS * 48000
    # 120 ms packets (48 frames of 2.5 ms), and at most one shorter packet a gap.
    assert len(fill) <= MAX_SILENCE_SECONDS * 1000 // OPUS_FILL_MS + 11 and len(pages) == 300 + len(fill)
    assert pages[-1][1] == 300 * 120 + MAX_SILENCE_SECONDS * 48000
    assert made.note and made.note.startswith("289 RTP timestamp gaps")
    with av.open(io.BytesIO(made.data), format="ogg") as container:
        assert sum(frame.samples for frame in container.decode(audio=0)) == pages[-1][1]
    timed = ogg_opus_file(_jumping(300, 48000, b"\x80" + b"\0" * 40, 0.0001))
    filled = sum(opus_samples(p[3][0]) for p in ogg_pages(timed.data)[2:]) - 300 * 120
    assert 0 < filled <= (299 * 0.0001 + JITTER_SECONDS) * 48000 and timed.note


def test_audio_file_names_and_errors() -> None:
    assert audio_file("PCMU", [AudioPacket(1, 0, b"\xff")])[:4] == b"RIFF"
    assert audio_file("opus", [AudioPacket(1, 0, b"\x78\x00")])[:4] == b"OggS"
    with pytest.raises(AudioError):
        audio_file("VP8", [])
    assert ogg_pages(ogg_opus([]))[1][3][0].startswith(b"OpusTags")


TIMES = st.one_of(st.none(), st.floats(-1e10, 1e10, allow_nan=False, allow_infinity=False))


@given(
    st.sampled_from(["PCMU", "PCMA", "L16", "G722", "opus"]),
    st.lists(
        st.tuples(st.integers(0, 65535), st.integers(0, 2**32 - 1), st.binary(max_size=40), TIMES), max_size=8
    ),
)
def test_random_packets_never_raise(encoding: str, rows: list[tuple[int, int, bytes, float | None]]) -> None:
    """Any packets and capture times: a file, its silence within the file's budget."""
    packets = [AudioPacket(seq, ts % 5000, payload, time) for seq, ts, payload, time in rows]
    data = audio_file(encoding, packets, channels=2 if encoding == "L16" else 1)
    assert data[:4] in (b"RIFF", b"OggS")
    wild = [AudioPacket(seq, ts, payload, time) for seq, ts, payload, time in rows]
    made = render(encoding, wild)
    assert len(made.data) <= 1000 + sum(len(p.payload) + 28 for p in wild) + MAX_SILENCE_SECONDS * 8000


def test_files_land_on_disk(tmp_path: Path) -> None:
    out = tmp_path / "a.wav"
    out.write_bytes(wav("PCMA", rtp_packets("sipp--g711a.pcap", "--enable-heuristic", "rtp_udp")))
    with av.open(str(out)) as container:
        assert container.streams.audio[0].codec_context.name == "pcm_alaw"
