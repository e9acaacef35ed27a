"""The one classifier: OpenSSL verify codes and handshake errors → `Reason`.

This is the only module that knows OpenSSL's numbers and error strings; the reason it returns is the
log field and the metric label (docs/operations.md).
"""

from __future__ import annotations

from typing import Final

from OpenSSL import SSL

from edgeproxy.tls.session import Reason

# X509_V_ERR_* codes (openssl/x509_vfy.h); stable across OpenSSL 1.1, 3 and 4.
_VERIFY: Final[dict[int, Reason]] = {
    2: Reason.UNKNOWN_CA,  # UNABLE_TO_GET_ISSUER_CERT
    9: Reason.NOT_YET_VALID,  # CERT_NOT_YET_VALID
    10: Reason.EXPIRED,  # CERT_HAS_EXPIRED
    18: Reason.UNKNOWN_CA,  # DEPTH_ZERO_SELF_SIGNED_CERT: a self-signed leaf
    19: Reason.UNKNOWN_CA,  # SELF_SIGNED_CERT_IN_CHAIN: a root we do not hold
    20: Reason.UNKNOWN_CA,  # UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    21: Reason.UNKNOWN_CA,  # UNABLE_TO_VERIFY_LEAF_SIGNATURE
    23: Reason.REVOKED,  # CERT_REVOKED
    # The issuer's CRL is outside its validity window and the binding's failure mode is hard
    # (contexts.py accepts these under soft): revocation status unknown, not "revoked".
    11: Reason.OCSP_UNAVAILABLE,  # CRL_NOT_YET_VALID
    12: Reason.OCSP_UNAVAILABLE,  # CRL_HAS_EXPIRED
    # The verify callback refused a certificate on the CA set's block list (contexts.py).
    50: Reason.BLOCKED,  # APPLICATION_VERIFICATION
}

# Codes the verify callbacks act on (contexts.py); named here, next to the classifier.
CERT_REVOKED: Final = 23
APPLICATION_VERIFICATION: Final = 50  # a blocked certificate
# Not this issuer's CRL: UNABLE_TO_GET_CRL (CRL_CHECK is on, but the store has no CRL naming the
# issuer) and CRL_SIGNATURE_FAILURE (a CRL naming it, signed by another key: a same-DN CA,
# docs/management.md).
NO_CRL_FOR_ISSUER: Final = frozenset({3, 8})
STALE_CRL: Final = frozenset({11, 12})  # CRL_NOT_YET_VALID, CRL_HAS_EXPIRED

# Substrings of OpenSSL's reason strings (the third element of each `SSL.Error` entry), first
# match wins. Lower-case.
_SSL_REASONS: Final[tuple[tuple[str, Reason], ...]] = (
    ("peer did not return a certificate", Reason.NO_CERTIFICATE),
    ("unsupported protocol", Reason.UNSUPPORTED_PROTOCOL),
    ("no protocols available", Reason.UNSUPPORTED_PROTOCOL),
    ("version too low", Reason.UNSUPPORTED_PROTOCOL),
    ("wrong version number", Reason.UNSUPPORTED_PROTOCOL),
    ("no shared cipher", Reason.UNSUPPORTED_PROTOCOL),
    ("no shared signature algorithms", Reason.UNSUPPORTED_PROTOCOL),
    ("no suitable signature algorithm", Reason.UNSUPPORTED_PROTOCOL),
    ("no suitable key share", Reason.UNSUPPORTED_PROTOCOL),
    ("inappropriate fallback", Reason.UNSUPPORTED_PROTOCOL),
    ("http request", Reason.PLAIN_HTTP),
    ("https proxy request", Reason.PLAIN_HTTP),
    ("unknown protocol", Reason.NOT_TLS),
    ("packet length too long", Reason.NOT_TLS),
    ("certificate verify failed", Reason.BAD_CERTIFICATE),
    ("bad signature", Reason.BAD_CERTIFICATE),
    ("bad certificate", Reason.BAD_CERTIFICATE),
)


def from_verify_error(code: int) -> Reason:
    """An X509_V_ERR_* code from the verify callback; 0 (X509_V_OK) is not a failure."""
    if code == 0:
        raise ValueError("X509_V_OK is not a verification failure")
    return _VERIFY.get(code, Reason.BAD_CERTIFICATE)


def error_text(exc: BaseException) -> str:
    """A short, log-safe description of an OpenSSL error (never certificate contents)."""
    if isinstance(exc, SSL.Error) and exc.args and isinstance(exc.args[0], list):
        parts = [str(e[2]) for e in exc.args[0] if isinstance(e, tuple) and len(e) == 3]
        if parts:
            return "; ".join(parts)
    if isinstance(exc, SSL.SysCallError):
        return "unexpected EOF" if exc.args and exc.args[0] == -1 else f"syscall error {exc.args}"
    return f"{type(exc).__name__}: {exc}"


def classify(exc: BaseException | None, verify_error: int | None = None) -> Reason:
    """Why a handshake failed, from the first verify failure (if any) and OpenSSL's exception.

    The verify code wins: OpenSSL then only says "certificate verify failed".
    """
    if verify_error:
        return from_verify_error(verify_error)
    if exc is None:
        return Reason.OTHER
    text = error_text(exc).lower()
    if " alert " in text:
        # An alert the *client* sent ("sslv3 alert bad certificate": it distrusts our certificate);
        # not a verdict on the client's certificate.
        return Reason.UNSUPPORTED_PROTOCOL if "protocol version" in text else Reason.OTHER
    for needle, reason in _SSL_REASONS:
        if needle in text:
            return reason
    return Reason.OTHER
