"""The key schedule of one TLS or DTLS connection as an observer follows it: which secrets the
key log has for the ClientHello's random, and which keys protect each side's records when.

TLS 1.2: both sides' keys come from the master secret (CLIENT_RANDOM line) once the ServerHello
names the suite; each side switches to them at its ChangeCipherSpec, in a renegotiation too, where
each side's old keys stay in force until then (RFC 5246 sections 7.1 and 7.4.1.2). TLS 1.3: the
handshake traffic secrets protect everything after the ServerHello, each side's application
traffic secret 0 everything after its Finished, and a KeyUpdate moves that side to the next
secret. The connection lives in the flow's `ctx.shared` (both directions' decode calls need it);
the side that sent the ClientHello is the TLS client, whichever way the flow is oriented.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from . import crypto
from .keylog import KeyLog
from .replay import ReplayWindow
from .suites import SUITES, CipherSuite

TLS13 = 0x0304
DTLS13 = 0xFEFC


@dataclass(slots=True)
class Side:
    """One sender's record protection."""

    opener: crypto.RecordOpener | None = None
    """Opens this side's records now; None while they are plaintext or no key is known."""
    pending: crypto.RecordOpener | None = None
    """TLS 1.2: the keys its ChangeCipherSpec switches to."""
    skip: int = 0
    """TLS 1.2: bytes before the plaintext in this side's records under `opener` (the explicit
    nonce or CBC IV of the suite its ChangeCipherSpec switched to: a renegotiation may choose
    another suite while this side's records are still protected with the old one)."""
    encrypted: bool = False
    """Its records are protected from now on (with or without a key to open them)."""
    seq: int = 0
    """The next record's sequence number (TLS: implicit, reset at each key change)."""
    secret: bytes | None = None
    """TLS 1.3: the current traffic secret (the next one comes from it at a KeyUpdate)."""
    application: bytes | None = None
    """TLS 1.3: application traffic secret 0, taken after this side's Finished."""
    epoch: int = 0
    """DTLS: the epoch `opener` belongs to."""
    openers: dict[int, crypto.RecordOpener] = field(default_factory=dict)
    """DTLS: openers by epoch (records of an older epoch may still arrive)."""
    sn_keys: dict[int, bytes] = field(default_factory=dict)
    """DTLS 1.3: record number keys by epoch."""
    highest: dict[int, int] = field(default_factory=dict)
    """DTLS 1.3: the highest sequence number opened per epoch (to rebuild the full one from the
    8 or 16 bits a unified header carries)."""
    opened: int = -1
    """TLS: the number of the last record opened under the current key (-1: none yet); a search
    after a gap counts from it (a false record header found by resync took a number, but it was
    no record)."""
    resume: int = 0
    """TLS: searches left: a record that fails may be one after records lost in a gap, so the
    record numbers ahead are tried, on at most this many failures in a row (reset when a record
    opens and when the stream resyncs; see decoder.SEARCHES)."""
    astray: bool = False
    """TLS: a search found no record number that opens this side's records: later failures are
    not reported one by one (the `tls.decrypt_failed` of the search said it)."""
    sn_swapped: bool | None = None
    """DTLS 1.3 ChaCha20: whether this side masks record numbers with the counter read
    big-endian (wolfSSL before 5.6.4, see crypto.record_number_mask); None until a record opens."""
    no_key: str = ""
    """Why this side's records cannot be opened, when a key log was given but does not help."""
    reported: bool = False
    """`no_key` has been reported (once per side, not once per record)."""
    replay: ReplayWindow = field(default_factory=ReplayWindow)
    """DTLS: the record numbers (epoch << 48 | seq) opened lately, to tell replays."""


@dataclass(slots=True)
class Connection:
    """What the handshake showed and the keys it led to."""

    client_random: bytes | None = None
    server_random: bytes | None = None
    suite_id: int | None = None
    suite: CipherSuite | None = None
    version: int | None = None
    """The negotiated version (supported_versions when present)."""
    encrypt_then_mac: bool = False
    alpn: str | None = None
    client_is_flow_client: bool | None = None
    master: bytes | None = None
    exporter_secret: bytes | None = None
    dtls: bool = False
    client: Side = field(default_factory=Side)
    server: Side = field(default_factory=Side)

    @property
    def tls13(self) -> bool:
        return self.version in (TLS13, DTLS13)

    @property
    def label_prefix(self) -> bytes:
        return crypto.DTLS13_LABEL if self.dtls and self.tls13 else crypto.TLS13_LABEL

    def side(self, from_flow_client: bool) -> Side | None:
        """The side that sends bytes in this direction; None before a ClientHello was seen."""
        if self.client_is_flow_client is None:
            return None
        return self.client if from_flow_client == self.client_is_flow_client else self.server

    def is_client(self, from_flow_client: bool) -> bool:
        return from_flow_client == self.client_is_flow_client

    def client_hello(self, random: bytes, from_flow_client: bool, protected: bool = False) -> None:
        """A (new) handshake starts.

        In the clear it is the connection's first (or, in TLS 1.3, the one after a
        HelloRetryRequest): whatever came before is forgotten. Protected, it is a renegotiation
        (RFC 5246 section 7.4.1.2), sent under the current keys: each side's keys stay in force
        until its own ChangeCipherSpec (section 7.1), which may never come (a server answers
        no_renegotiation), so only the new handshake's own facts start afresh: the randoms, the
        master secret, the keys pending. The suite, version and ALPN in force stay until the new
        ServerHello names the new ones."""
        if protected and self.client_random is not None:
            self.client_random = bytes(random)
            self.server_random = None
            self.master = None
            self.exporter_secret = None
            self.client.pending = self.server.pending = None
            return
        dtls = self.dtls
        fresh = Connection(client_random=bytes(random), client_is_flow_client=from_flow_client, dtls=dtls)
        for name in self.__slots__:
            setattr(self, name, getattr(fresh, name))

    def server_hello(self, facts: dict[str, object], keys: KeyLog | None) -> None:
        """The server chose: set up what protects the records from here on."""
        if facts.get("hello_retry_request"):
            # Only the version counts: the client's compatibility ChangeCipherSpec that follows
            # must not switch it to keys (RFC 8446 section 4.1.4, appendix D.4).
            selected = facts.get("selected_version")
            self.version = selected if isinstance(selected, int) else self.version
            return
        random = facts.get("random")
        suite = facts.get("cipher_suite")
        self.server_random = random if isinstance(random, bytes) else None
        self.suite_id = suite if isinstance(suite, int) else None
        self.suite = SUITES.get(self.suite_id or -1)
        selected = facts.get("selected_version")
        version = facts.get("version")
        self.version = (
            selected if isinstance(selected, int) else version if isinstance(version, int) else None
        )
        self.encrypt_then_mac = bool(facts.get("encrypt_then_mac"))
        alpn = facts.get("alpn")
        if isinstance(alpn, list) and alpn:
            self.alpn = str(alpn[0])
        if self.tls13:
            # Everything after the ServerHello is protected, whether we can open it or not.
            self.client.encrypted = self.server.encrypted = True
        self._keys(keys if keys is not None else KeyLog())

    def _no_key(self, why: str) -> None:
        self.client.no_key = self.server.no_key = why

    def _keys(self, keys: KeyLog) -> None:
        if self.client_random is None:
            return
        if not keys.given:
            return  # no key log at all: records are shown, nothing is said about keys
        hex_random = self.client_random.hex()
        if self.suite is None:
            self._no_key(f"cipher suite 0x{self.suite_id or 0:04x} is not one protoscope decrypts")
            return
        if self.suite.tls13 != self.tls13:
            self._no_key(f"cipher suite {self.suite.name} in version 0x{self.version or 0:04x}")
            return
        if self.tls13:
            prefix = self.label_prefix
            for side, stage in ((self.client, "CLIENT"), (self.server, "SERVER")):
                hs = keys.get(f"{stage}_HANDSHAKE_TRAFFIC_SECRET", self.client_random)
                side.application = keys.get(f"{stage}_TRAFFIC_SECRET_0", self.client_random)
                if hs is None:
                    side.no_key = f"no {stage}_HANDSHAKE_TRAFFIC_SECRET for client random {hex_random}"
                    continue
                side.secret = hs
                side.opener = crypto.opener13(self.suite, hs, prefix)
                if self.dtls:
                    side.epoch = 2
                    side.openers[2] = side.opener
                    side.sn_keys[2] = crypto.sn_key(self.suite, hs)
            self.exporter_secret = keys.get("EXPORTER_SECRET", self.client_random)
            return
        master = keys.get("CLIENT_RANDOM", self.client_random)
        if master is None or self.server_random is None:
            self._no_key(f"no key for client random {hex_random}")
            return
        self.master = master
        (cmac, ckey, civ), (smac, skey, siv) = crypto.key_block12(
            self.suite, master, self.client_random, self.server_random
        )
        etm = self.encrypt_then_mac
        self.client.pending = crypto.opener12(self.suite, cmac, ckey, civ, etm)
        self.server.pending = crypto.opener12(self.suite, smac, skey, siv, etm)

    def change_cipher_spec(self, side: Side) -> None:
        """TLS 1.2: the side's next records use the negotiated keys (TLS 1.3's is a no-op)."""
        if self.tls13:
            return
        side.encrypted = True
        side.opener = side.pending
        suite = self.suite
        side.skip = 0 if suite is None else suite.explicit_nonce_len if suite.aead else 16
        side.seq = 0
        side.opened = -1
        side.reported = False  # a renegotiation's keys may be missing when the first ones were not
        if self.dtls and side.opener is not None:
            side.epoch += 1
            side.openers[side.epoch] = side.opener

    def finished(self, side: Side) -> None:
        """TLS 1.3: after its Finished a side sends with application traffic secret 0."""
        if not self.tls13 or self.suite is None:
            return
        if side.application is None:
            if side.opener is not None:
                random = self.client_random.hex() if self.client_random else "?"
                which = "CLIENT" if side is self.client else "SERVER"
                side.no_key = f"no {which}_TRAFFIC_SECRET_0 for client random {random}"
            side.opener = None
            return
        self._switch(side, side.application)

    def key_update(self, side: Side) -> None:
        """TLS 1.3 KeyUpdate: the sender's next records use the next traffic secret."""
        if not self.tls13 or self.suite is None or side.secret is None or side.opener is None:
            return
        self._switch(side, crypto.next_traffic_secret(self.suite.hash, side.secret, self.label_prefix))

    def _switch(self, side: Side, secret: bytes) -> None:
        assert self.suite is not None
        side.secret = secret
        side.opener = crypto.opener13(self.suite, secret, self.label_prefix)
        side.seq = 0
        side.opened = -1
        if self.dtls:
            side.epoch += 1
            side.openers[side.epoch] = side.opener
            side.sn_keys[side.epoch] = crypto.sn_key(self.suite, secret)

    def exporter(self) -> Callable[[bytes, bytes | None, int], bytes] | None:
        """RFC 5705 keying material exporter of this connection, once its secret is known."""
        suite, cr, sr = self.suite, self.client_random, self.server_random
        if suite is None or cr is None or sr is None:
            return None
        if self.tls13:
            secret, prefix = self.exporter_secret, self.label_prefix
            if secret is None:
                return None
            return lambda label, context, length: crypto.exporter13(
                suite.hash, secret, label, context, length, prefix
            )
        master = self.master
        if master is None:
            return None
        return lambda label, context, length: crypto.exporter12(
            suite.hash, master, cr, sr, label, context, length
        )
