"""CA set use cases (docs/management.md): create, list, read and delete sets, and their history.
Each checks the rules and runs in one transaction."""

from __future__ import annotations

from dataclasses import dataclass

from edgeproxy.domain import rules
from edgeproxy.domain.errors import Conflict, NotFound, ValidationError
from edgeproxy.domain.model import (
    ActivationStatus,
    Activity,
    ActivityType,
    CaSet,
    CaSetStatus,
    Network,
)
from edgeproxy.domain.rules import Liveness
from edgeproxy.service.edge_shared import store_associations
from edgeproxy.service.shared import (
    Actor,
    Clock,
    associations_of,
    ca_set_or_404,
    in_use_extra,
    live_ca_set,
)
from edgeproxy.store import Store


@dataclass(frozen=True)
class DeleteStatus:
    status: ActivationStatus
    ca_set: CaSet


class CaSets:
    def __init__(self, store: Store, clock: Clock, liveness: Liveness) -> None:
        self._store = store
        self._clock = clock
        self._liveness = liveness

    async def create_ca_set(self, actor: Actor, name: str, description: str | None) -> CaSet:
        rules.check_ca_set_name(name)
        rules.check_description(description)
        now = self._clock()
        async with self._store.transaction(write=True) as tx:
            if await tx.find_live_ca_set(name) is not None:
                raise Conflict("ca-set-name-taken", f"a CA set named {name!r} already exists")
            if await tx.count_live_ca_sets() >= rules.MAX_CA_SETS:
                raise ValidationError(
                    "ca-set-limit-reached", f"at most {rules.MAX_CA_SETS} CA sets may exist"
                )
            await tx.bump_revision()
            ca_set = await tx.insert_ca_set(name, description, actor.name, now)
            await tx.record_activity(ca_set.id, ActivityType.CREATE_CA_SET, actor.name, now)
            return ca_set

    async def list_ca_sets(
        self, *, name_prefix: str | None = None, activated_on: Network | None = None
    ) -> list[CaSet]:
        async with self._store.transaction(write=False) as tx:
            sets = await tx.list_ca_sets()
        return [
            s
            for s in sets
            if (name_prefix is None or s.name.startswith(name_prefix))
            and (activated_on is None or s.active_version(activated_on) is not None)
        ]

    async def get_ca_set(self, set_id: int) -> CaSet:
        async with self._store.transaction(write=False) as tx:
            return await ca_set_or_404(tx, set_id)

    async def delete_ca_set(self, actor: Actor, set_id: int) -> DeleteStatus:
        """Start an asynchronous soft delete; the reconciler finishes it (docs/management.md
        Deletion)."""
        now = self._clock()
        async with self._store.transaction(write=True) as tx:
            ca_set = await live_ca_set(tx, set_id)
            if ca_set.status is CaSetStatus.DELETING:
                raise Conflict("ca-set-delete-in-progress", "the CA set is already being deleted")
            active = [n for n in Network if ca_set.active_version(n) is not None]
            if active:
                raise Conflict(
                    "ca-set-is-active",
                    "the CA set has an active version on "
                    + ", ".join(n.value for n in active)
                    + "; deactivate it first",
                )
            rules.check_no_activation_in_flight(await tx.in_progress_activations(set_id))
            nodes = await tx.list_nodes()
            users = associations_of(ca_set, nodes, now, self._liveness)
            users += await store_associations(tx, ca_set, nodes, now, self._liveness)
            if users:
                raise Conflict(
                    "ca-set-in-use",
                    "edge certificates still bind this CA set",
                    extra=in_use_extra(users),
                )
            await tx.bump_revision()
            await tx.request_delete(set_id, actor.name, now)
            await tx.record_activity(set_id, ActivityType.DELETE_CA_SET, actor.name, now)
            return _delete_status(await ca_set_or_404(tx, set_id))

    async def delete_status(self, set_id: int) -> DeleteStatus:
        ca_set = await self.get_ca_set(set_id)
        if ca_set.delete_requested_at is None:
            raise NotFound("no-delete-request", "no deletion was requested for this CA set")
        return _delete_status(ca_set)

    async def list_activities(self, set_id: int) -> list[Activity]:
        async with self._store.transaction(write=False) as tx:
            await ca_set_or_404(tx, set_id)
            return await tx.list_activities(set_id)


def _delete_status(ca_set: CaSet) -> DeleteStatus:
    if ca_set.status is CaSetStatus.DELETED:
        return DeleteStatus(ActivationStatus.COMPLETE, ca_set)
    if ca_set.status is CaSetStatus.DELETING:
        return DeleteStatus(ActivationStatus.IN_PROGRESS, ca_set)
    return DeleteStatus(ActivationStatus.FAILED, ca_set)
