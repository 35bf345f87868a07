"""RTP and RTCP per packet against tshark.

RTP: the same ssrc, seq, timestamp, payload type and marker for every RTP packet tshark finds, on
every capture of the corpus whose RTP tshark finds with its rtp_udp heuristic or SIP's SDP; where
tshark misses RTP on STUN-multiplexed 5-tuples that RFC 7983 demultiplexing finds (TSHARK_SKIPS),
extra RTP is allowed.

RTCP and SRTCP, on every capture of the corpus with RTCP (tshark given the MANIFEST's hints) and on
our samples, frame by frame where tshark shows RTCP:
* a compound whose packet lengths tshark adds up to the datagram exactly is plain RTCP to us too,
  with the same packet types: plain compounds are never taken for SRTCP;
* where tshark knows the flow is SRTP (SDP a=crypto, DTLS use_srtp) and reads the E flag and SRTCP
  index, ours are the same, except that with the 16-byte tags of AEAD_AES_*_GCM tshark looks for
  the index before the tag, where RFC 3711 puts it, and RFC 7714 section 17 puts it after: there
  ours is the last 4 bytes of what tshark calls the tag;
* anything else tshark reads as RTCP whose lengths do not add up (it goes on reading SRTCP's
  ciphertext as more, "malformed", RTCP packets, or ignores what follows Discord's first header)
  is SRTCP or encrypted RTCP to us, with the same first packet type and no rtcp.length_bad; when
  the SRTCP is not encrypted (E flag clear), tshark's packets begin with ours;
* a datagram tshark reads as RTCP of another version than 2 (NAT keep-alives before RTSP's RTP) is
  not RTCP to us, and RTCP tshark does not see at all (STUN-multiplexed flows, ports no
  conversation set up) is not compared.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from protoscope.decoders.registry import load_registry
from protoscope.decoders.rtp.packets import RtcpRecord, RtpRecord
from protoscope.inspector.session import Session
from tests.conftest import SAMPLES, manifest_captures, public_capture, tshark
from tests.decoders.rtp.test_streams_oracle import TSHARK_SKIPS, heuristic_only

Rtp = tuple[int, int, int, int, int]
SRTCP_SAMPLE = Path(__file__).resolve().parent / "samples" / "srtcp-libsrtp.pcap"
AEAD_TAG = 16


def theirs(path: Path) -> dict[int, list[Rtp]]:
    out = tshark(
        "-r", str(path), "--enable-heuristic", "rtp_udp", "-T", "fields", "-E", "occurrence=a",
        "-e", "frame.number", "-e", "rtp.ssrc", "-e", "rtp.seq", "-e", "rtp.timestamp",
        "-e", "rtp.p_type", "-e", "rtp.marker", "-Y", "rtp",
    )  # fmt: skip
    rtp: dict[int, list[Rtp]] = {}
    for line in out.splitlines():
        frame, ssrc, seq, ts, pt, marker = (line.split("\t") + [""] * 6)[:6]
        if ssrc:
            n = len(ssrc.split(","))  # rtp.p_type also names the types inside RFC 2198 redundancy
            columns = [v.split(",")[:n] for v in (ssrc, seq, ts, pt, marker)]
            rtp[int(frame)] = [
                (int(a, 16), int(b), int(c), int(d), int(e in ("1", "True")))
                for a, b, c, d, e in zip(*columns, strict=True)
            ]
    return rtp


def ours(path: Path) -> tuple[dict[int, list[Rtp]], dict[int, tuple[RtcpRecord, list[str]]]]:
    rtp: dict[int, list[Rtp]] = {}
    rtcp: dict[int, tuple[RtcpRecord, list[str]]] = {}
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
                    rtcp[pd.index + 1] = (rec, [f.code for f in pdu.findings])
    finally:
        session.close()
    return rtp, rtcp


@pytest.mark.parametrize("name", heuristic_only() or ["no-corpus"])
def test_rtp_per_packet_equals_tshark(name: str) -> None:
    path = public_capture(name)
    their_rtp = theirs(path)
    our_rtp, _ = ours(path)
    assert their_rtp
    for frame, want in their_rtp.items():
        assert our_rtp.get(frame) == want, frame
    extra = sorted(set(our_rtp) - set(their_rtp))
    if name not in TSHARK_SKIPS:
        assert not extra, f"RTP that tshark does not see: frames {extra[:10]}"


def rtcp_captures() -> list[str]:
    """Corpus captures with RTCP or SRTCP, and our samples with SRTCP (the calls that got to media)."""
    calls = ("direct", "turn", "one-way", "bad-fingerprint")
    samples = [str(p) for p in (*(SAMPLES / f"webrtc-{c}.pcap" for c in calls), SRTCP_SAMPLE)]
    return sorted(manifest_captures(r"\bs?rtcp\b")) + samples


def their_rtcp(path: Path, args: list[str]) -> dict[int, dict[str, list[str]]]:
    out = tshark(
        "-r", str(path), *args, "-T", "fields", "-E", "occurrence=a", "-e", "frame.number",
        "-e", "udp.length", "-e", "rtcp.pt", "-e", "rtcp.version", "-e", "rtcp.length",
        "-e", "srtcp.e", "-e", "srtcp.index", "-e", "srtcp.auth_tag", "-Y", "rtcp || srtcp",
    )  # fmt: skip
    keys = ("udp", "pt", "version", "length", "e", "index", "tag")
    frames = {}
    for line in out.splitlines():
        frame, *values = (line.split("\t") + [""] * 8)[:8]
        frames[int(frame)] = {k: [x for x in v.split(",") if x] for k, v in zip(keys, values, strict=True)}
    return frames


@pytest.mark.parametrize("name", rtcp_captures(), ids=lambda n: Path(n).name)
def test_rtcp_per_packet_agrees_with_tshark(name: str) -> None:
    path = Path(name) if "/" in name else public_capture(name)
    args = manifest_captures(r"\bs?rtcp\b").get(path.name, [])
    frames = their_rtcp(path, args)
    _, rtcp = ours(path)
    assert frames
    for frame, t in frames.items():
        got = rtcp.get(frame)
        if "2" not in t["version"]:
            assert got is None, frame
            continue
        assert got is not None, frame
        rec, codes = got
        types = [int(p) for p in t["pt"]]
        assert rec.types[0] == types[0], frame
        if t["index"]:
            word = int(t["tag"][0][-8:], 16) if len(t["tag"][0]) == 2 * AEAD_TAG else None
            e, index = (
                (word >> 31, word & 0x7FFFFFFF) if word is not None else (t["e"][0], int(t["index"][0]))
            )
            assert rec.srtcp and (rec.srtcp_index, rec.encrypted) == (index, e in (1, "1", "True")), frame
            continue
        room = int(t["udp"][0]) - 8
        tiles = sum(4 * (int(w) + 1) for w in t["length"]) == room and set(t["version"]) == {"2"}
        if tiles:
            assert not rec.srtcp and not rec.encrypted and list(rec.types) == types, frame
        else:
            assert rec.srtcp or rec.encrypted, frame
            assert "rtcp.length_bad" not in codes, frame
            if rec.srtcp and not rec.encrypted:
                assert types[: len(rec.types)] == list(rec.types), frame
