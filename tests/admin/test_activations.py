"""Activations, deactivations and the fleet through HTTP (docs/management.md "Activation",
"Deactivation",
"Associations", "Activities"; docs/api.md /nodes). Nodes report through FleetService as edge nodes
do."""

from __future__ import annotations

from datetime import timedelta

import pytest

from edgeproxy.domain.model import Network
from support.admin import Api
from support.pki import Pki

from .steps import Clock, Fleet, activate, new_set, new_version


@pytest.fixture
async def versions(api: Api, pki: Pki) -> tuple[int, int, int]:
    """A set "partners" with two versions: (set id, 1, 2)."""
    set_id = await new_set(api, "partners")
    first = await new_version(api, set_id, pki.ca("One").pem)
    second = await new_version(api, set_id, pki.ca("Two").pem)
    return set_id, first, second


def _warnings(activation: dict) -> list[str]:
    return [w["type"] for w in activation["validation"]["warnings"]]


async def test_activation_completes_at_once_with_no_live_node(
    api: Api, fleet: Fleet, versions: tuple[int, int, int]
) -> None:
    set_id, first, _ = versions
    await fleet.report("stale", seen_ago=timedelta(minutes=10))  # lost: nobody to wait for
    activation = await activate(api, set_id, first)
    assert (activation["activationStatus"], activation["percentComplete"]) == ("COMPLETE", 100)
    assert activation["completedDate"] is not None
    assert (activation["activationType"], activation["createdBy"]) == ("ACTIVATE", "ops-admin")
    ca_set = await api.get(f"/ca-sets/{set_id}")
    assert (ca_set.body["stagingVersion"], ca_set.body["productionVersion"]) == (first, None)


async def test_activation_waits_for_live_nodes_then_completes(
    api: Api, fleet: Fleet, versions: tuple[int, int, int]
) -> None:
    set_id, first, _ = versions
    await fleet.report("edge-1", binds=("partners",))
    await fleet.report("edge-2", binds=("partners",))
    activation = await activate(api, set_id, first)
    assert (activation["activationStatus"], activation["percentComplete"]) == ("IN_PROGRESS", 0)
    link = activation["activationLink"].removeprefix("/mtls-edge-truststore/v2")

    await fleet.apply_all("edge-1", binds=("partners",))
    half = await api.get(link, as_="viewer")
    assert (half.body["activationStatus"], half.body["percentComplete"]) == ("IN_PROGRESS", 50)

    await fleet.apply_all("edge-2", binds=("partners",))
    done = await api.get(link)
    assert (done.body["activationStatus"], done.body["percentComplete"]) == ("COMPLETE", 100)


async def test_a_node_behind_the_activation_revision_does_not_count(
    api: Api, fleet: Fleet, versions: tuple[int, int, int]
) -> None:
    set_id, first, _ = versions
    await fleet.report("edge-1", binds=("partners",))
    before = await fleet.truststore.fleet.store.revision()
    activation = await activate(api, set_id, first)
    await fleet.report("edge-1", binds=("partners",), applied_revision=before)
    await fleet.reconcile()
    listed = await api.get(f"/ca-sets/{set_id}/activations")
    assert listed.body["activations"][0]["activationId"] == activation["activationId"]
    assert listed.body["activations"][0]["activationStatus"] == "IN_PROGRESS"


async def test_activation_fails_with_the_reason_and_the_network_reverts(
    api: Api, fleet: Fleet, versions: tuple[int, int, int]
) -> None:
    set_id, first, second = versions
    await activate(api, set_id, first)
    await fleet.report("edge-1", binds=("partners",))
    activation = await activate(api, set_id, second)
    assert activation["activationStatus"] == "IN_PROGRESS"
    assert (await api.get(f"/ca-sets/{set_id}")).body["stagingVersion"] == second

    await fleet.apply_all("edge-1", binds=("partners",), errors={"partners": "context build"})
    failed = await api.get(
        f"/ca-sets/{set_id}/versions/{second}/activations/{activation['activationId']}"
    )
    assert failed.body["activationStatus"] == "FAILED"
    assert failed.body["failureReason"] == "edge-1: context build"
    assert (await api.get(f"/ca-sets/{set_id}")).body["stagingVersion"] == first
    # The failure ends the in-flight state: the set takes a new activation.
    assert (await activate(api, set_id, second, "PRODUCTION"))["activationStatus"] == "COMPLETE"


async def test_activating_twice_on_one_network_is_409(
    api: Api, versions: tuple[int, int, int]
) -> None:
    set_id, first, _ = versions
    await activate(api, set_id, first)
    again = await api.post(f"/ca-sets/{set_id}/versions/{first}/activate", {"network": "STAGING"})
    assert (again.status, again.type) == (409, "version-already-active")
    other_network = await activate(api, set_id, first, "PRODUCTION")
    assert other_network["activationStatus"] == "COMPLETE"


async def test_one_activation_in_flight_per_set(
    api: Api, fleet: Fleet, versions: tuple[int, int, int]
) -> None:
    set_id, first, second = versions
    await fleet.report("edge-1", binds=("partners",))
    in_flight = await activate(api, set_id, first)
    refused = await api.post(
        f"/ca-sets/{set_id}/versions/{second}/activate", {"network": "PRODUCTION"}
    )
    assert (refused.status, refused.type) == (409, "activation-in-progress")
    assert refused.body["activationId"] == in_flight["activationId"]
    # Another set is not blocked by this one.
    other = await new_set(api, "others")
    await activate(api, other, await new_version(api, other, (await _pem(api, set_id))))
    await fleet.apply_all("edge-1", binds=("partners",))
    assert (await activate(api, set_id, second, "PRODUCTION"))["activationStatus"] == "COMPLETE"


async def _pem(api: Api, set_id: int) -> str:
    version = (await api.get(f"/ca-sets/{set_id}/versions/1")).body
    return str(version["certificates"][0]["certificatePem"])


async def test_production_before_staging_warns(api: Api, versions: tuple[int, int, int]) -> None:
    set_id, first, second = versions
    untested = await activate(api, set_id, first, "PRODUCTION")
    assert _warnings(untested) == ["not-tested-on-staging"]
    await activate(api, set_id, second, "STAGING")
    tested = await activate(api, set_id, second, "PRODUCTION")
    assert _warnings(tested) == []


async def test_activation_of_a_missing_version_is_404(
    api: Api, versions: tuple[int, int, int]
) -> None:
    set_id, *_ = versions
    missing = await api.post(f"/ca-sets/{set_id}/versions/9/activate", {"network": "STAGING"})
    assert (missing.status, missing.type) == (404, "version-not-found")
    elsewhere = await api.get(f"/ca-sets/{set_id}/versions/2/activations/1")
    assert (elsewhere.status, elsewhere.type) == (404, "activation-not-found")


async def test_activation_revalidates_certificates(
    api: Api, clock: Clock, versions: tuple[int, int, int]
) -> None:
    set_id, first, _ = versions
    clock.advance(timedelta(days=400))  # every certificate has expired since upload
    refused = await api.post(f"/ca-sets/{set_id}/versions/{first}/activate", {"network": "STAGING"})
    assert (refused.status, refused.type) == (400, "certificate-validation-failure-activate")
    assert refused.errors == [("expired", "/certificates/0")]


# -- deactivation -------------------------------------------------------------------------------


async def test_deactivate_refused_while_a_live_node_binds_unless_forced(
    api: Api, fleet: Fleet, versions: tuple[int, int, int]
) -> None:
    set_id, first, _ = versions
    await activate(api, set_id, first)
    await fleet.report("edge-1", binds=("partners",))
    path = f"/ca-sets/{set_id}/versions/{first}/deactivate"
    refused = await api.post(path, {"network": "STAGING"})
    assert (refused.status, refused.type) == (409, "ca-set-in-use")
    assert refused.body["associations"] == [
        {"node": "edge-1", "edgeCertificate": "partners-cert", "network": "STAGING"}
    ]
    forced = await api.post(path, {"network": "STAGING", "force": True})
    assert forced.status == 202
    assert (forced.body["activationType"], forced.body["activationStatus"]) == (
        "DEACTIVATE",
        "IN_PROGRESS",
    )
    assert (await api.get(f"/ca-sets/{set_id}")).body["stagingVersion"] is None


async def test_deactivate_ignores_nodes_of_the_other_network(
    api: Api, fleet: Fleet, versions: tuple[int, int, int]
) -> None:
    set_id, first, _ = versions
    await activate(api, set_id, first)
    await fleet.report("prod-1", network=Network.PRODUCTION, binds=("partners",))
    reply = await api.post(f"/ca-sets/{set_id}/versions/{first}/deactivate", {"network": "STAGING"})
    assert (reply.status, reply.body["activationStatus"]) == (202, "COMPLETE")


async def test_deactivating_an_inactive_version_is_409(
    api: Api, versions: tuple[int, int, int]
) -> None:
    set_id, first, _ = versions
    reply = await api.post(
        f"/ca-sets/{set_id}/versions/{first}/deactivate", {"network": "PRODUCTION"}
    )
    assert (reply.status, reply.type) == (409, "version-not-active")


# -- history, associations, nodes ---------------------------------------------------------------


async def test_activities_newest_first_with_actors(
    api: Api, versions: tuple[int, int, int]
) -> None:
    set_id, first, _ = versions
    await activate(api, set_id, first)
    await api.post(f"/ca-sets/{set_id}/versions/{first}/activate", {"network": "STAGING"})  # 409
    reply = await api.get(f"/ca-sets/{set_id}/activities", as_="viewer")
    activities = reply.body["activities"]
    seen = [(a["type"], a["network"], a["version"], a["activityBy"]) for a in activities]
    assert seen == [
        ("ACTIVATE_CA_SET_VERSION", "STAGING", first, "ops-admin"),
        ("CREATE_CA_SET_VERSION", None, 2, "ops-admin"),
        ("CREATE_CA_SET_VERSION", None, 1, "ops-admin"),
        ("CREATE_CA_SET", None, None, "ci-editor"),
    ]
    dates = [a["activityDate"] for a in activities]
    assert dates == sorted(dates, reverse=True)
    assert (await api.get("/ca-sets/404/activities")).status == 404


async def test_associations_list_live_bindings_only(
    api: Api, fleet: Fleet, versions: tuple[int, int, int]
) -> None:
    set_id, *_ = versions
    await fleet.report("edge-1", binds=("partners", "others"))
    await fleet.report("edge-2", binds=("others",))
    await fleet.report("edge-gone", binds=("partners",), seen_ago=timedelta(minutes=5))
    reply = await api.get(f"/ca-sets/{set_id}/associations", as_="viewer")
    assert reply.body["associations"] == [
        {
            "node": "edge-1",
            "network": "STAGING",
            "edgeCertificate": "partners-cert",
            "hostnames": ["partners.example.com"],
            "source": "config",
            "nodes": ["edge-1"],
        }
    ]


async def test_nodes_lists_every_node_with_liveness(api: Api, fleet: Fleet) -> None:
    assert (await api.get("/nodes", as_="viewer")).body["nodes"] == []
    await fleet.report("edge-1", binds=("partners",), applied_revision=3)
    await fleet.report("edge-old", network=Network.PRODUCTION, seen_ago=timedelta(minutes=5))
    nodes = {n["name"]: n for n in (await api.get("/nodes", as_="viewer")).body["nodes"]}
    assert (nodes["edge-1"]["live"], nodes["edge-old"]["live"]) == (True, False)
    assert nodes["edge-1"]["appliedRevision"] == 3
    assert nodes["edge-1"]["bindings"][0]["caSet"] == "partners"
    assert nodes["edge-old"]["network"] == "PRODUCTION"
