"""GTP-U: the outer and the inner conversation are both counted; the packet belongs to the inner one."""

from __future__ import annotations

from pathlib import Path

from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from protoscope.captures.index import load


def test_gtpu_outer_and_inner_conversations(tmp_path: Path) -> None:
    outer = Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=2152, dport=2152)
    inner = IP(src="192.168.1.1", dst="8.8.8.8") / UDP(sport=5000, dport=3478) / Raw(b"hello")
    pkts = [
        outer / GTP_U_Header(teid=7) / inner,
        # With a sequence number and a PDU session container extension header.
        outer / GTP_U_Header(teid=7, E=1, next_ex=0x85) / GTPPDUSessionContainer(QFI=5) / inner,
        outer / GTP_U_Header(teid=7, gtp_type=1) / Raw(b"\x00" * 4),  # echo request: not a G-PDU
        Ether() / IP(src="10.0.0.3", dst="10.0.0.4") / UDP(sport=9, dport=9) / Raw(b"x"),
    ]
    path = tmp_path / "gtp.pcap"
    wrpcap(str(path), pkts)
    ix = load(path)
    try:
        flows = {(str(f.client), str(f.server)): f for f in ix.flows}
        tunnel = flows[("10.0.0.1:2152", "10.0.0.2:2152")]
        inside = flows[("192.168.1.1:5000", "8.8.8.8:3478")]
        assert (tunnel.packets, tunnel.carried, tunnel.protocols) == (3, 2, ["gtp"])
        assert (inside.packets, inside.carried) == (2, 0)
        assert tunnel.id < inside.id  # the outer conversation is seen first, as in Wireshark
        assert ix.flow.tolist()[:3] == [inside.id, inside.id, tunnel.id]
        assert ix.payload(0) == ix.payload(1) == b"hello"
        assert "gtp" in ix.stacks[int(ix.stack[1])]
    finally:
        ix.close()
