"""RTP and RTCP per packet against tshark: the same ssrc, seq, timestamp, payload type and marker
for every RTP packet tshark finds, the same RTCP packet types, on every capture of the corpus with
RTP streams (tshark gets the rtp_udp heuristic, as the MANIFEST says). Where tshark is wrong: it
reads SRTCP's ciphertext as more RTCP packets (those are left out, see `theirs`), and it misses RTP
on STUN-multiplexed 5-tuples that RFC 7983 demultiplexing finds (TSHARK_SKIPS: extra RTP allowed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from protoscope.decoders.registry import load_registry
from protoscope.decoders.rtp.packets import RtcpRecord, RtpRecord
from protoscope.inspector.session import Session
from tests.conftest import public_capture, tshark
from tests.decoders.rtp.test_streams_oracle import TSHARK_SKIPS, heuristic_only

Rtp = tuple[int, int, int, int, int]


def theirs(path: Path) -> tuple[dict[int, list[Rtp]], dict[int, list[int]]]:
    out = tshark(
        "-r", str(path), "--enable-heuristic", "rtp_udp", "-T", "fields", "-E", "occurrence=a",
        "-e", "frame.number", "-e", "rtp.ssrc", "-e", "rtp.seq", "-e", "rtp.timestamp",
        "-e", "rtp.p_type", "-e", "rtp.marker", "-e", "rtcp.pt", "-e", "rtcp.version", "-e", "rtcp.length",
        "-e", "udp.length", "-Y", "rtp || rtcp",
    )  # fmt: skip
    rtp: dict[int, list[Rtp]] = {}
    rtcp: dict[int, list[int]] = {}
    for line in out.splitlines():
        frame, ssrc, seq, ts, pt, marker, rtcp_pt, rtcp_version, words, udp_len = (
            line.split("\t") + [""] * 10
        )[:10]
        if ssrc:
            n = len(ssrc.split(","))  # rtp.p_type also names the types inside RFC 2198 redundancy
            columns = [v.split(",")[:n] for v in (ssrc, seq, ts, pt, marker)]
            rtp[int(frame)] = [
                (int(a, 16), int(b), int(c), int(d), int(e in ("1", "True")))
                for a, b, c, d, e in zip(*columns, strict=True)
            ]
        if rtcp_pt:
            # SRTCP is encrypted after its first header: tshark goes on reading the ciphertext as
            # more RTCP packets ("Malformed": version 1, or a length far past the datagram). Only
            # version-2 packets that fit in the datagram count.
            room = int(udp_len.split(",")[0]) - 8 if udp_len else 0
            kept: list[int] = []
            for p, v, w in zip(rtcp_pt.split(","), rtcp_version.split(","), words.split(","), strict=False):
                room -= 4 * (int(w) + 1) if w.isdigit() else room + 1
                if v != "2" or room < 0:
                    break
                kept.append(int(p))
            rtcp[int(frame)] = kept
    return rtp, rtcp


def ours(path: Path) -> tuple[dict[int, list[Rtp]], dict[int, list[int]]]:
    rtp: dict[int, list[Rtp]] = {}
    rtcp: dict[int, list[int]] = {}
    session = Session.open(path, load_registry())
    try:
        for pd in session.decode():
            for pdu in pd.pdus:
                rec = pdu.record
                if isinstance(rec, RtpRecord):
                    rtp.setdefault(pd.index + 1, []).append(
                        (rec.ssrc, rec.seq, rec.timestamp, rec.payload_type, int(rec.marker))
                    )
                elif isinstance(rec, RtcpRecord):
                    rtcp.setdefault(pd.index + 1, []).extend(rec.types)
    finally:
        session.close()
    return rtp, rtcp


@pytest.mark.parametrize("name", heuristic_only() or ["no-corpus"])
def test_rtp_and_rtcp_per_packet_equal_tshark(name: str) -> None:
    path = public_capture(name)
    their_rtp, their_rtcp = theirs(path)
    our_rtp, our_rtcp = ours(path)
    assert their_rtp
    for frame, want in their_rtp.items():
        assert our_rtp.get(frame) == want, frame
    extra = sorted(set(our_rtp) - set(their_rtp))
    if name not in TSHARK_SKIPS:
        assert not extra, f"RTP that tshark does not see: frames {extra[:10]}"
    for frame, types in their_rtcp.items():
        assert our_rtcp.get(frame) == types, frame
