"""The store contract (docs/architecture.md): SQLite and PostgreSQL pass the same suite, case for
case."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from edgeproxy.domain.errors import FieldError, ValidationError
from edgeproxy.domain.model import (
    ActivationStatus,
    ActivationType,
    ActivityType,
    Binding,
    CaSetStatus,
    Certificate,
    Network,
    Node,
)
from edgeproxy.domain.rules import MAX_CA_SETS
from edgeproxy.service.shared import Actor
from edgeproxy.service.truststore import Truststore
from edgeproxy.store import Store, Tx, VersionRecord

from .conftest import UNIQUE_VIOLATION, OpenStore

T0 = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
ALICE = "alice"


class Boom(Exception):
    """Raised inside a transaction to make it roll back."""


def record(
    certificates: tuple[Certificate, ...],
    *,
    description: str | None = "v",
    warnings: tuple[FieldError, ...] = (),
) -> VersionRecord:
    return VersionRecord(
        description=description,
        allow_insecure_sha1=False,
        require_root_certificate=True,
        certificates=certificates,
        warnings=warnings,
    )


async def failing_write(store: Store, name: str = "partners") -> None:
    """A write transaction that bumps the revision and inserts a set, then fails."""
    async with store.transaction(write=True) as tx:
        await tx.bump_revision()
        await tx.insert_ca_set(name, None, ALICE, T0)
        raise Boom


async def new_set(store: Store, name: str = "partners", at: datetime = T0) -> int:
    async with store.transaction(write=True) as tx:
        await tx.bump_revision()
        return (await tx.insert_ca_set(name, f"{name} CAs", ALICE, at)).id


async def new_version(tx: Tx, set_id: int, certificates: tuple[Certificate, ...]) -> int:
    number = await tx.next_version_number(set_id)
    await tx.insert_version(set_id, number, record(certificates), ALICE, T0)
    return number


async def activate_row(
    tx: Tx,
    set_id: int,
    version: int,
    network: Network,
    *,
    status: ActivationStatus = ActivationStatus.IN_PROGRESS,
    type: ActivationType = ActivationType.ACTIVATE,
    at: datetime = T0,
    revision: int | None = None,
    rollout_id: int | None = None,
):
    return await tx.insert_activation(
        set_id=set_id,
        version=version,
        network=network,
        type=type,
        status=status,
        by=ALICE,
        at=at,
        revision=revision if revision is not None else await tx.bump_revision(),
        previous_version=None,
        warnings=(),
        rollout_id=rollout_id,
    )


# -- migrations and revision -------------------------------------------------------------------


async def test_migrations_are_idempotent_across_reopens(open_stores: OpenStore) -> None:
    first = await open_stores()
    set_id = await new_set(first)
    # A second instance on the same database (another process) and a reopen apply nothing again
    # and lose nothing.
    second = await open_stores()
    await first.close()
    reopened = await open_stores()
    for store in (second, reopened):
        assert await store.revision() == 1
        async with store.transaction(write=False) as tx:
            assert [s.id for s in await tx.list_ca_sets()] == [set_id]


async def test_revision_starts_at_zero_and_each_bump_is_visible(store: Store) -> None:
    assert await store.revision() == 0
    async with store.transaction(write=True) as tx:
        assert await tx.revision() == 0
        assert await tx.bump_revision() == 1
        assert await tx.bump_revision() == 2
        assert await tx.revision() == 2
    assert await store.revision() == 2


async def test_a_read_transaction_does_not_move_the_revision(store: Store) -> None:
    async with store.transaction(write=False) as tx:
        await tx.list_ca_sets()
    assert await store.revision() == 0


async def test_rollback_on_exception_leaves_nothing(store: Store) -> None:
    with pytest.raises(Boom):
        await failing_write(store)
    assert await store.revision() == 0
    async with store.transaction(write=False) as tx:
        assert await tx.find_live_ca_set("partners") is None
        assert await tx.list_ca_sets(include_deleted=True) == []
        assert await tx.count_live_ca_sets() == 0


async def test_commit_keeps_what_rollback_discards(store: Store) -> None:
    async with store.transaction(write=True) as tx:
        await tx.bump_revision()
        await tx.insert_ca_set("partners", None, ALICE, T0)
    assert await store.revision() == 1
    async with store.transaction(write=False) as tx:
        assert await tx.count_live_ca_sets() == 1


# -- CA sets -----------------------------------------------------------------------------------


async def test_ca_set_insert_get_find_list_count(store: Store) -> None:
    async with store.transaction(write=True) as tx:
        first = await tx.insert_ca_set("partners", "partner CAs", ALICE, T0)
        second = await tx.insert_ca_set("internal", None, "bob", T0 + timedelta(seconds=1))
    assert first.id != second.id
    assert (first.name, first.description, first.status) == (
        "partners",
        "partner CAs",
        CaSetStatus.NOT_DELETED,
    )
    assert (first.created_by, first.created_at) == (ALICE, T0)
    assert (first.latest_version, first.staging_version, first.production_version) == (
        None,
        None,
        None,
    )
    async with store.transaction(write=False) as tx:
        assert await tx.get_ca_set(first.id) == first
        assert await tx.find_live_ca_set("internal") == second
        assert [s.name for s in await tx.list_ca_sets()] == ["partners", "internal"]
        assert await tx.count_live_ca_sets() == 2


async def test_ca_set_lookups_miss_for_unknown_ids_and_names(store: Store) -> None:
    await new_set(store, "partners")
    async with store.transaction(write=False) as tx:
        assert await tx.get_ca_set(9999) is None
        assert await tx.find_live_ca_set("Partners") is None
        assert await tx.find_live_ca_set("partner") is None


async def test_active_versions_are_per_network(store: Store) -> None:
    set_id = await new_set(store)
    async with store.transaction(write=True) as tx:
        await tx.set_active_version(set_id, Network.STAGING, 2)
        await tx.set_active_version(set_id, Network.PRODUCTION, 1)
    async with store.transaction(write=True) as tx:
        ca_set = await tx.get_ca_set(set_id)
        assert ca_set is not None
        assert (ca_set.staging_version, ca_set.production_version) == (2, 1)
        await tx.set_active_version(set_id, Network.STAGING, None)
        ca_set = await tx.get_ca_set(set_id)
        assert ca_set is not None
        assert (ca_set.staging_version, ca_set.production_version) == (None, 1)


async def test_delete_lifecycle_hides_a_deleted_set_but_keeps_its_history(store: Store) -> None:
    set_id = await new_set(store)
    async with store.transaction(write=True) as tx:
        await tx.request_delete(set_id, "bob", T0)
        deleting = await tx.get_ca_set(set_id)
        assert deleting is not None
        assert (deleting.status, deleting.deleted_by, deleting.delete_requested_at) == (
            CaSetStatus.DELETING,
            "bob",
            T0,
        )
        # A set being deleted is still live: it holds its name and counts toward the limit.
        assert await tx.find_live_ca_set("partners") == deleting
        assert await tx.count_live_ca_sets() == 1
        await tx.finish_delete(set_id, T0 + timedelta(seconds=5), None)
    async with store.transaction(write=False) as tx:
        deleted = await tx.get_ca_set(set_id)
        assert deleted is not None
        assert (deleted.status, deleted.deleted_at) == (
            CaSetStatus.DELETED,
            T0 + timedelta(seconds=5),
        )
        assert await tx.find_live_ca_set("partners") is None
        assert await tx.list_ca_sets() == []
        assert [s.id for s in await tx.list_ca_sets(include_deleted=True)] == [set_id]
        assert await tx.count_live_ca_sets() == 0


async def test_a_failed_delete_returns_the_set_to_live_with_the_reason(store: Store) -> None:
    set_id = await new_set(store)
    async with store.transaction(write=True) as tx:
        await tx.request_delete(set_id, "bob", T0)
        await tx.finish_delete(set_id, T0, "edge-1/api binds it")
    async with store.transaction(write=False) as tx:
        ca_set = await tx.get_ca_set(set_id)
        assert ca_set is not None
        assert (ca_set.status, ca_set.delete_failure) == (
            CaSetStatus.NOT_DELETED,
            "edge-1/api binds it",
        )
        assert await tx.find_live_ca_set("partners") == ca_set


async def test_a_duplicate_live_name_is_refused_by_the_unique_index(store: Store) -> None:
    await new_set(store, "partners")
    with pytest.raises(UNIQUE_VIOLATION):
        async with store.transaction(write=True) as tx:
            await tx.insert_ca_set("partners", None, ALICE, T0)
    # The failed transaction rolled back; the store is usable and holds one set.
    async with store.transaction(write=False) as tx:
        assert await tx.count_live_ca_sets() == 1


async def test_a_set_being_deleted_still_holds_its_name(store: Store) -> None:
    set_id = await new_set(store, "partners")
    async with store.transaction(write=True) as tx:
        await tx.request_delete(set_id, ALICE, T0)
    with pytest.raises(UNIQUE_VIOLATION):
        async with store.transaction(write=True) as tx:
            await tx.insert_ca_set("partners", None, ALICE, T0)


async def test_a_deleted_set_frees_its_name(store: Store) -> None:
    old = await new_set(store, "partners")
    async with store.transaction(write=True) as tx:
        await tx.request_delete(old, ALICE, T0)
        await tx.finish_delete(old, T0, None)
    new = await new_set(store, "partners")
    # And the history may hold the name twice: the index only covers live sets.
    async with store.transaction(write=True) as tx:
        await tx.request_delete(new, ALICE, T0)
        await tx.finish_delete(new, T0, None)
    newest = await new_set(store, "partners")
    async with store.transaction(write=False) as tx:
        found = await tx.find_live_ca_set("partners")
        assert found is not None
        assert found.id == newest
        assert len(await tx.list_ca_sets(include_deleted=True)) == 3


# -- versions ----------------------------------------------------------------------------------


async def test_version_insert_get_list_count(
    store: Store, certificates: tuple[Certificate, ...]
) -> None:
    set_id = await new_set(store)
    warning = FieldError("expiring-soon", "expires in 10 days", "/certificates/0")
    async with store.transaction(write=True) as tx:
        assert await tx.next_version_number(set_id) == 1
        v1 = await tx.insert_version(
            set_id, 1, record(certificates[:2], warnings=(warning,)), ALICE, T0
        )
        assert await tx.next_version_number(set_id) == 2
        v2 = await tx.insert_version(
            set_id, 2, record(certificates[2:3], description=None), "bob", T0
        )
    assert (v1.ca_set_id, v1.version, v1.description) == (set_id, 1, "v")
    assert (v1.allow_insecure_sha1, v1.require_root_certificate) == (False, True)
    assert v1.certificates == certificates[:2]
    assert v1.warnings == (warning,)
    assert (v1.created_by, v1.created_at, v1.modified_by, v1.modified_at) == (ALICE, T0, None, None)
    assert v1.first_activated_at is None
    assert v2.description is None
    async with store.transaction(write=False) as tx:
        assert await tx.get_version(set_id, 1) == v1
        assert await tx.list_versions(set_id) == [v1, v2]
        assert await tx.count_versions(set_id) == 2
        ca_set = await tx.get_ca_set(set_id)
        assert ca_set is not None
        assert ca_set.latest_version == 2


async def test_version_lookups_miss_for_other_sets_and_numbers(
    store: Store, certificates: tuple[Certificate, ...]
) -> None:
    set_id = await new_set(store, "partners")
    other = await new_set(store, "internal")
    async with store.transaction(write=True) as tx:
        await new_version(tx, set_id, certificates[:1])
    async with store.transaction(write=False) as tx:
        assert await tx.get_version(set_id, 2) is None
        assert await tx.get_version(other, 1) is None
        assert await tx.list_versions(other) == []
        assert await tx.count_versions(other) == 0


async def test_version_update_replaces_content_and_records_the_editor(
    store: Store, certificates: tuple[Certificate, ...]
) -> None:
    set_id = await new_set(store)
    later = T0 + timedelta(minutes=3)
    async with store.transaction(write=True) as tx:
        number = await new_version(tx, set_id, certificates[:1])
        updated = await tx.update_version(
            set_id, number, record(certificates[1:3], description="edited"), "bob", later
        )
    assert updated.certificates == certificates[1:3]
    assert updated.description == "edited"
    assert (updated.created_by, updated.created_at) == (ALICE, T0)
    assert (updated.modified_by, updated.modified_at) == ("bob", later)
    async with store.transaction(write=False) as tx:
        assert await tx.get_version(set_id, number) == updated


async def test_version_delete_removes_only_that_version(
    store: Store, certificates: tuple[Certificate, ...]
) -> None:
    set_id = await new_set(store)
    async with store.transaction(write=True) as tx:
        first = await new_version(tx, set_id, certificates[:1])
        second = await new_version(tx, set_id, certificates[1:2])
        await tx.delete_version(set_id, first)
    async with store.transaction(write=False) as tx:
        assert await tx.get_version(set_id, first) is None
        assert [v.version for v in await tx.list_versions(set_id)] == [second]
        assert await tx.count_versions(set_id) == 1


async def test_version_numbers_are_never_reused_after_delete(
    store: Store, certificates: tuple[Certificate, ...]
) -> None:
    set_id = await new_set(store, "partners")
    other = await new_set(store, "internal")
    async with store.transaction(write=True) as tx:
        await new_version(tx, set_id, certificates[:1])
        second = await new_version(tx, set_id, certificates[1:2])
        await tx.delete_version(set_id, second)
        assert await new_version(tx, set_id, certificates[2:3]) == 3
        # Numbering is per set: another set starts at 1.
        assert await new_version(tx, other, certificates[:1]) == 1
    async with store.transaction(write=False) as tx:
        assert [v.version for v in await tx.list_versions(set_id)] == [1, 3]
        ca_set = await tx.get_ca_set(set_id)
        assert ca_set is not None
        assert ca_set.latest_version == 3


async def test_find_version_with_fingerprints_matches_the_same_certificates_in_any_order(
    store: Store, certificates: tuple[Certificate, ...]
) -> None:
    set_id = await new_set(store)
    async with store.transaction(write=True) as tx:
        await new_version(tx, set_id, certificates[:1])
        number = await new_version(tx, set_id, certificates[1:3])
        reordered = record((certificates[2], certificates[1]))
        assert await tx.find_version_with_fingerprints(set_id, reordered, excluding=None) == number
        assert await tx.find_version_with_fingerprints(set_id, reordered, excluding=1) == number


async def test_find_version_with_fingerprints_ignores_itself_subsets_and_other_sets(
    store: Store, certificates: tuple[Certificate, ...]
) -> None:
    set_id = await new_set(store, "partners")
    other = await new_set(store, "internal")
    async with store.transaction(write=True) as tx:
        number = await new_version(tx, set_id, certificates[1:3])
        same = record(certificates[1:3])
        assert await tx.find_version_with_fingerprints(set_id, same, excluding=number) is None
        assert (
            await tx.find_version_with_fingerprints(
                set_id, record(certificates[1:2]), excluding=None
            )
            is None
        )
        assert await tx.find_version_with_fingerprints(other, same, excluding=None) is None


async def test_lock_version_keeps_the_first_activation_time(
    store: Store, certificates: tuple[Certificate, ...]
) -> None:
    set_id = await new_set(store)
    async with store.transaction(write=True) as tx:
        number = await new_version(tx, set_id, certificates[:1])
        await tx.lock_version(set_id, number, T0)
        await tx.lock_version(set_id, number, T0 + timedelta(days=1))
        version = await tx.get_version(set_id, number)
    assert version is not None
    assert version.first_activated_at == T0
    assert version.locked


async def test_an_unlocked_version_stays_editable(
    store: Store, certificates: tuple[Certificate, ...]
) -> None:
    set_id = await new_set(store)
    async with store.transaction(write=True) as tx:
        locked = await new_version(tx, set_id, certificates[:1])
        unlocked = await new_version(tx, set_id, certificates[1:2])
        await tx.lock_version(set_id, locked, T0)
        version = await tx.get_version(set_id, unlocked)
    assert version is not None
    assert version.first_activated_at is None
    assert not version.locked


async def test_a_large_version_round_trips(
    store: Store, certificates: tuple[Certificate, ...]
) -> None:
    set_id = await new_set(store)
    big = record(certificates)
    assert len(certificates) == 300
    assert len(big.fingerprints) > 19_000  # 300 SHA-256 hex digests: no index may cover it
    async with store.transaction(write=True) as tx:
        number = await new_version(tx, set_id, certificates)
    async with store.transaction(write=True) as tx:
        version = await tx.get_version(set_id, number)
        assert version is not None
        assert version.certificates == certificates
        assert await tx.find_version_with_fingerprints(set_id, big, excluding=None) == number
        trimmed = await tx.update_version(set_id, number, record(certificates[:299]), ALICE, T0)
        assert len(trimmed.certificates) == 299
        assert await tx.find_version_with_fingerprints(set_id, big, excluding=None) is None


# -- activations and activities ----------------------------------------------------------------


async def test_activation_insert_get_list_newest_first(store: Store) -> None:
    set_id = await new_set(store)
    warning = FieldError("not-tested-on-staging", "never on STAGING")
    async with store.transaction(write=True) as tx:
        first = await activate_row(tx, set_id, 1, Network.STAGING)
        revision = await tx.bump_revision()
        second = await tx.insert_activation(
            set_id=set_id,
            version=2,
            network=Network.PRODUCTION,
            type=ActivationType.ACTIVATE,
            status=ActivationStatus.IN_PROGRESS,
            by="bob",
            at=T0 + timedelta(seconds=1),
            revision=revision,
            previous_version=1,
            warnings=(warning,),
        )
    assert (second.ca_set_id, second.version, second.network, second.type) == (
        set_id,
        2,
        Network.PRODUCTION,
        ActivationType.ACTIVATE,
    )
    assert (second.status, second.percent_complete, second.completed_at) == (
        ActivationStatus.IN_PROGRESS,
        0,
        None,
    )
    assert (second.revision, second.previous_version, second.warnings) == (revision, 1, (warning,))
    assert (second.created_by, second.created_at) == ("bob", T0 + timedelta(seconds=1))
    async with store.transaction(write=False) as tx:
        assert await tx.get_activation(second.id) == second
        assert await tx.get_activation(second.id + 1000) is None
        assert await tx.list_activations(set_id) == [second, first]
        assert await tx.latest_activation(set_id, Network.PRODUCTION) == second
        assert await tx.latest_activation(set_id, Network.STAGING) == first
        assert await tx.latest_activation(set_id + 1000, Network.STAGING) is None
    async with store.transaction(write=True) as tx:
        third = await activate_row(tx, set_id, 3, Network.STAGING)
        assert await tx.latest_activation(set_id, Network.STAGING) == third


async def test_an_activation_inserted_complete_is_finished_at_once(store: Store) -> None:
    set_id = await new_set(store)
    async with store.transaction(write=True) as tx:
        activation = await activate_row(
            tx, set_id, 1, Network.STAGING, status=ActivationStatus.COMPLETE
        )
    assert (activation.percent_complete, activation.completed_at) == (100, T0)


async def test_in_progress_activations_by_set_and_store_wide(store: Store) -> None:
    partners = await new_set(store, "partners")
    internal = await new_set(store, "internal")
    async with store.transaction(write=True) as tx:
        a = await activate_row(tx, partners, 1, Network.STAGING)
        b = await activate_row(tx, internal, 1, Network.STAGING)
        await activate_row(tx, internal, 2, Network.PRODUCTION, status=ActivationStatus.COMPLETE)
    async with store.transaction(write=False) as tx:
        assert [x.id for x in await tx.in_progress_activations(partners)] == [a.id]
        assert [x.id for x in await tx.in_progress_activations(internal)] == [b.id]
        assert [x.id for x in await tx.in_progress_activations()] == [a.id, b.id]


async def test_update_activation_finishes_it(store: Store) -> None:
    set_id = await new_set(store)
    async with store.transaction(write=True) as tx:
        activation = await activate_row(tx, set_id, 1, Network.STAGING)
        await tx.update_activation(
            activation.id, status=ActivationStatus.IN_PROGRESS, percent_complete=50, at=None
        )
        halfway = await tx.get_activation(activation.id)
        await tx.update_activation(
            activation.id,
            status=ActivationStatus.FAILED,
            percent_complete=50,
            at=T0 + timedelta(seconds=9),
            failure_reason="edge-2: unknown curve",
        )
        failed = await tx.get_activation(activation.id)
        assert await tx.in_progress_activations(set_id) == []
    assert halfway is not None
    assert (halfway.status, halfway.percent_complete) == (ActivationStatus.IN_PROGRESS, 50)
    assert failed is not None
    assert (failed.status, failed.completed_at, failed.failure_reason) == (
        ActivationStatus.FAILED,
        T0 + timedelta(seconds=9),
        "edge-2: unknown curve",
    )


async def test_was_activated_counts_successful_and_in_flight_activations(store: Store) -> None:
    set_id = await new_set(store)
    async with store.transaction(write=True) as tx:
        await activate_row(tx, set_id, 1, Network.STAGING, status=ActivationStatus.COMPLETE)
        await activate_row(tx, set_id, 2, Network.STAGING)
        assert await tx.was_activated(set_id, 1, Network.STAGING)
        assert await tx.was_activated(set_id, 2, Network.STAGING)


async def test_was_activated_ignores_failures_deactivations_and_other_networks(
    store: Store,
) -> None:
    set_id = await new_set(store)
    async with store.transaction(write=True) as tx:
        await activate_row(tx, set_id, 1, Network.STAGING, status=ActivationStatus.FAILED)
        await activate_row(
            tx,
            set_id,
            2,
            Network.STAGING,
            type=ActivationType.DEACTIVATE,
            status=ActivationStatus.COMPLETE,
        )
        await activate_row(tx, set_id, 3, Network.PRODUCTION, status=ActivationStatus.COMPLETE)
        assert not await tx.was_activated(set_id, 1, Network.STAGING)
        assert not await tx.was_activated(set_id, 2, Network.STAGING)
        assert not await tx.was_activated(set_id, 3, Network.STAGING)
        assert not await tx.was_activated(set_id + 1, 3, Network.PRODUCTION)


async def test_activities_are_listed_newest_first_per_set(store: Store) -> None:
    partners = await new_set(store, "partners")
    internal = await new_set(store, "internal")
    async with store.transaction(write=True) as tx:
        await tx.record_activity(partners, ActivityType.CREATE_CA_SET, ALICE, T0)
        await tx.record_activity(partners, ActivityType.CREATE_CA_SET_VERSION, ALICE, T0, version=1)
        await tx.record_activity(internal, ActivityType.CREATE_CA_SET, "bob", T0)
        await tx.record_activity(
            partners,
            ActivityType.ACTIVATE_CA_SET_VERSION,
            "bob",
            T0 + timedelta(seconds=1),
            network=Network.STAGING,
            version=1,
        )
    async with store.transaction(write=False) as tx:
        activities = await tx.list_activities(partners)
        assert [(a.type, a.network, a.version, a.by) for a in activities] == [
            (ActivityType.ACTIVATE_CA_SET_VERSION, Network.STAGING, 1, "bob"),
            (ActivityType.CREATE_CA_SET_VERSION, None, 1, ALICE),
            (ActivityType.CREATE_CA_SET, None, None, ALICE),
        ]
        assert activities[0].at == T0 + timedelta(seconds=1)
        assert [a.by for a in await tx.list_activities(internal)] == ["bob"]


# -- nodes -------------------------------------------------------------------------------------


def node(name: str, **changes: object) -> Node:
    base: dict[str, object] = {
        "name": name,
        "network": Network.STAGING,
        "roles": ("edge",),
        "started_at": T0,
        "last_seen": T0,
    }
    return Node(**(base | changes))  # type: ignore[arg-type]


async def test_node_upsert_round_trips_json_fields(store: Store) -> None:
    full = node(
        "edge-2",
        network=Network.PRODUCTION,
        roles=("admin", "edge"),
        bindings=(
            Binding("api", ("api.example.com", "*.api.example.com"), "partners", True),
            Binding("web", ("wéb.example.com",), "internal"),
        ),
        applied_revision=41,
        applied_versions={"partners": 3, "internal": None},
        apply_errors={"legacy": "no_active_version: «legacy»"},
        applied_at=T0 + timedelta(seconds=2),
    )
    async with store.transaction(write=True) as tx:
        await tx.upsert_node(full)
        await tx.upsert_node(node("edge-1"))
    async with store.transaction(write=False) as tx:
        assert await tx.list_nodes() == [node("edge-1"), full]


async def test_node_upsert_replaces_and_delete_removes(store: Store) -> None:
    async with store.transaction(write=True) as tx:
        await tx.upsert_node(node("edge-1", applied_revision=1))
        await tx.upsert_node(node("edge-2"))
        later = node(
            "edge-1",
            last_seen=T0 + timedelta(seconds=30),
            applied_revision=2,
            applied_versions={"partners": 1},
        )
        await tx.upsert_node(later)
        await tx.delete_node("edge-2")
        await tx.delete_node("never-registered")
    async with store.transaction(write=False) as tx:
        assert await tx.list_nodes() == [later]


async def test_timestamps_round_trip_as_aware_utc(store: Store) -> None:
    plus_two = timezone(timedelta(hours=2))
    local = datetime(2031, 5, 6, 9, 8, 9, 123456, tzinfo=plus_two)
    set_id = await new_set(store, at=local)
    async with store.transaction(write=True) as tx:
        await tx.upsert_node(node("edge-1", started_at=local, last_seen=local, applied_at=local))
        ca_set = await tx.get_ca_set(set_id)
        (stored,) = await tx.list_nodes()
    assert ca_set is not None
    for value in (ca_set.created_at, stored.started_at, stored.last_seen, stored.applied_at):
        assert value == T0
        assert value is not None
        assert value.utcoffset() == timedelta(0)
        assert value.tzinfo is UTC


# -- change propagation ------------------------------------------------------------------------


async def test_wait_for_change_wakes_on_a_commit_by_another_instance(
    open_stores: OpenStore,
) -> None:
    writer = await open_stores()
    # PostgreSQL: no safety-net poll within the test, so the waiter must wake through NOTIFY.
    # SQLite: polling the revision is the mechanism, at its usual interval.
    watcher = await open_stores(poll_interval=3600 if writer.dialect == "postgresql" else 0.05)
    known = await watcher.wait_for_change(0, 0)
    assert known == 0
    waiting = asyncio.create_task(watcher.wait_for_change(known, 60), name="wait-for-change")
    await asyncio.sleep(0)
    async with writer.transaction(write=True) as tx:
        await tx.bump_revision()
        await tx.insert_ca_set("partners", None, ALICE, T0)
    assert await waiting == 1


async def test_wait_for_change_times_out_with_the_same_revision_when_nothing_commits(
    open_stores: OpenStore,
) -> None:
    writer = await open_stores()
    watcher = await open_stores()
    await new_set(writer)
    # A rolled-back bump is no change either (and PostgreSQL drops its NOTIFY).
    with pytest.raises(Boom):
        await failing_write(writer, "other")
    assert await watcher.wait_for_change(1, 0.3) == 1


# -- concurrency -------------------------------------------------------------------------------


async def test_concurrent_writers_on_two_instances_lose_nothing(open_stores: OpenStore) -> None:
    stores = [await open_stores() for _ in range(2)]
    services = [Truststore.build(store) for store in stores]
    actor = Actor(ALICE)
    before = await stores[0].revision()
    created = await asyncio.gather(
        *(
            service.ca_sets.create_ca_set(actor, f"set-{which}-{n:02d}", None)
            for n in range(20)
            for which, service in enumerate(services)
        )
    )
    assert len({s.id for s in created}) == 40
    sets = await services[1].ca_sets.list_ca_sets()
    assert sorted(s.name for s in sets) == sorted(s.name for s in created)
    assert await stores[1].revision() == before + 40


async def test_the_set_limit_holds_under_concurrent_creates(open_stores: OpenStore) -> None:
    first, second = await open_stores(), await open_stores()
    async with first.transaction(write=True) as tx:
        for n in range(MAX_CA_SETS - 5):
            await tx.insert_ca_set(f"existing-{n:03d}", None, ALICE, T0)
    services = [Truststore.build(first), Truststore.build(second)]
    outcomes = await asyncio.gather(
        *(services[n % 2].ca_sets.create_ca_set(Actor(ALICE), f"new-{n}", None) for n in range(10)),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(refused) == 5
    assert all(isinstance(o, ValidationError) and o.type == "ca-set-limit-reached" for o in refused)
    async with second.transaction(write=False) as tx:
        assert await tx.count_live_ca_sets() == MAX_CA_SETS
    assert await second.revision() == 5


async def test_the_set_limit_admits_the_last_free_slot(store: Store) -> None:
    async with store.transaction(write=True) as tx:
        for n in range(MAX_CA_SETS - 1):
            await tx.insert_ca_set(f"existing-{n:03d}", None, ALICE, T0)
    service = Truststore.build(store)
    await service.ca_sets.create_ca_set(Actor(ALICE), "last", None)
    with pytest.raises(ValidationError) as refused:
        await service.ca_sets.create_ca_set(Actor(ALICE), "one-too-many", None)
    assert refused.value.type == "ca-set-limit-reached"
