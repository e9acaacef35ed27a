"""CA sets through HTTP (docs/management.md "CA set", "Deletion"; docs/api.md): names, limits,
listing, deletion."""

from __future__ import annotations

import asyncio

import pytest

from edgeproxy.domain import rules
from support.admin import Api
from support.pki import Pki

from .steps import Fleet, activate, new_set, new_version


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("abc", 201),
        ("ab", 400),  # too short
        ("a" * 64, 201),
        ("a" * 65, 400),  # too long
        ("Aa0_.%-z", 201),
        ("bad name", 400),
        ("bad/name", 400),
        ("caf\u00e9", 400),
        ("a..b", 201),
        ("a...b", 400),
    ],
)
async def test_ca_set_name_rules(api: Api, name: str, status: int) -> None:
    reply = await api.post("/ca-sets", {"caSetName": name}, as_="editor")
    assert reply.status == status
    if status == 400:
        assert reply.type == "ca-set-name-validation-failure"
        assert reply.errors == [("ca-set-name-validation-failure", "/caSetName")]
    else:
        assert reply.body["caSetName"] == name
        assert reply.body["caSetStatus"] == "NOT_DELETED"


@pytest.mark.parametrize(("length", "status"), [(255, 201), (256, 422)])
async def test_description_at_most_255(api: Api, length: int, status: int) -> None:
    reply = await api.post("/ca-sets", {"caSetName": "described", "description": "d" * length})
    assert reply.status == status
    if status == 422:
        assert reply.errors == [("description-too-long", "/description")]
    else:
        assert reply.body["description"] == "d" * length


async def test_duplicate_name_is_409_and_another_name_is_not(api: Api) -> None:
    await new_set(api, "partners")
    reply = await api.post("/ca-sets", {"caSetName": "partners"})
    assert (reply.status, reply.type) == (409, "ca-set-name-taken")
    assert (await api.post("/ca-sets", {"caSetName": "partners-2"})).status == 201


async def test_name_is_freed_once_deletion_completes_not_before(api: Api, fleet: Fleet) -> None:
    set_id = await new_set(api, "reused")
    assert (await api.delete(f"/ca-sets/{set_id}")).status == 202
    still_deleting = await api.post("/ca-sets", {"caSetName": "reused"})
    assert (still_deleting.status, still_deleting.type) == (409, "ca-set-name-taken")
    await fleet.reconcile()
    again = await api.post("/ca-sets", {"caSetName": "reused"})
    assert again.status == 201
    assert again.body["caSetId"] != set_id


async def test_at_most_200_sets_and_deleted_ones_do_not_count(api: Api, fleet: Fleet) -> None:
    async def create(n: int) -> int:
        return (await api.post("/ca-sets", {"caSetName": f"set-{n:03d}"})).status

    # Concurrent requests: the store serialises the writes, the limit must hold anyway.
    statuses = await asyncio.gather(*(create(n) for n in range(rules.MAX_CA_SETS)))
    assert statuses == [201] * rules.MAX_CA_SETS
    over = await api.post("/ca-sets", {"caSetName": "one-too-many"})
    assert (over.status, over.type) == (422, "ca-set-limit-reached")
    assert (await api.delete("/ca-sets/1")).status == 202
    await fleet.reconcile()
    assert (await api.post("/ca-sets", {"caSetName": "one-too-many"})).status == 201


async def test_list_filters_by_prefix_and_network(api: Api, pki: Pki) -> None:
    alpha = await new_set(api, "alpha-1")
    await new_set(api, "alpha-2")
    await new_set(api, "beta")
    await activate(api, alpha, await new_version(api, alpha, pki.ca().pem))
    names = lambda reply: [s["caSetName"] for s in reply.body["caSets"]]  # noqa: E731
    assert names(await api.get("/ca-sets", as_="viewer")) == ["alpha-1", "alpha-2", "beta"]
    prefixed = await api.get("/ca-sets", params={"caSetNamePrefix": "alpha"})
    assert names(prefixed) == ["alpha-1", "alpha-2"]
    assert names(await api.get("/ca-sets", params={"activatedOn": "STAGING"})) == ["alpha-1"]
    assert names(await api.get("/ca-sets", params={"activatedOn": "PRODUCTION"})) == []
    bad = await api.get("/ca-sets", params={"activatedOn": "MARS"})
    assert (bad.status, bad.type) == (400, "invalid-network")


async def test_get_ca_set_and_its_404(api: Api) -> None:
    set_id = await new_set(api, "fetched")
    reply = await api.get(f"/ca-sets/{set_id}", as_="viewer")
    assert reply.status == 200
    assert reply.body["caSetLink"] == f"/mtls-edge-truststore/v2/ca-sets/{set_id}"
    missing = await api.get("/ca-sets/999")
    assert (missing.status, missing.type) == (404, "ca-set-not-found")


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5", "\u00b2", "9" * 30])
async def test_path_ids_must_be_decimal_integers(api: Api, bad: str) -> None:
    reply = await api.get(f"/ca-sets/{bad}")
    assert (reply.status, reply.type) == (400, "invalid-path-parameter")


# -- deletion ------------------------------------------------------------------------------------


async def test_deletion_completes_through_the_reconciler(api: Api, fleet: Fleet) -> None:
    set_id = await new_set(api, "doomed")
    none_yet = await api.get(f"/ca-sets/{set_id}/status/delete")
    assert (none_yet.status, none_yet.type) == (404, "no-delete-request")
    started = await api.delete(f"/ca-sets/{set_id}")
    assert started.status == 202
    assert started.body["status"] == "IN_PROGRESS"
    assert (await api.get(f"/ca-sets/{set_id}/status/delete")).body["status"] == "IN_PROGRESS"
    await fleet.reconcile()
    done = await api.get(f"/ca-sets/{set_id}/status/delete", as_="viewer")
    assert done.body["status"] == "COMPLETE"
    assert done.body["endTime"] is not None
    # A deleted set is read-only history: still readable, gone from the list, not writable.
    ca_set = await api.get(f"/ca-sets/{set_id}")
    assert (ca_set.body["caSetStatus"], ca_set.body["deletedBy"]) == ("DELETED", "ops-admin")
    assert (await api.get("/ca-sets")).body["caSets"] == []
    again = await api.delete(f"/ca-sets/{set_id}")
    assert (again.status, again.type) == (409, "ca-set-deleted")


async def test_deletion_fails_when_a_node_binds_the_set_meanwhile(api: Api, fleet: Fleet) -> None:
    set_id = await new_set(api, "bound")
    assert (await api.delete(f"/ca-sets/{set_id}")).status == 202
    await fleet.report("edge-1", binds=("bound",))
    await fleet.reconcile()
    status = await api.get(f"/ca-sets/{set_id}/status/delete")
    assert status.body["status"] == "FAILED"
    assert "edge-1/bound-cert" in status.body["failureReason"]
    assert (await api.get(f"/ca-sets/{set_id}")).body["caSetStatus"] == "NOT_DELETED"


async def test_delete_refused_while_a_live_node_binds_the_set(api: Api, fleet: Fleet) -> None:
    set_id = await new_set(api, "bound")
    await fleet.report("edge-1", binds=("bound",))
    refused = await api.delete(f"/ca-sets/{set_id}")
    assert (refused.status, refused.type) == (409, "ca-set-in-use")
    assert refused.body["associations"] == [
        {"node": "edge-1", "edgeCertificate": "bound-cert", "network": "STAGING"}
    ]
    await fleet.report("edge-1", binds=("other",))
    assert (await api.delete(f"/ca-sets/{set_id}")).status == 202


async def test_delete_refused_while_a_version_is_active(api: Api, pki: Pki) -> None:
    set_id = await new_set(api)
    version = await new_version(api, set_id, pki.ca().pem)
    await activate(api, set_id, version)
    refused = await api.delete(f"/ca-sets/{set_id}")
    assert (refused.status, refused.type) == (409, "ca-set-is-active")
    deactivated = await api.post(
        f"/ca-sets/{set_id}/versions/{version}/deactivate", {"network": "STAGING"}
    )
    assert deactivated.status == 202
    assert (await api.delete(f"/ca-sets/{set_id}")).status == 202


async def test_a_set_being_deleted_takes_no_new_version(api: Api, pki: Pki) -> None:
    set_id = await new_set(api)
    await api.delete(f"/ca-sets/{set_id}")
    reply = await api.post(
        f"/ca-sets/{set_id}/versions", {"certificates": [{"certificatePem": pki.ca().pem}]}
    )
    assert (reply.status, reply.type) == (409, "ca-set-delete-in-progress")


async def test_a_set_being_deleted_is_read_only(api: Api, pki: Pki) -> None:
    set_id = await new_set(api)
    await new_version(api, set_id, pki.ca().pem)
    body = {"certificates": [{"certificatePem": pki.ca().pem}]}
    writes = [
        ("PUT", f"/ca-sets/{set_id}/versions/1", body),
        ("POST", f"/ca-sets/{set_id}/versions/1/clone", None),
        ("DELETE", f"/ca-sets/{set_id}/versions/1", None),
    ]
    assert (await api.delete(f"/ca-sets/{set_id}")).status == 202
    for method, path, sent in writes:
        reply = await api.call(method, path, *([sent] if sent else []))
        assert (reply.status, reply.type) == (409, "ca-set-delete-in-progress"), path
    assert (await api.get(f"/ca-sets/{set_id}/versions/1")).status == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "missing"),
    [
        ("POST", "/ca-sets/9/versions", "version", "ca-set-not-found"),
        ("PUT", "/ca-sets/{set}/versions/9", "version", "version-not-found"),
        ("DELETE", "/ca-sets/{set}/versions/9", None, "version-not-found"),
        ("POST", "/ca-sets/{set}/versions/9/deactivate", "network", "version-not-found"),
        ("GET", "/ca-sets/{set}/versions/9/certificates", None, "version-not-found"),
        ("GET", "/ca-sets/9/status/delete", None, "ca-set-not-found"),
        ("GET", "/ca-sets/9/activations", None, "ca-set-not-found"),
        ("GET", "/ca-sets/9/associations", None, "ca-set-not-found"),
    ],
)
async def test_missing_sets_and_versions_are_404(
    api: Api, pki: Pki, method: str, path: str, body: str | None, missing: str
) -> None:
    set_id = await new_set(api)
    sent = {
        None: None,
        "version": {"certificates": [{"certificatePem": pki.ca().pem}]},
        "network": {"network": "STAGING"},
    }[body]
    reply = await api.call(method, path.format(set=set_id), *([sent] if sent else []))
    assert (reply.status, reply.type) == (404, missing)
