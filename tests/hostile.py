"""The crafted inputs of issue 12 (hostile input and faults), written as captures.

One function per input, `make(path, scale)`: `scale` counts what the input is made of (bytes,
fragments, requests; each function says which) so that a test runs it small (`Input.small`) and
`bench/bench_hostile.py` at the scale the issue measured (`Input.issue`). The packets are real
protocol bytes: HPACK from the hpack library's encoder, HTTP/2 frames from hyperframe, DTLS
records and handshake headers, STUN with its magic cookie, MESSAGE-INTEGRITY and FINGERPRINT,
IPv4 with its header checksum, TCP with its sequence numbers. The writer is a plain pcap writer
(scapy takes ~100 µs a packet; a million fragments would take minutes).

Run `python -m tests.hostile DIR [--issue]` to write them all.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import struct
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
"""Microsecond pcap, snap length 65535, Ethernet."""
ETH = bytes.fromhex("020000000002020000000001") + b"\x08\x00"
T0_US = 1_700_000_000_000_000
CLIENT, SERVER = "10.0.0.1", "10.0.0.2"
MSS = 1448

# -- writing packets ------------------------------------------------------------------------


def _addr(ip: str) -> bytes:
    return bytes(int(x) for x in ip.split("."))


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(src: str, dst: str, proto: int, payload: bytes, ident: int = 0, frag: int = 0x4000) -> bytes:
    """An IPv4 packet with a correct header checksum; `frag` holds the flags and fragment offset."""
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        ident & 0xFFFF,
        frag,
        64,
        proto,
        0,
        _addr(src),
        _addr(dst),
    )
    return header[:10] + struct.pack("!H", _checksum(header)) + header[12:] + payload


def udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


class Pcap:
    """A pcap file written as packets come, with timestamps 100 µs apart."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._out = open(path, "wb")
        self._out.write(PCAP_HEADER)
        self._chunk: list[bytes] = []
        self._size = 0
        self.ts_us = T0_US
        self.packets = 0

    def frame(self, frame: bytes) -> None:
        """One Ethernet frame."""
        self._chunk.append(
            struct.pack("<IIII", self.ts_us // 1_000_000, self.ts_us % 1_000_000, len(frame), len(frame))
            + frame
        )
        self._size += len(frame) + 16
        self.ts_us += 100
        self.packets += 1
        if self._size >= 1 << 20:
            self._flush()

    def ip(self, packet: bytes) -> None:
        self.frame(ETH + packet)

    def udp(
        self, payload: bytes, sport: int = 40000, dport: int = 50000, src: str = CLIENT, dst: str = SERVER
    ) -> None:
        self.ip(ipv4(src, dst, 17, udp(sport, dport, payload), self.packets))

    def _flush(self) -> None:
        self._out.write(b"".join(self._chunk))
        self._chunk.clear()
        self._size = 0

    def close(self) -> None:
        self._flush()
        self._out.close()

    def __enter__(self) -> Pcap:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Tcp:
    """One TCP connection between CLIENT and SERVER: a handshake, then segments with the sequence
    numbers and acknowledgements each end would send."""

    def __init__(self, pcap: Pcap, sport: int, dport: int) -> None:
        self.pcap, self.sport, self.dport = pcap, sport, dport
        self.seq = {True: 1_000_000, False: 5_000_000}
        self._segment(True, b"", 0x02)
        self.seq[True] += 1
        self._segment(False, b"", 0x12)
        self.seq[False] += 1
        self._segment(True, b"", 0x10)

    def _segment(self, from_client: bool, data: bytes, flags: int = 0x18, seq: int | None = None) -> None:
        sport, dport = (self.sport, self.dport) if from_client else (self.dport, self.sport)
        src, dst = (CLIENT, SERVER) if from_client else (SERVER, CLIENT)
        ack = self.seq[not from_client] if flags & 0x10 else 0
        segment = struct.pack(
            "!HHIIBBHHH",
            sport,
            dport,
            self.seq[from_client] if seq is None else seq,
            ack,
            5 << 4,
            flags,
            65535,
            0,
            0,
        )
        self.pcap.ip(ipv4(src, dst, 6, segment + data, self.pcap.packets))

    def send(self, from_client: bool, data: bytes, mss: int = MSS) -> None:
        """`data` in segments of at most `mss` bytes."""
        for at in range(0, len(data), mss):
            part = data[at : at + mss]
            self._segment(from_client, part)
            self.seq[from_client] += len(part)

    def hole(self, from_client: bool, data: bytes) -> Callable[[], None]:
        """Skip `data` in the sequence space now; the function returned sends it (late)."""
        seq = self.seq[from_client]
        self.seq[from_client] += len(data)
        return lambda: self._segment(from_client, data, seq=seq)


# -- protocol bytes -------------------------------------------------------------------------

STUN_COOKIE = 0x2112A442
ICE_PWD = "hostile-ice-password"
"""The short-term password MESSAGE-INTEGRITY is computed with (`--ice-pwd` checks it)."""


def _stun_attr(kind: int, value: bytes) -> bytes:
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * (-len(value) % 4)


def stun(kind: int, tid: bytes, attrs: list[tuple[int, bytes]], key: bytes | None = None) -> bytes:
    """A STUN message; with `key`, MESSAGE-INTEGRITY (RFC 5389 15.4), then FINGERPRINT (15.5)."""
    body = b"".join(_stun_attr(k, v) for k, v in attrs)
    if key is not None:
        head = struct.pack("!HHI12s", kind, len(body) + 24, STUN_COOKIE, tid)
        body += _stun_attr(0x0008, hmac.new(key, head + body, hashlib.sha1).digest())
    head = struct.pack("!HHI12s", kind, len(body) + 8, STUN_COOKIE, tid)
    crc = zlib.crc32(head + body) ^ 0x5354554E
    return head + body + _stun_attr(0x8028, struct.pack("!I", crc))


def dtls_record(ctype: int, seq: int, body: bytes, epoch: int = 0) -> bytes:
    """A DTLS 1.2 record: type, version, epoch, 48-bit sequence number, length."""
    return (
        struct.pack("!BHH", ctype, 0xFEFD, epoch)
        + seq.to_bytes(6, "big")
        + struct.pack("!H", len(body))
        + body
    )


def dtls_handshake(msg_type: int, length: int, message_seq: int, offset: int, fragment: bytes) -> bytes:
    """A handshake message fragment: type, length, message_seq, fragment_offset, fragment_length."""
    return (
        bytes([msg_type])
        + length.to_bytes(3, "big")
        + struct.pack("!H", message_seq)
        + offset.to_bytes(3, "big")
        + len(fragment).to_bytes(3, "big")
        + fragment
    )


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def _h2_start(tcp: Tcp) -> None:
    from hyperframe.frame import SettingsFrame

    tcp.send(True, H2_PREFACE + SettingsFrame(0).serialize())
    tcp.send(False, SettingsFrame(0).serialize() + SettingsFrame(0, flags=["ACK"]).serialize())
    tcp.send(True, SettingsFrame(0, flags=["ACK"]).serialize())


def _grpc_request_headers(path: str, extra: tuple[tuple[str, str], ...] = ()) -> list[tuple[str, str]]:
    return [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", f"{SERVER}:50051"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        *extra,
    ]


def _data_frames(stream_id: int, body: bytes, end_stream: bool = False, size: int = 16384) -> bytes:
    """`body` as DATA frames of at most `size` bytes (the default SETTINGS_MAX_FRAME_SIZE)."""
    from hyperframe.frame import DataFrame

    out = []
    for at in range(0, len(body), size):
        last = at + size >= len(body)
        out.append(
            DataFrame(stream_id, body[at : at + size], flags=["END_STREAM"] if last and end_stream else [])
        )
    return b"".join(f.serialize() for f in out)


def _grpc_message(message: bytes, compressed: bool = False) -> bytes:
    return struct.pack("!BI", int(compressed), len(message)) + message


# -- the inputs -----------------------------------------------------------------------------


def dtls_new_message_seq(path: Path, scale: int) -> Path:
    """`scale` DTLS handshake fragments of 1 byte, each declaring a 1 MiB ClientHello under a
    message_seq of its own (issue: 837 KB, ~10,000 fragments)."""
    with Pcap(path) as pcap:
        for n in range(scale):
            fragment = dtls_handshake(1, 1 << 20, n & 0xFFFF, 0, b"\x01")
            pcap.udp(dtls_record(22, n, fragment))
    return path


def client_hello(length: int) -> bytes:
    """A DTLS 1.2 ClientHello body of `length` bytes (at least 64): one cipher suite, no
    compression, and a padding extension (RFC 7685) that makes up the length."""
    head = (
        struct.pack("!H", 0xFEFD) + bytes(range(32)) + b"\x00" + b"\x00" + b"\x00\x02\xc0\x2b" + b"\x01\x00"
    )
    padding = length - len(head) - 2 - 4
    assert padding >= 0
    return head + struct.pack("!HHH", 4 + padding, 21, padding) + bytes(padding)


def dtls_one_byte_fragments(path: Path, scale: int) -> Path:
    """One ClientHello of `scale` bytes sent as `scale` fragments of 1 byte (issue: 20,000), the
    even offsets first, then the odd ones: no two fragments that arrive in turn touch."""
    body = client_hello(scale)
    order = [*range(0, scale, 2), *range(1, scale, 2)]
    with Pcap(path) as pcap:
        for n, offset in enumerate(order):
            fragment = dtls_handshake(1, scale, 0, offset, body[offset : offset + 1])
            pcap.udp(dtls_record(22, n, fragment))
    return path


def _certificate_der() -> bytes:
    """A self-signed certificate made with `cryptography`, its version then set to 10 (the DER
    INTEGER under [0] holds 9: X.509 counts from v1 = 0)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.derive_private_key(12345, ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hostile")])
    when = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(when)
        .not_valid_after(when + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    v3 = bytes.fromhex("a003020102")
    assert der.count(v3) == 1
    return der.replace(v3, bytes.fromhex("a003020109"))


def dtls_x509_version_10(path: Path, scale: int) -> Path:
    """A DTLS Certificate message whose certificate says X.509 version 10, `scale` times."""
    der = _certificate_der()
    chain = len(der).to_bytes(3, "big") + der
    body = len(chain).to_bytes(3, "big") + chain
    with Pcap(path) as pcap:
        for n in range(scale):
            pcap.udp(dtls_record(22, n, dtls_handshake(11, len(body), 1, 0, body)), 50000 + n, 40000)
    return path


def stun_xor_address_long(path: Path, scale: int) -> Path:
    """`scale` Binding success responses whose XOR-MAPPED-ADDRESS is 28 bytes long (IPv6's is 20)."""
    address = struct.pack("!BBH", 0, 2, 0x1234 ^ (STUN_COOKIE >> 16)) + bytes(range(24))
    with Pcap(path) as pcap:
        for n in range(scale):
            tid = n.to_bytes(12, "big")
            pcap.udp(stun(0x0001, tid, []), 40000, 3478)
            pcap.udp(stun(0x0101, tid, [(0x0020, address)]), 3478, 40000, SERVER, CLIENT)
    return path


def stun_many_attributes(path: Path, scale: int) -> Path:
    """`scale` empty SOFTWARE attributes in Binding requests of up to 16,000 each (a 64 KB
    datagram). Not in the issue: found while making these (each attribute is a Field tree of its
    own, and the packets report flattens repeated names quadratically)."""
    with Pcap(path) as pcap:
        for n, at in enumerate(range(0, scale, 16000)):
            attrs = [(0x8022, b"")] * min(16000, scale - at)
            pcap.udp(stun(0x0001, n.to_bytes(12, "big"), attrs), 40000, 3478)
    return path


def ice_ufrag_chain(path: Path, scale: int) -> Path:
    """`scale` ICE connectivity checks whose ufrags chain: `u2:u1`, `u3:u2`, ... (each request's
    remote ufrag is the next one's local), from 64 candidate ports, each answered."""
    key = ICE_PWD.encode()
    with Pcap(path) as pcap:
        for n in range(scale):
            tid = n.to_bytes(12, "big")
            sport = 40000 + n % 64
            username = f"u{n + 1}:u{n}".encode()
            attrs = [
                (0x0006, username),
                (0x0024, struct.pack("!I", 0x6E7F00FF)),  # PRIORITY
                (0x802A, n.to_bytes(8, "big")),  # ICE-CONTROLLING
            ]
            pcap.udp(stun(0x0001, tid, attrs, key), sport, 50000)
            mapped = struct.pack("!BBH4s", 0, 1, sport ^ (STUN_COOKIE >> 16), _xor_ip(CLIENT))
            pcap.udp(stun(0x0101, tid, [(0x0020, mapped)], key), 50000, sport, SERVER, CLIENT)
    return path


def _xor_ip(ip: str) -> bytes:
    return bytes(a ^ b for a, b in zip(_addr(ip), STUN_COOKIE.to_bytes(4, "big"), strict=True))


def ip_fragments_never_complete(path: Path, scale: int) -> Path:
    """`scale` IPv4 fragments of one UDP datagram (one IP ID), 8 bytes each at offsets that go
    round the whole 64 KiB again and again, all with More Fragments set: it never completes
    (issue: 1,000,000)."""
    first = udp(40000, 50000, b"\0" * 65000)[:8]
    with Pcap(path) as pcap:
        for n in range(scale):
            slot = n % 8190
            data = first if slot == 0 else struct.pack("!Q", n)
            pcap.ip(ipv4(CLIENT, SERVER, 17, data, ident=0x4242, frag=0x2000 | slot))
    return path


def pcap_zeros(path: Path, scale: int) -> Path:
    """A pcap file header followed by `scale` zero bytes (issue: 16 MB; 256 MB)."""
    with open(path, "wb") as out:
        out.write(PCAP_HEADER)
        block = bytes(1 << 20)
        left = scale
        while left > 0:
            out.write(block[: min(left, len(block))])
            left -= len(block)
    return path


def http1_chunked_unterminated(path: Path, scale: int) -> Path:
    """An HTTP/1.1 response with `Transfer-Encoding: chunked` and `scale` bytes of 100-byte chunks,
    never the last chunk (issue: 1 MB), on port 80 in segments of one MSS."""
    chunk = b"64\r\n" + b"x" * 100 + b"\r\n"
    with Pcap(path) as pcap:
        tcp = Tcp(pcap, 40080, 80)
        tcp.send(True, b"GET /stream HTTP/1.1\r\nHost: 10.0.0.2\r\n\r\n")
        tcp.send(False, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
        tcp.send(False, chunk * max(1, scale // len(chunk)))
    return path


def turn_channeldata_behind_hole(path: Path, scale: int) -> Path:
    """TURN over TCP (port 3478): an Allocate request and a ChannelBind, then `scale` bytes of
    ChannelData messages, each relaying a 100-byte RTP packet, whose first segment arrives last,
    so that TCP reassembly holds them all and releases them at once (issue: 1 MB and 4 MB)."""
    data = b"".join(
        struct.pack("!HHBBHII", 0x4000, 100, 0x80, 111, n & 0xFFFF, 960 * n & 0xFFFFFFFF, 0x5EED) + bytes(88)
        for n in range(max(1, scale // 104))
    )
    peer = struct.pack("!BBH4s", 0, 1, 5000 ^ (STUN_COOKIE >> 16), _xor_ip("10.0.0.9"))
    with Pcap(path) as pcap:
        tcp = Tcp(pcap, 40478, 3478)
        tcp.send(True, stun(0x0003, b"allocate-000", [(0x0019, b"\x11\0\0\0")]))
        tcp.send(True, stun(0x0009, b"chanbind-000", [(0x000C, b"\x40\0\0\0"), (0x0012, peer)]))
        late = tcp.hole(True, data[:MSS])
        tcp.send(True, data[MSS:])
        late()
    return path


def http2_header_flood(path: Path, scale: int) -> Path:
    """HTTP/2 with `scale` bytes of 1-byte indexed header fields (`:method: GET`, HPACK index 2)
    in HEADERS frames of 16,000 fields (fewer when `scale` is small: 8 streams at least), one
    stream each, none ever ended (issue: 5 MB)."""
    from hpack import Encoder
    from hyperframe.frame import HeadersFrame

    indexed = Encoder().encode([(":method", "GET")])
    assert indexed == b"\x82"
    block = indexed * max(1, min(16000, scale // 8))
    with Pcap(path) as pcap:
        tcp = Tcp(pcap, 40002, 50051)
        _h2_start(tcp)
        for n in range(max(1, scale // len(block))):
            frame = HeadersFrame(1 + 2 * n, block, flags=["END_HEADERS"])
            tcp.send(True, frame.serialize(), mss=16384 + 9)
    return path


def grpc_endless_stream(path: Path, scale: int) -> Path:
    """One server-streaming gRPC call that never ends: `scale` bytes of messages of ~100 bytes
    (a sequence number, a name, a time, a nested message, a blob; issue: 24 MB), no trailers."""
    from hpack import Encoder
    from hyperframe.frame import DataFrame, HeadersFrame

    client, server = Encoder(), Encoder()
    with Pcap(path) as pcap:
        tcp = Tcp(pcap, 40003, 50051)
        _h2_start(tcp)
        request = client.encode(_grpc_request_headers("/hostile.Feed/Subscribe"))
        frames = HeadersFrame(1, request, flags=["END_HEADERS"]).serialize()
        frames += DataFrame(1, _grpc_message(b"\x08\x01"), flags=["END_STREAM"]).serialize()
        tcp.send(True, frames)
        response = server.encode([(":status", "200"), ("content-type", "application/grpc")])
        tcp.send(False, HeadersFrame(1, response, flags=["END_HEADERS"]).serialize())
        sent = 0
        n = 0
        while sent < scale:
            messages = []
            size = 0
            while size < 16000:
                nested = b"\x08" + _varint(n % 1000) + b"\x12\x04item"
                fields = b"\x08" + _varint(n) + b"\x12\x05event" + b"\x19" + struct.pack("<Q", T0_US + n)
                fields += b"\x22" + _varint(len(nested)) + nested + b"\x2a\x40" + b"\xff" * 64
                message = _grpc_message(fields)
                messages.append(message)
                size += len(message)
                n += 1
            tcp.send(False, DataFrame(1, b"".join(messages)).serialize(), mss=16384 + 9)
            sent += size
    return path


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _nested(inner: bytes, depth: int) -> bytes:
    """`inner` as field 1 of a message, that as field 1 of another, `depth` times."""
    for _ in range(depth):
        inner = b"\x0a" + _varint(len(inner)) + inner
    return inner


def protobuf_gzip_bomb(path: Path, scale: int) -> Path:
    """A gRPC request (`grpc-encoding: gzip`, no schema) whose one message inflates to `scale`
    bytes (issue: just under the 64 MiB limit, a 68 KB capture): 40 nested messages around
    bytes of zeros, each level a length-delimited field that parses as a message (deeper than a
    decoder should follow: protoscope's MAX_DEPTH is 32)."""
    from hpack import Encoder
    from hyperframe.frame import HeadersFrame

    depth = 40
    zeros = max(1, scale - 6 * (depth + 1))  # each level adds a tag and a varint of 4 bytes at most
    message = _nested(b"\x0a" + _varint(zeros) + bytes(zeros), depth)
    assert len(message) <= scale
    compressed = gzip.compress(message, compresslevel=9, mtime=0)
    client, server = Encoder(), Encoder()
    with Pcap(path) as pcap:
        tcp = Tcp(pcap, 40004, 50051)
        _h2_start(tcp)
        headers = _grpc_request_headers("/hostile.Bomb/Inflate", (("grpc-encoding", "gzip"),))
        frames = HeadersFrame(1, client.encode(headers), flags=["END_HEADERS"]).serialize()
        frames += _data_frames(1, _grpc_message(compressed, compressed=True), end_stream=True)
        tcp.send(True, frames)
        response = server.encode([(":status", "200"), ("content-type", "application/grpc")])
        trailers = server.encode([("grpc-status", "0")])
        tcp.send(
            False,
            HeadersFrame(1, response, flags=["END_HEADERS"]).serialize()
            + HeadersFrame(1, trailers, flags=["END_HEADERS", "END_STREAM"]).serialize(),
        )
    return path


RLO = "\u202e"
"""RIGHT-TO-LEFT OVERRIDE: what follows it shows backwards."""
HOSTILE_TEXT = f"evil{RLO}gpj.exe\u2066\x1b]0;pwned\x07\x1b[41m\u200b"
"""Text a capture may carry to a terminal: a bidi override and isolate, a title-setting OSC,
a red background (SGR), a zero-width space."""
HOSTILE_FILE_NAME = "hostile-\x1b]0;pwned\x07\x1b[41m-\u202ename.pcap"
"""A capture's file name with ESC sequences and a bidi override in it."""


def terminal_text(path: Path, scale: int = 1) -> Path:
    """HOSTILE_TEXT in the capture fields that reach reports and the viewer, `scale` times: STUN
    USERNAME and SOFTWARE, a STUN error's reason phrase, a gRPC call's path and metadata, its
    grpc-message (percent-encoded UTF-8, as gRPC sends it) and a string in its response message."""
    from urllib.parse import quote

    from hpack import Encoder
    from hyperframe.frame import HeadersFrame

    text = HOSTILE_TEXT.encode()
    with Pcap(path) as pcap:
        for n in range(scale):
            tid = n.to_bytes(12, "big")
            attrs = [(0x0006, text + b":" + text), (0x8022, text)]
            pcap.udp(stun(0x0001, tid, attrs, ICE_PWD.encode()), 40000, 3478)
            error = struct.pack("!HBB", 0, 4, 1) + text
            pcap.udp(stun(0x0111, tid, [(0x0009, error), (0x8022, text)]), 3478, 40000, SERVER, CLIENT)
        client, server = Encoder(), Encoder()
        tcp = Tcp(pcap, 40005, 50051)
        _h2_start(tcp)
        for n in range(scale):
            sid = 1 + 2 * n
            # HPACK carries bytes: these go as UTF-8, whatever the decoder makes of them.
            headers = _grpc_request_headers(f"/hostile.{HOSTILE_TEXT}/Get", (("x-evil", HOSTILE_TEXT),))
            frames = HeadersFrame(sid, client.encode(headers), flags=["END_HEADERS"]).serialize()
            frames += _data_frames(sid, _grpc_message(b"\x0a" + _varint(len(text)) + text), end_stream=True)
            tcp.send(True, frames)
            response = server.encode([(":status", "200"), ("content-type", "application/grpc")])
            trailers = server.encode([("grpc-status", "5"), ("grpc-message", quote(HOSTILE_TEXT))])
            reply = _grpc_message(b"\x0a" + _varint(len(text)) + text)
            tcp.send(
                False,
                HeadersFrame(sid, response, flags=["END_HEADERS"]).serialize()
                + _data_frames(sid, reply)
                + HeadersFrame(sid, trailers, flags=["END_HEADERS", "END_STREAM"]).serialize(),
            )
    return path


@dataclass(frozen=True, slots=True)
class Input:
    """A crafted input: how to make it and at which scales."""

    name: str
    make: Callable[[Path, int], Path]
    small: int
    """Scale for tests: well under a second through every report."""
    issue: int
    """Scale the issue measured (for the bench)."""
    reports: tuple[str, ...] = ("findings",)
    """The reports that reach the work this input loads (the bench runs these; the test all)."""


INPUTS: tuple[Input, ...] = (
    Input("dtls-new-message-seq", dtls_new_message_seq, 300, 10_000),
    Input("protobuf-gzip-bomb", protobuf_gzip_bomb, 1 << 20, (64 << 20) - (64 << 10), ("findings", "calls")),
    Input("http2-header-flood", http2_header_flood, 16_000, 5_000_000, ("findings", "calls")),
    Input("grpc-endless-stream", grpc_endless_stream, 100_000, 24_000_000, ("findings", "calls")),
    Input("pcap-zeros", pcap_zeros, 256 << 10, 16 << 20, ("summary", "findings")),
    Input("http1-chunked-unterminated", http1_chunked_unterminated, 64 << 10, 1 << 20),
    Input(
        "turn-channeldata-hole-1mb", turn_channeldata_behind_hole, 64 << 10, 1 << 20, ("findings", "sessions")
    ),
    Input(
        "turn-channeldata-hole-4mb",
        turn_channeldata_behind_hole,
        128 << 10,
        4 << 20,
        ("findings", "sessions"),
    ),
    Input("dtls-one-byte-fragments", dtls_one_byte_fragments, 10_000, 20_000),
    Input(
        "ip-fragments-never-complete", ip_fragments_never_complete, 10_000, 1_000_000, ("summary", "findings")
    ),
    Input("ice-ufrag-chain", ice_ufrag_chain, 400, 60_000, ("findings", "sessions")),
    Input("dtls-x509-version-10", dtls_x509_version_10, 1, 1, ("findings", "sessions")),
    Input("stun-xor-address-long", stun_xor_address_long, 1, 1, ("findings", "sessions")),
    Input("stun-many-attributes", stun_many_attributes, 2_000, 1_600_000, ("findings", "packets")),
    Input("terminal-text", terminal_text, 1, 1, ("findings", "calls", "sessions")),
)
BY_NAME = {i.name: i for i in INPUTS}
EXTRA_ISSUE_SCALES: tuple[tuple[str, int], ...] = (("pcap-zeros", 256 << 20),)
"""Larger runs the issue measured too (the bench runs them when asked: `--large`)."""


def make_all(directory: Path, issue: bool = False) -> Iterator[tuple[Input, Path]]:
    """Every input written under `directory`, small or at the issue's scale."""
    directory.mkdir(parents=True, exist_ok=True)
    for item in INPUTS:
        path = directory / f"{item.name}.pcap"
        yield item, item.make(path, item.issue if issue else item.small)


if __name__ == "__main__":
    for item, written in make_all(Path(sys.argv[1]), "--issue" in sys.argv[2:]):
        print(f"{item.name}: {written} ({written.stat().st_size} bytes)")
