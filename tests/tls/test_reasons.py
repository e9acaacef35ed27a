"""The one classifier: X509 verify codes and OpenSSL handshake errors → Reason."""

from __future__ import annotations

import pytest
from OpenSSL import SSL

from edgeproxy.tls.reasons import classify, error_text, from_verify_error
from edgeproxy.tls.session import Reason


def ssl_error(*reasons: str) -> SSL.Error:
    return SSL.Error([("SSL routines", "", r) for r in reasons])


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (10, Reason.EXPIRED),
        (9, Reason.NOT_YET_VALID),
        (20, Reason.UNKNOWN_CA),
        (2, Reason.UNKNOWN_CA),
        (19, Reason.UNKNOWN_CA),
        (21, Reason.UNKNOWN_CA),
        (18, Reason.UNKNOWN_CA),
        (23, Reason.REVOKED),
        (7, Reason.BAD_CERTIFICATE),  # certificate signature failure
        (22, Reason.BAD_CERTIFICATE),  # chain too long (verify depth)
        (9999, Reason.BAD_CERTIFICATE),
    ],
)
def test_verify_codes(code: int, reason: Reason) -> None:
    assert from_verify_error(code) is reason
    assert classify(ssl_error("certificate verify failed"), code) is reason


def test_verify_ok_is_not_a_failure() -> None:
    with pytest.raises(ValueError, match="X509_V_OK"):
        from_verify_error(0)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("peer did not return a certificate", Reason.NO_CERTIFICATE),
        ("unsupported protocol", Reason.UNSUPPORTED_PROTOCOL),
        ("no shared cipher", Reason.UNSUPPORTED_PROTOCOL),
        ("version too low", Reason.UNSUPPORTED_PROTOCOL),
        ("http request", Reason.PLAIN_HTTP),
        ("certificate verify failed", Reason.BAD_CERTIFICATE),
        ("bad signature", Reason.BAD_CERTIFICATE),
        ("sslv3 alert bad certificate", Reason.OTHER),  # the client distrusts *our* certificate
        ("tlsv1 alert unknown ca", Reason.OTHER),
        ("tlsv1 alert protocol version", Reason.UNSUPPORTED_PROTOCOL),
        ("something new in OpenSSL 5", Reason.OTHER),
    ],
)
def test_handshake_errors(text: str, reason: Reason) -> None:
    assert classify(ssl_error(text)) is reason


def test_unexpected_eof_and_nothing() -> None:
    eof = SSL.SysCallError(-1, "Unexpected EOF")
    assert classify(eof) is Reason.OTHER
    assert error_text(eof) == "unexpected EOF"
    assert classify(None) is Reason.OTHER


def test_error_text_joins_openssl_reasons() -> None:
    assert error_text(ssl_error("a", "b")) == "a; b"
    assert error_text(ValueError("x")) == "ValueError: x"
