"""The SCTP decoder and the data channels report through the whole pipeline: a capture of
aiortc's SCTP packets encapsulated in UDP on port 9899 (RFC 6951) runs through the registry and
the session as any capture does; and the WebRTC sample capture with its key log (DTLS decrypted
into SCTP: a missing sample or nothing decrypted fails)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from protoscope.decoders.api import Pdu
from protoscope.decoders.registry import Registry, load_registry
from protoscope.decoders.sctp import SctpDecoder
from protoscope.decoders.sctp.channels import DataChannelAnalysis
from protoscope.decoders.sctp.records import SctpRecord, UserMessage
from protoscope.inspector.report.rows import analysis_rows
from protoscope.inspector.session import Session
from tests import pcapgen
from tests.conftest import SAMPLES
from tests.decoders.sctp.test_oracle import our_row, theirs
from tests.decoders.sctp.vectors import CLIENT, SERVER, T0, from_client, packets, vectors


def registry() -> Registry:
    """The installed decoders and analyses, with ours added when the entry points do not name them
    yet."""
    reg = load_registry(use_plugins=False)
    if "sctp" not in reg.decoders:
        reg.add(SctpDecoder())
    reg.analyses.setdefault("datachannels", DataChannelAnalysis)
    return reg


def encapsulated(path: Path) -> Path:
    pkts = []
    for n, p in enumerate(packets()):
        client = from_client(p)
        src, dst = (CLIENT, SERVER) if client else (SERVER, CLIENT)
        sport, dport = (50000, 9899) if client else (9899, 50000)
        pkt = (
            Ether()
            / IP(src=src.ip, dst=dst.ip)
            / UDP(sport=sport, dport=dport)
            / Raw(bytes.fromhex(p["hex"]))
        )
        pkt.time = T0 + n / 100
        pkts.append(pkt)
    return pcapgen.write(path, pkts)


def test_udp_encapsulated_sctp_through_the_session(tmp_path: Path) -> None:
    session = Session.open(encapsulated(tmp_path / "sctp-udp.pcap"), registry())
    try:
        rows = list(analysis_rows(session, "datachannels"))
        seen: list[UserMessage] = []
        for pd in session.decode():
            seen += [p.record for p in pd.pdus if isinstance(p.record, UserMessage)]
    finally:
        session.close()
    assert sorted(r["stream_id"] for r in rows) == [1, 3, 5, 7]
    sent = sum(len(c["messages"]) for c in vectors()["channels"])
    assert sum(int(r["messages_c2s"]) + int(r["messages_s2c"]) for r in rows) == sent
    assert len([m for m in seen if m.dcep is None]) == sent
    assert all(m.frames and m.frames[-1] >= m.frames[0] for m in seen)


SAMPLE = SAMPLES / "webrtc-datachannels"


@pytest.fixture(scope="module")
def sample() -> dict[str, Any]:
    """captures/samples/webrtc-datachannels.pcap (make_webrtc.py: aiortc peers, with their key
    log) decoded: the SCTP packets and user messages each side sent (by UDP source port), the
    data channels and sessions reports, and the truth the script recorded."""
    pcap, keys, truth_path = (SAMPLE.with_suffix(x) for x in (".pcap", ".keys", ".truth.json"))
    for path in (pcap, keys, truth_path):
        assert path.exists(), f"{path.name} is missing: make_webrtc.py records it"
    from protoscope.decoders.tls.keylog import KeyLog

    reg = registry()
    keylog = KeyLog()
    keylog.add_text(keys.read_text(), str(keys))
    reg.configure({"tls.keylog": keylog})
    truth: dict[str, Any] = json.loads(truth_path.read_text())
    side_of = {port: side for side, port in truth["ports"].items()}
    frames: dict[int, list[Pdu]] = {}
    packets_: dict[str, list[SctpRecord]] = {"caller": [], "callee": []}
    messages: dict[str, list[UserMessage]] = {"caller": [], "callee": []}
    session = Session.open(pcap, reg)
    try:
        for pd in session.decode():
            ctx = pd.context
            for pdu in pd.pdus:
                if ctx is None or not isinstance(pdu.record, SctpRecord | UserMessage):
                    continue
                side = side_of[ctx.src.port]
                frames.setdefault(pd.index + 1, []).append(pdu)
                if isinstance(pdu.record, SctpRecord):
                    packets_[side].append(pdu.record)
                else:
                    messages[side].append(pdu.record)
        channels = list(analysis_rows(session, "datachannels"))
        sessions = list(analysis_rows(session, "sessions"))
    finally:
        session.close()
    assert all(packets_.values()), "no SCTP decoded from the sample: DTLS decryption with its key log failed"
    return {
        "truth": truth,
        "packets": packets_,
        "messages": messages,
        "frames": frames,
        "channels": channels,
        "sessions": sessions,
    }


def test_sample_every_sctp_packet_each_side_sent(sample: dict[str, Any]) -> None:
    """Each SCTP packet aiortc gave DTLS, in order, by its CRC32c (the truth keeps each packet,
    or its first 32 bytes); every checksum verifies."""
    for side in ("caller", "callee"):
        sent = [
            bytes.fromhex(p.get("hex") or p["head"]) for p in sample["truth"]["sctp"] if p["side"] == side
        ]
        got = sample["packets"][side]
        assert [p.verification_tag for p in got] == [int.from_bytes(b[4:8], "big") for b in sent], side
        assert [p.chunk_types[0] for p in got] == [b[12] for b in sent], side
        assert all(p.checksum_ok for p in got)


def test_sample_every_message_each_side_sent(sample: dict[str, Any]) -> None:
    for side in ("caller", "callee"):
        want = [
            (m["stream_id"], m["type"], m["size"], m.get("text", m.get("hex", m.get("sha256"))))
            for m in sample["truth"]["messages"]
            if m["side"] == side
        ]
        got = []
        for m in sorted(sample["messages"][side], key=lambda m: m.first_tsn):
            if m.dcep is not None:
                continue
            kind = "text" if m.ppid in (51, 54, 56) else "binary"
            shown = (
                hashlib.sha256(m.data).hexdigest()
                if len(m.data) > 1024
                else m.data.decode()
                if kind == "text"
                else m.data.hex()
            )
            got.append((m.stream_id, kind, len(m.data), shown))
        assert got == want, side


def test_sample_data_channels_report(sample: dict[str, Any]) -> None:
    truth = sample["truth"]
    rows = {r["stream_id"]: r for r in sample["channels"]}
    assert sorted(rows) == sorted(c["stream_id"] for c in truth["channels"])
    for c in truth["channels"]:
        row = rows[c["stream_id"]]
        assert row["negotiated"] == ("pre-negotiated" if c["negotiated"] else "dcep")
        assert row["ordered"] == c["ordered"]
        if not c["negotiated"]:
            assert (row["label"], row["protocol"]) == (c["label"], c["protocol"])
            reliability = (
                f"max_retransmits={c['max_retransmits']}"
                if c["max_retransmits"] is not None
                else f"max_lifetime_ms={c['max_packet_life_time']}"
                if c["max_packet_life_time"] is not None
                else "reliable"
            )
            assert row["reliability"] == reliability and row["acked"] is not None
        sent = {
            side: [m for m in truth["messages"] if m["side"] == side and m["stream_id"] == c["stream_id"]]
            for side in ("caller", "callee")
        }
        by_side = {"server": truth["dtls"][0]["dtls_server"], "client": truth["dtls"][0]["dtls_client"]}
        for side_name, side in by_side.items():
            mine = [m for m in row["messages"] if m["dtls_side"] == side_name]
            assert [m["size"] for m in mine] == [m["size"] for m in sent[side]], (c["label"], side)
    closed = truth["closed_channel"]
    codes = [f["code"] for f in rows[closed["stream_id"]]["findings"]]
    assert codes == ["datachannel.reset"]
    (ice,) = [r for r in sample["sessions"] if r.get("kind") is None]
    assert {"datachannel", "datachannel_open"} <= set(ice["phases"]) and ice["data_channels"] == len(rows)
    assert ice["failed_phase"] is None


def test_sample_equals_tshark_with_the_key_log(sample: dict[str, Any], tmp_path: Path) -> None:
    """tshark decrypts the sample's DTLS with the same key log (its DTLS table wants an RSA key
    for the port, any key: the key log does the work) and dissects SCTP and DCEP; per frame, the
    fields of test_oracle equal ours."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = tmp_path / "any.pem"
    key.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    port = sample["truth"]["ports"]["caller"]
    want = theirs(
        SAMPLE.with_suffix(".pcap"),
        "-o",
        f"tls.keylog_file:{SAMPLE.with_suffix('.keys')}",
        "-o",
        f'uat:dtlsdecrypttablefile:"127.0.0.1","{port}","sctp","{key}",""',
    )
    got = {frame: our_row(pdus) for frame, pdus in sample["frames"].items()}
    assert len(want) == len(sample["truth"]["sctp"])
    assert sorted(got) == sorted(want)
    for frame in sorted(want):
        assert got[frame] == want[frame], f"frame {frame}"
