"""Pooled HTTP/1.1 connections to one origin, on a lean asyncio Protocol (no general client).

An `OriginConnection` parses responses with llhttp and hands the events to its current *owner*
(the exchange machine, exchange.HttpConnection, whose request it carries); the owner decides what
reaches the client and gives the connection back to the pool (`release`) or closes it. No task
runs per request: only opening a new connection is a coroutine, bounded by the connect timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import cast

import httptools

from edgeproxy.dataplane.http.links import OriginLink, OriginOwner
from edgeproxy.runtime.tasks import TaskGroup

log = logging.getLogger(__name__)
# Bytes an origin may send without llhttp reporting progress (a header line, a trailer): beyond
# this the response is refused rather than accumulated inside httptools.
MAX_PENDING = 64 * 1024


class _Stop(Exception):
    """Raised from a parser callback to stop llhttp (its state is then discarded)."""


class OriginConnection(asyncio.Protocol):
    __slots__ = (
        "_expect_upgrade",
        "_head_only",
        "_headers",
        "_keep_alive",
        "_parser",
        "_pending",
        "_reading_paused",
        "_reason",
        "_skipped_body",
        "_status",
        "_tunnel",
        "_until_eof",
        "closed",
        "got_response",
        "owner",
        "pool",
        "reused",
        "transport",
    )
    # Set by connection_made, which create_connection runs before it hands the connection to the
    # pool: no code outside this class ever sees a connection without one.
    transport: asyncio.Transport

    def __init__(self, pool: OriginPool) -> None:
        self.pool = pool
        self.owner: OriginOwner | None = None
        self.closed = False
        self.reused = False  # served an earlier exchange: it may be a stale keep-alive
        self.got_response = False  # bytes of the current exchange's response have arrived
        self._parser = httptools.HttpResponseParser(self)
        self._pending = 0
        self._status = 0
        self._reason = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_only = False
        self._expect_upgrade = False
        self._until_eof = False
        self._keep_alive = False
        self._skipped_body = False
        self._tunnel = False
        self._reading_paused = False

    def start(self, owner: OriginOwner, head_only: bool, upgrade: bool) -> None:
        self.owner = owner
        self._head_only = head_only
        self._expect_upgrade = upgrade
        self.got_response = False

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def write_eof(self) -> None:
        """The client half-closed a tunnel: pass the half-close on."""
        self.transport.write_eof()

    def pause_reading(self) -> None:
        if not self._reading_paused and not self.closed:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._reading_paused and not self.closed:
            self._reading_paused = False
            self.transport.resume_reading()

    def close(self) -> None:
        """Let go without reuse (Connection: close, or an exchange that did not end cleanly)."""
        self.owner = None
        if not self.closed:
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        self.owner = None
        if not self.closed:
            self.closed = True
            self.transport.abort()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; uvloop's does not subclass asyncio.Transport, so no isinstance.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        owner = self.owner
        if owner is None:  # an idle pooled connection must stay silent
            self.abort()
            return
        if self._tunnel:
            owner.origin_tunnel_data(data)
            return
        self.got_response = True
        self._pending += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._tunnel = True
            owner.origin_upgraded(data[exc.args[0] :])
        except httptools.HttpParserError as exc:
            if not self._skipped_body:
                cause = exc.__context__
                if cause is not None and not isinstance(cause, _Stop):
                    log.error("origin response handling crashed", exc_info=cause)
                self._fail(owner, f"bad response from origin: {exc}")
                return
            # A response to HEAD: llhttp cannot be told it has no body, so it was stopped after
            # the head and is replaced by a fresh parser for the next exchange.
            self._skipped_body = False
            self._parser = httptools.HttpResponseParser(self)
            self._complete(owner, self._keep_alive)
        if self._pending > MAX_PENDING:
            self._fail(owner, "response head or trailer too large")
            return
        owner.origin_flush()

    def eof_received(self) -> None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        owner, self.owner = self.owner, None
        if owner is None:
            self.pool.discard(self)
        elif self._until_eof and self._status and not self._tunnel:
            # The end of a close-delimited body (RFC 9112 §6.3 item 8).
            owner.origin_end(False)
            owner.origin_flush()
        else:
            owner.origin_failed("origin closed the connection")

    def pause_writing(self) -> None:
        if self.owner is not None:
            self.owner.origin_pause_writing()

    def resume_writing(self) -> None:
        if self.owner is not None:
            self.owner.origin_resume_writing()

    def _fail(self, owner: OriginOwner, detail: str) -> None:
        self.abort()
        owner.origin_failed(detail)

    def _complete(self, owner: OriginOwner, keep_alive: bool) -> None:
        self._status = 0
        self._until_eof = False
        self._reason = b""
        self._headers = []
        owner.origin_end(keep_alive)

    # llhttp callbacks

    def on_status(self, reason: bytes) -> None:
        self._reason += reason
        self._pending = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._pending = 0

    def on_headers_complete(self) -> None:
        owner = self.owner
        if owner is None:
            raise _Stop
        status = self._parser.get_status_code()
        self._pending = 0
        if status < 200 and status != 101:
            owner.origin_interim(status, self._reason, self._headers)
            self._reason = b""
            self._headers = []
            return
        if status == 101 and not self._expect_upgrade:
            raise _Stop  # a switch nobody asked for: a broken origin
        self._status = status
        self._until_eof = owner.origin_head(status, self._reason, self._headers)
        if self._head_only:
            self._keep_alive = self._parser.should_keep_alive()
            self._skipped_body = True
            raise _Stop

    def on_body(self, data: bytes) -> None:
        owner = self.owner
        if owner is None:
            raise _Stop
        self._pending = 0
        owner.origin_body(data)

    def on_message_complete(self) -> None:
        owner = self.owner
        if owner is None:
            raise _Stop
        self._pending = 0
        if self._status == 0 or self._status == 101:
            return  # an interim 1xx, or a 101 whose upgrade llhttp reports next
        self._complete(owner, self._parser.should_keep_alive())


class OriginPool:
    """Keep-alive connections to one origin: LIFO reuse (warmest first), bounded idle count."""

    def __init__(self, host: str, port: int, *, connect_timeout: float, max_idle: int = 64) -> None:
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.max_idle = max_idle
        self._idle: list[OriginConnection] = []
        self._tasks = TaskGroup()
        self._closed = False

    def __repr__(self) -> str:
        return f"OriginPool({self.host}:{self.port}, idle={len(self._idle)})"

    def take(self) -> OriginConnection | None:
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.closed and not conn.transport.is_closing():
                conn.reused = True
                return conn
        return None

    def release(self, conn: OriginLink) -> None:
        # The machine gives back only what take/connect handed it: one of this pool's connections.
        assert isinstance(conn, OriginConnection)
        conn.owner = None
        if conn.closed or self._closed or len(self._idle) >= self.max_idle:
            conn.close()
            return
        conn.resume_reading()  # an idle connection must notice the origin closing it
        self._idle.append(conn)

    def discard(self, conn: OriginConnection) -> None:
        with contextlib.suppress(ValueError):
            self._idle.remove(conn)

    def connect(self, owner: OriginOwner) -> None:
        """Open a connection in the background; the owner hears `origin_connected` or `_failed`."""
        self._tasks.spawn(self._connect(owner), f"origin-connect {self.host}:{self.port}")

    async def _connect(self, owner: OriginOwner) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: OriginConnection(self), self.host, self.port
                )
        except TimeoutError:
            owner.origin_connect_failed(True)
            return
        except OSError as exc:
            log.debug("origin %s:%s unreachable: %s", self.host, self.port, exc)
            owner.origin_connect_failed(False)
            return
        owner.origin_connected(conn)

    def close_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    @property
    def connecting(self) -> int:
        """Connects still in flight."""
        return len(self._tasks)

    def retire(self) -> None:
        """No edge uses this pool any more: close the idle connections, pool nothing from now on.
        Connects in flight finish (their requests are served); `close()` awaits them."""
        self._closed = True
        self.close_idle()

    async def close(self) -> None:
        self.retire()
        await self._tasks.close()
