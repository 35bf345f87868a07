"""One end of a NAT lab call (captures/samples/make_nat.py runs it inside a network namespace).

`nat_peer.py signal HOST PORT`: the signaling server, a mailbox over HTTP/1.1: `POST /NAME` keeps
the body under NAME, `GET /NAME` waits until NAME is there and answers it. It runs on the lab's
public network, so the capture taken outside the NATs holds the offer and the answer.

`nat_peer.py peer CONFIG.json`: an aiortc peer. The offerer ("A") sends the offer and a data
channel message, the answerer ("B") answers and replies; both send Opus audio (aiortc's
AudioStreamTrack) for a few seconds, then stop their tracks and report what they did as JSON on
stdout: their candidates as aioice gathered them (the STUN and TURN mappings coturn answered),
the other side's candidates as aioice knows them (peer-reflexive ones included), the pair aioice
nominated, the offer and answer SDPs and RTP packets sent per SSRC (getStats() outbound-rtp).

The host socket binds a port chosen by the lab (CONFIG "port"), the port turnutils_natdiscovery
used just before, so that the RFC 5780 tests and the call share one inside endpoint.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import socketserver
import sys
import threading
import urllib.request
from typing import Any, ClassVar

SIGNAL_TIMEOUT_S = 60.0
"""How long a GET waits for its mailbox (the other peer gathers candidates meanwhile)."""
MAX_BODY = 1 << 20
"""The largest signaling message the mailbox keeps (an SDP is a few kilobytes)."""
MEDIA_SECONDS = 2.0
"""Audio sent after the data channel messages: about 100 Opus packets each way."""


class Mailbox(http.server.BaseHTTPRequestHandler):
    """POST /NAME stores a message, GET /NAME waits for it (one message per name)."""

    boxes: ClassVar[dict[str, bytes]] = {}
    changed: ClassVar[threading.Condition] = threading.Condition()
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = min(int(self.headers.get("Content-Length", "0")), MAX_BODY)
        body = self.rfile.read(length)
        with self.changed:
            self.boxes[self.path] = body
            self.changed.notify_all()
        self.reply(204, b"")

    def do_GET(self) -> None:
        with self.changed:
            found = self.changed.wait_for(lambda: self.path in self.boxes, SIGNAL_TIMEOUT_S)
            body = self.boxes.get(self.path, b"")
        self.reply(200 if found else 404, body)

    def reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class MailboxServer(http.server.ThreadingHTTPServer):
    def server_bind(self) -> None:
        """HTTPServer.server_bind asks DNS for the host's name, which in a namespace without a
        resolver waits for the timeouts; the mailbox needs no name."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


def serve(host: str, port: int) -> None:
    server = MailboxServer((host, port), Mailbox)
    print("ready", flush=True)
    server.serve_forever()


def post(base: str, name: str, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode()
    request = urllib.request.Request(
        f"{base}/{name}", data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=SIGNAL_TIMEOUT_S) as response:
        response.read()


def get(base: str, name: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base}/{name}", timeout=SIGNAL_TIMEOUT_S + 5) as response:
        message: dict[str, Any] = json.loads(response.read())
        return message


def candidate_row(candidate: Any) -> dict[str, Any]:
    """An aioice Candidate as the truth keeps it (RFC 8839 names)."""
    related = None
    if candidate.related_address is not None:
        related = f"{candidate.related_address}:{candidate.related_port}"
    return {
        "type": candidate.type,
        "endpoint": f"{candidate.host}:{candidate.port}",
        "related": related,
        "foundation": candidate.foundation,
        "priority": candidate.priority,
        "sdp": candidate.to_sdp(),
    }


def turn_socket(connection: Any) -> str | None:
    """The inside endpoint of the socket that talks to the TURN server (the Allocate's source)."""
    for protocol in connection._protocols:
        if protocol.local_candidate is not None and protocol.local_candidate.type == "relay":
            inner = protocol.transport._TurnTransport__inner_protocol
            host, port = inner.transport.get_extra_info("sockname")[:2]
            return f"{host}:{port}"
    return None


def fixed_host_port(port: int) -> None:
    """Bind aioice's host candidate (local_addr port 0) to `port`; other sockets keep port 0."""
    loop = asyncio.get_running_loop()
    create = loop.create_datagram_endpoint

    async def create_datagram_endpoint(factory: Any, local_addr: Any = None, **kwargs: Any) -> Any:
        if local_addr is not None and local_addr[1] == 0:
            local_addr = (local_addr[0], port)
        return await create(factory, local_addr=local_addr, **kwargs)

    loop.create_datagram_endpoint = create_datagram_endpoint  # type: ignore[method-assign,assignment]


async def run_peer(config: dict[str, Any]) -> dict[str, Any]:
    from aiortc import (
        RTCBundlePolicy,
        RTCConfiguration,
        RTCIceServer,
        RTCPeerConnection,
        RTCSessionDescription,
    )
    from aiortc.mediastreams import AudioStreamTrack

    fixed_host_port(int(config["port"]))
    base, name, other = config["signal"], config["name"], config["other"]
    servers = [
        RTCIceServer(f"stun:{config['stun']}"),
        RTCIceServer(f"turn:{config['turn']}", config["username"], config["password"]),
    ]
    # max-bundle: one ICE transport from the start, so one host socket (on the lab's port), one
    # srflx query and one TURN allocation per peer.
    pc = RTCPeerConnection(RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    track = AudioStreamTrack()
    pc.addTrack(track)
    received: list[str] = []
    got_message = asyncio.Event()
    channels: list[Any] = []

    def listen(channel: Any) -> None:
        channels.append(channel)

        @channel.on("message")  # type: ignore[untyped-decorator]
        def on_message(message: str) -> None:
            received.append(message)
            got_message.set()
            if name == "B":
                channel.send(f"hello back from {name}")

    if name == "A":
        channel = pc.createDataChannel("chat")
        listen(channel)
        opened = asyncio.Event()
        channel.on("open", opened.set)
        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription
        await asyncio.to_thread(post, base, "offer", {"type": offer.type, "sdp": offer.sdp})
        got = await asyncio.to_thread(get, base, "answer")
        await pc.setRemoteDescription(RTCSessionDescription(got["sdp"], got["type"]))
        offer_sdp, answer_sdp = offer.sdp, got["sdp"]
        await asyncio.wait_for(opened.wait(), 30)
        channel.send(f"hello from {name}")
    else:
        pc.on("datachannel", listen)
        got = await asyncio.to_thread(get, base, "offer")
        await pc.setRemoteDescription(RTCSessionDescription(got["sdp"], got["type"]))
        await pc.setLocalDescription(await pc.createAnswer())
        answer = pc.localDescription
        await asyncio.to_thread(post, base, "answer", {"type": answer.type, "sdp": answer.sdp})
        offer_sdp, answer_sdp = got["sdp"], answer.sdp
    await asyncio.wait_for(got_message.wait(), 30)
    await asyncio.sleep(MEDIA_SECONDS)
    # Stop sending before counting: getStats() then holds every RTP packet this peer will send.
    track.stop()
    await asyncio.sleep(0.5)
    sent = {str(s.ssrc): s.packetsSent for s in (await pc.getStats()).values() if s.type == "outbound-rtp"}
    assert pc.sctp is not None
    ice = pc.sctp.transport.transport
    connection = ice.iceGatherer._connection
    pair = connection._nominated.get(1)
    truth = {
        "name": name,
        "ice_role": ice.role,
        "host_port": int(config["port"]),
        "local_candidates": [candidate_row(c) for c in connection.local_candidates],
        "remote_candidates": [candidate_row(c) for c in connection._remote_candidates],
        "turn_socket": turn_socket(connection),
        "selected_pair": None
        if pair is None
        else {
            "local": candidate_row(pair.local_candidate),
            "remote": candidate_row(pair.remote_candidate),
        },
        "rtp_packets_sent": sent,
        "messages_received": received,
        "offer": offer_sdp,
        "answer": answer_sdp,
    }
    # Close only when both sides have counted: a peer that closes first ends the other's media.
    await asyncio.to_thread(post, base, f"done-{name}", {"done": name})
    await asyncio.to_thread(get, base, f"done-{other}")
    await pc.close()
    return truth


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "signal":
        serve(sys.argv[2], int(sys.argv[3]))
        return
    if len(sys.argv) == 3 and sys.argv[1] == "peer":
        with open(sys.argv[2]) as f:
            config = json.load(f)
        print(json.dumps(asyncio.run(run_peer(config))), flush=True)
        return
    raise SystemExit("usage: nat_peer.py signal HOST PORT | nat_peer.py peer CONFIG.json")


if __name__ == "__main__":
    main()
