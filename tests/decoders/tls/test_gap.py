"""Decryption after a gap in the TCP stream, on real bytes: records lost in a hole each took a
record number, so the next record that arrives fails under the expected one; the decoder tries the
numbers ahead (bounded: decoder.MAX_SKIPPED_RECORDS) until the tag verifies, says once how many
were skipped (`tls.decrypt_resync`), and goes on. Segments are cut out of
captures/samples/tls-keys.pcap (whole records lost: TLS 1.2 GCM, TLS 1.3 with a KeyUpdate) and
byte ranges out of captures/samples/grpc-tls.pcap (a hole inside records: TLS 1.3 AES-256-GCM,
TLS 1.2 ChaCha20-Poly1305)."""

from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import TCP
from scapy.utils import rdpcap

from protoscope.decoders.tls import crypto
from protoscope.decoders.tls.decoder import MAX_SKIPPED_RECORDS, resync
from tests.conftest import SAMPLES

from .common import TLS, TLS_KEYS, Replay, Seen, decode, flipped, keylog, plaintext, truth

GRPC = SAMPLES / "grpc-tls.pcap"
GRPC_KEYS = SAMPLES / "grpc-tls.keys"
TLS_CONNECTIONS = truth("tls-keys")["connections"]


def without(path: Path, frames: set[int], out: Path) -> Path:
    """The capture (classic pcap) without the given 1-based frames, its records copied as they are."""
    data = path.read_bytes()
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    kept, pos, number = [data[:24]], 24, 0
    while pos + 16 <= len(data):
        (size,) = struct.unpack(order + "I", data[pos + 8 : pos + 12])
        number += 1
        if number not in frames:
            kept.append(data[pos : pos + 16 + size])
        pos += 16 + size
    out.write_bytes(b"".join(kept))
    return out


def findings(seen: list[Seen]) -> list[tuple[int, str, str]]:
    return [(s.frame, f.code, f.message) for s in seen for f in s.pdu.findings]


def frame_of(port: int, from_client: bool, nth: int) -> int:
    """1-based frame number of the nth data segment one side of the connection on `port` sent."""
    k = 0
    for number, p in enumerate(rdpcap(str(TLS)), 1):
        if TCP in p and bytes(p[TCP].payload) and (p[TCP].dport if from_client else p[TCP].sport) == port:
            if k == nth:
                return number
            k += 1
    raise AssertionError("no such segment")


def test_a_lost_segment_of_whole_records_is_one_note(tmp_path: Path) -> None:
    conn = TLS_CONNECTIONS[0]  # TLS 1.2 AES-128-GCM
    # the client's data segments: ClientHello, ClientKeyExchange+ChangeCipherSpec+Finished, 2 lines
    cut = frame_of(conn["port"], True, 3)  # "a second line, xxx..."
    seen = [s for s in decode(without(TLS, {cut}, tmp_path / "cut.pcap"), keylog(path=TLS_KEYS))]
    mine = [s for s in seen if conn["port"] in (s.ctx.src.port, s.ctx.dst.port)]
    assert [(code, message) for _, code, message in findings(mine)] == [
        ("tls.decrypt_resync", "1 record lost (a gap in the capture): decryption resumed at record 3")
    ]
    got = plaintext(mine, conn["port"])
    assert got["client"] == conn["sent"]["client"][0].encode()
    assert got["server"] == "".join(conn["sent"]["server"]).encode()
    alerts = [s.pdu.record.facts.get("alert") for s in mine if s.pdu.record.content_type == 21]
    assert alerts == [("warning", "close_notify")] * 2  # the client's, after the hole, opened
    others = [s for s in seen if conn["port"] not in (s.ctx.src.port, s.ctx.dst.port)]
    assert findings(others) == []


def test_a_lost_key_update_is_one_finding_not_one_per_record(tmp_path: Path) -> None:
    conn = next(c for c in TLS_CONNECTIONS if c.get("key_update"))
    # the client's data segments: ClientHello, ChangeCipherSpec+Finished, 2 lines, KeyUpdate, ...
    cut = frame_of(conn["port"], True, 4)
    seen = decode(without(TLS, {cut}, tmp_path / "cut.pcap"), keylog(path=TLS_KEYS))
    mine = [s for s in seen if conn["port"] in (s.ctx.src.port, s.ctx.dst.port)]
    (only,) = findings(mine)
    assert only[1:] == (
        "tls.decrypt_failed",
        f"bad tag (record 2, nor any of the next {MAX_SKIPPED_RECORDS})",
    )
    got = plaintext(mine, conn["port"])
    assert got["client"] == "".join(conn["sent"]["client"][:2]).encode()
    assert got["server"] == "".join(conn["sent"]["server"]).encode()  # the server's own update opens


def streams(port: int) -> list[tuple[bool, bytes]]:
    out = []
    for p in rdpcap(str(GRPC)):
        if TCP in p and port in (p[TCP].sport, p[TCP].dport) and bytes(p[TCP].payload):
            out.append((p[TCP].dport != port, bytes(p[TCP].payload)))
    return out


def record_starts(data: bytes) -> list[int]:
    out, pos = [], 0
    while pos + 5 <= len(data):
        out.append(pos)
        pos += 5 + int.from_bytes(data[pos + 3 : pos + 5], "big")
    return out


def with_hole(segs: list[tuple[bool, bytes]], a: int, b: int) -> list[tuple[bool, bytes | None]]:
    """The segments with the server's stream bytes [a, b) missing (a hole the session reports
    before the first bytes after it)."""
    out: list[tuple[bool, bytes | None]] = []
    at = 0
    marked = False
    for from_client, data in segs:
        if from_client:
            out.append((from_client, data))
            continue
        lo, hi = at, at + len(data)
        at = hi
        if hi <= a:
            out.append((False, data))
            continue
        if lo < a:
            out.append((False, data[: a - lo]))
        if hi > b:
            if not marked:
                out.append((False, None))
                marked = True
            out.append((False, data[max(0, b - lo) :]))
    return out


@pytest.mark.parametrize("client_port", [52164, 52170], ids=["tls13-aes256gcm", "tls12-chacha20"])
def test_a_hole_inside_records_resyncs_and_opens_what_follows(client_port: int) -> None:
    segs = streams(client_port)
    server = b"".join(d for c, d in segs if not c)
    starts = record_starts(server)
    replay = Replay(keylog(path=GRPC_KEYS))
    whole = [r for r in replay.run(segs) if not r[0]]
    assert len(whole) == len(starts) and all(r[3] == () for r in whole)
    # holes that start and end inside records, over the application data of the server
    app = [k for k, s in enumerate(starts) if server[s] == 23]
    tried = 0
    for first in app[2:-3:2]:
        for lost in (1, 2, 4):
            if first + lost >= len(starts) - 1:
                continue
            a = starts[first] + 7
            b = starts[first + lost] + 3
            out = [r for r in replay.run(with_hole(segs, a, b)) if not r[0]]
            codes = Counter(c for r in out for c in r[3])
            assert codes["tls.decrypt_failed"] == 0, (first, lost)
            assert codes["tls.decrypt_resync"] == 1, (first, lost)
            k = next(i for i, r in enumerate(out) if "tls.decrypt_resync" in r[3])
            assert out[:first] == whole[:first]  # untouched before the hole
            after = out[k:]
            assert [r[2] for r in after] == [r[2] for r in whole[-len(after) :]]  # same plaintext
            skipped = len(whole) - len(after) - first
            assert skipped >= lost
            tried += 1
    assert tried >= 3


def test_a_wrong_key_never_searches(monkeypatch: pytest.MonkeyPatch) -> None:
    """No record ever opened and no gap: each failure is said, as before, with one try each."""
    segs = streams(52164)
    tries = Counter[str]()
    real = crypto.Aead13.open

    def counted(self: crypto.Aead13, *args: object) -> bytes:
        tries["open"] += 1
        return real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(crypto.Aead13, "open", counted)
    out = Replay(keylog(flipped(GRPC_KEYS))).run(segs)
    failed = sum(1 for r in out if "tls.decrypt_failed" in r[3])
    assert {c for r in out for c in r[3]} == {"tls.decrypt_failed"}
    assert failed == tries["open"] > 10


def test_a_hole_in_a_bulk_transfer_over_small_segments_resyncs() -> None:
    """The server's 16 KiB records re-cut into 1448-byte segments (an Ethernet MSS), a segment
    lost inside one of them: the next header comes before the rest of its record, so resync takes
    it on its type and version alone, waits for the record (`need`) and opens it."""
    segs: list[tuple[bool, bytes]] = []
    for from_client, data in streams(52164):
        step = len(data) if from_client else 1448
        segs += [(from_client, data[i : i + step]) for i in range(0, len(data), step)]
    server = b"".join(d for c, d in segs if not c)
    starts = record_starts(server)
    big = [k for k, s in enumerate(starts) if int.from_bytes(server[s + 3 : s + 5], "big") > 10_000]
    replay = Replay(keylog(path=GRPC_KEYS))
    whole = [r for r in replay.run(segs) if not r[0]]
    assert len(big) >= 3
    for k in big[:-1]:
        for into in (100, 3000, 12_000):
            a = starts[k] + into
            out = [r for r in replay.run(with_hole(segs, a, a + 1448)) if not r[0]]
            codes = Counter(c for r in out for c in r[3])
            assert codes == {"tls.decrypt_resync": 1}, (k, into)
            assert len(out) == len(whole) - 1  # only the record the hole was in
            assert [r[2] for r in out[k:]] == [r[2] for r in whole[k + 1 :]]


def test_resync_takes_a_header_whose_record_has_not_arrived_only_with_the_version() -> None:
    head = bytes([23, 3, 3]) + (16_000).to_bytes(2, "big")
    data = b"\x00" * 7 + head + b"\x11" * 100  # the record runs past the data's end
    assert resync(data, 0) is None
    assert resync(data, 0, b"\x03\x03") == 7
    assert resync(data, 0, b"\x03\x01") is None
    handshake = bytes([22, 3, 3]) + (16_000).to_bytes(2, "big")
    assert resync(b"\x00" * 7 + handshake + b"\x11" * 100, 0, b"\x03\x03") is None  # data only


def test_a_false_header_after_a_hole_costs_one_finding_and_the_next_record_opens() -> None:
    """Bytes after a hole that happen to look like a record (type, version and a length that
    ends where a true header starts): that "record" fails its tag and the search finds nothing;
    the true record after it is still found (a second search, from the last record opened)."""
    segs = streams(52164)
    server = b"".join(d for c, d in segs if not c)
    starts = record_starts(server)
    replay = Replay(keylog(path=GRPC_KEYS))
    whole = [r for r in replay.run(segs) if not r[0]]
    k = next(i for i, s in enumerate(starts) if server[s] == 23 and i > 8)
    fake = b"\x01\x02\x03" + bytes([23, 3, 3, 0, 40]) + bytes(range(40))
    pieces = with_hole(segs, starts[k] + 7, starts[k + 2])
    at = pieces.index((False, None))
    head, rest = pieces[: at + 1], pieces[at + 1 :]
    first = rest.index(next(p for p in rest if not p[0]))
    assert rest[first][1] is not None
    rest[first] = (False, fake + rest[first][1])
    out = [r for r in replay.run([*head, *rest]) if not r[0]]
    codes = [c for r in out for c in r[3]]
    assert codes == ["tls.decrypt_failed", "tls.decrypt_resync"]
    after = out[next(i for i, r in enumerate(out) if "tls.decrypt_resync" in r[3]) :]
    assert [r[2] for r in after] == [r[2] for r in whole[k + 2 :]]


SEGS = {port: streams(port) for port in (52164, 52170)}
WHOLE = {port: Replay(keylog(path=GRPC_KEYS)).run(segs) for port, segs in SEGS.items()}


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(SEGS)), st.floats(0, 1), st.integers(1, 40_000))
def test_any_hole_hands_on_only_authenticated_plaintext(port: int, where: float, size: int) -> None:
    """A hole of any size anywhere in the server's stream: never an exception, at most one
    resync note, and every plaintext handed on is one the whole stream hands on."""
    segs = SEGS[port]
    total = sum(len(d) for c, d in segs if not c)
    a = int(where * (total - 1))
    out = Replay(keylog(path=GRPC_KEYS)).run(with_hole(segs, a, min(total, a + size)))
    plains = {r[2] for r in WHOLE[port] if r[2]}
    assert all(r[2] in plains for r in out if r[2])
    assert sum(c == "tls.decrypt_resync" for r in out for c in r[3]) <= 1
