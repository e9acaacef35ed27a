"""Asking an OCSP responder over HTTP (RFC 6960 Appendix A) with the worker's shared session.

The client follows no redirect, decompresses nothing, reads at most `MAX_RESPONSE` bytes; every
failure is an `OcspUnavailable`, which the caller treats like any untrusted answer. The caller
bounds the duration (the binding's `ocsp.timeout`).
"""

from __future__ import annotations

from typing import Final

import aiohttp

from edgeproxy.revocation.ocsp import OcspUnavailable

MAX_RESPONSE: Final = 64 * 1024  # a response with a few delegated certificates is ~1-4 KiB
_HEADERS: Final = {
    "Content-Type": "application/ocsp-request",
    "Accept": "application/ocsp-response",
}


class OcspClient:
    """POSTs requests with the worker's shared session (one ClientSession per worker)."""

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
