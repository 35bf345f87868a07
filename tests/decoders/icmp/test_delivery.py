"""ICMP errors reach analyses (inspector/session.py `_icmp`, inspector/icmp_errors.py): each error
quoting UDP is fed as a Pdu whose record is an IcmpError, with the context of the quoted datagram's
flow, in frame order among the other PDUs, in a report's pass, the viewer's, and a live capture's
pieces; the display filter knows ICMP's fields; and errors the kernel makes now, captured on
loopback by tcpdump, arrive the same way."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, ClassVar

from protoscope.decoders.api import FlowContext, Pdu
from protoscope.decoders.icmp import IcmpDecoder, IcmpError
from protoscope.decoders.registry import Registry, load_registry
from protoscope.inspector.filter import filter_rows
from protoscope.inspector.model import CaptureModel
from protoscope.inspector.report.rows import AnalysisPass, packet_row
from protoscope.inspector.session import Session
from tests.conftest import ROOT, require_root, require_tool

SAMPLES = ROOT / "tests" / "decoders" / "icmp" / "samples"
SAMPLE = SAMPLES / "icmp-unreachable.pcap"


class Probe:
    """Notes what it is fed: every PDU's frame, and each ICMP error with its context."""

    name: ClassVar[str] = "probe"

    def __init__(self) -> None:
        self.frames: list[int] = []
        self.errors: list[dict[str, Any]] = []

    def feed(self, pdu: Pdu, ctx: FlowContext) -> None:
        self.frames.append(ctx.frame)
        if isinstance(pdu.record, IcmpError):
            self.errors.append(
                {
                    "frame": ctx.frame,
                    "flow": ctx.flow,
                    "from_client": ctx.from_client,
                    "src": str(ctx.src),
                    "protocol": pdu.protocol,
                    "quoted_src": pdu.record.quoted_src,
                    "quoted_dst": pdu.record.quoted_dst,
                    "transaction": pdu.record.quoted_payload[8:20].hex(),
                }
            )

    def rows(self) -> list[dict[str, object]]:
        return [{"frames": list(self.frames), "errors": list(self.errors)}]


def _registry() -> Registry:
    reg = load_registry()
    reg.add(IcmpDecoder())  # until the entry point is installed: the same decoder
    reg.analyses["probe"] = Probe
    return reg


def _check(rows: list[dict[str, Any]], session: Session, truth_path: Path) -> None:
    truth = json.loads(truth_path.read_text())
    (row,) = rows
    assert row["frames"] == sorted(row["frames"])  # frame order, among the STUN PDUs
    errors = row["errors"]
    assert [(e["quoted_src"], e["quoted_dst"], e["transaction"]) for e in errors] == [
        (t["quoted_src"], t["quoted_dst"], t["transaction"]) for t in truth
    ]
    flows = session.flows
    for e in errors:
        assert e["protocol"] == ("icmpv6" if e["src"].startswith("[") else "icmp")
        flow = flows[e["flow"]]  # the flow of the quoted request, which the capture has
        assert {str(flow.client), str(flow.server)} == {e["quoted_src"], e["quoted_dst"]}
        assert e["from_client"] == (str(flow.client) != e["quoted_src"])


def _report(path: Path) -> tuple[list[dict[str, Any]], Session]:
    session = Session.open(path, _registry())
    out: dict[str, list[dict[str, Any]]] = {}
    decoding = AnalysisPass(session, {"probe": session.registry.analysis("probe")}, out.setdefault)
    for _ in decoding.packets():
        pass
    decoding.finish()
    return out["probe"], session


def test_report_pass() -> None:
    rows, session = _report(SAMPLE)
    _check(rows, session, SAMPLE.with_suffix(".truth.json"))


def test_viewer_pass() -> None:
    session = Session.open(SAMPLE, _registry())
    model = CaptureModel(session)
    model.decode_all()
    _check(model.decoded.reports["probe"], session, SAMPLE.with_suffix(".truth.json"))
    row = model.row(3)  # the first error: tshark's Info
    assert row.info == "Destination unreachable (Port unreachable)"


def _records(path: Path) -> list[bytes]:
    data = path.read_bytes()
    out, at = [data[:24]], 24
    while at < len(data):
        caplen = struct.unpack_from("<I", data, at + 8)[0]
        out.append(data[at : at + 16 + caplen])
        at += 16 + caplen
    return out


def test_live_pieces(tmp_path: Path) -> None:
    records = _records(SAMPLE)
    growing = tmp_path / "live.pcap"
    with open(growing, "wb") as f:
        f.write(b"".join(records[:4]))  # the header and three packets: the first error comes next
    session = Session.open(growing, _registry(), growing=True)
    model = CaptureModel(session)
    model.growing = True
    model.decode_more()
    for k in range(4, len(records), 3):
        with open(growing, "ab") as f:
            f.write(b"".join(records[k : k + 3]))
        model.grow()
        model.decode_more()
    model.grow(final=True)
    model.decode_more(final=True)
    _check(model.decoded.reports["probe"], session, SAMPLE.with_suffix(".truth.json"))


def test_packets_report_and_filter() -> None:
    session = Session.open(SAMPLE, _registry())
    rows = [packet_row(session, pd) for pd in session.decode()]
    assert rows[3]["protocols"] == ["eth", "ip", "icmp", "ip", "udp"]
    assert rows[3]["flow"] is None
    assert rows[3]["pdus"][0]["protocol"] == "icmp"
    assert rows[9]["protocols"] == ["eth", "ipv6", "icmpv6", "ipv6", "udp"]
    assert filter_rows(session, "icmp.type == 3") == [3, 5]
    assert filter_rows(session, "icmpv6.code == 4") == [9, 11]
    assert filter_rows(session, "icmp || icmpv6") == [3, 5, 9, 11]
    # as in Wireshark, the quoted header matches too: the error is about that datagram
    assert filter_rows(session, "udp.dstport == 47313") == [4, 5, 10, 11]


def test_without_the_decoder_nothing_changes() -> None:
    session = Session.open(SAMPLE, load_registry())
    session.registry.decoders.pop("icmp", None)
    assert [pd.pdus for pd in session.decode() if pd.index in (3, 5, 9, 11)] == [(), (), (), ()]


def test_kernel_errors_now(tmp_path: Path) -> None:
    """Errors made while the test runs: tcpdump on lo, UDP to ports that are closed."""
    require_tool("tcpdump")
    require_root()
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_icmp", SAMPLES / "make_icmp.py")
    assert spec is not None and spec.loader is not None
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    pcap = tmp_path / "now.pcap"
    truth = make.record(pcap)
    (tmp_path / "now.truth.json").write_text(json.dumps(truth))
    rows, session = _report(pcap)
    _check(rows, session, tmp_path / "now.truth.json")


def test_public_error_columns_are_the_icmp_packets() -> None:
    """Source, Destination and Protocol of an error are its own, not the quoted datagram's."""
    from protoscope.inspector.icmp_errors import shown_protocol
    from protoscope.inspector.session import endpoints, packet_protocols
    from tests.conftest import public_capture

    session = Session.open(public_capture("ndpi--stun_signal.pcapng"), _registry())
    (pd,) = list(session.decode(packets=[6]))  # frame 7: ICMP from the server to the client
    assert endpoints(session.index, 6) == ("35.158.183.167", "192.168.12.169")
    assert shown_protocol(packet_protocols(session.index, 6, pd.pdus)) == "icmp"
    assert shown_protocol(["eth", "ip", "udp", "stun"]) == "stun"
