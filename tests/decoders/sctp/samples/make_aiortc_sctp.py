"""Record the SCTP packets two real aiortc peers send each other over DTLS (RFC 8261), with the
data channels issue 15 lists, as test vectors: `aiortc-datachannels.json` beside this script.

Run from the repository root (no root needed, loopback only):
    .venv/bin/python tests/decoders/sctp/samples/make_aiortc_sctp.py

Until protoscope decrypts DTLS, the SCTP plaintext is taken where aiortc makes it: a hook on
`RTCSctpTransport._send_chunk` notes each chunk's fields as aiortc knows them, and one on
`RTCDtlsTransport._send_data` keeps the serialized packet (what DTLS then encrypts). Two packets
are "lost" on purpose (recorded, as a capture at the sender would show them, then not sent): the
first transmission of one message on the reliable channel (aiortc retransmits it: the decoder
must find the retransmission by TSN) and of one on the unordered maxRetransmits=0 channel (aiortc
abandons it and sends FORWARD-TSN).

The vectors keep, per packet: who sent it, that side's DTLS role, a time, the bytes, whether it was
dropped, and aiortc's view of its chunk; per channel: how it was made and every message each
application sent on it, in order.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aioice.ice
from aiortc import RTCPeerConnection
from aiortc import rtcsctptransport as sctp
from aiortc.rtcdtlstransport import RTCDtlsTransport

HERE = Path(__file__).resolve().parent
OUT = HERE / "aiortc-datachannels.json"
LOST_RELIABLE = "lost once, sent again"
LOST_UNRELIABLE = b"dropped for good"
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []  # type: ignore[assignment]

CHANNELS: list[dict[str, Any]] = [
    {"label": "chat", "kw": {}},
    {"label": "game", "kw": {"ordered": False, "maxRetransmits": 0, "protocol": "game-v1"}},
    {"label": "timed", "kw": {"maxPacketLifeTime": 1500}},
    {"label": "pre", "kw": {"negotiated": True, "id": 7}},
]
BIG_TEXT = "".join(chr(0x41 + i % 26) for i in range(3000)) + " ünïcödé ✓"
BIG_BINARY = bytes((i * 7 + 3) % 256 for i in range(5000))
MESSAGES: dict[str, list[str | bytes]] = {
    "chat": [
        "hello",
        "héllo wörld ✓ 日本語 🎉",
        "",
        b"",
        bytes(range(256)),
        BIG_TEXT,
        BIG_BINARY,
        LOST_RELIABLE,
        "after 1",
        "after 2",
        "after 3",
        "after 4",
    ],
    "game": [b"tick 1", LOST_UNRELIABLE, b"tick 3", "state: ok"],
    "timed": ["expires in 1.5 s"],
    "pre": ["pre-negotiated hello", b"\x00\x01\x02"],
}


def chunk_facts(chunk: sctp.Chunk) -> dict[str, Any]:
    """What aiortc knows of a chunk it sends: its type, flags, body and parsed fields."""
    facts: dict[str, Any] = {"type": chunk.type, "flags": chunk.flags, "body": bytes(chunk)[4:].hex()}
    if isinstance(chunk, sctp.DataChunk):
        facts.update(
            tsn=chunk.tsn,
            stream_id=chunk.stream_id,
            stream_seq=chunk.stream_seq,
            protocol=chunk.protocol,
            user_data=chunk.user_data.hex(),
        )
    elif isinstance(chunk, sctp.BaseInitChunk):
        facts.update(
            initiate_tag=chunk.initiate_tag,
            advertised_rwnd=chunk.advertised_rwnd,
            outbound_streams=chunk.outbound_streams,
            inbound_streams=chunk.inbound_streams,
            initial_tsn=chunk.initial_tsn,
            params=[[t, v.hex()] for t, v in chunk.params],
        )
    elif isinstance(chunk, sctp.SackChunk):
        facts.update(
            cumulative_tsn=chunk.cumulative_tsn,
            advertised_rwnd=chunk.advertised_rwnd,
            gaps=[list(g) for g in chunk.gaps],
            duplicates=list(chunk.duplicates),
        )
    elif isinstance(chunk, sctp.ForwardTsnChunk):
        facts.update(cumulative_tsn=chunk.cumulative_tsn, streams=[list(s) for s in chunk.streams])
    elif isinstance(chunk, sctp.BaseParamsChunk):
        facts.update(params=[[t, v.hex()] for t, v in chunk.params])
    elif isinstance(chunk, sctp.ShutdownChunk):
        facts.update(cumulative_tsn=chunk.cumulative_tsn)
    return facts


class Recorder:
    """The hooks: every packet either peer sends, in the order they were sent."""

    def __init__(self) -> None:
        self.packets: list[dict[str, Any]] = []
        self.names: dict[int, str] = {}
        self.pending: dict[int, tuple[dict[str, Any], bool]] = {}
        self.t0 = time.time()

    def install(self) -> None:
        send_chunk = sctp.RTCSctpTransport._send_chunk
        send_data = RTCDtlsTransport._send_data
        recorder = self

        async def _send_chunk(transport: sctp.RTCSctpTransport, chunk: sctp.Chunk) -> None:
            drop = (
                isinstance(chunk, sctp.DataChunk)
                and chunk._sent_count == 1
                and chunk.user_data in (LOST_RELIABLE.encode(), LOST_UNRELIABLE)
            )
            recorder.pending[id(transport.transport)] = (chunk_facts(chunk), drop)
            await send_chunk(transport, chunk)

        async def _send_data(dtls: RTCDtlsTransport, data: bytes) -> None:
            facts, drop = recorder.pending.pop(id(dtls), ({}, False))
            recorder.packets.append(
                {
                    "sender": recorder.names.get(id(dtls), "?"),
                    "dtls_role": dtls._role,
                    "time": round(time.time() - recorder.t0, 6),
                    "dropped": drop,
                    "hex": data.hex(),
                    "chunk": facts,
                }
            )
            if not drop:
                await send_data(dtls, data)

        sctp.RTCSctpTransport._send_chunk = _send_chunk  # type: ignore[method-assign]
        RTCDtlsTransport._send_data = _send_data  # type: ignore[method-assign]


async def run() -> dict[str, Any]:
    recorder = Recorder()
    recorder.install()
    caller, callee = RTCPeerConnection(), RTCPeerConnection()
    sent: dict[str, list[dict[str, Any]]] = {c["label"]: [] for c in CHANNELS}
    got: dict[tuple[str, str], list[str | bytes]] = {}
    want = {label: len(messages) for label, messages in MESSAGES.items()}
    want["game"] -= 1  # the dropped one is abandoned, never delivered
    done = asyncio.Event()

    def note(side: str, label: str, message: str | bytes) -> None:
        sent[label].append(
            {
                "from": side,
                "type": "text" if isinstance(message, str) else "binary",
                "value": message if isinstance(message, str) else message.hex(),
            }
        )

    def arrived() -> None:
        if all(len(got.get(("caller", label), [])) >= n for label, n in want.items()):
            done.set()

    def listen(side: str, channel: Any, echo: bool) -> None:
        @channel.on("message")
        def on_message(message: str | bytes) -> None:
            got.setdefault((side, channel.label), []).append(message)
            if echo:
                note(side, channel.label, message)
                channel.send(message)
            arrived()

    @callee.on("datachannel")
    def on_channel(channel: Any) -> None:
        listen("callee", channel, echo=True)

    channels = {}
    for spec in CHANNELS:
        channels[spec["label"]] = caller.createDataChannel(spec["label"], **spec["kw"])
        listen("caller", channels[spec["label"]], echo=False)
    pre_callee = callee.createDataChannel("pre", negotiated=True, id=7)
    listen("callee", pre_callee, echo=True)

    await caller.setLocalDescription(await caller.createOffer())
    await callee.setRemoteDescription(caller.localDescription)
    await callee.setLocalDescription(await callee.createAnswer())
    await caller.setRemoteDescription(callee.localDescription)
    recorder.names[id(caller.sctp.transport)] = "caller"
    recorder.names[id(callee.sctp.transport)] = "callee"

    for channel in channels.values():
        if channel.readyState != "open":
            opened = asyncio.Event()
            channel.on("open", opened.set)
            await asyncio.wait_for(opened.wait(), 20)
    for label, messages in MESSAGES.items():
        for message in messages:
            note("caller", label, message)
            channels[label].send(message)
            await asyncio.sleep(0.02)
    await asyncio.wait_for(done.wait(), 30)
    channels["timed"].close()  # an outgoing SSN reset request (RFC 6525), answered
    await asyncio.sleep(1.0)
    await caller.close()  # aiortc ends an association with ABORT
    await callee.close()

    return {
        "generator": "aiortc " + __import__("aiortc").__version__,
        "channels": [
            {
                "label": spec["label"],
                "id": channels[spec["label"]].id,
                "ordered": channels[spec["label"]].ordered,
                "maxRetransmits": channels[spec["label"]].maxRetransmits,
                "maxPacketLifeTime": channels[spec["label"]].maxPacketLifeTime,
                "protocol": channels[spec["label"]].protocol,
                "negotiated": channels[spec["label"]].negotiated,
                "messages": sent[spec["label"]],
            }
            for spec in CHANNELS
        ],
        "lost": {"reliable": LOST_RELIABLE, "unreliable": LOST_UNRELIABLE.hex()},
        "packets": recorder.packets,
    }


def main() -> None:
    truth = asyncio.run(run())
    OUT.write_text(json.dumps(truth, indent=1, ensure_ascii=False) + "\n")
    print(f"{OUT.name}: {len(truth['packets'])} packets")


if __name__ == "__main__":
    main()
