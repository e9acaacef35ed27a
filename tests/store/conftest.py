"""Store fixtures: every contract test runs against SQLite (a file in tmp_path) and PostgreSQL (a
fresh database per test, dropped afterwards: `postgres_url` of tests/conftest.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from edgeproxy.domain.certificates import certificate_record
from edgeproxy.domain.model import Certificate
from edgeproxy.store import Store, open_store
from support.pki import build_certificate, common_name

# What a unique-index violation raises, per driver: the store passes driver errors through.
UNIQUE_VIOLATION = (sqlite3.IntegrityError, asyncpg.UniqueViolationError)

OpenStore = Callable[..., Awaitable[Store]]


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
