"""Generate the decryption benchmark captures and their key logs (bench/out/, never committed).

* grpc-tls-200k.pcap (+ .keys, + .truth.json): the h2c gRPC traffic of gen_captures.grpc_capture
  (100 connections of unary calls), each TCP direction's bytes carried in TLS 1.2 records on port 50443:
  ClientHello (SNI, ALPN h2 and http/1.1), ServerHello choosing ECDHE-RSA-AES128-GCM-SHA256 (0xC02F)
  and h2, a real self-signed RSA certificate, a signed X25519 ServerKeyExchange, ServerHelloDone,
  ClientKeyExchange, ChangeCipherSpec and an encrypted Finished both ways, then one application data
  record per segment the h2c capture had, and close_notify with the FINs.
* dtls-srtp-1m.pcap (+ .keys, + .truth.json): one UDP flow as a WebRTC call has it: an ICE check
  (STUN with MESSAGE-INTEGRITY and FINGERPRINT), a DTLS 1.2 handshake (use_srtp offering
  SRTP_AES128_CM_HMAC_SHA1_80 and _32, the server choosing _80; mutual certificate authentication),
  then SRTP from pylibsrtp with an ICE consent check every 500 datagrams: two Opus streams (one SSRC
  each way, 20 ms packets of Opus-sized payloads with the audio-level header extension) whose sequence
  numbers wrap early, so a decryptor must track the rollover counter.

Everything is seeded: the same sizes give the same bytes. The key schedule (the TLS 1.2 PRF, RFC 5246
section 5; master secret 8.1; key block 6.3; Finished 7.4.9; the DTLS-SRTP exporter, RFC 5705 and RFC
5764 4.2) is written here on purpose, apart from protoscope's decoders, and checked against oracles:
OpenSSL's own handshakes (check_key_schedule), tshark decrypting the captures with the key log
(check_tls, check_dtls) and pylibsrtp decrypting the media back (check_srtp).
Run: python bench/gen_decrypt.py [--quick] [--fresh] (generates and checks both captures).
"""

from __future__ import annotations

import argparse
import collections
import datetime
import hashlib
import hmac
import json
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_captures import ETH, OUT, PCAP_HEADER, _ip, _record, _tcp, grpc_capture

TLS_PORT = 50443
GRPC_CONNECTIONS = 100  # gen_captures.grpc_capture's
TLS_HANDSHAKE_SEGMENTS = 6  # ClientHello, ServerHello+Certificate, SKE+Done, ACK, client and server Finished
DTLS_HANDSHAKE_DATAGRAMS = 4  # ClientHello, server flight, client flight, server CCS+Finished
TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 = 0xC02F
SRTP_AES128_CM_HMAC_SHA1_80, SRTP_AES128_CM_HMAC_SHA1_32 = 0x0001, 0x0002
X25519 = 0x001D
RSA_PKCS1_SHA256 = 0x0401
OPUS_PT = 111
CLIENT, SERVER = b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02"
SRTP_CLIENT_PORT, SRTP_SERVER_PORT = 40100, 50100


# -- key schedule (RFC 5246 5, 6.3, 7.4.9, 8.1; RFC 5705; RFC 5764 4.2) -------------------------------


def prf(secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """TLS 1.2 PRF with SHA-256: P_SHA256(secret, label + seed) cut to length."""
    seed = label + seed
    out, a = b"", seed
    while len(out) < length:
        a = hmac.digest(secret, a, "sha256")
        out += hmac.digest(secret, a + seed, "sha256")
    return out[:length]


def master_secret(pre_master: bytes, client_random: bytes, server_random: bytes) -> bytes:
    """RFC 5246 8.1 (no extended_master_secret is offered, so RFC 7627 does not apply)."""
    return prf(pre_master, b"master secret", client_random + server_random, 48)


@dataclass(frozen=True, slots=True)
class GcmKeys:
    """The AES-128-GCM write keys and implicit nonces (salts) of both sides."""

    client_write_key: bytes
    server_write_key: bytes
    client_write_iv: bytes
    server_write_iv: bytes


def key_block(master: bytes, client_random: bytes, server_random: bytes) -> GcmKeys:
    """RFC 5246 6.3 for an AEAD suite: no MAC keys, 16-byte keys, 4-byte implicit IVs (RFC 5288 3)."""
    kb = prf(master, b"key expansion", server_random + client_random, 40)
    return GcmKeys(kb[0:16], kb[16:32], kb[32:36], kb[36:40])


def finished(master: bytes, label: bytes, transcript: bytes) -> bytes:
    """verify_data: PRF(master, 'client finished'|'server finished', SHA-256(handshake messages))[:12]."""
    return prf(master, label, hashlib.sha256(transcript).digest(), 12)


@dataclass(frozen=True, slots=True)
class SrtpKeys:
    """SRTP master keys and salts of both sides for an AES-128 profile (RFC 5764 4.2)."""

    client_key: bytes
    server_key: bytes
    client_salt: bytes
    server_salt: bytes


def srtp_keys(master: bytes, client_random: bytes, server_random: bytes) -> SrtpKeys:
    """The RFC 5705 exporter 'EXTRACTOR-dtls_srtp' (no context), split client key, server key,
    client salt, server salt for a 16-byte key, 14-byte salt profile."""
    km = prf(master, b"EXTRACTOR-dtls_srtp", client_random + server_random, 2 * (16 + 14))
    return SrtpKeys(km[0:16], km[16:32], km[32:46], km[46:60])


# -- a deterministic RSA identity -------------------------------------------------------------------

_SMALL_PRIMES = [p for p in range(3, 2000, 2) if all(p % d for d in range(3, int(p**0.5) + 1, 2))]


def _probable_prime(n: int, rnd: random.Random) -> bool:
    if any(n % p == 0 for p in _SMALL_PRIMES):
        return False
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(32):
        x = pow(rnd.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(rnd: random.Random, bits: int) -> int:
    while True:
        n = rnd.getrandbits(bits) | (3 << (bits - 2)) | 1
        if _probable_prime(n, rnd) and (n - 1) % 65537:
            return n


@dataclass(frozen=True)
class Identity:
    """An RSA-2048 key and self-signed certificates made from a seed, so captures are reproducible
    (the cryptography library's key generation cannot be seeded; PKCS#1 v1.5 signing is deterministic)."""

    key: rsa.RSAPrivateKey
    server_cert: bytes
    client_cert: bytes

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def identity(seed: int) -> Identity:
    rnd = random.Random(seed)
    p, q = _prime(rnd, 1024), _prime(rnd, 1024)
    e, n = 65537, p * q
    d = pow(e, -1, (p - 1) * (q - 1))
    key = rsa.RSAPrivateNumbers(
        p,
        q,
        d,
        rsa.rsa_crt_dmp1(d, p),
        rsa.rsa_crt_dmq1(d, q),
        rsa.rsa_crt_iqmp(p, q),
        rsa.RSAPublicNumbers(e, n),
    ).private_key()

    def cert(name: str, serial: int) -> bytes:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        )
        return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)

    return Identity(key, cert("bench.protoscope.test", 0x5EED01), cert("client.protoscope.test", 0x5EED02))


# -- handshake messages and records -----------------------------------------------------------------


def _vec(size: int, data: bytes) -> bytes:
    return len(data).to_bytes(size, "big") + data


def _ext(ext_type: int, body: bytes) -> bytes:
    return ext_type.to_bytes(2, "big") + _vec(2, body)


def _u16s(values: list[int]) -> bytes:
    return b"".join(v.to_bytes(2, "big") for v in values)


def _use_srtp(profiles: list[int]) -> bytes:
    """RFC 5764 4.1.1: UseSRTPData, the profiles then an empty srtp_mki."""
    return _ext(0x000E, _vec(2, _u16s(profiles)) + b"\x00")


def _alpn(protocols: list[bytes]) -> bytes:
    return _ext(0x0010, _vec(2, b"".join(_vec(1, p) for p in protocols)))


class RecordWriter:
    """One side's record layer: plaintext records until change_cipher, then AES-128-GCM (RFC 5288) with
    the 8-byte sequence number (DTLS: epoch and sequence number) as the explicit nonce (RFC 5288 3
    leaves the choice to the sender; NSS and GnuTLS use the sequence number, OpenSSL a counter)."""

    def __init__(self, dtls: bool) -> None:
        self.dtls = dtls
        self.version = b"\xfe\xfd" if dtls else b"\x03\x03"
        self.epoch = 0
        self.seq = 0
        self.aead: AESGCM | None = None
        self.iv = b""

    def change_cipher(self, key: bytes, iv: bytes) -> None:
        self.aead, self.iv, self.seq = AESGCM(key), iv, 0
        self.epoch += 1

    def record(self, content_type: int, plaintext: bytes) -> bytes:
        seq_num = ((self.epoch << 48 | self.seq) if self.dtls else self.seq).to_bytes(8, "big")
        self.seq += 1
        if self.aead is None:
            body = plaintext
        else:
            aad = seq_num + bytes([content_type]) + self.version + len(plaintext).to_bytes(2, "big")
            body = seq_num + self.aead.encrypt(self.iv + seq_num, plaintext, aad)
        header = bytes([content_type]) + self.version + (seq_num if self.dtls else b"")
        return header + _vec(2, body)


@dataclass
class _Transcript:
    """Handshake messages as they are hashed for Finished and CertificateVerify (DTLS: with the
    12-byte header of an unfragmented message, RFC 6347 4.2.6)."""

    dtls: bool
    data: bytearray = field(default_factory=bytearray)
    message_seq: dict[bool, int] = field(default_factory=lambda: {True: 0, False: 0})

    def message(self, from_client: bool, msg_type: int, body: bytes) -> bytes:
        if self.dtls:
            seq = self.message_seq[from_client]
            self.message_seq[from_client] = seq + 1
            length = len(body).to_bytes(3, "big")
            msg = bytes([msg_type]) + length + seq.to_bytes(2, "big") + b"\x00\x00\x00" + length + body
        else:
            msg = bytes([msg_type]) + _vec(3, body)
        self.data += msg
        return msg


@dataclass
class Handshake:
    """A complete TLS/DTLS 1.2 ECDHE-RSA-AES128-GCM-SHA256 handshake: its flights (each a list of
    records, from_client first) and both sides' record layers, ready for application data."""

    client_random: bytes
    server_random: bytes
    master: bytes
    flights: list[tuple[bool, list[bytes]]]
    client: RecordWriter
    server: RecordWriter

    def keylog_line(self) -> str:
        return f"CLIENT_RANDOM {self.client_random.hex()} {self.master.hex()}\n"


def handshake(
    rnd: random.Random,
    ident: Identity,
    *,
    dtls: bool,
    alpn: bytes | None = None,
    srtp_profile: int | None = None,
    mutual: bool = False,
) -> Handshake:
    """Both peers' side of a full handshake with real X25519 key exchange, signatures and Finished."""
    version = b"\xfe\xfd" if dtls else b"\x03\x03"
    t = _Transcript(dtls)
    client, server = RecordWriter(dtls), RecordWriter(dtls)
    cr, sr = rnd.randbytes(32), rnd.randbytes(32)
    c_ecdh = X25519PrivateKey.from_private_bytes(rnd.randbytes(32))
    s_ecdh = X25519PrivateKey.from_private_bytes(rnd.randbytes(32))

    ch_ext = (
        _ext(0xFF01, b"\x00") + _ext(0x000A, _vec(2, _u16s([X25519, 0x0017]))) + _ext(0x000B, b"\x01\x00")
    )
    ch_ext += _ext(0x000D, _vec(2, _u16s([0x0403, 0x0804, RSA_PKCS1_SHA256])))
    if not dtls:
        name = b"bench.protoscope.test"
        ch_ext = _ext(0x0000, _vec(2, b"\x00" + _vec(2, name))) + ch_ext
    if alpn is not None:
        ch_ext += _alpn([alpn, b"http/1.1"])
    if srtp_profile is not None:
        ch_ext += _use_srtp([SRTP_AES128_CM_HMAC_SHA1_80, SRTP_AES128_CM_HMAC_SHA1_32])
    suites = [0xC02B, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0x009C, 0x00FF]
    ch = (
        version
        + cr
        + b"\x00"
        + (b"\x00" if dtls else b"")
        + _vec(2, _u16s(suites))
        + b"\x01\x00"
        + _vec(2, ch_ext)
    )
    flight1 = [client.record(22, t.message(True, 1, ch))]

    sh_ext = _ext(0xFF01, b"\x00") + _ext(0x000B, b"\x01\x00")
    if alpn is not None:
        sh_ext += _alpn([alpn])
    if srtp_profile is not None:
        sh_ext += _use_srtp([srtp_profile])
    suite = TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256.to_bytes(2, "big")
    sh = version + sr + _vec(1, rnd.randbytes(32)) + suite + b"\x00" + _vec(2, sh_ext)
    params = (
        b"\x03"
        + X25519.to_bytes(2, "big")
        + _vec(1, s_ecdh.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    )
    ske = params + RSA_PKCS1_SHA256.to_bytes(2, "big") + _vec(2, ident.sign(cr + sr + params))
    flight2 = [
        server.record(22, t.message(False, 2, sh)),
        server.record(22, t.message(False, 11, _vec(3, _vec(3, ident.server_cert)))),
        server.record(22, t.message(False, 12, ske)),
    ]
    if mutual:  # CertificateRequest: rsa_sign, ecdsa_sign; rsa_pkcs1_sha256, ecdsa_secp256r1_sha256; no CAs
        cert_req = _vec(1, b"\x01\x40") + _vec(2, _u16s([RSA_PKCS1_SHA256, 0x0403])) + b"\x00\x00"
        flight2.append(server.record(22, t.message(False, 13, cert_req)))
    flight2.append(server.record(22, t.message(False, 14, b"")))

    pre_master = c_ecdh.exchange(s_ecdh.public_key())
    master = master_secret(pre_master, cr, sr)
    keys = key_block(master, cr, sr)
    flight3 = []
    if mutual:
        flight3.append(client.record(22, t.message(True, 11, _vec(3, _vec(3, ident.client_cert)))))
    cke = _vec(1, c_ecdh.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    flight3.append(client.record(22, t.message(True, 16, cke)))
    if mutual:  # CertificateVerify signs the transcript so far (RFC 5246 7.4.8)
        verify = RSA_PKCS1_SHA256.to_bytes(2, "big") + _vec(2, ident.sign(bytes(t.data)))
        flight3.append(client.record(22, t.message(True, 15, verify)))
    flight3.append(client.record(20, b"\x01"))
    client.change_cipher(keys.client_write_key, keys.client_write_iv)
    flight3.append(
        client.record(22, t.message(True, 20, finished(master, b"client finished", bytes(t.data))))
    )

    flight4 = [server.record(20, b"\x01")]
    server.change_cipher(keys.server_write_key, keys.server_write_iv)
    flight4.append(
        server.record(22, t.message(False, 20, finished(master, b"server finished", bytes(t.data))))
    )
    flights = [(True, flight1), (False, flight2), (True, flight3), (False, flight4)]
    return Handshake(cr, sr, master, flights, client, server)


# -- gRPC over TLS ----------------------------------------------------------------------------------

Segment = tuple[bool, int, bytes]  # from the client, TCP flags, payload


def _h2c_connections(path: Path) -> Iterator[list[Segment]]:
    """The segments of each connection of a gen_captures.grpc_capture file (written one connection
    after another, plain Ethernet/IPv4/TCP without options)."""
    data = path.read_bytes()
    at, current = 24, -1
    conn: list[Segment] = []
    while at < len(data):
        caplen = int.from_bytes(data[at + 8 : at + 12], "little")
        frame = data[at + 16 : at + 16 + caplen]
        at += 16 + caplen
        from_client = frame[26:30] == CLIENT
        client_port = int.from_bytes(frame[34:36] if from_client else frame[36:38], "big")
        if client_port != current and conn:
            yield conn
            conn = []
        current = client_port
        conn.append((from_client, frame[47], frame[54:]))
    if conn:
        yield conn


def _is_request_headers(payload: bytes) -> bool:
    """A client segment that opens a call starts with an HTTP/2 HEADERS frame (type 1)."""
    return len(payload) > 9 and payload[3] == 0x01


def tls_grpc_capture(path: Path, keylog: Path, packets: int = 200_000, seed: int = 15) -> dict[str, object]:
    """Write the gRPC-over-TLS capture and its key log; return its truth (packets, calls by path)."""
    rnd = random.Random(seed)
    ident = identity(seed)
    h2c_packets = packets - GRPC_CONNECTIONS * TLS_HANDSHAKE_SEGMENTS
    if h2c_packets // GRPC_CONNECTIONS < 12:
        raise ValueError(f"too few packets for {GRPC_CONNECTIONS} TLS connections: {packets}")
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        h2c = Path(tmp) / "h2c.pcap"
        grpc_capture(h2c, h2c_packets)
        written, calls = 0, 0
        lines = []
        ts = 1_700_000_000_000_000
        with open(path, "wb") as out:
            out.write(PCAP_HEADER)
            for c, segments in enumerate(_h2c_connections(h2c)):
                hs = handshake(rnd, ident, dtls=False, alpn=b"h2")
                lines.append(hs.keylog_line())
                (_, ch), (_, server_flight), (_, client_fin), (_, server_fin) = hs.flights
                tls_segments: list[Segment] = [
                    (True, 0x18, b"".join(ch)),
                    (False, 0x10, b"".join(server_flight[:2])),  # ServerHello, Certificate
                    (False, 0x18, b"".join(server_flight[2:])),  # ServerKeyExchange, ServerHelloDone
                    (True, 0x10, b""),
                    (True, 0x18, b"".join(client_fin)),
                    (False, 0x18, b"".join(server_fin)),
                ]
                client_port = 20000 + c
                cseq, sseq = rnd.getrandbits(32), rnd.getrandbits(32)
                wire: list[Segment] = segments[:3] + tls_segments
                for from_client, flags, payload in segments[3:]:
                    writer = hs.client if from_client else hs.server
                    if payload:
                        calls += from_client and _is_request_headers(payload)
                        payload = writer.record(23, payload)
                    elif flags & 0x01:  # close_notify goes with the FIN, as TLS stacks close
                        payload, flags = writer.record(21, b"\x01\x00"), flags | 0x08
                    wire.append((from_client, flags, payload))
                chunk = []
                for from_client, flags, payload in wire:
                    seq, ack = (cseq, sseq) if from_client else (sseq, cseq)
                    sport, dport = (client_port, TLS_PORT) if from_client else (TLS_PORT, client_port)
                    seg = _tcp(
                        sport,
                        dport,
                        seq & 0xFFFFFFFF,
                        0 if flags == 0x02 else ack & 0xFFFFFFFF,
                        flags,
                        payload,
                    )
                    src, dst = (CLIENT, SERVER) if from_client else (SERVER, CLIENT)
                    chunk.append(_record(ts, ETH + _ip(src, dst, 6, seg, ts)))
                    ts += 10
                    grow = len(payload) + (1 if flags & 0x03 else 0)
                    if from_client:
                        cseq += grow
                    else:
                        sseq += grow
                out.write(b"".join(chunk))
                written += len(chunk)
    keylog.write_text("".join(lines))
    return {"packets": written, "connections": len(lines), "calls": {"/bench.Echo/Say": calls}}


# -- DTLS-SRTP --------------------------------------------------------------------------------------


def _udp_frame(from_client: bool, payload: bytes, ident: int) -> bytes:
    sport, dport = (
        (SRTP_CLIENT_PORT, SRTP_SERVER_PORT) if from_client else (SRTP_SERVER_PORT, SRTP_CLIENT_PORT)
    )
    src, dst = (CLIENT, SERVER) if from_client else (SERVER, CLIENT)
    return ETH + _ip(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload, ident)


ICE_UFRAG = {True: "bNch", False: "Xq7v"}
ICE_PWD = {True: "c7Yx0aGd3qkVJfbyNnPz1W", False: "pR2mT9eLwZ4sKuH8vQaB6c"}
CONSENT_EVERY = 500  # a Binding transaction every 500 datagrams: 5 s of two 50 packet/s streams (RFC 7675)


def _stun(msg_type: int, txid: bytes, attrs: list[tuple[int, bytes]], password: str) -> bytes:
    """A STUN message (RFC 8489) with MESSAGE-INTEGRITY (short-term credential) and FINGERPRINT."""
    body = b"".join(a.to_bytes(2, "big") + _vec(2, v) + b"\x00" * (-len(v) % 4) for a, v in attrs)

    def header(length: int) -> bytes:
        return struct.pack("!HHI", msg_type, length, 0x2112A442) + txid

    body += b"\x00\x08\x00\x14" + hmac.digest(password.encode(), header(len(body) + 24) + body, "sha1")
    crc = zlib.crc32(header(len(body) + 8) + body) ^ 0x5354554E
    return header(len(body) + 8) + body + b"\x80\x28\x00\x04" + crc.to_bytes(4, "big")


def _binding(rnd: random.Random, use_candidate: bool) -> tuple[bytes, bytes]:
    """An ICE connectivity check (or consent check) from the controlling client and its answer."""
    txid = rnd.randbytes(12)
    attrs = [
        (0x0006, f"{ICE_UFRAG[False]}:{ICE_UFRAG[True]}".encode()),  # USERNAME
        (0x0024, (0x6E7F1EFF).to_bytes(4, "big")),  # PRIORITY
        (0x802A, rnd.randbytes(8)),  # ICE-CONTROLLING
    ]
    if use_candidate:
        attrs.append((0x0025, b""))
    request = _stun(0x0001, txid, attrs, ICE_PWD[False])
    port = SRTP_CLIENT_PORT ^ 0x2112
    addr = bytes(a ^ b for a, b in zip(CLIENT, b"\x21\x12\xa4\x42", strict=True))
    response = _stun(0x0101, txid, [(0x0020, b"\x00\x01" + port.to_bytes(2, "big") + addr)], ICE_PWD[False])
    return request, response


def dtls_srtp_capture(
    path: Path, keylog: Path, packets: int = 1_000_000, seed: int = 5764
) -> dict[str, object]:
    """Write the DTLS-SRTP capture and its key log; return its truth (packets, streams, keys).

    The flow is what a WebRTC call puts on one 5-tuple: an ICE check, the DTLS handshake, then media
    with an ICE consent check every CONSENT_EVERY datagrams."""
    from pylibsrtp import Policy, Session

    rnd = random.Random(seed)
    hs = handshake(rnd, identity(seed), dtls=True, srtp_profile=SRTP_AES128_CM_HMAC_SHA1_80, mutual=True)
    keys = srtp_keys(hs.master, hs.client_random, hs.server_random)
    sessions = {}
    for from_client, key, salt in (
        (True, keys.client_key, keys.client_salt),
        (False, keys.server_key, keys.server_salt),
    ):
        policy = Policy(
            key=key + salt,
            ssrc_type=Policy.SSRC_ANY_OUTBOUND,
            srtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
        )
        sessions[from_client] = Session(policy=policy)
    # One Opus stream each way; sequence numbers start near the wrap so the rollover counter moves early.
    ssrc = {True: rnd.getrandbits(32), False: rnd.getrandbits(32)}
    seq = {d: 65536 - 500 - rnd.randrange(500) for d in (True, False)}
    rtp_ts = {d: rnd.getrandbits(32) for d in (True, False)}
    blob = rnd.randbytes(1 << 16)
    sizes = [rnd.randrange(60, 161) for _ in range(4096)]
    levels = [0x80 | rnd.randrange(20, 90) for _ in range(4096)]
    ts = 1_700_000_000_000_000
    media = stun = 0
    with open(path, "wb") as out:
        out.write(PCAP_HEADER)
        chunk = []
        request, response = _binding(rnd, use_candidate=True)
        head = [(True, request), (False, response)]
        head += [(from_client, b"".join(records)) for from_client, records in hs.flights]
        for n, (from_client, datagram) in enumerate(head):
            chunk.append(_record(ts, _udp_frame(from_client, datagram, n)))
            ts += 30_000
        stun += 2
        for i in range(packets - len(head)):
            if i % CONSENT_EVERY == CONSENT_EVERY - 2:
                request, response = _binding(rnd, use_candidate=False)
                chunk.append(_record(ts, _udp_frame(True, request, i + 16)))
                stun += 1
            elif i % CONSENT_EVERY == CONSENT_EVERY - 1:
                chunk.append(_record(ts + 500, _udp_frame(False, response, i + 16)))
                stun += 1
            else:
                d = media % 2 == 0
                size = sizes[media & 4095]
                at = (media * 131) & 0x7FFF
                marker = 0x80 if media < 2 else 0
                rtp = (
                    struct.pack(
                        "!BBHII", 0x90, marker | OPUS_PT, seq[d] & 0xFFFF, rtp_ts[d] & 0xFFFFFFFF, ssrc[d]
                    )
                    + b"\xbe\xde\x00\x01\x10"
                    + bytes([levels[media & 4095]])
                    + b"\x00\x00\x78"  # audio level (RFC 6464), padding; Opus TOC: config 15, hybrid FB 20 ms
                    + blob[at : at + size - 1]
                )
                seq[d] += 1
                rtp_ts[d] += 960
                media += 1
                chunk.append(_record(ts, _udp_frame(d, sessions[d].protect(rtp), i + 16)))
                ts += 10_000
            if len(chunk) >= 10_000:
                out.write(b"".join(chunk))
                chunk.clear()
        out.write(b"".join(chunk))
    keylog.write_text(hs.keylog_line())
    return {
        "packets": packets,
        "stun_packets": stun,
        "dtls_packets": len(hs.flights),
        "srtp_packets": media,
        "profile": "SRTP_AES128_CM_HMAC_SHA1_80",
        "client": f"{CLIENT[0]}.{CLIENT[1]}.{CLIENT[2]}.{CLIENT[3]}:{SRTP_CLIENT_PORT}",
        "streams": {"client": ssrc[True], "server": ssrc[False]},
        "packets_by_ssrc": {str(ssrc[True]): (media + 1) // 2, str(ssrc[False]): media // 2},
        "client_write_srtp_master_key": (keys.client_key + keys.client_salt).hex(),
        "server_write_srtp_master_key": (keys.server_key + keys.server_salt).hex(),
    }


# -- oracles ----------------------------------------------------------------------------------------


def _tshark(args: list[str]) -> str:
    tshark = shutil.which("tshark")
    if tshark is None:
        raise RuntimeError("the checks need tshark (apt-get install tshark)")
    return subprocess.run([tshark, *args], capture_output=True, text=True, check=True).stdout


def tshark_path_field() -> str:
    """grpc.path where this tshark has it; those without it (4.0 has none) give the request path as
    http2.headers.path on the same frames."""
    names = {line.split("\t")[2] for line in _tshark(["-G", "fields"]).splitlines() if line.startswith("F\t")}
    return "grpc.path" if "grpc.path" in names else "http2.headers.path"


def tshark_grpc_command(pcap: Path, keylog: Path) -> list[str]:
    tshark = shutil.which("tshark") or "tshark"
    return [
        tshark,
        "-r",
        str(pcap),
        "-o",
        f"tls.keylog_file:{keylog}",
        "-Y",
        "grpc",
        "-T",
        "fields",
        "-e",
        tshark_path_field(),
    ]


def tshark_calls(pcap: Path, keylog: Path) -> collections.Counter[str]:
    """Calls by path, as tshark sees them once it has decrypted the TLS records with the key log."""
    out = _tshark(tshark_grpc_command(pcap, keylog)[1:])
    return collections.Counter(line for line in out.splitlines() if line)


WARNING = 0x00600000  # tshark's expert severity "warning" (PI_WARN)


def check_tls(pcap: Path, keylog: Path, truth: dict[str, object]) -> str:
    """tshark decrypts every connection (both Finished messages, every call) and has no warning
    about any packet; raises when it does not."""
    calls = tshark_calls(pcap, keylog)
    if dict(calls) != truth["calls"]:
        raise AssertionError(f"tshark's calls {dict(calls)} != truth {truth['calls']}")
    shown = f"tls.handshake.type == 20 or _ws.malformed or _ws.expert.severity >= {WARNING}"
    fields = [
        "-e",
        "frame.number",
        "-e",
        "tls.handshake.type",
        "-e",
        "_ws.malformed",
        "-e",
        "_ws.expert.severity",
    ]
    out = _tshark(["-r", str(pcap), "-o", f"tls.keylog_file:{keylog}", "-Y", shown, "-T", "fields", *fields])
    rows = [line.split("\t") for line in out.splitlines()]
    fin = sum(row[1].split(",").count("20") for row in rows)
    warned = [row[0] for row in rows if row[2] or any(int(v) >= WARNING for v in row[3].split(",") if v)]
    if warned:
        raise AssertionError(f"tshark warns about frames {warned[:10]}")
    if fin != 2 * int(str(truth["connections"])):
        raise AssertionError(f"tshark decrypted {fin} Finished messages, not 2 per connection")
    return f"tshark with the key log: {dict(calls)}, {fin} Finished decrypted, no warning"


def check_dtls(pcap: Path, keylog: Path) -> str:
    """tshark parses the ICE check and the DTLS handshake (the first datagrams), with no expert info,
    and decrypts both Finished messages."""
    fields = [
        "-e",
        "dtls.handshake.type",
        "-e",
        "dtls.use_srtp.protection_profile",
        "-e",
        "_ws.malformed",
        "-e",
        "_ws.expert.severity",
        "-e",
        "stun.type",
    ]
    out = _tshark(["-r", str(pcap), "-c", "6", "-o", f"tls.keylog_file:{keylog}", "-T", "fields", *fields])
    rows = [line.split("\t") for line in out.splitlines()]
    types = [t for row in rows for t in row[0].split(",") if t]
    if types != ["1", "2", "11", "12", "13", "14", "11", "16", "15", "20", "20"]:
        raise AssertionError(f"tshark's DTLS handshake types: {types}")
    if [row[4] for row in rows[:2]] != ["0x0001", "0x0101"]:
        raise AssertionError(f"tshark's ICE check before the handshake: {rows[:2]}")
    if [row[1] for row in rows[2:4]] != ["0x0001,0x0002", "0x0001"]:
        raise AssertionError(f"tshark's use_srtp profiles: {[row[1] for row in rows[2:4]]}")
    if any(row[2] or row[3] for row in rows):
        raise AssertionError(f"tshark's expert info on the handshake: {rows}")
    return f"tshark with the key log: DTLS handshake types {' '.join(types)}, use_srtp 0x0001 chosen"


def udp_payloads(pcap: Path) -> Iterator[tuple[bool, bytes]]:
    """Each packet's UDP payload (and whether the DTLS client sent it) from a capture written here."""
    with open(pcap, "rb") as f:
        f.read(24)
        while header := f.read(16):
            frame = f.read(int.from_bytes(header[8:12], "little"))
            yield frame[26:30] == CLIENT, frame[42:]


def decrypt_srtp(pcap: Path, keylog: Path, count: int | None = None) -> tuple[int, dict[bool, int]]:
    """Derive the SRTP keys from the key log and the randoms in the capture's hellos, and decrypt the
    first count SRTP packets (all: None) back with pylibsrtp, checking that each is the Opus RTP that
    was protected and follows the one before; raises on the first that is not. Returns the packets
    decrypted and the sequence number wraps of each direction (True: from the DTLS client)."""
    from pylibsrtp import Policy, Session

    packets = (p for p in udp_payloads(pcap) if p[1][:1] and p[1][0] >= 20)  # RFC 7983: not STUN
    hellos = [next(packets) for _ in range(DTLS_HANDSHAKE_DATAGRAMS)]
    # DTLS record header 13 bytes, handshake header 12, version 2: the random follows.
    client_random = hellos[0][1][27:59]
    server_random = hellos[1][1][27:59]
    master = b""
    for line in keylog.read_text().splitlines():
        label, cr, secret = line.split()
        if label == "CLIENT_RANDOM" and bytes.fromhex(cr) == client_random:
            master = bytes.fromhex(secret)
    if not master:
        raise AssertionError("the key log has no secret for the capture's client random")
    keys = srtp_keys(master, client_random, server_random)
    sessions = {}
    for from_client, key, salt in (
        (True, keys.client_key, keys.client_salt),
        (False, keys.server_key, keys.server_salt),
    ):
        policy = Policy(
            key=key + salt,
            ssrc_type=Policy.SSRC_ANY_INBOUND,
            srtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
        )
        sessions[from_client] = Session(policy=policy)
    wraps = collections.Counter[bool]()
    last: dict[bool, int] = {}
    done = 0
    for from_client, srtp in packets:
        if done == count:
            break
        rtp = sessions[from_client].unprotect(srtp)  # raises on a bad tag
        if (
            rtp[0] >> 6 != 2
            or rtp[1] & 0x7F != OPUS_PT
            or rtp[12:16] != b"\xbe\xde\x00\x01"
            or rtp[20] != 0x78
        ):
            raise AssertionError(f"packet {done}: not the Opus RTP that was protected: {rtp[:21].hex()}")
        seq = int.from_bytes(rtp[2:4], "big")
        if from_client in last and seq != (last[from_client] + 1) & 0xFFFF:
            raise AssertionError(f"packet {done}: sequence {seq} after {last[from_client]}")
        wraps[from_client] += from_client in last and seq == 0
        last[from_client] = seq
        done += 1
    return done, dict(wraps)


def check_srtp(pcap: Path, keylog: Path, count: int = 20_000) -> str:
    """decrypt_srtp on the first count packets, which must cross both streams' first sequence wrap."""
    done, wraps = decrypt_srtp(pcap, keylog, count)
    if done == 0 or (done > 2000 and min(wraps.get(True, 0), wraps.get(False, 0)) < 1):
        raise AssertionError(f"decrypted {done} packets, sequence wraps {dict(wraps)}")
    wrapped = f"{wraps.get(True, 0)}/{wraps.get(False, 0)}"
    return f"pylibsrtp with keys from the key log: {done} packets decrypted, sequence wraps {wrapped}"


def _openssl_handshake(ident: Identity, dtls: bool) -> tuple[Any, list[tuple[bool, bytes]]]:
    """A TLS or DTLS 1.2 ECDHE-RSA-AES128-GCM-SHA256 handshake between two pyOpenSSL endpoints in
    memory; returns the client connection and what each side sent, flight by flight."""
    from OpenSSL import SSL, crypto

    def context(server: bool) -> Any:
        ctx = SSL.Context(SSL.DTLS_METHOD if dtls else SSL.TLS_METHOD)
        version = 0xFEFD if dtls else SSL.TLS1_2_VERSION
        ctx.set_min_proto_version(version)
        ctx.set_max_proto_version(version)
        ctx.set_cipher_list(b"ECDHE-RSA-AES128-GCM-SHA256")
        ctx.set_options(SSL.OP_NO_TICKET | SSL.OP_NO_QUERY_MTU)
        if dtls:
            ctx.set_tlsext_use_srtp(b"SRTP_AES128_CM_SHA1_80")
        if server:
            ctx.use_privatekey(crypto.PKey.from_cryptography_key(ident.key))
            ctx.use_certificate(
                crypto.X509.from_cryptography(x509.load_der_x509_certificate(ident.server_cert))
            )
        return ctx

    client, server = SSL.Connection(context(False), None), SSL.Connection(context(True), None)
    for conn in (client, server):
        if dtls:  # whole messages, as handshake() writes them: a memory BIO has no path MTU to query
            conn.set_ciphertext_mtu(4096)
    client.set_connect_state()
    server.set_accept_state()
    flights: list[tuple[bool, bytes]] = []
    moved = True
    while moved:
        moved = False
        for conn, peer, from_client in ((client, server, True), (server, client, False)):
            try:
                conn.do_handshake()
            except SSL.WantReadError:
                pass
            try:
                data = conn.bio_read(1 << 16)
            except SSL.WantReadError:
                continue
            flights.append((from_client, data))
            peer.bio_write(data)
            moved = True
    return client, flights


def check_key_schedule() -> str:
    """OpenSSL as the oracle of the key schedule written here: in a TLS 1.2 and a DTLS 1.2 handshake
    between pyOpenSSL endpoints, each side's encrypted Finished must decrypt with key_block() to the
    verify_data finished() gives over the transcript (DTLS: with the 12-byte message headers), and
    srtp_keys() must equal OpenSSL's RFC 5705 exporter 'EXTRACTOR-dtls_srtp'."""
    ident = identity(15)
    for dtls in (False, True):
        client, flights = _openssl_handshake(ident, dtls)
        master, cr, sr = client.master_key(), client.client_random(), client.server_random()
        keys = key_block(master, cr, sr)
        transcript = bytearray()
        encrypted = {True: False, False: False}
        header_size = 13 if dtls else 5
        for from_client, data in flights:
            at = 0
            while at < len(data):
                content_type = data[at]
                length = int.from_bytes(data[at + header_size - 2 : at + header_size], "big")
                header, body = data[at : at + header_size], data[at + header_size : at + header_size + length]
                at += header_size + length
                if content_type == 20:
                    encrypted[from_client] = True
                elif content_type == 22 and not encrypted[from_client]:
                    if dtls and body[1:4] != body[9:12]:
                        raise AssertionError("OpenSSL fragmented a DTLS handshake message: not checked")
                    transcript += body
                elif content_type == 22:
                    key, iv = (
                        (keys.client_write_key, keys.client_write_iv)
                        if from_client
                        else (keys.server_write_key, keys.server_write_iv)
                    )
                    seq_num = header[3:11] if dtls else bytes(8)
                    aad = seq_num + header[:3] + (length - 24).to_bytes(2, "big")
                    message = AESGCM(key).decrypt(iv + body[:8], body[8:], aad)
                    label = b"client finished" if from_client else b"server finished"
                    if message[0] != 20 or message[-12:] != finished(master, label, bytes(transcript)):
                        raise AssertionError(
                            f"{'DTLS' if dtls else 'TLS'} {label.decode()}: verify_data differs"
                        )
                    transcript += message
        if not all(encrypted.values()):
            raise AssertionError("OpenSSL's handshake did not finish")
        if dtls:
            k = srtp_keys(master, cr, sr)
            exported = client.export_keying_material(b"EXTRACTOR-dtls_srtp", 60)
            if k.client_key + k.server_key + k.client_salt + k.server_salt != exported:
                raise AssertionError("srtp_keys() differs from OpenSSL's EXTRACTOR-dtls_srtp exporter")
    return "OpenSSL agrees with the key schedule: TLS and DTLS 1.2 key block and Finished, SRTP exporter"


# -- files ------------------------------------------------------------------------------------------


def _label(n: int) -> str:
    return f"{n // 1_000_000}m" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


@dataclass(frozen=True)
class Generated:
    """A generated capture, its key log and its truth (also written beside it as .truth.json)."""

    pcap: Path
    keylog: Path
    truth: dict[str, object]
    seconds: float  # 0 when the files were already there

    @property
    def took(self) -> str:
        return f"generated in {self.seconds:.1f} s" if self.seconds else "already generated (--fresh to redo)"


def _ensure(
    name: str, make: Callable[[Path, Path, int], dict[str, object]], packets: int, fresh: bool
) -> Generated:
    """The capture, key log and truth of that name and size, generated unless they are there (or fresh)."""
    OUT.mkdir(exist_ok=True)
    pcap = OUT / f"{name}-{_label(packets)}.pcap"
    keylog, truth_path = pcap.with_suffix(".keys"), pcap.with_suffix(".truth.json")
    if not fresh and pcap.exists() and keylog.exists() and truth_path.exists():
        return Generated(pcap, keylog, json.loads(truth_path.read_text()), 0.0)
    t = time.perf_counter()
    partial = pcap.with_suffix(".partial")
    truth = make(partial, keylog, packets)
    partial.rename(pcap)
    truth_path.write_text(json.dumps(truth, indent=1) + "\n")
    return Generated(pcap, keylog, truth, time.perf_counter() - t)


def ensure_tls(packets: int = 200_000, fresh: bool = False) -> Generated:
    return _ensure("grpc-tls", tls_grpc_capture, packets, fresh)


def ensure_srtp(packets: int = 1_000_000, fresh: bool = False) -> Generated:
    return _ensure("dtls-srtp", dtls_srtp_capture, packets, fresh)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 TLS and 100,000 DTLS-SRTP packets")
    parser.add_argument("--grpc-packets", type=int)
    parser.add_argument("--srtp-packets", type=int)
    parser.add_argument("--fresh", action="store_true", help="generate them again")
    args = parser.parse_args()
    print(check_key_schedule())
    tls = ensure_tls(args.grpc_packets or (20_000 if args.quick else 200_000), args.fresh)
    print(f"{tls.pcap.name}: {tls.truth['packets']:,} packets, {tls.took}")
    print("  " + check_tls(tls.pcap, tls.keylog, tls.truth))
    srtp = ensure_srtp(args.srtp_packets or (100_000 if args.quick else 1_000_000), args.fresh)
    print(f"{srtp.pcap.name}: {srtp.truth['packets']:,} packets, {srtp.took}")
    print("  " + check_dtls(srtp.pcap, srtp.keylog))
    print("  " + check_srtp(srtp.pcap, srtp.keylog))


if __name__ == "__main__":
    main()
