"""`cryptography`'s primitives for TLS, DTLS and SRTP, imported when a key is first used.

Most captures are opened without keys: they do not pay for importing `cryptography` (~100 ms of a
report's start; tests/inspector/test_startup.py keeps it so). Decoders call `primitives()` where
a key is turned into a cipher, never at import.
"""

from __future__ import annotations

import functools
from types import ModuleType, SimpleNamespace
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from collections.abc import Callable

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers import Cipher
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305
    from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand


class Primitives(Protocol):
    """What `primitives()` gives, typed as `cryptography` types them."""

    InvalidTag: type[Exception]
    hashes: dict[str, Callable[[], hashes.HashAlgorithm]]
    Cipher: type[Cipher]  # type: ignore[type-arg]
    algorithms: ModuleType
    modes: ModuleType
    AESCCM: type[AESCCM]
    AESGCM: type[AESGCM]
    ChaCha20Poly1305: type[ChaCha20Poly1305]
    HKDFExpand: type[HKDFExpand]


@functools.cache
def primitives() -> Primitives:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305
    from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

    found = SimpleNamespace(
        InvalidTag=InvalidTag,
        hashes={"sha256": hashes.SHA256, "sha384": hashes.SHA384},
        Cipher=Cipher,
        algorithms=algorithms,
        modes=modes,
        AESCCM=AESCCM,
        AESGCM=AESGCM,
        ChaCha20Poly1305=ChaCha20Poly1305,
        HKDFExpand=HKDFExpand,
    )
    return cast(Primitives, found)
