"""DTLS 1.3 (RFC 9147) on real bytes: captures/samples/dtls13-keys.pcap, made by wolfSSL 5.5.4
(captures/samples/make_dtls13.py): HelloRetryRequest with a cookie, unified headers with encrypted
16-bit record numbers, ACK records, a KeyUpdate (epoch 4), close_notify; AES-128-GCM, ChaCha20,
AES-256-GCM and AES-128-CCM. Every plaintext equals what the peers sent; the plaintext records
equal tshark's (tshark 4.0 shows unified-header records only as "Continuation Data", with no
field, so only the epoch-0 records can be compared); a wrong key or a cut datagram give findings
and nothing decoded."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from protoscope.decoders.api import Field
from protoscope.decoders.dtls.records import DtlsRecord
from protoscope.decoders.tls import crypto
from protoscope.decoders.tls.suites import SUITES
from tests.conftest import SAMPLES, tshark
from tests.decoders.dtls.test_decrypt import Flow
from tests.decoders.tls.common import Seen, decode, flipped, keylog, plaintext, sent, truth

PCAP = SAMPLES / "dtls13-keys.pcap"
KEYS = SAMPLES / "dtls13-keys.keys"
CONNECTIONS = truth("dtls13-keys")["connections"]


def seen_with_keys() -> list[Seen]:
    return decode(PCAP, keylog(path=KEYS), "dtls")


def on(seen: list[Seen], port: int) -> list[Seen]:
    return [s for s in seen if port in (s.ctx.src.port, s.ctx.dst.port)]


def flat(fields: tuple[Field, ...] | list[Field]) -> list[Field]:
    out: list[Field] = []
    for f in fields:
        out.append(f)
        out += flat(f.children)
    return out


def test_every_plaintext_equals_what_wolfssl_sent() -> None:
    seen = seen_with_keys()
    for conn in CONNECTIONS:
        assert plaintext(seen, conn["port"]) == sent(conn), conn["cipher"]
        alerts = [s.pdu.record.facts.get("alert") for s in on(seen, conn["port"])]
        assert alerts.count(("warning", "close_notify")) == 2
    codes = Counter(f.code for s in seen for f in s.pdu.findings)
    assert codes == {"dtls.record_number_quirk": 2}  # the ChaCha20 connection, once per side


def test_the_handshake_with_a_cookie_and_the_key_update() -> None:
    seen = seen_with_keys()
    for conn in CONNECTIONS:
        types = [t for s in on(seen, conn["port"]) for t in s.pdu.record.handshake_types]
        # ClientHello, HelloRetryRequest (a ServerHello), ClientHello with the cookie, ServerHello,
        # then encrypted: EncryptedExtensions, Certificate, CertificateVerify, Finished x2
        assert types[:9] == [1, 2, 1, 2, 8, 11, 15, 20, 20]
        # wolfSSL_update_keys sends update_requested: the server answers with its own KeyUpdate
        assert types[9:] == ([24, 24] if conn["key_update_before"] is not None else [])
    update = on(seen, CONNECTIONS[0]["port"])
    senders = [s.ctx.src.port for s in update if 24 in s.pdu.record.handshake_types]
    assert senders == [CONNECTIONS[0]["client_port"], CONNECTIONS[0]["port"]]
    k = next(i for i, s in enumerate(update) if 24 in s.pdu.record.handshake_types)
    client = CONNECTIONS[0]["client_port"]
    after = [s for s in update[k + 1 :] if s.ctx.src.port == client and s.pdu.inner]
    bits = [f.value for s in after for f in flat(s.pdu.fields) if f.name == "dtls.record.epoch_bits"]
    # RFC 9147 section 8: the new epoch only once the KeyUpdate is acknowledged, so the message
    # sent right after it is still epoch 3, the later ones epoch 4 (low bits 0)
    assert bits == [3, 0]


def test_acks_name_the_records_they_acknowledge() -> None:
    seen = seen_with_keys()
    acks = [
        f.value
        for s in on(seen, CONNECTIONS[0]["port"])
        for f in flat(s.pdu.fields)
        if f.name == "dtls.ack.record_number"
    ]
    assert acks[0] == "epoch 2, sequence 0"  # the server acknowledges the client's Finished
    assert len(acks) >= 2 and all(a.startswith("epoch ") for a in acks)


def test_the_plaintext_records_equal_tsharks() -> None:
    args = [f"-d udp.port=={c['port']},dtls" for c in CONNECTIONS]
    out = tshark(
        "-r",
        str(PCAP),
        "-o",
        f"tls.keylog_file:{KEYS}",
        *[a for arg in args for a in arg.split(" ", 1)],
        "-T",
        "fields",
        "-E",
        "separator=|",
        *("-e", "frame.number", "-e", "dtls.record.content_type", "-e", "dtls.record.epoch"),
        *("-e", "dtls.record.sequence_number", "-e", "dtls.handshake.type"),
    )
    theirs = {}
    for line in out.splitlines():
        frame, ctype, epoch, seq, htype = line.split("|")
        if ctype:
            theirs[int(frame)] = (ctype, epoch, seq, htype)
    ours = {}
    for s in seen_with_keys():
        fields = flat(s.pdu.fields)
        if any(f.name == "dtls.unified_header" for f in fields):
            continue

        def values(name: str, fields: list[Field] = fields) -> str:
            return ",".join(str(f.value) for f in fields if f.name == name)

        ours[s.frame] = tuple(
            values(n)
            for n in (
                "dtls.record.content_type",
                "dtls.record.epoch",
                "dtls.record.sequence_number",
                "dtls.handshake.type",
            )
        )
    assert len(theirs) == 4 * len(CONNECTIONS)
    assert ours == theirs


def test_a_wrong_key_decodes_nothing() -> None:
    seen = decode(PCAP, keylog(flipped(KEYS)), "dtls")
    assert all(not s.pdu.inner for s in seen)
    assert not any(t in (8, 11, 15, 20, 24) for s in seen for t in s.pdu.record.handshake_types)
    failed = [f for s in seen for f in s.pdu.findings if f.code == "dtls.decrypt_failed"]
    assert failed and all("bad tag" in f.message or "no key" in f.message for f in failed)


def datagrams(port: int) -> list[tuple[bool, bytes]]:
    from scapy.layers.inet import UDP
    from scapy.utils import rdpcap

    return [
        (p[UDP].dport == port, bytes(p[UDP].payload))
        for p in rdpcap(str(PCAP))
        if UDP in p and port in (p[UDP].sport, p[UDP].dport)
    ]


def test_a_datagram_cut_anywhere_gives_findings_not_plaintext() -> None:
    for conn in CONNECTIONS[:2]:  # AES-GCM and ChaCha20 (their record number masks differ)
        grams = datagrams(conn["port"])
        flow = Flow(keylog(path=KEYS))
        k = 0
        while not flow.feed(*grams[k]).inner:
            k += 1
        from_client, data = grams[k + 1]
        for cut in range(len(data)):
            trial = Flow(keylog(path=KEYS))
            for c, d in grams[: k + 1]:
                trial.feed(c, d)
            pdu = trial.feed(from_client, data[:cut])
            assert not pdu.inner
            assert isinstance(pdu.record, DtlsRecord)
        whole = Flow(keylog(path=KEYS))
        for c, d in grams[: k + 1]:
            whole.feed(c, d)
        assert whole.feed(from_client, data).inner


def test_the_chacha20_counter_quirk_is_only_a_byte_order() -> None:
    suite, key, sample = SUITES[0x1303], bytes(range(32)), bytes(range(100, 116))
    swapped = crypto.record_number_mask(suite, key, sample, swapped_counter=True)
    assert swapped == crypto.record_number_mask(suite, key, sample[3::-1] + sample[4:])
    assert swapped != crypto.record_number_mask(suite, key, sample)
    aes = SUITES[0x1301]
    assert crypto.record_number_mask(aes, key[:16], sample, True) == crypto.record_number_mask(
        aes, key[:16], sample
    )


GRAMS = {c["port"]: datagrams(c["port"]) for c in CONNECTIONS[:2]}


def flow_up_to(grams: list[tuple[bool, bytes]], k: int) -> Flow:
    flow = Flow(keylog(path=KEYS))
    for c, d in grams[:k]:
        flow.feed(c, d)
    return flow


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(sorted(GRAMS)),
    st.integers(0, 1 << 16),
    st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=3),
)
def test_a_changed_byte_in_a_real_datagram_opens_nothing_new(
    port: int, which: int, changes: list[tuple[int, int]]
) -> None:
    """Bytes changed anywhere in one of wolfSSL's protected datagrams (header bits, record
    number, length, ciphertext, tag): never an exception, and what is handed on is only what the
    unchanged datagram hands on (its other records, authenticated), never new plaintext."""
    grams = GRAMS[port]
    k = 4 + which % (len(grams) - 4)  # past ClientHello, HelloRetryRequest, ClientHello, ServerHello
    from_client, data = grams[k]
    changed = bytearray(data)
    for at, value in changes:
        changed[at % len(changed)] = value
    pdu = flow_up_to(grams, k).feed(from_client, bytes(changed))
    assert isinstance(pdu.record, DtlsRecord)
    unchanged = flow_up_to(grams, k).feed(from_client, data)
    assert all(i.data in [u.data for u in unchanged.inner] for i in pdu.inner)
