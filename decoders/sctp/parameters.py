"""The TLV parameters of INIT, INIT-ACK, HEARTBEAT, RE-CONFIG and ASCONF chunks (RFC 9260 section
3.2.1, RFC 6525 section 4, RFC 9653), from a table of readers by parameter type; unknown ones are
kept whole, with the action their two high bits ask of a receiver."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from protoscope.decoders.api import Field, Finding

from . import names as nm
from .wire import MAX_LISTED, ChunkReader


def parameters(c: ChunkReader, pos: int) -> list[Field]:
    """The TLV parameters from `pos` to the end of the chunk (RFC 9260 section 3.2.1)."""
    out: list[Field] = []
    count = 0
    while pos < c.end:
        ptype, length = c.uint(pos, 2), c.uint(pos + 2, 2)
        end = pos + length
        if pos + 4 > c.end or length < 4 or end > c.end:
            c.out.findings.append(
                Finding(
                    "warn",
                    "sctp.parameter_length_bad",
                    f"parameter of {length} bytes at offset {pos}, {c.end - pos} bytes left in the chunk",
                    (pos, c.end),
                )
            )
            break
        padded = min(c.end, (end + 3) & ~3)
        count += 1
        if count <= MAX_LISTED:
            out.append(_parameter(c, ptype, pos, end, padded))
        pos = padded
    if count > MAX_LISTED:
        out.append(Field("sctp.parameters_not_listed", count - MAX_LISTED, (c.value, c.end)))
    return out


def _parameter(c: ChunkReader, ptype: int, start: int, end: int, padded: int) -> Field:
    v = start + 4
    children = [
        Field("sctp.parameter_type", ptype, (start, start + 2)),
        Field("sctp.parameter_length", end - start, (start + 2, start + 4)),
    ]
    name = nm.PARAMETER_TYPES.get(ptype)
    reader = PARAMETERS.get(ptype)
    if name is None:
        children += [
            Field("sctp.parameter_bit_1", bool(ptype & 0x8000), (start, start + 2)),
            Field("sctp.parameter_bit_2", bool(ptype & 0x4000), (start, start + 2)),
        ]
    if reader is not None:
        children += reader(c, v, end)
    elif end > v:
        children.append(Field("sctp.parameter_value", c.data[v:end].hex(), (v, end)))
    if padded > end:
        children.append(Field("sctp.parameter_padding", c.data[end:padded].hex(), (end, padded)))
    label = (
        name
        or f"Unknown parameter 0x{ptype:04x} ({nm.UNKNOWN_ACTIONS[ptype >> 14].replace('packet', 'chunk')})"
    )
    return Field("sctp.parameter", label, (start, padded), tuple(children))


def _ipv4(c: ChunkReader, v: int, end: int) -> list[Field]:
    if end - v != 4:
        return [Field("sctp.parameter_value", c.data[v:end].hex(), (v, end))]
    return [Field("sctp.parameter_ipv4_address", str(ipaddress.IPv4Address(c.data[v:end])), (v, end))]


def _ipv6(c: ChunkReader, v: int, end: int) -> list[Field]:
    if end - v != 16:
        return [Field("sctp.parameter_value", c.data[v:end].hex(), (v, end))]
    return [Field("sctp.parameter_ipv6_address", str(ipaddress.IPv6Address(c.data[v:end])), (v, end))]


def _bytes_as(name: str) -> Callable[[ChunkReader, int, int], list[Field]]:
    def read(c: ChunkReader, v: int, end: int) -> list[Field]:
        return [Field(name, c.data[v:end].hex(), (v, end))]

    return read


def _u32_as(name: str) -> Callable[[ChunkReader, int, int], list[Field]]:
    def read(c: ChunkReader, v: int, end: int) -> list[Field]:
        if end - v < 4:
            return [Field("sctp.parameter_value", c.data[v:end].hex(), (v, end))]
        return [c.f(name, v, 4)]

    return read


def _list_as(name: str, size: int) -> Callable[[ChunkReader, int, int], list[Field]]:
    def read(c: ChunkReader, v: int, end: int) -> list[Field]:
        return [c.f(name, at, size) for at in range(v, min(end, v + MAX_LISTED * size) - size + 1, size)]

    return read


def _hostname(c: ChunkReader, v: int, end: int) -> list[Field]:
    text = c.data[v:end].split(b"\x00", 1)[0].decode("ascii", "replace")
    return [Field("sctp.parameter_hostname", text, (v, end))]


def _zero_checksum(c: ChunkReader, v: int, end: int) -> list[Field]:
    if c.ctype in (nm.INIT, nm.INIT_ACK):
        c.out.zero_checksum_acceptable = True
    if end - v < 4:
        return []
    return [c.f("sctp.parameter_zero_checksum_edmid", v, 4)]


def _outgoing_reset(c: ChunkReader, v: int, end: int) -> list[Field]:
    if end - v < 12:
        return [Field("sctp.parameter_value", c.data[v:end].hex(), (v, end))]
    out = [
        c.f("sctp.parameter_reconfig_request_sequence_number", v, 4),
        c.f("sctp.parameter_reconfig_response_sequence_number", v + 4, 4),
        c.f("sctp.parameter_senders_last_assigned_tsn", v + 8, 4),
    ]
    streams = [c.uint(at, 2) for at in range(v + 12, end - 1, 2)]
    if c.ctype == nm.RE_CONFIG:
        c.out.reset_streams = (c.out.reset_streams or []) + streams
        c.out.info.append(f"Outgoing SSN reset ({', '.join(map(str, streams[:8])) or 'all streams'})")
    return out + [c.f("sctp.parameter_reconfig_sid", at, 2) for at in range(v + 12, end - 1, 2)][:MAX_LISTED]


def _incoming_reset(c: ChunkReader, v: int, end: int) -> list[Field]:
    if end - v < 4:
        return [Field("sctp.parameter_value", c.data[v:end].hex(), (v, end))]
    out = [c.f("sctp.parameter_reconfig_request_sequence_number", v, 4)]
    return out + [c.f("sctp.parameter_reconfig_sid", at, 2) for at in range(v + 4, end - 1, 2)][:MAX_LISTED]


def _reconfig_response(c: ChunkReader, v: int, end: int) -> list[Field]:
    if end - v < 8:
        return [Field("sctp.parameter_value", c.data[v:end].hex(), (v, end))]
    out = [
        c.f("sctp.parameter_reconfig_response_sequence_number", v, 4),
        c.f("sctp.parameter_reconfig_response_result", v + 4, 4),
    ]
    result = c.uint(v + 4, 4)
    c.out.info.append(f"Re-configuration response ({nm.RECONFIG_RESULTS.get(result, result)})")
    if end - v >= 16:
        out += [
            c.f("sctp.parameter_senders_next_tsn", v + 8, 4),
            c.f("sctp.parameter_receivers_next_tsn", v + 12, 4),
        ]
    return out


def _add_streams(direction: str) -> Callable[[ChunkReader, int, int], list[Field]]:
    def read(c: ChunkReader, v: int, end: int) -> list[Field]:
        if end - v < 8:
            return [Field("sctp.parameter_value", c.data[v:end].hex(), (v, end))]
        return [
            c.f("sctp.parameter_reconfig_request_sequence_number", v, 4),
            c.f(f"sctp.parameter_add_{direction}_streams_number", v + 4, 2),
            c.f(f"sctp.parameter_add_{direction}_streams_reserved", v + 6, 2),
        ]

    return read


PARAMETERS: dict[int, Callable[[ChunkReader, int, int], list[Field]]] = {
    nm.HEARTBEAT_INFO: _bytes_as("sctp.parameter_heartbeat_information"),
    nm.IPV4: _ipv4,
    nm.IPV6: _ipv6,
    nm.STATE_COOKIE: _bytes_as("sctp.parameter_state_cookie"),
    nm.COOKIE_PRESERVATIVE: _u32_as("sctp.parameter_cookie_preservative_incr"),
    nm.HOSTNAME: _hostname,
    nm.SUPPORTED_ADDRESS_TYPES: _list_as("sctp.parameter_supported_address_type", 2),
    nm.OUTGOING_SSN_RESET: _outgoing_reset,
    nm.INCOMING_SSN_RESET: _incoming_reset,
    nm.SSN_TSN_RESET: _u32_as("sctp.parameter_reconfig_request_sequence_number"),
    nm.RECONFIG_RESPONSE: _reconfig_response,
    nm.ADD_OUTGOING_STREAMS: _add_streams("outgoing"),
    nm.ADD_INCOMING_STREAMS: _add_streams("incoming"),
    nm.ZERO_CHECKSUM_ACCEPTABLE: _zero_checksum,
    nm.RANDOM: _bytes_as("sctp.random_number"),
    nm.CHUNK_LIST: _list_as("sctp.chunk_type_to_auth", 1),
    nm.HMAC_ALGO: _list_as("sctp.hmac_id", 2),
    nm.SUPPORTED_EXTENSIONS: _list_as("sctp.supported_chunk_type", 1),
    nm.ADAPTATION_LAYER: _u32_as("sctp.adaptation_layer_indication"),
}
