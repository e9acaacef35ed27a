"""The fleet side (docs/architecture.md, docs/management.md): the trust view nodes apply, node
reports, deletion."""

from __future__ import annotations

from datetime import timedelta

import pytest
import trustme

from edgeproxy.domain.errors import Conflict
from edgeproxy.domain.model import ActivationStatus, CaSetStatus, Network
from edgeproxy.service.fleet import FleetService
from edgeproxy.service.truststore import Truststore

from .conftest import ADMIN, NODE_TTL, FakeClock, draft, edge_node

STAGING, PRODUCTION = Network.STAGING, Network.PRODUCTION


async def new_set(service: Truststore, name: str, *cas: trustme.CA) -> int:
    set_id = (await service.ca_sets.create_ca_set(ADMIN, name, None)).id
    for ca in cas:
        await service.versions.create_version(ADMIN, set_id, draft(ca))
    return set_id


async def deleted_set(service: Truststore, fleet: FleetService, name: str) -> int:
    set_id = await new_set(service, name)
    await service.ca_sets.delete_ca_set(ADMIN, set_id)
    await service.reconciler.reconcile()
    assert (await service.ca_sets.get_ca_set(set_id)).status is CaSetStatus.DELETED
    return set_id


# -- trust view --------------------------------------------------------------------------------


async def test_trust_view_gives_each_live_set_its_active_version_on_the_network(
    service: Truststore, fleet: FleetService, cas
) -> None:
    partners = await new_set(service, "partners", cas[0], cas[1])
    await new_set(service, "internal", cas[2])
    await deleted_set(service, fleet, "legacy")
    staging = await service.activations.activate(ADMIN, partners, 1, STAGING)
    await service.activations.activate(ADMIN, partners, 2, PRODUCTION)

    view = await fleet.trust_view(STAGING)
    assert view.network is STAGING
    assert view.revision == await fleet.store.revision()
    assert set(view.active) == {"partners", "internal"}
    active = view.active["partners"]
    assert active is not None
    assert active.version == 1
    assert [c.certificate_pem for c in active.certificates] == [cas[0].cert_pem.bytes().decode()]
    # A set with no active version is present, as None: its bindings fail closed.
    assert view.active["internal"] is None
    assert view.changed_at == {"partners": staging.created_at}

    production = (await fleet.trust_view(PRODUCTION)).active["partners"]
    assert production is not None
    assert production.version == 2


async def test_trust_view_excludes_deleted_sets_but_keeps_one_whose_delete_failed(
    service: Truststore, fleet: FleetService, clock: FakeClock
) -> None:
    await deleted_set(service, fleet, "legacy")
    kept = await new_set(service, "kept")
    await service.ca_sets.delete_ca_set(ADMIN, kept)
    await fleet.report_node(edge_node(clock, "edge-1", binds=("kept",)))
    await service.reconciler.reconcile()
    assert (await fleet.trust_view(STAGING)).active == {"kept": None}


# -- node reports ------------------------------------------------------------------------------


async def test_node_reports_are_telemetry_and_do_not_move_the_revision(
    service: Truststore, fleet: FleetService, clock: FakeClock
) -> None:
    await new_set(service, "partners")
    before = await fleet.store.revision()
    await fleet.report_node(edge_node(clock, "edge-1", binds=("partners",)))
    await fleet.report_node(edge_node(clock, "edge-1", applied_revision=before))
    await fleet.remove_node("edge-1")
    assert await fleet.store.revision() == before


async def test_remove_node_drops_only_that_node(
    service: Truststore, fleet: FleetService, clock: FakeClock
) -> None:
    await fleet.report_node(edge_node(clock, "edge-1"))
    await fleet.report_node(edge_node(clock, "edge-2", PRODUCTION))
    await fleet.remove_node("edge-2")
    await fleet.remove_node("never-registered")
    assert [s.node.name for s in await service.nodes.list_nodes()] == ["edge-1"]


async def test_a_removed_node_no_longer_holds_up_an_activation(
    service: Truststore, fleet: FleetService, clock: FakeClock, cas
) -> None:
    set_id = await new_set(service, "partners", cas[0])
    for name in ("edge-1", "edge-2"):
        await fleet.report_node(edge_node(clock, name))
    activation = await service.activations.activate(ADMIN, set_id, 1, STAGING)
    await fleet.report_node(edge_node(clock, "edge-1", applied_revision=activation.revision))
    await service.reconciler.reconcile()
    held = await service.activations.get_activation(set_id, 1, activation.id)
    assert (held.status, held.percent_complete) == (ActivationStatus.IN_PROGRESS, 50)

    await fleet.remove_node("edge-2")
    await service.reconciler.reconcile()
    done = await service.activations.get_activation(set_id, 1, activation.id)
    assert (done.status, done.percent_complete) == (ActivationStatus.COMPLETE, 100)


# -- deletion ----------------------------------------------------------------------------------


async def test_deletion_finishes_on_reconcile_and_frees_the_name(
    service: Truststore, fleet: FleetService, cas
) -> None:
    set_id = await new_set(service, "partners", cas[0])
    requested = await service.ca_sets.delete_ca_set(ADMIN, set_id)
    assert requested.status is ActivationStatus.IN_PROGRESS
    assert requested.ca_set.status is CaSetStatus.DELETING
    before = await fleet.store.revision()

    await service.reconciler.reconcile()
    status = await service.ca_sets.delete_status(set_id)
    assert status.status is ActivationStatus.COMPLETE
    assert status.ca_set.deleted_at is not None
    assert await fleet.store.revision() == before + 1
    assert await service.ca_sets.list_ca_sets() == []
    again = await service.ca_sets.create_ca_set(ADMIN, "partners", None)
    assert again.id != set_id


async def test_deletion_fails_on_reconcile_when_a_live_node_binds_the_set(
    service: Truststore, fleet: FleetService, clock: FakeClock, cas
) -> None:
    set_id = await new_set(service, "partners", cas[0])
    await service.ca_sets.delete_ca_set(ADMIN, set_id)
    # The binding appears between the request and the reconciler's pass.
    await fleet.report_node(edge_node(clock, "edge-1", PRODUCTION, binds=("partners",)))
    await service.reconciler.reconcile()
    status = await service.ca_sets.delete_status(set_id)
    assert status.status is ActivationStatus.FAILED
    assert status.ca_set.status is CaSetStatus.NOT_DELETED
    assert status.ca_set.delete_failure is not None
    assert "edge-1/partners-cert" in status.ca_set.delete_failure
    with pytest.raises(Conflict) as taken:
        await service.ca_sets.create_ca_set(ADMIN, "partners", None)
    assert taken.value.type == "ca-set-name-taken"


async def test_a_dead_node_binding_the_set_does_not_stop_its_deletion(
    service: Truststore, fleet: FleetService, clock: FakeClock
) -> None:
    set_id = await new_set(service, "partners")
    gone = clock.now - NODE_TTL - timedelta(seconds=1)
    await fleet.report_node(edge_node(clock, "edge-1", binds=("partners",), last_seen=gone))
    await service.ca_sets.delete_ca_set(ADMIN, set_id)
    await service.reconciler.reconcile()
    assert (await service.ca_sets.delete_status(set_id)).status is ActivationStatus.COMPLETE


async def test_delete_is_refused_while_a_live_node_binds_the_set(
    service: Truststore, fleet: FleetService, clock: FakeClock
) -> None:
    set_id = await new_set(service, "partners")
    await fleet.report_node(edge_node(clock, "edge-1", binds=("partners",)))
    with pytest.raises(Conflict) as refused:
        await service.ca_sets.delete_ca_set(ADMIN, set_id)
    assert refused.value.type == "ca-set-in-use"
    assert (await service.ca_sets.get_ca_set(set_id)).status is CaSetStatus.NOT_DELETED


async def test_delete_is_refused_while_a_version_is_active(
    service: Truststore, fleet: FleetService, cas
) -> None:
    set_id = await new_set(service, "partners", cas[0])
    await service.activations.activate(ADMIN, set_id, 1, PRODUCTION)
    with pytest.raises(Conflict) as refused:
        await service.ca_sets.delete_ca_set(ADMIN, set_id)
    assert refused.value.type == "ca-set-is-active"
    await service.activations.deactivate(ADMIN, set_id, 1, PRODUCTION, force=False)
    assert (
        await service.ca_sets.delete_ca_set(ADMIN, set_id)
    ).status is ActivationStatus.IN_PROGRESS
