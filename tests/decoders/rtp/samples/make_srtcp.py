"""Record srtcp-libsrtp.pcap: SRTP and SRTCP protected by libsrtp (through pylibsrtp), sent over
127.0.0.1 and captured with tcpdump, with the truth of every RTCP datagram in srtcp-libsrtp.truth.json.

Run as root (tcpdump needs it), with pylibsrtp installed (it is not a protoscope dependency):
    python -m venv /tmp/rec && /tmp/rec/bin/pip install pylibsrtp
    /tmp/rec/bin/python tests/decoders/rtp/samples/make_srtcp.py

Each flow is one way of carrying SRTCP; the RTCP plaintext (SR or RR with one report block and an
SDES CNAME, then a BYE) is built here, libsrtp protects it:

* sdes-80: SIP INVITE/200 OK with SDP `RTP/SAVP` and `a=crypto` AES_CM_128_HMAC_SHA1_80 (RFC 4568),
  RTCP on the RTP port + 1: the E flag and index 4 + 10 bytes from the end.
* sdes-32-asterisk: the same with AES_CM_128_HMAC_SHA1_32 and a 4-byte SRTCP tag, as Asterisk's
  res_srtp and Zfone send it (libsrtp's own DTLS-SRTP mapping keeps 80 bits for SRTCP): 4 + 4.
* gcm-128-mux: no signaling, AEAD_AES_128_GCM (RFC 7714), RTCP muxed on the RTP port: the
  16-byte tag inside the ciphertext, the E flag and index in the last 4 bytes.
* gcm-256-auth: no signaling, AEAD_AES_256_GCM with SRTCP authenticated only (E=0): the compound
  in the clear, then the tag, then the index.
* cm-80-auth: no signaling, AES_CM_128_HMAC_SHA1_80 authenticated only (E=0).
* cm-32: no signaling, libsrtp's SRTP_AES128_CM_HMAC_SHA1_32 profile (RFC 5764: SRTCP keeps the
  80-bit tag): 4 + 10.
* plain: RTCP without protection, for contrast (never to be read as SRTCP).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pylibsrtp
from pylibsrtp._binding import ffi, lib

HERE = Path(__file__).resolve().parent
IP = "127.0.0.1"
SIP_CALLER, SIP_CALLEE = 45060, 5060
TICKS = 60
"""20 ms RTP ticks per flow (1.2 s); RTCP every RTCP_EVERY ticks."""
RTCP_EVERY = 12
SEC_SERV_AUTH = 2
"""libsrtp's sec_serv_auth: authenticate SRTCP without encrypting it (the E flag stays 0)."""


@dataclass
class Flow:
    name: str
    profile: int | None
    rtp_port: int
    rtcp_port: int
    peer_rtp: int
    peer_rtcp: int
    ssrc: int
    peer_ssrc: int
    encrypt_rtcp: bool = True
    rtcp_tag: int | None = None
    """Override of libsrtp's SRTCP tag length (bytes)."""
    sdes_suite: str | None = None
    sent: list[dict[str, object]] = field(default_factory=list)


def _policy(flow: Flow, key: bytes, ssrc_type: int) -> pylibsrtp.Policy:
    assert flow.profile is not None
    assert ffi.sizeof("srtp_crypto_policy_t") == 24
    policy = pylibsrtp.Policy(key=key, ssrc_type=ssrc_type, srtp_profile=flow.profile)
    # pylibsrtp does not wrap these knobs, and its cffi binding keeps srtp_crypto_policy_t opaque:
    # libsrtp 2's struct is six ints (cipher type, key length, auth type, auth key length, auth
    # tag length, security services).
    rtcp = ffi.cast("int *", ffi.addressof(policy._policy, "rtcp"))
    if not flow.encrypt_rtcp:
        rtcp[5] = SEC_SERV_AUTH
    if flow.rtcp_tag is not None:
        rtcp[4] = flow.rtcp_tag
    return policy


def _key(profile: int) -> bytes:
    n = lib.srtp_profile_get_master_key_length(profile) + lib.srtp_profile_get_master_salt_length(profile)
    return os.urandom(n)


def sr_sdes(ssrc: int, peer: int, packets: int, cname: bytes) -> tuple[bytes, list[int]]:
    ntp = int((time.time() + 2208988800) * 2**32)
    sr = struct.pack(
        ">BBHIIIIII", 0x81, 200, 12, ssrc, ntp >> 32, ntp & 0xFFFFFFFF, packets * 160, packets, packets * 160
    )
    block = struct.pack(">IIIIII", peer, 0, 1000 + packets, 3, 0, 0)
    return sr + block + _sdes(ssrc, cname), [200, 202]


def rr_sdes(ssrc: int, peer: int, packets: int, cname: bytes) -> tuple[bytes, list[int]]:
    rr = struct.pack(">BBHI", 0x81, 201, 7, ssrc) + struct.pack(">IIIIII", peer, 0, 1000 + packets, 5, 0, 0)
    return rr + _sdes(ssrc, cname), [201, 202]


def rr_bye(ssrc: int) -> tuple[bytes, list[int]]:
    return struct.pack(">BBHI", 0x80, 201, 1, ssrc) + struct.pack(">BBHI", 0x81, 203, 1, ssrc), [201, 203]


def _sdes(ssrc: int, cname: bytes) -> bytes:
    item = bytes([1, len(cname)]) + cname + b"\0"
    item += b"\0" * (-len(item) % 4)
    return struct.pack(">BBHI", 0x81, 202, len(item) // 4 + 1, ssrc) + item


def sdp(port: int, suite: str, key: bytes) -> str:
    import base64

    return (
        f"v=0\r\no=- 1 1 IN IP4 {IP}\r\ns=-\r\nc=IN IP4 {IP}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        f"a=crypto:1 {suite} inline:{base64.b64encode(key).decode()}\r\n"
    )


def sip(first: str, body: str, via_port: int, cseq: str) -> bytes:
    head = (
        f"{first}\r\nVia: SIP/2.0/UDP {IP}:{via_port};branch=z9hG4bK-srtcp\r\nFrom: <sip:a@{IP}>;tag=1\r\n"
        f"To: <sip:b@{IP}>\r\nCall-ID: srtcp@{IP}\r\nCSeq: {cseq}\r\nContent-Type: application/sdp\r\n"
        f"Content-Length: {len(body.encode())}\r\n\r\n"
    )
    return (head + body).encode()


FLOWS = [
    Flow(
        "sdes-80",
        pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
        40000,
        40001,
        40010,
        40011,
        0x5D35A001,
        0x5D35B001,
        sdes_suite="AES_CM_128_HMAC_SHA1_80",
    ),
    Flow(
        "sdes-32-asterisk",
        pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
        40020,
        40021,
        40030,
        40031,
        0x5D35A002,
        0x5D35B002,
        rtcp_tag=4,
        sdes_suite="AES_CM_128_HMAC_SHA1_32",
    ),
    Flow(
        "gcm-128-mux",
        pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
        40040,
        40040,
        40050,
        40050,
        0x5D35A003,
        0x5D35B003,
    ),
    Flow(
        "gcm-256-auth",
        pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
        40060,
        40061,
        40070,
        40071,
        0x5D35A004,
        0x5D35B004,
        encrypt_rtcp=False,
    ),
    Flow(
        "cm-80-auth",
        pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
        40080,
        40081,
        40090,
        40091,
        0x5D35A005,
        0x5D35B005,
        encrypt_rtcp=False,
    ),
    Flow(
        "cm-32",
        pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
        40100,
        40101,
        40110,
        40111,
        0x5D35A006,
        0x5D35B006,
    ),
    Flow("plain", None, 40120, 40121, 40130, 40131, 0x5D35A007, 0x5D35B007),
]


def run() -> dict[str, object]:
    socks: dict[int, socket.socket] = {}

    def sock(port: int) -> socket.socket:
        if port not in socks:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((IP, port))
            socks[port] = s
        return socks[port]

    sessions: dict[tuple[str, bool], pylibsrtp.Session] = {}
    keys: dict[tuple[str, bool], bytes] = {}
    for f in FLOWS:
        if f.profile is not None:
            for caller in (True, False):
                keys[(f.name, caller)] = _key(f.profile)
                policy = _policy(f, keys[(f.name, caller)], pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
                sessions[(f.name, caller)] = pylibsrtp.Session(policy=policy)
    # Signaling first, as a call does: the offer and answer of the SDES flows.
    for f in FLOWS:
        if f.sdes_suite is not None:
            offer = sdp(f.rtp_port, f.sdes_suite, keys[(f.name, True)])
            answer = sdp(f.peer_rtp, f.sdes_suite, keys[(f.name, False)])
            sock(SIP_CALLER).sendto(
                sip(f"INVITE sip:b@{IP} SIP/2.0", offer, SIP_CALLER, "1 INVITE"), (IP, SIP_CALLEE)
            )
            time.sleep(0.005)
            sock(SIP_CALLEE).sendto(sip("SIP/2.0 200 OK", answer, SIP_CALLER, "1 INVITE"), (IP, SIP_CALLER))
            time.sleep(0.005)
    counts: dict[tuple[str, bool], int] = {}
    for tick in range(TICKS):
        for f in FLOWS:
            seq = 1000 + tick
            rtp = struct.pack(">BBHII", 0x80, 0, seq, tick * 160, f.ssrc) + bytes([0xFF]) * 160
            protect = sessions.get((f.name, True))
            sock(f.rtp_port).sendto(protect.protect(rtp) if protect else rtp, (IP, f.peer_rtp))
            if tick % RTCP_EVERY == RTCP_EVERY - 1 or tick == TICKS - 1:
                for caller in (True, False):
                    ssrc, peer = (f.ssrc, f.peer_ssrc) if caller else (f.peer_ssrc, f.ssrc)
                    cname = f"{f.name}-{'caller' if caller else 'callee'}".encode()
                    if tick == TICKS - 1:
                        plain, types = rr_bye(ssrc)
                    elif caller:
                        plain, types = sr_sdes(ssrc, peer, tick + 1, cname)
                    else:
                        plain, types = rr_sdes(ssrc, peer, tick + 1, cname)
                    session = sessions.get((f.name, caller))
                    data = plain
                    entry: dict[str, object] = {"flow": f.name, "types": types, "plain_len": len(plain)}
                    if session is not None:
                        counts[(f.name, caller)] = counts.get((f.name, caller), 0) + 1
                        data = session.protect_rtcp(plain)
                        entry |= {
                            "e": f.encrypt_rtcp,
                            "index": counts[(f.name, caller)],
                            "trailer": len(data) - len(plain),
                        }
                    src, dst = (f.rtcp_port, f.peer_rtcp) if caller else (f.peer_rtcp, f.rtcp_port)
                    entry |= {"src": f"{IP}:{src}", "dst": f"{IP}:{dst}", "len": len(data)}
                    f.sent.append(entry)
                    sock(src).sendto(data, (IP, dst))
                    time.sleep(0.001)  # bursts on a busy machine make the kernel drop captured packets
        time.sleep(0.02)
    for s in socks.values():
        s.close()
    return {
        "flows": [
            {
                "name": f.name,
                "sdes_suite": f.sdes_suite,
                "rtcp_mux": f.rtcp_port == f.rtp_port,
                "encrypt_rtcp": f.encrypt_rtcp and f.profile is not None,
                "rtp": f"{IP}:{f.rtp_port}",
                "ssrc": f.ssrc,
                "peer_ssrc": f.peer_ssrc,
            }
            for f in FLOWS
        ],
        "rtcp": [e for f in FLOWS for e in f.sent],
    }


def main() -> None:
    path = HERE / "srtcp-libsrtp.pcap"
    bpf = f"udp and host {IP} and (portrange 40000-40131 or port {SIP_CALLEE} or port {SIP_CALLER})"
    proc = subprocess.Popen(
        ["tcpdump", "-i", "lo", "-B", "8192", "--immediate-mode", "-U", "-w", str(path), bpf],
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    proc.stderr.readline()  # "listening on lo": the capture has begun
    try:
        truth = run()
    finally:
        time.sleep(0.5)
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    print(err.decode().strip())  # tcpdump's counts: "N packets captured ... 0 packets dropped by kernel"
    sent = 4 + TICKS * len(FLOWS) + len(truth["rtcp"])  # type: ignore[arg-type]
    assert f"{sent} packets captured" in err.decode(), f"{sent} packets sent"
    truth["libsrtp"] = pylibsrtp.__version__
    (HERE / "srtcp-libsrtp.truth.json").write_text(json.dumps(truth, indent=1) + "\n")


if __name__ == "__main__":
    main()
