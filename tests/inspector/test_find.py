"""Find packet over real captures: bytes found as tshark's `frame contains` finds them, wrapping,
display order, regexes over the decoded text and display filters."""

from __future__ import annotations

from pathlib import Path

import pytest

from protoscope.decoders.registry import load_registry
from protoscope.inspector.find import FindQuery, Found, check_query, find_next, parse_hex
from protoscope.inspector.model import CaptureModel
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES, public_capture, tshark

DEMO = SAMPLES / "grpc-demo.pcap"


def model_of(path: Path) -> CaptureModel:
    model = CaptureModel(Session.open(path, load_registry()))
    model.decode_all()
    return model


@pytest.fixture(scope="module")
def demo() -> CaptureModel:
    return model_of(DEMO)


def every_hit(model: CaptureModel, query: FindQuery, rows: list[int] | None = None) -> list[int]:
    """Frame numbers found by pressing "find next" from the top until the search wraps."""
    out: list[int] = []
    start = -1
    while True:
        found = find_next(model, query, start, rows)
        if found is None or found.wrapped:
            return out
        out.append(found.packet + 1)
        start = found.packet


def tshark_frames(path: Path, display_filter: str) -> list[int]:
    text = tshark("-r", str(path), "-Y", display_filter, "-T", "fields", "-e", "frame.number")
    return [int(line) for line in text.split()]


@pytest.mark.parametrize(
    ("query", "display_filter"),
    [
        (FindQuery("string", "grpc-status", case=True), 'frame contains "grpc-status"'),
        (FindQuery("string", "GRPC-STATUS"), 'frame matches "(?i)grpc-status"'),
        (FindQuery("string", "PRI * HTTP/2.0", case=True), 'frame contains "PRI * HTTP/2.0"'),
        (FindQuery("hex", "50:52:49"), "frame contains 50:52:49"),
        (FindQuery("hex", "00 00 04 08"), "frame contains 00:00:04:08"),
    ],
)
def test_bytes_found_as_tshark_finds_them(demo: CaptureModel, query: FindQuery, display_filter: str) -> None:
    expected = tshark_frames(DEMO, display_filter)
    assert expected, "the oracle found nothing: the query no longer exercises the search"
    assert every_hit(demo, query) == expected


def test_bytes_over_a_public_capture_match_tshark() -> None:
    path = public_capture("packt--grpc-go_Unary.pcapng")
    model = CaptureModel(Session.open(path, load_registry()))
    for text in ("grpc", "content-type", "application/grpc"):
        expected = tshark_frames(path, f'frame contains "{text}"')
        assert every_hit(model, FindQuery("string", text, case=True)) == expected, text


def test_case_sensitivity(demo: CaptureModel) -> None:
    assert find_next(demo, FindQuery("string", "GRPC-STATUS", case=True), -1, None) is None
    assert find_next(demo, FindQuery("string", "GRPC-STATUS"), -1, None) == Found(13, False)


def test_wraps_round_and_back_to_itself(demo: CaptureModel) -> None:
    query = FindQuery("hex", "505249")  # the HTTP/2 preface: frame 5 only
    assert find_next(demo, query, 4, None) == Found(4, True)
    assert find_next(demo, query, 50, None) == Found(4, True)
    assert find_next(demo, query, 0, None) == Found(4, False)
    assert find_next(demo, query, 50, None, backwards=True) == Found(4, False)
    assert find_next(demo, query, 2, None, backwards=True) == Found(4, True)


def test_backwards_visits_hits_in_reverse(demo: CaptureModel) -> None:
    query = FindQuery("string", "grpc-status")
    found = find_next(demo, query, -1, None, backwards=True)
    assert found == Found(97, False)
    found = find_next(demo, query, found.packet, None, backwards=True)
    assert found == Found(17, False)
    found = find_next(demo, query, found.packet, None, backwards=True)
    assert found == Found(13, False)
    assert find_next(demo, query, found.packet, None, backwards=True) == Found(97, True)


def test_display_order_and_hidden_packets(demo: CaptureModel) -> None:
    query = FindQuery("string", "grpc-status")
    assert every_hit(demo, query, rows=[97, 17, 13, 0]) == [98, 18, 14]
    assert every_hit(demo, query, rows=[0, 1, 17]) == [18]  # 14 and 98 are not displayed
    # from a packet that is not displayed, the search goes on after it in frame order
    assert find_next(demo, query, 15, rows=[0, 13, 17, 97]) == Found(17, False)
    assert find_next(demo, query, 0, rows=[]) is None


def test_sparse_rows_are_searched_packet_by_packet(demo: CaptureModel) -> None:
    rows = [0, 50, 97]  # far apart: no byte-range search
    assert every_hit(demo, FindQuery("string", "grpc-status"), rows) == [98]


def test_regex_searches_info_and_details(demo: CaptureModel) -> None:
    info = [demo.row(i).info for i in range(len(demo))]
    expected = [i + 1 for i, text in enumerate(info) if "SYN" in text]
    assert expected
    assert every_hit(demo, FindQuery("regex", r"\[SYN", case=True)) == expected
    # a header value is in the details only, not in the Info column
    hits = every_hit(demo, FindQuery("regex", r"x-request-id: req-\d+$"))
    assert 10 in hits
    assert not any("req-" in info[frame - 1] for frame in hits)
    paths = every_hit(demo, FindQuery("regex", r"^http2\.headers\.path: /demo\.Directory/"))
    assert paths == [i + 1 for i, text in enumerate(info) if "POST /demo.Directory/" in text]


def test_filter_finds_what_the_filter_matches(demo: CaptureModel) -> None:
    rows = demo.filter_rows("tcp.flags.syn == 1") or []
    expected = [i + 1 for i in rows]
    hits = every_hit(demo, FindQuery("filter", "tcp.flags.syn == 1"))
    assert hits == expected
    assert find_next(demo, FindQuery("filter", "frame.len > 100000"), -1, None) is None


def test_cancelled_search_gives_nothing(demo: CaptureModel) -> None:
    assert find_next(demo, FindQuery("filter", "tcp"), -1, None, cancelled=lambda: True) is None
    assert find_next(demo, FindQuery("string", "grpc"), -1, None, cancelled=lambda: True) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0a:0b 0c", b"\x0a\x0b\x0c"),
        ("0a0b0c", b"\x0a\x0b\x0c"),
        ("0A-0B", b"\x0a\x0b"),
        ("0x0a 0x0b", b"\x0a\x0b"),
        (" ff ", b"\xff"),
    ],
)
def test_parse_hex(text: str, expected: bytes) -> None:
    assert parse_hex(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "no hex bytes"), ("0g", "'g' is not a hex digit"), ("abc", "odd number of hex digits (3)")],
)
def test_parse_hex_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_hex(text)


def test_check_query_names_the_problem() -> None:
    assert check_query(FindQuery("string", "grpc")) is None
    assert "nothing to find" in (check_query(FindQuery("string", "  ")) or "")
    assert "bad regular expression" in (check_query(FindQuery("regex", "(")) or "")
    assert "bad display filter" in (check_query(FindQuery("filter", "tcp ==")) or "")
    assert "not a hex digit" in (check_query(FindQuery("hex", "zz")) or "")


def test_filter_fields_are_checked_against_the_registry() -> None:
    registry = load_registry()
    assert "unknown field 'foo'" in (check_query(FindQuery("filter", "foo == 1"), registry) or "")
    assert check_query(FindQuery("filter", "grpc.status != 0"), registry) is None


def test_filter_uses_the_capture_columns(demo: CaptureModel) -> None:
    """A filter over L2-L4 fields and frame numbers: tshark's -Y frames, wrapping included."""
    expected = tshark_frames(DEMO, "tcp.len > 200 && frame.number > 20")
    assert expected
    assert every_hit(demo, FindQuery("filter", "tcp.len > 200 && frame.number > 20")) == expected
    last = expected[-1] - 1
    assert find_next(demo, FindQuery("filter", "tcp.len > 200 && frame.number > 20"), last, None) == Found(
        expected[0] - 1, True
    )


def test_regex_scan_resumes_after_a_cancel(demo: CaptureModel) -> None:
    """A cancelled regex search leaves its decoding pass where it stopped; the next search takes
    it up and finds what a search on a fresh model finds, forwards and backwards."""
    query = FindQuery("regex", r"DATA\[\d+\]")
    fresh = model_of(DEMO)
    assert find_next(fresh, query, -1, None, cancelled=lambda: True) is None
    expected = every_hit(demo, query)
    assert len(expected) > 3
    assert every_hit(fresh, query) == expected
    assert find_next(fresh, query, expected[2] - 1, None, backwards=True) == Found(expected[1] - 1, False)


def test_regex_in_display_order_not_frame_order(demo: CaptureModel) -> None:
    query = FindQuery("regex", r"DATA\[\d+\]")
    hits = every_hit(demo, query)
    rows = sorted(range(len(demo)), reverse=True)
    assert every_hit(model_of(DEMO), query, rows) == hits[::-1]
