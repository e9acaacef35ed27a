"""Activation use cases (docs/management.md): make a version active on a network, or remove it."""

from __future__ import annotations

from datetime import datetime

from edgeproxy.domain import rules
from edgeproxy.domain.certificates import Check, ca_list_size, revalidate_version
from edgeproxy.domain.errors import BadRequest, Conflict, FieldError, NotFound, ValidationError
from edgeproxy.domain.model import (
    Activation,
    ActivationStatus,
    ActivationType,
    ActivityType,
    CaSet,
    Network,
    Node,
    Rollout,
    Version,
)
from edgeproxy.domain.rollout import start_rollout
from edgeproxy.domain.rules import Liveness
from edgeproxy.service.edge_shared import store_associations
from edgeproxy.service.impact import SafeChanges
from edgeproxy.service.shared import (
    Actor,
    Clock,
    associations_of,
    ca_set_or_404,
    editable_ca_set,
    in_use_extra,
    version_or_404,
)
from edgeproxy.store import Store, Tx

# The rollout kind of activations and deactivations (domain/rollout.py).
ACTIVATION = "activation"


class Activations:
    def __init__(
        self, store: Store, clock: Clock, liveness: Liveness, safety: SafeChanges | None = None
    ) -> None:
        self._store = store
        self._clock = clock
        self._liveness = liveness
        self._safety = safety

    async def _refusals(
        self, set_id: int, number: int, network: Network, acknowledged: bool
    ) -> int | None:
        """How many seen clients the version would refuse (None: none). Unacknowledged: 409
        `activation-would-refuse-clients`, with the list, and nothing changes."""
        if self._safety is None:
            return None
        impact = await self._safety.impact(set_id, number, network)
        refused = impact.would_be_refused
        if not refused:
            return None
        if not acknowledged:
            raise Conflict(
                "activation-would-refuse-clients",
                f"version {number} would refuse {len(refused)} client(s) seen on {network} "
                "that the version in force accepts; pass acknowledgeImpact=true to go ahead",
                extra={"wouldBeRefused": [a.as_dict() for a in refused]},
            )
        return len(refused)

    async def activate(
        self,
        actor: Actor,
        set_id: int,
        number: int,
        network: Network,
        *,
        acknowledge_impact: bool = False,
    ) -> Activation:
        # Judged before the write transaction (verifying chains takes a thread, not a lock).
        refusals = await self._refusals(set_id, number, network, acknowledge_impact)
        now = self._clock()
        async with self._store.transaction(write=True) as tx:
            ca_set = await editable_ca_set(tx, set_id)
            version = await version_or_404(tx, set_id, number)
            rules.check_no_activation_in_flight(await tx.in_progress_activations(set_id))
            if ca_set.active_version(network) == number:
                raise Conflict(
                    "version-already-active", f"version {number} is already active on {network}"
                )
            self._revalidate(version, now)
            nodes = await tx.list_nodes()
            self._check_ca_list_fits(ca_set, version, network, nodes, now)
            warnings: tuple[FieldError, ...] = ()
            if network is Network.PRODUCTION and not await tx.was_activated(
                set_id, number, Network.STAGING
            ):
                warnings = (
                    FieldError(
                        "not-tested-on-staging",
                        f"version {number} was never active on STAGING; consider testing there",
                    ),
                )
            if refusals:
                warnings += (
                    FieldError(
                        "refuses-seen-clients",
                        f"version {number} refuses {refusals} client(s) seen on {network} "
                        "(acknowledged)",
                    ),
                )
            await tx.lock_version(set_id, number, now)
            return await self._switch(
                tx,
                actor,
                ca_set,
                number,
                network,
                ActivationType.ACTIVATE,
                nodes,
                now,
                warnings,
                refusals,
            )

    async def deactivate(
        self, actor: Actor, set_id: int, number: int, network: Network, *, force: bool
    ) -> Activation:
        now = self._clock()
        async with self._store.transaction(write=True) as tx:
            ca_set = await editable_ca_set(tx, set_id)
            await version_or_404(tx, set_id, number)
            rules.check_no_activation_in_flight(await tx.in_progress_activations(set_id))
            if ca_set.active_version(network) != number:
                raise Conflict("version-not-active", f"version {number} is not active on {network}")
            nodes = await tx.list_nodes()
            found = associations_of(ca_set, nodes, now, self._liveness)
            found += await store_associations(tx, ca_set, nodes, now, self._liveness)
            users = [u for u in found if u.network is network]
            if users and not force:
                raise Conflict(
                    "ca-set-in-use",
                    f"{len(users)} edge certificate(s) on {network} bind this CA set; they would "
                    "refuse every client. Pass force=true for an emergency stop.",
                    extra=in_use_extra(users),
                )
            return await self._switch(
                tx, actor, ca_set, number, network, ActivationType.DEACTIVATE, nodes, now, ()
            )

    async def _switch(
        self,
        tx: Tx,
        actor: Actor,
        ca_set: CaSet,
        number: int,
        network: Network,
        type_: ActivationType,
        nodes: list[Node],
        now: datetime,
        warnings: tuple[FieldError, ...],
        refusals: int | None = None,
    ) -> Activation:
        """Make the change visible to the fleet (a new revision) and record it."""
        activate = type_ is ActivationType.ACTIVATE
        revision = await tx.bump_revision()
        await tx.set_active_version(ca_set.id, network, number if activate else None)
        rollout = await tx.insert_rollout(
            start_rollout(
                kind=ACTIVATION,
                network=network,
                revision=revision,
                watch=ca_set.name,
                nodes=nodes,
                now=now,
                liveness=self._liveness,
            )
        )
        activation = await tx.insert_activation(
            set_id=ca_set.id,
            version=number,
            network=network,
            type=type_,
            status=rollout.status,
            by=actor.name,
            at=now,
            revision=revision,
            previous_version=ca_set.active_version(network),
            warnings=warnings,
            rollout_id=rollout.id,
        )
        await tx.record_activity(
            ca_set.id,
            ActivityType.ACTIVATE_CA_SET_VERSION
            if activate
            else ActivityType.DEACTIVATE_CA_SET_VERSION,
            actor.name,
            now,
            network=network,
            version=number,
            acknowledged_refusals=refusals,
        )
        return activation

    def _revalidate(self, version: Version, now: datetime) -> None:
        """Certificates are checked again at activation: one may have expired since upload."""
        report = revalidate_version(version, now=now, check=Check.ACTIVATE)
        if not report.ok:
            raise BadRequest(
                "certificate-validation-failure-activate",
                f"version {version.version} cannot be activated: "
                f"{len(report.errors)} problem(s) with its certificates",
                report.errors,
            )

    def _check_ca_list_fits(
        self, ca_set: CaSet, version: Version, network: Network, nodes: list[Node], now: datetime
    ) -> None:
        size = ca_list_size(version.certificates)
        if size <= rules.MAX_CA_LIST_BYTES:
            return
        senders = [
            b.edge_certificate
            for n in self._liveness.live_edge_nodes(nodes, now)
            if n.network is network
            for b in n.bindings
            if b.ca_set == ca_set.name and b.send_ca_list_to_client
        ]
        if senders:
            raise ValidationError(
                "ca-list-too-large",
                f"the CA list of version {version.version} is {size} bytes, over the "
                f"{rules.MAX_CA_LIST_BYTES} a TLS handshake can carry, and edge certificates "
                f"{', '.join(sorted(set(senders)))} send it to clients",
            )

    async def list_activations(self, set_id: int) -> list[Activation]:
        async with self._store.transaction(write=False) as tx:
            await ca_set_or_404(tx, set_id)
            return await tx.list_activations(set_id)

    async def get_activation(self, set_id: int, number: int, activation_id: int) -> Activation:
        async with self._store.transaction(write=False) as tx:
            activation = await tx.get_activation(activation_id)
        if activation is None or (activation.ca_set_id, activation.version) != (set_id, number):
            raise NotFound("activation-not-found", f"no activation {activation_id} here")
        return activation


class ActivationRollouts:
    """The activation side of a rollout (service/reconcile.py calls it when one moved): progress
    and outcome copied to the activation; a failure puts the network's previous state back, so
    the fleet converges to it."""

    kind = ACTIVATION

    async def rollout_moved(self, tx: Tx, rollout: Rollout, now: datetime) -> None:
        activation = await tx.activation_of_rollout(rollout.id)
        if activation is None:
            return
        failed = rollout.status is ActivationStatus.FAILED
        await tx.update_activation(
            activation.id,
            status=rollout.status,
            percent_complete=activation.percent_complete if failed else rollout.percent_complete,
            at=rollout.completed_at,
            failure_reason=rollout.failure_reason,
        )
        if failed:
            restore = (
                activation.previous_version
                if activation.type is ActivationType.ACTIVATE
                else activation.version
            )
            await tx.bump_revision()
            await tx.set_active_version(activation.ca_set_id, activation.network, restore)
