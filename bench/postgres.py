"""A throw-away PostgreSQL database on 127.0.0.1:5432 for the PostgreSQL activation figure."""

from __future__ import annotations

import asyncio
import secrets

import asyncpg

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _execute(sql: str) -> None:
    conn = await asyncpg.connect(SERVER, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database() -> str | None:
    """A fresh database's URL, or None when no server answers (the figure is then skipped)."""
    name = f"edgeproxy_bench_{secrets.token_hex(4)}"
    try:
        asyncio.run(_execute(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        print(f"bench: PostgreSQL figure skipped: {error}", flush=True)
        return None
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    asyncio.run(_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
