"""Audio files from RTP payloads, without re-encoding: bytes in, file bytes out (no I/O here).

G.711 (PCMU, PCMA) goes to WAV as it is (WAVE_FORMAT_MULAW 7, WAVE_FORMAT_ALAW 6), L16 to
16-bit PCM WAV (RFC 3551 section 4.5.11: network byte order, swapped to WAV's little endian),
G.722 to WAV with format tag 0x028F (WAVE_FORMAT_G722_ADPCM): its ADPCM codewords are kept, not
decoded. No dependency of ours decodes G.722, a decoder by hand in Python would take seconds per
minute of call, and libavformat (so ffmpeg, VLC, Audacity's import) maps the tag to its
bit-exact ITU decoder (tested): the file is the call's audio as sent, as for G.711.

Opus goes to Ogg Opus (RFC 7845): an OpusHead page, an OpusTags page, then one RTP payload per
Ogg packet with granule positions from the RTP timestamps (RFC 7587: Opus's RTP clock is 48 kHz,
the granule position's rate).

Packets are put in RTP sequence order (duplicates dropped) and placed by RTP timestamp. A gap (lost
packets, or silence suppression's pause) is filled as RFC 3551 and RFC 7845 allow: with silence
for G.711 and L16 (mu-law 0xFF, A-law 0xD5, PCM 0), with zero codewords for G.722, and for Opus
with code 3 packets of up to 120 ms of zero-length frames in the last packet's configuration
(which decoders conceal as lost: the gap repair of RFC 7845 section 4.1).

RTP timestamps are the sender's word, so fill is bounded (`SilenceBudget`): a gap gets no more
than the time that passed on the wire between its two packets (their capture times, when known)
plus JITTER_SECONDS, and never more than MAX_GAP_SECONDS; a file gets no more silence in all than
MAX_SILENCE_SECONDS, nor than the stream lasted in the capture. What is cut shortens the file's
timeline (later audio moves earlier) and is said in `AudioFile.note`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .codecs import opus

MAX_GAP_SECONDS = 60
"""Longest silence filled into one gap: a timestamp jump beyond it (a new talk spurt after a long
hold, a wrong timestamp) is filled this much and no more."""
MAX_SILENCE_SECONDS = 600
"""Silence filled into one file in all: with MAX_GAP_SECONDS alone, every packet of a hostile
stream could jump its timestamp by a minute (1,000 packets of a 230 KB capture made a 480 MB WAV)."""
JITTER_SECONDS = 1.0
"""Slack over the capture-time gap a timestamp gap may claim: network jitter and a jitter buffer's
late release make arrival gaps shorter than the timestamp gap they carry."""
MAX_SILENCE_BYTES = 128 << 20
"""Silence bytes filled into one WAV in all (10 minutes of 48 kHz stereo L16 is 115 MB): the clock
and channel count are signaling's word (SDP rtpmap), and silence bytes scale with them."""
MAX_CLOCK = 384_000
"""Highest RTP clock (samples a second) a WAV is written for."""
MAX_CHANNELS = 32
"""Most channels (SDP rtpmap's encoding parameter) a WAV is written for."""
OPUS_FILL_MS = 120
"""Longest Opus packet (RFC 6716 section 3.2.5): a gap is filled with as few packets as that allows."""
WAV_FORMATS = {"pcmu": 7, "pcma": 6, "l16": 1, "g722": 0x028F}
"""WAVE format tags: WAVE_FORMAT_MULAW, WAVE_FORMAT_ALAW, WAVE_FORMAT_PCM, WAVE_FORMAT_G722_ADPCM."""
SILENCE = {"pcmu": b"\xff", "pcma": b"\xd5", "l16": b"\x00", "g722": b"\x00"}
"""One byte of silence of each format (mu-law and A-law encode 0 as 0xFF and 0xD5)."""
OPUS_RATE = 48000
OGG_MAX_SEGMENTS = 255
OPUS_VENDOR = b"protoscope (RTP payloads, not re-encoded)"
AUDIO_ENCODINGS = frozenset({*WAV_FORMATS, "opus"})


class AudioError(ValueError):
    """The packets cannot make the file asked for (an encoding this module does not write)."""


@dataclass(frozen=True, slots=True)
class AudioPacket:
    """One RTP packet of the stream: its sequence number, timestamp and payload in the clear."""

    seq: int
    timestamp: int
    payload: bytes
    arrival: float | None = None
    """Capture time, seconds (any epoch): bounds the silence a timestamp gap may claim."""


@dataclass(frozen=True, slots=True)
class AudioFile:
    """A file's bytes, and a one-line note when gaps were filled shorter than their timestamps say."""

    data: bytes
    note: str | None = None


@dataclass(slots=True)
class SilenceBudget:
    """How much silence the gaps of one file may still get, in RTP clock ticks."""

    clock: int
    left: int
    cut_gaps: int = 0
    cut_ticks: int = 0

    @classmethod
    def of(cls, packets: Sequence[AudioPacket], clock: int, tick_bytes: int = 0) -> SilenceBudget:
        """MAX_SILENCE_SECONDS, or the stream's span of capture times (plus jitter) if shorter;
        for a file of `tick_bytes` bytes a tick, no more than MAX_SILENCE_BYTES either."""
        seconds = float(MAX_SILENCE_SECONDS)
        arrivals = [p.arrival for p in packets if p.arrival is not None]
        if arrivals:
            seconds = min(seconds, max(arrivals) - min(arrivals) + JITTER_SECONDS)
        ticks = int(seconds * clock)
        return cls(clock, min(ticks, MAX_SILENCE_BYTES // tick_bytes) if tick_bytes else ticks)

    def fill(self, gap: int, before: AudioPacket | None, after: AudioPacket) -> int:
        """Ticks of silence to put in a gap of `gap` ticks between packets `before` and `after`."""
        bound = MAX_GAP_SECONDS * self.clock
        if before is not None and before.arrival is not None and after.arrival is not None:
            wire = max(0.0, after.arrival - before.arrival + JITTER_SECONDS)
            bound = min(bound, int(min(wire, MAX_GAP_SECONDS) * self.clock))
        n = max(0, min(gap, bound, self.left))
        self.left -= n
        if n < gap:
            self.cut_gaps += 1
            self.cut_ticks += gap - n
        return n

    @property
    def note(self) -> str | None:
        """One line for the user when a limit was hit, else None."""
        if not self.cut_gaps:
            return None
        return (
            f"{self.cut_gaps} RTP timestamp gaps filled short, {self.cut_ticks / self.clock:.1f} s of silence"
            f" left out (a gap gets at most the capture time between its packets and {MAX_GAP_SECONDS} s,"
            f" a file at most {MAX_SILENCE_SECONDS} s and the stream's capture time)"
        )


def in_order(packets: Iterable[AudioPacket]) -> list[AudioPacket]:
    """By extended sequence number (RFC 3550 appendix A.1, wraps counted), each number once."""
    out: dict[int, AudioPacket] = {}
    top = -1
    for p in packets:
        if top < 0:
            ext = p.seq
        else:
            base, highest = top & ~0xFFFF, top
            candidates = (base - 0x10000 + p.seq, base + p.seq, base + 0x10000 + p.seq)
            ext = min(candidates, key=lambda c: abs(c - highest))
        top = max(top, ext)
        out.setdefault(ext, p)
    return [out[k] for k in sorted(out)]


def audio_file(encoding: str, packets: Iterable[AudioPacket], clock: int = 8000, channels: int = 1) -> bytes:
    """The file for `encoding` (an RTP encoding name): WAV, or Ogg Opus for "opus"."""
    return render(encoding, packets, clock, channels).data


def render(encoding: str, packets: Iterable[AudioPacket], clock: int = 8000, channels: int = 1) -> AudioFile:
    """As `audio_file`, with the note saying when gaps were filled short."""
    name = encoding.lower()
    if name == "opus":
        return ogg_opus_file(packets)
    if name not in WAV_FORMATS:
        raise AudioError(f"{encoding} is not an audio encoding this export writes")
    return wav_file(name, packets, clock, channels)


def suffix(encoding: str) -> str:
    """The file name suffix of what `audio_file` writes for `encoding`."""
    return ".opus" if encoding.lower() == "opus" else ".wav"


def wav(encoding: str, packets: Iterable[AudioPacket], clock: int = 8000, channels: int = 1) -> bytes:
    """A WAV file of the payloads, gaps filled with silence. `clock` is the RTP clock (G.722's is
    8000 while it samples at 16 kHz, RFC 3551 section 4.5.2); `channels` from signaling (L16)."""
    return wav_file(encoding, packets, clock, channels).data


def wav_file(
    encoding: str, packets: Iterable[AudioPacket], clock: int = 8000, channels: int = 1
) -> AudioFile:
    """As `wav`, with the note of `SilenceBudget`."""
    name = encoding.lower()
    tag = WAV_FORMATS[name]
    if not (0 < clock <= MAX_CLOCK and 0 < channels <= MAX_CHANNELS):
        raise AudioError(f"{clock} Hz and {channels} channels is not audio this export writes")
    width = 2 if name == "l16" else 1
    frame = width * channels  # bytes per RTP timestamp tick
    ordered = in_order(packets)
    budget = SilenceBudget.of(ordered, clock, frame)
    data = bytearray()
    start = ordered[0].timestamp if ordered else 0
    skipped = 0  # ticks of gaps left unfilled: later packets move that much earlier
    before: AudioPacket | None = None
    for p in ordered:
        at = (p.timestamp - start) % 2**32 - skipped
        gap = at - len(data) // frame
        if gap > 0:
            n = budget.fill(gap, before, p)
            skipped += gap - n
            data += SILENCE[name] * (n * frame)
        payload = p.payload[: len(p.payload) // frame * frame]
        data += _swap16(payload) if name == "l16" else payload
        before = p
    rate = 16000 if name == "g722" else clock
    bits = 16 if name == "l16" else 4 if name == "g722" else 8
    align = channels * (2 if name == "l16" else 1)
    byte_rate = rate * channels * bits // 8
    if tag == 1:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, byte_rate, align, bits)
        chunks = [(b"fmt ", fmt)]
    else:  # non-PCM formats: an 18-byte fmt (cbSize 0) and a fact chunk with the sample count
        fmt = struct.pack("<HHIIHHH", tag, channels, rate, byte_rate, align, bits, 0)
        samples = len(data) * (2 if name == "g722" else 1) // channels
        chunks = [(b"fmt ", fmt), (b"fact", struct.pack("<I", samples))]
    chunks.append((b"data", bytes(data)))
    body = b"WAVE" + b"".join(
        cid + struct.pack("<I", len(c)) + c + (b"\0" if len(c) % 2 else b"") for cid, c in chunks
    )
    return AudioFile(b"RIFF" + struct.pack("<I", len(body)) + body, budget.note)


def _swap16(payload: bytes) -> bytes:
    """16-bit samples from network to little-endian byte order."""
    out = bytearray(payload)
    out[0::2], out[1::2] = payload[1::2], payload[0::2]
    return bytes(out)


def opus_samples(payload: bytes) -> int:
    """48 kHz samples an Opus packet decodes to: frames times the TOC's frame duration."""
    _, facts = opus(payload, 0)
    if facts.frame_ms is None or facts.frames is None:
        return 0
    return int(facts.frames * facts.frame_ms * OPUS_RATE / 1000)


def ogg_opus(packets: Iterable[AudioPacket], serial: int = 0x70726F74) -> bytes:
    """An Ogg Opus file (RFC 7845) of the RTP payloads: the granule position of each page is the
    end of its packet in 48 kHz samples since the first packet (RTP timestamp offset plus the
    packet's own duration), pre-skip 0 (RTP carries no encoder delay)."""
    return ogg_opus_file(packets, serial).data


def ogg_opus_file(packets: Iterable[AudioPacket], serial: int = 0x70726F74) -> AudioFile:
    """As `ogg_opus`, with the note of `SilenceBudget`."""
    ordered = [p for p in in_order(packets) if p.payload]
    stereo = any(p.payload[0] & 0x04 for p in ordered)
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 2 if stereo else 1, 0, OPUS_RATE, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", len(OPUS_VENDOR)) + OPUS_VENDOR + struct.pack("<I", 0)
    pages = [_page(head, 0, serial, 0, 0x02), _page(tags, 0, serial, 1, 0)]
    budget = SilenceBudget.of(ordered, OPUS_RATE)
    start = ordered[0].timestamp if ordered else 0
    end = 0  # granule position reached so far
    skipped = 0  # samples of gaps left unfilled: later packets move that much earlier
    before: AudioPacket | None = None
    for p in ordered:
        at = (p.timestamp - start) % 2**32 - skipped
        if at > end and end and before is not None:
            gap = at - end
            n = budget.fill(gap, before, p)
            skipped += gap - n
            filled = end
            for packet, samples in _opus_fill(before.payload[0], n):
                filled += samples
                pages.append(_page(packet, filled, serial, len(pages), 0))
            at -= gap - n  # the granule position skips what is left of n (under one frame)
        end = max(end, at) + opus_samples(p.payload)
        pages.append(_page(p.payload, end, serial, len(pages), 0))
        before = p
    if len(pages) > 2:
        last = pages[-1]
        pages[-1] = _with_flags(last, 0x04)
    return AudioFile(b"".join(pages), budget.note)


def _opus_fill(toc: int, samples: int) -> list[tuple[bytes, int]]:
    """Code 3 packets (RFC 6716 section 3.2.5: CBR, no padding, no frame bytes) of zero-length
    frames in the configuration of `toc`, up to 120 ms each, making whole frames of `samples`."""
    frame = opus_samples(bytes([toc & 0xFC]))
    if not frame:
        return []
    most = OPUS_FILL_MS * OPUS_RATE // 1000 // frame
    frames = samples // frame
    out = []
    while frames:
        m = min(most, frames)
        out.append((bytes([toc & 0xFC | 3, m]), m * frame))
        frames -= m
    return out


def _page(packet: bytes, granule: int, serial: int, sequence: int, flags: int) -> bytes:
    """One Ogg page (RFC 3533) holding one whole packet; its lacing values say where it ends (a
    last value of 255 is followed by a 0, so a multiple of 255 bytes still ends on this page)."""
    lacing = [255] * (len(packet) // 255) + [len(packet) % 255]
    if len(lacing) > OGG_MAX_SEGMENTS:
        raise AudioError(f"a packet of {len(packet)} bytes does not fit one Ogg page")
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, serial, sequence, 0, len(lacing))
    page = header + bytes(lacing) + packet
    return page[:22] + struct.pack("<I", ogg_crc(page)) + page[26:]


def _with_flags(page: bytes, flags: int) -> bytes:
    """The page with `flags` added to its header type (the CRC computed again)."""
    page = page[:5] + bytes([page[5] | flags]) + page[6:22] + b"\0\0\0\0" + page[26:]
    return page[:22] + struct.pack("<I", ogg_crc(page)) + page[26:]


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else r << 1
        table.append(r & 0xFFFFFFFF)
    return table


CRC_TABLE = _crc_table()
"""Ogg's CRC-32: polynomial 0x04C11DB7, initial 0, no reflection, no final XOR (RFC 3533 6)."""


def ogg_crc(page: bytes) -> int:
    """The CRC of an Ogg page whose checksum field (bytes 22-25) holds zeros."""
    crc = 0
    for byte in page:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ CRC_TABLE[(crc >> 24) ^ byte]
    return crc
