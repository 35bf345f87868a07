"""NSS key log files (SSLKEYLOGFILE): the secrets TLS and DTLS endpoints export for debugging.

The format (NSS, also written by OpenSSL's keylog callback, BoringSSL, Go's KeyLogWriter, rustls
and browsers): one `LABEL <client_random hex> <secret hex>` per line, `#` comments. TLS/DTLS 1.2
write `CLIENT_RANDOM` (the 48-byte master secret); 1.3 writes the traffic secrets of each stage and
`EXPORTER_SECRET`. Secrets are looked up by the client random the ClientHello shows, as Wireshark
does. The same text is what a pcapng Decryption Secrets Block of type TLS_KEY_LOG carries.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field

LABELS = frozenset(
    {
        "CLIENT_RANDOM",
        "CLIENT_EARLY_TRAFFIC_SECRET",
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
        "EXPORTER_SECRET",
        "EARLY_EXPORTER_SECRET",
    }
)
"""The labels understood (NSS's list; RSA pre-master lines need the RSA exchange and are counted as
skipped)."""
RANDOM_LEN = 32
MAX_SECRET_LEN = 64
"""SHA-512 sized; the longest secret any suite has (1.2's master secret is 48 bytes)."""


@dataclass(slots=True)
class KeyLog:
    """Secrets by (label, client random). `skipped` counts lines that were not understood (a wrong
    label, hex that is not hex, a random that is not 32 bytes): they are left out, never fatal."""

    secrets: dict[tuple[str, bytes], bytes] = field(default_factory=dict)
    lines: int = 0
    """Lines understood and kept."""
    skipped: int = 0
    unused: int = 0
    """Lines of the format's other labels, understood and not needed: RSA pre-master secrets
    (protoscope reads no private keys) and the traffic secrets after a KeyUpdate (derived here
    from secret 0, as RFC 8446 section 7.2 does)."""
    sources: list[str] = field(default_factory=list)
    """Where the secrets came from (file names, "pcapng DSB"), for the report and messages."""

    def add_text(self, text: str, source: str = "") -> tuple[int, int]:
        """Read key log lines; returns (kept, skipped) of this text."""
        kept = skipped = 0
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) == 3 and _unused(parts[0]):
                self.unused += 1
                continue
            if len(parts) != 3 or parts[0] not in LABELS:
                skipped += 1
                continue
            try:
                random = binascii.unhexlify(parts[1])
                secret = binascii.unhexlify(parts[2])
            except (binascii.Error, ValueError):
                skipped += 1
                continue
            if len(random) != RANDOM_LEN or not 0 < len(secret) <= MAX_SECRET_LEN:
                skipped += 1
                continue
            self.secrets[(parts[0], random)] = secret
            kept += 1
        self.lines += kept
        self.skipped += skipped
        if source and source not in self.sources:
            self.sources.append(source)
        return kept, skipped

    def get(self, label: str, client_random: bytes) -> bytes | None:
        return self.secrets.get((label, bytes(client_random)))

    def text(self) -> str:
        """The secrets as key log lines (what `--inject-secrets` puts in a pcapng DSB)."""
        lines = (f"{label} {rnd.hex()} {secret.hex()}\n" for (label, rnd), secret in self.secrets.items())
        return "".join(lines)

    def __bool__(self) -> bool:
        return bool(self.secrets)

    @property
    def given(self) -> bool:
        """A key log was given, even one with nothing usable in it (garbage, or lines of other
        connections): decoders then say why a record stays closed."""
        return bool(self.secrets) or self.skipped > 0 or self.unused > 0 or bool(self.sources)


def _unused(label: str) -> bool:
    """RSA, and {CLIENT,SERVER}_TRAFFIC_SECRET_N with N > 0, or "N" itself as OpenSSL 3.0 writes
    it after a KeyUpdate (see KeyLog.unused)."""
    if label == "RSA":
        return True
    side, _, n = label.rpartition("_")
    updated = n == "N" or (n.isdigit() and n != "0")
    return side in ("CLIENT_TRAFFIC_SECRET", "SERVER_TRAFFIC_SECRET") and updated
