"""Generate the benchmark captures (written to bench/out/, never committed).

* udp-1m.pcap: 1,000,000 Ethernet/IPv4/UDP packets, RTP-like (PT 0, 160-byte payloads) on four
  5-tuples, with a STUN Binding request every 1,000 packets on the same ports (ICE consent checks).
* tcp-200k.pcap: 200,000 Ethernet/IPv4/TCP packets: 2,000 connections, each a handshake, data in
  both directions with ACKs, and a FIN exchange.
* grpc-200k.pcap: 200,000 packets of h2c gRPC on port 50051: 100 connections, ~50,000 unary calls
  (HPACK from the hpack library's encoder, frames from hyperframe, so the header blocks use the
  dynamic table as real peers do).
* tcp-undecoded-200k.pcap: 200,000 packets of TCP that no decoder reads beyond its first segments,
  three connections taking turns: a bulk transfer (iperf-like, port 5201), HTTP/1.1 keep-alive with
  1 MiB response bodies (port 80), and a TLS 1.2 session on 443 (records of 16 KiB). The server
  ACKs every other segment, as delayed ACKs do.
"""

from __future__ import annotations

import os
import random
import struct
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
ETH = bytes.fromhex("020000000001020000000002") + b"\x08\x00"
PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def _ip(src: bytes, dst: bytes, proto: int, payload: bytes, ident: int) -> bytes:
    return (
        struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident & 0xFFFF, 0x4000, 64, proto, 0, src, dst
        )
        + payload
    )


def _record(ts_us: int, frame: bytes) -> bytes:
    return struct.pack("<IIII", ts_us // 1_000_000, ts_us % 1_000_000, len(frame), len(frame)) + frame


def udp_capture(path: Path, packets: int = 1_000_000, ice: bool = False) -> None:
    """Four RTP flows with a STUN check every 1,000 packets. With `ice`, each flow is an ICE
    session's: its checks carry USERNAME ("b<n>:a<n>") and USE-CANDIDATE (and fixed transaction
    ids), so the sessions report follows every packet of them."""
    plain = struct.pack("!HHI12s", 0x0001, 0, 0x2112A442, os.urandom(12))
    with open(path, "wb") as out:
        out.write(PCAP_HEADER)
        chunk = []
        for i in range(packets):
            flow = i % 4
            if ice and (i % 1000 == 999 or i < 4):
                user = f"b{flow}:a{flow}".encode()
                attrs = struct.pack("!HH", 6, len(user)) + user + b"\0" * (-len(user) % 4)
                attrs += struct.pack("!HH", 0x25, 0)  # USE-CANDIDATE
                payload = (
                    struct.pack("!HHI12s", 0x0001, len(attrs), 0x2112A442, i.to_bytes(12, "big")) + attrs
                )
            elif i % 1000 == 999:
                payload = plain
            else:
                payload = (
                    struct.pack(
                        "!BBHII", 0x80, 0, (i // 4) & 0xFFFF, (i // 4) * 160 & 0xFFFFFFFF, 0x1000 + flow
                    )
                    + b"\xd5" * 160
                )
            udp = struct.pack("!HHHH", 40000 + 2 * flow, 50000 + 2 * flow, 8 + len(payload), 0) + payload
            frame = ETH + _ip(b"\x0a\x00\x00\x01", bytes([10, 0, 0, 2 + flow]), 17, udp, i)
            chunk.append(_record(1_700_000_000_000_000 + i * 20, frame))
            if len(chunk) == 10_000:
                out.write(b"".join(chunk))
                chunk.clear()
        out.write(b"".join(chunk))


def ensure_ice() -> Path:
    OUT.mkdir(exist_ok=True)
    path = OUT / "udp-1m-ice.pcap"
    if not path.exists():
        udp_capture(path, ice=True)
    return path


CLIENT, SERVER = b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02"


def _tcp_record(ts_us: int, from_client: bool, segment: bytes) -> bytes:
    """A pcap record of a TCP segment between CLIENT and SERVER."""
    src, dst = (CLIENT, SERVER) if from_client else (SERVER, CLIENT)
    return _record(ts_us, ETH + _ip(src, dst, 6, segment, ts_us))


def _tcp(sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes = b"") -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload


def tcp_capture(path: Path, packets: int = 200_000) -> None:
    per_conn = 100
    conns = packets // per_conn
    with open(path, "wb") as out:
        out.write(PCAP_HEADER)
        ts = 1_700_000_000_000_000
        chunk = []
        for c in range(conns):
            sport = 10000 + c
            cs, ss = 1000 * c, 7000 * c
            segs = [
                (True, _tcp(sport, 50051, cs, 0, 0x02)),
                (False, _tcp(50051, sport, ss, cs + 1, 0x12)),
                (True, _tcp(sport, 50051, cs + 1, ss + 1, 0x10)),
            ]
            cs += 1
            ss += 1
            while len(segs) < per_conn - 3:
                body = b"x" * (100 + len(segs))
                segs.append((True, _tcp(sport, 50051, cs, ss, 0x18, body)))
                cs += len(body)
                segs.append((False, _tcp(50051, sport, ss, cs, 0x18, body * 2)))
                ss += 2 * len(body)
            segs.append((True, _tcp(sport, 50051, cs, ss, 0x11)))
            segs.append((False, _tcp(50051, sport, ss, cs + 1, 0x11)))
            segs.append((True, _tcp(sport, 50051, cs + 1, ss + 1, 0x10)))
            for from_client, seg in segs:
                chunk.append(_tcp_record(ts, from_client, seg))
                ts += 10
            if len(chunk) >= 10_000:
                out.write(b"".join(chunk))
                chunk.clear()
        out.write(b"".join(chunk))


class _Connection:
    """One TCP connection's segments, built as its two ends would send them."""

    def __init__(self, sport: int, dport: int, cseq: int, sseq: int) -> None:
        self.sport, self.dport, self.cseq, self.sseq = sport, dport, cseq, sseq
        self.unacked = 0
        self.segments = [
            (True, _tcp(sport, dport, cseq, 0, 0x02)),
            (False, _tcp(dport, sport, sseq, cseq + 1, 0x12)),
            (True, _tcp(sport, dport, cseq + 1, sseq + 1, 0x10)),
        ]
        self.cseq += 1
        self.sseq += 1

    def send(self, from_client: bool, data: bytes, mss: int = 1448) -> None:
        for at in range(0, len(data), mss):
            part = data[at : at + mss]
            if from_client:
                self.segments.append((True, _tcp(self.sport, self.dport, self.cseq, self.sseq, 0x18, part)))
                self.cseq += len(part)
            else:
                self.segments.append((False, _tcp(self.dport, self.sport, self.sseq, self.cseq, 0x18, part)))
                self.sseq += len(part)
            self.unacked += 1
            if self.unacked == 2:  # delayed ACK from the receiver
                self.unacked = 0
                if from_client:
                    self.segments.append((False, _tcp(self.dport, self.sport, self.sseq, self.cseq, 0x10)))
                else:
                    self.segments.append((True, _tcp(self.sport, self.dport, self.cseq, self.sseq, 0x10)))


def undecoded_tcp_capture(path: Path, packets: int = 200_000) -> None:
    rnd = random.Random(7)
    per_conn = packets // 3
    bulk = _Connection(40001, 5201, 11_000, 22_000)
    while len(bulk.segments) < per_conn:
        bulk.send(True, rnd.randbytes(64 * 1448))
    http = _Connection(40002, 80, 33_000, 44_000)
    body = rnd.randbytes(1 << 20)
    n = 0
    while len(http.segments) < per_conn:
        n += 1
        http.send(
            True, f"GET /file/{n} HTTP/1.1\r\nHost: 10.0.0.2\r\nConnection: keep-alive\r\n\r\n".encode()
        )
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        http.send(False, head.encode() + body)
    tls = _Connection(40003, 443, 55_000, 66_000)
    hello = bytes.fromhex("160301") + (512).to_bytes(2, "big") + b"\x01" + rnd.randbytes(511)
    tls.send(True, hello)
    tls.send(False, bytes.fromhex("160303") + (1024).to_bytes(2, "big") + b"\x02" + rnd.randbytes(1023))
    while len(tls.segments) < packets - 2 * per_conn:
        record = bytes.fromhex("170303") + (16384 + 24).to_bytes(2, "big") + rnd.randbytes(16384 + 24)
        tls.send(False, record * 4)
    with open(path, "wb") as out:
        out.write(PCAP_HEADER)
        ts = 1_700_000_000_000_000
        conns = [bulk.segments, http.segments, tls.segments[: packets - 2 * per_conn]]
        chunk = []
        for k in range(max(len(c) for c in conns)):
            for segments in conns:
                if k < len(segments):
                    chunk.append(_tcp_record(ts, *segments[k]))
                    ts += 7
            if len(chunk) >= 10_000:
                out.write(b"".join(chunk))
                chunk.clear()
        out.write(b"".join(chunk))


def _grpc_frames(stream_id: int, frames: list[object]) -> bytes:
    return b"".join(f.serialize() for f in frames)  # type: ignore[attr-defined]


def grpc_capture(path: Path, packets: int = 200_000) -> None:
    from hpack import Encoder
    from hyperframe.frame import DataFrame, HeadersFrame, SettingsFrame, WindowUpdateFrame

    conns = 100
    per_conn = packets // conns
    client_ip, server_ip = b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02"
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    with open(path, "wb") as out:
        out.write(PCAP_HEADER)
        ts = 1_700_000_000_000_000
        for c in range(conns):
            sport = 20000 + c
            cenc, senc = Encoder(), Encoder()
            cs, ss = 1000 * c, 9000 * c
            segs: list[tuple[bool, int, bytes]] = [
                (True, 0x02, b""),
                (False, 0x12, b""),
                (True, 0x10, b""),
                (True, 0x18, preface + SettingsFrame(0).serialize()),
                (False, 0x18, SettingsFrame(0).serialize() + SettingsFrame(0, flags=["ACK"]).serialize()),
            ]
            sid = 1
            while len(segs) < per_conn - 3:
                req = cenc.encode(
                    [
                        (":method", "POST"),
                        (":scheme", "http"),
                        (":path", "/bench.Echo/Say"),
                        (":authority", "10.0.0.2:50051"),
                        ("content-type", "application/grpc"),
                        ("te", "trailers"),
                        ("x-call", str(sid)),
                    ]
                )
                msg = b"\x0a\x05hello\x10" + bytes([sid & 0x7F])
                body = b"\x00" + len(msg).to_bytes(4, "big") + msg
                h = HeadersFrame(sid, req, flags=["END_HEADERS"])
                d = DataFrame(sid, body, flags=["END_STREAM"])
                segs.append((True, 0x18, h.serialize() + d.serialize()))
                resp = senc.encode([(":status", "200"), ("content-type", "application/grpc")])
                trl = senc.encode([("grpc-status", "0"), ("grpc-message", "")])
                out_msg = b"\x0a\x0bhello again"
                rbody = b"\x00" + len(out_msg).to_bytes(4, "big") + out_msg
                frames = [
                    HeadersFrame(sid, resp, flags=["END_HEADERS"]),
                    DataFrame(sid, rbody),
                    HeadersFrame(sid, trl, flags=["END_HEADERS", "END_STREAM"]),
                ]
                segs.append((False, 0x18, b"".join(f.serialize() for f in frames)))
                if sid % 8 == 1:
                    segs.append((True, 0x18, WindowUpdateFrame(0, window_increment=1024).serialize()))
                else:
                    segs.append((True, 0x10, b""))
                sid += 2
            segs += [(True, 0x11, b""), (False, 0x11, b""), (True, 0x10, b"")]
            for from_client, flags, payload in segs:
                src, dst = (client_ip, server_ip) if from_client else (server_ip, client_ip)
                sp, dp = (sport, 50051) if from_client else (50051, sport)
                seq, ack = (cs, ss) if from_client else (ss, cs)
                seg = _tcp(sp, dp, seq, ack, flags, payload)
                out.write(_record(ts, ETH + _ip(src, dst, 6, seg, ts)))
                ts += 10
                grow = len(payload) + (1 if flags & 0x03 else 0)
                if from_client:
                    cs += grow
                else:
                    ss += grow


def ensure_undecoded() -> Path:
    OUT.mkdir(exist_ok=True)
    path = OUT / "tcp-undecoded-200k.pcap"
    if not path.exists():
        undecoded_tcp_capture(path)
    return path


def ensure() -> tuple[Path, Path]:
    OUT.mkdir(exist_ok=True)
    udp, tcp = OUT / "udp-1m.pcap", OUT / "tcp-200k.pcap"
    if not udp.exists():
        udp_capture(udp)
    if not tcp.exists():
        tcp_capture(tcp)
    return udp, tcp


if __name__ == "__main__":
    for p in ensure():
        print(p, p.stat().st_size, file=sys.stderr)
