"""DTLS decryption from key logs on real bytes: captures/samples/dtls-keys.pcap (OpenSSL s_server and
s_client -dtls1_2, AES-128-GCM and AES-256-CBC-SHA with encrypt_then_mac) and
captures/samples/webrtc-datachannels.pcap (aiortc: DTLS 1.2 carrying SCTP). Plaintexts equal what
was sent, the SRTP exporter equals aiortc's keying material, and a wrong, missing or garbage key
log, a replayed record or a cut datagram give findings, never plaintext from ciphertext.

DTLS 1.3 records are also built here per RFC 9147 (test_dtls13_built_per_rfc_9147), beside the
real ones wolfSSL made (captures/samples/dtls13-keys.pcap, test_dtls13_wolfssl.py)."""

from __future__ import annotations

import base64
import hashlib
from collections import Counter

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from protoscope.decoders.api import Endpoint, FlowContext
from protoscope.decoders.dtls import DtlsDecoder
from protoscope.decoders.dtls.records import DtlsRecord, Reassembly
from protoscope.decoders.tls import crypto
from protoscope.decoders.tls.suites import SUITES
from tests.conftest import SAMPLES
from tests.decoders.tls.common import DTLS, DTLS_KEYS, decode, flipped, keylog, sent, truth

WEBRTC = SAMPLES / "webrtc-datachannels.pcap"
WEBRTC_KEYS = SAMPLES / "webrtc-datachannels.keys"
CONNECTIONS = truth("dtls-keys")["connections"]


def plaintext(seen: list, port: int) -> dict[str, bytes]:  # type: ignore[type-arg]
    out = {"client": b"", "server": b""}
    for s in seen:
        if port in (s.ctx.src.port, s.ctx.dst.port):
            out["server" if s.ctx.src.port == port else "client"] += b"".join(i.data for i in s.pdu.inner)
    return out


def test_every_plaintext_equals_what_was_sent() -> None:
    seen = decode(DTLS, keylog(path=DTLS_KEYS), "dtls")
    assert [f for s in seen for f in s.pdu.findings if f.code != "dtls.retransmission"] == []
    for conn in CONNECTIONS:
        assert plaintext(seen, conn["port"]) == sent(conn)
    finished = [s for s in seen if 20 in s.pdu.record.handshake_types]
    assert len(finished) == 4  # each side's Finished, decrypted, in both connections
    alerts = [s.pdu.record.facts["alert"] for s in seen if "alert" in s.pdu.record.facts]
    assert alerts == [("warning", "close_notify")] * 4


def test_the_dtls_client_and_the_exporter_are_on_the_flow() -> None:
    seen = decode(DTLS, keylog(path=DTLS_KEYS), "dtls")
    hello = next(s for s in seen if 1 in s.pdu.record.handshake_types)
    assert hello.ctx.shared["dtls.client_is_flow_client"] is hello.ctx.from_client
    assert callable(hello.ctx.shared["dtls.exporter"])


def codes(seen: list) -> Counter[str]:  # type: ignore[type-arg]
    return Counter(f.code for s in seen for f in s.pdu.findings if f.code != "dtls.retransmission")


def test_a_wrong_key_is_a_finding_and_nothing_is_decoded() -> None:
    seen = decode(DTLS, keylog(flipped(DTLS_KEYS)), "dtls")
    assert all(not s.pdu.inner for s in seen)
    assert codes(seen) == {"dtls.decrypt_failed": 14}  # Finished, 3 data, alert: 7 records a connection
    assert not any(20 in s.pdu.record.handshake_types or "alert" in s.pdu.record.facts for s in seen)


def test_a_missing_or_garbage_key_log_is_said_once_per_direction() -> None:
    for keys in (keylog(f"CLIENT_RANDOM {'ab' * 32} {'cd' * 48}\n"), keylog("not a key log\n")):
        seen = decode(DTLS, keys, "dtls")
        assert all(not s.pdu.inner for s in seen)
        assert codes(seen) == {"dtls.decrypt_failed": 4}
        assert {
            f.message.split()[-1] for s in seen for f in s.pdu.findings if f.code == "dtls.decrypt_failed"
        } == {
            s.pdu.record.facts["client_hello"]["random"].hex()
            for s in seen
            if 1 in s.pdu.record.handshake_types
        }


def test_without_keys_nothing_is_said() -> None:
    seen = decode(DTLS, None, "dtls")
    assert codes(seen) == {} and all(not s.pdu.inner for s in seen)


def test_webrtc_sctp_plaintext_and_srtp_keying_material() -> None:
    want = truth("webrtc-datachannels")
    ports = {port: side for side, port in want["ports"].items()}
    seen = decode(WEBRTC, keylog(path=WEBRTC_KEYS), "dtls")
    got: dict[str, list[str]] = {"caller": [], "callee": []}
    for s in seen:
        for inner in s.pdu.inner:
            assert inner.protocol == "sctp"
            got[ports[s.ctx.src.port]].append(hashlib.sha256(inner.data).hexdigest())
    for side in got:  # the truth gives large packets by their SHA-256
        digests = [
            m.get("sha256") or hashlib.sha256(bytes.fromhex(m["hex"])).hexdigest()
            for m in want["sctp"]
            if m["side"] == side
        ]
        assert got[side] == digests
    (dtls,) = want["dtls"]
    exporter = seen[-1].ctx.shared["dtls.exporter"]
    material = base64.b64decode(dtls["keying_material"])
    assert callable(exporter)
    assert exporter(b"EXTRACTOR-dtls_srtp", None, len(material)) == material
    hello = next(s for s in seen if 1 in s.pdu.record.handshake_types)
    assert ports[hello.ctx.src.port] == dtls["dtls_client"]
    assert hello.ctx.shared["dtls.client_is_flow_client"] is hello.ctx.from_client


class Flow:
    """Datagrams fed to one DtlsDecoder as the session would, both directions of one flow."""

    def __init__(self, keys: object) -> None:
        self.decoder = DtlsDecoder()
        self.decoder.configure({"tls.keylog": keys})
        self.shared: dict[str, object] = {}
        self.states = {True: Reassembly(), False: Reassembly()}

    def feed(self, from_client: bool, data: bytes):  # type: ignore[no-untyped-def]
        a, b = Endpoint("10.0.0.1", 5000), Endpoint("10.0.0.2", 5001)
        ctx = FlowContext(
            1,
            "udp",
            a if from_client else b,
            b if from_client else a,
            from_client,
            1,
            0.0,
            shared=self.shared,
        )
        return self.decoder.decode(data, self.states[from_client], ctx).pdus[0]


def datagrams(port: int) -> list[tuple[bool, bytes]]:
    from scapy.layers.inet import UDP
    from scapy.utils import rdpcap

    return [
        (p[UDP].dport == port, bytes(p[UDP].payload))
        for p in rdpcap(str(DTLS))
        if UDP in p and port in (p[UDP].sport, p[UDP].dport)
    ]


def test_a_replayed_record_is_a_note_and_not_handed_on_again() -> None:
    flow = Flow(keylog(path=DTLS_KEYS))
    grams = datagrams(CONNECTIONS[0]["port"])
    pdus = [flow.feed(c, d) for c, d in grams]
    first = next(k for k, p in enumerate(pdus) if p.inner)
    again = flow.feed(*grams[first])
    assert [f.code for f in again.findings] == ["dtls.replay"] and not again.inner


def test_a_datagram_cut_anywhere_gives_findings_not_plaintext() -> None:
    for conn in CONNECTIONS:
        grams = datagrams(conn["port"])
        flow = Flow(keylog(path=DTLS_KEYS))
        k = 0
        while not flow.feed(*grams[k]).inner:
            k += 1
        from_client, data = grams[k + 1]
        for cut in range(len(data)):
            trial = Flow(keylog(path=DTLS_KEYS))
            for c, d in grams[: k + 1]:
                trial.feed(c, d)
            pdu = trial.feed(from_client, data[:cut])
            assert not pdu.inner
            assert isinstance(pdu.record, DtlsRecord)
            if cut:
                assert {f.code for f in pdu.findings} & {"dtls.truncated", "dtls.decrypt_failed"}
        assert Flow  # the whole datagram after them opens (checked by the plaintext test)


# -- DTLS 1.3 (RFC 9147), records built here -------------------------------------------------------

SUITE = SUITES[0x1301]
RANDOM_C, RANDOM_S = bytes(range(32)), bytes(range(32, 64))
SECRETS = {
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET": bytes([1]) * 32,
    "SERVER_HANDSHAKE_TRAFFIC_SECRET": bytes([2]) * 32,
    "CLIENT_TRAFFIC_SECRET_0": bytes([3]) * 32,
    "SERVER_TRAFFIC_SECRET_0": bytes([4]) * 32,
    "EXPORTER_SECRET": bytes([5]) * 32,
}


def handshake(mtype: int, mseq: int, body: bytes) -> bytes:
    n = len(body).to_bytes(3, "big")
    return bytes([mtype]) + n + mseq.to_bytes(2, "big") + bytes(3) + n + body


def plain_record(payload: bytes) -> bytes:
    return b"\x16\xfe\xfd" + bytes(8) + len(payload).to_bytes(2, "big") + payload


def hello(mtype: int) -> bytes:
    ext = (b"\x00\x2b\x00\x03\x02\xfe\xfc") if mtype == 1 else (b"\x00\x2b\x00\x02\xfe\xfc")
    if mtype == 1:
        body = b"\xfe\xfd" + RANDOM_C + b"\x00" + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    else:
        body = b"\xfe\xfd" + RANDOM_S + b"\x00" + b"\x13\x01\x00"
    return body + len(ext).to_bytes(2, "big") + ext


def sealed(secret: bytes, epoch: int, seq: int, content: bytes, ctype: int) -> bytes:
    """A unified-header record (001 C=0 S=1 L=1 EE) sealed as RFC 9147 sections 4 and 4.2.3 say:
    AEAD over the header with the plain sequence number, then the sequence number masked."""
    key, iv = crypto.traffic_key_iv(SUITE, secret, crypto.DTLS13_LABEL)
    sn = crypto.hkdf_expand_label("sha256", secret, b"sn", b"", 16, crypto.DTLS13_LABEL)
    inner = content + bytes([ctype]) + bytes(3)
    length = len(inner) + 16
    header = bytes([0x2C | (epoch & 3)]) + (seq & 0xFFFF).to_bytes(2, "big") + length.to_bytes(2, "big")
    nonce = (int.from_bytes(iv, "big") ^ seq).to_bytes(12, "big")
    ciphertext = AESGCM(key).encrypt(nonce, inner, header)
    mask = Cipher(algorithms.AES(sn), modes.ECB()).encryptor().update(ciphertext[:16])
    masked = bytes([header[1] ^ mask[0], header[2] ^ mask[1]])
    return header[:1] + masked + header[3:] + ciphertext


def test_dtls13_built_per_rfc_9147() -> None:
    lines = "".join(f"{label} {RANDOM_C.hex()} {secret.hex()}\n" for label, secret in SECRETS.items())
    flow = Flow(keylog(lines))
    flow.feed(True, plain_record(handshake(1, 0, hello(1))))
    flow.feed(False, plain_record(handshake(2, 0, hello(2))))
    shs, chs = SECRETS["SERVER_HANDSHAKE_TRAFFIC_SECRET"], SECRETS["CLIENT_HANDSHAKE_TRAFFIC_SECRET"]
    ee = flow.feed(False, sealed(shs, 2, 0, handshake(8, 1, b"\x00\x00"), 22))
    fin = flow.feed(False, sealed(shs, 2, 1, handshake(20, 2, bytes(32)), 22))
    assert ee.record.handshake_types == (8,) and fin.record.handshake_types == (20,) and not ee.findings
    cfin = flow.feed(True, sealed(chs, 2, 0, handshake(20, 1, bytes(32)), 22))
    assert cfin.record.handshake_types == (20,)
    cts, sts = SECRETS["CLIENT_TRAFFIC_SECRET_0"], SECRETS["SERVER_TRAFFIC_SECRET_0"]
    data = flow.feed(True, sealed(cts, 3, 0, b"client data", 23))
    assert [i.data for i in data.inner] == [b"client data"] and not data.findings
    data = flow.feed(False, sealed(sts, 3, 0xFFFF, b"server data", 23))
    assert [i.data for i in data.inner] == [b"server data"]
    data = flow.feed(False, sealed(sts, 3, 0x1_0001, b"past 16 bits", 23))  # rebuilt from the low 16 bits
    assert [i.data for i in data.inner] == [b"past 16 bits"] and not data.findings
    # KeyUpdate from the client, then epoch 4 with the next secret
    flow.feed(True, sealed(cts, 3, 1, handshake(24, 2, b"\x00"), 22))
    nxt = crypto.next_traffic_secret("sha256", cts, crypto.DTLS13_LABEL)
    data = flow.feed(True, sealed(nxt, 4, 0, b"after update", 23))
    assert [i.data for i in data.inner] == [b"after update"] and not data.findings
    again = flow.feed(True, sealed(nxt, 4, 0, b"after update", 23))
    assert [f.code for f in again.findings] == ["dtls.replay"] and not again.inner
    bad = bytearray(sealed(nxt, 4, 1, b"tampered", 23))
    bad[-1] ^= 1
    out = flow.feed(True, bytes(bad))
    assert [f.code for f in out.findings] == ["dtls.decrypt_failed"] and not out.inner
    exporter = flow.shared["dtls.exporter"]
    assert callable(exporter)
    assert exporter(b"EXTRACTOR-dtls_srtp", None, 60) == crypto.exporter13(
        "sha256", SECRETS["EXPORTER_SECRET"], b"EXTRACTOR-dtls_srtp", None, 60, crypto.DTLS13_LABEL
    )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.booleans())
def test_no_datagram_raises_once_keys_are_in_use(data: bytes, from_client: bool) -> None:
    """Whatever comes after a keyed DTLS 1.3 handshake (unified headers with any bits, records of
    any epoch): findings at most, never an exception, never plaintext that was not authenticated."""
    lines = "".join(f"{label} {RANDOM_C.hex()} {secret.hex()}\n" for label, secret in SECRETS.items())
    flow = Flow(keylog(lines))
    flow.feed(True, plain_record(handshake(1, 0, hello(1))))
    flow.feed(False, plain_record(handshake(2, 0, hello(2))))
    pdu = flow.feed(from_client, data)
    assert not pdu.inner
