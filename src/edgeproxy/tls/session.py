"""What the TLS layer tells the HTTP layer about a finished handshake: the client's identity."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from edgeproxy.config.model import EdgeCertificateConfig
from edgeproxy.tls.trust import TrustAnchors


class Reason(StrEnum):
    """Why a handshake or client-certificate check failed (docs/operations.md): a log field and a
    metric label."""

    NO_CERTIFICATE = "no_certificate"
    UNKNOWN_CA = "unknown_ca"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    REVOKED = "revoked"  # listed on the issuer's CRL, or an OCSP answer said so
    # Revocation status could not be established under `ocsp.failure_mode = "hard"`: no trusted
    # OCSP answer (responder down, bad signature, stale, `unknown`), or the issuer's CRL is past
    # its nextUpdate. One label for "could not prove not revoked" keeps docs/operations.md's set
    # bounded; the
    # CRL case is told apart by edgeproxy_crl_expired and its log line.
    OCSP_UNAVAILABLE = "ocsp_unavailable"
    BAD_CERTIFICATE = "bad_certificate"
    # On the CA set's list of blocked certificates (docs/management.md "Blocked certificates").
    BLOCKED = "blocked"
    NO_ACTIVE_VERSION = "no_active_version"
    # A store-managed edge certificate with no mutual-authentication binding on this network.
    NO_BINDING = "no_binding"
    SNI_MISMATCH = "sni_mismatch"
    UNSUPPORTED_PROTOCOL = "unsupported_protocol"
    NOT_TLS = "not_tls"
    # Plaintext HTTP (a request line) on the TLS port: a misconfigured client or a probe, answered
    # with a plain 400; the rest of not_tls is garbage, SSLv2, other protocols.
    PLAIN_HTTP = "plain_http"
    # A ClientHello over clienthello.MAX_CLIENT_HELLO (or never completing within MAX_BUFFERED
    # bytes of records): apart from not_tls, because it is a TLS client, and a bound to revisit
    # if real clients reach it.
    CLIENT_HELLO_TOO_LARGE = "client_hello_too_large"
    # The client offered ALPN protocols, none of which the edge speaks (e.g. h2 only).
    NO_APPLICATION_PROTOCOL = "no_application_protocol"
    TIMEOUT = "timeout"
    OTHER = "other"


# The verdicts on the client's certificate: the one list (metrics count these as client-certificate
# rejections; with no active version the engine reports them all as no_active_version). Other
# failures (a client that refuses *our* certificate, a protocol mismatch, an EOF mid-handshake)
# verified nothing and are handshake failures only.
CERTIFICATE_VERDICTS: Final = frozenset(
    {
        Reason.NO_CERTIFICATE,
        Reason.UNKNOWN_CA,
        Reason.EXPIRED,
        Reason.NOT_YET_VALID,
        Reason.REVOKED,
        Reason.OCSP_UNAVAILABLE,
        Reason.BAD_CERTIFICATE,
        Reason.BLOCKED,
        Reason.NO_ACTIVE_VERSION,
        Reason.NO_BINDING,
    }
)


class VerifyResult(StrEnum):
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    NONE = "NONE"  # no client certificate presented


@dataclass(frozen=True)
class TlsSession:
    """Immutable facts about one established TLS connection, handed to the HTTP layer."""

    edge: EdgeCertificateConfig
    sni: str | None
    tls_version: str  # "TLSv1.2" | "TLSv1.3"
    cipher: str
    # The client's certificates as presented, leaf first (DER). Empty when none was sent. What
    # follows the leaf is the client's word: never assert it to anyone (`verified_chain_der`).
    peer_chain_der: tuple[bytes, ...]
    verify_result: VerifyResult
    verify_reason: Reason | None  # set when verify_result is FAILED or NONE
    ca_set: str | None  # the bound set, and the active version the handshake verified against
    ca_set_version: int | None
    # The chain that validated the client certificate, as OpenSSL built it: leaf first, then each
    # issuer up to the trust anchor from the CA set. Set only when verify_result is SUCCESS; () on
    # a resumed session whose chain is no longer known (contexts.ChainBook). Unlike
    # `peer_chain_der`, nothing in it is merely the client's word.
    verified_chain_der: tuple[bytes, ...] = ()
    alpn: str | None = None  # the protocol ALPN selected; None when the client offered none
    # Those anchors themselves: a later trust state with other anchors judges the chain again
    # (recheck.py). None: no active version, or a session made outside a handshake (tests).
    anchors: TrustAnchors | None = field(default=None, compare=False, repr=False)

    @property
    def verify_header_value(self) -> str:
        """Value of X-Client-Cert-Verify (docs/dataplane.md)."""
        if self.verify_result is VerifyResult.FAILED:
            return f"FAILED:{self.verify_reason or Reason.OTHER}"
        return self.verify_result.value
