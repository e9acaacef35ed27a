"""Test-time PKI for the revocation tests (habit 12: generated, never checked in).

EC P-256 throughout (fast to make). The client CA issues leaves carrying an AIA OCSP URL, two
delegated responder certificates (with and without EKU OCSPSigning) and CRLs; an unrelated CA
signs forgeries and CRLs that must not count.
"""

from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

API = "api.example.com"
HOUR = dt.timedelta(hours=1)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


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
class Ca:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    pem: Path

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(Encoding.DER)

    def crl(
        self, revoked: tuple[int, ...] = (), *, next_update: dt.datetime | None = None
    ) -> bytes:
        t = now()
        next_update = next_update or t + 24 * HOUR
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(min(t, next_update) - HOUR)
            .next_update(next_update)
        )
        for serial in revoked:
            entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(t - HOUR)
            builder = builder.add_revoked_certificate(entry.build())
        return builder.sign(self.key, hashes.SHA256()).public_bytes(Encoding.DER)


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

    def _ca(self, cn: str, parent: Ca | None = None) -> Ca:
        """A root CA, or an intermediate under `parent`."""
        key = ec.generate_private_key(ec.SECP256R1())
        t = now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(parent.cert.subject if parent else _name(cn))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(t - HOUR)
            .not_valid_after(t + 48 * HOUR)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(parent.key if parent else key, hashes.SHA256())
        )
        pem = self.tmp / f"{cn.replace(' ', '-')}.pem"
        pem.write_bytes(_pem_key(key) + cert.public_bytes(Encoding.PEM))
        return Ca(cert, key, pem)

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
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(ca.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(t - HOUR)
            .not_valid_after(t + 24 * HOUR)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), False
            )
        )
        if ocsp_url is not None:
            aia = x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)
            )
            builder = builder.add_extension(x509.AuthorityInformationAccess([aia]), False)
        cert = builder.sign(ca.key, hashes.SHA256())
        self._count += 1
        pem = self.tmp / f"{cn}-{self._count}.pem"
        chain = cert.public_bytes(Encoding.PEM)
        if ca.cert.issuer != ca.cert.subject:  # an intermediate: the client sends it along
            chain += ca.cert.public_bytes(Encoding.PEM)
        pem.write_bytes(_pem_key(key) + chain)
        return Issued(cert, key, pem)

    def client_context(self, leaf: Issued | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.server_ca.configure_trust(ctx)
        if leaf is not None:
            ctx.load_cert_chain(leaf.pem)
        return ctx
