"""What the edge-certificate use cases share with the truststore's: the store bindings of a CA
set (associations, deactivation and deletion refusals) and the edge certificates the live nodes
declare in their own files (read-only in the API)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from edgeproxy.domain.model import CaSet, Network, Node
from edgeproxy.domain.rules import Liveness
from edgeproxy.service.shared import Association
from edgeproxy.store import Tx


def serving_nodes(name: str, network: Network, live: Iterable[Node]) -> tuple[str, ...]:
    """The live edge nodes of `network` that report serving the edge certificate `name`."""
    return tuple(
        sorted(
            n.name
            for n in live
            if n.network is network and any(b.edge_certificate == name for b in n.bindings)
        )
    )


async def store_associations(
    tx: Tx, ca_set: CaSet, nodes: list[Node], now: datetime, liveness: Liveness
) -> list[Association]:
    """The store bindings of the set, each with the live nodes that serve it."""
    live = liveness.live_edge_nodes(nodes, now)
    found: list[Association] = []
    for binding in await tx.list_bindings(ca_set=ca_set.name):
        cert = await tx.get_edge_certificate(binding.edge_certificate)
        found.append(
            Association(
                node=None,
                network=binding.network,
                edge_certificate=binding.edge_certificate,
                hostnames=cert.hostnames if cert is not None else (),
                source="store",
                nodes=serving_nodes(binding.edge_certificate, binding.network, live),
            )
        )
    return found


@dataclass(frozen=True)
class DeclaredEdge:
    """An edge certificate some live node declares in its file (`source: config`)."""

    name: str
    hostnames: tuple[str, ...]
    origin: str | None
    # network -> CA set it binds there, and the nodes declaring it
    ca_sets: dict[Network, str]
    nodes: tuple[str, ...]


def declared_edges(nodes: Iterable[Node], now: datetime, liveness: Liveness) -> list[DeclaredEdge]:
    by_name: dict[str, DeclaredEdge] = {}
    for node in liveness.live_edge_nodes(nodes, now):
        for b in node.bindings:
            if b.source != "config":
                continue
            known = by_name.get(b.edge_certificate)
            ca_sets = dict(known.ca_sets) if known else {}
            ca_sets[node.network] = b.ca_set
            by_name[b.edge_certificate] = DeclaredEdge(
                b.edge_certificate,
                known.hostnames if known else b.hostnames,
                known.origin if known else b.origin,
                ca_sets,
                tuple(sorted({*(known.nodes if known else ()), node.name})),
            )
    return sorted(by_name.values(), key=lambda d: d.name)
