"""Fixtures every test package may use; a package's own conftest may override them.

PostgreSQL comes from `EDGEPROXY_TEST_POSTGRES` (default: the local trust-auth server, database
`test`); `postgres_url` is a fresh database per test, dropped afterwards. When the server is
unreachable the PostgreSQL cases skip with the reason, except when `CI` is set: CI must prove both
back ends, so there they fail.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import asyncpg
import pytest

from edgeproxy.store import Store, open_store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh SQLite store in the test's directory (tests/store runs both back ends itself)."""
    opened = open_store(f"sqlite:///{tmp_path / 'edgeproxy.db'}")
    await opened.open()
    yield opened
    await opened.close()


ADMIN_DSN = os.environ.get("EDGEPROXY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _server() -> str:
    """host:port of the test server, never its credentials."""
    parts = urlsplit(ADMIN_DSN)
    return f"{parts.hostname}:{parts.port or 5432}"


def _unavailable(reason: str) -> NoReturn:
    if _in_ci():
        pytest.fail(
            f"PostgreSQL at {_server()} is unreachable ({reason}) and CI is set: "
            "CI must run the PostgreSQL cases",
            pytrace=False,
        )
    pytest.skip(f"PostgreSQL at {_server()} is unreachable ({reason}); set CI=1 to fail instead")


@pytest.fixture(scope="session")
def postgres_probe() -> dict[str, str]:
    """Remembers why the server was unreachable, so later cases do not wait for it again."""
    return {}


@pytest.fixture
async def postgres_url(postgres_probe: dict[str, str]) -> AsyncIterator[str]:
    """A fresh empty database `edgeproxy_t_<random>` (stores migrate it on open), then dropped."""
    admin = None
    if "error" not in postgres_probe:
        try:
            admin = await asyncpg.connect(ADMIN_DSN, timeout=5)
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            postgres_probe["error"] = f"{type(exc).__name__}: {exc}"
    if admin is None:
        _unavailable(postgres_probe["error"])
    name = f"edgeproxy_t_{secrets.token_hex(6)}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlsplit(ADMIN_DSN)._replace(path=f"/{name}").geturl()
        finally:
            # FORCE: a store a failing test left open must not keep the database alive.
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
