"""Record sdes-srtp.pcap: SRTP keyed by SDES (RFC 4568 a=crypto), sent by ffmpeg, with its SDP.

Run as root from the repository root (tcpdump needs it; ffmpeg too: apt-get install ffmpeg):
python captures/samples/make_sdes.py

Two streams, one after the other, each a 2-second 440 Hz tone from ffmpeg's lavfi `sine` sent as
SRTP by ffmpeg's `srtp://` protocol with a fresh random master key and salt (30 bytes) given on
its command line (`-srtp_out_suite`, `-srtp_out_params`):

* AES_CM_128_HMAC_SHA1_80, PCMU (payload type 0, 20 ms packets) to 127.0.0.1:47130, its SRTCP to
  47131;
* AES_CM_128_HMAC_SHA1_32, Opus (48 kHz, 20 ms frames) to 127.0.0.1:47132, its SRTCP to 47133.
  ffmpeg puts a 4-byte tag on this stream's SRTCP too, where libsrtp (and RFC 5764 for DTLS-SRTP)
  keep SRTCP at 80 bits: a receiver of SDES _32 media from ffmpeg must accept the short tag.

Before each stream starts, the SDP that ffmpeg writes for it (`-sdp_file`: m=audio, a=rtpmap and
the a=crypto line with the inline key) is POSTed over HTTP/1.1 (Content-Type: application/sdp) to
a small Python server on 127.0.0.1:47128, so that the capture carries the key as signaling. ffmpeg
writes its SDP only as it starts sending, so the SDP is taken from a dry run with the same
arguments (one frame, before tcpdump starts) and the sending run's own SDP is checked to be the
same bytes. Python sockets bound on the four UDP ports take the datagrams in (without a
listener, ICMP port unreachable makes ffmpeg's connected socket drop the next send).

Writes sdes-srtp.pcap and sdes-srtp.truth.json. How the truth was made: the generator chose each
key, so it decrypts every captured datagram (read with tshark) with pylibsrtp and that key (the
oracle), having checked that the capture holds, port by port, the datagrams the receivers got.
Per stream: the suite, the key and salt (base64), ports, the SDP, the HTTP exchange, the ffmpeg
command, the SSRC, payload type, packet counts, every RTP plaintext (header fields, the header
and the payload's first 16 bytes in hex, sha256 of payload and packet) and every SRTCP packet
(plaintext in hex, E flag, SRTCP index, tag length, and what checked it). SRTCP with the 4-byte
tag is beyond pylibsrtp (its profile sets SRTCP's tag at 80 bits): for it the generator checks
the tag and decrypts with the RFC 3711 key derivation written here over the `cryptography`
library, the same code being checked first against pylibsrtp on the _80 stream's SRTCP.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pylibsrtp
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

HERE = Path(__file__).resolve().parent
NAME = "sdes-srtp"
HTTP_PORT = 47128
SECONDS = 2
PAYLOAD_HEAD = 16
"""RTP payload bytes kept in clear in the truth (the Opus TOC byte, or a glimpse of the tone)."""


@dataclass(frozen=True)
class Stream:
    """One ffmpeg SRTP sender: its SDES crypto suite, codec arguments and ports."""

    suite: str
    profile: str
    """pylibsrtp's name for the same transform (Policy.SRTP_PROFILE_...)."""
    rtp_port: int
    codec: list[str]
    srtp_tag: int
    srtcp_tag: int
    """Tag lengths on the wire; ffmpeg's SRTCP tag follows the suite (4 bytes for _32)."""

    @property
    def rtcp_port(self) -> int:
        return self.rtp_port + 1  # ffmpeg's rtp:// sends RTCP to the next port (no rtcp-mux)


STREAMS = [
    Stream(
        "AES_CM_128_HMAC_SHA1_80",
        "AES128_CM_SHA1_80",
        47130,
        ["-c:a", "pcm_mulaw", "-ar", "8000", "-ac", "1"],
        10,
        10,
    ),
    Stream(
        "AES_CM_128_HMAC_SHA1_32",
        "AES128_CM_SHA1_32",
        47132,
        ["-c:a", "libopus", "-ar", "48000", "-ac", "1", "-b:a", "32k"],
        4,
        4,
    ),
]


def ffmpeg_args(stream: Stream, key_salt: str, sdp_file: Path, frames: int | None) -> list[str]:
    """The ffmpeg command line for `stream` (a tone of SECONDS paced in real time; `frames` cuts
    it short for the dry run that only writes the SDP)."""
    rate = 8000 if "pcm_mulaw" in stream.codec else 48000
    tone = f"sine=frequency=440:duration={SECONDS}:sample_rate={rate}:samples_per_frame={rate // 50}"
    limit = ["-frames:a", str(frames)] if frames is not None else []
    return [
        "ffmpeg",
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-re",
        "-f",
        "lavfi",
        "-i",
        tone,
        *stream.codec,
        *limit,
        "-rtpflags",
        "send_bye",
        "-f",
        "rtp",
        "-srtp_out_suite",
        stream.suite,
        "-srtp_out_params",
        key_salt,
        "-sdp_file",
        str(sdp_file),
        f"srtp://127.0.0.1:{stream.rtp_port}",
    ]


# -- the receivers: an HTTP server that takes SDPs, UDP sockets that take the media ------------


class SdpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", HTTP_PORT), SdpHandler)
        self.received: list[dict[str, Any]] = []


class SdpHandler(BaseHTTPRequestHandler):
    """POST /streams/N with an SDP body: 201 Created; anything else: 404."""

    protocol_version = "HTTP/1.1"
    server: SdpServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        ok = self.path.startswith("/streams/") and self.headers.get("Content-Type") == "application/sdp"
        self.server.received.append({"path": self.path, "body": body.decode()})
        self.send_response(201 if ok else 404)
        self.send_header("Location", self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class UdpSink:
    """Bound sockets on the media ports that keep every datagram they get, in order."""

    def __init__(self, ports: list[int]) -> None:
        self.got: list[tuple[int, bytes]] = []
        self.lock = threading.Lock()
        self.sockets = []
        for port in ports:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", port))
            sock.settimeout(0.1)
            self.sockets.append(sock)
        self.running = True
        self.threads = [threading.Thread(target=self.drain, args=(s,), daemon=True) for s in self.sockets]
        for t in self.threads:
            t.start()

    def drain(self, sock: socket.socket) -> None:
        port = sock.getsockname()[1]
        while self.running:
            try:
                data = sock.recv(65535)
            except TimeoutError:
                continue
            with self.lock:
                self.got.append((port, data))

    def take(self) -> list[tuple[int, bytes]]:
        with self.lock:
            got, self.got = self.got, []
        return got

    def close(self) -> None:
        self.running = False
        for t in self.threads:
            t.join()
        for s in self.sockets:
            s.close()


def post_sdp(index: int, sdp: str) -> dict[str, Any]:
    """POST the SDP as an application would hand its offer to a media server; the exchange."""
    conn = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=10)
    path = f"/streams/{index}"
    conn.request("POST", path, body=sdp.encode(), headers={"Content-Type": "application/sdp"})
    response = conn.getresponse()
    response.read()
    conn.close()
    return {"method": "POST", "path": path, "content_type": "application/sdp", "status": response.status}


# -- the oracle: pylibsrtp, and RFC 3711 SRTCP for the short tag -----------------------------


def kdf(master_key: bytes, master_salt: bytes, label: int, length: int) -> bytes:
    """RFC 3711 section 4.3.1 with key_derivation_rate 0: AES-CM keystream at (salt XOR label)."""
    x = int.from_bytes(master_salt, "big") ^ (label << 48)
    counter = Cipher(algorithms.AES(master_key), modes.CTR((x << 16).to_bytes(16, "big"))).encryptor()
    return counter.update(bytes(length))


def srtcp_unprotect(key_salt: bytes, data: bytes, tag: int) -> bytes:
    """RFC 3711 sections 3.4 and 4.1.1 for SRTCP with AES-CM and a `tag`-byte HMAC-SHA1."""
    master_key, master_salt = key_salt[:16], key_salt[16:]
    auth_key = kdf(master_key, master_salt, 4, 20)
    body, got = data[:-tag], data[-tag:]
    want = hmac.new(auth_key, body, hashlib.sha1).digest()[:tag]
    if not hmac.compare_digest(got, want):
        raise ValueError("SRTCP authentication tag does not match")
    e_index = int.from_bytes(body[-4:], "big")
    if not e_index >> 31:
        return body[:-4]
    index = e_index & 0x7FFFFFFF
    ssrc = int.from_bytes(body[4:8], "big")
    salt = int.from_bytes(kdf(master_key, master_salt, 5, 14), "big")
    iv = ((salt << 16) ^ (ssrc << 64) ^ (index << 16)).to_bytes(16, "big")
    counter = Cipher(algorithms.AES(kdf(master_key, master_salt, 3, 16)), modes.CTR(iv)).decryptor()
    return body[:8] + counter.update(body[8:-4])


def rtp_record(data: bytes) -> dict[str, Any]:
    """An RTP packet as pylibsrtp unprotected it."""
    first, second = data[0], data[1]
    header = 12 + 4 * (first & 0x0F)
    if first & 0x10:
        header += 4 + 4 * int.from_bytes(data[header + 2 : header + 4], "big")
    end = len(data) - (data[-1] if first & 0x20 else 0)
    return {
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


def unprotect_stream(stream: Stream, key_salt: bytes, got: list[tuple[int, bytes]]) -> dict[str, Any]:
    """Every datagram of one stream decrypted with the key the generator chose."""
    policy = pylibsrtp.Policy(
        key=key_salt,
        ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
        srtp_profile=getattr(pylibsrtp.Policy, "SRTP_PROFILE_" + stream.profile),
    )
    session = pylibsrtp.Session(policy)
    rtp, rtcp = [], []
    for port, data in got:
        if port == stream.rtp_port:
            rtp.append(rtp_record(session.unprotect(data)))
            if len(data) - rtp[-1]["size"] != stream.srtp_tag:
                raise SystemExit(f"{stream.suite}: SRTP tag is not {stream.srtp_tag} bytes")
            continue
        plain = srtcp_unprotect(key_salt, data, stream.srtcp_tag)
        checked_by = "own RFC 3711 code (pylibsrtp keeps SRTCP tags at 80 bits)"
        if stream.srtcp_tag == 10:
            if session.unprotect_rtcp(data) != plain:
                raise SystemExit("the RFC 3711 SRTCP code disagrees with pylibsrtp")
            checked_by = "pylibsrtp"
        e_index = int.from_bytes(data[-stream.srtcp_tag - 4 : -stream.srtcp_tag], "big")
        rtcp.append(
            {
                "hex": plain.hex(),
                "encrypted": bool(e_index >> 31),
                "srtcp_index": e_index & 0x7FFFFFFF,
                "tag_length": stream.srtcp_tag,
                "checked_by": checked_by,
            }
        )
    ssrcs = {p["ssrc"] for p in rtp}
    pts = {p["pt"] for p in rtp}
    seqs = [p["seq"] for p in rtp]
    if len(ssrcs) != 1 or len(pts) != 1 or seqs != [(seqs[0] + i) % 65536 for i in range(len(seqs))]:
        raise SystemExit(f"{stream.suite}: not one SSRC and payload type in consecutive packets")
    return {
        "ssrc": ssrcs.pop(),
        "payload_type": pts.pop(),
        "packets": len(rtp),
        "rtcp_packets": len(rtcp),
        "rtp": rtp,
        "rtcp": rtcp,
    }


# -- recording ---------------------------------------------------------------------------------


def dry_run_sdp(stream: Stream, key_salt: str, work: Path) -> str:
    """The SDP ffmpeg writes for these arguments, from a one-frame run (before the capture)."""
    sdp = work / f"dry-{stream.rtp_port}.sdp"
    subprocess.run(ffmpeg_args(stream, key_salt, sdp, frames=1), check=True, timeout=60)
    return sdp.read_text()


def captured(pcap: Path) -> list[tuple[int, bytes]]:
    """The UDP datagrams of the capture (destination port, payload), in order, as tshark reads them."""
    command = tshark_fields(str(pcap), "udp", ("udp.dstport", "udp.payload"))
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    rows = (line.split("\t") for line in out.stdout.splitlines())
    return [(int(port), bytes.fromhex(payload)) for port, payload in rows]


def by_port(datagrams: list[tuple[int, bytes]]) -> dict[int, list[bytes]]:
    """Datagrams in order per port (the receivers' threads interleave ports in their own order)."""
    out: dict[int, list[bytes]] = {}
    for port, data in datagrams:
        out.setdefault(port, []).append(data)
    return out


def record_once(pcap: Path, work: Path) -> dict[str, Any] | None:
    """One recording; None when the capture lacks a datagram the receivers got."""
    ports = [p for s in STREAMS for p in (s.rtp_port, s.rtcp_port)]
    sink = UdpSink(ports)
    keys = [os.urandom(30) for _ in STREAMS]
    b64 = [base64.b64encode(k).decode() for k in keys]
    try:
        sdps = [dry_run_sdp(s, k, work) for s, k in zip(STREAMS, b64, strict=True)]
        time.sleep(0.5)
        sink.take()  # the dry runs' packets are not part of the sample
        server = SdpServer()
        threading.Thread(target=server.serve_forever, daemon=True).start()
        bpf = f"tcp port {HTTP_PORT} or udp portrange {ports[0]}-{ports[-1]}"
        tcpdump = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-B", "32768", "--immediate-mode", "-U", "-w", str(pcap), bpf],
            stderr=subprocess.PIPE,
        )
        assert tcpdump.stderr is not None
        tcpdump.stderr.readline()
        streams = []
        try:
            for index, (stream, key_b64, sdp) in enumerate(zip(STREAMS, b64, sdps, strict=True), 1):
                http = post_sdp(index, sdp)
                sent_sdp = work / f"sent-{stream.rtp_port}.sdp"
                args = ffmpeg_args(stream, key_b64, sent_sdp, frames=None)
                subprocess.run(args, check=True, timeout=60)
                if sent_sdp.read_text() != sdp:
                    raise SystemExit("the sending ffmpeg wrote another SDP than the dry run")
                streams.append((stream, key_b64, sdp, http, args))
                time.sleep(0.3)
        finally:
            time.sleep(0.5)
            tcpdump.send_signal(signal.SIGINT)
            tcpdump.wait(timeout=10)
            server.shutdown()
            server.server_close()
        got = sink.take()
    finally:
        sink.close()
    on_wire = captured(pcap)
    if by_port(on_wire) != by_port(got):
        print(f"{len(on_wire)} UDP frames captured, {len(got)} received: recording again")
        return None
    if [r["body"] for r in server.received] != sdps:
        raise SystemExit("the HTTP server did not get the SDPs")
    out = []
    for (stream, key_b64, sdp, http, args), key in zip(streams, keys, strict=True):
        mine = [(port, data) for port, data in on_wire if port in (stream.rtp_port, stream.rtcp_port)]
        out.append(
            {
                "suite": stream.suite,
                "key_salt": key_b64,
                "key": base64.b64encode(key[:16]).decode(),
                "salt": base64.b64encode(key[16:]).decode(),
                "rtp_port": stream.rtp_port,
                "rtcp_port": stream.rtcp_port,
                "srtp_tag_length": stream.srtp_tag,
                "srtcp_tag_length": stream.srtcp_tag,
                "sdp": sdp,
                "http": http,
                "ffmpeg": [a.replace(str(work), "{work}") for a in args],
                **unprotect_stream(stream, key, mine),
            }
        )
    return {"http_port": HTTP_PORT, "streams": out, "oracle": oracle()}


def oracle() -> dict[str, Any]:
    """tshark commands (run from the repository root) that read this sample, for tests."""
    pcap = f"captures/samples/{NAME}.pcap"
    return {
        "udp": tshark_fields(pcap, "udp", ("udp.dstport", "udp.payload")),
        "http": tshark_fields(
            pcap,
            "http.request.method == POST",
            (
                "http.request.uri",
                "http.content_type",
                "sdp.media.port",
                "sdp.crypto.crypto_suite",
                "sdp.crypto.master_key",
                "sdp.crypto.master_salt",
            ),
        ),
        "order": tshark_fields(pcap, "http.request || udp", ("frame.number", "udp.dstport")),
    }


def tshark_fields(pcap: str, display_filter: str, fields: tuple[str, ...]) -> list[str]:
    """A tshark command line printing `fields` of the frames `display_filter` keeps."""
    return [
        "tshark",
        "-r",
        pcap,
        "-Y",
        display_filter,
        "-T",
        "fields",
        *[a for f in fields for a in ("-e", f)],
    ]


COMPACT = frozenset({"rtp", "rtcp"})


def dump_truth(value: Any, key: str = "", indent: str = "") -> str:
    """JSON with one line per packet in the long lists (a truth file that a diff can read)."""
    inner = indent + " "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(k)}: {dump_truth(v, k, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and value:
        if key in COMPACT:
            items = [inner + json.dumps(item) for item in value]
        else:
            items = [inner + dump_truth(item, "", inner) for item in value]
        return "[\n" + ",\n".join(items) + f"\n{indent}]"
    return json.dumps(value)


def main() -> None:
    if shutil.which("ffmpeg") is None:
        raise SystemExit("ffmpeg is needed (apt-get install ffmpeg)")
    pcap = HERE / f"{NAME}.pcap"
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(5):
            truth = record_once(pcap, Path(tmp))
            if truth is not None:
                break
        else:
            raise SystemExit("tcpdump kept dropping datagrams: giving up")
    (HERE / f"{NAME}.truth.json").write_text(dump_truth(truth) + "\n")


if __name__ == "__main__":
    main()
