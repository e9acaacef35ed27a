"""A test-time PKI for the certificate rules: real keys and certificates, nothing checked in.

cryptography refuses to sign with SHA-1 or MD5 and only writes X.509 v3, so certificates the
validator must reject for those reasons are re-signed here with a minimal DER re-assembler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

Key = CertificateIssuerPrivateKeyTypes
NOW = datetime.now(UTC).replace(microsecond=0)
KEY_CERT_SIGN = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)

# AlgorithmIdentifier DER for the algorithms cryptography will not sign certificates with.
SHA1_WITH_RSA = bytes.fromhex("300d06092a864886f70d0101050500")
MD5_WITH_RSA = bytes.fromhex("300d06092a864886f70d0101040500")
SHA1_WITH_ECDSA = bytes.fromhex("300906072a8648ce3d0401")


def _tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)])
    if n >= 0x80:
        length += n.to_bytes(length[0] & 0x7F, "big")
    return bytes([tag]) + length + value


def _children(der: bytes) -> list[bytes]:
    """The raw TLVs inside one DER SEQUENCE (definite lengths only: it is DER)."""
    assert der[0] == 0x30
    pos, items = _header_end(der, 0)[0], []
    while pos < len(der):
        start = pos
        value_start, length = _header_end(der, pos)
        pos = value_start + length
        items.append(der[start:pos])
    return items


def _header_end(der: bytes, pos: int) -> tuple[int, int]:
    first = der[pos + 1]
    if first < 0x80:
        return pos + 2, first
    size = first & 0x7F
    return pos + 2 + size, int.from_bytes(der[pos + 2 : pos + 2 + size], "big")


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: Key

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


class Pki:
    def __init__(self) -> None:
        self._keys: dict[str, Key] = {}

    def key(self, kind: str = "p256", *, fresh: bool = False) -> Key:
        if fresh or kind not in self._keys:
            makers: dict[str, Callable[[], Key]] = {
                "rsa2048": lambda: rsa.generate_private_key(65537, 2048),
                "rsa1024": lambda: rsa.generate_private_key(65537, 1024),  # noqa: S505 - the weak case
                "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
                "secp256k1": lambda: ec.generate_private_key(ec.SECP256K1()),
                "ed25519": ed25519.Ed25519PrivateKey.generate,
                "dsa": lambda: dsa.generate_private_key(1024),  # noqa: S505 - any DSA is refused
            }
            made = makers[kind]()
            if fresh:
                return made
            self._keys[kind] = made
        return self._keys[kind]

    def ca(
        self,
        cn: str,
        *,
        key: Key | str = "p256",
        issuer: Issued | None = None,
        issuer_name: str | None = None,
        ca: bool | None = True,
        key_usage: x509.KeyUsage | None = KEY_CERT_SIGN,
        not_before: datetime = NOW - timedelta(days=1),
        not_after: datetime = NOW + timedelta(days=365),
        pss: bool = False,
    ) -> Issued:
        """A CA certificate, self-signed unless `issuer` is given; ca=None: no basicConstraints."""
        own = self.key(key) if isinstance(key, str) else key
        signer = issuer.key if issuer else own
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        if issuer_name is not None:
            issuer_dn = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)])
        else:
            issuer_dn = issuer.cert.subject if issuer else name
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer_dn)
            .public_key(own.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
        )
        if ca is not None:
            builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
        if key_usage is not None:
            builder = builder.add_extension(key_usage, critical=True)
        hash_ = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
        rsa_padding = padding.PSS(padding.MGF1(hashes.SHA256()), 32) if pss else None
        return Issued(builder.sign(signer, hash_, rsa_padding=rsa_padding), own)

    def resign(
        self, issued: Issued, signer: Key, algorithm: bytes | None, *, v1: bool = False
    ) -> Issued:
        """Re-sign `issued` with another AlgorithmIdentifier (None: keep it), optionally as v1."""
        tbs = _children(issued.cert.tbs_certificate_bytes)
        if v1:  # RFC 5280 §4.1: v1 has no [0] version and no [3] extensions
            tbs = [t for t in tbs if t[0] not in (0xA0, 0xA3)]
        sig_index = 1 if v1 else 2
        algorithm = algorithm or tbs[sig_index]
        tbs[sig_index] = algorithm
        tbs_der = _tlv(0x30, b"".join(tbs))
        # The insecure hashes are the point: these certificates must be refused.
        hash_: hashes.HashAlgorithm = {
            SHA1_WITH_RSA: hashes.SHA1(),  # noqa: S303
            MD5_WITH_RSA: hashes.MD5(),  # noqa: S303
            SHA1_WITH_ECDSA: hashes.SHA1(),  # noqa: S303
        }.get(algorithm, hashes.SHA256())
        if isinstance(signer, rsa.RSAPrivateKey):
            signature = signer.sign(tbs_der, padding.PKCS1v15(), hash_)
        else:
            assert isinstance(signer, ec.EllipticCurvePrivateKey)
            signature = signer.sign(tbs_der, ec.ECDSA(hash_))
        der = _tlv(0x30, tbs_der + algorithm + _tlv(0x03, b"\x00" + signature))
        return Issued(x509.load_der_x509_certificate(der), issued.key)


@pytest.fixture(scope="session")
def pki() -> Pki:
    return Pki()
