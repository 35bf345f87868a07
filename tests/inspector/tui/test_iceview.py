"""The NAT/ICE panel's text and colours, and the Sessions tab's one line for a relayed call."""

from __future__ import annotations

from protoscope.inspector.tui.iceview import styled
from protoscope.inspector.tui.views import session_line
from tests.inspector.report.ice_rows import relayed_session


def test_a_relayed_sessions_line_names_its_pair_types_and_media_by_party() -> None:
    line = session_line(relayed_session())
    assert line.startswith("session 0: OK · relayed: B behind a symmetric NAT, direct pairs failed · ")
    assert "pair relay 198.51.100.2:49152 ↔ relay 198.51.100.2:49153" in line
    assert "media A→B 200, B→A 190 packets" in line and line.endswith("I: NAT/ICE")


def test_an_old_sessions_line_is_unchanged_but_for_the_key() -> None:
    row = {
        "id": 0,
        "nominated_pair": {"local": "a:1", "remote": "b:2"},
        "dtls": {"state": "done"},
        "media": [{"from_client": True, "packets": 5}, {"from_client": False, "packets": 7}],
    }
    line = session_line(row)
    assert line == "session 0: OK · pair a:1 ↔ b:2 · DTLS done · media → 5 ← 7 packets · I: NAT/ICE"


def test_styles_mark_failures_the_selected_pair_and_titles_only() -> None:
    text = styled("Session 0: relayed\n│ failed │ succeeded\nNAT behind B: symmetric\nsymmetric-ish \x1b")
    spans = {(text.plain[s.start : s.end], str(s.style)) for s in text.spans}
    assert ("failed", "bold red") in spans and ("succeeded", "green") in spans
    assert ("Session 0: relayed", "bold") in spans and ("NAT behind B: symmetric", "bold") in spans
    assert text.plain.endswith("\x1b")  # no markup parsed: text stays as given (escaped before)
