"""What the TLS and DTLS tests share: the samples made by captures/samples/make_tls_keys.py, a
registry with the TLS decoder and a key log, and a capture decoded into (frame, context, PDU)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protoscope.decoders.api import Endpoint, FlowContext, Pdu
from protoscope.decoders.registry import Registry, load_registry
from protoscope.decoders.tls import TlsDecoder
from protoscope.decoders.tls.keylog import KeyLog
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES

TLS = SAMPLES / "tls-keys.pcap"
TLS_KEYS = SAMPLES / "tls-keys.keys"
DTLS = SAMPLES / "dtls-keys.pcap"
DTLS_KEYS = SAMPLES / "dtls-keys.keys"


def truth(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / f"{name}.truth.json").read_text())
    return data


def keylog(*texts: str, path: Path | None = None) -> KeyLog:
    keys = KeyLog()
    if path is not None:
        keys.add_text(path.read_text(), str(path))
    for text in texts:
        keys.add_text(text, "test")
    return keys


def registry(keys: KeyLog | None) -> Registry:
    reg = load_registry()
    if "tls" not in reg.decoders:  # until pyproject.toml registers it
        reg.add(TlsDecoder())
    reg.configure({"tls.keylog": keys} if keys is not None else {})
    return reg


@dataclass(frozen=True, slots=True)
class Seen:
    frame: int
    ctx: FlowContext
    pdu: Pdu


def decode(path: Path, keys: KeyLog | None, protocol: str = "tls") -> list[Seen]:
    """Every PDU of `protocol` in the capture, with the frame and context it came with."""
    session = Session.open(path, registry(keys))
    out: list[Seen] = []
    try:
        for pd in session.decode():
            for pdu in pd.pdus:
                if pdu.protocol == protocol:
                    assert pd.context is not None
                    out.append(Seen(pd.index + 1, pd.context, pdu))
    finally:
        session.close()
    return out


def plaintext(seen: list[Seen], port: int) -> dict[str, bytes]:
    """Decrypted application data of the connection on `port`, per sender ("client", "server")."""
    out = {"client": b"", "server": b""}
    for s in seen:
        if port not in (s.ctx.src.port, s.ctx.dst.port):
            continue
        who = "server" if s.ctx.src.port == port else "client"
        out[who] += b"".join(i.data for i in s.pdu.inner)
    return out


def sent(connection: dict[str, Any]) -> dict[str, bytes]:
    return {who: "".join(lines).encode() for who, lines in connection["sent"].items()}


def flipped(path: Path) -> str:
    """The key log with the first byte of every secret changed."""
    lines = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and not line.startswith("#"):
            secret = bytes.fromhex(parts[2])
            parts[2] = (bytes([secret[0] ^ 1]) + secret[1:]).hex()
        lines.append(" ".join(parts))
    return "\n".join(lines) + "\n"


@dataclass
class Replay:
    """Feeds segments to one TlsDecoder as the session does: per direction, held bytes, `need`."""

    keys: KeyLog
    shared: dict[str, object] = field(default_factory=dict)
    """The flow's scratch space after the last run (the connection, its keys)."""

    def run(
        self, pieces: Sequence[tuple[bool, bytes | None]]
    ) -> list[tuple[bool, str, bytes, tuple[str, ...]]]:
        """A piece whose bytes are None is a hole in that direction's stream: its held bytes are
        dropped and the decoder goes on with what follows (as the session does at a `tcp.gap`)."""
        decoder = TlsDecoder()
        decoder.configure({"tls.keylog": self.keys})
        shared = self.shared = {}
        held = {True: b"", False: b""}
        need = {True: 0, False: 0}
        states = {True: decoder.new_state(), False: decoder.new_state()}
        out = []
        for frame, (from_client, data) in enumerate(pieces, 1):
            if data is None:
                held[from_client], need[from_client] = b"", 0
                continue
            held[from_client] += data
            if len(held[from_client]) < need[from_client]:
                continue
            a, b = Endpoint("127.0.0.1", 40000), Endpoint("127.0.0.1", 443)
            ctx = FlowContext(
                1,
                "tcp",
                a if from_client else b,
                b if from_client else a,
                from_client,
                frame,
                0.0,
                shared=shared,
            )
            result = decoder.decode(held[from_client], states[from_client], ctx)
            assert 0 <= result.consumed <= len(held[from_client])
            held[from_client] = held[from_client][result.consumed :]
            need[from_client] = result.need
            for pdu in result.pdus:
                inner = b"".join(i.data for i in pdu.inner)
                out.append((from_client, pdu.summary, inner, tuple(f.code for f in pdu.findings)))
        return out
