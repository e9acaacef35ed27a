"""Activations through the real admin API reach the running node (docs/architecture.md change
propagation, docs/management.md):
build aside, swap one reference, new handshakes only; progress reported back to the activation."""

from __future__ import annotations

import asyncio

import pytest

from support.nodes import poll
from support.origin import RecordingOrigin

from .clients import REFUSALS, aget, connection, exchange, refused
from .conftest import Running
from .pki import E2ePki

pytestmark = pytest.mark.slow


async def test_hot_reload_closes_the_open_connection_it_no_longer_trusts_and_judges_new_ones(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    edge_role, port = node.in_process.edge, node.port
    reloads = (await node.status.metrics()).value("edgeproxy_trust_reloads_total", result="success")
    conn = connection(pki, node.port, "api.test", pki.alice)
    try:
        assert (await asyncio.to_thread(exchange, conn, "/keep-1")).status == 200

        # Version 2 trusts CA B instead of CA A.
        version = await node.admin.create_version(node.set_id, [pki.ca_b.pem])
        final = await node.admin.settle(
            node.set_id, await node.admin.activate(node.set_id, version)
        )
        assert (final["activationStatus"], final["percentComplete"]) == ("COMPLETE", 100)

        # The open connection is judged again: alice is no longer trusted, so it is closed
        # (tests/e2e/test_open_connections.py has the connections a change keeps).
        async def closed() -> float:
            metrics = await node.status.metrics()
            return metrics.value("edgeproxy_connections_closed_total", reason="unknown_ca")

        await poll(closed, "the open connection to be closed")
        with pytest.raises(REFUSALS):
            await asyncio.to_thread(exchange, conn, "/keep-2")
        assert "/keep-2" not in origin.paths()
    finally:
        conn.close()

    before = (await node.status.metrics()).handshakes("unknown_ca", "api")
    await refused(pki, node.port, "api.test", pki.alice)
    assert (await node.status.metrics()).handshakes("unknown_ca", "api") == before + 1
    response = await aget(pki, node.port, "api.test", pki.bob, "/bob")
    assert response.status == 200
    assert origin.last("/bob").one("X-Client-Cert-Verify") == "SUCCESS"

    # No restart: same role object, same port, one more successful reload.
    assert node.in_process.edge is edge_role
    assert node.port == port
    metrics = await node.status.metrics()
    assert metrics.value("edgeproxy_trust_reloads_total", result="success") > reloads
    assert metrics.value("edgeproxy_trust_active_version", ca_set="partners") == 2
    _, status = await node.status.json("/status")
    assert status["trust"]["versions"] == {"partners": 2}


async def test_activation_is_in_progress_until_the_node_applied_it_then_complete(
    node: Running, pki: E2ePki
) -> None:
    version = await node.admin.create_version(node.set_id, [pki.ca_a.pem, pki.ca_b.pem])
    started = await node.admin.activate(node.set_id, version)
    # A live STAGING node binds the set: nothing is complete before it reports.
    assert (started["activationStatus"], started["percentComplete"]) == ("IN_PROGRESS", 0)

    final = await node.admin.settle(node.set_id, started)
    assert (final["activationStatus"], final["percentComplete"]) == ("COMPLETE", 100)
    assert final["failureReason"] is None
    metrics = await node.status.metrics()
    assert metrics.value("edgeproxy_trust_apply_latency_seconds_count") >= 1
    assert metrics.value("edgeproxy_trust_active_version", ca_set="partners") == version
    # COMPLETE means applied: the node already enforces version 2, no further wait.
    assert (await aget(pki, node.port, "api.test", pki.bob)).status == 200
    nodes = await node.admin.call("GET", "/nodes")
    (me,) = [n for n in nodes["nodes"] if n["name"] == "e2e-edge"]
    assert me["appliedVersions"] == {"partners": version}


async def test_activation_on_a_network_without_live_nodes_completes_at_once(
    node: Running, pki: E2ePki
) -> None:
    started = await node.admin.activate(node.set_id, node.version, "PRODUCTION")
    assert (started["activationStatus"], started["percentComplete"]) == ("COMPLETE", 100)
    ca_set = await node.admin.call("GET", f"/ca-sets/{node.set_id}")
    assert (ca_set["stagingVersion"], ca_set["productionVersion"]) == (1, 1)


async def test_activation_a_node_cannot_apply_fails_and_the_network_rolls_back(
    node: Running, pki: E2ePki
) -> None:
    # The node's edge certificate file is damaged on disk: a new context cannot be built.
    chain = node.node.files.server_chain
    good = chain.read_bytes()
    chain.write_text("not a certificate\n")
    version = await node.admin.create_version(node.set_id, [pki.ca_b.pem])
    final = await node.admin.settle(node.set_id, await node.admin.activate(node.set_id, version))
    assert final["activationStatus"] == "FAILED"
    assert "e2e-edge" in final["failureReason"]

    async def rolled_back() -> bool:
        ca_set = await node.admin.call("GET", f"/ca-sets/{node.set_id}")
        return ca_set["stagingVersion"] == 1

    await poll(rolled_back, "the STAGING version to return to 1")
    # The node kept enforcing version 1 throughout.
    assert (await aget(pki, node.port, "api.test", pki.alice)).status == 200
    await refused(pki, node.port, "api.test", pki.bob)
    metrics = await node.status.metrics()
    assert metrics.value("edgeproxy_trust_reloads_total", result="failure") >= 1
    assert metrics.value("edgeproxy_trust_active_version", ca_set="partners") == 1

    # Once the file is repaired, the same version activates: the fleet converges forward too.
    chain.write_bytes(good)
    again = await node.admin.settle(node.set_id, await node.admin.activate(node.set_id, version))
    assert again["activationStatus"] == "COMPLETE"
    assert (await aget(pki, node.port, "api.test", pki.bob)).status == 200
