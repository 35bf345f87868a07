"""SCTP and DCEP against tshark: aiortc's packets (and the crafted ones of the chunks aiortc never
sends), each in an IPv4 header with protocol 132, dissected by tshark with absolute TSNs and the
CRC32c checked; per frame, every field below has the same values in the same order."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

from protoscope.decoders.api import Pdu, declared_fields
from protoscope.decoders.sctp import SctpDecoder
from protoscope.inspector.session import flatten
from tests.conftest import tshark
from tests.decoders.sctp.vectors import (
    Run,
    chunk,
    data_chunk,
    dcep_open,
    from_client,
    i_data_chunk,
    packet,
    packets,
    param,
    write_pcap,
)

SEP = "\x1f"
FIELDS = [
    "sctp.srcport",
    "sctp.dstport",
    "sctp.verification_tag",
    "sctp.checksum",
    "sctp.chunk_type",
    "sctp.chunk_flags",
    "sctp.chunk_length",
    "sctp.data_e_bit",
    "sctp.data_b_bit",
    "sctp.data_u_bit",
    "sctp.data_tsn_raw",
    "sctp.retransmission",
    "sctp.data_sid",
    "sctp.data_ssn",
    "sctp.data_payload_proto_id",
    "sctp.data_mid",
    "sctp.data_fsn",
    "sctp.init_initiate_tag",
    "sctp.init_credit",
    "sctp.init_nr_out_streams",
    "sctp.init_nr_in_streams",
    "sctp.init_initial_tsn",
    "sctp.initack_initiate_tag",
    "sctp.initack_credit",
    "sctp.initack_nr_out_streams",
    "sctp.initack_nr_in_streams",
    "sctp.initack_initial_tsn",
    "sctp.parameter_type",
    "sctp.parameter_length",
    "sctp.parameter_state_cookie",
    "sctp.parameter_heartbeat_information",
    "sctp.parameter_ipv4_address",
    "sctp.supported_chunk_type",
    "sctp.sack_cumulative_tsn_ack_raw",
    "sctp.sack_a_rwnd",
    "sctp.sack_number_of_gap_blocks",
    "sctp.sack_number_of_duplicated_tsns",
    "sctp.sack_gap_block_start",
    "sctp.sack_gap_block_end",
    "sctp.sack_duplicate_tsn",
    "sctp.nr_sack_cumulative_tsn_ack",
    "sctp.nr_sack_gap_block_start_tsn",
    "sctp.nr_sack_nr_gap_block_end_tsn",
    "sctp.nr_sack_duplicate_tsn",
    "sctp.forward_tsn_tsn",
    "sctp.forward_tsn_sid",
    "sctp.forward_tsn_ssn",
    "sctp.i_forward_tsn_tsn",
    "sctp.i_forward_tsn_sid",
    "sctp.forward_tsn_mid",
    "sctp.parameter_reconfig_request_sequence_number",
    "sctp.parameter_reconfig_response_sequence_number",
    "sctp.parameter_senders_last_assigned_tsn",
    "sctp.parameter_reconfig_sid",
    "sctp.parameter_reconfig_response_result",
    "sctp.shutdown_cumulative_tsn_ack",
    "sctp.shutdown_complete_t_bit",
    "sctp.abort_t_bit",
    "sctp.cause_code",
    "sctp.cause_length",
    "sctp.cause_information",
    "sctp.cause_stream_identifier",
    "sctp.cause_measure_of_staleness",
    "sctp.cause_tsn",
    "sctp.ecne_lowest_tsn",
    "sctp.cwr_lowest_tsn",
    "sctp.padding_data",
    "rtcdc.message_type",
    "rtcdc.channel_type",
    "rtcdc.priority",
    "rtcdc.reliability_parameter",
    "rtcdc.label_length",
    "rtcdc.protocol_length",
    "rtcdc.label",
    "rtcdc.protocol",
]
STATUS = {"1": "Good", "0": "Bad"}
"""tshark's sctp.checksum.status (PROTO_CHECKSUM_E_GOOD, _BAD) as ours. TSNs are compared as
Wireshark's `_raw` (absolute) fields: its sctp.data_tsn is relative by default, ours absolute (and
equal to our _raw, checked in test_packets)."""


BYTES = {f.abbrev for f in declared_fields(SctpDecoder()) if f.type in ("bytes", "string")}


def value(name: str, text: str) -> object:
    """A tshark -T fields value as ours: integers (0x... too; booleans print as 1/0); bytes (hex
    digits) and strings as text."""
    if name in BYTES:
        return text
    return int(text, 16) if text.startswith("0x") else int(text) if text.isdigit() else text


def theirs(path: Path, *args: str) -> dict[int, dict[str, list[object]]]:
    """Frame number -> tshark's values of FIELDS, for the frames with SCTP in them; `args`: more
    tshark options (a key log to decrypt DTLS with)."""
    out = tshark(
        "-r",
        str(path),
        "-o",
        "sctp.relative_tsns:FALSE",
        "-o",
        "sctp.checksum:CRC-32c",
        "-o",
        "sctp.tsn_analysis:TRUE",
        *args,
        "-Y",
        "sctp",
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        f"aggregator={SEP}",
        "-e",
        "frame.number",
        "-e",
        "sctp.checksum.status",
        *(a for f in FIELDS for a in ("-e", f)),
    )
    view = {}
    for line in out.splitlines():
        frame, status, *cells = line.split("\t")
        row: dict[str, list[object]] = {"sctp.checksum.status": [STATUS.get(status, status)]}
        for name, cell in zip(FIELDS, cells, strict=True):
            if cell:
                row[name] = [value(name, v) for v in cell.split(SEP)]
        view[int(frame)] = row
    return view


def our_row(pdus: Sequence[Pdu]) -> dict[str, list[object]]:
    """Our values of FIELDS (and the checksum status) in one frame's PDUs."""
    row: dict[str, list[object]] = {}
    for pdu in pdus:
        for name, v in flatten(pdu.fields).items():
            if name in FIELDS or name == "sctp.checksum.status":
                vs = v if isinstance(v, list) else [v]
                # tshark prints no value for an empty string (a DCEP OPEN without protocol)
                got = [int(x) if isinstance(x, bool) else x for x in vs if x != ""]
                if got:
                    row.setdefault(name, []).extend(got)
    return row


def ours(items: list[tuple[bytes, bool]]) -> list[dict[str, list[object]]]:
    run = Run()
    return [our_row(run.decode(data, client).pdus) for data, client in items]


def compare(tmp_path: Path, items: list[tuple[bytes, bool]]) -> None:
    want = theirs(write_pcap(tmp_path / "sctp.pcap", items))
    got = ours(items)
    assert sorted(want) == list(range(1, len(items) + 1))
    for frame, g in enumerate(got, 1):
        assert g == want[frame], f"frame {frame}"


def test_aiortc_packets_equal_tshark(tmp_path: Path) -> None:
    compare(tmp_path, [(bytes.fromhex(p["hex"]), from_client(p)) for p in packets()])


def test_crafted_chunks_equal_tshark(tmp_path: Path) -> None:
    """The chunks aiortc does not send, laid out by hand per their RFCs."""
    hb = param(1, b"heartbeat-nonce!")
    items = [
        packet(
            chunk(1, 0, struct.pack("!IIHHI", 7, 65536, 16, 16, 1000) + param(5, bytes([192, 0, 2, 7]))),
            tag=0,
        ),
        packet(
            chunk(4, 0, hb),
            chunk(5, 0, hb),
            chunk(12, 0, struct.pack("!I", 55)),
            chunk(13, 0, struct.pack("!I", 56)),
        ),
        packet(
            chunk(
                9,
                0,
                param(1, struct.pack("!HH", 7, 0))
                + param(3, struct.pack("!I", 1500))
                + param(9, struct.pack("!I", 42)),
            )
        ),
        packet(
            chunk(
                16, 0, struct.pack("!IIHHHH", 100, 5000, 1, 1, 1, 0) + struct.pack("!HHHHI", 2, 3, 5, 5, 99)
            )
        ),
        packet(
            chunk(3, 0, struct.pack("!IIHH", 100, 4000, 2, 2) + struct.pack("!HHHHII", 2, 3, 6, 9, 98, 99))
        ),
        packet(
            i_data_chunk(10, 2, 5, 51, b"first", flags=0x02), i_data_chunk(11, 2, 5, 1, b"last!", flags=0x01)
        ),
        packet(chunk(194, 0, struct.pack("!IHHI", 300, 4, 1, 17)), chunk(132, 0, bytes(8))),
        # ASCII: tshark 4.0 reads the label as ASCII; RFC 8832 says UTF-8 (test_messages has one)
        packet(data_chunk(20, 4, 0, 50, dcep_open("files", "proto", 0x82, 256, 3000))),
        packet(chunk(7, 0, struct.pack("!I", 1234))),
        packet(chunk(8, 0, b"")),
        packet(chunk(14, 1, b"")),
        packet(chunk(6, 0, param(12, b"bye!"))),
    ]
    compare(tmp_path, [(data, n % 2 == 0) for n, data in enumerate(items)])
