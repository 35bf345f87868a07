"""The value of each SCTP chunk type (RFC 9260 section 3.3 and the extensions: RFC 8260 I-DATA
and I-FORWARD-TSN, RFC 3758 FORWARD-TSN, RFC 6525 RE-CONFIG, RFC 4820 PAD, RFC 4895 AUTH,
RFC 5061 ASCONF, NR-SACK), from a table of parsers by chunk type, with Wireshark's field names."""

from __future__ import annotations

from protoscope.decoders.api import Field, Finding

from . import names as nm
from .parameters import parameters
from .wire import DATA_HEADER, I_DATA_HEADER, MAX_LISTED, ChunkParser, ChunkReader, DataFacts

# -- DATA and I-DATA (RFC 9260 section 3.3.1, RFC 8260 section 2.1) ------------------------------


def _data(c: ChunkReader) -> list[Field]:
    v = c.value
    if c.short(DATA_HEADER):
        return []
    tsn, sid, ssn, ppid = c.uint(v, 4), c.uint(v + 4, 2), c.uint(v + 6, 2), c.uint(v + 8, 4)
    payload = (v + DATA_HEADER, c.end)
    c.out.data.append(DataFacts(c.index, False, c.flags, tsn, sid, ssn, ppid, 0, payload))
    c.out.info.append(f"DATA (TSN={tsn}, SID={sid}, SSN={ssn}, PPID={ppid})")
    out = [
        _tsn(tsn, v),
        Field("sctp.data_sid", sid, (v + 4, v + 6)),
        Field("sctp.data_ssn", ssn, (v + 6, v + 8)),
        Field("sctp.data_payload_proto_id", ppid, (v + 8, v + 12)),
        Field("sctp.data_payload_length", c.end - payload[0], payload),
    ]
    if c.end == payload[0]:
        c.out.findings.append(
            Finding("warn", "sctp.data_empty", f"DATA chunk TSN {tsn} carries no user data", (c.start, c.end))
        )
    return out


def _i_data(c: ChunkReader) -> list[Field]:
    v = c.value
    if c.short(I_DATA_HEADER):
        return []
    tsn, sid, mid, last = c.uint(v, 4), c.uint(v + 4, 2), c.uint(v + 8, 4), c.uint(v + 12, 4)
    first = bool(c.flags & 0x02)
    ppid, fsn = (last, 0) if first else (None, last)
    payload = (v + I_DATA_HEADER, c.end)
    c.out.data.append(DataFacts(c.index, True, c.flags, tsn, sid, mid, ppid, fsn, payload))
    c.out.info.append(f"I_DATA (TSN={tsn}, SID={sid}, MID={mid}, {'PPID' if first else 'FSN'}={last})")
    return [
        _tsn(tsn, v),
        Field("sctp.data_sid", sid, (v + 4, v + 6)),
        Field("sctp.data_reserved", c.uint(v + 6, 2), (v + 6, v + 8)),
        Field("sctp.data_mid", mid, (v + 8, v + 12)),
        Field("sctp.data_payload_proto_id" if first else "sctp.data_fsn", last, (v + 12, v + 16)),
        Field("sctp.data_payload_length", c.end - payload[0], payload),
    ]


def _tsn(tsn: int, at: int) -> Field:
    """The TSN, absolute; Wireshark shows it relative by default and absolute as `_raw`."""
    return Field("sctp.data_tsn", tsn, (at, at + 4), (Field("sctp.data_tsn_raw", tsn, (at, at + 4)),))


# -- INIT and INIT-ACK (section 3.3.2, 3.3.3) and their parameters ---------------------------------


def _init(c: ChunkReader) -> list[Field]:
    v = c.value
    if c.short(16):
        return []
    p = "sctp.init_" if c.ctype == nm.INIT else "sctp.initack_"
    out = [
        c.f(p + "initiate_tag", v, 4),
        c.f(p + "credit", v + 4, 4),
        c.f(p + "nr_out_streams", v + 8, 2),
        c.f(p + "nr_in_streams", v + 10, 2),
        c.f(p + "initial_tsn", v + 12, 4),
    ]
    if c.uint(v, 4) == 0:
        c.out.findings.append(
            Finding("warn", "sctp.initiate_tag_zero", "Initiate Tag 0 (RFC 9260 3.3.2: MUST NOT)", (v, v + 4))
        )
    return out + parameters(c, v + 16)


# -- SACK and NR-SACK (section 3.3.4, draft-tuexen-tsvwg-sctp-multipath) ------------------------


def _sack(c: ChunkReader) -> list[Field]:
    v = c.value
    nr = c.ctype == nm.NR_SACK
    if c.short(16 if nr else 12):
        return []
    p = "sctp.nr_sack_" if nr else "sctp.sack_"
    cum = c.uint(v, 4)
    gaps, nr_gaps = c.uint(v + 8, 2), c.uint(v + 10, 2) if nr else 0
    dups = c.uint(v + 12 if nr else v + 10, 2)
    out = [
        Field(
            p + "cumulative_tsn_ack",
            cum,
            (v, v + 4),
            () if nr else (Field(p + "cumulative_tsn_ack_raw", cum, (v, v + 4)),),
        ),
        c.f(p + "a_rwnd", v + 4, 4),
        c.f(p + "number_of_gap_blocks", v + 8, 2),
    ]
    if nr:
        out.append(c.f(p + "number_of_nr_gap_blocks", v + 10, 2))
    out.append(c.f(p + "number_of_duplicated_tsns", v + 12 if nr else v + 10, 2))
    if nr:
        out.append(c.f(p + "reserved", v + 14, 2))
    pos = v + (16 if nr else 12)
    if pos + 4 * (gaps + nr_gaps + dups) > c.end:
        c.out.findings.append(
            Finding(
                "warn",
                "sctp.chunk_length_bad",
                f"SACK declares {gaps} gap blocks and {dups} duplicate TSNs, more than its length holds",
                (c.start, c.end),
            )
        )
    for kind, count in (("gap_block", gaps), ("nr_gap_block", nr_gaps)):
        for i in range(count):
            if pos + 4 > c.end:
                break
            start, end = c.uint(pos, 2), c.uint(pos + 2, 2)
            if i < MAX_LISTED:
                out.append(
                    Field(
                        p + kind,
                        f"{start}-{end}",
                        (pos, pos + 4),
                        (
                            c.f(p + kind + "_start", pos, 2),
                            c.f(p + kind + "_end", pos + 2, 2),
                            Field(p + kind + "_start_tsn", (cum + start) & 0xFFFFFFFF, (pos, pos + 2)),
                            Field(p + kind + "_end_tsn", (cum + end) & 0xFFFFFFFF, (pos + 2, pos + 4)),
                        ),
                    )
                )
            if start > end:
                c.out.findings.append(
                    Finding(
                        "warn", "sctp.sack_gap_block_malformed", f"gap block {start}-{end}", (pos, pos + 4)
                    )
                )
            pos += 4
    for i in range(dups):
        if pos + 4 > c.end:
            break
        if i < MAX_LISTED:
            out.append(c.f(p + "duplicate_tsn", pos, 4))
        pos += 4
    c.out.info.append(f"{'NR-SACK' if nr else 'SACK'} (Ack={cum}, Arwnd={c.uint(v + 4, 4)})")
    return out


# -- the others ---------------------------------------------------------------------------------


def _params_only(c: ChunkReader) -> list[Field]:
    return parameters(c, c.value)


def _causes(c: ChunkReader) -> list[Field]:
    """ABORT and ERROR (sections 3.3.7, 3.3.10): a list of error causes (section 3.3.10)."""
    out: list[Field] = []
    names: list[str] = []
    pos = c.value
    while pos + 4 <= c.end:
        code, length = c.uint(pos, 2), c.uint(pos + 2, 2)
        end = pos + length
        if length < 4 or end > c.end:
            c.out.findings.append(
                Finding(
                    "warn", "sctp.cause_length_bad", f"cause length {length} at offset {pos}", (pos, c.end)
                )
            )
            break
        padded = min(c.end, (end + 3) & ~3)
        name = nm.CAUSES.get(code, f"Unknown cause {code}")
        children = [
            Field("sctp.cause_code", code, (pos, pos + 2)),
            Field("sctp.cause_length", length, (pos + 2, pos + 4)),
        ]
        v = pos + 4
        text = name
        if code == nm.INVALID_STREAM and end - v >= 4:
            children += [c.f("sctp.cause_stream_identifier", v, 2), c.f("sctp.cause_reserved", v + 2, 2)]
            text += f" (stream {c.uint(v, 2)})"
        elif code == nm.MISSING_PARAMETER and end - v >= 4:
            children.append(c.f("sctp.cause_nr_of_missing_parameters", v, 4))
            children += [c.f("sctp.cause_missing_parameter_type", at, 2) for at in range(v + 4, end - 1, 2)][
                :MAX_LISTED
            ]
        elif code == nm.STALE_COOKIE and end - v >= 4:
            children.append(c.f("sctp.cause_measure_of_staleness", v, 4))
        elif code == nm.NO_USER_DATA and end - v >= 4:
            children.append(c.f("sctp.cause_tsn", v, 4))
        elif end > v:
            children.append(Field("sctp.cause_information", c.data[v:end].hex(), (v, end)))
            if code in (nm.USER_INITIATED_ABORT, nm.PROTOCOL_VIOLATION):  # RFC 9260 3.3.10.12-13: text
                text += ": " + c.data[v:end].decode("utf-8", "replace")
        if padded > end:
            children.append(Field("sctp.cause_padding", c.data[end:padded].hex(), (end, padded)))
        if len(names) < MAX_LISTED:
            names.append(text)
            out.append(Field("sctp.cause", text, (pos, padded), tuple(children)))
        pos = padded
    if c.ctype == nm.ABORT:
        c.out.abort_causes = (c.out.abort_causes or []) + names
        c.out.info.append("ABORT" + (f" ({'; '.join(names)})" if names else ""))
    else:
        c.out.info.append("ERROR" + (f" ({'; '.join(names)})" if names else ""))
    return out


def _u32_chunk(name: str) -> ChunkParser:
    def parse(c: ChunkReader) -> list[Field]:
        return [] if c.short(4) else [c.f(name, c.value, 4)]

    return parse


def _cookie(c: ChunkReader) -> list[Field]:
    return [Field("sctp.cookie", c.data[c.value : c.end].hex(), (c.value, c.end))]


def _forward_tsn(c: ChunkReader) -> list[Field]:
    v = c.value
    if c.short(4):
        return []
    tsn = c.uint(v, 4)
    c.out.forward_tsn = tsn
    out = [c.f("sctp.forward_tsn_tsn", v, 4)]
    for n, at in enumerate(range(v + 4, c.end - 3, 4)):
        c.out.forward_streams.append((c.uint(at, 2), False, c.uint(at + 2, 2)))
        if n < MAX_LISTED:
            out += [c.f("sctp.forward_tsn_sid", at, 2), c.f("sctp.forward_tsn_ssn", at + 2, 2)]
    c.out.info.append(f"FORWARD_TSN (TSN={tsn})")
    return out


def _i_forward_tsn(c: ChunkReader) -> list[Field]:
    v = c.value
    if c.short(4):
        return []
    tsn = c.uint(v, 4)
    c.out.forward_tsn = tsn
    out = [c.f("sctp.i_forward_tsn_tsn", v, 4)]
    for n, at in enumerate(range(v + 4, c.end - 7, 8)):
        flags = c.uint(at + 2, 2)
        c.out.forward_streams.append((c.uint(at, 2), bool(flags & 1), c.uint(at + 4, 4)))
        if n < MAX_LISTED:
            out += [
                c.f("sctp.i_forward_tsn_sid", at, 2),
                Field(
                    "sctp.i_forward_tsn_flags",
                    flags,
                    (at + 2, at + 4),
                    (Field("sctp.i_forward_tsn_u_bit", bool(flags & 1), (at + 2, at + 4)),),
                ),
                c.f("sctp.forward_tsn_mid", at + 4, 4),
            ]
    c.out.info.append(f"I_FORWARD_TSN (TSN={tsn})")
    return out


def _auth(c: ChunkReader) -> list[Field]:
    v = c.value
    if c.short(4):
        return []
    return [
        c.f("sctp.shared_key_id", v, 2),
        c.f("sctp.hmac_id", v + 2, 2),
        Field("sctp.hmac", c.data[v + 4 : c.end].hex(), (v + 4, c.end)),
    ]


def _asconf(c: ChunkReader) -> list[Field]:
    if c.short(4):
        return []
    name = "sctp.asconf_seq_nr_number" if c.ctype == nm.ASCONF else "sctp.asconf_ack_seq_nr_number"
    return [c.f(name, c.value, 4), *parameters(c, c.value + 4)]


def _pad(c: ChunkReader) -> list[Field]:
    return [Field("sctp.padding_data", c.data[c.value : c.end].hex(), (c.value, c.end))]


PARSERS: dict[int, ChunkParser] = {
    nm.DATA: _data,
    nm.INIT: _init,
    nm.INIT_ACK: _init,
    nm.SACK: _sack,
    nm.HEARTBEAT: _params_only,
    nm.HEARTBEAT_ACK: _params_only,
    nm.ABORT: _causes,
    nm.SHUTDOWN: _u32_chunk("sctp.shutdown_cumulative_tsn_ack"),
    nm.ERROR: _causes,
    nm.COOKIE_ECHO: _cookie,
    nm.ECNE: _u32_chunk("sctp.ecne_lowest_tsn"),
    nm.CWR: _u32_chunk("sctp.cwr_lowest_tsn"),
    nm.AUTH: _auth,
    nm.NR_SACK: _sack,
    nm.I_DATA: _i_data,
    nm.ASCONF_ACK: _asconf,
    nm.RE_CONFIG: _params_only,
    nm.PAD: _pad,
    nm.FORWARD_TSN: _forward_tsn,
    nm.ASCONF: _asconf,
    nm.I_FORWARD_TSN: _i_forward_tsn,
}
"""Chunk type -> its value's parser; types without one (COOKIE-ACK, SHUTDOWN-ACK,
SHUTDOWN-COMPLETE) have no value."""
