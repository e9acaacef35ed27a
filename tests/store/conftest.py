"""Store fixtures: every contract test runs against SQLite (a file in tmp_path) and PostgreSQL (a
fresh database per test, dropped afterwards).

PostgreSQL comes from `EDGEPROXY_TEST_POSTGRES` (default: the local trust-auth server, database
`test`). When it is unreachable the PostgreSQL cases skip with the reason, except when `CI` is set:
CI must prove both back ends, so there they fail.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from edgeproxy.domain.certificates import certificate_record
from edgeproxy.domain.model import Certificate
from edgeproxy.store import Store, open_store
from support.pki import build_certificate, common_name

ADMIN_DSN = os.environ.get("EDGEPROXY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
# What a unique-index violation raises, per driver: the store passes driver errors through.
UNIQUE_VIOLATION = (sqlite3.IntegrityError, asyncpg.UniqueViolationError)

OpenStore = Callable[..., Awaitable[Store]]


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
            "CI must run the contract suite on both back ends",
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


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    # Looked up lazily so the SQLite cases never touch the PostgreSQL server.
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def open_stores(store_url: str) -> AsyncIterator[OpenStore]:
    """Opens store instances on the test's database; several model several processes."""
    opened: list[Store] = []

    async def opener(**options: float) -> Store:
        store = open_store(store_url, **options)
        await store.open()
        opened.append(store)
        return store

    yield opener
    for store in reversed(opened):
        await store.close()


@pytest.fixture
async def store(open_stores: OpenStore) -> Store:
    return await open_stores()


def make_certificates(count: int, prefix: str = "CA") -> tuple[Certificate, ...]:
    """`count` real self-signed CA certificates (one key, distinct names) as stored records."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    records = []
    for index in range(count):
        cert = build_certificate(
            common_name(f"{prefix} {index}"),
            key,
            not_before=now - timedelta(days=1),
            not_after=now + timedelta(days=365),
        )
        records.append(certificate_record(cert, f"{prefix.lower()} {index}"))
    return tuple(records)


@pytest.fixture(scope="session")
def certificates() -> tuple[Certificate, ...]:
    """300 certificates: the most a version may hold (docs/management.md)."""
    return make_certificates(300)
