"""Codec facts from RTP payloads in the clear: what a stream carries without decoding media.

Opus TOC byte (RFC 6716 section 3.1), VP8 payload descriptor and payload header (RFC 7741
sections 4.2, 4.3), VP9 payload descriptor (RFC 9628 section 4.2), H.264 NAL unit headers with
STAP-A and FU-A (RFC 6184 section 5) and RTX's original sequence number (RFC 4588 section 4).
The encoding name comes from signaling (`rtp.encoding.<pt>` hints) or the static payload type.
Each reader takes a payload and where it starts in the packet (for the fields' spans) and gives the
fields of the detail tree, named as Wireshark's opus, vp8 and h264 dissectors name them (VP9 and
RTX, which Wireshark 4.0 does not dissect, get names in the same style), and the typed facts.
A payload too short for what its first bytes announce gives the fields read so far and facts
with `truncated` set, never an exception.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from protoscope.decoders.api import Field, FieldInfo

OPUS_BANDWIDTHS = ("NB", "MB", "WB", "SWB", "FB")
"""Narrowband 4 kHz, medium-band 6, wideband 8, super-wideband 12, fullband 20 (RFC 6716 2)."""
H264_NAL_TYPES = {
    1: "non-IDR slice",
    5: "IDR slice",
    6: "SEI",
    7: "SPS",
    8: "PPS",
    9: "access unit delimiter",
    24: "STAP-A",
    25: "STAP-B",
    26: "MTAP16",
    27: "MTAP24",
    28: "FU-A",
    29: "FU-B",
}
H264_IDR = 5
MAX_STAP_UNITS = 64
"""NAL units read from one STAP-A (an MTU holds at most a few hundred tiny ones)."""


@dataclass(frozen=True, slots=True)
class CodecFacts:
    """What one RTP payload says about its codec's frames."""

    codec: str
    """Lower-case encoding name: "opus", "vp8", "vp9", "h264", "rtx"."""
    keyframe: bool = False
    """The packet carries the start of a keyframe (VP8 P bit 0, VP9 P bit 0 on a frame's first
    packet, an H.264 IDR slice that starts here)."""
    frame_start: bool = False
    """The packet starts a frame (VP8 S with partition 0, VP9 B, H.264 non-fragment or FU-A S)."""
    picture_id: int | None = None
    nal_types: tuple[int, ...] = ()
    """H.264: the types of the NAL units the packet carries or starts (FU-A: the fragmented one)."""
    mode: str | None = None
    """Opus: SILK, Hybrid or CELT."""
    bandwidth: str | None = None
    frame_ms: float | None = None
    """Opus: duration of each frame of the packet."""
    stereo: bool | None = None
    frame_count_code: int | None = None
    """Opus: the TOC's c, 0 one frame, 1 two equal, 2 two different, 3 arbitrary."""
    frames: int | None = None
    """Opus: frames in the packet (the code 3 count byte's M when c is 3)."""
    original_seq: int | None = None
    """RTX: the sequence number of the packet it retransmits."""
    width: int | None = None
    height: int | None = None
    """VP8 keyframes: the picture size their header gives."""
    truncated: bool = False


Reader = Callable[[bytes, int], tuple[list[Field], CodecFacts]]


def opus(payload: bytes, at: int) -> tuple[list[Field], CodecFacts]:
    if not payload:
        return [], CodecFacts("opus", truncated=True)
    toc = payload[0]
    config, stereo, code = toc >> 3, bool(toc & 0x04), toc & 0x03
    sizes: tuple[float, ...]
    if config < 12:
        mode, bandwidth, sizes = "SILK", OPUS_BANDWIDTHS[config // 4], (10.0, 20.0, 40.0, 60.0)
    elif config < 16:
        mode, bandwidth, sizes = "Hybrid", OPUS_BANDWIDTHS[3 + (config - 12) // 2], (10.0, 20.0)
    else:
        mode, sizes = "CELT", (2.5, 5.0, 10.0, 20.0)
        bandwidth = ("NB", "WB", "SWB", "FB")[(config - 16) // 4]
    frame_ms = sizes[config % len(sizes)]
    fields = [
        Field("opus.TOC.config", config, (at, at + 1)),
        Field("opus.TOC.s", stereo, (at, at + 1)),
        Field("opus.TOC.c", code, (at, at + 1)),
        Field("opus.mode", mode, (at, at + 1)),
        Field("opus.bandwidth", bandwidth, (at, at + 1)),
        Field("opus.frame_duration", frame_ms, (at, at + 1)),
    ]
    frames: int | None = (1, 2, 2, None)[code]
    truncated = False
    if code == 3:
        if len(payload) < 2:
            truncated = True
        else:
            frames = payload[1] & 0x3F
            fields += [
                Field("opus.FC.v", bool(payload[1] & 0x80), (at + 1, at + 2)),
                Field("opus.FC.p", bool(payload[1] & 0x40), (at + 1, at + 2)),
                Field("opus.FC.m", frames, (at + 1, at + 2)),
            ]
    facts = CodecFacts(
        "opus",
        mode=mode,
        bandwidth=bandwidth,
        frame_ms=frame_ms,
        stereo=stereo,
        frame_count_code=code,
        frames=frames,
        truncated=truncated,
    )
    return fields, facts


def _picture_id(payload: bytes, pos: int, at: int, name: str, fields: list[Field]) -> tuple[int | None, int]:
    """A 7- or 15-bit picture id (M bit first, RFC 7741 / RFC 9628): its value and the next offset."""
    if pos >= len(payload):
        return None, pos
    if payload[pos] & 0x80:
        if pos + 2 > len(payload):
            return None, len(payload)
        pid = int.from_bytes(payload[pos : pos + 2], "big") & 0x7FFF
        fields.append(Field(name, pid, (at + pos, at + pos + 2)))
        return pid, pos + 2
    fields.append(Field(name, payload[pos] & 0x7F, (at + pos, at + pos + 1)))
    return payload[pos] & 0x7F, pos + 1


def vp8(payload: bytes, at: int) -> tuple[list[Field], CodecFacts]:
    """RFC 7741: the descriptor (X R N S R PID, then I L T K, picture id, TL0PICIDX, TID/Y/KEYIDX)
    and, on the first packet of partition 0, the payload header whose P bit is 0 on keyframes."""
    if not payload:
        return [], CodecFacts("vp8", truncated=True)
    b0 = payload[0]
    x, n, s, part = bool(b0 & 0x80), bool(b0 & 0x20), bool(b0 & 0x10), b0 & 0x0F
    fields = [
        Field("vp8.pld.x", x, (at, at + 1)),
        Field("vp8.pld.n", n, (at, at + 1)),
        Field("vp8.pld.s", s, (at, at + 1)),
        Field("vp8.pld.partid", part, (at, at + 1)),
    ]
    pos, pid = 1, None
    if x:
        if len(payload) < 2:
            return fields, CodecFacts("vp8", truncated=True)
        b1 = payload[1]
        i, ll, t, k = bool(b1 & 0x80), bool(b1 & 0x40), bool(b1 & 0x20), bool(b1 & 0x10)
        fields += [
            Field("vp8.pld.i", i, (at + 1, at + 2)),
            Field("vp8.pld.l", ll, (at + 1, at + 2)),
            Field("vp8.pld.t", t, (at + 1, at + 2)),
            Field("vp8.pld.k", k, (at + 1, at + 2)),
        ]
        pos = 2
        if i:
            pid, pos = _picture_id(payload, pos, at, "vp8.pld.pictureid", fields)
        if ll:
            if pos < len(payload):
                fields.append(Field("vp8.pld.tl0picidx", payload[pos], (at + pos, at + pos + 1)))
            pos += 1
        if t or k:
            if pos < len(payload):
                b = payload[pos]
                if t:
                    fields.append(Field("vp8.pld.tid", b >> 6, (at + pos, at + pos + 1)))
                    fields.append(Field("vp8.pld.y", bool(b & 0x20), (at + pos, at + pos + 1)))
                if k:
                    fields.append(Field("vp8.pld.keyidx", b & 0x1F, (at + pos, at + pos + 1)))
            pos += 1
    if pos >= len(payload):
        return fields, CodecFacts("vp8", picture_id=pid, truncated=True)
    start = s and part == 0
    keyframe, width, height = False, None, None
    if start:
        header = payload[pos]
        keyframe = not header & 0x01  # P: 0 is a key frame (RFC 7741 section 4.3)
        fields += [
            Field("vp8.hdr.frametype", not keyframe, (at + pos, at + pos + 1)),
            Field("vp8.hdr.show", bool(header & 0x10), (at + pos, at + pos + 1)),
        ]
        # A key frame's 3-byte frame tag, start code 9d 01 2a, then 14-bit width and height
        # (RFC 6386 section 9.1).
        if keyframe and len(payload) >= pos + 10 and payload[pos + 3 : pos + 6] == b"\x9d\x01\x2a":
            width = int.from_bytes(payload[pos + 6 : pos + 8], "little") & 0x3FFF
            height = int.from_bytes(payload[pos + 8 : pos + 10], "little") & 0x3FFF
            fields += [
                Field("vp8.keyframe.width", width, (at + pos + 6, at + pos + 8)),
                Field("vp8.keyframe.height", height, (at + pos + 8, at + pos + 10)),
            ]
    facts = CodecFacts("vp8", keyframe, start, pid, width=width, height=height)
    return fields, facts


def vp9(payload: bytes, at: int) -> tuple[list[Field], CodecFacts]:
    """RFC 9628 section 4.2: I P L F B E V Z, picture id, layer indices, reference indices in
    flexible mode. A keyframe: a frame's first packet (B) that is not inter-predicted (P = 0), on
    the base spatial layer when layer indices are present."""
    if not payload:
        return [], CodecFacts("vp9", truncated=True)
    b0 = payload[0]
    bits = {name: bool(b0 & (0x80 >> k)) for k, name in enumerate("IPLFBEVZ")}
    fields = [Field(f"vp9.pld.{name.lower()}", value, (at, at + 1)) for name, value in bits.items()]
    pos, pid, sid = 1, None, 0
    if bits["I"]:
        pid, pos = _picture_id(payload, pos, at, "vp9.pld.pictureid", fields)
        if pid is None:
            return fields, CodecFacts("vp9", truncated=True)
    if bits["L"]:
        if pos >= len(payload):
            return fields, CodecFacts("vp9", picture_id=pid, truncated=True)
        b = payload[pos]
        sid = b >> 1 & 0x07
        fields += [
            Field("vp9.pld.tid", b >> 5, (at + pos, at + pos + 1)),
            Field("vp9.pld.u", bool(b & 0x10), (at + pos, at + pos + 1)),
            Field("vp9.pld.sid", sid, (at + pos, at + pos + 1)),
            Field("vp9.pld.d", bool(b & 0x01), (at + pos, at + pos + 1)),
        ]
        pos += 1 if bits["F"] else 2  # non-flexible mode adds TL0PICIDX
    keyframe = bits["B"] and not bits["P"] and sid == 0
    facts = CodecFacts("vp9", keyframe, bits["B"], pid, truncated=pos > len(payload))
    return fields, facts


def h264(payload: bytes, at: int) -> tuple[list[Field], CodecFacts]:
    """RFC 6184: a single NAL unit (types 1-23), a STAP-A (24: 16-bit sizes, NAL units) or an
    FU-A (28: FU indicator, FU header with S/E bits and the fragmented unit's type)."""
    if not payload:
        return [], CodecFacts("h264", truncated=True)
    nal = payload[0]
    kind = nal & 0x1F
    fields = [
        Field("h264.f", bool(nal & 0x80), (at, at + 1)),
        Field("h264.nal_nri", nal >> 5 & 0x03, (at, at + 1)),
        Field("h264.nal_unit_hdr", kind, (at, at + 1)),
    ]
    types: list[int] = []
    start, truncated = True, False
    if kind == 24:
        pos = 1
        while pos < len(payload) and len(types) < MAX_STAP_UNITS:
            if pos + 3 > len(payload):
                truncated = True
                break
            size = int.from_bytes(payload[pos : pos + 2], "big")
            head = payload[pos + 2]
            inner = head & 0x1F
            span = (at + pos + 2, at + pos + 3)
            fields += [  # each aggregated unit's header, as Wireshark shows it
                Field("h264.nalu_size", size, (at + pos, at + pos + 2)),
                Field("h264.f", bool(head & 0x80), span),
                Field("h264.nal_nri", head >> 5 & 0x03, span),
                Field("h264.nal_unit_hdr", inner, span),
            ]
            types.append(inner)
            if size == 0 or pos + 2 + size > len(payload):
                truncated = size != 0 or truncated
                break
            pos += 2 + size
    elif kind in (28, 29):
        if len(payload) < 2:
            return fields, CodecFacts("h264", truncated=True)
        fu = payload[1]
        start = bool(fu & 0x80)
        fields += [
            Field("h264.start.bit", start, (at + 1, at + 2)),
            Field("h264.end.bit", bool(fu & 0x40), (at + 1, at + 2)),
            Field("h264.forbidden.bit", fu >> 5 & 1, (at + 1, at + 2)),
            Field("h264.nal_unit_type", fu & 0x1F, (at + 1, at + 2)),
        ]
        types.append(fu & 0x1F)
    else:
        fields.append(Field("h264.nal_unit_type", kind, (at, at + 1)))
        types.append(kind)
    keyframe = start and H264_IDR in types
    return fields, CodecFacts("h264", keyframe, start, nal_types=tuple(types), truncated=truncated)


def rtx(payload: bytes, at: int) -> tuple[list[Field], CodecFacts]:
    """RFC 4588 section 4: the original sequence number in the first 2 bytes of the payload."""
    if len(payload) < 2:
        return [], CodecFacts("rtx", truncated=True)
    osn = int.from_bytes(payload[:2], "big")
    return [Field("rtx.osn", osn, (at, at + 2))], CodecFacts("rtx", original_seq=osn)


READERS: dict[str, Reader] = {"opus": opus, "vp8": vp8, "vp9": vp9, "h264": h264, "rtx": rtx}
"""Encoding name (lower case, as SDP rtpmap gives it) -> payload reader."""

CODEC_FIELDS: tuple[FieldInfo, ...] = (
    FieldInfo("opus.TOC.config", "TOC.config", "uint"),
    FieldInfo("opus.TOC.s", "TOC.S bit", "bool", "Stereo"),
    FieldInfo("opus.TOC.c", "TOC.C bits", "uint", "Frame count code"),
    FieldInfo("opus.FC.v", "Frame Count.v bit", "bool", "Variable bitrate"),
    FieldInfo("opus.FC.p", "Frame Count.p bit", "bool", "Padding"),
    FieldInfo("opus.FC.m", "Frame Count.m", "uint"),
    FieldInfo("opus.mode", "Mode", "string", "SILK, Hybrid or CELT, from the TOC config"),
    FieldInfo("opus.bandwidth", "Bandwidth", "string", "NB, MB, WB, SWB or FB"),
    FieldInfo("opus.frame_duration", "Frame duration", "float", "Milliseconds"),
    FieldInfo("vp8.pld.x", "X bit", "bool"),
    FieldInfo("vp8.pld.n", "N bit", "bool", "Non-reference frame"),
    FieldInfo("vp8.pld.s", "S bit", "bool", "Start of a partition"),
    FieldInfo("vp8.pld.partid", "2nd R bit and Part Id", "uint"),
    FieldInfo("vp8.pld.i", "I bit", "bool"),
    FieldInfo("vp8.pld.l", "L bit", "bool"),
    FieldInfo("vp8.pld.t", "T bit", "bool"),
    FieldInfo("vp8.pld.k", "K bit", "bool"),
    FieldInfo("vp8.pld.pictureid", "Picture ID", "uint"),
    FieldInfo("vp8.pld.tl0picidx", "Temporal layer zero Picture Index (TL0PICIDX)", "uint"),
    FieldInfo("vp8.pld.tid", "Temporal layer Index (TID)", "uint"),
    FieldInfo("vp8.pld.y", "1 layer sync bit (Y)", "bool"),
    FieldInfo("vp8.pld.keyidx", "Temporal Key Frame Index (KEYIDX)", "uint"),
    FieldInfo("vp8.hdr.frametype", "frametype", "bool", "Set on interframes, clear on key frames"),
    FieldInfo("vp8.hdr.show", "Show bit", "bool"),
    FieldInfo("vp8.keyframe.width", "Width", "uint"),
    FieldInfo("vp8.keyframe.height", "Height", "uint"),
    FieldInfo("vp9.pld.i", "I bit", "bool", "Picture ID present"),
    FieldInfo("vp9.pld.p", "P bit", "bool", "Inter-picture predicted"),
    FieldInfo("vp9.pld.l", "L bit", "bool", "Layer indices present"),
    FieldInfo("vp9.pld.f", "F bit", "bool", "Flexible mode"),
    FieldInfo("vp9.pld.b", "B bit", "bool", "Start of a frame"),
    FieldInfo("vp9.pld.e", "E bit", "bool", "End of a frame"),
    FieldInfo("vp9.pld.v", "V bit", "bool", "Scalability structure present"),
    FieldInfo("vp9.pld.z", "Z bit", "bool", "Not a reference for upper spatial layers"),
    FieldInfo("vp9.pld.pictureid", "Picture ID", "uint"),
    FieldInfo("vp9.pld.tid", "Temporal layer ID", "uint"),
    FieldInfo("vp9.pld.u", "Switching up point", "bool"),
    FieldInfo("vp9.pld.sid", "Spatial layer ID", "uint"),
    FieldInfo("vp9.pld.d", "Inter-layer dependency", "bool"),
    FieldInfo("h264.f", "F bit", "bool"),
    FieldInfo("h264.nal_nri", "Nal_ref_idc (NRI)", "uint"),
    FieldInfo("h264.nal_unit_hdr", "Type", "uint", "The RTP payload's NAL unit type", strings=H264_NAL_TYPES),
    FieldInfo("h264.start.bit", "Start bit", "bool"),
    FieldInfo("h264.end.bit", "End bit", "bool"),
    FieldInfo("h264.forbidden.bit", "Forbidden bit", "uint"),
    FieldInfo("h264.nalu_size", "NAL Unit Size", "uint"),
    FieldInfo("h264.nal_unit_type", "Nal_unit_type", "uint", strings=H264_NAL_TYPES),
    FieldInfo("rtx.osn", "Original sequence number", "uint", "RFC 4588 section 4"),
)
"""Every field the readers emit, for the RTP decoder's `fields`."""


def codec_fields(encoding: str, payload: bytes, offset: int) -> tuple[list[Field], CodecFacts | None]:
    """The fields and facts of `payload` (starting at `offset` in its packet) for the encoding
    signaling named ("VP8", "opus", ...); ([], None) for encodings nothing here reads."""
    reader = READERS.get(encoding.lower())
    if reader is None:
        return [], None
    return reader(payload, offset)


def encoding_name(pt: int, hints: Mapping[str, str]) -> str:
    """The encoding of payload type `pt`: signaling's `rtp.encoding.<pt>` hint, else the static
    type's name (RFC 3551), else ""."""
    return hints.get(f"rtp.encoding.{pt}") or STATIC_ENCODINGS.get(pt, "")


STATIC_ENCODINGS = {0: "PCMU", 3: "GSM", 4: "G723", 8: "PCMA", 9: "G722", 10: "L16", 11: "L16", 18: "G729"}
"""RFC 3551 table 4's encoding names of the static audio payload types (L16: 10 stereo, 11 mono)."""
