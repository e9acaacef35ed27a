"""PostgreSQL back end (asyncpg): a pool for transactions, LISTEN/NOTIFY for change propagation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from edgeproxy.store.base import StoreUnavailable
from edgeproxy.store.db import Record
from edgeproxy.store.migrations import migrations
from edgeproxy.store.queries import Tx

CHANNEL = "edgeproxy_revision"
# Serialises migrations across processes starting at once against one database.
_MIGRATION_LOCK_KEY = 0x6564_6765
# A connection of our own or one borrowed from the pool (a proxy that forwards to it).
_Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


class _PostgresDb:
    def __init__(self, conn: _Conn) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: Any) -> Sequence[Record]:
        return await self._conn.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Record | None:
        return await self._conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._conn.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> None:
        await self._conn.execute(sql, *args)

    async def notify(self, revision: int) -> None:
        # Delivered when the transaction commits, never for a rolled-back one.
        await self._conn.execute("SELECT pg_notify($1, $2)", CHANNEL, str(revision))


# What a lost, refused or hung server raises. The connection that raised one is in an unknown
# state (a statement may still be in flight), so it is dropped, never reused or reset.
_UNREACHABLE = (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)


def _unavailable(error: BaseException) -> StoreUnavailable:
    reason = "timed out" if isinstance(error, TimeoutError) else type(error).__name__
    return StoreUnavailable(f"cannot reach PostgreSQL: {reason}")


class PostgresStore:
    dialect = "postgresql"

    def __init__(
        self,
        dsn: str,
        *,
        poll_interval: float = 1.0,
        connect_timeout: float = 5.0,
        statement_timeout: float = 5.0,
    ) -> None:
        self._dsn = dsn
        # The slow safety-net poll, for a notification lost with a dropped listener connection.
        self.poll_interval = max(poll_interval, 0.5)
        # A stopped server accepts TCP connections and never answers: without these bounds every
        # caller (admin requests, the edge's revision poll, readiness) hangs for a minute or more.
        self.connect_timeout = connect_timeout
        self.statement_timeout = statement_timeout
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._changed = asyncio.Event()

    async def open(self) -> None:
        try:
            # timeout: the TCP connect plus the startup exchange; command_timeout: the default
            # bound of every statement on a connection, ROLLBACK included.
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=1,
                max_size=8,
                timeout=self.connect_timeout,
                command_timeout=self.statement_timeout,
            )
        except _UNREACHABLE as error:
            raise _unavailable(error) from error
        async with self._connection() as conn:
            await self._migrate(conn)

    async def _migrate(self, conn: _Conn) -> None:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK_KEY)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version integer PRIMARY KEY, name text NOT NULL)"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for number, name, sql in migrations(self.dialect):
                if number not in done:
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        number,
                        name,
                    )

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        pool, self._pool = self._pool, None
        # A graceful close talks to the server; a hung one would hold shutdown forever.
        if listener is not None:
            try:
                await asyncio.wait_for(listener.close(), self.connect_timeout)
            except _UNREACHABLE:
                listener.terminate()
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), self.connect_timeout)
            except _UNREACHABLE:
                pool.terminate()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[_Conn]:
        """A pooled connection, bounded at every step; StoreUnavailable when the server is lost,
        refused or hung."""
        if self._pool is None:
            raise StoreUnavailable("the store is not open")
        pool = self._pool
        try:
            # The timeout covers waiting for a free connection and opening a new one.
            conn = await pool.acquire(timeout=self.connect_timeout)
        except _UNREACHABLE as error:
            raise _unavailable(error) from error
        broken = False
        try:
            yield conn
        except _UNREACHABLE as error:
            broken = True
            raise _unavailable(error) from error
        except asyncio.CancelledError:
            broken = True
            raise
        finally:
            if broken and not conn.is_closed():
                # Cancelled or timed out mid-statement: a reset would wait on the same hung
                # socket (asyncpg shields its release from cancellation), so drop it unread.
                conn.terminate()
            with contextlib.suppress(*_UNREACHABLE):
                # On a healthy connection the reset is bounded too; asyncpg terminates it when
                # the bound passes.
                await pool.release(conn, timeout=self.statement_timeout)

    @asynccontextmanager
    async def transaction(self, *, write: bool) -> AsyncIterator[Tx]:
        # Any error inside rolls back (bounded by command_timeout); after a timeout _connection
        # drops the connection instead of reusing it.
        async with self._connection() as conn, conn.transaction():
            if write:
                # One row lock serialises writers store-wide: check-then-write use cases
                # (limits, one activation in flight) stay atomic across admin processes.
                await conn.execute("SELECT revision FROM meta WHERE id = 1 FOR UPDATE")
            yield Tx(_PostgresDb(conn))

    async def revision(self) -> int:
        async with self._connection() as conn:
            return int(await conn.fetchval("SELECT revision FROM meta WHERE id = 1"))

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        try:
            self._listener = await asyncpg.connect(
                self._dsn, timeout=self.connect_timeout, command_timeout=self.statement_timeout
            )
            await self._listener.add_listener(CHANNEL, lambda *_: self._changed.set())
        except _UNREACHABLE as error:
            if self._listener is not None:
                self._listener.terminate()
                self._listener = None
            raise _unavailable(error) from error

    async def wait_for_change(self, known: int, max_wait: float) -> int:
        await self._ensure_listener()
        deadline = asyncio.get_running_loop().time() + max_wait
        while True:
            # Clear before reading: a NOTIFY that lands while the read is in flight must still
            # wake the wait below (clearing after the read lost it until the next poll).
            self._changed.clear()
            if (revision := await self.revision()) != known:
                break
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(self.poll_interval, remaining))
        return revision
