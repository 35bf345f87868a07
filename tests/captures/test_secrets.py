"""Decryption Secrets Blocks: written as editcap writes them, read back by us and by Wireshark's tools,
and learnt by a session into the key log its decoders read."""

from __future__ import annotations

import subprocess
from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from protoscope.captures.index import load
from protoscope.captures.pcapng import SECRETS_TLS_KEY_LOG
from protoscope.captures.writer import PcapNgWriter
from protoscope.decoders.registry import load_registry
from protoscope.decoders.tls.keylog import KeyLog
from protoscope.inspector.session import Session
from tests.conftest import require_tool

FRAME = bytes(Ether() / IP(src="127.0.0.1", dst="127.0.0.1") / UDP(sport=5, dport=9) / b"hi")
LINE = f"CLIENT_RANDOM {'ab' * 32} {'cd' * 48}\n"


def _file(path: Path, secrets: list[bytes]) -> Path:
    with path.open("wb") as out:
        writer = PcapNgWriter(out)
        for text in secrets:
            writer.secrets(text)
        writer.write(FRAME, 1_700_000_000_000_000_000)
    return path


def test_a_dsb_is_read_back_in_order_with_odd_lengths_padded(tmp_path: Path) -> None:
    texts = [LINE.encode(), b"x"]  # 1 byte: 3 of padding
    ix = load(_file(tmp_path / "s.pcapng", texts))
    assert len(ix) == 1
    assert ix.capture.records.secrets == [(SECRETS_TLS_KEY_LOG, t) for t in texts]


def test_capinfos_and_tshark_read_our_dsb(tmp_path: Path) -> None:
    path = _file(tmp_path / "s.pcapng", [LINE.encode()])
    out = subprocess.run(
        [require_tool("capinfos"), str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert "Number of decryption secrets in file: 1" in out
    frames = subprocess.run(
        [require_tool("tshark"), "-r", str(path), "-T", "fields", "-e", "frame.number"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert frames == ["1"]


def test_editcap_injected_secrets_are_read(tmp_path: Path) -> None:
    plain = tmp_path / "plain.pcapng"
    with plain.open("wb") as out:
        PcapNgWriter(out).write(FRAME, 1_700_000_000_000_000_000)
    keys = tmp_path / "k.keys"
    keys.write_text(LINE)
    injected = tmp_path / "with.pcapng"
    subprocess.run(
        [require_tool("editcap"), "--inject-secrets", f"tls,{keys}", str(plain), str(injected)],
        check=True,
        capture_output=True,
    )
    ix = load(injected)
    assert [(t, d.decode()) for t, d in ix.capture.records.secrets] == [(SECRETS_TLS_KEY_LOG, LINE)]


def test_a_session_adds_the_capture_s_secrets_to_the_key_log(tmp_path: Path) -> None:
    registry = load_registry(use_plugins=False)
    given = KeyLog()
    registry.options = {"tls.keylog": given}
    session = Session(load(_file(tmp_path / "s.pcapng", [LINE.encode()])), registry)
    assert given.get("CLIENT_RANDOM", bytes.fromhex("ab" * 32)) == bytes.fromhex("cd" * 48)
    assert "pcapng DSB" in given.sources
    assert session.learn_secrets() == 0  # once


def test_without_a_key_log_the_session_makes_one(tmp_path: Path) -> None:
    registry = load_registry(use_plugins=False)
    Session(load(_file(tmp_path / "s.pcapng", [LINE.encode()])), registry)
    keylog = registry.options["tls.keylog"]
    assert isinstance(keylog, KeyLog) and keylog.lines == 1
