"""Handshake message bodies TLS and DTLS share: ClientHello/ServerHello with their extensions, and
Certificate (TLS 1.2 and 1.3 layouts), parsed by hand as a passive observer must (the `ssl` module
and `cryptography` are endpoints). The DTLS decoder uses these with prefix "dtls" (and a cookie in
its ClientHello); field names are Wireshark's under either prefix.

Each parser returns detail-tree fields and fills `facts` (what sessions, reports and decryption
need: randoms, suites, SNI, ALPN, versions); a body too short raises IndexError/ValueError, which
the caller turns into a finding.
"""

from __future__ import annotations

from collections.abc import Callable

from protoscope.decoders.api import Field, Finding
from protoscope.decoders.dtls import names as nm

from .suites import NAMES as SUITE_NAMES

Span = Callable[[int, int], tuple[int, int]]
"""Maps offsets in a handshake message to offsets in the PDU's data ((0, 0) when reassembled)."""

HELLO_RETRY_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
"""RFC 8446 section 4.1.3: a ServerHello with this random is a HelloRetryRequest."""
EXT_SERVER_NAME = 0
EXT_USE_SRTP = 14
EXT_ALPN = 16
EXT_ENCRYPT_THEN_MAC = 22
EXT_EXTENDED_MASTER_SECRET = 23
EXT_SUPPORTED_VERSIONS = 43


def suite_name(suite: int) -> str:
    return SUITE_NAMES.get(suite) or nm.CIPHER_SUITES.get(suite) or f"0x{suite:04x}"


def _u16(b: bytes, at: int) -> int:
    if at + 2 > len(b):
        raise IndexError(f"2 bytes at {at} past the end ({len(b)})")
    return int.from_bytes(b[at : at + 2], "big")


def hello(
    mtype: int,
    body: bytes,
    sp: Span,
    facts: dict[str, object],
    prefix: str = "tls",
    dtls: bool = False,
) -> list[Field]:
    """A ClientHello (mtype 1) or ServerHello (2): version, random, session id, (DTLS cookie),
    suites, extensions. Facts go to facts["client_hello"] or facts["server_hello"]."""
    p = prefix
    version = _u16(body, 0)
    pos = 34
    if len(body) < 35:
        raise IndexError("hello shorter than its fixed part")
    sid_len = body[pos]
    session_id = body[pos + 1 : pos + 1 + sid_len]
    pos += 1 + sid_len
    random = body[2:34]
    out = [
        Field(f"{p}.handshake.version", version, sp(0, 2)),
        Field(f"{p}.handshake.random", random.hex(), sp(2, 34)),
        Field(f"{p}.handshake.session_id", session_id.hex(), sp(34, pos)),
    ]
    detail: dict[str, object] = {"version": version, "random": bytes(random)}
    if mtype == 1:
        if dtls:
            cookie_len = body[pos]
            cookie = body[pos + 1 : pos + 1 + cookie_len]
            out.append(Field(f"{p}.handshake.cookie", cookie.hex(), sp(pos, pos + 1 + cookie_len)))
            pos += 1 + cookie_len
        n = _u16(body, pos)
        suites = [_u16(body, pos + 2 + i) for i in range(0, n - 1, 2)]
        if dtls:
            shown = [suite_name(c) for c in suites]
            out.append(Field(f"{p}.handshake.ciphersuites", shown, sp(pos, pos + 2 + n)))
        else:
            each = tuple(
                Field(f"{p}.handshake.ciphersuite", c, sp(pos + 2 + 2 * i, pos + 4 + 2 * i))
                for i, c in enumerate(suites)
            )
            out.append(
                Field(f"{p}.handshake.ciphersuites", f"{len(suites)} suites", sp(pos, pos + 2 + n), each)
            )
        detail["cipher_suites"] = suites
        pos += 2 + n
        comp = body[pos]
        pos += 1 + comp
    else:
        suite = _u16(body, pos)
        shown_suite: object = suite_name(suite) if dtls else suite
        out.append(Field(f"{p}.handshake.ciphersuite", shown_suite, sp(pos, pos + 2)))
        detail["cipher_suite"] = suite
        if bytes(random) == HELLO_RETRY_RANDOM:
            detail["hello_retry_request"] = True
        pos += 3
    out += extensions(body, pos, sp, detail, p, mtype)
    facts["client_hello" if mtype == 1 else "server_hello"] = detail
    return out


def extensions(
    body: bytes, pos: int, sp: Span, detail: dict[str, object], prefix: str = "tls", mtype: int = 8
) -> list[Field]:
    """An extensions block (2-byte length, then type-length-value entries) at `pos`: a hello's
    tail, or all of a TLS 1.3 EncryptedExtensions (mtype 8). Names go to detail["extensions"]."""
    out: list[Field] = []
    exts: list[str] = []
    if pos + 2 <= len(body):
        total = _u16(body, pos)
        pos += 2
        stop = min(len(body), pos + total)
        while pos + 4 <= stop:
            etype, elen = _u16(body, pos), _u16(body, pos + 2)
            out.append(
                _extension(prefix, mtype, etype, body[pos + 4 : pos + 4 + elen], pos, sp, detail, exts)
            )
            pos += 4 + elen
    detail["extensions"] = exts
    return out


def _extension(
    p: str,
    mtype: int,
    etype: int,
    value: bytes,
    pos: int,
    sp: Span,
    detail: dict[str, object],
    exts: list[str],
) -> Field:
    """One extension's field, with the children Wireshark shows for the ones sessions need."""
    ename = nm.EXTENSIONS.get(etype, f"unknown {etype}")
    exts.append(ename)
    elen = len(value)
    at = pos + 4
    children = [
        Field(f"{p}.handshake.extension.type", etype, sp(pos, pos + 2)),
        Field(f"{p}.handshake.extension.len", elen, sp(pos + 2, pos + 4)),
    ]
    shown: object = value.hex()
    if etype == EXT_USE_SRTP and len(value) >= 2:  # RFC 5764 section 4.1.1
        n = int.from_bytes(value[:2], "big")
        ids = [int.from_bytes(value[2 + i : 4 + i], "big") for i in range(0, n - 1, 2)]
        profiles = [nm.SRTP_PROFILES.get(i, hex(i)) for i in ids]
        detail["srtp_profiles"] = profiles
        if len(value) > 2 + n:  # srtp_mki: its length tells where SRTCP's tag begins
            detail["srtp_mki"] = value[3 + n : 3 + n + value[2 + n]].hex()
        shown = profiles
    elif etype == EXT_SERVER_NAME and len(value) > 5:
        name = value[5 : 5 + int.from_bytes(value[3:5], "big")].decode("ascii", "replace")
        detail["sni"] = shown = name
        children.append(Field(f"{p}.handshake.extensions_server_name", name, sp(at + 5, at + 5 + len(name))))
    elif etype == EXT_ALPN and len(value) > 2:
        alpn: list[str] = []
        i = 2
        while i < len(value):
            proto = value[i + 1 : i + 1 + value[i]].decode("ascii", "replace")
            children.append(
                Field(f"{p}.handshake.extensions_alpn_str", proto, sp(at + i + 1, at + i + 1 + value[i]))
            )
            alpn.append(proto)
            i += 1 + value[i]
        detail["alpn"] = shown = alpn
    elif etype == EXT_SUPPORTED_VERSIONS:
        if mtype == 1 and value:
            versions = [
                int.from_bytes(value[1 + i : 3 + i], "big") for i in range(0, min(value[0], elen - 1) - 1, 2)
            ]
            offsets = range(at + 1, at + 1 + 2 * len(versions), 2)
        else:
            versions = [int.from_bytes(value[:2], "big")] if elen >= 2 else []
            offsets = range(at, at + 2 * len(versions), 2)
            if versions:
                detail["selected_version"] = versions[0]
        detail["supported_versions"] = versions
        children += [
            Field(f"{p}.handshake.extensions.supported_version", v, sp(o, o + 2))
            for v, o in zip(versions, offsets, strict=True)
        ]
        shown = [nm.VERSIONS.get(v, TLS_VERSIONS.get(v, hex(v))) for v in versions]
    elif etype == EXT_EXTENDED_MASTER_SECRET:
        detail["extended_master_secret"] = True
    elif etype == EXT_ENCRYPT_THEN_MAC:
        detail["encrypt_then_mac"] = True
    return Field(f"{p}.handshake.extension", f"{ename}: {shown}", sp(pos, pos + 4 + elen), tuple(children))


TLS_VERSIONS = {
    0x0300: "SSL 3.0",
    0x0301: "TLS 1.0",
    0x0302: "TLS 1.1",
    0x0303: "TLS 1.2",
    0x0304: "TLS 1.3",
}


def certificates(
    body: bytes,
    sp: Span,
    facts: dict[str, object],
    findings: list[Finding],
    prefix: str = "tls",
    tls13: bool = False,
) -> list[Field]:
    """A Certificate message: each certificate's subject, with its facts (subject, issuer, validity,
    fingerprints by every hash SDP a=fingerprint may name) as x509.* children. TLS 1.3 adds a
    request context before the list and extensions after each certificate (RFC 8446 4.4.2)."""
    import hashlib  # with cryptography, only when a capture carries certificates (start-up time)

    from cryptography import x509

    pos = 0
    if tls13:
        pos = 1 + body[0]
    total = int.from_bytes(body[pos : pos + 3], "big")
    pos += 3
    stop = min(len(body), pos + total)
    out: list[Field] = []
    certs: list[dict[str, object]] = []
    while pos + 3 <= stop:
        n = int.from_bytes(body[pos : pos + 3], "big")
        der = body[pos + 3 : pos + 3 + n]
        entry: dict[str, object] = {
            name: ":".join(f"{b:02X}" for b in hashlib.new(name.replace("-", ""), der).digest())
            for name in ("sha-256", "sha-1", "sha-384", "sha-512")
        }
        entry["sha256"] = entry["sha-256"]
        try:
            cert = x509.load_der_x509_certificate(der)
            entry.update(
                subject=cert.subject.rfc4514_string(),
                issuer=cert.issuer.rfc4514_string(),
                not_before=cert.not_valid_before_utc.isoformat(),
                not_after=cert.not_valid_after_utc.isoformat(),
            )
        except BaseException as exc:
            # cryptography meets hostile DER with more exception types than it documents
            # (ValueError, x509.InvalidVersion, UnsupportedAlgorithm, ...), and a panic in its
            # Rust code is a BaseException (pyo3's PanicException): each means this certificate
            # is unreadable, not the rest of the handshake. Interrupts go on.
            if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
                raise
            what = f"certificate {len(certs) + 1} not parsed: {type(exc).__name__}: {exc}"
            where = sp(pos, pos + 3 + n)
            findings.append(Finding("warn", f"{prefix}.bad_certificate", what, where if where[1] else None))
        certs.append(entry)
        out.append(
            Field(
                f"{prefix}.handshake.certificate",
                entry.get("subject", "?"),
                sp(pos, pos + 3 + n),
                tuple(Field(f"x509.{k}", v, sp(pos + 3, pos + 3 + n)) for k, v in entry.items()),
            )
        )
        pos += 3 + n
        if tls13 and pos + 2 <= stop:
            pos += 2 + int.from_bytes(body[pos : pos + 2], "big")
    facts["certificates"] = certs
    return out
