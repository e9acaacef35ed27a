"""What the use-case classes share: the clock, who asked, and the lookups every use case starts
with. Plain values and functions: each use case is handed what it needs in its constructor."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from edgeproxy.domain.errors import Conflict, NotFound
from edgeproxy.domain.model import CaSet, CaSetStatus, Network, Node, Version
from edgeproxy.domain.rules import Liveness
from edgeproxy.store import Tx

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Actor:
    """Who asked: recorded in activities and `createdBy` fields."""

    name: str


@dataclass(frozen=True)
class Association:
    """An edge certificate that binds the set: one declared in a live node's file (learned from
    its registration, `node` set), or a store binding (`source` "store", `node` None, `nodes`:
    the live nodes serving it)."""

    node: str | None
    network: Network
    edge_certificate: str
    hostnames: tuple[str, ...]
    source: str = "config"
    nodes: tuple[str, ...] = ()


def associations_of(
    ca_set: CaSet, nodes: Iterable[Node], now: datetime, liveness: Liveness
) -> list[Association]:
    return [
        Association(n.name, n.network, b.edge_certificate, b.hostnames, nodes=(n.name,))
        for n in liveness.live_edge_nodes(nodes, now)
        for b in n.bindings
        if b.ca_set == ca_set.name and b.source == "config"
    ]


def in_use_extra(users: Iterable[Association]) -> dict[str, object]:
    """The body of a ca-set-in-use problem: one problem type, one shape (deactivate and delete)."""
    return {
        "associations": [
            {"node": u.node, "edgeCertificate": u.edge_certificate, "network": u.network.value}
            for u in users
        ]
    }


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
