"""`--export audio --stream N`: one RTP stream's audio written to a file (decoders/rtp/audio.py).

Stream N is row N (0-based) of `--report streams`: streams keyed by (SSRC, source, destination),
in the order they began. A decoding pass gathers that stream's packets with their payloads in
the clear and their capture times; the chosen stream's main audio payload type is written
(comfort noise and telephone-event packets of the same stream are left out: their gaps become
silence). A timestamp gap is filled no longer than the capture says it lasted, and a file gets
bounded silence in all (decoders/rtp/audio.py's `SilenceBudget`): `Exported.note` says when a
limit cut a gap. An error (`ExportError`, exit 2 on the command line) says when stream N does not
exist, is not audio this export writes (or not at a rate or packet size its file can hold), or is
encrypted with no key that decrypts it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from protoscope.decoders.rtp.audio import AUDIO_ENCODINGS, AudioError, AudioPacket, render, suffix
from protoscope.decoders.rtp.codecs import encoding_name
from protoscope.decoders.rtp.packets import RtpRecord

from .report.rows import analysis_rows
from .session import Session


class ExportError(Exception):
    """Why the export cannot be written: one line for the user."""


@dataclass(slots=True)
class _Stream:
    ssrc: int
    src: str
    dst: str
    packets: list[tuple[int, int, int, bytes | None, float]] = field(default_factory=list)
    """(payload type, seq, timestamp, payload or None when it is ciphertext no key opened, capture
    time)."""
    encodings: dict[int, str] = field(default_factory=dict)
    clocks: dict[int, int | None] = field(default_factory=dict)
    channels: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Exported:
    """What was written: for the command line's one-line report."""

    path: Path
    encoding: str
    packets: int
    ssrc: int
    note: str | None = None
    """One line when gaps were filled shorter than the RTP timestamps say (a limit was hit)."""


def export_audio(session: Session, stream: int, out: Path, encoding: str | None = None) -> Exported:
    """Write stream `stream` (0-based, as `--report streams` lists them) of the session to `out`.
    `encoding` names the payload's encoding ("opus", "PCMU"...) when no signaling in the capture
    did (a dynamic payload type without SDP): it then applies to the stream's every payload type.

    Two passes: the streams report's (fast, bulk) finds the stream, a decoding pass then keeps
    the payloads of that stream alone, so memory holds one stream's audio, not the capture's."""
    rows = list(analysis_rows(session, "streams"))
    if not 0 <= stream < len(rows):
        raise ExportError(f"no stream {stream} (the capture has {len(rows)} RTP streams)")
    row = rows[stream]
    s = _gather(session, (int(str(row["ssrc"])), str(row["src"]), str(row["dst"])))
    if encoding:
        named = {n for n in s.encodings.values() if n}
        if named and {n.lower() for n in named} != {encoding.lower()}:
            raise ExportError(
                f"stream {stream} (SSRC 0x{s.ssrc:08x}): the capture's signaling names it "
                f"{', '.join(sorted(named))}; --encoding is for payload types no SDP names"
            )
        s.encodings = dict.fromkeys(s.encodings, encoding)
        if encoding.lower() == "opus":
            s.clocks = dict.fromkeys(s.clocks, 48000)
    counts = Counter(pt for pt, *_ in s.packets if s.encodings.get(pt, "").lower() in AUDIO_ENCODINGS)
    if not counts:
        names = sorted({s.encodings.get(pt) or f"PT {pt}" for pt, *_ in s.packets})
        raise ExportError(
            f"stream {stream} (SSRC 0x{s.ssrc:08x}) is not audio this export writes: {', '.join(names)}"
            " (it writes PCMU, PCMA, G722, L16 and opus)"
        )
    pt = counts.most_common(1)[0][0]
    clear = [
        AudioPacket(seq, ts, payload, time)
        for kind, seq, ts, payload, time in s.packets
        if kind == pt and payload is not None
    ]
    if not clear:
        raise ExportError(
            f"stream {stream} (SSRC 0x{s.ssrc:08x}) is encrypted and no key decrypts it"
            " (give --keylog or --srtp-key)"
        )
    name = s.encodings[pt]
    kinds = {".wav": "WAV", ".opus": "Ogg Opus", ".ogg": "Ogg Opus", ".oga": "Ogg Opus"}
    written = suffix(name)
    if out.suffix.lower() in kinds and kinds[out.suffix.lower()] != kinds[written]:
        raise ExportError(
            f"stream {stream} (SSRC 0x{s.ssrc:08x}) is {name}: it is written as {kinds[written]}, "
            f"so its name should end {written}, not {out.suffix}"
        )
    try:
        made = render(name, clear, s.clocks.get(pt) or 8000, s.channels.get(pt, 1))
    except AudioError as exc:
        raise ExportError(f"stream {stream} (SSRC 0x{s.ssrc:08x}): {exc}") from None
    try:
        out.write_bytes(made.data)
    except OSError as exc:
        raise ExportError(f"cannot write {out}: {exc.strerror}") from None
    return Exported(out, name, len(clear), s.ssrc, made.note)


def _gather(session: Session, key: tuple[int, str, str]) -> _Stream:
    """The packets of stream `key` (SSRC, source, destination), with their payloads in the clear."""
    s = _Stream(*key)
    for pd in session.decode():
        for pdu in pd.pdus:
            rec = pdu.record
            ctx = pd.context
            if not isinstance(rec, RtpRecord) or ctx is None or rec.ssrc != key[0]:
                continue
            if (str(ctx.src), str(ctx.dst)) != key[1:]:
                continue
            pt = rec.payload_type
            if pt not in s.encodings:
                s.encodings[pt] = encoding_name(pt, ctx.hints)
                s.clocks[pt] = rec.clock
                s.channels[pt] = _channels(pt, ctx.hints)
            s.packets.append((pt, rec.seq, rec.timestamp, rec.payload, ctx.time))
    return s


def _channels(pt: int, hints: Mapping[str, str]) -> int:
    """Channels of L16 by the static type (RFC 3551: 10 is stereo, 11 mono) or a hint."""
    found = hints.get(f"rtp.channels.{pt}", "")
    return int(found) if found.isdigit() else 2 if pt == 10 else 1
