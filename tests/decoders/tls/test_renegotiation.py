"""TLS 1.2 renegotiation (RFC 5246 sections 7.1 and 7.4.1.2) on real bytes: OpenSSL's s_client `R`
(tests/decoders/tls/samples/reneg.pcap, made by make_reneg.py), once accepted by the server and
once refused with an encrypted no_renegotiation alert. The new ClientHello comes under the keys in
force, which stay in force for each side until its own ChangeCipherSpec: every record decrypts as
tshark decrypts it, the refusal alert included (a ClientHello that wiped the connection left it
shown as the garbage "Alert (235, 61)")."""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

from protoscope.decoders.api import Field
from protoscope.decoders.tls.decoder import TlsRecord
from tests.conftest import require_tool

from .common import Seen, decode, keylog, plaintext, sent

SAMPLES = Path(__file__).parent / "samples"
RENEG, RENEG_KEYS = SAMPLES / "reneg.pcap", SAMPLES / "reneg.keys"
CONNECTIONS = json.loads((SAMPLES / "reneg.truth.json").read_text())["connections"]
ACCEPTED, REFUSED = (next(c for c in CONNECTIONS if c["renegotiation"] == k) for k in ("accepted", "refused"))


def walk(fields: Sequence[Field]) -> Iterator[Field]:
    for f in fields:
        yield f
        yield from walk(f.children)


def frames(seen: list[Seen]) -> dict[int, tuple[str, str, str, str]]:
    """Per frame, as tshark's fields print them: handshake types, alert levels, alert
    descriptions, decrypted application data (hex)."""
    rows: dict[int, list[list[str]]] = defaultdict(lambda: [[], [], [], []])
    for s in seen:
        row = rows[s.frame]
        record = s.pdu.record
        assert isinstance(record, TlsRecord)
        row[0] += [str(t) for t in record.handshake_types]
        for f in walk(s.pdu.fields):
            if f.name == "tls.alert_message.level":
                row[1].append(str(f.value))
            elif f.name == "tls.alert_message.desc":
                row[2].append(str(f.value))
        if s.pdu.inner:
            row[3].append(b"".join(i.data for i in s.pdu.inner).hex())
    return {n: (",".join(a), ",".join(b), ",".join(c), ",".join(d)) for n, (a, b, c, d) in rows.items()}


def test_both_connections_decrypt_to_what_was_sent_with_no_finding() -> None:
    seen = decode(RENEG, keylog(path=RENEG_KEYS))
    assert [f for s in seen for f in s.pdu.findings] == []
    for conn in CONNECTIONS:
        assert plaintext(seen, conn["port"]) == sent(conn)
    hellos = [s for s in seen if 1 in s.pdu.record.handshake_types]
    assert len(hellos) == 4  # two a connection: the second decrypted
    alerts = {
        port: [
            s.pdu.record.facts["alert"]
            for s in seen
            if "alert" in s.pdu.record.facts and port in (s.ctx.src.port, s.ctx.dst.port)
        ]
        for port in (ACCEPTED["port"], REFUSED["port"])
    }
    assert alerts == {
        ACCEPTED["port"]: [("warning", "close_notify")] * 2,
        REFUSED["port"]: [("warning", "no_renegotiation"), ("fatal", "handshake_failure")],
    }


def test_every_frame_is_what_tshark_decrypts() -> None:
    tshark = require_tool("tshark")
    out = subprocess.run(
        [
            *(tshark, "-r", str(RENEG), "-o", f"tls.keylog_file:{RENEG_KEYS}", "-Y", "tls"),
            *("-T", "fields", "-E", "separator=|", "-e", "frame.number", "-e", "tls.handshake.type"),
            *("-e", "tls.alert_message.level", "-e", "tls.alert_message.desc", "-e", "data.data"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    expected = {}
    for line in out.splitlines():
        number, *rest = line.split("|")
        expected[int(number)] = tuple(rest)
    assert expected[49] == ("", "1", "100", "")  # the refusal: warning no_renegotiation
    assert frames(decode(RENEG, keylog(path=RENEG_KEYS))) == expected


def test_old_keys_stay_in_force_until_each_sides_change_cipher_spec() -> None:
    """With only the first handshake's secret, every record up to each side's ChangeCipherSpec of
    the renegotiation opens (the new ClientHello, the server's new flight, the client's
    ClientKeyExchange), and after it each side says once that it has no key."""
    first = RENEG_KEYS.read_text().splitlines()[1]
    assert first.startswith("CLIENT_RANDOM ")
    seen = [
        s for s in decode(RENEG, keylog(first + "\n")) if ACCEPTED["port"] in (s.ctx.src.port, s.ctx.dst.port)
    ]
    handshakes = [t for s in seen for t in s.pdu.record.handshake_types]
    first, second = [1, 2, 11, 12, 14, 16, 20, 4, 20], [1, 2, 11, 12, 14, 16, 4]  # no Finished: new keys
    assert handshakes == [*first, *second]
    failed = [(s.ctx.from_client, f.code) for s in seen for f in s.pdu.findings]
    assert sorted(failed) == [(False, "tls.decrypt_failed"), (True, "tls.decrypt_failed")]
    assert plaintext(seen, ACCEPTED["port"]) == {
        "client": ACCEPTED["sent"]["client"][0].encode(),
        "server": ACCEPTED["sent"]["server"][0].encode(),
    }
