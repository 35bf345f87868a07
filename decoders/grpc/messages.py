"""gRPC's length-prefixed messages (PROTOCOL-HTTP2.md "Length-Prefixed-Message") across DATA frames."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from protoscope.decoders.api import Finding

PREFIX_LEN = 5
MAX_MESSAGE_LEN = 64 * 1024 * 1024
"""Largest declared message length we buffer; gRPC's own default receive limit is 4 MiB. A larger
declared length (up to 4 GiB on the wire) is a finding and the rest of that stream is skipped."""
MAX_DECOMPRESSED_LEN = 64 * 1024 * 1024
"""Largest message we inflate (a gzip bomb stops here with a finding)."""


@dataclass(slots=True)
class Message:
    flag: int
    """0 or 1 (compressed); gRPC-Web sets 0x80 on the frame that carries trailers."""
    length: int
    data: bytes
    """The message as sent (still compressed when `compressed`)."""
    frames: list[int]
    """1-based frame numbers whose bytes made up the message."""
    contiguous_at: int | None
    """Offset of the message (after its prefix) in the decoder's data when it lay in one piece."""

    @property
    def compressed(self) -> bool:
        return bool(self.flag & 1)

    @property
    def trailers(self) -> bool:
        return bool(self.flag & 0x80)


@dataclass(slots=True)
class Deframer:
    """Reassembles one direction of one HTTP/2 stream into gRPC messages."""

    buffer: bytearray = field(default_factory=bytearray)
    frames: list[int] = field(default_factory=list)
    broken: bool = False

    def feed(self, data: bytes, offset: int, frame: int) -> tuple[list[Message], list[Finding]]:
        """Add the payload of one DATA frame (found at `offset` in the decoder's data)."""
        if self.broken:
            return [], []
        fresh = not self.buffer
        self.buffer += data
        # once per packet: a message cut into thousands of DATA frames in one packet names it once
        if not self.frames or self.frames[-1] != frame:
            self.frames.append(frame)
        out: list[Message] = []
        findings: list[Finding] = []
        pos = 0
        buf = self.buffer
        while len(buf) - pos >= PREFIX_LEN:
            flag = buf[pos]
            length = int.from_bytes(buf[pos + 1 : pos + 5], "big")
            if flag > 1 and flag != 0x80:
                findings.append(
                    Finding("error", "grpc.bad_prefix", f"message flag {flag:#04x} is neither 0 nor 1")
                )
                self._break()
                return out, findings
            if length > MAX_MESSAGE_LEN:
                findings.append(
                    Finding(
                        "error",
                        "grpc.message_too_large",
                        f"a message declares {length} bytes (limit {MAX_MESSAGE_LEN}); "
                        "the rest of the stream is skipped",
                    )
                )
                self._break()
                return out, findings
            if len(buf) - pos - PREFIX_LEN < length:
                break
            body = bytes(buf[pos + PREFIX_LEN : pos + PREFIX_LEN + length])
            at = offset + pos + PREFIX_LEN if fresh and len(self.frames) == 1 else None
            out.append(Message(flag, length, body, list(self.frames), at))
            pos += PREFIX_LEN + length
            self.frames = [frame]
        del buf[:pos]
        if not buf:
            self.frames = []
        return out, findings

    def _break(self) -> None:
        self.broken = True
        self.buffer.clear()
        self.frames = []

    @property
    def pending(self) -> int:
        return len(self.buffer)


def decompress(data: bytes, encoding: str) -> tuple[bytes | None, Finding | None]:
    """Inflate a compressed message (gzip, deflate, identity), bounded by MAX_DECOMPRESSED_LEN."""
    if encoding in ("", "identity"):
        return data, None
    if encoding == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        wbits = zlib.MAX_WBITS
    else:
        return None, Finding("warn", "grpc.unknown_encoding", f"grpc-encoding {encoding!r} is not known")
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(data, MAX_DECOMPRESSED_LEN + 1)
    except zlib.error as exc:
        return None, Finding("error", "grpc.decompress_failed", f"{encoding}: {exc}")
    if len(out) > MAX_DECOMPRESSED_LEN:
        return None, Finding(
            "error",
            "grpc.decompression_bomb",
            f"{encoding} message inflates past {MAX_DECOMPRESSED_LEN} bytes; not decoded",
        )
    return out, None
