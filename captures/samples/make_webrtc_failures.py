"""Record WebRTC calls that fail, each in its own phase: real aiortc peers on 127.0.0.1 with the
signaling over WebSocket (as in make_webrtc.py), and a real coturn server where TURN is involved.

Run as root from the repository root (tcpdump and coturn need it):
    python captures/samples/make_webrtc_failures.py

* webrtc-no-answer.pcap (ICE): the callee answers the offer and goes away; the caller's
  connectivity checks are never answered.
* webrtc-turn-refused.pcap (TURN): the caller's TURN password is wrong; coturn answers 401 to the
  Allocate that carries the credentials, and no relay candidate is ever gathered.
* webrtc-bad-fingerprint.pcap (DTLS): the answer's a=fingerprint is altered on its way through
  the signaling server; ICE connects, the caller refuses the callee's certificate and the DTLS
  handshake never finishes.
* webrtc-one-way.pcap (media): the callee answers recvonly and sends no audio.

Each truth file keeps what the peers said (SDPs, the caller's final connection state) and, under
"expected", the failed phase and finding codes the sessions report must give.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from make_webrtc import (
    SIGNAL_PORT,
    TURN_PORT,
    TURN_USER,
    Relay,
    capture,
    connect,
    frame,
    read_frame,
    start_coturn,
    stop,
    write_truth,
)

HERE = Path(__file__).resolve().parent
WRONG_PASSWORD = "not-the-secret"
WAIT_S = 6.0
"""How long a failing call is given before both peers hang up."""


async def failing_call(kind: str, config: RTCConfiguration) -> dict[str, Any]:
    relay = Relay()
    server = await asyncio.start_server(relay.handle, "127.0.0.1", SIGNAL_PORT)
    caller_r, caller_w = await connect()
    callee_r, callee_w = await connect()
    caller, callee = RTCPeerConnection(config), RTCPeerConnection(RTCConfiguration(iceServers=[]))
    caller.addTrack(AudioStreamTrack())
    if kind == "one-way":
        caller.getTransceivers()[0].direction = "sendonly"
    await caller.setLocalDescription(await caller.createOffer())
    offer = caller.localDescription
    caller_w.write(frame(json.dumps({"type": offer.type, "sdp": offer.sdp}), masked=True))
    got = json.loads(await read_frame(callee_r))
    await callee.setRemoteDescription(RTCSessionDescription(got["sdp"], got["type"]))
    if kind != "one-way":
        callee.addTrack(AudioStreamTrack())
    await callee.setLocalDescription(await callee.createAnswer())
    answer = callee.localDescription
    sdp = answer.sdp
    if kind == "bad-fingerprint":  # a different certificate than the one the callee will show
        sdp = re.sub(
            r"(a=fingerprint:\S+ )([0-9A-F]{2})", lambda m: m[1] + ("00" if m[2] != "00" else "11"), sdp
        )
    callee_w.write(frame(json.dumps({"type": answer.type, "sdp": sdp}), masked=True))
    if kind == "no-answer":
        await callee.close()  # its ICE agent and sockets are gone before the first check
    got = json.loads(await read_frame(caller_r))
    with suppress(Exception):  # a refused TURN allocation fails gathering here
        await caller.setRemoteDescription(RTCSessionDescription(got["sdp"], got["type"]))
    await asyncio.sleep(WAIT_S)
    truth = {"offer": offer.sdp, "answer": sdp, "caller_state": caller.connectionState}
    for pc in (caller, callee):
        with suppress(Exception):
            await pc.close()
    for w in (caller_w, callee_w):
        w.close()
    server.close()
    return truth


EXPECTED: dict[str, dict[str, Any]] = {
    "no-answer": {"session": ["ice", ["ice.no_response"]]},
    "turn-refused": {
        "session": ["ice", ["ice.no_checks"]],
        "allocation": ["turn", ["turn.credentials_refused"]],
    },
    # The callee finishes its side of the handshake and sends; the caller refuses the certificate
    # after it and never sends media: the certificate is the cause, one-way media the symptom.
    "bad-fingerprint": {"session": ["dtls", ["dtls.fingerprint_mismatch", "media.one_way"]]},
    "one-way": {"session": ["media", ["media.one_way"]]},
}
"""What the sessions report must say: [failed phase, finding codes] of the ICE session (and of the
TURN allocation)."""


def record(kind: str, config: RTCConfiguration) -> None:
    name = f"webrtc-{kind}"
    tcpdump = capture(HERE / f"{name}.pcap", f"tcp port {SIGNAL_PORT} or udp")
    truth = asyncio.run(failing_call(kind, config))
    stop(tcpdump)
    truth["expected"] = EXPECTED[kind]
    write_truth(name, truth)


def main() -> None:
    direct = RTCConfiguration(iceServers=[])
    record("no-answer", direct)
    record("bad-fingerprint", direct)
    record("one-way", direct)
    coturn = start_coturn("secret")  # the caller will present WRONG_PASSWORD
    try:
        time.sleep(1.0)
        server = RTCIceServer(f"turn:127.0.0.1:{TURN_PORT}", TURN_USER, WRONG_PASSWORD)
        record(
            "turn-refused",
            RTCConfiguration(iceServers=[server], iceTransportPolicy=RTCIceTransportPolicy.RELAY),
        )
    finally:
        coturn.send_signal(signal.SIGTERM)
        coturn.wait(timeout=10)


if __name__ == "__main__":
    main()
