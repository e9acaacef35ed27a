"""The store contract for blocked certificates: SQLite and PostgreSQL, case for case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edgeproxy.domain.blocks import BlockRequest
from edgeproxy.domain.model import BlockedCertificate
from edgeproxy.store import Store
from edgeproxy.store.migrations import migrations

T0 = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


async def new_set(store: Store, name: str = "partners") -> int:
    async with store.transaction(write=True) as tx:
        return (await tx.insert_ca_set(name, None, "alice", T0)).id


async def test_blocks_round_trip_list_in_order_and_delete(store: Store) -> None:
    set_id = await new_set(store)
    other = await new_set(store, "others")
    by_print = BlockRequest("ab" * 32, None, None, "leaked", None)
    by_serial = BlockRequest(None, "CN=Partner CA,O=Example", "1a2b", "lost", T0 + timedelta(1))
    async with store.transaction(write=True) as tx:
        first = await tx.insert_block(set_id, by_print, "alice", T0)
        second = await tx.insert_block(set_id, by_serial, "bob", T0 + timedelta(seconds=1))
        await tx.insert_block(other, by_print, "carol", T0)
    assert first == BlockedCertificate(
        first.id, set_id, "ab" * 32, None, None, "leaked", None, "alice", T0
    )
    assert second == BlockedCertificate(
        second.id,
        set_id,
        None,
        "CN=Partner CA,O=Example",
        "1a2b",
        "lost",
        T0 + timedelta(1),
        "bob",
        T0 + timedelta(seconds=1),
    )
    async with store.transaction(write=False) as tx:
        assert await tx.list_blocks(set_id) == [first, second]
        assert await tx.get_block(set_id, second.id) == second
        assert await tx.get_block(other, second.id) is None  # another set's id
    async with store.transaction(write=True) as tx:
        await tx.delete_block(set_id, first.id)
    async with store.transaction(write=False) as tx:
        assert await tx.list_blocks(set_id) == [second]
        assert len(await tx.list_blocks(other)) == 1


def test_migration_numbers_are_unique() -> None:
    for dialect in ("sqlite", "postgresql"):
        numbers = [number for number, _, _ in migrations(dialect)]
        assert numbers == sorted(set(numbers))
