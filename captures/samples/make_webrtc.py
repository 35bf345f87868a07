"""Record WebRTC sample captures: two real aiortc peers on 127.0.0.1, signaling over WebSocket.

Run as root from the repository root (tcpdump and coturn need it):
python captures/samples/make_webrtc.py [datachannels|srtp80|srtp32]

With no argument, the two samples below (tests rely on their bytes: record them again only if
you mean to change them):

* webrtc-direct.pcap: offer/answer over a small WebSocket signaling server, ICE on host
  candidates, DTLS, SRTP audio (aiortc's AudioStreamTrack) and a data channel.
* webrtc-turn.pcap: the same through a real coturn server on 127.0.0.1:3478 with long-term
  credentials and a relay-only policy (Allocate with the 401 nonce dance, permissions, channels).

With `datachannels`, only webrtc-datachannels.pcap, with the secrets to read it:

* webrtc-datachannels.pcap: Opus audio and VP8 video both ways for about 3 s over one BUNDLEd
  DTLS 1.2 connection (SRTP with the profile OpenSSL picks), and data channels: reliable with a
  sub-protocol, unordered with maxRetransmits=0, partially reliable by lifetime and one
  pre-negotiated (id 7) on both sides; text, non-ASCII text, empty text and binary (PPIDs 56 and
  57), messages of 3,400 and 70,000 bytes (fragmented DATA chunks), both ways; at the end the
  caller closes the unordered channel (an SCTP stream reset). ICE uses ports 47090-47099.
* webrtc-datachannels.keys: the NSS key log OpenSSL wrote through the DTLS context's keylog
  callback.
* webrtc-datachannels.truth.json: what the peers did, kept by aiortc's side before anything was
  encrypted: the SDPs, SSRCs and codecs, the SRTP keying material exported from DTLS (RFC 5764,
  base64 keys and salts, and which side was DTLS client), every RTP packet given to SRTP (header
  fields, the header in hex, the payload's first 16 bytes, sha256 of payload and packet) and RTCP
  packet (hex), every SCTP packet given to DTLS (hex, or sha256 and a head when long), the data
  channels' parameters, each message as sent and as received, how many datagrams each ICE socket
  sent, and the tshark commands that read the capture ("oracle").

With `srtp80` (or `srtp32`), only webrtc-srtp80 (or webrtc-srtp32) .pcap, .keys and .truth.json,
the same kinds of file as the datachannels sample's, for SRTP with AES-CM and HMAC-SHA1:

* both peers offer one DTLS-SRTP profile only (aiortc's SRTP_PROFILES replaced while they are
  made), so OpenSSL picks SRTP_AES128_CM_SHA1_80 (a 10-byte tag), or SRTP_AES128_CM_SHA1_32
  (a 4-byte SRTP tag, SRTCP keeps 10 bytes: RFC 5764 section 4.1.2), which aiortc does not
  offer by itself; both ways Opus audio and H.264 video (codec preferences on the video
  transceiver; VP8 where PyAV has no H.264 encoder), 3 s (srtp80) or 1.5 s (srtp32), one data
  channel "chat" with a few messages each way. ICE uses ports 47100-47109 (srtp80) and
  47110-47119 (srtp32). The oracle's "srtp_headers" command keeps every UDP datagram that is
  neither STUN nor DTLS: tshark's RTCP heuristic does not recognise SRTCP sealed with AES-CM.

aioice leaves 127.0.0.1 out of its host candidates; this script lets it in so that everything
stays on loopback. The truth files keep what the peers said: SDPs, ICE credentials, SSRCs and the
data channel messages.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aioice.ice
import av
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
    rtcdtlstransport,
)
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.rtcdtlstransport import (
    SRTP_AES128_CM_SHA1_80,
    RTCCertificate,
    RTCDtlsTransport,
    SRTPProtectionProfile,
)
from aiortc.rtp import is_rtcp
from pylibsrtp import Policy

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


# -- webrtc-datachannels.pcap: keys, SRTP keying material and what each side sent ------------

DC_PORTS = range(47090, 47100)
"""The ICE host ports of the datachannels sample (aioice binds port 0; see fixed_ports)."""
DC_MEDIA_SECONDS = 3.0
DC_UNICODE = "héllo ✓ 日本"
DC_BIG_TEXT = DC_UNICODE * 200  # 3,400 bytes of UTF-8: a character spans a DATA chunk boundary
DC_BIG_BINARY = bytes(i % 251 for i in range(70_000))  # more than 64 KiB, over 50 DATA chunks
DC_NEGOTIATED_ID = 7
LARGE = 512
"""Packets and messages longer than this are kept as sha256 (and a head) rather than whole."""
PAYLOAD_HEAD = 16
"""RTP payload bytes kept in clear in the truth: the codec's own header (Opus TOC, VP8 payload
descriptor and frame tag with a key frame's size)."""

Sends = list[tuple[str, str | bytes]]
CALLER_SENDS: Sends = [
    ("chat", "hello"),
    ("chat", DC_UNICODE),
    ("chat", ""),
    ("chat", b""),
    ("chat", b"\x00\x01\xfe\xff"),
    ("chat", DC_BIG_TEXT),
    ("chat", DC_BIG_BINARY),
    *[("lossy", f"lossy {i}") for i in range(5)],
    ("timed", "timed 0"),
    ("pre", "negotiated from the caller"),
]
CALLEE_SENDS: Sends = [
    ("chat", "hello back"),
    ("chat", b"\xca\xfe"),
    ("chat", ""),
    ("lossy", "lossy reply"),
    ("pre", "negotiated from the callee"),
    ("pre", bytes(range(256)) * 12),  # 3,072 bytes, binary, the other way
]


def message_record(side: str, label: str, stream_id: int | None, data: str | bytes) -> dict[str, Any]:
    """A data channel message as the application gave it to send() (side: the sender) or got it
    from the "message" event (side: the receiver); text is sized in UTF-8 bytes."""
    raw = data.encode() if isinstance(data, str) else data
    out: dict[str, Any] = {
        "side": side,
        "label": label,
        "stream_id": stream_id,
        "type": "text" if isinstance(data, str) else "binary",
        "size": len(raw),
    }
    if len(raw) > LARGE:
        out["sha256"] = hashlib.sha256(raw).hexdigest()
    elif isinstance(data, str):
        out["text"] = data
    else:
        out["hex"] = raw.hex()
    return out


def packet_record(side: str, data: bytes) -> dict[str, Any]:
    """An RTP or RTCP packet as aiortc handed it to SRTP protect (plaintext)."""
    if is_rtcp(data):
        return {"side": side, "rtcp": data.hex()}
    first, second = data[0], data[1]
    header = 12 + 4 * (first & 0x0F)
    if first & 0x10:
        header += 4 + 4 * int.from_bytes(data[header + 2 : header + 4], "big")
    end = len(data) - (data[-1] if first & 0x20 else 0)
    return {
        "side": side,
        "ssrc": int.from_bytes(data[8:12], "big"),
        "seq": int.from_bytes(data[2:4], "big"),
        "timestamp": int.from_bytes(data[4:8], "big"),
        "pt": second & 0x7F,
        "marker": second >> 7,
        "size": len(data),
        "header": data[:header].hex(),
        "payload_size": end - header,
        "payload_head": data[header : min(end, header + PAYLOAD_HEAD)].hex(),
        "payload_sha256": hashlib.sha256(data[header:end]).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def sctp_record(side: str, data: bytes) -> dict[str, Any]:
    """An SCTP packet as aiortc handed it to DTLS (the plaintext of one application_data record)."""
    if len(data) <= LARGE:
        return {"side": side, "hex": data.hex()}
    return {
        "side": side,
        "size": len(data),
        "head": data[:32].hex(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


class Recorder:
    """What the peers did, kept by the sending side before anything is encrypted.

    Hooks aiortc at the points where plaintext and secrets pass: the DTLS context (OpenSSL's
    keylog callback), the SRTP set-up (the exported keying material), SRTP protect (RTP and RTCP
    in clear) and the DTLS send of SCTP packets. Transports are named caller/callee afterwards.
    """

    def __init__(self) -> None:
        self.keylog: list[str] = []
        self.srtp: list[tuple[Any, dict[str, Any]]] = []
        self.rtp: list[tuple[Any, bytes]] = []
        self.sctp: list[tuple[Any, bytes]] = []
        self.sides: dict[int, str] = {}

    @contextlib.contextmanager
    def hooks(self) -> Iterator[None]:
        make_context = RTCCertificate._create_ssl_context
        setup_srtp = RTCDtlsTransport._setup_srtp
        send_rtp = RTCDtlsTransport._send_rtp
        send_data = RTCDtlsTransport._send_data
        recorder = self

        def create_ssl_context(self: RTCCertificate, srtp_profiles: list[Any]) -> Any:
            ctx = make_context(self, srtp_profiles)
            ctx.set_keylog_callback(lambda conn, line: recorder.keylog.append(line.decode()))
            return ctx

        def setup(self: RTCDtlsTransport) -> None:
            setup_srtp(self)
            if self._tx_srtp is not None:
                recorder.srtp.append((self, keying_material(self)))

        async def rtp(self: RTCDtlsTransport, data: bytes) -> None:
            await sent(recorder.rtp, send_rtp, self, data)

        async def sctp(self: RTCDtlsTransport, data: bytes) -> None:
            await sent(recorder.sctp, send_data, self, data)

        patches = {
            (RTCCertificate, "_create_ssl_context"): create_ssl_context,
            (RTCDtlsTransport, "_setup_srtp"): setup,
            (RTCDtlsTransport, "_send_rtp"): rtp,
            (RTCDtlsTransport, "_send_data"): sctp,
        }
        originals = {(cls, name): getattr(cls, name) for cls, name in patches}
        for (cls, name), fn in patches.items():
            setattr(cls, name, fn)
        try:
            yield
        finally:
            for (cls, name), fn in originals.items():
                setattr(cls, name, fn)

    def side(self, transport: Any) -> str:
        return self.sides.get(id(transport), "unknown")


async def sent(log: list[tuple[Any, bytes]], send: Any, transport: Any, data: bytes) -> None:
    """Log `data` in the order the packets are handed on, and take it out again when the send
    fails (a BYE after the other side closed DTLS raises ConnectionError and never leaves)."""
    entry = (transport, data)
    log.append(entry)
    try:
        await send(transport, data)
    except BaseException:
        del log[next(i for i in range(len(log) - 1, -1, -1) if log[i] is entry)]
        raise


def keying_material(transport: Any) -> dict[str, Any]:
    """RFC 5764 section 4.2: the exporter output is client key, server key, client salt, server salt."""
    conn = transport._ssl
    name = conn.get_selected_srtp_profile()
    profile = next(p for p in transport._srtp_profiles if p.openssl_profile == name)
    k, s = profile.key_length, profile.salt_length
    view = conn.export_keying_material(b"EXTRACTOR-dtls_srtp", 2 * (k + s))
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return {
        "dtls_role": transport._role,
        "dtls_version": conn.get_protocol_version_name(),
        "dtls_cipher": conn.get_cipher_name(),
        "client_random": conn.client_random().hex(),
        "srtp_profile": name.decode(),
        "keying_material": b64(view),
        "client_key": b64(view[:k]),
        "server_key": b64(view[k : 2 * k]),
        "client_salt": b64(view[2 * k : 2 * k + s]),
        "server_salt": b64(view[2 * k + s :]),
        "client_key_salt": b64(profile.get_key_and_salt(view, 0)),
        "server_key_salt": b64(profile.get_key_and_salt(view, 1)),
    }


@contextlib.contextmanager
def fixed_ports(sent: dict[int, int], port_range: range = DC_PORTS) -> Iterator[None]:
    """Bind aioice's host candidates to `port_range` rather than to port 0, so that tcpdump can
    be given those ports, and count every datagram each socket sends (`sent` by local port)."""
    loop = asyncio.get_running_loop()
    ports = iter(port_range)
    create = loop.create_datagram_endpoint

    async def create_datagram_endpoint(factory: Any, local_addr: Any = None, **kwargs: Any) -> Any:
        if local_addr is not None and local_addr[1] == 0:
            local_addr = (local_addr[0], next(ports))
        transport, protocol = await create(factory, local_addr=local_addr, **kwargs)
        port = transport.get_extra_info("sockname")[1]
        sent[port] = 0
        sendto = transport.sendto

        def counted(data: bytes, addr: Any = None) -> None:
            sent[port] += 1
            sendto(data, addr)

        transport.sendto = counted
        return transport, protocol

    loop.create_datagram_endpoint = create_datagram_endpoint  # type: ignore[method-assign]
    try:
        yield
    finally:
        del loop.create_datagram_endpoint  # type: ignore[misc]


async def negotiate(caller: RTCPeerConnection, callee: RTCPeerConnection) -> tuple[str, str]:
    """Offer/answer through the WebSocket relay on SIGNAL_PORT (the capture shows the SDPs)."""
    caller_r, caller_w = await connect()
    callee_r, callee_w = await connect()
    await caller.setLocalDescription(await caller.createOffer())
    offer = caller.localDescription
    caller_w.write(frame(json.dumps({"type": offer.type, "sdp": offer.sdp}), masked=True))
    got = json.loads(await read_frame(callee_r))
    await callee.setRemoteDescription(RTCSessionDescription(got["sdp"], got["type"]))
    await callee.setLocalDescription(await callee.createAnswer())
    answer = callee.localDescription
    callee_w.write(frame(json.dumps({"type": answer.type, "sdp": answer.sdp}), masked=True))
    got = json.loads(await read_frame(caller_r))
    await caller.setRemoteDescription(RTCSessionDescription(got["sdp"], got["type"]))
    for w in (caller_w, callee_w):
        w.close()
    return offer.sdp, answer.sdp


class Inbox:
    """Messages a peer's channels received, and an event when `expected` have come."""

    def __init__(self, expected: int) -> None:
        self.got: list[tuple[str, int | None, str | bytes]] = []
        self.expected = expected
        self.done = asyncio.Event()

    def listen(self, channel: Any) -> None:
        @channel.on("message")
        def on_message(message: str | bytes) -> None:
            self.got.append((channel.label, channel.id, message))
            if len(self.got) >= self.expected:
                self.done.set()


async def opened(channel: Any) -> None:
    if channel.readyState != "open":
        event = asyncio.Event()
        channel.on("open", event.set)
        await asyncio.wait_for(event.wait(), 20)


def media_record(side: str, pc: RTCPeerConnection) -> list[dict[str, Any]]:
    """Each transceiver's SSRCs and negotiated codecs, as the sending side knows them."""
    out = []
    for t in pc.getTransceivers():
        out.append(
            {
                "side": side,
                "kind": t.kind,
                "mid": t.mid,
                "ssrc": t.sender._ssrc,
                "rtx_ssrc": t.sender._rtx_ssrc,
                "codecs": [
                    {
                        "mime_type": c.mimeType,
                        "payload_type": c.payloadType,
                        "clock_rate": c.clockRate,
                        "channels": c.channels,
                        "parameters": dict(c.parameters),
                    }
                    for c in t._codecs
                ],
            }
        )
    return out


def dtls_of(pc: RTCPeerConnection) -> Any:
    """The peer's DTLS transport: the one its SCTP runs on, which BUNDLE makes the only one used."""
    assert pc.sctp is not None
    return pc.sctp.transport


async def datachannels_call(recorder: Recorder) -> dict[str, Any]:
    """Audio (Opus) and video (VP8) both ways, one BUNDLEd DTLS connection, and data channels:
    reliable ordered with a sub-protocol, unordered with maxRetransmits=0, partially reliable by
    lifetime, and one pre-negotiated (negotiated=True, id=7) on both sides; then the unordered
    channel is closed (an SCTP stream reset)."""
    sent: dict[int, int] = {}
    relay = Relay()
    server = await asyncio.start_server(relay.handle, "127.0.0.1", SIGNAL_PORT)
    config = RTCConfiguration(iceServers=[])
    with fixed_ports(sent):
        caller, callee = RTCPeerConnection(config), RTCPeerConnection(config)
        caller.addTrack(AudioStreamTrack())
        caller.addTrack(VideoStreamTrack())
        channels = {
            "chat": caller.createDataChannel("chat", protocol="protoscope-chat"),
            "lossy": caller.createDataChannel("lossy", ordered=False, maxRetransmits=0),
            "timed": caller.createDataChannel("timed", maxPacketLifeTime=500),
            "pre": caller.createDataChannel("pre", negotiated=True, id=DC_NEGOTIATED_ID),
        }
        remote: dict[str, Any] = {}
        caller_inbox = Inbox(len(CALLEE_SENDS))
        callee_inbox = Inbox(len(CALLER_SENDS))
        remote_closed = asyncio.Event()

        @callee.on("datachannel")
        def on_channel(channel: Any) -> None:
            remote[channel.label] = channel
            callee_inbox.listen(channel)
            channel.on("close", remote_closed.set)

        @callee.on("track")
        def on_track(track: Any) -> None:
            callee.addTrack(AudioStreamTrack() if track.kind == "audio" else VideoStreamTrack())

        for channel in channels.values():
            caller_inbox.listen(channel)
        remote["pre"] = callee.createDataChannel("pre", negotiated=True, id=DC_NEGOTIATED_ID)
        callee_inbox.listen(remote["pre"])
        offer_sdp, answer_sdp = await negotiate(caller, callee)
        recorder.sides[id(dtls_of(caller))] = "caller"
        recorder.sides[id(dtls_of(callee))] = "callee"
        started = time.monotonic()
        for channel in [*channels.values(), remote["pre"]]:
            await opened(channel)
        while set(remote) != set(channels):
            await asyncio.sleep(0.05)
        messages = []
        for label, data in CALLER_SENDS:
            messages.append(message_record("caller", label, channels[label].id, data))
            channels[label].send(data)
        for label, data in CALLEE_SENDS:
            messages.append(message_record("callee", label, remote[label].id, data))
            remote[label].send(data)
        await asyncio.wait_for(asyncio.gather(caller_inbox.done.wait(), callee_inbox.done.wait()), 20)
        await asyncio.sleep(max(0.0, DC_MEDIA_SECONDS - (time.monotonic() - started)))
        channels["lossy"].close()
        await asyncio.wait_for(remote_closed.wait(), 10)
        await asyncio.sleep(0.3)
        media = media_record("caller", caller) + media_record("callee", callee)
        ports = {
            "caller": dtls_of(caller).transport.iceGatherer._connection.local_candidates[0].port,
            "callee": dtls_of(callee).transport.iceGatherer._connection.local_candidates[0].port,
        }
        await caller.close()
        await callee.close()
    server.close()
    received = [message_record("caller", *got) for got in caller_inbox.got]
    received += [message_record("callee", *got) for got in callee_inbox.got]
    return {
        "offer": offer_sdp,
        "answer": answer_sdp,
        "ports": ports,
        "udp_datagrams_sent": {str(p): n for p, n in sorted(sent.items())},
        "media": media,
        "messages": messages,
        "received": received,
        "channels": [channel_record(c) for c in channels.values()],
        "closed_channel": {"label": "lossy", "stream_id": channels["lossy"].id, "closed_by": "caller"},
    }


def channel_record(channel: Any) -> dict[str, Any]:
    """A data channel's parameters as the caller created it (what DATA_CHANNEL_OPEN says)."""
    return {
        "label": channel.label,
        "stream_id": channel.id,
        "protocol": channel.protocol,
        "ordered": channel.ordered,
        "max_retransmits": channel.maxRetransmits,
        "max_packet_life_time": channel.maxPacketLifeTime,
        "negotiated": channel.negotiated,
    }


def dtls_connections(recorder: Recorder) -> list[dict[str, Any]]:
    """One entry per DTLS connection (by client random): both ends exported the same keying
    material, which is checked here; `dtls_client` names the side whose packets use the client
    key and salt (RFC 5764 section 4.2)."""
    by_random: dict[str, dict[str, Any]] = {}
    for transport, material in recorder.srtp:
        side, role = recorder.side(transport), material.pop("dtls_role")
        entry = by_random.setdefault(material["client_random"], dict(material))
        if {k: entry[k] for k in material} != material:
            raise SystemExit("the two ends of a DTLS connection exported different keying material")
        entry[f"dtls_{role}"] = side
    return list(by_random.values())


def dump_truth(truth: dict[str, Any]) -> str:
    """JSON with one line per packet or message in the long lists (a truth file that a diff can read)."""
    parts = []
    for key, value in truth.items():
        if isinstance(value, list) and value and isinstance(value[0], dict) and key in COMPACT:
            items = ",\n".join("  " + json.dumps(item, ensure_ascii=False) for item in value)
            text = "[\n" + items + "\n ]"
        else:
            text = json.dumps(value, indent=1, ensure_ascii=False).replace("\n", "\n ")
        parts.append(f" {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


COMPACT = frozenset({"rtp", "sctp", "messages", "received"})


def udp_frames(pcap: Path) -> int:
    """How many UDP frames tcpdump wrote (to check that it kept every datagram sent)."""
    out = subprocess.run(
        ["tcpdump", "-r", str(pcap), "-n", "udp"], capture_output=True, text=True, check=True
    )
    return len(out.stdout.splitlines())


def record_datachannels() -> None:
    """webrtc-datachannels.pcap, its NSS key log (.keys) and truth file."""
    record_keyed("webrtc-datachannels", DC_PORTS, datachannels_call)


def record_keyed(
    name: str,
    port_range: range,
    run_call: Callable[[Recorder], Coroutine[Any, Any, dict[str, Any]]],
    oracle: Callable[[str, int], dict[str, Any]] = lambda name, port: datachannels_oracle(name, port),
) -> None:
    """NAME.pcap, its NSS key log (NAME.keys) and NAME.truth.json for a call whose ICE sockets
    bind `port_range`. Recorded again (up to five times) when the capture lacks a datagram the
    peers sent: tcpdump on a busy loopback can drop some, and the tests count frames."""
    pcap = HERE / f"{name}.pcap"
    bpf = f"tcp port {SIGNAL_PORT} or udp portrange {port_range.start}-{port_range.stop - 1}"
    for attempt in range(5):
        recorder = Recorder()
        tcpdump = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-B", "32768", "--immediate-mode", "-U", "-w", str(pcap), bpf],
            stderr=subprocess.PIPE,
        )
        assert tcpdump.stderr is not None
        tcpdump.stderr.readline()
        try:
            with recorder.hooks():
                call_truth = asyncio.run(run_call(recorder))
        finally:
            stop(tcpdump)
        sent = sum(call_truth["udp_datagrams_sent"].values())
        if udp_frames(pcap) == sent:
            break
        print(
            f"attempt {attempt + 1}: {udp_frames(pcap)} UDP frames captured of {sent} sent; recording again"
        )
    else:
        raise SystemExit("tcpdump kept dropping datagrams: giving up")
    lines = dict.fromkeys(recorder.keylog)  # both ends log the same secrets: keep each line once
    (HERE / f"{name}.keys").write_text("".join(line + "\n" for line in lines))
    truth = {
        "keylog": f"{name}.keys",
        "signal_port": SIGNAL_PORT,
        **call_truth,
        "dtls": dtls_connections(recorder),
        "rtp": [packet_record(recorder.side(t), data) for t, data in recorder.rtp],
        "sctp": [sctp_record(recorder.side(t), data) for t, data in recorder.sctp],
        "oracle": oracle(name, call_truth["ports"]["caller"]),
    }
    (HERE / f"{name}.truth.json").write_text(dump_truth(truth))


# -- webrtc-srtp80 and webrtc-srtp32: DTLS-SRTP with AES-CM and HMAC-SHA1, H.264 video --------

SRTP_AES128_CM_SHA1_32 = SRTPProtectionProfile(
    libsrtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
    openssl_profile=b"SRTP_AES128_CM_SHA1_32",
    key_length=16,
    salt_length=14,
)
"""aiortc does not offer the 32-bit tag profile; OpenSSL and libsrtp both know it (RFC 5764
section 4.1.2: a 4-byte SRTP tag, SRTCP keeps the 10-byte tag)."""


@dataclass(frozen=True)
class SrtpSample:
    """A short call whose two peers offer one DTLS-SRTP profile only, so that OpenSSL picks it."""

    name: str
    profile: SRTPProtectionProfile
    ports: range
    seconds: float
    caller_sends: Sends
    callee_sends: Sends


SRTP_SAMPLES = {
    "srtp80": SrtpSample(
        "webrtc-srtp80",
        SRTP_AES128_CM_SHA1_80,
        range(47100, 47110),
        3.0,
        [("chat", "hello over AES-CM"), ("chat", DC_UNICODE), ("chat", b"\x00\x01\x02\x03")],
        [("chat", "hello back"), ("chat", b"\xca\xfe")],
    ),
    "srtp32": SrtpSample(
        "webrtc-srtp32",
        SRTP_AES128_CM_SHA1_32,
        range(47110, 47120),
        1.5,
        [("chat", "hello over a 32-bit tag")],
        [("chat", "short tags back")],
    ),
}
"""The modes `srtp80` and `srtp32` of this script and the sample each one writes."""


@contextlib.contextmanager
def offered_profiles(profiles: list[SRTPProtectionProfile]) -> Iterator[None]:
    """Make every RTCDtlsTransport created meanwhile offer `profiles` only (aiortc reads its
    module's SRTP_PROFILES when a transport is made, and hands the list to use_srtp)."""
    offered = rtcdtlstransport.SRTP_PROFILES
    rtcdtlstransport.SRTP_PROFILES = profiles
    try:
        yield
    finally:
        rtcdtlstransport.SRTP_PROFILES = offered


def video_preferences() -> list[Any]:
    """H.264 (and RTX) when PyAV here has an H.264 encoder, else VP8 (and RTX)."""
    try:
        av.codec.Codec("libx264", "w")
        mime = "video/H264"
    except (av.codec.codec.UnknownCodecError, ValueError):
        mime = "video/VP8"
    codecs = RTCRtpSender.getCapabilities("video").codecs
    return [c for c in codecs if c.mimeType in (mime, "video/rtx")]


async def srtp_call(recorder: Recorder, sample: SrtpSample) -> dict[str, Any]:
    """Opus audio and H.264 video (VP8 where PyAV cannot encode H.264) both ways over one
    BUNDLEd DTLS 1.2 connection whose only SRTP profile is `sample.profile`, and one data
    channel ("chat") carrying a few messages each way."""
    sent: dict[int, int] = {}
    relay = Relay()
    server = await asyncio.start_server(relay.handle, "127.0.0.1", SIGNAL_PORT)
    config = RTCConfiguration(iceServers=[])
    with fixed_ports(sent, sample.ports), offered_profiles([sample.profile]):
        caller, callee = RTCPeerConnection(config), RTCPeerConnection(config)
        caller.addTrack(AudioStreamTrack())
        caller.addTransceiver(VideoStreamTrack()).setCodecPreferences(video_preferences())
        channel = caller.createDataChannel("chat")
        remote: dict[str, Any] = {}
        caller_inbox = Inbox(len(sample.callee_sends))
        callee_inbox = Inbox(len(sample.caller_sends))

        @callee.on("datachannel")
        def on_channel(got: Any) -> None:
            remote[got.label] = got
            callee_inbox.listen(got)

        @callee.on("track")
        def on_track(track: Any) -> None:
            callee.addTrack(AudioStreamTrack() if track.kind == "audio" else VideoStreamTrack())

        caller_inbox.listen(channel)
        offer_sdp, answer_sdp = await negotiate(caller, callee)
        recorder.sides[id(dtls_of(caller))] = "caller"
        recorder.sides[id(dtls_of(callee))] = "callee"
        started = time.monotonic()
        await opened(channel)
        while "chat" not in remote:
            await asyncio.sleep(0.05)
        await opened(remote["chat"])
        messages = []
        for label, data in sample.caller_sends:
            messages.append(message_record("caller", label, channel.id, data))
            channel.send(data)
        for label, data in sample.callee_sends:
            messages.append(message_record("callee", label, remote[label].id, data))
            remote[label].send(data)
        await asyncio.wait_for(asyncio.gather(caller_inbox.done.wait(), callee_inbox.done.wait()), 20)
        await asyncio.sleep(max(0.0, sample.seconds - (time.monotonic() - started)))
        media = media_record("caller", caller) + media_record("callee", callee)
        ports = {
            "caller": dtls_of(caller).transport.iceGatherer._connection.local_candidates[0].port,
            "callee": dtls_of(callee).transport.iceGatherer._connection.local_candidates[0].port,
        }
        await caller.close()
        await callee.close()
    server.close()
    received = [message_record("caller", *got) for got in caller_inbox.got]
    received += [message_record("callee", *got) for got in callee_inbox.got]
    return {
        "offer": offer_sdp,
        "answer": answer_sdp,
        "ports": ports,
        "udp_datagrams_sent": {str(p): n for p, n in sorted(sent.items())},
        "media": media,
        "messages": messages,
        "received": received,
        "channels": [channel_record(channel)],
    }


def record_srtp(mode: str) -> None:
    sample = SRTP_SAMPLES[mode]
    record_keyed(sample.name, sample.ports, lambda recorder: srtp_call(recorder, sample), srtp_oracle)


def srtp_oracle(name: str, port: int) -> dict[str, Any]:
    """The datachannels sample's tshark commands, but SRTP/SRTCP found as "neither STUN nor DTLS":
    tshark 4.0's RTCP heuristic rejects an SRTCP compound packet sealed with AES-CM (the part
    after the first report is ciphertext), so "rtp || srtcp" misses every SRTCP packet here."""
    commands = datachannels_oracle(name, port)
    pcap = commands["srtp_headers"][2]
    srtp = ("udp.srcport", "rtp.ssrc", "rtp.seq", "rtp.p_type", "udp.length")
    options = ["-o", "rtp.heuristic_rtp:TRUE"]
    commands["srtp_headers"] = tshark_fields(pcap, options, "udp && !stun && !dtls", srtp)
    return commands


def tshark_fields(pcap: str, options: list[str], display_filter: str, fields: Sequence[str]) -> list[str]:
    """A tshark command line printing `fields` of the frames `display_filter` keeps."""
    return [
        "tshark",
        "-r",
        pcap,
        *options,
        "-Y",
        display_filter,
        "-T",
        "fields",
        *[arg for f in fields for arg in ("-e", f)],
    ]


def datachannels_oracle(name: str, port: int) -> dict[str, Any]:
    """tshark commands (run from the repository root) that read this sample, for tests.

    tshark 4.0 decrypts DTLS with the key log but has no heuristic that hands the plaintext to
    SCTP; a line of the legacy DTLS RSA key table names the dissector for a port, and that table
    insists on a loadable RSA key file, of any content ({rsa_key}: `openssl genrsa -out KEY 2048`).
    """
    pcap, keys = f"captures/samples/{name}.pcap", f"captures/samples/{name}.keys"
    uat = f'uat:dtlsdecrypttablefile:"127.0.0.1","{port}","sctp","{{rsa_key}}",""'
    randoms = ("dtls.handshake.random",)
    srtp = ("udp.srcport", "rtp.ssrc", "rtp.seq", "rtp.p_type", "udp.length")
    sctp = ("udp.srcport", "sctp.checksum", "sctp.data_sid", "sctp.data_payload_proto_id", "rtcdc.label")
    return {
        "client_randoms": tshark_fields(pcap, [], "dtls.handshake.type == 1", randoms),
        "srtp_headers": tshark_fields(pcap, ["-o", "rtp.heuristic_rtp:TRUE"], "rtp || srtcp", srtp),
        "sctp": tshark_fields(pcap, ["-o", f"tls.keylog_file:{keys}", "-o", uat], "sctp", sctp),
        "rsa_key": "{rsa_key}: any RSA private key in PEM (openssl genrsa -out KEY 2048)",
    }


def main() -> None:
    if sys.argv[1:] == ["datachannels"]:
        record_datachannels()
        return
    if len(sys.argv) == 2 and sys.argv[1] in SRTP_SAMPLES:
        record_srtp(sys.argv[1])
        return
    if sys.argv[1:]:
        raise SystemExit(f"usage: make_webrtc.py [datachannels|{'|'.join(SRTP_SAMPLES)}]")
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
