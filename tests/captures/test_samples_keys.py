"""The samples that come with their secrets (webrtc-datachannels, grpc-tls) agree with their truth.

The truth files were written by the generating side (aiortc's hooks, the gRPC client and server),
never computed from the captures; these tests check what can be checked without our decryption:
frame counts and ports from our index, the key logs parse and name the client randoms of the
captures' ClientHellos (tshark), headers that SRTP leaves in clear, and tshark's own decryption
with the key log (the "oracle" commands of each truth file).
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import os
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from protoscope.captures.index import load
from protoscope.decoders.tls.keylog import KeyLog
from tests.conftest import ROOT, SAMPLES, require_tool, tshark

SRTP_TAG = {"SRTP_AEAD_AES_256_GCM": 16, "SRTP_AEAD_AES_128_GCM": 16, "SRTP_AES128_CM_SHA1_80": 10}
"""Authentication tag length of each DTLS-SRTP profile (RFC 7714, RFC 3711)."""
SRTCP_INDEX = 4
"""E flag and SRTCP index after the RTCP packet (RFC 3711 section 3.4)."""


def truth_of(name: str) -> dict[str, Any]:
    truth: dict[str, Any] = json.loads((SAMPLES / f"{name}.truth.json").read_text())
    return truth


def keylog_of(name: str) -> KeyLog:
    keys = KeyLog()
    kept, skipped = keys.add_text((SAMPLES / f"{name}.keys").read_text())
    assert kept > 0
    assert skipped == 0
    return keys


def require_module(name: str) -> Any:
    """A Python module the test needs (pylibsrtp: real SRTP); missing fails under CI=true."""
    try:
        return importlib.import_module(name)
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed (a test dependency)")
        pytest.skip(f"{name} is not installed")


def oracle(command: list[str], rsa_key: Path | None = None) -> list[list[str]]:
    """Run one of a truth file's tshark commands from the repository root; rows of fields."""
    require_tool("tshark")
    args = [arg.replace("{rsa_key}", str(rsa_key)) for arg in command[1:]]
    args = [arg.replace("captures/samples/", f"{ROOT}/captures/samples/") for arg in args]
    return [line.split("\t") for line in tshark(*args).splitlines()]


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway RSA key: tshark 4.0's DTLS key table needs a loadable one to name SCTP."""
    openssl = require_tool("openssl")
    path = tmp_path_factory.mktemp("rsa") / "any.pem"
    subprocess.run([openssl, "genrsa", "-out", str(path), "2048"], check=True, capture_output=True)
    return path


# -- webrtc-datachannels ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dc() -> dict[str, Any]:
    return truth_of("webrtc-datachannels")


def side_by_port(truth: dict[str, Any]) -> dict[str, str]:
    return {str(port): side for side, port in truth["ports"].items()}


def test_datachannels_udp_frames_and_ports(dc: dict[str, Any]) -> None:
    """Every datagram each ICE socket sent is in the capture, on the ports the truth names."""
    ix = load(SAMPLES / "webrtc-datachannels.pcap")
    try:
        captured: Counter[int] = Counter()
        for f in ix.flows:
            if f.transport == "udp":
                captured[f.client.port] += f.packets_c2s
                captured[f.server.port] += f.packets_s2c
        sent = {int(port): n for port, n in dc["udp_datagrams_sent"].items() if n}
        assert dict(captured) == sent
        assert set(dc["ports"].values()) <= set(sent)
        tcp = [f for f in ix.flows if f.transport == "tcp"]
        assert {f.server.port for f in tcp} == {dc["signal_port"]}
    finally:
        ix.close()


def test_datachannels_keylog_names_the_client_hello(dc: dict[str, Any]) -> None:
    keys = keylog_of("webrtc-datachannels")
    randoms = {row[0] for row in oracle(dc["oracle"]["client_randoms"])}
    assert randoms == {c["client_random"] for c in dc["dtls"]}
    for random in randoms:
        assert keys.get("CLIENT_RANDOM", bytes.fromhex(random)) is not None


def test_datachannels_srtp_headers_are_the_plaintext_headers(dc: dict[str, Any]) -> None:
    """SRTP leaves the RTP header in clear and adds a tag; SRTCP adds the index and a tag."""
    tag = SRTP_TAG[dc["dtls"][0]["srtp_profile"]]
    sides = side_by_port(dc)
    rows = oracle(dc["oracle"]["srtp_headers"])
    assert len(rows) == len(dc["rtp"])
    for (port, ssrc, seq, pt, udp_length), sent in zip(rows, dc["rtp"], strict=True):
        assert sides[port] == sent["side"]
        if "rtcp" in sent:
            assert int(udp_length) - 8 == len(sent["rtcp"]) // 2 + SRTCP_INDEX + tag
            continue
        assert (int(ssrc, 16), int(seq), int(pt)) == (sent["ssrc"], sent["seq"], sent["pt"])
        assert int(udp_length) - 8 == sent["size"] + tag


def test_datachannels_ssrcs_and_codecs(dc: dict[str, Any]) -> None:
    media = {(m["side"], m["kind"]): m for m in dc["media"]}
    sent = Counter((p["side"], p["ssrc"], p["pt"]) for p in dc["rtp"] if "rtcp" not in p)
    for (side, kind), m in media.items():
        first = m["codecs"][0]
        assert first["mime_type"] == ("audio/opus" if kind == "audio" else "video/VP8")
        assert sent[(side, m["ssrc"], first["payload_type"])] > 0
    assert {ssrc for _, ssrc, _ in sent} == {m["ssrc"] for m in dc["media"]}


def test_datachannels_messages_arrived_as_sent(dc: dict[str, Any]) -> None:
    def key(m: dict[str, Any]) -> tuple[Any, ...]:
        return (m["label"], m["type"], m["size"], m.get("text"), m.get("hex"), m.get("sha256"))

    for sender, receiver in (("caller", "callee"), ("callee", "caller")):
        sent = Counter(key(m) for m in dc["messages"] if m["side"] == sender)
        got = Counter(key(m) for m in dc["received"] if m["side"] == receiver)
        assert sent == got
    kinds = {(m["type"], m["size"]) for m in dc["messages"]}
    assert {("text", 0), ("binary", 0), ("binary", 70_000), ("text", 3_400)} <= kinds
    assert {m["label"] for m in dc["messages"]} == {"chat", "lossy", "timed", "pre"}


def test_datachannels_sctp_decrypted_by_tshark(dc: dict[str, Any], rsa_key: Path) -> None:
    """tshark, given the key log, finds each SCTP packet the peers handed to DTLS, in order."""
    sides = side_by_port(dc)
    rows = oracle(dc["oracle"]["sctp"], rsa_key)
    got = [(sides[row[0]], row[1]) for row in rows]
    sent = [(p["side"], "0x" + (p.get("hex") or p["head"])[16:24]) for p in dc["sctp"]]
    assert got == sent
    labels = {label for row in rows for label in row[4:] if label}
    assert labels == {"chat", "lossy", "timed"}  # "pre" was negotiated: no DATA_CHANNEL_OPEN


# -- grpc-tls -----------------------------------------------------------------------------------

CIPHER_SUITES = {
    "TLS_AES_128_GCM_SHA256": 0x1301,
    "TLS_AES_256_GCM_SHA384": 0x1302,
    "TLS_CHACHA20_POLY1305_SHA256": 0x1303,
    "ECDHE-RSA-AES128-GCM-SHA256": 0xC02F,
    "ECDHE-RSA-CHACHA20-POLY1305": 0xCCA8,
}
"""IANA numbers of the suites OpenSSL names (RFC 8446, RFC 5289, RFC 7905)."""


@pytest.fixture(scope="module")
def gt() -> dict[str, Any]:
    return truth_of("grpc-tls")


def by_connection(truth: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each connection's calls in order, by the client's port (as tshark prints it)."""
    port = {c["connection"]: str(c["client_port"]) for c in truth["connections"]}
    out: dict[str, list[dict[str, Any]]] = {p: [] for p in port.values()}
    for call in truth["calls"]:
        out[port[call["connection"]]].append(call)
    return out


def test_grpc_tls_flows_and_ports(gt: dict[str, Any]) -> None:
    ix = load(SAMPLES / "grpc-tls.pcap")
    try:
        assert {f.transport for f in ix.flows} == {"tcp"}
        assert sorted(f.client.port for f in ix.flows) == sorted(c["client_port"] for c in gt["connections"])
        assert {f.server.port for f in ix.flows} == {gt["port"]} != {443}
        assert all(f.oriented_by == "syn" for f in ix.flows)
    finally:
        ix.close()


def test_grpc_tls_keylog_names_the_client_hellos(gt: dict[str, Any]) -> None:
    keys = keylog_of("grpc-tls")
    rows = oracle(gt["oracle"]["client_randoms"])
    assert {port: random for port, random in rows} == {
        str(c["client_port"]): c["client_random"] for c in gt["connections"]
    }
    for c in gt["connections"]:
        random = bytes.fromhex(c["client_random"])
        for label in c["keylog_labels"]:
            assert keys.get(label, random) is not None
        wanted = "CLIENT_RANDOM" if c["tls_version"] == "TLSv1.2" else "CLIENT_TRAFFIC_SECRET_0"
        assert wanted in c["keylog_labels"]


def test_grpc_tls_server_hellos_say_version_and_suite(gt: dict[str, Any]) -> None:
    pcap = str(SAMPLES / "grpc-tls.pcap")
    fields = [
        "-e",
        "tcp.dstport",
        "-e",
        "tls.handshake.ciphersuite",
        "-e",
        "tls.handshake.extensions.supported_version",
    ]
    out = tshark("-r", pcap, "-Y", "tls.handshake.type == 2", "-T", "fields", *fields)
    hellos = {row[0]: row[1:] for row in (line.split("\t") for line in out.splitlines())}
    for c in gt["connections"]:
        suite, version = hellos[str(c["client_port"])]
        assert int(suite, 16) == CIPHER_SUITES[c["cipher"]]
        assert (version == "0x0304") == (c["tls_version"] == "TLSv1.3")
        assert c["alpn"] == "h2"
    assert {c["tls_version"] for c in gt["connections"]} == {"TLSv1.3", "TLSv1.2"}
    assert "CHACHA20" in next(c["cipher"] for c in gt["connections"] if c["tls_version"] == "TLSv1.2")


def test_grpc_tls_calls_decrypted_by_tshark(gt: dict[str, Any]) -> None:
    """With the key log, tshark finds every call's path, status and message sizes, in order."""
    calls = by_connection(gt)
    paths: dict[str, list[str]] = {port: [] for port in calls}
    for port, path in oracle(gt["oracle"]["grpc_paths"]):
        paths[port].append(path)
    assert paths == {port: [c["path"] for c in cs] for port, cs in calls.items()}
    statuses: dict[str, list[tuple[int, str | None]]] = {port: [] for port in calls}
    for port, names, values in oracle(gt["oracle"]["grpc_status"]):
        header = dict(zip(names.split("|"), values.split("|"), strict=True))
        statuses[port].append((int(header["grpc-status"]), header.get("grpc-message") or None))
    for port, cs in calls.items():
        assert [s for s, _ in statuses[port]] == [c["status"] for c in cs]
        assert [m for _, m in statuses[port]] == [c["trailers"].get("grpc-message") or None for c in cs]
    sizes: dict[str, list[int]] = {}
    for port, lengths in oracle(gt["oracle"]["grpc_messages"]):
        sizes.setdefault(port, []).extend(int(n) for n in lengths.split("|"))
    for port, cs in calls.items():
        assert sizes[port] == [n for c in cs for n in c["request_sizes"]]
    assert sizes[str(gt["port"])] == [n for cs in calls.values() for c in cs for n in c["response_sizes"]]


def test_grpc_tls_truth_covers_the_call_kinds(gt: dict[str, Any]) -> None:
    for connection in (1, 2):
        calls = [c for c in gt["calls"] if c["connection"] == connection]
        assert {c["kind"] for c in calls} == {"unary", "server_streaming", "client_streaming", "bidi"}
        assert any(c["status"] != 0 and c["trailers_only"] for c in calls)
        for c in calls:
            assert len(c["requests"]) == len(c["request_sizes"])
            assert len(c["responses"]) == len(c["response_sizes"])
    assert max(n for c in gt["calls"] for n in c["response_sizes"]) > 100_000


def test_datachannels_sctp_chunks_sent(dc: dict[str, Any]) -> None:
    """The association's life as the peers sent it: INIT to ABORT, DATA, SACK and the stream
    reset (RE-CONFIG) that closing a channel makes, both ways."""
    types = {(p["side"], bytes.fromhex((p.get("hex") or p["head"])[:32])[12]) for p in dc["sctp"]}
    for side in ("caller", "callee"):
        assert {(side, t) for t in (0, 1, 2, 3, 10, 11, 130)} <= types  # DATA INIT ... RE-CONFIG


def assert_srtp_unprotects(truth: dict[str, Any]) -> None:
    """pylibsrtp, given a WebRTC sample truth's keying material, turns each captured SRTP/SRTCP
    packet back into the plaintext aiortc protected (proof that the truth's keys and sides are
    right)."""
    pylibsrtp = require_module("pylibsrtp")
    policy = pylibsrtp.Policy
    dtls = truth["dtls"][0]
    profile = getattr(policy, "SRTP_PROFILE_" + dtls["srtp_profile"].removeprefix("SRTP_"))
    sessions = {}
    for side in ("caller", "callee"):
        writer = "client" if dtls["dtls_client"] == side else "server"
        key = base64.b64decode(dtls[f"{writer}_key_salt"])
        sessions[side] = pylibsrtp.Session(
            policy(key=key, ssrc_type=policy.SSRC_ANY_INBOUND, srtp_profile=profile)
        )
    sides = side_by_port(truth)
    headers = truth["oracle"]["srtp_headers"]
    rows = oracle([*headers[: headers.index("-e")], "-e", "udp.srcport", "-e", "udp.payload"])
    assert len(rows) == len(truth["rtp"])
    for (port, payload), sent in zip(rows, truth["rtp"], strict=True):
        session = sessions[sides[port]]
        data = bytes.fromhex(payload)
        try:
            if "rtcp" in sent:
                assert session.unprotect_rtcp(data).hex() == sent["rtcp"]
            else:
                assert hashlib.sha256(session.unprotect(data)).hexdigest() == sent["sha256"]
        except pylibsrtp.Error as exc:
            raise AssertionError(f"{sent}: {exc}") from exc


def test_datachannels_srtp_keys_unprotect_the_capture(dc: dict[str, Any]) -> None:
    assert_srtp_unprotects(dc)
