"""Activation progress (docs/management.md "Convergence"): an activation is COMPLETE when every
edge node it expects has applied it or was declared lost; a node that cannot apply it fails it and
the network goes back."""

from __future__ import annotations

from datetime import timedelta

import pytest
import trustme

from edgeproxy.domain.errors import Conflict
from edgeproxy.domain.model import Activation, ActivationStatus, Network, NodeProgress
from edgeproxy.domain.rules import NODE_LOST_AFTER
from edgeproxy.service.fleet import FleetService
from edgeproxy.service.truststore import Truststore

from .conftest import ADMIN, NODE_TTL, FakeClock, draft, edge_node

STAGING, PRODUCTION = Network.STAGING, Network.PRODUCTION


async def new_set(service: Truststore, cas: tuple[trustme.CA, ...], versions: int = 1) -> int:
    """A set named `partners` with `versions` versions, one CA each."""
    set_id = (await service.ca_sets.create_ca_set(ADMIN, "partners", None)).id
    for n in range(versions):
        await service.versions.create_version(ADMIN, set_id, draft(cas[n]))
    return set_id


async def progress(
    service: Truststore, fleet: FleetService, activation: Activation
) -> tuple[ActivationStatus, int]:
    await service.reconciler.reconcile()
    now = await service.activations.get_activation(
        activation.ca_set_id, activation.version, activation.id
    )
    return now.status, now.percent_complete


async def test_staging_activation_completes_as_each_live_node_applies_it(
    service: Truststore, fleet: FleetService, clock: FakeClock, cas
) -> None:
    set_id = await new_set(service, cas)
    start = await fleet.store.revision()
    for name in ("edge-1", "edge-2"):
        await fleet.report_node(edge_node(clock, name, applied_revision=start))
    activation = await service.activations.activate(ADMIN, set_id, 1, STAGING)
    assert (activation.status, activation.percent_complete) == (ActivationStatus.IN_PROGRESS, 0)
    assert activation.revision > start
    assert await progress(service, fleet, activation) == (ActivationStatus.IN_PROGRESS, 0)

    await fleet.report_node(edge_node(clock, "edge-1", applied_revision=activation.revision))
    assert await progress(service, fleet, activation) == (ActivationStatus.IN_PROGRESS, 50)

    await fleet.report_node(edge_node(clock, "edge-2", applied_revision=activation.revision + 2))
    assert await progress(service, fleet, activation) == (ActivationStatus.COMPLETE, 100)
    done = await service.activations.get_activation(set_id, 1, activation.id)
    assert done.completed_at == clock.now
    assert done.failure_reason is None


async def test_a_node_behind_the_activation_revision_has_not_applied_it(
    service: Truststore, fleet: FleetService, clock: FakeClock, cas
) -> None:
    set_id = await new_set(service, cas)
    for name in ("edge-1", "edge-2"):
        await fleet.report_node(edge_node(clock, name))
    activation = await service.activations.activate(ADMIN, set_id, 1, STAGING)
    await fleet.report_node(edge_node(clock, "edge-1", applied_revision=activation.revision - 1))
    await fleet.report_node(edge_node(clock, "edge-2", applied_revision=activation.revision - 1))
    assert await progress(service, fleet, activation) == (ActivationStatus.IN_PROGRESS, 0)


async def test_with_no_live_edge_node_an_activation_completes_at_once(
    service: Truststore, fleet: FleetService, clock: FakeClock, cas
) -> None:
    set_id = await new_set(service, cas)
    # An admin-only node applies no trust state: nobody to wait for.
    await fleet.report_node(edge_node(clock, "admin-1", roles=("admin",)))
    activation = await service.activations.activate(ADMIN, set_id, 1, STAGING)
    assert (activation.status, activation.percent_complete) == (ActivationStatus.COMPLETE, 100)
    assert activation.completed_at == clock.now


async def test_with_a_live_edge_node_an_activation_waits_for_it(
    service: Truststore, fleet: FleetService, clock: FakeClock, cas
) -> None:
    set_id = await new_set(service, cas)
    await fleet.report_node(edge_node(clock, "edge-1", roles=("admin", "edge")))
    activation = await service.activations.activate(ADMIN, set_id, 1, STAGING)
    assert (activation.status, activation.percent_complete) == (ActivationStatus.IN_PROGRESS, 0)
    assert activation.completed_at is None


async def test_production_nodes_do_not_count_for_a_staging_activation(
    service: Truststore, fleet: FleetService, clock: FakeClock, cas
) -> None:
    set_id = await new_set(service, cas)
    await fleet.report_node(edge_node(clock, "edge-s"))
    await fleet.report_node(edge_node(clock, "edge-p", PRODUCTION))
    activation = await service.activations.activate(ADMIN, set_id, 1, STAGING)
    await fleet.report_node(edge_node(clock, "edge-s", applied_revision=activation.revision))
    assert await progress(service, fleet, activation) == (ActivationStatus.COMPLETE, 100)


async def test_a_production_activation_waits_for_production_nodes_only(
    service: Truststore, fleet: FleetService, clock: FakeClock, cas
) -> None:
    set_id = await new_set(service, cas)
    await fleet.report_node(edge_node(clock, "edge-s"))
    await fleet.report_node(edge_node(clock, "edge-p", PRODUCTION))
    activation = await service.activations.activate(ADMIN, set_id, 1, PRODUCTION)
    await fleet.report_node(edge_node(clock, "edge-s", applied_revision=activation.revision))
    assert await progress(service, fleet, activation) == (ActivationStatus.IN_PROGRESS, 0)
    await fleet.report_node(
        edge_node(clock, "edge-p", PRODUCTION, applied_revision=activation.revision)
    )
    assert await progress(service, fleet, activation) == (ActivationStatus.COMPLETE, 100)


async def test_a_lost_node_is_not_expected(
    service: Truststore, fleet: FleetService, clock: FakeClock, cas
) -> None:
    set_id = await new_set(service, cas)
    await fleet.report_node(edge_node(clock, "edge-1"))
    gone = clock.now - NODE_LOST_AFTER - timedelta(seconds=1)
    # Its stale error must not fail the activation either.
    await fleet.report_node(
        edge_node(
            clock, "edge-2", last_seen=gone, applied_revision=99, apply_errors={"partners": "x"}
        )
    )
    activation = await service.activations.activate(ADMIN, set_id, 1, STAGING)
    assert activation.rollout is not None
    assert activation.rollout.expected == ("edge-1",)
    await fleet.report_node(edge_node(clock, "edge-1", applied_revision=activation.revision))
    assert await progress(service, fleet, activation) == (ActivationStatus.COMPLETE, 100)


async def test_a_silent_node_holds_the_activation_until_it_is_declared_lost(
    service: Truststore, fleet: FleetService, clock: FakeClock, cas
) -> None:
    set_id = await new_set(service, cas)
    await fleet.report_node(edge_node(clock, "edge-1"))
    # Past the liveness TTL but not lost: it may still serve the old state, so it is waited for.
    await fleet.report_node(edge_node(clock, "edge-2", last_seen=clock.now - NODE_TTL * 2))
    activation = await service.activations.activate(ADMIN, set_id, 1, STAGING)
    await fleet.report_node(edge_node(clock, "edge-1", applied_revision=activation.revision))
    assert await progress(service, fleet, activation) == (ActivationStatus.IN_PROGRESS, 50)

    clock.advance(NODE_LOST_AFTER)
    await fleet.report_node(edge_node(clock, "edge-1", applied_revision=activation.revision))
    assert await progress(service, fleet, activation) == (ActivationStatus.COMPLETE, 100)
    done = await service.activations.get_activation(set_id, 1, activation.id)
    assert done.rollout is not None
    assert (done.rollout.named(NodeProgress.APPLIED), done.rollout.named(NodeProgress.LOST)) == (
        ("edge-1",),
        ("edge-2",),
    )
    assert [w.type for w in done.rollout.warnings()] == ["nodes-lost"]


async def test_a_node_that_cannot_apply_fails_the_activation_and_the_network_reverts(
    service: Truststore, fleet: FleetService, clock: FakeClock, cas
) -> None:
    set_id = await new_set(service, cas, versions=2)
    first = await service.activations.activate(ADMIN, set_id, 1, STAGING)
    assert first.status is ActivationStatus.COMPLETE
    for name in ("edge-1", "edge-2"):
        await fleet.report_node(edge_node(clock, name, applied_revision=first.revision))
    activation = await service.activations.activate(ADMIN, set_id, 2, STAGING)
    assert activation.previous_version == 1
    assert (await service.ca_sets.get_ca_set(set_id)).staging_version == 2
    await fleet.report_node(edge_node(clock, "edge-1", applied_revision=activation.revision))
    assert await progress(service, fleet, activation) == (ActivationStatus.IN_PROGRESS, 50)

    await fleet.report_node(
        edge_node(
            clock,
            "edge-2",
            applied_revision=activation.revision,
            apply_errors={"partners": "context build failed"},
        )
    )
    before = await fleet.store.revision()
    assert await progress(service, fleet, activation) == (ActivationStatus.FAILED, 50)
    failed = await service.activations.get_activation(set_id, 2, activation.id)
    assert failed.failure_reason == "edge-2: context build failed"
    assert failed.completed_at == clock.now
    # Back to the previous version, under a new revision, so every node converges back to it.
    assert (await service.ca_sets.get_ca_set(set_id)).staging_version == 1
    assert await fleet.store.revision() == before + 1
    view = await fleet.trust_view(STAGING)
    assert view.revision == before + 1
    restored = view.active["partners"]
    assert restored is not None
    assert restored.version == 1
    # Nothing is in flight any more: the set accepts the next activation.
    retry = await service.activations.activate(ADMIN, set_id, 2, STAGING)
    assert retry.status is ActivationStatus.IN_PROGRESS


async def test_errors_for_other_sets_or_older_revisions_do_not_fail_an_activation(
    service: Truststore, fleet: FleetService, clock: FakeClock, cas
) -> None:
    set_id = await new_set(service, cas)
    for name in ("edge-1", "edge-2"):
        await fleet.report_node(edge_node(clock, name))
    activation = await service.activations.activate(ADMIN, set_id, 1, STAGING)
    await fleet.report_node(
        edge_node(
            clock, "edge-1", applied_revision=activation.revision, apply_errors={"other": "bad"}
        )
    )
    # An error reported before the node reached the activation's revision is about older state.
    await fleet.report_node(
        edge_node(
            clock,
            "edge-2",
            applied_revision=activation.revision - 1,
            apply_errors={"partners": "bad"},
        )
    )
    before = await fleet.store.revision()
    assert await progress(service, fleet, activation) == (ActivationStatus.IN_PROGRESS, 50)
    assert (await service.ca_sets.get_ca_set(set_id)).staging_version == 1
    assert await fleet.store.revision() == before


async def test_a_failed_first_activation_leaves_the_network_without_a_version(
    service: Truststore, fleet: FleetService, clock: FakeClock, cas
) -> None:
    set_id = await new_set(service, cas)
    await fleet.report_node(edge_node(clock, "edge-1"))
    activation = await service.activations.activate(ADMIN, set_id, 1, STAGING)
    assert activation.previous_version is None
    await fleet.report_node(
        edge_node(
            clock, "edge-1", applied_revision=activation.revision, apply_errors={"partners": "x"}
        )
    )
    assert await progress(service, fleet, activation) == (ActivationStatus.FAILED, 0)
    assert (await service.ca_sets.get_ca_set(set_id)).staging_version is None
    assert (await fleet.trust_view(STAGING)).active["partners"] is None


async def test_a_failed_deactivation_restores_the_version(
    service: Truststore, fleet: FleetService, clock: FakeClock, cas
) -> None:
    set_id = await new_set(service, cas)
    await service.activations.activate(ADMIN, set_id, 1, STAGING)
    await fleet.report_node(edge_node(clock, "edge-1"))
    deactivation = await service.activations.deactivate(ADMIN, set_id, 1, STAGING, force=False)
    assert deactivation.status is ActivationStatus.IN_PROGRESS
    assert (await service.ca_sets.get_ca_set(set_id)).staging_version is None
    await fleet.report_node(
        edge_node(
            clock,
            "edge-1",
            applied_revision=deactivation.revision,
            apply_errors={"partners": "refused"},
        )
    )
    before = await fleet.store.revision()
    assert await progress(service, fleet, deactivation) == (ActivationStatus.FAILED, 0)
    assert (await service.ca_sets.get_ca_set(set_id)).staging_version == 1
    assert await fleet.store.revision() == before + 1


async def test_a_successful_deactivation_leaves_the_set_without_a_version(
    service: Truststore, fleet: FleetService, clock: FakeClock, cas
) -> None:
    set_id = await new_set(service, cas)
    await service.activations.activate(ADMIN, set_id, 1, STAGING)
    await fleet.report_node(edge_node(clock, "edge-1"))
    deactivation = await service.activations.deactivate(ADMIN, set_id, 1, STAGING, force=False)
    await fleet.report_node(edge_node(clock, "edge-1", applied_revision=deactivation.revision))
    assert await progress(service, fleet, deactivation) == (ActivationStatus.COMPLETE, 100)
    assert (await service.ca_sets.get_ca_set(set_id)).staging_version is None
    assert (await fleet.trust_view(STAGING)).active["partners"] is None


async def test_deactivation_is_refused_while_a_live_node_of_the_network_binds_the_set(
    service: Truststore, fleet: FleetService, clock: FakeClock, cas
) -> None:
    set_id = await new_set(service, cas)
    await service.activations.activate(ADMIN, set_id, 1, STAGING)
    await fleet.report_node(edge_node(clock, "edge-1", binds=("partners",)))
    with pytest.raises(Conflict) as refused:
        await service.activations.deactivate(ADMIN, set_id, 1, STAGING, force=False)
    assert refused.value.type == "ca-set-in-use"
    assert refused.value.extra["associations"] == [
        {"node": "edge-1", "edgeCertificate": "partners-cert", "network": "STAGING"}
    ]
    assert (await service.ca_sets.get_ca_set(set_id)).staging_version == 1


async def test_deactivation_proceeds_when_forced_or_when_only_other_networks_bind(
    service: Truststore, fleet: FleetService, clock: FakeClock, cas
) -> None:
    set_id = await new_set(service, cas)
    await service.activations.activate(ADMIN, set_id, 1, STAGING)
    await service.activations.activate(ADMIN, set_id, 1, PRODUCTION)
    await fleet.report_node(edge_node(clock, "edge-p", PRODUCTION, binds=("partners",)))
    staging = await service.activations.deactivate(ADMIN, set_id, 1, STAGING, force=False)
    assert staging.status is ActivationStatus.COMPLETE
    forced = await service.activations.deactivate(ADMIN, set_id, 1, PRODUCTION, force=True)
    assert forced.status is ActivationStatus.IN_PROGRESS
    ca_set = await service.ca_sets.get_ca_set(set_id)
    assert (ca_set.staging_version, ca_set.production_version) == (None, None)
