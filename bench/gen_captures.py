"""Generate the benchmark captures (written to bench/out/, never committed).

* udp-1m.pcap: 1,000,000 Ethernet/IPv4/UDP packets, RTP-like (PT 0, 160-byte payloads) on four
  5-tuples, with a STUN Binding request every 1,000 packets on the same ports (ICE consent checks).
* tcp-200k.pcap: 200,000 Ethernet/IPv4/TCP packets: 2,000 connections, each a handshake, data in
  both directions with ACKs, and a FIN exchange.
* grpc-200k.pcap: 200,000 packets of h2c gRPC on port 50051: 100 connections, ~50,000 unary calls
  (HPACK from the hpack library's encoder, frames from hyperframe, so the header blocks use the
  dynamic table as real peers do).
"""

from __future__ import annotations

import os
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


def udp_capture(path: Path, packets: int = 1_000_000) -> None:
    stun = struct.pack("!HHI12s", 0x0001, 0, 0x2112A442, os.urandom(12))
    with open(path, "wb") as out:
        out.write(PCAP_HEADER)
        chunk = []
        for i in range(packets):
            flow = i % 4
            if i % 1000 == 999:
                payload = stun
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


def _tcp(sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes = b"") -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload


def tcp_capture(path: Path, packets: int = 200_000) -> None:
    per_conn = 100
    conns = packets // per_conn
    client, server = b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02"
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
                src, dst = (client, server) if from_client else (server, client)
                chunk.append(_record(ts, ETH + _ip(src, dst, 6, seg, ts)))
                ts += 10
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
