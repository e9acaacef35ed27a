"""Keeps an edge node's trust state equal to the store's (docs/architecture.md change propagation,
static stability).

One loop: wait for the store revision to move (LISTEN/NOTIFY or a cheap poll), read the active
versions of this node's network, build the next state aside on the background thread (reusing the
anchors and contexts that did not change), swap one reference, report what was applied. A failed
build keeps the previous state and reports why, so the activation fails and the fleet converges
back. The last applied state is written to a snapshot file; a node that cannot
reach the store at start enforces that snapshot until the store answers again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from edgeproxy.config.model import EdgeCertificateConfig, EdgeConfig, NodeConfig
from edgeproxy.dataplane.http.served import ServedEdges
from edgeproxy.dataplane.metrics import Metrics
from edgeproxy.dataplane.snapshot import read_snapshot, write_snapshot
from edgeproxy.dataplane.store_edges import EdgeNameConflict, check_names, openable, store_edges
from edgeproxy.dataplane.trust_inputs import anchors_from_view, blame, bound_sets, node_report
from edgeproxy.dataplane.trust_metrics import activation_latency
from edgeproxy.domain.model import Version
from edgeproxy.domain.secrets import KeyRing
from edgeproxy.runtime.background import run_in_background
from edgeproxy.runtime.tasks import TaskGroup
from edgeproxy.service.fleet import FleetService, TrustView
from edgeproxy.store import Store
from edgeproxy.tls.contexts import (
    OcspLookup,
    RevocationHooks,
    StaleAccepted,
    build_state,
    served_not_after,
)
from edgeproxy.tls.trust import TrustAnchors, TrustState

log = logging.getLogger(__name__)

HEARTBEAT = 2.0  # seconds between node reports when nothing changes (node TTL is 15 s)
RETRY = 1.0  # seconds between attempts while the store is unreachable

# Called on the event loop right after a new state is swapped in: (new, previous). Where caches
# keyed by the trust in force are pruned, and open connections are judged again.
SwapListener = Callable[[TrustState, TrustState | None], None]

# What builds a state (tls/contexts.py `build_state`); run on the background thread, never on the
# loop. A constructor argument so a test can watch where it runs.
StateBuilder = Callable[..., TrustState]


class NoTrustState(RuntimeError):
    """Neither the store nor a snapshot gave a trust state: the node must not start
    (docs/architecture.md)."""


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
        hooks: RevocationHooks | None = None,
        build: StateBuilder = build_state,
        keys: KeyRing | None = None,
    ) -> None:
        self.node = node
        self.edge = edge
        # Opens the sealed keys of store-managed edge certificates (None: they fail to apply).
        self.keys = keys
        # The store-managed edge certificates of the last view applied (dataplane/store_edges.py).
        self.stored: tuple[EdgeCertificateConfig, ...] = ()
        self.store = store
        self.fleet = fleet
        self.metrics = metrics
        self.clock = clock
        # The trust state in force (None until start() loaded one).
        self.applied: TrustState | None = None
        self.store_reachable = False
        self.apply_errors: dict[str, str] = {}
        self.started_at = clock()
        # The edge role passes its revocation service (OCSP in the verify step).
        self.hooks = hooks
        self.listeners: list[SwapListener] = []
        # The HTTP half of every prepared edge (host matcher, origin pool), updated with each
        # swap: pools of edges that went away are retired, unchanged ones kept.
        self.served = ServedEdges(edge.limits)
        # Bumped when the certificate files are re-read (SIGHUP), so their contexts are rebuilt.
        self._key_generation = 0
        # Set by reload(): read the store again even if its revision has not moved, because the
        # last view only holds the sets bound before (a newly bound set would stay fail-closed).
        self._resync = False
        # Each set's latest activation as of the last store view applied (activation_latency).
        self._activations_seen: dict[str, datetime] = {}
        self._build_state = build
        # One build and swap at a time: a SIGHUP reload and a store sync each build from the
        # state in force and the edges in force, so neither may swap in between.
        self._building = asyncio.Lock()
        self._tasks = TaskGroup()

    # -- what the listener and the status endpoints read ---------------------------------------

    def state(self) -> TrustState:
        """The current trust state; one reference, read once per new connection."""
        assert self.applied is not None, "TrustSync.start() loads a state before serving"
        return self.applied

    @property
    def edges(self) -> tuple[EdgeCertificateConfig, ...]:
        """Every edge certificate this node serves: its file's, then the store's."""
        return (*self.edge.certificates, *self.stored)

    def fail_closed(self) -> list[str]:
        """Edge certificates whose CA set has no active version here, or that have no binding
        here (every client refused)."""
        applied = self.applied
        if applied is None:
            return [c.name for c in self.edges]
        return [c.name for c in self.edges if self._closed_because(c, applied) is not None]

    def _closed_because(self, edge: EdgeCertificateConfig, state: TrustState) -> str | None:
        """Why `edge` refuses every client under `state`, or None when it does not."""
        ca_set = edge.mutual_authentication.ca_set
        if edge.unbound:
            return f"it has no binding on {self.node.network.value}"
        if state.active.get(ca_set) is None:
            return f"CA set {ca_set!r} has no active version on {self.node.network.value}"
        return None

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load a state (store, else snapshot) before the listener accepts anything."""
        try:
            await self.sync()
        except NoTrustState:
            raise
        except Exception as error:
            self._unreachable(error)
            snapshot = await asyncio.to_thread(read_snapshot, self.node.snapshot, self.node.network)
            if snapshot is None:
                raise NoTrustState(
                    "the store is unreachable and there is no trust snapshot at "
                    f"{self.node.snapshot}: refusing to start without a trust state"
                ) from error
            revision = snapshot.revision
            try:
                # As from the store (`_stored_from`): a name in both is a startup error.
                check_names(self.edge.certificates, snapshot.edges)
            except EdgeNameConflict as conflict:
                raise NoTrustState(str(conflict)) from None
            async with self._building:
                state, errors = await self._build(
                    self.edge.certificates, snapshot.edges, snapshot.active, revision, "snapshot"
                )
                self.stored, self.apply_errors = snapshot.edges, errors
                self._swap(state, changed_at={})
            log.warning(
                "serving the last applied trust state from the snapshot",
                extra={"revision": revision, "snapshot": str(self.node.snapshot)},
            )
        self._tasks.spawn(self._follow(), "trust-sync")

    async def stop(self) -> None:
        """After the listener drained: stop following the store, close the origin pools."""
        await self._tasks.close()
        await self.served.close()
        try:
            # Leave the fleet at once, so activations do not wait for this node's TTL.
            await self.fleet.remove_node(self.node.name)
        except Exception as error:
            log.warning("could not deregister the node", extra={"error": str(error)})

    async def reload(self, edge: EdgeConfig) -> None:
        """SIGHUP: new edge certificates or bindings, rebuilt from the anchors in force.

        Built on the background thread like a store sync (key files, contexts; the loop keeps
        serving), and raising, so a bad file changes nothing and goes no further (workers.py).
        Every context is built again (a new key generation): a file's content may have changed
        under the same name. Then the store is read again for the sets newly bound."""
        async with self._building:
            applied = self.applied
            if applied is None:
                return
            generation = self._key_generation + 1
            check_names(edge.certificates, self.stored)
            state, _ = await self._build(
                edge.certificates,
                self.stored,
                applied.active,
                applied.revision,
                applied.source,
                generation,
            )
            self.edge = edge
            self._key_generation = generation
            self._swap(state, changed_at={})
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
        async with self._building:
            await self._apply(view)
        await self._report()

    async def _apply(self, view: TrustView) -> None:
        previous = self.applied
        stored = self._stored_from(view)
        try:
            state, errors = await self._build(
                self.edge.certificates,
                stored,
                functools.partial(
                    anchors_from_view,
                    versions=view.active,
                    crls=view.crls,
                    blocked=view.blocked,
                ),
                view.revision,
                "store",
            )
        except Exception as error:
            if previous is None:
                # Nothing to keep enforcing: a node whose first state does not build (an edge
                # certificate file OpenSSL cannot load) must not start and serve nothing.
                raise NoTrustState(f"the first trust state does not build: {error}") from error
            self._rejected(view.revision, view.active, view.crls, previous, stored, error)
        else:
            self.stored, self.apply_errors = stored, errors
            self._swap(state, changed_at=view.changed_at)
            try:
                path, network = self.node.snapshot, self.node.network
                await asyncio.to_thread(
                    write_snapshot, path, network, state.revision, state.active, stored
                )
            except OSError as error:
                # The state above is in force; the snapshot is only the fallback for a store
                # outage. Failing to write it must neither fail the activation nor be reported
                # as a rejected state that was in fact applied.
                log.error(
                    "could not write the trust snapshot",
                    extra={"snapshot": str(self.node.snapshot), "error": str(error)},
                )

    def _stored_from(self, view: TrustView) -> tuple[EdgeCertificateConfig, ...]:
        """The store's edge certificates for this node. One named in the file too is a startup
        error; later (the API refuses such a name while this node is live) it is left out."""
        stored = store_edges(view.edges, view.bindings)
        try:
            check_names(self.edge.certificates, stored)
        except EdgeNameConflict as error:
            if self.applied is None:
                raise NoTrustState(str(error)) from None
            log.error("edge certificate name conflict", extra={"error": str(error)})
            declared = {c.name for c in self.edge.certificates}
            stored = tuple(s for s in stored if s.name not in declared)
        return stored

    def _rejected(
        self,
        revision: int,
        versions: Mapping[str, Version | None],
        crls: Mapping[str, tuple[bytes, ...]],
        previous: TrustState | None,
        stored: Sequence[EdgeCertificateConfig],
        error: Exception,
    ) -> None:
        """Keep enforcing the previous state; report why against what changed (`blame`)."""
        self.metrics.trust_reload_failed()
        changed = blame(self.edges, versions, crls, previous, stored)
        self.apply_errors = {n: f"trust state build failed: {error}" for n in changed}
        log.error(
            "trust state rejected; keeping the previous one",
            extra={"revision": revision, "error": str(error), "ca_sets": changed},
        )
        if self.applied is not None:
            self.applied = self.applied.at_revision(revision)

    async def _build(
        self,
        declared: Sequence[EdgeCertificateConfig],
        stored: Sequence[EdgeCertificateConfig],
        active: Mapping[str, TrustAnchors | None]
        | Callable[[Sequence[str], TrustState | None], Mapping[str, TrustAnchors | None]],
        revision: int,
        source: str,
        generation: int | None = None,
    ) -> tuple[TrustState, dict[str, str]]:
        """Build the next state on the background thread (runtime/background.py): PEM parsing,
        key files and SSL contexts never run on the event loop, and yield the core to it.
        Called with `_building` held; every path that swaps a state builds it here.

        `active`: the anchors, or how to make them from the bound sets and the state in force.
        `generation`: of the key files (None: the one in force). Also answers the store's edge
        certificates left out because their sealed key does not open here, by `edge_error_key`.
        """
        every = (*declared, *stored)
        bound = bound_sets(every)
        previous = self.applied
        ocsp, stale_accepted = self._ocsp_lookups(every), self._stale_accepted()
        if generation is None:
            generation = self._key_generation
        build, keys = self._build_state, self.keys

        def job() -> tuple[TrustState, dict[str, str]]:
            anchors = active if isinstance(active, Mapping) else active(bound, previous)
            edges, errors = openable(every, keys)
            state = build(
                edges,
                anchors,
                previous=previous,
                generation=generation,
                revision=revision,
                source=source,
                ocsp=ocsp,
                stale_accepted=stale_accepted,
                keys=keys,
            )
            return state, errors

        return await run_in_background(job)

    def _ocsp_lookups(self, edges: Sequence[EdgeCertificateConfig]) -> dict[str, OcspLookup]:
        """Asked on the loop: the revocation service is not thread-safe."""
        hooks = self.hooks
        if hooks is None:
            return {}
        return {c.name: hooks.ocsp_lookup(c) for c in edges if c.mutual_authentication.ocsp.enabled}

    def _stale_accepted(self) -> StaleAccepted | None:
        return self.hooks.crl_stale_accepted if self.hooks is not None else None

    def _swap(self, state: TrustState, *, changed_at: Mapping[str, datetime]) -> None:
        previous = self.applied
        self.served.update(p.edge for p in state.edges.values())
        state.applied_at = self.clock()  # in force from now (the build took its time)
        self.applied = state
        self._publish(state, previous, changed_at)
        self._warn_fail_closed(state)
        for listener in self.listeners:
            try:
                listener(state, previous)
            except Exception:  # the state is in force; a listener's failure must not undo it
                log.exception("trust swap listener failed")

    def _publish(
        self,
        state: TrustState,
        previous: TrustState | None,
        changed_at: Mapping[str, datetime],
    ) -> None:
        active = state.active
        now = state.applied_at or self.clock()
        latency = activation_latency(state, previous, changed_at, self._activations_seen, now)
        if changed_at:  # a store view (a SIGHUP rebuild reads none)
            self._activations_seen = dict(changed_at)
        self.metrics.trust_applied(
            {name: (a.version, a.expiries) if a else (None, ()) for name, a in active.items()},
            self.node.network,
            latency,
            {name: served_not_after(p.context) for name, p in state.edges.items()},
        )
        log.info(
            "trust state applied",
            extra={
                "revision": state.revision,
                "versions": {n: a.version if a else None for n, a in active.items()},
            },
        )

    def _warn_fail_closed(self, state: TrustState) -> None:
        """One warning per edge certificate that refuses every client, with each state swapped
        in (the start, every SIGHUP reload, every store change): an operator sees it in the log
        before a partner reports it."""
        for prepared in state.edges.values():
            why = self._closed_because(prepared.edge, state)
            if why is not None:
                log.warning(
                    "edge certificate fails closed: every client certificate is refused",
                    extra={"edge_certificate": prepared.name, "why": why},
                )

    def _unreachable(self, error: Exception) -> None:
        if self.store_reachable or self.applied is None:
            log.error("store unreachable", extra={"error": str(error)})
        self.store_reachable = False
        self.metrics.store_reachable(False)

    async def _report(self) -> None:
        report = node_report(
            self.node, self.started_at, self.clock(), self.edges, self.applied, self.apply_errors
        )
        await self.fleet.report_node(report)
