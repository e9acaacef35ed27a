"""Convergence you can trust (docs/management.md "Convergence"), with real processes: two edge
nodes on one store (SQLite, and PostgreSQL with LISTEN/NOTIFY), one of them stopped (SIGSTOP). The
activation stays IN_PROGRESS with that node pending until it resumes, or until an operator forgets
it; a network without edge nodes completes at once, with a warning."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from support.admin import Admin
from support.nodes import SubprocessNode, poll

from .conftest import MakeFiles, StartNode
from .pki import E2ePki

pytestmark = pytest.mark.slow

EDGES = ("conv-1", "conv-2")
HOLD_POLLS = 5  # how many more times an activation held by a stopped node is looked at


@contextmanager
def stopped(pid: int) -> Iterator[None]:
    """SIGSTOP our own child; SIGCONT it whatever happens."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def _registered(admin: Admin, names: tuple[str, ...]) -> Any:
    async def present() -> Any:
        listed = await admin.call("GET", "/nodes")
        return set(names) <= {n["name"] for n in listed["nodes"] if n["live"]}

    return await poll(present, f"nodes {names} to register")


async def _applied_by(admin: Admin, set_id: int, activation: Any, names: list[str]) -> Any:
    async def applied() -> Any:
        state = await admin.activation(set_id, activation)
        return state if state["appliedNodes"] == names else None

    return await poll(applied, f"{names} to apply activation {activation['activationId']}")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared(request: pytest.FixtureRequest) -> str | None:
    """The store of the three processes: a fresh PostgreSQL database, or (None) the admin node's
    SQLite file."""
    return str(request.getfixturevalue("postgres_url")) if request.param == "postgresql" else None


async def test_a_stopped_node_holds_an_activation_until_it_resumes_or_is_forgotten(
    shared: str | None,
    pki: E2ePki,
    node_files: MakeFiles,
    start_node: StartNode,
    spawn_node: StartNode,
) -> None:
    # The admin role alone in this process; nothing here waits for node_lost_after.
    control = await start_node(
        node_files(
            name="conv-admin",
            roles=("admin",),
            store_url=shared,
            fleet={"node_lost_after": 120.0},
        )
    )
    store = shared or f"sqlite:///{control.node.files.database}"
    edges = [
        await spawn_node(node_files(name=name, roles=("edge",), store_url=store)) for name in EDGES
    ]
    admin = control.admin
    await _registered(admin, EDGES)
    set_id = await admin.create_set()
    first = await admin.create_version(set_id, [pki.ca_a.pem])
    second = await admin.create_version(set_id, [pki.ca_a.pem, pki.ca_b.pem])
    done = await admin.settle(set_id, await admin.activate(set_id, first))
    assert (done["activationStatus"], done["appliedNodes"]) == ("COMPLETE", list(EDGES))

    stopping = edges[1].node
    assert isinstance(stopping, SubprocessNode)
    assert stopping.process is not None
    pid = stopping.process.pid
    with stopped(pid):
        activation = await admin.activate(set_id, second)
        assert activation["pendingNodes"] == list(EDGES)
        state = await _applied_by(admin, set_id, activation, ["conv-1"])
        for _ in range(HOLD_POLLS):
            assert (state["activationStatus"], state["pendingNodes"]) == (
                "IN_PROGRESS",
                ["conv-2"],
            ), state
            assert state["percentComplete"] == 50
            await asyncio.sleep(0.2)
            state = await admin.activation(set_id, activation)

        # The admin node's /metrics shows it: one node behind, still on the first version.
        async def behind() -> Any:
            metrics = await control.status.metrics()
            staging = {"ca_set": "partners", "network": "STAGING"}
            found = (
                metrics.value("edgeproxy_ca_set_desired_version", **staging),
                metrics.value("edgeproxy_ca_set_applied_version", **staging),
                metrics.value("edgeproxy_ca_set_nodes_behind", **staging),
                metrics.value("edgeproxy_rollouts_in_flight", kind="activation"),
            )
            return found if found == (second, first, 1, 1) else None

        await poll(behind, "the convergence metrics to show conv-2 behind")
    resumed = await admin.settle(set_id, activation)
    assert (resumed["activationStatus"], resumed["appliedNodes"], resumed["lostNodes"]) == (
        "COMPLETE",
        list(EDGES),
        [],
    )
    assert resumed["warnings"] == []

    # Again, and this time the operator gives up on the stopped node.
    await _registered(admin, EDGES)
    with stopped(pid):
        activation = await admin.activate(set_id, first)
        await _applied_by(admin, set_id, activation, ["conv-1"])
        forgot = await admin.call("DELETE", "/nodes/conv-2")
        assert forgot["forgottenNodes"] == ["conv-2"]
        final = await admin.settle(set_id, activation)
        assert (final["activationStatus"], final["lostNodes"]) == ("COMPLETE", ["conv-2"])
        assert [w["type"] for w in final["warnings"]] == ["nodes-lost"]
        assert "conv-2 (forgotten by ops)" in final["warnings"][0]["detail"]
    # Resumed, the forgotten node registers again, and the next change waits for it.
    await _registered(admin, EDGES)

    # PRODUCTION has no edge node: complete at once, and the response says nothing was waited for.
    lonely = await admin.activate(set_id, first, "PRODUCTION")
    assert (lonely["activationStatus"], lonely["expectedNodes"]) == ("COMPLETE", [])
    assert [w["type"] for w in lonely["warnings"]] == ["no-edge-nodes"]
