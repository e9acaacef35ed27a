"""A test-time PKI for the certificate rules: real keys and certificates, nothing checked in.

The building blocks, including the DER re-signing for SHA-1, MD5 and v1 certificates that
cryptography will not make, are in `pkitools`; `Pki` adds this suite's defaults.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509

from pkitools import CA_KEY_USAGE, Issued, Key, KeyRing, build_certificate, common_name

NOW = datetime.now(UTC).replace(microsecond=0)


class Pki(KeyRing):
    def ca(
        self,
        cn: str,
        *,
        key: Key | str = "p256",
        issuer: Issued | None = None,
        ca: bool | None = True,
        key_usage: x509.KeyUsage | None = CA_KEY_USAGE,
        not_before: datetime = NOW - timedelta(days=1),
        not_after: datetime = NOW + timedelta(days=365),
        pss: bool = False,
    ) -> Issued:
        """A CA certificate, self-signed unless `issuer` is given; ca=None: no basicConstraints."""
        own = self.key(key) if isinstance(key, str) else key
        cert = build_certificate(
            common_name(cn),
            own,
            not_before=not_before,
            not_after=not_after,
            issuer=issuer,
            ca=ca,
            key_usage=key_usage,
            pss=pss,
        )
        return Issued(cert, own)


@pytest.fixture(scope="session")
def pki() -> Pki:
    return Pki()
