"""Convergence through HTTP (docs/management.md "Convergence", docs/api.md): an activation names
the nodes it expects and what each did, completes only when each applied it or was declared lost
(silent past fleet.node_lost_after, or forgotten with DELETE /nodes/{nodeName}), and says so; the
admin role's convergence metrics (docs/operations.md)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from edgeproxy.admin.metrics import ConvergenceMetrics
from edgeproxy.domain.model import Network
from edgeproxy.domain.rules import NODE_LOST_AFTER
from support.admin import Api
from support.pki import Pki

from .steps import Clock, Fleet, activate, new_set, new_version


@pytest.fixture
async def partners(api: Api, pki: Pki) -> tuple[int, int, int]:
    """A set "partners" with two versions: (set id, 1, 2)."""
    set_id = await new_set(api, "partners")
    return set_id, await new_version(api, set_id, pki.ca("One").pem), 2


def _nodes(activation: dict) -> tuple[list[str], ...]:
    return tuple(
        activation[k]
        for k in ("expectedNodes", "pendingNodes", "appliedNodes", "failedNodes", "lostNodes")
    )


def _link(activation: dict) -> str:
    return str(activation["activationLink"]).removeprefix("/mtls-edge-truststore/v2")


async def test_an_activation_names_the_nodes_it_waits_for(
    api: Api, fleet: Fleet, partners: tuple[int, int, int]
) -> None:
    set_id, first, _ = partners
    await fleet.report("edge-1")
    await fleet.report("edge-2", seen_ago=timedelta(minutes=1))  # not live, still expected
    await fleet.report("edge-gone", seen_ago=NODE_LOST_AFTER + timedelta(seconds=1))
    await fleet.report("prod-1", network=Network.PRODUCTION)
    activation = await activate(api, set_id, first)
    assert _nodes(activation) == (["edge-1", "edge-2"], ["edge-1", "edge-2"], [], [], [])
    assert (activation["activationStatus"], activation["warnings"]) == ("IN_PROGRESS", [])

    await fleet.apply_all("edge-1")
    half = (await api.get(_link(activation), as_="viewer")).body
    assert _nodes(half) == (["edge-1", "edge-2"], ["edge-2"], ["edge-1"], [], [])
    assert (half["activationStatus"], half["percentComplete"]) == ("IN_PROGRESS", 50)
    listed = (await api.get(f"/ca-sets/{set_id}/activations")).body["activations"][0]
    assert _nodes(listed) == _nodes(half)


async def test_with_no_edge_node_it_completes_with_a_warning(
    api: Api, partners: tuple[int, int, int]
) -> None:
    set_id, first, _ = partners
    activation = await activate(api, set_id, first)
    assert (activation["activationStatus"], activation["percentComplete"]) == ("COMPLETE", 100)
    assert _nodes(activation) == ([], [], [], [], [])
    assert [w["type"] for w in activation["warnings"]] == ["no-edge-nodes"]


async def test_a_silent_node_keeps_it_in_progress_until_declared_lost(
    api: Api, fleet: Fleet, clock: Clock, partners: tuple[int, int, int]
) -> None:
    set_id, first, _ = partners
    await fleet.report("edge-1")
    await fleet.report("edge-stopped")
    activation = await activate(api, set_id, first)
    await fleet.apply_all("edge-1")
    clock.advance(timedelta(seconds=60))  # no longer live: it still counts
    await fleet.apply_all("edge-1")
    held = (await api.get(_link(activation))).body
    assert (held["activationStatus"], held["pendingNodes"]) == ("IN_PROGRESS", ["edge-stopped"])
    nodes = {n["name"]: n for n in (await api.get("/nodes")).body["nodes"]}
    assert (nodes["edge-stopped"]["live"], nodes["edge-stopped"]["lost"]) == (False, False)

    clock.advance(NODE_LOST_AFTER)
    await fleet.apply_all("edge-1")
    done = (await api.get(_link(activation))).body
    assert (done["activationStatus"], done["lostNodes"]) == ("COMPLETE", ["edge-stopped"])
    assert [w["type"] for w in done["warnings"]] == ["nodes-lost"]
    assert "edge-stopped (silent since" in done["warnings"][0]["detail"]
    nodes = {n["name"]: n for n in (await api.get("/nodes")).body["nodes"]}
    assert nodes["edge-stopped"]["lost"] is True


async def test_forgetting_a_node_completes_what_waited_for_it(
    api: Api, fleet: Fleet, partners: tuple[int, int, int]
) -> None:
    set_id, first, _ = partners
    await fleet.report("edge-1")
    for worker in ("wk/w0", "wk/w1"):
        await fleet.report(worker)
    activation = await activate(api, set_id, first)
    await fleet.apply_all("edge-1")
    await fleet.apply_all("wk/w0")

    refused = await api.delete("/nodes/wk", as_="editor")
    assert refused.status == 403
    forgot = await api.delete("/nodes/wk")
    assert forgot.status == 200, forgot.body
    assert forgot.body["forgottenNodes"] == ["wk/w0", "wk/w1"]
    [change] = forgot.body["changes"]
    assert (change["kind"], change["status"], change["lostNodes"]) == (
        "activation",
        "COMPLETE",
        ["wk/w1"],
    )
    done = (await api.get(_link(activation))).body
    assert (done["activationStatus"], done["percentComplete"]) == ("COMPLETE", 100)
    assert (done["appliedNodes"], done["lostNodes"]) == (["edge-1", "wk/w0"], ["wk/w1"])
    assert "wk/w1 (forgotten by ops-admin)" in done["warnings"][0]["detail"]
    names = [n["name"] for n in (await api.get("/nodes")).body["nodes"]]
    assert names == ["edge-1"]

    missing = await api.delete("/nodes/wk")
    assert (missing.status, missing.type) == (404, "node-not-found")
    bad = await api.delete("/nodes/-x")
    assert (bad.status, bad.type) == (400, "invalid-path-parameter")


async def test_a_node_that_cannot_apply_is_listed_failed(
    api: Api, fleet: Fleet, partners: tuple[int, int, int]
) -> None:
    set_id, first, _ = partners
    await fleet.report("edge-1")
    await fleet.report("edge-2")
    activation = await activate(api, set_id, first)
    await fleet.apply_all("edge-1", errors={"partners": "context build"})
    failed = (await api.get(_link(activation))).body
    assert failed["activationStatus"] == "FAILED"
    assert (failed["failedNodes"], failed["pendingNodes"]) == (["edge-1"], ["edge-2"])
    assert failed["failureReason"] == "edge-1: context build"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_show_desired_and_applied_versions_and_the_oldest_change(
    api: Api, fleet: Fleet, clock: Clock, partners: tuple[int, int, int]
) -> None:
    set_id, first, _ = partners
    collector = ConvergenceMetrics(fleet.truststore)
    registry = CollectorRegistry()
    registry.register(collector)
    assert generate_latest(registry) == b""  # nothing read yet: nothing shown

    staging = (("ca_set", "partners"), ("network", "STAGING"))
    await fleet.report("edge-1")
    await activate(api, set_id, first)
    clock.advance(timedelta(seconds=30))
    await collector.refresh()
    metrics = _samples(generate_latest(registry).decode())
    assert metrics["edgeproxy_ca_set_desired_version", staging] == first
    # The node has not reported the set yet: no applied series, nobody behind.
    assert ("edgeproxy_ca_set_applied_version", staging) not in metrics
    assert metrics["edgeproxy_rollouts_in_flight", (("kind", "activation"),)] == 1
    oldest = metrics["edgeproxy_rollout_oldest_in_flight_seconds", (("kind", "activation"),)]
    assert oldest >= 30

    # edge-1 enforces version 0 (no version) of the set: behind.
    node = await fleet.report("edge-1", binds=("partners",))
    await fleet.truststore.fleet.report_node(replace(node, applied_versions={"partners": None}))
    await collector.refresh()
    metrics = _samples(generate_latest(registry).decode())
    assert metrics["edgeproxy_ca_set_applied_version", staging] == 0
    assert metrics["edgeproxy_ca_set_nodes_behind", staging] == 1

    revision = await fleet.truststore.fleet.store.revision()
    await fleet.truststore.fleet.report_node(
        replace(node, applied_revision=revision, applied_versions={"partners": first})
    )
    await fleet.reconcile()
    await fleet.report("edge-old", seen_ago=NODE_LOST_AFTER * 2)
    await collector.refresh()
    metrics = _samples(generate_latest(registry).decode())
    assert metrics["edgeproxy_ca_set_applied_version", staging] == first
    assert metrics["edgeproxy_ca_set_nodes_behind", staging] == 0
    assert metrics["edgeproxy_rollouts_in_flight", (("kind", "activation"),)] == 0
    assert metrics["edgeproxy_rollout_oldest_in_flight_seconds", (("kind", "activation"),)] == 0
    assert metrics["edgeproxy_edge_nodes_lost", (("network", "STAGING"),)] == 1
    assert metrics["edgeproxy_nodes_forgotten_total", ()] == 0
    await api.delete("/nodes/edge-old")
    await collector.refresh()
    metrics = _samples(generate_latest(registry).decode())
    assert metrics["edgeproxy_nodes_forgotten_total", ()] == 1
    assert metrics["edgeproxy_edge_nodes_lost", (("network", "STAGING"),)] == 0
    production = (("ca_set", "partners"), ("network", "PRODUCTION"))
    assert metrics["edgeproxy_ca_set_desired_version", production] == 0
