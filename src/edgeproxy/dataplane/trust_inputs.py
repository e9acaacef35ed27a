"""What a trust build starts from, apart from the loop that runs it (dataplane/trust_sync.py):
the anchors of the bound sets from a store view, the sets the edges bind, whom a rejected build
is reported against, and what the node reports of itself."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from edgeproxy.config.model import EdgeCertificateConfig, NodeConfig
from edgeproxy.domain.edge_model import edge_error_key
from edgeproxy.domain.model import Binding, BlockedCertificate, Node, Version
from edgeproxy.tls.trust import TrustAnchors, TrustState, anchors_key


def anchors_from_view(
    bound: Sequence[str],
    previous: TrustState | None,
    *,
    versions: Mapping[str, Version | None],
    crls: Mapping[str, tuple[bytes, ...]],
    blocked: Mapping[str, tuple[BlockedCertificate, ...]],
) -> dict[str, TrustAnchors | None]:
    """Each bound set's anchors: the ones in force when the version, CRLs and blocked
    certificates are the same (known by stored fingerprints, nothing re-read or re-hashed), else
    parsed from the version's PEM."""
    old = previous.active if previous is not None else {}
    active: dict[str, TrustAnchors | None] = {}
    for name in bound:
        version = versions.get(name)
        if version is None:
            active[name] = None
            continue
        set_crls = tuple(crls.get(name, ()))
        set_blocked = tuple(blocked.get(name, ()))
        known = old.get(name)
        if known is not None and known.key == anchors_key(name, version, set_crls, set_blocked):
            active[name] = known
        else:
            active[name] = TrustAnchors.from_version(name, version, set_crls, set_blocked)
    return active


def bound_sets(edges: Sequence[EdgeCertificateConfig]) -> list[str]:
    """The CA sets the edges bind (an unbound store edge binds none)."""
    return sorted({c.mutual_authentication.ca_set for c in edges if not c.unbound})


def blame(
    edges: Sequence[EdgeCertificateConfig],
    versions: Mapping[str, Version | None],
    crls: Mapping[str, tuple[bytes, ...]],
    previous: TrustState | None,
    stored: Sequence[EdgeCertificateConfig],
) -> list[str]:
    """What a rejected build is reported against (apply-error keys): the bound sets whose
    version or CRLs changed and the store's edge certificates that changed, or every bound set
    when none did (the edge's own files)."""
    old = previous.active if previous is not None else {}
    bound = bound_sets(edges)
    in_force_edges = previous.edges if previous is not None else {}
    edges_changed = [
        edge_error_key(e.name)
        for e in stored
        if e.name not in in_force_edges or in_force_edges[e.name].edge != e
    ]

    def wanted(ca_set: str) -> tuple[int, tuple[bytes, ...]] | None:
        version = versions.get(ca_set)
        return None if version is None else (version.version, tuple(crls.get(ca_set, ())))

    def in_force(ca_set: str) -> tuple[int, tuple[bytes, ...]] | None:
        anchors = old.get(ca_set)
        return None if anchors is None else (anchors.version, anchors.crls_der)

    return [n for n in bound if wanted(n) != in_force(n)] + edges_changed or bound


def node_report(
    node: NodeConfig,
    started_at: datetime,
    now: datetime,
    edges: Sequence[EdgeCertificateConfig],
    applied: TrustState | None,
    apply_errors: Mapping[str, str],
) -> Node:
    """What this node tells the fleet: the edge certificates it serves (with their source),
    the revision and versions it applied, and what it could not apply."""
    return Node(
        name=node.name,
        network=node.network,
        roles=node.roles,
        started_at=started_at,
        last_seen=now,
        bindings=tuple(
            Binding(
                edge_certificate=c.name,
                hostnames=c.hostnames,
                ca_set=c.mutual_authentication.ca_set,
                send_ca_list_to_client=c.mutual_authentication.send_ca_list_to_client,
                source=c.source,
                origin=c.origin,
            )
            for c in edges
        ),
        applied_revision=applied.revision if applied else 0,
        applied_versions=(
            {n: a.version if a else None for n, a in applied.active.items()} if applied else {}
        ),
        apply_errors=dict(apply_errors),
        applied_at=applied.applied_at if applied else None,
    )
