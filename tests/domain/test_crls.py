"""CRL upload rules and "newest per issuer wins" (docs/management.md "CRLs"): every accepts test
has a
rejects twin. CRLs are made at test time with cryptography's builder."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from edgeproxy.domain.certificates import certificate_record
from edgeproxy.domain.crls import (
    MAX_CLOCK_SKEW,
    CrlRecord,
    crl_der,
    crl_record,
    crl_states,
    effective_crls,
    parse_crl,
    set_warnings,
)
from edgeproxy.domain.errors import BadRequest
from edgeproxy.domain.model import Certificate, Crl
from support.pki import Issued, Key, Pki, build_crl, ca_key_usage, crl_without_next_update

from .conftest import NOW

DAY = timedelta(days=1)


def make_crl(
    issuer: Issued,
    *,
    this_update: datetime = NOW - DAY,
    next_update: datetime = NOW + 7 * DAY,
    number: int | None = 1,
    revoked: Sequence[int] = (),
    signer: Key | None = None,
    extensions: Sequence[x509.ExtensionType] = (),
) -> x509.CertificateRevocationList:
    key = signer or issuer.key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return build_crl(
        issuer,
        this_update=this_update,
        next_update=next_update,
        number=number,
        revoked=revoked,
        extensions=extensions,
        signer=key,
    )


def without_next_update(crl: x509.CertificateRevocationList, key: Key) -> str:
    """The CRL re-signed without its optional nextUpdate (cryptography's builder requires one)."""
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return pem_of(crl_without_next_update(crl, key))


def pem_of(crl: x509.CertificateRevocationList) -> str:
    return crl.public_bytes(serialization.Encoding.PEM).decode()


def record_of(issued: Issued) -> Certificate:
    return certificate_record(issued.cert, None)


def refused(text: str, cas: Sequence[Issued] = (), *, now: datetime = NOW) -> BadRequest:
    with pytest.raises(BadRequest) as raised:
        check(text, cas, now=now)
    error = raised.value
    assert all(e.pointer == "/crlPem" for e in error.errors)
    assert error.type == "crl-validation-failure"
    return error


def check(text: str, cas: Sequence[Issued], *, now: datetime = NOW) -> CrlRecord:
    return crl_record(parse_crl(text, now=now), [record_of(c) for c in cas], "desc")


@pytest.fixture(scope="module")
def ca(pki: Pki) -> Issued:
    return pki.ca("CRL Issuer CA", key=pki.key(fresh=True))


# -- accepted, and what is recorded ------------------------------------------------------------


def test_a_crl_signed_by_a_ca_of_the_set_is_recorded(pki: Pki, ca: Issued) -> None:
    other = pki.ca("Unrelated CA", key=pki.key(fresh=True))
    crl = make_crl(ca, number=42, revoked=(7, 8, 9))
    record = check("# from the CA's web site\n" + pem_of(crl), [other, ca])
    der = crl.public_bytes(serialization.Encoding.DER)
    assert record == CrlRecord(
        issuer="CN=CRL Issuer CA",
        issuer_fingerprint=record_of(ca).fingerprint,
        this_update=NOW - DAY,
        next_update=NOW + 7 * DAY,
        crl_number=42,
        revoked_count=3,
        fingerprint=hashlib.sha256(der).hexdigest(),
        crl_pem=pem_of(crl),  # re-encoded: the comment above the block is not kept
        description="desc",
    )


def test_a_crl_signed_by_a_foreign_key_under_the_same_name_is_refused(pki: Pki, ca: Issued) -> None:
    impostor = pki.ca("CRL Issuer CA", key=pki.key(fresh=True))
    error = refused(pem_of(make_crl(impostor)), [ca])
    assert error.errors[0].type == "crl-signature-invalid"


def test_a_crl_whose_issuer_is_not_in_the_set_is_refused(pki: Pki, ca: Issued) -> None:
    foreign = pki.ca("Foreign CA", key=pki.key(fresh=True))
    assert refused(pem_of(make_crl(foreign)), [ca]).errors[0].type == "crl-issuer-unknown"
    assert refused(pem_of(make_crl(ca)), []).errors[0].type == "crl-issuer-unknown"


def test_a_ca_without_key_usage_may_sign_crls(pki: Pki) -> None:
    bare = pki.ca("Bare CA", key=pki.key(fresh=True), key_usage=None)
    assert check(pem_of(make_crl(bare)), [bare]).issuer == "CN=Bare CA"


def test_a_ca_whose_key_usage_lacks_crl_sign_is_refused(pki: Pki) -> None:
    no_crl_sign = ca_key_usage(crl_sign=False)
    limited = pki.ca("Limited CA", key=pki.key(fresh=True), key_usage=no_crl_sign)
    assert (
        refused(pem_of(make_crl(limited)), [limited]).errors[0].type == "crl-issuer-not-crl-signer"
    )


# -- dates -------------------------------------------------------------------------------------


def test_a_current_crl_is_accepted_up_to_its_next_update(ca: Issued) -> None:
    crl = make_crl(ca, this_update=NOW - 7 * DAY, next_update=NOW)
    assert check(pem_of(crl), [ca], now=NOW).next_update == NOW


def test_an_expired_crl_is_refused(ca: Issued) -> None:
    crl = make_crl(ca, this_update=NOW - 7 * DAY, next_update=NOW - timedelta(seconds=1))
    error = refused(pem_of(crl), [ca])
    assert error.errors[0].type == "crl-expired"
    assert "expired" in error.detail


def test_a_crl_from_a_clock_slightly_ahead_is_accepted(ca: Issued) -> None:
    crl = make_crl(ca, this_update=NOW + MAX_CLOCK_SKEW)
    assert check(pem_of(crl), [ca]).this_update == NOW + MAX_CLOCK_SKEW


def test_a_crl_from_the_future_is_refused(ca: Issued) -> None:
    crl = make_crl(ca, this_update=NOW + MAX_CLOCK_SKEW + timedelta(seconds=1))
    assert refused(pem_of(crl), [ca]).errors[0].type == "crl-not-yet-valid"


def test_a_crl_without_next_update_is_accepted_with_a_warning(ca: Issued) -> None:
    record = check(without_next_update(make_crl(ca), ca.key), [ca])
    assert record.next_update is None
    (state,) = crl_states([stored(1, record)], NOW)
    assert [w.type for w in state.warnings] == ["crl-without-next-update"]
    assert not state.expired


def test_a_crl_with_next_update_has_no_warning(ca: Issued) -> None:
    (state,) = crl_states([stored(1, check(pem_of(make_crl(ca)), [ca]))], NOW)
    assert state.warnings == ()


def test_naive_now_is_a_programming_error(ca: Issued) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_crl(pem_of(make_crl(ca)), now=NOW.replace(tzinfo=None))


# -- what the upload may hold ------------------------------------------------------------------


def test_a_private_key_in_the_upload_is_refused_without_echo(ca: Issued) -> None:
    key_pem = (
        ca.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
        .strip()
    )
    error = refused(pem_of(make_crl(ca)) + key_pem, [ca])
    assert error.errors[0].type == "private-key-in-upload"
    body = [line for line in key_pem.splitlines() if "-----" not in line]
    shown = error.detail + "".join(e.detail for e in error.errors)
    assert not any(line in shown for line in body)


def test_the_same_crl_without_the_key_is_accepted(ca: Issued) -> None:
    assert check(pem_of(make_crl(ca)), [ca]).issuer == "CN=CRL Issuer CA"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "malformed-pem"),
        ("not a CRL at all", "malformed-pem"),
        ("-----BEGIN X509 CRL-----\n!!!not base64!!!\n-----END X509 CRL-----\n", "malformed-pem"),
        ("-----BEGIN X509 CRL-----\nAAECAwQF\n-----END X509 CRL-----\n", "malformed-crl"),
        ("-----BEGIN X509 CRL-----\nMAMCAQA=\n", "malformed-pem"),
    ],
    ids=["empty", "no-block", "bad-base64", "not-a-crl", "unterminated"],
)
def test_garbage_is_refused(ca: Issued, text: str, expected: str) -> None:
    assert refused(text, [ca]).errors[0].type == expected


def test_a_certificate_block_is_refused(ca: Issued) -> None:
    error = refused(ca.pem + pem_of(make_crl(ca)), [ca])
    assert [e.type for e in error.errors] == ["unsupported-pem-block"]
    assert "only X509 CRL" in error.detail


def test_two_crls_in_one_upload_are_refused(ca: Issued) -> None:
    text = pem_of(make_crl(ca, number=1)) + pem_of(make_crl(ca, number=2))
    assert refused(text, [ca]).errors[0].type == "multiple-crls"


def test_a_delta_crl_is_refused(ca: Issued) -> None:
    delta = make_crl(ca, extensions=[x509.DeltaCRLIndicator(1)])
    assert refused(pem_of(delta), [ca]).errors[0].type == "delta-crl-unsupported"


def test_an_indirect_crl_is_refused(ca: Issued) -> None:
    idp = x509.IssuingDistributionPoint(None, None, False, False, None, True, False)
    assert (
        refused(pem_of(make_crl(ca, extensions=[idp])), [ca]).errors[0].type
        == "indirect-crl-unsupported"
    )


# -- newest per issuer wins ---------------------------------------------------------------------


def stored(
    crl_id: int,
    record: CrlRecord | None = None,
    *,
    issuer: str = "CN=A",
    this_update: datetime = NOW - DAY,
    next_update: datetime | None = NOW + DAY,
    number: int | None = None,
) -> Crl:
    if record is not None:
        issuer, this_update, next_update = record.issuer, record.this_update, record.next_update
        number = record.crl_number
    return Crl(
        id=crl_id,
        ca_set_id=1,
        issuer=issuer,
        issuer_fingerprint="00" * 32,
        this_update=this_update,
        next_update=next_update,
        crl_number=number,
        revoked_count=0,
        fingerprint=f"{crl_id:064x}",
        crl_pem="",
        description=None,
        created_by="alice",
        created_at=NOW,
    )


def test_the_newest_this_update_of_an_issuer_wins_whatever_the_upload_order() -> None:
    newer = stored(1, this_update=NOW - DAY)
    older = stored(2, this_update=NOW - 2 * DAY, number=99)
    assert effective_crls([newer, older]) == [newer]
    assert effective_crls([older, newer]) == [newer]


def test_on_the_same_this_update_the_higher_crl_number_wins() -> None:
    low, high, unnumbered = stored(1, number=5), stored(2, number=6), stored(3)
    assert effective_crls([high, low, unnumbered]) == [high]


def test_each_issuer_keeps_its_own_newest_crl() -> None:
    a, b = stored(1, issuer="CN=A"), stored(2, issuer="CN=B", this_update=NOW - 9 * DAY)
    assert effective_crls([b, a]) == [a, b]


def test_states_mark_the_effective_and_the_expired() -> None:
    old_expired = stored(1, this_update=NOW - 9 * DAY, next_update=NOW - 8 * DAY)
    current = stored(2)
    states = {s.crl.id: s for s in crl_states([old_expired, current], NOW)}
    assert (states[1].effective, states[1].expired, states[1].warnings) == (False, True, ())
    assert (states[2].effective, states[2].expired) == (True, False)
    assert set_warnings([old_expired, current], NOW) == ()


def test_an_effective_crl_past_next_update_is_a_set_warning() -> None:
    lapsed = stored(3, issuer="CN=Lapsed", next_update=NOW - timedelta(seconds=1))
    (state,) = crl_states([lapsed], NOW)
    assert (state.effective, state.expired) == (True, True)
    assert [w.type for w in state.warnings] == ["crl-expired"]
    (warning,) = set_warnings([lapsed, stored(4)], NOW)
    assert warning.type == "crl-expired"
    assert "CRL 3" in warning.detail


def test_crl_der_is_the_uploaded_der(ca: Issued) -> None:
    crl = make_crl(ca, revoked=(1, 2))
    record = check(pem_of(crl), [ca])
    as_stored = replace(stored(1, record), crl_pem=record.crl_pem)
    assert crl_der(as_stored) == crl.public_bytes(serialization.Encoding.DER)
