"""A small test-time PKI for the admin API tests: real keys and certificates, nothing checked in.

cryptography refuses to sign with SHA-1 or MD5, so `resign` swaps the signature algorithm in the
DER and signs the TBS bytes itself (the validator must see such certificates to refuse them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

Key = CertificateIssuerPrivateKeyTypes
DAY = timedelta(days=1)
CA_USAGE = x509.KeyUsage(
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
# AlgorithmIdentifier DER (RFC 3279 §2.2.1) and the hash each one needs.
_WEAK = {
    "sha1": (bytes.fromhex("300d06092a864886f70d0101050500"), hashes.SHA1()),  # noqa: S303
    "md5": (bytes.fromhex("300d06092a864886f70d0101040500"), hashes.MD5()),  # noqa: S303
}


def _tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        return bytes([tag, n]) + value
    size = (n.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + n.to_bytes(size, "big") + value


def _children(der: bytes) -> list[bytes]:
    """The TLVs inside one DER SEQUENCE."""

    def header(pos: int) -> tuple[int, int]:  # (value start, value length)
        first = der[pos + 1]
        if first < 0x80:
            return pos + 2, first
        size = first & 0x7F
        return pos + 2 + size, int.from_bytes(der[pos + 2 : pos + 2 + size], "big")

    pos, items = header(0)[0], []
    while pos < len(der):
        start, length = header(pos)
        items.append(der[pos : start + length])
        pos = start + length
    return items


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: Key

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()


class Pki:
    """Certificates relative to `now` (the clock the service under test starts from)."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)
        self._keys: dict[str, Key] = {}

    def key(self, kind: str = "p256") -> Key:
        if kind not in self._keys:
            self._keys[kind] = {
                "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
                "rsa2048": lambda: rsa.generate_private_key(65537, 2048),
                "rsa1024": lambda: rsa.generate_private_key(65537, 1024),  # noqa: S505 - weak case
            }[kind]()
        return self._keys[kind]

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
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer.cert.subject if issuer else name)
            .public_key(own.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now + valid[0])
            .not_valid_after(self.now + valid[1])
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(CA_USAGE, critical=True)
        return Issued(builder.sign(issuer.key if issuer else own, hashes.SHA256()), own)

    def weak(self, hash_name: str, cn: str = "Weak CA") -> Issued:
        """A self-signed RSA CA signed with `sha1` or `md5` instead of SHA-256."""
        issued = self.ca(cn, key="rsa2048")
        algorithm, hash_ = _WEAK[hash_name]
        tbs = _children(issued.cert.tbs_certificate_bytes)
        tbs[2] = algorithm  # [0] version, serial, signature AlgorithmIdentifier (RFC 5280 §4.1)
        tbs_der = _tlv(0x30, b"".join(tbs))
        key = issued.key
        assert isinstance(key, rsa.RSAPrivateKey)
        signature = key.sign(tbs_der, padding.PKCS1v15(), hash_)
        der = _tlv(0x30, tbs_der + algorithm + _tlv(0x03, b"\x00" + signature))
        return Issued(x509.load_der_x509_certificate(der), key)
