"""A WebRTC session as a block of text: summary, candidates per party, pairs, NAT verdicts, paths,
media; readable at 80 columns (wrapped, never cut), whole when piped, never raising on odd rows."""

from __future__ import annotations

import copy
import io
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len

from protoscope.inspector.report.cells import Cells
from protoscope.inspector.report.sessionblock import (
    MAX_TABLE_ROWS,
    Lines,
    candidate_tables,
    nat_type_line,
    pair_table,
    priority_parts,
    session_block,
    session_title,
)
from protoscope.inspector.report.text import session_text, write_tables
from tests.inspector.report.ice_rows import B_PRFLX, B_RELAY, T0, relayed_session, turn_allocation
from tests.inspector.report.test_text import column


def render(rows: list[dict[str, Any]], width: int | None) -> str:
    out = io.StringIO()
    write_tables("sessions", rows, T0, out, width)
    return out.getvalue()


def flat(text: str) -> str:
    """The text without table rules and the spaces wrapping adds: what a reader sees, in order."""
    return "".join(ch for ch in text if ch not in "│┃ \n")


def test_the_block_reads_as_webrtc_internals_at_80_columns() -> None:
    text = render([relayed_session(), turn_allocation()], 80)
    lines = text.splitlines()
    assert all(cell_len(line) <= 80 for line in lines), max(lines, key=cell_len)
    assert lines[0] == "Session 0: relayed: B behind a symmetric NAT, direct pairs failed"
    seen = flat(text)
    # the selected pair with its candidate types, and why a relay was needed
    assert "selectedpair:Arelay198.51.100.2:49152↔Brelay198.51.100.2:49153(frame88)" in seen
    assert "whyrelayed:peerBisbehindasymmetricNAT:srflxport40001towardtheSTUNserver" in seen
    # candidates per party by type, the priority decoded, where each was learnt
    titles = [line for line in lines if line.startswith("Candidates of")]
    assert titles == ["Candidates of A (3)", "Candidates of B (4)"]
    assert "prflx203.0.113.20:40017" in seen and "check#41" in seen
    assert "stun#12" in seen and "turn#16" in seen and "126/32542/1" in seen
    # the pair table: selected first, states, failures, checks each way
    pairs = text[text.index("Candidate pairs (4)") : text.index("NAT behind A")]
    assert pairs.index("succeeded") < pairs.index("in-progress") < pairs.index("failed")
    states = [cell.replace(" ", "") for cell in column(pairs, "state")]
    assert states == [
        "succeededselectedthen402pkts,81604B",
        "in-progress",
        "failednoresponseto12checks",
        "failedICMPportunreachablefrom203.0.113.20",
    ]
    assert column(pairs, "checks")[2].replace(" ", "") == "sent12,answered0recv0,answered0"
    # NAT verdicts in both vocabularies, with evidence
    assert "NAT behind B: symmetric" in lines and "NAT behind A: port-restricted cone" in lines
    assert "symmetric(address-and-port-dependentmapping" in seen
    assert "port-restrictedcone(endpoint-independentmapping,address-and-port-dependentfiltering)" in seen
    assert "srflxport40001towardtheSTUNserver198.51.100.1:3478,40017towardpeerA" in seen
    # paths, media by party, and the rest of the row
    assert "A→TURNchanneldata" in seen and "0x7f09553eA→B" in seen
    assert "Session 0: more" in text and "TURN allocations (1)" in text


def test_piped_every_line_is_whole() -> None:
    text = render([relayed_session()], None)
    assert (
        "  why relayed: peer B is behind a symmetric NAT: srflx port 40001 toward the STUN server, "
        "40017 toward peer A; direct pairs failed\n"
    ) in text
    assert "│ A relay 198.51.100.2:49152 │" in text


def test_json_rows_are_not_changed() -> None:
    row = relayed_session()
    before = json.dumps(row, sort_keys=True)
    render([row], 80)
    assert json.dumps(row, sort_keys=True) == before


def test_title_says_where_a_session_failed() -> None:
    row = relayed_session()
    row["failed_phase"] = "ice"
    row["diagnosis"]["summary"] = "no pair succeeded: every check unanswered"
    assert session_title(row) == "Session 0: FAILED in ice, no pair succeeded: every check unanswered"
    assert session_title({"id": 3}) == "Session 3: OK"


def test_priority_is_decoded_into_its_parts() -> None:
    assert priority_parts({"priority": 2130706431}) == "126/65535/1"
    assert priority_parts({"priority": (100 << 24) | (65535 << 8) | (256 - 2)}) == "100/65535/2"
    assert priority_parts({"priority": "x"}) == ""


def test_nat_type_names_both_vocabularies() -> None:
    assert (
        nat_type_line({"nat_type": "full cone"}) == "full cone (endpoint-independent mapping and filtering)"
    )
    assert (
        nat_type_line(
            {"nat_type": "symmetric", "mapping": "address-and-port-dependent", "filtering": "unknown"}
        )
        == "symmetric (address-and-port-dependent mapping, filtering not seen)"
    )
    assert nat_type_line({}) == "unknown"


def test_an_old_row_without_the_new_keys_still_makes_a_block() -> None:
    row = {
        "id": 0,
        "failed_phase": None,
        "nominated_pair": {"local": "127.0.0.1:58318", "remote": "127.0.0.1:3478"},
        "candidate_pairs": [
            {"local": "127.0.0.1:58318", "remote": "127.0.0.1:3478", "requests": 3, "responses": 2,
             "state": "succeeded", "nominated": True, "rtt_ms": [0.134, 502.12]},
        ],
        "media": [{"ssrc": 1, "from_client": True, "packets": 50, "payload_type": 96}],
    }  # fmt: skip
    text = render([row], 80)
    assert "nominated pair: 127.0.0.1:58318 ↔ 127.0.0.1:3478" in text
    assert "RTT 0.134–502.120 ms" in text and "c → s" in text


def test_capture_text_is_escaped() -> None:
    row = relayed_session()
    row["candidates"][0]["address"] = "\x1b]0;owned\x07.local"
    row["candidate_pairs"][1]["failure"] = "487 Role Conflict\u202e"
    row["parties"][0]["ufrag"] = "x\ny"
    text = render([row], 80)
    assert "\x1b" not in text and "\u202e" not in text and "\\x1b]0;owned\\a.local" in flat(text)
    assert "ufrag x\\ny" in text


def test_many_candidates_are_capped_and_counted() -> None:
    row = relayed_session()
    row["candidates"] = [dict(row["candidates"][0], port=n) for n in range(MAX_TABLE_ROWS + 10)]
    (table,) = candidate_tables(row)
    assert len(table.cells) == MAX_TABLE_ROWS and "the first 64 shown" in table.title


def test_the_panel_text_is_the_report_block() -> None:
    text = session_text(relayed_session(), T0, 74)
    assert all(cell_len(line) <= 74 for line in text.splitlines())
    assert text.splitlines()[0].startswith("Session 0: relayed")
    assert B_PRFLX in text and B_RELAY in text


def test_pairs_name_the_remote_party_from_its_addresses() -> None:
    row = relayed_session()
    for pair in row["candidate_pairs"]:
        pair.pop("local_party")
    table = pair_table(row)
    assert table is not None and table.cells[0][0].splitlines()[:2] == [
        "A relay 198.51.100.2:49152",
        "B relay 198.51.100.2:49153",
    ]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
KEYS = st.sampled_from(
    ["parties", "candidates", "candidate_pairs", "selected_pair", "nominated_pair", "paths", "media", "nat",
     "diagnosis", "findings", "phases", "failed_phase", "id"]
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(KEYS, JSON, max_size=6), st.sampled_from([None, 40, 80]))
def test_any_shape_of_row_is_shown_never_raises(changes: dict[str, object], width: int | None) -> None:
    row = relayed_session()
    row.update(copy.deepcopy(changes))
    parts = session_block(row, Cells(T0))
    assert isinstance(parts[0], Lines)
    render([row], width)


CANDIDATE_KEYS = st.sampled_from(
    ["type", "address", "port", "priority", "party", "related_address", "related_port", "transport",
     "tcptype", "resolved", "frame", "source"]
)  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(st.lists(st.dictionaries(CANDIDATE_KEYS, JSON)))
def test_any_candidates_never_raise(candidates: list[dict[str, object]]) -> None:
    row = relayed_session()
    row["candidates"] = candidates
    render([row], 80)
