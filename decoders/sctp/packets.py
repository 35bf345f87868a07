"""SCTP packets (RFC 9260 section 3): the common header with its CRC32c, and the walk over the
chunks, each read by its parser (chunks.py) into a detail tree named as Wireshark's packet-sctp.c
names it, with the facts the decoder goes on with.

By hand: the Python SCTP stacks (aiortc, pysctp) are endpoints that drop what they do not use; an
inspector keeps every byte (unknown chunks and parameters by the action their high bits ask for).
The CRC32c comes from google-crc32c (C, and aiortc's own dependency): 1.8 us a packet.
"""

from __future__ import annotations

import google_crc32c

from protoscope.decoders.api import Field, Finding

from . import names as nm
from .chunks import PARSERS
from .wire import CHUNK_HEADER, COMMON_HEADER, ChunkReader, DataFacts, Parsed, ParsedChunk

__all__ = ["DataFacts", "Parsed", "chunks_fit", "crc32c", "looks_like_sctp", "parse_packet"]


def crc32c(data: bytes) -> int:
    """The checksum of a packet (RFC 9260 appendix A): CRC32c over it with the checksum field as
    zeros, as the little-endian number the field holds."""
    return int(google_crc32c.value(bytes(data[:8]) + b"\x00\x00\x00\x00" + bytes(data[12:])))


def stored_checksum(data: bytes) -> int:
    return int.from_bytes(data[8:12], "little")


def chunks_fit(data: bytes) -> bool:
    """At least one chunk, and chunk lengths that walk exactly to the end of the packet (the last
    chunk's padding may be left out)."""
    pos, count = COMMON_HEADER, 0
    size = len(data)
    while pos < size:
        if pos + CHUNK_HEADER > size:
            return False
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < CHUNK_HEADER or pos + length > size:
            return False
        pos += (length + 3) & ~3
        count += 1
    return count > 0


def looks_like_sctp(data: bytes, zero_ok: bool = False) -> bool:
    """Strict: a common header, valid chunk lengths, and a CRC32c that verifies (or, where RFC 9653
    applies, a zero checksum)."""
    if len(data) < COMMON_HEADER + CHUNK_HEADER or not chunks_fit(data):
        return False
    stored = stored_checksum(data)
    return stored == crc32c(data) or (zero_ok and stored == 0)


def parse_packet(data: bytes, zero_ok: bool = False) -> Parsed:
    """Every field of `data` (an SCTP packet); problems are findings. `zero_ok`: RFC 9653 was
    negotiated for packets in this direction, so a zero checksum is not a bad one."""
    out = Parsed()
    size = len(data)
    if size < COMMON_HEADER:
        out.findings.append(
            Finding("error", "sctp.truncated", f"{size} bytes: shorter than the 12-byte common header")
        )
        return out
    stored, computed = stored_checksum(data), crc32c(data)
    out.checksum_ok = stored == computed or (zero_ok and stored == 0)
    status = "Good" if stored == computed else "Zero (RFC 9653)" if out.checksum_ok else "Bad"
    out.header = [
        Field("sctp.srcport", int.from_bytes(data[0:2], "big"), (0, 2)),
        Field("sctp.dstport", int.from_bytes(data[2:4], "big"), (2, 4)),
        Field("sctp.verification_tag", int.from_bytes(data[4:8], "big"), (4, 8)),
        Field(
            "sctp.checksum",
            int.from_bytes(data[8:12], "big"),
            (8, 12),
            (Field("sctp.checksum.status", status, (8, 12)),),
        ),
    ]
    if not out.checksum_ok:
        out.findings.append(
            Finding(
                "error",
                "sctp.checksum_bad",
                f"CRC32c 0x{stored:08x} in the packet, 0x{computed:08x} computed: not reassembled",
                (8, 12),
            )
        )
    pos = COMMON_HEADER
    if pos >= size:
        out.findings.append(Finding("error", "sctp.truncated", "a common header and no chunk", (0, size)))
    while pos < size:
        if pos + CHUNK_HEADER > size:
            out.findings.append(Finding("error", "sctp.truncated", "chunk header cut short", (pos, size)))
            break
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        end = pos + length
        if length < CHUNK_HEADER or end > size:
            what = (
                f"chunk length {length}, less than its 4-byte header"
                if length < CHUNK_HEADER
                else f"chunk length {length}, {size - pos} bytes left in the packet"
            )
            out.findings.append(Finding("error", "sctp.chunk_length_bad", what, (pos, size)))
            end = size if length >= CHUNK_HEADER else min(size, pos + CHUNK_HEADER)
        padded = min(size, (pos + length + 3) & ~3) if end == pos + length else end
        _chunk(data, out, pos, end, padded, length)
        if length < CHUNK_HEADER:
            break
        pos = padded
    return out


def _chunk(data: bytes, out: Parsed, start: int, end: int, padded: int, length: int) -> None:
    c = ChunkReader(data, out, len(out.chunks), start, end)
    ctype = c.ctype
    name = nm.CHUNK_TYPES.get(ctype)
    children = [
        Field("sctp.chunk_type", ctype, (start, start + 1)),
        Field("sctp.chunk_flags", c.flags, (start + 1, start + 2), tuple(_flag_bits(c))),
        Field("sctp.chunk_length", length, (start + 2, start + 4)),
    ]
    label = name or f"Unknown({ctype})"
    before = len(out.info)
    if name is None:
        action = nm.UNKNOWN_ACTIONS[ctype >> 6]
        children += [
            Field("sctp.chunk_bit_1", bool(ctype & 0x80), (start, start + 1)),
            Field("sctp.chunk_bit_2", bool(ctype & 0x40), (start, start + 1)),
        ]
        if end > c.value:
            children.append(Field("sctp.chunk_value", data[c.value : end].hex(), (c.value, end)))
        out.findings.append(
            Finding(
                "note", "sctp.unknown_chunk", f"chunk type {ctype}: a receiver would {action}", (start, end)
            )
        )
    elif ctype in PARSERS:
        children += PARSERS[ctype](c)
    elif end > c.value:  # COOKIE-ACK, SHUTDOWN-ACK, SHUTDOWN-COMPLETE have no value
        children.append(Field("sctp.chunk_value", data[c.value : end].hex(), (c.value, end)))
    if len(out.info) == before:
        out.info.append(label)
    if padded > end:
        children.append(Field("sctp.chunk_padding", data[end:padded].hex(), (end, padded)))
    out.chunks.append(ParsedChunk(ctype, (start, padded), children, label))


def _flag_bits(c: ChunkReader) -> list[Field]:
    span = (c.start + 1, c.start + 2)
    if c.ctype in (nm.DATA, nm.I_DATA):
        bits = [
            Field("sctp.data_e_bit", bool(c.flags & 0x01), span),
            Field("sctp.data_b_bit", bool(c.flags & 0x02), span),
            Field("sctp.data_u_bit", bool(c.flags & 0x04), span),
            Field("sctp.data_i_bit", bool(c.flags & 0x08), span),
        ]
        return bits
    if c.ctype == nm.ABORT:
        return [Field("sctp.abort_t_bit", bool(c.flags & 0x01), span)]
    if c.ctype == nm.SHUTDOWN_COMPLETE:
        return [Field("sctp.shutdown_complete_t_bit", bool(c.flags & 0x01), span)]
    return []
