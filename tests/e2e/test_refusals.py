"""Refused clients: the reason is in the access log and in `edgeproxy_tls_handshakes_total`
(docs/dataplane.md,
docs/operations.md), for every way a client certificate can fail, including the wrong network's
version and a
force-deactivated set (fail closed, docs/management.md)."""

from __future__ import annotations

import pytest

from support.admin import ApiError
from support.origin import RecordingOrigin

from .clients import aget, refused
from .conftest import AccessLog, MakeFiles, Running, StartNode
from .pki import E2ePki

pytestmark = pytest.mark.slow


async def assert_refused_for(
    running: Running,
    pki: E2ePki,
    access_log: AccessLog,
    client_name: str | None,
    reason: str,
    edge: str = "api",
    sni: str = "api.test",
) -> None:
    verifications = {"edge_certificate": edge, "result": "failure", "reason": reason}
    before = await running.status.metrics()
    client = getattr(pki, client_name) if client_name else None
    await refused(pki, running.port, sni, client)
    after = await running.status.metrics()
    assert after.handshakes(reason, edge) == before.handshakes(reason, edge) + 1
    name = "edgeproxy_client_cert_verifications_total"
    assert after.value(name, **verifications) == before.value(name, **verifications) + 1
    records = [
        r for r in access_log.records("handshake") if getattr(r, "edge_certificate", None) == edge
    ]
    assert records, "no access-log line for the failed handshake"
    assert records[-1].verify_reason == reason
    assert records[-1].verify_result == "FAILED"
    assert records[-1].sni == sni


@pytest.mark.parametrize(
    ("client_name", "reason"),
    [
        (None, "no_certificate"),
        ("bob", "unknown_ca"),  # CA B is not in the active version
        ("expired", "expired"),
        ("carol_alone", "unknown_ca"),  # the intermediate is neither sent nor trusted
    ],
)
async def test_refused_client_is_logged_and_counted_with_its_reason(
    node: Running,
    pki: E2ePki,
    origin: RecordingOrigin,
    access_log: AccessLog,
    client_name: str | None,
    reason: str,
) -> None:
    await assert_refused_for(node, pki, access_log, client_name, reason)
    assert "/refused" not in origin.paths()
    # The twin: the same node accepts a valid client right after.
    assert (await aget(pki, node.port, "api.test", pki.alice)).status == 200


async def test_version_active_only_on_another_network_is_not_enforced(
    pki: E2ePki, node_files: MakeFiles, start_node: StartNode, access_log: AccessLog
) -> None:
    running = await start_node(node_files())  # a STAGING node
    admin = running.admin
    _, status = await running.status.json("/status")
    set_id = await admin.create_set()
    version = await admin.create_version(set_id, [pki.ca_a.pem])
    production = await admin.activate(set_id, version, "PRODUCTION")
    # No live PRODUCTION node: there is nobody to wait for (docs/management.md).
    assert production["activationStatus"] == "COMPLETE"
    await running.status.wait_revision_after(status["trust"]["revision"])

    await assert_refused_for(running, pki, access_log, "alice", "no_active_version")

    staging = await admin.settle(set_id, await admin.activate(set_id, version, "STAGING"))
    assert staging["activationStatus"] == "COMPLETE"
    assert (await aget(pki, running.port, "api.test", pki.alice)).status == 200


async def test_force_deactivated_set_fails_closed_and_readyz_says_so(
    node: Running, pki: E2ePki, origin: RecordingOrigin, access_log: AccessLog
) -> None:
    status, ready = await node.status.json("/readyz")
    assert (status, ready["failClosed"]) == (200, [])

    # A live node binds the set: deactivation needs force (docs/management.md emergency stop).
    with pytest.raises(ApiError) as refused_deactivation:
        await node.admin.deactivate(node.set_id, node.version)
    assert refused_deactivation.value.status == 409
    assert refused_deactivation.value.body["type"].endswith("/ca-set-in-use")
    assert (await aget(pki, node.port, "api.test", pki.alice)).status == 200

    stop = await node.admin.deactivate(node.set_id, node.version, force=True)
    final = await node.admin.settle(node.set_id, stop)
    assert (final["activationStatus"], final["percentComplete"]) == ("COMPLETE", 100)

    await assert_refused_for(node, pki, access_log, "alice", "no_active_version")
    status, ready = await node.status.json("/readyz")
    assert status == 200
    assert ready["ready"] is True
    assert sorted(ready["failClosed"]) == ["api", "forward", "other"]
    metrics = await node.status.metrics()
    assert metrics.value("edgeproxy_trust_active_version", ca_set="partners") == 0
    # Request-mode bindings complete the handshake and then deny or forward with that reason.
    denied = await aget(pki, node.port, "other.test", pki.alice, "/closed")
    assert (denied.status, denied.json()["reason"]) == (403, "no_active_version")
    assert (await aget(pki, node.port, "forward.test", pki.alice, "/closed")).status == 200
    assert origin.last("/closed").one("X-Client-Cert-Verify") == "FAILED:no_active_version"

    # Activating a version again ends the emergency stop.
    again = await node.admin.settle(node.set_id, await node.admin.activate(node.set_id, 1))
    assert again["activationStatus"] == "COMPLETE"
    assert (await aget(pki, node.port, "api.test", pki.alice)).status == 200
    _, ready = await node.status.json("/readyz")
    assert ready["failClosed"] == []
