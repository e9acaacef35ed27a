"""Edge certificate use cases (docs/management.md "Edge certificates"): create, list, read,
update, rotate and delete the edge certificates the store manages. The private key is sealed
under the key-encryption key before it reaches the store and is never read back here."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from edgeproxy.domain.edge_certificates import (
    ChainReport,
    check_alpn,
    check_hostnames,
    check_origin,
    coverage_warnings,
    leaf_of,
    validate_server_chain,
)
from edgeproxy.domain.edge_model import ALPN_PROTOCOLS, EdgeBinding, EdgeCertificate, LeafInfo
from edgeproxy.domain.errors import Conflict, FieldError, NotFound, ValidationError
from edgeproxy.domain.model import Node
from edgeproxy.domain.rules import Liveness
from edgeproxy.domain.secrets import KeyRing
from edgeproxy.service.edge_shared import DeclaredEdge, declared_edges
from edgeproxy.service.shared import Actor, Clock
from edgeproxy.store import Store, Tx

# The config file's rule for edge certificate names (they appear in logs and metrics).
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class EdgeDraft:
    name: str
    hostnames: tuple[str, ...]
    origin: str
    default: bool
    chain_pem: str
    key_pem: str  # held only until sealed
    alpn: tuple[str, ...] = ALPN_PROTOCOLS  # in the server's order of preference


@dataclass(frozen=True)
class EdgeView:
    """One edge certificate as the API shows it: a stored one (`cert`, `leaf`) or one a node
    declares in its file (`declared`); its bindings and the live nodes serving it."""

    name: str
    cert: EdgeCertificate | None
    leaf: LeafInfo | None
    declared: DeclaredEdge | None
    bindings: tuple[EdgeBinding, ...]
    nodes: tuple[str, ...]
    warnings: tuple[FieldError, ...] = ()


def check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise ValidationError(
            "invalid-edge-certificate-name",
            "name must be 1-64 characters of A-Z a-z 0-9 _ . - starting with a letter or digit",
            (FieldError("invalid-edge-certificate-name", "invalid name", "/name"),),
        )


def _refuse(report: ChainReport) -> None:
    if not report.ok:
        raise ValidationError(
            "invalid-edge-certificate",
            f"{len(report.errors)} problem(s) with the certificate chain or private key: "
            + report.errors[0].detail,
            report.errors,
        )


class EdgeCertificates:
    def __init__(
        self, store: Store, clock: Clock, liveness: Liveness, keys: KeyRing | None
    ) -> None:
        self._store = store
        self._clock = clock
        self._liveness = liveness
        self._keys = keys

    def _ring(self) -> KeyRing:
        if self._keys is None:
            raise Conflict(
                "key-encryption-key-missing",
                "this admin node has no key-encryption key ([store] key_encryption_key_file "
                "or EDGEPROXY_KEY_ENCRYPTION_KEY), so it cannot store a private key",
            )
        return self._keys

    # -- reads ---------------------------------------------------------------------------------

    async def list_edge_certificates(self) -> list[EdgeView]:
        async with self._store.transaction(write=False) as tx:
            certs = await tx.list_edge_certificates()
            bindings = await tx.list_bindings()
            nodes = await tx.list_nodes()
        now = self._clock()
        live = self._liveness.live_edge_nodes(nodes, now)
        views = [
            self._view(c, tuple(b for b in bindings if b.edge_certificate == c.name), live)
            for c in certs
        ]
        stored = {c.name for c in certs}
        views += [
            EdgeView(d.name, None, None, d, (), d.nodes)
            for d in declared_edges(nodes, now, self._liveness)
            if d.name not in stored
        ]
        return sorted(views, key=lambda v: v.name)

    async def get_edge_certificate(self, name: str) -> EdgeView:
        for view in await self.list_edge_certificates():
            if view.name == name:
                return view
        raise NotFound("edge-certificate-not-found", f"no edge certificate named {name!r}")

    def _view(
        self, cert: EdgeCertificate, bindings: tuple[EdgeBinding, ...], live: list[Node]
    ) -> EdgeView:
        nodes = tuple(
            sorted(n.name for n in live if any(b.edge_certificate == cert.name for b in n.bindings))
        )
        return EdgeView(cert.name, cert, leaf_of(cert.chain_pem), None, bindings, nodes)

    # -- writes --------------------------------------------------------------------------------

    async def create_edge_certificate(self, actor: Actor, draft: EdgeDraft) -> EdgeView:
        check_name(draft.name)
        alpn = check_alpn(draft.alpn)
        hostnames = check_hostnames(draft.hostnames)
        check_origin(draft.origin)
        now = self._clock()
        report = validate_server_chain(draft.chain_pem, draft.key_pem, hostnames, now=now)
        _refuse(report)
        ring = self._ring()
        cert = EdgeCertificate(
            name=draft.name,
            hostnames=hostnames,
            origin=draft.origin,
            default=draft.default,
            chain_pem=report.chain_pem,
            sealed_key=ring.seal(draft.name, report.key_pem),
            generation=1,
            warnings=report.warnings,
            created_by=actor.name,
            created_at=now,
            alpn=alpn,
        )
        async with self._store.transaction(write=True) as tx:
            nodes = await tx.list_nodes()
            declared = declared_edges(nodes, now, self._liveness)
            if await tx.get_edge_certificate(draft.name) is not None or any(
                d.name == draft.name for d in declared
            ):
                raise Conflict(
                    "edge-certificate-name-taken",
                    f"an edge certificate named {draft.name!r} already exists",
                )
            await self._check_claims(tx, cert, declared)
            await tx.bump_revision()
            await tx.insert_edge_certificate(cert)
        return EdgeView(cert.name, cert, report.leaf, None, (), (), report.warnings)

    async def update_edge_certificate(
        self,
        actor: Actor,
        name: str,
        *,
        hostnames: tuple[str, ...] | None,
        origin: str | None,
        default: bool | None,
        alpn: tuple[str, ...] | None = None,
    ) -> EdgeView:
        protocols = check_alpn(alpn) if alpn is not None else None
        checked = check_hostnames(hostnames) if hostnames is not None else None
        if origin is not None:
            check_origin(origin)
        now = self._clock()
        async with self._store.transaction(write=True) as tx:
            cert = await self._stored(tx, name)
            changed = replace(
                cert,
                hostnames=checked if checked is not None else cert.hostnames,
                origin=origin if origin is not None else cert.origin,
                default=default if default is not None else cert.default,
                alpn=protocols if protocols is not None else cert.alpn,
            )
            leaf = leaf_of(cert.chain_pem)
            warnings = tuple(coverage_warnings(leaf.dns_names, changed.hostnames))
            declared = declared_edges(await tx.list_nodes(), now, self._liveness)
            await self._check_claims(tx, changed, declared)
            await tx.bump_revision()
            await tx.update_edge_certificate(
                name,
                hostnames=changed.hostnames,
                origin=changed.origin,
                default=changed.default,
                alpn=changed.alpn,
                warnings=warnings,
                by=actor.name,
                at=now,
            )
        return await self._fresh(name, warnings)

    async def rotate_edge_certificate(
        self, actor: Actor, name: str, chain_pem: str, key_pem: str
    ) -> EdgeView:
        """Replace the chain and key in one change: nodes build the new context aside and swap;
        open connections keep the one they started with."""
        now = self._clock()
        async with self._store.transaction(write=False) as tx:
            cert = await self._stored(tx, name)
        report = validate_server_chain(chain_pem, key_pem, cert.hostnames, now=now)
        _refuse(report)
        sealed = self._ring().seal(name, report.key_pem)
        async with self._store.transaction(write=True) as tx:
            await self._stored(tx, name)
            await tx.bump_revision()
            await tx.rotate_edge_certificate(
                name,
                chain_pem=report.chain_pem,
                sealed_key=sealed,
                warnings=report.warnings,
                by=actor.name,
                at=now,
            )
        return await self._fresh(name, report.warnings)

    async def delete_edge_certificate(self, actor: Actor, name: str) -> None:
        async with self._store.transaction(write=True) as tx:
            await self._stored(tx, name)
            bound = [b for b in await tx.list_bindings() if b.edge_certificate == name]
            if bound:
                raise Conflict(
                    "edge-certificate-bound",
                    f"edge certificate {name!r} is bound on "
                    + ", ".join(f"{b.network.value} (CA set {b.auth.ca_set!r})" for b in bound)
                    + "; remove its mutual authentication there first",
                    extra={
                        "bindings": [
                            {"network": b.network.value, "caSetName": b.auth.ca_set} for b in bound
                        ]
                    },
                )
            await tx.bump_revision()
            await tx.delete_edge_certificate(name)

    # -- helpers -------------------------------------------------------------------------------

    async def _fresh(self, name: str, warnings: tuple[FieldError, ...]) -> EdgeView:
        view = await self.get_edge_certificate(name)
        return replace(view, warnings=warnings)

    async def _stored(self, tx: Tx, name: str) -> EdgeCertificate:
        cert = await tx.get_edge_certificate(name)
        if cert is not None:
            return cert
        declared = declared_edges(await tx.list_nodes(), self._clock(), self._liveness)
        if any(d.name == name for d in declared):
            raise Conflict(
                "edge-certificate-read-only",
                f"edge certificate {name!r} is declared in a node's config file "
                "(source: config); change it there",
            )
        raise NotFound("edge-certificate-not-found", f"no edge certificate named {name!r}")

    async def _check_claims(
        self, tx: Tx, cert: EdgeCertificate, declared: list[DeclaredEdge]
    ) -> None:
        """Host names are unique across edge certificates, and one of them at most is the
        default (the SNI pick could not choose otherwise)."""
        others: list[tuple[str, tuple[str, ...], bool]] = [
            (c.name, c.hostnames, c.default)
            for c in await tx.list_edge_certificates()
            if c.name != cert.name
        ]
        others += [(d.name, d.hostnames, False) for d in declared if d.name != cert.name]
        for i, host in enumerate(cert.hostnames):
            for other, hosts, _ in others:
                if host in hosts:
                    raise Conflict(
                        "hostname-taken",
                        f"hostnames[{i}] {host!r} is already served by edge certificate {other!r}",
                        (FieldError("hostname-taken", "taken", f"/hostnames/{i}"),),
                    )
        default = next((o for o, _, d in others if d), None)
        if cert.default and default is not None:
            raise Conflict("default-taken", f"edge certificate {default!r} is already the default")
