"""The fleet side of the store: node reports, the trust view nodes apply, and the reconciler that
turns node reports into activation progress and finishes deletions (docs/management.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from edgeproxy.domain import rules
from edgeproxy.domain.crls import crl_der, effective_crls
from edgeproxy.domain.model import (
    ActivationStatus,
    ActivationType,
    CaSetStatus,
    Network,
    Node,
    Version,
)
from edgeproxy.service.base import Clock, utc_now
from edgeproxy.store import Store, Tx


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


class FleetService:
    def __init__(
        self, store: Store, *, clock: Clock = utc_now, node_ttl: timedelta = timedelta(seconds=15)
    ) -> None:
        self.store = store
        self.clock = clock
        self.node_ttl = node_ttl

    async def report_node(self, node: Node) -> None:
        """Register or heartbeat a node. Telemetry, not configuration: the revision stays."""
        async with self.store.transaction(write=True) as tx:
            await tx.upsert_node(node)

    async def remove_node(self, name: str) -> None:
        """A node shutting down cleanly leaves at once instead of waiting out its TTL."""
        async with self.store.transaction(write=True) as tx:
            await tx.delete_node(name)

    async def trust_view(self, network: Network) -> TrustView:
        async with self.store.transaction(write=False) as tx:
            revision = await tx.revision()
            active: dict[str, Version | None] = {}
            changed_at: dict[str, datetime] = {}
            crls: dict[str, tuple[bytes, ...]] = {}
            for ca_set in await tx.list_ca_sets():
                if ca_set.status is CaSetStatus.DELETED:
                    continue
                effective = effective_crls(await tx.list_crls(ca_set.id))
                crls[ca_set.name] = tuple(crl_der(c) for c in effective)
                number = ca_set.active_version(network)
                active[ca_set.name] = (
                    await tx.get_version(ca_set.id, number) if number is not None else None
                )
                latest = next(
                    (a for a in await tx.list_activations(ca_set.id) if a.network is network),
                    None,
                )
                if latest is not None:
                    changed_at[ca_set.name] = latest.created_at
            return TrustView(revision, network, active, changed_at, crls)

    async def reconcile(self) -> None:
        """Advance in-flight activations from node reports and finish pending deletions."""
        # Most ticks find nothing to do: look first, so an idle fleet never takes the write lock.
        async with self.store.transaction(write=False) as tx:
            pending = await tx.in_progress_activations() or any(
                s.status is CaSetStatus.DELETING for s in await tx.list_ca_sets()
            )
        if not pending:
            return
        now = self.clock()
        async with self.store.transaction(write=True) as tx:
            nodes = await tx.list_nodes()
            live = [n for n in nodes if "edge" in n.roles and rules.is_live(n, now, self.node_ttl)]
            await self._advance_activations(tx, live, now)
            await self._finish_deletions(tx, live, now)

    async def _advance_activations(self, tx: Tx, live: list[Node], now: datetime) -> None:
        for activation in await tx.in_progress_activations():
            ca_set = await tx.get_ca_set(activation.ca_set_id)
            assert ca_set is not None
            waiting = [n for n in live if n.network is activation.network]
            caught_up = [n for n in waiting if n.applied_revision >= activation.revision]
            failed = [n for n in caught_up if ca_set.name in n.apply_errors]
            if failed:
                reason = "; ".join(f"{n.name}: {n.apply_errors[ca_set.name]}" for n in failed)
                await tx.update_activation(
                    activation.id,
                    status=ActivationStatus.FAILED,
                    percent_complete=activation.percent_complete,
                    at=now,
                    failure_reason=reason,
                )
                # Put the network back where it was, so the fleet converges to the old state.
                restore = (
                    activation.previous_version
                    if activation.type is ActivationType.ACTIVATE
                    else activation.version
                )
                await tx.bump_revision()
                await tx.set_active_version(ca_set.id, activation.network, restore)
                continue
            done = len(caught_up) == len(waiting)
            percent = 100 if done else len(caught_up) * 100 // len(waiting)
            if done or percent != activation.percent_complete:
                await tx.update_activation(
                    activation.id,
                    status=ActivationStatus.COMPLETE if done else ActivationStatus.IN_PROGRESS,
                    percent_complete=percent,
                    at=now if done else None,
                )

    async def _finish_deletions(self, tx: Tx, live: list[Node], now: datetime) -> None:
        for ca_set in await tx.list_ca_sets():
            if ca_set.status is not CaSetStatus.DELETING:
                continue
            users = sorted(
                {
                    f"{n.name}/{b.edge_certificate}"
                    for n in live
                    for b in n.bindings
                    if b.ca_set == ca_set.name
                }
            )
            failure = f"edge certificates bind the set: {', '.join(users)}" if users else None
            await tx.bump_revision()
            await tx.finish_delete(ca_set.id, now, failure)
