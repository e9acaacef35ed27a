"""SQLite back end: one WAL-mode file, a writer connection and a reader for cheap revision polls."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

import aiosqlite

from edgeproxy.store.base import StoreUnavailable
from edgeproxy.store.db import Record
from edgeproxy.store.migrations import migrations
from edgeproxy.store.queries import Tx

_PARAM = re.compile(r"\$(\d+)")


def _sql(text: str) -> str:
    # SQLite accepts numbered `?N` parameters, so `$N` maps one to one.
    return _PARAM.sub(r"?\1", text)


def _param(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


class _SqliteDb:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: Any) -> Sequence[Record]:
        async with self._conn.execute(_sql(sql), [_param(a) for a in args]) as cursor:
            return list(await cursor.fetchall())

    async def fetchrow(self, sql: str, *args: Any) -> Record | None:
        async with self._conn.execute(_sql(sql), [_param(a) for a in args]) as cursor:
            return await cursor.fetchone()

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]

    async def execute(self, sql: str, *args: Any) -> None:
        await self._conn.execute(_sql(sql), [_param(a) for a in args])

    async def notify(self, revision: int) -> None:
        """Nothing to do: SQLite readers poll the revision."""


class SqliteStore:
    dialect = "sqlite"

    def __init__(
        self, path: Path, *, poll_interval: float = 0.05, statement_timeout: float = 5.0
    ) -> None:
        self.path = path
        self.poll_interval = poll_interval
        # How long a statement waits for a lock another process holds (busy_timeout), and how
        # long a transaction waits for its turn on our one connection.
        self.statement_timeout = statement_timeout
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        # One connection serves every transaction, so transactions take turns.
        self._lock = asyncio.Lock()

    async def _connect(self) -> aiosqlite.Connection:
        # isolation_level=None: we issue BEGIN ourselves, so a transaction is exactly a use case.
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute(f"PRAGMA busy_timeout = {int(self.statement_timeout * 1000)}")
        await conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._connect()
        await self._migrate(self._writer)
        self._reader = await self._connect()

    async def _migrate(self, conn: aiosqlite.Connection) -> None:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL)"
            )
            async with conn.execute("SELECT version FROM schema_migrations") as cursor:
                done = {row[0] for row in await cursor.fetchall()}
            for number, name, sql in migrations(self.dialect):
                if number in done:
                    continue
                # executescript would COMMIT our transaction; run statement by statement.
                for statement in _statements(sql):
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (number, name)
                )
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    @asynccontextmanager
    async def transaction(self, *, write: bool) -> AsyncIterator[Tx]:
        if self._writer is None:
            raise StoreUnavailable("the store is not open")
        writer = self._writer
        try:
            # Our turn on the one connection: a transaction stuck on a hung disk holds it, and
            # the callers behind it must hear "unavailable", not queue forever.
            async with asyncio.timeout(self.statement_timeout):
                await self._lock.acquire()
        except TimeoutError as error:
            raise StoreUnavailable("the SQLite database is busy: timed out") from error
        try:
            # IMMEDIATE takes the write lock up front, so check-then-write use cases are atomic.
            # Another process holding it makes this wait busy_timeout, then fail: unavailable.
            await writer.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield Tx(_SqliteDb(writer))
            except BaseException:
                await writer.execute("ROLLBACK")
                raise
            try:
                await writer.execute("COMMIT")
            except sqlite3.OperationalError:
                with contextlib.suppress(sqlite3.Error):
                    await writer.execute("ROLLBACK")  # a failed COMMIT leaves it open
                raise
        except sqlite3.OperationalError as error:
            if not _is_busy(error):
                raise
            raise StoreUnavailable(f"the SQLite database is locked: {error}") from error
        finally:
            self._lock.release()

    async def revision(self) -> int:
        if self._reader is None:
            raise StoreUnavailable("the store is not open")
        try:
            async with asyncio.timeout(self.statement_timeout):
                async with self._reader.execute("SELECT revision FROM meta WHERE id = 1") as cur:
                    row = await cur.fetchone()
        except TimeoutError as error:
            raise StoreUnavailable("the SQLite database did not answer: timed out") from error
        assert row is not None
        return int(row[0])

    async def wait_for_change(self, known: int, max_wait: float) -> int:
        # A revision read is one indexed row on a WAL reader: cheap enough to poll often.
        deadline = asyncio.get_running_loop().time() + max_wait
        while (revision := await self.revision()) == known:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            await asyncio.sleep(min(self.poll_interval, remaining))
        return revision


def _is_busy(error: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED (any extended code): another process holds the lock."""
    return getattr(error, "sqlite_errorcode", 0) & 0xFF in (
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
    )


def _statements(script: str) -> list[str]:
    """Split a migration into statements (our migrations hold no semicolons inside literals)."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
