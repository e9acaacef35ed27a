"""The edge's side of the store: node reports in, the trust view nodes apply out
(docs/management.md). The reconciler that reads the reports is service/reconcile.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from edgeproxy.domain.clients import ClientObservation
from edgeproxy.domain.crls import crl_der, effective_crls
from edgeproxy.domain.edge_model import EdgeCertificate, MutualAuth
from edgeproxy.domain.model import BlockedCertificate, CaSetStatus, Network, Node, Version
from edgeproxy.store import Store


@dataclass(frozen=True)
class TrustView:
    """What an edge node of one network must enforce, as of one store revision."""

    revision: int
    network: Network
    # Every live CA set by name → its active version on the network (None: fail closed).
    active: dict[str, Version | None]
    # CA set name → when the activation that produced its current state was requested.
    changed_at: dict[str, datetime]
    # Every live CA set by name → the DER of its CRLs in effect (the newest per issuer,
    # docs/management.md),
    # whatever the version. One past its nextUpdate is still sent: the data plane decides what
    # an expired CRL means, rather than revoked certificates silently passing again.
    crls: dict[str, tuple[bytes, ...]] = field(default_factory=dict)
    # Every live CA set by name → its blocked certificates, expired ones included (the data
    # plane reads the time at each check, so an expiry needs no store change).
    blocked: dict[str, tuple[BlockedCertificate, ...]] = field(default_factory=dict)
    # The store-managed edge certificates (every node serves them all; keys still sealed) and,
    # by edge certificate name, its binding on this network (absent: it fails closed here).
    edges: tuple[EdgeCertificate, ...] = ()
    bindings: dict[str, MutualAuth] = field(default_factory=dict)


class FleetService:
    """What an edge node asks of the store: report itself, leave, and read its trust view."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def report_node(self, node: Node) -> None:
        """Register or heartbeat a node. Telemetry, not configuration: the revision stays."""
        async with self.store.transaction(write=True) as tx:
            await tx.upsert_node(node)

    async def remove_node(self, name: str) -> None:
        """A node shutting down cleanly leaves at once instead of waiting out its TTL."""
        async with self.store.transaction(write=True) as tx:
            await tx.delete_node(name)

    async def record_clients(
        self,
        node: str,
        records: Sequence[ClientObservation],
        *,
        now: datetime,
        window: timedelta,
        keep: int,
    ) -> None:
        """Add a node's batch of client records, keep its `keep` newest per edge certificate, and
        drop every record (any node's) last seen before the window. Telemetry: no revision."""
        async with self.store.transaction(write=True) as tx:
            await tx.add_client_records(records)
            for edge in sorted({r.edge_certificate for r in records}):
                await tx.trim_client_records(node, edge, keep)
            await tx.expire_client_records(now - window)

    async def forget_clients(self, node: str) -> None:
        """A node that keeps no client records takes what it wrote before out of the store."""
        async with self.store.transaction(write=True) as tx:
            await tx.delete_client_records(node)

    async def trust_view(self, network: Network) -> TrustView:
        async with self.store.transaction(write=False) as tx:
            revision = await tx.revision()
            active: dict[str, Version | None] = {}
            changed_at: dict[str, datetime] = {}
            crls: dict[str, tuple[bytes, ...]] = {}
            blocked: dict[str, tuple[BlockedCertificate, ...]] = {}
            for ca_set in await tx.list_ca_sets():
                if ca_set.status is CaSetStatus.DELETED:
                    continue
                effective = effective_crls(await tx.list_crls(ca_set.id))
                crls[ca_set.name] = tuple(crl_der(c) for c in effective)
                blocked[ca_set.name] = tuple(await tx.list_blocks(ca_set.id))
                number = ca_set.active_version(network)
                active[ca_set.name] = (
                    await tx.get_version(ca_set.id, number) if number is not None else None
                )
                latest = await tx.latest_activation(ca_set.id, network)
                if latest is not None:
                    changed_at[ca_set.name] = latest.created_at
            edges = tuple(await tx.list_edge_certificates())
            bindings = {b.edge_certificate: b.auth for b in await tx.list_bindings(network=network)}
            return TrustView(revision, network, active, changed_at, crls, blocked, edges, bindings)
