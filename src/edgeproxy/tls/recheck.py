"""Judge an open connection's client certificate again, against a newer trust state.

A handshake verifies once; a trust change (an activation that drops the issuing CA, a forced
deactivation, a CRL naming the client) must also reach connections opened before it. The chain
the client presented is verified again, here, against the new anchors (their CRLs included), with
the same rules as the handshake: every certificate of the version is an anchor unless the version
requires a root, and a CRL counts only for the issuer that signed it (contexts.py). Pure and
blocking: the data plane runs a batch of these in an executor thread after each swap, and the
management plane runs `VersionJudge` on recorded client chains to tell what a version would do
before it is activated (service/impact.py): one verifier for both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from OpenSSL import crypto

from edgeproxy.domain.crls import crl_signed_by
from edgeproxy.domain.model import BlockedCertificate, Version
from edgeproxy.tls.reasons import from_verify_error
from edgeproxy.tls.session import Reason
from edgeproxy.tls.trust import TrustAnchors


def judge_chain(
    chain_der: Sequence[bytes],
    anchors: TrustAnchors | None,
    before: TrustAnchors | None = None,
) -> Reason | None:
    """None while the chain (leaf first, as the client sent it) is still trusted under
    `anchors`, else why not: no_active_version, revoked, blocked, or the handshake's reason
    for the verify error. `before`: the anchors it was trusted under, to rebuild the whole chain
    first (a resumed session may know only the leaf, its intermediates not resent). Verifies on
    each anchors' shared parsed store (`TrustAnchors.parsed`)."""
    if anchors is None:
        return Reason.NO_ACTIVE_VERSION
    if not chain_der:
        return Reason.NO_CERTIFICATE
    try:
        leaf = crypto.load_certificate(crypto.FILETYPE_ASN1, chain_der[0])
        rest = [crypto.load_certificate(crypto.FILETYPE_ASN1, d) for d in chain_der[1:]]
    except crypto.Error:
        return Reason.BAD_CERTIFICATE
    if before is not None:
        with contextlib.suppress(crypto.X509StoreContextError):
            old_store = before.parsed().store
            rest = crypto.X509StoreContext(old_store, leaf, rest).get_verified_chain()[1:]
    parsed = anchors.parsed()
    verified: list[crypto.X509] = []
    reason: Reason | None = None
    try:
        verified = crypto.X509StoreContext(parsed.store, leaf, rest).get_verified_chain()
    except crypto.X509StoreContextError as error:
        code = error.errors[0] if error.errors and isinstance(error.errors[0], int) else 0
        reason = from_verify_error(code) if code else Reason.BAD_CERTIFICATE
    leaf_cert = leaf.to_cryptography()
    # OpenSSL checks the leaf's purpose once it has a path, before revocation and dates.
    if reason is not Reason.UNKNOWN_CA and not _fit_for_client_auth(leaf_cert):
        return Reason.BAD_CERTIFICATE
    if reason is not None:
        return reason
    if parsed.crls and len(verified) > 1 and _revoked(verified[0], verified[1], parsed.crls):
        return Reason.REVOKED
    if anchors.blocked and anchors.blocked.blocks(leaf_cert, chain_der[0]):
        return Reason.BLOCKED
    return None


def _fit_for_client_auth(leaf: x509.Certificate) -> bool:
    """What a TLS server's verification demands of a client's leaf (OpenSSL's SSL-client purpose,
    which this module's X509 store does not apply): an extended key usage, when present, names
    clientAuth; a key usage, when present, allows digitalSignature or keyAgreement."""
    extensions = leaf.extensions
    with contextlib.suppress(x509.ExtensionNotFound):
        usages = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
            return False
    with contextlib.suppress(x509.ExtensionNotFound):
        key_usage = extensions.get_extension_for_class(x509.KeyUsage).value
        if not (key_usage.digital_signature or key_usage.key_agreement):
            return False
    return True


def _revoked(
    leaf: crypto.X509, issuer: crypto.X509, crls: Sequence[x509.CertificateRevocationList]
) -> bool:
    """The leaf is on a CRL of the issuer that verified it (signed by that issuer's key)."""
    issuer_cert = issuer.to_cryptography()
    serial = leaf.get_serial_number()
    for crl in crls:
        if crl.issuer != issuer_cert.subject or not crl_signed_by(crl, issuer_cert):
            continue  # another issuer's list, or a same-DN CA's (contexts.py)
        if crl.get_revoked_certificate_by_serial_number(serial) is not None:
            return True
    return False


class VersionJudge:
    """`judge_chain` on the anchors a store version gives (`TrustAnchors.from_version`, as trust
    sync builds them), for chains the nodes recorded. Blocking; one per impact computation, in which
    the set's CRLs and blocked certificates (not versioned) stay the same."""

    def __init__(self) -> None:
        self._anchors: dict[tuple[str, int], TrustAnchors] = {}

    def verdict(
        self,
        chain_der: Sequence[bytes],
        ca_set: str,
        version: Version | None,
        crls_der: tuple[bytes, ...],
        blocked: tuple[BlockedCertificate, ...],
    ) -> str | None:
        """None when the edge would accept the chain under `version` (None: no active version),
        else the reason it would give."""
        if version is None:
            return Reason.NO_ACTIVE_VERSION.value
        key = (ca_set, version.version)
        anchors = self._anchors.get(key)
        if anchors is None:
            anchors = TrustAnchors.from_version(ca_set, version, crls_der, blocked)
            self._anchors[key] = anchors
        reason = judge_chain(chain_der, anchors)
        return None if reason is None else reason.value


def version_judge() -> Callable[
    [Sequence[bytes], str, Version | None, tuple[bytes, ...], tuple[BlockedCertificate, ...]],
    str | None,
]:
    """The verdict function of a new `VersionJudge`: what service/impact.py is handed."""
    return VersionJudge().verdict
