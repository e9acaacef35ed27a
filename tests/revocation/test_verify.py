"""`verify_response` alone: each reason an OCSP response is not trusted, and its accepting twin."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from edgeproxy.revocation.answer import Status
from edgeproxy.revocation.ocsp import build_request, responder_url
from edgeproxy.revocation.verify import Untrusted, verify_response
from support.revocation_pki import HOUR, Issued, Pki, now


def respond(
    leaf: x509.Certificate,
    issuer: x509.Certificate,
    signer: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    *,
    status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD,
    this_update: dt.timedelta = -HOUR,
    next_update: dt.timedelta | None = HOUR,
    certs: list[x509.Certificate] | None = None,
) -> bytes:
    t = now()
    builder = ocsp.OCSPResponseBuilder().add_response(
        leaf,
        issuer,
        hashes.SHA1(),  # noqa: S303 - the CertID hash OCSP uses (RFC 5019)
        status,
        t + this_update,
        None if next_update is None else t + next_update,
        t - HOUR if status is ocsp.OCSPCertStatus.REVOKED else None,
        None,
    )
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.NAME, signer)
    if certs:
        builder = builder.certificates(certs)
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)


@pytest.fixture(scope="module")
def leaf(pki: Pki) -> Issued:
    return pki.issue("unit", ocsp_url="http://127.0.0.1:1/ocsp")


def test_good_and_revoked_from_the_issuer(pki: Pki, leaf: Issued) -> None:
    for status, expected in [
        (ocsp.OCSPCertStatus.GOOD, Status.GOOD),
        (ocsp.OCSPCertStatus.REVOKED, Status.REVOKED),
        (ocsp.OCSPCertStatus.UNKNOWN, Status.UNKNOWN),
    ]:
        der = respond(leaf.cert, pki.ca.cert, pki.ca.cert, pki.ca.key, status=status)
        answer = verify_response(der, leaf.cert, pki.ca.cert, now())
        assert answer.status is expected
        assert answer.next_update is not None


def test_no_next_update_is_accepted(pki: Pki, leaf: Issued) -> None:
    der = respond(leaf.cert, pki.ca.cert, pki.ca.cert, pki.ca.key, next_update=None)
    assert verify_response(der, leaf.cert, pki.ca.cert, now()).next_update is None


def test_within_the_skew_is_accepted_beyond_it_not(pki: Pki, leaf: Issued) -> None:
    minute = dt.timedelta(minutes=1)
    near = respond(leaf.cert, pki.ca.cert, pki.ca.cert, pki.ca.key, next_update=-4 * minute)
    assert verify_response(near, leaf.cert, pki.ca.cert, now()).status is Status.GOOD
    far = respond(leaf.cert, pki.ca.cert, pki.ca.cert, pki.ca.key, next_update=-6 * minute)
    with pytest.raises(Untrusted, match="stale"):
        verify_response(far, leaf.cert, pki.ca.cert, now())


def test_answer_about_another_certificate_is_refused(pki: Pki, leaf: Issued) -> None:
    other = pki.issue("other")
    der = respond(other.cert, pki.ca.cert, pki.ca.cert, pki.ca.key)
    with pytest.raises(Untrusted, match="certificate asked about"):
        verify_response(der, leaf.cert, pki.ca.cert, now())


def test_unsuccessful_and_garbage_responses_are_refused(pki: Pki, leaf: Issued) -> None:
    unauthorized = ocsp.OCSPResponseBuilder.build_unsuccessful(
        ocsp.OCSPResponseStatus.UNAUTHORIZED
    ).public_bytes(Encoding.DER)
    with pytest.raises(Untrusted, match="unauthorized"):
        verify_response(unauthorized, leaf.cert, pki.ca.cert, now())
    with pytest.raises(Untrusted, match="not an OCSP response"):
        verify_response(b"<html>", leaf.cert, pki.ca.cert, now())


def test_delegated_responder_rules(pki: Pki, leaf: Issued) -> None:
    ok = respond(
        leaf.cert, pki.ca.cert, pki.delegated.cert, pki.delegated.key, certs=[pki.delegated.cert]
    )
    assert verify_response(ok, leaf.cert, pki.ca.cert, now()).status is Status.GOOD

    no_eku = respond(
        leaf.cert, pki.ca.cert, pki.no_eku.cert, pki.no_eku.key, certs=[pki.no_eku.cert]
    )
    with pytest.raises(Untrusted, match="OCSPSigning"):
        verify_response(no_eku, leaf.cert, pki.ca.cert, now())

    # A responder certificate with the EKU, but issued by another CA.
    foreign = pki.issue(
        "foreign-responder", eku=ExtendedKeyUsageOID.OCSP_SIGNING, issuer=pki.unrelated
    )
    with pytest.raises(Untrusted, match="not issued by the issuer"):
        verify_response(
            respond(leaf.cert, pki.ca.cert, foreign.cert, foreign.key, certs=[foreign.cert]),
            leaf.cert,
            pki.ca.cert,
            now(),
        )

    # The delegated certificate left out of the response: nothing to check the signature with.
    bare = respond(leaf.cert, pki.ca.cert, pki.delegated.cert, pki.delegated.key)
    with pytest.raises(Untrusted, match="neither"):
        verify_response(bare, leaf.cert, pki.ca.cert, now())


def test_request_and_responder_url(pki: Pki, leaf: Issued) -> None:
    request = ocsp.load_der_ocsp_request(build_request(leaf.cert, pki.ca.cert))
    assert request.serial_number == leaf.serial
    assert isinstance(request.hash_algorithm, hashes.SHA1)
    assert responder_url(leaf.cert, None) == "http://127.0.0.1:1/ocsp"
    assert responder_url(leaf.cert, "http://configured/") == "http://configured/"
    assert responder_url(pki.issue("no-aia").cert, None) is None
