"""The command line: reports and their JSON keys, and bad input ending in one line and exit 2."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from protoscope.inspector.cli import main
from tests import pcapgen
from tests.conftest import public_capture, public_captures, tshark

PUBLIC = [p.name for p in public_captures()] or ["no-corpus"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "protoscope.inspector.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "PROTOSCOPE_DEBUG": ""},
    )


@pytest.mark.parametrize("name", PUBLIC)
def test_summary_runs_on_every_public_capture(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = public_capture(name)
    assert main([str(path), "--report", "summary", "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["packets"] > 0


def test_report_json_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cap = pcapgen.write(tmp_path / "r.pcap", pcapgen.tcp_conversation(pcapgen.RESP_SEGMENTS))
    assert main([str(cap), "--report", "flows", "--format", "json"]) == 0
    flows = json.loads(capsys.readouterr().out)
    assert {"id", "transport", "client", "server", "protocols", "packets", "bytes", "first", "last"} <= set(
        flows[0]
    )
    assert flows[0]["client"] == "127.0.0.1:40000" and flows[0]["server"] == "127.0.0.1:6379"
    assert main([str(cap), "--report", "packets", "--format", "jsonl"]) == 0
    packets = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [p["frame"] for p in packets] == list(range(1, 9))
    assert {"frame", "time", "len", "flow", "protocols", "pdus", "findings"} <= set(packets[0])
    assert packets[0]["protocols"] == ["eth", "ip", "tcp"]
    assert main([str(cap), "--report", "findings", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main([str(cap), "--report", "summary", "--format", "text"]) == 0
    assert "Protocol hierarchy" in capsys.readouterr().out


def test_capture_text_is_shown_literally(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plugin = tmp_path / "say.py"
    plugin.write_text(
        "from protoscope.decoders.api import DecodeResult, Pdu\n"
        "class Say:\n"
        "    name = 'say'; transport = 'datagram'; ports = frozenset({('udp', 3478)})\n"
        "    def sniff(self, d, c): return True\n"
        "    def new_state(self): return None\n"
        "    def decode(self, d, s, c):\n"
        "        return DecodeResult((Pdu('say', (), (0, len(d)), summary=d.decode()),), len(d))\n"
    )
    cap = pcapgen.write(tmp_path / "m.pcap", pcapgen.udp_packets([b"[red]x[/red]\x1b[2J"]))
    assert main([str(cap), "--plugin", str(plugin), "--report", "packets"]) == 0
    out = capsys.readouterr().out
    assert "[red]x[/red]\\x1b[2J" in out and "\x1b" not in out


def _bad_inputs(tmp: Path) -> dict[str, Path]:
    good = pcapgen.write(tmp / "good.pcap", pcapgen.udp_packets([b"a" * 40, b"b" * 40]))
    raw = good.read_bytes()
    cases = {
        "missing": tmp / "nope.pcap",
        "directory": tmp,
        "text": tmp / "t.pcap",
        "empty": tmp / "e.pcap",
        "random": tmp / "r.pcap",
        "header-only-short": tmp / "h.pcap",
    }
    cases["text"].write_text("hello, this is not a capture\n")
    cases["empty"].write_bytes(b"")
    cases["random"].write_bytes(os.urandom(4096))
    cases["header-only-short"].write_bytes(raw[:10])
    return cases


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for what, path in _bad_inputs(tmp_path).items():
        r = run_cli(str(path), "--report", "summary")
        assert r.returncode == 2, what
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("protoscope: "), (what, r.stderr)
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr, (what, r.stderr)


def test_truncated_and_absurd_files_load_with_a_finding(tmp_path: Path) -> None:
    good = pcapgen.write(tmp_path / "good.pcap", pcapgen.udp_packets([b"a" * 40, b"b" * 40]))
    raw = good.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(raw[:-10])
    absurd = bytearray(raw)
    absurd[24 + 8 : 24 + 12] = (0x7FFFFFF0).to_bytes(4, "little")
    bad = tmp_path / "absurd.pcap"
    bad.write_bytes(bytes(absurd))
    for path, code, packets in ((cut, "capture.truncated", 1), (bad, "capture.bad_record_length", 0)):
        r = run_cli(str(path), "--report", "findings", "--format", "jsonl")
        assert r.returncode == 0, r.stderr
        assert [json.loads(x)["code"] for x in r.stdout.splitlines()] == [code]
        s = json.loads(run_cli(str(path), "--report", "summary", "--format", "json").stdout)
        assert s["packets"] == packets


def test_usage_errors_exit_2() -> None:
    for args in ([], ["x.pcap", "--report", "nope"], ["--live"], ["x.pcap", "-d", "garbage"]):
        r = run_cli(*args)
        assert r.returncode == 2, args
        assert "Traceback" not in r.stderr and r.stderr.strip(), args


def test_summary_counts_tcp_gaps_like_the_findings_report(tmp_path: Path) -> None:
    pkts = pcapgen.tcp_conversation([(True, b"a" * 10), (True, b"b" * 10), (True, b"c" * 10)])
    del pkts[4]  # the capture missed the middle segment
    cap = pcapgen.write(tmp_path / "gap.pcap", pkts)
    findings = [
        json.loads(x)
        for x in run_cli(str(cap), "--report", "findings", "--format", "jsonl").stdout.splitlines()
    ]
    assert [(f["code"], f["frame"]) for f in findings] == [("tcp.gap", 5)]
    assert "10 bytes were not captured" in findings[0]["message"]
    summary = json.loads(run_cli(str(cap), "--report", "summary", "--format", "json").stdout)
    assert summary["findings"] == {"error": 0, "warn": 1, "note": 0}


# -- tshark's flags (issue 13) ----------------------------------------------------------------------

GRPC_DEMO = Path(__file__).resolve().parents[2] / "captures" / "samples" / "grpc-demo.pcap"


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, err
    return code, out, err


def test_count_and_read_file_cut_like_tshark(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(public_capture("ndpi--teams.pcap"))
    names = ("frame.number", "ip.src", "udp.dstport", "frame.len", "frame.time_epoch", "eth.src", "ip.ttl")
    fields = ["-T", "fields", *(a for name in names for a in ("-e", name))]
    code, out, _ = _main(capsys, "-r", path, "-c", "200", *fields)
    assert code == 0
    assert out == tshark("-r", path, "-c", "200", *fields)
    # Every report sees the same first packets.
    code, out, _ = _main(capsys, path, "-c", "200", "--report", "summary", "--format", "json")
    assert json.loads(out)["packets"] == 200
    code, out, _ = _main(capsys, path, "-c", "200", "-z", "io,phs", "--format", "json")
    assert json.loads(out)[0]["frames"] == 200
    code, _, err = _main(capsys, "-r", path, str(GRPC_DEMO))
    assert code == 2 and "-r FILE or FILE" in err


def test_fields_with_filter_and_options_equal_tshark(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(GRPC_DEMO)
    args = ["-Y", "tcp.len > 0", "-T", "fields", "-e", "frame.number", "-e", "ip.src", "-e", "tcp.srcport"]
    args += ["-e", "tcp.len", "-E", "header=y", "-E", "separator=,", "-E", "quote=d"]
    code, out, _ = _main(capsys, "-r", path, *args)
    assert code == 0
    assert out == tshark("-r", path, *args)
    for bad, why in (
        (["-T", "fields"], "needs at least one -e"),
        (["-T", "fields", "-e", "no.such.field"], "no such field"),
        (["-T", "fields", "-e", "ip.src", "-E", "separator"], "expected separator="),
        (["-e", "ip.src"], "go with -T fields"),
    ):
        code, _, err = _main(capsys, path, *bad)
        assert code == 2 and why in err, (bad, err)


def test_write_keeps_what_the_filter_keeps_like_tshark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(public_capture("ndpi--teams.pcap"))
    ours, theirs = tmp_path / "ours.pcapng", tmp_path / "theirs.pcapng"
    code, _, err = _main(capsys, path, "-Y", "tcp.len > 0", "-c", "500", "-w", str(ours))
    assert code == 0 and "wrote" in err
    tshark("-r", path, "-Y", "tcp.len > 0", "-c", "500", "-w", str(theirs))
    fields = ("-T", "fields", "-e", "frame.len", "-e", "frame.time_epoch", "-e", "tcp.seq_raw")
    assert tshark("-r", str(ours), *fields) == tshark("-r", str(theirs), *fields)
    code, _, err = _main(capsys, path, "-w", str(ours), "--report", "flows")
    assert code == 2 and "-w with a capture file" in err


def test_hex_dump_equals_tshark_and_detail_shows_fields(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(GRPC_DEMO)
    code, out, _ = _main(capsys, path, "-c", "3", "-x")
    assert code == 0
    dumps = [line for line in out.splitlines() if line[:4].isalnum() and line[4:6] == "  "]
    assert dumps == [line for line in tshark("-r", path, "-c", "3", "-x").splitlines() if line]
    code, out, _ = _main(capsys, path, "-Y", "http2.type == 1", "-c", "12", "-V")
    assert code == 0
    assert "Frame 10: " in out and "    ip.src: 127.0.0.1" in out and "    http2.type: 1" in out
    code, _, err = _main(capsys, path, "-V", "--report", "flows")
    assert code == 2 and "-V and -x go with the packets text report" in err


def test_z_spellings_map_onto_the_reports(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(GRPC_DEMO)
    pairs = [
        (["-z", "io,phs"], ["--report", "hierarchy"]),
        (["-z", "endpoints,tcp"], ["--report", "endpoints", "--layer", "tcp"]),
        (["-z", "conv,ip"], ["--report", "conversations", "--layer", "ip"]),
        (
            ["-z", "io,stat,0.05,tcp.len > 0,http2"],
            ["--report", "io", "--interval", "0.05", "--io-filter", "tcp.len > 0", "--io-filter", "http2"],
        ),
        (["-z", "follow,tcp,hex,0"], ["--report", "follow", "--flow", "0", "--follow-mode", "hex"]),
        (["-z", "follow,http2,ascii,0,1"], ["--report", "follow", "--flow", "0", "--stream", "1"]),
        (["-z", "grpc,methods"], ["--report", "methods"]),
    ]
    for z, report in pairs:
        outs = []
        for args in (z, report):
            code, out, err = _main(capsys, path, *args, "--format", "json")
            assert code == 0, (args, err)
            outs.append(json.loads(out))
        assert outs[0] == outs[1] and outs[0], z
    code, out, _ = _main(capsys, path, "-z", "follow,tcp,raw,0")
    theirs = tshark("-r", path, "-q", "-z", "follow,tcp,raw,0")
    assert out.strip().splitlines() == [line for line in theirs.strip().splitlines() if line]
    for bad in ("io,nope", "follow,tcp,ebcdic,0", "follow,udp,raw,0", "io,stat,x"):
        code, _, err = _main(capsys, path, "-z", bad)
        assert code == 2 and err.startswith("protoscope: "), (bad, err)


def test_follow_report_forms(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(GRPC_DEMO)
    code, out, _ = _main(capsys, path, "--report", "follow", "--call", "0", "--format", "jsonl")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and rows[0]["label"].startswith("HEADERS[1]: POST /demo.Directory/Get")
    assert [r["label"] for r in rows if r["label"].startswith("re")] == [
        "request 1 (7 bytes)",
        "response 1 (127 bytes)",
    ]
    code, out, _ = _main(capsys, path, "--report", "follow", "--flow", "0", "--stream", "1")
    assert code == 0 and "Follow: HTTP/2 stream 1 of flow 0, ascii" in out and "\tHEADERS[1]: 200" in out
    for args, why in (
        (["--flow", "9"], "no flow 9"),
        (["--call", "99"], "no call 99"),
        (["--flow", "0", "--stream", "99"], "no HTTP/2 stream 99"),
        (["--flow", "0", "-Y", "tcp"], "-Y does not apply to --report follow"),
    ):
        code, _, err = _main(capsys, path, "--report", "follow", *args)
        assert code == 2 and why in err, (args, err)
    code, _, err = _main(capsys, path, "--report", "flows", "--stream", "1")
    assert code == 2 and "--stream goes with --report follow" in err


def test_filter_means_something_or_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(GRPC_DEMO)
    code, out, _ = _main(capsys, path, "--report", "calls", "-Y", "frame.number == 10", "--format", "json")
    calls = json.loads(out)
    assert code == 0 and len(calls) == 1 and calls[0]["requests"][0]["frame"] == 10
    code, out, _ = _main(capsys, path, "--report", "flows", "-Y", "tcp.port == 47051", "--format", "json")
    assert code == 0 and [f["id"] for f in json.loads(out)] == [0]
    code, out, _ = _main(capsys, path, "-z", "io,phs", "-Y", "http2", "--format", "json")
    assert code == 0 and json.loads(out)[0]["frames"] == 71
    # A call whose trailers (grpc-status) match: the frame is its HTTP/2 stream's, not a message's.
    code, out, _ = _main(capsys, path, "--report", "calls", "-Y", "grpc.status != 0", "--format", "json")
    assert code == 0 and [(c["stream_id"], c["status_name"]) for c in json.loads(out)] == [
        (3, "NOT_FOUND"),
        (39, "DEADLINE_EXCEEDED"),
    ]
    for args in (["--report", "summary"], ["--report", "follow"], ["--export", "mermaid", "--flow", "0"]):
        code, _, err = _main(capsys, path, *args, "-Y", "tcp")
        assert code == 2 and "-Y does not apply" in err, (args, err)


def test_filter_keeps_streams_and_sessions_with_a_matching_packet(capsys: pytest.CaptureFixture[str]) -> None:
    """RTP streams and WebRTC sessions stand for whole flows: under -Y the rows one of whose flows
    has a matching packet (the TURN sample: the client's allocation on port 55203)."""
    path = str(GRPC_DEMO.parent / "webrtc-turn.pcap")
    code, out, _ = _main(capsys, path, "--report", "streams", "-Y", "udp.port == 55203", "--format", "json")
    ends = sorted((s["src"], s["dst"]) for s in json.loads(out))
    assert code == 0 and ends == [
        ("127.0.0.1:3478", "127.0.0.1:55203"),
        ("127.0.0.1:55203", "127.0.0.1:3478"),
    ]
    code, out, _ = _main(capsys, path, "--report", "sessions", "-Y", "udp.port == 55203", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and rows and len(rows) < 4
    code, out, _ = _main(capsys, path, "--report", "streams", "-Y", "udp.port == 1", "--format", "json")
    assert code == 0 and json.loads(out) == []


def test_interfaces_fields_and_turn_auth(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _main(capsys, "-D")  # as tcpdump -D lists them, with their addresses
    assert code == 0 and re.search(r"^1\.\S+ ", out, re.MULTILINE)
    assert re.search(r"^\d+\.lo \[.*Loopback.*\] 127\.0\.0\.1", out, re.MULTILINE)
    code, out, _ = _main(capsys, "--list-fields")
    lines = out.splitlines()
    assert code == 0 and any(line.startswith("ip.src\t") for line in lines)
    code, _, err = _main(capsys, str(GRPC_DEMO), "--turn-auth", "nopassword", "--report", "summary")
    assert code == 2 and "USER:PASS[@REALM]" in err
    code, _, _ = _main(capsys, str(GRPC_DEMO), "--turn-auth", "u@example.org:p@ss@realm", "--report", "flows")
    assert code == 0


def test_interface_alone_means_live() -> None:
    from protoscope.inspector.cli import _check, parser

    args = parser().parse_args(["-i", "eth0", "--report", "summary"])
    _check(args)
    assert args.live


def test_describe_lists_and_describes_the_loaded_schemas(capsys: pytest.CaptureFixture[str]) -> None:
    protos = str(GRPC_DEMO.parent / "grpc")
    code, out, _ = _main(capsys, "describe", "--proto-path", protos)
    assert code == 0 and out.splitlines() == ["demo.Directory"]
    code, out, _ = _main(capsys, "--describe", "demo.Directory", "--proto-path", protos)
    assert code == 0 and "  rpc Get ( .demo.Query ) returns ( .demo.Person );" in out.splitlines()
    code, _, err = _main(capsys, "describe", "nope.X", "--proto-path", protos)
    assert code == 2 and "symbol not found: nope.X" in err
    code, _, err = _main(capsys, "describe")
    assert code == 2 and "--describe needs schemas" in err


def test_viewer_gets_the_first_packets_and_the_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from protoscope.captures.index import load
    from protoscope.inspector import cli
    from protoscope.inspector.tui import app

    seen: dict[str, object] = {}

    def viewer(path: str, registry: object, live: object = None, display_filter: str | None = None) -> None:
        index = load(path)  # -c: a copy of the first packets, gone once the viewer closes
        seen.update(packets=len(index), filter=display_filter, path=path)
        index.close()

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(app, "run", viewer)
    monkeypatch.setattr(sys, "stdin", Terminal())
    args = cli.parser().parse_args([str(GRPC_DEMO), "-c", "7", "-Y", "tcp.len > 0"])
    cli._check(args)
    assert cli.run(args, Terminal()) == 0
    assert seen["packets"] == 7 and seen["filter"] == "tcp.len > 0"
    assert not Path(str(seen["path"])).exists()


def test_bad_statistics_arguments_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(GRPC_DEMO)
    for args, why in (
        (["--report", "io", "--interval", "0"], "positive number of seconds"),
        (["-z", "io,stat,1,foo == 1"], "unknown field 'foo'"),
        (["-c", "-5"], "-c must be a positive"),
        (["-z", "io,phs", "--report", "flows"], "--report or -z"),
    ):
        code, _, err = _main(capsys, path, *args)
        assert code == 2 and why in err and err.count("\n") == 1, (args, err)


@pytest.mark.parametrize(
    ("capture", "transport", "number"),
    [
        ("ndpi--teams.pcap", "tcp", 0),
        ("ndpi--teams.pcap", "tcp", 2),
        ("ndpi--teams.pcap", "tcp", 5),
        ("ndpi--teams.pcap", "udp", 1),
        ("packt--grpc-go_Unary.pcapng", "tcp", 0),  # starts mid-connection with the server's packet
        ("suricata-verify--http2-keywords.pcap", "tcp", 0),
        ("arkime--http2-nghttp2.pcap", "tcp", 0),
    ],
)
@pytest.mark.parametrize("mode", ["ascii", "hex", "raw"])
def test_z_follow_is_tsharks_byte_for_byte(
    capsys: pytest.CaptureFixture[str], capture: str, transport: str, number: int, mode: str
) -> None:
    """-z follow,tcp|udp,MODE,N prints what tshark prints: N is tshark's stream number (flow ids
    count UDP and TCP together: ndpi--teams alternates them), Node 0 the first packet's sender,
    ASCII with each segment's length, the hex dump's line ends as tshark 4.0 writes them."""
    path = str(public_capture(capture))
    code, out, _ = _main(capsys, path, "-z", f"follow,{transport},{mode},{number}")
    assert code == 0
    # tshark() reads its output as text (universal newlines: CR LF and CR become LF): ours too.
    assert out.replace("\r\n", "\n").replace("\r", "\n") == tshark(
        "-r", path, "-q", "-z", f"follow,{transport},{mode},{number}"
    )


@pytest.mark.parametrize(
    "capture",
    [
        "zeek--dtls1_2.pcap",
        "wswiki--http2-h2c.pcap",
        "zeek--webrtc-stun.pcap",
        "packt--grpc-go_Bidi_Streaming.pcapng",
    ],
)
def test_t_fields_prints_values_as_tshark(capsys: pytest.CaptureFixture[str], capture: str) -> None:
    """-T fields: hex fields in hex at the field's width (ip.id 0x1810, stun.type 0x0101, tcp.flags
    0x0018), booleans 1/0, repeated values in the tree's order joined with commas, both ports of
    tcp.port; on captures both decode alike, byte for byte tshark's."""
    path = str(public_capture(capture))
    names = ["frame.number", "ip.id", "ip.dsfield", "udp.checksum", "eth.type", "tcp.flags", "stun.type"]
    names += ["stun.att.type", "dtls.record.version", "tcp.port", "ip.flags.df", "ip.src"]
    args = ["-T", "fields", *(x for name in names for x in ("-e", name))]
    code, out, _ = _main(capsys, "-r", path, *args)
    assert code == 0 and out == tshark("-r", path, *args)
