"""A CA set's blocked certificates, as the handshake and the re-check of open connections read
them (docs/management.md "Blocked certificates", docs/dataplane.md).

Built once per trust change, with the anchors it belongs to (`TrustAnchors.blocked`): a change of
the list is a change of the anchors' key, hence a new SSL context, so no session made before a
block resumes past it. An entry that expired stops counting at once, without a rebuild: the time
is read at each check.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from edgeproxy.domain.model import BlockedCertificate

# (fingerprint hex | None, issuer | None, serial hex | None, expiry Unix time | None) per entry.
BlockKey = tuple[tuple[str | None, str | None, str | None, float | None], ...]


@dataclass(frozen=True, slots=True)
class BlockList:
    """SHA-256 digest → expiry, and (issuer RFC 4514, serial) → expiry (inf: none)."""

    fingerprints: Mapping[bytes, float]
    serials: Mapping[tuple[str, int], float]
    key: BlockKey

    def __bool__(self) -> bool:
        return bool(self.key)

    @classmethod
    def of(cls, blocks: Iterable[BlockedCertificate]) -> BlockList:
        fingerprints: dict[bytes, float] = {}
        serials: dict[tuple[str, int], float] = {}
        key = []
        for b in blocks:
            expiry = b.expires_at.timestamp() if b.expires_at is not None else None
            until = math.inf if expiry is None else expiry
            if b.fingerprint is not None:
                fingerprints[bytes.fromhex(b.fingerprint)] = until
            elif b.issuer is not None and b.serial_number is not None:
                serials[b.issuer, int(b.serial_number, 16)] = until
            key.append((b.fingerprint, b.issuer, b.serial_number, expiry))
        return cls(
            MappingProxyType(fingerprints),
            MappingProxyType(serials),
            tuple(sorted(key, key=repr)),
        )

    def blocks(self, leaf: x509.Certificate, leaf_der: bytes | None = None) -> bool:
        """Whether `leaf` is blocked now."""
        now = time.time()
        if self.fingerprints:
            der = leaf_der if leaf_der is not None else leaf.public_bytes(Encoding.DER)
            until = self.fingerprints.get(hashlib.sha256(der).digest())
            if until is not None and until > now:
                return True
        if self.serials:
            until = self.serials.get((leaf.issuer.rfc4514_string(), leaf.serial_number))
            if until is not None and until > now:
                return True
        return False


NO_BLOCKS = BlockList.of(())
