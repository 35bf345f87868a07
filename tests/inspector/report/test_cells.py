"""Report values as cell text: values, not key names; times relative to the first packet."""

from __future__ import annotations

import pytest

from protoscope.inspector.report.cells import MAX_ITEMS, Cells

START = 1795503680.116438
cells = Cells(START)


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        pytest.param("first", START + 1.5, "1.500000", id="time-relative"),
        pytest.param("time", START - 0.25, "-0.250000", id="time-before-first-packet"),
        pytest.param("duration", 0.0006270408630371094, "0.000627", id="duration"),
        pytest.param("mean_jitter_ms", 0.305, "0.305", id="float"),
        pytest.param("max_delta_ms", 0.0, "0", id="float-zero"),
        pytest.param("released", True, "yes", id="bool-true"),
        pytest.param("nominated", False, "no", id="bool-false"),
        pytest.param("relayed", None, "", id="none"),
        pytest.param("ssrc", 2131318078, "0x7f09553e", id="ssrc-hex"),
        pytest.param("version", 0xFEFD, "1.2", id="dtls-version"),
        pytest.param("version", 0x0100, "1.0 (OpenSSL pre 0.9.8f)", id="dtls-version-openssl"),
        pytest.param("version", 7, "7", id="version-unknown"),
        pytest.param("protocols", ["tcp", "http2", "grpc"], "tcp:http2:grpc", id="protocols"),
        pytest.param("ufrags", ["HeEa", "Ppdl"], "HeEa, Ppdl", id="list-joined"),
        pytest.param(
            "nominated_pair",
            {"local": "127.0.0.1:5000", "remote": "127.0.0.1:6000"},
            "127.0.0.1:5000 ↔ 127.0.0.1:6000",
            id="pair",
        ),
        pytest.param("channels", {"0x4000": "127.0.0.1"}, "0x4000 → 127.0.0.1", id="channels"),
        pytest.param("requests", [{"frame": 10}, {"frame": 12}], "2", id="messages-counted"),
        pytest.param(
            "findings",
            [{"phase": "ice", "code": "ice.no_checks", "message": "m", "frame": None}],
            "ice.no_checks",
            id="findings-codes",
        ),
        pytest.param("message", "a\nb\x1b[2J", "a\\nb\\x1b[2J", id="control-escaped"),
        pytest.param("message", "a\u202eb\u2066", "a\\u202eb\\u2066", id="bidi-escaped"),
        pytest.param("value", b"\x01\xff", "01ff", id="bytes-hex"),
    ],
)
def test_values(key: str, value: object, text: str) -> None:
    assert cells.show(key, value) == text


def test_phases_are_names_with_offsets_and_frames() -> None:
    phases = {"signaling": {"time": START + 0.003856, "frame": 23}, "ice": {"time": START + 0.5, "frame": 36}}
    assert cells.show("phases", phases) == "signaling 0.003856 #23\nice 0.500000 #36"


def test_dtls_reads_as_its_state_version_and_profile() -> None:
    dtls = {
        "client": "127.0.0.1:58318",
        "version": 65277,
        "srtp_profiles": ["SRTP_AEAD_AES_256_GCM"],
        "fingerprints": {"127.0.0.1:3478": {"sha-256": "34:37"}, "127.0.0.1:58318": {"sha-256": "CE:26"}},
        "change_cipher_spec_from": ["127.0.0.1:58318", "127.0.0.1:3478"],
        "fingerprint_checked": True,
        "state": "done",
        "extra": 1,
    }
    assert cells.show("dtls", dtls).splitlines() == [
        "done 1.2 SRTP_AEAD_AES_256_GCM",
        "client 127.0.0.1:58318",
        "certificates from 2 endpoints, checked against SDP",
        "ChangeCipherSpec from 2 endpoints",
        "extra: 1",
    ]
    assert cells.show("dtls", {"state": "none"}) == "none"


def test_candidate_pairs_are_counted_by_state() -> None:
    pairs = [
        {"state": "succeeded", "nominated": True},
        {"state": "succeeded", "nominated": False},
        {"state": "failed", "nominated": False},
    ]
    assert cells.show("candidate_pairs", pairs) == "3 (2 succeeded, 1 failed, 1 nominated)"
    assert cells.show("candidate_pairs", []) == "0"


def test_media_is_ssrc_direction_and_packets() -> None:
    media = [
        {"ssrc": 2131318078, "from_client": True, "packets": 50, "payload_type": 96},
        {"ssrc": 2131318078, "from_client": False, "packets": 100, "payload_type": None},
    ]
    assert cells.show("media", media) == "0x7f09553e c→s 50 pkts PT 96\n0x7f09553e s→c 100 pkts"


def test_sdps_read_as_frame_setup_and_media() -> None:
    sdp = [
        {
            "frame": 23,
            "setup": "actpass",
            "media": [{"kind": "audio"}, {"kind": "application"}],
            "candidates": 2,
        }
    ]
    assert cells.show("signaling", sdp) == "#23 actpass audio, application (2 candidates)"


def test_status_details_show_code_message_and_detail_types() -> None:
    details = {
        "code": 5,
        "message": "no such person",
        "details": [{"type_url": "type.googleapis.com/demo.Query", "value": "0a"}],
    }
    assert cells.show("status_details", details) == "5 no such person\ntype.googleapis.com/demo.Query"


def test_per_second_series_is_a_sparkline_with_its_maximum() -> None:
    assert cells.show("jitter_ms_per_second", [0.0, 0.5, 1.0]) == "▁▅█ max 1"
    assert cells.show("lost_per_second", [0, 0]) == "▁▁ max 0"
    assert cells.show("lost_per_second", [-2, 0, 7]) == "▁▁█ max 7"  # duplicates count below zero
    bars, _, top = cells.show("lost_per_second", list(range(1000))).partition(" max ")
    assert len(bars) == 24 and bars[0] == "▁" and bars[-1] == "█" and top == "999"  # an hour stays short


def test_long_lists_of_records_say_how_many_more() -> None:
    media = [{"ssrc": n, "from_client": True, "packets": 1} for n in range(MAX_ITEMS + 3)]
    lines = cells.show("media", media).splitlines()
    assert len(lines) == MAX_ITEMS + 1 and lines[-1] == "(+3 more)"


def test_unknown_shapes_are_shown_plainly() -> None:
    # A plugin reusing a known key with other content is shown, never an error.
    assert cells.show("phases", ["a", "b"]) == "a, b"
    assert cells.show("media", [{"kind": "audio"}]) == "kind audio"
    assert cells.show("dtls", "yes") == "yes"
    assert cells.show("nominated_pair", {"a": 1}) == "a: 1"
    nested = {"peers": [{"ip": "10.0.0.1", "port": 1}], "note": {"deep": [1, 2]}}
    assert cells.show("custom", nested) == "peers: ip 10.0.0.1, port 1\nnote: deep: 1, 2"
    assert cells.show("custom", [[1, 2], [3]]) == "1, 2\n3"
