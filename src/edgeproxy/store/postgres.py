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


class PostgresStore:
    dialect = "postgresql"

    def __init__(self, dsn: str, *, poll_interval: float = 1.0) -> None:
        self._dsn = dsn
        # The slow safety-net poll, for a notification lost with a dropped listener connection.
        self.poll_interval = max(poll_interval, 0.5)
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._changed = asyncio.Event()

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=8)
        async with self._pool.acquire() as conn:
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
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def transaction(self, *, write: bool) -> AsyncIterator[Tx]:
        if self._pool is None:
            raise StoreUnavailable("the store is not open")
        try:
            conn = await self._pool.acquire()
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as error:
            raise StoreUnavailable(f"cannot reach PostgreSQL: {type(error).__name__}") from error
        try:
            async with conn.transaction():
                if write:
                    # One row lock serialises writers store-wide: check-then-write use cases
                    # (limits, one activation in flight) stay atomic across admin processes.
                    await conn.execute("SELECT revision FROM meta WHERE id = 1 FOR UPDATE")
                yield Tx(_PostgresDb(conn))
        finally:
            await self._pool.release(conn)

    async def revision(self) -> int:
        if self._pool is None:
            raise StoreUnavailable("the store is not open")
        return int(await self._pool.fetchval("SELECT revision FROM meta WHERE id = 1"))

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        self._listener = await asyncpg.connect(self._dsn)
        await self._listener.add_listener(CHANNEL, lambda *_: self._changed.set())

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
