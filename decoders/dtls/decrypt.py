"""DTLS record decryption with a key log: the glue between the record parser (records.py) and the
connection's key schedule (decoders/tls/connection.py), for one datagram of one direction.

DTLS 1.2 (RFC 6347): the epoch and sequence number in each header are the 64-bit sequence number
of TLS 1.2's record protection; epoch 1 starts at each side's ChangeCipherSpec. DTLS 1.3 (RFC 9147):
unified headers carry the low bits of the epoch and of the sequence number, the latter masked with
the sn_key (section 4.2.3); the full numbers are rebuilt from the highest seen (section 4.2.2),
and the additional data is the header as sent but with the sequence number bytes unmasked
(section 4: "prior to record number encryption"; see DtlsCrypt._unmask_and_open).
"""

from __future__ import annotations

from collections.abc import Mapping

from protoscope.decoders.api import Finding, FlowContext, InnerPayload
from protoscope.decoders.rtp.srtcp import SRTP_PROFILE
from protoscope.decoders.tls import crypto
from protoscope.decoders.tls.connection import Connection, Side
from protoscope.decoders.tls.keylog import KeyLog

CONNECTION = "dtls.connection"
EXPORTER = "dtls.exporter"
CLIENT_IS_FLOW_CLIENT = "dtls.client_is_flow_client"
RECORD_HEADER = 13


def rebuild(low: int, bits: int, highest: int | None) -> int:
    """RFC 9147 section 4.2.2: the full number whose low `bits` are `low`, closest to `highest + 1`."""
    if highest is None:
        return low
    span = 1 << bits
    expected = highest + 1
    candidate = (expected & ~(span - 1)) | low
    if candidate - expected > span // 2 and candidate >= span:
        candidate -= span
    elif expected - candidate > span // 2:
        candidate += span
    return candidate


class DtlsCrypt:
    """Key schedule events and record opening for one decode call (one datagram, one direction)."""

    __slots__ = ("conn", "ctx", "findings", "inner", "keys")

    def __init__(self, keys: KeyLog, ctx: FlowContext, findings: list[Finding]) -> None:
        self.keys = keys
        self.ctx = ctx
        self.findings = findings
        self.inner: list[InnerPayload] = []
        """Decrypted application data, for the registry (SCTP on a WebRTC flow)."""
        conn = ctx.shared.get(CONNECTION)
        if not isinstance(conn, Connection):
            conn = ctx.shared[CONNECTION] = Connection(dtls=True)
        self.conn = conn

    @property
    def side(self) -> Side | None:
        return self.conn.side(self.ctx.from_client)

    # -- handshake events ---------------------------------------------------------------------

    def client_hello(self, facts: Mapping[str, object], protected: bool = False) -> None:
        """`protected`: it came in an epoch > 0 record, a renegotiation (see Connection.client_hello)."""
        random = facts.get("random")
        if isinstance(random, bytes) and random != self.conn.client_random:
            self.conn.client_hello(random, self.ctx.from_client, protected)
            self.ctx.shared[CLIENT_IS_FLOW_CLIENT] = self.ctx.from_client
            self.ctx.shared.pop(EXPORTER, None)

    def server_hello(self, facts: Mapping[str, object]) -> None:
        random = facts.get("random")
        conn = self.conn
        if not isinstance(random, bytes) or random == conn.server_random or conn.client_random is None:
            return  # a retransmitted ServerHello changes nothing
        conn.server_hello(dict(facts), self.keys)
        exporter = conn.exporter()
        if exporter is not None:
            self.ctx.shared[EXPORTER] = exporter

    def change_cipher_spec(self, epoch: int) -> None:
        """DTLS 1.2: the sender's records of the next epoch use the negotiated keys."""
        side, conn = self.side, self.conn
        if side is None or conn.tls13:
            return
        side.encrypted = True
        if side.pending is not None:
            side.openers[epoch + 1] = side.pending

    def handshake_done(self, mtype: int) -> None:
        """DTLS 1.3: Finished and KeyUpdate move the sender to its next epoch's keys."""
        side = self.side
        if side is None:
            return
        if mtype == 20:
            self.conn.finished(side)
        elif mtype == 24:
            self.conn.key_update(side)

    # -- records ------------------------------------------------------------------------------

    def _no_key(self, side: Side, span: tuple[int, int], epoch: int) -> None:
        if not self.keys.given or side.reported:
            return
        why = side.no_key or f"no key for epoch {epoch}"
        side.reported = True
        self.findings.append(Finding("warn", "dtls.decrypt_failed", why, span))

    def _replay(self, side: Side, number: int, span: tuple[int, int]) -> bool:
        """Whether the record number `number` (its tag verified) was opened before: a note, and its
        plaintext is not handed on again. A number behind the side's window (tls/replay.py) is
        handed on: the window cannot tell, and one late record is likelier than a replay."""
        window = side.replay
        if window.check(number) == "replay":
            self.findings.append(
                Finding("note", "dtls.replay", f"record number {number:#x} seen before", span)
            )
            return True
        window.add(number)
        return False

    def open12(
        self, data: bytes, pos: int, end: int, ctype: int, version: int, epoch: int, seq: int
    ) -> tuple[int, bytes, int, bool] | None:
        """A DTLS 1.2 record of epoch > 0: (content type, plaintext, its offset in data, replay)
        or None when it cannot be opened (a finding says why when a key log was given)."""
        side = self.side
        if side is None:
            return None
        opener = side.openers.get(epoch)
        if opener is None:
            self._no_key(side, (pos, end), epoch)
            return None
        number = epoch << 48 | seq
        try:
            plain = opener.open(
                number, ctype, version, data[pos : pos + RECORD_HEADER], data[pos + RECORD_HEADER : end]
            )
        except crypto.DecryptError as exc:
            self.findings.append(
                Finding("warn", "dtls.decrypt_failed", f"{exc} (epoch {epoch}, sequence {seq})", (pos, end))
            )
            return None
        suite = self.conn.suite
        skip = 16 if suite is not None and not suite.aead else suite.explicit_nonce_len if suite else 0
        return ctype, plain, pos + RECORD_HEADER + skip, self._replay(side, number, (pos, end))

    def open13(
        self, data: bytes, pos: int, header_end: int, end: int, seq_at: int, seq_len: int
    ) -> tuple[int, bytes, int, int, bool] | None:
        """A DTLS 1.3 unified-header record: (true content type, plaintext, its offset, full
        sequence number, replay) or None."""
        side, conn = self.side, self.conn
        if side is None or conn.suite is None:
            return None
        bits = data[pos] & 0x03
        epochs = [e for e in side.openers if e & 0x03 == bits]
        if not epochs:
            self._no_key(side, (pos, end), bits)
            return None
        epoch = max(epochs)
        chacha = conn.suite.cipher == "CHACHA20-POLY1305"
        try:
            try:
                seq, plain = self._unmask_and_open(side, epoch, data, pos, header_end, end, seq_at, seq_len)
            except crypto.DecryptError:
                if not chacha or side.sn_swapped is not None:
                    raise
                seq, plain = self._unmask_and_open(
                    side, epoch, data, pos, header_end, end, seq_at, seq_len, swapped=True
                )
                side.sn_swapped = True
                self.findings.append(
                    Finding(
                        "note",
                        "dtls.record_number_quirk",
                        "record numbers masked with the ChaCha20 counter read big-endian "
                        "(wolfSSL before 5.6.4); opened that way",
                        (pos, end),
                    )
                )
            else:
                if chacha and side.sn_swapped is None:
                    side.sn_swapped = False
            content, true_type = crypto.inner_plaintext(plain)
        except crypto.DecryptError as exc:
            self.findings.append(Finding("warn", "dtls.decrypt_failed", f"{exc} (epoch {epoch})", (pos, end)))
            return None
        side.highest[epoch] = max(seq, side.highest.get(epoch, -1))
        replay = self._replay(side, epoch << 48 | seq, (pos, end))
        return true_type, content, header_end, seq, replay

    def _unmask_and_open(
        self,
        side: Side,
        epoch: int,
        data: bytes,
        pos: int,
        header_end: int,
        end: int,
        seq_at: int,
        seq_len: int,
        swapped: bool | None = None,
    ) -> tuple[int, bytes]:
        """(full sequence number, inner plaintext) of one record, or DecryptError.

        RFC 9147 section 4: the additional data is the unified header "prior to record number
        encryption", i.e. as on the wire but with the sequence number bytes in the clear: the
        sender protects the record first and masks the sequence number afterwards with a mask
        made from that ciphertext (section 4.2.3), so the receiver unmasks first, then opens.
        wolfSSL does the same (Dtls13EncryptRecordNumber runs on the header after the AEAD;
        Dtls13ParseUnifiedRecordLayer unmasks in place before it), and so do the records of
        captures/samples/dtls13-keys.pcap, which open only that way."""
        key = side.sn_keys.get(epoch)
        if key is None:
            raise crypto.DecryptError("no record number key")
        suite = self.conn.suite
        assert suite is not None
        ciphertext = data[header_end:end]
        quirk = side.sn_swapped if swapped is None else swapped
        mask = crypto.record_number_mask(suite, key, ciphertext, bool(quirk))
        low = int.from_bytes(data[seq_at : seq_at + seq_len], "big") ^ int.from_bytes(mask[:seq_len], "big")
        seq = rebuild(low, 8 * seq_len, side.highest.get(epoch))
        header = bytearray(data[pos:header_end])
        header[seq_at - pos : seq_at - pos + seq_len] = low.to_bytes(seq_len, "big")
        return seq, side.openers[epoch].open(seq, 23, 0xFEFD, bytes(header), ciphertext)

    def inner_protocol(self) -> str | None:
        """What decrypted application data carries: SCTP on a WebRTC flow (RFC 8261; the flow
        carried STUN, or the handshake negotiated SRTP), else unknown (the registry decides)."""
        shared = self.ctx.shared
        if shared.get(SRTP_PROFILE) or any(k.startswith("stun.") for k in shared):
            return "sctp"
        return None
