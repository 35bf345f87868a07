"""RFC 5780's NAT behaviour discovery attributes: CHANGE-REQUEST, RESPONSE-PORT, PADDING,
RESPONSE-ORIGIN and OTHER-ADDRESS, from hand-built bytes and from coturn's discovery on loopback
(tests/decoders/webrtc/samples/rfc5780-loopback.pcap), field by field against tshark."""

from __future__ import annotations

import re
import struct
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from protoscope.decoders.registry import load_registry
from protoscope.decoders.stun.messages import StunRecord, parse
from protoscope.inspector.session import Session, flatten
from tests.conftest import tshark
from tests.decoders.stun.test_messages import attr, message

SAMPLE = Path(__file__).resolve().parents[1] / "webrtc" / "samples" / "rfc5780-loopback.pcap"
SEP = "\x1f"


def plain_address(ip: str, port: int) -> bytes:
    return struct.pack(">BBH", 0, 1, port) + bytes(int(b) for b in ip.split("."))


def test_probe_request_attributes() -> None:
    data = message(
        0x0001,
        attr(0x0003, b"\0\0\0\x06") + attr(0x0027, struct.pack(">HH", 45000, 0)) + attr(0x0026, b"\0" * 8),
    )
    rec, fields, findings = parse(data)
    assert rec is not None and not findings
    a = rec.attributes
    assert a["change_request"] == {"change_ip": True, "change_port": True}
    assert (a["response_port"], a["padding"]) == (45000, 8)
    flat = flatten(fields)
    assert (flat["stun.att.change-ip"], flat["stun.att.change-port"]) == (True, True)
    assert (flat["stun.att.response_port"], flat["stun.att.padding"]) == (45000, 8)


def test_change_port_only() -> None:
    rec, _, _ = parse(message(0x0001, attr(0x0003, b"\0\0\0\x02")))
    assert rec is not None and rec.attributes["change_request"] == {"change_ip": False, "change_port": True}


def test_response_origin_and_other_address() -> None:
    body = attr(0x802B, plain_address("127.0.0.2", 34781)) + attr(0x802C, plain_address("127.0.0.2", 34781))
    rec, fields, _ = parse(message(0x0101, body))
    assert rec is not None
    assert rec.attributes["response_origin"] == ("127.0.0.2", 34781)
    assert rec.attributes["other_address"] == ("127.0.0.2", 34781)
    flat = flatten(fields)
    assert flat["stun.att.response_origin"] == "127.0.0.2:34781"
    assert flat["stun.att.ipv4"] == ["127.0.0.2", "127.0.0.2"]


def test_short_values_are_kept_raw() -> None:
    rec, fields, _ = parse(message(0x0001, attr(0x0003, b"\0\x06") + attr(0x0027, b"\xaf")))
    assert rec is not None
    assert "change_request" not in rec.attributes and "response_port" not in rec.attributes
    assert flatten(fields)["stun.att.response_port"] == "af"


def test_truncation_at_every_boundary() -> None:
    probe = attr(0x0003, b"\0\0\0\x02") + attr(0x0027, struct.pack(">HH", 45000, 0)) + attr(0x0026, b"\0" * 6)
    answer = attr(0x802B, plain_address("127.0.0.2", 34781)) + attr(0x802C, plain_address("127.0.0.2", 34781))
    for raw in (message(0x0001, probe), message(0x0101, answer)):
        for cut in range(20, len(raw)):
            rec, _, findings = parse(raw[:cut])
            assert rec is not None and any(f.code == "stun.truncated" for f in findings)


@given(
    st.sampled_from([0x0003, 0x0026, 0x0027, 0x802B, 0x802C, 0x0004, 0x0005]),
    st.binary(max_size=40),
)
def test_rfc5780_attribute_bodies_never_raise(code: int, value: bytes) -> None:
    data = message(0x0101, attr(code, value), fingerprint=False)
    for build in (True, False):
        rec, _, _ = parse(data, build=build)
        assert rec is not None


FIELDS = (
    "stun.att.change-ip",
    "stun.att.change-port",
    "stun.att.padding",
    "stun.att.ipv4",
    "stun.att.family",
)


def _theirs() -> dict[int, dict[str, list[str]]]:
    cmd = ["-r", str(SAMPLE), "-d", "udp.port==34781,stun", "-T", "fields", "-E", "occurrence=a"]
    cmd += ["-E", f"aggregator={SEP}", "-e", "frame.number", "-e", "stun.att.port"]
    out = tshark(*cmd, *[a for f in FIELDS for a in ("-e", f)])
    view: dict[int, dict[str, list[str]]] = {}
    for line in out.splitlines():
        frame, *cols = line.split("\t")
        view[int(frame)] = {
            n: c.split(SEP) if c else [] for n, c in zip(("stun.att.port", *FIELDS), cols, strict=True)
        }
    return view


def _ours() -> dict[int, tuple[StunRecord, dict[str, list[str]]]]:
    session = Session.open(SAMPLE, load_registry())
    view: dict[int, tuple[StunRecord, dict[str, list[str]]]] = {}
    try:
        for pd in session.decode():
            for p in pd.pdus:
                if isinstance(p.record, StunRecord):
                    flat = flatten(p.fields)
                    values: dict[str, list[str]] = {}
                    for name in ("stun.att.port", *FIELDS):
                        v = flat.get(name)
                        items = v if isinstance(v, list) else [] if v is None else [v]
                        values[name] = [_text(x) for x in items]
                    view[pd.index + 1] = (p.record, values)
    finally:
        session.close()
    return view


def _text(value: object) -> str:
    """A value as tshark's -T fields prints it (booleans as True/False, 1/0 before 4.2)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def test_coturn_discovery_equals_tshark() -> None:
    theirs, ours = _theirs(), _ours()
    assert set(theirs) == set(ours), "the same STUN packets"
    seen = {name: 0 for name in FIELDS}
    for frame, want in theirs.items():
        rec, got = ours[frame]
        if "response_port" in rec.attributes:
            # tshark 4.0 names 0x0027 by its draft name XOR-RESPONSE-TARGET and reads a bogus
            # address from it; RFC 5780 section 7.5 made it RESPONSE-PORT (a port and padding).
            want = {**want, "stun.att.port": [], "stun.att.family": []}
            # the binding lifetime test's response went to 43619 (frame 15 in tshark)
            assert rec.attributes["response_port"] == 43619
        for name in FIELDS:
            want_values = [_norm(v) for v in want[name]]
            assert got[name] == want_values, f"frame {frame} {name}"
            seen[name] += bool(want_values)
        assert got["stun.att.port"] == want["stun.att.port"], f"frame {frame} stun.att.port"
    assert all(seen.values()), seen


def _norm(text: str) -> str:
    """tshark's text of a value as _text writes ours: booleans 1/0, numbers in decimal."""
    if re.fullmatch(r"0x[0-9a-fA-F]+|\d+", text):
        return str(int(text, 0))
    return {"True": "1", "False": "0"}.get(text, text)
