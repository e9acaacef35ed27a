"""Blocked certificates over the admin API (docs/api.md "Blocked certificates"): block by
fingerprint or by issuer and serial, list, unblock; every change audited, bumping the revision
and reaching the edge's trust view; every accepts test with its rejects twin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from edgeproxy.domain.model import Network
from edgeproxy.service.fleet import FleetService
from edgeproxy.store import Store
from support.admin import Api, Reply
from support.pki import Issued, Pki

from .steps import Clock, activity_types, new_set, new_version

BLOCKS = "/ca-sets/{}/blocked-certificates"
PRINT = "ab" * 32


@pytest.fixture(scope="module")
def ca(pki: Pki) -> Issued:
    return pki.ca("Partner CA")


async def partners(api: Api, ca: Issued) -> int:
    set_id = await new_set(api, "partners")
    await new_version(api, set_id, ca.pem)
    return set_id


async def block(api: Api, set_id: int, as_: str = "editor", **body: Any) -> Reply:
    return await api.post(BLOCKS.format(set_id), {"reason": "leaked", **body}, as_=as_)


async def listed(api: Api, set_id: int) -> list[dict[str, Any]]:
    reply = await api.get(BLOCKS.format(set_id), as_="viewer")
    assert reply.status == 200, reply.body
    return list(reply.body["blockedCertificates"])


async def test_block_by_fingerprint_is_stored_audited_and_sent_to_the_edge(
    api: Api, ca: Issued, store: Store, fleet_service: FleetService
) -> None:
    set_id = await partners(api, ca)
    before = await store.revision()
    reply = await block(api, set_id, fingerprintSha256=":".join(["AB"] * 32), reason=" leaked ")
    assert reply.status == 201, reply.body
    body = reply.body
    assert (body["fingerprintSha256"], body["issuer"], body["serialNumber"]) == (PRINT, None, None)
    assert (body["reason"], body["expiresAt"], body["expired"]) == ("leaked", None, False)
    assert (body["createdBy"], body["caSetId"]) == ("ci-editor", set_id)
    assert await store.revision() == before + 1
    assert (await activity_types(api, set_id))[0] == "BLOCK_CERTIFICATE"
    assert await listed(api, set_id) == [body]
    view = await fleet_service.trust_view(Network.STAGING)
    assert [b.fingerprint for b in view.blocked["partners"]] == [PRINT]


async def test_block_by_issuer_and_serial_is_normalised(api: Api, ca: Issued) -> None:
    set_id = await partners(api, ca)
    expires = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    reply = await block(
        api,
        set_id,
        issuer="CN=Partner CA",
        serialNumber="00:1A:2b",
        expiresAt=expires.isoformat(),
    )
    assert reply.status == 201, reply.body
    assert (reply.body["issuer"], reply.body["serialNumber"]) == ("CN=Partner CA", "1a2b")
    assert reply.body["expiresAt"] == expires.isoformat().replace("+00:00", "Z")


async def test_unblock_removes_it_and_is_audited(
    api: Api, ca: Issued, store: Store, fleet_service: FleetService
) -> None:
    set_id = await partners(api, ca)
    block_id = (await block(api, set_id, fingerprintSha256=PRINT)).body["blockId"]
    before = await store.revision()
    reply = await api.delete(f"{BLOCKS.format(set_id)}/{block_id}", as_="editor")
    assert reply.status == 204
    assert await listed(api, set_id) == []
    assert await store.revision() == before + 1
    assert (await activity_types(api, set_id))[0] == "UNBLOCK_CERTIFICATE"
    assert (await fleet_service.trust_view(Network.STAGING)).blocked["partners"] == ()
    again = await api.delete(f"{BLOCKS.format(set_id)}/{block_id}", as_="editor")
    assert (again.status, again.type) == (404, "block-not-found")


async def test_an_expired_block_is_listed_as_expired(api: Api, ca: Issued, clock: Clock) -> None:
    set_id = await partners(api, ca)
    expires = datetime.now(UTC) + timedelta(hours=1)
    assert (
        await block(api, set_id, fingerprintSha256=PRINT, expiresAt=expires.isoformat())
    ).status == 201
    assert [b["expired"] for b in await listed(api, set_id)] == [False]
    clock.advance(timedelta(hours=2))
    assert [b["expired"] for b in await listed(api, set_id)] == [True]


async def test_a_viewer_cannot_block(api: Api, ca: Issued, store: Store) -> None:
    set_id = await partners(api, ca)
    before = await store.revision()
    reply = await block(api, set_id, as_="viewer", fingerprintSha256=PRINT)
    assert (reply.status, reply.type) == (403, "insufficient-role")
    assert await listed(api, set_id) == []
    assert await store.revision() == before


async def test_the_same_certificate_twice_is_a_conflict(api: Api, ca: Issued) -> None:
    set_id = await partners(api, ca)
    first = await block(api, set_id, fingerprintSha256=PRINT)
    reply = await block(api, set_id, fingerprintSha256=PRINT.upper(), reason="again")
    assert (reply.status, reply.type) == (409, "duplicate-block")
    assert reply.body["blockId"] == first.body["blockId"]


@pytest.mark.parametrize(
    ("body", "status", "type_", "pointer"),
    [
        (
            {"fingerprintSha256": PRINT, "issuer": "CN=a", "serialNumber": "1"},
            422,
            "ambiguous-block",
            "/fingerprintSha256",
        ),
        ({}, 422, "incomplete-block", "/issuer"),
        ({"issuer": "CN=a"}, 422, "incomplete-block", "/serialNumber"),
        ({"fingerprintSha256": "ab" * 31}, 422, "invalid-fingerprint", "/fingerprintSha256"),
        ({"issuer": "cn=a, o=b", "serialNumber": "1"}, 422, "invalid-issuer", "/issuer"),
        ({"issuer": "CN=a", "serialNumber": "xyz"}, 422, "invalid-serial-number", "/serialNumber"),
        (
            {"issuer": "CN=a", "serialNumber": "ab" * 21},
            422,
            "invalid-serial-number",
            "/serialNumber",
        ),
        ({"fingerprintSha256": PRINT, "reason": "  "}, 422, "invalid-reason", "/reason"),
        ({"fingerprintSha256": PRINT, "reason": "x" * 256}, 422, "invalid-reason", "/reason"),
        (
            {"fingerprintSha256": PRINT, "expiresAt": "2001-01-01T00:00:00Z"},
            422,
            "invalid-expiry",
            "/expiresAt",
        ),
        (
            {"fingerprintSha256": PRINT, "expiresAt": "tomorrow"},
            400,
            "invalid-timestamp",
            "/expiresAt",
        ),
        (
            {"fingerprintSha256": PRINT, "expiresAt": "2099-01-01T00:00:00"},
            400,
            "invalid-timestamp",
            "/expiresAt",
        ),
        ({"fingerprintSha256": 7}, 400, "wrong-type", "/fingerprintSha256"),
        ({"fingerprint": PRINT}, 400, "unknown-field", "/fingerprint"),
    ],
)
async def test_bad_blocks_are_refused_and_change_nothing(
    api: Api, ca: Issued, store: Store, body: dict[str, Any], status: int, type_: str, pointer: str
) -> None:
    set_id = await partners(api, ca)
    before = await store.revision()
    reply = await block(api, set_id, **body)
    assert (reply.status, reply.type) == (status, type_)
    assert reply.errors == [(type_, pointer)]
    assert await listed(api, set_id) == []
    assert await store.revision() == before


async def test_blocks_of_unknown_or_deleted_sets(api: Api, ca: Issued) -> None:
    assert (await block(api, 999, fingerprintSha256=PRINT)).status == 404
    assert (await api.get(BLOCKS.format(999), as_="viewer")).status == 404
    set_id = await partners(api, ca)
    assert (await api.delete(f"/ca-sets/{set_id}", as_="admin")).status in (200, 202, 204)
    assert (await block(api, set_id, fingerprintSha256=PRINT)).status == 409
