"""Is an OCSP response trustworthy, and what does it say about one certificate (RFC 6960)?

Pure: DER in, an `Answer` out, or `Untrusted` with a short reason. A response is trusted only when
* its responseStatus is successful (RFC 6960 §4.2.1) and it carries a SingleResponse whose CertID
  matches the certificate asked about (SHA-1 CertID, as `ocsp.build_request` asks, RFC 6960 §4.1.1);
* it is signed by the issuer itself, or by a delegated responder certificate included in the
  response, issued directly by the issuer and carrying EKU id-kp-OCSPSigning (RFC 6960 §4.2.2.2; a
  certificate without that EKU is an ordinary leaf and may not speak for the CA);
* its validity window holds: thisUpdate <= now + skew and nextUpdate >= now - skew
  (RFC 6960 §4.2.2.1 and §3.2 items 5 and 6). A response without nextUpdate is accepted (fresh
  information is always available); the cache then keeps it only briefly.
Anything else is `Untrusted`: the caller treats it exactly like an unreachable responder.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from edgeproxy.revocation.answer import Answer, Status

SKEW: Final = timedelta(minutes=5)  # clock differences tolerated around the validity window

_STATUS: Final = {
    ocsp.OCSPCertStatus.GOOD: Status.GOOD,
    ocsp.OCSPCertStatus.REVOKED: Status.REVOKED,
    ocsp.OCSPCertStatus.UNKNOWN: Status.UNKNOWN,
}


class Untrusted(Exception):
    """The response cannot be relied on; the message says why (log-safe, no certificate data)."""


@dataclass(frozen=True, slots=True)
class _CertId:
    name_hash: bytes
    key_hash: bytes
    serial: int


def key_hash(cert: x509.Certificate) -> bytes:
    """SHA-1 of the subjectPublicKey BIT STRING: CertID.issuerKeyHash and ResponderID byKey."""
    return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


def _cert_id(leaf: x509.Certificate, issuer: x509.Certificate) -> _CertId:
    name_hash = hashlib.sha1(issuer.subject.public_bytes(), usedforsecurity=False).digest()
    return _CertId(name_hash, key_hash(issuer), leaf.serial_number)


def _single(response: ocsp.OCSPResponse, want: _CertId) -> ocsp.OCSPSingleResponse:
    for single in response.responses:
        if (
            isinstance(single.hash_algorithm, hashes.SHA1)
            and single.serial_number == want.serial
            and single.issuer_key_hash == want.key_hash
            and single.issuer_name_hash == want.name_hash
        ):
            return single
    raise Untrusted("no response for the certificate asked about")


def _names(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    """Does the ResponderID name this certificate (byKey or byName)?"""
    if response.responder_key_hash is not None:
        return response.responder_key_hash == key_hash(cert)
    return response.responder_name == cert.subject


def _signer(
    response: ocsp.OCSPResponse, issuer: x509.Certificate, now: datetime
) -> x509.Certificate:
    if _names(response, issuer):
        return issuer
    for cert in response.certificates:
        if not _names(response, cert):
            continue
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            raise Untrusted("delegated responder certificate not issued by the issuer") from None
        try:
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            eku = None
        if eku is None or ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
            raise Untrusted("delegated responder certificate lacks EKU id-kp-OCSPSigning")
        if not cert.not_valid_before_utc - SKEW <= now <= cert.not_valid_after_utc + SKEW:
            raise Untrusted("delegated responder certificate outside its validity period")
        return cert
    raise Untrusted("signed by neither the issuer nor a responder certificate it included")


def _check_signature(response: ocsp.OCSPResponse, signer: x509.Certificate) -> None:
    key = signer.public_key()
    algorithm = response.signature_hash_algorithm
    data, signature = response.tbs_response_bytes, response.signature
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            # RSASSA-PSS parameters are not exposed for OCSP responses: PSS fails here (untrusted).
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            raise Untrusted("unsupported response signature algorithm")
    except InvalidSignature:
        raise Untrusted("bad response signature") from None


def verify_response(
    der: bytes, leaf: x509.Certificate, issuer: x509.Certificate, now: datetime
) -> Answer:
    """The trusted status of `leaf` from an OCSP response, or raise `Untrusted`."""
    try:
        response = ocsp.load_der_ocsp_response(der)
    except ValueError:
        raise Untrusted("not an OCSP response") from None
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise Untrusted(f"response status {response.response_status.name.lower()}")
    try:
        single = _single(response, _cert_id(leaf, issuer))
        _check_signature(response, _signer(response, issuer, now))
    except (ValueError, UnsupportedAlgorithm) as exc:  # malformed content deeper inside
        raise Untrusted(f"malformed response: {type(exc).__name__}") from None
    if single.this_update_utc > now + SKEW:
        raise Untrusted("thisUpdate is in the future")
    next_update = single.next_update_utc
    if next_update is not None and next_update < now - SKEW:
        raise Untrusted("stale response: nextUpdate has passed")
    status = _STATUS[single.certificate_status]
    revoked_at = single.revocation_time_utc if status is Status.REVOKED else None
    return Answer(status, next_update, revoked_at)
