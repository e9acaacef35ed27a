"""The reconciler: turns node reports into the progress of every change in flight (its rollout,
domain/rollout.py) and finishes deletions (docs/management.md). The admin role runs it on a timer.

Each kind of change registers a `RolloutOwner`: the reconciler advances the rollout and hands it
to its owner, which reflects it in the change (an activation's status, percent and outcome).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from edgeproxy.domain.errors import NotFound
from edgeproxy.domain.model import CaSetStatus, Node, NodeProgress, Rollout
from edgeproxy.domain.rollout import advance, forget
from edgeproxy.domain.rules import Liveness
from edgeproxy.service.shared import Actor, Clock, associations_of
from edgeproxy.store import Store, Tx

log = logging.getLogger(__name__)


class RolloutOwner(Protocol):
    """The change a rollout belongs to, by kind (e.g. `ActivationRollouts`)."""

    kind: str

    async def rollout_moved(self, tx: Tx, rollout: Rollout, now: datetime) -> None:
        """Reflect the rollout's new state in the change, in the reconciler's transaction."""


@dataclass(frozen=True)
class Forgotten:
    """What `nodes forget NAME` removed: the node's registrations (its workers' too) and the
    changes in flight that stopped waiting for them."""

    nodes: tuple[str, ...]
    rollouts: tuple[Rollout, ...]


def _node_and_workers(name: str, nodes: Iterable[Node]) -> list[Node]:
    """A node and its workers' registrations (`<name>/w<i>`)."""
    return [n for n in nodes if n.name == name or n.name.startswith(f"{name}/")]


class Reconciler:
    def __init__(
        self, store: Store, clock: Clock, liveness: Liveness, owners: Iterable[RolloutOwner]
    ) -> None:
        self._store = store
        self._clock = clock
        self._liveness = liveness
        self._owners: Mapping[str, RolloutOwner] = {o.kind: o for o in owners}
        # Node registrations forgotten through this process (edgeproxy_nodes_forgotten_total).
        self.forgotten_total = 0

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._owners)

    async def reconcile(self) -> None:
        """Advance in-flight rollouts from node reports and finish pending deletions."""
        # Most ticks find nothing to do: look first, so an idle fleet never takes the write lock.
        async with self._store.transaction(write=False) as tx:
            pending = await tx.in_flight_rollouts() or any(
                s.status is CaSetStatus.DELETING for s in await tx.list_ca_sets()
            )
        if not pending:
            return
        now = self._clock()
        async with self._store.transaction(write=True) as tx:
            nodes = await tx.list_nodes()
            reports = {n.name: n for n in nodes}
            for rollout in await tx.in_flight_rollouts():
                await self._save(tx, rollout, advance(rollout, reports, now, self._liveness), now)
            await self._finish_deletions(tx, nodes, now)

    async def settle_restart(self, node_name: str) -> None:
        """A node starting under `node_name` means its previous process (and that process's
        workers, `<name>/w<i>`) is gone, killed perhaps before it applied a change. Its records
        go now, and changes in flight stop waiting for them (they left the fleet); the new
        process applies the current state before it serves."""
        async with self._store.transaction(write=True) as tx:
            for node in _node_and_workers(node_name, await tx.list_nodes()):
                await tx.delete_node(node.name)
        await self.reconcile()

    async def forget(self, actor: Actor, name: str) -> Forgotten:
        """`edgeproxy nodes forget NAME`: the operator says the node is gone for good. Its
        registrations go, and every change in flight that waits for it stops waiting (the node
        is listed lost, forgotten by `actor`). A forgotten node that still runs registers again
        at its next report; only changes started after that wait for it."""
        now = self._clock()
        async with self._store.transaction(write=True) as tx:
            gone = _node_and_workers(name, await tx.list_nodes())
            if not gone:
                raise NotFound("node-not-found", f"no registered node named {name!r}")
            names = {n.name for n in gone}
            for node in gone:
                await tx.delete_node(node.name)
            reports = {n.name: n for n in await tx.list_nodes()}
            touched = []
            for rollout in await tx.in_flight_rollouts():
                waiting = names & set(rollout.named(NodeProgress.PENDING))
                if not waiting:
                    continue
                moved = advance(forget(rollout, names, actor.name), reports, now, self._liveness)
                await self._save(tx, rollout, moved, now)
                touched.append(moved)
        self.forgotten_total += len(names)
        log.warning(
            "node forgotten",
            extra={"node": name, "registrations": sorted(names), "actor": actor.name},
        )
        return Forgotten(tuple(sorted(names)), tuple(touched))

    async def _save(self, tx: Tx, before: Rollout, after: Rollout, now: datetime) -> None:
        if after == before:
            return
        await tx.update_rollout(after)
        owner = self._owners.get(after.kind)
        if owner is not None:
            await owner.rollout_moved(tx, after, now)

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
