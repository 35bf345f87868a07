"""SRTP unprotect, us/packet: pylibsrtp (libsrtp 2) against protoscope's own code over
`cryptography`, per packet and in bulk (`decrypt_many`). The figures in decoders/rtp/srtp.py come
from it:

    python -m tests.decoders.rtp.samples.bench_srtp [PACKETS]
"""

from __future__ import annotations

import random
import struct
import sys
import time

import pylibsrtp

from protoscope.decoders.api import Endpoint, FlowContext
from protoscope.decoders.rtp import RtpDecoder
from protoscope.decoders.rtp.srtp import PROFILES, MasterKey, SrtpCrypto, _one, decrypt_many
from protoscope.decoders.rtp.srtp_keys import SrtpKeyOption

POLICY = {
    "SRTP_AES128_CM_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "SRTP_AEAD_AES_128_GCM": pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
}
BATCH = 8192


def packets(name: str, count: int) -> tuple[MasterKey, list[bytes]]:
    rng = random.Random(7)
    p = PROFILES[name]
    master = rng.randbytes(p.master_len)
    policy = pylibsrtp.Policy(master, pylibsrtp.Policy.SSRC_ANY_OUTBOUND, 0, POLICY[name])
    tx = pylibsrtp.Session(policy)
    out = []
    for i in range(count):
        header = struct.pack(">BBHII", 0x80, 96, i & 0xFFFF, i * 3000, 0x1234ABCD)
        out.append(tx.protect(header + rng.randbytes(rng.randint(160, 1200) - 12 - p.rtp_tag)))
    return MasterKey(p, master[: p.key_len], master[p.key_len :]), out


def main(count: int) -> None:
    for name in POLICY:
        key, data = packets(name, count)
        rx = pylibsrtp.Session(
            pylibsrtp.Policy(key.key + key.salt, pylibsrtp.Policy.SSRC_ANY_INBOUND, 0, POLICY[name])
        )
        t = time.perf_counter()
        for pkt in data:
            rx.unprotect(pkt)
        lib = (time.perf_counter() - t) / count * 1e6
        crypto = SrtpCrypto(key)
        streams: dict[int, object] = {}
        t = time.perf_counter()
        for pkt in data:
            assert _one(crypto, pkt, streams) is not None  # type: ignore[arg-type]
        own = (time.perf_counter() - t) / count * 1e6
        streams = {}
        t = time.perf_counter()
        for a in range(0, count, BATCH):
            assert None not in decrypt_many(crypto, data[a : a + BATCH], streams)  # type: ignore[arg-type]
        bulk = (time.perf_counter() - t) / count * 1e6
        dec = RtpDecoder()
        dec.configure({"srtp.keys": [SrtpKeyOption(key, ssrc=0x1234ABCD)]})
        state = dec.new_state()
        ctx = FlowContext(1, "udp", Endpoint("127.0.0.1", 4000), Endpoint("127.0.0.1", 4002), True, 1, 0.0)
        t = time.perf_counter()
        for pkt in data:
            dec.decode(pkt, state, ctx)
        full = (time.perf_counter() - t) / count * 1e6
        print(
            f"{name}: pylibsrtp {lib:.2f} us/packet ({1e6 / lib:,.0f}/s); own per packet {own:.2f} "
            f"({1e6 / own:,.0f}/s); own decrypt_many {bulk:.2f} ({1e6 / bulk:,.0f}/s); "
            f"RtpDecoder.decode (Pdu, record, findings) {full:.2f} ({1e6 / full:,.0f}/s)"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
