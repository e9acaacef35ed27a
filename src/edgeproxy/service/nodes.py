"""What the admin API shows of the fleet: every registered node with its liveness, and which live
edge certificates bind a CA set."""

from __future__ import annotations

from dataclasses import dataclass

from edgeproxy.domain.model import Node
from edgeproxy.domain.rules import Liveness
from edgeproxy.service.edge_shared import store_associations
from edgeproxy.service.shared import Association, Clock, associations_of, ca_set_or_404
from edgeproxy.store import Store


@dataclass(frozen=True)
class NodeState:
    node: Node
    live: bool
    lost: bool  # silent past fleet.node_lost_after: changes no longer wait for it


class Nodes:
    def __init__(self, store: Store, clock: Clock, liveness: Liveness) -> None:
        self._store = store
        self._clock = clock
        self._liveness = liveness

    async def list_nodes(self) -> list[NodeState]:
        async with self._store.transaction(write=False) as tx:
            nodes = await tx.list_nodes()
        now = self._clock()
        return [
            NodeState(n, self._liveness.is_live(n, now), self._liveness.is_lost(n, now))
            for n in nodes
        ]

    async def associations(self, set_id: int) -> list[Association]:
        async with self._store.transaction(write=False) as tx:
            ca_set = await ca_set_or_404(tx, set_id)
            nodes = await tx.list_nodes()
            now = self._clock()
            stored = await store_associations(tx, ca_set, nodes, now, self._liveness)
        return stored + associations_of(ca_set, nodes, now, self._liveness)
