"""The TLS decoder on captures/samples/tls-keys.pcap (OpenSSL s_server/s_client, one connection per
suite: TLS 1.2 AES-GCM, ChaCha20-Poly1305, AES-CBC MAC-then-encrypt and encrypt_then_mac; TLS 1.3
with a KeyUpdate each way, with ChaCha20, with AES-256-GCM-SHA384 and ALPN h2): every plaintext
equals what each side sent, handshake facts equal the truth, and a wrong, missing or garbage key
log gives findings and nothing decoded from ciphertext."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from protoscope.decoders.tls.decoder import TlsRecord

from .common import TLS, TLS_KEYS, decode, flipped, keylog, plaintext, sent, truth

CONNECTIONS = truth("tls-keys")["connections"]


@pytest.fixture(scope="module")
def with_keys() -> list:  # type: ignore[type-arg]
    return decode(TLS, keylog(path=TLS_KEYS))


@pytest.mark.parametrize("conn", CONNECTIONS, ids=lambda c: c["cipher"])
def test_every_plaintext_equals_what_was_sent(with_keys: list, conn: dict) -> None:  # type: ignore[type-arg]
    assert plaintext(with_keys, conn["port"]) == sent(conn)


def test_no_findings_with_the_right_keys(with_keys: list) -> None:  # type: ignore[type-arg]
    assert [f for s in with_keys for f in s.pdu.findings] == []


@pytest.mark.parametrize("conn", CONNECTIONS, ids=lambda c: c["cipher"])
def test_the_handshake_facts(with_keys: list, conn: dict) -> None:  # type: ignore[type-arg]
    records = [
        s.pdu.record
        for s in with_keys
        if conn["port"] in (s.ctx.src.port, s.ctx.dst.port) and isinstance(s.pdu.record, TlsRecord)
    ]
    facts: dict = {}
    for r in records:
        facts.update(r.facts)
    hello, server = facts["client_hello"], facts["server_hello"]
    assert hello["sni"] == "localhost"
    assert conn["suite"] in hello["cipher_suites"]
    assert server["cipher_suite"] == conn["suite"]
    tls13 = conn["version"] == "TLS 1.3"
    assert server.get("selected_version") == (0x0304 if tls13 else None)
    if "alpn" in conn:
        assert hello["alpn"] == [conn["alpn"]]
        assert facts["encrypted_extensions"]["alpn"] == [conn["alpn"]]  # chosen, in 1.3's EE
    if not tls13:
        assert server.get("encrypt_then_mac", False) == conn["encrypt_then_mac"]
    assert [c["subject"] for c in facts["certificates"]] == ["CN=localhost"]
    alerts = [r.facts["alert"] for r in records if "alert" in r.facts]
    assert alerts == [("warning", "close_notify")] * 2


def test_key_updates_are_followed(with_keys: list) -> None:  # type: ignore[type-arg]
    (conn,) = [c for c in CONNECTIONS if c.get("key_update")]
    updates = [
        s
        for s in with_keys
        if conn["port"] in (s.ctx.src.port, s.ctx.dst.port) and 24 in s.pdu.record.handshake_types
    ]
    assert len(updates) == 2  # the client's (update_requested) and the server's answer
    assert {s.ctx.src.port == conn["port"] for s in updates} == {True, False}
    assert sent(conn)["client"].endswith(b"after the key update, client\n")


def test_alpn_h2_hands_the_plaintext_to_http2() -> None:
    (conn,) = [c for c in CONNECTIONS if c.get("alpn") == "h2"]
    from protoscope.inspector.session import Session

    from .common import registry

    session = Session.open(TLS, registry(keylog(path=TLS_KEYS)))
    try:
        frames = [
            [p.summary for p in pd.pdus if p.protocol == "http2"]
            for pd in session.decode()
            if pd.context is not None and conn["port"] in (pd.context.src.port, pd.context.dst.port)
        ]
    finally:
        session.close()
    assert ["Magic", "SETTINGS[0]"] in frames
    protos = {
        i.protocol
        for s in decode(TLS, keylog(path=TLS_KEYS))
        if conn["port"] in (s.ctx.src.port, s.ctx.dst.port)
        for i in s.pdu.inner
    }
    assert protos == {"http2"}
    others = {i.protocol for s in decode(TLS, keylog(path=TLS_KEYS)) for i in s.pdu.inner} - {"http2"}
    assert others == {None}  # no ALPN h2: the registry's heuristics decide


def codes(seen: list) -> Counter[str]:  # type: ignore[type-arg]
    """Findings by code and message, without the record number or client random they name."""
    return Counter(
        f"{f.code}: {re.sub(r' [(].*[)]$| [0-9a-f]{64}$', '', f.message)}"
        for s in seen
        for f in s.pdu.findings
    )


def test_without_a_key_log_records_are_shown_and_nothing_said() -> None:
    seen = decode(TLS, None)
    assert all(not s.pdu.inner and not s.pdu.findings for s in seen)
    for conn in CONNECTIONS:
        mine = [s for s in seen if conn["port"] in (s.ctx.src.port, s.ctx.dst.port)]
        app = [s for s in mine if s.pdu.summary == "Application Data"]
        if conn["version"] == "TLS 1.2":  # each line one record
            assert len(app) == len(conn["sent"]["client"]) + len(conn["sent"]["server"])
            assert [s.pdu.summary for s in mine].count("Encrypted Handshake Message") == 2
            assert [s.pdu.summary for s in mine].count("Encrypted Alert") == 2
        else:  # everything after the ServerHello but the compatibility ChangeCipherSpecs is opaque
            assert len(app) == len(mine) - 4
        assert mine[0].pdu.summary == "Client Hello (SNI=localhost)"


def test_a_wrong_key_is_a_finding_and_nothing_is_decoded() -> None:
    seen = decode(TLS, keylog(flipped(TLS_KEYS)))
    assert all(not s.pdu.inner for s in seen)
    found = codes(seen)
    assert "tls.decrypt_failed: bad tag" in found
    assert set(found) <= {f"tls.decrypt_failed: bad {what}" for what in ("tag", "MAC", "padding")}
    # nothing parsed from ciphertext: no record opened, no alert, and of TLS 1.3 only the hellos
    assert not any(s.pdu.record.decrypted or "alert" in s.pdu.record.facts for s in seen)
    tls13 = {c["port"] for c in CONNECTIONS if c["version"] == "TLS 1.3"}
    shown = {
        h for s in seen if {s.ctx.src.port, s.ctx.dst.port} & tls13 for h in s.pdu.record.handshake_types
    }
    assert shown == {1, 2}


def test_a_missing_key_is_said_once_per_direction() -> None:
    other = f"CLIENT_RANDOM {'ab' * 32} {'cd' * 48}\n"
    seen = decode(TLS, keylog(other))
    assert all(not s.pdu.inner for s in seen)
    found = codes(seen)
    messages = {f.message for s in seen for f in s.pdu.findings}
    assert found["tls.decrypt_failed: no key for client random"] == 2 * 5  # five TLS 1.2 connections
    assert found["tls.decrypt_failed: no CLIENT_HANDSHAKE_TRAFFIC_SECRET for client random"] == 3
    assert found["tls.decrypt_failed: no SERVER_HANDSHAKE_TRAFFIC_SECRET for client random"] == 3
    assert sum(found.values()) == 16
    randoms = {
        s.pdu.record.facts["client_hello"]["random"].hex()
        for s in seen
        if "client_hello" in s.pdu.record.facts
    }
    assert {m.split()[-1] for m in messages} == randoms


def test_a_key_log_of_garbage_is_said_and_decodes_nothing() -> None:
    garbage = keylog("this is not a key log\nCLIENT_RANDOM zz 11\n\x00\xff\n")
    assert not garbage and garbage.skipped == 3
    seen = decode(TLS, garbage)
    assert all(not s.pdu.inner for s in seen)
    assert sum(codes(seen).values()) == 16
