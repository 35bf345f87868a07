"""The bulk path of `--report calls` over TLS (inspector/bulk_tls.py) gives the same text as the
Python decoders.

As for h2c (test_bulk_calls.py), the normal pass is the oracle: on the TLS samples (real grpcio
and OpenSSL traffic) and on generated gRPC-over-TLS connections (TLS 1.2 and 1.3 with their
suites, records cut and glued across segments, session tickets, alerts, padding, then KeyUpdates,
wrong or missing keys, garbage, gaps and flipped bytes), the report written with the bulk path
must equal, byte for byte, the report written without it; and the connections the bulk path
leaves to the normal pass are the ones it must leave.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from hpack import Encoder
from hyperframe.frame import DataFrame, HeadersFrame, SettingsFrame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP
from scapy.packet import Packet

from protoscope.decoders.registry import load_registry
from protoscope.decoders.tls import crypto
from protoscope.decoders.tls.keylog import KeyLog
from protoscope.decoders.tls.suites import SUITES, CipherSuite
from protoscope.inspector import bulk_calls, bulk_tls
from protoscope.inspector.report import rows
from protoscope.inspector.report.output import write
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES
from tests.inspector.test_bulk_calls import DRAINS, conversation
from tests.pcapgen import tcp_conversation
from tests.pcapgen import write as write_pcap

BUILT = bulk_calls._bulk
needs_extension = pytest.mark.skipif(BUILT is None, reason="the extension was not compiled")


def keylog(text: str = "", path: Path | None = None) -> KeyLog:
    keys = KeyLog()
    if path is not None:
        keys.add_text(path.read_text(), str(path))
    if text:
        keys.add_text(text, "test")
    return keys


def open_session(path: Path, keys: KeyLog) -> Session:
    """A session as the command line opens one with --keylog."""
    reg = load_registry()
    reg.options = {"tls.keylog": keys}
    reg.configure(reg.options)
    return Session.open(path, reg)


@contextmanager
def bulk(enabled: bool) -> Iterator[None]:
    saved = bulk_calls._bulk
    bulk_calls._bulk = BUILT if enabled else None
    try:
        yield
    finally:
        bulk_calls._bulk = saved


def report(path: Path, keys: KeyLog, enabled: bool, fmt: str = "jsonl", drain_every: int = 1024) -> str:
    saved = rows.DRAIN_EVERY
    rows.DRAIN_EVERY = drain_every
    try:
        with bulk(enabled):
            session = open_session(path, keys)
            try:
                out = io.StringIO()
                write(session, "calls", fmt, out)
                return out.getvalue()
            finally:
                session.close()
    finally:
        rows.DRAIN_EVERY = saved


def left(path: Path, keys: KeyLog) -> dict[int, str] | None:
    """{flow: why} of the TLS connections the bulk path planned but left to the normal pass; None
    when it planned none."""
    session = open_session(path, keys)
    try:
        clean = bulk_calls.clean_flows(session)
        plan = None if clean is None else bulk_tls.plan_tls(session, clean)
        if plan is None:
            return None
        bulk_calls._init()
        why: dict[int, str] = bulk_tls.check(session, plan)[1]
        return why
    finally:
        session.close()


def same(path: Path, keys: KeyLog, drain_every: int = 1024) -> str:
    text = report(path, keys, True, drain_every=drain_every)
    assert text == report(path, keys, False, drain_every=drain_every)
    return text


# -- the samples -----------------------------------------------------------------------------------

GRPC_TLS = SAMPLES / "grpc-tls.pcap"
GRPC_KEYS = SAMPLES / "grpc-tls.keys"


@needs_extension
def test_grpc_tls_sample_is_taken_whole_and_alike() -> None:
    """grpcio over TLS 1.3 (AES-256-GCM) and TLS 1.2 (ChaCha20-Poly1305): both connections are
    opened here, and the rows are the normal pass's."""
    keys = keylog(path=GRPC_KEYS)
    assert left(GRPC_TLS, keys) == {}
    text = same(GRPC_TLS, keys)
    assert text.count("\n") == 11
    assert report(GRPC_TLS, keys, True, "json") == report(GRPC_TLS, keys, False, "json")
    assert same(GRPC_TLS, keys, drain_every=1) == text


@needs_extension
@pytest.mark.parametrize("which", ["none", "other", "client-only"])
def test_grpc_tls_sample_without_its_keys(which: str) -> None:
    """No key log, a key log of other connections, or only the client's secrets: nothing (or not
    everything) opens, and what the normal pass says of it is what is written."""
    lines = GRPC_KEYS.read_text().splitlines()
    text = {
        "none": "",
        "other": (SAMPLES / "tls-keys.keys").read_text(),
        "client-only": "\n".join(line for line in lines if not line.startswith("SERVER_")),
    }[which]
    keys = keylog(text)
    same(GRPC_TLS, keys)
    if which == "client-only":  # TLS 1.3 needs the server's secrets; TLS 1.2 has CLIENT_RANDOM
        assert list((left(GRPC_TLS, keys) or {}).values()) == ["no handshake traffic secrets"]


@needs_extension
def test_tls_keys_sample() -> None:
    """OpenSSL connections of every suite (TLS 1.2 GCM, ChaCha20 and CBC, TLS 1.3), none with gRPC
    inside: each is opened up to its first plaintext (every handshake followed, every tag so far
    verified), then left to the normal pass, which finds no call."""
    keys = keylog(path=SAMPLES / "tls-keys.keys")
    assert same(SAMPLES / "tls-keys.pcap", keys) == ""
    no_alpn = "ALPN None, not h2"
    assert left(SAMPLES / "tls-keys.pcap", keys) == {
        **dict.fromkeys([0, 1, 2, 3, 4, 6], no_alpn),
        5: "ALPN 'http/1.1', not h2",
        7: "the server's first plaintext is not where a frame starts",  # h2 chosen, text sent
    }


# -- generated connections -------------------------------------------------------------------------


def _vec(size: int, body: bytes) -> bytes:
    return len(body).to_bytes(size, "big") + body


def _ext(kind: int, body: bytes) -> bytes:
    return kind.to_bytes(2, "big") + _vec(2, body)


def _message(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + _vec(3, body)


def _alpn(name: bytes) -> bytes:
    return _ext(16, _vec(2, _vec(1, name)))


@dataclass
class Sealer:
    """One sender's record layer: plaintext until `protect`, then the suite's AEAD."""

    tls13: bool
    suite: CipherSuite | None = None
    aead: AESGCM | ChaCha20Poly1305 | None = None
    iv: bytes = b""
    seq: int = 0

    def protect(self, suite: CipherSuite, key: bytes, iv: bytes) -> None:
        self.suite, self.iv, self.seq = suite, iv, 0
        self.aead = ChaCha20Poly1305(key) if suite.cipher == "CHACHA20-POLY1305" else AESGCM(key)

    def record(self, ctype: int, plain: bytes, padding: int = 0) -> bytes:
        seq = self.seq
        self.seq += 1
        if self.aead is None or self.suite is None:
            return bytes([ctype, 3, 3]) + _vec(2, plain)
        if self.tls13:
            inner = plain + bytes([ctype]) + bytes(padding)
            header = b"\x17\x03\x03" + (len(inner) + 16).to_bytes(2, "big")
            nonce = (int.from_bytes(self.iv, "big") ^ seq).to_bytes(12, "big")
            return header + self.aead.encrypt(nonce, inner, header)
        aad = seq.to_bytes(8, "big") + bytes([ctype, 3, 3]) + len(plain).to_bytes(2, "big")
        if self.suite.explicit_nonce_len:
            explicit = seq.to_bytes(8, "big")
            body = explicit + self.aead.encrypt(self.iv + explicit, plain, aad)
        else:
            nonce = (int.from_bytes(self.iv, "big") ^ seq).to_bytes(12, "big")
            body = self.aead.encrypt(nonce, plain, aad)
        return bytes([ctype, 3, 3]) + _vec(2, body)


@dataclass
class Tls:
    """Both sides of one TLS connection: what the handshake sends and the key log that opens it."""

    tls13: bool
    suite: CipherSuite
    rng: random.Random
    client: Sealer = field(init=False)
    server: Sealer = field(init=False)
    keylog: list[str] = field(default_factory=list)
    secrets: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.client, self.server = Sealer(self.tls13), Sealer(self.tls13)

    def handshake(self, alpn: bytes | None) -> list[tuple[bool, bytes]]:
        """(from the client, record) of a whole handshake; the key log lines go to `keylog`."""
        rng = self.rng
        cr, sr = rng.randbytes(32), rng.randbytes(32)
        alpn_ext = _alpn(alpn) if alpn is not None else b""
        versions = _ext(43, _vec(1, b"\x03\x04\x03\x03"))
        suites = _vec(2, b"".join(s.to_bytes(2, "big") for s in (0x1301, 0x1302, 0x1303, 0xC02F, 0xCCA8)))
        ch = (
            b"\x03\x03"
            + cr
            + b"\x00"
            + suites
            + b"\x01\x00"
            + _vec(2, versions + _ext(0, b"") + _alpn(b"h2"))
        )
        out = [(True, self.client.record(22, _message(1, ch)))]
        suite = self.suite.id.to_bytes(2, "big")
        size = 48 if self.suite.hash == "sha384" else 32
        if self.tls13:
            sh = b"\x03\x03" + sr + b"\x00" + suite + b"\x00" + _vec(2, _ext(43, b"\x03\x04"))
            out.append((False, self.server.record(22, _message(2, sh))))
            out.append((False, self.server.record(20, b"\x01")))
            names = ["CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET"]
            names += ["CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"]
            for name in names:
                self.secrets[name] = rng.randbytes(size)
                self.keylog.append(f"{name} {cr.hex()} {self.secrets[name].hex()}")
            self.server.protect(self.suite, *crypto.traffic_key_iv(self.suite, self.secrets[names[1]]))
            ee = _message(8, _vec(2, alpn_ext))
            cert = _message(11, b"\x00" + _vec(3, _vec(3, rng.randbytes(40)) + b"\x00\x00"))
            fin = _message(20, rng.randbytes(size))
            if rng.random() < 0.5:  # in one record, or one record each
                out.append((False, self.server.record(22, ee + cert + fin)))
            else:
                out += [(False, self.server.record(22, m)) for m in (ee, cert, fin)]
            self.server.protect(self.suite, *crypto.traffic_key_iv(self.suite, self.secrets[names[3]]))
            out.append((True, self.client.record(20, b"\x01")))
            self.client.protect(self.suite, *crypto.traffic_key_iv(self.suite, self.secrets[names[0]]))
            out.append((True, self.client.record(22, _message(20, rng.randbytes(size)))))
            self.client.protect(self.suite, *crypto.traffic_key_iv(self.suite, self.secrets[names[2]]))
            return out
        sh = b"\x03\x03" + sr + b"\x00" + suite + b"\x00" + _vec(2, alpn_ext)
        out.append((False, self.server.record(22, _message(2, sh) + _message(11, b"\x00\x00\x00"))))
        out.append((False, self.server.record(22, _message(14, b""))))
        master = rng.randbytes(48)
        self.secrets["CLIENT_RANDOM"] = master
        self.keylog.append(f"CLIENT_RANDOM {cr.hex()} {master.hex()}")
        (_, ckey, civ), (_, skey, siv) = crypto.key_block12(self.suite, master, cr, sr)
        out.append((True, self.client.record(22, _message(16, _vec(1, rng.randbytes(32))))))
        out.append((True, self.client.record(20, b"\x01")))
        self.client.protect(self.suite, ckey, civ)
        out.append((True, self.client.record(22, _message(20, rng.randbytes(12)))))
        out.append((False, self.server.record(20, b"\x01")))
        self.server.protect(self.suite, skey, siv)
        out.append((False, self.server.record(22, _message(20, rng.randbytes(12)))))
        return out

    def key_update(self, from_client: bool) -> bytes:
        """TLS 1.3: a KeyUpdate record; the side's next records use its next traffic secret."""
        sealer = self.client if from_client else self.server
        record = sealer.record(22, _message(24, b"\x00"))
        name = "CLIENT_TRAFFIC_SECRET_0" if from_client else "SERVER_TRAFFIC_SECRET_0"
        secret = self.secrets[name] = crypto.next_traffic_secret(self.suite.hash, self.secrets[name])
        sealer.protect(self.suite, *crypto.traffic_key_iv(self.suite, secret))
        return record

    def application(self, from_client: bool, data: bytes) -> list[bytes]:
        """`data` as one or more application data records (TLS 1.3: sometimes padded)."""
        sealer = self.client if from_client else self.server
        out = []
        while True:
            cut = self.rng.choice([len(data), len(data), self.rng.randrange(0, len(data) + 1)])
            padding = self.rng.choice([0, 0, 3]) if self.tls13 else 0
            out.append(sealer.record(23, data[:cut], padding))
            data = data[cut:]
            if not data:
                return out


SUITE_CHOICES = {
    "1.3 AES-128-GCM": (True, 0x1301),
    "1.3 AES-256-GCM": (True, 0x1302),
    "1.3 ChaCha20": (True, 0x1303),
    "1.2 AES-128-GCM": (False, 0xC02F),
    "1.2 ChaCha20": (False, 0xCCA8),
}
EXTRAS = [
    "ticket", "close", "empty", "key_update", "bad_key", "no_key", "garbage", "lost", "gap", "http/1.1"
]  # fmt: skip


def tls_connection(
    segments: list[tuple[bool, bytes]], suite: str, extras: set[str], rng: random.Random
) -> tuple[list[tuple[bool, bytes]], list[str]]:
    """An h2c conversation's segments carried over TLS: (TCP segments, key log lines). Suite
    "h2c" leaves it in plaintext (both bulk paths in one capture)."""
    if suite == "h2c":
        return segments, []
    tls13, sid = SUITE_CHOICES[suite]
    conn = Tls(tls13, SUITES[sid], rng)
    records = conn.handshake(b"http/1.1" if "http/1.1" in extras else b"h2")
    if "ticket" in extras and tls13:
        records.append((False, conn.server.record(22, _message(4, rng.randbytes(20)))))
    for k, (from_client, data) in enumerate(segments):
        if "empty" in extras and rng.random() < 0.2:
            records.append((from_client, (conn.client if from_client else conn.server).record(23, b"")))
        if "key_update" in extras and tls13 and k == len(segments) // 2:
            records.append((from_client, conn.key_update(from_client)))
        records += [(from_client, r) for r in conn.application(from_client, data)]
    if "close" in extras:
        records.append((True, conn.client.record(21, b"\x01\x00")))
    lines = conn.keylog
    if "bad_key" in extras:  # one secret off by one bit: its side's tags fail
        label, random_hex, secret = lines[-1].split()
        lines[-1] = f"{label} {random_hex} {int(secret, 16) ^ 1:0{len(secret)}x}"
    if "no_key" in extras:
        lines = lines[:1]
    if "garbage" in extras:
        at = rng.randrange(1, len(records))
        records.insert(at, (records[at][0], rng.randbytes(rng.randrange(1, 30))))
    # TCP segments: records glued together or cut anywhere, each side's bytes in order
    # (the ClientHello's random is in the first segment, as in any real capture)
    out: list[tuple[bool, bytes]] = [records[0]]
    for from_client, raw in records[1:]:
        if out[-1][0] == from_client and rng.random() < 0.4:
            out[-1] = (from_client, out[-1][1] + raw)
        elif len(raw) > 2 and rng.random() < 0.3:
            cut = rng.randrange(1, len(raw))
            out += [(from_client, raw[:cut]), (from_client, raw[cut:])]
        else:
            out.append((from_client, raw))
    if "lost" in extras and len(out) > 4:  # bytes missing where TCP does not see it
        del out[rng.randrange(4, len(out))]
    return out, lines


Conv = tuple[list[tuple[bool, bytes]], str, set[str], int]
"""An h2c conversation's segments, the TLS version and suite, the extras, a seed."""


@st.composite
def tls_conversation(draw: st.DrawFn) -> Conv:
    return (
        draw(conversation()),
        draw(st.sampled_from([*sorted(SUITE_CHOICES), "h2c"])),
        set(draw(st.lists(st.sampled_from(EXTRAS), max_size=3))),
        draw(st.integers(0, 1 << 30)),
    )


def build(tmp: Path, convs: list[Conv], seed: int) -> tuple[Path, KeyLog]:
    """The connections in one capture (interleaved at random) and the key log of them all; a
    connection with the "gap" extra loses one of its TCP segments (a gap TCP sees)."""
    rng = random.Random(seed)
    packets: list[list[Packet]] = []
    lines: list[str] = []
    for k, (segments, suite, extras, conn_seed) in enumerate(convs):
        segs, keys = tls_connection(segments, suite, extras, random.Random(conn_seed))
        lines += keys
        pkts = tcp_conversation(segs, client=("127.0.0.1", 40000 + k), server=("127.0.0.2", 50051))
        if "gap" in extras:  # a segment with a later one the same way (where TCP sees the gap)
            later = [
                n for n in range(6, len(pkts) - 1) if any(q[IP].src == pkts[n][IP].src for q in pkts[n + 1 :])
            ]
            if later:
                del pkts[rng.choice(later)]
        packets.append(pkts)
    merged: list[Packet] = []
    while any(packets):
        merged.append(rng.choice([p for p in packets if p]).pop(0))
    for n, p in enumerate(merged):
        p.time = 1_700_000_000 + n / 997
    return write_pcap(tmp / "gen.pcap", merged), keylog("\n".join(lines))


@needs_extension
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same 40 each run: CI meets what a run here met
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(tls_conversation(), min_size=1, max_size=2), st.integers(0, 1 << 30), DRAINS)
def test_generated_tls_connections(
    tmp_path_factory: pytest.TempPathFactory, convs: list[Conv], seed: int, drain_every: int
) -> None:
    path, keys = build(tmp_path_factory.mktemp("tls"), convs, seed)
    same(path, keys, drain_every)


@needs_extension
@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(tls_conversation(), min_size=1, max_size=2),
    st.integers(0, 1 << 30),
    st.lists(
        st.tuples(st.integers(0, 1), st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=4
    ),
)
def test_generated_tls_connections_with_flipped_bytes(
    tmp_path_factory: pytest.TempPathFactory, convs: list[Conv], seed: int, flips: list[tuple[int, int, int]]
) -> None:
    tmp = tmp_path_factory.mktemp("tls")
    path, keys = build(tmp, convs, seed)
    data = bytearray(path.read_bytes())
    spans = payload_spans(bytes(data))
    for k, at, value in flips:  # in TCP payloads: record headers, handshakes, ciphertext, tags
        start, end = spans[(k * 7919 + at) % len(spans)]
        data[start + at % (end - start)] = value
    path.write_bytes(bytes(data))
    same(path, keys)


def payload_spans(pcap: bytes) -> list[tuple[int, int]]:
    """Where each packet's TCP payload is in a pcap file (Ethernet, IPv4 and TCP without options,
    as tests/pcapgen.py writes them)."""
    spans, at = [], 24
    while at + 16 <= len(pcap):
        caplen = int.from_bytes(pcap[at + 8 : at + 12], "little")
        start = at + 16
        if caplen > 54:
            spans.append((start + 54, start + caplen))
        at = start + caplen
    return spans


def unary_calls(n: int) -> list[tuple[bool, bytes]]:
    """h2c segments of `n` unary gRPC calls, one after the other."""
    client, server = Encoder(), Encoder()
    out = [
        (False, SettingsFrame(0).serialize()),
        (True, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SettingsFrame(0).serialize()),
    ]
    request = [(":method", "POST"), (":path", "/x.Y/Z"), ("content-type", "application/grpc")]
    for k in range(n):
        sid, body = 2 * k + 1, b"\x00\x00\x00\x00\x02\x08" + bytes([k])
        head = HeadersFrame(sid, client.encode([*request, ("x-n", str(k))]), flags=["END_HEADERS"])
        out.append((True, head.serialize() + DataFrame(sid, body, flags=["END_STREAM"]).serialize()))
        block = server.encode([(":status", "200"), ("content-type", "application/grpc")])
        out.append((False, HeadersFrame(sid, block, flags=["END_HEADERS"]).serialize()))
        out.append((False, DataFrame(sid, body).serialize()))
        trailers = server.encode([("grpc-status", "0")])
        out.append((False, HeadersFrame(sid, trailers, flags=["END_HEADERS", "END_STREAM"]).serialize()))
    return out


@needs_extension
@pytest.mark.parametrize("suite", sorted(SUITE_CHOICES))
@pytest.mark.parametrize(
    ("extras", "why"),
    [
        (set(), None),
        ({"ticket", "close", "empty"}, None),
        ({"key_update", "ticket"}, None),
        ({"bad_key"}, "record 0: bad tag"),
        ({"no_key"}, "no key"),
        ({"http/1.1"}, "ALPN 'http/1.1', not h2"),
        ({"garbage"}, "not a record"),
        ({"gap"}, None),
    ],
)
def test_what_is_taken_and_what_is_left(
    tmp_path: Path, suite: str, extras: set[str], why: str | None
) -> None:
    """One connection with three unary calls, each extra on its own: taken whole, or left to the
    normal pass for the reason given; the same rows either way."""
    segments = unary_calls(3)
    tls13 = SUITE_CHOICES[suite][0]
    path, keys = build(tmp_path, [(segments, suite, extras, 7)], 0)
    text = same(path, keys)
    got = left(path, keys)
    if got == {}:
        assert [json.loads(row)["status"] for row in text.splitlines()] == [0, 0, 0]
    if "gap" in extras:  # the plan does not take a connection with a gap in its TCP stream
        assert got is None
    elif why is None:
        assert got == {}
    elif why == "no key":  # TLS 1.3: only the client's handshake secret; 1.2: its only line kept
        assert got == ({0: "no handshake traffic secrets"} if tls13 else {})
    else:
        assert got is not None and why in got[0]


@needs_extension
def test_records_opened_twice_past_the_memory_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_HELD bytes of plaintext the check run keeps nothing and the second run opens the
    records again: the same rows."""
    keys = keylog(path=GRPC_KEYS)
    text = same(GRPC_TLS, keys)
    monkeypatch.setattr(bulk_tls, "MAX_HELD", 0)
    assert report(GRPC_TLS, keys, True) == text


HELLO = (
    bytes.fromhex("16030100") + bytes([47]) + bytes.fromhex("010000") + bytes([43]) + b"\x03\x03" + bytes(32)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.binary(max_size=80)), max_size=6), st.booleans())
def test_hostile_bytes_only_leave(segments: list[tuple[int, bytes]], hello_first: bool) -> None:
    """Whatever the bytes, following a connection either goes on or leaves it to the normal pass
    (`Leave`): no other exception, nothing held past a record."""
    conn = bulk_tls.Followed(keylog(f"CLIENT_RANDOM {bytes(32).hex()} {bytes(48).hex()}"))
    if hello_first:
        segments = [(0, HELLO + b"\x00\x00\x02\x13\x01\x01\x00\x00\x00"), *segments]
    try:
        for d, data in segments:
            conn.feed(d, data)
    except bulk_tls.Leave:
        return
    assert all(len(held) < 5 + (1 << 14) + 2048 for held in conn.held)


@needs_extension
def test_h2c_and_tls_connections_in_one_capture_keep_their_own_grpcurl_flags(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Both extension runs in one report: h2c calls get `grpcurl -plaintext`, TLS ones not (each
    run's rows had taken the last run's flag; found by the property test above)."""
    tls = [
        (False, b"\x00\x00\x00"),
        (False, b"\x04\x00\x00\x00\x00\x00"),
        (True, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"),
        (
            True,
            b"\x00\x00\x1a\x01\x05\x00\x00\x00\x01\x83\x86D\x89b\xbe\xb3/\xbb\xb9\x18\xbe\x7f_\x8b\x1du\xd0b\r&=LMed",
        ),
        (False, b"\x00\x00\x0e\x01\x04\x00\x00\x00\x01\x88_\x8b\x1du\xd0b\r&=LMed"),
        (False, b"\x00\x00\x0c\x01\x05\x00\x00\x00\x01@\x88\x9a\xca\xc8\xb2\x124\xda\x8f\x81\x07"),
    ]
    h2c = [
        (False, b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"),
        (
            True,
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"
            b"\x00\x00\x1a\x01\x04\x00\x00\x00\x03\x83\x86D\x89b\xbe\xb3/\xbb\xb9\x18\xbe\x7f_\x8b\x1du\xd0b\r&=LMed",
        ),
        (True, b"\x00\x00\x05\x00\x01\x00\x00\x00\x03\x00\x00\x00\x00\x00"),
        (False, b"\x00\x00\x0e\x01\x04\x00\x00\x00\x03\x88_\x8b\x1du\xd0b\r&=LMed"),
        (False, b"\x00\x00\x04\x08\x00\x00\x00\x00"),
        (False, b"\x00\x00\x00\x00d"),
        (True, b"\x00\x00\x04\x01\x05\x00\x00\x00\x01\x83\x86\xbf\xbe"),
        (False, b"\x00\x00\x02\x01\x04\x00\x00\x00\x01\x88\xbe"),
        (
            False,
            b"\x00\x00\x0c\x01\x05\x00\x00\x00\x03@\x88\x9a\xca\xc8\xb2\x124\xda\x8f\x81\x07"
            b"\x00\x00\x01\x01\x05\x00\x00\x00\x01\xbe",
        ),
    ]
    path, keys = build(
        tmp_path_factory.mktemp("mixed"), [(tls, "1.2 AES-128-GCM", set(), 0), (h2c, "h2c", set(), 1)], 0
    )
    text = same(path, keys)
    commands = [json.loads(line)["grpcurl"].splitlines()[-1] for line in text.splitlines()]
    assert sorted(c.startswith("grpcurl -plaintext") for c in commands) == [False, True, True]  # TLS, h2c x2
