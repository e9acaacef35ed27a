"""The truststore's use cases, composed: one small class per concern, each handed the store, the
clock and the liveness rule it needs. The admin API and the node's wiring hold one of these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from edgeproxy.domain.rules import NODE_LOST_AFTER, NODE_TTL, Liveness
from edgeproxy.domain.secrets import KeyRing
from edgeproxy.service.activations import ActivationRollouts, Activations
from edgeproxy.service.bindings import BindingRollouts, Bindings
from edgeproxy.service.blocks import Blocks
from edgeproxy.service.ca_sets import CaSets
from edgeproxy.service.convergence import Convergence
from edgeproxy.service.crls import Crls
from edgeproxy.service.edge_certificates import EdgeCertificates
from edgeproxy.service.fleet import FleetService
from edgeproxy.service.impact import JudgeFactory, SafeChanges
from edgeproxy.service.nodes import Nodes
from edgeproxy.service.reconcile import Reconciler
from edgeproxy.service.shared import Clock, utc_now
from edgeproxy.service.versions import Versions
from edgeproxy.store import Store


@dataclass(frozen=True)
class Truststore:
    """Every truststore use case, by concern (docs/management.md)."""

    ca_sets: CaSets
    versions: Versions
    activations: Activations
    crls: Crls
    blocks: Blocks
    nodes: Nodes
    fleet: FleetService
    reconciler: Reconciler
    convergence: Convergence
    edge_certificates: EdgeCertificates
    bindings: Bindings
    safety: SafeChanges

    @classmethod
    def build(
        cls,
        store: Store,
        *,
        clock: Clock = utc_now,
        node_ttl: timedelta = NODE_TTL,
        node_lost_after: timedelta = NODE_LOST_AFTER,
        keys: KeyRing | None = None,
        judge: JudgeFactory | None = None,
    ) -> Truststore:
        """`keys`: the key-encryption key that seals the private keys of new and rotated edge
        certificates (None: such writes are refused). `judge`: the data plane's verifier for
        recorded client chains (tls/recheck.py `version_judge`, wired by the node); without one
        no activation is checked against them."""
        liveness = Liveness(node_ttl, node_lost_after)
        safety = SafeChanges(store, judge)
        # Every kind of change that converges through a rollout (domain/rollout.py).
        reconciler = Reconciler(store, clock, liveness, [ActivationRollouts(), BindingRollouts()])
        return cls(
            ca_sets=CaSets(store, clock, liveness),
            versions=Versions(store, clock),
            activations=Activations(store, clock, liveness, safety if judge else None),
            crls=Crls(store, clock),
            blocks=Blocks(store, clock),
            nodes=Nodes(store, clock, liveness),
            fleet=FleetService(store),
            reconciler=reconciler,
            convergence=Convergence(store, clock, liveness, reconciler.kinds),
            edge_certificates=EdgeCertificates(store, clock, liveness, keys),
            bindings=Bindings(store, clock, liveness),
            safety=safety,
        )
