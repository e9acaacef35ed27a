"""Mutual-authentication bindings (docs/management.md "Bindings"): which CA set an edge
certificate trusts on one network, and how. A change converges on the edge nodes of that network
like an activation: a rollout (domain/rollout.py) records the nodes it waits for, and the
reconciler follows their reports (`BindingRollouts`)."""

from __future__ import annotations

from datetime import datetime

from edgeproxy.domain import rules
from edgeproxy.domain.certificates import ca_list_size
from edgeproxy.domain.edge_certificates import check_mutual_auth
from edgeproxy.domain.edge_model import (
    BindingChange,
    ChangeType,
    EdgeBinding,
    MutualAuth,
    edge_error_key,
)
from edgeproxy.domain.errors import Conflict, FieldError, NotFound, ValidationError
from edgeproxy.domain.model import (
    ActivationStatus,
    ActivityType,
    CaSet,
    CaSetStatus,
    Network,
    Rollout,
)
from edgeproxy.domain.rollout import RolloutView, start_rollout
from edgeproxy.domain.rules import Liveness
from edgeproxy.service.shared import Actor, Clock
from edgeproxy.store import Store, Tx

# The rollout kind of binding changes (domain/rollout.py).
BINDING = "binding"


class Bindings:
    def __init__(self, store: Store, clock: Clock, liveness: Liveness) -> None:
        self._store = store
        self._clock = clock
        self._liveness = liveness

    async def bind(
        self, actor: Actor, name: str, network: Network, auth: MutualAuth
    ) -> BindingChange:
        check_mutual_auth(auth)
        now = self._clock()
        async with self._store.transaction(write=True) as tx:
            await _stored_edge(tx, name)
            ca_set = await _bindable_set(tx, auth.ca_set, network)
            await self._check_ca_list(tx, ca_set, network, auth)
            await _no_change_in_flight(tx, name, network)
            previous = await tx.get_binding(name, network)
            revision = await tx.bump_revision()
            await tx.put_binding(name, network, auth, actor.name, now)
            await tx.record_activity(
                ca_set.id,
                ActivityType.BIND_EDGE_CERTIFICATE,
                actor.name,
                now,
                network=network,
                edge_certificate=name,
            )
            return await self._record(
                tx, actor, name, network, ChangeType.BIND, auth.ca_set, previous, revision, now
            )

    async def unbind(self, actor: Actor, name: str, network: Network) -> BindingChange:
        now = self._clock()
        async with self._store.transaction(write=True) as tx:
            await _stored_edge(tx, name)
            previous = await _binding_or_404(tx, name, network)
            await _no_change_in_flight(tx, name, network)
            revision = await tx.bump_revision()
            await tx.delete_binding(name, network)
            ca_set = await tx.find_live_ca_set(previous.auth.ca_set)
            if ca_set is not None:
                await tx.record_activity(
                    ca_set.id,
                    ActivityType.UNBIND_EDGE_CERTIFICATE,
                    actor.name,
                    now,
                    network=network,
                    edge_certificate=name,
                )
            return await self._record(
                tx,
                actor,
                name,
                network,
                ChangeType.UNBIND,
                previous.auth.ca_set,
                previous,
                revision,
                now,
            )

    async def get_binding(
        self, name: str, network: Network
    ) -> tuple[EdgeBinding, BindingChange | None]:
        async with self._store.transaction(write=False) as tx:
            await _stored_edge(tx, name)
            binding = await _binding_or_404(tx, name, network)
            return binding, await tx.latest_binding_change(name, network)

    async def get_change(self, change_id: int) -> BindingChange:
        async with self._store.transaction(write=False) as tx:
            change = await tx.get_binding_change(change_id)
        if change is None:
            raise NotFound("binding-change-not-found", f"no binding change {change_id}")
        return change

    async def _record(
        self,
        tx: Tx,
        actor: Actor,
        name: str,
        network: Network,
        type_: ChangeType,
        ca_set: str,
        previous: EdgeBinding | None,
        revision: int,
        now: datetime,
    ) -> BindingChange:
        """The change and its rollout: it waits for the edge nodes of the network (those not
        lost), each reporting a failure under `edge_error_key` (domain/rollout.py)."""
        rollout = await tx.insert_rollout(
            start_rollout(
                kind=BINDING,
                network=network,
                revision=revision,
                watch=edge_error_key(name),
                nodes=await tx.list_nodes(),
                now=now,
                liveness=self._liveness,
            )
        )
        return await tx.insert_binding_change(
            name=name,
            network=network,
            type=type_,
            ca_set=ca_set,
            previous=previous.auth if previous is not None else None,
            rollout=rollout,
            by=actor.name,
            at=now,
        )

    async def _check_ca_list(
        self, tx: Tx, ca_set: CaSet, network: Network, auth: MutualAuth
    ) -> None:
        number = ca_set.active_version(network)
        if not auth.send_ca_list_to_client or number is None:
            return
        version = await tx.get_version(ca_set.id, number)
        size = ca_list_size(version.certificates) if version is not None else 0
        if size > rules.MAX_CA_LIST_BYTES:
            raise ValidationError(
                "ca-list-too-large",
                f"the CA list of {ca_set.name!r} version {number} is {size} bytes, over the "
                f"{rules.MAX_CA_LIST_BYTES} a TLS handshake can carry; bind it without "
                "sendCaListToClient",
                (FieldError("ca-list-too-large", "too large", "/sendCaListToClient"),),
            )


async def _stored_edge(tx: Tx, name: str) -> None:
    if await tx.get_edge_certificate(name) is None:
        raise NotFound(
            "edge-certificate-not-found",
            f"no store-managed edge certificate named {name!r} (one declared in a node's "
            "config file is bound there)",
        )


async def _binding_or_404(tx: Tx, name: str, network: Network) -> EdgeBinding:
    binding = await tx.get_binding(name, network)
    if binding is None:
        raise NotFound(
            "binding-not-found",
            f"edge certificate {name!r} has no mutual authentication on {network.value}",
        )
    return binding


async def _bindable_set(tx: Tx, name: str, network: Network) -> CaSet:
    """The set must exist and have a version active on the network: a typo or an unactivated
    set is refused here, instead of failing closed on every node."""
    ca_set = await tx.find_live_ca_set(name)
    pointer = (FieldError("ca-set-not-active", "not active", "/caSetName"),)
    if ca_set is None or ca_set.status is CaSetStatus.DELETING:
        state = "no CA set" if ca_set is None else "the CA set being deleted"
        raise Conflict(
            "ca-set-not-active",
            f"caSetName {name!r} names {state}; nothing to bind on {network.value}",
            pointer,
            extra={"caSetName": name},
        )
    if ca_set.active_version(network) is None:
        raise Conflict(
            "ca-set-not-active",
            f"CA set {name!r} has no version active on {network.value}; activate one there "
            "before binding it",
            pointer,
            extra={"caSetName": name, "caSetId": ca_set.id},
        )
    return ca_set


async def _no_change_in_flight(tx: Tx, name: str, network: Network) -> None:
    latest = await tx.latest_binding_change(name, network)
    if latest is not None and latest.status is ActivationStatus.IN_PROGRESS:
        raise Conflict(
            "binding-change-in-progress",
            f"binding change {latest.id} of {name!r} on {network.value} is still in progress "
            f"(pending: {', '.join(RolloutView.of(latest.rollout).pending) or 'none'})",
            extra={"changeId": latest.id},
        )


class BindingRollouts:
    """The binding side of a rollout (service/reconcile.py calls it when one moved): its status
    copied to the change; a failure puts the previous binding back, so the network converges to
    it."""

    kind = BINDING

    async def rollout_moved(self, tx: Tx, rollout: Rollout, now: datetime) -> None:
        change = await tx.binding_change_of_rollout(rollout.id)
        if change is None:
            return
        await tx.update_binding_change(
            change.id,
            status=rollout.status,
            at=rollout.completed_at,
            failure_reason=rollout.failure_reason,
        )
        if rollout.status is not ActivationStatus.FAILED:
            return
        await tx.bump_revision()
        if change.previous is None:
            await tx.delete_binding(change.edge_certificate, change.network)
        else:
            await tx.put_binding(
                change.edge_certificate, change.network, change.previous, "reconciler", now
            )
