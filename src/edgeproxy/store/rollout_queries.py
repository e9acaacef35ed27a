"""Queries of rollouts: the nodes a change waits for and what each did (domain/rollout.py)."""

from __future__ import annotations

from edgeproxy.domain.model import ActivationStatus, Rollout
from edgeproxy.store import codec
from edgeproxy.store.tx_base import TxBase

# A rollout's columns under the `r_` prefix, for the change rows that join their rollout.
ROLLOUT_COLUMNS = (
    "r.id AS r_id, r.kind AS r_kind, r.network AS r_network, r.revision AS r_revision, "
    "r.watch AS r_watch, r.status AS r_status, r.started_at AS r_started_at, "
    "r.completed_at AS r_completed_at, r.nodes AS r_nodes"
)


class RolloutQueries(TxBase):
    async def insert_rollout(self, rollout: Rollout) -> Rollout:
        rollout_id = await self._db.fetchval(
            "INSERT INTO rollouts (kind, network, revision, watch, status, started_at, "
            "completed_at, nodes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            rollout.kind,
            rollout.network.value,
            rollout.revision,
            rollout.watch,
            rollout.status.value,
            rollout.started_at,
            rollout.completed_at,
            codec.rollout_nodes_to_json(rollout.nodes),
        )
        stored = await self.get_rollout(int(rollout_id))
        assert stored is not None
        return stored

    async def get_rollout(self, rollout_id: int) -> Rollout | None:
        row = await self._db.fetchrow("SELECT * FROM rollouts WHERE id = $1", rollout_id)
        return codec.rollout_from_row(row) if row else None

    async def in_flight_rollouts(self) -> list[Rollout]:
        rows = await self._db.fetch(
            "SELECT * FROM rollouts WHERE status = $1 ORDER BY id",
            ActivationStatus.IN_PROGRESS.value,
        )
        return [codec.rollout_from_row(r) for r in rows]

    async def update_rollout(self, rollout: Rollout) -> None:
        await self._db.execute(
            "UPDATE rollouts SET status = $1, completed_at = $2, nodes = $3 WHERE id = $4",
            rollout.status.value,
            rollout.completed_at,
            codec.rollout_nodes_to_json(rollout.nodes),
            rollout.id,
        )
