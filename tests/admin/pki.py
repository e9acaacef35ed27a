"""A small test-time PKI for the admin API tests: real keys and certificates, nothing checked in.

The building blocks, including the DER re-signing for SHA-1 and MD5 that cryptography will not
make, are in `pkitools`; `Pki` dates certificates from the service's clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pkitools import (
    CA_KEY_USAGE,
    MD5_WITH_RSA,
    SHA1_WITH_RSA,
    Issued,
    KeyRing,
    build_certificate,
    common_name,
    resign_weak,
)

DAY = timedelta(days=1)
_WEAK = {"sha1": SHA1_WITH_RSA, "md5": MD5_WITH_RSA}


class Pki(KeyRing):
    """Certificates relative to `now` (the clock the service under test starts from)."""

    def __init__(self, now: datetime | None = None) -> None:
        super().__init__()
        self.now = now or datetime.now(UTC)

    def ca(
        self,
        cn: str = "Test CA",
        *,
        key: str = "p256",
        issuer: Issued | None = None,
        ca: bool = True,
        valid: tuple[timedelta, timedelta] = (-DAY, 365 * DAY),
    ) -> Issued:
        """A CA certificate (a leaf with ca=False), self-signed unless `issuer` is given.

        Serials are random, so two calls never make the same certificate (fingerprint).
        """
        own = self.key(key)
        cert = build_certificate(
            common_name(cn),
            own,
            not_before=self.now + valid[0],
            not_after=self.now + valid[1],
            issuer=issuer,
            ca=ca,
            key_usage=CA_KEY_USAGE if ca else None,
        )
        return Issued(cert, own)

    def weak(self, hash_name: str, cn: str = "Weak CA") -> Issued:
        """A self-signed RSA CA signed with `sha1` or `md5` instead of SHA-256."""
        return resign_weak(self.ca(cn, key="rsa2048"), _WEAK[hash_name])
