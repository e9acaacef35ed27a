"""The reconciler: turns node reports into activation progress and finishes deletions
(docs/management.md). The admin role runs it on a timer."""

from __future__ import annotations

from datetime import datetime

from edgeproxy.domain.model import ActivationStatus, ActivationType, CaSetStatus, Node
from edgeproxy.domain.rules import Liveness
from edgeproxy.service.shared import Clock, associations_of
from edgeproxy.store import Store, Tx


class Reconciler:
    def __init__(self, store: Store, clock: Clock, liveness: Liveness) -> None:
        self._store = store
        self._clock = clock
        self._liveness = liveness

    async def reconcile(self) -> None:
        """Advance in-flight activations from node reports and finish pending deletions."""
        # Most ticks find nothing to do: look first, so an idle fleet never takes the write lock.
        async with self._store.transaction(write=False) as tx:
            pending = await tx.in_progress_activations() or any(
                s.status is CaSetStatus.DELETING for s in await tx.list_ca_sets()
            )
        if not pending:
            return
        now = self._clock()
        async with self._store.transaction(write=True) as tx:
            nodes = await tx.list_nodes()
            await self._advance_activations(tx, self._liveness.live_edge_nodes(nodes, now), now)
            await self._finish_deletions(tx, nodes, now)

    async def settle_restart(self, node_name: str) -> None:
        """A node starting under `node_name` means its previous process (and that process's
        workers, `<name>/w<i>`) is gone, killed perhaps before it applied an activation. Its
        records stop counting as live now rather than after the node TTL, and activations left
        in flight are settled by the usual rules: complete when no live node is left to apply
        them, failed when one reported an error."""
        async with self._store.transaction(write=True) as tx:
            for node in await tx.list_nodes():
                if node.name == node_name or node.name.startswith(f"{node_name}/"):
                    await tx.delete_node(node.name)
        await self.reconcile()

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

    async def _finish_deletions(self, tx: Tx, nodes: list[Node], now: datetime) -> None:
        for ca_set in await tx.list_ca_sets():
            if ca_set.status is not CaSetStatus.DELETING:
                continue
            users = sorted(
                {
                    f"{a.node}/{a.edge_certificate}"
                    for a in associations_of(ca_set, nodes, now, self._liveness)
                }
            )
            failure = f"edge certificates bind the set: {', '.join(users)}" if users else None
            await tx.bump_revision()
            await tx.finish_delete(ca_set.id, now, failure)
