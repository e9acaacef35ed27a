"""Test-time PKI for the revocation tests (tests/revocation, tests/dataplane/revocation), made at
test time and never checked in; `pki` is their shared session fixture.

EC P-256 throughout (fast to make). The client CA issues leaves carrying an AIA OCSP URL, two
delegated responder certificates (with and without EKU OCSPSigning) and CRLs; an unrelated CA
signs forgeries and CRLs that must not count.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from support.pki import (
    build_certificate,
    build_crl,
    ca_key_usage,
    common_name,
    leaf_certificate,
    private_key_pem,
)

API = "api.example.com"
HOUR = dt.timedelta(hours=1)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    pem: Path  # key + certificate, for ssl.load_cert_chain / openssl -rsigner/-rkey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(Encoding.DER)

    @property
    def serial(self) -> int:
        return self.cert.serial_number


@dataclass
class Ca(Issued):
    """A CA certificate: an `Issued` that also signs CRLs."""

    def crl(
        self, revoked: tuple[int, ...] = (), *, next_update: dt.datetime | None = None
    ) -> bytes:
        t = now()
        next_update = next_update or t + 24 * HOUR
        crl = build_crl(
            self,
            this_update=min(t, next_update) - HOUR,
            next_update=next_update,
            revoked=revoked,
            revoked_at=t - HOUR,
        )
        return crl.public_bytes(Encoding.DER)


class Pki:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self._count = 0
        self.server_ca = trustme.CA()
        self.server_pem = tmp / "server.pem"
        self.server_ca.issue_cert(API).private_key_and_cert_chain_pem.write_to_path(
            str(self.server_pem)
        )
        self.ca = self._ca("Partner Client CA")
        self.unrelated = self._ca("Unrelated CA")
        self.delegated = self.issue("ocsp-responder", eku=ExtendedKeyUsageOID.OCSP_SIGNING)
        self.no_eku = self.issue("not-a-responder", eku=ExtendedKeyUsageOID.CLIENT_AUTH)
        self.intermediate = self._ca("Partner Issuing CA", parent=self.ca)  # sent by clients

    def _ca(
        self, cn: str, parent: Ca | None = None, extensions: Sequence[x509.ExtensionType] = ()
    ) -> Ca:
        """A root CA, or an intermediate under `parent`."""
        key = ec.generate_private_key(ec.SECP256R1())
        t = now()
        cert = build_certificate(
            common_name(cn),
            key,
            not_before=t - HOUR,
            not_after=t + 48 * HOUR,
            issuer=parent,
            key_usage=ca_key_usage(digital_signature=True),
            key_id=True,
            extensions=extensions,
        )
        self._count += 1
        pem = self.tmp / f"{cn.replace(' ', '-')}-{self._count}.pem"
        pem.write_bytes(private_key_pem(key) + cert.public_bytes(Encoding.PEM))
        return Ca(cert, key, pem)

    def intermediate_ca(self, cn: str, ocsp_url: str) -> Ca:
        """A new intermediate under the client CA whose AIA names `ocsp_url` (sent by clients)."""
        return self._ca(cn, self.ca, [_aia(ocsp_url)])

    def issue(
        self,
        cn: str,
        *,
        ocsp_url: str | None = None,
        eku: x509.ObjectIdentifier = ExtendedKeyUsageOID.CLIENT_AUTH,
        issuer: Ca | None = None,
    ) -> Issued:
        """A certificate from the client CA (default): a client leaf, or a responder's."""
        ca = issuer or self.ca
        key = ec.generate_private_key(ec.SECP256R1())
        t = now()
        extensions: list[x509.ExtensionType] = [
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key())
        ]
        if ocsp_url is not None:
            extensions.append(_aia(ocsp_url))
        cert = leaf_certificate(
            common_name(cn),
            key,
            ca,
            not_before=t - HOUR,
            not_after=t + 24 * HOUR,
            eku=eku,
            extensions=extensions,
        )
        self._count += 1
        pem = self.tmp / f"{cn}-{self._count}.pem"
        chain = cert.public_bytes(Encoding.PEM)
        if ca.cert.issuer != ca.cert.subject:  # an intermediate: the client sends it along
            chain += ca.cert.public_bytes(Encoding.PEM)
        pem.write_bytes(private_key_pem(key) + chain)
        return Issued(cert, key, pem)

    def client_context(self, leaf: Issued | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.server_ca.configure_trust(ctx)
        if leaf is not None:
            ctx.load_cert_chain(leaf.pem)
        return ctx


def _aia(ocsp_url: str) -> x509.AuthorityInformationAccess:
    aia = x509.AccessDescription(
        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)
    )
    return x509.AuthorityInformationAccess([aia])


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Imported by the conftest of each revocation test package."""
    return Pki(tmp_path_factory.mktemp("revocation-pki"))
