"""Per-listener state shared by the HTTP connections: limits, caches, deadlines, drain.

Deadlines use one coarse sweep per listener instead of a TimerHandle per request: a connection
only stores a float (`deadline`); the sweep, a self-rescheduling `call_later` that runs while any
connection exists, calls `on_deadline` on the ones that are due. Granularity is a quarter of the
shortest timeout (at most 1 s), which is plenty for 15 s / 60 s limits.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from edgeproxy.config.model import EdgeLimits
from edgeproxy.dataplane.http.identity import IdentityCache
from edgeproxy.dataplane.http.records import RequestObserver, RevocationProvider

log = logging.getLogger(__name__)


class Tracked(Protocol):
    """What the context needs of a connection."""

    deadline: float

    def on_deadline(self, now: float) -> None: ...
    def drain(self) -> None: ...
    def abort(self) -> None: ...


class ProxyContext:
    """Everything a listener's `ProxyProtocol` instances share; one per listener and event loop.

    It offers the exchange machine (exchange.py) what it reads of the listener: limits, observer,
    identity cache, revocation and the `draining` flag (the `Shared` protocol there). What is
    per edge certificate (host matcher, origin pool) is the edge's `ServedEdge`
    (served.py), handed to each `ProxyProtocol`."""

    def __init__(
        self,
        limits: EdgeLimits,
        *,
        observer: RequestObserver | None = None,
        revocation: RevocationProvider | None = None,
    ) -> None:
        self.limits = limits
        self.observer = observer
        self.revocation = revocation  # None: no OCSP anywhere (the HTTP layer never asks)
        self.identities = IdentityCache()
        self.draining = False
        self._connections: set[Tracked] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._emptied: asyncio.Event | None = None
        shortest = min(limits.header_timeout, limits.idle_timeout, limits.origin_read_timeout)
        self.tick = max(0.01, min(1.0, shortest / 4))

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def register(self, conn: Tracked) -> None:
        self._connections.add(conn)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.tick, self._sweep)

    def unregister(self, conn: Tracked) -> None:
        self._connections.discard(conn)
        if not self._connections and self._emptied is not None:
            self._emptied.set()

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        try:
            for conn in [c for c in self._connections if c.deadline <= now]:
                try:
                    conn.on_deadline(now)
                except Exception:  # one broken connection must not stop every deadline
                    log.exception("deadline handling failed for %r", conn)
                    conn.abort()
        finally:
            self._timer = loop.call_later(self.tick, self._sweep) if self._connections else None

    async def drain(self, grace: float | None = None) -> int:
        """Graceful stop (SIGTERM): finish in-flight requests, close the rest.

        New requests on open connections are answered with `Connection: close`. Returns how many
        connections had to be aborted when `grace` (default: limits.drain_timeout) ran out.
        The listener stops accepting before calling this.
        """
        self.draining = True
        self._emptied = asyncio.Event()
        for conn in list(self._connections):
            conn.drain()
        if self._connections:
            try:
                async with asyncio.timeout(self.limits.drain_timeout if grace is None else grace):
                    await self._emptied.wait()
            except TimeoutError:
                pass
        left = list(self._connections)
        for conn in left:
            conn.abort()
        self.close()
        return len(left)

    def close(self) -> None:
        """Stop the deadline sweep (after the connections are gone)."""
        if self._timer is not None and not self._connections:
            self._timer.cancel()
            self._timer = None
