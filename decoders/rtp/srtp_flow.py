"""SRTP and SRTCP on one flow: which master keys may protect a packet (by what the capture and the
command line said), and each stream's rollover counter and replay list (RFC 3711 section 3.3).

The state is per flow direction (the RTP and RTCP decoders' `new_state()`): a sender's streams
are its SSRCs. Authentication picks the key: of the keys that may apply, the first whose tag
matches is pinned to the SSRC. A capture may start mid-call, when the rollover counter is no longer
0: a stream's first packets are tried with counters up to ROC_SEARCH.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from protoscope.decoders.api import Endpoint, Finding, FlowContext

from .packets import parse_rtp
from .srtcp import SRTP_PROFILE
from .srtp import (
    RUN_CHUNK,
    MasterKey,
    ReplayList,
    Srtcp,
    SrtpCrypto,
    decrypt_many,
    estimate_index,
    profile_named,
    unprotect_run,
)
from .srtp_keys import (
    DTLS_CLIENT_IS_FLOW_CLIENT,
    DTLS_EXPORTER,
    SrtpKeyOption,
    dtls_srtp_keys,
    sdes_hint,
    sdes_keys,
)

ROC_SEARCH = 16
"""Rollover counters tried for a stream's first packet (a capture that starts mid-call): 16 x 65,536
packets, about 6 hours of 50-packet/s audio or 17 minutes of 1,000-packet/s video."""
SEARCH_PACKETS = 8
"""Packets of an SSRC for which ROC_SEARCH counters are tried; later ones that no key authenticates
get one try a key (a stream keyed by no one costs no more than a stream keyed right)."""
SEARCH_BUDGET = 4096
"""Packets per flow direction for which counters are searched at all: hostile traffic with a new
SSRC in every packet costs ROC_SEARCH tries a packet only this long."""
MAX_STREAMS = 1024
"""SSRCs remembered per flow direction (the oldest is forgotten)."""
MAX_KEYS = 64
"""Derived session keys kept per flow direction."""
DTLS_KEYS = "srtp.dtls_keys"
"""Key of FlowContext.shared: (exporter, profile name, client key, server key), derived once."""


@dataclass(slots=True)
class Stream:
    """One SSRC's SRTP (or SRTCP) stream: its key and the indexes authenticated."""

    crypto: SrtpCrypto
    replay: ReplayList


@dataclass(slots=True)
class SrtpState:
    """The SRTP state of one flow direction."""

    rtp: dict[int, Stream] = field(default_factory=dict)
    rtcp: dict[int, Stream] = field(default_factory=dict)
    failures: dict[int, int] = field(default_factory=dict)
    """Per SSRC, packets no key authenticated before it had a stream."""
    searches: int = 0
    """Packets for which rollover counters were searched (see SEARCH_BUDGET)."""
    crypto: dict[MasterKey, SrtpCrypto] = field(default_factory=dict)
    sdes: dict[str, tuple[MasterKey, ...]] = field(default_factory=dict)
    """SDES keys by the hint text they came from (parsed once)."""

    def session(self, key: MasterKey) -> SrtpCrypto:
        crypto = self.crypto.get(key)
        if crypto is None:
            if len(self.crypto) >= MAX_KEYS:
                del self.crypto[next(iter(self.crypto))]
            crypto = self.crypto[key] = SrtpCrypto(key)
        return crypto

    def remember(self, table: dict[int, Stream], ssrc: int, stream: Stream) -> None:
        if ssrc not in table and len(table) >= MAX_STREAMS:
            del table[next(iter(table))]
        table[ssrc] = stream
        self.failures.pop(ssrc, None)


@dataclass(frozen=True, slots=True)
class KeyTable:
    """The keys `--srtp-key` gave, by SSRC and by sender: decoder configuration."""

    by_ssrc: Mapping[int, tuple[MasterKey, ...]] = field(default_factory=dict)
    by_sender: Mapping[Endpoint, tuple[MasterKey, ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, options: Mapping[str, object]) -> KeyTable:
        found = options.get("srtp.keys")
        by_ssrc: dict[int, tuple[MasterKey, ...]] = {}
        by_sender: dict[Endpoint, tuple[MasterKey, ...]] = {}
        for opt in found if isinstance(found, list | tuple) else ():
            if not isinstance(opt, SrtpKeyOption):
                continue
            if opt.ssrc is not None:
                by_ssrc[opt.ssrc] = (*by_ssrc.get(opt.ssrc, ()), opt.key)
            if opt.sender is not None:
                by_sender[opt.sender] = (*by_sender.get(opt.sender, ()), opt.key)
        return cls(by_ssrc, by_sender)


def candidate_keys(ctx: FlowContext, ssrc: int, state: SrtpState, table: KeyTable) -> list[MasterKey]:
    """The master keys that may protect the packets of `ssrc` sent by ctx.src, most specific
    first: --srtp-key by SSRC, by sender, DTLS-SRTP of this flow, SDES of the sender, SDES of the
    destination."""
    keys = [*table.by_ssrc.get(ssrc, ()), *table.by_sender.get(ctx.src, ())]
    keys += _dtls_keys(ctx)
    if ctx.hints:
        # The sender's own a=crypto first (offer/answer, RFC 4568 section 6.1); then the one of the
        # SDP that names the destination, as a declarative SDP does (ffmpeg's -sdp_file, SAP, RTSP
        # describe a stream by where it goes). Authentication tells which one it is.
        for end in (ctx.src, ctx.dst):
            text = ctx.hints.get(sdes_hint(end.ip, end.port))
            if text:
                found = state.sdes.get(text)
                if found is None:
                    if len(state.sdes) >= MAX_KEYS:
                        del state.sdes[next(iter(state.sdes))]
                    found = state.sdes[text] = sdes_keys(ctx.hints, end)
                keys += found
    return keys


def _dtls_keys(ctx: FlowContext) -> list[MasterKey]:
    """The DTLS-SRTP master key of this direction's sender: the DTLS client's packets use the client
    key (RFC 5764 section 4.2). Both, the expected one first, when the roles are unknown."""
    exporter = ctx.shared.get(DTLS_EXPORTER)
    name = ctx.shared.get(SRTP_PROFILE)
    if not callable(exporter) or not isinstance(name, str):
        return []
    cached = ctx.shared.get(DTLS_KEYS)
    if not (isinstance(cached, tuple) and cached[0] is exporter and cached[1] == name):
        profile = profile_named(name)
        if profile is None:
            return []
        try:
            client, server = dtls_srtp_keys(exporter, profile)
        except Exception:  # the exporter is another decoder's: what it raises is no key
            return []
        cached = (exporter, name, client, server)
        ctx.shared[DTLS_KEYS] = cached
    _, _, client, server = cached
    roles = ctx.shared.get(DTLS_CLIENT_IS_FLOW_CLIENT)
    if not isinstance(roles, bool):
        return [client, server] if ctx.from_client else [server, client]
    return [client] if ctx.from_client == roles else [server]


@dataclass(frozen=True, slots=True)
class Unprotected:
    """An SRTP packet authenticated and decrypted."""

    payload: bytes
    """The payload in the clear, up to the MKI and tag (padding included)."""
    index: int
    crypto: SrtpCrypto
    replay: str | None
    """"replay" when the index was authenticated before; None otherwise."""
    passed_over: str = ""
    """The source of a key tried first that did not authenticate ("--srtp-key"): the user's key
    lost to one the capture gave, which the user should hear of."""


GIVEN = "--srtp-key"
"""MasterKey.source of the keys the user gave."""


def unprotect_rtp(
    data: bytes, header: int, ssrc: int, seq: int, keys: list[MasterKey], state: SrtpState
) -> Unprotected | str:
    """SRTP packet `data` (its header `header` bytes) authenticated and decrypted with the SSRC's
    pinned key or one of `keys`; or why not."""
    stream = state.rtp.get(ssrc)
    reason = ""
    if stream is not None:
        index = estimate_index(stream.replay.top, seq)
        got = stream.crypto.unprotect_rtp(data, header, index)
        if not isinstance(got, str):
            replay = stream.replay.check(index)
            if replay != "replay":
                stream.replay.add(index)
            return Unprotected(got, index, stream.crypto, "replay" if replay == "replay" else None)
        reason = got
        # Another key may have taken over (a new DTLS handshake, a re-offer): tried below at
        # this stream's index.
        indexes = [index]
    else:
        searched = state.failures.get(ssrc, 0) < SEARCH_PACKETS and state.searches < SEARCH_BUDGET
        state.searches += searched
        indexes = [(roc << 16) | seq for roc in range(ROC_SEARCH if searched else 1)]
    passed_over = ""
    for key in keys:
        crypto = state.session(key)
        if stream is not None and crypto is stream.crypto:
            continue
        for index in indexes:
            got = crypto.unprotect_rtp(data, header, index)
            if isinstance(got, str):
                reason = reason or got
                continue
            state.remember(state.rtp, ssrc, Stream(crypto, ReplayList(index)))
            return Unprotected(got, index, crypto, None, passed_over if key.source != passed_over else "")
        if key.source == GIVEN:
            passed_over = GIVEN
    if stream is None:
        state.failures[ssrc] = state.failures.get(ssrc, 0) + 1
        if len(state.failures) > MAX_STREAMS:
            del state.failures[next(iter(state.failures))]
    return reason or "no key"


@dataclass(frozen=True, slots=True)
class UnprotectedRtcp:
    srtcp: Srtcp
    crypto: SrtpCrypto
    replay: str | None


def unprotect_rtcp(data: bytes, ssrc: int, keys: list[MasterKey], state: SrtpState) -> UnprotectedRtcp | str:
    """SRTCP packet `data` authenticated and decrypted with the sender SSRC's pinned key or one of
    `keys`; or why not. The SRTCP index is in the packet: no counter to guess."""
    stream = state.rtcp.get(ssrc)
    reason = ""
    order = [stream.crypto] if stream is not None else []
    order += [state.session(k) for k in keys]
    for crypto in dict.fromkeys(order):
        got = crypto.unprotect_rtcp(data)
        if isinstance(got, str):
            reason = reason or got
            continue
        if stream is None or crypto is not stream.crypto:
            state.remember(state.rtcp, ssrc, Stream(crypto, ReplayList(got.index)))
            return UnprotectedRtcp(got, crypto, None)
        replay = stream.replay.check(got.index)
        if replay != "replay":
            stream.replay.add(got.index)
        return UnprotectedRtcp(got, crypto, "replay" if replay == "replay" else None)
    return reason or "no key"


def decrypt_pinned(state: SrtpState, packets: Sequence[bytes]) -> list[bytes | None]:
    """The payloads of many SRTP packets of one flow direction, in order, with the keys its earlier
    packets pinned to their SSRCs (decoded one by one through the decoder). None for a packet that
    fails, is a replay, or whose SSRC has no key yet. The inspector's bulk path uses `unprotect_bulk`
    instead, which gives what the decoder gives on each packet (findings, replays, a new key)."""
    out: list[bytes | None] = [None] * len(packets)
    groups: dict[int, tuple[SrtpCrypto, list[int]]] = {}
    for k, data in enumerate(packets):
        if len(data) < 12:
            continue
        stream = state.rtp.get(int.from_bytes(data[8:12], "big"))
        if stream is not None:
            groups.setdefault(id(stream.crypto), (stream.crypto, []))[1].append(k)
    for crypto, rows in groups.values():
        streams = {ssrc: s.replay for ssrc, s in state.rtp.items() if s.crypto is crypto}
        for k, payload in zip(rows, decrypt_many(crypto, [packets[k] for k in rows], streams), strict=True):
            out[k] = payload
    return out


def replay_finding(index: int, ssrc: int) -> Finding:
    """An SRTP packet that authenticated at an index authenticated before (RFC 3711 3.3.2)."""
    return Finding(
        "warn", "srtp.replay", f"SRTP index {index} of SSRC 0x{ssrc:08X} was authenticated before: a replay"
    )


BULK_FAILURES = 256
"""Packets of an SSRC in a row that no key authenticates (each decoded one by one, ~20 us) after
which the bulk path leaves the rest of the SSRC's packets unread: a wrong --srtp-key on a
million-packet call would otherwise cost as much as the plain pass it saves."""


PerPacket = Callable[[int], tuple[bytes | None, tuple[Finding, ...]]]
"""Decode row k through the RTP decoder one by one: its payload in the clear (None: not) and the
findings it gives."""


@dataclass(slots=True)
class BulkRtp:
    """What `unprotect_bulk` learnt of one flow direction's SRTP packets (rows in frame order)."""

    clear: npt.NDArray[np.bool_]
    """Per row: authenticated and decrypted (RtpRecord.payload would not be None)."""
    unread: npt.NDArray[np.bool_]
    """Per row: not decoded, its SSRC having failed BULK_FAILURES times in a row before it."""
    payloads: dict[int, bytes]
    """The payloads in the clear (RTP padding removed) of the rows asked for."""
    findings: dict[int, tuple[Finding, ...]]
    """The findings of the rows that have some, as decoding them one by one gives."""


def unprotect_bulk(
    state: SrtpState,
    buf: Any,
    rows: Rows,
    wanted: npt.NDArray[np.bool_],
    per_packet: PerPacket,
) -> BulkRtp:
    """The SRTP packets `rows` of one flow direction (the later packets of a long capture, after
    its first ones were decoded one by one and pinned keys to their SSRCs) authenticated and
    decrypted as `RtpDecoder.decode` would one by one, in frame order within each SSRC.

    The packets of an SSRC with a pinned key go through `unprotect_run` in bulk; a packet that does
    not authenticate there (a wrong tag, a new key, a jump in numbering) and every packet of an
    SSRC with no key pinned go to `per_packet` (the decoder itself, with the same state), so what
    each gives is what the decoder gives; after BULK_FAILURES failures in a row, the SSRC's later
    packets are left `unread`. SSRCs are independent in `SrtpState` except for its
    bounds (MAX_STREAMS, SEARCH_BUDGET, MAX_KEYS), whose order of use may differ from frame order
    when several unpinned SSRCs interleave."""
    n = len(rows.start)
    clear = np.zeros(n, np.bool_)
    unread = np.zeros(n, np.bool_)
    payloads: dict[int, bytes] = {}
    findings: dict[int, tuple[Finding, ...]] = {}
    order = np.argsort(rows.ssrc, kind="stable")
    bounds = np.flatnonzero(np.diff(rows.ssrc[order])) + 1
    for group in np.split(order, bounds):
        ssrc = int(rows.ssrc[group[0]])
        pos = failed = 0
        while pos < len(group):
            if failed >= BULK_FAILURES:
                unread[group[pos:]] = True  # a key that no longer applies: not worth 20 us a packet
                break
            stream = state.rtp.get(ssrc)
            if stream is None:
                row = int(group[pos])
                failed = 0 if _one_by_one(row, per_packet, clear, payloads, findings) else failed + 1
                pos += 1
                continue
            take = group[pos : pos + RUN_CHUNK]
            run = unprotect_run(
                stream.crypto,
                buf,
                rows.start[take],
                rows.end[take],
                rows.header[take],
                rows.seq[take],
                ssrc,
                stream.replay,
            )
            done = take[: run.done]
            clear[done] = True
            for k in np.flatnonzero(wanted[done] | rows.padded[done]).tolist():
                row = int(done[k])
                payload = run.payload(k)
                if rows.padded[row]:
                    payload, found = _unpad(buf, rows, row, payload)
                    if found:
                        findings[row] = found
                if wanted[row]:
                    payloads[row] = payload
            for k in run.replays:
                row = int(done[k])
                findings[row] = (*findings.get(row, ()), replay_finding(run.indexes[k], ssrc))
            pos += run.done
            failed = 0 if run.done else failed
            if run.stopped:
                ok = _one_by_one(int(group[pos]), per_packet, clear, payloads, findings)
                failed = 0 if ok else failed + 1
                pos += 1
    return BulkRtp(clear, unread, payloads, findings)


@dataclass(frozen=True, slots=True)
class Rows:
    """RTP packets in a buffer, as columns: where each is, its header's size, SSRC and sequence
    number, and whether its P bit is set."""

    start: npt.NDArray[np.int64]
    end: npt.NDArray[np.int64]
    header: npt.NDArray[np.int64]
    ssrc: npt.NDArray[np.uint32]
    seq: npt.NDArray[np.uint16]
    padded: npt.NDArray[np.bool_]


def _one_by_one(
    row: int,
    per_packet: PerPacket,
    clear: npt.NDArray[np.bool_],
    payloads: dict[int, bytes],
    findings: dict[int, tuple[Finding, ...]],
) -> bool:
    """Row `row` decoded by the decoder; whether its payload is in the clear."""
    payload, found = per_packet(row)
    if payload is not None:
        clear[row] = True
        payloads[row] = payload
    if found:
        findings[row] = found
    return payload is not None


def _unpad(buf: Any, rows: Rows, row: int, payload: bytes) -> tuple[bytes, tuple[Finding, ...]]:
    """A decrypted payload whose P bit is set, read as `RtpDecoder.decode` reads it: the padding
    count is its last byte (RFC 3550 section 5.1)."""
    start = int(rows.start[row])
    header = bytes(buf[start : start + int(rows.header[row])])
    rec, _, found = parse_rtp(header + payload)
    if rec is None:
        return payload, tuple(found)
    return payload[: rec.payload_len], tuple(found)
