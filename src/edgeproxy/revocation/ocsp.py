"""Asking an OCSP responder (RFC 6960 over HTTP, Appendix A): request, responder URL, POST.

One `OcspClient` per worker wraps the worker's shared aiohttp `ClientSession` (made by the edge
role). The client follows no redirect, decompresses nothing, reads at most `MAX_RESPONSE` bytes and
gives up after the binding's `ocsp.timeout`; every failure is an `OcspUnavailable`, which the
caller treats like any untrusted answer.
"""

from __future__ import annotations

from typing import Final

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID

MAX_RESPONSE: Final = 64 * 1024  # a response with a few delegated certificates is ~1-4 KiB
_HEADERS: Final = {
    "Content-Type": "application/ocsp-request",
    "Accept": "application/ocsp-response",
}


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


class OcspClient:
    """POSTs requests with the worker's shared session (habit: one ClientSession per worker)."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def post(self, url: str, request: bytes) -> bytes:
        """The responder's DER response; raises `OcspUnavailable` on any failure. The caller
        bounds the duration (a cancellation from its `asyncio.timeout` passes through)."""
        try:
            async with self.session.post(
                url, data=request, headers=_HEADERS, allow_redirects=False
            ) as resp:
                if resp.status != 200:
                    raise OcspUnavailable(f"responder answered HTTP {resp.status}")
                if (resp.content_length or 0) > MAX_RESPONSE:
                    raise OcspUnavailable("response too large")
                body = bytearray()
                async for chunk in resp.content.iter_chunked(16 * 1024):
                    body += chunk
                    if len(body) > MAX_RESPONSE:
                        raise OcspUnavailable("response too large")
                return bytes(body)
        except (aiohttp.ClientError, ValueError, OSError) as exc:
            raise OcspUnavailable(f"{type(exc).__name__}: {exc}") from None
