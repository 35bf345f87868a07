"""Plugins are guests (issue 12): what a third-party decoder or analysis does wrong (a bad result,
an exception of any kind, a hang, an in-tree name) becomes a finding or one stderr line naming it,
the run ends 0 (or 2 for a plugin file that cannot be imported), and our decoders decode the rest
of the capture exactly as without the plugin. The plugins are in tests/inspector/plugins/."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from scapy.utils import rdpcap

from protoscope.decoders import registry
from protoscope.decoders.registry import load_registry
from protoscope.inspector import session as session_module
from protoscope.inspector.cli import main
from protoscope.inspector.report import rows
from protoscope.inspector.session import MAX_TIMEOUTS, STREAM_WINDOW, Session
from tests import hostile, pcapgen
from tests.conftest import ROOT

PLUGINS = Path(__file__).parent / "plugins"
MISBEHAVE = str(PLUGINS / "misbehave.py")
SAMPLE = ROOT / "captures" / "samples" / "webrtc-direct.pcap"
"""In-tree traffic (STUN, DTLS, RTP) the plugins must not change."""


HANG_BUDGET = 0.5
"""The budget of the tests where a plugin hangs: small enough for a hang to be quick, large enough
for the calls that do not hang on a busy machine (no test asserts a time)."""


@pytest.fixture(autouse=True)
def hang_budget(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(registry, "CALL_BUDGET", HANG_BUDGET)
    monkeypatch.setattr(registry, "LONG_BUDGET", HANG_BUDGET)
    monkeypatch.setattr(registry, "GUARD_TICK", 0.02)
    monkeypatch.delenv("PROTOSCOPE_MISBEHAVE", raising=False)
    monkeypatch.delenv("PROTOSCOPE_BADREPORT", raising=False)
    yield
    registry.stop_guard()


def capture(tmp_path: Path, *flows: list[bytes]) -> tuple[Path, int]:
    """One UDP flow to port 9999 per list of payloads (in order), then the sample's packets; and
    how many packets come before the sample's."""
    packets = [p for k, payloads in enumerate(flows) for p in pcapgen.udp_packets(payloads, 41000 + k, 9999)]
    path = pcapgen.write(tmp_path / "guest.pcap", packets + list(rdpcap(str(SAMPLE))))
    return path, len(packets)


def packets(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, object]], str]:
    code = main([*argv, "--report", "packets", "--format", "jsonl"])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def assert_in_tree_unchanged(
    capsys: pytest.CaptureFixture[str], cap: Path, guests: int, got: list[dict[str, object]]
) -> None:
    """The packets after the guest's decode as they do without the plugin (and there are some)."""
    code, bare, _ = packets(capsys, str(cap))
    assert code == 0
    assert got[guests:] == bare[guests:]
    assert any(p["pdus"] for p in bare[guests:])


def codes(packet: dict[str, object]) -> list[str]:
    return [f["code"] for f in packet["findings"]]  # type: ignore[attr-defined,index]


# -- results -------------------------------------------------------------------------------------


def _size(what: str) -> int:
    return len(f"PS:{what}")


BAD = [
    ("not_result", "a NoneType, not a DecodeResult"),
    ("pdu_str", "pdus[0] is a str, not a Pdu"),
    ("finding_str", "findings[0] is a str, not a Finding"),
    ("inner_str", "inner[0] is a str, not an InnerPayload"),
    ("consumed_str", "consumed is a str, not an int"),
    ("need_float", "need is a float, not an int"),
    (
        "consumed_big",
        f"consumed is {_size('consumed_big') + 1}: it must be within 0..{_size('consumed_big')}",
    ),
    ("span_out", f"pdus[0].span[1] is {_size('span_out') + 100}: it must be within 0..{_size('span_out')}"),
    ("severity_bad", "findings[0] has severity 'fatal', not one of note, warn, error"),
    ("field_cycle", "pdus[0].fields[0].value nests deeper than 16"),
    ("inner_offset", f"inner[0].offset is {_size('inner_offset') + 1}"),
    ("expect_port", "pdus[0].expect[0].port is 70000: it must be within 0..65535"),
]


@pytest.mark.parametrize(("what", "problem"), BAD)
def test_a_bad_result_is_a_finding_and_the_decoder_is_dropped_for_the_flow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str, problem: str
) -> None:
    cap, guests = capture(tmp_path, [b"PS:ok", b"PS:" + what.encode(), b"PS:ok"])
    code, got, err = packets(capsys, str(cap), "--plugin", MISBEHAVE)
    assert code == 0 and err == ""
    assert [len(p["pdus"]) for p in got[:guests]] == [1, 0, 0]  # type: ignore[arg-type]
    assert codes(got[1]) == ["decoder.bad_result"] and codes(got[2]) == []
    message = got[1]["findings"][0]["message"]  # type: ignore[index]
    assert message.startswith("decoder misbehave returned a bad result: ") and problem in message
    assert "not called again on this flow" in message
    assert_in_tree_unchanged(capsys, cap, guests, got)


def test_a_lazy_detail_tree_that_raises_is_built_at_the_boundary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cap, guests = capture(tmp_path, [b"PS:lazy_raises", b"PS:ok"])
    code, got, _ = packets(capsys, str(cap), "--plugin", MISBEHAVE)
    assert code == 0
    assert codes(got[0]) == ["misbehave.exception"] and "ZeroDivisionError" in str(got[0]["findings"])
    assert [len(p["pdus"]) for p in got[:guests]] == [0, 1]  # type: ignore[arg-type]


# -- exceptions of every kind, in every hook ---------------------------------------------------


@pytest.mark.parametrize(
    ("what", "raised"),
    [
        ("raise", "ValueError: misbehaving on purpose"),
        ("exit", "SystemExit: 3"),
        ("interrupt", "KeyboardInterrupt"),
    ],
)
def test_what_decode_raises_is_a_finding_on_its_packet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str, raised: str
) -> None:
    cap, guests = capture(tmp_path, [b"PS:" + what.encode(), b"PS:ok"])
    code, got, err = packets(capsys, str(cap), "--plugin", MISBEHAVE)
    assert code == 0 and err == ""
    assert got[0]["findings"] == [
        {
            "frame": 1,
            "severity": "error",
            "code": "misbehave.exception",
            "message": f"decoder misbehave raised {raised}",
        }
    ]
    assert len(got[1]["pdus"]) == 1  # type: ignore[arg-type]  # as ever, a datagram flow goes on
    assert_in_tree_unchanged(capsys, cap, guests, got)


@pytest.mark.parametrize(
    ("what", "code", "detail"),
    [
        ("raise", "decoder.sniff_exception", "raised ValueError"),
        ("exit", "decoder.sniff_exception", "raised SystemExit: 3"),
        ("interrupt", "decoder.sniff_exception", "raised KeyboardInterrupt"),
        ("loop", "decoder.timeout", "took longer than"),
        ("sleep", "decoder.timeout", "took longer than"),
    ],
)
def test_a_sniff_that_fails_leaves_the_flow_to_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str, code: str, detail: str
) -> None:
    cap, guests = capture(tmp_path, [b"PS:sniff_" + what.encode(), b"PS:ok"])
    status, got, _ = packets(capsys, str(cap), "--plugin", MISBEHAVE)
    assert status == 0
    assert codes(got[0]) == [code]
    message = got[0]["findings"][0]["message"]  # type: ignore[index]
    assert message.startswith(f"decoder misbehave {detail}") and " in sniff: " in message
    assert got[1]["pdus"] == [] and got[1]["findings"] == []
    assert_in_tree_unchanged(capsys, cap, guests, got)


@pytest.mark.parametrize(
    ("what", "code"),
    [
        ("raise", "misbehave.exception"),
        ("exit", "misbehave.exception"),
        ("interrupt", "misbehave.exception"),
        ("loop", "decoder.timeout"),
    ],
)
def test_a_new_state_that_fails_drops_the_decoder_for_the_flow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, what: str, code: str
) -> None:
    cap, guests = capture(tmp_path, [b"PS:ok", b"PS:ok"])
    monkeypatch.setenv("PROTOSCOPE_MISBEHAVE", f"new_state:{what}")
    status, got, _ = packets(capsys, str(cap), "--plugin", MISBEHAVE)
    assert status == 0
    assert codes(got[0]) == [code] and " in new_state: " in got[0]["findings"][0]["message"]  # type: ignore[index]
    assert got[0]["pdus"] == [] and got[1]["pdus"] == [] and got[1]["findings"] == []
    assert_in_tree_unchanged(capsys, cap, guests, got)


# -- hangs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("what", ["loop", "sleep"])
def test_a_decode_that_hangs_times_out_and_the_run_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str
) -> None:
    cap, guests = capture(tmp_path, [b"PS:ok", b"PS:" + what.encode(), b"PS:ok"], [b"PS:ok"])
    code, got, err = packets(capsys, str(cap), "--plugin", MISBEHAVE)
    assert code == 0 and err == ""
    assert codes(got[1]) == ["decoder.timeout"]
    message = got[1]["findings"][0]["message"]  # type: ignore[index]
    took = f"decoder misbehave took longer than {HANG_BUDGET} s in decode"
    assert message == f"{took}: it is not called again on this flow"
    assert [len(p["pdus"]) for p in got[:guests]] == [1, 0, 0, 1]  # type: ignore[arg-type]
    assert_in_tree_unchanged(capsys, cap, guests, got)


def test_a_decoder_that_hangs_on_every_flow_is_dropped_for_the_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cap, guests = capture(tmp_path, *([b"PS:loop"] for _ in range(MAX_TIMEOUTS + 2)))
    code, got, _ = packets(capsys, str(cap), "--plugin", MISBEHAVE)
    assert code == 0
    assert [codes(p) for p in got[:guests]] == [["decoder.timeout"]] * MAX_TIMEOUTS + [[], []]
    assert "not called again in this pass" in got[MAX_TIMEOUTS - 1]["findings"][0]["message"]  # type: ignore[index]
    assert_in_tree_unchanged(capsys, cap, guests, got)


def test_a_hang_in_a_worker_thread_times_out_too(tmp_path: Path) -> None:
    """The viewer decodes in thread workers, where no signal arrives: a watchdog thread stops it."""
    cap, guests = capture(tmp_path, [b"PS:loop", b"PS:ok"], [b"PS:ok"])
    session = Session.open(cap, load_registry([MISBEHAVE]))
    found: list[list[str]] = []
    worker = threading.Thread(
        target=lambda: found.extend([f.code for f in pd.findings] for pd in session.decode())
    )
    worker.start()
    worker.join(60)
    session.close()
    assert not worker.is_alive()
    assert found[:guests] == [["decoder.timeout"], [], []]


def test_the_viewers_decoding_pass_survives_a_hanging_decoder_and_analysis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The viewer's pass (CaptureModel.decode_all, in a thread worker): a decoder and an analysis
    that hang are stopped there too, and the pass completes with their findings."""
    from protoscope.inspector.model import CaptureModel
    from tests.inspector.plugins.badreport import BadReport

    cap, guests = capture(tmp_path, [b"PS:ok", b"PS:loop"])
    monkeypatch.setenv("PROTOSCOPE_BADREPORT", "feed:loop")
    reg = load_registry([MISBEHAVE])
    reg.analyses["badreport"] = BadReport
    model = CaptureModel(Session.open(cap, reg))
    worker = threading.Thread(target=model.decode_all)
    worker.start()
    worker.join(60)
    model.session.close()
    assert not worker.is_alive() and model.decoded.complete
    found = {(f.index, f.finding.code) for f in model.decoded.findings}
    assert {(0, "analysis.timeout"), (1, "decoder.timeout")} <= found
    assert any(model.decoded.protocol.get(i) for i in range(guests, len(model)))  # and the sample


def test_the_users_ctrl_c_still_stops_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A SIGINT that arrives while a plugin runs is the user's: the run stops (130), where a
    KeyboardInterrupt the plugin raises itself is contained (above)."""
    cap, _ = capture(tmp_path, [b"PS:ctrl_c"])
    assert main([str(cap), "--plugin", MISBEHAVE, "--report", "summary"]) == 130


# -- import --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("what", "says"),
    [
        ("loop", f"it took longer than {HANG_BUDGET} s"),
        ("exit", "SystemExit: 3"),
        ("interrupt", "KeyboardInterrupt"),
    ],
)
def test_a_plugin_file_whose_import_fails_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, what: str, says: str
) -> None:
    cap, _ = capture(tmp_path, [b"PS:ok"])
    monkeypatch.setenv("PROTOSCOPE_MISBEHAVE", f"import:{what}")
    assert main([str(cap), "--plugin", MISBEHAVE, "--report", "summary"]) == 2
    err = capsys.readouterr().err
    assert err == f"protoscope: plugin {MISBEHAVE} failed to import: {says}\n"


def _installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group: str, line: str, module: str = ""
) -> None:
    """A distribution on sys.path with one entry point (and a module of its own, if given)."""
    site = tmp_path / "site"
    info = site / "guest_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "entry_points.txt").write_text(f"[{group}]\n{line}\n")
    if module:
        (site / "guest_plugin_module.py").write_text(module)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "guest_plugin_module", raising=False)


@pytest.mark.parametrize("what", ["loop", "exit", "interrupt"])
def test_an_installed_plugin_whose_import_fails_is_skipped_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    cap, _ = capture(tmp_path, [b"PS:ok"])
    code, bare, _ = packets(capsys, str(cap))
    module = f"from tests.inspector.plugins.misbehave import act, Misbehave\nact({what!r})\n"
    _installed(tmp_path, monkeypatch, "protoscope.decoders", "guest = guest_plugin_module:Misbehave", module)
    code, got, err = packets(capsys, str(cap))
    assert code == 0 and got == bare
    assert err.count("\n") == 1 and err.startswith(
        "protoscope: warning: decoder guest (guest_plugin_module:Misbehave) not loaded: "
    )


@pytest.mark.parametrize("what", ["raise", "exit", "loop"])
def test_a_plugin_whose_configure_fails_is_dropped_with_one_line(
    monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    reg = load_registry([MISBEHAVE])
    monkeypatch.setenv("PROTOSCOPE_MISBEHAVE", f"configure:{what}")
    reg.configure({})
    assert "misbehave" not in reg.decoders and "misbehave" not in reg.guests
    assert len(reg.load_errors) == 1
    assert reg.load_errors[0].startswith(f"decoder misbehave (plugin {MISBEHAVE}) dropped: configure ")


# -- names ---------------------------------------------------------------------------------------


def test_a_plugin_may_not_take_an_in_tree_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clash = str(PLUGINS / "clash.py")
    cap, _ = capture(tmp_path, [b"PS:ok"])
    code, got, err = packets(capsys, str(cap), "--plugin", clash)
    assert code == 0
    assert err == (
        f"protoscope: warning: decoder stun from plugin {clash} not loaded: the in-tree decoder stun "
        "(protoscope.decoders.stun:StunDecoder) has that name (--plugin-override replaces it)\n"
    )
    assert_in_tree_unchanged(capsys, cap, 0, got)
    replaced = load_registry([clash], plugin_override=True)
    assert type(replaced.decoders["stun"]).__name__ == "NotStun" and "stun" in replaced.guests
    assert replaced.load_errors == []


def test_plugin_override_lets_a_plugin_replace_ours(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if "--plugin-override" not in main.__globals__["parser"]().format_help():
        pytest.skip("the CLI has no --plugin-override yet")
    cap, _ = capture(tmp_path, [b"PS:ok"])
    code, got, err = packets(capsys, str(cap), "--plugin", str(PLUGINS / "clash.py"), "--plugin-override")
    assert code == 0 and err == ""
    assert {p["summary"] for row in got for p in row["pdus"] if p["protocol"] == "stun"} == {
        "not STUN at all"
    }  # type: ignore[attr-defined,index]


def test_an_installed_plugin_may_not_take_an_in_tree_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _installed(tmp_path, monkeypatch, "protoscope.decoders", "stun = tests.inspector.plugins.clash:NotStun")
    reg = load_registry()
    assert reg.decoders["stun"].__module__.startswith("protoscope.") and not reg.guests
    assert reg.load_errors == [
        "decoder stun from tests.inspector.plugins.clash:NotStun not loaded: the in-tree decoder stun "
        "(protoscope.decoders.stun:StunDecoder) has that name (--plugin-override replaces it)"
    ]


def test_an_installed_analysis_may_not_take_an_in_tree_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _installed(
        tmp_path, monkeypatch, "protoscope.analyses", "calls = tests.inspector.plugins.badreport:BadReport"
    )
    reg = load_registry()
    assert reg.analyses["calls"].__module__.startswith("protoscope.")
    assert len(reg.load_errors) == 1 and "the in-tree analysis calls has that name" in reg.load_errors[0]
    assert load_registry(plugin_override=True).analyses["calls"].__name__ == "BadReport"


# -- analyses ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "code", "frame"),
    [
        ("start:raise", "analysis.exception", None),
        ("feed:loop", "analysis.timeout", 1),
        ("feed:exit", "analysis.exception", 1),
        ("feed:interrupt", "analysis.exception", 1),
        ("rows:exit", "analysis.exception", None),
        ("rows:loop", "analysis.timeout", None),
        ("rows:bad", "analysis.bad_result", None),
    ],
)
def test_an_analysis_that_fails_leaves_one_finding_and_the_others_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, code: str, frame: int | None
) -> None:
    from tests.inspector.plugins.badreport import BadReport

    cap, _ = capture(tmp_path, [b"PS:ok"])

    def findings() -> list[dict[str, object]]:
        reg = load_registry([MISBEHAVE])
        reg.analyses["badreport"] = BadReport
        session = Session.open(cap, reg)
        try:
            return list(rows.finding_rows(session))
        finally:
            session.close()

    bare = findings()
    assert [f for f in bare if f.get("analysis") == "badreport"] == []
    monkeypatch.setenv("PROTOSCOPE_BADREPORT", how)
    got = findings()
    ours = [f for f in got if f.get("analysis") == "badreport"]
    assert [(f["code"], f["frame"], f["severity"]) for f in ours] == [(code, frame, "error")]
    assert str(ours[0]["message"]).startswith("analysis badreport ")
    assert [f for f in got if f.get("analysis") != "badreport"] == bare


# -- stream decoders: the work per byte is constant ----------------------------------------------


def test_a_decoder_of_one_message_a_call_gets_a_window_not_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,000 messages held behind a hole and released at once: each call after the first gets
    a window, not a copy of everything left; the PDUs are what the whole buffer gave."""
    monkeypatch.setattr(registry, "CALL_BUDGET", 60.0)  # nothing hangs here
    size, count = 100, 1000
    data = ((size - 2).to_bytes(2, "big") + bytes(size - 2)) * count
    path = tmp_path / "onebyone.pcap"
    with hostile.Pcap(path) as pcap:
        tcp = hostile.Tcp(pcap, 40777, 7777)
        late = tcp.hole(True, data[: hostile.MSS])
        tcp.send(True, data[hostile.MSS :])
        late()
    reg = load_registry([str(PLUGINS / "onebyone.py")], use_plugins=False)
    calls = sys.modules["protoscope_plugin_onebyone"].CALLS
    calls.clear()
    session = Session.open(path, reg)
    passed = list(session.decode())
    assert [f for pd in passed for f in pd.findings] == []
    decoded = [(pd.index, pd.bases[k], p.span) for pd in passed for k, p in enumerate(pd.pdus)]
    session.close()
    assert [(base, span) for _, base, span in decoded] == [(k * size, (0, size)) for k in range(count)]
    assert len({i for i, _, _ in decoded}) == 1  # all released by one packet
    assert calls[0] == len(data) and max(calls[1:]) <= STREAM_WINDOW


def test_guest_calls_are_not_guarded_for_in_tree_decoders(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our decoders' calls go straight to them: a run without plugins never starts the guard."""

    def refuse(*args: object) -> object:
        raise AssertionError("an in-tree call was guarded")

    monkeypatch.setattr(session_module, "call_guest", refuse)
    session = Session.open(SAMPLE, load_registry(use_plugins=False))
    try:
        assert sum(len(pd.pdus) for pd in session.decode()) > 0
    finally:
        session.close()
