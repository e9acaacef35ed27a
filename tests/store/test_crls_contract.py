"""The store contract for CRLs (docs/management.md "CRLs"): SQLite and PostgreSQL, case for case."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from edgeproxy.domain.crls import CrlRecord
from edgeproxy.domain.model import ActivityType, Crl
from edgeproxy.store import Store

from .conftest import UNIQUE_VIOLATION, OpenStore

T0 = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
ALICE = "alice"
# RFC 5280 §5.2.3: a CRL number may take 20 octets, far wider than a 64-bit column.
WIDEST_NUMBER = 2**159 - 1


class Boom(Exception):
    """Raised inside a transaction to make it roll back."""


def crl_record(
    fingerprint: str = "ab" * 32,
    *,
    next_update: datetime | None = T0 + timedelta(days=7),
    number: int | None = 7,
) -> CrlRecord:
    return CrlRecord(
        issuer="CN=Partner Root,O=Example",
        issuer_fingerprint="cd" * 32,
        this_update=T0 - timedelta(days=1),
        next_update=next_update,
        crl_number=number,
        revoked_count=3,
        fingerprint=fingerprint,
        crl_pem="-----BEGIN X509 CRL-----\nMAMCAQA=\n-----END X509 CRL-----\n",
        description="weekly",
    )


async def new_set(store: Store, name: str = "partners") -> int:
    async with store.transaction(write=True) as tx:
        return (await tx.insert_ca_set(name, None, ALICE, T0)).id


async def add(store: Store, set_id: int, record: CrlRecord) -> Crl:
    async with store.transaction(write=True) as tx:
        return await tx.insert_crl(set_id, record, ALICE, T0)


async def test_a_crl_round_trips_every_field(store: Store) -> None:
    set_id = await new_set(store)
    record = crl_record(number=WIDEST_NUMBER)
    inserted = await add(store, set_id, record)
    assert inserted == Crl(
        id=inserted.id,
        ca_set_id=set_id,
        issuer=record.issuer,
        issuer_fingerprint=record.issuer_fingerprint,
        this_update=record.this_update,
        next_update=record.next_update,
        crl_number=WIDEST_NUMBER,
        revoked_count=3,
        fingerprint=record.fingerprint,
        crl_pem=record.crl_pem,
        description="weekly",
        created_by=ALICE,
        created_at=T0,
    )
    async with store.transaction(write=False) as tx:
        assert await tx.get_crl(set_id, inserted.id) == inserted
        assert await tx.list_crls(set_id) == [inserted]
    assert inserted.this_update.tzinfo is not None


async def test_optional_fields_round_trip_as_none(store: Store) -> None:
    set_id = await new_set(store)
    inserted = await add(store, set_id, crl_record(next_update=None, number=None))
    assert (inserted.next_update, inserted.crl_number) == (None, None)


async def test_timestamps_come_back_in_utc_whatever_offset_went_in(store: Store) -> None:
    set_id = await new_set(store)
    plus_two = timezone(timedelta(hours=2))
    record = crl_record()
    shifted = replace(record, this_update=record.this_update.astimezone(plus_two))
    inserted = await add(store, set_id, shifted)
    assert inserted.this_update == record.this_update
    assert inserted.this_update.utcoffset() == timedelta(0)


async def test_listing_is_per_set_in_upload_order(store: Store) -> None:
    partners, internal = await new_set(store, "partners"), await new_set(store, "internal")
    first = await add(store, partners, crl_record("01" * 32))
    other = await add(store, internal, crl_record("02" * 32))
    second = await add(store, partners, crl_record("03" * 32))
    async with store.transaction(write=False) as tx:
        assert [c.id for c in await tx.list_crls(partners)] == [first.id, second.id]
        assert await tx.list_crls(internal) == [other]


async def test_lookups_miss_in_another_set(store: Store) -> None:
    partners, internal = await new_set(store, "partners"), await new_set(store, "internal")
    crl = await add(store, partners, crl_record())
    async with store.transaction(write=False) as tx:
        assert await tx.get_crl(partners, crl.id) == crl
        assert await tx.get_crl(internal, crl.id) is None
        assert await tx.get_crl(partners, crl.id + 1000) is None
        assert await tx.find_crl(partners, crl.fingerprint) == crl
        assert await tx.find_crl(internal, crl.fingerprint) is None


async def test_the_same_crl_may_be_in_two_sets(store: Store) -> None:
    partners, internal = await new_set(store, "partners"), await new_set(store, "internal")
    await add(store, partners, crl_record())
    assert (await add(store, internal, crl_record())).ca_set_id == internal


async def test_the_same_crl_twice_in_one_set_violates_the_unique_index(store: Store) -> None:
    set_id = await new_set(store)
    await add(store, set_id, crl_record())
    with pytest.raises(UNIQUE_VIOLATION):
        await add(store, set_id, crl_record())
    async with store.transaction(write=False) as tx:
        assert len(await tx.list_crls(set_id)) == 1


async def test_delete_removes_the_row_and_the_activities_remain(store: Store) -> None:
    set_id = await new_set(store)
    kept = await add(store, set_id, crl_record("01" * 32))
    gone = await add(store, set_id, crl_record("02" * 32))
    async with store.transaction(write=True) as tx:
        await tx.record_activity(set_id, ActivityType.ADD_CRL, ALICE, T0)
        await tx.delete_crl(set_id, gone.id)
        await tx.record_activity(set_id, ActivityType.DELETE_CRL, ALICE, T0)
    async with store.transaction(write=False) as tx:
        assert await tx.list_crls(set_id) == [kept]
        assert await tx.get_crl(set_id, gone.id) is None
        assert await tx.find_crl(set_id, gone.fingerprint) is None
        types = [a.type for a in await tx.list_activities(set_id)]
    assert types == [ActivityType.DELETE_CRL, ActivityType.ADD_CRL]


async def test_delete_in_another_set_deletes_nothing(store: Store) -> None:
    partners, internal = await new_set(store, "partners"), await new_set(store, "internal")
    crl = await add(store, partners, crl_record())
    async with store.transaction(write=True) as tx:
        await tx.delete_crl(internal, crl.id)
    async with store.transaction(write=False) as tx:
        assert await tx.list_crls(partners) == [crl]


async def failing_insert(store: Store, set_id: int) -> None:
    async with store.transaction(write=True) as tx:
        await tx.insert_crl(set_id, crl_record(), ALICE, T0)
        raise Boom


async def test_an_insert_in_a_failed_transaction_leaves_nothing(store: Store) -> None:
    set_id = await new_set(store)
    with pytest.raises(Boom):
        await failing_insert(store, set_id)
    async with store.transaction(write=False) as tx:
        assert await tx.list_crls(set_id) == []


async def test_crls_survive_a_reopen(open_stores: OpenStore) -> None:
    first = await open_stores()
    set_id = await new_set(first)
    crl = await add(first, set_id, crl_record())
    await first.close()
    reopened = await open_stores()  # migration 002 is not applied twice
    async with reopened.transaction(write=False) as tx:
        assert await tx.list_crls(set_id) == [crl]
