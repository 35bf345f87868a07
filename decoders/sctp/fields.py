"""The fields the SCTP decoder emits: SCTP's as Wireshark's packet-sctp.c registers them, DCEP's as
packet-rtcdc.c does ("rtcdc"), and ours for what Wireshark leaves to other dissectors (a WebRTC
message's text or bytes, "datachannel") or does not have (the tree nodes, RFC 9653)."""

from __future__ import annotations

from protoscope.decoders.api import FieldInfo

from . import names as nm

_BITS = {0x01: "E (last fragment)", 0x02: "B (first fragment)", 0x04: "U (unordered)", 0x08: "I (SACK now)"}


def _sack(p: str, nr: bool) -> tuple[FieldInfo, ...]:
    out = [
        FieldInfo(p + "cumulative_tsn_ack", "Cumulative TSN ACK", description="Absolute, as on the wire"),
        FieldInfo(p + "a_rwnd", "Advertised receiver window credit (a_rwnd)"),
        FieldInfo(p + "number_of_gap_blocks", "Number of gap acknowledgement blocks"),
        FieldInfo(p + "number_of_duplicated_tsns", "Number of duplicated TSNs"),
        FieldInfo(p + "duplicate_tsn", "Duplicate TSN"),
    ]
    kinds = ("gap_block", "nr_gap_block") if nr else ("gap_block",)
    if not nr:
        out.append(FieldInfo(p + "cumulative_tsn_ack_raw", "Cumulative TSN ACK (absolute)"))
    if nr:
        out += [
            FieldInfo(p + "number_of_nr_gap_blocks", "Number of nr-gap acknowledgement blocks"),
            FieldInfo(p + "reserved", "Reserved", base="hex"),
        ]
    for kind in kinds:
        out += [
            FieldInfo(
                p + kind, "Gap Acknowledgement for TSN", "string", "start-end, relative to the cumulative ack"
            ),
            FieldInfo(p + kind + "_start", "Start"),
            FieldInfo(p + kind + "_end", "End"),
            FieldInfo(p + kind + "_start_tsn", "Start TSN"),
            FieldInfo(p + kind + "_end_tsn", "End TSN"),
        ]
    return tuple(out)


def _init(p: str) -> tuple[FieldInfo, ...]:
    return (
        FieldInfo(p + "initiate_tag", "Initiate tag", base="hex", digits=8),
        FieldInfo(p + "credit", "Advertised receiver window credit (a_rwnd)"),
        FieldInfo(p + "nr_out_streams", "Number of outbound streams"),
        FieldInfo(p + "nr_in_streams", "Number of inbound streams"),
        FieldInfo(p + "initial_tsn", "Initial TSN"),
    )


def _message(p: str, what: str) -> tuple[FieldInfo, ...]:
    return (
        FieldInfo(p + "stream_id", "Stream identifier", description=f"{what}: the SCTP stream"),
        FieldInfo(p + "ppid", "Payload protocol identifier", strings=nm.PPID_NAMES),
        FieldInfo(p + "ordered", "Ordered", "bool", "Sent in order (U bit clear)"),
        FieldInfo(p + "size", "Size", description="Bytes of the message as the application sent it"),
        FieldInfo(p + "frames", "Frames", "string", "The frames its fragments came in"),
        FieldInfo(p + "text", "Text", "string", "The message as UTF-8 text (the first 4096 bytes)"),
        FieldInfo(p + "data", "Data", "string", "The message's bytes in hex (the first 4096)"),
    )


FIELDS: tuple[FieldInfo, ...] = (
    FieldInfo("sctp", "Stream Control Transmission Protocol", "protocol"),
    FieldInfo("sctp.srcport", "Source port"),
    FieldInfo("sctp.dstport", "Destination port"),
    FieldInfo("sctp.verification_tag", "Verification tag", base="hex", digits=8),
    FieldInfo("sctp.checksum", "Checksum", base="hex", digits=8, description="As the packet holds it"),
    FieldInfo("sctp.checksum.status", "Checksum Status", "string", "Good, Bad, or Zero (RFC 9653)"),
    FieldInfo("sctp.chunk", "Chunk", "string", "One chunk: its type's name"),
    FieldInfo("sctp.chunk_type", "Chunk type", strings=nm.CHUNK_TYPES),
    FieldInfo("sctp.chunk_flags", "Chunk flags", base="hex", digits=2),
    FieldInfo("sctp.chunk_bit_1", "Bit", "bool", "Unknown chunk: skip it (else stop processing the packet)"),
    FieldInfo("sctp.chunk_bit_2", "Bit", "bool", "Unknown chunk: report it in an ERROR chunk"),
    FieldInfo("sctp.chunk_length", "Chunk length"),
    FieldInfo("sctp.chunk_padding", "Chunk padding", "bytes"),
    FieldInfo("sctp.chunk_value", "Chunk value", "bytes"),
    # DATA, I-DATA
    FieldInfo("sctp.data_e_bit", "E-Bit", "bool", "Last fragment"),
    FieldInfo("sctp.data_b_bit", "B-Bit", "bool", "First fragment"),
    FieldInfo("sctp.data_u_bit", "U-Bit", "bool", "Unordered"),
    FieldInfo("sctp.data_i_bit", "I-Bit", "bool", "Immediate SACK requested (RFC 7053)"),
    FieldInfo("sctp.data_tsn", "Transmission sequence number", description="Absolute, as on the wire"),
    FieldInfo("sctp.data_tsn_raw", "Transmission sequence number (absolute)"),
    FieldInfo("sctp.data_sid", "Stream identifier", base="hex", digits=4),
    FieldInfo("sctp.data_ssn", "Stream sequence number"),
    FieldInfo("sctp.data_payload_proto_id", "Payload protocol identifier", strings=nm.PPID_NAMES),
    FieldInfo("sctp.data_reserved", "Reserved"),
    FieldInfo("sctp.data_mid", "Message identifier"),
    FieldInfo("sctp.data_fsn", "Fragment sequence number"),
    FieldInfo("sctp.data_payload_length", "User data length", description="Bytes of user data in the chunk"),
    FieldInfo("sctp.retransmission", "This TSN is a retransmission of one in frame"),
    # INIT, INIT-ACK and parameters
    *_init("sctp.init_"),
    *_init("sctp.initack_"),
    FieldInfo("sctp.parameter", "Parameter", "string", "One parameter: its type's name"),
    FieldInfo("sctp.parameter_type", "Parameter type", strings=nm.PARAMETER_TYPES, base="hex", digits=4),
    FieldInfo("sctp.parameter_length", "Parameter length"),
    FieldInfo("sctp.parameter_value", "Parameter value", "bytes"),
    FieldInfo("sctp.parameter_padding", "Parameter padding", "bytes"),
    FieldInfo(
        "sctp.parameter_bit_1", "Bit", "bool", "Unknown parameter: skip it (else stop processing the chunk)"
    ),
    FieldInfo("sctp.parameter_bit_2", "Bit", "bool", "Unknown parameter: report it"),
    FieldInfo("sctp.parameters_not_listed", "Parameters not listed", description="Past the first 256"),
    FieldInfo("sctp.parameter_ipv4_address", "IP Version 4 address", "ipv4"),
    FieldInfo("sctp.parameter_ipv6_address", "IP Version 6 address", "ipv6"),
    FieldInfo("sctp.parameter_heartbeat_information", "Heartbeat information", "bytes"),
    FieldInfo("sctp.parameter_state_cookie", "State cookie", "bytes"),
    FieldInfo("sctp.parameter_cookie_preservative_incr", "Suggested Cookie life-span increment (msec)"),
    FieldInfo("sctp.parameter_hostname", "Hostname", "string"),
    FieldInfo("sctp.parameter_supported_address_type", "Supported address type"),
    FieldInfo(
        "sctp.parameter_zero_checksum_edmid", "Error detection method identifier", description="RFC 9653"
    ),
    FieldInfo("sctp.random_number", "Random number", "bytes"),
    FieldInfo("sctp.chunk_type_to_auth", "Chunk type", strings=nm.CHUNK_TYPES),
    FieldInfo("sctp.hmac_id", "HMAC identifier"),
    FieldInfo("sctp.supported_chunk_type", "Supported chunk type", strings=nm.CHUNK_TYPES),
    FieldInfo("sctp.adaptation_layer_indication", "Indication", base="hex", digits=8),
    # RE-CONFIG (RFC 6525)
    FieldInfo("sctp.parameter_reconfig_request_sequence_number", "Re-configuration request sequence number"),
    FieldInfo(
        "sctp.parameter_reconfig_response_sequence_number", "Re-configuration response sequence number"
    ),
    FieldInfo("sctp.parameter_senders_last_assigned_tsn", "Senders last assigned TSN"),
    FieldInfo("sctp.parameter_senders_next_tsn", "Senders next TSN"),
    FieldInfo("sctp.parameter_receivers_next_tsn", "Receivers next TSN"),
    FieldInfo("sctp.parameter_reconfig_response_result", "Result", strings=nm.RECONFIG_RESULTS),
    FieldInfo("sctp.parameter_reconfig_sid", "Stream Identifier"),
    FieldInfo("sctp.parameter_add_outgoing_streams_number", "Number of streams"),
    FieldInfo("sctp.parameter_add_outgoing_streams_reserved", "Reserved"),
    FieldInfo("sctp.parameter_add_incoming_streams_number", "Number of streams"),
    FieldInfo("sctp.parameter_add_incoming_streams_reserved", "Reserved"),
    # SACK, NR-SACK
    *_sack("sctp.sack_", False),
    *_sack("sctp.nr_sack_", True),
    # the others
    FieldInfo("sctp.abort_t_bit", "T-Bit", "bool", "The verification tag is the sender's own (reflected)"),
    FieldInfo("sctp.shutdown_complete_t_bit", "T-Bit", "bool", "The verification tag is reflected"),
    FieldInfo("sctp.shutdown_cumulative_tsn_ack", "Cumulative TSN Ack"),
    FieldInfo("sctp.ecne_lowest_tsn", "Lowest TSN"),
    FieldInfo("sctp.cwr_lowest_tsn", "Lowest TSN"),
    FieldInfo("sctp.cookie", "Cookie", "bytes"),
    FieldInfo("sctp.forward_tsn_tsn", "New cumulative TSN"),
    FieldInfo("sctp.forward_tsn_sid", "Stream identifier"),
    FieldInfo("sctp.forward_tsn_ssn", "Stream sequence number"),
    FieldInfo("sctp.i_forward_tsn_tsn", "New cumulative TSN"),
    FieldInfo("sctp.i_forward_tsn_sid", "Stream identifier"),
    FieldInfo("sctp.i_forward_tsn_flags", "Flags", base="hex", digits=4, bits={0x1: "U (unordered)"}),
    FieldInfo("sctp.i_forward_tsn_u_bit", "U-Bit", "bool"),
    FieldInfo("sctp.forward_tsn_mid", "Message identifier"),
    FieldInfo("sctp.shared_key_id", "Shared key identifier"),
    FieldInfo("sctp.hmac", "HMAC", "bytes"),
    FieldInfo("sctp.asconf_seq_nr_number", "Sequence number", base="hex", digits=8),
    FieldInfo("sctp.asconf_ack_seq_nr_number", "Sequence number", base="hex", digits=8),
    FieldInfo("sctp.padding_data", "Padding data", "bytes", "A PAD chunk's bytes (RFC 4820)"),
    # error causes
    FieldInfo("sctp.cause", "Cause", "string", "One error cause: its name"),
    FieldInfo("sctp.cause_code", "Cause code", strings=nm.CAUSES, base="hex", digits=4),
    FieldInfo("sctp.cause_length", "Cause length"),
    FieldInfo("sctp.cause_information", "Cause information", "bytes"),
    FieldInfo("sctp.cause_padding", "Cause padding", "bytes"),
    FieldInfo("sctp.cause_stream_identifier", "Stream identifier"),
    FieldInfo("sctp.cause_reserved", "Reserved"),
    FieldInfo("sctp.cause_nr_of_missing_parameters", "Number of missing parameters"),
    FieldInfo("sctp.cause_missing_parameter_type", "Missing parameter type", strings=nm.PARAMETER_TYPES),
    FieldInfo("sctp.cause_measure_of_staleness", "Measure of staleness in usec"),
    FieldInfo("sctp.cause_tsn", "TSN"),
    # user messages
    *_message("sctp.message_", "A user message of another PPID"),
    FieldInfo("rtcdc", "WebRTC Datachannel Protocol (DCEP)", "protocol"),
    FieldInfo("rtcdc.stream_id", "Stream identifier", description="The SCTP stream of the channel"),
    FieldInfo("rtcdc.frames", "Frames", "string", "The frames its fragments came in"),
    FieldInfo("rtcdc.message_type", "Message type", strings=nm.DCEP_TYPES),
    FieldInfo("rtcdc.channel_type", "Channel type", strings=nm.CHANNEL_TYPES, base="hex", digits=2),
    FieldInfo("rtcdc.priority", "Priority"),
    FieldInfo("rtcdc.reliability_parameter", "Reliability parameter"),
    FieldInfo("rtcdc.label_length", "Label length"),
    FieldInfo("rtcdc.protocol_length", "Protocol length"),
    FieldInfo("rtcdc.label", "Label", "string"),
    FieldInfo("rtcdc.protocol", "Protocol", "string"),
    FieldInfo("datachannel", "WebRTC data channel message", "protocol"),
    FieldInfo("datachannel.label", "Label", "string", "The channel's label, from its DATA_CHANNEL_OPEN"),
    *_message("datachannel.", "A WebRTC message"),
)

assert len({f.abbrev for f in FIELDS}) == len(FIELDS), "a field declared twice"
