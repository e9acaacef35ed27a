"""The store contract for edge certificates, bindings and binding changes: SQLite and
PostgreSQL, case for case."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edgeproxy.domain.edge_model import (
    ALPN_PROTOCOLS,
    ChangeType,
    EdgeCertificate,
    MutualAuth,
    OcspSettings,
    edge_error_key,
)
from edgeproxy.domain.errors import FieldError
from edgeproxy.domain.model import PENDING, ActivationStatus, Network, Rollout
from edgeproxy.domain.secrets import KeyRing, generate_kek, parse_kek
from edgeproxy.store import Store, open_store
from edgeproxy.store.migrations import migrations

T0 = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
RING = KeyRing(parse_kek(generate_kek()))
STAGING = Network.STAGING


def edge(name: str = "shop") -> EdgeCertificate:
    return EdgeCertificate(
        name=name,
        hostnames=("shop.example.com", "*.shop.example.com"),
        origin="http://127.0.0.1:8080",
        default=True,
        chain_pem="-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
        sealed_key=RING.seal(name, b"key bytes"),
        generation=1,
        warnings=(FieldError("certificate-expiring", "soon", "/certificateChainPem"),),
        created_by="alice",
        created_at=T0,
    )


AUTH = MutualAuth(
    "partners",
    mode="request",
    on_failure="forward",
    send_ca_list_to_client=True,
    identity_headers=("rfc9440",),
    verify_depth=3,
    ocsp=OcspSettings(True, "hard", "http://ocsp.example.com", True),
)


async def test_an_edge_certificate_round_trips_and_rotates(store: Store) -> None:
    cert = edge()
    async with store.transaction(write=True) as tx:
        await tx.insert_edge_certificate(cert)
    async with store.transaction(write=False) as tx:
        assert await tx.get_edge_certificate("shop") == cert
        assert RING.open("shop", cert.sealed_key) == b"key bytes"
    sealed = RING.seal("shop", b"new key")
    async with store.transaction(write=True) as tx:
        await tx.rotate_edge_certificate(
            "shop", chain_pem="chain", sealed_key=sealed, warnings=(), by="bob", at=T0
        )
        await tx.update_edge_certificate(
            "shop",
            hostnames=("a.example.com",),
            origin="http://h:1",
            default=False,
            alpn=("http/1.1",),
            warnings=(),
            by="bob",
            at=T0 + timedelta(seconds=1),
        )
    async with store.transaction(write=False) as tx:
        (got,) = await tx.list_edge_certificates()
    assert got == replace(
        cert,
        hostnames=("a.example.com",),
        origin="http://h:1",
        default=False,
        alpn=("http/1.1",),
        chain_pem="chain",
        sealed_key=sealed,
        generation=2,
        warnings=(),
        modified_by="bob",
        modified_at=T0 + timedelta(seconds=1),
        rotated_at=T0,
    )


async def test_alpn_round_trips_in_its_order(store: Store) -> None:
    async with store.transaction(write=True) as tx:
        await tx.insert_edge_certificate(edge("both"))
        await tx.insert_edge_certificate(replace(edge("h1-first"), alpn=("http/1.1", "h2")))
    async with store.transaction(write=False) as tx:
        both = await tx.get_edge_certificate("both")
        h1_first = await tx.get_edge_certificate("h1-first")
    assert both is not None
    assert h1_first is not None
    assert (both.alpn, h1_first.alpn) == (("h2", "http/1.1"), ("http/1.1", "h2"))
    async with store.transaction(write=True) as tx:
        await tx.update_edge_certificate(
            "both",
            hostnames=both.hostnames,
            origin=both.origin,
            default=False,
            alpn=("h2",),
            warnings=(),
            by="bob",
            at=T0,
        )
    async with store.transaction(write=False) as tx:
        assert [c.alpn for c in await tx.list_edge_certificates()] == [
            ("h2",),
            ("http/1.1", "h2"),
        ]


async def test_a_row_stored_before_alpn_existed_reads_the_default(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)"
        )
        for number, name, sql in migrations("sqlite"):
            if number < 7:
                db.executescript(sql)
                db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (number, name))
        db.execute(
            "INSERT INTO edge_certificates (name, hostnames, origin, is_default, chain_pem, "
            "key_id, key_nonce, key_ciphertext, generation, warnings, created_by, created_at) "
            "VALUES ('old', '[\"old.example.com\"]', 'http://h:1', 0, 'chain', 'k', "
            "'bm9uY2U=', 'Y2lwaGVy', 1, '[]', 'alice', ?)",
            (T0.isoformat(),),
        )
    store = open_store(f"sqlite:///{path}")
    await store.open()
    try:
        async with store.transaction(write=False) as tx:
            old = await tx.get_edge_certificate("old")
    finally:
        await store.close()
    assert old is not None
    assert old.alpn == ALPN_PROTOCOLS


async def test_bindings_by_network_and_set_and_changes_with_their_rollout(store: Store) -> None:
    async with store.transaction(write=True) as tx:
        await tx.insert_edge_certificate(edge())
        await tx.put_binding("shop", STAGING, AUTH, "alice", T0)
        await tx.put_binding("shop", Network.PRODUCTION, MutualAuth("others"), "alice", T0)
        rollout = await tx.insert_rollout(
            Rollout("binding", STAGING, 7, edge_error_key("shop"), T0, {"edge-1": PENDING})
        )
        change = await tx.insert_binding_change(
            name="shop",
            network=STAGING,
            type=ChangeType.BIND,
            ca_set="partners",
            previous=AUTH,
            rollout=rollout,
            by="alice",
            at=T0,
        )
    async with store.transaction(write=False) as tx:
        binding = await tx.get_binding("shop", STAGING)
        assert binding is not None
        assert binding.auth == AUTH
        assert [b.network for b in await tx.list_bindings(ca_set="partners")] == [STAGING]
        assert len(await tx.list_bindings()) == 2
        assert [b.auth.ca_set for b in await tx.list_bindings(network=Network.PRODUCTION)] == [
            "others"
        ]
        assert await tx.binding_change_of_rollout(rollout.id) == change
    assert change.previous == AUTH
    assert change.rollout == rollout
    assert (change.status, change.revision) == (ActivationStatus.IN_PROGRESS, 7)
    async with store.transaction(write=True) as tx:
        await tx.update_binding_change(
            change.id, status=ActivationStatus.FAILED, at=T0, failure_reason="edge-1: no key"
        )
        await tx.delete_binding("shop", STAGING)
    async with store.transaction(write=False) as tx:
        done = await tx.latest_binding_change("shop", STAGING)
        assert await tx.get_binding("shop", STAGING) is None
    assert done is not None
    assert (done.status, done.completed_at, done.failure_reason) == (
        ActivationStatus.FAILED,
        T0,
        "edge-1: no key",
    )
