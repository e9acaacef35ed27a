"""Revocation in the data plane (§5): OCSP per binding, CRL freshness.

`check.Revocation` is the worker's service (made by the edge role): the verify step's cache lookup
(`tls.contexts.RevocationHooks`) and the HTTP layer's first-request wait
(`dataplane.http.context.RevocationProvider`). `ocsp` talks to responders, `verify` decides whether
an answer is trustworthy, `cache` keeps answers, `gate` is one connection's answer, `crl` watches
CRL freshness.
"""

from edgeproxy.revocation.cache import Answer, OcspCache, Status
from edgeproxy.revocation.check import Revocation
from edgeproxy.revocation.crl import CrlInfo, CrlWatch
from edgeproxy.revocation.gate import RevocationCheck
from edgeproxy.revocation.ocsp import OcspClient

__all__ = [
    "Answer",
    "CrlInfo",
    "CrlWatch",
    "OcspCache",
    "OcspClient",
    "Revocation",
    "RevocationCheck",
    "Status",
]
