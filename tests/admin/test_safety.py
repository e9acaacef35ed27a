"""Safe trust changes through HTTP (docs/api.md "Safe trust changes"): the impact of a version on
the clients the nodes recorded, the 409 of an activation that would refuse some, the diff of two
versions, and rollback. Records reach the store through FleetService, as edge nodes write them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from edgeproxy.domain.clients import ClientObservation, describe
from edgeproxy.domain.model import Network
from edgeproxy.service.truststore import Truststore
from support.admin import Api
from support.pki import AGE, Issued, Pki, aged_chain

from .steps import Clock, activate, new_set, new_version, version_body


@dataclass(frozen=True)
class Partners:
    set_id: int
    ca_a: Issued
    ca_b: Issued
    client_a: Issued
    client_b: Issued
    both: int  # version 1: CA-A and CA-B
    only_b: int  # version 2: CA-B


@pytest.fixture
async def partners(api: Api, pki: Pki) -> Partners:
    ca_a, ca_b = pki.ca("CA-A"), pki.ca("CA-B")
    client_a = pki.client("client a", ca_a)
    client_b = pki.client("client b", ca_b)
    set_id = await new_set(api, "partners")
    both = await new_version(api, set_id, ca_a.pem, ca_b.pem)
    only_b = await new_version(api, set_id, ca_b.pem)
    await activate(api, set_id, both)
    return Partners(set_id, ca_a, ca_b, client_a, client_b, both, only_b)


def _print(client: Issued) -> str:
    return hashlib.sha256(client.der).hexdigest()


async def _seen(
    truststore: Truststore,
    node: str,
    client: Issued,
    *,
    handshakes: int = 1,
    requests: int = 0,
    network: Network = Network.STAGING,
    sent: tuple[Issued, ...] = (),
) -> None:
    """`client` seen by `node`; `sent`: the intermediates it presented after its certificate."""
    now = datetime.now(UTC)
    subject, issuer, sans = describe(client.der)
    record = ClientObservation(
        network=network,
        edge_certificate="api",
        ca_set="partners",
        node=node,
        fingerprint=_print(client),
        subject=subject,
        issuer=issuer,
        sans=sans,
        chain_der=(client.der, *(c.der for c in sent)),
        first_seen=now - timedelta(hours=1),
        last_seen=now,
        handshakes=handshakes,
        requests=requests,
        last_outcome="accepted",
    )
    await truststore.fleet.record_clients(
        node, [record], now=now, window=timedelta(days=7), keep=100
    )


async def _impact(api: Api, set_id: int, version: int, network: str = "STAGING") -> dict:
    reply = await api.get(
        f"/ca-sets/{set_id}/versions/{version}/impact", params={"network": network}
    )
    assert reply.status == 200, reply.body
    return dict(reply.body)


async def test_impact_lists_exactly_the_clients_the_version_would_refuse(
    api: Api, truststore: Truststore, partners: Partners
) -> None:
    p = partners
    await _seen(truststore, "edge-1", p.client_a, handshakes=2, requests=5)
    await _seen(truststore, "edge-2", p.client_a, handshakes=1, requests=1)
    await _seen(truststore, "edge-2", p.client_a, handshakes=1)  # a second batch adds up
    await _seen(truststore, "edge-2", p.client_b, handshakes=7)

    impact = await _impact(api, p.set_id, p.only_b)
    assert (impact["clientsObserved"], impact["activeVersion"]) == (2, p.both)
    (refused,) = impact["wouldBeRefused"]
    assert refused["fingerprintSha256"] == _print(p.client_a)
    assert (refused["subject"], refused["issuer"]) == ("CN=client a", "CN=CA-A")
    assert refused["reason"] == "unknown_ca"
    assert (refused["handshakes"], refused["requests"]) == (4, 6)
    assert refused["nodes"] == ["edge-1", "edge-2"]
    assert impact["newlyAccepted"] == []

    # Nothing seen on PRODUCTION; the version in force changes nothing.
    assert (await _impact(api, p.set_id, p.only_b, "PRODUCTION"))["clientsObserved"] == 0
    assert (await _impact(api, p.set_id, p.both))["wouldBeRefused"] == []


async def test_an_activation_that_would_refuse_clients_needs_an_acknowledgement(
    api: Api, truststore: Truststore, partners: Partners
) -> None:
    p = partners
    await _seen(truststore, "edge-1", p.client_a)
    path = f"/ca-sets/{p.set_id}/versions/{p.only_b}/activate"

    refused = await api.post(path, {"network": "STAGING"})
    assert (refused.status, refused.type) == (409, "activation-would-refuse-clients")
    assert [c["fingerprintSha256"] for c in refused.body["wouldBeRefused"]] == [_print(p.client_a)]
    ca_set = await api.get(f"/ca-sets/{p.set_id}")
    assert ca_set.body["stagingVersion"] == p.both  # nothing changed
    before = (await api.get(f"/ca-sets/{p.set_id}/activities")).body["activities"]

    done = await api.post(path, {"network": "STAGING", "acknowledgeImpact": True})
    assert done.status == 202, done.body
    assert [w["type"] for w in done.body["validation"]["warnings"]] == ["refuses-seen-clients"]
    activities = (await api.get(f"/ca-sets/{p.set_id}/activities")).body["activities"]
    assert len(activities) == len(before) + 1
    assert (activities[0]["version"], activities[0]["acknowledgedRefusals"]) == (p.only_b, 1)


async def test_rollback_goes_back_to_the_version_before(
    api: Api, truststore: Truststore, partners: Partners
) -> None:
    p = partners
    first = await api.post(f"/ca-sets/{p.set_id}/rollback", {"network": "STAGING"})
    assert (first.status, first.type) == (409, "nothing-to-roll-back")  # version 1 came first
    await _seen(truststore, "edge-1", p.client_a)
    await api.post(
        f"/ca-sets/{p.set_id}/versions/{p.only_b}/activate",
        {"network": "STAGING", "acknowledgeImpact": True},
    )
    # What going back does: the client version 2 refuses is accepted again.
    back = await _impact(api, p.set_id, p.both)
    assert [c["fingerprintSha256"] for c in back["newlyAccepted"]] == [_print(p.client_a)]
    assert back["newlyAccepted"][0]["reason"] == "unknown_ca"  # why it is refused now

    reply = await api.post(f"/ca-sets/{p.set_id}/rollback", {"network": "STAGING"})
    assert reply.status == 202, reply.body
    assert (reply.body["version"], reply.body["activationType"]) == (p.both, "ACTIVATE")
    assert (await api.get(f"/ca-sets/{p.set_id}")).body["stagingVersion"] == p.both

    # Rolling back again goes to version 2, through the same checks as any activation.
    again = await api.post(f"/ca-sets/{p.set_id}/rollback", {"network": "STAGING"})
    assert (again.status, again.type) == (409, "activation-would-refuse-clients")
    # PRODUCTION never had a version.
    none = await api.post(f"/ca-sets/{p.set_id}/rollback", {"network": "PRODUCTION"})
    assert (none.status, none.type) == (409, "nothing-to-roll-back")


async def test_diff_of_two_versions(api: Api, partners: Partners, pki: Pki) -> None:
    p = partners
    reply = await api.get(
        f"/ca-sets/{p.set_id}/versions/{p.only_b}/diff", params={"from": str(p.both)}
    )
    assert reply.status == 200
    removed = {"fingerprint": hashlib.sha256(p.ca_a.der).hexdigest(), "subject": "CN=CA-A"}
    assert reply.body["removed"] == [removed]
    assert reply.body["added"] == []
    assert [c["subject"] for c in reply.body["unchanged"]] == ["CN=CA-B"]
    assert reply.body["flags"] == []

    rooted = await new_version(api, p.set_id, pki.ca("CA-C").pem, requireRootCertificate=True)
    flags = await api.get(
        f"/ca-sets/{p.set_id}/versions/{rooted}/diff", params={"from": str(p.only_b)}
    )
    assert flags.body["flags"] == [{"name": "requireRootCertificate", "from": False, "to": True}]
    assert [c["subject"] for c in flags.body["added"]] == ["CN=CA-C"]


def _reasons(impact: dict) -> dict[str, str]:
    return {c["fingerprintSha256"]: c["reason"] for c in impact["wouldBeRefused"]}


async def test_impact_names_an_expired_anchor_and_no_path_to_a_root(
    api: Api, truststore: Truststore, clock: Clock
) -> None:
    """Reasons other than unknown_ca, as the edge gives them (tls/test_engine.py
    `test_the_handshake_and_the_impact_verifier_give_the_same_reason` holds the same cases
    against real handshakes)."""
    aged = aged_chain()
    set_id = await new_set(api, "partners")
    active = await new_version(api, set_id, aged.intermediate.pem)  # a partial chain
    await activate(api, set_id, active)
    sends = aged.client  # presents its intermediate
    alone = aged.other_client  # presents its certificate only
    await _seen(truststore, "edge-1", sends, sent=(aged.intermediate,))
    await _seen(truststore, "edge-1", alone)

    # The literal case, an intermediate alone under requireRootCertificate, cannot be a version.
    refused = await api.post(
        f"/ca-sets/{set_id}/versions",
        version_body(aged.intermediate.pem, requireRootCertificate=True),
    )
    assert (refused.status, refused.errors) == (
        400,
        [("missing-root-certificate", "/certificates/0")],
    )
    # No path to the root: the version holds the root only, one client sends no intermediate.
    rooted = await new_version(api, set_id, aged.root.pem, requireRootCertificate=True)
    assert _reasons(await _impact(api, set_id, rooted)) == {_print(alone): "unknown_ca"}

    # Versions made while the old copy of the root was valid; it has expired since.
    clock.advance(-AGE)
    strict = await new_version(
        api, set_id, aged.intermediate.pem, aged.root_expired.pem, requireRootCertificate=True
    )
    old_root = await new_version(api, set_id, aged.root_expired.pem)
    clock.advance(AGE)
    # requireRootCertificate: every path must reach the root, which has expired.
    assert _reasons(await _impact(api, set_id, strict)) == {
        _print(sends): "expired",
        _print(alone): "expired",
    }
    # The expired root as the only anchor: expired where a path reaches it.
    assert _reasons(await _impact(api, set_id, old_root)) == {
        _print(sends): "expired",
        _print(alone): "unknown_ca",
    }


@pytest.mark.parametrize(
    ("path", "params", "problem"),
    [
        ("/versions/2/impact", {}, "missing-query-parameter"),
        ("/versions/2/impact", {"network": "MARS"}, "invalid-network"),
        ("/versions/2/diff", {}, "missing-query-parameter"),
        ("/versions/2/diff", {"from": "one"}, "invalid-query-parameter"),
    ],
)
async def test_bad_queries_are_400(
    api: Api, partners: Partners, path: str, params: dict[str, str], problem: str
) -> None:
    reply = await api.get(f"/ca-sets/{partners.set_id}{path}", params=params)
    assert (reply.status, reply.type) == (400, problem)


async def test_unknown_version_is_404(api: Api, partners: Partners) -> None:
    reply = await api.get(
        f"/ca-sets/{partners.set_id}/versions/99/impact", params={"network": "STAGING"}
    )
    assert reply.status == 404
