"""What every truststore use case shares: the clock, the actor, fleet liveness, lookups."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from edgeproxy.domain import rules
from edgeproxy.domain.errors import Conflict, NotFound
from edgeproxy.domain.model import CaSet, CaSetStatus, Network, Node, Version
from edgeproxy.store import Store, Tx

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Actor:
    """Who asked: recorded in activities and `createdBy` fields."""

    name: str


@dataclass(frozen=True)
class Association:
    """An edge certificate of a live node that binds the set (learned from registrations)."""

    node: str
    network: Network
    edge_certificate: str
    hostnames: tuple[str, ...]


class UseCases:
    """State shared by the use-case classes: the store, the clock and the node liveness window."""

    def __init__(
        self, store: Store, *, clock: Clock = utc_now, node_ttl: timedelta = timedelta(seconds=15)
    ) -> None:
        self.store = store
        self.clock = clock
        self.node_ttl = node_ttl

    def _associations(self, ca_set: CaSet, nodes: list[Node], now: datetime) -> list[Association]:
        return [
            Association(n.name, n.network, b.edge_certificate, b.hostnames)
            for n in self.live_edge_nodes(nodes, now)
            for b in n.bindings
            if b.ca_set == ca_set.name
        ]

    def live_edge_nodes(self, nodes: list[Node], now: datetime) -> list[Node]:
        return [n for n in nodes if "edge" in n.roles and rules.is_live(n, now, self.node_ttl)]

    async def list_nodes(self) -> list[Node]:
        async with self.store.transaction(write=False) as tx:
            return await tx.list_nodes()


async def ca_set_or_404(tx: Tx, set_id: int) -> CaSet:
    ca_set = await tx.get_ca_set(set_id)
    if ca_set is None:
        raise NotFound("ca-set-not-found", f"no CA set with id {set_id}")
    return ca_set


async def live_ca_set(tx: Tx, set_id: int) -> CaSet:
    ca_set = await ca_set_or_404(tx, set_id)
    if ca_set.status is CaSetStatus.DELETED:
        raise Conflict("ca-set-deleted", "the CA set is deleted: its history is read-only")
    return ca_set


async def editable_ca_set(tx: Tx, set_id: int) -> CaSet:
    ca_set = await live_ca_set(tx, set_id)
    if ca_set.status is CaSetStatus.DELETING:
        raise Conflict("ca-set-delete-in-progress", "the CA set is being deleted")
    return ca_set


async def version_or_404(tx: Tx, set_id: int, number: int) -> Version:
    version = await tx.get_version(set_id, number)
    if version is None:
        raise NotFound("version-not-found", f"CA set {set_id} has no version {number}")
    return version
