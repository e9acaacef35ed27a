"""The trust flow's types (docs/architecture.md, docs/dataplane.md).

Four things, in the order a change travels: the store's view of a network
(`service.fleet.TrustView`), the anchors of one CA-set version (`TrustAnchors`), the prepared
edge (`PreparedEdge`: everything a connection of one edge certificate needs, built once per
change), and the node's state (`TrustState`: every prepared edge, the SNI index, and which store
revision and versions they enforce). A state is built aside (`contexts.build_state`, in an
executor thread) and swapped in through one reference; a failed build raises, so the caller keeps
serving the previous state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from OpenSSL import crypto

from edgeproxy.config.model import EdgeCertificateConfig
from edgeproxy.domain.model import BlockedCertificate, Version
from edgeproxy.domain.pem import BlockError, certificate_blocks
from edgeproxy.tls.blocklist import NO_BLOCKS, BlockKey, BlockList

if TYPE_CHECKING:
    from OpenSSL import SSL

# What identifies a version's anchors without reading them: (CA set, version, require root,
# SHA-256 fingerprints of the certificates, DER of the CRLs in effect, the blocked certificates).
# A set deleted and created again restarts at version 1, hence the fingerprints; they are stored,
# so nothing is hashed.
AnchorsKey = tuple[str, int, bool, tuple[str, ...], tuple[bytes, ...], BlockKey]


@dataclass(frozen=True, slots=True)
class ParsedAnchors:
    """One version's anchors as OpenSSL objects, parsed once and shared: every context built on
    them adds these very certificates to its store (OpenSSL counts references, nothing is copied),
    and the re-check of open connections verifies against `store` (recheck.py).

    `store`: the version's certificates alone (partial chains unless the version requires a root),
    without CRL flags: the re-check applies a CRL only for the issuer that signed it."""

    certificates: tuple[crypto.X509, ...]
    # Their subjects, the CA list sent to clients (`SSL.Context.set_client_ca_list`): built from
    # `certificates`, where `add_client_ca` would serialise and parse each certificate again for
    # every context (half of a 300-certificate context's build time).
    ca_names: tuple[crypto.X509Name, ...]
    store: crypto.X509Store
    crls: tuple[x509.CertificateRevocationList, ...]


def anchors_key(
    ca_set: str,
    version: Version,
    crls_der: tuple[bytes, ...],
    blocked: tuple[BlockedCertificate, ...] = (),
) -> AnchorsKey:
    """The key of the anchors a store version gives, from its stored fingerprints (no parsing)."""
    root = version.require_root_certificate
    return (
        ca_set,
        version.version,
        root,
        version.fingerprints,
        crls_der,
        BlockList.of(blocked).key,
    )


@dataclass(frozen=True, slots=True)
class TrustAnchors:
    """The active version of a CA set on this node's network, as DER certificates.

    `crls_der`: the set's effective CRLs (docs/management.md: the newest valid one per issuer, not
    versioned). A client certificate whose issuer has a CRL here is checked against it in the
    handshake; an issuer without one is not (contexts.py).
    `expiries`: (SHA-256 fingerprint, notAfter Unix time, subject DN) per certificate, for the
    metrics; they follow from the certificates, so they take no part in equality.
    `blocked`: the set's blocked certificates (not versioned either), refused in the handshake
    and by the re-check of open connections.
    """

    ca_set: str
    version: int
    certificates_der: tuple[bytes, ...]
    require_root_certificate: bool = False
    crls_der: tuple[bytes, ...] = ()
    expiries: tuple[tuple[str, float, str], ...] = field(default=(), compare=False)
    blocked: BlockList = NO_BLOCKS
    # Filled by `parsed` on first use; a list so that a frozen instance can keep it.
    _parsed: list[ParsedAnchors] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    @classmethod
    def from_version(
        cls,
        ca_set: str,
        version: Version,
        crls_der: tuple[bytes, ...] = (),
        blocked: tuple[BlockedCertificate, ...] = (),
    ) -> TrustAnchors:
        """Decode a store version's PEM to DER (off the event loop: a version holds up to 300).

        Only the PEM armour is undone: each certificate was validated when the version was made,
        and OpenSSL parses the DER once, into the context's store."""
        ders: list[bytes] = []
        for c in version.certificates:
            for block in certificate_blocks(c.certificate_pem):
                if isinstance(block, BlockError):
                    raise ValueError(f"{ca_set} v{version.version}: {block.detail}")
                ders.append(block[1])
        return cls(
            ca_set,
            version.version,
            tuple(ders),
            version.require_root_certificate,
            tuple(crls_der),
            tuple((c.fingerprint, c.end_date.timestamp(), c.subject) for c in version.certificates),
            BlockList.of(blocked),
        )

    @classmethod
    def from_der(
        cls,
        ca_set: str,
        version: int,
        ders: tuple[bytes, ...],
        root: bool = False,
        crls_der: tuple[bytes, ...] = (),
        blocked: BlockList = NO_BLOCKS,
    ) -> TrustAnchors:
        """From DER (the snapshot): the expiries are read from the certificates."""
        certs = [x509.load_der_x509_certificate(d) for d in ders]
        return cls(
            ca_set,
            version,
            ders,
            root,
            crls_der,
            tuple(
                (
                    c.fingerprint(hashes.SHA256()).hex(),
                    c.not_valid_after_utc.timestamp(),
                    c.subject.rfc4514_string(),
                )
                for c in certs
            ),
            blocked,
        )

    def parsed(self) -> ParsedAnchors:
        """The certificates and CRLs parsed, on first use: in the executor thread that builds the
        first context on these anchors. Anchors are reused across swaps while their key holds
        (dataplane/trust_inputs.py), so a version of 300 certificates is parsed once, not once per
        context and again for every re-check. Two threads racing here both parse; one result is
        kept, and either is correct."""
        if not self._parsed:
            certificates = tuple(
                crypto.load_certificate(crypto.FILETYPE_ASN1, der) for der in self.certificates_der
            )
            store = crypto.X509Store()
            for certificate in certificates:
                store.add_cert(certificate)
            if not self.require_root_certificate:
                store.set_flags(crypto.X509StoreFlags.PARTIAL_CHAIN)
            ca_names = tuple(certificate.get_subject() for certificate in certificates)
            crls = tuple(x509.load_der_x509_crl(der) for der in self.crls_der)
            self._parsed.append(ParsedAnchors(certificates, ca_names, store, crls))
        return self._parsed[0]

    @property
    def key(self) -> AnchorsKey:
        """`anchors_key` of these anchors: equal keys mean the same trust."""
        prints = tuple(sorted(f for f, _, _ in self.expiries))
        if len(prints) != len(self.certificates_der):  # made without expiries (tests)
            prints = tuple(sorted(hashlib.sha256(d).hexdigest() for d in self.certificates_der))
        root = self.require_root_certificate
        return (self.ca_set, self.version, root, prints, self.crls_der, self.blocked.key)


# What shapes an edge's SSL.Context: the edge's TLS settings, the key generation (bumped when the
# key files are re-read: a digest cannot see a file's content) and the anchors. Not the origin,
# the host names or the authorization rules: changing those keeps the context, and so resumable
# sessions.
ContextKey = tuple[object, ...]


def context_key(
    edge: EdgeCertificateConfig, anchors: TrustAnchors | None, generation: int = 0
) -> ContextKey:
    auth = edge.mutual_authentication
    # A store-managed edge: its rotation generation and chain (a KEK rotation re-seals the key,
    # which changes no certificate and so rebuilds nothing). The chain also tells apart an edge
    # deleted and created again under the same name.
    material = edge.material
    stored = None if material is None else (material.generation, material.chain_pem)
    return (
        edge.name,
        str(edge.certificate),
        str(edge.private_key),
        auth if auth.authorization is None else replace(auth, authorization=None),
        generation,
        None if anchors is None else anchors.key,
        stored,
        edge.unbound,
    )


HTTP1: bytes = b"http/1.1"


@dataclass(frozen=True, slots=True, eq=False)
class PreparedEdge:
    """One edge certificate, ready for connections: its context and what the HTTP layer decides.

    `anchors=None`: the bound set has no active version on this network; the context fails closed
    (every client is refused, reason `no_active_version`).
    `protocols`: what ALPN may select (engine.py), the edge certificate's `alpn` in its order of
    preference. A client that offers ALPN but none of these is refused with
    `no_application_protocol`; one that offers none gets HTTP/1.1 where the edge speaks it. Not a
    context input: the context's select callback takes the engine's choice (contexts.py).
    `forward`: the deny/forward policy for a client whose certificate did not verify (`request`
    mode with `on_failure = "forward"`): forwarded, flagged, instead of answered 403.
    """

    edge: EdgeCertificateConfig
    anchors: TrustAnchors | None
    context: SSL.Context
    key: ContextKey

    @property
    def name(self) -> str:
        return self.edge.name

    @property
    def protocols(self) -> tuple[bytes, ...]:
        return tuple(p.encode("ascii") for p in self.edge.alpn)

    @property
    def forward(self) -> bool:
        return self.edge.mutual_authentication.forwards_failures


def _normalize(hostname: str) -> str:
    return hostname.lower().removesuffix(".")


class TrustState:
    """Immutable: the node's trust in force. Edge name → `PreparedEdge`, SNI → edge, and where it
    came from (store revision, the active anchors per bound CA set, when, from what source).

    SNI lookup order: exact host name, then a `*.` wildcard one label deep (`*.a.com` matches
    `x.a.com`, not `a.com` nor `y.x.a.com`), then the `default = true` edge (also used when the
    client sends no SNI), else None: the handshake is refused with `unrecognized_name`.
    """

    __slots__ = (
        "_default",
        "_exact",
        "_wildcard",
        "active",
        "applied_at",
        "edges",
        "generation",
        "revision",
        "source",
    )

    def __init__(
        self,
        prepared: Sequence[PreparedEdge] = (),
        *,
        revision: int = 0,
        active: Mapping[str, TrustAnchors | None] | None = None,
        applied_at: datetime | None = None,
        source: str = "",
        generation: int = 0,
    ) -> None:
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
        self.revision = revision
        # Bound CA set name → its active anchors here (None: fail closed).
        self.active: Mapping[str, TrustAnchors | None] = MappingProxyType(dict(active or {}))
        self.applied_at = applied_at
        self.source = source  # "store" | "snapshot" ("" for a state made by hand)
        self.generation = generation  # of the key files the contexts were built from

    def at_revision(self, revision: int) -> TrustState:
        """The same trust, reported as caught up with `revision` (a rejected change)."""
        return TrustState(
            list(self.edges.values()),
            revision=revision,
            active=self.active,
            applied_at=self.applied_at,
            source=self.source,
            generation=self.generation,
        )

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
        return f"TrustState(revision={self.revision}, edges={sorted(self.edges)!r})"
