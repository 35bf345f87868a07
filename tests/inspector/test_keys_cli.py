"""--keylog and --inject-secrets on the command line: bad input is one line and exit 2, and a file
exported with its secrets decrypts on its own."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from protoscope.captures.index import load
from protoscope.captures.pcapng import SECRETS_TLS_KEY_LOG
from protoscope.inspector.cli import main
from tests.conftest import ROOT, require_tool

SAMPLE = ROOT / "captures" / "samples" / "tls-loopback.pcap"
LINE = f"CLIENT_RANDOM {'ab' * 32} {'cd' * 48}\n"


def test_an_unreadable_key_log_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(SAMPLE), "--keylog", "/nonexistent/k.keys", "--report", "summary"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "protoscope: cannot read key log /nonexistent/k.keys: No such file or directory"
    ]


def test_lines_not_understood_are_counted_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "k.keys"
    keys.write_text(LINE + "garbage\nCLIENT_RANDOM 12 34\n")
    assert main([str(SAMPLE), "--keylog", str(keys), "--report", "summary", "--format", "json"]) == 0
    assert "2 line(s) not understood, skipped (1 secret(s) read)" in capsys.readouterr().err


def test_inject_secrets_goes_with_export_pcapng(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(SAMPLE), "--inject-secrets", "--report", "summary"]) == 2
    assert "--inject-secrets goes with --export pcapng" in capsys.readouterr().err


def test_inject_secrets_needs_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o.pcapng"
    assert main([str(SAMPLE), "--export", "pcapng", "--inject-secrets", "--output", str(out)]) == 2
    assert "no keys to inject" in capsys.readouterr().err


def test_export_with_injected_secrets_carries_the_key_log(tmp_path: Path) -> None:
    keys = tmp_path / "k.keys"
    keys.write_text(LINE + (ROOT / "captures" / "samples" / "grpc-tls.keys").read_text())
    out = tmp_path / "o.pcapng"
    capture = ROOT / "captures" / "samples" / "grpc-tls.pcap"
    args = [
        str(capture),
        "--keylog",
        str(keys),
        "--export",
        "pcapng",
        "--inject-secrets",
        "--output",
        str(out),
    ]
    assert main(args) == 0
    ix = load(out)
    ((kind, text),) = ix.capture.records.secrets
    assert kind == SECRETS_TLS_KEY_LOG and LINE not in text.decode()  # a connection not in the capture
    assert len(text.decode().splitlines()) == 6 and len(ix) == len(load(capture))  # its 6 secrets


SAMPLES = ROOT / "captures" / "samples"


def test_export_audio_writes_a_decrypted_opus_stream(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "a.ogg"
    args = [str(SAMPLES / "sdes-srtp.pcap"), "--export", "audio", "--stream", "1", "--output", str(out)]
    assert main(args) == 0
    assert out.read_bytes().startswith(b"OggS") and b"OpusHead" in out.read_bytes()[:64]
    assert "wrote 101 opus packets" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--stream", "9", "--output", "x.wav"], "no stream 9 (the capture has 2 RTP streams)"),
        (["--output", "x.wav"], "--export audio needs --stream N"),
        (["--stream", "0"], "--export audio needs --stream N"),
    ],
)
def test_export_audio_refusals_are_one_line(
    extra: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([str(SAMPLES / "sdes-srtp.pcap"), "--export", "audio", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_export_audio_of_srtp_without_keys_says_what_to_give(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "a.ogg"
    args = [str(SAMPLES / "webrtc-srtp80.pcap"), "--export", "audio", "--stream", "1", "--output", str(out)]
    assert main(args) == 2
    assert "encrypted and no key decrypts it (give --keylog or --srtp-key)" in capsys.readouterr().err
    assert main([*args, "--keylog", str(SAMPLES / "webrtc-srtp80.keys")]) == 0
    assert out.read_bytes().startswith(b"OggS")


def test_encoding_goes_with_export_audio(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(SAMPLES / "sdes-srtp.pcap"), "--encoding", "PCMU", "--report", "streams"]) == 2
    assert "--encoding goes with --export audio" in capsys.readouterr().err


def test_srtp_key_decrypts_media_whose_sdp_is_not_in_the_capture(tmp_path: Path) -> None:
    truth = json.loads((SAMPLES / "sdes-srtp.truth.json").read_text())
    first = truth["streams"][0]
    media = tmp_path / "media.pcapng"  # the UDP alone: no SDP, so no a=crypto to learn from
    assert (
        main([str(SAMPLES / "sdes-srtp.pcap"), "-Y", "udp", "--export", "pcapng", "--output", str(media)])
        == 0
    )

    def audio(capture: Path, *extra: str) -> bytes:
        out = tmp_path / "a.wav"
        args = [
            str(capture),
            "--export",
            "audio",
            "--stream",
            "0",
            "--output",
            str(out),
            "--encoding",
            "PCMU",
        ]
        assert main([*args, *extra]) == 0
        return out.read_bytes()

    learnt = audio(SAMPLES / "sdes-srtp.pcap")  # the key from the SDP in the capture
    given = audio(media, "--srtp-key", f"{first['ssrc']:#x},{first['suite']},{first['key_salt']}")
    # Without signaling nothing says the payload is SRTP: it is written as it is on the wire.
    assert given == learnt != audio(media)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0x1,AES_CM_128_HMAC_SHA1_80", "expected SSRC|ADDR:PORT,PROFILE,BASE64"),
        ("0x1,NO_SUCH_PROFILE,AAAA", "unknown SRTP profile 'NO_SUCH_PROFILE'"),
        ("0x1,AES_CM_128_HMAC_SHA1_80,!!!", "is not base64"),
        ("0x1,AES_CM_128_HMAC_SHA1_80,AAAA", "takes 30 bytes of key and salt"),
    ],
)
def test_a_bad_srtp_key_is_refused_with_its_reason(
    value: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(SAMPLE), "--srtp-key", value, "--report", "summary"]) == 2
    assert reason in capsys.readouterr().err


def test_a_given_srtp_key_that_loses_to_the_capture_s_own_is_a_warning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    truth = json.loads((SAMPLES / "sdes-srtp.truth.json").read_text())
    first = truth["streams"][0]
    wrong = f"{first['ssrc']:#x},{first['suite']},{'A' * 40}"
    args = [str(SAMPLES / "sdes-srtp.pcap"), "--srtp-key", wrong, "--report", "findings", "--format", "json"]
    assert main(args) == 0
    found = [f for f in json.loads(capsys.readouterr().out) if f["code"] == "srtp.key_unused"]
    assert (
        len(found) == 1 and "the --srtp-key key did not authenticate; the SDES key did" in found[0]["message"]
    )


def test_inject_secrets_of_one_flow_carries_only_that_flow_s_keys(tmp_path: Path) -> None:
    out = tmp_path / "f1.pcapng"
    keys = SAMPLES / "grpc-tls.keys"
    args = [str(SAMPLES / "grpc-tls.pcap"), "--keylog", str(keys), "--export", "pcapng", "--inject-secrets"]
    assert main([*args, "--flow", "1", "--output", str(out)]) == 0
    ((_, text),) = load(out).capture.records.secrets
    lines = text.decode().splitlines()
    randoms = {line.split()[1] for line in keys.read_text().splitlines() if not line.startswith("#")}
    assert len(randoms) == 2 and len({line.split()[1] for line in lines}) == 1
    assert main([str(out), "--report", "calls", "--format", "json"]) == 0


@pytest.mark.parametrize(
    ("capture", "report", "reason"),
    [
        (
            "grpc-tls.pcap",
            "calls",
            "no gRPC calls: TLS seen, not decrypted (give its key log: --keylog FILE)",
        ),
        (
            "webrtc-datachannels.pcap",
            "datachannels",
            "no data channels: DTLS seen, not decrypted (give its key log: --keylog FILE)",
        ),
        ("grpc-demo.pcap", "datachannels", "no data channels: no SCTP association in this capture"),
    ],
)
def test_a_report_empty_for_want_of_keys_says_so(
    capture: str, report: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(SAMPLES / capture), "--report", report]) == 0
    assert reason in capsys.readouterr().out


def test_follow_of_a_decrypted_tls_flow_is_its_plaintext(capsys: pytest.CaptureFixture[str]) -> None:
    capture, keys = SAMPLES / "tls-keys.pcap", SAMPLES / "tls-keys.keys"
    assert main([str(capture), "--keylog", str(keys), "--report", "follow", "--flow", "0"]) == 0
    out = capsys.readouterr().out
    assert "Follow: TLS stream 0 (decrypted), ascii" in out
    assert "hello from the client over ECDHE-RSA-AES128-GCM-SHA256" in out
    assert main([str(capture), "--report", "follow", "--flow", "0"]) == 0  # no keys: the TCP bytes
    out = capsys.readouterr().out
    assert "Follow: tcp,ascii" in out and "hello from the client" not in out


@pytest.mark.parametrize(
    ("capture", "extra", "message"),
    [
        (
            "sdes-srtp.pcap",
            ["--stream", "0", "--output", "x.ogg"],
            "is PCMU: it is written as WAV, so its name",
        ),
        (
            "webrtc-srtp80.pcap",
            [
                "--stream",
                "1",
                "--output",
                "x.wav",
                "--encoding",
                "PCMU",
                "--keylog",
                str(SAMPLES / "webrtc-srtp80.keys"),
            ],
            "the capture's signaling names it opus; --encoding is for payload types no SDP names",
        ),
    ],
)
def test_export_audio_refuses_a_name_or_encoding_that_contradicts_the_stream(
    capture: str,
    extra: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([str(SAMPLES / capture), "--export", "audio", *extra]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_tls_app_data_finds_the_records_tshark_finds(capsys: pytest.CaptureFixture[str]) -> None:
    """With the key log as without, `tls.app_data` is what tshark's is (with keys, TLS 1.3's
    encrypted handshake records are handshake, not application data, in both)."""
    capture, keys = SAMPLES / "grpc-tls.pcap", SAMPLES / "grpc-tls.keys"
    for given in ([f"tls.keylog_file:{keys}"], []):
        ours = [str(capture), "-Y", "tls.app_data", "--report", "packets", "--format", "jsonl"]
        assert main([*ours, *(["--keylog", str(keys)] if given else [])]) == 0
        frames = [json.loads(line)["frame"] for line in capsys.readouterr().out.splitlines()]
        oracle = [require_tool("tshark"), "-r", str(capture), *(["-o", *given] if given else [])]
        tshark = subprocess.run(
            [*oracle, "-Y", "tls.app_data", "-T", "fields", "-e", "frame.number"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert frames == [int(f) for f in tshark]


def test_dtls_app_data_finds_the_records_tshark_finds(capsys: pytest.CaptureFixture[str]) -> None:
    capture, keys = SAMPLES / "webrtc-datachannels.pcap", SAMPLES / "webrtc-datachannels.keys"
    tshark = subprocess.run(
        [
            require_tool("tshark"),
            "-r",
            str(capture),
            "-Y",
            "dtls.app_data",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for extra in ([], ["--keylog", str(keys)]):
        assert (
            main([str(capture), *extra, "-Y", "dtls.app_data", "--report", "packets", "--format", "jsonl"])
            == 0
        )
        frames = [json.loads(line)["frame"] for line in capsys.readouterr().out.splitlines()]
        assert frames == [int(f) for f in tshark] and len(frames) == 193


def test_datachannel_label_selects_a_channel_s_messages(capsys: pytest.CaptureFixture[str]) -> None:
    capture, keys = SAMPLES / "webrtc-datachannels.pcap", SAMPLES / "webrtc-datachannels.keys"
    args = [str(capture), "--keylog", str(keys), "-Y", 'datachannel.label == "chat"', "--report", "packets"]
    assert main([*args, "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    labels = {
        p["fields"].get("datachannel.label")
        for r in rows
        for p in r["pdus"]
        if p["protocol"] == "datachannel"
    }
    assert len(rows) == 10 and labels == {"chat"}  # chat's 10 messages; the pre-negotiated one has no label
