"""The one shape of a node's /status and /readyz (docs/api.md): every status source fills a
`NodeStatus` and a `Readiness`, the listener renders them with `as_json`. An edge node, a worker
pool and an admin-only node differ only in which fields hold something."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edgeproxy.config.model import EdgeCertificateConfig
from edgeproxy.domain.model import Network


@dataclass(frozen=True)
class TrustStatus:
    """The trust state an edge node enforces."""

    revision: int
    source: str  # "store" | "snapshot"
    applied_at: datetime | None  # None only for a state never installed (made by hand)
    versions: Mapping[str, int | None]  # CA set name → active version (None: fail closed)
    errors: Mapping[str, str]  # CA set name → why it could not be applied
    crls: Mapping[str, Sequence[Mapping[str, Any]]]  # CA set name → its CRLs in force

    def as_json(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "source": self.source,
            "appliedAt": None if self.applied_at is None else self.applied_at.isoformat(),
            "versions": dict(self.versions),
            "errors": dict(self.errors),
            "crls": {name: [dict(c) for c in crls] for name, crls in self.crls.items()},
        }


@dataclass(frozen=True)
class WorkerStatus:
    """One edge worker process, as the pool's main process last heard from it."""

    index: int
    node: str
    pid: int | None
    ready: bool
    store_reachable: bool | None  # None: the worker has not reported yet
    connections: int
    revision: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "node": self.node,
            "pid": self.pid,
            "ready": self.ready,
            "storeReachable": self.store_reachable,
            "connections": self.connections,
            "revision": self.revision,
        }


@dataclass(frozen=True)
class Readiness:
    """/readyz: ready or not, and why.

    `fail_closed`: bindings refusing every client for want of an active version (listed, yet
    ready). `reasons`: why not ready, or what a ready node wants said (serving its snapshot).
    `store_reachable`: None where the source does not say (a node without the edge role tells
    its store's trouble in `reasons`). `workers`: one row per edge worker (edge.workers > 1)."""

    ready: bool
    fail_closed: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    store_reachable: bool | None = None
    workers: tuple[WorkerStatus, ...] = ()

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ready": self.ready, "failClosed": list(self.fail_closed)}
        if self.store_reachable is not None:
            body["storeReachable"] = self.store_reachable
        if self.reasons or not self.ready:
            body["reasons"] = list(self.reasons) or ["not ready"]
        if self.workers:
            body["workers"] = [w.as_json() for w in self.workers]
        return body


@dataclass(frozen=True)
class NodeStatus:
    node: str
    network: Network
    roles: tuple[str, ...]
    store_reachable: bool
    trust: TrustStatus | None = None  # None: no trust state yet, or no edge role
    edge_certificates: tuple[EdgeCertificateConfig, ...] = ()
    connections: int = 0
    workers: tuple[WorkerStatus, ...] = ()  # empty unless edge.workers > 1

    def as_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "network": self.network.value,
            "roles": list(self.roles),
            "storeReachable": self.store_reachable,
            "trust": None if self.trust is None else self.trust.as_json(),
            "edgeCertificates": [
                {
                    "name": c.name,
                    "hostnames": list(c.hostnames),
                    "caSet": c.mutual_authentication.ca_set,
                    "mode": c.mutual_authentication.mode,
                }
                for c in self.edge_certificates
            ],
            "connections": self.connections,
            "workers": [w.as_json() for w in self.workers],
        }
