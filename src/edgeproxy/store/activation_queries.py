"""Queries of activations and the activity history."""

from __future__ import annotations

from datetime import datetime

from edgeproxy.domain.errors import FieldError
from edgeproxy.domain.model import (
    Activation,
    ActivationStatus,
    ActivationType,
    Activity,
    ActivityType,
    Network,
)
from edgeproxy.store import codec
from edgeproxy.store.rollout_queries import ROLLOUT_COLUMNS
from edgeproxy.store.tx_base import TxBase

# Every activation read joins its rollout (none for one recorded before rollouts existed).
_SELECT = (
    f"SELECT a.*, {ROLLOUT_COLUMNS} FROM activations a LEFT JOIN rollouts r ON r.id = a.rollout_id"
)


class ActivationQueries(TxBase):
    # -- activations ---------------------------------------------------------------------------

    async def insert_activation(
        self,
        *,
        set_id: int,
        version: int,
        network: Network,
        type: ActivationType,
        status: ActivationStatus,
        by: str,
        at: datetime,
        revision: int,
        previous_version: int | None,
        warnings: tuple[FieldError, ...],
        rollout_id: int | None = None,
    ) -> Activation:
        completed = at if status is not ActivationStatus.IN_PROGRESS else None
        percent = 100 if status is ActivationStatus.COMPLETE else 0
        activation_id = await self._db.fetchval(
            "INSERT INTO activations (ca_set_id, version, network, type, status, created_by, "
            "created_at, revision, previous_version, completed_at, percent_complete, warnings, "
            "rollout_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
            "RETURNING id",
            set_id,
            version,
            network.value,
            type.value,
            status.value,
            by,
            at,
            revision,
            previous_version,
            completed,
            percent,
            codec.field_errors_to_json(warnings),
            rollout_id,
        )
        activation = await self.get_activation(int(activation_id))
        assert activation is not None
        return activation

    async def get_activation(self, activation_id: int) -> Activation | None:
        row = await self._db.fetchrow(f"{_SELECT} WHERE a.id = $1", activation_id)
        return codec.activation_from_row(row) if row else None

    async def list_activations(self, set_id: int) -> list[Activation]:
        rows = await self._db.fetch(f"{_SELECT} WHERE a.ca_set_id = $1 ORDER BY a.id DESC", set_id)
        return [codec.activation_from_row(r) for r in rows]

    async def latest_activation(self, set_id: int, network: Network) -> Activation | None:
        """The newest activation or deactivation of the set on `network`: what the trust view
        needs on every sync, without reading the set's whole history."""
        row = await self._db.fetchrow(
            f"{_SELECT} WHERE a.ca_set_id = $1 AND a.network = $2 ORDER BY a.id DESC LIMIT 1",
            set_id,
            network.value,
        )
        return codec.activation_from_row(row) if row else None

    async def in_progress_activations(self, set_id: int | None = None) -> list[Activation]:
        rows = await self._db.fetch(
            f"{_SELECT} WHERE a.status = $1 AND (a.ca_set_id = $2 OR $3) ORDER BY a.id",
            ActivationStatus.IN_PROGRESS.value,
            set_id if set_id is not None else -1,
            set_id is None,
        )
        return [codec.activation_from_row(r) for r in rows]

    async def was_activated(self, set_id: int, version: int, network: Network) -> bool:
        """Whether the version was ever (successfully or still in flight) activated there."""
        value = await self._db.fetchval(
            "SELECT count(*) FROM activations WHERE ca_set_id = $1 AND version = $2 "
            "AND network = $3 AND type = $4 AND status <> $5",
            set_id,
            version,
            network.value,
            ActivationType.ACTIVATE.value,
            ActivationStatus.FAILED.value,
        )
        return int(value) > 0

    async def activation_of_rollout(self, rollout_id: int) -> Activation | None:
        row = await self._db.fetchrow(f"{_SELECT} WHERE a.rollout_id = $1", rollout_id)
        return codec.activation_from_row(row) if row else None

    async def update_activation(
        self,
        activation_id: int,
        *,
        status: ActivationStatus,
        percent_complete: int,
        at: datetime | None,
        failure_reason: str | None = None,
    ) -> None:
        await self._db.execute(
            "UPDATE activations SET status = $1, percent_complete = $2, completed_at = $3, "
            "failure_reason = $4 WHERE id = $5",
            status.value,
            percent_complete,
            at,
            failure_reason,
            activation_id,
        )

    # -- activities ----------------------------------------------------------------------------

    async def record_activity(
        self,
        set_id: int,
        type: ActivityType,
        by: str,
        at: datetime,
        *,
        network: Network | None = None,
        version: int | None = None,
        edge_certificate: str | None = None,
        acknowledged_refusals: int | None = None,
    ) -> None:
        await self._db.execute(
            "INSERT INTO activities (ca_set_id, type, network, version, at, actor, "
            "edge_certificate, acknowledged_refusals) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            set_id,
            type.value,
            network.value if network else None,
            version,
            at,
            by,
            edge_certificate,
            acknowledged_refusals,
        )

    async def list_activities(self, set_id: int) -> list[Activity]:
        rows = await self._db.fetch(
            "SELECT * FROM activities WHERE ca_set_id = $1 ORDER BY id DESC", set_id
        )
        return [codec.activity_from_row(r) for r in rows]
