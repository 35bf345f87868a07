"""A TLS or DTLS connection made in memory by OpenSSL (pyOpenSSL), for tests that need real
records of suites the sample capture does not carry (CCM, CCM_8, DHE) and the exporter's value as
OpenSSL computes it. Nothing goes on a network: the two ends' records are passed by hand."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from OpenSSL import SSL


@cache
def certificate(kind: str) -> tuple[object, x509.Certificate]:
    key: object = (
        ec.generate_private_key(ec.SECP256R1()) if kind == "ec" else rsa.generate_private_key(65537, 2048)
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return key, cert


@dataclass
class Pair:
    """What one connection produced: records in the order sent, the key log, exporter values."""

    segments: list[tuple[bool, bytes]] = field(default_factory=list)
    """(sent by the client, bytes) in the order they left."""
    keylog: list[str] = field(default_factory=list)
    exported: dict[tuple[bytes, bytes | None], bytes] = field(default_factory=dict)
    client_random: bytes = b""


def connect(
    version: int,
    cipher: str,
    messages: list[tuple[bool, bytes]],
    key_kind: str = "rsa",
    alpn: bytes | None = None,
    exports: tuple[tuple[bytes, bytes | None], ...] = (),
) -> Pair:
    """A handshake at `version` (SSL.TLS1_2_VERSION / TLS1_3_VERSION) with `cipher` (an OpenSSL
    cipher list for 1.2, a ciphersuite name for 1.3), then `messages` ((from the client, data))."""
    pair = Pair()
    key, cert = certificate(key_kind)
    contexts = []
    for server in (False, True):
        ctx = SSL.Context(SSL.TLS_METHOD)
        ctx.set_min_proto_version(version)
        ctx.set_max_proto_version(version)
        if version == SSL.TLS1_3_VERSION:
            ctx.set_tls13_ciphersuites(cipher.encode())
            ctx.set_cipher_list(b"DEFAULT:@SECLEVEL=0")  # CCM_8's 64-bit tag is below level 1
        else:
            ctx.set_cipher_list(cipher.encode() + b":@SECLEVEL=0")
        if server:
            ctx.use_privatekey(key)  # type: ignore[arg-type]
            ctx.use_certificate(cert)  # type: ignore[arg-type]
            if alpn:
                ctx.set_alpn_select_callback(lambda _conn, offered: alpn if alpn in offered else b"")
        else:
            ctx.set_keylog_callback(lambda _conn, line: pair.keylog.append(line.decode()))
            if alpn:
                ctx.set_alpn_protos([alpn])
        contexts.append(ctx)
    client, server_conn = SSL.Connection(contexts[0]), SSL.Connection(contexts[1])
    client.set_connect_state()
    client.set_tlsext_host_name(b"localhost")
    server_conn.set_accept_state()
    ends = {True: client, False: server_conn}

    def pump() -> None:
        moved = True
        while moved:
            moved = False
            for from_client in (True, False):
                try:
                    data = ends[from_client].bio_read(65536)
                except SSL.WantReadError:
                    continue
                if data:
                    pair.segments.append((from_client, data))
                    ends[not from_client].bio_write(data)
                    moved = True

    for _ in range(10):
        for end in (client, server_conn):
            try:
                end.do_handshake()
            except SSL.WantReadError:
                pass
        pump()
    pump()
    for from_client, data in messages:
        ends[from_client].sendall(data)
        pump()
        try:
            ends[not from_client].recv(65536)
        except SSL.WantReadError:
            pass
        pump()
    for label, context in exports:
        pair.exported[(label, context)] = client.export_keying_material(label, 60, context)
    pair.client_random = client.client_random() or b""
    return pair
