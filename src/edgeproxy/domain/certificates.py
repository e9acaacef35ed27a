"""Validation of the CA certificates of a version (docs/management.md "Certificate validation").

Pure: text and a clock in, a report out. Every rule runs on every certificate (one certificate
can produce several errors); nothing stops at the first problem. Details never echo block bodies,
because an upload may hold a private key (docs/management.md: never echoed, stored or logged).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum, StrEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from edgeproxy.domain.errors import FieldError
from edgeproxy.domain.model import Certificate, Version
from edgeproxy.domain.pem import BlockError, certificate_blocks

MAX_CERTIFICATES_PER_VERSION = 300
EXPIRY_WARNING = timedelta(days=30)
MIN_RSA_BITS = 2048
ALLOWED_CURVES = frozenset({"secp256r1", "secp384r1", "secp521r1"})


@dataclass(frozen=True)
class CertificateInput:
    certificate_pem: str
    description: str | None = None


class Check(StrEnum):
    VALIDATE = "validate"  # POST /certificates/validate: nothing stored
    CREATE = "create"  # create or update a version
    CLONE = "clone"  # clone an existing version
    ACTIVATE = "activate"  # re-validation when a version is activated


@dataclass(frozen=True)
class ValidationReport:
    certificates: tuple[Certificate, ...]  # every parsed certificate, in input order
    errors: tuple[FieldError, ...]
    warnings: tuple[FieldError, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


class _Strength(Enum):
    STRONG = "strong"
    SHA1 = "sha1"
    WEAK = "weak"  # MD2/MD4/MD5, SHA-224, or an algorithm we do not know


_S, _1, _W = _Strength.STRONG, _Strength.SHA1, _Strength.WEAK
_RSASSA_PSS = "1.2.840.113549.1.1.10"
# Signature OID -> (display name, strength of its hash). RFC 3279, 4055, 5758, 8410; NIST CSOR.
_SIGNATURES: dict[str, tuple[str, _Strength]] = {
    "1.2.840.113549.1.1.2": ("MD2_WITH_RSA", _W),
    "1.2.840.113549.1.1.3": ("MD4_WITH_RSA", _W),
    "1.2.840.113549.1.1.4": ("MD5_WITH_RSA", _W),
    "1.2.840.113549.1.1.5": ("SHA1_WITH_RSA", _1),
    "1.2.840.113549.1.1.14": ("SHA224_WITH_RSA", _W),
    "1.2.840.113549.1.1.11": ("SHA256_WITH_RSA", _S),
    "1.2.840.113549.1.1.12": ("SHA384_WITH_RSA", _S),
    "1.2.840.113549.1.1.13": ("SHA512_WITH_RSA", _S),
    "1.2.840.10045.4.1": ("SHA1_WITH_ECDSA", _1),
    "1.2.840.10045.4.3.1": ("SHA224_WITH_ECDSA", _W),
    "1.2.840.10045.4.3.2": ("SHA256_WITH_ECDSA", _S),
    "1.2.840.10045.4.3.3": ("SHA384_WITH_ECDSA", _S),
    "1.2.840.10045.4.3.4": ("SHA512_WITH_ECDSA", _S),
    "1.2.840.10040.4.3": ("SHA1_WITH_DSA", _1),
    "2.16.840.1.101.3.4.3.1": ("SHA224_WITH_DSA", _W),
    "2.16.840.1.101.3.4.3.2": ("SHA256_WITH_DSA", _S),
    "1.3.101.112": ("ED25519", _S),
    "1.3.101.113": ("ED448", _S),
}
_STRONG_HASHES = frozenset({"sha256", "sha384", "sha512"})


def certificate_record(cert: x509.Certificate, description: str | None) -> Certificate:
    return Certificate(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        start_date=cert.not_valid_before_utc,
        end_date=cert.not_valid_after_utc,
        fingerprint=cert.fingerprint(hashes.SHA256()).hex(),
        serial_number=format(cert.serial_number, "x"),
        signature_algorithm=_signature(cert)[0],
        # Re-encoded from DER: the upload text (comments, other blocks) is never kept.
        certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        description=description,
    )


def ca_list_size(certificates: Sequence[Certificate]) -> int:
    """Bytes of the CertificateRequest certificate_authorities list: a 2-byte length per DN.

    The list is a vector<3..2^16-1> (RFC 8446 §4.2.4), so a larger one cannot be sent (§5).
    """
    return sum(
        2 + len(x509.load_pem_x509_certificate(c.certificate_pem.encode()).subject.public_bytes())
        for c in certificates
    )


@dataclass(frozen=True)
class _Parsed:
    entry: int  # index of the input entry, for the JSON pointer
    block: int  # index of the PEM block within that entry
    cert: x509.Certificate
    record: Certificate

    @property
    def where(self) -> str:
        return f"block {self.block} ({self.record.subject[:120]})"


@dataclass
class _Findings:
    check: Check
    errors: list[tuple[int, FieldError]] = field(default_factory=list)
    warnings: list[tuple[int, FieldError]] = field(default_factory=list)

    def add(self, entry: int | None, type_: str, detail: str, *, warning: bool = False) -> None:
        pointer = "/certificates" if entry is None else f"/certificates/{entry}"
        target = self.warnings if warning else self.errors
        target.append((-1 if entry is None else entry, FieldError(type_, detail, pointer)))


def _in_upload_order(items: list[tuple[int, FieldError]]) -> tuple[FieldError, ...]:
    # Stable sort by entry: problems are listed in upload order, whole-list ones first.
    return tuple(e for _, e in sorted(items, key=lambda pair: pair[0]))


def validate_certificates(
    inputs: Sequence[CertificateInput],
    *,
    allow_insecure_sha1: bool,
    require_root_certificate: bool,
    now: datetime,
    check: Check,
) -> ValidationReport:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    found = _Findings(check)
    parsed: list[_Parsed] = []
    for entry, item in enumerate(inputs):
        for block in _parse_blocks(item.certificate_pem):
            if isinstance(block, BlockError):
                found.add(entry, block.type, block.detail)
            else:
                parsed.append(replace(block, entry=entry))
    if not parsed:
        found.add(None, "no-certificates", "at least one certificate is required")
    too_many = len(parsed) > MAX_CERTIFICATES_PER_VERSION
    if too_many:
        detail = (
            f"{len(parsed)} certificates; a version holds at most {MAX_CERTIFICATES_PER_VERSION}"
        )
        found.add(None, "too-many-certificates", detail)
    for p in parsed:
        _check_ca(p, found)
        _check_validity(p, now, found)
        _check_signature(p, allow_insecure_sha1, found)
        _check_key(p, found)
    _check_duplicates(parsed, found)
    # The chain walk costs signature checks per pair of same-named certificates: bound it.
    if require_root_certificate and not too_many:
        _check_roots(parsed, found)
    return ValidationReport(
        certificates=tuple(
            replace(p.record, description=inputs[p.entry].description) for p in parsed
        ),
        errors=_in_upload_order(found.errors),
        warnings=_in_upload_order(found.warnings),
    )


def revalidate_version(version: Version, *, now: datetime, check: Check) -> ValidationReport:
    """Check a stored version's certificates again, under its own options, as of `now`.

    Time moves on after an upload: a certificate may have expired since. Activation refuses on
    what this finds; a clone carries it as warnings.
    """
    return validate_certificates(
        [CertificateInput(c.certificate_pem, c.description) for c in version.certificates],
        allow_insecure_sha1=version.allow_insecure_sha1,
        require_root_certificate=version.require_root_certificate,
        now=now,
        check=check,
    )


def _parse_blocks(text: str) -> Iterator[_Parsed | BlockError]:
    """A parsed certificate (entry index 0: the caller sets it) or a problem, per block."""
    for item in certificate_blocks(text):
        if isinstance(item, BlockError):
            yield item
            continue
        index, der = item
        try:
            cert = x509.load_der_x509_certificate(der)
            # Parts of a certificate are decoded lazily: build the record now so a bad name or
            # date is reported here as malformed instead of failing a later check.
            record = certificate_record(cert, None)
        except Exception:  # any failure to parse untrusted DER means the same thing
            error = BlockError("malformed-certificate", f"block {index} is not a valid certificate")
            yield error
        else:
            yield _Parsed(0, index, cert, record)


def _check_ca(p: _Parsed, found: _Findings) -> None:
    if p.cert.version is not x509.Version.v3:
        found.add(p.entry, "not-x509-v3", f"{p.where}: X.509 v3 is required")
    try:
        extensions = p.cert.extensions
    except Exception:  # duplicate or undecodable extensions in untrusted input
        found.add(p.entry, "malformed-certificate", f"{p.where}: its extensions cannot be parsed")
        return
    try:
        is_ca = extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        found.add(p.entry, "not-a-ca-certificate", f"{p.where}: basicConstraints is missing")
    else:
        if not is_ca:
            detail = f"{p.where}: basicConstraints CA=FALSE (an end-entity certificate)"
            found.add(p.entry, "not-a-ca-certificate", detail)
    try:
        usage = extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return  # RFC 5280 §4.2.1.3: absent keyUsage does not restrict the key
    if not usage.key_cert_sign:
        found.add(p.entry, "missing-key-cert-sign", f"{p.where}: keyUsage lacks keyCertSign")


def _check_validity(p: _Parsed, now: datetime, found: _Findings) -> None:
    # RFC 5280 §4.1.2.5: the validity period includes both notBefore and notAfter.
    start, end = p.cert.not_valid_before_utc, p.cert.not_valid_after_utc
    as_warning = found.check is Check.CLONE  # a clone is made to be edited (docs/management.md)
    if now < start:
        detail = f"{p.where}: not valid before {start.isoformat()}"
        found.add(p.entry, "not-yet-valid", detail, warning=as_warning)
    if now > end:
        found.add(p.entry, "expired", f"{p.where}: expired {end.isoformat()}", warning=as_warning)
    elif end - now <= EXPIRY_WARNING:
        detail = f"{p.where}: expires {end.isoformat()}, within {EXPIRY_WARNING.days} days"
        found.add(p.entry, "expiring-soon", detail, warning=True)


def _signature(cert: x509.Certificate) -> tuple[str, _Strength]:
    oid = cert.signature_algorithm_oid.dotted_string
    if oid != _RSASSA_PSS:
        return _SIGNATURES.get(oid, (oid, _Strength.WEAK))
    try:  # PSS carries its hash in the parameters (RFC 4055 §3.1)
        hash_name = getattr(cert.signature_hash_algorithm, "name", "")
    except (UnsupportedAlgorithm, ValueError):
        hash_name = ""
    if hash_name in _STRONG_HASHES:
        return "RSASSA_PSS", _Strength.STRONG
    return "RSASSA_PSS", _Strength.SHA1 if hash_name == "sha1" else _Strength.WEAK


def _check_signature(p: _Parsed, allow_sha1: bool, found: _Findings) -> None:
    name, strength = _signature(p.cert)
    if strength is _Strength.SHA1:
        detail = f"{p.where}: signed with SHA-1 ({name}); allowed only with allowInsecureSha1"
        found.add(p.entry, "insecure-signature-sha1", detail, warning=allow_sha1)
    elif strength is _Strength.WEAK:
        detail = f"{p.where}: signature algorithm {name} is not accepted; use SHA-256 or stronger"
        found.add(p.entry, "insecure-signature-algorithm", detail)


def _check_key(p: _Parsed, found: _Findings) -> None:
    try:
        key = p.cert.public_key()
    except (UnsupportedAlgorithm, ValueError):
        key = None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            detail = f"{p.where}: RSA key of {key.key_size} bits; at least {MIN_RSA_BITS} required"
            found.add(p.entry, "weak-key", detail)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ALLOWED_CURVES:
            detail = f"{p.where}: EC curve {key.curve.name} is not P-256, P-384 or P-521"
            found.add(p.entry, "unsupported-key", detail)
    elif not isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        algorithm = p.cert.public_key_algorithm_oid.dotted_string
        detail = f"{p.where}: key algorithm {algorithm} is not RSA, EC, Ed25519 or Ed448"
        found.add(p.entry, "unsupported-key", detail)


def _spki(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except (UnsupportedAlgorithm, ValueError):
        return None  # already reported by _check_key


def _check_duplicates(parsed: Sequence[_Parsed], found: _Findings) -> None:
    by_fingerprint: dict[str, _Parsed] = {}
    by_subject: dict[x509.Name, list[tuple[_Parsed, bytes | None]]] = {}
    for p in parsed:
        first = by_fingerprint.setdefault(p.record.fingerprint, p)
        if first is not p:
            detail = f"{p.where}: duplicate of /certificates/{first.entry} block {first.block}"
            # A validate call only advises; anything that stores a version refuses
            # (docs/management.md).
            warning = found.check is Check.VALIDATE
            found.add(p.entry, "duplicate-certificate", detail, warning=warning)
            continue
        spki = _spki(p.cert)
        same_name = by_subject.setdefault(p.cert.subject, [])
        other = next((q for q, k in same_name if spki and k and k != spki), None)
        if other is not None:
            # Allowed (a CA re-keyed under the same name), but clients may pick either.
            detail = (
                f"{p.where}: same subject as /certificates/{other.entry} block {other.block} "
                "with a different key"
            )
            found.add(p.entry, "duplicate-subject", detail, warning=True)
        same_name.append((p, spki))


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)  # checks the issuer name and the signature
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _check_roots(parsed: Sequence[_Parsed], found: _Findings) -> None:
    """Each certificate must chain, within the set, to a self-signed root (requireRootCertificate).

    Walks down from the roots: a certificate is anchored once a verified issuer is anchored. Each
    certificate is anchored at most once, so issuer loops (A signs B signs A) end by construction.
    """
    # Self-signed: issuer == subject and its own key verifies it (both checked by _issued_by).
    anchored = [_issued_by(p.cert, p.cert) for p in parsed]
    children: dict[x509.Name, list[int]] = {}
    for i, p in enumerate(parsed):
        children.setdefault(p.cert.issuer, []).append(i)
    queue = [i for i, ok in enumerate(anchored) if ok]
    while queue:
        parent = parsed[queue.pop()].cert
        for i in children.get(parent.subject, []):
            if not anchored[i] and _issued_by(parsed[i].cert, parent):
                anchored[i] = True
                queue.append(i)
    for p, ok in zip(parsed, anchored, strict=True):
        if not ok:
            detail = f"{p.where}: does not chain to a self-signed root in this version"
            found.add(p.entry, "missing-root-certificate", detail)
