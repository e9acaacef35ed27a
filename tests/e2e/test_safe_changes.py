"""Safe trust changes end to end (docs/management.md "Safe trust changes"): real clients are seen
and recorded by the node, a version without one client's CA reports that client before it is
activated, the activation is refused until acknowledged, the client is then refused and counted
lost, and a rollback lets it in again. Across two nodes on PostgreSQL the impact adds up what
each node saw."""

from __future__ import annotations

import hashlib
import os
import secrets
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from edgeproxy.dataplane.edge import EdgeRole
from edgeproxy.domain.clients import ClientObservation, describe
from edgeproxy.domain.model import Network
from edgeproxy.domain.secrets import generate_kek
from edgeproxy.service.fleet import FleetService
from edgeproxy.store import open_store
from support.admin import ApiError
from support.nodes import poll

from . import test_edge_certificates as edge_certs
from .clients import aget, refused
from .conftest import MakeFiles, Running, StartNode
from .pki import Client, E2ePki

pytestmark = pytest.mark.slow

POSTGRES = os.environ.get("EDGEPROXY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _print(client: Client) -> str:
    return hashlib.sha256(client.der).hexdigest()


async def _impact(node: Running, version: int) -> Any:
    path = f"/ca-sets/{node.set_id}/versions/{version}/impact"
    reply = await node.admin.api.get(path, params={"network": "STAGING"})
    assert reply.status == 200, reply.body
    return reply.body


async def _seen_by_the_fleet(node: Running, version: int, count: int) -> Any:
    """The impact of `version` once the nodes' batches hold `count` clients."""

    async def recorded() -> Any:
        impact = await _impact(node, version)
        return impact if impact["clientsObserved"] == count else None

    return await poll(recorded, f"{count} clients recorded")


async def test_impact_409_activation_lost_client_and_rollback(
    node_files: MakeFiles, start_node: StartNode, pki: E2ePki
) -> None:
    node = await start_node(node_files())
    node.set_id, both = await node.admin.publish([pki.ca_a.pem, pki.ca_b.pem])
    for client, n in ((pki.alice, 2), (pki.bob, 1)):
        for _ in range(n):
            assert (await aget(pki, node.port, "api.test", client)).status == 200
    only_b = await node.admin.create_version(node.set_id, [pki.ca_b.pem])

    impact = await _seen_by_the_fleet(node, only_b, 2)
    (alice,) = impact["wouldBeRefused"]
    assert alice["fingerprintSha256"] == _print(pki.alice)
    assert alice["subject"] == pki.alice.leaf.subject.rfc4514_string()
    assert (alice["reason"], alice["handshakes"], alice["requests"]) == ("unknown_ca", 2, 2)
    assert alice["nodes"] == ["e2e-edge"]
    assert impact["newlyAccepted"] == []

    with pytest.raises(ApiError) as refusal:
        await node.admin.activate(node.set_id, only_b, acknowledge=False)
    assert refusal.value.status == 409
    assert [c["fingerprintSha256"] for c in refusal.value.body["wouldBeRefused"]] == [
        _print(pki.alice)
    ]
    ca_set = await node.admin.call("GET", f"/ca-sets/{node.set_id}")
    assert ca_set["stagingVersion"] == both  # nothing changed
    assert (await aget(pki, node.port, "api.test", pki.alice)).status == 200

    started = await node.admin.activate(node.set_id, only_b, acknowledge=True)
    final = await node.admin.settle(node.set_id, started)
    assert final["activationStatus"] == "COMPLETE"
    await refused(pki, node.port, "api.test", pki.alice)
    metrics = await node.status.metrics()
    assert metrics.value("edgeproxy_lost_clients_total", reason="unknown_ca") == 1
    assert (await aget(pki, node.port, "api.test", pki.bob)).status == 200

    rollback = await node.admin.call(
        "POST", f"/ca-sets/{node.set_id}/rollback", {"network": "STAGING"}, expect=(202,)
    )
    assert rollback["version"] == both
    assert (await node.admin.settle(node.set_id, rollback))["activationStatus"] == "COMPLETE"
    assert (await aget(pki, node.port, "api.test", pki.alice)).status == 200


@pytest.fixture
async def postgres_store() -> AsyncIterator[str]:
    """A fresh PostgreSQL database of this test (the nodes migrate it), dropped afterwards."""
    try:
        admin = await asyncpg.connect(POSTGRES, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        if os.environ.get("CI"):  # CI must prove the PostgreSQL case (as tests/store does)
            pytest.fail(f"PostgreSQL is unreachable: {type(error).__name__}")
        pytest.skip(f"PostgreSQL is unreachable: {type(error).__name__}")
    name = f"edgeproxy_impact_{secrets.token_hex(6)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(POSTGRES)._replace(path=f"/{name}").geturl()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_two_nodes_on_postgresql_each_saw_one_client_impact_shows_both(
    node_files: MakeFiles, start_node: StartNode, pki: E2ePki, postgres_store: str
) -> None:
    first = await start_node(node_files(name="edge-one", store_url=postgres_store))
    second = await start_node(
        node_files(name="edge-two", roles=("edge",), store_url=postgres_store)
    )
    first.set_id, _ = await first.admin.publish([pki.ca_a.pem, pki.ca_b.pem])
    assert (await aget(pki, first.port, "api.test", pki.alice)).status == 200
    assert (await aget(pki, second.port, "api.test", pki.bob)).status == 200
    only_root = await first.admin.create_version(first.set_id, [pki.root.pem])

    impact = await _seen_by_the_fleet(first, only_root, 2)
    refused_by = {c["fingerprintSha256"]: c["nodes"] for c in impact["wouldBeRefused"]}
    assert refused_by == {_print(pki.alice): ["edge-one"], _print(pki.bob): ["edge-two"]}


async def test_switched_off_a_node_records_nothing_and_takes_its_records_out(
    node_files: MakeFiles, start_node: StartNode, pki: E2ePki
) -> None:
    first_files = node_files()
    first = await start_node(first_files)
    first.set_id, version = await first.admin.publish([pki.ca_a.pem, pki.ca_b.pem])
    store_url = f"sqlite:///{first_files.database}"
    # What a node named "quiet" wrote while its records were on.
    now = datetime.now(UTC)
    subject, issuer, sans = describe(pki.alice.der)
    record = ClientObservation(
        Network.STAGING, "api", "partners", "quiet", _print(pki.alice), subject, issuer, sans,
        (pki.alice.der,), now, now, 1, 1, "accepted",
    )  # fmt: skip
    store = open_store(store_url)
    await store.open()
    try:
        await FleetService(store).record_clients(
            "quiet", [record], now=now, window=timedelta(days=7), keep=10
        )
    finally:
        await store.close()
    assert (await _impact(first, version))["clientsObserved"] == 1

    quiet = await start_node(
        node_files(
            name="quiet",
            roles=("edge",),
            store_url=store_url,
            client_records={"enabled": False},
        )
    )
    edge = quiet.in_process.edge
    assert isinstance(edge, EdgeRole)
    assert edge.clients is None
    assert (await aget(pki, quiet.port, "api.test", pki.bob)).status == 200

    async def gone() -> bool:
        return (await _impact(first, version))["clientsObserved"] == 0

    await poll(gone, "the switched-off node's records to leave the store")


async def test_a_store_managed_binding_is_recorded_and_judged_the_same(
    node_files: MakeFiles, start_node: StartNode, pki: E2ePki, tmp_path: Path
) -> None:
    kek = tmp_path / "kek.b64"
    kek.write_text(generate_kek())
    kek.chmod(0o600)
    node = await start_node(node_files(edges=[], kek_file=kek))
    node.set_id, _ = await node.admin.publish([pki.ca_a.pem, pki.ca_b.pem])
    await edge_certs._create(node, edge_certs._issue(pki))
    assert (await edge_certs._bind(node))["status"] == "COMPLETE"

    async def admitted() -> bool:
        try:
            return (await edge_certs.served(pki, node.port, pki.alice))[0] == 200
        except (ssl.SSLError, ConnectionError):
            return False

    await poll(admitted, "the store-managed binding to admit alice")
    only_b = await node.admin.create_version(node.set_id, [pki.ca_b.pem])
    (alice,) = (await _seen_by_the_fleet(node, only_b, 1))["wouldBeRefused"]
    assert (alice["fingerprintSha256"], alice["edgeCertificates"]) == (_print(pki.alice), ["shop"])
