"""Who was refused, and why: the facts of one failed handshake, and their log fields.

The engine hands a `Refusal` to the observer for every failed handshake; it costs nothing to make
(references only). `describe` turns it into the log line's fields (docs/operations.md, "Refused
handshakes"): it parses the client certificate, so the observer calls it only for the lines it
actually writes, after sampling.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from cryptography import x509
from OpenSSL import SSL, crypto

from edgeproxy.tls.contexts import VerifyRecord
from edgeproxy.tls.session import Reason
from edgeproxy.tls.trust import PreparedEdge

# X509_verify_cert_error_string() of the codes a client certificate meets (openssl/x509_vfy.h).
_VERIFY_TEXT: Final[dict[int, str]] = {
    2: "unable to get issuer certificate",
    3: "unable to get certificate CRL",
    4: "unable to decrypt certificate's signature",
    6: "unable to decode issuer public key",
    7: "certificate signature failure",
    8: "CRL signature failure",
    9: "certificate is not yet valid",
    10: "certificate has expired",
    11: "CRL is not yet valid",
    12: "CRL has expired",
    13: "format error in certificate's notBefore field",
    14: "format error in certificate's notAfter field",
    18: "self-signed certificate",
    19: "self-signed certificate in certificate chain",
    20: "unable to get local issuer certificate",
    21: "unable to verify the first certificate",
    22: "certificate chain too long",
    23: "certificate revoked",
    24: "invalid CA certificate",
    25: "path length constraint exceeded",
    26: "unsupported certificate purpose",
    28: "certificate rejected",
}


def verify_error_text(code: int) -> str:
    """OpenSSL's words for an X509_V_ERR_* code."""
    return _VERIFY_TEXT.get(code, f"X509 verify error {code}")


@dataclass(frozen=True, slots=True)
class Refusal:
    """One failed handshake, as the engine saw it.

    `certificate` is the client certificate the verify step stopped at: the leaf when the failure
    was found on it (depth 0: unknown issuer, expired, revoked, wrong purpose), else the
    certificate at `verify_depth` (an intermediate the client sent whose issuer is unknown);
    OpenSSL keeps no chain of a refused handshake, so nothing deeper is known. None when no
    certificate was judged (none sent, or a failure before the verify step).
    """

    reason: Reason
    detail: str  # OpenSSL's error text, or the engine's own ("EOF after 0 bytes of ClientHello")
    sni: str | None
    edge_name: str | None
    tls_version: str | None = None  # negotiated, when OpenSSL got that far
    ca_set: str | None = None  # the set the edge certificate binds
    ca_set_version: int | None = None  # its active version enforced (None: none active)
    verify_error: int | None = None  # the first X509_V_ERR_* code
    verify_depth: int | None = None
    certificate: crypto.X509 | None = None
    revoked_by: str | None = None  # "crl" or "ocsp" when reason is revoked
    revoked_at: datetime | None = None  # an OCSP answer's revocationTime (a CRL's is read later)
    crls_der: tuple[bytes, ...] = ()  # the set's CRLs: where a CRL revocation's date is

    def certificate_der(self) -> bytes | None:
        if self.certificate is None:
            return None
        return crypto.dump_certificate(crypto.FILETYPE_ASN1, self.certificate)


def refusal_of(
    reason: Reason,
    detail: str,
    sni: str | None,
    prepared: PreparedEdge | None,
    record: VerifyRecord,
    conn: SSL.Connection | None,
) -> Refusal:
    """What the engine knows of its failed handshake (`TlsEngine.refusal`)."""
    ca_set = version = None
    crls: tuple[bytes, ...] = ()
    if prepared is not None:
        ca_set = prepared.edge.mutual_authentication.ca_set
        if prepared.anchors is not None:
            version, crls = prepared.anchors.version, prepared.anchors.crls_der
    tls_version = None
    if conn is not None:
        name = conn.get_protocol_version_name()
        tls_version = name if name.startswith("TLS") else None
    return Refusal(
        reason=reason,
        detail=detail,
        sni=sni,
        edge_name=None if prepared is None else prepared.name,
        tls_version=tls_version,
        ca_set=ca_set,
        ca_set_version=version,
        verify_error=record.error,
        verify_depth=None if record.error is None else record.depth,
        certificate=record.failed,
        revoked_by=record.revoked_by if reason is Reason.REVOKED else None,
        revoked_at=record.revoked_at if reason is Reason.REVOKED else None,
        crls_der=crls,
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _revoked_at(serial: int, crls_der: tuple[bytes, ...]) -> str | None:
    for der in crls_der:
        try:
            entry = x509.load_der_x509_crl(der).get_revoked_certificate_by_serial_number(serial)
        except ValueError:
            continue
        if entry is not None:
            return _iso(entry.revocation_date_utc)
    return None


def describe(refusal: Refusal, der: bytes | None = None) -> dict[str, Any]:
    """The log fields of a refusal beyond reason, SNI and edge (docs/operations.md).

    `der`: the certificate's DER when the caller has it already. Certificate fields are null when
    no certificate was judged; `revoked_at` is the CRL entry's revocation date, or the cached OCSP
    answer's revocationTime.
    """
    fields: dict[str, Any] = {
        "tls_version": refusal.tls_version,
        "ca_set": refusal.ca_set,
        "ca_set_version": refusal.ca_set_version,
        "verify_error": refusal.verify_error,
        "verify_depth": refusal.verify_depth,
        "client_subject": None,
        "client_issuer": None,
        "client_serial": None,
        "client_sha256": None,
        "client_not_before": None,
        "client_not_after": None,
        "revocation_source": refusal.revoked_by,
        "revoked_at": None if refusal.revoked_at is None else _iso(refusal.revoked_at),
    }
    detail = refusal.detail
    if refusal.verify_error is not None:
        detail = f"{detail}: {verify_error_text(refusal.verify_error)}"
    if der is None:
        der = refusal.certificate_der()
    if der is not None:
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            cert = None
        fields["client_sha256"] = hashlib.sha256(der).hexdigest()
        if cert is not None:
            not_after = _iso(cert.not_valid_after_utc)
            fields.update(
                client_subject=cert.subject.rfc4514_string(),
                client_issuer=cert.issuer.rfc4514_string(),
                client_serial=f"{cert.serial_number:x}",
                client_not_before=_iso(cert.not_valid_before_utc),
                client_not_after=not_after,
            )
            if refusal.reason is Reason.EXPIRED and refusal.verify_error == 10:
                detail = f"{detail} (notAfter {not_after})"
            elif refusal.reason is Reason.NOT_YET_VALID:
                detail = f"{detail} (notBefore {fields['client_not_before']})"
            elif refusal.reason is Reason.REVOKED and refusal.revoked_by == "crl":
                fields["revoked_at"] = _revoked_at(cert.serial_number, refusal.crls_der)
    if refusal.reason is Reason.REVOKED and refusal.revoked_by is not None:
        when = fields["revoked_at"]
        source = refusal.revoked_by.upper()
        detail = f"{detail} ({source}{'' if when is None else ', revoked ' + when})"
    fields["detail"] = detail
    return fields
