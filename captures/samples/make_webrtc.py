"""Record WebRTC sample captures: two real aiortc peers on 127.0.0.1, signaling over WebSocket.

Run as root from the repository root (tcpdump and coturn need it): python captures/samples/make_webrtc.py

* webrtc-direct.pcap: offer/answer over a small WebSocket signaling server, ICE on host
  candidates, DTLS, SRTP audio (aiortc's AudioStreamTrack) and a data channel.
* webrtc-turn.pcap: the same through a real coturn server on 127.0.0.1:3478 with long-term
  credentials and a relay-only policy (Allocate with the 401 nonce dance, permissions, channels).

aioice leaves 127.0.0.1 out of its host candidates; this script lets it in so that everything
stays on loopback. The truth files keep what the peers said: SDPs, ICE credentials, SSRCs and the
data channel messages.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack
from aiortc.rtcconfiguration import RTCIceTransportPolicy

HERE = Path(__file__).resolve().parent
SIGNAL_PORT = 47080
TURN_PORT = 3478
TURN_USER, TURN_PASS, TURN_REALM = "alice", "secret", "protoscope"
MESSAGES = [f"hello {i}" for i in range(5)]
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []  # type: ignore[assignment]


# -- a minimal WebSocket signaling server and client (RFC 6455, text frames) -------------------

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def read_frame(reader: asyncio.StreamReader) -> str:
    _, b1 = await reader.readexactly(2)
    length = b1 & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    elif length == 127:
        length = int.from_bytes(await reader.readexactly(8), "big")
    key = await reader.readexactly(4) if b1 & 0x80 else b""
    data = await reader.readexactly(length)
    if key:
        data = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    return data.decode()


def frame(text: str, masked: bool) -> bytes:
    data = text.encode()
    n = len(data)
    head = bytes([0x81])
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 65536:
        head += bytes([mask_bit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([mask_bit | 127]) + n.to_bytes(8, "big")
    if not masked:
        return head + data
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(data))


class Relay:
    """Forwards each client's messages to the other client."""

    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key")
        )
        accept = base64.b64encode(hashlib.sha1(key + GUID.encode()).digest()).decode()
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
        )
        self.writers.append(writer)
        try:
            while True:
                text = await read_frame(reader)
                for other in self.writers:
                    if other is not writer:
                        other.write(frame(text, masked=False))
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass


async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", SIGNAL_PORT)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        f"GET /signal HTTP/1.1\r\nHost: 127.0.0.1:{SIGNAL_PORT}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    await reader.readuntil(b"\r\n\r\n")
    return reader, writer


# -- the call ----------------------------------------------------------------------------------


async def call(config: RTCConfiguration) -> dict[str, Any]:
    relay = Relay()
    server = await asyncio.start_server(relay.handle, "127.0.0.1", SIGNAL_PORT)
    caller_r, caller_w = await connect()
    callee_r, callee_w = await connect()
    caller, callee = RTCPeerConnection(config), RTCPeerConnection(config)
    received: list[str] = []
    done = asyncio.Event()

    @callee.on("datachannel")
    def on_channel(channel: Any) -> None:
        @channel.on("message")
        def on_message(message: str) -> None:
            received.append(message)
            if len(received) == len(MESSAGES):
                done.set()

    caller.addTrack(AudioStreamTrack())
    channel = caller.createDataChannel("chat")
    await caller.setLocalDescription(await caller.createOffer())
    offer = caller.localDescription
    caller_w.write(frame(json.dumps({"type": offer.type, "sdp": offer.sdp}), masked=True))
    got = json.loads(await read_frame(callee_r))
    await callee.setRemoteDescription(RTCSessionDescription(got["sdp"], got["type"]))
    callee.addTrack(AudioStreamTrack())  # audio both ways
    await callee.setLocalDescription(await callee.createAnswer())
    answer = callee.localDescription
    callee_w.write(frame(json.dumps({"type": answer.type, "sdp": answer.sdp}), masked=True))
    got = json.loads(await read_frame(caller_r))
    await caller.setRemoteDescription(RTCSessionDescription(got["sdp"], got["type"]))

    opened = asyncio.Event()
    channel.on("open", opened.set)
    await asyncio.wait_for(opened.wait(), 20)
    for text in MESSAGES:
        channel.send(text)
    await asyncio.wait_for(done.wait(), 20)
    await asyncio.sleep(1.0)  # some seconds of audio
    truth = {"offer": offer.sdp, "answer": answer.sdp, "messages": received}
    await caller.close()
    await callee.close()
    for w in (caller_w, callee_w):
        w.close()
    server.close()
    return truth


def capture(path: Path, bpf: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["tcpdump", "-i", "lo", "--immediate-mode", "-U", "-w", str(path), bpf], stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    proc.stderr.readline()
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=10)


def write_truth(name: str, truth: dict[str, Any]) -> None:
    (HERE / f"{name}.truth.json").write_text(json.dumps(truth, indent=1) + "\n")


def start_coturn(password: str) -> subprocess.Popen[bytes]:
    """A real coturn on 127.0.0.1:3478: long-term credentials for alice, relays on loopback."""
    turnserver = shutil.which("turnserver")
    if turnserver is None:
        raise SystemExit("coturn's turnserver is needed for the TURN samples (apt-get install coturn)")
    return subprocess.Popen(
        [
            turnserver,
            "-n",
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            f"--listening-port={TURN_PORT}",
            "--lt-cred-mech",
            f"--user={TURN_USER}:{password}",
            f"--realm={TURN_REALM}",
            "--no-tls",
            "--no-dtls",
            "--allow-loopback-peers",
            "--no-cli",
            "--min-port=49160",
            "--max-port=49200",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main() -> None:
    bpf = f"tcp port {SIGNAL_PORT} or udp"
    tcpdump = capture(HERE / "webrtc-direct.pcap", bpf)
    truth = asyncio.run(call(RTCConfiguration(iceServers=[])))
    stop(tcpdump)
    write_truth("webrtc-direct", truth)

    coturn = start_coturn(TURN_PASS)
    try:
        time.sleep(1.0)
        tcpdump = capture(HERE / "webrtc-turn.pcap", bpf)
        server = RTCIceServer(f"turn:127.0.0.1:{TURN_PORT}", TURN_USER, TURN_PASS)
        truth = asyncio.run(
            call(RTCConfiguration(iceServers=[server], iceTransportPolicy=RTCIceTransportPolicy.RELAY))
        )
        stop(tcpdump)
        truth["turn"] = {"server": f"127.0.0.1:{TURN_PORT}", "username": TURN_USER, "realm": TURN_REALM}
        write_truth("webrtc-turn", truth)
    finally:
        coturn.send_signal(signal.SIGTERM)
        coturn.wait(timeout=10)


if __name__ == "__main__":
    main()
