"""The edge role: the mTLS listener, its trust sync, and its readiness (docs/architecture.md,
docs/dataplane.md)."""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp

from edgeproxy.config.model import EdgeConfig, NodeConfig
from edgeproxy.dataplane.client_flush import ClientFlusher, lost_client_reporter
from edgeproxy.dataplane.clients import ClientRecorder
from edgeproxy.dataplane.connections import ConnectionWatch, WatchedTlsProtocol
from edgeproxy.dataplane.http.context import ProxyContext
from edgeproxy.dataplane.http.h2protocol import protocol_for
from edgeproxy.dataplane.http.protocol import ProxyProtocol
from edgeproxy.dataplane.metrics import Metrics
from edgeproxy.dataplane.observe import AccessLine, HandshakeLog, RequestLog
from edgeproxy.dataplane.revocation.check import Revocation
from edgeproxy.dataplane.revocation.client import OcspClient
from edgeproxy.dataplane.status import NodeStatus, Readiness, TrustStatus
from edgeproxy.dataplane.tls_transport import TlsServerProtocol
from edgeproxy.dataplane.trust_sync import TrustSync
from edgeproxy.domain.secrets import KeyRing
from edgeproxy.revocation.crl import CrlWatch
from edgeproxy.runtime.listening import listening
from edgeproxy.runtime.logs import AccessSink
from edgeproxy.runtime.tasks import TaskGroup, every
from edgeproxy.service.fleet import FleetService
from edgeproxy.store import Store
from edgeproxy.tls.session import TlsSession

log = logging.getLogger(__name__)
BACKLOG = 2048
CRL_CHECK_INTERVAL: Final = 15.0  # seconds between CRL freshness checks (metric and log line)
FINAL_FLUSH_TIMEOUT: Final = 2.0  # seconds the last client-records batch may take at stop


class EdgeRole:
    def __init__(
        self,
        node: NodeConfig,
        edge: EdgeConfig,
        store: Store,
        fleet: FleetService,
        metrics: Metrics,
        *,
        access_sink: AccessSink | None = None,
        keys: KeyRing | None = None,
    ) -> None:
        self.node = node
        self.edge = edge
        self.metrics = metrics
        self.access = AccessLine(access_sink)
        # OCSP for this worker: consulted by every context's verify step and by the HTTP layer.
        self.revocation = Revocation(metrics)
        self.sync = TrustSync(node, edge, store, fleet, metrics, hooks=self.revocation, keys=keys)
        self.sync.listeners.append(self.revocation.retain)
        # Open connections, judged again on every trust change and retired at their max age.
        self.watch = ConnectionWatch(metrics, self.sync.state, edge.limits)
        self.sync.listeners.append(self.watch.trust_changed)
        self.revocation.revoked_listeners.append(self.watch.revoked)
        self.crls = CrlWatch()
        records = edge.client_records
        # The clients this worker sees, flushed to the store in batches (None: switched off).
        self.clients: ClientRecorder | None = None
        self.flusher: ClientFlusher | None = None
        self._fleet = fleet
        if records.enabled:
            self.clients = ClientRecorder(
                records.max_per_binding, on_lost=lost_client_reporter(metrics)
            )
            self.flusher = ClientFlusher(self.clients, fleet, node.name, node.network, records)
        self._tasks = TaskGroup()
        self._http: aiohttp.ClientSession | None = None
        self._server: asyncio.Server | None = None
        self._context: ProxyContext | None = None

    async def start(self) -> None:
        # Trust first: the listener never accepts a connection it has no state to judge.
        await self.sync.start()
        self.metrics.prepare([c.name for c in self.edge.certificates], self.node.network)
        # The worker's one ClientSession, for OCSP responders (made here, before the listener,
        # the only source of OCSP lookups): no decompression, no proxy from the environment;
        # redirects are refused per request.
        self._http = aiohttp.ClientSession(auto_decompress=False, trust_env=False)
        self.revocation.client = OcspClient(self._http)
        self._tasks.spawn(
            every(CRL_CHECK_INTERVAL, self._check_crls, "CRL freshness check"), "crl-watch"
        )
        if self.flusher is not None:
            interval = self.edge.client_records.flush_interval
            self._tasks.spawn(
                every(interval, self.flusher.flush, "client records flush"), "client-records"
            )
        else:
            self._tasks.spawn(self._forget_clients(), "client-records-off")
        context = ProxyContext(
            self.edge.limits,
            observer=RequestLog(self.metrics, self.access, self.clients),
            revocation=self.revocation,
        )
        observer = HandshakeLog(self.metrics, self.node.network, self.access, clients=self.clients)
        limits = self.edge.limits
        state, served = self.sync.state, self.sync.served
        watch = self.watch
        watch.start()

        def http(session: TlsSession) -> ProxyProtocol:
            # HTTP/2 where ALPN chose h2, else HTTP/1.1.
            return protocol_for(session)(context, session, served.get(session.edge))

        def connection() -> TlsServerProtocol:
            protocol = WatchedTlsProtocol(state, http, limits, observer)
            protocol.watch = watch
            return protocol

        loop = asyncio.get_running_loop()
        self._context = context
        with listening("edge.listen", self.edge.listen):
            self._server = await loop.create_server(
                connection,
                self.edge.listen.host,
                self.edge.listen.port,
                backlog=BACKLOG,
                # Workers of one node share the port; the kernel spreads connections among them.
                reuse_port=hasattr(socket, "SO_REUSEPORT"),
            )
        log.info("edge listening", extra={"listen": f"{self.edge.listen.host}:{self.port}"})

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def reload(self, edge: EdgeConfig) -> None:
        """SIGHUP: new certificates and bindings take effect for new connections (built off the
        loop; raises, keeping the state in force, when they do not load)."""
        await self.sync.reload(edge)
        self.edge = edge

    async def stop(self) -> None:
        """Graceful drain: stop accepting, let in-flight requests finish, then leave the fleet."""
        if self._server is not None:
            self._server.close()
        if self._context is not None:
            aborted = await self._context.drain()
            if aborted:
                log.warning("drain timed out", extra={"aborted_connections": aborted})
            self._context.close()
        await self._tasks.close()
        await self._last_flush()
        await self.watch.close()
        await self.sync.stop()
        await self.revocation.close()
        if self._http is not None:
            await self._http.close()

    async def _last_flush(self) -> None:
        """What the recorder holds goes to the store before the node leaves (best effort)."""
        if self.flusher is None:
            return
        try:
            async with asyncio.timeout(FINAL_FLUSH_TIMEOUT):
                await self.flusher.flush()
        except Exception as error:
            log.warning("could not flush the client records", extra={"error": str(error)})

    async def _forget_clients(self) -> None:
        """Client records switched off: what this node wrote before leaves the store too."""
        try:
            await self._fleet.forget_clients(self.node.name)
        except Exception as error:
            log.warning("could not remove this node's client records", extra={"error": str(error)})

    def _crls_in_force(self) -> dict[str, tuple[bytes, ...]]:
        applied = self.sync.applied
        if applied is None:
            return {}
        return {n: a.crls_der if a else () for n, a in applied.active.items()}

    async def _check_crls(self) -> None:
        """A CRL ages without any store change: report stale ones (metric, one log line)."""
        self.metrics.crl_expired(self.crls.check(self._crls_in_force(), datetime.now(UTC)))

    # -- StatusSource --------------------------------------------------------------------------

    def ready(self) -> Readiness:
        applied = self.sync.applied
        snapshot = applied is not None and applied.source == "snapshot"
        return Readiness(
            ready=applied is not None,
            fail_closed=tuple(self.sync.fail_closed()),
            reasons=("serving the last applied trust state from the local snapshot",)
            if snapshot
            else (),
            store_reachable=self.sync.store_reachable,
        )

    def status(self) -> NodeStatus:
        applied = self.sync.applied
        return NodeStatus(
            node=self.node.name,
            network=self.node.network,
            roles=self.node.roles,
            store_reachable=self.sync.store_reachable,
            trust=None
            if applied is None
            else TrustStatus(
                revision=applied.revision,
                source=applied.source,
                applied_at=applied.applied_at,
                versions={n: a.version if a else None for n, a in applied.active.items()},
                errors=dict(self.sync.apply_errors),
                crls=self._crl_status(),
            ),
            edge_certificates=self.sync.edges,
            connections=self._context.connection_count if self._context else 0,
        )

    def _crl_status(self) -> dict[str, list[dict[str, Any]]]:
        now = datetime.now(UTC)
        return {
            name: [info.as_json(now) for info in infos]
            for name, infos in self.crls.info(self._crls_in_force()).items()
        }
