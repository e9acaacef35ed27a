"""The status listener every node runs (docs/api.md): /metrics, /healthz, /readyz and /status.

The app only renders what a `StatusSource` says; the edge role implements the source from its trust
state, and `StaticStatus` below is the source of a node without the edge role (admin only).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from aiohttp import web

from edgeproxy.config.model import NodeConfig, StatusConfig
from edgeproxy.dataplane.metrics import Metrics
from edgeproxy.dataplane.status import NodeStatus, Readiness
from edgeproxy.runtime.tasks import TaskGroup, every
from edgeproxy.runtime.weblistener import WebListener
from edgeproxy.store import Store

log = logging.getLogger(__name__)

STORE_PROBE_INTERVAL = 1.0
STORE_PROBE_TIMEOUT = 2.0


class StatusSource(Protocol):
    metrics: Metrics

    def ready(self) -> Readiness:
        """Ready or not, and why (dataplane/status.py)."""

    def status(self) -> NodeStatus:
        """Node, network, roles, store reachability and, with the edge role, the trust state."""


_SOURCE: web.AppKey[StatusSource] = web.AppKey("status_source")
_NO_STORE = {"Cache-Control": "no-store"}


async def _metrics(request: web.Request) -> web.Response:
    body, content_type = request.app[_SOURCE].metrics.render()
    return web.Response(body=body, headers={"Content-Type": content_type, **_NO_STORE})


async def _healthz(request: web.Request) -> web.Response:
    # Alive means the event loop answers; readiness is /readyz's business.
    return web.Response(text="ok\n", headers=_NO_STORE)


async def _readyz(request: web.Request) -> web.Response:
    readiness = request.app[_SOURCE].ready()
    status = 200 if readiness.ready else 503
    return web.json_response(readiness.as_json(), status=status, headers=_NO_STORE)


async def _status(request: web.Request) -> web.Response:
    return web.json_response(request.app[_SOURCE].status().as_json(), headers=_NO_STORE)


def create_status_app(state: StatusSource) -> web.Application:
    app = web.Application()
    app[_SOURCE] = state
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/status", _status)
    return app


class StatusRole(WebListener):
    """The status listener every node runs: /metrics, /healthz, /readyz, /status."""

    def __init__(self, config: StatusConfig, source: StatusSource) -> None:
        super().__init__(create_status_app(source), config.listen, key="status.listen")


class StaticStatus:
    """The `StatusSource` of a node without the edge role: ready while its store answers.

    There is no trust state to report; readiness is a store round trip (`probe`), repeated in the
    background between `start()` and `stop()` because `ready()` must answer without I/O.
    """

    def __init__(
        self,
        node: NodeConfig,
        store: Store,
        metrics: Metrics,
        *,
        probe_interval: float = STORE_PROBE_INTERVAL,
        probe_timeout: float = STORE_PROBE_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.node = node
        self.store = store
        self.metrics = metrics
        self.probe_interval = probe_interval
        self.probe_timeout = probe_timeout
        self.clock = clock
        self._reachable = False
        self._checked_at: float | None = None
        self._error: str | None = "store not checked yet"
        self._tasks = TaskGroup()

    async def probe(self) -> bool:
        """Ask the store for its revision once; remember and publish the outcome."""
        try:
            async with asyncio.timeout(self.probe_timeout):
                await self.store.revision()
        except Exception as exc:  # any failure means "unreachable"; the text says which
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if self._reachable:
                log.warning("store unreachable", extra={"error": error})
            self._reachable, self._error = False, error
        else:
            if not self._reachable and self._checked_at is not None:
                log.info("store reachable again")
            self._reachable, self._error = True, None
        self._checked_at = self.clock()
        self.metrics.store_reachable(self._reachable)
        return self._reachable

    async def _probe_step(self) -> None:
        await self.probe()

    async def start(self) -> None:
        await self.probe()
        self._tasks.spawn(
            every(self.probe_interval, self._probe_step, "store probe"), "status-store-probe"
        )

    async def stop(self) -> None:
        await self._tasks.close()

    def ready(self) -> Readiness:
        if self._reachable:
            return Readiness(ready=True)
        return Readiness(ready=False, reasons=(f"store unreachable: {self._error}",))

    def status(self) -> NodeStatus:
        return NodeStatus(
            node=self.node.name,
            network=self.node.network,
            roles=self.node.roles,
            store_reachable=self._reachable,
        )
