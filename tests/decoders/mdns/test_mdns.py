"""decoders/mdns: DNS messages on mDNS compared field by field with tshark (a response sent on
loopback by make_mdns.py, the public corpus's responses and queries), MdnsAnswers delivered to
analyses, and hostile messages (pointer loops, counts past the data, long names) read within the
limits, with findings and never an exception."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protoscope.decoders.api import Endpoint, FlowContext, Pdu
from protoscope.decoders.mdns import MdnsAnswers, MdnsDecoder, parse_message
from protoscope.decoders.mdns.message import MAX_RECORDS, TYPE_SRV, read_name
from protoscope.decoders.registry import load_registry
from protoscope.inspector.report.rows import AnalysisPass
from protoscope.inspector.session import Session
from tests.conftest import ROOT, public_capture, require_root, require_tool, tshark

SAMPLE = ROOT / "tests" / "decoders" / "mdns" / "samples" / "mdns-response.pcap"
TRUTH = json.loads(SAMPLE.with_suffix(".truth.json").read_text())
DECODE_AS = f"udp.port=={TRUTH['port']},mdns"
FIELDS = (
    "dns.id", "dns.flags.response", "dns.flags.authoritative", "dns.count.queries", "dns.count.answers",
    "dns.count.auth_rr", "dns.count.add_rr", "dns.qry.name", "dns.qry.type", "dns.qry.qu", "dns.resp.name",
    "dns.resp.ttl", "dns.resp.len", "dns.resp.cache_flush", "dns.a", "dns.aaaa", "dns.ptr.domain_name",
    "dns.srv.priority", "dns.srv.port", "dns.srv.target", "dns.txt", "dns.nsec.next_domain_name",
)  # fmt: skip


def _session(path: Path, *decode_as: str) -> Session:
    reg = load_registry(decode_as=())
    reg.add(MdnsDecoder())  # until the entry point is installed: the same decoder
    for rule in decode_as:
        from protoscope.decoders.registry import DecodeAs

        reg.add_decode_as(DecodeAs.parse(rule))
    return Session.open(path, reg)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _compare(path: Path, *decode_as: str) -> int:
    """Our mdns PDUs' fields and Info against tshark's, frame by frame; the PDUs compared."""
    tshark_args = [a for rule in decode_as for a in ("-d", rule)]
    columns = [a for f in ("frame.number", *FIELDS) for a in ("-e", f)]
    out = tshark("-r", str(path), *tshark_args, "-Y", "mdns", "-T", "fields", "-E", "occurrence=a",
                 "-E", "aggregator=|", *columns)  # fmt: skip
    infos = tshark("-r", str(path), *tshark_args, "-Y", "mdns", "-o", 'gui.column.format:"Info","%i"')
    expected = {int(line.split("\t")[0]): line.split("\t")[1:] for line in out.splitlines()}
    info_of = dict(zip(sorted(expected), (line.strip() for line in infos.splitlines()), strict=True))
    session = _session(path, *decode_as)
    compared = 0
    for pd in session.decode(packets=[n - 1 for n in sorted(expected)]):
        (pdu,) = [p for p in pd.pdus if p.protocol == "mdns"]
        ours: dict[str, list[str]] = {}
        stack = list(reversed(pdu.fields))
        while stack:
            f = stack.pop()
            # tshark names an SRV record's owner dns.srv.service/proto/name, not dns.resp.name
            if not (
                f.name == "dns.resp.name"
                and any(c.name == "dns.resp.type" and c.value == TYPE_SRV for c in f.children)
            ):
                ours.setdefault(f.name, []).append(_text(f.value))
            stack.extend(reversed(f.children))
        for name, value in zip(FIELDS, expected[pd.index + 1], strict=True):
            theirs = value.split("|") if value else []
            got = ours.get(name, [])
            if name == "dns.id":
                theirs = [str(int(t, 16)) for t in theirs]
            assert got == theirs, (path.name, pd.index + 1, name)
        assert pdu.summary == info_of[pd.index + 1]
        assert pdu.findings == ()
        compared += 1
    return compared


def test_loopback_response_matches_tshark() -> None:
    assert _compare(SAMPLE, DECODE_AS) == 1


def test_loopback_response_now(tmp_path: Path) -> None:
    """The response sent while the test runs, captured by tcpdump on lo: as the committed sample."""
    require_tool("tcpdump")
    require_root()
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_mdns", SAMPLE.parent / "make_mdns.py")
    assert spec is not None and spec.loader is not None
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    pcap = tmp_path / "now.pcap"
    truth = make.record(pcap)
    assert _compare(pcap, DECODE_AS) == 1
    assert truth == TRUTH


def test_public_mdns_matches_tshark() -> None:
    assert _compare(public_capture("packt--grpc-go_Unary.pcapng")) == 9


class Probe:
    name = "probe"

    def __init__(self) -> None:
        self.seen: list[list[list[str]]] = []

    def feed(self, pdu: Pdu, ctx: FlowContext) -> None:
        if isinstance(pdu.record, MdnsAnswers):
            self.seen.append([list(pair) for pair in pdu.record.answers])

    def rows(self) -> list[dict[str, object]]:
        return [{"answers": self.seen}]


def test_answers_reach_analyses() -> None:
    session = _session(SAMPLE, DECODE_AS)
    session.registry.analyses["probe"] = Probe
    out: dict[str, list[dict[str, object]]] = {}
    decoding = AnalysisPass(session, {"probe": session.registry.analysis("probe")}, out.setdefault)
    for _ in decoding.packets():
        pass
    decoding.finish()
    assert out["probe"] == [{"answers": [TRUTH["answers"]]}]


def _ctx(port: int = 5353) -> FlowContext:
    return FlowContext(0, "udp", Endpoint("10.0.0.1", port), Endpoint("224.0.0.251", 5353), True, 1, 0.0)


def test_sniff_is_strict() -> None:
    data = SAMPLE.read_bytes()[24 + 16 + 42 :]
    decoder = MdnsDecoder()
    assert decoder.sniff(data, _ctx())
    assert not decoder.sniff(data, FlowContext(0, "udp", Endpoint("a", 1), Endpoint("b", 2), True, 1, 0.0))
    assert not decoder.sniff(data[:11], _ctx())
    assert not decoder.sniff(data[:2] + b"\x78\x00" + data[4:], _ctx())  # opcode 15


def _message(body: bytes, qd: int = 0, an: int = 1) -> bytes:
    return struct.pack(">HHHHHH", 0, 0x8400, qd, an, 0, 0) + body


def _codes(data: bytes) -> list[str]:
    msg = parse_message(data)
    assert msg is not None
    return [f.code for f in msg.findings]


def test_pointer_loop_and_forward_pointer() -> None:
    assert _codes(_message(b"\xc0\x0c" + bytes(10))) == ["mdns.name_loop"]  # points at itself
    assert _codes(_message(b"\xc0\x20" + bytes(40))) == ["mdns.name_loop"]  # points ahead
    chain = b"\x01a\xc0\x0c"  # "a" then back to its own start: a loop through a label
    assert _codes(_message(chain + bytes(10))) == ["mdns.name_loop"]


def test_bad_label_and_long_name() -> None:
    assert _codes(_message(b"\x41" + bytes(20))) == ["mdns.bad_label"]
    long = b"".join(b"\x3f" + b"x" * 63 for _ in range(5)) + b"\0"
    assert _codes(_message(long + bytes(10))) == ["mdns.name_too_long"]


def test_counts_past_the_data() -> None:
    record = b"\x01a\x00" + struct.pack(">HHIH", 1, 1, 120, 4) + bytes(4)
    msg = parse_message(_message(record, an=3000))
    assert msg is not None
    assert len(msg.records) == 1
    assert [f.code for f in msg.findings] == ["mdns.truncated"]
    many = parse_message(_message(record * (MAX_RECORDS + 10), an=MAX_RECORDS + 10))
    assert many is not None and len(many.records) == MAX_RECORDS
    assert [f.code for f in many.findings] == ["mdns.too_many_records"]


def test_every_cut_of_the_sample() -> None:
    data = SAMPLE.read_bytes()[24 + 16 + 42 :]
    for cut in range(len(data)):
        msg = parse_message(data[:cut])
        if cut < 12:
            assert msg is None
        else:
            assert msg is not None
            assert len(msg.records) < 5
            assert [f.code for f in msg.findings] == ["mdns.truncated"] or cut == 12


def test_read_name_follows_pointers() -> None:
    data = bytes(12) + b"\x04peer\x05local\x00" + b"\x01x\xc0\x11"
    assert read_name(data, 12) == ("peer.local", 24)
    assert read_name(data, 24) == ("x.local", 28)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes(data: bytes) -> None:
    msg = parse_message(data)
    if msg is not None:
        assert len(msg.questions) + len(msg.records) <= MAX_RECORDS
    MdnsDecoder().decode(data, None, _ctx())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 255), max_size=200))
def test_pointer_soup(values: list[int]) -> None:
    """Messages made mostly of pointers and short labels: bounded work, no exception."""
    body = bytes(0xC0 | (v & 0x3F) if v % 3 == 0 else v % 8 for v in values)
    parse_message(_message(body, qd=8, an=8))


@pytest.mark.parametrize("port", [5353])
def test_port_table(port: int) -> None:
    assert ("udp", port) in MdnsDecoder.ports
