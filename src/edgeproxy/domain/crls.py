"""Certificate revocation lists of a CA set (docs/management.md "CRLs"): upload checks and which
CRLs apply.

Pure: text, the set's CA certificates and a clock in; a record, a BadRequest or a verdict
out. As in certificates.py, no message ever echoes a block body: an upload may hold a private key
(docs/management.md: never echoed, stored or logged).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeGuard, get_args

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPublicKeyTypes,
    CertificatePublicKeyTypes,
)

from edgeproxy.domain.errors import BadRequest, FieldError
from edgeproxy.domain.model import Certificate, Crl
from edgeproxy.domain.pem import split_pem_blocks

POINTER = "/crlPem"
CRL_LABEL = "X509 CRL"  # RFC 7468 §6
# A CRL published a moment ago by a host whose clock runs a little ahead is still accepted.
MAX_CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class ParsedCrl:
    """An upload that is one well-formed, current CRL; its signer is not checked yet."""

    crl: x509.CertificateRevocationList
    issuer: str
    this_update: datetime
    next_update: datetime | None
    crl_number: int | None
    revoked_count: int
    fingerprint: str
    crl_pem: str


@dataclass(frozen=True)
class CrlRecord:
    """A validated CRL as the service hands it to the store."""

    issuer: str
    issuer_fingerprint: str
    this_update: datetime
    next_update: datetime | None
    crl_number: int | None
    revoked_count: int
    fingerprint: str
    crl_pem: str
    description: str | None


@dataclass(frozen=True)
class CrlState:
    """A stored CRL as of `now`: whether it is the one its issuer's clients are checked against."""

    crl: Crl
    effective: bool
    expired: bool
    warnings: tuple[FieldError, ...]


def _refuse(errors: Sequence[FieldError]) -> BadRequest:
    first = errors[0]
    detail = first.detail if len(errors) == 1 else f"{len(errors)} problems with the CRL upload"
    # One type for every refused CRL (the reference API's); each error says which rule.
    return BadRequest("crl-validation-failure", detail, tuple(errors))


def _error(type_: str, detail: str) -> FieldError:
    return FieldError(type_, detail, POINTER)


def _single_der(text: str) -> tuple[int, bytes]:
    """The one X509 CRL block of the upload; every other block is an error."""
    errors: list[FieldError] = []
    found: list[tuple[int, bytes]] = []
    blocks = split_pem_blocks(text)
    for b in blocks:
        if b.is_private_key:
            detail = f"a private key was found in block {b.index}; remove it — it was not stored"
            errors.append(_error("private-key-in-upload", detail))
        elif b.label != CRL_LABEL:
            detail = f"block {b.index} is a {b.label[:64]!r} block; only {CRL_LABEL} is accepted"
            errors.append(_error("unsupported-pem-block", detail))
        elif b.der is None:
            errors.append(_error("malformed-pem", f"block {b.index} is not valid PEM: {b.problem}"))
        else:
            found.append((b.index, b.der))
    if not blocks:
        errors.append(_error("malformed-pem", f"no PEM block found; expected one {CRL_LABEL}"))
    if len(found) > 1:
        errors.append(_error("multiple-crls", f"{len(found)} CRLs; upload one at a time"))
    if errors:
        raise _refuse(errors)
    return found[0]


def parse_crl(text: str, *, now: datetime) -> ParsedCrl:
    """The upload's CRL if it is one well-formed CRL, current at `now`; else a BadRequest."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    index, der = _single_der(text)
    try:
        crl = x509.load_der_x509_crl(der)
        # Parts of a CRL are decoded lazily: read every one we use now, so bad input is
        # reported here as malformed instead of failing later.
        extensions = crl.extensions
        try:
            number: int | None = extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        except x509.ExtensionNotFound:
            number = None
        parsed = ParsedCrl(
            crl=crl,
            issuer=crl.issuer.rfc4514_string(),
            this_update=crl.last_update_utc,
            next_update=crl.next_update_utc,
            crl_number=number,
            revoked_count=len(crl),
            fingerprint=crl.fingerprint(hashes.SHA256()).hex(),
            # Re-encoded from DER: the upload text around the block is never kept.
            crl_pem=crl.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        )
    except Exception:  # any failure to parse untrusted DER means the same thing
        raise _refuse([_error("malformed-crl", f"block {index} is not a valid CRL")]) from None
    errors = _check_kind(extensions) + _check_times(parsed, now)
    if errors:
        raise _refuse(errors)
    return parsed


def _check_kind(extensions: x509.Extensions) -> list[FieldError]:
    errors = []
    try:
        extensions.get_extension_for_class(x509.DeltaCRLIndicator)
    except x509.ExtensionNotFound:
        pass
    else:
        # "Newest per issuer" would let a delta replace its base CRL (RFC 5280 §5.2.4).
        detail = "delta CRLs are not supported; upload a complete CRL"
        errors.append(_error("delta-crl-unsupported", detail))
    try:
        idp = extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        pass
    else:
        if idp.indirect_crl:  # entries may name other issuers (RFC 5280 §5.2.5)
            errors.append(_error("indirect-crl-unsupported", "indirect CRLs are not supported"))
    return errors


def _check_times(parsed: ParsedCrl, now: datetime) -> list[FieldError]:
    errors = []
    if parsed.next_update is not None and parsed.next_update < now:
        detail = (
            f"the CRL expired at {parsed.next_update.isoformat()} (its nextUpdate); "
            "upload a current one"
        )
        errors.append(_error("crl-expired", detail))
    if parsed.this_update > now + MAX_CLOCK_SKEW:
        detail = f"the CRL is not valid before {parsed.this_update.isoformat()} (its thisUpdate)"
        errors.append(_error("crl-not-yet-valid", detail))
    return errors


# The key types the library verifies signatures with, read from its own alias so a newer
# cryptography's additions count without a change here.
_SIGNING_KEY_TYPES: tuple[type, ...] = get_args(CertificateIssuerPublicKeyTypes)


def _signing_key(key: CertificatePublicKeyTypes) -> TypeGuard[CertificateIssuerPublicKeyTypes]:
    return isinstance(key, _SIGNING_KEY_TYPES)


def crl_signed_by(crl: x509.CertificateRevocationList, ca: x509.Certificate) -> bool:
    """Is the CRL's signature made by `ca`'s key? (A key that signs nothing: no.)"""
    key = ca.public_key()
    if not _signing_key(key):
        return False  # a key-agreement key (X25519, ML-KEM, ...) signs nothing
    try:
        return crl.is_signature_valid(key)
    except (UnsupportedAlgorithm, TypeError, ValueError):
        return False


def _may_sign_crls(ca: x509.Certificate) -> bool:
    try:
        usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True  # RFC 5280 §4.2.1.3: absent keyUsage does not restrict the key
    return usage.crl_sign


def crl_record(parsed: ParsedCrl, cas: Iterable[Certificate], description: str | None) -> CrlRecord:
    """The record to store, once a CA certificate of the set is found that signed the CRL.

    The issuer must be a CA of one of the set's versions: a CRL is matched to its CA by name
    first, then its signature must verify with that CA's key, and the CA may sign CRLs.
    """
    issuer = parsed.crl.issuer
    named: dict[str, tuple[Certificate, x509.Certificate]] = {}
    for record in cas:
        # The stored subject string screens first: a set holds up to 30,000 certificates.
        if record.subject == parsed.issuer and record.fingerprint not in named:
            cert = x509.load_pem_x509_certificate(record.certificate_pem.encode())
            if cert.subject == issuer:
                named[record.fingerprint] = (record, cert)
    shown = parsed.issuer[:200]
    if not named:
        detail = f"the CRL's issuer {shown!r} is not a CA certificate of any version of this set"
        raise _refuse([_error("crl-issuer-unknown", detail)])
    signers = [(record, cert) for record, cert in named.values() if crl_signed_by(parsed.crl, cert)]
    if not signers:
        detail = (
            f"no CA certificate named {shown!r} in this CA set verifies the CRL's signature; "
            "it was signed by another key"
        )
        raise _refuse([_error("crl-signature-invalid", detail)])
    signer = next((record for record, cert in signers if _may_sign_crls(cert)), None)
    if signer is None:
        detail = f"the CA {shown!r} that signed the CRL has a keyUsage without cRLSign"
        raise _refuse([_error("crl-issuer-not-crl-signer", detail)])
    return CrlRecord(
        issuer=parsed.issuer,
        issuer_fingerprint=signer.fingerprint,
        this_update=parsed.this_update,
        next_update=parsed.next_update,
        crl_number=parsed.crl_number,
        revoked_count=parsed.revoked_count,
        fingerprint=parsed.fingerprint,
        crl_pem=parsed.crl_pem,
        description=description,
    )


# -- which CRLs apply ---------------------------------------------------------------------------


def _recency(crl: Crl) -> tuple[datetime, int, int]:
    # thisUpdate first; the CRL number orders CRLs issued in the same second (RFC 5280 §5.2.3
    # makes it monotonic); the later upload settles anything left.
    return (crl.this_update, -1 if crl.crl_number is None else crl.crl_number, crl.id)


def effective_crls(crls: Iterable[Crl]) -> list[Crl]:
    """The newest CRL per issuer, in upload order: the ones edge nodes check clients against."""
    newest: dict[str, Crl] = {}
    for crl in crls:
        current = newest.get(crl.issuer)
        if current is None or _recency(crl) > _recency(current):
            newest[crl.issuer] = crl
    return sorted(newest.values(), key=lambda c: c.id)


def is_expired(crl: Crl, now: datetime) -> bool:
    return crl.next_update is not None and crl.next_update < now


def crl_states(crls: Sequence[Crl], now: datetime) -> list[CrlState]:
    effective = {c.id for c in effective_crls(crls)}
    out = []
    for crl in crls:
        warnings = []
        if crl.next_update is None:
            detail = "the CRL has no nextUpdate: nothing tells when it is out of date"
            warnings.append(_error("crl-without-next-update", detail))
        expired = is_expired(crl, now)
        if expired and crl.id in effective:
            warnings.append(_expired(crl))
        out.append(CrlState(crl, crl.id in effective, expired, tuple(warnings)))
    return out


def _expired(crl: Crl) -> FieldError:
    assert crl.next_update is not None
    detail = (
        f"CRL {crl.id} of {crl.issuer[:200]!r}, the newest of its issuer, expired at "
        f"{crl.next_update.isoformat()}; upload a current one"
    )
    return FieldError("crl-expired", detail, POINTER)


def set_warnings(crls: Sequence[Crl], now: datetime) -> tuple[FieldError, ...]:
    """What a CA set's view warns about: each CRL in effect that is past its nextUpdate."""
    return tuple(
        FieldError("crl-expired", _expired(c).detail, "")
        for c in effective_crls(crls)
        if is_expired(c, now)
    )


def crl_der(crl: Crl) -> bytes:
    """The DER of a stored CRL (its PEM is the one block re-encoded from DER at upload)."""
    (block,) = split_pem_blocks(crl.crl_pem)
    assert block.der is not None
    return block.der
