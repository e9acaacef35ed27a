from __future__ import annotations

from datetime import timedelta

import pytest

from edgeproxy.domain.edge_certificates import (
    check_hostnames,
    check_mutual_auth,
    check_origin,
    leaf_of,
    validate_server_chain,
)
from edgeproxy.domain.edge_model import MutualAuth, OcspSettings
from edgeproxy.domain.errors import FieldError, ValidationError
from edgeproxy.domain.hostnames import covered_by
from support.pki import DAY, Pki

from .conftest import NOW


def _types(items: tuple[FieldError, ...]) -> list[str]:
    return [i.type for i in items]


def test_a_good_chain_and_key_pass_with_the_leaf_described(pki: Pki) -> None:
    ca = pki.ca("Server CA")
    leaf = pki.server(ca, ["app.example.com", "*.api.example.com"])
    report = validate_server_chain(
        leaf.pem + ca.pem, leaf.key_pem, ["app.example.com", "x.api.example.com"], now=NOW
    )
    assert report.ok
    assert not report.warnings
    assert report.leaf is not None
    assert report.leaf.chain_length == 2
    assert report.leaf.dns_names == ("app.example.com", "*.api.example.com")
    assert b"PRIVATE KEY" in report.key_pem
    assert "key_pem" not in repr(report)
    assert leaf_of(report.chain_pem).fingerprint == report.leaf.fingerprint


def test_chain_in_the_wrong_order_is_an_error(pki: Pki) -> None:
    ca = pki.ca("Server CA")
    leaf = pki.server(ca)
    report = validate_server_chain(ca.pem + leaf.pem, leaf.key_pem, [], now=NOW)
    assert "chain-order" in _types(report.errors)


def test_a_key_of_another_certificate_is_refused_without_echo(pki: Pki) -> None:
    ca = pki.ca("Server CA")
    leaf, other = pki.server(ca), pki.server(ca)
    report = validate_server_chain(leaf.pem, other.key_pem, [], now=NOW)
    assert _types(report.errors) == ["key-mismatch"]
    body = other.key_pem.splitlines()[1]
    assert all(body not in e.detail for e in report.errors)


def test_a_private_key_in_the_chain_field_is_refused(pki: Pki) -> None:
    ca = pki.ca("Server CA")
    leaf = pki.server(ca)
    report = validate_server_chain(leaf.pem + leaf.key_pem, leaf.key_pem, [], now=NOW)
    assert "private-key-in-upload" in _types(report.errors)
    assert not report.ok


@pytest.mark.parametrize(
    "key", ["", "garbage", "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"]
)
def test_an_unreadable_key_is_refused(pki: Pki, key: str) -> None:
    leaf = pki.server(pki.ca("Server CA"))
    assert "malformed-private-key" in _types(
        validate_server_chain(leaf.pem, key, [], now=NOW).errors
    )


def test_expired_is_an_error_and_expiring_a_warning(pki: Pki) -> None:
    ca = pki.ca("Server CA")
    expired = pki.server(ca, valid=(-10 * DAY, -DAY))
    soon = pki.server(ca, valid=(-DAY, 10 * DAY))
    assert "certificate-expired" in _types(
        validate_server_chain(expired.pem, expired.key_pem, [], now=NOW).errors
    )
    report = validate_server_chain(soon.pem, soon.key_pem, [], now=NOW)
    assert report.ok
    assert _types(report.warnings) == ["certificate-expiring"]


def test_weak_rsa_key_is_an_error(pki: Pki) -> None:
    leaf = pki.server(pki.ca("Server CA"), key="rsa1024", fresh_key=False)
    assert "weak-key" in _types(validate_server_chain(leaf.pem, leaf.key_pem, [], now=NOW).errors)


def test_uncovered_hostnames_are_warnings_with_pointers(pki: Pki) -> None:
    leaf = pki.server(pki.ca("Server CA"), ["app.example.com"])
    report = validate_server_chain(
        leaf.pem, leaf.key_pem, ["app.example.com", "other.example.com"], now=NOW
    )
    assert report.ok
    assert [(w.type, w.pointer) for w in report.warnings] == [
        ("hostname-not-covered", "/hostnames/1")
    ]


@pytest.mark.parametrize(
    ("host", "san", "covered"),
    [
        ("a.example.com", "a.example.com", True),
        ("x.example.com", "*.example.com", True),
        ("example.com", "*.example.com", False),
        ("y.x.example.com", "*.example.com", False),
        ("*.example.com", "*.example.com", True),
        ("*.example.com", "a.example.com", False),
    ],
)
def test_san_coverage(host: str, san: str, covered: bool) -> None:
    assert covered_by(host, san) is covered


def test_hostnames_are_checked_and_lower_cased() -> None:
    assert check_hostnames(["App.Example.com", "*.b.example.com"]) == (
        "app.example.com",
        "*.b.example.com",
    )
    with pytest.raises(ValidationError) as caught:
        check_hostnames(["ok.example.com", "bad_name", "OK.example.com"])
    assert [e.pointer for e in caught.value.errors] == ["/hostnames/1", "/hostnames/2"]
    with pytest.raises(ValidationError):
        check_hostnames([])


def test_origin_is_plain_http_or_h2c() -> None:
    check_origin("http://127.0.0.1:8080")
    check_origin("h2c://127.0.0.1:50051")  # HTTP/2 with prior knowledge (gRPC)
    with pytest.raises(ValidationError, match="http://host:port or h2c://host:port"):
        check_origin("https://127.0.0.1:8443")
    with pytest.raises(ValidationError, match="no credentials"):
        check_origin("http://user:pw@127.0.0.1:8080")


def test_binding_rules() -> None:
    check_mutual_auth(MutualAuth("partners", mode="request", on_failure="forward"))
    with pytest.raises(ValidationError) as caught:
        check_mutual_auth(
            MutualAuth(
                "partners",
                mode="require",
                on_failure="forward",
                identity_headers=("xfcc", "bogus"),
                verify_depth=0,
                ocsp=OcspSettings(failure_mode="loud", responder="ftp://x"),
            )
        )
    assert [e.pointer for e in caught.value.errors] == [
        "/onFailure",
        "/identityHeaders/1",
        "/verifyDepth",
        "/ocsp/failureMode",
        "/ocsp/responder",
    ]


def test_not_yet_valid_is_an_error(pki: Pki) -> None:
    leaf = pki.server(pki.ca("Server CA"), valid=(DAY, 10 * DAY + timedelta(days=30)))
    errors = validate_server_chain(leaf.pem, leaf.key_pem, [], now=NOW).errors
    assert "certificate-not-yet-valid" in _types(errors)
