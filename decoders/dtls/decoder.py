"""The DTLS datagram decoder (reached by RFC 7983 demux on STUN flows, or its strict sniff); with
a key log (option "tls.keylog") protected records are opened and their plaintext handed on."""

from __future__ import annotations

from typing import ClassVar, Literal

from protoscope.decoders.api import DecodeResult, FlowContext, Options, Pdu
from protoscope.decoders.rtp.srtcp import SRTP_MKI, SRTP_PROFILE
from protoscope.decoders.tls.keylog import KeyLog

from .decrypt import DtlsCrypt
from .fields import FIELDS
from .records import Reassembly, looks_like_dtls, parse_datagram


class DtlsDecoder:
    name: ClassVar[str] = "dtls"
    fields = FIELDS
    transport: ClassVar[Literal["datagram"]] = "datagram"
    ports: ClassVar[frozenset[tuple[str, int]]] = frozenset()

    def __init__(self) -> None:
        self.keys = KeyLog()

    def configure(self, options: Options) -> None:
        keys = options.get("tls.keylog")
        self.keys = keys if isinstance(keys, KeyLog) else KeyLog()

    def sniff(self, data: bytes, ctx: FlowContext) -> bool:
        return looks_like_dtls(data)

    def new_state(self) -> Reassembly:
        return Reassembly()

    def decode(self, data: bytes, state: object, ctx: FlowContext) -> DecodeResult:
        assert isinstance(state, Reassembly)
        # The connection's key schedule is followed even without keys: it knows the DTLS client
        # (ctx.shared["dtls.client_is_flow_client"]) and which records are protected.
        crypt = DtlsCrypt(self.keys, ctx, [])
        record, fields, findings, info = parse_datagram(data, state, crypt)
        ctx.shared["dtls.seen"] = True
        hello = record.facts.get("server_hello")
        if isinstance(hello, dict) and hello.get("srtp_profiles"):
            # The profile the server chose (RFC 5764 section 4.1.1: one) says where SRTCP's
            # trailer is on this flow, for the RTCP decoder.
            ctx.shared[SRTP_PROFILE] = str(hello["srtp_profiles"][0])
            ctx.shared[SRTP_MKI] = len(str(hello.get("srtp_mki", ""))) // 2
        pdu = Pdu("dtls", tuple(fields), (0, len(data)), info, tuple(findings), tuple(crypt.inner), record)
        return DecodeResult((pdu,), len(data))
