"""Immutable trust inputs and the trust state the data plane reads (docs/architecture.md,
docs/dataplane.md;).

`EdgeTrust` is everything a context depends on. `TrustState` is the snapshot a listener reads
through one reference: edge name → prepared context, plus the SNI index. It is built aside and
raises on any failure, so the caller keeps serving the previous state (ghostunnel-style reload).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from edgeproxy.config.model import EdgeCertificateConfig

if TYPE_CHECKING:
    from OpenSSL import SSL


@dataclass(frozen=True, slots=True)
class TrustAnchors:
    """The active version of a CA set on this node's network, as DER certificates.

    `crls_der`: the set's effective CRLs (docs/management.md: the newest valid one per issuer, not
    versioned). A
    client certificate whose issuer has a CRL here is checked against it in the handshake; an
    issuer without one is not (contexts.py).
    """

    ca_set: str
    version: int
    certificates_der: tuple[bytes, ...]
    require_root_certificate: bool = False
    crls_der: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class EdgeTrust:
    """One edge certificate with the anchors its binding resolves to right now.

    `anchors=None`: the bound set has no active version on this network; the context fails closed
    (every client is refused, reason `no_active_version`).
    `revision`: a generation number for the key material on disk. The certificate and key are read
    from the paths in `edge`, which a digest cannot see, so whoever reloads them bumps `revision`.
    Do not pass the store revision: every unrelated change would rebuild every context and end
    every resumable session.
    """

    edge: EdgeCertificateConfig
    anchors: TrustAnchors | None
    revision: int = 0

    def digest(self) -> bytes:
        """SHA-256 over every input that shapes the `SSL.Context` (not the origin or hostnames)."""
        h = hashlib.sha256(b"edgeproxy-edge-trust-v1")

        def put(value: bytes | str | int | bool | None) -> None:
            raw = value if isinstance(value, bytes) else repr(value).encode()
            h.update(len(raw).to_bytes(4, "big"))
            h.update(raw)

        edge = self.edge
        put(edge.name)
        put(str(edge.certificate))
        put(str(edge.private_key))
        put(repr(edge.mutual_authentication))
        put(self.revision)
        anchors = self.anchors
        if anchors is None:
            put(None)
        else:
            put(anchors.ca_set)
            put(anchors.version)
            put(anchors.require_root_certificate)
            put(len(anchors.certificates_der))
            for der in anchors.certificates_der:
                put(der)
            # Appended after the certificates, and nothing when there are none: digests (and so
            # session-id contexts) of CRL-less anchors stay what they were before CRLs existed.
            if anchors.crls_der:
                put(b"crls")
                put(len(anchors.crls_der))
                for der in anchors.crls_der:
                    put(der)
        return h.digest()


@dataclass(frozen=True, slots=True)
class PreparedEdge:
    """An edge certificate with the context every one of its connections will use."""

    trust: EdgeTrust
    context: SSL.Context

    @property
    def edge(self) -> EdgeCertificateConfig:
        return self.trust.edge

    @property
    def name(self) -> str:
        return self.trust.edge.name


def _normalize(hostname: str) -> str:
    return hostname.lower().removesuffix(".")


class TrustState:
    """Immutable: edge certificate name → `PreparedEdge`, and SNI → edge (docs/dataplane.md).

    SNI lookup order: exact host name, then a `*.` wildcard one label deep (`*.a.com` matches
    `x.a.com`, not `a.com` nor `y.x.a.com`), then the `default = true` edge (also used when the
    client sends no SNI), else None: the handshake is refused with `unrecognized_name`.
    """

    __slots__ = ("_default", "_exact", "_wildcard", "edges")

    def __init__(self, prepared: Sequence[PreparedEdge] = ()) -> None:
        edges: dict[str, PreparedEdge] = {}
        exact: dict[str, PreparedEdge] = {}
        wildcard: dict[str, PreparedEdge] = {}
        default: PreparedEdge | None = None
        for p in prepared:
            if p.name in edges:
                raise ValueError(f"duplicate edge certificate name {p.name!r}")
            edges[p.name] = p
            if p.edge.default:
                if default is not None:
                    raise ValueError(f"edges {default.name!r} and {p.name!r} are both default")
                default = p
            for raw in p.edge.hostnames:
                host = _normalize(raw)
                index, key = (wildcard, host[2:]) if host.startswith("*.") else (exact, host)
                if not key or "*" in key:
                    raise ValueError(f"edge {p.name!r}: unsupported host name pattern {raw!r}")
                other = index.get(key)
                if other is not None and other is not p:
                    raise ValueError(f"{raw!r} is served by both {other.name!r} and {p.name!r}")
                index[key] = p
        self.edges: Mapping[str, PreparedEdge] = MappingProxyType(edges)
        self._exact = exact
        self._wildcard = wildcard
        self._default = default

    @classmethod
    def build(
        cls, edges: Sequence[EdgeTrust], context_for: Callable[[EdgeTrust], SSL.Context]
    ) -> TrustState:
        """Build every context aside (`ContextCache.get` reuses cached ones); raises on the first
        failure."""
        return cls([PreparedEdge(t, context_for(t)) for t in edges])

    def select(self, sni: str | None) -> PreparedEdge | None:
        if sni is not None:
            found = self._exact.get(sni)
            if found is not None:
                return found
            label, dot, parent = sni.partition(".")
            if label and dot:
                found = self._wildcard.get(parent)
                if found is not None:
                    return found
        return self._default

    def __repr__(self) -> str:
        return f"TrustState(edges={sorted(self.edges)!r})"
