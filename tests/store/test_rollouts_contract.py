"""Rollouts in the store (domain/rollout.py, migration 003): written and read back the same on
both back ends, joined to the activation that owns them, and in-flight activations of a store
migrated from before rollouts existed get one whose nodes the next reconcile captures."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edgeproxy.domain.model import (
    FORGOTTEN,
    ActivationStatus,
    Network,
    NodeOutcome,
    NodeProgress,
    Rollout,
)
from edgeproxy.store import Store, open_store
from edgeproxy.store.migrations import migrations

from .test_contract import activate_row

T0 = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def _rollout(revision: int) -> Rollout:
    nodes = {
        "edge-1": NodeOutcome(NodeProgress.PENDING),
        "edge-2": NodeOutcome(NodeProgress.FAILED, "context build failed"),
    }
    return Rollout("activation", Network.PRODUCTION, revision, "partners", T0, nodes)


async def test_a_rollout_round_trips_and_leaves_the_in_flight_list_when_done(
    store: Store,
) -> None:
    async with store.transaction(write=True) as tx:
        revision = await tx.bump_revision()
        stored = await tx.insert_rollout(_rollout(revision))
        set_id = (await tx.insert_ca_set("partners", None, "alice", T0)).id
        activation = await activate_row(
            tx, set_id, 1, Network.PRODUCTION, revision=revision, rollout_id=stored.id
        )
    assert stored.id > 0
    assert stored == replace(_rollout(revision), id=stored.id)
    assert activation.rollout == stored
    async with store.transaction(write=True) as tx:
        assert await tx.in_flight_rollouts() == [stored]
        assert (await tx.activation_of_rollout(stored.id)) == activation
        done = replace(
            stored,
            status=ActivationStatus.COMPLETE,
            completed_at=T0 + timedelta(seconds=3),
            nodes={"edge-1": NodeOutcome(NodeProgress.LOST, "forgotten by bob", FORGOTTEN)},
        )
        await tx.update_rollout(done)
    async with store.transaction(write=False) as tx:
        assert await tx.in_flight_rollouts() == []
        assert await tx.get_rollout(stored.id) == done
        listed = await tx.list_activations(set_id)
    assert [a.rollout for a in listed] == [done]


async def test_an_activation_in_flight_before_the_migration_gets_a_rollout(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)"
        )
        for number, name, sql in migrations("sqlite"):
            if number < 3:
                db.executescript(sql)
                db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (number, name))
        db.execute(
            "INSERT INTO ca_sets (name, status, created_by, created_at) "
            "VALUES ('partners', 'NOT_DELETED', 'alice', ?)",
            (T0.isoformat(),),
        )
        for revision, status in ((4, "COMPLETE"), (7, "IN_PROGRESS")):
            db.execute(
                "INSERT INTO activations (ca_set_id, version, network, type, status, created_by, "
                "created_at, revision, warnings) VALUES (1, 1, 'STAGING', 'ACTIVATE', ?, 'alice', "
                "?, ?, '[]')",
                (status, T0.isoformat(), revision),
            )
    store = open_store(f"sqlite:///{path}")
    await store.open()
    try:
        async with store.transaction(write=False) as tx:
            finished, in_flight = sorted(await tx.list_activations(1), key=lambda a: a.id)
            rollouts = await tx.in_flight_rollouts()
    finally:
        await store.close()
    assert finished.rollout is None
    assert in_flight.rollout is not None
    assert rollouts == [in_flight.rollout]
    assert (in_flight.rollout.revision, in_flight.rollout.watch, in_flight.rollout.nodes) == (
        7,
        "partners",
        None,
    )
