"""Keeps an edge node's trust state equal to the store's (docs/architecture.md change propagation,
static stability).

One loop: wait for the store revision to move (LISTEN/NOTIFY or a cheap poll), read the active
versions of this node's network, build every context aside, swap one reference, report what was
applied. A failed build keeps the previous state and reports why, so the activation fails and the
fleet converges back. The last applied state is written to a snapshot file; a node that cannot
reach the store at start enforces that snapshot until the store answers again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from edgeproxy.config.model import EdgeConfig, NodeConfig
from edgeproxy.dataplane.metrics import Metrics
from edgeproxy.dataplane.snapshot import ActiveSet, read_snapshot, write_snapshot
from edgeproxy.domain.model import Binding, Node
from edgeproxy.runtime.tasks import TaskGroup
from edgeproxy.service.fleet import FleetService
from edgeproxy.store import Store
from edgeproxy.tls.contexts import ContextCache
from edgeproxy.tls.trust import EdgeTrust, TrustState

log = logging.getLogger(__name__)

HEARTBEAT = 2.0  # seconds between node reports when nothing changes (node TTL is 15 s)
RETRY = 1.0  # seconds between attempts while the store is unreachable


class NoTrustState(RuntimeError):
    """Neither the store nor a snapshot gave a trust state: the node must not start
    (docs/architecture.md)."""


@dataclass(frozen=True)
class Applied:
    """The trust state in force and where it came from."""

    state: TrustState
    revision: int
    active: dict[str, ActiveSet | None]  # bound CA set name → active version (None: fail closed)
    applied_at: datetime
    source: str  # "store" | "snapshot"


class TrustSync:
    def __init__(
        self,
        node: NodeConfig,
        edge: EdgeConfig,
        store: Store,
        fleet: FleetService,
        metrics: Metrics,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        contexts: ContextCache | None = None,
    ) -> None:
        self.node = node
        self.edge = edge
        self.store = store
        self.fleet = fleet
        self.metrics = metrics
        self.clock = clock
        self.applied: Applied | None = None
        self.store_reachable = False
        self.apply_errors: dict[str, str] = {}
        self.started_at = clock()
        # The edge role passes one wired to its revocation service (OCSP in the verify step).
        self._cache = contexts if contexts is not None else ContextCache()
        # Bumped when the certificate files are re-read (SIGHUP), so cached contexts are rebuilt.
        self._key_generation = 0
        # Set by reload(): read the store again even if its revision has not moved, because the
        # last view only holds the sets bound before (a newly bound set would stay fail-closed).
        self._resync = False
        self._tasks = TaskGroup()

    # -- what the listener and the status endpoints read ---------------------------------------

    def state(self) -> TrustState:
        """The current trust state; one reference, read once per new connection."""
        assert self.applied is not None, "TrustSync.start() loads a state before serving"
        return self.applied.state

    def fail_closed(self) -> list[str]:
        """Edge certificates whose CA set has no active version here (every client refused)."""
        if self.applied is None:
            return [c.name for c in self.edge.certificates]
        return [
            c.name
            for c in self.edge.certificates
            if self.applied.active.get(c.mutual_authentication.ca_set) is None
        ]

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load a state (store, else snapshot) before the listener accepts anything."""
        try:
            await self.sync()
        except Exception as error:
            self._unreachable(error)
            snapshot = read_snapshot(self.node.snapshot, self.node.network)
            if snapshot is None:
                raise NoTrustState(
                    "the store is unreachable and there is no trust snapshot at "
                    f"{self.node.snapshot}: refusing to start without a trust state"
                ) from error
            revision, active = snapshot
            self._install(revision, active, source="snapshot", changed_at={})
            log.warning(
                "serving the last applied trust state from the snapshot",
                extra={"revision": revision, "snapshot": str(self.node.snapshot)},
            )
        self._tasks.spawn(self._follow(), "trust-sync")

    async def stop(self) -> None:
        await self._tasks.close()
        try:
            # Leave the fleet at once, so activations do not wait for this node's TTL.
            await self.fleet.remove_node(self.node.name)
        except Exception as error:
            log.warning("could not deregister the node", extra={"error": str(error)})

    def reload(self, edge: EdgeConfig) -> None:
        """SIGHUP: new edge certificates or bindings; rebuild from the last store view."""
        if self.applied is None:
            return
        previous = self.edge
        self.edge = edge
        self._key_generation += 1
        try:
            self._install(
                self.applied.revision,
                self.applied.active,
                source=self.applied.source,
                changed_at={},
            )
        except Exception:
            self.edge = previous
            self._key_generation -= 1
            raise
        self._resync = True

    # -- the loop ------------------------------------------------------------------------------

    async def _follow(self) -> None:
        last_report = time.monotonic()
        while True:
            known = self.applied.revision if self.applied and self.store_reachable else -1
            try:
                revision = await self.store.wait_for_change(known, HEARTBEAT)
                if revision != known or self._resync:
                    self._resync = False
                    await self.sync()
                    last_report = time.monotonic()
                elif time.monotonic() - last_report >= HEARTBEAT:
                    await self._report()
                    last_report = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self._unreachable(error)
                await asyncio.sleep(RETRY)

    async def sync(self) -> None:
        """Read the store's view of this network and apply it."""
        view = await self.fleet.trust_view(self.node.network)
        if not self.store_reachable:
            log.info("store reachable", extra={"revision": view.revision})
        self.store_reachable = True
        self.metrics.store_reachable(True)
        bound = {c.mutual_authentication.ca_set for c in self.edge.certificates}
        active = {
            name: ActiveSet.from_version(name, view.active[name], view.crls.get(name, ()))
            if view.active.get(name) is not None
            else None
            for name in sorted(bound)
        }
        try:
            self._install(view.revision, active, source="store", changed_at=view.changed_at)
            self.apply_errors = {}
        except Exception as error:
            # Keep enforcing the previous state; blame the sets whose content changed.
            self.metrics.trust_reload_failed()
            old = self.applied.active if self.applied else {}
            changed = [n for n in active if active[n] != old.get(n)] or sorted(active)
            self.apply_errors = {n: f"trust state build failed: {error}" for n in changed}
            log.error(
                "trust state rejected; keeping the previous one",
                extra={"revision": view.revision, "error": str(error), "ca_sets": changed},
            )
            if self.applied is not None:
                self.applied = replace(self.applied, revision=view.revision)
        await self._report()

    def _install(
        self,
        revision: int,
        active: dict[str, ActiveSet | None],
        *,
        source: str,
        changed_at: dict[str, datetime],
    ) -> None:
        edges = [
            EdgeTrust(
                edge=c,
                anchors=(a.anchors if (a := active.get(c.mutual_authentication.ca_set)) else None),
                revision=self._key_generation,
            )
            for c in self.edge.certificates
        ]
        state = TrustState.build(edges, self._cache.get)
        previous = self.applied.active if self.applied else None
        now = self.clock()
        self.applied = Applied(state, revision, active, now, source)
        self._publish(active, previous, changed_at, now)
        if source == "store":
            try:
                write_snapshot(self.node.snapshot, self.node.network, revision, active)
            except OSError as error:
                # The state above is in force; the snapshot is only the fallback for a store
                # outage. Failing to write it must neither fail the activation nor be reported
                # as a rejected state that was in fact applied.
                log.error(
                    "could not write the trust snapshot",
                    extra={"snapshot": str(self.node.snapshot), "error": str(error)},
                )

    def _publish(
        self,
        active: dict[str, ActiveSet | None],
        previous: dict[str, ActiveSet | None] | None,
        changed_at: dict[str, datetime],
        now: datetime,
    ) -> None:
        # Activation → applied latency, for the sets this apply actually changed.
        # A CRL-only change is no activation: compare versions, not the CRLs that ride along.
        def version(a: ActiveSet | None) -> int | None:
            return a.version if a is not None else None

        latencies = [
            (now - changed_at[name]).total_seconds()
            for name, current in active.items()
            if previous is not None
            and version(previous.get(name)) != version(current)
            and name in changed_at
        ]
        self.metrics.trust_applied(
            {name: (a.version, a.expiries) if a else (None, ()) for name, a in active.items()},
            self.node.network,
            max(latencies) if latencies else None,
        )
        log.info(
            "trust state applied",
            extra={
                "revision": self.applied.revision if self.applied else None,
                "versions": {n: a.version if a else None for n, a in active.items()},
            },
        )

    def _unreachable(self, error: Exception) -> None:
        if self.store_reachable or self.applied is None:
            log.error("store unreachable", extra={"error": str(error)})
        self.store_reachable = False
        self.metrics.store_reachable(False)

    async def _report(self) -> None:
        applied = self.applied
        now = self.clock()
        await self.fleet.report_node(
            Node(
                name=self.node.name,
                network=self.node.network,
                roles=self.node.roles,
                started_at=self.started_at,
                last_seen=now,
                bindings=tuple(
                    Binding(
                        edge_certificate=c.name,
                        hostnames=c.hostnames,
                        ca_set=c.mutual_authentication.ca_set,
                        send_ca_list_to_client=c.mutual_authentication.send_ca_list_to_client,
                    )
                    for c in self.edge.certificates
                ),
                applied_revision=applied.revision if applied else 0,
                applied_versions=(
                    {n: a.version if a else None for n, a in applied.active.items()}
                    if applied
                    else {}
                ),
                apply_errors=dict(self.apply_errors),
                applied_at=applied.applied_at if applied else None,
            )
        )
