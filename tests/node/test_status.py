"""The status listener (docs/api.md) over a real loopback socket: each endpoint's 200 and its 503
twin."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edgeproxy.config.model import HostPort, NodeConfig, StatusConfig
from edgeproxy.dataplane.metrics import Metrics
from edgeproxy.dataplane.status import NodeStatus, Readiness, TrustStatus
from edgeproxy.domain.model import Network
from edgeproxy.node.status import StaticStatus, StatusRole
from edgeproxy.store import Store
from edgeproxy.tls.session import Reason

LOOPBACK = StatusConfig(HostPort("127.0.0.1", 0))


@dataclass
class Source:
    """A StatusSource whose answers the test sets (the edge role's real one comes later)."""

    metrics: Metrics = field(default_factory=Metrics)
    readiness: Readiness = field(default_factory=lambda: Readiness(ready=True))

    def ready(self) -> Readiness:
        return self.readiness

    def status(self) -> NodeStatus:
        return NodeStatus(
            node="edge-1",
            network=Network.STAGING,
            roles=("edge",),
            store_reachable=True,
            trust=TrustStatus(
                revision=7,
                source="store",
                applied_at=datetime(2026, 1, 1, tzinfo=UTC),
                versions={"partners": 3},
                errors={},
                crls={},
            ),
        )


async def serve(source: Any) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    role = StatusRole(LOOPBACK, source)
    await role.start()
    try:
        async with aiohttp.ClientSession() as session:
            yield f"http://127.0.0.1:{role.port}", session
    finally:
        await role.stop()


@pytest.fixture
def source() -> Source:
    return Source()


@pytest.fixture
async def client(source: Source) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    async for pair in serve(source):
        yield pair


async def test_healthz_answers_ok(client: tuple[str, aiohttp.ClientSession]) -> None:
    base, http = client
    async with http.get(f"{base}/healthz") as response:
        assert response.status == 200
        assert await response.text() == "ok\n"


async def test_unknown_path_and_method_are_refused(
    client: tuple[str, aiohttp.ClientSession],
) -> None:
    base, http = client
    async with http.get(f"{base}/nope") as response:
        assert response.status == 404
    async with http.post(f"{base}/healthz") as response:
        assert response.status == 405


async def test_metrics_serves_the_sources_registry(
    client: tuple[str, aiohttp.ClientSession], source: Source
) -> None:
    source.metrics.handshake_failed("api", Network.STAGING, Reason.NO_CERTIFICATE, 0.01)
    base, http = client
    async with http.get(f"{base}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    values = {
        (s.name, s.labels.get("reason")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert values[("edgeproxy_tls_handshakes_total", "no_certificate")] == 1
    assert ("edgeproxy_tls_handshakes_total", "unknown_ca") not in values


async def test_readyz_200_lists_fail_closed_bindings(
    client: tuple[str, aiohttp.ClientSession], source: Source
) -> None:
    source.readiness = Readiness(ready=True, fail_closed=("api",))
    base, http = client
    async with http.get(f"{base}/readyz") as response:
        assert response.status == 200
        body = await response.json()
    assert body == {"ready": True, "failClosed": ["api"]}


async def test_readyz_503_names_its_reasons(
    client: tuple[str, aiohttp.ClientSession], source: Source
) -> None:
    source.readiness = Readiness(ready=False, reasons=("trust state not loaded for api",))
    base, http = client
    async with http.get(f"{base}/readyz") as response:
        assert response.status == 503
        body = await response.json()
    assert body == {"ready": False, "failClosed": [], "reasons": ["trust state not loaded for api"]}


async def test_readyz_503_without_details_still_gives_a_reason(
    client: tuple[str, aiohttp.ClientSession], source: Source
) -> None:
    source.readiness = Readiness(ready=False)
    base, http = client
    async with http.get(f"{base}/readyz") as response:
        assert response.status == 503
        assert (await response.json())["reasons"]


async def test_status_is_the_sources_json(client: tuple[str, aiohttp.ClientSession]) -> None:
    base, http = client
    async with http.get(f"{base}/status") as response:
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"
        assert await response.json() == {
            "node": "edge-1",
            "network": "STAGING",
            "roles": ["edge"],
            "storeReachable": True,
            "trust": {
                "revision": 7,
                "source": "store",
                "appliedAt": "2026-01-01T00:00:00+00:00",
                "versions": {"partners": 3},
                "errors": {},
                "crls": {},
            },
            "edgeCertificates": [],
            "connections": 0,
            "workers": [],
        }


async def test_stopped_role_no_longer_listens() -> None:
    role = StatusRole(LOOPBACK, Source())
    await role.start()
    port = role.port
    await role.stop()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(f"http://127.0.0.1:{port}/healthz")


# -- StaticStatus: the admin-only node, against a real SQLite store -------------------------------

NODE = NodeConfig("admin-1", Network.PRODUCTION, ("admin",), Path("unused.snapshot.json"))


async def test_static_status_ready_while_the_store_answers(store: Store) -> None:
    status = StaticStatus(NODE, store, Metrics(), probe_interval=60)
    await status.start()
    try:
        async for base, http in serve(status):
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 200
                assert await response.json() == {"ready": True, "failClosed": []}
            async with http.get(f"{base}/status") as response:
                body = await response.json()
            async with http.get(f"{base}/metrics") as response:
                assert "edgeproxy_store_reachable 1.0" in await response.text()
    finally:
        await status.stop()
    assert body["node"] == "admin-1"
    assert body["network"] == "PRODUCTION"
    assert body["storeReachable"] is True
    # The same shape as an edge node's, with nothing of the edge role in it.
    assert (body["trust"], body["edgeCertificates"], body["workers"]) == (None, [], [])


async def test_static_status_not_ready_once_the_store_is_gone(store: Store) -> None:
    status = StaticStatus(NODE, store, Metrics(), probe_interval=60)
    await status.start()
    try:
        await store.close()
        assert await status.probe() is False
        async for base, http in serve(status):
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 503
                body = await response.json()
            async with http.get(f"{base}/status") as response:
                store_reachable = (await response.json())["storeReachable"]
            async with http.get(f"{base}/metrics") as response:
                assert "edgeproxy_store_reachable 0.0" in await response.text()
    finally:
        await status.stop()
    assert body["ready"] is False
    assert "store unreachable" in body["reasons"][0]
    assert store_reachable is False
    assert "not open" in body["reasons"][0]


async def test_static_status_recovers_when_the_store_comes_back(store: Store) -> None:
    status = StaticStatus(NODE, store, Metrics(), probe_interval=60)
    await store.close()
    assert await status.probe() is False
    assert status.ready().ready is False
    await store.open()
    assert await status.probe() is True
    assert status.ready().as_json() == {"ready": True, "failClosed": []}


async def test_static_status_background_probe_notices_the_store_going_away(store: Store) -> None:
    status = StaticStatus(NODE, store, Metrics(), probe_interval=0.01)
    await status.start()
    try:
        assert status.ready().ready is True
        await store.close()
        async with asyncio.timeout(5):
            while status.ready().ready:
                await asyncio.sleep(0.01)
    finally:
        await status.stop()
