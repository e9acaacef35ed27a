"""How far the fleet is from what the store says (docs/operations.md "Convergence"): per CA set and
network the desired and the applied version, and how old the oldest change in flight is. Read by
the admin role for its metrics; nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from edgeproxy.domain.model import CaSet, CaSetStatus, Network, Node
from edgeproxy.domain.rules import Liveness
from edgeproxy.service.shared import Clock
from edgeproxy.store import Store


@dataclass(frozen=True)
class SetConvergence:
    """One CA set on one network. `desired`: its active version in the store (0: none). `applied`:
    the version its edge nodes enforce (`desired` once every one of them applied it, else the
    version of the first one behind, by name); None when no edge node that is not lost binds it.
    `behind`: how many of those nodes do not enforce `desired` yet."""

    ca_set: str
    network: Network
    desired: int
    applied: int | None
    behind: int


@dataclass(frozen=True)
class ConvergenceReport:
    sets: tuple[SetConvergence, ...]
    # kind → (changes in flight, age in seconds of the oldest one; 0 when none)
    in_flight: dict[str, tuple[int, float]]
    # network → registered edge nodes silent past fleet.node_lost_after
    lost_nodes: dict[Network, int]


def set_convergence(ca_set: CaSet, network: Network, nodes: list[Node]) -> SetConvergence:
    desired = ca_set.active_version(network) or 0
    enforcing = [n for n in nodes if n.network is network and ca_set.name in n.applied_versions]
    behind = [n for n in enforcing if (n.applied_versions[ca_set.name] or 0) != desired]
    if not enforcing:
        applied = None
    elif behind:
        applied = behind[0].applied_versions[ca_set.name] or 0
    else:
        applied = desired
    return SetConvergence(ca_set.name, network, desired, applied, len(behind))


class Convergence:
    def __init__(
        self, store: Store, clock: Clock, liveness: Liveness, kinds: tuple[str, ...]
    ) -> None:
        self._store = store
        self._clock = clock
        self._liveness = liveness
        self._kinds = kinds

    async def report(self) -> ConvergenceReport:
        async with self._store.transaction(write=False) as tx:
            sets = await tx.list_ca_sets()
            nodes = await tx.list_nodes()
            rollouts = await tx.in_flight_rollouts()
        now = self._clock()
        tracked = sorted(self._liveness.tracked_edge_nodes(nodes, now), key=lambda n: n.name)
        in_flight: dict[str, tuple[int, float]] = {}
        for kind in sorted({*self._kinds, *(r.kind for r in rollouts)}):
            started = [r.started_at for r in rollouts if r.kind == kind]
            in_flight[kind] = (len(started), _age(min(started), now) if started else 0.0)
        lost = {
            network: sum(
                1
                for n in nodes
                if "edge" in n.roles and n.network is network and self._liveness.is_lost(n, now)
            )
            for network in Network
        }
        return ConvergenceReport(
            sets=tuple(
                set_convergence(s, network, tracked)
                for s in sets
                if s.status is not CaSetStatus.DELETED
                for network in Network
            ),
            in_flight=in_flight,
            lost_nodes=lost,
        )


def _age(started: datetime, now: datetime) -> float:
    return max(0.0, (now - started).total_seconds())
