"""The sessions report's `datachannel` phase: an ICE session (its checks and DTLS fed as the
decoders' records), then the SCTP that aiortc's peers sent on the same flow, decoded from the real
bytes (tests/decoders/sctp/samples): the phase from the first DATA_CHANNEL_OPEN to its ACK, a
channel never acknowledged, a pre-negotiated stream, resets and ABORT."""

from __future__ import annotations

from protoscope.decoders.api import Endpoint, FlowContext, Pdu
from protoscope.decoders.dtls.records import DtlsRecord
from protoscope.decoders.stun.messages import StunRecord
from protoscope.decoders.webrtc.sessions import SessionAnalysis
from tests.decoders.sctp.vectors import Run, data_chunk, dcep_open, from_client, packet, packets

A, B = Endpoint("10.0.0.1", 5000), Endpoint("10.0.0.2", 6000)
"""A is the flow's client: aiortc's answerer, the DTLS client."""


def ctx(frame: int, client: bool) -> FlowContext:
    src, dst = (A, B) if client else (B, A)
    return FlowContext(0, "udp", src, dst, client, frame, 1000.0 + frame / 100)


def connected() -> SessionAnalysis:
    """An ICE session on flow 0 whose checks succeeded and whose DTLS handshake finished."""
    analysis = SessionAnalysis()
    records = [
        (StunRecord(1, 1, 0, bytes(12), False, {"username": "bb:aa", "use_candidate": True}), True),
        (StunRecord(0x101, 1, 2, bytes(12), False, {}), False),
        (DtlsRecord((22,), (1,), 0xFEFD, {}), True),
        (DtlsRecord((22, 20), (2,), 0xFEFD, {}), False),
        (DtlsRecord((20,), (), 0xFEFD, {}), True),
    ]
    for frame, (rec, client) in enumerate(records, 1):
        analysis.feed(Pdu("x", (), (0, 0), record=rec), ctx(frame, client))
    return analysis


def feed_sctp(analysis: SessionAnalysis, items: list[tuple[bytes, bool]], first: int = 10) -> dict[int, int]:
    """Decodes and feeds; returns packet index -> frame."""
    run = Run()
    frames = {}
    for n, (data, client) in enumerate(items):
        frame = first + n
        frames[n] = frame
        state = run.states.setdefault(client, run.decoder.new_state())
        for pdu in run.decoder.decode(data, state, ctx(frame, client)).pdus:
            analysis.feed(pdu, ctx(frame, client))
    return frames


def aiortc_items() -> list[tuple[bytes, bool]]:
    return [(bytes.fromhex(p["hex"]), from_client(p)) for p in packets()]


def test_datachannel_phase_from_open_to_ack() -> None:
    analysis = connected()
    items = aiortc_items()
    frames = feed_sctp(analysis, items)
    (row,) = analysis.rows()
    first_open = next(n for n, p in enumerate(packets()) if p["chunk"].get("protocol") == 50)
    first_ack = next(
        n for n, p in enumerate(packets()) if p["chunk"].get("protocol") == 50 and from_client(p)
    )
    assert list(row["phases"])[-2:] == ["datachannel", "datachannel_open"]
    assert row["phases"]["datachannel"]["frame"] == frames[first_open]
    assert row["phases"]["datachannel_open"]["frame"] == frames[first_ack]
    assert row["data_channels"] == 4  # three by DCEP, one pre-negotiated
    # The reset of "timed" and aiortc's closing ABORT are the datachannels report's findings.
    assert [f for f in row["findings"] if f.get("phase") == "datachannel"] == []
    assert row["failed_phase"] is None


def test_open_never_acknowledged_fails_the_phase() -> None:
    analysis = connected()
    items = [(packet(data_chunk(1, 1, 0, 50, dcep_open("chat"))), False)]
    feed_sctp(analysis, items)
    (row,) = analysis.rows()
    assert "datachannel" in row["phases"] and "datachannel_open" not in row["phases"]
    (finding,) = row["findings"]
    assert (finding["code"], finding["severity"], finding["frame"]) == (
        "datachannel.open_unacked",
        "error",
        10,
    )
    assert "'chat'" in finding["message"]
    assert row["failed_phase"] == "datachannel"


def test_pre_negotiated_stream_opens_with_its_first_message() -> None:
    analysis = connected()
    items = [(packet(data_chunk(1, 7, 0, 51, b"hi")), True), (packet(data_chunk(9, 7, 0, 51, b"yo")), False)]
    feed_sctp(analysis, items, first=20)
    (row,) = analysis.rows()
    assert row["phases"]["datachannel"]["frame"] == row["phases"]["datachannel_open"]["frame"] == 20
    assert row["data_channels"] == 1 and row["findings"] == [] and row["failed_phase"] is None


def test_sctp_on_a_flow_of_no_session_is_ignored() -> None:
    analysis = SessionAnalysis()
    feed_sctp(analysis, aiortc_items()[:20])
    assert analysis.rows() == []


def test_other_ppids_open_no_data_channel() -> None:
    analysis = connected()
    feed_sctp(analysis, [(packet(data_chunk(1, 0, 0, 46, b"diameter")), True)])
    (row,) = analysis.rows()
    assert "datachannel" not in row["phases"] and row["data_channels"] == 0
