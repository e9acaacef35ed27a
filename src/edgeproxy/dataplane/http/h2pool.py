"""The HTTP/2 connections to one h2c origin, handing out streams as origin links (an
`OriginSource`, like origin.OriginPool for HTTP/1.1).

A request takes a free stream on an open connection (at most its stream limit, h2origin.py). A
new connection opens only when every open one is full, one connect at a time, up to
`MAX_CONNECTIONS` per origin and worker; past that a request waits for a stream another gives
back, at most `origin_connect_timeout` (then 504, like a connect that timed out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from h2.errors import ErrorCodes

from edgeproxy.dataplane.http.h2origin import H2OriginConnection
from edgeproxy.dataplane.http.h2origin_stream import H2OriginStream
from edgeproxy.dataplane.http.links import OriginLink, OriginOwner
from edgeproxy.runtime.tasks import TaskGroup

log = logging.getLogger(__name__)
MAX_CONNECTIONS = 4  # per origin (and per worker)


class H2OriginPool:
    """The HTTP/2 connections to one h2c origin (module docstring); an `OriginSource`."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connect_timeout: float,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.max_connections = max_connections
        self._conns: list[H2OriginConnection] = []
        self._waiters: deque[tuple[float, OriginOwner]] = deque()  # (give up at, owner)
        self._expiry: asyncio.TimerHandle | None = None
        self._tasks = TaskGroup()
        self._closed = False
        self._serving = False
        self._opening = False  # a connect is in flight

    def __repr__(self) -> str:
        return f"H2OriginPool({self.host}:{self.port}, connections={len(self._conns)})"

    def take(self) -> OriginLink | None:
        conn = self._room()
        return conn.new_stream() if conn is not None else None

    def connect(self, owner: OriginOwner) -> None:
        """Wait for a free stream: on a new connection when the pool may open one, else on the
        first stream another request gives back; `origin_connect_failed` after connect_timeout."""
        loop = asyncio.get_running_loop()
        self._waiters.append((loop.time() + self.connect_timeout, owner))
        if self._expiry is None:
            self._expiry = loop.call_later(self.connect_timeout, self._expire)
        self._maybe_open()

    def release(self, link: OriginLink) -> None:
        # The machines give back only what take/connect handed them: one of this pool's streams.
        assert isinstance(link, H2OriginStream)
        link.owner = None
        link.conn.stream_finished(link, ErrorCodes.CANCEL)

    @property
    def connecting(self) -> int:
        """Connects still in flight."""
        return len(self._tasks)

    def retire(self) -> None:
        """No edge uses this pool any more: idle connections close now, busy ones when their last
        stream ends; a request already waiting is still served."""
        self._closed = True
        for conn in [c for c in self._conns if not c.links]:
            conn.close()

    async def close(self) -> None:
        self.retire()
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        await self._tasks.close()

    # -- what connections report ------------------------------------------------------------------

    def slot_freed(self, conn: H2OriginConnection) -> None:
        if not conn.links and (self._closed or conn.going_away):
            conn.close()
        self._serve()

    def connection_gone(self, conn: H2OriginConnection) -> None:
        with contextlib.suppress(ValueError):
            self._conns.remove(conn)
        self._maybe_open()

    # -- inside -----------------------------------------------------------------------------------

    def _room(self) -> H2OriginConnection | None:
        for conn in self._conns:
            if conn.has_room:
                return conn
        return None

    def _serve(self) -> None:
        if self._serving:
            return  # a waiter served below gave its stream straight back: the loop goes on
        self._serving = True
        try:
            while self._waiters:
                conn = self._room()
                if conn is None:
                    break
                _, owner = self._waiters.popleft()
                owner.origin_connected(conn.new_stream())
        finally:
            self._serving = False
        self._maybe_open()

    def _maybe_open(self) -> None:
        if self._waiters and not self._opening and len(self._conns) < self.max_connections:
            self._opening = True
            self._tasks.spawn(self._open(), f"origin-connect h2c {self.host}:{self.port}")

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        conn: H2OriginConnection | None = None
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: H2OriginConnection(self), self.host, self.port
                )
                await asyncio.shield(conn.ready)
        except (TimeoutError, OSError) as exc:
            self._opening = False
            if conn is not None:
                if not conn.ready.done():
                    conn.ready.cancel()  # nobody awaits it any more
                conn.closed = True
                conn.transport.abort()
            log.debug("origin h2c %s:%s unreachable: %r", self.host, self.port, exc)
            self._connect_failed(isinstance(exc, TimeoutError))
            return
        self._opening = False
        self._conns.append(conn)
        self._serve()  # and, when more wait than it takes, the next connect

    def _connect_failed(self, timed_out: bool) -> None:
        if self._conns:
            return  # the open connections will free streams for the waiters
        waiters, self._waiters = self._waiters, deque()
        for _, owner in waiters:
            owner.origin_connect_failed(timed_out)

    def _expire(self) -> None:
        """Waiters past connect_timeout are told so (504); the timer follows the oldest one."""
        self._expiry = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        waiters = self._waiters
        while waiters and waiters[0][0] <= now:
            _, owner = waiters.popleft()
            owner.origin_connect_failed(True)
        if waiters:
            self._expiry = loop.call_later(waiters[0][0] - now, self._expire)
