"""A hung or locked database is "unavailable" within the configured bounds, never a hang.

The hung PostgreSQL is a FreezingProxy in front of the shared server: frozen, it accepts
connections and forwards nothing, which is what a SIGSTOPped server looks like to its clients,
without stopping the server every other test run uses. Each wait is bounded by `BOUND`, far above
the store's own timeouts, so the old behaviour (a hang of a minute or more) fails the test rather
than stalling the suite.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient

from edgeproxy.admin.app import create_admin_app
from edgeproxy.admin.auth import TokenAuthenticator
from edgeproxy.config.model import NodeConfig, TokenConfig
from edgeproxy.dataplane.metrics import Metrics
from edgeproxy.domain.model import Network, Role
from edgeproxy.node.status import StaticStatus
from edgeproxy.service.truststore import Truststore
from edgeproxy.store import Store, StoreUnavailable, open_store
from support.freezer import FreezingProxy

BOUND = 30.0  # seconds; the store's bounds below are 1 s
TIMEOUTS = {"connect_timeout": 1.0, "statement_timeout": 1.0}


@pytest.fixture
async def proxy(postgres_url: str) -> AsyncIterator[tuple[FreezingProxy, str]]:
    target = urlsplit(postgres_url)
    freezer = FreezingProxy(target.hostname or "127.0.0.1", target.port or 5432)
    port = await freezer.start()
    yield freezer, target._replace(netloc=f"{target.username}@127.0.0.1:{port}").geturl()
    await freezer.close()


@pytest.fixture
async def hung_store(proxy: tuple[FreezingProxy, str]) -> AsyncIterator[Store]:
    """A store on the proxy, opened while it forwards; the test freezes it."""
    store = open_store(proxy[1], **TIMEOUTS)
    await store.open()
    yield store
    proxy[0].thaw()
    async with asyncio.timeout(BOUND):
        await store.close()


async def _read_tx(store: Store) -> None:
    async with store.transaction(write=False) as tx:
        await tx.revision()


async def _write_tx(store: Store) -> None:
    async with store.transaction(write=True) as tx:
        await tx.revision()


CALLS: dict[str, Callable[[Store], Awaitable[Any]]] = {
    "revision": lambda store: store.revision(),
    "read-transaction": _read_tx,
    "write-transaction": _write_tx,
    "wait-for-change": lambda store: store.wait_for_change(-1, 1.0),
}


@pytest.mark.postgres
@pytest.mark.parametrize("call", list(CALLS))
async def test_every_store_call_on_a_hung_postgres_is_unavailable(
    proxy: tuple[FreezingProxy, str], hung_store: Store, call: str
) -> None:
    await CALLS[call](hung_store)  # the twin: forwarding, the call answers
    proxy[0].freeze()
    for _ in range(2):  # again: the pool holds no connection wedged by the first attempt
        with pytest.raises(StoreUnavailable, match="timed out"):
            async with asyncio.timeout(BOUND):
                await CALLS[call](hung_store)
    proxy[0].thaw()
    async with asyncio.timeout(BOUND):
        await CALLS[call](hung_store)  # and the store recovers by itself


@pytest.mark.postgres
async def test_opening_a_store_on_a_hung_postgres_is_unavailable(
    proxy: tuple[FreezingProxy, str],
) -> None:
    proxy[0].freeze()
    store = open_store(proxy[1], **TIMEOUTS)
    with pytest.raises(StoreUnavailable):
        async with asyncio.timeout(BOUND):
            await store.open()
    async with asyncio.timeout(BOUND):
        await store.close()


@pytest.mark.postgres
async def test_the_admin_api_answers_503_while_postgres_hangs(
    proxy: tuple[FreezingProxy, str],
    hung_store: Store,
    aiohttp_client: Callable[..., Awaitable[TestClient]],
) -> None:
    token = "hung-admin-token"
    authenticator = TokenAuthenticator(
        (TokenConfig("ops", Role.ADMIN, hashlib.sha256(token.encode()).hexdigest()),)
    )
    app = create_admin_app(Truststore.build(hung_store), authenticator)
    client = await aiohttp_client(app)
    headers = {"Authorization": f"Bearer {token}"}
    path = "/mtls-edge-truststore/v2/ca-sets"
    assert (await client.get(path, headers=headers)).status == 200  # the twin
    proxy[0].freeze()
    for method, body in (("GET", None), ("POST", {"caSetName": "during-the-hang"})):
        async with asyncio.timeout(BOUND):
            reply = await client.request(method, path, headers=headers, json=body)
            problem = await reply.json(content_type=None)
        assert (reply.status, problem["type"].rsplit("/", 1)[1]) == (503, "store-unavailable")


@pytest.mark.postgres
async def test_readiness_says_unreachable_while_postgres_hangs(
    proxy: tuple[FreezingProxy, str], hung_store: Store, tmp_path: Path
) -> None:
    metrics = Metrics()
    node = NodeConfig("admin-1", Network.STAGING, ("admin",), tmp_path / "snap.json")
    # The probe's own deadline is well above the store's: the store must give up first, and
    # the probe must not be wedged by a connection the store left behind.
    status = StaticStatus(node, hung_store, metrics, probe_timeout=BOUND / 2)
    assert await status.probe() is True
    proxy[0].freeze()
    for _ in range(2):
        async with asyncio.timeout(BOUND):
            assert await status.probe() is False
    readiness = status.ready()
    assert not readiness.ready
    assert "timed out" in readiness.reasons[0]
    assert b"edgeproxy_store_reachable 0.0" in metrics.render()[0]


# -- SQLite: a lock another process holds ----------------------------------------------------


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.mark.parametrize("call", ["write-transaction"])
async def test_a_sqlite_write_lock_held_elsewhere_is_unavailable(
    sqlite_path: Path, call: str
) -> None:
    store = open_store(f"sqlite:///{sqlite_path}", statement_timeout=0.2)
    await store.open()
    other = sqlite3.connect(sqlite_path, isolation_level=None)
    try:
        await CALLS[call](store)  # the twin: nobody else holds the lock
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable, match="locked"):
            async with asyncio.timeout(BOUND):
                await CALLS[call](store)
        # Reads go on under WAL while the other process writes.
        await CALLS["read-transaction"](store)
        other.execute("ROLLBACK")
        await CALLS[call](store)
    finally:
        other.close()
        await store.close()
