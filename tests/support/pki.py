"""PKI building blocks for every test package: real keys, certificates and CRLs, made at test time
and never checked in.

cryptography signs only with SHA-2 or better, writes only X.509 v3 and insists on a CRL's
nextUpdate. What the product must refuse or warn about for those reasons is re-assembled here
from DER and signed by hand: `resign_weak`, `make_v1`, `crl_without_next_update`.

(tests/ is on sys.path through pyproject's `pythonpath`, so any test module can import
`support.pki`.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Key = CertificateIssuerPrivateKeyTypes

# -- names and keys ----------------------------------------------------------------------------


def common_name(cn: str, *, organization: str | None = None) -> x509.Name:
    """CN=`cn`, after O=`organization` when one is given."""
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if organization is not None:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


KEY_MAKERS: dict[str, Callable[[], Key]] = {
    "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "rsa2048": lambda: rsa.generate_private_key(65537, 2048),
    "rsa1024": lambda: rsa.generate_private_key(65537, 1024),  # noqa: S505 - the weak case
    "secp256k1": lambda: ec.generate_private_key(ec.SECP256K1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
    "dsa": lambda: dsa.generate_private_key(1024),  # noqa: S505 - any DSA is refused
}


class KeyRing:
    """One key of each kind (`KEY_MAKERS`), made on first use and shared: keys are slow to make."""

    def __init__(self) -> None:
        self._keys: dict[str, Key] = {}

    def key(self, kind: str = "p256", *, fresh: bool = False) -> Key:
        """The shared key of `kind`; fresh=True: a new one, not kept."""
        if fresh:
            return KEY_MAKERS[kind]()
        if kind not in self._keys:
            self._keys[kind] = KEY_MAKERS[kind]()
        return self._keys[kind]


def private_key_pem(key: Key) -> bytes:
    """Unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


# -- certificates ------------------------------------------------------------------------------


def ca_key_usage(
    *, digital_signature: bool = False, key_cert_sign: bool = True, crl_sign: bool = True
) -> x509.KeyUsage:
    """A CA's KeyUsage: keyCertSign and cRLSign (either can be turned off), nothing else by
    default."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


CA_KEY_USAGE = ca_key_usage()


class Issuer(Protocol):
    """What signs: a certificate and its key (`Issued`, or a suite's own CA type)."""

    @property
    def cert(self) -> x509.Certificate: ...

    @property
    def key(self) -> Key: ...


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

    @property
    def key_pem(self) -> str:
        return private_key_pem(self.key).decode()


def trustme_issuer(ca: trustme.CA) -> Issued:
    """A trustme CA's certificate and key, to sign what trustme cannot make."""
    key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    return Issued(x509.load_pem_x509_certificate(ca.cert_pem.bytes()), key)


def build_certificate(
    subject: x509.Name,
    key: Key,
    *,
    not_before: datetime,
    not_after: datetime,
    issuer: Issuer | None = None,
    ca: bool | None = True,
    key_usage: x509.KeyUsage | None = None,
    key_id: bool = False,
    extensions: Sequence[x509.ExtensionType] = (),
    pss: bool = False,
) -> x509.Certificate:
    """A certificate for `key`, signed by `issuer` (self-signed without one) with SHA-256.

    A CA by default: basicConstraints (ca=False: a leaf; ca=None: none) and `key_usage` are
    critical; `key_id` adds a SubjectKeyIdentifier, then `extensions` follow, not critical.
    `pss`: RSASSA-PSS instead of PKCS#1 v1.5. Serials are random: no two calls make the same
    certificate.
    """
    signer = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if key_id:
        key_identifier = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        builder = builder.add_extension(key_identifier, critical=False)
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    eddsa = isinstance(signer, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
    rsa_padding = padding.PSS(padding.MGF1(hashes.SHA256()), 32) if pss else None
    return builder.sign(signer, None if eddsa else hashes.SHA256(), rsa_padding=rsa_padding)


def leaf_certificate(
    subject: x509.Name,
    key: Key,
    issuer: Issuer,
    *,
    not_before: datetime,
    not_after: datetime,
    eku: x509.ObjectIdentifier = ExtendedKeyUsageOID.CLIENT_AUTH,
    extensions: Sequence[x509.ExtensionType] = (),
) -> x509.Certificate:
    """An end-entity certificate (CA:FALSE) for `eku` alone, then `extensions`."""
    return build_certificate(
        subject,
        key,
        not_before=not_before,
        not_after=not_after,
        issuer=issuer,
        ca=False,
        extensions=[x509.ExtendedKeyUsage([eku]), *extensions],
    )


# -- CRLs --------------------------------------------------------------------------------------


def build_crl(
    issuer: Issuer,
    *,
    this_update: datetime,
    next_update: datetime,
    number: int | None = None,
    revoked: Iterable[int] = (),
    revoked_at: datetime | None = None,
    extensions: Sequence[x509.ExtensionType] = (),
    signer: Key | None = None,
) -> x509.CertificateRevocationList:
    """A CRL under `issuer`'s name revoking `revoked` (at `revoked_at`, default `this_update`),
    signed with SHA-256 by `signer` (default the issuer's key). `number`: a CRLNumber;
    `extensions` are added critical."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(this_update)
        .next_update(next_update)
    )
    for serial in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(serial)
        builder = builder.add_revoked_certificate(
            entry.revocation_date(revoked_at or this_update).build()
        )
    if number is not None:
        builder = builder.add_extension(x509.CRLNumber(number), critical=False)
    for extension in extensions:
        builder = builder.add_extension(extension, critical=True)
    return builder.sign(signer or issuer.key, hashes.SHA256())


# -- DER surgery: what cryptography will not sign ----------------------------------------------

# AlgorithmIdentifier DER (RFC 3279 §2.2) of the signatures cryptography refuses to make.
SHA1_WITH_RSA = bytes.fromhex("300d06092a864886f70d0101050500")
MD5_WITH_RSA = bytes.fromhex("300d06092a864886f70d0101040500")
SHA1_WITH_ECDSA = bytes.fromhex("300906072a8648ce3d0401")
# The insecure hashes are the point: these certificates must be refused.
_WEAK_HASHES: dict[bytes, hashes.HashAlgorithm] = {
    SHA1_WITH_RSA: hashes.SHA1(),  # noqa: S303
    MD5_WITH_RSA: hashes.MD5(),  # noqa: S303
    SHA1_WITH_ECDSA: hashes.SHA1(),  # noqa: S303
}


def der_tlv(tag: int, value: bytes) -> bytes:
    """One DER tag-length-value (definite length)."""
    n = len(value)
    if n < 0x80:
        return bytes([tag, n]) + value
    size = (n.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + n.to_bytes(size, "big") + value


def der_children(der: bytes) -> list[bytes]:
    """The raw TLVs inside one DER SEQUENCE (definite lengths only: it is DER)."""
    assert der[0] == 0x30

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


def _signed(tbs: bytes, algorithm: bytes, signer: Key, hash_: hashes.HashAlgorithm) -> bytes:
    """SEQUENCE { tbs, algorithm, BIT STRING signature }: a certificate's or a CRL's outer DER."""
    if isinstance(signer, rsa.RSAPrivateKey):
        signature = signer.sign(tbs, padding.PKCS1v15(), hash_)
    else:
        assert isinstance(signer, ec.EllipticCurvePrivateKey)
        signature = signer.sign(tbs, ec.ECDSA(hash_))
    return der_tlv(0x30, tbs + algorithm + der_tlv(0x03, b"\x00" + signature))


def resign_weak(issued: Issued, algorithm: bytes) -> Issued:
    """`issued` signed again by its own key with SHA1_WITH_RSA, MD5_WITH_RSA or SHA1_WITH_ECDSA."""
    tbs = der_children(issued.cert.tbs_certificate_bytes)
    tbs[2] = algorithm  # [0] version, serial, signature AlgorithmIdentifier (RFC 5280 §4.1)
    der = _signed(der_tlv(0x30, b"".join(tbs)), algorithm, issued.key, _WEAK_HASHES[algorithm])
    return Issued(x509.load_der_x509_certificate(der), issued.key)


def make_v1(issued: Issued) -> Issued:
    """`issued` as an X.509 v1 certificate (same algorithm, signed again by its own key)."""
    # RFC 5280 §4.1: v1 has no [0] version and no [3] extensions.
    tbs = [t for t in der_children(issued.cert.tbs_certificate_bytes) if t[0] not in (0xA0, 0xA3)]
    algorithm = tbs[1]  # serial, signature AlgorithmIdentifier
    assert issued.cert.signature_hash_algorithm is not None
    hash_ = issued.cert.signature_hash_algorithm
    der = _signed(der_tlv(0x30, b"".join(tbs)), algorithm, issued.key, hash_)
    return Issued(x509.load_der_x509_certificate(der), issued.key)


def crl_without_next_update(
    crl: x509.CertificateRevocationList, signer: Key
) -> x509.CertificateRevocationList:
    """`crl` re-signed by `signer` without its optional nextUpdate."""
    tbs = der_children(crl.tbs_certlist_bytes)
    # RFC 5280 §5.1: version, signature, issuer, thisUpdate, nextUpdate (a Time: 0x17/0x18), …
    assert tbs[4][0] in (0x17, 0x18)
    algorithm = der_children(crl.public_bytes(serialization.Encoding.DER))[1]
    assert crl.signature_hash_algorithm is not None
    tbs_der = der_tlv(0x30, b"".join(tbs[:4] + tbs[5:]))
    return x509.load_der_x509_crl(_signed(tbs_der, algorithm, signer, crl.signature_hash_algorithm))


DAY = timedelta(days=1)
_WEAK = {"sha1": SHA1_WITH_RSA, "md5": MD5_WITH_RSA}


class Pki(KeyRing):
    """CA certificates dated from `now` (the clock of the code under test), one key per name."""

    def __init__(self, now: datetime | None = None) -> None:
        super().__init__()
        self.now = now or datetime.now(UTC)

    def ca(
        self,
        cn: str = "Test CA",
        *,
        key: Key | str = "p256",
        issuer: Issued | None = None,
        ca: bool | None = True,
        key_usage: x509.KeyUsage | None = CA_KEY_USAGE,
        valid: tuple[timedelta, timedelta] = (-DAY, 365 * DAY),
        pss: bool = False,
    ) -> Issued:
        """A CA certificate, self-signed unless `issuer` is given; `ca=False` makes a leaf and
        `ca=None` leaves basicConstraints out. Serials are random: two calls never make the same
        certificate (fingerprint)."""
        own = self.key(key) if isinstance(key, str) else key
        cert = build_certificate(
            common_name(cn),
            own,
            not_before=self.now + valid[0],
            not_after=self.now + valid[1],
            issuer=issuer,
            ca=ca,
            key_usage=key_usage,
            pss=pss,
        )
        return Issued(cert, own)

    def weak(self, hash_name: str, cn: str = "Weak CA") -> Issued:
        """A self-signed RSA CA signed with `sha1` or `md5` instead of SHA-256."""
        return resign_weak(self.ca(cn, key="rsa2048"), _WEAK[hash_name])

    def server(
        self,
        issuer: Issued,
        dns_names: Sequence[str] = ("app.example.com",),
        *,
        key: Key | str = "p256",
        valid: tuple[timedelta, timedelta] = (-DAY, 365 * DAY),
        fresh_key: bool = True,
    ) -> Issued:
        """A TLS server certificate (serverAuth, DNS subjectAltNames) issued by `issuer`; a fresh
        key unless `fresh_key` is False (then the shared key of `key`'s kind)."""
        own = key if not isinstance(key, str) else self.key(key, fresh=fresh_key)
        cert = leaf_certificate(
            common_name(dns_names[0] if dns_names else "server"),
            own,
            issuer,
            not_before=self.now + valid[0],
            not_after=self.now + valid[1],
            eku=ExtendedKeyUsageOID.SERVER_AUTH,
            extensions=[x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names])]
            if dns_names
            else [],
        )
        return Issued(cert, own)

    def client(
        self,
        cn: str,
        issuer: Issued,
        *,
        key: Key | str = "p256",
        valid: tuple[timedelta, timedelta] = (-DAY, 365 * DAY),
        eku: x509.ObjectIdentifier = ExtendedKeyUsageOID.CLIENT_AUTH,
        extensions: Sequence[x509.ExtensionType] = (),
    ) -> Issued:
        """A TLS client certificate (`eku`, clientAuth unless told) issued by `issuer`, with a
        fresh key unless one is given."""
        own = key if not isinstance(key, str) else self.key(key, fresh=True)
        cert = leaf_certificate(
            common_name(cn),
            own,
            issuer,
            not_before=self.now + valid[0],
            not_after=self.now + valid[1],
            eku=eku,
            extensions=extensions,
        )
        return Issued(cert, own)


# How long ago an aged root was taken into a version: it was valid then, and expired 35 days ago.
AGE = timedelta(days=400)


@dataclass(frozen=True)
class AgedChain:
    """A root that expired after a version took it in (`root_expired`), its twin of the same
    name and key valid today (`root`), an intermediate under that key valid over both periods,
    and two client certificates (clientAuth) under the intermediate, valid today; and two leaves
    under it that no TLS client may use: `server_only` (serverAuth alone) and `no_signature`
    (keyUsage keyEncipherment alone)."""

    root_expired: Issued
    root: Issued
    intermediate: Issued
    client: Issued
    other_client: Issued
    server_only: Issued
    no_signature: Issued


def aged_chain() -> AgedChain:
    """An `AgedChain`; a version made with a clock `AGE` behind takes `root_expired` in."""
    today = Pki()
    long_ago = Pki(today.now - AGE)
    root = today.ca("Aged Root")
    intermediate = today.ca("Aged Intermediate", issuer=root, valid=(-AGE - DAY, 365 * DAY))

    month = (-DAY, 30 * DAY)
    encipher_only = x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=True,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )

    return AgedChain(
        root_expired=long_ago.ca("Aged Root", key=root.key),
        root=root,
        intermediate=intermediate,
        client=today.client("aged client", intermediate, valid=month),
        other_client=today.client("aged client 2", intermediate, valid=month),
        server_only=today.client(
            "aged server", intermediate, valid=month, eku=ExtendedKeyUsageOID.SERVER_AUTH
        ),
        no_signature=today.client(
            "aged encipherer", intermediate, valid=month, extensions=[encipher_only]
        ),
    )
