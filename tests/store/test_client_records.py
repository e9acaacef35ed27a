"""Client records on both back ends: batches from several nodes add up per leaf, each node keeps
its newest N per edge certificate, the window expires rows, a node can take its rows out, and no
write moves the store revision (telemetry)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edgeproxy.domain.clients import ClientObservation, aggregate
from edgeproxy.domain.model import Network
from edgeproxy.service.fleet import FleetService
from edgeproxy.store import Store

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def _record(
    node: str,
    fingerprint: str,
    *,
    at: datetime = NOW,
    handshakes: int = 1,
    requests: int = 0,
    edge: str = "api",
    outcome: str = "accepted",
) -> ClientObservation:
    return ClientObservation(
        network=Network.STAGING,
        edge_certificate=edge,
        ca_set="partners",
        node=node,
        fingerprint=fingerprint,
        subject=f"CN={fingerprint[:4]}",
        issuer="CN=CA",
        sans=("DNS:a.example",),
        chain_der=(b"\x30\x03leaf", b"\x30\x03ca"),
        first_seen=at - timedelta(minutes=1),
        last_seen=at,
        handshakes=handshakes,
        requests=requests,
        last_outcome=outcome,
    )


async def _listed(store: Store) -> list[ClientObservation]:
    async with store.transaction(write=False) as tx:
        return await tx.list_client_records(Network.STAGING, "partners")


async def test_batches_add_up_per_leaf_across_nodes(store: Store) -> None:
    fleet = FleetService(store)
    revision = await store.revision()
    a, b = "a" * 64, "b" * 64
    await fleet.record_clients(
        "n1", [_record("n1", a, handshakes=2, requests=3)], now=NOW, window=WEEK, keep=10
    )
    later = NOW + timedelta(minutes=5)
    await fleet.record_clients(
        "n1",
        [_record("n1", a, at=later, handshakes=1, requests=1, outcome="unknown_ca")],
        now=later,
        window=WEEK,
        keep=10,
    )
    await fleet.record_clients(
        "n2", [_record("n2", a), _record("n2", b)], now=NOW, window=WEEK, keep=10
    )

    rows = await _listed(store)
    assert len(rows) == 3  # one row per node and leaf
    first = next(r for r in rows if (r.node, r.fingerprint) == ("n1", a))
    assert (first.handshakes, first.requests, first.last_outcome) == (3, 4, "unknown_ca")
    assert (first.first_seen, first.last_seen) == (NOW - timedelta(minutes=1), later)
    assert first.chain_der == (b"\x30\x03leaf", b"\x30\x03ca")
    assert first.sans == ("DNS:a.example",)

    clients = {c.fingerprint: c for c in aggregate(rows)}
    assert (clients[a].handshakes, clients[a].requests, clients[a].nodes) == (4, 4, ("n1", "n2"))
    assert clients[a].last_outcome == "unknown_ca"  # the newest record's
    assert clients[b].nodes == ("n2",)
    assert await store.revision() == revision


async def test_each_node_keeps_its_newest_per_edge_and_the_window_expires(store: Store) -> None:
    fleet = FleetService(store)
    old = [_record("n1", f"{i:064x}", at=NOW - timedelta(minutes=10 - i)) for i in range(5)]
    await fleet.record_clients("n1", old, now=NOW, window=WEEK, keep=3)
    await fleet.record_clients("n2", [_record("n2", "f" * 64)], now=NOW, window=WEEK, keep=3)
    rows = await _listed(store)
    kept = sorted(r.fingerprint for r in rows if r.node == "n1")
    assert kept == [f"{i:064x}" for i in (2, 3, 4)]
    assert [r.node for r in rows].count("n2") == 1

    # Eight days on, a batch from n2 expires every row last seen before the window, any node's.
    later = NOW + timedelta(days=8)
    await fleet.record_clients(
        "n2", [_record("n2", "e" * 64, at=later)], now=later, window=WEEK, keep=3
    )
    assert [r.fingerprint for r in await _listed(store)] == ["e" * 64]

    await fleet.forget_clients("n2")
    assert await _listed(store) == []
