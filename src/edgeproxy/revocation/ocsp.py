"""What an OCSP question looks like (RFC 6960): the request for one certificate, and its responder.

Pure; the asking itself is `dataplane.revocation.client.OcspClient`.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID


class OcspUnavailable(Exception):
    """No response could be had; the message is log-safe."""


def build_request(leaf: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """A DER OCSPRequest for one certificate, SHA-1 CertID (RFC 6960 §4.1.1; what every
    responder supports, and what RFC 5019 mandates). No nonce: answers are cached and shared."""
    builder = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1())  # noqa: S303
    return builder.build().public_bytes(Encoding.DER)


def responder_url(leaf: x509.Certificate, configured: str | None) -> str | None:
    """The binding's configured responder, else the first http(s) OCSP URL in the leaf's AIA."""
    if configured:
        return configured
    try:
        aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    for desc in aia:
        if desc.access_method == AuthorityInformationAccessOID.OCSP and isinstance(
            desc.access_location, x509.UniformResourceIdentifier
        ):
            url = desc.access_location.value
            if url.startswith(("http://", "https://")):
                return url
    return None
